//! Checkpoints: the committed positions of source consumer groups, written to a topic on the
//! target so they survive the loss of the source cluster.
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::groups::GroupSelector;
use kmirror_state::{codec, Checkpoint, TopicPartition};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use tracing::{debug, info, warn};

use crate::error::{Error, Result, Side};
use crate::kafka::client::CreateForRole;
use crate::kafka::groups::{committed_offsets_of_groups, list_groups};
use crate::kafka::incremental_alter::set_topic_configs;
use crate::kafka::topic_configs::topics_configs;
use crate::kafka::topic_reader::{read_to_end, Deleted};

/// Reads the matching source groups' positions on `partitions`; a group that cannot be read
/// (a hung source transaction holding its stable offsets, a refused ACL) is left out and its
/// error returned beside the others' checkpoints, so that it stops no other group's.
pub(crate) fn take_checkpoints(
    source: &ClientConfig,
    groups: &GroupSelector,
    partitions: &[TopicPartition],
) -> Result<(Vec<Checkpoint>, Option<Error>)> {
    let taken_at_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    let mut checkpoints = Vec::new();
    let mut failed = None;
    let listed = list_groups(source, Side::Source, |g| groups.is_match(g))?;
    let answers = committed_offsets_of_groups(source, Side::Source, &listed, partitions)?;
    for (group, answer) in listed.into_iter().zip(answers) {
        match answer {
            Ok(offsets) if offsets.is_empty() => {}
            Ok(offsets) => checkpoints.push(Checkpoint { group, taken_at_ms, offsets }),
            Err(e) => {
                warn!(%group, error = %e, "could not read the group's positions on the source; left out of this checkpoint");
                failed.get_or_insert(e);
            }
        }
    }
    Ok((checkpoints, failed))
}

/// The checkpoint topic's configs: compacted, since a group's last checkpoint is what counts,
/// but only records an hour old or more, so that of two written seconds apart (a running
/// mirror's cycle landing after a failover's last checkpoint) both stay while `keep_latest`
/// needs them; its segments roll hourly so that the cleaner gets to them.
pub(crate) const CHECKPOINT_TOPIC_CONFIGS: [(&str, &str); 3] =
    [("cleanup.policy", "compact"), ("min.compaction.lag.ms", "3600000"), ("segment.ms", "3600000")];

/// What earlier versions made the checkpoint topic with: every checkpoint kept for ever.
const KEPT_FOR_EVER: [(&str, &str); 2] = [("cleanup.policy", "delete"), ("retention.ms", "-1")];

/// Makes a checkpoint topic an earlier version made (see [`KEPT_FOR_EVER`]) compacted; one
/// whose configs were changed since is left as it is. Where the alter is refused, says so and
/// goes on: the topic only grows.
pub(crate) fn compact_checkpoint_topic(target: &ClientConfig, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = match target.create_for_role() {
        Ok(admin) => admin,
        Err(e) => return warn!(error = %e, topic, "could not check the checkpoint topic's configs"),
    };
    let timeout = Duration::from_secs(10);
    // Not asked of a mirror granted the least it needs (no DESCRIBE_CONFIGS on its own topics):
    // a topic it made itself is compacted already.
    let overrides = match topics_configs(&admin, &[topic], timeout).map(|mut all| all.remove(topic)) {
        Ok(Some(Ok(configs))) => configs.overrides,
        Ok(Some(Err(e))) | Err(e) => {
            return debug!(error = %e, topic, "could not check the checkpoint topic's configs")
        }
        Ok(None) => return,
    };
    let old: BTreeMap<String, String> =
        KEPT_FOR_EVER.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    if overrides != old {
        return;
    }
    let configs: Vec<(String, String)> =
        CHECKPOINT_TOPIC_CONFIGS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    match set_topic_configs(&admin, topic, &configs, timeout) {
        Ok(()) => info!(topic, "the checkpoint topic is compacted now (it kept every checkpoint)"),
        Err(e) => warn!(
            topic,
            error = %e.message,
            "could not make the checkpoint topic compacted: it grows with every checkpoint; set cleanup.policy=compact, min.compaction.lag.ms=3600000 and segment.ms=3600000 on it"
        ),
    }
}

/// Whose checkpoints are written: the key each is written under in the compacted topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writer {
    /// A mirror's cycle: keyed by group.
    Mirror,
    /// A failover's last checkpoint: keyed `failover/GROUP`, so that a mirror's cycle that read
    /// the source before the failover and wrote after it (group sync is not fenced) does not
    /// take its place when the topic is compacted (`keep_latest` picks by when each was taken).
    Failover,
}

/// The checkpoint producer's delivery reports: the checkpoints (by index) that did not land. A
/// producer's flush waits for every record's answer but fails on none: a checkpoint the target
/// refused (an ACL its topic lacks, a record past its size limit) was lost without a word, and a
/// failover found the group's older one, or none.
#[derive(Default)]
struct NotLanded {
    failed: Mutex<Vec<(usize, KafkaError)>>,
}

impl ClientContext for NotLanded {}

impl ProducerContext for NotLanded {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        if let Err((e, _)) = result {
            self.failed.lock().unwrap_or_else(|p| p.into_inner()).push((index, e.clone()));
        }
    }
}

/// A checkpoint of some groups' (thousands of partitions, long metadata) is larger than
/// librdkafka's 1 000 000-byte record limit: the producer takes records up to this, and sends
/// them compressed (lz4, where the user set no codec), which the target's 1 MB limit then counts.
const CHECKPOINT_MAX_BYTES: &str = "16777216";
/// A batch is as large as the smaller of the record limit and this: where the record limit is
/// raised, so many small checkpoints are not gathered into one batch past the target's 1 MB
/// limit (a `batch.size` given for the mirror's producers would otherwise be the bound).
const CHECKPOINT_BATCH_BYTES: &str = "1000000";

/// Writes checkpoints and waits until they are stored: the groups whose checkpoint the target
/// did not take, each with why (the others are stored).
pub(crate) fn write_checkpoints(
    target: &ClientConfig,
    topic: &str,
    checkpoints: &[Checkpoint],
    writer: Writer,
) -> Result<BTreeMap<String, Error>> {
    if checkpoints.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut config = target.clone();
    if config.get("message.max.bytes").is_none() {
        config.set("message.max.bytes", CHECKPOINT_MAX_BYTES).set("batch.size", CHECKPOINT_BATCH_BYTES);
    }
    // `compression.codec` is librdkafka's other name for it: either given is the user's choice.
    if config.get("compression.type").is_none() && config.get("compression.codec").is_none() {
        config.set("compression.type", "lz4");
    }
    let producer: ThreadedProducer<NotLanded> = config
        .set("enable.idempotence", "true")
        .create_for_role_with_context(NotLanded::default())
        .map_err(Error::kafka(Side::Target, "creating the checkpoint producer"))?;
    // An idempotent producer asks for its producer id through a broker whose connection is up;
    // with none up at that moment librdkafka asks again only on a 500 ms timer, and every
    // record waits for the id (a cycle's write of 200 checkpoints took 0.6-0.7 s). A second
    // metadata request waits for a named broker's connection (see the shards' producers).
    for _ in 0..2 {
        if producer.client().fetch_metadata(Some(topic), Duration::from_secs(2)).is_err() {
            break;
        }
    }
    let mut not_sent = Vec::new();
    for (index, checkpoint) in checkpoints.iter().enumerate() {
        let value =
            codec::encode(checkpoint).map_err(|e| Error::State(format!("encoding a checkpoint: {e}")))?;
        let key = match writer {
            Writer::Mirror => checkpoint.group.clone(),
            Writer::Failover => format!("failover/{}", checkpoint.group),
        };
        let record = BaseRecord::with_opaque_to(topic, index).partition(0).key(key.as_str()).payload(&value);
        if let Err((e, _)) = producer.send(record) {
            not_sent.push((index, e));
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .map_err(Error::kafka(Side::Target, format!("writing checkpoints to {topic}")))?;
    let failed = std::mem::take(&mut *producer.context().failed.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(not_sent
        .into_iter()
        .chain(failed)
        .filter_map(|(index, e)| {
            let group = &checkpoints.get(index)?.group;
            let context = format!("writing the checkpoint of group {group} to {topic}");
            warn!(%group, error = %e, "the group's checkpoint was not stored");
            Some((group.clone(), Error::from_kafka(Side::Target, context, e)))
        })
        .collect())
}

/// The latest checkpoint of every group, read from the target alone.
pub(crate) fn latest_checkpoints(
    target: &ClientConfig,
    topic: &str,
    reader_group: &str,
) -> Result<BTreeMap<String, Checkpoint>> {
    let mut latest = BTreeMap::new();
    read_to_end(target, topic, 0, reader_group, 0, Deleted::ReadFromStart, |offset, _, value| {
        let checkpoint: Checkpoint = codec::decode(value)
            .map_err(|e| Error::State(format!("{topic} offset {offset}: undecodable checkpoint: {e}")))?;
        keep_latest(&mut latest, checkpoint);
        Ok(())
    })?;
    Ok(latest)
}

/// Keeps the checkpoint taken last of each group, whatever the order they landed in: a running
/// mirror's cycle that read the source before `failover --execute` took its last checkpoint can
/// write after it (group sync is not fenced), and the failover must not then move the groups to
/// the older positions. Of two taken at the same millisecond, the later written.
fn keep_latest(latest: &mut BTreeMap<String, Checkpoint>, checkpoint: Checkpoint) {
    match latest.get(&checkpoint.group) {
        Some(kept) if kept.taken_at_ms > checkpoint.taken_at_ms => {}
        _ => {
            latest.insert(checkpoint.group.clone(), checkpoint);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmirror_state::GroupOffset;

    fn taken(group: &str, at: i64, offset: i64) -> Checkpoint {
        Checkpoint {
            group: group.into(),
            taken_at_ms: at,
            offsets: vec![GroupOffset {
                partition: TopicPartition::new("orders", 0),
                offset,
                metadata: String::new(),
            }],
        }
    }

    #[test]
    fn the_checkpoint_taken_last_wins_whatever_the_order_it_landed_in() {
        let mut latest = BTreeMap::new();
        // The failover's last checkpoint lands first, the running mirror's older one after it.
        keep_latest(&mut latest, taken("app", 2_000, 45));
        keep_latest(&mut latest, taken("app", 1_000, 30));
        keep_latest(&mut latest, taken("other", 1_500, 7));
        assert_eq!(latest["app"].offsets[0].offset, 45);
        assert_eq!(latest["other"].offsets[0].offset, 7);
        // Later taken, later landed: replaces; the same millisecond: the later written.
        keep_latest(&mut latest, taken("app", 3_000, 50));
        keep_latest(&mut latest, taken("app", 3_000, 52));
        assert_eq!(latest["app"].offsets[0].offset, 52);
    }
}
