//! RocksDB keys: (topic, partition, offset), big-endian so byte order is offset order.
use crate::{Offset, TopicPartition};

/// The key prefix shared by every entry of one partition.
pub fn prefix(tp: &TopicPartition) -> Vec<u8> {
    let topic = tp.topic.as_bytes();
    let mut key = Vec::with_capacity(2 + topic.len() + 4 + 8);
    key.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    key.extend_from_slice(topic);
    key.extend_from_slice(&tp.partition.to_be_bytes());
    key
}

pub fn key(tp: &TopicPartition, offset: Offset) -> Vec<u8> {
    let mut key = prefix(tp);
    // Offsets are never negative; shifting by i64::MIN keeps the order if one ever were.
    key.extend_from_slice(&((offset as u64) ^ (1 << 63)).to_be_bytes());
    key
}

pub fn offset_of(key: &[u8]) -> Offset {
    let mut bytes = [0u8; 8];
    if key.len() >= 8 {
        bytes.copy_from_slice(&key[key.len() - 8..]);
    }
    (u64::from_be_bytes(bytes) ^ (1 << 63)) as i64
}

/// The topic-partition a key starts with; `None` for a key too short to hold one (damage).
pub fn partition_of(key: &[u8]) -> Option<TopicPartition> {
    let len = u16::from_be_bytes([*key.first()?, *key.get(1)?]) as usize;
    let topic = String::from_utf8_lossy(key.get(2..2 + len)?).into_owned();
    let partition: [u8; 4] = key.get(2 + len..6 + len)?.try_into().ok()?;
    Some(TopicPartition::new(topic, i32::from_be_bytes(partition)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_names_its_partition_and_a_damaged_key_names_none() {
        let tp = TopicPartition::new("orders.eu", 7);
        let k = key(&tp, 42);
        assert_eq!(partition_of(&k), Some(tp));
        for cut in [0, 1, 5, 12] {
            assert_eq!(partition_of(&k[..cut]), None, "key cut to {cut} bytes");
        }
        assert_eq!(partition_of(&[0xff, 0xff, b'x']), None, "a length beyond the key");
    }

    #[test]
    fn keys_sort_by_offset_within_a_partition_and_round_trip() {
        let tp = TopicPartition::new("orders", 3);
        let mut keys: Vec<Vec<u8>> = [5i64, 0, 1 << 40, 300].iter().map(|&o| key(&tp, o)).collect();
        keys.sort();
        let offsets: Vec<i64> = keys.iter().map(|k| offset_of(k)).collect();
        assert_eq!(offsets, vec![0, 5, 300, 1 << 40]);
        assert!(key(&tp, 7).starts_with(&prefix(&tp)));
        assert!(!key(&TopicPartition::new("orders", 4), 7).starts_with(&prefix(&tp)));
        assert!(!key(&TopicPartition::new("orders-x", 3), 7).starts_with(&prefix(&tp)));
    }
}
