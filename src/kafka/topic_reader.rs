//! Reads kmirror's own topics: one partition from an offset to its end, or the last records of
//! many partitions on one consumer.
use std::collections::BTreeMap;
use std::ops::Range;
use std::time::{Duration, Instant};

use kmirror_state::TopicPartition;
use rdkafka::consumer::{BaseConsumer, Consumer, DefaultConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::error::{Error, Result, Side};
use crate::kafka::client::CreateForRole;
use crate::kafka::consumer_close::ClosedOnDrop;
use crate::kafka::watermarks::{committed_end, committed_ends_with, log_starts_with};

const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a read may make no progress: the end read first is below any open transaction, so
/// the position gets there without waiting on one.
const STALL: Duration = Duration::from_secs(10);

/// Calls `on_record(offset, timestamp_ms, value)` for every committed record of `partition` of `topic`
/// from `from` to its committed end at the start of the read; returns the position reached (a
/// read that makes no progress short of that end is an error).
pub(crate) fn read_to_end(
    target: &ClientConfig,
    topic: &str,
    partition: i32,
    group: &str,
    from: i64,
    deleted: Deleted,
    mut on_record: impl FnMut(i64, Option<i64>, &[u8]) -> Result<()>,
) -> Result<i64> {
    let reached =
        read_to_ends(target, (topic, group), &[(partition, from)], deleted, |_, offset, at, value| {
            on_record(offset, at, value)
        })?;
    Ok(reached.get(&partition).copied().unwrap_or(from))
}

/// As [`read_to_end`] for several partitions of `topic` (`starts`: each with the offset to
/// begin at), all read on one consumer: `on_record(partition, offset, timestamp_ms, value)`
/// in offset order per partition. Returns the position each reached. One after the other, each
/// partition took a client, two offset lookups and a first fetch of its own: a map of four
/// shards took 0.4-0.8 s to catch up with nothing new in it.
pub(crate) fn read_to_ends(
    target: &ClientConfig,
    (topic, group): (&str, &str),
    starts: &[(i32, i64)],
    deleted: Deleted,
    mut on_record: impl FnMut(i32, i64, Option<i64>, &[u8]) -> Result<()>,
) -> Result<BTreeMap<i32, i64>> {
    let mut reached: BTreeMap<i32, i64> = starts.iter().copied().collect();
    if starts.is_empty() {
        return Ok(reached);
    }
    let consumer: BaseConsumer = reader_config(target, group)
        // A fetch waits this long on the broker where a partition read to its end has nothing
        // more (librdkafka's 500 ms), and the next fetch for the others waits behind it.
        .set("fetch.wait.max.ms", "10")
        .create_for_role()
        .map_err(Error::kafka(Side::Target, format!("creating a reader of {topic}")))?;
    let tps: Vec<TopicPartition> = starts.iter().map(|&(p, _)| TopicPartition::new(topic, p)).collect();
    let ends = committed_ends_with(&consumer, &tps, READ_TIMEOUT)
        .map_err(Error::kafka(Side::Target, format!("reading the end of {topic}")))?;
    // A partition whose end the cluster did not give (its leader not back within the time) is
    // not read to an end: short of it, never an answer.
    if let Some(&(partition, _)) =
        starts.iter().find(|(p, _)| !ends.contains_key(&TopicPartition::new(topic, *p)))
    {
        return Err(Error::SlowRead {
            side: Side::Target,
            partition: format!("{topic}/{partition} (its end not given)"),
            seconds: READ_TIMEOUT.as_secs(),
            stalled: false,
        });
    }
    let end_of = |p: i32| ends.get(&TopicPartition::new(topic, p)).copied().unwrap_or(0);
    let behind: Vec<(i32, i64)> = starts.iter().copied().filter(|&(p, from)| from < end_of(p)).collect();
    if behind.is_empty() {
        return Ok(reached);
    }
    // Where the records to begin at are gone, the consumer would go on at the partition's end
    // (librdkafka's default reset) as if it had read them.
    let behind_tps: Vec<TopicPartition> =
        behind.iter().map(|&(p, _)| TopicPartition::new(topic, p)).collect();
    let log_starts = log_starts_with(&consumer, &behind_tps, READ_TIMEOUT)
        .map_err(Error::kafka(Side::Target, format!("reading where {topic} starts")))?;
    let mut tpl = TopicPartitionList::new();
    for &(partition, from) in &behind {
        let start = log_starts.get(&TopicPartition::new(topic, partition)).copied().unwrap_or(0);
        let from = match deleted {
            _ if from >= start => from,
            Deleted::ReadFromStart => start,
            Deleted::Refuse => {
                return Err(Error::State(format!(
                    "{topic} partition {partition} starts at {start}: its records from {from} were deleted (DeleteRecords, or a size retention set on it) before they were read, and what they held cannot be known; restore the topic's records, or mirror anew under a new --name"
                )))
            }
        };
        reached.insert(partition, from);
        tpl.add_partition_offset(topic, partition, Offset::Offset(from))
            .map_err(Error::kafka(Side::Target, format!("assigning {topic}")))?;
    }
    consumer.assign(&tpl).map_err(Error::kafka(Side::Target, format!("assigning {topic}")))?;
    // Each partition has the time one read alone had: they are read side by side, but what
    // takes long is applying their records, one at a time.
    let limit = READ_TIMEOUT * u32::try_from(behind.len()).unwrap_or(u32::MAX);
    let started = Instant::now();
    let mut progress = Instant::now();
    loop {
        if started.elapsed() > limit {
            return Err(timed_out(target, topic, limit));
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => on_record(
                message.partition(),
                message.offset(),
                message.timestamp().to_millis(),
                message.payload().unwrap_or_default(),
            )?,
            Some(Err(e)) => return Err(Error::kafka(Side::Target, format!("reading {topic}"))(e)),
            None => {}
        }
        // Control markers at the end advance the position without a record.
        let positions =
            consumer.position().map_err(Error::kafka(Side::Target, format!("reading {topic}")))?;
        for e in positions.elements() {
            if let (Offset::Offset(o), Some(at)) = (e.offset(), reached.get_mut(&e.partition())) {
                if o > *at {
                    *at = o;
                    progress = Instant::now();
                }
            }
        }
        let short: Vec<(i32, i64)> =
            behind.iter().map(|&(p, _)| (p, reached[&p])).filter(|&(p, at)| at < end_of(p)).collect();
        let Some(&(partition, position)) = short.first() else { return Ok(reached) };
        // Short of the end, never an answer: a map or checkpoints read in part translate
        // behind where the groups are.
        if progress.elapsed() > STALL {
            return Err(Error::SlowRead {
                side: Side::Target,
                partition: format!(
                    "{topic}/{partition} (stopped at {position}, short of {})",
                    end_of(partition)
                ),
                seconds: STALL.as_secs(),
                stalled: true,
            });
        }
    }
}

/// What [`read_to_end`] does where the partition no longer holds the records it is to begin at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deleted {
    /// Fails: every record read is needed (the offset map).
    Refuse,
    /// Begins at the partition's start: only the last records count (checkpoints).
    ReadFromStart,
}

/// One record of a tail read by [`read_last`].
pub(crate) struct TailRecord<'a> {
    pub(crate) partition: i32,
    pub(crate) timestamp_ms: Option<i64>,
    pub(crate) key: &'a [u8],
    pub(crate) value: &'a [u8],
}

/// Calls `on_record` for each of the last `tail` committed records of `partitions` of `topic`
/// (those it has), in offset order per partition; none for a topic that does not exist. All on
/// one consumer: its metadata answer tells whether the topic exists and names the leaders its
/// ends are then asked of, and one fetch session reads every tail (`status` of a 12-shard mirror
/// read its claims in some 1.5 s with a consumer per partition). The whole read must end within
/// `timeout`; a tail read only in part is an error, never a shorter answer.
pub(crate) fn read_last(
    target: &ClientConfig,
    topic: &str,
    group: &str,
    tails: (Range<i32>, i64),
    timeout: Duration,
    on_record: impl FnMut(TailRecord<'_>),
) -> Result<()> {
    TailReader::new(target, group, topic)?.read_last(topic, tails, timeout, on_record)
}

/// A reader of the last records of partitions (see [`read_last`]), kept to read them again: its
/// connection and metadata are made once (a new reader's first read took 30-300 ms on a test
/// target, against some 10 ms once connected).
pub(crate) struct TailReader {
    consumer: ClosedOnDrop<DefaultConsumerContext>,
}

impl TailReader {
    pub(crate) fn new(target: &ClientConfig, group: &str, topic: &str) -> Result<Self> {
        let consumer: BaseConsumer = reader_config(target, group)
            // A tail that begins below the log start (records deleted by retention) is read from
            // the log start, not skipped to the end.
            .set("auto.offset.reset", "earliest")
            // A fetch at a partition's end waits this long on the broker, and the next read's
            // requests on the connection wait behind it.
            .set("fetch.wait.max.ms", "10")
            .create_for_role()
            .map_err(Error::kafka(Side::Target, format!("creating a reader of {topic}")))?;
        Ok(Self { consumer: ClosedOnDrop::new(consumer) })
    }

    /// As [`read_last`], on this reader.
    pub(crate) fn read_last(
        &self,
        topic: &str,
        (partitions, tail): (Range<i32>, i64),
        timeout: Duration,
        on_record: impl FnMut(TailRecord<'_>),
    ) -> Result<()> {
        let read = read_last_on(&self.consumer, (topic, partitions, tail), timeout, on_record);
        // Nothing fetched until the next read.
        let _ = self.consumer.unassign();
        read
    }
}

fn read_last_on(
    consumer: &BaseConsumer,
    (topic, partitions, tail): (&str, Range<i32>, i64),
    timeout: Duration,
    mut on_record: impl FnMut(TailRecord<'_>),
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(Error::kafka(Side::Target, format!("metadata of {topic}")))?;
    let mut existing: Vec<TopicPartition> = Vec::new();
    for t in metadata.topics().iter().filter(|t| t.name() == topic) {
        match t.error().map(RDKafkaErrorCode::from) {
            None => existing.extend(
                t.partitions()
                    .iter()
                    .map(|p| p.id())
                    .filter(|p| partitions.contains(p))
                    .map(|p| TopicPartition::new(topic, p)),
            ),
            Some(RDKafkaErrorCode::UnknownTopicOrPartition) => {}
            // Denied is not absent: a reader that may not see the topic must not answer "none".
            Some(code) => {
                return Err(Error::from_kafka(
                    Side::Target,
                    format!("describing topic {topic}"),
                    KafkaError::MetadataFetch(code),
                ))
            }
        }
    }
    if existing.is_empty() {
        return Ok(());
    }
    let left = deadline.saturating_duration_since(Instant::now());
    let ends = committed_ends_with(consumer, &existing, left)
        .map_err(Error::kafka(Side::Target, format!("reading the end of {topic}")))?;
    let ranges: BTreeMap<i32, (i64, i64)> = ends
        .iter()
        .filter(|(_, &end)| end > 0)
        .map(|(tp, &end)| (tp.partition, ((end - tail).max(0), end)))
        .collect();
    if ranges.is_empty() {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    for (&partition, &(from, _)) in &ranges {
        tpl.add_partition_offset(topic, partition, Offset::Offset(from))
            .map_err(Error::kafka(Side::Target, format!("assigning {topic}")))?;
    }
    consumer.assign(&tpl).map_err(Error::kafka(Side::Target, format!("assigning {topic}")))?;
    loop {
        if Instant::now() > deadline {
            return Err(Error::SlowRead {
                side: Side::Target,
                partition: format!("the last records of {topic}"),
                seconds: timeout.as_secs(),
                stalled: false,
            });
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message))
                if ranges.get(&message.partition()).is_some_and(|&(_, end)| message.offset() < end) =>
            {
                on_record(TailRecord {
                    partition: message.partition(),
                    timestamp_ms: message.timestamp().to_millis(),
                    key: message.key().unwrap_or_default(),
                    value: message.payload().unwrap_or_default(),
                });
            }
            Some(Err(e)) => return Err(Error::kafka(Side::Target, format!("reading {topic}"))(e)),
            _ => {}
        }
        let positions: BTreeMap<i32, i64> = consumer
            .position()
            .map(|list| {
                list.elements()
                    .iter()
                    .filter_map(|e| match e.offset() {
                        Offset::Offset(o) => Some((e.partition(), o)),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        if ranges.iter().all(|(p, &(_, end))| positions.get(p).is_some_and(|&at| at >= end)) {
            return Ok(());
        }
    }
}

/// The settings of a reader of kmirror's own topics: committed records only, and no commits of
/// its own (`group` only names it: librdkafka wants a group for `assign`).
fn reader_config(target: &ClientConfig, group: &str) -> ClientConfig {
    let mut config = target.clone();
    config.set("group.id", group).set("enable.auto.commit", "false").set("isolation.level", "read_committed");
    // Records gone under a read (deleted, or a topic made again) fail it: librdkafka's default
    // would go on at the partition's end as if they had been read.
    config.set("auto.offset.reset", "error");
    config
}

/// A read of `topic` that did not reach its end within [`READ_TIMEOUT`].
fn timed_out(target: &ClientConfig, topic: &str, limit: Duration) -> Error {
    Error::Unreachable {
        side: Side::Target,
        bootstrap: target.get("bootstrap.servers").unwrap_or_default().to_string(),
        message: format!("reading {topic} did not finish within {} s", limit.as_secs()),
    }
}

/// A reader of whole offset ranges of one partition, for reads that must not stop short: a
/// range that stops moving is an error, never a partial answer.
pub(crate) struct RangeReader {
    consumer: BaseConsumer,
    topic: String,
    partition: i32,
}

impl RangeReader {
    pub(crate) fn new(target: &ClientConfig, topic: &str, partition: i32, group: &str) -> Result<Self> {
        let consumer: BaseConsumer = reader_config(target, group)
            .create_for_role()
            .map_err(Error::kafka(Side::Target, format!("creating a reader of {topic}")))?;
        Ok(Self { consumer, topic: topic.to_string(), partition })
    }

    /// The partition's log start and committed end; `None` if the partition does not exist.
    pub(crate) fn bounds(&self) -> Result<Option<(i64, i64)>> {
        let metadata = self
            .consumer
            .fetch_metadata(Some(&self.topic), READ_TIMEOUT)
            .map_err(Error::kafka(Side::Target, format!("metadata of {}", self.topic)))?;
        let exists = metadata.topics().iter().any(|t| {
            t.name() == self.topic
                && t.error().is_none()
                && t.partitions().iter().any(|p| p.id() == self.partition)
        });
        if !exists {
            return Ok(None);
        }
        let tp = kmirror_state::TopicPartition::new(self.topic.as_str(), self.partition);
        let starts = log_starts_with(&self.consumer, std::slice::from_ref(&tp), READ_TIMEOUT)
            .map_err(Error::kafka(Side::Target, format!("reading where {} starts", self.topic)))?;
        let end = committed_end(&self.consumer, &self.topic, self.partition, READ_TIMEOUT)
            .map_err(Error::kafka(Side::Target, format!("reading the end of {}", self.topic)))?;
        Ok(Some((starts.get(&tp).copied().unwrap_or(0), end)))
    }

    /// Calls `on_record(offset, value)` for every committed record in `from..to`, in order.
    pub(crate) fn read(
        &self,
        from: i64,
        to: i64,
        mut on_record: impl FnMut(i64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        if from >= to {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, self.partition, Offset::Offset(from))
            .map_err(Error::kafka(Side::Target, format!("assigning {}", self.topic)))?;
        self.consumer
            .assign(&tpl)
            .map_err(Error::kafka(Side::Target, format!("assigning {}", self.topic)))?;
        let mut last = (from, Instant::now());
        loop {
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) if message.offset() < to => {
                    on_record(message.offset(), message.payload().unwrap_or_default())?
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(Error::kafka(Side::Target, format!("reading {}", self.topic))(e)),
                None => {}
            }
            let position =
                match self.consumer.position().ok().and_then(|p| p.elements().first().map(|e| e.offset())) {
                    Some(Offset::Offset(o)) => o,
                    _ => last.0,
                };
            if position >= to {
                return Ok(());
            }
            if position != last.0 {
                last = (position, Instant::now());
            } else if last.1.elapsed() > READ_TIMEOUT {
                return Err(Error::SlowRead {
                    side: Side::Target,
                    partition: format!(
                        "{}/{} (stopped at {position}, short of {to})",
                        self.topic, self.partition
                    ),
                    seconds: READ_TIMEOUT.as_secs(),
                    stalled: true,
                });
            }
        }
    }
}
