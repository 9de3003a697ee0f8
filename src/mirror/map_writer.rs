//! The runs a transaction wrote, built from its delivery reports, as map-topic records.
use std::collections::BTreeMap;

use kmirror_state::{MapRecord, Run};

use crate::mirror::plan::Route;

/// The delivery opaque of map records, so their reports are told apart from data records'.
pub(crate) const MAP_RECORD_OPAQUE: usize = usize::MAX;

/// The most runs one map record holds. A run takes at most 23 bytes encoded, so a record stays
/// far under the 1 MB a producer and a broker take by default. A transaction's copies of one
/// partition make one run unless the source offsets have gaps: a transform that drops every
/// other record, or a source written one record per transaction (each record then followed by
/// its commit marker), makes one run per record, and a transaction of 100 000 of those (a shard
/// behind on a fast source) made a map record no broker took: the transaction aborted on every
/// try and the mirror copied nothing.
pub(crate) const MAX_RUNS_PER_RECORD: usize = 16_384;

/// The map records of a transaction, per touched partition one (or as many as its runs need,
/// see [`MAX_RUNS_PER_RECORD`], in order). `records[i]` is (route, source offset) of the i-th
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
    let mut out = Vec::new();
    for (route, pairs) in pairs {
        let runs = Run::from_pairs(pairs);
        for chunk in runs.chunks(MAX_RUNS_PER_RECORD) {
            out.push(MapRecord {
                source: routes[route].source.clone(),
                target: routes[route].target.clone(),
                runs: chunk.to_vec(),
                skipped: Vec::new(),
            });
        }
    }
    out
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

    #[test]
    fn runs_beyond_what_one_record_holds_are_split_in_order_under_a_megabyte_each() {
        let routes = vec![Route { source: TopicPartition::new("t", 0), target: TopicPartition::new("t", 0) }];
        // Every other source record dropped: each copy a run of its own.
        let kept = 2 * MAX_RUNS_PER_RECORD + 100;
        let records: Vec<(usize, i64)> = (0..kept).map(|i| (0, 10_000_000_000 + 2 * i as i64)).collect();
        let delivered: Vec<(usize, i32, i64)> = (0..kept).map(|i| (i, 0, 5_000_000_000 + i as i64)).collect();
        let maps = map_records(&routes, &records, &delivered);
        assert_eq!(
            maps.iter().map(|m| m.runs.len()).collect::<Vec<_>>(),
            vec![MAX_RUNS_PER_RECORD, MAX_RUNS_PER_RECORD, 100]
        );
        let runs: Vec<Run> = maps.iter().flat_map(|m| m.runs.clone()).collect();
        let pairs: Vec<(i64, i64)> = records.iter().zip(&delivered).map(|(r, d)| (r.1, d.2)).collect();
        assert_eq!(runs, Run::from_pairs(pairs), "the same runs, in order");
        for map in &maps {
            let bytes = map.encode().expect("encode").len();
            assert!(bytes < 1_000_000, "{bytes} bytes");
        }
    }
}
