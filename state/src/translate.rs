//! Exact translation over the runs of one partition, independent of storage.
use crate::{Offset, TopicPartition};

/// A run seen from one side: `from..from+len` on this side became `to_start..` on `other`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub from: Offset,
    pub len: u32,
    pub other: TopicPartition,
    pub to_start: Offset,
}

impl Span {
    fn end(&self) -> Offset {
        self.from + i64::from(self.len)
    }
}

/// The translated position and the partition it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub partition: TopicPartition,
    pub offset: Offset,
}

/// The position on the other side for a reader whose next offset here is `g`: the copy of the
/// first mirrored record at or after `g`; past everything mirrored, just after the last copy.
/// `spans` are ordered by `from`; those failing `valid` (pending) are ignored.
pub fn translate(spans: &[Span], g: Offset, valid: impl Fn(&Span) -> bool) -> Option<Answer> {
    let mut last = None;
    for span in spans.iter().filter(|s| valid(s)) {
        if g < span.end() {
            let offset = span.to_start + (g - span.from).max(0);
            return Some(Answer { partition: span.other.clone(), offset });
        }
        last = Some(span);
    }
    last.map(|s| Answer { partition: s.other.clone(), offset: s.to_start + i64::from(s.len) })
}
