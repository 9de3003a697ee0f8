//! Target topics exist, with the source's partition count and topic configs, before any record
//! is written to them; configs that drift on the source later are synced.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_executor::block_on;
use rdkafka::admin::{
    AdminClient, AdminOptions, ConfigSource, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use tracing::info;

use crate::error::{Error, Result, Side};
use crate::kafka::client::CreateForRole;
use crate::kafka::incremental_alter::set_topic_configs;
use crate::mirror::plan::SourceTopic;

const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

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

pub(crate) struct TopicSync {
    source_admin: AdminClient<DefaultClientContext>,
    target_admin: AdminClient<DefaultClientContext>,
    target_metadata: BaseConsumer,
    replication_factor: Option<i32>,
}

impl TopicSync {
    pub(crate) fn new(
        source: rdkafka::ClientConfig,
        target: rdkafka::ClientConfig,
        replication_factor: Option<i32>,
    ) -> Result<Self> {
        Ok(Self {
            source_admin: source
                .create_for_role()
                .map_err(Error::kafka(Side::Source, "creating admin client"))?,
            target_admin: target
                .create_for_role()
                .map_err(Error::kafka(Side::Target, "creating admin client"))?,
            target_metadata: target
                .create_for_role()
                .map_err(Error::kafka(Side::Target, "creating metadata client"))?,
            replication_factor,
        })
    }

    /// Makes sure the target topic exists with at least the source's partitions and the
    /// source's topic configs. `mirrored` is how many partitions of this topic the mirror
    /// already copies: a target that has exactly those gets the source's new ones added (the
    /// source grew); any other shortfall is refused, since it is not the mirror's topic.
    pub(crate) fn ensure(&self, topic: &SourceTopic, mirrored: Option<i32>) -> Result<TopicChange> {
        let source_configs = self.explicit_configs(Side::Source, &topic.name)?;
        match self.target_partitions(&topic.target)? {
            // Made again, it would take the next records at offset 0 while the map and the
            // shadow group say otherwise.
            None if mirrored.is_some() => {
                Err(Error::TargetReplaced { topic: topic.target.clone(), how: "deleted".into() })
            }
            None => self.create(topic, &source_configs).map(|()| TopicChange::Created),
            Some(n) if n < topic.partitions && mirrored == Some(n) => {
                self.grow(topic, n)?;
                self.sync_configs(&topic.target, &source_configs)?;
                Ok(TopicChange::Grown)
            }
            Some(n) if n < topic.partitions => Err(Error::TooFewPartitions {
                topic: topic.target.clone(),
                source_topic: topic.name.clone(),
                source_partitions: topic.partitions,
                target_partitions: n,
            }),
            Some(_) => self.sync_configs(&topic.target, &source_configs),
        }
    }

    fn grow(&self, topic: &SourceTopic, from: i32) -> Result<()> {
        let total = usize::try_from(topic.partitions).unwrap_or(0);
        let request = NewPartitions::new(&topic.target, total);
        let results = block_on(self.target_admin.create_partitions([&request], &admin_options()))
            .map_err(Error::kafka(Side::Target, format!("adding partitions to {}", topic.target)))?;
        for result in results {
            if let Err((_, code)) = result {
                return Err(Error::Kafka {
                    side: Side::Target,
                    context: format!(
                        "adding partitions to {} ({from} -> {})",
                        topic.target, topic.partitions
                    ),
                    cause: rdkafka::error::KafkaError::AdminOp(code),
                });
            }
        }
        info!(topic = %topic.target, source = %topic.name, from, to = topic.partitions, "added partitions to target topic: the source topic grew");
        self.wait_visible(&topic.target, topic.partitions)
    }

    fn create(&self, topic: &SourceTopic, configs: &BTreeMap<String, String>) -> Result<()> {
        let replication = TopicReplication::Fixed(self.replication_factor.unwrap_or(-1));
        let mut new_topic = NewTopic::new(&topic.target, topic.partitions, replication);
        for (key, value) in configs {
            new_topic = new_topic.set(key, value);
        }
        self.create_if_absent(&new_topic, &topic.target)?;
        info!(topic = %topic.target, source = %topic.name, partitions = topic.partitions, configs = configs.len(), "created target topic");
        self.wait_visible(&topic.target, topic.partitions)
    }

    /// Creates a topic; one that already exists (a racing creator won) is not an error.
    fn create_if_absent(&self, new_topic: &NewTopic<'_>, name: &str) -> Result<()> {
        let results = block_on(self.target_admin.create_topics([new_topic], &admin_options()))
            .map_err(Error::kafka(Side::Target, format!("creating topic {name}")))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(Error::Kafka {
                        side: Side::Target,
                        context: format!("creating topic {name}"),
                        cause: rdkafka::error::KafkaError::AdminOp(code),
                    })
                }
            }
        }
        Ok(())
    }

    fn wait_visible(&self, topic: &str, partitions: i32) -> Result<()> {
        let started = Instant::now();
        loop {
            match self.target_partitions(topic)? {
                Some(n) if n >= partitions => return Ok(()),
                _ if started.elapsed() > ADMIN_TIMEOUT => {
                    return Err(Error::TopicNotVisible {
                        topic: topic.to_string(),
                        seconds: ADMIN_TIMEOUT.as_secs(),
                    })
                }
                // A metadata request is cheap, and a just-made topic is there within tens of ms.
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    fn sync_configs(&self, topic: &str, source: &BTreeMap<String, String>) -> Result<TopicChange> {
        if source.is_empty() {
            return Ok(TopicChange::Unchanged);
        }
        let target = self.explicit_configs(Side::Target, topic)?;
        let changes: Vec<(String, String)> = source
            .iter()
            .filter(|(k, v)| target.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if changes.is_empty() {
            return Ok(TopicChange::Unchanged);
        }
        set_topic_configs(&self.target_admin, topic, &changes, ADMIN_TIMEOUT)
            .map_err(|message| Error::ConfigSync { topic: topic.to_string(), message })?;
        info!(topic, keys = ?changes.iter().map(|(k, _)| k).collect::<Vec<_>>(), "synced drifted topic configs to the target");
        Ok(TopicChange::ConfigsSynced)
    }

    /// Configs set on the topic itself (not broker or built-in defaults).
    fn explicit_configs(&self, side: Side, topic: &str) -> Result<BTreeMap<String, String>> {
        let admin = match side {
            Side::Source => &self.source_admin,
            Side::Target => &self.target_admin,
        };
        let results = block_on(admin.describe_configs([&ResourceSpecifier::Topic(topic)], &admin_options()))
            .map_err(Error::kafka(side, format!("describing configs of {topic}")))?;
        let mut out = BTreeMap::new();
        for result in results {
            let resource = result.map_err(|code| Error::Kafka {
                side,
                context: format!("describing configs of {topic}"),
                cause: rdkafka::error::KafkaError::AdminOp(code),
            })?;
            // Only what was set on the topic itself is copied: the brokers' defaults on the
            // target stay the target's own.
            for entry in resource.entries {
                if matches!(entry.source, ConfigSource::DynamicTopic) && !entry.is_read_only {
                    if let Some(value) = entry.value {
                        out.insert(entry.name, value);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Records the mirror's shard count as the partition count of `kmirror.shards.NAME` on the
    /// target, and refuses a run with another count. The topic is also what the coordination
    /// group subscribes to (shard K = partition K), and CreateTopics lets only one of two racing
    /// first starts win.
    pub(crate) fn ensure_shard_topic(&self, name: &str, shards: u32) -> Result<()> {
        let topic = crate::config::names::shards_topic(name);
        let wanted = i32::try_from(shards).unwrap_or(i32::MAX);
        if self.target_partitions(&topic)?.is_none() {
            let new_topic =
                NewTopic::new(&topic, wanted, TopicReplication::Fixed(self.replication_factor.unwrap_or(-1)));
            self.create_if_absent(&new_topic, &topic)?;
            self.wait_visible(&topic, 1)?;
        }
        match self.target_partitions(&topic)? {
            Some(recorded) if recorded != wanted => {
                Err(Error::ShardsChanged { name: name.to_string(), recorded: recorded as u32 })
            }
            _ => Ok(()),
        }
    }

    /// Creates one of kmirror's own topics (map, checkpoints) if missing, with unlimited
    /// retention: they are small and translation needs all of them.
    pub(crate) fn ensure_own_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        if self.target_partitions(topic)?.is_some() {
            return Ok(());
        }
        let replication = TopicReplication::Fixed(self.replication_factor.unwrap_or(-1));
        let new_topic = NewTopic::new(topic, partitions, replication)
            .set("retention.ms", "-1")
            .set("cleanup.policy", "delete");
        self.create_if_absent(&new_topic, topic)?;
        self.wait_visible(topic, partitions)
    }

    /// The target topic's partition count, `None` if it does not exist.
    pub(crate) fn target_partitions(&self, topic: &str) -> Result<Option<i32>> {
        let metadata = self
            .target_metadata
            .fetch_metadata(Some(topic), ADMIN_TIMEOUT)
            .map_err(Error::kafka(Side::Target, format!("metadata of {topic}")))?;
        Ok(metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
            .map(|t| t.partitions().len() as i32))
    }
}

fn admin_options() -> AdminOptions {
    AdminOptions::new().request_timeout(Some(ADMIN_TIMEOUT)).operation_timeout(Some(ADMIN_TIMEOUT))
}
