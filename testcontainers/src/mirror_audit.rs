//! Compares a mirrored topic on two clusters partition by partition, from the audited logs.
use std::collections::HashMap;

use crate::error::Result;
use crate::record::RecordData;
use crate::KafkaCluster;

/// The audit of one partition: how the target's committed records compare with the source's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionAudit {
    pub partition: i32,
    pub source_records: usize,
    pub target_records: usize,
    /// Target records beyond the source's count of the same record.
    pub duplicates: usize,
    /// Source records with no copy on the target.
    pub missing: usize,
    /// The target holds exactly the source's records, in the same order, byte for byte.
    pub identical: bool,
}

/// Audits `source_topic` against `target_topic` for each partition of the source.
pub fn audit_mirror(
    source: &KafkaCluster,
    source_topic: &str,
    target: &KafkaCluster,
    target_topic: &str,
    partitions: i32,
) -> Result<Vec<PartitionAudit>> {
    (0..partitions)
        .map(|partition| {
            let from: Vec<RecordData> =
                source.read_committed_audited(source_topic, partition)?.into_iter().map(|r| r.data).collect();
            let to: Vec<RecordData> =
                target.read_committed_audited(target_topic, partition)?.into_iter().map(|r| r.data).collect();
            Ok(compare(partition, &from, &to))
        })
        .collect()
}

pub fn compare(partition: i32, source: &[RecordData], target: &[RecordData]) -> PartitionAudit {
    let mut counts: HashMap<&RecordData, i64> = HashMap::new();
    for record in source {
        *counts.entry(record).or_default() += 1;
    }
    for record in target {
        *counts.entry(record).or_default() -= 1;
    }
    let missing = counts.values().filter(|&&c| c > 0).sum::<i64>() as usize;
    let duplicates = counts.values().filter(|&&c| c < 0).map(|c| -c).sum::<i64>() as usize;
    PartitionAudit {
        partition,
        source_records: source.len(),
        target_records: target.len(),
        duplicates,
        missing,
        identical: source == target,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_duplicates_missing_and_order() {
        let r = |k: &str| RecordData::keyed(k, "v");
        let same = compare(0, &[r("a"), r("b")], &[r("a"), r("b")]);
        assert!(same.identical && same.duplicates == 0 && same.missing == 0);
        let swapped = compare(0, &[r("a"), r("b")], &[r("b"), r("a")]);
        assert!(!swapped.identical && swapped.duplicates == 0 && swapped.missing == 0);
        let dup = compare(0, &[r("a"), r("b")], &[r("a"), r("a"), r("b")]);
        assert_eq!((dup.duplicates, dup.missing, dup.identical), (1, 0, false));
        let lost = compare(0, &[r("a"), r("b")], &[r("a")]);
        assert_eq!((lost.duplicates, lost.missing), (0, 1));
    }
}
