//! Target topics exist, with the source's partition count and topic configs, before any record
//! is written to them; configs that drift on the source later are synced.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_executor::block_on;
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use tracing::{debug, info, warn};

#[cfg(doc)]
use crate::config::names::group_reader;
use crate::error::{is_refusal, Error, Result, Side};
use crate::kafka::client::CreateForRole;
use crate::kafka::consumer_close::ClosedOnDrop;
use crate::kafka::errors::ErrorRecorder;
use crate::kafka::incremental_alter::set_topic_configs;
use crate::kafka::topic_configs::{topics_configs, ConfigsAnswer, TopicConfigs, TIMESTAMP_TYPE};
use crate::kafka::topic_descriptions::{describe_topics, Described, DescribedAnswer};
use crate::mirror::copied_configs::{copied, for_new_copy, CREATE_TIME};
use crate::mirror::plan::SourceTopic;

const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Topics whose configs (each side's) and target partitions share one request: a DescribeConfigs
/// answer carries some 40 configs per topic, a few MB for this many.
const TOPICS_PER_REQUEST: usize = 500;

/// Partitions one CreateTopics request makes at most: Kafka's controller refuses a request of
/// more than 10 000 in all, whole ("Excessively large number of partitions per request").
const PARTITIONS_PER_CREATE: i64 = 9_000;

/// Admin access to both clusters for topic creation and config sync.
/// What making a target topic ready changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TopicChange {
    Created,
    /// Partitions added to match a source topic that grew while it was mirrored.
    Grown,
    ConfigsSynced,
    Unchanged,
}

/// Whether a target topic is ready to be written, or what making it takes.
#[derive(Debug)]
pub(crate) enum Readiness {
    Ready(TopicChange),
    Missing(MissingTopic),
}

/// A topic the target lacks: its name there, partitions and topic configs, and the source
/// topic's replication factor (`None` for kmirror's own topics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MissingTopic {
    pub(crate) name: String,
    pub(crate) partitions: i32,
    pub(crate) configs: BTreeMap<String, String>,
    pub(crate) source_replicas: Option<i32>,
}

/// Replicas of kmirror's own topics where the target has that many brokers: the offset map
/// and the shadow positions outlive any one broker, as Kafka's own internal topics do.
const OWN_TOPIC_REPLICAS: usize = 3;

pub(crate) struct TopicSync {
    source_admin: AdminClient<DefaultClientContext>,
    target_admin: AdminClient<DefaultClientContext>,
    target_metadata: ClosedOnDrop<ErrorRecorder>,
    replication_factor: Option<i32>,
    /// `--exclude-configs`: configs the copies keep their own of.
    exclude_configs: Option<regex::Regex>,
}

impl TopicSync {
    /// `target_metadata`: the client of the target that the run's reachability check goes
    /// through, so that later requests on it go to a named broker at once. Its group id is
    /// [`group_reader`]'s: it reads the shadow groups.
    pub(crate) fn new(
        source: rdkafka::ClientConfig,
        target: rdkafka::ClientConfig,
        target_metadata: BaseConsumer<ErrorRecorder>,
        replication_factor: Option<i32>,
        exclude_configs: Option<regex::Regex>,
    ) -> Result<Self> {
        Ok(Self {
            source_admin: source
                .create_for_role()
                .map_err(Error::kafka(Side::Source, "creating admin client"))?,
            target_admin: target
                .create_for_role()
                .map_err(Error::kafka(Side::Target, "creating admin client"))?,
            target_metadata: ClosedOnDrop::new(target_metadata),
            replication_factor,
            exclude_configs,
        })
    }

    /// A client connected to the target since the run's start, for requests of any kind (the
    /// start's shadow-group read among them): a new client reaches a named broker only some
    /// 15 ms after it is made (see `config::client::RECONNECT_BACKOFF_MS`), and asking through
    /// one per question paid that each time.
    pub(crate) fn target_consumer(&self) -> &BaseConsumer<ErrorRecorder> {
        &self.target_metadata
    }

    /// Makes sure each target topic has at least its source's partitions and the source's topic
    /// configs, or says how to make it ([`Readiness::Missing`]: topics are made together, see
    /// [`TopicSync::make_all`]); one answer per topic, in order. `known` holds how many
    /// partitions of each source topic the mirror already copies: a target that has exactly
    /// those gets the source's new ones added (the source grew); any other shortfall is refused,
    /// since it is not the mirror's topic.
    ///
    /// [`TOPICS_PER_REQUEST`] topics share each request: their source configs, their targets'
    /// configs and their targets' partitions, the three asked side by side. Asked one topic at a
    /// time, a mirror of hundreds of topics sent three requests per topic at its start and at
    /// every refresh.
    pub(crate) fn check_all(
        &self,
        topics: &[SourceTopic],
        known: &BTreeMap<String, i32>,
    ) -> Vec<Result<Readiness>> {
        topics.chunks(TOPICS_PER_REQUEST).flat_map(|chunk| self.check_chunk(chunk, known)).collect()
    }

    fn check_chunk(&self, topics: &[SourceTopic], known: &BTreeMap<String, i32>) -> Vec<Result<Readiness>> {
        let sources: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
        let targets: Vec<&str> = topics.iter().map(|t| t.target.as_str()).collect();
        // The targets' configs are asked before knowing which targets exist (an answer about a
        // missing topic is not used): a start pays one round trip for all three.
        let (source_configs, target_configs, described) = std::thread::scope(|scope| {
            let source = scope.spawn(|| topics_configs(&self.source_admin, &sources, ADMIN_TIMEOUT));
            let target = scope.spawn(|| topics_configs(&self.target_admin, &targets, ADMIN_TIMEOUT));
            let described = describe_topics(self.target_metadata.client(), &targets, ADMIN_TIMEOUT);
            let joined = |handle: std::thread::ScopedJoinHandle<'_, _>| {
                handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            };
            (joined(source), joined(target), described)
        });
        topics
            .iter()
            .map(|topic| {
                let source = configs_in(&source_configs, Side::Source, &topic.name)?;
                let partitions = partitions_in(&described, &topic.target)?;
                // Asked again if the topic was made between the two answers.
                let target = || {
                    configs_in(&target_configs, Side::Target, &topic.target)
                        .or_else(|_| self.configs(Side::Target, &topic.target))
                };
                self.decide(topic, known.get(&topic.name).copied(), source, partitions, target)
            })
            .collect()
    }

    /// What one target topic needs, given its source's configs and its own partitions.
    fn decide(
        &self,
        topic: &SourceTopic,
        mirrored: Option<i32>,
        source_configs: TopicConfigs,
        partitions: Option<i32>,
        target_configs: impl FnOnce() -> Result<TopicConfigs>,
    ) -> Result<Readiness> {
        let source_configs = copied(source_configs.overrides, self.exclude_configs.as_ref());
        match partitions {
            // Made again, it would take the next records at offset 0 while the map and the
            // shadow group say otherwise.
            None if mirrored.is_some() => {
                Err(Error::TargetReplaced { topic: topic.target.clone(), how: "deleted".into() })
            }
            None => Ok(Readiness::Missing(MissingTopic {
                name: topic.target.clone(),
                partitions: topic.partitions,
                configs: for_new_copy(source_configs),
                source_replicas: Some(topic.replicas),
            })),
            Some(n) if n < topic.partitions && mirrored == Some(n) => {
                self.grow(topic, n)?;
                self.sync_configs(&topic.target, &source_configs, target_configs()?)?;
                Ok(Readiness::Ready(TopicChange::Grown))
            }
            Some(n) if n < topic.partitions => Err(Error::TooFewPartitions {
                topic: topic.target.clone(),
                source_topic: topic.name.clone(),
                source_partitions: topic.partitions,
                target_partitions: n,
            }),
            Some(_) => {
                self.sync_configs(&topic.target, &source_configs, target_configs()?).map(Readiness::Ready)
            }
        }
    }

    /// Makes every topic of `missing` in one CreateTopics request, and waits until each one
    /// made is visible; one result per topic, in order: true if this request made it, false if a
    /// racing creator made it first. The target's brokers pass each CreateTopics to the
    /// controller one after the other, and the controller takes 30-50 ms to commit each
    /// (measured on Apache Kafka 4.1): four topics made side by side, one request each, took
    /// 0.2 s.
    pub(crate) fn make_all(&self, missing: &[&MissingTopic]) -> Vec<Result<bool>> {
        if missing.is_empty() {
            return Vec::new();
        }
        // Asked only where a replication factor depends on it: a round trip of a first start.
        let brokers = match self.replication_factor {
            None if missing.iter().any(|t| t.source_replicas.is_none_or(|source| source > 1)) => {
                self.target_brokers(&missing[0].name)
            }
            _ => None,
        };
        let requests: Vec<NewTopic<'_>> = missing
            .iter()
            .map(|t| {
                let replicas = match (self.replication_factor, t.source_replicas) {
                    (Some(n), _) => n,
                    // The target's default.replication.factor: its operators' policy.
                    (None, Some(_)) => -1,
                    (None, None) => brokers.map_or(-1, |b| b.min(OWN_TOPIC_REPLICAS) as i32),
                };
                t.configs.iter().fold(
                    NewTopic::new(&t.name, t.partitions, TopicReplication::Fixed(replicas)),
                    |n, (k, v)| n.set(k, v),
                )
            })
            .collect();
        let mut outcomes: Vec<Result<bool>> = Vec::with_capacity(missing.len());
        let mut at = 0;
        for size in request_sizes(missing) {
            outcomes.extend(self.create(&missing[at..at + size], &requests[at..at + size]));
            at += size;
        }
        let replicas = self.wait_all_visible(missing, &mut outcomes);
        if self.replication_factor.is_none() {
            // Where the source has one replica, no copy can have fewer.
            let made: Vec<(&str, i32)> = missing
                .iter()
                .zip(&outcomes)
                .filter_map(|(t, outcome)| match (t.source_replicas, outcome) {
                    (Some(source), Ok(true)) if source > 1 => Some((t.name.as_str(), source)),
                    _ => None,
                })
                .collect();
            warn_if_less_durable(&made, &replicas, brokers);
        }
        outcomes
    }

    /// One CreateTopics request: whether each topic was made by it (false: it was there).
    fn create(&self, missing: &[&MissingTopic], requests: &[NewTopic<'_>]) -> Vec<Result<bool>> {
        let answers = match block_on(self.target_admin.create_topics(requests, &admin_options())) {
            Ok(answers) => answers,
            Err(e) => {
                return missing
                    .iter()
                    .map(|t| {
                        Err(Error::from_kafka(Side::Target, format!("creating topic {}", t.name), e.clone()))
                    })
                    .collect()
            }
        };
        missing
            .iter()
            .map(|t| match answers.iter().find(|a| answer_name(a) == t.name) {
                Some(Ok(_)) => Ok(true),
                Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => Ok(false),
                Some(Err((_, RDKafkaErrorCode::InvalidReplicationFactor))) => {
                    Err(self.too_many_replicas(&t.name))
                }
                Some(Err((_, RDKafkaErrorCode::InvalidTopic))) => Err(self.name_taken(t)),
                Some(Err((_, code))) => {
                    // The broker's words are not passed on: name what was asked of it.
                    let what = match code {
                        RDKafkaErrorCode::InvalidConfig => format!(
                            "creating topic {} with the configs {} (one of them the target's brokers do not know or allow)",
                            t.name,
                            t.configs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
                        ),
                        _ => format!("creating topic {}", t.name),
                    };
                    Err(Error::from_kafka(Side::Target, what, rdkafka::error::KafkaError::AdminOp(*code)))
                }
                None => Err(Error::Internal(format!("no answer about creating topic {}", t.name))),
            })
            .collect()
    }

    /// The target refused a topic's replication factor: more replicas than it has brokers. The
    /// broker says only "invalid replication factor"; the fix is a number the target can give.
    fn too_many_replicas(&self, topic: &str) -> Error {
        let brokers = self.target_brokers(topic);
        let has = brokers.map_or(String::new(), |n| format!(": it has {n}"));
        let fix = brokers.map_or("a --replication-factor no larger than its broker count".to_string(), |n| {
            format!("--replication-factor {n} or less")
        });
        let asked = match self.replication_factor {
            Some(n) => format!("{n} replicas (--replication-factor {n})"),
            None => "its default.replication.factor".to_string(),
        };
        Error::Usage(format!(
            "target cluster refused to create topic {topic} with {asked}, more replicas than it has brokers{has}; give {fix}"
        ))
    }

    /// The target refused a topic's name. kmirror's names are valid ones, which leaves the
    /// broker's other refusal: Kafka takes '.' and '_' in topic names as one (their metric names
    /// would be one), and a topic named alike exists. The broker's words are not passed on to
    /// the client ("Invalid topic"); the fix depends on whose topic it is.
    fn name_taken(&self, t: &MissingTopic) -> Error {
        let alike = self.named_alike(&t.name).map_or_else(
            || {
                "a topic whose name differs from it only in '.' and '_' (or its name is not one Kafka takes)"
                    .to_string()
            },
            |other| format!("topic {other} is there"),
        );
        // kmirror's own topics have no source topic.
        let fix = match t.source_replicas {
            None => "another mirror's --name differs from this one only in '.' and '_': give this mirror another --name",
            Some(_) => "give the copy another name (--rename)",
        };
        Error::Usage(format!(
            "target cluster refused to create topic {}: {alike}, and Kafka takes '.' and '_' in topic names as one; {fix}",
            t.name
        ))
    }

    /// The target's topic whose name differs from `name` only in '.' and '_', if it lists one.
    fn named_alike(&self, name: &str) -> Option<String> {
        let folded = |n: &str| n.replace('.', "_");
        let metadata = self.target_metadata.fetch_metadata(None, ADMIN_TIMEOUT).ok()?;
        metadata
            .topics()
            .iter()
            .map(|t| t.name())
            .find(|other| *other != name && folded(other) == folded(name))
            .map(str::to_string)
    }

    /// How many brokers the target names (in the answer about `topic`, which need not exist).
    fn target_brokers(&self, topic: &str) -> Option<usize> {
        let metadata = self.target_metadata.fetch_metadata(Some(topic), ADMIN_TIMEOUT).ok()?;
        Some(metadata.brokers().len()).filter(|&n| n > 0)
    }

    /// Waits until every topic of `topics` whose outcome is still fine shows its partitions;
    /// the replication factor each one showed then.
    fn wait_all_visible<T>(
        &self,
        topics: &[&MissingTopic],
        outcomes: &mut [Result<T>],
    ) -> BTreeMap<String, usize> {
        let mut replicas = BTreeMap::new();
        let started = Instant::now();
        let mut waiting: Vec<usize> = (0..topics.len()).filter(|&i| outcomes[i].is_ok()).collect();
        while !waiting.is_empty() {
            let mut still = Vec::new();
            // One request per round for all: a first start of hundreds of topics waited on
            // them one metadata request after another.
            let names: Vec<&str> = waiting.iter().map(|&i| topics[i].name.as_str()).collect();
            let described = describe_topics(self.target_metadata.client(), &names, ADMIN_TIMEOUT);
            if let Ok(answers) = &described {
                for (topic, answer) in answers {
                    if let Described::Exists { replicas: n, .. } = answer {
                        replicas.insert(topic.clone(), *n);
                    }
                }
            }
            for i in waiting {
                match partitions_in(&described, &topics[i].name) {
                    Ok(Some(n)) if n >= topics[i].partitions => {}
                    Err(e) => outcomes[i] = Err(e),
                    _ if started.elapsed() > ADMIN_TIMEOUT => {
                        outcomes[i] = Err(Error::TopicNotVisible {
                            topic: topics[i].name.clone(),
                            seconds: ADMIN_TIMEOUT.as_secs(),
                        })
                    }
                    _ => still.push(i),
                }
            }
            waiting = still;
            if !waiting.is_empty() {
                // A metadata request is cheap, and a just-made topic is there within tens of ms.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        replicas
    }

    fn grow(&self, topic: &SourceTopic, from: i32) -> Result<()> {
        let total = usize::try_from(topic.partitions).unwrap_or(0);
        let request = NewPartitions::new(&topic.target, total);
        let results = block_on(self.target_admin.create_partitions([&request], &admin_options()))
            .map_err(Error::kafka(Side::Target, format!("adding partitions to {}", topic.target)))?;
        for result in results {
            if let Err((_, code)) = result {
                // Grown already, by another process of a coordinated mirror at the same refresh:
                // Kafka refuses a count a topic has.
                if code == rdkafka::types::RDKafkaErrorCode::InvalidPartitions {
                    let described =
                        describe_topics(self.target_metadata.client(), &[&topic.target], ADMIN_TIMEOUT);
                    if partitions_in(&described, &topic.target)
                        .ok()
                        .flatten()
                        .is_some_and(|n| n >= topic.partitions)
                    {
                        debug!(topic = %topic.target, to = topic.partitions, "target topic grown by another process");
                        return Ok(());
                    }
                }
                return Err(Error::from_kafka(
                    Side::Target,
                    format!("adding partitions to {} ({from} -> {})", topic.target, topic.partitions),
                    rdkafka::error::KafkaError::AdminOp(code),
                ));
            }
        }
        info!(topic = %topic.target, source = %topic.name, from, to = topic.partitions, "added partitions to target topic: the source topic grew");
        let grown = MissingTopic {
            name: topic.target.clone(),
            partitions: topic.partitions,
            configs: BTreeMap::new(),
            source_replicas: None,
        };
        let mut outcome = [Ok(())];
        self.wait_all_visible(&[&grown], &mut outcome);
        let [outcome] = outcome;
        outcome
    }

    /// Sets on the target topic the source's configs that differ there, and create times if
    /// the topic stamps append times (set on it, or its brokers' default): a target topic made
    /// by hand, or by an earlier kmirror that copied the source's setting, would otherwise give
    /// every copied record a new timestamp.
    fn sync_configs(
        &self,
        topic: &str,
        source: &BTreeMap<String, String>,
        target: TopicConfigs,
    ) -> Result<TopicChange> {
        let mut changes: Vec<(String, String)> = source
            .iter()
            .filter(|(k, v)| target.overrides.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let keeps_its_own = self.exclude_configs.as_ref().is_some_and(|e| e.is_match(TIMESTAMP_TYPE));
        if let Some(stamped) =
            target.timestamp_type.as_deref().filter(|&t| t != CREATE_TIME && !keeps_its_own)
        {
            warn!(
                topic,
                was = stamped,
                "the target topic stamps the records it appends with its own time: setting {TIMESTAMP_TYPE}={CREATE_TIME} so that copies keep the source's timestamps"
            );
            changes.push((TIMESTAMP_TYPE.into(), CREATE_TIME.into()));
        }
        if changes.is_empty() {
            return Ok(TopicChange::Unchanged);
        }
        set_topic_configs(&self.target_admin, topic, &changes, ADMIN_TIMEOUT).map_err(
            |not_set| match not_set.code.filter(|&code| is_refusal(code)) {
                Some(code) => Error::from_kafka(
                    Side::Target,
                    format!("setting configs of {topic}"),
                    rdkafka::error::KafkaError::AdminOp(code),
                ),
                None => Error::ConfigSync { topic: topic.to_string(), message: not_set.message },
            },
        )?;
        info!(topic, keys = ?changes.iter().map(|(k, _)| k).collect::<Vec<_>>(), "synced drifted topic configs to the target");
        Ok(TopicChange::ConfigsSynced)
    }

    /// One topic's configs: only what was set on the topic itself is copied, the brokers'
    /// defaults on the target stay the target's own.
    fn configs(&self, side: Side, topic: &str) -> Result<TopicConfigs> {
        let admin = match side {
            Side::Source => &self.source_admin,
            Side::Target => &self.target_admin,
        };
        configs_in(&topics_configs(admin, &[topic], ADMIN_TIMEOUT), side, topic)
    }

    /// kmirror's own topics of mirror `name` that the target does not have yet: the shards
    /// topic, whose partition count records the mirror's shard count (and which the coordination
    /// group subscribes to: shard K = partition K); the map topic, one partition per shard (no
    /// partition is ever written by two producers); the checkpoint topic. The map topic keeps its
    /// records for ever: translation needs all of them. The checkpoint topic is compacted (a
    /// group's last checkpoint is what counts).
    pub(crate) fn missing_own_topics(&self, name: &str, shards: u32) -> Result<Vec<MissingTopic>> {
        let shards = i32::try_from(shards).unwrap_or(i32::MAX);
        let kept = || {
            BTreeMap::from([("retention.ms".into(), "-1".into()), ("cleanup.policy".into(), "delete".into())])
        };
        let own = [
            // Compacted: each partition's last claims (keyed by shard, a failover's by their own
            // key) are what counts, and a local run writes its claims once, at its start,
            // however long it then runs.
            (
                crate::config::names::shards_topic(name),
                shards,
                BTreeMap::from([("cleanup.policy".into(), "compact".into())]),
            ),
            (crate::config::names::map_topic(name), shards, kept()),
            (
                crate::config::names::checkpoint_topic(name),
                1,
                crate::translate::checkpoint::CHECKPOINT_TOPIC_CONFIGS
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        ];
        // One request for the three: over a long link each is a round trip.
        let names: Vec<&str> = own.iter().map(|(topic, _, _)| topic.as_str()).collect();
        let described = describe_topics(self.target_metadata.client(), &names, ADMIN_TIMEOUT);
        let found: Vec<Result<Option<i32>>> =
            names.iter().map(|topic| partitions_in(&described, topic)).collect();
        let mut missing = Vec::new();
        for ((topic, partitions, configs), found) in own.into_iter().zip(found) {
            match found? {
                None => {
                    missing.push(MissingTopic { name: topic, partitions, configs, source_replicas: None })
                }
                Some(recorded) if recorded != shards && topic == crate::config::names::shards_topic(name) => {
                    return Err(Error::ShardsChanged { name: name.to_string(), recorded: recorded as u32 })
                }
                Some(_) => {}
            }
        }
        Ok(missing)
    }

    /// Refuses a run whose shard count is not the one the mirror's shards topic records (its
    /// partition count). Checked again after the topic is made: CreateTopics lets only one of
    /// two racing first starts win.
    pub(crate) fn check_shard_count(&self, name: &str, shards: u32) -> Result<()> {
        let topic = crate::config::names::shards_topic(name);
        match self.target_partitions(&topic)? {
            Some(recorded) if recorded != i32::try_from(shards).unwrap_or(i32::MAX) => {
                Err(Error::ShardsChanged { name: name.to_string(), recorded: recorded as u32 })
            }
            _ => Ok(()),
        }
    }

    /// The target topic's partition count, `None` if it does not exist.
    pub(crate) fn target_partitions(&self, topic: &str) -> Result<Option<i32>> {
        let metadata = self
            .target_metadata
            .fetch_metadata(Some(topic), ADMIN_TIMEOUT)
            .map_err(Error::kafka(Side::Target, format!("metadata of {topic}")))?;
        let answer = metadata.topics().iter().find(|t| t.name() == topic);
        // A topic the principal may not describe would otherwise look missing, and its making
        // be refused with a cause that hides the ACL actually lacking.
        if let Some(code) = answer.and_then(|t| t.error()).map(RDKafkaErrorCode::from) {
            if code == RDKafkaErrorCode::TopicAuthorizationFailed {
                return Err(Error::from_kafka(
                    Side::Target,
                    format!("describing topic {topic}"),
                    rdkafka::error::KafkaError::MetadataFetch(code),
                ));
            }
        }
        Ok(answer
            .filter(|t| t.error().is_none() && !t.partitions().is_empty())
            .map(|t| t.partitions().len() as i32))
    }
}

/// Says so where the target's default made a copy on fewer replicas than its source has (and
/// the target could hold): a DR copy that loses its records with one broker. `made`: each copy
/// made, with its source's replication factor; `replicas`: each copy's, as the target showed it.
fn warn_if_less_durable(made: &[(&str, i32)], replicas: &BTreeMap<String, usize>, brokers: Option<usize>) {
    for &(topic, source) in made {
        let could = brokers.map_or(source, |b| source.min(b as i32));
        match replicas.get(topic).map(|&n| i32::try_from(n).unwrap_or(i32::MAX)) {
            Some(copy) if copy < could => warn!(
                topic,
                replicas = copy,
                source_replicas = source,
                "the target topic was made with fewer replicas than its source has (the target's default.replication.factor): pass --replication-factor {could} to make copies as durable as their sources"
            ),
            _ => {}
        }
    }
}

/// `topic`'s configs out of one request's answer for many (see [`topics_configs`]).
fn configs_in(answer: &ConfigsAnswer, side: Side, topic: &str) -> Result<TopicConfigs> {
    let context = || format!("describing configs of {topic}");
    match answer {
        Err(e) => Err(Error::from_kafka(side, context(), e.clone())),
        Ok(answers) => match answers.get(topic) {
            Some(Ok(configs)) => Ok(configs.clone()),
            Some(Err(e)) => Err(Error::from_kafka(side, context(), e.clone())),
            None => Err(Error::Internal(format!("no answer {}", context()))),
        },
    }
}

/// The target topic's partition count out of one DescribeTopics answer for many, `None` if it
/// does not exist (or is still being made: no partitions yet). A topic the principal may not
/// describe is an error naming that: it would otherwise look missing, and its making be refused
/// with a cause that hides the ACL actually lacking.
fn partitions_in(answer: &DescribedAnswer, topic: &str) -> Result<Option<i32>> {
    let failed = |code| {
        Error::from_kafka(
            Side::Target,
            format!("describing topic {topic}"),
            rdkafka::error::KafkaError::MetadataFetch(code),
        )
    };
    match answer {
        Err((code, _)) => Err(failed(*code)),
        Ok(answers) => match answers.get(topic) {
            Some(Described::Exists { partitions, .. }) if *partitions > 0 => {
                Ok(Some(i32::try_from(*partitions).unwrap_or(i32::MAX)))
            }
            Some(Described::Exists { .. }) | Some(Described::Missing) => Ok(None),
            Some(Described::Unanswered(code)) => Err(failed(*code)),
            None => Err(Error::Internal(format!("no answer describing topic {topic}"))),
        },
    }
}

fn admin_options() -> AdminOptions {
    AdminOptions::new().request_timeout(Some(ADMIN_TIMEOUT)).operation_timeout(Some(ADMIN_TIMEOUT))
}

/// How many of `missing`, in order, each CreateTopics request takes: at most
/// [`PARTITIONS_PER_CREATE`] partitions and [`TOPICS_PER_REQUEST`] topics, but at least one topic.
fn request_sizes(missing: &[&MissingTopic]) -> Vec<usize> {
    let mut sizes = Vec::new();
    let (mut topics, mut partitions) = (0usize, 0i64);
    for topic in missing {
        let more = i64::from(topic.partitions.max(0));
        if topics > 0 && (partitions + more > PARTITIONS_PER_CREATE || topics == TOPICS_PER_REQUEST) {
            sizes.push(topics);
            (topics, partitions) = (0, 0);
        }
        topics += 1;
        partitions += more;
    }
    if topics > 0 {
        sizes.push(topics);
    }
    sizes
}

/// The topic a CreateTopics answer is about.
fn answer_name(answer: &std::result::Result<String, (String, RDKafkaErrorCode)>) -> &str {
    match answer {
        Ok(name) | Err((name, _)) => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn missing(partitions: &[i32]) -> Vec<MissingTopic> {
        partitions
            .iter()
            .enumerate()
            .map(|(i, &p)| MissingTopic {
                name: format!("t{i}"),
                partitions: p,
                configs: BTreeMap::new(),
                source_replicas: None,
            })
            .collect()
    }

    #[test]
    fn no_create_request_asks_for_more_partitions_than_kafka_takes() {
        // 200 topics of 60 partitions: 12 000 in all, which Kafka refuses in one request.
        let topics = missing(&[60; 200]);
        let refs: Vec<&MissingTopic> = topics.iter().collect();
        assert_eq!(request_sizes(&refs), vec![150, 50]);
        // A topic above the bound goes alone; nothing is lost or asked twice.
        let topics = missing(&[1, 20_000, 3, 4]);
        let refs: Vec<&MissingTopic> = topics.iter().collect();
        assert_eq!(request_sizes(&refs), vec![1, 1, 2]);
        let topics = missing(&[1; 1_200]);
        let refs: Vec<&MissingTopic> = topics.iter().collect();
        assert_eq!(request_sizes(&refs), vec![500, 500, 200]);
        assert!(request_sizes(&[]).is_empty());
    }
}
