//! A shard's commit protocol: deliver the transaction's records and note their runs, then
//! (on a thread of its own, see [`super::in_flight`]) send the source positions to the shadow
//! group, write the runs to the map topic, commit; and what happens when a step fails (abort and
//! read again from the last commit, or stop).
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kmirror_state::{MapRecord, TopicPartition};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tracing::{debug, info, warn};

use super::clients::transactional_producer;
use super::in_flight::{Handed, InFlight, Timings};
use super::txn_calls::{Step, TargetProducer, TxnCalls};
use super::{Shard, ABORT_TIMEOUT, CALL_TIMEOUT, MAX_BACKOFF};
use crate::error::{Error, Result, Side};
use crate::kafka::classify::{classify, Class};
use crate::kafka::commit_parts::{in_parts, position_bytes};
use crate::kafka::watermarks::cached_high_watermark;
use crate::mirror::delivery::FailedDelivery;
use crate::mirror::flush::{abort, flush};
use crate::mirror::map_writer::map_records;
use crate::mirror::refused_record::fix_for;
use crate::mirror::shadow::{read_committed_positions, CommitMetadata};
use crate::mirror::transaction::OpenTransaction;

/// Where the defaults adapt, a transaction stays open at least this many times as long as its
/// commit takes (with --serial-commits all the shard waits for it, with overlapping commits the
/// commit thread's round trips): committing then takes at most a fifth of a shard's time. With
/// overlapping commits twice was tried: over a 50 ms link it made twice as many half-size
/// transactions, which loaded the far brokers, and the copy fell 9-16 % behind --serial-commits;
/// at four, 5-7 % (BENCHMARKS.md, long link). Only while the shard is behind (see
/// [`Shard::note_backlog`]): caught up, a busy local broker's commits (100-300 ms) grew 250 ms
/// transactions to 500-700 ms, and the latency bench's p99 with them, for no throughput.
const COMMIT_SHARE_INVERSE: u32 = 4;
/// While a shard is behind, at the default sizes, a transaction stays open at least this long
/// (its record bound grown alike): behind, records wait in the backlog anyway, and fewer,
/// larger commits copy it sooner. A run's first commits are its slowest (first runs into the
/// target's just-made partitions: 250-550 ms, second runs 100-200 ms), and while they were under
/// way a shard had filled its next 10 000-record transaction in 40-100 ms and waited.
const SHORTEST_WHILE_BEHIND: Duration = Duration::from_secs(1);
/// Well inside the target's transaction timeout (the default window plus 30 s) and the health
/// check's stall limit (15 s).
const LONGEST_ADAPTED_TRANSACTION: Duration = Duration::from_secs(10);

impl Shard {
    pub(super) fn transaction_due(&mut self, now: Instant) -> bool {
        let s = &self.ctx.settings;
        let (max_records, max_open) = self.transaction_size();
        let Some(t) = self.txn.as_ref() else { return false };
        if t.bytes >= s.transaction_max_bytes
            || now.saturating_duration_since(t.started) >= t.time_bound.unwrap_or(max_open)
        {
            return true;
        }
        if let Some(bound) = t.record_bound {
            return t.records.len() >= bound;
        }
        if t.records.len() < max_records {
            return false;
        }
        let held = t.records.len();
        // Asked once per transaction: the positions are a call into the consumer.
        // Caught up, the time bound stays for latency (see --transaction-max-ms).
        let longest = if self.behind { self.longest_adapted } else { max_open };
        let (bound, time) = match s.transaction_size_adapts {
            true => self.records_left().map_or((held, max_open), |left| {
                taking_the_rest(held, (max_records, max_open), left, longest)
            }),
            false => (held, max_open),
        };
        if let Some(t) = self.txn.as_mut() {
            t.record_bound = Some(bound);
            t.time_bound = Some(time);
        }
        held >= bound
    }

    /// Records left to read in the shard's partitions, from the consumer's positions and cached
    /// ends (no request); None if a position or an end is not known.
    fn records_left(&self) -> Option<i64> {
        let positions = self.consumer_positions().ok()?;
        self.routes
            .iter()
            .map(|r| {
                let end = cached_high_watermark(&self.consumer, &r.source.topic, r.source.partition)?;
                Some((end - positions.get(&r.source).copied()?).max(0))
            })
            .sum()
    }

    /// The most records and the longest time a transaction stays open: the settings, or, at
    /// the default sizes while the shard is behind, at least a second and a few commit times
    /// (the round trips of a long link), both bounds grown alike.
    fn transaction_size(&self) -> (usize, Duration) {
        let s = &self.ctx.settings;
        let configured = (s.transaction_max_records, s.transaction_max);
        match s.transaction_size_adapts && self.behind {
            true => adapted_size(configured, self.commit_cost.unwrap_or_default(), self.longest_adapted),
            false => configured,
        }
    }

    /// The producer the open (or next) transaction goes to.
    pub(super) fn producer(&self) -> &TargetProducer {
        &self.producers[self.current]
    }

    /// The transactional calls of the producer the open (or next) transaction goes to.
    pub(super) fn calls(&self) -> TxnCalls {
        self.calls_of(self.current)
    }

    fn calls_of(&self, producer: usize) -> TxnCalls {
        TxnCalls {
            shard: self.id,
            ctx: self.ctx.clone(),
            producer: self.producers[producer].clone(),
            group: self.group_metadata.clone(),
        }
    }

    /// Commits the open transaction and waits for every commit under way: afterwards nothing the
    /// shard read is uncommitted. On an abortable error, aborts and rewinds the source to the
    /// last committed positions.
    pub(crate) fn commit_if_open(&mut self) -> Result<()> {
        self.hand_off()?;
        self.settle()
    }

    /// Commits the open transaction: its records are delivered here, and the rest of its commit
    /// runs on a thread of its own while the next transaction fills on the shard's other
    /// producer (see [`super::in_flight`]); with --serial-commits it is waited for here.
    pub(super) fn hand_off(&mut self) -> Result<()> {
        let Some(txn) = self.txn.take() else { return Ok(()) };
        let due = Instant::now();
        let (positions, offsets, maps) = match self.deliver(&txn) {
            Ok(delivered) => delivered,
            Err(Step::Fatal(e)) => return Err(e),
            Err(Step::Abort(reason)) => {
                // The commits before it may still land; then it alone is read again.
                if self.settle_all(true)? {
                    self.abort_for(&reason, &[self.current])?;
                }
                return Ok(());
            }
        };
        self.note_target_ends(&maps);
        self.note_backlog(&positions);
        let handed = Handed { producer: self.current, txn, positions, due };
        let flight =
            InFlight::start(handed, self.calls(), offsets, maps, self.in_flight.back()).map_err(|e| {
                Error::Shard { shard: self.id, message: format!("starting a commit thread: {e}") }
            })?;
        self.in_flight.push_back(flight);
        self.current = (self.current + 1) % self.producers.len();
        // The next transaction goes to this producer: what it holds must have committed first.
        while self.in_flight.iter().any(|f| f.handed.producer == self.current) {
            if !self.settle_one(false)? {
                break;
            }
        }
        Ok(())
    }

    /// Whether more is left to read than a transaction of the configured size holds: behind,
    /// larger transactions copy faster; caught up, they only add latency. (Against the
    /// transaction just closed, a shard that had read 40 000 of its 75 000 records counted as
    /// caught up.) From the consumer's cached ends (no request).
    fn note_backlog(&mut self, positions: &[(TopicPartition, i64)]) {
        let left: i64 = positions
            .iter()
            .filter_map(|(tp, at)| {
                cached_high_watermark(&self.consumer, &tp.topic, tp.partition).map(|end| (end - at).max(0))
            })
            .sum();
        self.behind = self.is_backlog(left);
    }

    /// Whether `left` records to read are more than a transaction of the configured size holds.
    pub(super) fn is_backlog(&self, left: i64) -> bool {
        left > self.ctx.settings.transaction_max_records as i64
    }

    /// Waits for every commit under way.
    pub(super) fn settle(&mut self) -> Result<()> {
        self.settle_all(self.txn.is_some()).map(|_| ())
    }

    /// Takes in the outcome of the commits that have finished, without waiting for one that has
    /// not.
    pub(super) fn reap(&mut self) -> Result<()> {
        while self.in_flight.front().is_some_and(InFlight::is_finished) {
            if !self.settle_one(self.txn.is_some())? {
                break;
            }
        }
        Ok(())
    }

    /// Waits for every commit under way; true if all committed (or none was under way).
    fn settle_all(&mut self, open_here: bool) -> Result<bool> {
        while !self.in_flight.is_empty() {
            if !self.settle_one(open_here)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Waits for the oldest commit under way; true if it committed (or none was under way). If it
    /// was aborted, so are the commits after it (they wait for it, and end without committing)
    /// and the transaction open on the current producer (`open_here`), and the source is rewound
    /// to the last committed positions.
    fn settle_one(&mut self, open_here: bool) -> Result<bool> {
        let Some(flight) = self.in_flight.pop_front() else { return Ok(true) };
        let (handed, outcome) = flight.wait();
        let reason = match outcome {
            Ok(timings) => {
                self.committed_with(handed, timings);
                return Ok(true);
            }
            Err(Step::Fatal(e)) => return Err(e),
            Err(Step::Abort(reason)) => reason,
        };
        let mut open = vec![handed.producer];
        while let Some(later) = self.in_flight.pop_front() {
            let (later, outcome) = later.wait();
            match outcome {
                // Cannot happen (a commit waits for the one before it), but if it did, what it
                // committed is where the source resumes.
                Ok(timings) => self.committed_with(later, timings),
                Err(Step::Fatal(e)) => return Err(e),
                Err(Step::Abort(_)) => open.push(later.producer),
            }
        }
        if open_here {
            open.push(self.current);
        }
        open.sort_unstable();
        open.dedup();
        self.abort_for(&reason, &open)?;
        Ok(false)
    }

    /// What a committed transaction changes: positions, progress, the commit's measured cost.
    fn committed_with(&mut self, handed: Handed, timings: Timings) {
        let Handed { txn, positions, due, .. } = handed;
        let count = txn.records.len() as u64;
        self.records_mirrored += count;
        let took = timings.finished.saturating_duration_since(due);
        let telemetry = &self.ctx.telemetry;
        telemetry.metrics.transaction_committed(took.as_secs_f64());
        // What transactions are sized against: with overlapping commits, the commit thread's
        // round trips (the next transaction must outlast them); with one producer, all the time
        // the shard waited.
        let cost = match self.producers.len() {
            1 => took,
            _ => timings.offsets + timings.map + timings.end,
        };
        self.commit_cost = Some(match self.commit_cost {
            Some(before) => before.mul_f64(0.7) + cost.mul_f64(0.3),
            None => cost,
        });
        for (tp, offset) in positions {
            let (records, bytes) =
                self.route_index_of(&tp).and_then(|i| txn.per_route.get(i).copied()).unwrap_or_default();
            telemetry.committed(&tp, records, bytes, offset);
            self.last_commit.insert(tp.clone(), Instant::now());
            self.committed.insert(tp, Some(offset));
        }
        telemetry.heartbeat(self.id);
        self.backoff = Duration::from_millis(100);
        debug!(
            shard = self.id,
            records = count,
            open_ms = due.saturating_duration_since(txn.started).as_millis() as u64,
            offsets_ms = timings.offsets.as_millis() as u64,
            map_ms = timings.map.as_millis() as u64,
            commit_ms = timings.end.as_millis() as u64,
            waited_ms = timings.waited.as_millis() as u64,
            took_ms = took.as_millis() as u64,
            "transaction committed"
        );
    }

    /// Aborts the transactions open on `producers` and reads again from the last commit; a
    /// producer that can do nothing more (fenced) stops the shard instead.
    fn abort_for(&mut self, reason: &str, producers: &[usize]) -> Result<()> {
        if let Some(&dead) = producers.iter().find(|&&p| self.calls_of(p).producer_is_dead()) {
            warn!(shard = self.id, %reason, "the producer failed fatally");
            return Err(self.calls_of(dead).fatal_error(KafkaError::Global(RDKafkaErrorCode::Fatal)));
        }
        warn!(shard = self.id, %reason, "aborting transaction; will re-read from the last commit");
        self.ctx.telemetry.metrics.transaction_aborted();
        self.abort_and_rewind(producers)
    }

    /// The first half of a commit, on the shard's thread: the source positions past the
    /// transaction, and its records delivered (the next transaction's records may follow them
    /// only then) and their runs.
    fn deliver(&self, txn: &OpenTransaction) -> std::result::Result<Delivered, Step> {
        let calls = self.calls();
        if let Some(e) = &txn.failed {
            return Err(calls.abort_or_fatal(e.clone(), "produce"));
        }
        let positions = self.read_positions().map_err(|e| Step::Abort(e.to_string()))?;
        let offsets = self.offsets_list(&positions).map_err(|e| Step::Abort(e.to_string()))?;
        flush(self.producer(), CALL_TIMEOUT).map_err(|e| Step::Abort(format!("flush: {e}")))?;
        let deliveries = self.producer().context().take();
        if let Some(failed) = deliveries.first_error {
            if let Some(refused) = self.refused(txn, &failed) {
                // Nothing of it may be committed: the record would be missing in the copy.
                let _ = abort(self.producer(), ABORT_TIMEOUT);
                return Err(Step::Fatal(refused));
            }
            return Err(calls.abort_or_fatal(failed.error, "delivery"));
        }
        if deliveries.delivered.len() != txn.records.len() {
            return Err(Step::Abort(format!(
                "{} of {} records reported delivered",
                deliveries.delivered.len(),
                txn.records.len()
            )));
        }
        let maps = map_records(&self.routes, &txn.records, &deliveries.delivered);
        if let Err(replaced) = self.check_target_ends(&maps) {
            // Nothing of it may be committed into the replaced partition.
            let _ = abort(self.producer(), ABORT_TIMEOUT);
            return Err(Step::Fatal(replaced));
        }
        Ok((positions, offsets, maps))
    }

    /// The record of `txn` the target refused for what it is (see `refused_record`), named.
    fn refused(&self, txn: &OpenTransaction, failed: &FailedDelivery) -> Option<Error> {
        let &(route, offset) = txn.records.get(failed.index)?;
        let route = self.routes.get(route)?;
        let fix = fix_for(&failed.error, false, &route.target.topic)?;
        Some(Error::RecordRefused {
            topic: route.source.topic.clone(),
            partition: route.source.partition,
            offset,
            bytes: failed.bytes,
            cause: failed.error.to_string(),
            fix,
        })
    }

    /// Where each target partition ends after these runs: offsets only grow, whether or not
    /// their transaction commits.
    fn note_target_ends(&mut self, maps: &[MapRecord]) {
        for map in maps {
            if let Some(end) = map.runs.iter().map(|r| r.target_end()).max() {
                let known = self.target_ends.entry(map.target.clone()).or_insert(end);
                *known = (*known).max(end);
            }
        }
    }

    /// Offsets only grow: a record that landed below where this shard's last commit ended on
    /// its target partition went into a topic deleted and made again since (by a person, or
    /// by auto-creation), which the offset map and the shadow group know nothing of.
    fn check_target_ends(&self, maps: &[MapRecord]) -> Result<()> {
        for map in maps {
            let Some(&end) = self.target_ends.get(&map.target) else { continue };
            let Some(lowest) = map.runs.iter().map(|r| r.target_start).min() else { continue };
            if lowest < end {
                return Err(Error::TargetReplaced {
                    topic: map.target.topic.clone(),
                    how: format!(
                        "replaced (partition {} took a record at offset {lowest}, below {end}, where the mirror's last commit there ended)",
                        map.target.partition
                    ),
                });
            }
        }
        Ok(())
    }

    /// Where the consumer stands now: past every record handed to the transaction and past
    /// control markers, which are not data. Positions idle for `POSITION_REFRESH` ride along
    /// unchanged, so Kafka does not expire them.
    fn read_positions(&self) -> Result<Vec<(TopicPartition, i64)>> {
        let mut positions: BTreeMap<TopicPartition, i64> = self
            .consumer_positions()?
            .into_iter()
            .filter(|(tp, o)| self.committed.get(tp).copied().flatten() != Some(*o))
            .collect();
        for (tp, offset) in self.positions_due_for_refresh() {
            positions.entry(tp).or_insert(offset);
        }
        Ok(positions.into_iter().collect())
    }

    /// The consumer's position in every partition that has one yet. Never below what was read:
    /// librdkafka sets the position past each record it hands over, a re-delivered one too
    /// (which the read guard refuses), and a position moved back by one would be committed
    /// below records already copied, to be copied again.
    pub(super) fn consumer_positions(&self) -> Result<BTreeMap<TopicPartition, i64>> {
        let position = self.consumer.position().map_err(Error::kafka(Side::Source, "reading positions"))?;
        Ok(position
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) if o >= 0 => {
                    let read = self
                        .route_index
                        .get(e.topic())
                        .and_then(|m| m.get(&e.partition()))
                        .and_then(|&route| self.guard.next(route));
                    Some((TopicPartition::new(e.topic(), e.partition()), read.map_or(o, |r| o.max(r))))
                }
                _ => None,
            })
            .collect())
    }

    /// The positions as the transaction commits them, in parts Kafka takes (see
    /// `commit_parts`): a shard over thousands of partitions was refused every commit.
    pub(super) fn offsets_list(
        &self,
        positions: &[(TopicPartition, i64)],
    ) -> Result<Vec<TopicPartitionList>> {
        let group = self.ctx.settings.shadow_group(self.id);
        let mut listed = Vec::with_capacity(positions.len());
        for (source, offset) in positions {
            let Some(route) = self.route_index_of(source).map(|i| &self.routes[i]) else { continue };
            let metadata = CommitMetadata {
                v: 1,
                source_topic: source.topic.clone(),
                shards: self.ctx.settings.shards,
                source_topic_id: self.topic_ids.get(&source.topic).cloned(),
                by_failback: false,
            };
            listed.push((&route.target, *offset, metadata.encode()));
        }
        in_parts(&listed, |(target, _, metadata)| position_bytes(&group, &target.topic, metadata))
            .into_iter()
            .map(|part| {
                let mut tpl = TopicPartitionList::with_capacity(part.len());
                for (target, offset, metadata) in part {
                    let mut element = tpl.add_partition(&target.topic, target.partition);
                    element
                        .set_offset(Offset::Offset(*offset))
                        .map_err(Error::kafka(Side::Target, "offset list"))?;
                    element.set_metadata(metadata);
                }
                Ok(tpl)
            })
            .collect()
    }

    /// After a producer was replaced because its abort did not finish: the transaction it was
    /// to end may have committed (librdkafka fails a commit locally whose EndTxn may have
    /// succeeded on the broker, and the abort then never got through), and the new producer's
    /// fencing has ended it one way or the other. The shadow group, read once it has (stable
    /// offsets), says where: rewinding to the positions known before would copy a committed
    /// transaction again.
    fn committed_as_the_shadow_group_says(&mut self) -> Result<()> {
        let s = &self.ctx.settings;
        // Asked until it answers, as the copy itself waits out a target out of reach: going on
        // without the answer could copy a committed transaction again.
        let mut backoff = self.backoff;
        let saved = loop {
            match read_committed_positions(&self.shadow, &self.routes, &s.name, s.shards, CALL_TIMEOUT) {
                Ok(saved) => break saved,
                Err(e) if self.ctx.stop.load(Ordering::Relaxed) || !matches!(e, Error::Kafka { .. }) => {
                    return Err(e)
                }
                Err(e) => {
                    warn!(shard = self.id, error = %e, "could not read where the shard committed after replacing its producer; asking again");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        for route in &self.routes {
            let Some(Some(position)) = saved.get(&route.source) else { continue };
            let known = self.committed.get(&route.source).copied().flatten();
            if known.is_none_or(|k| position.offset > k) {
                warn!(
                    shard = self.id,
                    partition = %route.source,
                    from = ?known,
                    to = position.offset,
                    "the transaction whose abort did not finish had committed: going on after it"
                );
                self.committed.insert(route.source.clone(), Some(position.offset));
            }
        }
        Ok(())
    }

    /// Aborts the transactions open on `producers` and rewinds the source to the last commit.
    /// An abort that does not finish within ABORT_TIMEOUT is not waited for forever: a new
    /// producer with the same transactional id fences the old one, which aborts its transaction.
    /// After a target frozen past message.timeout.ms, librdkafka's abort (which needs an epoch
    /// bump) was seen never to complete, while a new producer's init_transactions did.
    pub(super) fn abort_and_rewind(&mut self, producers: &[usize]) -> Result<()> {
        self.txn = None;
        let mut replaced = false;
        for &p in producers {
            match abort(&self.producers[p], ABORT_TIMEOUT) {
                Ok(()) => {}
                Err(e)
                    if self.calls_of(p).producer_is_dead()
                        || matches!(classify(&e), Class::Fenced | Class::Denied) =>
                {
                    return Err(self.calls_of(p).fatal_error(e))
                }
                Err(e) if self.ctx.stop.load(Ordering::Relaxed) => {
                    return Err(Error::Shard {
                        shard: self.id,
                        message: format!(
                            "stopping while the abort could not finish ({e}); the next start resumes from the last commit"
                        ),
                    })
                }
                Err(e) => {
                    warn!(shard = self.id, error = %e, "the abort did not finish; replacing the producer (the new one fences the old)");
                    self.producers[p] = Arc::new(transactional_producer(&self.ctx, self.id, p, self.record_limit.raised())?);
                    self.note_fencing();
                    replaced = true;
                }
            }
            self.producers[p].context().take();
        }
        if replaced {
            self.committed_as_the_shadow_group_says()?;
        }
        // A record over the producers' size limit: they are made again with a larger one (no
        // commit is under way on either once the aborts above are done).
        if self.in_flight.is_empty() {
            if let Some(limit) = self.record_limit.take_wanted() {
                for p in 0..self.producers.len() {
                    self.producers[p] = Arc::new(transactional_producer(&self.ctx, self.id, p, Some(limit))?);
                }
                self.note_fencing();
                info!(shard = self.id, limit, "target producers made again with a larger message.max.bytes");
            }
        }
        std::thread::sleep(self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.assign_at_committed()
    }
}

/// The longest a transaction grows to where sizes adapt: half the target's transaction timeout
/// at most, so that a user's short one is not outgrown.
pub(super) fn longest_adapted(settings: &crate::config::MirrorSettings) -> Duration {
    LONGEST_ADAPTED_TRANSACTION.min(settings.transaction_timeout() / 2)
}

/// The bounds (records, time) of a transaction that holds `held` records at its bounds
/// `(records, time)`, with `left` records still to read: where the rest would fill no more than
/// one transaction, this one takes it, and may stay open as much longer as it grew (`longest` at
/// most, never less than `time`). A backlog's last transaction is then not a short one after a
/// full one: each costs the shard a flush it waits for, and a commit (a 300 000-record batch at
/// four shards copied 40 000 then 35 000 records per shard). Its time grows too: a first run
/// into the target's just-made partitions fills slower, and at the time bound alone it cut
/// 55 000-63 000 records at 1 s and committed the last 12 000-20 000 in a second transaction
/// (its commit 140-240 ms more).
fn taking_the_rest(
    held: usize,
    (records, time): (usize, Duration),
    left: i64,
    longest: Duration,
) -> (usize, Duration) {
    match usize::try_from(left) {
        Ok(left) if left <= records => {
            let bound = held + left;
            let growth = bound as f64 / records.max(1) as f64;
            (bound, time.mul_f64(growth).min(longest).max(time))
        }
        _ => (held, time),
    }
}

/// The positions past a transaction, as read and as the shadow group's offset list, and the
/// runs its delivered records form.
type Delivered = (Vec<(TopicPartition, i64)>, Vec<TopicPartitionList>, Vec<MapRecord>);

/// The bounds of a transaction at the configured `(records, time)` whose commit costs `cost`,
/// open `longest` at most.
fn adapted_size(configured: (usize, Duration), cost: Duration, longest: Duration) -> (usize, Duration) {
    let (records, time) = configured;
    let wanted = (cost * COMMIT_SHARE_INVERSE).max(SHORTEST_WHILE_BEHIND).min(longest);
    if wanted <= time {
        return configured;
    }
    let growth = wanted.as_secs_f64() / time.as_secs_f64();
    ((records as f64 * growth) as usize, wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: (usize, Duration) = (10_000, Duration::from_millis(250));
    const LONGEST: Duration = LONGEST_ADAPTED_TRANSACTION;

    #[test]
    fn behind_a_transaction_is_at_least_a_second_of_the_configured_rate() {
        assert_eq!(adapted_size(DEFAULTS, Duration::ZERO, LONGEST), (40_000, SHORTEST_WHILE_BEHIND));
        assert_eq!(
            adapted_size(DEFAULTS, Duration::from_millis(250), LONGEST),
            (40_000, SHORTEST_WHILE_BEHIND)
        );
    }

    #[test]
    fn a_transaction_takes_the_rest_where_it_would_fill_no_more_than_one() {
        let second = Duration::from_secs(1);
        let bounds = (40_000, second);
        assert_eq!(taking_the_rest(40_000, bounds, 35_000, LONGEST), (75_000, second.mul_f64(1.875)));
        assert_eq!(taking_the_rest(40_000, bounds, 40_000, LONGEST), (80_000, 2 * second));
        assert_eq!(taking_the_rest(40_000, bounds, 40_001, LONGEST), (40_000, second));
        assert_eq!(taking_the_rest(40_000, bounds, 0, LONGEST), (40_000, second));
        // Its time grows no further than the longest a transaction may stay open, and never
        // falls under the configured time.
        assert_eq!(
            taking_the_rest(40_000, bounds, 40_000, 1500 * Duration::from_millis(1)).1,
            Duration::from_millis(1500)
        );
        assert_eq!(taking_the_rest(40_000, bounds, 40_000, Duration::from_millis(500)).1, second);
    }

    #[test]
    fn configured_bounds_longer_than_the_floor_are_kept() {
        let long = (100_000, Duration::from_secs(2));
        assert_eq!(adapted_size(long, Duration::from_millis(100), LONGEST), long);
    }

    #[test]
    fn a_short_transaction_timeout_is_not_outgrown() {
        let half_of_a_second = Duration::from_millis(500);
        assert_eq!(
            adapted_size(DEFAULTS, Duration::from_secs(5), half_of_a_second),
            (20_000, half_of_a_second)
        );
        let under_the_configured = Duration::from_millis(100);
        assert_eq!(adapted_size(DEFAULTS, Duration::ZERO, under_the_configured), DEFAULTS);
    }

    #[test]
    fn a_long_links_commits_grow_both_bounds_alike() {
        assert_eq!(
            adapted_size(DEFAULTS, Duration::from_millis(400), LONGEST),
            (64_000, Duration::from_millis(1600))
        );
        assert_eq!(
            adapted_size(DEFAULTS, Duration::from_secs(5), LONGEST),
            (400_000, LONGEST_ADAPTED_TRANSACTION)
        );
    }
}
