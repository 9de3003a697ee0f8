//! The high watermark a consumer last saw in a fetch response.
//!
//! Ends are taken from fetch responses, not ListOffsets: some brokers (the Tansu test broker)
//! answer ListOffsets for the latest offset wrongly, while every broker must put the right high
//! watermark in its fetch responses. rust-rdkafka does not wrap librdkafka's cached-watermark
//! call, hence the FFI here.
use std::ffi::CString;

use rdkafka::consumer::{BaseConsumer, Consumer};

/// `Some(high)` once a fetch response for the partition has arrived.
pub fn cached_high_watermark(consumer: &BaseConsumer, topic: &str, partition: i32) -> Option<i64> {
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

/// High watermarks of several partitions, each from a fetch response (never ListOffsets).
/// Partitions that gave no fetch response within `timeout` are left out.
pub fn high_watermarks(
    config: &rdkafka::ClientConfig,
    partitions: &[kmirror_state::TopicPartition],
    timeout: std::time::Duration,
) -> rdkafka::error::KafkaResult<std::collections::HashMap<kmirror_state::TopicPartition, i64>> {
    use rdkafka::{Offset, TopicPartitionList};
    let mut out = std::collections::HashMap::new();
    if partitions.is_empty() {
        return Ok(out);
    }
    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", "kmirror.watermarks")
        .set("enable.auto.commit", "false")
        // Only the response header matters: fetch as little as the client allows.
        .set("max.partition.fetch.bytes", "1024")
        .set("fetch.wait.max.ms", "10")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for tp in partitions {
        tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let started = std::time::Instant::now();
    while out.len() < partitions.len() && started.elapsed() < timeout {
        let _ = consumer.poll(std::time::Duration::from_millis(50));
        for tp in partitions {
            if !out.contains_key(tp) {
                if let Some(high) = cached_high_watermark(&consumer, &tp.topic, tp.partition) {
                    out.insert(tp.clone(), high);
                }
            }
        }
    }
    Ok(out)
}
