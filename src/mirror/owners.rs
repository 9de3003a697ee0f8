//! Which process holds which shard. Each process records it itself, for `status` to read even
//! with the group gone, and for a fenced shard to tell a takeover from the target's own abort:
//! when it takes or releases shard K it writes a small record (a claim) to partition K of
//! `kmirror.shards.NAME`, and the last records of each partition name the current holder (see
//! [`Claims::in_force`]).
//! `failover --execute` writes one before it fences. A process that dies writes nothing; the
//! next holder's claim replaces its own.
//!
//! Why claims: the target bumps a transactional id's producer epoch both when another producer
//! of the id starts (a second kmirror, a rebalance's new owner, a failover) and when it aborts a
//! transaction left open past `transaction.timeout.ms` (a network partition that long).
//! librdkafka reports both as fencing. Only in the second case is the claim in force still the
//! fenced process's own, and then it may take the shard back.
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

use crate::config::names::shards_topic;
use crate::error::{Error, Result, Side};
use crate::kafka::client::CreateForRole;
use crate::kafka::topic_reader::{TailReader, TailRecord};
use crate::mirror::flush::flush;
use crate::ops::telemetry::now_ms;

/// How long a claim read waits for the shards topic's metadata and ends.
const CLAIMS_TIMEOUT: Duration = Duration::from_secs(10);

/// A claim's `state`: the process holds the shard.
pub(crate) const OWNED: &str = "owned";
/// A claim's `state`: the process gave the shard up.
pub(crate) const RELEASED: &str = "released";
/// A claim's `state`: `kmirror failover --execute` took the shard from the mirror.
pub(crate) const FAILED_OVER: &str = "failed-over";
/// A claim's `state`: a run started with `--after-failover` ended the failover's hold.
pub(crate) const RESUMED: &str = "resumed";

/// One shard's owner. Field names are part of `kmirror status --format json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ShardOwner {
    pub(crate) shard: u32,
    pub(crate) host: String,
    pub(crate) pid: u32,
    /// [`OWNED`], [`RELEASED`], [`FAILED_OVER`] or [`RESUMED`].
    pub(crate) state: String,
    pub(crate) at_ms: i64,
    /// Drawn at random by each process: a container's kmirror runs as pid 1 under a host name
    /// its replacement keeps. Empty in claims of kmirror versions before it.
    #[serde(default)]
    pub(crate) instance: String,
}

impl ShardOwner {
    /// Whether this claim is this process's hold on its shard.
    pub(crate) fn held_by_this_process(&self) -> bool {
        self.state == OWNED && self.instance == this_instance()
    }

    /// Whether the same process wrote both claims: by instance; claims of kmirror versions
    /// before it, by host and pid. One process writes all its claims with one version, so a
    /// claim with an instance and one without are two processes' (an upgrade's rolling restart
    /// in containers, both pid 1 under one host name).
    fn same_process(&self, other: &ShardOwner) -> bool {
        match (self.instance.is_empty(), other.instance.is_empty()) {
            (false, false) => self.instance == other.instance,
            (true, true) => self.host == other.host && self.pid == other.pid,
            _ => false,
        }
    }

    /// Whether `kmirror failover --execute` wrote it.
    pub(crate) fn is_failover(&self) -> bool {
        self.state == FAILED_OVER
    }

    /// Whether the process that wrote the claim still runs: known only for a claim written on
    /// this host (a process of another host cannot be looked at from here). A claim outlives a
    /// process that was killed, until the next holder's replaces it.
    pub(crate) fn running(&self) -> Option<bool> {
        (self.host == this_host()).then(|| kmirror_runs_as(self.pid, self.at_ms))
    }

    /// The error of a shard of mirror `name` fenced by this claim's writer.
    pub(crate) fn fenced(&self, name: &str) -> Error {
        Error::Fenced {
            name: name.to_string(),
            shard: self.shard,
            by: Some(self.who()),
            failed_over: self.is_failover(),
        }
    }

    /// Who wrote the claim, for an error line.
    pub(crate) fn who(&self) -> String {
        match self.state.as_str() {
            FAILED_OVER => format!("kmirror failover --execute (host {}, pid {})", self.host, self.pid),
            // It took the shard after this process did, then stopped cleanly.
            RELEASED => format!("the kmirror process {} on host {}, stopped since,", self.pid, self.host),
            RESUMED => {
                format!("the kmirror process {} on host {}, resumed after a failover,", self.pid, self.host)
            }
            _ => format!("the kmirror process {} on host {}", self.pid, self.host),
        }
    }
}

/// Whether `pid` is the kmirror process that wrote a claim at `claimed_ms`: where `/proc`
/// tells, by its program's name (the pid of a process killed long ago may have been given to
/// another program) and by its start, which came before its claim (a container's replacement
/// is pid 1 again); elsewhere, whether it exists.
fn kmirror_runs_as(pid: u32, claimed_ms: i64) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        // /proc/stat's boot time has whole seconds.
        Ok(cmdline) => runs_kmirror(&cmdline) && started_ms(pid).is_none_or(|s| s <= claimed_ms + 2_000),
        Err(_) if std::path::Path::new("/proc/self").exists() => false,
        Err(_) => i32::try_from(pid)
            .is_ok_and(|pid| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()),
    }
}

/// Whether a `/proc/PID/cmdline` is a kmirror program's (its first argument names it).
fn runs_kmirror(cmdline: &[u8]) -> bool {
    let program = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let name = program.rsplit(|&b| b == b'/').next().unwrap_or_default();
    name.starts_with(b"kmirror")
}

/// When process `pid` started, in ms since the epoch, from `/proc`.
fn started_ms(pid: u32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The program's name (the second field) may hold spaces and parentheses: the fields after
    // it follow the last ')'; the start (field 22, in clock ticks since boot) is the 20th there.
    let ticks: i64 = stat[stat.rfind(')')? + 1..].split_whitespace().nth(19)?.parse().ok()?;
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    let boot_s: i64 = boot.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
    // Clock ticks are USER_HZ, 100 per second on every Linux (part of its user-space ABI).
    Some(boot_s * 1000 + ticks * 10)
}

/// The claim in force of one shard's claims, in the order written (see [`Claims::in_force`]).
fn in_force_of(claims: &[ShardOwner]) -> Option<&ShardOwner> {
    claims.iter().fold(None, |held, claim| match claim.state.as_str() {
        RELEASED if held.is_some_and(|h| h.state != OWNED || !h.same_process(claim)) => held,
        _ => Some(claim),
    })
}

/// The record key of shard `shard`'s failover claims and their ends (see `OwnershipLog::record`).
fn failover_key(shard: u32) -> String {
    format!("{shard}.failover")
}

/// This process's instance, drawn once (see [`ShardOwner::instance`]).
pub(crate) fn this_instance() -> &'static str {
    use std::hash::{BuildHasher, Hasher};
    static INSTANCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    INSTANCE.get_or_init(|| {
        // std's hasher keys are drawn from the OS's random source once per process.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.write_i64(now_ms());
        format!("{:016x}", hasher.finish())
    })
}

fn this_host() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "unknown".into())
}

/// Keeps the first failed delivery, for a write that must be known to have landed.
#[derive(Default)]
struct FirstFailure {
    failed: Mutex<Option<KafkaError>>,
}

impl ClientContext for FirstFailure {}

impl ProducerContext for FirstFailure {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            tracing::warn!(error = %e, "a record to the shards topic did not land");
            self.keep(e.clone());
        }
    }
}

impl FirstFailure {
    fn keep(&self, e: KafkaError) {
        if let Ok(mut failed) = self.failed.lock() {
            failed.get_or_insert(e);
        }
    }
}

/// Writes ownership records for one process. A base producer, served only when flushed: a
/// threaded one's flush and drop each wait out its polling thread's 100 ms step, which a batch
/// run paid at its exit.
pub(crate) struct OwnershipLog {
    producer: BaseProducer<FirstFailure>,
    topic: String,
    host: String,
}

impl OwnershipLog {
    pub(crate) fn new(target: &ClientConfig, name: &str) -> Result<Self> {
        let mut config = target.clone();
        // A shard's claims must land in the order written, retries or not: one request at a
        // time. (An idempotent producer would do it too, but its release at a batch's exit took
        // 290-380 ms in one run of nine, against 5-30 ms without.)
        config.set("max.in.flight.requests.per.connection", "1");
        let producer = config
            .create_for_role_with_context(FirstFailure::default())
            .map_err(Error::kafka(Side::Target, "creating the ownership producer"))?;
        Ok(Self { producer, topic: shards_topic(name), host: this_host() })
    }

    /// Records that this process took ([`OWNED`]) or gave up ([`RELEASED`]) a shard, or took it
    /// from the mirror ([`FAILED_OVER`]). Not waited for: [`Self::confirm`] waits.
    pub(crate) fn record(&self, shard: u32, state: &str) {
        let owner = ShardOwner {
            shard,
            host: self.host.clone(),
            pid: std::process::id(),
            state: state.to_string(),
            at_ms: now_ms(),
            instance: this_instance().to_string(),
        };
        let value = serde_json::to_string(&owner).unwrap_or_default();
        // The shards topic is compacted by key. A failover's claim, and its end, have a key of
        // their own: a process that was idle at the failover, never fenced, still releases its
        // shards at a clean stop, and under the shard's key that release would in time compact
        // the failover's claim away, and with it the refusal of a start after it.
        let key = match state {
            FAILED_OVER | RESUMED => failover_key(shard),
            _ => shard.to_string(),
        };
        self.write(shard, &key, value.as_bytes());
    }

    /// Writes one record into shard `shard`'s partition under `key` (one no claim has: claims
    /// are read by their values, and a value that is no claim is passed over). Not waited for:
    /// [`Self::confirm`] waits.
    pub(crate) fn write(&self, shard: u32, key: &str, value: &[u8]) {
        let record = BaseRecord::to(&self.topic).partition(shard as i32).key(key).payload(value);
        if let Err((e, _)) = self.producer.send(record) {
            tracing::warn!(shard, key, error = %e, "could not write to the shards topic");
            // For `confirm`: a record never sent has not landed either.
            self.producer.context().keep(e);
        }
    }

    pub(crate) fn flush(&self) {
        let _ = flush(&self.producer, Duration::from_secs(5));
    }

    /// Waits until every record written so far has landed; the first one that did not is the
    /// error.
    pub(crate) fn confirm(&self, timeout: Duration) -> Result<()> {
        let flushed = flush(&self.producer, timeout);
        let failed = self.producer.context().failed.lock().ok().and_then(|mut f| f.take());
        match failed.map_or(flushed, Err) {
            Ok(()) => Ok(()),
            Err(e) => Err(Error::kafka(Side::Target, format!("writing to {}", self.topic))(e)),
        }
    }
}

/// The recent claims of a mirror's shards, read once for every question asked of them.
#[derive(Debug, Default)]
pub(crate) struct Claims {
    /// Per shard, its recent claims in the order written.
    by_shard: BTreeMap<u32, Vec<ShardOwner>>,
    /// Per shard, the last claim written under its failover key (see [`failover_key`]).
    marks: BTreeMap<u32, ShardOwner>,
}

impl Claims {
    /// The recent claims of `shards`, on one consumer (none for a mirror without a shards topic
    /// yet).
    pub(crate) fn read(
        target: &ClientConfig,
        name: &str,
        shards: std::ops::Range<u32>,
        timeout: Duration,
    ) -> Result<Self> {
        Self::read_with(&Self::reader(target, name)?, name, shards, timeout)
    }

    /// A reader of mirror `name`'s claims, to read them again and again with
    /// [`Self::read_with`].
    pub(crate) fn reader(target: &ClientConfig, name: &str) -> Result<TailReader> {
        TailReader::new(target, &crate::config::names::status_reader_group(name), &shards_topic(name))
    }

    /// As [`Self::read`], on `reader`.
    pub(crate) fn read_with(
        reader: &TailReader,
        name: &str,
        shards: std::ops::Range<u32>,
        timeout: Duration,
    ) -> Result<Self> {
        let mut claims = Self::default();
        reader.read_last(&shards_topic(name), Self::tails(&shards), timeout, |r| claims.note(r))?;
        Ok(claims)
    }

    /// The partitions of `shards`, and how many of each one's last records are read: claims are
    /// written seldom, a few per run, and between a failover and the next run only by the
    /// processes it stopped.
    fn tails(shards: &std::ops::Range<u32>) -> (std::ops::Range<i32>, i64) {
        let to_i32 = |s: u32| i32::try_from(s).unwrap_or(i32::MAX);
        (to_i32(shards.start)..to_i32(shards.end), 64)
    }

    fn note(&mut self, record: TailRecord<'_>) {
        let (Ok(shard), Ok(claim)) =
            (u32::try_from(record.partition), serde_json::from_slice::<ShardOwner>(record.value))
        else {
            return;
        };
        if record.key == failover_key(shard).as_bytes() {
            self.marks.insert(shard, claim.clone());
        }
        self.by_shard.entry(shard).or_default().push(claim);
    }

    /// Each shard's claim in force: its last, but that a release ends only its own process's
    /// hold. A process idle when another took its shards (a rolling restart's old process, one
    /// a failover fenced) never learns of it and still gives them up at a clean stop; over the
    /// new holder's claim, that release would make the holder's take-back stop it as taken
    /// over, and `status` show the shard held by nobody.
    pub(crate) fn in_force(&self) -> impl Iterator<Item = &ShardOwner> {
        self.by_shard.values().filter_map(|claims| in_force_of(claims))
    }

    /// The current owner of every shard that has one.
    pub(crate) fn owners(&self) -> Vec<ShardOwner> {
        self.in_force().filter(|c| c.state == OWNED).cloned().collect()
    }

    /// The shards `kmirror failover --execute` took and no run resumed since (`--after-failover`):
    /// the mirror's clients may be on the target, and a run would copy into the cluster they now
    /// use (and move their groups with `--sync-group-offsets`). A release written after the
    /// failover (by a process idle at it, stopped cleanly) does not end it. A failover claim of an
    /// earlier kmirror, under the shard's own key, is in force while it is the claim in force
    /// (that kmirror's mirrors ended it by starting again, with a claim of their own).
    pub(crate) fn failed_over(&self) -> Vec<ShardOwner> {
        self.by_shard
            .iter()
            .filter_map(|(shard, claims)| {
                let marked = self.marks.get(shard).filter(|c| c.is_failover());
                marked.or_else(|| in_force_of(claims).filter(|c| c.is_failover()))
            })
            .cloned()
            .collect()
    }
}

/// Lets a run resume after a failover, on purpose (`--after-failover`): a claim ending each
/// failover's, so that the next run, and a take-back's or a joining process's read, no longer
/// finds the failover last. Waited for: a run that goes on must not find it again.
pub(crate) fn resume_after_failover(target: &ClientConfig, name: &str, shards: &[ShardOwner]) -> Result<()> {
    let log = OwnershipLog::new(target, name)?;
    for claim in shards {
        log.record(claim.shard, RESUMED);
    }
    log.confirm(Duration::from_secs(30))
}

/// The failover claim in force on `shard`, if any (see [`Claims::failed_over`]).
pub(crate) fn failover_in_force(target: &ClientConfig, name: &str, shard: u32) -> Result<Option<ShardOwner>> {
    Ok(Claims::read(target, name, shard..shard + 1, CLAIMS_TIMEOUT)?.failed_over().pop())
}

/// The claim in force on `shard` (None: none yet; see [`Claims::in_force`]).
pub(crate) fn claim_in_force(target: &ClientConfig, name: &str, shard: u32) -> Result<Option<ShardOwner>> {
    Ok(claims_in_force(target, name, shard..shard + 1)?.remove(&shard))
}

/// The claim in force on each of `shards` that has one, in one read.
pub(crate) fn claims_in_force(
    target: &ClientConfig,
    name: &str,
    shards: std::ops::Range<u32>,
) -> Result<BTreeMap<u32, ShardOwner>> {
    let claims = Claims::read(target, name, shards, CLAIMS_TIMEOUT)?;
    Ok(claims.by_shard.iter().filter_map(|(&shard, c)| in_force_of(c).map(|o| (shard, o.clone()))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(host: String, pid: u32, state: &str) -> ShardOwner {
        ShardOwner { shard: 3, host, pid, state: state.into(), at_ms: 0, instance: String::new() }
    }

    fn own(state: &str) -> ShardOwner {
        ShardOwner { instance: this_instance().into(), ..claim(this_host(), std::process::id(), state) }
    }

    #[test]
    fn only_this_processs_own_hold_lets_a_fenced_shard_take_itself_back() {
        let me = std::process::id();
        assert!(own(OWNED).held_by_this_process());
        assert!(!own(RELEASED).held_by_this_process(), "given up");
        // The same host and pid, another process: a container's replacement, both pid 1.
        assert!(!claim(this_host(), me, OWNED).held_by_this_process(), "another instance");
        // Given up by another process: maybe over a failover's claim, which the releasing
        // process, idle and fenced, never saw.
        assert!(!claim("old-pod".into(), 1, RELEASED).held_by_this_process());
        let failover = claim("dr-1".into(), 42, FAILED_OVER);
        assert!(!failover.held_by_this_process());
        assert!(failover.is_failover());
        assert_eq!(failover.who(), "kmirror failover --execute (host dr-1, pid 42)");
        assert_eq!(claim("h".into(), 7, OWNED).who(), "the kmirror process 7 on host h");
        assert_eq!(claim("h".into(), 7, RELEASED).who(), "the kmirror process 7 on host h, stopped since,");
    }

    fn claims(written: &[(bool, &str)]) -> Claims {
        by(&written.iter().map(|&(marked, state)| (marked, state, 1)).collect::<Vec<_>>())
    }

    /// Claims of shard 3 written in this order: (under the failover key, state, pid).
    fn by(written: &[(bool, &str, u32)]) -> Claims {
        let mut read = Claims::default();
        for (i, &(marked, state, pid)) in written.iter().enumerate() {
            let claim =
                ShardOwner { at_ms: i as i64, instance: format!("i{pid}"), ..claim("h".into(), pid, state) };
            if marked {
                read.marks.insert(3, claim.clone());
            }
            read.by_shard.entry(3).or_default().push(claim);
        }
        read
    }

    #[test]
    fn a_failover_stays_in_force_until_a_run_resumes_after_it() {
        let in_force = |written: &[(bool, &str)]| claims(written).failed_over().len();
        assert_eq!(in_force(&[(false, OWNED), (true, FAILED_OVER)]), 1);
        // A process idle at the failover released its shard at a clean stop, after it.
        assert_eq!(in_force(&[(false, OWNED), (true, FAILED_OVER), (false, RELEASED)]), 1);
        assert_eq!(in_force(&[(true, FAILED_OVER), (true, RESUMED), (false, OWNED), (false, RELEASED)]), 0);
        assert_eq!(
            in_force(&[(true, FAILED_OVER), (true, RESUMED), (true, FAILED_OVER)]),
            1,
            "a second drill"
        );
        // An earlier kmirror's failover, under the shard's own key: in force while it is last.
        assert_eq!(in_force(&[(false, OWNED), (false, FAILED_OVER)]), 1);
        assert_eq!(in_force(&[(false, FAILED_OVER), (false, OWNED), (false, RELEASED)]), 0);
        assert_eq!(in_force(&[(false, FAILED_OVER), (false, RELEASED)]), 1, "a stale release after it");
        assert_eq!(in_force(&[(false, OWNED), (false, RELEASED)]), 0);
        assert_eq!(claims(&[(false, OWNED), (true, FAILED_OVER), (false, RELEASED)]).owners().len(), 0);
        assert_eq!(claims(&[(true, FAILED_OVER), (true, RESUMED), (false, OWNED)]).owners().len(), 1);
    }

    #[test]
    fn a_release_ends_only_its_own_processs_hold() {
        let pids = |read: Claims| read.in_force().map(|c| (c.pid, c.state.clone())).collect::<Vec<_>>();
        let owned = |pid: u32| vec![(pid, OWNED.to_string())];
        // A rolling restart: 2 took the shard from 1, which, idle, released it afterwards.
        assert_eq!(pids(by(&[(false, OWNED, 1), (false, OWNED, 2), (false, RELEASED, 1)])), owned(2));
        assert_eq!(
            pids(by(&[(false, OWNED, 1), (false, OWNED, 2), (false, RELEASED, 2)])),
            vec![(2, RELEASED.to_string())]
        );
        // A failover over 1's hold, and 1's release after it: the failover stays in force.
        let failover = by(&[(false, OWNED, 1), (true, FAILED_OVER, 9), (false, RELEASED, 1)]);
        assert!(failover.in_force().all(ShardOwner::is_failover));
        assert_eq!(pids(by(&[(false, RELEASED, 1)])), vec![(1, RELEASED.to_string())], "the tail's first");
        let owners = by(&[(false, OWNED, 1), (false, OWNED, 2), (false, RELEASED, 1)]).owners();
        assert_eq!(owners.iter().map(|c| c.pid).collect::<Vec<_>>(), vec![2]);
        // Claims of an earlier kmirror, without instances: by host and pid; with and without
        // one, two processes (an upgrade's rolling restart of pid-1 containers).
        let old =
            |pid: u32, state: &str| ShardOwner { instance: String::new(), ..claim("h".into(), pid, state) };
        assert!(
            old(1, OWNED).same_process(&old(1, RELEASED)) && !old(1, OWNED).same_process(&old(2, RELEASED))
        );
        let new = ShardOwner { instance: "i1".into(), ..old(1, RELEASED) };
        assert!(!old(1, OWNED).same_process(&new) && !new.same_process(&old(1, OWNED)));
    }

    #[test]
    fn a_claim_of_this_host_says_whether_its_process_runs() {
        assert_eq!(claim(format!("{}-other", this_host()), 1, OWNED).running(), None, "another host");
        // A claim of an earlier kmirror, without an instance, still reads.
        let old: ShardOwner =
            serde_json::from_str(r#"{"shard":1,"host":"h","pid":7,"state":"owned","at_ms":5}"#)
                .expect("old claim");
        assert_eq!(old.instance, "");
        assert!(!old.held_by_this_process());
        let gone =
            (std::process::id()..u32::MAX).find(|p| !std::path::Path::new(&format!("/proc/{p}")).exists());
        assert_eq!(claim(this_host(), gone.unwrap_or(u32::MAX), OWNED).running(), Some(false));
    }

    #[test]
    fn a_process_start_is_read_from_proc() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            eprintln!("skipped: no /proc here");
            return;
        }
        let started = started_ms(std::process::id()).expect("this process's start");
        let now = now_ms();
        assert!(started <= now + 2_000 && started > now - 3_600_000, "started {started}, now {now}");
    }

    #[test]
    fn only_a_kmirror_program_counts_as_the_claims_process() {
        assert!(runs_kmirror(b"/usr/local/bin/kmirror\0mirror\0--name\0x\0"));
        assert!(runs_kmirror(b"kmirror\0"));
        assert!(!runs_kmirror(b"/usr/bin/java\0kmirror\0"), "a pid given to another program");
        assert!(!runs_kmirror(b""));
    }
}
