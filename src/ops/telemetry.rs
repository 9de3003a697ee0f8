//! What a running mirror knows about itself: per-partition progress, per-shard heartbeats and
//! event counters. Shards write it once per transaction (never per record); the progress view,
//! the run summary, `/metrics` and `/healthz` read it.
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kmirror_state::TopicPartition;

use crate::ops::metrics::Metrics;

/// One source partition as the mirror sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PartitionProgress {
    /// Records and bytes (key + value + headers) committed by this run.
    pub(crate) records: u64,
    pub(crate) bytes: u64,
    /// Next source offset to read, as committed in the shadow group (None: never committed).
    pub(crate) committed: Option<i64>,
    /// Where the partition stood when this run first looked (committed or start of the log).
    pub(crate) start: Option<i64>,
    /// The source end offset last seen.
    pub(crate) end: Option<i64>,
    /// When this run last committed the partition, milliseconds since the Unix epoch.
    pub(crate) last_commit_ms: Option<i64>,
}

impl PartitionProgress {
    /// Records left to copy, when the end is known.
    pub(crate) fn lag(&self) -> Option<i64> {
        let end = self.end?;
        Some((end - self.committed.or(self.start).unwrap_or(0)).max(0))
    }

    /// Records this run had to copy when it started, when known.
    pub(crate) fn backlog_at_start(&self) -> Option<i64> {
        Some((self.end? - self.start.unwrap_or(0)).max(0))
    }
}

pub(crate) struct Telemetry {
    started: Instant,
    partitions: Mutex<BTreeMap<TopicPartition, PartitionProgress>>,
    /// Last time each shard committed or found itself idle at the end of its partitions.
    heartbeats: Mutex<HashMap<u32, Instant>>,
    /// Group -> when its last checkpoint was taken (ms since the epoch).
    checkpoints: Mutex<BTreeMap<String, i64>>,
    pub(crate) metrics: Metrics,
}

impl Telemetry {
    /// Prometheus text of the run's metrics, with lags and checkpoint ages as of now.
    pub(crate) fn exposition(&self) -> String {
        let lags = self.snapshot().into_iter().filter_map(|(tp, p)| Some((tp, p.lag()?)));
        let now = now_ms();
        let ages = self
            .checkpoints()
            .into_iter()
            .map(|(group, taken_at_ms)| (group, (now - taken_at_ms).max(0) as f64 / 1000.0));
        self.metrics.render(lags, ages)
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            partitions: Mutex::default(),
            heartbeats: Mutex::default(),
            checkpoints: Mutex::default(),
            metrics: Metrics::new(),
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl Telemetry {
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Notes where a partition stands as a shard starts it. Once this run committed some of it,
    /// a shard started again (taken back after fencing) leaves the start where the records it
    /// counts began.
    pub(crate) fn note_start(&self, tp: &TopicPartition, committed: Option<i64>, end: Option<i64>) {
        let mut partitions = lock(&self.partitions);
        let entry = partitions.entry(tp.clone()).or_default();
        entry.committed = committed;
        if entry.records == 0 {
            entry.start = committed;
        }
        entry.end = end.or(entry.end);
    }

    /// A shard committed `records` records of `bytes` bytes of a partition, which now stands at
    /// `position`.
    pub(crate) fn committed(&self, tp: &TopicPartition, records: u64, bytes: u64, position: i64) {
        {
            let mut partitions = lock(&self.partitions);
            let entry = partitions.entry(tp.clone()).or_default();
            entry.records += records;
            entry.bytes += bytes;
            entry.committed = Some(position);
            entry.end = entry.end.map(|e| e.max(position));
            entry.last_commit_ms = Some(now_ms());
        }
        self.metrics.mirrored(&tp.topic, records, bytes);
    }

    /// The source end of a partition, as last seen in a fetch response.
    pub(crate) fn end_seen(&self, tp: &TopicPartition, end: i64) {
        let mut partitions = lock(&self.partitions);
        let entry = partitions.entry(tp.clone()).or_default();
        entry.end = Some(entry.end.map_or(end, |e| e.max(end)));
    }

    /// A batch ends a partition at `at`, short of the end it noted (its source topic was
    /// deleted): the rest is no longer part of the batch's work or its lag.
    pub(crate) fn ended_short(&self, tp: &TopicPartition, at: i64) {
        let mut partitions = lock(&self.partitions);
        let entry = partitions.entry(tp.clone()).or_default();
        entry.end = Some(at);
    }

    pub(crate) fn heartbeat(&self, shard: u32) {
        lock(&self.heartbeats).insert(shard, Instant::now());
    }

    pub(crate) fn checkpointed(&self, group: &str, taken_at_ms: i64) {
        lock(&self.checkpoints).insert(group.to_string(), taken_at_ms);
    }

    /// Another process checkpoints the groups now: their ages are no longer this one's to say.
    pub(crate) fn forget_checkpoints(&self) {
        lock(&self.checkpoints).clear();
    }

    pub(crate) fn checkpoints(&self) -> BTreeMap<String, i64> {
        lock(&self.checkpoints).clone()
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<TopicPartition, PartitionProgress> {
        lock(&self.partitions).clone()
    }

    /// A shard this run will start: until it reports, it counts from now.
    pub(crate) fn expect_shard(&self, shard: u32) {
        // From now: a shard taken hours into a run (a rebalance) has not been silent since the
        // process started.
        lock(&self.heartbeats).entry(shard).or_insert_with(Instant::now);
    }

    /// A shard this process no longer runs (handed to another process).
    pub(crate) fn forget_shard(&self, shard: u32) {
        lock(&self.heartbeats).remove(&shard);
    }

    /// Partitions this process no longer runs: their progress and lag are another process's.
    pub(crate) fn forget_partitions<'a>(&self, tps: impl IntoIterator<Item = &'a TopicPartition>) {
        let mut partitions = lock(&self.partitions);
        for tp in tps {
            partitions.remove(tp);
        }
    }

    /// Shards that have neither committed nor been idle at their end for longer than `stall`.
    pub(crate) fn stalled_shards(&self, stall: Duration) -> Vec<(u32, Duration)> {
        let heartbeats = lock(&self.heartbeats);
        let mut stalled: Vec<(u32, Duration)> = heartbeats
            .iter()
            .map(|(shard, at)| (*shard, at.elapsed()))
            .filter(|(_, since)| *since > stall)
            .collect();
        stalled.sort_unstable();
        stalled
    }
}

/// A poisoned lock only means another thread panicked while counting: the counts stay usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_from_the_committed_position_or_the_start() {
        let t = Telemetry::default();
        let tp = TopicPartition::new("orders", 0);
        t.note_start(&tp, None, Some(100));
        assert_eq!(t.snapshot()[&tp].lag(), Some(100));
        t.committed(&tp, 60, 600, 60);
        let p = t.snapshot()[&tp];
        assert_eq!((p.lag(), p.records, p.bytes, p.backlog_at_start()), (Some(40), 60, 600, Some(100)));
        t.end_seen(&tp, 150);
        assert_eq!(t.snapshot()[&tp].lag(), Some(90));
    }

    #[test]
    fn a_partition_ended_short_leaves_the_backlog_and_the_lag_it_no_longer_has() {
        let t = Telemetry::default();
        let tp = TopicPartition::new("gone", 0);
        t.note_start(&tp, Some(10), Some(300));
        t.committed(&tp, 50, 500, 60);
        t.ended_short(&tp, 60);
        let p = t.snapshot()[&tp];
        assert_eq!((p.lag(), p.backlog_at_start(), p.records), (Some(0), Some(50), 50));
    }

    #[test]
    fn a_shard_started_again_keeps_the_backlog_its_records_count_from() {
        let t = Telemetry::default();
        let tp = TopicPartition::new("taken-back", 0);
        t.note_start(&tp, Some(10), Some(300));
        t.committed(&tp, 50, 500, 60);
        t.note_start(&tp, Some(60), None);
        let p = t.snapshot()[&tp];
        assert_eq!((p.lag(), p.backlog_at_start(), p.records), (Some(240), Some(290), 50));
        let fresh = TopicPartition::new("not-yet-copied", 0);
        t.note_start(&fresh, None, Some(40));
        t.note_start(&fresh, Some(5), None);
        assert_eq!(
            t.snapshot()[&fresh].backlog_at_start(),
            Some(35),
            "nothing counted yet: the newest start"
        );
    }

    #[test]
    fn a_silent_shard_is_stalled_and_a_heartbeat_clears_it() {
        let t = Telemetry::default();
        t.expect_shard(0);
        t.expect_shard(1);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(t.stalled_shards(Duration::from_millis(10)).len(), 2);
        t.heartbeat(1);
        let stalled: Vec<u32> =
            t.stalled_shards(Duration::from_millis(10)).into_iter().map(|s| s.0).collect();
        assert_eq!(stalled, vec![0]);
    }
}
