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
pub struct CommitMetadata {
    /// Format version of this metadata.
    pub v: u8,
    /// The source topic the offset belongs to (the key is the target topic).
    pub source_topic: String,
    /// The mirror's shard count, fixed for its life.
    pub shards: u32,
}

impl CommitMetadata {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn decode(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

/// Reads the committed positions of `routes`, keyed by source partition. `None` means the
/// partition has never been committed. Fails if the mirror was created with another shard count.
pub fn read_committed_positions(
    shadow: &BaseConsumer,
    routes: &[Route],
    name: &str,
    shards: u32,
    timeout: Duration,
) -> Result<HashMap<TopicPartition, Option<i64>>> {
    let mut tpl = TopicPartitionList::new();
    for route in routes {
        tpl.add_partition(&route.target.topic, route.target.partition);
    }
    let committed = shadow
        .committed_offsets(tpl, timeout)
        .map_err(Error::kafka(Side::Target, "reading the shadow group"))?;
    let mut by_target = HashMap::new();
    for element in committed.elements() {
        let offset = match element.offset() {
            Offset::Offset(o) if o >= 0 => Some(o),
            _ => None,
        };
        if offset.is_some() {
            if let Some(meta) = CommitMetadata::decode(element.metadata()) {
                if meta.shards != shards {
                    return Err(Error::ShardsChanged { name: name.to_string(), recorded: meta.shards });
                }
            }
        }
        by_target.insert(TopicPartition::new(element.topic(), element.partition()), offset);
    }
    Ok(routes.iter().map(|r| (r.source.clone(), by_target.get(&r.target).copied().flatten())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_and_garbage_is_ignored() {
        let meta = CommitMetadata { v: 1, source_topic: "orders".into(), shards: 4 };
        assert_eq!(CommitMetadata::decode(&meta.encode()), Some(meta));
        assert_eq!(CommitMetadata::decode("written by someone else"), None);
    }
}
