//! What to mirror: source topics and partitions, their target names, and their shards.
use std::collections::BTreeMap;
use std::time::Duration;

use kmirror_state::TopicPartition;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::config::names::shard_of;
use crate::config::rename::RenamePolicy;
use crate::config::topics::TopicSelector;
use crate::error::{Result, Side};
use crate::kafka::errors::{unreachable, ErrorRecorder};

/// One source partition and the target partition it is copied to (same number, always).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Route {
    pub(crate) source: TopicPartition,
    pub(crate) target: TopicPartition,
}

/// A source topic, its partition count, and the target topic it is mirrored to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceTopic {
    pub(crate) name: String,
    pub(crate) partitions: i32,
    pub(crate) target: String,
    /// Its replication factor (the most replicas any partition has).
    pub(crate) replicas: i32,
}

/// The worker thread that runs a shard.
pub(crate) fn worker_of(shard: u32, num_streams: usize) -> usize {
    shard as usize % num_streams
}

/// Lists the source topics the selector picks, with partition counts and target names; two
/// topics the rename policy would write to one target topic are refused.
pub(crate) fn list_source_topics(
    metadata_client: &BaseConsumer<ErrorRecorder>,
    selector: &TopicSelector,
    rename: &RenamePolicy,
    bootstrap: &str,
    timeout: Duration,
) -> Result<Vec<SourceTopic>> {
    let topics = list_all_source_topics(metadata_client, selector, rename, bootstrap, timeout)?;
    rename.check_collisions(topics.iter().map(|t| t.name.as_str()))?;
    Ok(topics)
}

/// Takes out of `topics` (as listed again while the mirror runs) those the rename policy cannot
/// copy, and returns them with why. The topics mirrored already (`known`) keep their target
/// names: a topic made later on the source never stops them, nor the others found with it.
pub(crate) fn leave_out_unmirrorable(
    topics: &mut Vec<SourceTopic>,
    rename: &RenamePolicy,
    known: &BTreeMap<String, i32>,
) -> Vec<(String, String)> {
    // The known ones first, listed or not: a source topic deleted keeps its partitions on
    // their shards (see `note_gone`), and its copy is no place for another topic's records.
    let new = topics.iter().filter(|t| !known.contains_key(&t.name)).map(|t| t.name.as_str());
    let left_out: Vec<(String, String)> = rename
        .unmirrorable(known.keys().map(String::as_str).chain(new))
        .into_iter()
        .filter(|(name, _)| !known.contains_key(*name))
        .map(|(name, reason)| (name.to_string(), reason))
        .collect();
    topics.retain(|t| !left_out.iter().any(|(name, _)| *name == t.name));
    left_out
}

/// [`list_source_topics`] without the check of the target names.
pub(crate) fn list_all_source_topics(
    metadata_client: &BaseConsumer<ErrorRecorder>,
    selector: &TopicSelector,
    rename: &RenamePolicy,
    bootstrap: &str,
    timeout: Duration,
) -> Result<Vec<SourceTopic>> {
    let metadata = metadata_client
        .fetch_metadata(None, timeout)
        .map_err(|e| unreachable(Side::Source, bootstrap, metadata_client, e))?;
    let mut topics: Vec<SourceTopic> = metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && !t.partitions().is_empty() && selector.matches(t.name()))
        .map(|t| SourceTopic {
            name: t.name().to_string(),
            partitions: t.partitions().len() as i32,
            target: rename.target_of(t.name()),
            replicas: t.partitions().iter().map(|p| p.replicas().len() as i32).max().unwrap_or(0),
        })
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(topics)
}

/// The routes of these topics, grouped by shard.
pub(crate) fn routes_by_shard(topics: &[SourceTopic], shards: u32) -> BTreeMap<u32, Vec<Route>> {
    let mut out: BTreeMap<u32, Vec<Route>> = BTreeMap::new();
    for topic in topics {
        for partition in 0..topic.partitions {
            let source = TopicPartition::new(&topic.name, partition);
            out.entry(shard_of(&topic.name, partition, shards))
                .or_default()
                .push(Route { target: TopicPartition::new(&topic.target, partition), source });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(rename: &RenamePolicy, names: &[&str]) -> Vec<SourceTopic> {
        names
            .iter()
            .map(|n| SourceTopic {
                name: n.to_string(),
                partitions: 1,
                target: rename.target_of(n),
                replicas: 1,
            })
            .collect()
    }

    #[test]
    fn a_topic_found_later_never_takes_a_mirrored_topics_target() {
        let rename = RenamePolicy::parse("regex:(?:a|b|c)-(.*)=>$1").expect("valid");
        // b-x sorts before c-x but is not mirrored yet: c-x keeps x.
        let known = BTreeMap::from([("c-x".to_string(), 1)]);
        let mut topics = listed(&rename, &["a-y", "b-x", "c-x", "d"]);
        let out = leave_out_unmirrorable(&mut topics, &rename, &known);
        let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a-y", "c-x", "d"]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, "b-x");
        assert!(out[0].1.contains("c-x and b-x would both be mirrored to x"), "{}", out[0].1);
        // The same when c-x is gone from the source: its copy stays its own.
        let mut topics = listed(&rename, &["b-x"]);
        let out = leave_out_unmirrorable(&mut topics, &rename, &known);
        assert!(topics.is_empty() && out.len() == 1, "{out:?}");
        // Two new ones: the first listed keeps the name, as at the start.
        let mut topics = listed(&rename, &["a-z", "b-z"]);
        let out = leave_out_unmirrorable(&mut topics, &rename, &BTreeMap::new());
        assert_eq!(topics.len(), 1);
        assert_eq!(out[0].0, "b-z");
    }

    #[test]
    fn every_partition_gets_exactly_one_shard() {
        let topics = vec![
            SourceTopic { name: "a".into(), partitions: 5, target: "a".into(), replicas: 1 },
            SourceTopic { name: "b".into(), partitions: 3, target: "mirror.b".into(), replicas: 3 },
        ];
        let routes = routes_by_shard(&topics, 3);
        let total: usize = routes.values().map(Vec::len).sum();
        assert_eq!(total, 8);
        for (shard, rs) in &routes {
            for r in rs {
                assert_eq!(shard_of(&r.source.topic, r.source.partition, 3), *shard);
                assert_eq!(r.source.partition, r.target.partition);
                let expected = if r.source.topic == "b" { "mirror.b" } else { "a" };
                assert_eq!(r.target.topic, expected);
            }
        }
    }
}
