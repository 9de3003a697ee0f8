//! The transactional calls of one of a shard's producers, and how their failures are sorted
//! (retry, abort, or stop). Owned handles, so a commit can finish on a thread of its own while
//! the shard fills its next transaction on its other producer.
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kmirror_state::MapRecord;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use tracing::warn;

use super::MAX_BACKOFF;
use crate::error::{Error, Side};
use crate::kafka::classify::{classify, Class};
use crate::mirror::context::MirrorContext;
use crate::mirror::delivery::DeliveryTracker;
use crate::mirror::map_writer::MAP_RECORD_OPAQUE;

pub(crate) type TargetProducer = BaseProducer<DeliveryTracker>;

/// What a failed step of a commit leads to.
pub(crate) enum Step {
    Abort(String),
    Fatal(Error),
}

#[derive(Clone)]
pub(crate) struct TxnCalls {
    pub(crate) shard: u32,
    pub(crate) ctx: Arc<MirrorContext>,
    pub(crate) producer: Arc<TargetProducer>,
    pub(crate) group: Arc<ConsumerGroupMetadata>,
}

impl TxnCalls {
    /// Runs a transactional call, repeating it while librdkafka says it is retriable (e.g. the
    /// target is unreachable), and sorting other errors into abort or fatal. Once the mirror is
    /// stopping (a signal, or another shard failed), a call that timed out is not repeated: the
    /// process ends, and the next start resumes from the last commit. A call before the commit
    /// (`opened` set: when the transaction began) is not repeated once the transaction is older
    /// than the transaction timeout either: the broker has aborted it, so it is aborted here too
    /// and its records read again.
    pub(crate) fn retry(
        &self,
        what: &str,
        opened: Option<Instant>,
        call: impl Fn(&TargetProducer, &ConsumerGroupMetadata) -> rdkafka::error::KafkaResult<()>,
    ) -> Result<(), Step> {
        let timeout = self.ctx.settings.transaction_timeout();
        let mut backoff = Duration::from_millis(100);
        let mut last_log = Instant::now();
        loop {
            let e = match call(&self.producer, &self.group) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            // A fenced or otherwise dead producer can neither commit nor abort: stop, don't retry.
            let class = if self.producer_is_dead() { Class::Fatal } else { classify(&e) };
            match class {
                Class::Fenced | Class::Fatal | Class::Denied => return Err(Step::Fatal(self.fatal_error(e))),
                Class::Retry if self.ctx.stop.load(Ordering::Relaxed) => {
                    return Err(Step::Fatal(Error::Shard {
                        shard: self.shard,
                        message: format!(
                            "stopping while {what} could not finish ({e}); the next start resumes from the last commit"
                        ),
                    }))
                }
                Class::Retry if opened.is_some_and(|o| o.elapsed() > timeout) => {
                    return Err(Step::Abort(format!(
                        "{what} still failing ({e}) after the transaction timeout ({} ms): the target has aborted the transaction",
                        timeout.as_millis()
                    )))
                }
                Class::Retry => {
                    if last_log.elapsed() >= Duration::from_secs(3) {
                        warn!(shard = self.shard, call = what, error = %e, "target not answering; retrying");
                        last_log = Instant::now();
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Class::Abort => return Err(Step::Abort(format!("{what}: {e}"))),
            }
        }
    }

    /// A fenced delivery means another instance owns the shard: aborting is pointless (the
    /// producer can do nothing more); anything else is aborted and retried.
    pub(crate) fn abort_or_fatal(&self, e: KafkaError, what: &str) -> Step {
        if self.producer_is_dead() || matches!(classify(&e), Class::Fenced | Class::Fatal | Class::Denied) {
            Step::Fatal(self.fatal_error(e))
        } else {
            Step::Abort(format!("{what}: {e}"))
        }
    }

    pub(crate) fn fatal_error(&self, e: KafkaError) -> Error {
        let cause = match self.producer.client().fatal_error() {
            Some((code, _)) => KafkaError::Global(code),
            None => e,
        };
        let error = match classify(&cause) {
            Class::Fenced => Error::Fenced {
                name: self.ctx.settings.name.clone(),
                shard: self.shard,
                by: None,
                failed_over: false,
            },
            Class::Denied => {
                Error::Denied { side: Side::Target, context: format!("shard {}", self.shard), cause }
            }
            _ => Error::Kafka {
                side: Side::Target,
                context: format!("shard {}: fatal producer error", self.shard),
                cause,
            },
        };
        if matches!(error, Error::Fenced { .. }) {
            self.ctx.telemetry.metrics.fenced();
        }
        error
    }

    /// librdkafka marks a producer dead after fencing (and other fatal errors).
    pub(crate) fn producer_is_dead(&self) -> bool {
        self.producer.client().fatal_error().is_some()
    }

    /// Sends one map record into the open transaction, to the shard's map-topic partition.
    pub(crate) fn send_map_record(&self, record: &MapRecord) -> Result<(), Step> {
        let topic = self.ctx.settings.map_topic();
        let value = record.encode().map_err(|e| Step::Abort(format!("encoding map record: {e}")))?;
        let key = record.source.to_string();
        let mut base: BaseRecord<'_, str, [u8], usize> =
            BaseRecord::with_opaque_to(&topic, MAP_RECORD_OPAQUE)
                .partition(self.shard as i32)
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
}
