//! The claims read again once the shards have fenced. A start reads the claims before it writes
//! anything (see [`crate::mirror::failover_guard`]), but its shards fence later, once the plan
//! is made: a `failover --execute` landing in between fences the shards' ids first, and the
//! shards' own fencing then takes the ids back from it, so nothing would stop them copying
//! behind the failover. The failover writes its claims before it fences, so a read begun after a
//! shard fenced sees every failover that fenced before it; one that fences after it fences the
//! shard itself. A shard's first commit waits for such a read (begun beside its first
//! transaction, so a shard with records to copy seldom waits at all), and the run's group sync
//! waits for the reads of every shard fenced so far.
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use tracing::warn;

use crate::config::MirrorSettings;
use crate::error::{Error, Result};
use crate::mirror::failover_guard::{read_failovers, Failover};
use crate::mirror::owners::ShardOwner;

/// What the run's shards have asked of the claims so far.
#[derive(Debug, Default)]
pub(crate) struct FailoverRecheck {
    state: Mutex<State>,
    read: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Fencings noted so far: each one's [`Fencing`] is its number.
    fenced: u64,
    /// The fencings a finished read began after.
    covered: u64,
    /// A read is under way (its thread reads again while fencings are left uncovered).
    reading: bool,
    /// The failover claims a read found in force: every wait fails on them from then on.
    found: Vec<ShardOwner>,
}

/// A shard's fencing, to wait on before its first commit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fencing(u64);

impl FailoverRecheck {
    /// Notes that a shard's producers have fenced, and starts a claims read of mirror `settings`
    /// on `target` unless one is under way (which reads again for it when done).
    pub(crate) fn fenced(self: &Arc<Self>, target: ClientConfig, settings: &MirrorSettings) -> Fencing {
        let mut state = self.lock();
        state.fenced += 1;
        let fencing = Fencing(state.fenced);
        if !state.reading {
            state.reading = true;
            let this = self.clone();
            let (name, shards, timeout) = (settings.name.clone(), settings.shards, settings.connect_timeout);
            let spawned = std::thread::Builder::new()
                .name("kmirror-claims".into())
                .spawn(move || this.read_until_covered(|| read_failovers(&target, &name, shards, timeout)));
            if let Err(e) = spawned {
                warn!(error = %e, "could not start reading the shards' claims: a failover since the start would go unnoticed");
                state.reading = false;
                state.covered = state.fenced;
            }
        }
        fencing
    }

    /// Waits until a claims read begun after `fencing` has finished; the failover it found, if
    /// any, is the error (exit code 3, as at the start).
    pub(crate) fn wait(&self, fencing: Fencing, settings: &MirrorSettings) -> Result<()> {
        self.wait_for(fencing, &settings.name, read_limit(settings))
    }

    /// As [`Self::wait`], for every shard fenced so far (none: no wait).
    pub(crate) fn wait_all(&self, settings: &MirrorSettings) -> Result<()> {
        let fenced = Fencing(self.lock().fenced);
        self.wait(fenced, settings)
    }

    fn wait_for(&self, fencing: Fencing, name: &str, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        let mut state = self.lock();
        while state.covered < fencing.0 && state.found.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                warn!(
                    "the shards' claims were not read in time: a failover since the start would go unnoticed"
                );
                break;
            }
            state = self.read.wait_timeout(state, left).map(|(s, _)| s).unwrap_or_else(|p| p.into_inner().0);
        }
        match Failover::of(&state.found) {
            Some(Failover { by, shards, ago }) => {
                Err(Error::FailedOver { name: name.to_string(), by, shards, ago })
            }
            None => Ok(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the claims until a read has begun after every fencing noted.
    fn read_until_covered(&self, read: impl Fn() -> Result<Vec<ShardOwner>>) {
        loop {
            let upto = {
                let mut state = self.lock();
                if state.covered >= state.fenced {
                    state.reading = false;
                    return;
                }
                state.fenced
            };
            self.finish(upto, read());
        }
    }

    /// Takes in a read begun when `upto` fencings had been noted.
    fn finish(&self, upto: u64, read: Result<Vec<ShardOwner>>) {
        let mut state = self.lock();
        state.covered = state.covered.max(upto);
        match read {
            Ok(found) if state.found.is_empty() => state.found = found,
            Ok(_) => {}
            // As at the start: the check is for a person's mistake, and a mirror must not stop
            // for want of it.
            Err(e) => {
                warn!(error = %e, "could not read the shards' claims again: a failover since the start would go unnoticed")
            }
        }
        self.read.notify_all();
    }
}

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

    #[test]
    fn a_fencing_waits_for_a_read_begun_after_it() {
        let recheck = FailoverRecheck::default();
        let (first, second) = {
            let mut state = recheck.lock();
            state.fenced = 2;
            state.reading = true;
            (Fencing(1), Fencing(2))
        };
        // A read begun when only the first had fenced covers the first alone.
        recheck.finish(1, Ok(Vec::new()));
        assert!(recheck.wait_for(first, "m", Duration::from_secs(5)).is_ok());
        let started = Instant::now();
        assert!(
            recheck.wait_for(second, "m", Duration::from_millis(200)).is_ok(),
            "gives up, as a failed read does"
        );
        assert!(started.elapsed() >= Duration::from_millis(200), "the second waited for a read of its own");
        recheck.finish(2, Ok(vec![failover(0), failover(1)]));
        let err = recheck.wait_for(second, "m", Duration::from_secs(5)).expect_err("a failover was found");
        assert_eq!(err.exit_code(), 3);
        assert!(err.to_string().contains("took shards 0, 1"), "{err}");
        // Found once, it fails every later wait, a fencing already covered too.
        assert!(recheck.wait_for(first, "m", Duration::from_secs(5)).is_err());
        let every = Fencing(recheck.lock().fenced);
        assert!(recheck.wait_for(every, "m", Duration::from_secs(5)).is_err());
    }

    #[test]
    fn a_fencing_noted_during_a_read_gets_a_read_of_its_own() {
        let recheck = FailoverRecheck::default();
        {
            let mut state = recheck.lock();
            state.fenced = 1;
            state.reading = true;
        }
        let reads = std::cell::Cell::new(0);
        recheck.read_until_covered(|| {
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
        });
        assert_eq!(reads.get(), 2);
        let state = recheck.lock();
        assert_eq!((state.covered, state.reading, state.found.len()), (2, false, 1));
    }

    #[test]
    fn a_failed_read_lets_the_shards_go_on() {
        let recheck = FailoverRecheck::default();
        recheck.lock().fenced = 1;
        recheck.finish(1, Err(Error::Internal("the shards topic could not be read".into())));
        assert!(recheck.wait_for(Fencing(1), "m", Duration::from_secs(5)).is_ok());
        assert!(
            FailoverRecheck::default().wait_for(Fencing(0), "m", Duration::ZERO).is_ok(),
            "nothing fenced: no wait"
        );
    }
}
