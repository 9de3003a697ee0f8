//! The table a run ends with: per topic what was copied, how fast, and where the shadow group
//! now stands against the source end.
use std::collections::BTreeMap;
use std::time::Duration;

use indicatif::{HumanBytes, HumanDuration};
use kmirror_state::TopicPartition;

use crate::ops::telemetry::PartitionProgress;

#[derive(Default)]
struct TopicTotals {
    partitions: usize,
    records: u64,
    bytes: u64,
    committed: i64,
    end: Option<i64>,
}

/// Renders the summary of a run that took `elapsed`.
pub(crate) fn render(partitions: &BTreeMap<TopicPartition, PartitionProgress>, elapsed: Duration) -> String {
    let mut topics: BTreeMap<&str, TopicTotals> = BTreeMap::new();
    for (tp, p) in partitions {
        let t = topics.entry(tp.topic.as_str()).or_default();
        t.partitions += 1;
        t.records += p.records;
        t.bytes += p.bytes;
        t.committed += p.committed.unwrap_or(0);
        t.end = match (t.end, p.end) {
            (Some(a), Some(b)) => Some(a + b),
            (None, Some(b)) if t.partitions == 1 => Some(b),
            _ => None,
        };
    }
    let seconds = elapsed.as_secs_f64().max(0.001);
    let header =
        ["topic", "partitions", "records", "bytes", "duration", "rate", "committed", "source_end", "lag"];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    let mut total = TopicTotals::default();
    for (topic, t) in &topics {
        rows.push(row(topic, t, elapsed, seconds));
        total.partitions += t.partitions;
        total.records += t.records;
        total.bytes += t.bytes;
        total.committed += t.committed;
    }
    total.end = topics.values().map(|t| t.end).sum();
    if topics.len() > 1 {
        rows.push(row("(all)", &total, elapsed, seconds));
    }
    crate::ops::table::aligned(&rows)
}

fn row(topic: &str, t: &TopicTotals, elapsed: Duration, seconds: f64) -> Vec<String> {
    let opt = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    vec![
        topic.to_string(),
        t.partitions.to_string(),
        t.records.to_string(),
        HumanBytes(t.bytes).to_string(),
        HumanDuration(elapsed).to_string(),
        format!("{:.0} rec/s", t.records as f64 / seconds),
        t.committed.to_string(),
        opt(t.end),
        opt(t.end.map(|e| (e - t.committed).max(0))),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_topic_and_a_total() {
        let mut parts = BTreeMap::new();
        let p = |records, committed, end| PartitionProgress {
            records,
            bytes: records * 10,
            committed: Some(committed),
            start: Some(0),
            end: Some(end),
            last_commit_ms: None,
        };
        parts.insert(TopicPartition::new("a", 0), p(100, 100, 100));
        parts.insert(TopicPartition::new("a", 1), p(50, 50, 60));
        parts.insert(TopicPartition::new("b", 0), p(0, 7, 7));
        let text = render(&parts, Duration::from_secs(2));
        let cells = |line: &str| -> Vec<String> {
            line.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect()
        };
        let lines: Vec<Vec<String>> = text.lines().map(cells).collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(
            lines[1],
            ["a", "2", "150", "1.46 KiB", "2 seconds", "75 rec/s", "150", "160", "10"],
            "{text}"
        );
        assert_eq!(lines[2][8], "0", "{text}");
        assert_eq!(lines[3][..3], ["(all)", "3", "150"], "{text}");
        assert_eq!(lines[3][6..], ["157", "167", "10"], "{text}");
    }
}
