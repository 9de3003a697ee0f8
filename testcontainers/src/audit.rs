//! The transaction-aware log audit: what a correct `read_committed` reader would see.
//!
//! Some brokers (the Tansu test broker among them) hand aborted records to `read_committed`
//! readers, so exactly-once tests cannot trust a consumer's view. The audit works from the raw
//! log instead: a transactional record is visible only if its producer's next control marker
//! after it is a commit.
use std::collections::{BTreeSet, HashMap};

use crate::error::Result;
use crate::raw_log::{read_raw_log, ControlKind, RawRecord};
use crate::record::StoredRecord;
use crate::KafkaCluster;

/// Where every data offset of a partition ended up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditReport {
    /// Offsets a correct `read_committed` reader returns, ascending.
    pub visible: Vec<i64>,
    /// Offsets of records whose transaction was aborted.
    pub aborted: Vec<i64>,
    /// Offsets of records whose transaction has no marker yet.
    pub open: Vec<i64>,
    /// Offsets taken by commit/abort markers.
    pub markers: Vec<i64>,
}

/// Classifies every record of a raw log (in offset order) by the fate of its transaction.
pub fn audit_records(records: &[RawRecord]) -> AuditReport {
    let mut report = AuditReport::default();
    let mut pending: HashMap<i64, Vec<i64>> = HashMap::new();
    for record in records {
        if record.control {
            report.markers.push(record.offset);
            let offsets = pending.remove(&record.producer_id).unwrap_or_default();
            match record.control_kind {
                Some(ControlKind::Commit) => report.visible.extend(offsets),
                Some(ControlKind::Abort) => report.aborted.extend(offsets),
                // Unknown marker kinds end nothing: keep the transaction open.
                _ => {
                    pending.insert(record.producer_id, offsets);
                }
            }
        } else if record.transactional {
            pending.entry(record.producer_id).or_default().push(record.offset);
        } else {
            report.visible.push(record.offset);
        }
    }
    report.open = pending.into_values().flatten().collect();
    report.visible.sort_unstable();
    report.aborted.sort_unstable();
    report.open.sort_unstable();
    report
}

impl KafkaCluster {
    /// Audits one partition of this cluster from its raw log.
    pub fn audit_partition(&self, topic: &str, partition: i32) -> Result<AuditReport> {
        let log = read_raw_log(self, topic, partition)?;
        Ok(audit_records(&log.records))
    }

    /// The records a correct `read_committed` reader would return from the partition, in order,
    /// with their full contents.
    pub fn read_committed_audited(&self, topic: &str, partition: i32) -> Result<Vec<StoredRecord>> {
        let report = self.audit_partition(topic, partition)?;
        let visible: BTreeSet<i64> = report.visible.iter().copied().collect();
        let all = self.read_uncommitted(topic, partition)?;
        Ok(all.into_iter().filter(|r| visible.contains(&r.offset)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(offset: i64, producer_id: i64, transactional: bool) -> RawRecord {
        RawRecord {
            offset,
            producer_id,
            producer_epoch: 0,
            transactional,
            control: false,
            control_kind: None,
        }
    }

    fn marker(offset: i64, producer_id: i64, kind: ControlKind) -> RawRecord {
        RawRecord {
            offset,
            producer_id,
            producer_epoch: 0,
            transactional: true,
            control: true,
            control_kind: Some(kind),
        }
    }

    #[test]
    fn committed_transaction_is_visible_and_marker_is_not() {
        let log = [data(0, 7, true), data(1, 7, true), marker(2, 7, ControlKind::Commit)];
        let report = audit_records(&log);
        assert_eq!(report.visible, vec![0, 1]);
        assert_eq!(report.markers, vec![2]);
        assert!(report.aborted.is_empty() && report.open.is_empty());
    }

    #[test]
    fn aborted_transaction_is_dropped() {
        let log = [
            data(0, 7, true),
            marker(1, 7, ControlKind::Abort),
            data(2, 7, true),
            marker(3, 7, ControlKind::Commit),
        ];
        let report = audit_records(&log);
        assert_eq!(report.visible, vec![2]);
        assert_eq!(report.aborted, vec![0]);
    }

    #[test]
    fn interleaved_producers_are_judged_by_their_own_markers() {
        let log = [
            data(0, 1, true),
            data(1, 2, true),
            data(2, 0, false),
            data(3, 1, true),
            marker(4, 2, ControlKind::Abort),
            data(5, 2, true),
            marker(6, 1, ControlKind::Commit),
            marker(7, 2, ControlKind::Commit),
        ];
        let report = audit_records(&log);
        assert_eq!(report.visible, vec![0, 2, 3, 5]);
        assert_eq!(report.aborted, vec![1]);
        assert_eq!(report.markers, vec![4, 6, 7]);
    }

    #[test]
    fn open_transaction_at_the_end_is_not_visible() {
        let log = [data(0, 1, true), marker(1, 1, ControlKind::Commit), data(2, 1, true), data(3, 0, false)];
        let report = audit_records(&log);
        assert_eq!(report.visible, vec![0, 3]);
        assert_eq!(report.open, vec![2]);
    }
}
