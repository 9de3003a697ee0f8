//! One shard: a source consumer (assign, read_committed) and two transactional producers to the
//! target with transactional ids of its own, which take its transactions in turn (one commits
//! while the other fills, see [`in_flight`]). Each transaction carries records and the shard's
//! next source offsets for the shadow group, so a restart resumes exactly where the last
//! committed transaction ended.
//!
//! Why a changed `--num-streams` can never let two live producers write one partition: a
//! partition's shard comes from a fixed function of (topic, partition, --shards), and
//! --shards is fixed for the life of a mirror name (checked against the shadow group's commit
//! metadata). Worker threads only host shards. Whatever the thread count, partition P is
//! written only under `kmirror.NAME.<shard(P)>` and `kmirror.NAME.<shard(P)>.b`, one after the
//! other, and a new owner's `init_transactions` on both fences every older producer of those ids
//! before it reads the shadow group.
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kmirror_state::{Skipped, TopicPartition};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tracing::{debug, info, warn};

use crate::config::StartFrom;
use crate::error::{Error, Result, Side};
use crate::kafka::classify::{classify, Class};
use crate::kafka::consumer_close::close;
use crate::kafka::watermarks::{cached_high_watermark, committed_ends_with};
use crate::mirror::context::MirrorContext;
use crate::mirror::failover_recheck::Fencing;
use crate::mirror::flush::abort;
use crate::mirror::plan::Route;
use crate::mirror::read_guard::ReadGuard;
use crate::mirror::shadow::{read_committed_positions, SavedPosition};
use crate::mirror::stall_watch::{self, StallWatch};
use crate::mirror::transaction::{produce, OpenTransaction, Produced};
use record_limit::RecordLimit;

mod clients;
mod commit;
mod in_flight;
mod record_limit;
mod resume;
mod txn_calls;

use clients::{source_consumer, ShardClients};
pub(crate) use clients::{target_config, EarlyClients, EarlyDecisions};
use in_flight::InFlight;
use txn_calls::TargetProducer;

const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long an abort may take before the producer is replaced instead.
const ABORT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a quiet consumer may take to say where its partitions end.
const STALL_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How soon a batch asks again for the ends it could not learn (at least four times as long
/// as the last ask took), and how long one ask may take.
const ENDS_RETRY: Duration = Duration::from_millis(100);
const ENDS_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a committed position may go without being committed again. Kafka expires a
/// member-less group's offset `offsets.retention.minutes` after its last commit (7 days by
/// default, often set to a day); an hour stays well inside any sane setting.
const POSITION_REFRESH: Duration = Duration::from_secs(3600);
/// How long a running shard's position may stand past its last commit with nothing copied
/// since (past a source transaction's marker, or its aborted records) before it is committed
/// alone: long enough that a transactional source's next copy, which commits it anyway, comes
/// first, and no extra transaction follows every copied one.
const MOVED_POSITIONS_WAIT: Duration = Duration::from_secs(10);
/// How long after an assignment such a position may be committed: librdkafka clears a
/// partition's old position a moment after `assign` returns, and one read in that moment (after
/// a rewind, say) would be where the aborted transaction had read to.
const MOVED_POSITIONS_CONFIRM: Duration = Duration::from_millis(500);

pub(crate) struct Shard {
    id: u32,
    ctx: Arc<MirrorContext>,
    /// Two transactional producers (one with --serial-commits): one commits while the other
    /// takes the next transaction's records.
    producers: Vec<Arc<TargetProducer>>,
    /// The producer the open (or next) transaction goes to.
    current: usize,
    /// The transactions handed to commit threads whose outcome is not taken in yet, oldest first.
    in_flight: VecDeque<InFlight>,
    consumer: BaseConsumer,
    shadow: BaseConsumer,
    group_metadata: Arc<ConsumerGroupMetadata>,
    routes: Vec<Route>,
    /// source topic -> partition -> route index
    route_index: HashMap<String, HashMap<i32, usize>>,
    /// Next source offset to read, as committed in the shadow group.
    committed: HashMap<TopicPartition, Option<i64>>,
    /// Source end offsets noted at start, for --until-caught-up.
    ends: HashMap<TopicPartition, i64>,
    /// Where never-committed partitions start with --start-from latest, resolved once.
    latest: HashMap<TopicPartition, i64>,
    /// Where partitions go on past records the source deleted (--on-missing-source skip).
    floor: HashMap<TopicPartition, i64>,
    /// Ranges stepped over by that policy, not yet recorded in the map topic.
    skips: Vec<(TopicPartition, Skipped)>,
    /// The source topics' IDs as first seen by this shard, committed with every position.
    topic_ids: HashMap<String, String>,
    /// The target topics' IDs as first seen by this shard.
    target_ids: HashMap<String, String>,
    /// Per target partition, the offset after the last record this shard committed there: a
    /// record landing below it went into a replaced partition.
    target_ends: HashMap<TopicPartition, i64>,
    /// The shard's map partition holds nothing: the run made the map topic just before this
    /// shard started. True only for the shard's first routes.
    map_known_empty: bool,
    /// The last round of [`crate::mirror::topic_id_watch`] compared with the IDs above.
    id_round: u64,
    /// When each partition's position was last committed by this shard (or when the shard
    /// started): positions idle for [`POSITION_REFRESH`] are committed again before Kafka
    /// expires them.
    last_commit: HashMap<TopicPartition, Instant>,
    txn: Option<OpenTransaction>,
    records_mirrored: u64,
    backoff: Duration,
    /// How long commits take (moving average), for transactions sized to their cost.
    commit_cost: Option<Duration>,
    /// More was left to read (at the start, at the last hand-off) than a transaction of the
    /// configured size holds.
    behind: bool,
    /// The longest a transaction grows to while the shard is behind (see `transaction_size`).
    longest_adapted: Duration,
    next_end_check: Instant,
    /// When a batch may ask the source again for the ends it could not learn yet.
    next_ends_ask: Instant,
    /// When the partitions were last (re)assigned: a position read just after may be the old
    /// one (see `commit_moved_positions`).
    reassigned_at: Instant,
    /// A position past the committed one with nothing to copy waits to be committed.
    moved_pending: bool,
    guard: ReadGuard,
    stall: StallWatch,
    /// When the partitions were last assigned, until the first record after it is read: how
    /// long a first fetch takes is logged (debug).
    assigned_at: Option<Instant>,
    record_limit: RecordLimit,
    /// The producers' last fencing, until a claims read begun after it has found no failover
    /// (see [`crate::mirror::failover_recheck`]): no transaction begins before.
    recheck: Option<Fencing>,
}

/// With --until-caught-up, how long a poll waits for more before the shard asks whether it
/// has read everything.
const CAUGHT_UP_CHECK: Duration = Duration::from_millis(20);

impl Shard {
    /// Fences any earlier owner of this shard, reads where it stopped, and starts reading.
    /// `early`: its clients, if the run started making them before the shard (see
    /// [`EarlyClients`]).
    pub(crate) fn start(
        id: u32,
        ctx: Arc<MirrorContext>,
        routes: Vec<Route>,
        early: Option<EarlyClients>,
    ) -> Result<Self> {
        let fencing = Instant::now();
        let map_made_now = ctx.map_made_now.load(Ordering::Relaxed);
        let map_topic = ctx.settings.map_topic();
        let early = match early {
            Some(early) => early.join(id, map_made_now.then_some(map_topic.as_str()))?,
            None => None,
        };
        let made_early = early.is_some();
        let ShardClients { producers, shadow, consumer } = match early {
            Some(clients) => clients,
            None => ShardClients::make(&ctx, id, routes.first().map(|r| r.source.topic.as_str()), None)?
                .ok_or_else(|| Error::Internal(format!("shard {id}: its clients were not made")))?,
        };
        debug!(shard = id, fence_ms = fencing.elapsed().as_millis() as u64, made_early, "shard fenced");
        let group_metadata = shadow.group_metadata().ok_or_else(|| Error::Kafka {
            side: Side::Target,
            context: "shadow group metadata".into(),
            cause: KafkaError::ClientCreation("no group metadata".into()),
        })?;
        let longest_adapted = commit::longest_adapted(&ctx.settings);
        let record_limit = RecordLimit::new(&ctx);
        let mut shard = Self {
            id,
            ctx,
            producers,
            current: 0,
            in_flight: VecDeque::new(),
            consumer,
            shadow,
            group_metadata: Arc::new(group_metadata),
            routes: Vec::new(),
            route_index: HashMap::new(),
            committed: HashMap::new(),
            ends: HashMap::new(),
            latest: HashMap::new(),
            floor: HashMap::new(),
            skips: Vec::new(),
            topic_ids: HashMap::new(),
            target_ids: HashMap::new(),
            target_ends: HashMap::new(),
            id_round: 0,
            // Only clients made for the run's start (not with --coordinate, where another
            // process may have run the shard since the map topic was made).
            map_known_empty: made_early && map_made_now,
            last_commit: HashMap::new(),
            txn: None,
            records_mirrored: 0,
            backoff: Duration::from_millis(100),
            commit_cost: None,
            behind: true,
            longest_adapted,
            next_end_check: Instant::now(),
            next_ends_ask: Instant::now(),
            reassigned_at: Instant::now(),
            moved_pending: false,
            guard: ReadGuard::default(),
            stall: StallWatch::default(),
            assigned_at: None,
            record_limit,
            recheck: None,
        };
        shard.note_fencing();
        shard.add_routes(routes)?;
        shard.map_known_empty = false;
        Ok(shard)
    }

    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// The producers have just fenced their ids: see [`crate::mirror::failover_recheck`].
    fn note_fencing(&mut self) {
        self.recheck = Some(self.ctx.failover_recheck.fenced(target_config(&self.ctx), &self.ctx.settings));
    }

    /// Adds partitions (new topics or partitions found while running), resuming each from the
    /// shadow group.
    pub(crate) fn add_routes(&mut self, routes: Vec<Route>) -> Result<()> {
        self.commit_if_open()?;
        let new: Vec<Route> =
            routes.into_iter().filter(|r| self.route_index_of(&r.source).is_none()).collect();
        if new.is_empty() {
            return Ok(());
        }
        let mut lap = Lap::default();
        let mut positions = read_committed_positions(
            &self.shadow,
            &new,
            &self.ctx.settings.name,
            self.ctx.settings.shards,
            CALL_TIMEOUT,
        )?;
        let shadow_ms = lap.ms();
        let rebuilt = self.rebuild_lost_positions(&new, &mut positions)?;
        let map_ms = lap.ms();
        self.learn_topic_ids(&new);
        self.learn_target_ids(&new);
        let ids_ms = lap.ms();
        let saved: Vec<(Route, SavedPosition)> = new
            .iter()
            .filter_map(|r| positions.get(&r.source).cloned().flatten().map(|p| (r.clone(), p)))
            .collect();
        self.check_positions(&saved)?;
        for route in new {
            let index = self.routes.len();
            self.route_index
                .entry(route.source.topic.clone())
                .or_default()
                .insert(route.source.partition, index);
            let offset = positions.get(&route.source).cloned().flatten().map(|p| p.offset);
            self.committed.insert(route.source.clone(), offset);
            self.last_commit.insert(route.source.clone(), Instant::now());
            self.routes.push(route);
        }
        let checks_ms = lap.ms();
        self.commit_positions(&rebuilt, "positions rebuilt from the map topic")?;
        self.mark_saved_starts(&saved)?;
        self.commit_skips()?;
        let log_starts = if self.ctx.settings.start_from == StartFrom::Latest {
            self.resolve_latest()?;
            self.commit_latest_starts()?;
            HashMap::new()
        } else {
            self.commit_empty_starts()?
        };
        debug!(
            shard = self.id,
            shadow_ms,
            map_ms,
            ids_ms,
            checks_ms,
            starts_ms = lap.ms(),
            "shard positions read"
        );
        for route in &self.routes {
            let committed = self.committed.get(&route.source).copied().flatten();
            // Never copied: from where the partition starts (retention deleted what was before).
            let start = committed
                .or_else(|| self.latest.get(&route.source).copied())
                .or_else(|| log_starts.get(&route.source).copied());
            self.ctx.telemetry.note_start(&route.source, start, None);
        }
        // A batch ends where the run's start found the committed ends: the shard need not ask
        // again, and a source topic deleted in the shard's first moments has an end. Not where
        // the topic was recreated since (that end is another topic's).
        if let Some(ends) = self.ctx.batch_ends.get() {
            for route in &self.routes {
                let Some((end, id)) = ends.get(&route.source) else { continue };
                let now = self.topic_ids.get(&route.source.topic);
                if id.is_none() || now.is_none() || id.as_ref() == now {
                    self.ends.entry(route.source.clone()).or_insert(*end);
                }
            }
        }
        self.behind = self.backlog().is_none_or(|left| self.is_backlog(left));
        self.ctx.telemetry.heartbeat(self.id);
        info!(
            shard = self.id,
            partitions = ?self.routes.iter().map(|r| r.source.to_string()).collect::<Vec<_>>(),
            "shard assigned"
        );
        self.assign_at_committed()
    }

    /// Records left to copy in the shard's partitions, as the start reads found their ends
    /// (None: an end not known).
    fn backlog(&self) -> Option<i64> {
        let partitions = self.ctx.telemetry.snapshot();
        self.routes
            .iter()
            .map(|r| partitions.get(&r.source).and_then(crate::ops::telemetry::PartitionProgress::lag))
            .sum()
    }

    fn route_index_of(&self, tp: &TopicPartition) -> Option<usize> {
        self.route_index.get(&tp.topic).and_then(|m| m.get(&tp.partition)).copied()
    }

    /// (Re)starts reading every partition at its committed position.
    fn assign_at_committed(&mut self) -> Result<()> {
        let mut tpl = TopicPartitionList::new();
        let mut starts = Vec::with_capacity(self.routes.len());
        for route in &self.routes {
            let committed = self.committed.get(&route.source).copied().flatten();
            let start = committed.or_else(|| self.latest.get(&route.source).copied());
            let start = match (start, self.floor.get(&route.source)) {
                (Some(s), Some(&floor)) => Some(s.max(floor)),
                (start, _) => start,
            };
            starts.push(start);
            let offset = match start {
                Some(o) => Offset::Offset(o),
                None => Offset::Beginning,
            };
            tpl.add_partition_offset(&route.source.topic, route.source.partition, offset)
                .map_err(Error::kafka(Side::Source, "building the assignment"))?;
        }
        self.guard.reset(starts);
        self.assigned_at = Some(Instant::now());
        self.reassigned_at = Instant::now();
        self.consumer.assign(&tpl).map_err(Error::kafka(Side::Source, "assigning source partitions"))
    }

    /// Polls for up to `budget`, producing into the open transaction, and commits it when it
    /// is full, old enough, or (with --until-caught-up) everything noted is read.
    pub(crate) fn run_for(&mut self, budget: Duration) -> Result<()> {
        let deadline = Instant::now() + budget;
        // The clock is read once a record here, not three times: clock reads were 12 % of a
        // steady mirror's CPU (`perf`, 1 M records; most of them librdkafka's), these three
        // 2.5 %. The stall watch needs to know only that something came within its 30 s, so it
        // hears it once a budget.
        let mut read_any = false;
        loop {
            self.reap()?;
            let mut now = Instant::now();
            if self.transaction_due(now) {
                self.hand_off()?;
                now = Instant::now();
            }
            if now >= deadline || self.ctx.stop.load(Ordering::Relaxed) {
                break;
            }
            // Nothing read until the claims are read after the producers' fencing (see
            // failover_recheck), waited for within the budget: the worker serves its commands
            // between budgets.
            if self.txn.is_none()
                && !self.ctx.failover_recheck.settled(
                    &mut self.recheck,
                    &self.ctx.settings,
                    deadline - now,
                )?
            {
                break;
            }
            let mut wait = deadline - now;
            if let Some(txn) = &self.txn {
                wait = wait
                    .min((txn.started + self.ctx.settings.transaction_max).saturating_duration_since(now));
            }
            if self.ctx.settings.until_caught_up {
                // A batch run ends as soon as its last records are read, not a budget later.
                wait = wait.min(CAUGHT_UP_CHECK);
            }
            match self.consumer.poll(wait) {
                None if self.ctx.settings.until_caught_up
                    && (self.txn.is_some() || !self.in_flight.is_empty()) =>
                {
                    self.note_ends();
                    if self.all_ends_reached() {
                        break;
                    }
                }
                None => {}
                Some(Ok(message)) => {
                    read_any = true;
                    if let Some(at) = self.assigned_at.take() {
                        debug!(
                            shard = self.id,
                            first_read_ms = at.elapsed().as_millis() as u64,
                            "first record read"
                        );
                    }
                    let Some(route) = self
                        .route_index
                        .get(message.topic())
                        .and_then(|m| m.get(&message.partition()))
                        .copied()
                    else {
                        continue;
                    };
                    if !self.guard.admit(route, message.offset()) {
                        if self.guard.skipped() == 1 {
                            warn!(
                                shard = self.id,
                                topic = message.topic(),
                                partition = message.partition(),
                                offset = message.offset(),
                                "the source handed back a record already read; skipping re-deliveries"
                            );
                        }
                        continue;
                    }
                    if self.txn.is_none()
                        && !self.ctx.failover_recheck.before_transaction(
                            &mut self.recheck,
                            &self.ctx.settings,
                            &self.ctx.stop,
                        )?
                    {
                        // Stopping: the record is read again by the next start.
                        break;
                    }
                    let sent = produce(
                        self.id,
                        &mut self.txn,
                        &self.producers[self.current],
                        &self.routes,
                        route,
                        &message,
                        &self.ctx.settings.transforms,
                        self.record_limit.raisable(),
                    );
                    match sent {
                        Err(Error::Kafka { cause, .. }) if classify(&cause) == Class::Fenced => {
                            return Err(self.calls().fatal_error(cause))
                        }
                        Err(e @ (Error::Transform { .. } | Error::RecordRefused { .. })) => {
                            // Nothing of this transaction may be committed.
                            self.txn = None;
                            self.ctx.telemetry.metrics.transaction_aborted();
                            let _ = abort(self.producer(), ABORT_TIMEOUT);
                            return Err(e);
                        }
                        Ok(Produced::OverLimit { bytes }) => {
                            let limit = self.record_limit.raise_for(bytes);
                            warn!(
                                shard = self.id,
                                topic = message.topic(),
                                partition = message.partition(),
                                offset = message.offset(),
                                bytes,
                                limit,
                                "a record is larger than the target producer's message.max.bytes; raising it for this shard and reading the record again"
                            );
                        }
                        Ok(Produced::Skipped(why)) => {
                            self.ctx.telemetry.metrics.transform_error();
                            warn!(
                                shard = self.id,
                                topic = message.topic(),
                                partition = message.partition(),
                                offset = message.offset(),
                                error = %why,
                                "transform failed; record skipped (--on-transform-error skip)"
                            );
                        }
                        other => {
                            other?;
                        }
                    }
                }
                Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset))) => {
                    self.handle_out_of_range()?;
                }
                // Not a group denial: the consumer only looks for its group's coordinator, and
                // reads as well without one.
                Some(Err(e))
                    if e.rdkafka_error_code() == Some(RDKafkaErrorCode::TopicAuthorizationFailed) =>
                {
                    return Err(Error::Denied {
                        side: Side::Source,
                        // librdkafka's error names no topic; a shard reads few.
                        context: format!("shard {}'s reads of {}", self.id, self.topics().join(", ")),
                        cause: e,
                    });
                }
                Some(Err(e)) => {
                    warn!(shard = self.id, error = %e, "source consumer error (librdkafka retries)")
                }
            }
        }
        if read_any {
            self.stall.progressed();
        }
        self.producer().poll(Duration::ZERO);
        self.reap()?;
        self.report_ends();
        self.check_topic_ids()?;
        // The source may be rewound only to positions committed: not while a commit is under way.
        if self.txn.is_none() && self.in_flight.is_empty() {
            self.ctx.telemetry.heartbeat(self.id);
            self.replace_a_wedged_consumer()?;
            self.refresh_idle_positions()?;
            if !self.ctx.settings.until_caught_up {
                self.commit_moved_positions(MOVED_POSITIONS_WAIT)?;
            }
        }
        if self.ctx.settings.until_caught_up {
            self.note_ends();
            if (self.txn.is_some() || !self.in_flight.is_empty()) && self.all_ends_reached() {
                self.commit_if_open()?;
            }
            if self.txn.is_none() && self.in_flight.is_empty() && self.all_ends_reached() {
                self.commit_moved_positions(Duration::ZERO)?;
            }
        }
        Ok(())
    }

    /// See [`crate::mirror::stall_watch`]: between transactions, a consumer quiet for a while is asked
    /// where its partitions end, and replaced (reading on from the last commit) if it cannot
    /// say or sits below an end.
    fn replace_a_wedged_consumer(&mut self) -> Result<()> {
        if !self.stall.due() {
            return Ok(());
        }
        self.stall.progressed();
        let sources: Vec<TopicPartition> = self.routes.iter().map(|r| r.source.clone()).collect();
        let positions = self.consumer_positions().unwrap_or_default();
        let ends = committed_ends_with(&self.consumer, &sources, STALL_PROBE_TIMEOUT);
        let wedged = match &ends {
            Err(_) => true,
            Ok(ends) => sources.iter().any(|tp| {
                let position =
                    positions.get(tp).copied().or_else(|| self.committed.get(tp).copied().flatten());
                stall_watch::behind(position, ends.get(tp).copied())
            }),
        };
        if wedged {
            warn!(
                shard = self.id,
                answer = ?ends.as_ref().map(|e| e.len()).map_err(|e| e.to_string()),
                "the source consumer made no progress; replacing it (reading on from the last commit)"
            );
            let replacement = source_consumer(&self.ctx)?;
            close(std::mem::replace(&mut self.consumer, replacement));
            self.assign_at_committed()?;
        }
        Ok(())
    }

    /// Tells the telemetry where each source partition ends, about once a second.
    fn report_ends(&mut self) {
        if Instant::now() < self.next_end_check {
            return;
        }
        self.next_end_check = Instant::now() + Duration::from_secs(1);
        for route in &self.routes {
            let (topic, partition) = (&route.source.topic, route.source.partition);
            // A batch's end is the one it noted (what was committed at its start), not the
            // high watermark, which counts a source transaction still open.
            let end = match self.ctx.settings.until_caught_up {
                true => self.ends.get(&route.source).copied(),
                false => cached_high_watermark(&self.consumer, topic, partition),
            };
            if let Some(end) = end {
                self.ctx.telemetry.end_seen(&route.source, end);
            }
        }
    }

    /// Notes, once per partition, where a batch ends: where the source's committed records end
    /// (its last stable offset) when the shard first asks. Not the high watermark, which counts
    /// the records of a source transaction still open: a batch waited for it to end, and a
    /// hung producer's held the batch until the source aborted it (a Java producer's
    /// transaction timeout is a minute by default, up to 15).
    fn note_ends(&mut self) {
        let missing: Vec<TopicPartition> =
            self.routes.iter().map(|r| r.source.clone()).filter(|s| !self.ends.contains_key(s)).collect();
        if missing.is_empty() || Instant::now() < self.next_ends_ask {
            return;
        }
        // Bounded, and asked again only a while after an answer that left some out (a
        // partition without a leader): the shard's thread serves its other partitions between.
        let asked = Instant::now();
        match committed_ends_with(&self.consumer, &missing, ENDS_TIMEOUT) {
            Ok(ends) => self.ends.extend(ends),
            Err(e) => debug!(shard = self.id, error = %e, "could not read where the batch ends yet"),
        }
        self.next_ends_ask = Instant::now() + ENDS_RETRY.max(asked.elapsed() * 4);
    }

    fn all_ends_reached(&self) -> bool {
        let Ok(positions) = self.consumer_positions() else { return false };
        self.routes.iter().all(|r| match self.ends.get(&r.source) {
            Some(&end) => {
                end == 0
                    || positions.get(&r.source).is_some_and(|&p| p >= end)
                    || self.committed.get(&r.source).copied().flatten().is_some_and(|c| c >= end)
            }
            None => false,
        })
    }

    /// True when every partition has been read to the end noted at start and committed.
    /// And no position past the committed one waits to be committed (see
    /// `commit_moved_positions`; a stop ends the worker before it asks).
    pub(crate) fn caught_up(&self) -> bool {
        self.txn.is_none() && self.in_flight.is_empty() && self.all_ends_reached() && !self.moved_pending
    }

    /// Closes the shard's clients (its consumers without waiting out rust-rdkafka's 100 ms
    /// steps: see [`crate::kafka::consumer_close`]).
    pub(crate) fn close(self) {
        let started = Instant::now();
        let Self { id, producers, consumer, shadow, in_flight, .. } = self;
        // Commits still under way hold their producer; they end on their own threads.
        drop(in_flight);
        close(consumer);
        close(shadow);
        drop(producers);
        debug!(shard = id, close_ms = started.elapsed().as_millis() as u64, "shard closed");
    }

    pub(crate) fn records_mirrored(&self) -> u64 {
        self.records_mirrored
    }

    /// Counts `records` an earlier start of the shard in this run copied.
    pub(crate) fn add_records(&mut self, records: u64) {
        self.records_mirrored += records;
    }

    pub(crate) fn routes(&self) -> &[Route] {
        &self.routes
    }
}

/// Milliseconds since the last lap, for the debug log of a shard's start.
struct Lap(Instant);

impl Default for Lap {
    fn default() -> Self {
        Self(Instant::now())
    }
}

impl Lap {
    fn ms(&mut self) -> u64 {
        let ms = self.0.elapsed().as_millis() as u64;
        self.0 = Instant::now();
        ms
    }
}
