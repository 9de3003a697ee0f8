//! Topic and record helpers that tests use to set up and inspect clusters.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_executor::block_on;
use rdkafka::admin::{
    AdminClient, AdminOptions, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::error::{kafka, Error, Result};
use crate::record::{RecordData, StoredRecord};
use crate::KafkaCluster;

const OP_TIMEOUT: Duration = Duration::from_secs(30);

impl KafkaCluster {
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", self.bootstrap());
        for (key, value) in &self.client_properties {
            config.set(key, value);
        }
        config
    }

    fn admin(&self) -> Result<AdminClient<DefaultClientContext>> {
        self.client_config().create().map_err(kafka("creating admin client"))
    }

    /// Creates a topic with `partitions` partitions and the given topic configs.
    pub fn create_topic(&self, topic: &str, partitions: i32, configs: &[(&str, &str)]) -> Result<()> {
        let mut new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(self.replicas()));
        for (key, value) in configs {
            new_topic = new_topic.set(key, value);
        }
        let admin = self.admin()?;
        let results = block_on(admin.create_topics([&new_topic], &AdminOptions::new()))
            .map_err(kafka(format!("creating topic {topic}")))?;
        for result in results {
            if let Err((name, code)) = result {
                return Err(Error::Topic { topic: name, message: format!("create failed: {code}") });
            }
        }
        self.wait_for_topic(topic, partitions)
    }

    /// Grows a topic to `total` partitions and waits until the metadata shows them.
    pub fn add_partitions(&self, topic: &str, total: i32) -> Result<()> {
        let admin = self.admin()?;
        let request = NewPartitions::new(topic, usize::try_from(total).unwrap_or(0));
        let results = block_on(admin.create_partitions([&request], &AdminOptions::new()))
            .map_err(kafka(format!("adding partitions to {topic}")))?;
        for result in results {
            if let Err((name, code)) = result {
                return Err(Error::Topic {
                    topic: name,
                    message: format!("adding partitions failed: {code}"),
                });
            }
        }
        self.wait_for_topic(topic, total)
    }

    /// Deletes the records of `topic`/`partition` below `before` (DeleteRecords, as retention
    /// would), returning the partition's new log start.
    pub fn delete_records(&self, topic: &str, partition: i32, before: i64) -> Result<i64> {
        let admin = self.admin()?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(before))
            .map_err(kafka(format!("naming {topic}/{partition}")))?;
        let answer =
            block_on(admin.delete_records(&tpl, &AdminOptions::new().operation_timeout(Some(OP_TIMEOUT))))
                .map_err(kafka(format!("deleting records of {topic}/{partition}")))?;
        let element = answer.elements().into_iter().next().ok_or_else(|| Error::Topic {
            topic: topic.to_string(),
            message: "DeleteRecords gave no answer".into(),
        })?;
        element.error().map_err(kafka(format!("deleting records of {topic}/{partition}")))?;
        match element.offset() {
            Offset::Offset(start) => Ok(start),
            other => Err(Error::Topic {
                topic: topic.to_string(),
                message: format!("DeleteRecords answered {other:?}"),
            }),
        }
    }

    /// Deletes a topic and waits until the metadata no longer shows it.
    pub fn delete_topic(&self, topic: &str) -> Result<()> {
        let admin = self.admin()?;
        let results = block_on(admin.delete_topics(&[topic], &AdminOptions::new()))
            .map_err(kafka(format!("deleting topic {topic}")))?;
        for result in results {
            if let Err((name, code)) = result {
                return Err(Error::Topic { topic: name, message: format!("delete failed: {code}") });
            }
        }
        let started = Instant::now();
        while self.partition_count(topic)?.is_some() {
            if started.elapsed() > OP_TIMEOUT {
                return Err(Error::Timeout {
                    what: format!("topic {topic} to go"),
                    seconds: OP_TIMEOUT.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Deletes consumer groups (what Kafka's offset expiry does to a member-less group); a group
    /// that does not exist counts as deleted.
    pub fn delete_groups(&self, groups: &[&str]) -> Result<()> {
        let admin = self.admin()?;
        let results =
            block_on(admin.delete_groups(groups, &AdminOptions::new())).map_err(kafka("deleting groups"))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::GroupIdNotFound)) => {}
                Err((group, code)) => {
                    return Err(Error::Topic {
                        topic: group,
                        message: format!("group delete failed: {code}"),
                    })
                }
            }
        }
        Ok(())
    }

    fn wait_for_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        let consumer: BaseConsumer = self.client_config().create().map_err(kafka("metadata client"))?;
        let started = Instant::now();
        while started.elapsed() < OP_TIMEOUT {
            if self.partition_count_with(&consumer, topic)? == Some(partitions) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(Error::Timeout { what: format!("topic {topic} to appear"), seconds: OP_TIMEOUT.as_secs() })
    }

    /// The topic's partition count, or `None` if it does not exist.
    pub fn partition_count(&self, topic: &str) -> Result<Option<i32>> {
        let consumer: BaseConsumer = self.client_config().create().map_err(kafka("metadata client"))?;
        self.partition_count_with(&consumer, topic)
    }

    /// How many replicas each partition of the topic has (the most of any), or `None` if it
    /// does not exist.
    pub fn replication_factor(&self, topic: &str) -> Result<Option<usize>> {
        let consumer: BaseConsumer = self.client_config().create().map_err(kafka("metadata client"))?;
        self.with_topic_metadata(&consumer, topic, |t| {
            t.partitions().iter().map(|p| p.replicas().len()).max()
        })
    }

    /// The node id of the partition's leader, once one is elected (waits out a failover).
    pub fn leader(&self, topic: &str, partition: i32) -> Result<usize> {
        let consumer: BaseConsumer = self.client_config().create().map_err(kafka("metadata client"))?;
        let started = Instant::now();
        while started.elapsed() < OP_TIMEOUT {
            let metadata = consumer
                .fetch_metadata(Some(topic), OP_TIMEOUT)
                .map_err(kafka(format!("metadata of {topic}")))?;
            let leader = metadata
                .topics()
                .iter()
                .find(|t| t.name() == topic)
                .and_then(|t| t.partitions().iter().find(|p| p.id() == partition))
                .map(|p| p.leader());
            if let Some(id) = leader.and_then(|l| usize::try_from(l).ok()) {
                return Ok(id);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(Error::Timeout {
            what: format!("a leader of {topic}/{partition}"),
            seconds: OP_TIMEOUT.as_secs(),
        })
    }

    fn partition_count_with(&self, consumer: &BaseConsumer, topic: &str) -> Result<Option<i32>> {
        self.with_topic_metadata(consumer, topic, |t| {
            (!t.partitions().is_empty()).then(|| t.partitions().len() as i32)
        })
    }

    /// `read` of the topic's metadata, `None` where the cluster has no such topic.
    fn with_topic_metadata<T>(
        &self,
        consumer: &BaseConsumer,
        topic: &str,
        read: impl FnOnce(&rdkafka::metadata::MetadataTopic) -> Option<T>,
    ) -> Result<Option<T>> {
        let metadata = consumer
            .fetch_metadata(Some(topic), OP_TIMEOUT)
            .map_err(kafka(format!("metadata of {topic}")))?;
        Ok(metadata.topics().iter().find(|t| t.name() == topic && t.error().is_none()).and_then(read))
    }

    /// Sets the topic's configs to exactly `configs` (AlterConfigs: any other config set on the
    /// topic goes back to its default).
    pub fn set_topic_configs(&self, topic: &str, configs: &[(&str, &str)]) -> Result<()> {
        let admin = self.admin()?;
        let mut alter = rdkafka::admin::AlterConfig::new(ResourceSpecifier::Topic(topic));
        for (key, value) in configs {
            alter = alter.set(key, value);
        }
        let results = block_on(admin.alter_configs(&[alter], &AdminOptions::new()))
            .map_err(kafka(format!("altering configs of {topic}")))?;
        for result in results {
            if let Err((_, code)) = result {
                return Err(Error::Topic {
                    topic: topic.to_string(),
                    message: format!("alter configs failed: {code}"),
                });
            }
        }
        Ok(())
    }

    /// The topic's configs as the broker describes them (explicit and default).
    pub fn topic_configs(&self, topic: &str) -> Result<HashMap<String, String>> {
        let admin = self.admin()?;
        let results =
            block_on(admin.describe_configs([&ResourceSpecifier::Topic(topic)], &AdminOptions::new()))
                .map_err(kafka(format!("describing configs of {topic}")))?;
        let mut configs = HashMap::new();
        for result in results {
            let resource = result.map_err(|code| Error::Topic {
                topic: topic.to_string(),
                message: format!("describe configs failed: {code}"),
            })?;
            for entry in resource.entries {
                if let Some(value) = entry.value {
                    configs.insert(entry.name, value);
                }
            }
        }
        Ok(configs)
    }

    /// Produces records (non-transactionally) to one partition and waits until all are written.
    pub fn produce(&self, topic: &str, partition: i32, records: &[RecordData]) -> Result<()> {
        let producer: ThreadedProducer<DefaultProducerContext> = self
            .client_config()
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .create()
            .map_err(kafka("creating producer"))?;
        for record in records {
            send_with_retry(&producer, topic, partition, record)?;
        }
        producer.flush(OP_TIMEOUT).map_err(kafka(format!("flushing to {topic}")))?;
        Ok(())
    }

    /// Produces records to one partition inside a single transaction, committed or aborted.
    pub fn produce_transaction(
        &self,
        topic: &str,
        partition: i32,
        records: &[RecordData],
        commit: bool,
    ) -> Result<()> {
        let producer =
            self.transactional_producer(&format!("kmirror-test-{topic}-{partition}-{}", unique_suffix()))?;
        self.produce_in_transaction(&producer, topic, partition, records, commit)
    }

    /// A transactional producer, initialised, for tests that interleave transactions.
    pub fn transactional_producer(
        &self,
        transactional_id: &str,
    ) -> Result<ThreadedProducer<DefaultProducerContext>> {
        let producer: ThreadedProducer<DefaultProducerContext> = self
            .client_config()
            .set("transactional.id", transactional_id)
            .set("linger.ms", "5")
            .create()
            .map_err(kafka("creating transactional producer"))?;
        producer.init_transactions(OP_TIMEOUT).map_err(kafka("init_transactions"))?;
        Ok(producer)
    }

    pub fn produce_in_transaction(
        &self,
        producer: &ThreadedProducer<DefaultProducerContext>,
        topic: &str,
        partition: i32,
        records: &[RecordData],
        commit: bool,
    ) -> Result<()> {
        producer.begin_transaction().map_err(kafka("begin_transaction"))?;
        for record in records {
            send_with_retry(producer, topic, partition, record)?;
        }
        // Without a flush an abort purges unsent records and the log never holds them.
        producer.flush(OP_TIMEOUT).map_err(kafka(format!("flushing to {topic}")))?;
        if commit {
            producer.commit_transaction(OP_TIMEOUT).map_err(kafka("commit_transaction"))
        } else {
            producer.abort_transaction(OP_TIMEOUT).map_err(kafka("abort_transaction"))
        }
    }

    /// Begins a transaction on `producer` and writes `records` into the log, leaving it open:
    /// the caller commits or aborts it later.
    pub fn open_transaction(
        &self,
        producer: &ThreadedProducer<DefaultProducerContext>,
        topic: &str,
        partition: i32,
        records: &[RecordData],
    ) -> Result<()> {
        producer.begin_transaction().map_err(kafka("begin_transaction"))?;
        for record in records {
            send_with_retry(producer, topic, partition, record)?;
        }
        producer.flush(OP_TIMEOUT).map_err(kafka(format!("flushing to {topic}")))
    }

    /// Every record physically in the partition (aborted ones included), read uncommitted,
    /// up to the high watermark of the raw log.
    pub fn read_uncommitted(&self, topic: &str, partition: i32) -> Result<Vec<StoredRecord>> {
        let log = crate::raw_log::read_raw_log(self, topic, partition)?;
        let Some(last) = log.records.iter().filter(|r| !r.control).map(|r| r.offset).max() else {
            return Ok(Vec::new());
        };
        let consumer: BaseConsumer = self
            .client_config()
            .set("group.id", format!("kmirror-test-reader-{}", unique_suffix()))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_uncommitted")
            .create()
            .map_err(kafka("creating reader"))?;
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .map_err(kafka("assigning reader"))?;
        consumer.assign(&assignment).map_err(kafka("assigning reader"))?;
        let mut out = Vec::new();
        let started = Instant::now();
        loop {
            if started.elapsed() > OP_TIMEOUT {
                return Err(Error::Timeout {
                    what: format!("reading {topic}/{partition} up to offset {last}"),
                    seconds: OP_TIMEOUT.as_secs(),
                });
            }
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(message)) => {
                    let offset = message.offset();
                    out.push(StoredRecord { offset, data: record_data(&message) });
                    if offset >= last {
                        return Ok(out);
                    }
                }
                // A killed node of a 3-node cluster: librdkafka reports its lost connection
                // and reads on from the other nodes (the deadline above still holds).
                Some(Err(KafkaError::MessageConsumption(
                    RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown,
                ))) => {}
                Some(Err(e)) => {
                    return Err(Error::Kafka { context: format!("reading {topic}/{partition}"), source: e })
                }
                None => {}
            }
        }
    }
}

fn send_with_retry(
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    partition: i32,
    record: &RecordData,
) -> Result<()> {
    let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
    for (key, value) in &record.headers {
        headers = headers.insert(Header { key, value: value.as_deref() });
    }
    let mut base: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).partition(partition).headers(headers);
    if let Some(key) = &record.key {
        base = base.key(key.as_slice());
    }
    if let Some(value) = &record.value {
        base = base.payload(value.as_slice());
    }
    if let Some(ts) = record.timestamp {
        base = base.timestamp(ts);
    }
    loop {
        match producer.send(base) {
            Ok(()) => return Ok(()),
            Err((
                rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                back,
            )) => {
                base = back;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err((e, _)) => return Err(Error::Kafka { context: format!("producing to {topic}"), source: e }),
        }
    }
}

/// Copies a message's preserved fields out of librdkafka's buffers.
pub fn record_data(message: &BorrowedMessage<'_>) -> RecordData {
    RecordData::of(message)
}

/// A suffix that makes names unique within and across test processes.
pub fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{}-{}", std::process::id(), nanos, COUNTER.fetch_add(1, Ordering::Relaxed))
}
