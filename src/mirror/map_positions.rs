//! Positions rebuilt from the map topic, for partitions whose shadow-group offset is gone.
//!
//! The shadow group is a group without members, and Kafka expires each of its offsets
//! `offsets.retention.minutes` (7 days by default) after that offset's last commit: a mirror
//! stopped for longer, or a partition that got no records for that long, loses its position.
//! Starting such a partition from the beginning would copy it twice. The map topic holds the
//! same truth without expiry (unlimited retention, written in the same transactions): the
//! newest map record of a source partition ends where the shadow position was, or below it
//! only by records that produced nothing on the target (control markers, records a transform
//! skipped), so resuming there copies nothing twice and skips nothing.
use std::collections::HashMap;

use kmirror_state::{MapRecord, TopicPartition};
use rdkafka::ClientConfig;

use crate::config::names;
use crate::error::{Error, Result};
use crate::kafka::topic_reader::RangeReader;
use crate::mirror::plan::Route;

/// The newest records are read first, in windows that double while partitions are missing.
const FIRST_WINDOW: i64 = 1024;
const LARGEST_WINDOW: i64 = 1 << 20;

/// Where a route's newest map record ends, on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MapEnd {
    /// The next source offset to read.
    pub(crate) source: i64,
    /// The target offset after the last record copied: a target partition that ends below it
    /// is not the one the map was written for.
    pub(crate) target: i64,
}

/// Where the newest map record of every route in `wanted` that the shard's map partition has a
/// record of ends; routes never copied are absent.
pub(crate) fn positions_from_map(
    target: &ClientConfig,
    name: &str,
    shard: u32,
    wanted: &[Route],
) -> Result<HashMap<TopicPartition, MapEnd>> {
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let topic = names::map_topic(name);
    let reader = RangeReader::new(target, &topic, shard as i32, &names::map_reader_group(name))?;
    let Some((log_start, end)) = reader.bounds()? else { return Ok(HashMap::new()) };
    newest_positions(wanted, log_start, end, |from, to, on_record| {
        reader.read(from, to, |offset, value| {
            let record = MapRecord::decode(value).map_err(|e| {
                Error::State(format!(
                    "{topic} partition {shard} offset {offset}: undecodable map record: {e}"
                ))
            })?;
            on_record(record);
            Ok(())
        })
    })
}

/// Reads `log_start..end` backwards window by window (`read(from, to, on_record)` hands over
/// the records of one window in offset order) until every wanted route is found.
fn newest_positions(
    wanted: &[Route],
    log_start: i64,
    end: i64,
    mut read: impl FnMut(i64, i64, &mut dyn FnMut(MapRecord)) -> Result<()>,
) -> Result<HashMap<TopicPartition, MapEnd>> {
    let mut found = HashMap::new();
    let mut missing: Vec<&Route> = wanted.iter().collect();
    let (mut to, mut window) = (end, FIRST_WINDOW);
    while to > log_start && !missing.is_empty() {
        let from = (to - window).max(log_start);
        let mut newest: HashMap<TopicPartition, MapEnd> = HashMap::new();
        read(from, to, &mut |record| {
            let Some(source) = record.source_end() else { return };
            // A record of a range skipped by policy alone copied nothing: no target end to
            // check the target partition against.
            let target = record.runs.iter().map(|r| r.target_end()).max().unwrap_or(0);
            let next = MapEnd { source, target };
            if missing.iter().any(|r| r.source == record.source && r.target == record.target) {
                // Records come in offset order: the last one read is the newest.
                newest.insert(record.source, next);
            }
        })?;
        missing.retain(|r| !newest.contains_key(&r.source));
        found.extend(newest);
        to = from;
        window = (window * 2).min(LARGEST_WINDOW);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use kmirror_state::{Run, Skipped};

    use super::*;

    fn route(topic: &str, partition: i32) -> Route {
        Route { source: TopicPartition::new(topic, partition), target: TopicPartition::new(topic, partition) }
    }

    fn record(route: &Route, source_start: i64, len: u32) -> MapRecord {
        MapRecord {
            source: route.source.clone(),
            target: route.target.clone(),
            runs: vec![Run { source_start, target_start: source_start, len }],
            skipped: Vec::new(),
        }
    }

    /// A map partition held in memory from offset `log_start`, read the way the topic is.
    fn scan(
        log: &[MapRecord],
        log_start: i64,
        wanted: &[Route],
        windows: &mut Vec<(i64, i64)>,
    ) -> HashMap<TopicPartition, i64> {
        let end = log_start + log.len() as i64;
        newest_positions(wanted, log_start, end, |from, to, on_record| {
            windows.push((from, to));
            for record in &log[(from - log_start) as usize..(to - log_start) as usize] {
                on_record(record.clone());
            }
            Ok(())
        })
        .expect("scan")
        .into_iter()
        .map(|(tp, end)| {
            assert_eq!(end.source, end.target, "the test's copies land at their source offsets");
            (tp, end.source)
        })
        .collect()
    }

    #[test]
    fn the_newest_record_of_each_partition_wins_and_reading_stops_once_all_are_found() {
        let (busy, idle, other) = (route("t", 0), route("t", 1), route("u", 0));
        let mut log = vec![record(&idle, 0, 50)];
        for i in 0..3000 {
            log.push(record(&busy, i * 10, 10));
        }
        log.push(record(&other, 0, 5));
        let mut windows = Vec::new();
        let found = scan(&log, 0, std::slice::from_ref(&busy), &mut windows);
        assert_eq!(found, [(busy.source.clone(), 30_000)].into_iter().collect());
        assert_eq!(windows, vec![(3002 - FIRST_WINDOW, 3002)], "one window is enough");

        // The idle partition's only record is at the very start: windows double back to it.
        windows.clear();
        let found = scan(&log, 0, &[busy.clone(), idle.clone()], &mut windows);
        assert_eq!(found[&idle.source], 50);
        assert_eq!(found[&busy.source], 30_000, "an older window never overrides a newer one");
        assert_eq!(windows, vec![(1978, 3002), (0, 1978)]);
    }

    #[test]
    fn never_copied_partitions_and_other_targets_are_absent() {
        let (copied, before_rename) = (route("t", 0), route("v", 0));
        let renamed = Route { target: TopicPartition::new("dr.v", 0), ..before_rename.clone() };
        let log = vec![
            record(&copied, 0, 7),
            record(&before_rename, 0, 9),
            MapRecord { runs: Vec::new(), ..record(&copied, 0, 0) },
        ];
        let mut windows = Vec::new();
        let found = scan(&log, 100, &[copied.clone(), renamed, route("t", 9)], &mut windows);
        assert_eq!(
            found,
            [(copied.source, 7)].into_iter().collect(),
            "a record without runs is no position, one for another target topic is not this route's"
        );
        assert_eq!(windows, vec![(100, 103)]);
        assert!(scan(&[], 5, &[route("t", 0)], &mut Vec::new()).is_empty());
    }

    #[test]
    fn a_range_skipped_by_policy_is_resumed_past() {
        let route = route("t", 0);
        let skip = MapRecord {
            skipped: vec![Skipped { from: 7, to: 30 }],
            ..MapRecord::new(route.source.clone(), route.target.clone(), Vec::new())
        };
        let log = [record(&route, 0, 7), skip];
        let found = newest_positions(std::slice::from_ref(&route), 0, 2, |from, to, on_record| {
            log[from as usize..to as usize].iter().cloned().for_each(on_record);
            Ok(())
        })
        .expect("scan");
        assert_eq!(found[&route.source], MapEnd { source: 30, target: 0 }, "past the skip; no copy to check");
    }
}
