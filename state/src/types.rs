use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A Kafka offset (the position of a record in a partition).
pub type Offset = i64;

/// A topic and a partition number, written `topic/partition`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self { topic: topic.into(), partition }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

impl FromStr for TopicPartition {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (topic, partition) =
            s.rsplit_once('/').ok_or_else(|| format!("'{s}' is not of the form topic/partition"))?;
        let partition =
            partition.parse().map_err(|_| format!("'{partition}' in '{s}' is not a partition number"))?;
        if topic.is_empty() {
            return Err(format!("'{s}' has an empty topic name"));
        }
        Ok(Self::new(topic, partition))
    }
}

/// Source offsets `source_start..source_start+len` became target offsets
/// `target_start..target_start+len`, one record each, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub source_start: Offset,
    pub target_start: Offset,
    pub len: u32,
}

impl Run {
    pub fn source_end(&self) -> Offset {
        self.source_start + i64::from(self.len)
    }

    pub fn target_end(&self) -> Offset {
        self.target_start + i64::from(self.len)
    }

    /// Builds the runs of an ordered list of (source offset, target offset) pairs: a gap on
    /// either side starts a new run.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (Offset, Offset)>) -> Vec<Run> {
        let mut runs: Vec<Run> = Vec::new();
        for (source, target) in pairs {
            match runs.last_mut() {
                Some(run) if run.source_end() == source && run.target_end() == target => run.len += 1,
                _ => runs.push(Run { source_start: source, target_start: target, len: 1 }),
            }
        }
        runs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_partition_round_trips_through_text() {
        let tp: TopicPartition = "orders.eu/3".parse().expect("parse");
        assert_eq!(tp, TopicPartition::new("orders.eu", 3));
        assert_eq!(tp.to_string(), "orders.eu/3");
        assert!("orders".parse::<TopicPartition>().is_err());
        assert!("/3".parse::<TopicPartition>().is_err());
        assert!("orders/x".parse::<TopicPartition>().is_err());
    }

    #[test]
    fn gaps_on_either_side_start_a_new_run() {
        let runs = Run::from_pairs([(0, 10), (1, 11), (2, 12), (4, 13), (5, 15), (6, 16)]);
        assert_eq!(
            runs,
            vec![
                Run { source_start: 0, target_start: 10, len: 3 },
                Run { source_start: 4, target_start: 13, len: 1 },
                Run { source_start: 5, target_start: 15, len: 2 },
            ]
        );
    }
}
