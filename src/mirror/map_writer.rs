//! The runs a transaction wrote, built from its delivery reports, as map-topic records.
use std::collections::BTreeMap;

use kmirror_state::{MapRecord, Run};

use crate::mirror::plan::Route;

/// The delivery opaque of map records, so their reports are told apart from data records'.
pub(crate) const MAP_RECORD_OPAQUE: usize = usize::MAX;

/// One map record per touched partition. `records[i]` is (route, source offset) of the i-th
/// record sent; `delivered` holds (i, target partition, target offset) for every one of them.
pub(crate) fn map_records(
    routes: &[Route],
    records: &[(usize, i64)],
    delivered: &[(usize, i32, i64)],
) -> Vec<MapRecord> {
    let mut by_index: Vec<Option<i64>> = vec![None; records.len()];
    for &(index, _, offset) in delivered {
        if let Some(slot) = by_index.get_mut(index) {
            *slot = Some(offset);
        }
    }
    let mut pairs: BTreeMap<usize, Vec<(i64, i64)>> = BTreeMap::new();
    for (&(route, source_offset), target_offset) in records.iter().zip(by_index) {
        if let Some(target_offset) = target_offset {
            pairs.entry(route).or_default().push((source_offset, target_offset));
        }
    }
    pairs
        .into_iter()
        .map(|(route, pairs)| MapRecord {
            source: routes[route].source.clone(),
            target: routes[route].target.clone(),
            runs: Run::from_pairs(pairs),
            skipped: Vec::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use kmirror_state::TopicPartition;

    use super::*;

    #[test]
    fn runs_follow_delivery_offsets_per_partition() {
        let route = |p| Route { source: TopicPartition::new("s", p), target: TopicPartition::new("s", p) };
        let routes = vec![route(0), route(1)];
        // Partition 0: source 10,11,13 (12 was a control marker) landed at 100,101,102.
        // Partition 1: source 5,6 landed at 7 and 9 (another producer wrote 8).
        let records = vec![(0, 10), (1, 5), (0, 11), (1, 6), (0, 13)];
        let delivered = vec![(0, 0, 100), (2, 0, 101), (4, 0, 102), (1, 1, 7), (3, 1, 9)];
        let maps = map_records(&routes, &records, &delivered);
        assert_eq!(maps.len(), 2);
        assert_eq!(
            maps[0].runs,
            vec![
                Run { source_start: 10, target_start: 100, len: 2 },
                Run { source_start: 13, target_start: 102, len: 1 }
            ]
        );
        assert_eq!(
            maps[1].runs,
            vec![
                Run { source_start: 5, target_start: 7, len: 1 },
                Run { source_start: 6, target_start: 9, len: 1 }
            ]
        );
    }
}
