//! Which process owns which shard of a coordinated mirror. DescribeGroups tells a group's
//! members only for the classic protocol and only while the coordinator answers, so each process
//! records it itself, for `status` to read even with the group gone: when
//! it takes or releases shard K it writes a small record to partition K of
//! `kmirror.shards.NAME`, and the last record of each partition names the current owner. A
//! process that dies writes nothing; the next owner's record replaces its claim.
use std::time::Duration;

use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

use crate::config::names::shards_topic;
use crate::error::{Error, Result, Side};
use crate::kafka::client::CreateForRole;
use crate::kafka::topic_reader::read_to_end;
use crate::kafka::watermarks::committed_ends;
use crate::ops::telemetry::now_ms;

/// One shard's owner. Field names are part of `kmirror status --format json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ShardOwner {
    pub(crate) shard: u32,
    pub(crate) host: String,
    pub(crate) pid: u32,
    /// "owned" or "released".
    pub(crate) state: String,
    pub(crate) at_ms: i64,
}

/// Writes ownership records for one process.
pub(crate) struct OwnershipLog {
    producer: ThreadedProducer<DefaultProducerContext>,
    topic: String,
    host: String,
}

impl OwnershipLog {
    pub(crate) fn new(target: &ClientConfig, name: &str) -> Result<Self> {
        let producer = target
            .clone()
            .create_for_role()
            .map_err(Error::kafka(Side::Target, "creating the ownership producer"))?;
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "unknown".into());
        Ok(Self { producer, topic: shards_topic(name), host })
    }

    /// Records that this process took (`owned`) or gave up (`released`) a shard. Best effort:
    /// it only informs `kmirror status`.
    pub(crate) fn record(&self, shard: u32, state: &str) {
        let owner = ShardOwner {
            shard,
            host: self.host.clone(),
            pid: std::process::id(),
            state: state.to_string(),
            at_ms: now_ms(),
        };
        let value = serde_json::to_string(&owner).unwrap_or_default();
        let key = shard.to_string();
        let record = BaseRecord::to(&self.topic).partition(shard as i32).key(&key).payload(&value);
        if let Err((e, _)) = self.producer.send(record) {
            tracing::warn!(shard, error = %e, "could not record shard ownership");
        }
    }

    pub(crate) fn flush(&self) {
        let _ = self.producer.flush(Duration::from_secs(5));
    }
}

/// The current owner of every shard that has one, from the last record of each partition.
pub(crate) fn shard_owners(target: &ClientConfig, name: &str, shards: u32) -> Result<Vec<ShardOwner>> {
    let topic = shards_topic(name);
    let partitions: Vec<kmirror_state::TopicPartition> =
        (0..shards as i32).map(|p| kmirror_state::TopicPartition::new(&topic, p)).collect();
    let ends = committed_ends(target, &partitions, Duration::from_secs(10))
        .map_err(Error::kafka(Side::Target, format!("reading the end of {topic}")))?;
    let mut owners = Vec::new();
    for tp in &partitions {
        let Some(&end) = ends.get(tp) else { continue };
        if end == 0 {
            continue;
        }
        let mut last: Option<ShardOwner> = None;
        let group = crate::config::names::status_reader_group(name);
        read_to_end(target, &topic, tp.partition, &group, (end - 16).max(0), |_, _, value| {
            if let Ok(owner) = serde_json::from_slice::<ShardOwner>(value) {
                last = Some(owner);
            }
            Ok(())
        })?;
        owners.extend(last.filter(|o| o.state == "owned"));
    }
    Ok(owners)
}
