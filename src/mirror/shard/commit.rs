//! A shard's commit protocol: flush the transaction's records, write its runs to the map topic,
//! send the source positions to the shadow group, commit; and what happens when a step fails
//! (abort and read again from the last commit, or stop).
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kmirror_state::{MapRecord, TopicPartition};
use rdkafka::consumer::{Consumer, ConsumerGroupMetadata};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tracing::{debug, warn};

use super::clients::transactional_producer;
use super::{Shard, ABORT_TIMEOUT, CALL_TIMEOUT, MAX_BACKOFF};
use crate::error::{Error, Result, Side};
use crate::kafka::classify::{classify, Class};
use crate::mirror::delivery::DeliveryTracker;
use crate::mirror::flush::flush;
use crate::mirror::map_writer::{map_records, MAP_RECORD_OPAQUE};
use crate::mirror::shadow::CommitMetadata;
use crate::mirror::transaction::OpenTransaction;

/// A transaction stays open at least this many times as long as its commit takes, where the
/// defaults adapt: committing then takes at most a fifth of a shard's time.
const COMMIT_SHARE_INVERSE: u32 = 4;
/// Well inside the target's transaction timeout (the default window plus 30 s) and the health
/// check's stall limit (15 s).
const LONGEST_ADAPTED_TRANSACTION: Duration = Duration::from_secs(10);

impl Shard {
    pub(super) fn transaction_due(&self) -> bool {
        let s = &self.ctx.settings;
        let (max_records, max_open) = self.transaction_size();
        self.txn.as_ref().is_some_and(|t| {
            t.records.len() >= max_records
                || t.bytes >= s.transaction_max_bytes
                || t.started.elapsed() >= max_open
        })
    }

    /// The most records and the longest time a transaction stays open: the settings, or, at
    /// the default sizes where a commit takes more than a quarter of the default time (the round
    /// trips of a long link), COMMIT_SHARE_INVERSE commit times, both bounds grown alike.
    fn transaction_size(&self) -> (usize, Duration) {
        let s = &self.ctx.settings;
        let configured = (s.transaction_max_records, s.transaction_max);
        let Some(cost) = self.commit_cost.filter(|_| s.transaction_size_adapts) else { return configured };
        let wanted = (cost * COMMIT_SHARE_INVERSE).min(LONGEST_ADAPTED_TRANSACTION);
        if wanted <= s.transaction_max {
            return configured;
        }
        let growth = wanted.as_secs_f64() / s.transaction_max.as_secs_f64();
        ((s.transaction_max_records as f64 * growth) as usize, wanted)
    }

    /// Commits the open transaction with the shard's source positions; on an abortable error
    /// aborts it and rewinds the source to the last committed positions.
    pub(crate) fn commit_if_open(&mut self) -> Result<()> {
        let Some(txn) = self.txn.take() else { return Ok(()) };
        let commit_started = Instant::now();
        match self.try_commit(&txn) {
            Ok(positions) => {
                let count = txn.records.len() as u64;
                self.records_mirrored += count;
                let telemetry = &self.ctx.telemetry;
                let took = commit_started.elapsed();
                telemetry.metrics.transaction_committed(took.as_secs_f64());
                self.commit_cost = Some(match self.commit_cost {
                    Some(before) => before.mul_f64(0.7) + took.mul_f64(0.3),
                    None => took,
                });
                for (tp, offset) in positions {
                    let (records, bytes) = self
                        .route_index_of(&tp)
                        .and_then(|i| txn.per_route.get(i).copied())
                        .unwrap_or_default();
                    telemetry.committed(&tp, records, bytes, offset);
                    self.last_commit.insert(tp.clone(), Instant::now());
                    self.committed.insert(tp, Some(offset));
                }
                telemetry.heartbeat(self.id);
                self.backoff = Duration::from_millis(100);
                debug!(shard = self.id, records = count, "transaction committed");
                Ok(())
            }
            Err(Step::Fatal(e)) => Err(e),
            Err(Step::Abort(reason)) if self.producer_is_dead() => {
                warn!(shard = self.id, %reason, "the producer failed fatally");
                Err(self.fatal_error(KafkaError::Global(RDKafkaErrorCode::Fatal)))
            }
            Err(Step::Abort(reason)) => {
                warn!(shard = self.id, %reason, "aborting transaction; will re-read from the last commit");
                self.ctx.telemetry.metrics.transaction_aborted();
                self.abort_and_rewind()
            }
        }
    }

    fn try_commit(&mut self, txn: &OpenTransaction) -> std::result::Result<Vec<(TopicPartition, i64)>, Step> {
        if let Some(e) = &txn.failed {
            return Err(self.abort_or_fatal(e.clone(), "produce"));
        }
        // The source positions go first: their round trips (AddOffsetsToTxn, TxnOffsetCommit)
        // then overlap the records still in flight. They count only if the transaction commits,
        // which it does only once every record is delivered.
        let positions = self.read_positions().map_err(|e| Step::Abort(e.to_string()))?;
        let offsets = self.offsets_list(&positions).map_err(|e| Step::Abort(e.to_string()))?;
        let offsets_started = Instant::now();
        self.retry_txn_call("send_offsets_to_transaction", Some(txn.started), |p, g| {
            p.send_offsets_to_transaction(&offsets, g, CALL_TIMEOUT)
        })?;
        let started = Instant::now();
        let offsets_took = started - offsets_started;
        flush(&self.producer, CALL_TIMEOUT).map_err(|e| Step::Abort(format!("flush: {e}")))?;
        let flushed = started.elapsed();
        let deliveries = self.producer.context().take();
        if let Some(e) = deliveries.first_error {
            return Err(self.abort_or_fatal(e, "delivery"));
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
            let _ = self.producer.abort_transaction(ABORT_TIMEOUT);
            return Err(Step::Fatal(replaced));
        }
        // Written inside the transaction: the map is committed exactly when the data is, and
        // commit_transaction fails if any of these fails.
        maps.iter().try_for_each(|r| self.send_map_record(r))?;
        let commit_started = Instant::now();
        // The map records are in flight: deliver them first, or commit_transaction's own flush
        // pays rust-rdkafka's 100 ms poll step.
        flush(&self.producer, CALL_TIMEOUT).map_err(|e| Step::Abort(format!("flush: {e}")))?;
        // No giving up on a commit: one that timed out may have committed on the broker, and
        // reading its records again would copy them twice; librdkafka retries it safely.
        self.retry_txn_call("commit_transaction", None, |p, _| p.commit_transaction(CALL_TIMEOUT))?;
        for map in &maps {
            if let Some(end) = map.runs.iter().map(|r| r.target_end()).max() {
                let known = self.target_ends.entry(map.target.clone()).or_insert(end);
                *known = (*known).max(end);
            }
        }
        debug!(
            shard = self.id,
            records = txn.records.len(),
            open_ms = txn.started.elapsed().as_millis() as u64,
            flush_ms = flushed.as_millis() as u64,
            offsets_ms = offsets_took.as_millis() as u64,
            commit_ms = commit_started.elapsed().as_millis() as u64,
            "transaction timings"
        );
        Ok(positions)
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

    /// Sends one map record into the open transaction, to the shard's map-topic partition.
    pub(super) fn send_map_record(&self, record: &MapRecord) -> Result<(), Step> {
        let topic = self.ctx.settings.map_topic();
        let value = record.encode().map_err(|e| Step::Abort(format!("encoding map record: {e}")))?;
        let key = record.source.to_string();
        let mut base: BaseRecord<'_, str, [u8], usize> =
            BaseRecord::with_opaque_to(&topic, MAP_RECORD_OPAQUE)
                .partition(self.id as i32)
                .key(key.as_str())
                .payload(value.as_slice());
        loop {
            match self.producer.send(base) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    base = back;
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(Step::Abort(format!("producing map record: {e}"))),
            }
        }
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

    /// The consumer's position in every partition that has one yet.
    pub(super) fn consumer_positions(&self) -> Result<BTreeMap<TopicPartition, i64>> {
        let position = self.consumer.position().map_err(Error::kafka(Side::Source, "reading positions"))?;
        Ok(position
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) if o >= 0 => Some((TopicPartition::new(e.topic(), e.partition()), o)),
                _ => None,
            })
            .collect())
    }

    pub(super) fn offsets_list(&self, positions: &[(TopicPartition, i64)]) -> Result<TopicPartitionList> {
        let mut tpl = TopicPartitionList::new();
        for (source, offset) in positions {
            let Some(route) = self.route_index_of(source).map(|i| &self.routes[i]) else { continue };
            let metadata = CommitMetadata {
                v: 1,
                source_topic: source.topic.clone(),
                shards: self.ctx.settings.shards,
                source_topic_id: self.topic_ids.get(&source.topic).cloned(),
            };
            let mut element = tpl.add_partition(&route.target.topic, route.target.partition);
            element.set_offset(Offset::Offset(*offset)).map_err(Error::kafka(Side::Target, "offset list"))?;
            element.set_metadata(metadata.encode());
        }
        Ok(tpl)
    }

    /// A fenced delivery means another instance owns the shard: aborting is pointless (the
    /// producer can do nothing more); anything else is aborted and retried.
    fn abort_or_fatal(&self, e: KafkaError, what: &str) -> Step {
        if self.producer_is_dead() || matches!(classify(&e), Class::Fenced | Class::Fatal) {
            Step::Fatal(self.fatal_error(e))
        } else {
            Step::Abort(format!("{what}: {e}"))
        }
    }

    /// The broker aborts a transaction open longer than this.
    fn transaction_timeout(&self) -> Duration {
        self.ctx.settings.transaction_timeout()
    }

    /// Runs a transactional call, repeating it while librdkafka says it is retriable (e.g. the
    /// target is unreachable), and sorting other errors into abort or fatal. Once the mirror is
    /// stopping (a signal, or another shard failed), a call that timed out is not repeated: the
    /// process ends, and the next start resumes from the last commit. A call before the commit
    /// (`opened` set: when the transaction began) is not repeated once the transaction is older
    /// than the transaction timeout either: the broker has aborted it, so it is aborted here too
    /// and its records read again.
    pub(super) fn retry_txn_call(
        &self,
        what: &str,
        opened: Option<Instant>,
        call: impl Fn(&BaseProducer<DeliveryTracker>, &ConsumerGroupMetadata) -> rdkafka::error::KafkaResult<()>,
    ) -> std::result::Result<(), Step> {
        let mut backoff = Duration::from_millis(100);
        let mut last_log = Instant::now();
        loop {
            let e = match call(&self.producer, &self.group_metadata) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            // A fenced or otherwise dead producer can neither commit nor abort: stop, don't retry.
            let class = if self.producer_is_dead() { Class::Fatal } else { classify(&e) };
            match class {
                Class::Fenced | Class::Fatal => return Err(Step::Fatal(self.fatal_error(e))),
                Class::Retry if self.ctx.stop.load(Ordering::Relaxed) => {
                        return Err(Step::Fatal(Error::Shard {
                            shard: self.id,
                            message: format!(
                                "stopping while {what} could not finish ({e}); the next start resumes from the last commit"
                            ),
                        }))
                    }
                Class::Retry if opened.is_some_and(|o| o.elapsed() > self.transaction_timeout()) => {
                        return Err(Step::Abort(format!(
                            "{what} still failing ({e}) after the transaction timeout ({} ms): the target has aborted the transaction",
                            self.transaction_timeout().as_millis()
                        )))
                    }
                Class::Retry => {
                    if last_log.elapsed() >= Duration::from_secs(3) {
                        warn!(shard = self.id, call = what, error = %e, "target not answering; retrying");
                        last_log = Instant::now();
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Class::Abort => return Err(Step::Abort(format!("{what}: {e}"))),
            }
        }
    }

    /// Aborts the open transaction and rewinds the source to the last commit. An abort that does
    /// not finish within ABORT_TIMEOUT is not waited for forever: a new producer with the same
    /// transactional id fences the old one, which aborts its transaction. After a target frozen
    /// past message.timeout.ms, librdkafka's abort (which needs an epoch bump) was seen never to
    /// complete, while a new producer's init_transactions did.
    pub(super) fn abort_and_rewind(&mut self) -> Result<()> {
        match self.producer.abort_transaction(ABORT_TIMEOUT) {
            Ok(()) => {}
            Err(e) if self.producer_is_dead() || classify(&e) == Class::Fenced => return Err(self.fatal_error(e)),
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
                self.producer = transactional_producer(&self.ctx, self.id)?;
            }
        }
        self.producer.context().take();
        std::thread::sleep(self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.assign_at_committed()
    }

    pub(super) fn fatal_error(&self, e: KafkaError) -> Error {
        let cause = match self.producer.client().fatal_error() {
            Some((code, _)) => KafkaError::Global(code),
            None => e,
        };
        let error = fatal_error(&self.ctx.settings.name, self.id, cause);
        if matches!(error, Error::Fenced { .. }) {
            self.ctx.telemetry.metrics.fenced();
        }
        error
    }

    /// librdkafka marks a producer dead after fencing (and other fatal errors).
    pub(super) fn producer_is_dead(&self) -> bool {
        self.producer.client().fatal_error().is_some()
    }
}

fn fatal_error(name: &str, shard: u32, e: KafkaError) -> Error {
    if classify(&e) == Class::Fenced {
        Error::Fenced { name: name.to_string(), shard }
    } else {
        Error::Kafka { side: Side::Target, context: format!("shard {shard}: fatal producer error"), cause: e }
    }
}

/// What a failed step of a commit leads to.
pub(super) enum Step {
    Abort(String),
    Fatal(Error),
}
