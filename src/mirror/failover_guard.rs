//! A mirror's start after `kmirror failover --execute`. The failover wrote its claim on every
//! shard (see [`crate::mirror::owners`]) and moved the groups to the target; a run started after
//! it, by hand or by a supervisor restarting the process, would copy the source's newer records
//! into the cluster the clients now use, and with `--sync-group-offsets` move their groups back.
//! So a start that finds a failover in force on any shard refuses (exit 3), unless told with
//! `--after-failover` that the drill is over; then it writes a claim ending each failover, so
//! that later starts go on without the flag.
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use tracing::{debug, info, warn};

use crate::config::MirrorSettings;
use crate::error::{Error, Result};
use crate::kafka::topic_reader::TailReader;
use crate::mirror::owners::{resume_after_failover, Claims, ShardOwner};
use crate::ops::telemetry::now_ms;

/// The failover claims in force on the shards of mirror `name`, read on `reader` (see
/// [`Claims::reader`]).
pub(crate) fn read_failovers(
    reader: &TailReader,
    name: &str,
    shards: u32,
    timeout: Duration,
) -> Result<Vec<ShardOwner>> {
    let started = Instant::now();
    let read = Claims::read_with(reader, name, 0..shards, timeout).map(|claims| claims.failed_over());
    debug!(claims_ms = started.elapsed().as_millis() as u64, "shard claims read");
    read
}

/// Refuses a start after a failover, or resumes on purpose (see the module's text); `read` is
/// None where the target did not answer (the run stops for that). A claims read that failed
/// lets the run go on with a warning: the guard is for a person's mistake, and a
/// mirror must not stop for want of it. Not with `--after-failover`: the resume is to end the
/// failover the claims record, and one left in force would stop the run as soon as the read
/// after the shards' fencing (see `failover_recheck`) gets through, or the next
/// start without the flag.
pub(crate) fn check(
    target: &ClientConfig,
    settings: &MirrorSettings,
    read: Option<Result<Vec<ShardOwner>>>,
) -> Result<()> {
    let taken = match read {
        None => return Ok(()),
        Some(Ok(taken)) => taken,
        Some(Err(e)) if settings.after_failover => {
            return Err(Error::ClaimsUnread { name: settings.name.clone(), cause: e.to_string() })
        }
        Some(Err(e)) => {
            warn!(error = %e, "could not read the shards' claims: a failover of this mirror would go unnoticed");
            return Ok(());
        }
    };
    let Some(failover) = Failover::of(&taken) else {
        if settings.after_failover {
            warn!("--after-failover, but no failover of this mirror is in force: leave the flag out of the mirror's usual start, where it would end the next failover unseen");
        }
        return Ok(());
    };
    if !settings.after_failover {
        return Err(failover.error(&settings.name));
    }
    info!(shards = %failover.shards, "resuming after a failover (--after-failover)");
    resume_after_failover(target, &settings.name, &taken)
}

/// A failover still in force, for a person to read.
pub(crate) struct Failover {
    /// Who wrote the last of its claims.
    pub(crate) by: String,
    /// Which shards it holds: "0, 1, 3".
    pub(crate) shards: String,
    /// How long ago its last claim was written: "12 min".
    pub(crate) ago: String,
}

impl Failover {
    /// From the failover claims in force (None: none).
    pub(crate) fn of(claims: &[ShardOwner]) -> Option<Self> {
        let last = claims.iter().max_by_key(|c| c.at_ms)?;
        let mut shards: Vec<u32> = claims.iter().map(|c| c.shard).collect();
        shards.sort_unstable();
        Some(Self {
            by: last.who(),
            shards: shards.iter().map(u32::to_string).collect::<Vec<_>>().join(", "),
            ago: ago(now_ms() - last.at_ms),
        })
    }

    /// The error that stops a run of mirror `name` (exit code 3).
    pub(crate) fn error(self, name: &str) -> Error {
        let Failover { by, shards, ago } = self;
        Error::FailedOver { name: name.to_string(), by, shards, ago }
    }
}

/// A span of milliseconds the way a person reads it: "40 s", "12 min", "3 h", "2 days".
fn ago(ms: i64) -> String {
    let s = Duration::from_millis(ms.max(0).unsigned_abs()).as_secs();
    match s {
        0..120 => format!("{s} s"),
        120..7_200 => format!("{} min", s / 60),
        7_200..172_800 => format!("{} h", s / 3_600),
        _ => format!("{} days", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_reads_in_the_unit_that_suits_it() {
        assert_eq!(ago(-5), "0 s", "a clock behind the failover's");
        assert_eq!(ago(40_500), "40 s");
        assert_eq!(ago(12 * 60_000), "12 min");
        assert_eq!(ago(3 * 3_600_000), "3 h");
        assert_eq!(ago(5 * 86_400_000), "5 days");
    }
}
