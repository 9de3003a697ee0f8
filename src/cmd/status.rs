//! `kmirror status`: where a mirror stands, read from the clusters alone (no state dir, no
//! running mirror needed). The committed positions come from the shadow groups on the target;
//! the source ends (and so the lag) need the source, and are reported unknown without it.
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use kmirror_state::{MapRecord, TopicPartition};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde::Serialize;
use tracing::warn;

use crate::cmd::cli::{StatusArgs, StatusFormat};
use crate::config::check_name;
use crate::config::names::{self, shard_of};
use crate::error::{Error, Result, Side};
use crate::kafka::client::CreateForRole;
use crate::kafka::connect::reachable;
use crate::kafka::errors::{unreachable, ErrorRecorder};
use crate::kafka::log_filter::clusters_reached;
use crate::kafka::topic_reader::read_last;
use crate::kafka::watermarks::committed_ends;
use crate::mirror::failover_guard::Failover;
use crate::mirror::owners::{Claims, ShardOwner};
use crate::mirror::plan::Route;
use crate::mirror::positions::committed_positions;
use crate::ops::table::aligned;
use crate::ops::telemetry::now_ms;
use crate::translate::checkpoint::latest_checkpoints;

/// How many of the latest map records of each shard are read to find last commit times.
const MAP_TAIL: i64 = 5_000;

/// One mirrored partition. Field names are part of the JSON output and stay stable.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct PartitionStatus {
    /// The source topic.
    pub(crate) topic: String,
    pub(crate) partition: i32,
    /// The topic it is mirrored to (another name with --rename).
    pub(crate) target_topic: String,
    pub(crate) shard: u32,
    /// Next source offset to mirror, as committed on the target (None: never committed).
    pub(crate) committed: Option<i64>,
    /// Source end offset (None: source unknown).
    pub(crate) source_end: Option<i64>,
    pub(crate) lag_records: Option<i64>,
    /// Age of the oldest source record not yet mirrored (0 when caught up).
    pub(crate) lag_seconds: Option<f64>,
    /// When the mirror last committed this partition, ms since the Unix epoch (None: not among
    /// the shard's latest commits).
    pub(crate) last_commit_ms: Option<i64>,
}

/// One checkpointed source consumer group.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct GroupStatus {
    pub(crate) group: String,
    pub(crate) taken_at_ms: i64,
    pub(crate) age_seconds: f64,
    pub(crate) partitions: usize,
}

/// A shard's claim, and whether its process still runs (`None`: it ran on another host).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct OwnerStatus {
    #[serde(flatten)]
    pub(crate) claim: ShardOwner,
    pub(crate) running: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Status {
    pub(crate) name: String,
    pub(crate) shards: u32,
    /// Which process holds each shard, by the claims in force (none after a clean stop).
    pub(crate) owners: Vec<OwnerStatus>,
    /// The claims of a `kmirror failover --execute` still in force: a start refuses without
    /// `--after-failover` (empty: none).
    pub(crate) failed_over: Vec<ShardOwner>,
    /// "reachable", or why the source lag is unknown.
    pub(crate) source: String,
    pub(crate) partitions: Vec<PartitionStatus>,
    pub(crate) groups: Vec<GroupStatus>,
}

pub(crate) fn run(args: &StatusArgs) -> Result<String> {
    let status = collect(args)?;
    Ok(match args.format {
        StatusFormat::Json => serde_json::to_string_pretty(&status).unwrap_or_default() + "\n",
        StatusFormat::Table => table(&status),
    })
}

pub(crate) fn collect(args: &StatusArgs) -> Result<Status> {
    check_name(&args.mirror.name)?;
    let timeout = Duration::from_secs(args.mirror.connect_timeout.max(1));
    let (target, servers) = args.mirror.clients.client_config(Side::Target, args.mirror.target.as_ref())?;
    let metadata_client: BaseConsumer<ErrorRecorder> = target
        .create_for_role_with_context(ErrorRecorder::default())
        .map_err(Error::kafka(Side::Target, "creating a client"))?;
    let metadata = metadata_client
        .fetch_metadata(None, timeout)
        .map_err(|e| unreachable(Side::Target, &servers, &metadata_client, e))?;
    clusters_reached();
    let shards_topic = names::shards_topic(&args.mirror.name);
    let shards = metadata
        .topics()
        .iter()
        .find(|t| t.name() == shards_topic)
        .map(|t| t.partitions().len() as u32)
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            Error::Usage(format!(
                "no mirror named {} on the target at {servers}: topic {shards_topic} does not exist (check --name and --target)",
                args.mirror.name
            ))
        })?;
    // Target topics may be renamed: the map records name both sides.
    let (last_commits, source_of) = recent_commits(&target, &args.mirror.name, shards)?;
    let candidates: Vec<Route> = metadata
        .topics()
        .iter()
        .filter(|t| !t.name().starts_with("__") && !t.name().starts_with(names::OWN_PREFIX))
        .flat_map(|t| {
            let source = source_of.get(t.name()).cloned().unwrap_or_else(|| t.name().to_string());
            (0..t.partitions().len() as i32).map(move |p| Route {
                source: TopicPartition::new(&source, p),
                target: TopicPartition::new(t.name(), p),
            })
        })
        .collect();
    let committed = committed_positions(&target, &args.mirror.name, shards, &candidates, timeout)?;
    let mirrored: BTreeSet<&str> =
        committed.iter().filter(|(_, o)| o.is_some()).map(|(tp, _)| tp.topic.as_str()).collect();
    let routes: Vec<&Route> =
        candidates.iter().filter(|r| mirrored.contains(r.source.topic.as_str())).collect();
    let partitions: Vec<TopicPartition> = routes.iter().map(|r| r.source.clone()).collect();

    let (source_state, ends, oldest) = source_side(args, &partitions, &committed, timeout);
    let partitions = routes
        .into_iter()
        .map(|route| {
            let tp = route.source.clone();
            let position = committed.get(&tp).copied().flatten();
            let end = ends.as_ref().and_then(|e| e.get(&tp).copied());
            let lag = end.map(|e| (e - position.unwrap_or(0)).max(0));
            let lag_seconds = match lag {
                Some(0) => Some(0.0),
                Some(_) => oldest.get(&tp).map(|ts| ((now_ms() - ts).max(0)) as f64 / 1000.0),
                None => None,
            };
            PartitionStatus {
                target_topic: route.target.topic.clone(),
                shard: shard_of(&tp.topic, tp.partition, shards),
                committed: position,
                source_end: end,
                lag_records: lag,
                lag_seconds,
                last_commit_ms: last_commits.get(&tp).copied(),
                topic: tp.topic,
                partition: tp.partition,
            }
        })
        .collect();
    let checkpoint_topic = names::checkpoint_topic(&args.mirror.name);
    let has_checkpoints = metadata.topics().iter().any(|t| t.name() == checkpoint_topic);
    let groups = match has_checkpoints {
        // The positions above stand without them: an unreadable checkpoint is said, not fatal.
        true => match latest_checkpoints(
            &target,
            &checkpoint_topic,
            &names::status_reader_group(&args.mirror.name),
        ) {
            Ok(latest) => latest
                .into_values()
                .map(|c| GroupStatus {
                    age_seconds: (now_ms() - c.taken_at_ms).max(0) as f64 / 1000.0,
                    partitions: c.offsets.len(),
                    group: c.group,
                    taken_at_ms: c.taken_at_ms,
                })
                .collect(),
            Err(e) => {
                warn!("{e}; the groups' checkpoints are not shown");
                Vec::new()
            }
        },
        false => Vec::new(),
    };
    let claims =
        Claims::read(&target, &args.mirror.name, 0..shards, Duration::from_secs(10)).unwrap_or_else(|e| {
            warn!("{e}; shard owners unknown");
            Claims::default()
        });
    let owners =
        claims.owners().into_iter().map(|claim| OwnerStatus { running: claim.running(), claim }).collect();
    let failed_over = claims.failed_over();
    Ok(Status {
        name: args.mirror.name.clone(),
        shards,
        owners,
        failed_over,
        source: source_state,
        partitions,
        groups,
    })
}

type Positions = HashMap<TopicPartition, Option<i64>>;

/// The source ends and, for lagging partitions, the time of the oldest unmirrored record; or
/// why they are unknown.
fn source_side(
    args: &StatusArgs,
    partitions: &[TopicPartition],
    committed: &Positions,
    timeout: Duration,
) -> (String, Option<HashMap<TopicPartition, i64>>, HashMap<TopicPartition, i64>) {
    let Some(flag) = args.source.as_ref() else {
        return ("unknown: no --source given".into(), None, HashMap::new());
    };
    let answer =
        args.mirror.clients.client_config(Side::Source, Some(flag)).and_then(|(mut config, servers)| {
            reachable(&config, Side::Source, &servers, timeout)?;
            // Under the mirror's prefix, which the ACLs a mirror needs cover: the reader of the
            // first records stops at a refused group coordinator lookup.
            config.set("group.id", names::status_reader_group(&args.mirror.name));
            let ends = committed_ends(&config, partitions, Duration::from_secs(10))
                .map_err(Error::kafka(Side::Source, "reading the source ends"))?;
            let lagging: Vec<(TopicPartition, i64)> = partitions
                .iter()
                .filter_map(|tp| {
                    let from = committed.get(tp).copied().flatten().unwrap_or(0);
                    ends.get(tp).is_some_and(|&e| e > from).then(|| (tp.clone(), from))
                })
                .collect();
            let oldest = first_record_times(&config, &lagging, Duration::from_secs(10))?;
            Ok((ends, oldest))
        });
    match answer {
        Ok((ends, oldest)) => ("reachable".into(), Some(ends), oldest),
        Err(e) => {
            warn!("{e}; the source lag is unknown");
            (format!("unknown: {e}"), None, HashMap::new())
        }
    }
}

/// The timestamp of the first committed record at or after each offset.
fn first_record_times(
    source: &ClientConfig,
    from: &[(TopicPartition, i64)],
    timeout: Duration,
) -> Result<HashMap<TopicPartition, i64>> {
    let mut out = HashMap::new();
    if from.is_empty() {
        return Ok(out);
    }
    let consumer: BaseConsumer = source
        .clone()
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create_for_role()
        .map_err(Error::kafka(Side::Source, "creating a reader"))?;
    let mut tpl = TopicPartitionList::new();
    for (tp, offset) in from {
        tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*offset))
            .map_err(Error::kafka(Side::Source, "assigning"))?;
    }
    consumer.assign(&tpl).map_err(Error::kafka(Side::Source, "assigning"))?;
    let started = Instant::now();
    while out.len() < from.len() && started.elapsed() < timeout {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let tp = TopicPartition::new(m.topic(), m.partition());
            if let (Some(ts), false) = (m.timestamp().to_millis(), out.contains_key(&tp)) {
                out.insert(tp, ts);
            }
        }
    }
    Ok(out)
}

/// When each source partition was last committed, and the source topic of each target topic,
/// from the latest map records of each shard (a map record is written inside the transaction it
/// describes, just before its commit, and names both sides).
fn recent_commits(
    target: &ClientConfig,
    name: &str,
    shards: u32,
) -> Result<(HashMap<TopicPartition, i64>, HashMap<String, String>)> {
    let topic = names::map_topic(name);
    let (mut times, mut source_of) = (HashMap::new(), HashMap::new());
    let group = names::status_reader_group(name);
    read_last(target, &topic, &group, (0..shards as i32, MAP_TAIL), Duration::from_secs(30), |record| {
        if let Ok(map) = MapRecord::decode(record.value) {
            source_of.insert(map.target.topic.clone(), map.source.topic.clone());
            if let Some(ts) = record.timestamp_ms {
                times.insert(map.source, ts);
            }
        }
    })?;
    Ok((times, source_of))
}

fn table(status: &Status) -> String {
    let opt = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    let mut out = format!("mirror {} ({} shards), source: {}\n\n", status.name, status.shards, status.source);
    let mut rows: Vec<Vec<String>> = vec![[
        "topic",
        "target_topic",
        "partition",
        "shard",
        "committed",
        "source_end",
        "lag_records",
        "lag_seconds",
        "last_commit",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()];
    let now = now_ms();
    for p in &status.partitions {
        rows.push(vec![
            p.topic.clone(),
            p.target_topic.clone(),
            p.partition.to_string(),
            p.shard.to_string(),
            opt(p.committed),
            opt(p.source_end),
            opt(p.lag_records),
            p.lag_seconds.map_or_else(|| "-".into(), |s| format!("{s:.1}")),
            p.last_commit_ms
                .map_or_else(|| "-".into(), |ms| format!("{:.1} s ago", (now - ms) as f64 / 1000.0)),
        ]);
    }
    out += &aligned(&rows);
    if !status.owners.is_empty() {
        out += "\n";
        let mut rows =
            vec![crate::ops::table::header(&["shard", "owner_host", "owner_pid", "since", "running"])];
        for o in &status.owners {
            let c = &o.claim;
            let since = format!("{:.1} s ago", (now_ms() - c.at_ms) as f64 / 1000.0);
            let running = match o.running {
                Some(true) => "yes",
                // Killed, or lost with its host: the next run's claim replaces it.
                Some(false) => "no (gone)",
                None => "-",
            };
            rows.push(vec![c.shard.to_string(), c.host.clone(), c.pid.to_string(), since, running.into()]);
        }
        out += &aligned(&rows);
    }
    if let Some(f) = Failover::of(&status.failed_over) {
        out += &format!(
            "\nfailed over: {} took shards {} ({} ago); a start refuses without --after-failover\n",
            f.by, f.shards, f.ago
        );
    }
    if !status.groups.is_empty() {
        out += "\n";
        let mut rows: Vec<Vec<String>> =
            vec![["group", "partitions", "checkpoint_age"].iter().map(|s| s.to_string()).collect()];
        for g in &status.groups {
            rows.push(vec![g.group.clone(), g.partitions.to_string(), format!("{:.1} s", g.age_seconds)]);
        }
        out += &aligned(&rows);
    }
    out
}
