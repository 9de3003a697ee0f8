//! What a failover found of the partitions the mirror has positions in but no copies of (a
//! topic still empty at the failover, a dead-letter topic say), kept where Kafka keeps it: in
//! the mirror's compacted shards topic, under a key of each shard's own.
//!
//! The mirror's shadow groups say the same while their offsets live, but once the mirror stops
//! Kafka expires them after the target's `offsets.retention.minutes` (7 days by default). A DR
//! period can outlast that, and `failback` would then leave these topics out of the way home
//! without a word: the writes made into them on DR would never reach the source.
//!
//! A shard's record counts only while the failover that wrote it is in force on the shard (its
//! claim, by the same process, not ended by a run with `--after-failover`): one left by an
//! earlier failover, resumed since, says nothing of today's copies.
use std::collections::BTreeMap;
use std::time::Duration;

use kmirror_state::TopicPartition;
use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

use crate::config::names::shards_topic;
use crate::error::{Error, Result};
use crate::mirror::owners::{this_instance, Claims, OwnershipLog};

/// How many of each shard partition's last records are read for the failover's record: it is
/// written after the failover's own claims, and until a run resumes only the processes the
/// failover stopped write there.
const TAIL: i64 = 64;
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A partition mirror `name` has a position in: its source and target names, and the source
/// position the mirror stood at.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// One shard's record, as stored (JSON: its names are stored state).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Recorded {
    /// The failover's process: its claims carry the same.
    instance: String,
    topics: Vec<RecordedTopic>,
    /// The IDs of the target topics whose first partition falls to this shard (a placement
    /// only: each ID once across the shards), as the target gave them at the failover (the
    /// first one's, where it was run again): a DR topic deleted and made again in the DR period
    /// holds DR writes only, which failback must bring home from its start.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    target_ids: BTreeMap<String, String>,
}

/// A topic's partitions, each with its position: names once per topic, so that a shard of
/// some thousands of empty partitions stays well under a record's size limit.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct RecordedTopic {
    source_topic: String,
    target_topic: String,
    partitions: Vec<(i32, i64)>,
}

impl Recorded {
    fn of(instance: &str, positions: Vec<MirroredPosition>) -> Self {
        let mut topics: BTreeMap<(String, String), Vec<(i32, i64)>> = BTreeMap::new();
        for p in positions {
            topics.entry((p.source_topic, p.target_topic)).or_default().push((p.partition, p.position));
        }
        let topics = topics
            .into_iter()
            .map(|((source_topic, target_topic), partitions)| RecordedTopic {
                source_topic,
                target_topic,
                partitions,
            })
            .collect();
        Self { instance: instance.to_string(), topics, target_ids: BTreeMap::new() }
    }

    fn positions(self) -> impl Iterator<Item = MirroredPosition> {
        self.topics.into_iter().flat_map(|t| {
            t.partitions.into_iter().map(move |(partition, position)| MirroredPosition {
                source_topic: t.source_topic.clone(),
                target_topic: t.target_topic.clone(),
                partition,
                position,
            })
        })
    }
}

fn key(shard: u32) -> String {
    format!("{shard}.uncopied-at-failover")
}

/// Records `uncopied` and `target_ids` (by shard) for every one of `shards`, as this process's
/// failover: an empty list too, so that no shard keeps an earlier failover's.
pub(crate) fn record(
    target: &ClientConfig,
    name: &str,
    shards: u32,
    mut uncopied: BTreeMap<u32, Vec<MirroredPosition>>,
    mut target_ids: BTreeMap<u32, BTreeMap<String, String>>,
) -> Result<()> {
    let log = OwnershipLog::new(target, name)?;
    for shard in 0..shards {
        let mut recorded = Recorded::of(this_instance(), uncopied.remove(&shard).unwrap_or_default());
        recorded.target_ids = target_ids.remove(&shard).unwrap_or_default();
        let value = serde_json::to_vec(&recorded)
            .map_err(|e| Error::State(format!("encoding the partitions without copies: {e}")))?;
        log.write(shard, &key(shard), &value);
    }
    log.confirm(Duration::from_secs(30))
}

/// The partitions the failover in force on mirror `name` recorded (none where no failover is
/// in force, or its process recorded none).
pub(crate) fn read(target: &ClientConfig, name: &str, shards: u32) -> Result<Vec<MirroredPosition>> {
    Ok(read_records(target, name, shards)?.into_iter().flat_map(Recorded::positions).collect())
}

/// [`read`], and the target topics' IDs the failover in force recorded (none where no failover
/// is in force, or it recorded none: a kmirror older than the record), in one read.
pub(crate) fn read_all(
    target: &ClientConfig,
    name: &str,
    shards: u32,
) -> Result<(Vec<MirroredPosition>, BTreeMap<String, String>)> {
    let (mut positions, mut ids) = (Vec::new(), BTreeMap::new());
    for record in read_records(target, name, shards)? {
        ids.extend(record.target_ids.clone());
        positions.extend(record.positions());
    }
    Ok((positions, ids))
}

/// The records of the failover in force on mirror `name`, shard by shard.
fn read_records(target: &ClientConfig, name: &str, shards: u32) -> Result<Vec<Recorded>> {
    // One reader, one connection, for the claims and the records beside them.
    let reader = Claims::reader(target, name)?;
    let in_force: BTreeMap<u32, String> = Claims::read_with(&reader, name, 0..shards, READ_TIMEOUT)?
        .failed_over()
        .into_iter()
        .map(|claim| (claim.shard, claim.instance))
        .collect();
    if in_force.is_empty() {
        return Ok(Vec::new());
    }
    let topic = shards_topic(name);
    // Per shard, its last record: an earlier one that cannot be read no longer counts.
    let mut last: BTreeMap<u32, std::result::Result<Recorded, String>> = BTreeMap::new();
    let tails = (0..i32::try_from(shards).unwrap_or(i32::MAX), TAIL);
    reader.read_last(&topic, tails, READ_TIMEOUT, |record| {
        let shard = u32::try_from(record.partition).unwrap_or(u32::MAX);
        if record.key == key(shard).as_bytes() {
            last.insert(shard, serde_json::from_slice(record.value).map_err(|e| e.to_string()));
        }
    })?;
    let mut records = Vec::new();
    for (shard, recorded) in last {
        let Some(instance) = in_force.get(&shard) else { continue };
        let recorded = recorded.map_err(|e| {
            Error::State(format!(
                "{topic} partition {shard}: the failover's record of partitions without copies is unreadable ({e})"
            ))
        })?;
        if !instance.is_empty() && recorded.instance == *instance {
            records.push(recorded);
        }
    }
    Ok(records)
}

/// What a failover records: the partitions it finds positioned and uncopied (`found`), and those
/// the failover in force before it recorded that it no longer finds (their positions expired
/// since) and that still have no copies (`uncopied`). A failover run again after the expiry
/// would otherwise record none of them.
pub(crate) fn merged(
    found: BTreeMap<u32, Vec<MirroredPosition>>,
    earlier: Vec<(u32, MirroredPosition)>,
    uncopied: impl Fn(&MirroredPosition) -> Result<bool>,
) -> Result<BTreeMap<u32, Vec<MirroredPosition>>> {
    let mut merged = found;
    for (shard, position) in earlier {
        let listed = merged.get(&shard).is_some_and(|l| l.iter().any(|p| p.target() == position.target()));
        if !listed && uncopied(&position)? {
            merged.entry(shard).or_default().push(position);
        }
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(topic: &str, partition: i32, position: i64) -> MirroredPosition {
        MirroredPosition {
            source_topic: topic.into(),
            target_topic: format!("dr.{topic}"),
            partition,
            position,
        }
    }

    #[test]
    fn a_record_names_each_topic_once_and_gives_back_every_position() {
        let positions = vec![at("dlq", 0, 0), at("dlq", 3, 7), at("retry", 1, 2)];
        let mut recorded = Recorded::of("abc", positions.clone());
        recorded.target_ids = BTreeMap::from([("dr.dlq".to_string(), "id-1".to_string())]);
        assert_eq!(recorded.topics.len(), 2);
        let text = serde_json::to_vec(&recorded).expect("encode");
        let back: Recorded = serde_json::from_slice(&text).expect("decode");
        assert_eq!(back.instance, "abc");
        assert_eq!(back.target_ids, recorded.target_ids);
        assert_eq!(back.positions().collect::<Vec<_>>(), positions);
        // An older kmirror's record, without IDs, still reads.
        let old: Recorded = serde_json::from_str(r#"{"instance":"x","topics":[]}"#).expect("decode");
        assert!(old.target_ids.is_empty());
    }

    #[test]
    fn a_failover_again_keeps_what_the_one_in_force_recorded_and_no_longer_finds() {
        let found = BTreeMap::from([(1, vec![at("a", 0, 5)])]);
        let earlier =
            vec![(1, at("a", 0, 3)), (1, at("b", 0, 4)), (2, at("c", 1, 0)), (2, at("copied", 0, 9))];
        let merged = merged(found, earlier, |p| Ok(p.source_topic != "copied")).expect("merged");
        assert_eq!(merged[&1], vec![at("a", 0, 5), at("b", 0, 4)], "found wins, the rest kept");
        assert_eq!(merged[&2], vec![at("c", 1, 0)], "copied since: left out");
    }
}
