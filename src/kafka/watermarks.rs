//! Where a partition's data ends, as a `read_committed` reader sees it.
//!
//! Ends come from ListOffsets under `read_committed`: the last stable offset, below any
//! transaction still open. A fetch response's high watermark counts an open transaction in, so
//! starting there (`--start-from latest`) would cut it in two, and reading up to it would wait
//! for a transaction kmirror itself keeps open. The live shard consumers still look at their
//! cached high watermark for progress and lag, which costs no request.
use std::collections::{BTreeSet, HashMap};
use std::ffi::CString;
use std::time::{Duration, Instant};

use kmirror_state::TopicPartition;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::kafka::client::CreateForRole;

/// `Some(high)` once a fetch response for the partition has arrived.
pub(crate) fn cached_high_watermark(consumer: &BaseConsumer, topic: &str, partition: i32) -> Option<i64> {
    let topic = CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client pointer is valid for the consumer's lifetime, the topic is a valid C
    // string that outlives the call, and librdkafka only writes the two out-parameters.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high)
}

/// The committed end (last stable offset) of each partition, in one ListOffsets round per
/// leader. Partitions the cluster does not know are left out.
pub(crate) fn committed_ends(
    config: &ClientConfig,
    partitions: &[TopicPartition],
    timeout: Duration,
) -> KafkaResult<HashMap<TopicPartition, i64>> {
    if partitions.is_empty() {
        return Ok(HashMap::new());
    }
    let consumer = watermark_consumer(config, partitions, timeout)?;
    committed_ends_with(&consumer, partitions, timeout)
}

/// A new read_committed client (see [`watermark_client`]) that knows the leaders of
/// `partitions` before it is asked where they end.
pub(crate) fn watermark_consumer(
    config: &ClientConfig,
    partitions: &[TopicPartition],
    timeout: Duration,
) -> KafkaResult<BaseConsumer> {
    let consumer: BaseConsumer = watermark_client(config).create_for_role()?;
    learn_leaders(&consumer, partitions, timeout);
    Ok(consumer)
}

/// For a client just made: asks for the metadata of `partitions`' topics before anything else.
/// A new client's first requests go out on its bootstrap connection, which librdkafka retires
/// once its first metadata answer names the brokers; ListOffsets' own leader query, caught on
/// it, fails ("broker handle destroyed") and librdkafka waits 200 and then 300 ms before asking
/// again: its debug log showed this in 3 of 30 start reads, whose ends took 716-749 ms against
/// 12-91. A synchronous metadata request caught that way is asked again by librdkafka as soon as
/// a named broker is connected, and its answer leaves the leaders in the client's cache: in 30
/// start reads after this the ends took 44-119 ms, none longer (the wait for that connection
/// is paid every time, about 30 ms at the median, against 0.65 s one time in ten).
fn learn_leaders(consumer: &BaseConsumer, partitions: &[TopicPartition], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let topics: BTreeSet<&str> = partitions.iter().map(|tp| tp.topic.as_str()).collect();
    // One topic is asked by name; several, with every topic of the cluster, in one request.
    let asked = match (topics.len(), topics.first()) {
        (1, Some(topic)) => Some(*topic),
        _ => None,
    };
    for _ in 0..3 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        match consumer.fetch_metadata(asked, left) {
            Ok(_) => return,
            Err(e) => tracing::debug!(error = %e, "metadata before ListOffsets failed; asking again"),
        }
    }
}

/// The settings of a client that only asks where partitions end: its "latest" is the last
/// stable offset (read_committed).
pub(crate) fn watermark_client(config: &ClientConfig) -> ClientConfig {
    let mut config = config.clone();
    // No group of its own: ListOffsets needs none, and a consumer with one looks up its
    // coordinator, which an authorizer refuses unless the principal may DESCRIBE that group.
    config.set("enable.auto.commit", "false").set("isolation.level", "read_committed");
    config
}

/// As [`committed_ends`], with a consumer that reads `read_committed`.
pub(crate) fn committed_ends_with<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    partitions: &[TopicPartition],
    timeout: Duration,
) -> KafkaResult<HashMap<TopicPartition, i64>> {
    // "Offsets for the time -1" is ListOffsets for the latest offset.
    list_offsets(consumer, partitions, Offset::End, timeout)
}

/// The log start offset of each partition: below it the source has deleted its records
/// (retention, DeleteRecords), so a position below it cannot be read from.
pub(crate) fn log_starts_with(
    consumer: &BaseConsumer,
    partitions: &[TopicPartition],
    timeout: Duration,
) -> KafkaResult<HashMap<TopicPartition, i64>> {
    list_offsets(consumer, partitions, Offset::Beginning, timeout)
}

/// Between a topic's creation (or a leader's move) and every broker knowing its leader, a
/// ListOffsets answers "not leader"; those partitions are asked again until `timeout`.
fn list_offsets<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    partitions: &[TopicPartition],
    at: Offset,
    timeout: Duration,
) -> KafkaResult<HashMap<TopicPartition, i64>> {
    let deadline = Instant::now() + timeout;
    let mut found = HashMap::new();
    let mut pending: Vec<TopicPartition> = partitions.to_vec();
    // A partition asked twice in one request is refused whole (UnsupportedVersion on Apache Kafka
    // 4.1: a failback moving two groups of one partition failed there, after its commits).
    pending.sort();
    pending.dedup();
    loop {
        let mut query = TopicPartitionList::new();
        for tp in &pending {
            query.add_partition_offset(&tp.topic, tp.partition, at)?;
        }
        let answer =
            until_a_leader_is_known(deadline, |left| consumer.offsets_for_times(query.clone(), left))?;
        pending.clear();
        for e in answer.elements() {
            let tp = TopicPartition::new(e.topic(), e.partition());
            match (e.error(), e.offset()) {
                (Ok(()), Offset::Offset(o)) => {
                    found.insert(tp, o);
                }
                (Err(err), _) if is_leader_move(&err) => pending.push(tp),
                _ => {}
            }
        }
        if pending.is_empty() || Instant::now() >= deadline {
            return Ok(found);
        }
        std::thread::sleep(LEADER_BACKOFF);
    }
}

const LEADER_BACKOFF: Duration = Duration::from_millis(100);
/// A leader that is only being made (a topic just made) answers within milliseconds.
const FIRST_LEADER_BACKOFF: Duration = Duration::from_millis(10);

/// Errors that last only until the cluster's metadata names a partition's (new) leader.
fn is_leader_move(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::FencedLeaderEpoch
                | RDKafkaErrorCode::UnknownLeaderEpoch
                | RDKafkaErrorCode::OffsetNotAvailable
        )
    )
}

/// The committed end of one partition, read through `consumer` (which reads `read_committed`).
pub(crate) fn committed_end(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    timeout: Duration,
) -> KafkaResult<i64> {
    watermarks(consumer, topic, partition, timeout).map(|(_, end)| end)
}

/// Where one partition starts and (for a `read_committed` consumer, committedly) ends, asked
/// again while its leader is in motion: a topic just made shows its partitions in the metadata
/// a little before its leader answers ListOffsets.
pub(crate) fn watermarks(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    timeout: Duration,
) -> KafkaResult<(i64, i64)> {
    until_a_leader_is_known(Instant::now() + timeout, |left| {
        consumer.fetch_watermarks(topic, partition, left)
    })
}

/// `call(time left)` again while it fails only for want of a known leader, until `deadline`.
fn until_a_leader_is_known<T>(
    deadline: Instant,
    mut call: impl FnMut(Duration) -> KafkaResult<T>,
) -> KafkaResult<T> {
    let mut backoff = FIRST_LEADER_BACKOFF;
    loop {
        match call(deadline.saturating_duration_since(Instant::now())) {
            Err(e) if is_leader_move(&e) && Instant::now() + backoff < deadline => {
                tracing::debug!(error = %e, "no leader known yet; asking again");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(LEADER_BACKOFF);
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_errors_of_a_leader_in_motion_are_asked_again() {
        let leader = KafkaError::MetadataFetch(RDKafkaErrorCode::NotLeaderForPartition);
        assert!(is_leader_move(&leader));
        assert!(is_leader_move(&KafkaError::OffsetFetch(RDKafkaErrorCode::LeaderNotAvailable)));
        assert!(!is_leader_move(&KafkaError::MetadataFetch(RDKafkaErrorCode::UnknownTopicOrPartition)));
        assert!(!is_leader_move(&KafkaError::MetadataFetch(RDKafkaErrorCode::TopicAuthorizationFailed)));
    }
}
