//! Records as tests read them back; their contents are kmirror's own [`RecordData`].

pub use kmirror_state::RecordData;

/// A record read back from a partition, with the offset it sits at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub offset: i64,
    pub data: RecordData,
}
