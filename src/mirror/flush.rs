//! Waiting for a producer's messages to be delivered, without rust-rdkafka's fixed cost.
//!
//! `BaseProducer::flush` (and `commit_transaction`, which calls it) polls in steps of 100 ms
//! that always run to their end, so every flush that is not instant costs at least 100 ms:
//! measured as 100 ms for the flush and 100 ms for the commit of every transaction, whatever its
//! size. Here librdkafka's own flush waits 1 ms at a time (sending what is queued at once while
//! it does, `kafka::linger_skip`), waiting reports are served between its waits, and a flush ends
//! within a millisecond of the last report. (Polling
//! with a 1 ms timeout instead spun in rust-rdkafka's loop once a report arrived early: a
//! profile of 1 KiB records showed 23 % of the mirror's time in clock_gettime.)
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::producer::{BaseProducer, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

use crate::kafka::linger_skip::flush_for;

const STEP: Duration = Duration::from_millis(1);

/// Serves one waiting event, if any; true if the queue had one.
fn served_one<C: ProducerContext>(producer: &BaseProducer<C>) -> bool {
    let before = producer.in_flight_count();
    producer.poll(Duration::ZERO);
    producer.in_flight_count() < before
}

/// Serves every delivery report waiting, without waiting for more.
pub(crate) fn serve_reports<C: ProducerContext>(producer: &BaseProducer<C>) {
    while producer.in_flight_count() > 0 && served_one(producer) {}
}

pub(crate) fn flush<C: ProducerContext>(producer: &BaseProducer<C>, timeout: Duration) -> KafkaResult<()> {
    let deadline = Instant::now() + timeout;
    loop {
        // librdkafka sends what is queued at once (linger.ms skipped) while it waits here.
        if flush_for(producer, STEP) {
            return Ok(());
        }
        // Served here (delivery reports come in batches), which is what lets the wait end.
        serve_reports(producer);
        if producer.in_flight_count() == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut));
        }
    }
}

/// How long each of [`abort`]'s calls into librdkafka may wait before the reports are served.
const ABORT_STEP: Duration = Duration::from_millis(20);

/// Aborts the producer's open transaction, serving delivery reports while librdkafka waits for
/// them. Its abort purges the queued records and waits until every outstanding record has been
/// reported; rust-rdkafka's producer has its reports served only by polling it, so an abort
/// called once with reports unserved waited out its whole timeout ("... message(s) remaining:
/// the event queue must be polled ...", 10 s at every abort) and then failed. librdkafka's abort
/// may be called again after such a timeout and goes on where it was.
pub(crate) fn abort<C: ProducerContext>(producer: &BaseProducer<C>, timeout: Duration) -> KafkaResult<()> {
    let deadline = Instant::now() + timeout;
    loop {
        serve_reports(producer);
        let left = deadline.saturating_duration_since(Instant::now());
        match producer.abort_transaction(left.min(ABORT_STEP)) {
            Ok(()) => return Ok(()),
            Err(KafkaError::Transaction(e)) if e.is_retriable() && !left.is_zero() => {}
            Err(e) => return Err(e),
        }
    }
}
