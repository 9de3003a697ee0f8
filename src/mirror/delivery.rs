//! Delivery reports of the target producer: where each record of the open transaction landed.
use std::sync::Mutex;

use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::ClientContext;

use crate::kafka::record_size::record_bytes;

/// Collects, per transaction, the target offset of each record (by its index in the
/// transaction) and the first delivery error.
#[derive(Default)]
pub(crate) struct DeliveryTracker {
    state: Mutex<Deliveries>,
}

#[derive(Default, Debug)]
pub(crate) struct Deliveries {
    /// (index in transaction, target partition, target offset)
    pub(crate) delivered: Vec<(usize, i32, i64)>,
    pub(crate) first_error: Option<FailedDelivery>,
}

/// The first record of a transaction the target did not take.
#[derive(Debug)]
pub(crate) struct FailedDelivery {
    /// Its index in the transaction (or the map records' opaque).
    pub(crate) index: usize,
    pub(crate) error: KafkaError,
    /// Its key, value and header bytes.
    pub(crate) bytes: u64,
}

impl DeliveryTracker {
    /// Takes what was reported so far and starts afresh for the next transaction.
    pub(crate) fn take(&self) -> Deliveries {
        std::mem::take(&mut *self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl ClientContext for DeliveryTracker {}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(message) if index != crate::mirror::map_writer::MAP_RECORD_OPAQUE => {
                state.delivered.push((index, message.partition(), message.offset()))
            }
            Ok(_) => {}
            Err((error, message)) => {
                if state.first_error.is_none() {
                    let bytes = record_bytes(message);
                    state.first_error = Some(FailedDelivery { index, error: error.clone(), bytes });
                }
            }
        }
    }
}
