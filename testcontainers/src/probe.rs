//! Capability probes: what this broker really does, measured, so tests can skip with a reason.
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::admin::unique_suffix;
use crate::error::{kafka, Error, Result};
use crate::record::RecordData;
use crate::KafkaCluster;

/// The skip reason tests print when the probe below answers `false`.
pub const SKIP_ABORTED_VISIBLE: &str = "skipped: broker does not hide aborted records";

impl KafkaCluster {
    /// Does a `read_committed` consumer hide the records of an aborted transaction?
    /// Writes an aborted then a committed transaction and reads the partition back.
    pub fn hides_aborted_records(&self) -> Result<bool> {
        let topic = format!("kmirror-probe-{}", unique_suffix());
        self.create_topic(&topic, 1, &[])?;
        self.produce_transaction(&topic, 0, &[RecordData::keyed("probe", "aborted")], false)?;
        self.produce_transaction(&topic, 0, &[RecordData::keyed("probe", "committed")], true)?;
        let consumer: BaseConsumer = self
            .client_config()
            .set("group.id", format!("kmirror-probe-{}", unique_suffix()))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .map_err(kafka("creating probe consumer"))?;
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&topic, 0, Offset::Beginning).map_err(kafka("assign"))?;
        consumer.assign(&assignment).map_err(kafka("assign"))?;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Some(message) = consumer.poll(Duration::from_millis(200)) {
                let message = message.map_err(kafka("probe read"))?;
                return Ok(message.payload() == Some(b"committed".as_slice()));
            }
        }
        Err(Error::Timeout { what: format!("probe read of {topic}"), seconds: 30 })
    }
}
