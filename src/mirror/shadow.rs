//! The shadow group: a consumer group on the target that holds, per target partition, the next
//! source offset to read. It is committed inside each mirror transaction, so it is exactly as
//! far as the committed data.
use std::collections::HashMap;
use std::time::Duration;

use kmirror_state::TopicPartition;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, Side};
use crate::mirror::plan::Route;

/// What each committed shadow offset carries beside the offset itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CommitMetadata {
    /// Format version of this metadata.
    pub(crate) v: u8,
    /// The source topic the offset belongs to (the key is the target topic).
    pub(crate) source_topic: String,
    /// The mirror's shard count, fixed for its life.
    pub(crate) shards: u32,
    /// The source topic's ID when the position was committed: a recreated topic of the same name
    /// has another. Absent where the source gives no IDs, and in positions of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) source_topic_id: Option<String>,
    /// Set by `kmirror failback` for the way home, not by a mirror's commit: a start in no map
    /// record (see `Shard::mark_saved_starts`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) by_failback: bool,
}

/// A committed position of one source partition, with what it was committed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SavedPosition {
    /// The next source offset to read.
    pub(crate) offset: i64,
    /// The source topic and its ID as written with the position (None: not recorded).
    pub(crate) source_topic: Option<String>,
    pub(crate) source_topic_id: Option<String>,
    /// A start `kmirror failback` set (see [`CommitMetadata::by_failback`]).
    pub(crate) by_failback: bool,
}

impl CommitMetadata {
    pub(crate) fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub(crate) fn decode(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

/// Reads the committed positions of `routes`, keyed by source partition. `None` means the
/// partition has never been committed. Fails if the mirror was created with another shard count.
/// The position is keyed by the target partition: a source topic other than the one written
/// with it (a changed `--rename`) is for the caller to refuse.
pub(crate) fn read_committed_positions(
    shadow: &BaseConsumer,
    routes: &[Route],
    name: &str,
    shards: u32,
    timeout: Duration,
) -> Result<HashMap<TopicPartition, Option<SavedPosition>>> {
    let mut tpl = TopicPartitionList::new();
    for route in routes {
        tpl.add_partition(&route.target.topic, route.target.partition);
    }
    let committed = shadow
        .committed_offsets(tpl, timeout)
        .map_err(Error::kafka(Side::Target, "reading the shadow group"))?;
    let entries = committed.elements().into_iter().map(|e| {
        let offset = match e.offset() {
            Offset::Offset(offset) => Some(offset),
            _ => None,
        };
        (TopicPartition::new(e.topic(), e.partition()), offset, e.metadata().to_string())
    });
    positions_of(routes, name, shards, entries)
}

/// The saved positions of `routes` from a group's committed `(target partition, offset,
/// metadata)`; a negative or absent offset is none.
pub(crate) fn positions_of(
    routes: &[Route],
    name: &str,
    shards: u32,
    committed: impl IntoIterator<Item = (TopicPartition, Option<i64>, String)>,
) -> Result<HashMap<TopicPartition, Option<SavedPosition>>> {
    let mut by_target = HashMap::new();
    for (target, offset, metadata) in committed {
        let saved = match offset {
            Some(offset) if offset >= 0 => {
                let meta = CommitMetadata::decode(&metadata);
                if let Some(meta) = &meta {
                    if meta.shards != shards {
                        return Err(Error::ShardsChanged { name: name.to_string(), recorded: meta.shards });
                    }
                }
                Some(SavedPosition {
                    offset,
                    source_topic: meta.as_ref().map(|m| m.source_topic.clone()),
                    by_failback: meta.as_ref().is_some_and(|m| m.by_failback),
                    source_topic_id: meta.and_then(|m| m.source_topic_id),
                })
            }
            _ => None,
        };
        by_target.insert(target, saved);
    }
    Ok(routes.iter().map(|r| (r.source.clone(), by_target.get(&r.target).cloned().flatten())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_and_garbage_is_ignored() {
        let meta = CommitMetadata {
            v: 1,
            source_topic: "orders".into(),
            shards: 4,
            source_topic_id: None,
            by_failback: false,
        };
        assert_eq!(
            meta.encode(),
            r#"{"v":1,"source_topic":"orders","shards":4}"#,
            "what older versions read"
        );
        assert_eq!(CommitMetadata::decode(&meta.encode()), Some(meta.clone()));
        let with_id = CommitMetadata {
            source_topic_id: Some("q1w2e3".into()),
            ..CommitMetadata::decode(r#"{"v":1,"source_topic":"orders","shards":4}"#).expect("old form")
        };
        assert_eq!(CommitMetadata::decode(&with_id.encode()), Some(with_id));
        let by_failback = CommitMetadata { by_failback: true, ..meta };
        assert_eq!(by_failback.encode(), r#"{"v":1,"source_topic":"orders","shards":4,"by_failback":true}"#);
        assert_eq!(CommitMetadata::decode(&by_failback.encode()), Some(by_failback));
        assert_eq!(CommitMetadata::decode("written by someone else"), None);
    }

    #[test]
    fn a_groups_offsets_become_each_routes_position() {
        let route = |p| Route {
            source: TopicPartition::new("orders", p),
            target: TopicPartition::new("dr.orders", p),
        };
        let routes = [route(0), route(1), route(2)];
        let meta = |shards| {
            CommitMetadata {
                v: 1,
                source_topic: "orders".into(),
                shards,
                source_topic_id: Some("id1".into()),
                by_failback: false,
            }
            .encode()
        };
        let committed = vec![
            (TopicPartition::new("dr.orders", 0), Some(42), meta(4)),
            (TopicPartition::new("dr.orders", 1), Some(-1), String::new()),
        ];
        let positions = positions_of(&routes, "m", 4, committed.clone()).expect("same shard count");
        let saved = positions[&TopicPartition::new("orders", 0)].clone().expect("committed");
        assert_eq!(
            (saved.offset, saved.source_topic.as_deref(), saved.source_topic_id.as_deref()),
            (42, Some("orders"), Some("id1"))
        );
        assert_eq!(positions[&TopicPartition::new("orders", 1)], None, "a negative offset is none");
        assert_eq!(positions[&TopicPartition::new("orders", 2)], None, "not answered is none");
        assert!(matches!(
            positions_of(&routes, "m", 8, committed),
            Err(Error::ShardsChanged { recorded: 4, .. })
        ));
    }
}
