//! A mirror run: plan the topics, make the target ready, start the workers, keep the plan
//! current, and stop cleanly.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use rdkafka::consumer::{BaseConsumer, Consumer};
use tracing::{debug, error, info, warn};

use crate::config::names::{
    failback_starts_group, group_reader, shard_of, shards_topic, topic_id_reader_group,
};
use crate::config::MirrorSettings;
use crate::error::{Error, Result, Side};
use crate::kafka::client::CreateForRole;
use crate::kafka::errors::{unreachable, ErrorRecorder};
use crate::kafka::group_offsets::{committed_offsets, GroupQuery, Unstable};
use crate::kafka::topic_descriptions::topic_ids;
use crate::kafka::watermarks::committed_ends_with;
use crate::mirror::acl_sync::AclSync;
use crate::mirror::context::MirrorContext;
use crate::mirror::early_start::EarlyStart;
use crate::mirror::failed_topics::{topics_failed, FailedTopic};
use crate::mirror::failover_guard;
use crate::mirror::hosts::ShardHosts;
use crate::mirror::owners::Claims;
use crate::mirror::plan::{
    leave_out_unmirrorable, list_all_source_topics, list_source_topics, routes_by_shard, Route, SourceTopic,
};
use crate::mirror::positions::{every_groups_offsets, positions_in_every_group, EveryGroup, GroupPositions};
use crate::mirror::target_topics::{MissingTopic, Readiness, TopicChange, TopicSync};
use crate::ops::progress::ProgressView;
use crate::state_dir::StateDir;
use crate::translate::group_sync::GroupSync;
use crate::translate::translator::Translator;
use kmirror_state::TopicPartition;

fn source_partitions(known: &BTreeMap<String, i32>) -> Vec<TopicPartition> {
    known.iter().flat_map(|(topic, &n)| (0..n).map(move |p| TopicPartition::new(topic, p))).collect()
}

/// The outcome of a run that ended without a fatal error.
#[derive(Debug, Default)]
pub(crate) struct MirrorSummary {
    pub(crate) records: u64,
    pub(crate) topics: Vec<String>,
    /// A batch found every partition already copied and started no worker.
    pub(crate) nothing_to_do: bool,
}

pub(crate) struct Mirror {
    /// The shards' clients, being made since the start. Declared (so dropped) before the state
    /// dir: an early client's thread is told not to fence while the lock is still held.
    early_start: EarlyStart,
    ctx: Arc<MirrorContext>,
    _state: StateDir,
    source_metadata: BaseConsumer<ErrorRecorder>,
    /// `None` once a batch run has made every topic it will make.
    topic_sync: Option<TopicSync>,
    /// What `prepare` read for the run's start; taken by `run`.
    read_early: Option<ReadEarly>,
}

/// What the start reads beside the target's first answer: the source's topics, and as soon as
/// they are listed their committed ends and IDs (`None` if the listing failed); every shadow
/// group's offsets.
struct ReadEarly {
    listed: Result<Vec<SourceTopic>>,
    source: Option<SourceRead>,
    groups: Result<EveryGroup>,
}

/// Where the source's partitions end (read_committed), and their topics' IDs.
type SourceRead = (HashMap<TopicPartition, i64>, HashMap<String, String>);

impl Mirror {
    /// Checks settings against the real clusters before anything is written, and starts making
    /// the shards' clients (see [`EarlyStart`]).
    pub(crate) fn prepare(settings: MirrorSettings) -> Result<Self> {
        let state = StateDir::open(&settings.state_dir)?;
        let ctx = Arc::new(MirrorContext {
            settings,
            stop: Default::default(),
            telemetry: Default::default(),
            topic_ids: Default::default(),
            map_made_now: Default::default(),
            batch_ends: Default::default(),
            failover_recheck: Default::default(),
        });
        // Made first: the shards' clients are made as soon as the listing and the target's first
        // answer allow, and fence once the run does, while the rest below is asked (a later
        // run's shards waited 80-100 ms for their fencing after the plan was made).
        let early_start = EarlyStart::spawn(&ctx);
        let settings = &ctx.settings;
        let mut source_config = settings.source.client_config();
        source_config.set("bootstrap.servers", &settings.source_bootstrap);
        let mut target_config = settings.target.client_config();
        target_config.set("bootstrap.servers", &settings.target_bootstrap);
        // Read committed: the run's start asks it where the source's partitions end.
        let source_metadata: BaseConsumer<ErrorRecorder> = source_config
            .clone()
            .set("isolation.level", "read_committed")
            .create_for_role_with_context(ErrorRecorder::default())
            .map_err(Error::kafka(Side::Source, "creating metadata client"))?;
        // It reads the shadow groups too (see group_reader).
        let target_metadata: BaseConsumer<ErrorRecorder> = target_config
            .clone()
            .set("group.id", group_reader(&settings.name))
            .create_for_role_with_context(ErrorRecorder::default())
            .map_err(Error::kafka(Side::Target, "creating metadata client"))?;
        let claims_config = target_config.clone();
        // Made here, so that its connection comes up beside the target's first answer: its read
        // waits for that answer, and was the start's long pole (a new client's first round trips,
        // 99 ms of a second run's start).
        let claims_reader = Claims::reader(&claims_config, &settings.name);
        // Made before the first request, so that their connections come up beside it.
        let topic_sync = TopicSync::new(
            source_config,
            target_config,
            target_metadata,
            settings.replication_factor,
            settings.exclude_configs.clone(),
        )?;
        let target_metadata = topic_sync.target_consumer();
        let started = Instant::now();
        // The source's topics are listed, and every shadow group read whole, beside the target's
        // first answer: none needs another, and each is a new client's first round trips (the
        // group read the longest: a coordinator lookup, then the offsets, some 25-70 ms).
        let (reached, listed, groups_read, source_read, failovers) = std::thread::scope(|scope| {
            let groups_read = scope.spawn(|| {
                let read = every_groups_offsets(
                    Consumer::client(target_metadata),
                    &settings.name,
                    settings.shards,
                    Unstable::Report,
                    settings.connect_timeout,
                );
                debug!(groups_ms = started.elapsed().as_millis() as u64, "shadow groups read");
                read
            });
            // The listed topics' ends are asked at once, on the client that listed them: the run
            // needs them before it can start, and the other reads here take longer.
            let listed = scope.spawn(|| {
                let listed = list_source_topics(
                    &source_metadata,
                    &settings.selector,
                    &settings.rename,
                    &settings.source_bootstrap,
                    settings.connect_timeout,
                );
                debug!(list_ms = started.elapsed().as_millis() as u64, "source topics listed");
                early_start.decide_topics(listed.as_ref().ok().map(Vec::as_slice));
                let read = listed.as_ref().ok().map(|topics| {
                    let sources: Vec<TopicPartition> = topics
                        .iter()
                        .flat_map(|t| (0..t.partitions).map(|p| TopicPartition::new(&t.name, p)))
                        .collect();
                    read_source(&source_metadata, &sources, settings.connect_timeout)
                });
                (listed, read)
            });
            let reached =
                rdkafka::consumer::Consumer::fetch_metadata(target_metadata, None, settings.connect_timeout);
            early_start.decide_target_answered(reached.is_ok());
            // Once the target answered: a target that refused the first request (a wrong
            // password) is asked nothing more (the reader's client has only connected).
            let failovers = reached.is_ok().then(|| {
                let ctx = &ctx;
                scope.spawn(move || {
                    // Kept for the reads after the shards' fencing (see failover_recheck).
                    let reader = claims_reader?;
                    let read = failover_guard::read_failovers(
                        &reader,
                        &settings.name,
                        settings.shards,
                        settings.connect_timeout,
                    );
                    ctx.failover_recheck.keep_reader(reader);
                    read
                })
            });
            let target_ms = started.elapsed().as_millis() as u64;
            let (listed, source_read) = listed.join().unwrap_or_else(|_| {
                (Err(Error::Internal("listing the source's topics panicked".into())), None)
            });
            let groups_read = groups_read
                .join()
                .unwrap_or_else(|_| Err(Error::Internal("reading the shadow groups panicked".into())));
            let failovers = failovers.map(|read| {
                read.join()
                    .unwrap_or_else(|_| Err(Error::Internal("reading the shards' claims panicked".into())))
            });
            (reached.map(|_| target_ms), listed, groups_read, source_read, failovers)
        });
        let target_ms =
            reached.map_err(|e| unreachable(Side::Target, &settings.target_bootstrap, target_metadata, e))?;
        debug!(target_ms, "target reached");
        if settings.after_failover {
            refuse_a_resume_over_a_way_home(&source_metadata, settings)?;
        }
        failover_guard::check(&claims_config, settings, failovers)?;
        Ok(Self {
            early_start,
            ctx,
            _state: state,
            source_metadata,
            topic_sync: Some(topic_sync),
            read_early: Some(ReadEarly { listed, source: source_read, groups: groups_read }),
        })
    }

    /// Source and target one cluster (under two addresses, or the same), and `topic` copied
    /// under its own name: every copy would land in the topic it was read from, to be read and
    /// copied again, without end. The clients know the clusters' IDs from their first answers.
    fn refuse_a_copy_onto_itself(&self, topic: &SourceTopic) -> Result<()> {
        let timeout = self.ctx.settings.connect_timeout;
        let source = self.source_metadata.client().fetch_cluster_id(timeout);
        let target = self
            .topic_sync
            .as_ref()
            .and_then(|sync| sync.target_consumer().client().fetch_cluster_id(timeout));
        match (source, target) {
            (Some(source), Some(target)) if source == target => Err(Error::Usage(format!(
                "--source and --target are the same cluster (ID {source}), and topic {} would be copied onto itself without end: give --rename to copy it under another name (with --exclude leaving the copies out of --topics), or another --target",
                topic.name
            ))),
            _ => Ok(()),
        }
    }

    /// Mirror NAME-back whose source holds mirror NAME's map is the way home after a failover
    /// (see `kmirror failback`): it copies only what was written on DR, from the start positions
    /// `failback --execute` sets. Started without them all (before the failback, or after one
    /// that stopped between its shadow groups), it would copy back every record NAME copied to
    /// the partitions without one, each then twice on the source. The failback's mark, committed
    /// once every start is in, says they are; a way home that ran before has its own map.
    fn refuse_a_way_home_without_starts(&self) -> Result<()> {
        let name = &self.ctx.settings.name;
        let Some(forward) = name.strip_suffix("-back") else { return Ok(()) };
        let timeout = self.ctx.settings.connect_timeout;
        let map = crate::config::names::map_topic(forward);
        let Ok(metadata) = self.source_metadata.fetch_metadata(Some(&map), timeout) else {
            return Ok(());
        };
        let Some(target) = self.topic_sync.as_ref().map(TopicSync::target_consumer) else {
            return Ok(());
        };
        if !holds_topic(&metadata, &map) {
            return Ok(());
        }
        // Its own map on its target: it ran from its starts before, and its positions (expired
        // since) are rebuilt from that map.
        let own = crate::config::names::map_topic(name);
        if target.fetch_metadata(Some(&own), timeout).is_ok_and(|metadata| holds_topic(&metadata, &own)) {
            return Ok(());
        }
        let mark = failback_starts_group(name);
        let query = GroupQuery { group: &mark, partitions: None, skip_failed_partitions: false };
        match committed_offsets(Consumer::client(target), &[query], Unstable::Settled, timeout).pop() {
            Some(Ok(committed)) if committed.iter().any(|c| c.offset.is_some_and(|o| o >= 0)) => Ok(()),
            Some(Err(not_read)) => Err(not_read.into_error(Side::Target, &mark)),
            _ => Err(Error::Usage(format!(
                "mirror {name} is the way home of mirror {forward} (its source holds {map}), and `kmirror failback --execute` has not marked all its start positions committed ({mark}): run `kmirror failback --name {forward} --execute` (with the same --source and --target as {forward}) first, or again if a run of it stopped before its end or was made by a kmirror older than the mark; started now, it would copy back every record {forward} copied"
            ))),
        }
    }

    pub(crate) fn context(&self) -> Arc<MirrorContext> {
        self.ctx.clone()
    }

    /// Runs until stopped (or, with --until-caught-up, until done).
    pub(crate) fn run(mut self) -> Result<MirrorSummary> {
        let settings = &self.ctx.settings;
        let ReadEarly { listed, source: source_read, groups: groups_read } = self
            .read_early
            .take()
            .ok_or_else(|| Error::Internal("a mirror runs once, after prepare".into()))?;
        let topics = listed?;
        // Listed, so read too: the listing's thread asks for the ends right after it.
        let source_read = source_read.unwrap_or_default();
        if topics.is_empty() {
            return Err(settings.selector.no_topics_error());
        }
        if let Some(topic) = topics.iter().find(|t| t.name == t.target) {
            self.refuse_a_copy_onto_itself(topic)?;
        }
        // Before anything is written on the target (its topics, kmirror's own, ACLs).
        self.refuse_a_way_home_without_starts()?;
        // Access rules reach the target before anything else does (a target that cannot take
        // them refuses before a topic is made), batch runs included.
        let mut acl_sync = match settings.sync_acls {
            Some(policy) => {
                let mut sync = AclSync::new(
                    &self.source_config(),
                    &self.target_config(),
                    policy,
                    settings.groups.clone(),
                    settings.connect_timeout,
                )?;
                let report = sync.sync(&topics)?;
                info!(created = report.created, in_place = report.in_place, "ACLs synced to the target");
                Some(sync)
            }
            None => None,
        };
        // Where the mirror stands (shadow groups, source ends) is read beside the making of the
        // target topics (every missing one, kmirror's own among them, in one request): neither
        // needs the other, and one after the other they added up. The shards' clients, being
        // made since the start, fence once the reads show there is something to copy and the
        // target records the same shard count (another count's ids are another mirror's shards).
        let listed = routes_by_shard(&topics, settings.shards);
        let copied_before =
            groups_read.as_ref().map(|every| copied_before(every, &topics)).unwrap_or_default();
        let early = self.early_start.take_clients();
        let (targets, reads) = std::thread::scope(|scope| {
            let reads = scope.spawn(|| {
                let reads = self.read_start(&listed, groups_read, source_read);
                let fence = self.worth_fencing(&listed, &reads)
                    && self
                        .topic_sync()
                        .and_then(|sync| sync.check_shard_count(&settings.name, settings.shards))
                        .is_ok();
                self.early_start.decide_fencing(fence);
                reads
            });
            let targets = self.prepare_targets(&topics, &copied_before, true);
            (targets, reads.join())
        });
        // Decided already, unless the reads panicked: then the shards make their own clients.
        self.early_start.decide_fencing(false);
        let (ready, mut failed) = targets?;
        if ready.is_empty() {
            return Err(topics_failed(&failed));
        }
        let mut known: BTreeMap<String, i32> = ready.iter().map(|t| (t.name.clone(), t.partitions)).collect();
        let by_shard = routes_by_shard(&ready, settings.shards);
        let reads = reads.unwrap_or_else(|_| StartReads {
            groups: Err(Error::Internal("reading where the mirror stands panicked".into())),
            ends: HashMap::new(),
            ids: HashMap::new(),
        });
        if settings.until_caught_up {
            let ends =
                reads.ends.iter().map(|(tp, &end)| (tp.clone(), (end, reads.ids.get(&tp.topic).cloned())));
            let _ = self.ctx.batch_ends.set(ends.collect());
        }
        let all_caught_up = self.note_start(&by_shard, reads)?;
        let translator = match settings.sync_group_offsets {
            true => Some(Translator::open(&settings.state_dir, &settings.name, self.target_config())?),
            false => None,
        };
        let source_config = self.source_config();
        let target_config = self.target_config();
        let checkpoint_topic = settings.checkpoint_topic();
        let group_sync = settings.groups.as_ref().map(|groups| GroupSync {
            source: &source_config,
            target: &target_config,
            groups,
            checkpoint_topic: &checkpoint_topic,
            translator: translator.as_ref(),
            written: Default::default(),
            compacted: Default::default(),
        });
        // A batch run makes no topic after this: its admin clients close now, beside the copy
        // (or the exit, which does not wait for them). Each close waits out its polling thread's
        // 100 ms step: 80 ms at the end of every run.
        let retired = match settings.until_caught_up {
            true => self.topic_sync.take().map(|sync| std::thread::spawn(move || drop(sync))),
            false => None,
        };
        if settings.until_caught_up && all_caught_up {
            info!(
                partitions = known.values().sum::<i32>(),
                "nothing to do: every partition is already copied"
            );
            if let Some(sync) = &group_sync {
                self.ctx.failover_recheck.read_now(&target_config, settings)?;
                self.checkpoint(sync, &source_partitions(&known))?;
            }
            // As at the end of a batch that copied something: a topic it could not mirror fails it.
            if !failed.is_empty() {
                return Err(topics_failed(&failed));
            }
            return Ok(MirrorSummary {
                topics: known.into_keys().collect(),
                records: 0,
                nothing_to_do: true,
            });
        }
        info!(
            name = %settings.name,
            topics = ready.len(),
            partitions = known.values().sum::<i32>(),
            shards = settings.shards,
            workers = settings.num_streams,
            coordinated = settings.coordinate,
            "mirror starting"
        );
        crate::kafka::log_filter::clusters_reached();
        self.ctx
            .topic_ids
            .spawn(self.source_config(), self.target_config(), topic_id_reader_group(&settings.name))
            .map_err(|e| Error::Internal(format!("starting the topic-ID thread: {e}")))?;
        let hosts = match settings.coordinate {
            true => ShardHosts::coordinated(&self.ctx, by_shard, self.target_config())?,
            false => ShardHosts::local(&self.ctx, by_shard, early)?,
        };

        let mut progress = ProgressView::new(settings.progress, settings.until_caught_up);
        let mut next_checkpoint = Instant::now() + settings.checkpoint_interval;
        let mut next_refresh = Instant::now() + settings.refresh_interval;
        let mut gone = BTreeSet::new();
        // A state dir that cannot be written stops the mirror (writing to it again could crash
        // the process inside RocksDB), as does a failover found once the shards fenced.
        let mut stopping_fault = None;
        while hosts.running(&self.ctx) {
            hosts.wait();
            progress.tick(&self.ctx.telemetry);
            // Found by a shard's read after its fencing: shards with nothing to copy stop too.
            if stopping_fault.is_none() {
                if let Some(e) = self.ctx.failover_recheck.failover(&settings.name) {
                    error!(error = %e, "stopping");
                    self.ctx.stop.store(true, Ordering::Relaxed);
                    stopping_fault = Some(e);
                }
            }
            if let Some(sync) = &group_sync {
                if Instant::now() >= next_checkpoint && !self.ctx.stop.load(Ordering::Relaxed) {
                    // Group sync is never fenced: no group moves on the target behind a failover.
                    // A coordinated process that does not sync still looks for one.
                    let syncs = hosts.syncs_groups();
                    if !syncs {
                        sync.forget_written();
                        self.ctx.telemetry.forget_checkpoints();
                    }
                    let cycle =
                        self.ctx.failover_recheck.read_now(&target_config, settings).and_then(
                            |()| match syncs {
                                true => self.checkpoint(sync, &source_partitions(&known)),
                                false => Ok(()),
                            },
                        );
                    match cycle {
                        Ok(()) => {}
                        Err(e @ Error::FailedOver { .. }) => {
                            error!(error = %e, "stopping");
                            self.ctx.stop.store(true, Ordering::Relaxed);
                            stopping_fault = Some(e);
                        }
                        Err(e) if e.is_state_dir_fault() => {
                            error!(error = %e, "the state dir cannot be written; stopping");
                            self.ctx.stop.store(true, Ordering::Relaxed);
                            stopping_fault = Some(e);
                        }
                        Err(e) => warn!(error = %e, "checkpoint failed; will retry"),
                    }
                    next_checkpoint = Instant::now() + settings.checkpoint_interval;
                }
            }
            if settings.until_caught_up
                || self.ctx.stop.load(Ordering::Relaxed)
                || Instant::now() < next_refresh
            {
                continue;
            }
            next_refresh = Instant::now() + settings.refresh_interval;
            match self.refresh(&mut known, &mut failed, &mut gone, &hosts, acl_sync.as_mut()) {
                Ok(()) => {}
                Err(e) => warn!(error = %e, "topic refresh failed; will retry"),
            }
        }

        progress.finish(&self.ctx.telemetry);
        let partitions = source_partitions(&known);
        let mut summary =
            MirrorSummary { topics: known.into_keys().collect(), records: 0, nothing_to_do: false };
        let (records, first_error) = hosts.finish(&self.ctx);
        // Found after the loop's last look (a batch whose shards had nothing left to copy).
        let stopping_fault = stopping_fault.or_else(|| self.ctx.failover_recheck.failover(&settings.name));
        if let Some(retired) = retired {
            let _ = retired.join();
        }
        summary.records = records;
        if let Some(e) = stopping_fault.or(first_error) {
            return Err(e);
        }
        // A batch migration leaves current group positions behind, taken after the data.
        if let (Some(sync), true) = (&group_sync, settings.until_caught_up) {
            self.ctx.failover_recheck.read_now(&target_config, settings)?;
            self.checkpoint(sync, &partitions)?;
            info!("final checkpoint of the source groups written");
        }
        if !failed.is_empty() && settings.until_caught_up {
            return Err(topics_failed(&failed));
        }
        Ok(summary)
    }

    /// Where the mirror stands: every shadow group's positions of `by_shard`'s partitions (from
    /// the groups as read whole), their committed ends and their topics' IDs.
    fn read_start(
        &self,
        by_shard: &BTreeMap<u32, Vec<Route>>,
        groups_read: Result<EveryGroup>,
        (ends, ids): SourceRead,
    ) -> StartReads {
        let s = &self.ctx.settings;
        let routes: Vec<Route> = by_shard.values().flatten().cloned().collect();
        let groups =
            groups_read.and_then(|every| positions_in_every_group(&every, &s.name, s.shards, &routes));
        StartReads { groups, ends, ids }
    }

    /// Tells the telemetry where every partition stands before anything is copied; returns
    /// true when every partition is known to be copied to its end already.
    fn note_start(&self, by_shard: &BTreeMap<u32, Vec<Route>>, reads: StartReads) -> Result<bool> {
        let standing = match self.standing(by_shard, &reads) {
            Ok(standing) => standing,
            Err(StandingUnknown::Refused(e)) => return Err(e),
            Err(StandingUnknown::GroupsUnread(e)) => {
                warn!(error = %e, "could not read the shadow groups for progress; the shards will");
                return Ok(false);
            }
        };
        // A coordinated process runs only the shards the group gives it: its progress and lag
        // are theirs, noted as they report (every process noting every partition multiplied
        // the lag its metrics summed to, with the others' frozen at their start).
        if !self.ctx.settings.coordinate {
            for (tp, start, end) in &standing.partitions {
                self.ctx.telemetry.note_start(tp, *start, *end);
            }
        }
        Ok(standing.all_copied)
    }

    /// Where every partition of `by_shard` stands. Refuses a position written for another
    /// source topic (a changed `--rename`), and never calls a partition copied whose position is
    /// past its end or belongs to a recreated topic: its shard refuses it.
    fn standing(
        &self,
        by_shard: &BTreeMap<u32, Vec<Route>>,
        reads: &StartReads,
    ) -> std::result::Result<Standing, StandingUnknown> {
        let s = &self.ctx.settings;
        let routes: Vec<&Route> = by_shard.values().flatten().collect();
        let StartReads { groups, ends, ids } = reads;
        let groups = groups.as_ref().map_err(|e| StandingUnknown::GroupsUnread(e.to_string()))?;
        let mut own = HashMap::new();
        for (shard, positions) in groups {
            for route in &routes {
                let Some(saved) = positions.get(&route.source).cloned().flatten() else { continue };
                if *shard == shard_of(&route.source.topic, route.source.partition, s.shards) {
                    own.insert(route.source.clone(), saved);
                } else if let Some(recorded) = saved.source_topic.filter(|t| *t != route.source.topic) {
                    return Err(StandingUnknown::Refused(Error::PositionOfAnotherTopic {
                        target: route.target.to_string(),
                        recorded,
                        topic: route.source.topic.clone(),
                    }));
                }
            }
        }
        let mut standing = Standing { all_copied: true, partitions: Vec::with_capacity(routes.len()) };
        for tp in routes.iter().map(|r| &r.source) {
            let saved = own.get(tp);
            let start = saved.map(|p| p.offset);
            let end = ends.get(tp).copied();
            let same_topic = match (saved.and_then(|p| p.source_topic_id.as_ref()), ids.get(&tp.topic)) {
                (Some(recorded), Some(current)) => recorded == current,
                _ => true,
            };
            // An empty partition is copied once the mirror has a position in it: a first run
            // over empty topics commits its positions (status, verify and failover then know
            // the copies are the mirror's), and only later runs have nothing to do.
            standing.all_copied &= same_topic
                && match end {
                    Some(end) => start == Some(end),
                    None => false,
                };
            standing.partitions.push((tp.clone(), start, end));
        }
        Ok(standing)
    }

    /// Whether the shards' producers may fence now: not for a batch run with nothing to do, nor
    /// for a run that will refuse to start.
    fn worth_fencing(&self, by_shard: &BTreeMap<u32, Vec<Route>>, reads: &StartReads) -> bool {
        match self.standing(by_shard, reads) {
            Ok(standing) => !(self.ctx.settings.until_caught_up && standing.all_copied),
            Err(StandingUnknown::Refused(_)) => false,
            Err(StandingUnknown::GroupsUnread(_)) => true,
        }
    }

    /// One checkpoint cycle; the groups it checkpointed are noted even when another group
    /// failed it.
    fn checkpoint(&self, sync: &GroupSync<'_>, partitions: &[TopicPartition]) -> Result<()> {
        let cycle = sync.run_cycle(partitions)?;
        for (group, at) in cycle.taken {
            self.ctx.telemetry.checkpointed(&group, at);
        }
        cycle.failed.map_or(Ok(()), Err)
    }

    fn source_config(&self) -> rdkafka::ClientConfig {
        let mut config = self.ctx.settings.source.client_config();
        config.set("bootstrap.servers", &self.ctx.settings.source_bootstrap);
        config
    }

    fn target_config(&self) -> rdkafka::ClientConfig {
        let mut config = self.ctx.settings.target.client_config();
        config.set("bootstrap.servers", &self.ctx.settings.target_bootstrap);
        config
    }

    /// The source topics the selector picks, their target names unchecked.
    fn list_topics(&self) -> Result<Vec<SourceTopic>> {
        let s = &self.ctx.settings;
        list_all_source_topics(
            &self.source_metadata,
            &s.selector,
            &s.rename,
            &s.source_bootstrap,
            s.connect_timeout,
        )
    }

    /// Creates or checks each target topic; a topic that cannot be made right is left out,
    /// with its error logged, and the others go on.
    /// `known` holds the partition count of each topic already mirrored.
    /// The shards topic (which records --shards), the map topic and the checkpoint topic.
    fn topic_sync(&self) -> Result<&TopicSync> {
        self.topic_sync.as_ref().ok_or_else(|| Error::Internal("the topic clients are closed".into()))
    }

    /// Makes every target topic ready: all are checked (see [`TopicSync::check_all`]), and with
    /// `own` kmirror's own topics beside them; then every missing one is made in one request (see
    /// [`TopicSync::make_all`]). A topic that cannot be made right is left out, with its error
    /// logged, and the others go on; an own topic that cannot be made stops the run. `known` holds the partition count of each topic already
    /// mirrored.
    fn prepare_targets(
        &self,
        topics: &[SourceTopic],
        known: &BTreeMap<String, i32>,
        own: bool,
    ) -> Result<(Vec<SourceTopic>, Vec<FailedTopic>)> {
        let sync = self.topic_sync()?;
        let settings = &self.ctx.settings;
        let (own, checks) = std::thread::scope(|scope| {
            let own = own.then(|| scope.spawn(|| sync.missing_own_topics(&settings.name, settings.shards)));
            let checks = sync.check_all(topics, known);
            let own = match own {
                Some(own) => own.join().unwrap_or_else(|_| {
                    Err(Error::Internal("checking kmirror's own topics panicked".into()))
                }),
                None => Ok(Vec::new()),
            };
            (own, checks)
        });
        let own = own?;
        let missing: Vec<&MissingTopic> = own
            .iter()
            .chain(checks.iter().filter_map(|c| match c {
                Ok(Readiness::Missing(missing)) => Some(missing),
                _ => None,
            }))
            .collect();
        let mut made = sync.make_all(&missing).into_iter();
        for (topic, outcome) in own.iter().zip(made.by_ref()) {
            if outcome? && topic.name == settings.map_topic() {
                self.ctx.map_made_now.store(true, Ordering::Relaxed);
            }
            debug!(topic = %topic.name, partitions = topic.partitions, "made kmirror's own topic");
        }
        if own.iter().any(|t| t.name == shards_topic(&settings.name)) {
            sync.check_shard_count(&settings.name, settings.shards)?;
        }
        let mut ready = Vec::new();
        let mut failed = Vec::new();
        for (topic, check) in topics.iter().zip(checks) {
            let outcome = match check {
                Ok(Readiness::Missing(missing)) => made
                    .next()
                    .unwrap_or_else(|| Err(Error::Internal(format!("{} was not made", missing.name))))
                    .map(|_| {
                        info!(topic = %topic.target, source = %topic.name, partitions = topic.partitions, configs = missing.configs.len(), "created target topic");
                        TopicChange::Created
                    }),
                Ok(Readiness::Ready(change)) => Ok(change),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(change) => {
                    match change {
                        TopicChange::Created => self.ctx.telemetry.metrics.topic_created(&topic.name),
                        TopicChange::Grown => {}
                        TopicChange::ConfigsSynced => self.ctx.telemetry.metrics.config_synced(&topic.name),
                        TopicChange::Unchanged => {}
                    }
                    ready.push(topic.clone())
                }
                Err(e) => {
                    error!("{e}");
                    failed.push(FailedTopic::of(&topic.name, &e));
                }
            }
        }
        Ok((ready, failed))
    }

    /// Picks up new topics and new partitions, and syncs drifted configs. `gone`: the mirrored
    /// topics the source no longer lists, said once each.
    fn refresh(
        &self,
        known: &mut BTreeMap<String, i32>,
        failed: &mut Vec<FailedTopic>,
        gone: &mut BTreeSet<String>,
        hosts: &ShardHosts,
        acl_sync: Option<&mut AclSync>,
    ) -> Result<()> {
        let mut topics = self.list_topics()?;
        note_gone(known, &topics, gone);
        let failed_before: BTreeSet<String> = failed.drain(..).map(|f| f.name).collect();
        let unmirrorable = leave_out_unmirrorable(&mut topics, &self.ctx.settings.rename, known);
        let (ready, mut now_failed) = self.prepare_targets(&topics, known, false)?;
        for (name, reason) in unmirrorable {
            if !failed_before.contains(&name) {
                error!("{reason}: left out; change the rule or --topics");
            }
            // As the start refuses a rule that writes two topics to one (a usage error).
            now_failed.push(FailedTopic { name, reason, exit_code: 2 });
        }
        for name in now_failed.iter().map(|f| &f.name) {
            if !failed_before.contains(name) {
                error!(topic = %name, "topic stopped");
            }
        }
        *failed = now_failed;
        if let Some(sync) = acl_sync {
            // A rule that cannot be copied now is copied at a later refresh; the data goes on.
            match sync.sync(&ready) {
                Ok(report) if report.created > 0 => {
                    info!(created = report.created, "ACLs synced to the target")
                }
                Ok(_) => {}
                Err(e) => warn!(error = %e, "ACL sync failed; will retry"),
            }
        }
        for topic in ready {
            let before = known.get(&topic.name).copied().unwrap_or(0);
            // A topic found since the start that would be copied onto itself (one cluster, a
            // --rename that keeps its name): left out, as the start refuses it.
            if before == 0 && topic.name == topic.target {
                if let Err(e) = self.refuse_a_copy_onto_itself(&topic) {
                    if !failed_before.contains(&topic.name) {
                        error!(topic = %topic.name, error = %e, "topic stopped");
                    }
                    failed.push(FailedTopic::of(&topic.name, &e));
                    continue;
                }
            }
            if topic.partitions > before {
                known.insert(topic.name.clone(), topic.partitions);
                info!(topic = %topic.name, from = before, to = topic.partitions, "mirroring new partitions");
                // Only the new partitions: existing ones are already running.
                let routes = routes_by_shard(std::slice::from_ref(&topic), self.ctx.settings.shards);
                for (shard, routes) in routes {
                    let new: Vec<Route> =
                        routes.into_iter().filter(|r| r.source.partition >= before).collect();
                    if !new.is_empty() {
                        hosts.add_routes(shard, new);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Says once which mirrored topics the source no longer lists. They stay known: their
/// partitions stay with their shards, so that a topic made again under the same name is caught
/// by its topic ID (see `topic_id_watch`) rather than mirrored as new from offset 0.
fn note_gone(known: &BTreeMap<String, i32>, listed: &[SourceTopic], gone: &mut BTreeSet<String>) {
    let listed: BTreeSet<&str> = listed.iter().map(|t| t.name.as_str()).collect();
    gone.retain(|name| !listed.contains(name.as_str()));
    for name in known.keys().filter(|name| !listed.contains(name.as_str())) {
        if gone.insert(name.clone()) {
            warn!(topic = %name, "source topic is gone (deleted, or no longer described to the mirror's principal): its copy keeps what was copied, and nothing more is read from it");
        }
    }
}

/// The partition counts of the topics earlier runs copied, as their shadow groups hold them
/// (keyed by target partition; every partition has a position from its first run on): a
/// target topic with that many partitions is the mirror's own copy, and grows with its source
/// at the start as while running (a source topic grown while the mirror was stopped, between
/// two batch runs say, was left out: its copy had fewer partitions than it).
fn copied_before(every: &EveryGroup, topics: &[SourceTopic]) -> BTreeMap<String, i32> {
    let mut counts: HashMap<&str, i32> = HashMap::new();
    for committed in every.iter().flat_map(|(_, committed)| committed) {
        if committed.offset.is_some_and(|o| o >= 0) {
            let count = counts.entry(committed.topic.as_str()).or_default();
            *count = (*count).max(committed.partition + 1);
        }
    }
    topics.iter().filter_map(|t| counts.get(t.target.as_str()).map(|&n| (t.name.clone(), n))).collect()
}

/// Where the partitions stand before anything is copied: each one's committed position and
/// committed end (None where unknown), and whether every one is copied to its end.
struct Standing {
    all_copied: bool,
    partitions: Vec<(TopicPartition, Option<i64>, Option<i64>)>,
}

/// `--after-failover` once the way home ran: mirror NAME-back wrote its map (and the DR writes)
/// on this mirror's source. Resumed, NAME would copy those copies back to DR, each record twice
/// there. Checked before the resume ends the failover: refused, the failover stays in force.
fn refuse_a_resume_over_a_way_home(
    source: &BaseConsumer<ErrorRecorder>,
    settings: &MirrorSettings,
) -> Result<()> {
    let name = &settings.name;
    let back = format!("{name}-back");
    let map = crate::config::names::map_topic(&back);
    let Ok(metadata) = source.fetch_metadata(Some(&map), settings.connect_timeout) else { return Ok(()) };
    if holds_topic(&metadata, &map) {
        return Err(Error::Usage(format!(
            "--after-failover: mirror {back} has copied the DR writes home ({map} is on the source), and resumed, {name} would copy them to DR again; mirror to DR under a new --name with --start-from latest once {back} is caught up and stopped (nothing was changed)"
        )));
    }
    Ok(())
}

/// Whether `metadata` (asked for `topic`) shows the topic with partitions.
fn holds_topic(metadata: &rdkafka::metadata::Metadata, topic: &str) -> bool {
    metadata.topics().iter().any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
}

/// Why [`Mirror::standing`] cannot say.
enum StandingUnknown {
    /// The run must not start (the error says why).
    Refused(Error),
    /// The shadow groups could not be read now; the shards read them again.
    GroupsUnread(String),
}

/// The committed ends of `sources` and their topics' IDs, on the source's `client`; either is
/// empty where it could not be read.
fn read_source(
    client: &BaseConsumer<ErrorRecorder>,
    sources: &[TopicPartition],
    timeout: std::time::Duration,
) -> SourceRead {
    let started = Instant::now();
    let ends = committed_ends_with(client, sources, timeout).unwrap_or_default();
    let ends_ms = started.elapsed().as_millis() as u64;
    let topics: BTreeSet<&str> = sources.iter().map(|tp| tp.topic.as_str()).collect();
    let ids = topic_ids(Consumer::client(client), &topics.into_iter().collect::<Vec<_>>(), timeout)
        .unwrap_or_default();
    debug!(source_ms = started.elapsed().as_millis() as u64, ends_ms, "source ends and topic IDs read");
    (ends, ids)
}

/// What [`Mirror::read_start`] read: the shadow groups' positions (by shard), the committed
/// ends and the topic IDs of the source (empty where the source could not say).
struct StartReads {
    groups: Result<Vec<(u32, GroupPositions)>>,
    ends: HashMap<TopicPartition, i64>,
    ids: HashMap<String, String>,
}
