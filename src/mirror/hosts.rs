//! Who runs the shards. Alone, this process runs all of them on its worker threads. With
//! `--coordinate`, every process of a mirror joins one consumer group on the target and
//! subscribes to `kmirror.shards.NAME` (one partition per shard): Kafka's group coordinator
//! hands partition K, and so shard K, to one member. A shard is started when assigned (its
//! producer's `init_transactions` fences any earlier owner) and, when revoked, commits what it
//! holds and stops before the revocation is acknowledged. A slow or partitioned old owner is
//! fenced on its next write, so a reassignment never duplicates.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use tracing::{debug, error, info, warn};

use crate::config::names::shards_topic;
use crate::error::{Error, Result, Side};
use crate::kafka::client::CreateForRole;
use crate::mirror::context::MirrorContext;
use crate::mirror::owners::{claims_in_force, failover_in_force, OwnershipLog, OWNED, RELEASED};
use crate::mirror::plan::{worker_of, Route};
use crate::mirror::shard::{target_config, EarlyClients};
use crate::mirror::worker::{run_worker, InitialShards, WorkerCommand, WorkerReport};

pub(crate) enum ShardHosts {
    Local {
        senders: Vec<Sender<WorkerCommand>>,
        handles: Vec<JoinHandle<Result<WorkerReport>>>,
        /// Workers whose work has ended: counted before the main loop is woken, which would
        /// otherwise find the thread still returning (not finished yet) and wait its tick.
        ended: Arc<AtomicUsize>,
        streams: usize,
        /// This process's claims on its shards (None: the log could not be made).
        claims: Option<(OwnershipLog, Vec<u32>)>,
    },
    Coordinated(Coordination),
}

/// The group membership, served by its own thread: the main loop's checkpoint cycles and topic
/// refreshes can take longer than the rebalance timeout, and a member that does not poll for
/// that long is put out of the group and loses its shards.
pub(crate) struct Coordination {
    consumer: Arc<BaseConsumer<Membership>>,
    serving: Arc<AtomicBool>,
    server: Option<JoinHandle<()>>,
}

impl Coordination {
    /// `grace`: how long a shard fenced while still assigned here may wait for its revocation.
    fn start(consumer: BaseConsumer<Membership>, grace: Duration) -> Result<Self> {
        let consumer = Arc::new(consumer);
        let serving = Arc::new(AtomicBool::new(true));
        let server = {
            let (consumer, serving) = (consumer.clone(), serving.clone());
            std::thread::Builder::new()
                .name("kmirror-group".into())
                .spawn(move || {
                    while serving.load(Ordering::Relaxed) {
                        // The group ignores what the shards topic holds (claims, a failover's
                        // record): polling serves the group (assignments, revocations,
                        // heartbeats).
                        let _ = consumer.poll(Duration::from_millis(100));
                        consumer.context().reap_finished();
                        consumer.context().give_up_fenced(grace);
                    }
                })
                .map_err(|cause| Error::Thread { what: "coordination group".into(), cause })?
        };
        Ok(Self { consumer, serving, server: Some(server) })
    }

    fn membership(&self) -> &Membership {
        self.consumer.context()
    }

    /// Stops serving the group; the rebalance callbacks run on that thread, so none runs after.
    fn stop_serving(&mut self) {
        self.serving.store(false, Ordering::Relaxed);
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}

/// Claims `shards` for this process as its workers start (see [`crate::mirror::owners`]); not
/// waited for: a shard fenced by anyone reads the claims only seconds later. Without the log (a target refusing it) the run goes
/// on, and a shard fenced by the target's abort then stops as if taken over.
fn claim(ctx: &MirrorContext, shards: Vec<u32>) -> Option<(OwnershipLog, Vec<u32>)> {
    match OwnershipLog::new(&target_config(ctx), &ctx.settings.name) {
        Ok(log) => {
            for &shard in &shards {
                log.record(shard, OWNED);
            }
            Some((log, shards))
        }
        Err(e) => {
            warn!(error = %e, "could not claim the shards in the shards topic");
            None
        }
    }
}

/// Those of `shards` whose claim in force is still this process's, for a local run to give up
/// at a clean stop. A long-running process may have been idle when a new one took its shards (a
/// rolling restart): its release, under the shard's key in the compacted shards topic, would in
/// time be all that is left of the new holder's claim. A batch run releases without asking: it
/// stops as soon as it has copied, and the read would lengthen every run. (A holder claiming
/// between the read and the release still finds its claim in force: a release counts only over
/// its own process's claim.)
fn still_held(ctx: &MirrorContext, shards: &[u32]) -> Vec<u32> {
    let settings = &ctx.settings;
    if settings.until_caught_up {
        return shards.to_vec();
    }
    match ctx.failover_recheck.claims(&target_config(ctx), settings) {
        Ok(claims) => {
            let elsewhere: BTreeSet<u32> =
                claims.in_force().filter(|c| !c.held_by_this_process()).map(|c| c.shard).collect();
            shards.iter().copied().filter(|shard| !elsewhere.contains(shard)).collect()
        }
        Err(e) => {
            warn!(error = %e, "could not read the shards' claims before giving them up");
            shards.to_vec()
        }
    }
}

fn spawn_worker(
    ctx: &Arc<MirrorContext>,
    index: usize,
    initial: InitialShards,
    stop_all_on_error: bool,
    ended: Option<Arc<AtomicUsize>>,
) -> Result<(Sender<WorkerCommand>, JoinHandle<Result<WorkerReport>>)> {
    let (tx, rx) = channel();
    let ctx = ctx.clone();
    let end = WorkerEnd { ctx: ctx.clone(), stop_all_on_error, ended, main: std::thread::current() };
    let handle = std::thread::Builder::new()
        .name(format!("kmirror-worker-{index}"))
        .spawn(move || {
            let result = run_worker(index, ctx.clone(), initial, rx);
            if result.is_err() && stop_all_on_error {
                // One failed worker stops the run: the others finish their transaction.
                ctx.stop.store(true, Ordering::Relaxed);
            }
            drop(end);
            result
        })
        .map_err(|cause| Error::Thread { what: format!("worker {index}"), cause })?;
    Ok((tx, handle))
}

/// A worker's end, ended or unwound by a panic. A local worker's wakes the thread that started
/// it, the main loop (see `ShardHosts::wait`), which a batch run's last worker to end wakes at
/// once, where its tick took up to 25 ms more to notice.
struct WorkerEnd {
    ctx: Arc<MirrorContext>,
    stop_all_on_error: bool,
    ended: Option<Arc<AtomicUsize>>,
    main: std::thread::Thread,
}

impl Drop for WorkerEnd {
    fn drop(&mut self) {
        // A worker that panicked stops the run as a failed one does: its shards would stall
        // while the others went on.
        if std::thread::panicking() && self.stop_all_on_error {
            self.ctx.stop.store(true, Ordering::Relaxed);
        }
        if let Some(ended) = &self.ended {
            ended.fetch_add(1, Ordering::SeqCst);
            self.main.unpark();
        }
    }
}

impl ShardHosts {
    /// All shards on this process's worker threads; `early` holds the clients of those whose
    /// clients the run started making already.
    pub(crate) fn local(
        ctx: &Arc<MirrorContext>,
        by_shard: BTreeMap<u32, Vec<Route>>,
        mut early: HashMap<u32, EarlyClients>,
    ) -> Result<Self> {
        let streams = ctx.settings.num_streams;
        let claims = claim(ctx, by_shard.keys().copied().collect());
        let mut per_worker: Vec<InitialShards> = (0..streams).map(|_| BTreeMap::new()).collect();
        for (shard, routes) in by_shard {
            ctx.telemetry.expect_shard(shard);
            per_worker[worker_of(shard, streams)].insert(shard, (routes, early.remove(&shard)));
        }
        let (mut senders, mut handles) = (Vec::new(), Vec::new());
        let ended = Arc::new(AtomicUsize::new(0));
        for (index, initial) in per_worker.into_iter().enumerate() {
            let (tx, handle) = spawn_worker(ctx, index, initial, true, Some(ended.clone()))?;
            senders.push(tx);
            handles.push(handle);
        }
        Ok(Self::Local { senders, handles, ended, streams, claims })
    }

    /// Joins the mirror's group on the target; shards start as the coordinator assigns them.
    pub(crate) fn coordinated(
        ctx: &Arc<MirrorContext>,
        by_shard: BTreeMap<u32, Vec<Route>>,
        target: rdkafka::ClientConfig,
    ) -> Result<Self> {
        let settings = &ctx.settings;
        // The ownership log is a producer: made before the group's consumer settings are added.
        let log = OwnershipLog::new(&target, &settings.name)?;
        let mut config = target;
        config
            .set("group.id", crate::config::names::coordinator_group(&settings.name))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        if config.get("session.timeout.ms").is_none() {
            config.set("session.timeout.ms", settings.session_timeout.as_millis().to_string());
        }
        // Also the rebalance timeout a member asks for: a member that stops answering holds up a
        // rebalance for this long, not for librdkafka's 5 minutes. The group is polled every
        // 100 ms.
        if config.get("max.poll.interval.ms").is_none() {
            // From the session timeout in force: one set with --set may be longer than the
            // flag's, and librdkafka refuses a poll interval below it.
            let session = config
                .get("session.timeout.ms")
                .and_then(|ms| ms.trim().parse::<u64>().ok())
                .map_or(settings.session_timeout, Duration::from_millis);
            let ms = (session * 3).max(Duration::from_secs(20)).as_millis();
            config.set("max.poll.interval.ms", ms.to_string());
        }
        let membership = Membership {
            log,
            ctx: ctx.clone(),
            routes: Mutex::new(by_shard),
            running: Mutex::default(),
            records: AtomicU64::new(0),
            failure: Mutex::default(),
            fenced: Mutex::default(),
        };
        let consumer: BaseConsumer<Membership> = config
            .create_for_role_with_context(membership)
            .map_err(Error::kafka(Side::Target, "creating the coordination consumer"))?;
        consumer
            .subscribe(&[&shards_topic(&settings.name)])
            .map_err(Error::kafka(Side::Target, "joining the mirror's group"))?;
        info!(group = %crate::config::names::coordinator_group(&settings.name), "joined the mirror's group; waiting for shards");
        // Twice the session timeout: a process cut off from the group learns it lost its
        // shards by then.
        let grace = (ctx.settings.session_timeout * 2).max(Duration::from_secs(20));
        Ok(Self::Coordinated(Coordination::start(consumer, grace)?))
    }

    /// False once every local worker has ended, or (coordinated) once the mirror stops.
    pub(crate) fn running(&self, ctx: &MirrorContext) -> bool {
        match self {
            Self::Local { handles, ended, .. } => {
                ended.load(Ordering::SeqCst) < handles.len() && !handles.iter().all(JoinHandle::is_finished)
            }
            Self::Coordinated(group) => {
                !ctx.stop.load(Ordering::Relaxed) && group.membership().failure_is_none()
            }
        }
    }

    /// Whether this process syncs the groups: alone, yes; coordinated, the one that runs shard
    /// 0 now. Every process syncing every group read and committed side by side, and one's
    /// older positions could land after another's newer ones, moving a group back.
    pub(crate) fn syncs_groups(&self) -> bool {
        match self {
            Self::Local { .. } => true,
            Self::Coordinated(group) => group.membership().lock_running().contains_key(&0),
        }
    }

    /// Waits a little: the main loop's tick, cut short when a local worker ends (a batch run's
    /// exit). Called on the thread that made the hosts, which is the one local workers wake.
    pub(crate) fn wait(&self) {
        std::thread::park_timeout(Duration::from_millis(25));
    }

    /// Routes found by a topic refresh: to the shard's host if it runs here.
    pub(crate) fn add_routes(&self, shard: u32, routes: Vec<Route>) {
        match self {
            Self::Local { senders, streams, .. } => {
                let _ = senders[worker_of(shard, *streams)].send(WorkerCommand::AddRoutes { shard, routes });
            }
            Self::Coordinated(group) => group.membership().add_routes(shard, routes),
        }
    }

    /// Stops everything this process runs; returns the records it committed and the first
    /// error that ended a worker.
    pub(crate) fn finish(self, ctx: &MirrorContext) -> (u64, Option<Error>) {
        match self {
            Self::Local { handles, claims, .. } => {
                let mut records = 0;
                let mut first_error = None;
                for handle in handles {
                    match handle.join() {
                        Ok(Ok(report)) => records += report.records,
                        Ok(Err(e)) => {
                            error!(error = %e, "worker stopped");
                            first_error.get_or_insert(e);
                        }
                        Err(_) => {
                            first_error.get_or_insert(Error::Internal("a worker thread panicked".into()));
                        }
                    }
                }
                // A run that ended cleanly gives its shards up; one that failed (taken over,
                // maybe) leaves its claims as a dead process would, never over another's.
                let releasing = std::time::Instant::now();
                if let (Some((log, shards)), None) = (&claims, &first_error) {
                    // This process's own claims landed first: a quick stop could read the
                    // previous holder's as the one in force.
                    log.flush();
                    for shard in still_held(ctx, shards) {
                        log.record(shard, RELEASED);
                    }
                    log.flush();
                }
                drop(claims);
                debug!(release_ms = releasing.elapsed().as_millis() as u64, "shards released");
                (records, first_error)
            }
            Self::Coordinated(mut group) => {
                group.stop_serving();
                let membership = group.membership();
                let shards: Vec<u32> = membership.lock_running().keys().copied().collect();
                membership.stop_all(&shards, false);
                let records = membership.records.load(Ordering::Relaxed);
                let failure = membership.failure.lock().ok().and_then(|mut f| f.take());
                membership.log.flush();
                // Leaving the group hands the shards to the others at once.
                group.consumer.unsubscribe();
                (records, failure)
            }
        }
    }
}

struct Hosted {
    commands: Sender<WorkerCommand>,
    handle: JoinHandle<Result<WorkerReport>>,
}

/// The group membership of a coordinated process: which shards it runs.
pub(crate) struct Membership {
    log: OwnershipLog,
    ctx: Arc<MirrorContext>,
    routes: Mutex<BTreeMap<u32, Vec<Route>>>,
    running: Mutex<BTreeMap<u32, Hosted>>,
    records: AtomicU64,
    /// An error that must stop this process (anything but being fenced by a new owner).
    failure: Mutex<Option<Error>>,
    /// Shards whose workers ended fenced while the group still gave them to this process, since
    /// when, and how (see [`Membership::give_up_fenced`]).
    fenced: Mutex<BTreeMap<u32, (Instant, Error)>>,
}

impl Membership {
    fn lock_running(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, Hosted>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn failure_is_none(&self) -> bool {
        self.failure.lock().map(|f| f.is_none()).unwrap_or(true)
    }

    /// Under the routes' lock until the running shard is told: `start` holds it from taking a
    /// shard's routes to recording the shard as running, so routes added meanwhile reach the
    /// shard one way or the other (they were left to the next rebalance).
    fn add_routes(&self, shard: u32, routes: Vec<Route>) {
        let mut known = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        known.entry(shard).or_default().extend(routes.clone());
        if let Some(hosted) = self.lock_running().get(&shard) {
            let _ = hosted.commands.send(WorkerCommand::AddRoutes { shard, routes });
        }
        drop(known);
    }

    fn start(&self, shard: u32) {
        if self.lock_running().contains_key(&shard) || !self.failure_is_none() {
            return;
        }
        // A failover in force: another process of the mirror saw it first and left, and the
        // rebalance hands its shards here; or it came between this process's start, which
        // checks for one, and its joining. Starting a shard would fence the failover and copy
        // behind it. (`--after-failover` ended the failovers its start found.)
        if let Ok(Some(claim)) = failover_in_force(&target_config(&self.ctx), &self.ctx.settings.name, shard)
        {
            self.fail(claim.fenced(&self.ctx.settings.name));
            return;
        }
        // Held until the shard is recorded as running (see add_routes).
        let known = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let routes = known.get(&shard).cloned().unwrap_or_default();
        self.ctx.telemetry.expect_shard(shard);
        let initial = BTreeMap::from([(shard, (routes, None))]);
        match spawn_worker(&self.ctx, shard as usize, initial, false, None) {
            Ok((commands, handle)) => {
                info!(shard, "shard taken");
                self.log.record(shard, OWNED);
                self.lock_running().insert(shard, Hosted { commands, handle });
            }
            Err(e) => self.fail(e),
        }
        drop(known);
    }

    /// Commits what the shards hold and stops them; returns once they have stopped. They stop
    /// side by side (each told at once, then each joined, their claims read once for all): one
    /// after the other, a process of many shards outlasted the rebalance timeout in its
    /// revocation, was put out of the group, and its rejoining revoked every shard again. A
    /// shard taken away while this process was cut off (`lost`) may already have a new owner:
    /// its record is not overwritten.
    fn stop_all(&self, shards: &[u32], lost: bool) {
        let mut stopping = Vec::new();
        for &shard in shards {
            self.lock_fenced().remove(&shard);
            let hosted = self.lock_running().remove(&shard);
            if let Some(hosted) = hosted {
                // A worker that already ended has dropped its end: nothing to release then.
                let _ = hosted.commands.send(WorkerCommand::Release);
                stopping.push((shard, hosted));
            }
        }
        let stopped: Vec<u32> = stopping.iter().map(|(shard, _)| *shard).collect();
        let mut releasing = Vec::new();
        for (shard, hosted) in stopping {
            let joined = hosted.handle.join();
            // A fenced shard is someone else's: its claim (a failover's, maybe) stays.
            let fenced = matches!(joined, Ok(Err(Error::Fenced { .. })));
            self.settle(shard, joined);
            self.forget(shard);
            if !lost && !fenced {
                releasing.push(shard);
            }
        }
        let released = self.still_claimed(&releasing);
        for &shard in &released {
            self.log.record(shard, RELEASED);
        }
        if !released.is_empty() {
            // Before the revocation is acknowledged, so the next owner's record comes after.
            self.log.flush();
        }
        for &shard in &stopped {
            info!(shard, lost, "shard released");
        }
    }

    /// A shard no longer run here: its heartbeat, progress and lag are another process's.
    fn forget(&self, shard: u32) {
        self.ctx.telemetry.forget_shard(shard);
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let sources = routes.get(&shard).into_iter().flatten().map(|r| &r.source);
        self.ctx.telemetry.forget_partitions(sources);
    }

    /// Those of `shards` whose claim in force is still this process's (all, where the claims
    /// cannot be read). A shard with nothing to copy never learns it was fenced: giving it up
    /// would write over the claim of whoever fenced it, a failover's, which a later start must
    /// still see.
    fn still_claimed(&self, shards: &[u32]) -> Vec<u32> {
        let (Some(&first), Some(&last)) = (shards.iter().min(), shards.iter().max()) else {
            return Vec::new();
        };
        match claims_in_force(&target_config(&self.ctx), &self.ctx.settings.name, first..last + 1) {
            Ok(in_force) => shards
                .iter()
                .copied()
                .filter(|shard| in_force.get(shard).is_none_or(|claim| claim.held_by_this_process()))
                .collect(),
            Err(_) => shards.to_vec(),
        }
    }

    /// Joins workers that ended on their own (e.g. fenced by a newer owner).
    fn reap_finished(&self) {
        // Stopping, the workers end by themselves: `finish` joins them and gives their shards
        // up, which a reaping here would skip (their claims left standing, `status` naming a
        // stopped process as their owner).
        if self.ctx.stop.load(Ordering::Relaxed) {
            return;
        }
        let done: Vec<u32> =
            self.lock_running().iter().filter(|(_, h)| h.handle.is_finished()).map(|(k, _)| *k).collect();
        for shard in done {
            // Taken out first: an `if let` on the lock's guard would hold it through the body,
            // and `forget` takes the routes' lock, which `add_routes` takes before this one.
            let hosted = self.lock_running().remove(&shard);
            if let Some(hosted) = hosted {
                let joined = hosted.handle.join();
                let fenced = match joined {
                    Ok(Err(e @ Error::Fenced { failed_over: false, .. })) => {
                        warn!(shard, "shard fenced: another process of this mirror owns it now");
                        Some(e)
                    }
                    joined => {
                        self.settle(shard, joined);
                        None
                    }
                };
                self.forget(shard);
                if let Some(e) = fenced {
                    self.lock_fenced().insert(shard, (Instant::now(), e));
                }
            }
        }
    }

    fn lock_fenced(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, (Instant, Error)>> {
        self.fenced.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A shard fenced while the group gives it to this process, and not taken from it within
    /// `grace`: no one runs it (a takeover comes with a revocation here; a fencing the claims
    /// could not explain, the target's abort of a transaction cut off too long say, does not),
    /// and nothing would until the next rebalance, with `/healthz` at 200. The process stops,
    /// as a local run does, and the group hands its shards to the others.
    fn give_up_fenced(&self, grace: Duration) {
        let overdue = self.lock_fenced().iter().find(|(_, (at, _))| at.elapsed() >= grace).map(|(s, _)| *s);
        if let Some(shard) = overdue {
            if let Some((_, e)) = self.lock_fenced().remove(&shard) {
                error!(
                    shard,
                    grace_s = grace.as_secs(),
                    "shard fenced, yet still this process's in the group: no process runs it; stopping"
                );
                self.fail(e);
            }
        }
    }

    fn settle(&self, shard: u32, joined: std::thread::Result<Result<WorkerReport>>) {
        match joined {
            Ok(Ok(report)) => {
                self.records.fetch_add(report.records, Ordering::Relaxed);
            }
            // A failover made the target final: a shard that a later rebalance gave this
            // process would write behind it. The process stops, as a local run does.
            Ok(Err(e @ Error::Fenced { failed_over: true, .. })) => self.fail(e),
            Ok(Err(Error::Fenced { .. })) => {
                warn!(shard, "shard fenced: another process of this mirror owns it now");
            }
            Ok(Err(e)) => self.fail(e),
            Err(_) => self.fail(Error::Internal(format!("the worker of shard {shard} panicked"))),
        }
    }

    fn fail(&self, e: Error) {
        error!(error = %e, "worker stopped");
        if let Ok(mut failure) = self.failure.lock() {
            failure.get_or_insert(e);
        }
    }
}

impl ClientContext for Membership {}

impl ConsumerContext for Membership {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            let lost = consumer.assignment_lost();
            let shards: Vec<u32> = partitions.elements().iter().map(|e| e.partition() as u32).collect();
            self.stop_all(&shards, lost);
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            for element in partitions.elements() {
                self.start(element.partition() as u32);
            }
        }
    }
}
