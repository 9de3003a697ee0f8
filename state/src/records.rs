//! What kmirror writes to its topics on the target, in the versioned codec.
use serde::{Deserialize, Serialize};

use crate::{Offset, Run, TopicPartition};

/// The runs one mirror transaction wrote for one source partition. Written to the map topic
/// inside that transaction, so it is committed exactly when the data is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapRecord {
    pub source: TopicPartition,
    pub target: TopicPartition,
    pub runs: Vec<Run>,
}

/// A source consumer group's committed positions, taken while mirroring, so they survive the
/// loss of the source cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub group: String,
    /// Milliseconds since the Unix epoch.
    pub taken_at_ms: i64,
    pub offsets: Vec<GroupOffset>,
}

/// One committed position of a group: the next offset it would read, with its metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupOffset {
    pub partition: TopicPartition,
    pub offset: Offset,
    pub metadata: String,
}
