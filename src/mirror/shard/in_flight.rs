//! The second half of a commit, after the transaction's records are delivered: the source
//! positions to the shadow group, the runs to the map topic, EndTxn. These are round trips to the
//! target and no work of the shard's, so they run on a thread of their own while the shard fills
//! its next transaction on its other producer; and a transaction's positions and runs are sent
//! while the one before it is still in EndTxn, so only its own EndTxn waits for that one.
//!
//! Why overlapping is exactly-once: the next transaction's first record is sent only once every
//! record of this one is acknowledged (so per partition the target holds this one's records,
//! then the next one's); its positions and runs are sent only once this one's are acknowledged
//! (the group coordinator keeps, of two committed transactional offsets, the one written later to
//! its log, and the map topic is read in log order); and it commits only after this one has
//! committed (so the shadow group's positions and the map topic's runs land in the order the
//! records were read). If this one fails, the next one is aborted with it and the shard reads
//! again from the last position committed.
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kmirror_state::{MapRecord, TopicPartition};
use rdkafka::producer::Producer;
use rdkafka::TopicPartitionList;

use super::txn_calls::{Step, TxnCalls};
use super::CALL_TIMEOUT;
use crate::mirror::flush::flush;
use crate::mirror::transaction::OpenTransaction;

/// A transaction whose records are delivered and whose commit is under way.
pub(super) struct InFlight {
    pub(super) handed: Handed,
    progress: Arc<Progress>,
    handle: JoinHandle<Result<Timings, Step>>,
}

/// What the shard keeps of a transaction it handed to a commit thread.
pub(super) struct Handed {
    /// Which of the shard's producers holds it.
    pub(super) producer: usize,
    pub(super) txn: OpenTransaction,
    /// The source positions it commits.
    pub(super) positions: Vec<(TopicPartition, i64)>,
    /// When the shard decided to commit it.
    pub(super) due: Instant,
}

/// How long each of the commit thread's steps took, not counting its waits for the
/// transaction before it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timings {
    /// The runs sent and the positions acknowledged.
    pub(super) offsets: Duration,
    /// The runs acknowledged, after that.
    pub(super) map: Duration,
    pub(super) end: Duration,
    /// Waiting for the transaction before to send its positions, then to commit.
    pub(super) waited: Duration,
    pub(super) finished: Instant,
}

/// How far a commit has come, for the commit after it to wait on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Sending,
    /// Its positions and runs are acknowledged; EndTxn is next.
    Prepared,
    Committed,
    Failed,
}

#[derive(Debug)]
struct Progress {
    phase: Mutex<Phase>,
    changed: Condvar,
}

impl Progress {
    fn new() -> Arc<Self> {
        Arc::new(Self { phase: Mutex::new(Phase::Sending), changed: Condvar::new() })
    }

    fn set(&self, phase: Phase) {
        let mut now = self.phase.lock().unwrap_or_else(|p| p.into_inner());
        // Committed and Failed are final, and nothing goes back.
        if !matches!(*now, Phase::Committed | Phase::Failed) && phase > *now {
            *now = phase;
        }
        self.changed.notify_all();
    }

    /// Waits until the commit has reached `phase`; false if it failed instead.
    fn reached(&self, phase: Phase) -> bool {
        let mut now = self.phase.lock().unwrap_or_else(|p| p.into_inner());
        while *now < phase {
            now = self.changed.wait(now).unwrap_or_else(|p| p.into_inner());
        }
        *now != Phase::Failed
    }
}

/// Marks the commit failed however its thread ends (an error, a panic) unless it committed, so
/// that the commit after it never waits for ever.
struct FailUnlessCommitted(Arc<Progress>);

impl Drop for FailUnlessCommitted {
    fn drop(&mut self) {
        self.0.set(Phase::Failed);
    }
}

impl InFlight {
    /// Starts the commit's round trips on a thread of their own, after those of `before` (the
    /// commit under way when this one was handed off, if any).
    pub(super) fn start(
        handed: Handed,
        calls: TxnCalls,
        offsets: Vec<TopicPartitionList>,
        maps: Vec<MapRecord>,
        before: Option<&InFlight>,
    ) -> std::io::Result<Self> {
        let opened = handed.txn.started;
        let progress = Progress::new();
        let own = FailUnlessCommitted(progress.clone());
        let before = before.map(|b| b.progress.clone());
        let handle = std::thread::Builder::new()
            .name(format!("kmirror-commit-{}", calls.shard))
            .spawn(move || finish(&calls, &offsets, &maps, opened, &own.0, before.as_deref()))?;
        Ok(Self { handed, progress, handle })
    }

    pub(super) fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits for the commit's outcome.
    pub(super) fn wait(self) -> (Handed, Result<Timings, Step>) {
        let outcome =
            self.handle.join().unwrap_or_else(|_| Err(Step::Abort("the commit thread panicked".into())));
        (self.handed, outcome)
    }
}

/// The runs and the positions, then EndTxn: a commit that timed out is never given up (it
/// may have committed on the broker, and reading its records again would copy them twice).
fn finish(
    calls: &TxnCalls,
    offsets: &[TopicPartitionList],
    maps: &[MapRecord],
    opened: Instant,
    own: &Progress,
    before: Option<&Progress>,
) -> Result<Timings, Step> {
    let gone = || Step::Abort("the transaction before it was not committed".into());
    let waiting = Instant::now();
    if before.is_some_and(|b| !b.reached(Phase::Prepared)) {
        return Err(gone());
    }
    let started = Instant::now();
    // Written inside the transaction: the map is committed exactly when the data is. Sent
    // first, so that their AddPartitionsToTxn and Produce travel while the positions' two
    // round trips a part (AddOffsetsToTxn, TxnOffsetCommit) are waited for.
    maps.iter().try_for_each(|r| calls.send_map_record(r))?;
    for part in offsets {
        calls.retry("send_offsets_to_transaction", Some(opened), |p, g| {
            p.send_offsets_to_transaction(part, g, CALL_TIMEOUT)
        })?;
    }
    let offsets_done = Instant::now();
    // Delivered first, or commit_transaction's own flush pays rust-rdkafka's 100 ms poll step.
    flush(&calls.producer, CALL_TIMEOUT)
        .map_err(|e| Step::Abort(format!("flush of the map records: {e}")))?;
    if let Some(failed) = calls.producer.context().take().first_error {
        return Err(calls.abort_or_fatal(failed.error, "map record delivery"));
    }
    let map_done = Instant::now();
    own.set(Phase::Prepared);
    if before.is_some_and(|b| !b.reached(Phase::Committed)) {
        return Err(gone());
    }
    let ending = Instant::now();
    calls.retry("commit_transaction", None, |p, _| p.commit_transaction(CALL_TIMEOUT))?;
    let finished = Instant::now();
    own.set(Phase::Committed);
    Ok(Timings {
        offsets: offsets_done - started,
        map: map_done - offsets_done,
        end: finished - ending,
        waited: (started - waiting) + (ending - map_done),
        finished,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiter_sees_each_phase_and_a_failure_ends_every_wait() {
        let progress = Progress::new();
        progress.set(Phase::Prepared);
        assert!(progress.reached(Phase::Prepared));
        let waiter = {
            let p = progress.clone();
            std::thread::spawn(move || p.reached(Phase::Committed))
        };
        progress.set(Phase::Failed);
        assert_eq!(waiter.join().ok(), Some(false));
        // Failed stays failed, whatever is set after it.
        progress.set(Phase::Committed);
        assert!(!progress.reached(Phase::Committed));
    }

    #[test]
    fn a_commit_thread_that_ends_without_committing_marks_itself_failed() {
        let progress = Progress::new();
        drop(FailUnlessCommitted(progress.clone()));
        assert!(!progress.reached(Phase::Prepared));
        let committed = Progress::new();
        committed.set(Phase::Committed);
        drop(FailUnlessCommitted(committed.clone()));
        assert!(committed.reached(Phase::Committed));
    }
}
