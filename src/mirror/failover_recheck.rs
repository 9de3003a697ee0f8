//! The claims read again once the shards have fenced. A start reads the claims before it writes
//! anything (see [`crate::mirror::failover_guard`]), but its shards fence later, once the plan
//! is made: a `failover --execute` landing in between fences the shards' ids first, and the
//! shards' own fencing then takes the ids back from it, so nothing would stop them copying
//! behind the failover. The failover writes its claims before it fences, so a read begun after a
//! producer fenced sees every failover that fenced before it; one that fences after it fences
//! the producer itself (and aborts the transaction it has open).
//!
//! So after every fencing (a shard's start, a producer made again) no transaction begins until a
//! read begun after it has found no failover, or failed, or [`read_limit`] has passed (a read
//! that fails only warns, as at the start: the mirror goes on). A failed read is made again
//! every [`RETRY`] until one gets through, so that a failover missed while the claims could not
//! be read still stops the run once they can. The read starts at the fencing, beside the shard's
//! positions and first fetch, so a shard seldom waits for it. A found failover stops the run
//! (exit code 3, as at the start), shards that have nothing to copy too. Group sync is never
//! fenced: each of its cycles reads the claims first.
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use tracing::{debug, info, warn};

use crate::config::MirrorSettings;
use crate::error::{Error, Result};
use crate::kafka::topic_reader::TailReader;
use crate::mirror::failover_guard::{read_failovers, Failover};
use crate::mirror::owners::{Claims, ShardOwner};

/// What the run's reads of the claims have found so far.
#[derive(Default)]
pub(crate) struct FailoverRecheck {
    state: Mutex<State>,
    read: Condvar,
    /// The start's reader of the claims, connected already, for the reads after it; one busy
    /// with a read that takes long is not waited for (a new one is made).
    reader: Mutex<Option<TailReader>>,
}

#[derive(Default)]
struct State {
    /// Fencings noted so far: each one's [`Fencing`] has its number.
    fenced: u64,
    /// The fencings a read that got through began after.
    covered: u64,
    /// The fencings a finished read, through or failed, began after: their shards wait no more.
    tried: u64,
    /// The reading thread waits to read again after a failed read (see [`RETRY`]): it reads for
    /// the fencings noted meanwhile too.
    retrying: bool,
    /// When the read under way began (its thread reads again while fencings are left
    /// uncovered); None: none is.
    reading: Option<Instant>,
    /// The failover claims a read found in force: every wait fails on them from then on.
    found: Vec<ShardOwner>,
}

/// A producer's fencing, to wait on before its first transaction: its number, and when it was
/// noted (a wait gives up [`read_limit`] after).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fencing(u64, Instant);

impl FailoverRecheck {
    /// Notes that a shard's producers have fenced, and starts a claims read of mirror `settings`
    /// on `target` unless one is under way (which reads again for it when done).
    pub(crate) fn fenced(self: &Arc<Self>, target: ClientConfig, settings: &MirrorSettings) -> Fencing {
        let mut state = self.lock();
        state.fenced += 1;
        let fencing = Fencing(state.fenced, Instant::now());
        // A read under way for long (a target out of reach just now) does not hold this
        // fencing's up: another reader starts beside it.
        if !state.retrying && state.reading.is_none_or(|began| began.elapsed() > STALE_READ) {
            state.reading = Some(Instant::now());
            let this = self.clone();
            let settings = settings.clone();
            let spawned = std::thread::Builder::new()
                .name("kmirror-claims".into())
                .spawn(move || this.read_until_covered(|| this.read(&target, &settings), RETRY));
            if let Err(e) = spawned {
                warn!(error = %e, "could not start reading the shards' claims: a failover since the start would go unnoticed");
                state.reading = None;
                state.tried = state.fenced;
            }
        }
        fencing
    }

    /// Before a transaction begins: waits for a read begun after the fencing `pending` holds, if
    /// any, then clears it; false if `stop` was set first (the transaction is not to begin: a
    /// stopping run does not wait out a slow read). The failover the read found is the error.
    pub(crate) fn before_transaction(
        &self,
        pending: &mut Option<Fencing>,
        settings: &MirrorSettings,
        stop: &AtomicBool,
    ) -> Result<bool> {
        self.before_transaction_within(pending, &settings.name, read_limit(settings), stop)
    }

    fn before_transaction_within(
        &self,
        pending: &mut Option<Fencing>,
        name: &str,
        limit: Duration,
        stop: &AtomicBool,
    ) -> Result<bool> {
        while !self.settled_within(pending, name, limit, STOP_CHECK)? {
            if stop.load(Ordering::Relaxed) {
                debug!("stopping before the shards' claims were read again: no transaction begun");
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// As [`Self::before_transaction`], waiting at most `wait`: false while the read is still to
    /// come (a shard's thread has its commands to serve meanwhile).
    pub(crate) fn settled(
        &self,
        pending: &mut Option<Fencing>,
        settings: &MirrorSettings,
        wait: Duration,
    ) -> Result<bool> {
        self.settled_within(pending, &settings.name, read_limit(settings), wait)
    }

    fn settled_within(
        &self,
        pending: &mut Option<Fencing>,
        name: &str,
        limit: Duration,
        wait: Duration,
    ) -> Result<bool> {
        let Some(Fencing(number, noted)) = *pending else { return Ok(true) };
        let gives_up = noted + limit;
        let covered = self.wait_until(number, name, gives_up.min(Instant::now() + wait))?;
        if !covered && Instant::now() < gives_up {
            return Ok(false);
        }
        if !covered {
            warn!("the shards' claims were not read in time: a failover since the start would go unnoticed");
        }
        *pending = None;
        Ok(true)
    }

    /// Keeps the start's reader of the claims for the reads after it.
    pub(crate) fn keep_reader(&self, reader: TailReader) {
        if let Ok(mut kept) = self.reader.lock() {
            kept.get_or_insert(reader);
        }
    }

    /// Reads the failover claims in force.
    fn read(&self, target: &ClientConfig, settings: &MirrorSettings) -> Result<Vec<ShardOwner>> {
        self.with_reader(target, settings, |reader| {
            read_failovers(reader, &settings.name, settings.shards, settings.connect_timeout)
        })
    }

    /// Every shard's claims, read on the kept reader (a clean stop's, see `hosts`).
    pub(crate) fn claims(&self, target: &ClientConfig, settings: &MirrorSettings) -> Result<Claims> {
        self.with_reader(target, settings, |reader| {
            Claims::read_with(reader, &settings.name, 0..settings.shards, settings.connect_timeout)
        })
    }

    /// `read` on the kept reader, or on a new one where another read holds it.
    fn with_reader<T>(
        &self,
        target: &ClientConfig,
        settings: &MirrorSettings,
        read: impl FnOnce(&TailReader) -> Result<T>,
    ) -> Result<T> {
        match self.reader.try_lock() {
            Ok(mut kept) => match &mut *kept {
                Some(reader) => read(reader),
                empty => read(empty.insert(Claims::reader(target, &settings.name)?)),
            },
            Err(_) => read(&Claims::reader(target, &settings.name)?),
        }
    }

    /// Reads the claims now, for a write no fencing guards (group sync); the failover found is
    /// the error.
    pub(crate) fn read_now(&self, target: &ClientConfig, settings: &MirrorSettings) -> Result<()> {
        let read = self.read(target, settings);
        if let Err(e) = &read {
            warn!(error = %e, "could not read the shards' claims: a failover since the start would go unnoticed until a read gets through");
        }
        self.take_in(None, read);
        self.failover(&settings.name).map_or(Ok(()), Err)
    }

    /// The failover a read has found, as the error that stops the run.
    pub(crate) fn failover(&self, name: &str) -> Option<Error> {
        Failover::of(&self.lock().found).map(|f| f.error(name))
    }

    /// Waits until a read begun after fencing `number` has finished (got through or failed) or
    /// `deadline` passes: whether one has. The failover a read found is the error.
    fn wait_until(&self, number: u64, name: &str, deadline: Instant) -> Result<bool> {
        let mut state = self.lock();
        while state.tried < number && state.found.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self.read.wait_timeout(state, left).map(|(s, _)| s).unwrap_or_else(|p| p.into_inner().0);
        }
        match Failover::of(&state.found) {
            Some(failover) => Err(failover.error(name)),
            None => Ok(state.tried >= number),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the claims until a read begun after every fencing noted has got through; after a
    /// failed one, again in `retry`, unless another thread reads again already (one began
    /// beside a read that hung): that one reads for every fencing.
    fn read_until_covered(&self, read: impl Fn() -> Result<Vec<ShardOwner>>, retry: Duration) {
        let mut failed_before = false;
        loop {
            let upto = {
                let mut state = self.lock();
                if failed_before {
                    state.retrying = false;
                }
                if state.covered >= state.fenced {
                    state.reading = None;
                    return;
                }
                state.reading = Some(Instant::now());
                state.fenced
            };
            // A read that panicked counts as one that failed: the waits must still end.
            let read = std::panic::catch_unwind(AssertUnwindSafe(&read))
                .unwrap_or_else(|_| Err(Error::Internal("reading the shards' claims panicked".into())));
            let failed = read.is_err();
            match (&read, failed_before) {
                (Err(e), false) => {
                    warn!(error = %e, "could not read the shards' claims again: the shards go on, and a failover since the start would go unnoticed until a read gets through (reading again every {} s)", retry.as_secs())
                }
                (Err(e), true) => debug!(error = %e, "the shards' claims still cannot be read"),
                (Ok(_), true) => info!("the shards' claims read again after failed reads"),
                (Ok(_), false) => {}
            }
            let again = self.finish(upto, read);
            if failed {
                if !again {
                    return;
                }
                failed_before = true;
                std::thread::sleep(retry);
            }
        }
    }

    /// Takes in a read begun when `upto` fencings had been noted; whether this thread is to read
    /// again (the read failed, and no other thread reads again already).
    fn finish(&self, upto: u64, read: Result<Vec<ShardOwner>>) -> bool {
        // One critical section with the failover it found: a fencing seen covered must see it.
        let again = self.take_in(Some(upto), read);
        debug!(upto, "shard claims read again");
        again
    }

    /// Takes in a read (begun when `upto` fencings had been noted, if it covers them). A failed
    /// one covers none, but ends their shards' waits: as at the start, the check is for a
    /// person's mistake, and a mirror must not stop for want of it.
    /// Returns whether the caller, a reading thread, is to read again (see `finish`).
    fn take_in(&self, upto: Option<u64>, read: Result<Vec<ShardOwner>>) -> bool {
        let mut state = self.lock();
        let mut again = false;
        if let Some(upto) = upto {
            state.tried = state.tried.max(upto);
            match read.is_ok() {
                true => state.covered = state.covered.max(upto),
                false if !state.retrying => {
                    state.retrying = true;
                    again = true;
                }
                false => {}
            }
        }
        if let Ok(found) = read {
            if state.found.is_empty() {
                state.found = found;
            }
        }
        self.read.notify_all();
        again
    }
}

/// How often a wait before a transaction looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// How soon a failed read of the claims after a fencing is made again.
const RETRY: Duration = Duration::from_secs(2);

/// How long a read may be under way before a new fencing starts one of its own.
const STALE_READ: Duration = Duration::from_secs(1);

/// How long a wait lasts at most: a read gives up after the connect timeout, and one more may
/// be under way for a later fencing.
fn read_limit(settings: &MirrorSettings) -> Duration {
    settings.connect_timeout * 2 + Duration::from_secs(5)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failover(shard: u32) -> ShardOwner {
        ShardOwner {
            shard,
            host: "dr-host".into(),
            pid: 7,
            state: crate::mirror::owners::FAILED_OVER.into(),
            at_ms: crate::ops::telemetry::now_ms(),
            instance: String::new(),
        }
    }

    fn soon(ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(ms)
    }

    #[test]
    fn a_fencing_waits_for_a_read_begun_after_it() {
        let recheck = FailoverRecheck::default();
        {
            let mut state = recheck.lock();
            state.fenced = 2;
            state.reading = Some(Instant::now());
        }
        // A read begun when only the first had fenced covers the first alone.
        recheck.finish(1, Ok(Vec::new()));
        assert!(recheck.wait_until(1, "m", soon(5_000)).expect("no failover"));
        let started = Instant::now();
        assert!(!recheck.wait_until(2, "m", soon(200)).expect("no failover"), "not covered yet");
        assert!(started.elapsed() >= Duration::from_millis(200), "the second waited for a read of its own");
        assert!(recheck.failover("m").is_none());
        recheck.finish(2, Ok(vec![failover(0), failover(1)]));
        let err = recheck.wait_until(2, "m", soon(5_000)).expect_err("a failover was found");
        assert_eq!(err.exit_code(), 3);
        assert!(err.to_string().contains("took shards 0, 1"), "{err}");
        // Found once, it fails every later wait, a fencing already covered too, and the run.
        assert!(recheck.wait_until(1, "m", soon(5_000)).is_err());
        assert!(recheck.failover("m").is_some_and(|e| e.exit_code() == 3));
    }

    #[test]
    fn a_shard_waits_in_steps_and_gives_up_at_the_limit() {
        let recheck = FailoverRecheck::default();
        recheck.lock().fenced = 2;
        let limit = Duration::from_millis(300);
        let mut pending = Some(Fencing(1, Instant::now()));
        let step = Duration::from_millis(50);
        assert!(!recheck.settled_within(&mut pending, "m", limit, step).expect("no failover"));
        assert!(pending.is_some(), "still to be read");
        recheck.finish(1, Ok(Vec::new()));
        assert!(recheck.settled_within(&mut pending, "m", limit, step).expect("no failover"));
        assert!(pending.is_none(), "read after the fencing: cleared");
        // Never read: given up at the limit, in steps of its own.
        let mut pending = Some(Fencing(2, Instant::now()));
        let started = Instant::now();
        while !recheck.settled_within(&mut pending, "m", limit, step).expect("no failover") {
            assert!(started.elapsed() < Duration::from_secs(5));
        }
        assert!(started.elapsed() >= limit && pending.is_none());
    }

    #[test]
    fn a_stop_ends_the_wait_before_a_transaction_and_begins_none() {
        let recheck = Arc::new(FailoverRecheck::default());
        recheck.lock().fenced = 1;
        let stop = Arc::new(AtomicBool::new(false));
        let mut pending = Some(Fencing(1, Instant::now()));
        let stopper = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                stop.store(true, Ordering::Relaxed);
            })
        };
        let started = Instant::now();
        let began = recheck
            .before_transaction_within(&mut pending, "m", Duration::from_secs(30), &stop)
            .expect("no failover");
        let _ = stopper.join();
        assert!(!began, "no transaction while the read is still to come");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the stop ended the wait: {:?}",
            started.elapsed()
        );
        assert!(pending.is_some(), "the fencing is still to be covered");
        // Read meanwhile: the wait ends at once, stop or not.
        recheck.finish(1, Ok(Vec::new()));
        assert!(recheck
            .before_transaction_within(&mut pending, "m", Duration::from_secs(30), &stop)
            .expect("read"));
        assert!(pending.is_none());
    }

    #[test]
    fn a_fencing_noted_during_a_read_gets_a_read_of_its_own() {
        let recheck = FailoverRecheck::default();
        recheck.lock().fenced = 1;
        let reads = std::cell::Cell::new(0);
        recheck.read_until_covered(
            || {
                reads.set(reads.get() + 1);
                match reads.get() {
                    // Another shard fences while the first read is under way; the failover lands
                    // between the two reads.
                    1 => {
                        recheck.lock().fenced = 2;
                        Ok(Vec::new())
                    }
                    _ => Ok(vec![failover(3)]),
                }
            },
            Duration::from_millis(10),
        );
        assert_eq!(reads.get(), 2);
        let state = recheck.lock();
        assert_eq!((state.covered, state.reading.is_some(), state.found.len()), (2, false, 1));
    }

    #[test]
    fn one_thread_reads_again_after_failed_reads() {
        let recheck = FailoverRecheck::default();
        recheck.lock().fenced = 1;
        assert!(
            recheck.finish(1, Err(Error::Internal("unreadable".into()))),
            "the first failed read's thread reads again"
        );
        assert!(!recheck.finish(1, Err(Error::Internal("unreadable".into()))), "another one beside it ends");
        assert!(!recheck.finish(1, Ok(Vec::new())), "a read that got through is not made again");
        assert_eq!(recheck.lock().covered, 1);
    }

    #[test]
    fn a_failed_or_panicked_read_lets_the_shards_go_on_and_is_made_again_until_one_gets_through() {
        let recheck = FailoverRecheck::default();
        recheck.lock().fenced = 2;
        let reads = std::cell::Cell::new(0);
        let seen_before_success = std::cell::Cell::new(None);
        recheck.read_until_covered(
            || {
                reads.set(reads.get() + 1);
                match reads.get() {
                    1 => {
                        recheck.lock().fenced = 3;
                        Err(Error::Internal("the shards topic could not be read".into()))
                    }
                    2 => panic!("a read that panics"),
                    _ => {
                        // Asserted after the reads: a panic here would be one more failed read.
                        let settled = recheck.wait_until(3, "m", soon(0)).ok();
                        seen_before_success.set(Some((settled, recheck.lock().covered)));
                        // A failover that landed while the claims could not be read.
                        Ok(vec![failover(2)])
                    }
                }
            },
            Duration::from_millis(10),
        );
        assert_eq!(reads.get(), 3);
        // The failed reads ended the shards' waits, and covered none.
        assert_eq!(seen_before_success.get(), Some((Some(true), 0)));
        assert_eq!(recheck.lock().covered, 3);
        assert!(recheck.lock().reading.is_none(), "a later fencing starts a read again");
        assert!(recheck.failover("m").is_some_and(|e| e.exit_code() == 3), "found late, it stops the run");
    }
}
