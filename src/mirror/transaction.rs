//! A shard's open target transaction: what it holds, and how a source record enters it (as is,
//! or through the transforms).
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::message::ToBytes;
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use tracing::warn;

use crate::error::{code_of, Error, Result, Side};
use crate::kafka::record_size::record_bytes;
use crate::mirror::delivery::DeliveryTracker;
use crate::mirror::flush::serve_reports;
use crate::mirror::plan::Route;
use crate::mirror::refused_record::fix_for;
use crate::transform::{Chain, OwnedRecord, SourcePosition};

pub(crate) struct OpenTransaction {
    pub(crate) started: Instant,
    /// (route index, source offset) of each record sent, in send order.
    pub(crate) records: Vec<(usize, i64)>,
    /// Records and bytes per route index, for progress and metrics.
    pub(crate) per_route: Vec<(u64, u64)>,
    /// Key, value and header bytes in the transaction.
    pub(crate) bytes: u64,
    pub(crate) failed: Option<KafkaError>,
    /// The record count it closes at, once decided at the first bound reached (it may take the
    /// rest of a backlog, see `Shard::transaction_due`).
    pub(crate) record_bound: Option<usize>,
    /// How long it may stay open, decided with `record_bound` (a transaction that takes the
    /// rest may take as much longer).
    pub(crate) time_bound: Option<std::time::Duration>,
}

/// What became of a source record.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Produced {
    Sent,
    /// A transform dropped it.
    Dropped,
    /// A transform failed on it and `--on-transform-error skip` left it out; why.
    Skipped(String),
    /// Larger than the producer's `message.max.bytes` (which kmirror may raise): the
    /// transaction will abort, and the record is read again by producers made for its size.
    OverLimit {
        bytes: u64,
    },
}

/// Sends one source record into the shard's open transaction, beginning one if needed. A record
/// the transforms drop still begins the transaction, so the position past it is committed.
/// `limit_raisable`: a record over the producer's own size limit is `Produced::OverLimit`, not
/// the refusal that stops the mirror (the user left `message.max.bytes` to kmirror).
#[allow(clippy::too_many_arguments)]
pub(crate) fn produce(
    shard: u32,
    txn: &mut Option<OpenTransaction>,
    producer: &BaseProducer<DeliveryTracker>,
    routes: &[Route],
    route: usize,
    message: &BorrowedMessage<'_>,
    transforms: &Chain,
    limit_raisable: bool,
) -> Result<Produced> {
    if txn.is_none() {
        producer
            .begin_transaction()
            .map_err(|e| Error::from_kafka(Side::Target, format!("shard {shard}: begin_transaction"), e))?;
        // Reports of an earlier, aborted transaction must not be read as this one's.
        producer.context().take();
        *txn = Some(OpenTransaction {
            started: Instant::now(),
            records: Vec::new(),
            per_route: vec![(0, 0); routes.len()],
            bytes: 0,
            failed: None,
            record_bound: None,
            time_bound: None,
        });
    }
    let Some(open) = txn.as_mut() else { return Ok(Produced::Sent) };
    if open.failed.is_some() {
        return Ok(Produced::Sent);
    }
    let target = &routes[route].target;
    let index = open.records.len();
    let last_bytes;
    let sent = if transforms.is_empty() {
        last_bytes = record_bytes(message);
        note(open, route, message.offset(), last_bytes);
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(&target.topic, index).partition(target.partition);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(value) = message.payload() {
            record = record.payload(value);
        }
        if let Some(ts) = message.timestamp().to_millis() {
            record = record.timestamp(ts);
        }
        if let Some(headers) = message.headers() {
            record = record.headers(headers.detach());
        }
        send(producer, record)
    } else {
        let at = SourcePosition {
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
        };
        let changed = match transforms.apply(at, owned(message)) {
            Ok(Some(changed)) => changed,
            Ok(None) => return Ok(Produced::Dropped),
            Err(why) if transforms.skips_errors() => return Ok(Produced::Skipped(why)),
            Err(message) => {
                return Err(Error::Transform {
                    topic: at.topic.to_string(),
                    partition: at.partition,
                    offset: at.offset,
                    message,
                })
            }
        };
        last_bytes = owned_bytes(&changed);
        note(open, route, message.offset(), last_bytes);
        let mut headers = OwnedHeaders::new_with_capacity(changed.headers.len());
        for (key, value) in &changed.headers {
            headers = headers.insert(Header { key, value: value.as_deref() });
        }
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(&target.topic, index).partition(target.partition).headers(headers);
        if let Some(key) = changed.key.as_deref() {
            record = record.key(key);
        }
        if let Some(value) = changed.value.as_deref() {
            record = record.payload(value);
        }
        if let Some(ts) = changed.timestamp {
            record = record.timestamp(ts);
        }
        send(producer, record)
    };
    if let Err(e) = sent {
        if limit_raisable && code_of(&e) == Some(RDKafkaErrorCode::MessageSizeTooLarge) {
            open.failed = Some(e);
            return Ok(Produced::OverLimit { bytes: last_bytes });
        }
        if let Some(fix) = fix_for(&e, true, &target.topic) {
            return Err(Error::RecordRefused {
                topic: message.topic().to_string(),
                partition: message.partition(),
                offset: message.offset(),
                bytes: last_bytes,
                cause: e.to_string(),
                fix,
            });
        }
        warn!(shard, error = %e, "produce failed; the transaction will be aborted");
        open.failed = Some(e);
    }
    if index % REPORTS_EVERY == REPORTS_EVERY - 1 {
        serve_reports(producer);
    }
    Ok(Produced::Sent)
}

/// Every this many records sent, the delivery reports waiting are taken in. librdkafka keeps a
/// delivered record (its copy of key, value and headers, some 300 bytes at 100 B values) until
/// its report is served: unserved until the transaction's flush, a transaction held all of its
/// records however early they were delivered (1 M records of 100 B, transactions of 40 000:
/// peak RSS 192-201 MB against 155 at 10 000).
const REPORTS_EVERY: usize = 1024;

fn note(open: &mut OpenTransaction, route: usize, offset: i64, size: u64) {
    open.records.push((route, offset));
    open.bytes += size;
    if let Some((records, bytes)) = open.per_route.get_mut(route) {
        *records += 1;
        *bytes += size;
    }
}

/// Sends, waiting while the producer's queue is full.
fn send<K: ToBytes + ?Sized, P: ToBytes + ?Sized>(
    producer: &BaseProducer<DeliveryTracker>,
    mut record: BaseRecord<'_, K, P, usize>,
) -> std::result::Result<(), KafkaError> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(10));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

fn owned(message: &BorrowedMessage<'_>) -> OwnedRecord {
    OwnedRecord {
        key: message.key().map(<[u8]>::to_vec),
        value: message.payload().map(<[u8]>::to_vec),
        headers: message
            .headers()
            .map(|h| h.iter().map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec))).collect())
            .unwrap_or_default(),
        timestamp: message.timestamp().to_millis(),
    }
}

fn owned_bytes(record: &OwnedRecord) -> u64 {
    let headers: usize = record.headers.iter().map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len)).sum();
    (record.key.as_ref().map_or(0, Vec::len) + record.value.as_ref().map_or(0, Vec::len) + headers) as u64
}
