//! The decoder of what kmirror reads back from its topics: any bytes decode or fail with an
//! error, never a panic or an unbounded allocation.
use kmirror_state::{codec, Checkpoint, MapRecord, Run, TopicPartition};
use proptest::prelude::*;

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = MapRecord::decode(&bytes);
        let _ = codec::decode::<Checkpoint>(&bytes);
    }

    #[test]
    fn a_damaged_map_record_decodes_or_fails(flip in 0usize..200, to in any::<u8>(), cut in 0usize..200) {
        let record = MapRecord {
            source: TopicPartition::new("orders", 3),
            target: TopicPartition::new("orders", 3),
            runs: Run::from_pairs([(10, 20), (11, 21), (15, 22)]),
            skipped: Vec::new(),
        };
        let mut bytes = record.encode().expect("encode");
        let at = flip % bytes.len();
        bytes[at] = to;
        bytes.truncate(bytes.len() - cut % bytes.len());
        let _ = MapRecord::decode(&bytes);
    }
}

#[test]
fn a_huge_length_prefix_is_an_error_not_an_allocation() {
    // Version byte, then a topic-name length of u64::MAX in bincode's varint form.
    let mut bytes = vec![1u8, 253];
    bytes.extend_from_slice(&u64::MAX.to_le_bytes());
    assert!(MapRecord::decode(&bytes).is_err());
}
