//! The second half of a commit, after the transaction's records are delivered: the source
//! positions to the shadow group, the runs to the map topic, EndTxn. These are round trips to the
//! target and no work of the shard's, so they run on a thread of their own while the shard fills
//! its next transaction on its other producer.
//!
//! Why overlapping is exactly-once: the next transaction's first record is sent only once every
//! record of this one is acknowledged (so per partition the target holds this one's records,
//! then the next one's), and the next one commits only after this one has committed (so the
//! shadow group's positions and the map topic's runs land in the order the records were read).
//! If this one fails, the next one is aborted with it and the shard reads again from the last
//! position committed.
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

#[derive(Debug, Clone, Copy)]
pub(super) struct Timings {
    pub(super) offsets: Duration,
    pub(super) map: Duration,
    pub(super) end: Duration,
    pub(super) finished: Instant,
}

impl InFlight {
    /// Starts the commit's round trips on a thread of their own.
    pub(super) fn start(
        handed: Handed,
        calls: TxnCalls,
        offsets: TopicPartitionList,
        maps: Vec<MapRecord>,
    ) -> std::io::Result<Self> {
        let opened = handed.txn.started;
        let handle = std::thread::Builder::new()
            .name(format!("kmirror-commit-{}", calls.shard))
            .spawn(move || finish(&calls, &offsets, &maps, opened))?;
        Ok(Self { handed, handle })
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

/// Positions first, then the runs, then EndTxn: a commit that timed out is never given up (it
/// may have committed on the broker, and reading its records again would copy them twice).
fn finish(
    calls: &TxnCalls,
    offsets: &TopicPartitionList,
    maps: &[MapRecord],
    opened: Instant,
) -> Result<Timings, Step> {
    let started = Instant::now();
    calls.retry("send_offsets_to_transaction", Some(opened), |p, g| {
        p.send_offsets_to_transaction(offsets, g, CALL_TIMEOUT)
    })?;
    let offsets_done = Instant::now();
    // Written inside the transaction: the map is committed exactly when the data is.
    maps.iter().try_for_each(|r| calls.send_map_record(r))?;
    // Delivered first, or commit_transaction's own flush pays rust-rdkafka's 100 ms poll step.
    flush(&calls.producer, CALL_TIMEOUT)
        .map_err(|e| Step::Abort(format!("flush of the map records: {e}")))?;
    if let Some(e) = calls.producer.context().take().first_error {
        return Err(calls.abort_or_fatal(e, "map record delivery"));
    }
    let map_done = Instant::now();
    calls.retry("commit_transaction", None, |p, _| p.commit_transaction(CALL_TIMEOUT))?;
    let finished = Instant::now();
    Ok(Timings {
        offsets: offsets_done - started,
        map: map_done - offsets_done,
        end: finished - map_done,
        finished,
    })
}
