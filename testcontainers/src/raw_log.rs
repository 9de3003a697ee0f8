//! Reads a partition's log as stored: every batch, control batches and aborted data included,
//! with the producer id and transaction flags librdkafka hides. The audit is built on this.
use std::time::Duration;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::error::{kafka, Error, Result};
use crate::raw_request::{protocol_error, RawConnection};
use crate::KafkaCluster;

/// Fetch v11 still names topics (v13+ needs topic ids) and carries the isolation level.
const FETCH_VERSION: i16 = 11;
const READ_UNCOMMITTED: i8 = 0;
const MAX_FETCH_BYTES: i32 = 8 * 1024 * 1024;

/// The kind of a control record (the key's second int16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlKind {
    Abort,
    Commit,
    Other(i16),
}

/// One record slot of the log: data or control, with its transaction identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    pub offset: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub transactional: bool,
    pub control: bool,
    /// Set for control records.
    pub control_kind: Option<ControlKind>,
}

/// A partition's raw log and the high watermark the broker reported in its fetch response.
#[derive(Debug, Clone, Default)]
pub struct RawLog {
    pub records: Vec<RawRecord>,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
}

/// Reads the whole partition from the start to the high watermark of the first response.
pub fn read_raw_log(cluster: &KafkaCluster, topic: &str, partition: i32) -> Result<RawLog> {
    // A partition just created, or between leaders, answers "not the leader" for a moment.
    let started = std::time::Instant::now();
    loop {
        match read_raw_log_once(cluster, topic, partition) {
            Err(Error::Protocol { message, .. })
                if message.contains(LEADER_MOVING) && started.elapsed() < Duration::from_secs(30) =>
            {
                std::thread::sleep(Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

/// Marks fetch errors that mean "ask again, maybe elsewhere": NOT_LEADER_OR_FOLLOWER (6),
/// LEADER_NOT_AVAILABLE (5), FENCED_LEADER_EPOCH (74), UNKNOWN_LEADER_EPOCH (75).
const LEADER_MOVING: &str = "(the leader is moving)";

fn read_raw_log_once(cluster: &KafkaCluster, topic: &str, partition: i32) -> Result<RawLog> {
    let broker = leader_address(cluster, topic, partition)?;
    let mut connection = Connection::open(&broker)?;
    let mut log = RawLog { high_watermark: -1, ..RawLog::default() };
    let mut offset = 0;
    let mut end = None;
    loop {
        let data = connection.fetch(topic, partition, offset, MAX_FETCH_BYTES, 100)?;
        let end_offset = *end.get_or_insert(data.high_watermark);
        log.high_watermark = end_offset;
        log.last_stable_offset = data.last_stable_offset;
        let before = offset;
        if let Some(records) = data.records {
            offset = decode_batches(records, offset, &mut log.records, &broker)?;
        }
        if offset >= end_offset {
            return Ok(log);
        }
        if offset == before {
            return Err(protocol_error(&broker, format!("no progress reading {topic}/{partition} at offset {offset} (high watermark {end_offset})")));
        }
    }
}

/// Decodes every complete batch in `records`; a trailing partial batch is left for the next fetch.
fn decode_batches(
    mut records: Bytes,
    mut next_offset: i64,
    out: &mut Vec<RawRecord>,
    broker: &str,
) -> Result<i64> {
    // Batch header: baseOffset i64, batchLength i32, then `batchLength` bytes.
    while records.remaining() >= 12 {
        let batch_len = i32::from_be_bytes([records[8], records[9], records[10], records[11]]);
        let total =
            12 + usize::try_from(batch_len).map_err(|_| protocol_error(broker, "negative batch length"))?;
        if records.remaining() < total {
            break;
        }
        let mut batch = records.split_to(total);
        let set = RecordBatchDecoder::decode(&mut batch)
            .map_err(|e| protocol_error(broker, format!("decoding batch: {e}")))?;
        for record in set.records {
            if record.offset < next_offset {
                continue;
            }
            next_offset = record.offset + 1;
            let control_kind = record.control.then(|| control_kind(record.key.as_ref()));
            out.push(RawRecord {
                offset: record.offset,
                producer_id: record.producer_id,
                producer_epoch: record.producer_epoch,
                transactional: record.transactional,
                control: record.control,
                control_kind,
            });
        }
    }
    Ok(next_offset)
}

fn control_kind(key: Option<&Bytes>) -> ControlKind {
    match key {
        Some(key) if key.len() >= 4 => match i16::from_be_bytes([key[2], key[3]]) {
            0 => ControlKind::Abort,
            1 => ControlKind::Commit,
            other => ControlKind::Other(other),
        },
        _ => ControlKind::Other(-1),
    }
}

fn leader_address(cluster: &KafkaCluster, topic: &str, partition: i32) -> Result<String> {
    // Behind a TLS proxy the one broker is also reachable in plain TCP, which this reader speaks.
    if let Some(plain) = &cluster.plain_address {
        return Ok(plain.clone());
    }
    // Apache Kafka with a secured client listener: ask a plain listener, whose metadata names
    // the plain listeners of the leaders.
    let config = match &cluster.internal_bootstrap {
        Some(internal) => {
            let mut config = rdkafka::ClientConfig::new();
            config.set("bootstrap.servers", internal);
            config
        }
        None => cluster.client_config(),
    };
    let consumer: BaseConsumer = config.create().map_err(kafka("metadata client"))?;
    // A partition may be between leaders (a node was killed or frozen): wait for the next one.
    let started = std::time::Instant::now();
    loop {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(30))
            .map_err(kafka(format!("metadata of {topic}")))?;
        let found = metadata.topics().iter().find(|t| t.name() == topic);
        let leader =
            found.and_then(|t| t.partitions().iter().find(|p| p.id() == partition)).map(|p| p.leader());
        let address = leader.and_then(|leader| {
            metadata.brokers().iter().find(|b| b.id() == leader).map(|b| format!("{}:{}", b.host(), b.port()))
        });
        if let Some(address) = address {
            return Ok(address);
        }
        if started.elapsed() > Duration::from_secs(30) {
            let said = found.map(|t| format!("{:?}, {} partitions", t.error(), t.partitions().len()));
            return Err(Error::Topic {
                topic: topic.to_string(),
                message: format!(
                    "no leader of partition {partition} within 30 s (leader {leader:?}; metadata: {})",
                    said.unwrap_or_else(|| "no such topic".into())
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Where a partition's log ends, asked often and cheaply (a fault test waiting for the moment a
/// transaction is open): one small fetch on a kept connection to the leader, reading no records.
pub struct LogEnds {
    connection: Connection,
    topic: String,
    partition: i32,
    /// Where the last answer's log ended: the log only grows, so a fetch there reads nothing.
    high_watermark: i64,
}

impl LogEnds {
    pub fn open(cluster: &KafkaCluster, topic: &str, partition: i32) -> Result<Self> {
        let connection = Connection::open(&leader_address(cluster, topic, partition)?)?;
        Ok(Self { connection, topic: topic.to_string(), partition, high_watermark: 0 })
    }

    /// Whether a transaction is open: records past the last stable offset.
    pub fn transaction_open(&mut self) -> Result<bool> {
        let data = self.connection.fetch(&self.topic, self.partition, self.high_watermark, 1, 0)?;
        self.high_watermark = data.high_watermark;
        Ok(data.last_stable_offset < data.high_watermark)
    }
}

/// A raw connection that reads a partition read-uncommitted.
struct Connection(RawConnection);

impl Connection {
    fn open(broker: &str) -> Result<Self> {
        RawConnection::open(broker).map(Self)
    }

    /// The partition's answer to one fetch from `offset` of at most `max_bytes`.
    fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: i32,
        max_wait_ms: i32,
    ) -> Result<PartitionData> {
        let request = FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(max_bytes)
            .with_isolation_level(READ_UNCOMMITTED)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(max_bytes)])]);
        let response: FetchResponse = self.0.call(ApiKey::Fetch, FETCH_VERSION, &request)?;
        let broker = &self.0.broker;
        if response.error_code != 0 {
            return Err(protocol_error(broker, format!("fetch error code {}", response.error_code)));
        }
        let data = response
            .responses
            .into_iter()
            .flat_map(|t| t.partitions)
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| {
                protocol_error(broker, format!("no data for {topic}/{partition} in fetch response"))
            })?;
        if data.error_code != 0 {
            let moving = if matches!(data.error_code, 5 | 6 | 74 | 75) { LEADER_MOVING } else { "" };
            return Err(protocol_error(
                broker,
                format!("fetch {topic}/{partition} at {offset}: error code {} {moving}", data.error_code),
            ));
        }
        Ok(data)
    }
}
