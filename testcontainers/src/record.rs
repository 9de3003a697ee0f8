//! Record contents as tests compare them: every field kmirror promises to preserve.

/// One record's key, value, headers (in order, duplicates kept) and timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RecordData {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Create time in milliseconds; `None` lets the producer stamp it.
    pub timestamp: Option<i64>,
}

impl RecordData {
    /// A record with a text key and value, as most tests need.
    pub fn keyed(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Self { key: Some(key.into()), value: Some(value.into()), ..Self::default() }
    }
}

/// A record read back from a partition, with the offset it sits at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub offset: i64,
    pub data: RecordData,
}
