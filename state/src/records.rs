//! What kmirror writes to its topics on the target, in the versioned codec.
use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError};
use crate::{Offset, Run, TopicPartition};

/// The runs one mirror transaction wrote for one source partition, and the source ranges it
/// stepped over by policy. Written to the map topic inside that transaction, so it is committed
/// exactly when the data is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapRecord {
    pub source: TopicPartition,
    pub target: TopicPartition,
    pub runs: Vec<Run>,
    /// Source ranges deleted on the source before they were copied, which the mirror went past
    /// because `--on-missing-source skip` said so: never on the target, and said so by
    /// translation and verify. An empty range (`from == to`) skips nothing: it marks where a
    /// partition never copied before starts, so that the position outlives the shadow group's.
    pub skipped: Vec<Skipped>,
}

/// Source offsets `from..to` the source had deleted before they were copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub from: Offset,
    pub to: Offset,
}

/// Format 1 of a map record: runs only. Still written where no range is recorded, so a kmirror
/// that knows only format 1 reads every record of copies; start marks (empty ranges) and ranges
/// skipped by policy need format 2.
#[derive(Serialize)]
struct MapRecordV1Out<'a> {
    source: &'a TopicPartition,
    target: &'a TopicPartition,
    runs: &'a [Run],
}

#[derive(Deserialize)]
struct MapRecordV1 {
    source: TopicPartition,
    target: TopicPartition,
    runs: Vec<Run>,
}

/// The format that added [`MapRecord::skipped`].
const WITH_SKIPPED: u8 = 2;

impl MapRecord {
    pub fn new(source: TopicPartition, target: TopicPartition, runs: Vec<Run>) -> Self {
        Self { source, target, runs, skipped: Vec::new() }
    }

    /// The source offset after everything this record covers, copied or skipped.
    pub fn source_end(&self) -> Option<Offset> {
        let runs = self.runs.iter().map(Run::source_end);
        runs.chain(self.skipped.iter().map(|s| s.to)).max()
    }

    /// The bytes written to the map topic: format 1 unless something was skipped.
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        if self.skipped.is_empty() {
            let v1 = MapRecordV1Out { source: &self.source, target: &self.target, runs: &self.runs };
            codec::encode_as(codec::FORMAT_VERSION, &v1)
        } else {
            codec::encode_as(WITH_SKIPPED, self)
        }
    }

    /// Reads a map record of either format.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        match codec::version_of(bytes)? {
            WITH_SKIPPED => codec::decode_as(WITH_SKIPPED, bytes),
            _ => {
                let v1: MapRecordV1 = codec::decode(bytes)?;
                Ok(Self::new(v1.source, v1.target, v1.runs))
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(skipped: Vec<Skipped>) -> MapRecord {
        MapRecord {
            source: TopicPartition::new("orders", 1),
            target: TopicPartition::new("dr.orders", 1),
            runs: Run::from_pairs([(10, 20), (11, 21)]),
            skipped,
        }
    }

    #[test]
    fn records_without_skips_keep_format_1_and_both_formats_read_back() {
        let plain = record(Vec::new());
        let bytes = plain.encode().expect("encode");
        assert_eq!(bytes[0], codec::FORMAT_VERSION);
        // Format 1 is the plain struct of the first map records ever written.
        let v1 =
            codec::encode(&(plain.source.clone(), plain.target.clone(), plain.runs.clone())).expect("v1");
        assert_eq!(bytes, v1);
        assert_eq!(MapRecord::decode(&bytes).expect("decode"), plain);

        let skipping = record(vec![Skipped { from: 12, to: 40 }]);
        let bytes = skipping.encode().expect("encode");
        assert_eq!(bytes[0], WITH_SKIPPED);
        assert_eq!(MapRecord::decode(&bytes).expect("decode"), skipping);
        assert_eq!(skipping.source_end(), Some(40));
        assert_eq!(plain.source_end(), Some(12));
    }

    #[test]
    fn unknown_formats_are_refused_by_name() {
        let err = MapRecord::decode(&[9, 0]).expect_err("format 9");
        assert!(matches!(err, CodecError::UnknownVersion { found: 9 }), "{err}");
    }
}
