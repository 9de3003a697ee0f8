//! Where each partition of a shard resumes: saved positions checked against the source as it
//! stands (see [`crate::mirror::position_check`]), `--start-from latest` resolved and committed
//! before anything is read, and the source topics' IDs watched while running.
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kmirror_state::{MapRecord, Skipped, TopicPartition};
use rdkafka::consumer::Consumer;
use rdkafka::producer::Producer;
use tracing::{debug, info, warn};

use super::clients::target_config;
use super::txn_calls::Step;
use super::{Shard, ABORT_TIMEOUT, CALL_TIMEOUT, MOVED_POSITIONS_CONFIRM, POSITION_REFRESH};
use crate::config::MissingSource;
use crate::error::{Error, Result, Side};
use crate::kafka::topic_descriptions::topic_ids;
use crate::kafka::watermarks::{committed_ends_with, log_starts_with, watermarks};
use crate::mirror::flush::abort;
use crate::mirror::map_positions::positions_from_map;
use crate::mirror::plan::Route;
use crate::mirror::position_check::{check, same_topic, PartitionNow, Verdict};
use crate::mirror::shadow::SavedPosition;

impl Shard {
    /// Notes the committed end (last stable offset) of every never-committed partition: a
    /// transaction still open there is copied whole once it commits, never cut in two.
    pub(super) fn resolve_latest(&mut self) -> Result<()> {
        let pending: Vec<TopicPartition> = self
            .routes
            .iter()
            .map(|r| r.source.clone())
            .filter(|tp| self.committed.get(tp).copied().flatten().is_none() && !self.latest.contains_key(tp))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let ends = committed_ends_with(&self.consumer, &pending, CALL_TIMEOUT)
            .map_err(Error::kafka(Side::Source, "reading the latest offsets"))?;
        for tp in &pending {
            let end = ends.get(tp).copied().ok_or_else(|| Error::Shard {
                shard: self.id,
                message: format!("the source gave no latest offset for {tp}"),
            })?;
            self.latest.insert(tp.clone(), end);
        }
        Ok(())
    }

    /// Notes the IDs of the routes' target topics not seen yet; as for sources, a target that
    /// gives none leaves a replaced topic to the delivered offsets (see `check_target_ends`).
    pub(super) fn learn_target_ids(&mut self, routes: &[Route]) {
        let topics = unseen(routes.iter().map(|r| r.target.topic.as_str()), &self.target_ids);
        self.ctx.topic_ids.want([], topics.iter().copied());
        match topic_ids(self.shadow.client(), &topics, CALL_TIMEOUT) {
            Ok(ids) => self.target_ids.extend(ids),
            Err(e) => warn!(shard = self.id, error = %e, "the target gave no topic IDs"),
        }
    }

    /// Notes the IDs of the routes' source topics not seen yet. A source that gives none (or
    /// cannot be asked) leaves recreated topics to the position bounds, and says so once.
    pub(super) fn learn_topic_ids(&mut self, routes: &[Route]) {
        let topics = unseen(routes.iter().map(|r| r.source.topic.as_str()), &self.topic_ids);
        self.ctx.topic_ids.want(topics.iter().copied(), []);
        match topic_ids(self.consumer.client(), &topics, CALL_TIMEOUT) {
            Ok(ids) => self.topic_ids.extend(ids),
            Err(e) => warn!(
                shard = self.id,
                error = %e,
                "the source gave no topic IDs: a recreated source topic is only caught by its offsets"
            ),
        }
    }

    /// Checks saved positions against the partitions as they stand now (see
    /// [`crate::mirror::position_check`]): refuses what would skip or mix records, and steps
    /// over records the source deleted only where the policy says so.
    pub(super) fn check_positions(&mut self, saved: &[(Route, SavedPosition)]) -> Result<()> {
        if saved.is_empty() {
            return Ok(());
        }
        let partitions: Vec<TopicPartition> = saved.iter().map(|(r, _)| r.source.clone()).collect();
        let starts = log_starts_with(&self.consumer, &partitions, CALL_TIMEOUT)
            .map_err(Error::kafka(Side::Source, "reading where the partitions start"))?;
        let ends = committed_ends_with(&self.consumer, &partitions, CALL_TIMEOUT)
            .map_err(Error::kafka(Side::Source, "reading where the partitions end"))?;
        for (route, position) in saved {
            let (Some(&log_start), Some(&end)) = (starts.get(&route.source), ends.get(&route.source)) else {
                return Err(Error::Shard {
                    shard: self.id,
                    message: format!("the source gave no start or end for {}", route.source),
                });
            };
            let now =
                PartitionNow { log_start, end, topic_id: self.topic_ids.get(&route.source.topic).cloned() };
            match check(route, position, &now, self.ctx.settings.on_missing_source)? {
                Verdict::Resume(_) => {}
                Verdict::Skip { from, to } => {
                    warn!(
                        shard = self.id,
                        topic = %route.source.topic,
                        partition = route.source.partition,
                        from,
                        to,
                        skipped = to - from,
                        "the source deleted records before they were copied; going on at its start (--on-missing-source skip)"
                    );
                    self.ctx.telemetry.metrics.skipped(&route.source.topic, (to - from) as u64);
                    self.floor.insert(route.source.clone(), to);
                    self.skips.push((route.source.clone(), Skipped { from, to }));
                }
            }
        }
        Ok(())
    }

    /// A read fell out of range (records deleted under the mirror, or a partition that shrank):
    /// commits what was read, then checks every position as at start.
    pub(super) fn handle_out_of_range(&mut self) -> Result<()> {
        self.commit_if_open()?;
        let saved: Vec<(Route, SavedPosition)> = self
            .routes
            .iter()
            .filter_map(|r| {
                let offset = self.committed.get(&r.source).copied().flatten()?;
                let offset = offset.max(self.floor.get(&r.source).copied().unwrap_or(offset));
                let source_topic_id = self.topic_ids.get(&r.source.topic).cloned();
                Some((
                    r.clone(),
                    SavedPosition { offset, source_topic: None, source_topic_id, by_failback: false },
                ))
            })
            .collect();
        let ids_now = topic_ids(self.consumer.client(), &self.topics(), CALL_TIMEOUT).unwrap_or_default();
        let recorded = std::mem::replace(&mut self.topic_ids, ids_now);
        let result = self.check_positions(&saved);
        self.topic_ids = recorded;
        result?;
        self.commit_skips()?;
        self.assign_at_committed()
    }

    /// Every so often, whether a source or target topic was deleted or recreated under the
    /// running shard.
    pub(super) fn check_topic_ids(&mut self) -> Result<()> {
        let latest = self.ctx.topic_ids.latest();
        if latest.round == self.id_round {
            return Ok(());
        }
        self.id_round = latest.round;
        if let Some(now) = &latest.source {
            let mut deleted = Vec::new();
            for route in &self.routes {
                let Some(current) = now.id_of(&route.source.topic) else { continue };
                let offset = self.committed.get(&route.source).copied().flatten().unwrap_or(0);
                let recorded = self.topic_ids.get(&route.source.topic).map(String::as_str);
                same_topic(&route.source, offset, recorded, current)?;
                if current.is_none() {
                    deleted.push(route.source.clone());
                }
            }
            if self.ctx.settings.until_caught_up {
                for source in deleted {
                    self.end_deleted_partition(&source)?;
                }
            }
        }
        let Some(now) = &latest.target else { return Ok(()) };
        let mut targets: Vec<(&String, &String)> = self.target_ids.iter().collect();
        targets.sort_unstable();
        for (topic, recorded) in targets {
            let how = match now.id_of(topic) {
                None => continue,
                Some(Some(current)) if current == recorded => continue,
                Some(Some(current)) => {
                    format!("deleted and recreated (topic ID {recorded} is now {current})")
                }
                Some(None) => "deleted".to_string(),
            };
            return Err(Error::TargetReplaced { topic: topic.clone(), how });
        }
        Ok(())
    }

    /// A batch's partition whose source topic is gone: the end noted at the start can never be
    /// read to. Refused unless `--on-missing-source skip`, which ends the partition where it
    /// was committed (what is read past it is committed with the open transaction). A partition
    /// whose end the batch had not learned yet is refused too: it can no longer be learned, and
    /// waiting for it held the batch for ever.
    fn end_deleted_partition(&mut self, source: &TopicPartition) -> Result<()> {
        let committed = self.committed.get(source).copied().flatten().unwrap_or(0);
        let end = self.ends.get(source).copied();
        let read = self.consumer_positions().ok().and_then(|p| p.get(source).copied()).unwrap_or(committed);
        if end.is_some_and(|end| end == 0 || committed.max(read) >= end) {
            return Ok(());
        }
        match self.ctx.settings.on_missing_source {
            MissingSource::Fail => Err(Error::SourceDeletedInBatch {
                topic: source.topic.clone(),
                partition: source.partition,
                offset: committed,
                short_of: match end {
                    Some(end) => {
                        format!("below the end {end} the batch set out to reach, and the rest is gone from the source")
                    }
                    None => "and the batch had not learned where it ends, so whatever was past that may be gone from the source".to_string(),
                },
            }),
            MissingSource::Skip => {
                warn!(
                    shard = self.id,
                    topic = %source.topic,
                    partition = source.partition,
                    copied_to = committed,
                    end = ?end,
                    "source topic deleted while the batch copied it: the rest of the partition is gone; skipped (--on-missing-source skip)"
                );
                self.ends.insert(source.clone(), committed);
                self.ctx.telemetry.ended_short(source, committed);
                Ok(())
            }
        }
    }

    pub(super) fn topics(&self) -> Vec<&str> {
        let mut topics: Vec<&str> = self.routes.iter().map(|r| r.source.topic.as_str()).collect();
        topics.sort_unstable();
        topics.dedup();
        topics
    }

    /// Commits the resolved `--start-from latest` positions before anything is read: a crash
    /// before the first data commit then resumes where this start was, instead of at an end
    /// that has moved on (which would skip what arrived in between).
    pub(super) fn commit_latest_starts(&mut self) -> Result<()> {
        let starts: Vec<(TopicPartition, i64)> = self
            .latest
            .iter()
            .filter(|(tp, _)| self.committed.get(*tp).is_some_and(|c| c.is_none()))
            .map(|(tp, &o)| (tp.clone(), o))
            .collect();
        let marks = self.start_marks(&starts);
        self.commit_positions_with(&starts, &marks, "--start-from latest: start positions")
    }

    /// Marks in the map the starts `kmirror failback` set for the way home (their commit says
    /// so; a mirror's own commit of the position clears it): they are in no map record, and once
    /// the shadow group's offsets expired, a partition the way home never copied from would start
    /// at its earliest, and copy the forward mirror's copies back. At whatever start first finds
    /// them: one stopped before its marks, or a topic left out of the first run, still gets them.
    pub(super) fn mark_saved_starts(&mut self, saved: &[(Route, SavedPosition)]) -> Result<()> {
        let starts: Vec<(TopicPartition, i64)> =
            saved.iter().filter(|(_, p)| p.by_failback).map(|(r, p)| (r.source.clone(), p.offset)).collect();
        let marks = self.start_marks(&starts);
        self.commit_positions_with(&starts, &marks, "the way home's start positions marked in the map")
    }

    /// Map records of where never-copied partitions start (an empty skipped range there). The
    /// shadow group's positions expire (`offsets.retention.minutes`) while a mirror is stopped;
    /// a partition with copies goes on where its map ends, but one without went on where a
    /// start finds it then: `--start-from latest` past what was written while the mirror was
    /// stopped, earliest past what the source deleted meanwhile, both unsaid. The map topic
    /// does not expire.
    fn start_marks(&self, starts: &[(TopicPartition, i64)]) -> Vec<MapRecord> {
        starts
            .iter()
            .filter_map(|(source, at)| {
                let route = self.route_index_of(source).map(|i| &self.routes[i])?;
                Some(MapRecord {
                    skipped: vec![Skipped { from: *at, to: *at }],
                    ..MapRecord::new(route.source.clone(), route.target.clone(), Vec::new())
                })
            })
            .collect()
    }

    /// Commits a position for every never-committed partition that holds nothing to read yet
    /// (its start is its committed end): where nothing was ever copied the map topic has no
    /// record either, so the next start would read the shard's whole map partition back to its
    /// beginning looking for one. Its start is where reading from the earliest begins anyway,
    /// and [`Self::refresh_idle_positions`] keeps it from expiring while it stays empty.
    /// Returns where the never-committed partitions start (their backlog begins there, not
    /// at offset 0).
    pub(super) fn commit_empty_starts(&mut self) -> Result<HashMap<TopicPartition, i64>> {
        let never: Vec<TopicPartition> = self
            .routes
            .iter()
            .map(|r| r.source.clone())
            .filter(|tp| self.committed.get(tp).is_some_and(|c| c.is_none()))
            .collect();
        if never.is_empty() {
            return Ok(HashMap::new());
        }
        let starts = log_starts_with(&self.consumer, &never, CALL_TIMEOUT)
            .map_err(Error::kafka(Side::Source, "reading where the partitions start"))?;
        let ends = committed_ends_with(&self.consumer, &never, CALL_TIMEOUT)
            .map_err(Error::kafka(Side::Source, "reading where the partitions end"))?;
        let empty: Vec<(TopicPartition, i64)> = never
            .into_iter()
            .filter_map(|tp| {
                let start = *starts.get(&tp)?;
                (ends.get(&tp) == Some(&start)).then_some((tp, start))
            })
            .collect();
        let marks = self.start_marks(&empty);
        self.commit_positions_with(&empty, &marks, "start positions of empty partitions")?;
        Ok(starts.into_iter().collect())
    }

    /// Fills in, from the map topic, the positions the shadow group no longer has (see
    /// [`crate::mirror::map_positions`]); returns them, to be committed again before reading.
    pub(super) fn rebuild_lost_positions(
        &self,
        routes: &[Route],
        positions: &mut HashMap<TopicPartition, Option<SavedPosition>>,
    ) -> Result<Vec<(TopicPartition, i64)>> {
        let lost: Vec<Route> =
            routes.iter().filter(|r| positions.get(&r.source).is_none_or(|p| p.is_none())).cloned().collect();
        let s = &self.ctx.settings;
        if lost.is_empty() || self.map_known_empty || self.map_partition_is_empty() {
            return Ok(Vec::new());
        }
        let found = positions_from_map(&target_config(&self.ctx), &s.name, self.id, &lost)?;
        let mut rebuilt = Vec::with_capacity(found.len());
        for route in &lost {
            let Some(&end) = found.get(&route.source) else { continue };
            let (topic, partition) = (&route.target.topic, route.target.partition);
            let (_, target_end) = self
                .shadow
                .fetch_watermarks(topic, partition, CALL_TIMEOUT)
                .map_err(Error::kafka(Side::Target, format!("reading where {} ends", route.target)))?;
            if target_end < end.target {
                return Err(Error::TargetRecreated {
                    target: route.target.to_string(),
                    source_partition: route.source.to_string(),
                    end: target_end,
                    copied: end.target,
                });
            }
            let offset = end.source;
            warn!(
                shard = self.id,
                topic = %route.source.topic,
                partition = route.source.partition,
                offset,
                group = %s.shadow_group(self.id),
                "the shadow group has no position for a partition the map topic shows copied or started (expired after the target's offsets.retention.minutes?); resuming where the map ends"
            );
            positions.insert(
                route.source.clone(),
                Some(SavedPosition {
                    offset,
                    source_topic: Some(route.source.topic.clone()),
                    source_topic_id: None,
                    by_failback: false,
                }),
            );
            rebuilt.push((route.source.clone(), offset));
        }
        Ok(rebuilt)
    }

    /// Whether the shard's map partition holds nothing at all (a first run), asked on the shadow
    /// client, which is connected already: the map's own reader is a new client, and making it
    /// and asking it took 160-230 ms of every shard's first start. Any doubt reads the map.
    fn map_partition_is_empty(&self) -> bool {
        let topic = self.ctx.settings.map_topic();
        match watermarks(&self.shadow, &topic, self.id as i32, CALL_TIMEOUT) {
            Ok((low, high)) => high <= low,
            Err(e) => {
                debug!(shard = self.id, error = %e, "could not tell whether the map partition is empty; reading it");
                false
            }
        }
    }

    /// Between transactions, commits again the positions idle for [`POSITION_REFRESH`], so Kafka
    /// does not expire them.
    pub(super) fn refresh_idle_positions(&mut self) -> Result<()> {
        let due = self.positions_due_for_refresh();
        self.commit_positions(&due, "idle positions committed again")
    }

    /// Commits, in a transaction of their own, positions the consumer moved past the committed
    /// ones (or past none yet) with nothing to copy (a source transaction's commit or abort
    /// marker, its aborted records, at the end of what the source holds), once their
    /// partition's last commit is `after` old. Uncommitted, `status` and a failover counted
    /// those offsets as records not mirrored, and every later batch ran again to copy nothing.
    /// Only while the shard has no transaction open or committing (all it read is committed
    /// then), is not stopping (a record read as the stop came is not copied), and
    /// [`MOVED_POSITIONS_CONFIRM`] after the last assignment (a rewind's old position is gone by
    /// then). A target's abort of this optional commit is said and tried again later.
    pub(super) fn commit_moved_positions(&mut self, after: Duration) -> Result<()> {
        self.moved_pending = false;
        if self.txn.is_some() || !self.in_flight.is_empty() || self.ctx.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let moved: Vec<(TopicPartition, i64)> = self
            .consumer_positions()?
            .into_iter()
            .filter(|(tp, at)| self.committed.get(tp).copied().flatten().is_none_or(|c| *at > c))
            .filter(|(tp, _)| self.last_commit.get(tp).is_none_or(|t| t.elapsed() >= after))
            .collect();
        if moved.is_empty() {
            return Ok(());
        }
        if self.reassigned_at.elapsed() < MOVED_POSITIONS_CONFIRM {
            self.moved_pending = true;
            return Ok(());
        }
        match self.commit_positions(&moved, "positions past what is no data committed") {
            Err(e @ Error::Shard { .. }) => {
                warn!(shard = self.id, error = %e, "will try again");
                self.moved_pending = true;
                Ok(())
            }
            done => done,
        }
    }

    /// The committed positions not committed again for [`POSITION_REFRESH`].
    pub(super) fn positions_due_for_refresh(&self) -> Vec<(TopicPartition, i64)> {
        self.routes
            .iter()
            .filter(|r| self.last_commit.get(&r.source).is_none_or(|t| t.elapsed() >= POSITION_REFRESH))
            .filter_map(|r| Some((r.source.clone(), self.committed.get(&r.source).copied().flatten()?)))
            .collect()
    }

    /// Records the ranges skipped by policy in the map topic, with the positions past them, in
    /// one transaction: translation and verify then know those records were never copied, and
    /// say why, and the next start does not step over them again.
    pub(super) fn commit_skips(&mut self) -> Result<()> {
        if self.skips.is_empty() {
            return Ok(());
        }
        let skips = std::mem::take(&mut self.skips);
        let mut positions = Vec::with_capacity(skips.len());
        let mut records = Vec::with_capacity(skips.len());
        for (source, gap) in skips {
            let Some(route) = self.route_index_of(&source).map(|i| self.routes[i].clone()) else { continue };
            positions.push((source, gap.to));
            records.push(MapRecord {
                skipped: vec![gap],
                ..MapRecord::new(route.source, route.target, Vec::new())
            });
        }
        self.commit_positions_with(
            &positions,
            &records,
            "ranges skipped by policy (--on-missing-source skip)",
        )
    }

    /// Commits positions in a transaction of their own, holding no records.
    pub(super) fn commit_positions(&mut self, positions: &[(TopicPartition, i64)], what: &str) -> Result<()> {
        self.commit_positions_with(positions, &[], what)
    }

    /// Commits positions in a transaction of their own, holding no records but the map records
    /// `map`.
    fn commit_positions_with(
        &mut self,
        positions: &[(TopicPartition, i64)],
        map: &[MapRecord],
        what: &str,
    ) -> Result<()> {
        if positions.is_empty() {
            return Ok(());
        }
        // After the commit under way: positions land in the order they were reached.
        self.settle()?;
        let offsets = self.offsets_list(positions)?;
        if !self.ctx.failover_recheck.before_transaction(
            &mut self.recheck,
            &self.ctx.settings,
            &self.ctx.stop,
        )? {
            // Nothing was copied after them: the next start finds them again (`--start-from
            // latest`: at the end it finds then, as if this start had not been).
            info!(shard = self.id, "{what}: not committed, the mirror is stopping");
            return Ok(());
        }
        let calls = self.calls();
        let opened = Instant::now();
        calls.producer.begin_transaction().map_err(|e| {
            Error::from_kafka(Side::Target, format!("shard {}: begin_transaction", self.id), e)
        })?;
        let committed = map
            .iter()
            .try_for_each(|record| calls.send_map_record(record))
            .and_then(|()| {
                offsets.iter().try_for_each(|part| {
                    calls.retry("send_offsets_to_transaction", Some(opened), |p, g| {
                        p.send_offsets_to_transaction(part, g, CALL_TIMEOUT)
                    })
                })
            })
            .and_then(|()| {
                calls.retry("commit_transaction", None, |p, _| p.commit_transaction(CALL_TIMEOUT))
            });
        match committed {
            Ok(()) => {}
            Err(Step::Fatal(e)) => return Err(e),
            Err(Step::Abort(reason)) => {
                let _ = abort(&calls.producer, ABORT_TIMEOUT);
                return Err(Error::Shard { shard: self.id, message: format!("committing {what}: {reason}") });
            }
        }
        info!(shard = self.id, partitions = positions.len(), "{what}: committed");
        for (tp, offset) in positions {
            self.committed.insert(tp.clone(), Some(*offset));
            self.last_commit.insert(tp.clone(), Instant::now());
        }
        Ok(())
    }
}

/// The topics of `names` with no ID in `known` yet, sorted, once each.
fn unseen<'a>(names: impl Iterator<Item = &'a str>, known: &HashMap<String, String>) -> Vec<&'a str> {
    let mut topics: Vec<&str> = names.filter(|t| !known.contains_key(*t)).collect();
    topics.sort_unstable();
    topics.dedup();
    topics
}
