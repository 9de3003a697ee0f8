//! Prometheus metrics of a mirror run, in the text exposition format.
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use kmirror_state::TopicPartition;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabel {
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    topic: String,
    partition: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabel {
    group: String,
}

pub(crate) struct Metrics {
    registry: Registry,
    records: Family<TopicLabel, Counter>,
    bytes: Family<TopicLabel, Counter>,
    lag: Family<PartitionLabels, Gauge>,
    /// The partitions the last exposition showed a lag for.
    lag_shown: std::sync::Mutex<Vec<PartitionLabels>>,
    /// The groups whose checkpoint age the last exposition showed (see `lag_shown`).
    ages_shown: std::sync::Mutex<Vec<GroupLabel>>,
    committed: Counter,
    aborted: Counter,
    commit_seconds: Histogram,
    fenced: Counter,
    checkpoint_age: Family<GroupLabel, Gauge<f64, AtomicU64>>,
    config_syncs: Family<TopicLabel, Counter>,
    topics_created: Family<TopicLabel, Counter>,
    skipped: Family<TopicLabel, Counter>,
    transform_errors: Counter,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::default();
        let records = Family::<TopicLabel, Counter>::default();
        let bytes = Family::<TopicLabel, Counter>::default();
        let lag = Family::<PartitionLabels, Gauge>::default();
        let committed = Counter::default();
        let aborted = Counter::default();
        // 5 ms to ~20 s: a commit on a healthy cluster takes tens of milliseconds.
        let commit_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 13));
        let fenced = Counter::default();
        let checkpoint_age = Family::<GroupLabel, Gauge<f64, AtomicU64>>::default();
        let config_syncs = Family::<TopicLabel, Counter>::default();
        let topics_created = Family::<TopicLabel, Counter>::default();
        let transform_errors = Counter::default();
        let skipped = Family::<TopicLabel, Counter>::default();
        // The client library appends `_total` to counter names.
        registry.register(
            "kmirror_records_mirrored",
            "Source records committed to the target",
            records.clone(),
        );
        registry.register("kmirror_bytes_mirrored", "Key, value and header bytes committed", bytes.clone());
        registry.register(
            "kmirror_partition_lag_records",
            "Records on the source not yet committed to the target",
            lag.clone(),
        );
        registry.register(
            "kmirror_transactions_committed",
            "Target transactions committed",
            committed.clone(),
        );
        registry.register("kmirror_transactions_aborted", "Target transactions aborted", aborted.clone());
        registry.register(
            "kmirror_transaction_commit_seconds",
            "Time from the end of a transaction's records to its commit",
            commit_seconds.clone(),
        );
        registry.register(
            "kmirror_fenced",
            "Shards stopped because another instance took them over",
            fenced.clone(),
        );
        registry.register(
            "kmirror_checkpoint_age_seconds",
            "Age of the last checkpoint of each source consumer group",
            checkpoint_age.clone(),
        );
        registry.register(
            "kmirror_topic_config_syncs",
            "Drifted topic configs synced to the target",
            config_syncs.clone(),
        );
        registry.register("kmirror_topics_created", "Topics created on the target", topics_created.clone());
        registry.register(
            "kmirror_records_skipped",
            "Source records deleted on the source before they were copied, stepped over by --on-missing-source skip",
            skipped.clone(),
        );
        registry.register(
            "kmirror_transform_errors",
            "Records left out because a transform failed on them (--on-transform-error skip)",
            transform_errors.clone(),
        );
        Self {
            registry,
            records,
            bytes,
            lag,
            lag_shown: std::sync::Mutex::default(),
            ages_shown: std::sync::Mutex::default(),
            committed,
            aborted,
            commit_seconds,
            fenced,
            checkpoint_age,
            config_syncs,
            topics_created,
            skipped,
            transform_errors,
        }
    }

    pub(crate) fn transform_error(&self) {
        self.transform_errors.inc();
    }

    pub(crate) fn mirrored(&self, topic: &str, records: u64, bytes: u64) {
        let label = TopicLabel { topic: topic.to_string() };
        self.records.get_or_create(&label).inc_by(records);
        self.bytes.get_or_create(&label).inc_by(bytes);
    }

    pub(crate) fn transaction_committed(&self, seconds: f64) {
        self.committed.inc();
        self.commit_seconds.observe(seconds);
    }

    pub(crate) fn transaction_aborted(&self) {
        self.aborted.inc();
    }

    pub(crate) fn fenced(&self) {
        self.fenced.inc();
    }

    pub(crate) fn config_synced(&self, topic: &str) {
        self.config_syncs.get_or_create(&TopicLabel { topic: topic.to_string() }).inc();
    }

    pub(crate) fn topic_created(&self, topic: &str) {
        self.topics_created.get_or_create(&TopicLabel { topic: topic.to_string() }).inc();
    }

    pub(crate) fn skipped(&self, topic: &str, records: u64) {
        self.skipped.get_or_create(&TopicLabel { topic: topic.to_string() }).inc_by(records);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Takes out of `family` the label sets the last exposition showed (`shown`) and this one does
/// not (`now`), which it keeps as shown.
fn only_shown<S, M, C>(family: &Family<S, M, C>, shown: &std::sync::Mutex<Vec<S>>, now: Vec<S>)
where
    S: Clone + std::hash::Hash + Eq,
    C: prometheus_client::metrics::family::MetricConstructor<M>,
{
    let mut shown = shown.lock().unwrap_or_else(|p| p.into_inner());
    for gone in shown.iter().filter(|labels| !now.contains(labels)) {
        family.remove(gone);
    }
    *shown = now;
}

impl Metrics {
    /// The text exposition of every metric, with `lags` (records left per partition) and
    /// `checkpoint_ages` (seconds per group) as of now.
    pub(crate) fn render(
        &self,
        lags: impl IntoIterator<Item = (TopicPartition, i64)>,
        checkpoint_ages: impl IntoIterator<Item = (String, f64)>,
    ) -> String {
        // A partition no longer this process's (another process of a coordinated mirror runs
        // it now) leaves the exposition: its last lag would stand, counted by every process.
        let lags: Vec<PartitionLabels> = lags
            .into_iter()
            .map(|(tp, lag)| {
                let labels = PartitionLabels { topic: tp.topic, partition: tp.partition };
                self.lag.get_or_create(&labels).set(lag);
                labels
            })
            .collect();
        only_shown(&self.lag, &self.lag_shown, lags);
        // Likewise a group another process checkpoints now.
        let ages: Vec<GroupLabel> = checkpoint_ages
            .into_iter()
            .map(|(group, age)| {
                let label = GroupLabel { group };
                self.checkpoint_age.get_or_create(&label).set(age);
                label
            })
            .collect();
        only_shown(&self.checkpoint_age, &self.ages_shown, ages);
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::telemetry::{now_ms, Telemetry};

    #[test]
    fn exposition_names_follow_prometheus_conventions() {
        let t = Telemetry::default();
        let tp = TopicPartition::new("orders", 3);
        t.note_start(&tp, Some(10), Some(50));
        t.committed(&tp, 30, 3000, 40);
        t.metrics.transaction_committed(0.02);
        t.checkpointed("billing", now_ms() - 5000);
        let text = t.exposition();
        for line in [
            "kmirror_records_mirrored_total{topic=\"orders\"} 30",
            "kmirror_bytes_mirrored_total{topic=\"orders\"} 3000",
            "kmirror_partition_lag_records{topic=\"orders\",partition=\"3\"} 10",
            "kmirror_transactions_committed_total 1",
            "kmirror_transaction_commit_seconds_count 1",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        let age: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("kmirror_checkpoint_age_seconds{group=\"billing\"} "))
            .and_then(|v| v.parse().ok())
            .expect("checkpoint age");
        assert!((5.0..60.0).contains(&age), "{age}");
    }

    #[test]
    fn a_partition_forgotten_leaves_the_exposition() {
        let t = Telemetry::default();
        let (kept, handed) = (TopicPartition::new("orders", 0), TopicPartition::new("orders", 1));
        t.note_start(&kept, Some(10), Some(50));
        t.note_start(&handed, Some(0), Some(70));
        let lag = |p: i32| format!("kmirror_partition_lag_records{{topic=\"orders\",partition=\"{p}\"}}");
        let text = t.exposition();
        assert!(text.contains(&lag(0)) && text.contains(&lag(1)), "{text}");
        t.forget_partitions([&handed]);
        let text = t.exposition();
        assert!(text.contains(&lag(0)) && !text.contains(&lag(1)), "another process's now:\n{text}");
    }

    #[test]
    fn checkpoints_forgotten_leave_the_exposition() {
        let t = Telemetry::default();
        t.checkpointed("billing", now_ms() - 5000);
        let age = "kmirror_checkpoint_age_seconds{group=\"billing\"}";
        assert!(t.exposition().contains(age));
        t.forget_checkpoints();
        let text = t.exposition();
        assert!(!text.contains(age), "another process checkpoints the group now:\n{text}");
    }
}
