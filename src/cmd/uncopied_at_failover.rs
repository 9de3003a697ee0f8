//! What a failover found of the partitions the mirror has positions in but no copies of (a
//! topic still empty at the failover, a dead-letter topic say), kept where Kafka keeps it: in
//! the mirror's compacted shards topic, under a key of each shard's own.
//!
//! The mirror's shadow groups say the same while their offsets live, but once the mirror stops
//! Kafka expires them after the target's `offsets.retention.minutes` (7 days by default). A DR
//! period can outlast that, and `failback` would then leave these topics out of the way home
//! without a word: the writes made into them on DR would never reach the source.
use std::collections::BTreeMap;
use std::time::Duration;

use kmirror_state::TopicPartition;
use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

use crate::config::names::{shards_topic, status_reader_group};
use crate::error::{Error, Result};
use crate::kafka::topic_reader::TailReader;
use crate::mirror::owners::OwnershipLog;

/// How many of each shard partition's last records are read for the failover's record: it is
/// written after the failover's own claims, and until a run resumes only the processes the
/// failover stopped write there.
const TAIL: i64 = 64;

/// A partition mirror `name` has a position in: its source and target names, and the source
/// position the mirror stood at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MirroredPosition {
    pub(crate) source_topic: String,
    pub(crate) target_topic: String,
    pub(crate) partition: i32,
    pub(crate) position: i64,
}

impl MirroredPosition {
    pub(crate) fn source(&self) -> TopicPartition {
        TopicPartition::new(&self.source_topic, self.partition)
    }

    pub(crate) fn target(&self) -> TopicPartition {
        TopicPartition::new(&self.target_topic, self.partition)
    }
}

fn key(shard: u32) -> String {
    format!("{shard}.uncopied-at-failover")
}

/// Records `uncopied` (by shard) for every one of `shards`, an empty list too: each failover's
/// record replaces the one before, which may name partitions copied since.
pub(crate) fn record(
    target: &ClientConfig,
    name: &str,
    shards: u32,
    mut uncopied: BTreeMap<u32, Vec<MirroredPosition>>,
) -> Result<()> {
    let log = OwnershipLog::new(target, name)?;
    for shard in 0..shards {
        let list = uncopied.remove(&shard).unwrap_or_default();
        let value = serde_json::to_vec(&list)
            .map_err(|e| Error::State(format!("encoding the partitions without copies: {e}")))?;
        log.write(shard, &key(shard), &value);
    }
    log.confirm(Duration::from_secs(30))
}

/// The partitions the last failover of mirror `name` recorded (none before any failover, or of
/// a kmirror that did not record them).
pub(crate) fn read(target: &ClientConfig, name: &str, shards: u32) -> Result<Vec<MirroredPosition>> {
    let topic = shards_topic(name);
    let reader = TailReader::new(target, &status_reader_group(name), &topic)?;
    // Per shard, its last record: an earlier one that cannot be read no longer counts.
    let mut last: BTreeMap<i32, std::result::Result<Vec<MirroredPosition>, String>> = BTreeMap::new();
    let tails = (0..i32::try_from(shards).unwrap_or(i32::MAX), TAIL);
    reader.read_last(&topic, tails, Duration::from_secs(30), |record| {
        let shard = u32::try_from(record.partition).unwrap_or(u32::MAX);
        if record.key == key(shard).as_bytes() {
            last.insert(record.partition, serde_json::from_slice(record.value).map_err(|e| e.to_string()));
        }
    })?;
    let mut uncopied = Vec::new();
    for (partition, list) in last {
        uncopied.extend(list.map_err(|e| {
            Error::State(format!(
                "{topic} partition {partition}: the failover's record of partitions without copies is unreadable ({e})"
            ))
        })?);
    }
    Ok(uncopied)
}
