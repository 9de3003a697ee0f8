//! Which partitions a mirror mirrors, as the target holds them: those with copies in its map,
//! and those it has a position in without any (a topic still empty, or whose every record a
//! transform dropped, has no run in the map, yet its copy is the mirror's all the same), and
//! those a failover recorded so (see [`crate::cmd::uncopied_at_failover`]).
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use kmirror_state::TopicPartition;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use crate::cmd::uncopied_at_failover::{self, MirroredPosition};
use crate::config::names::shard_of;
use crate::error::{Error, Result, Side};
use crate::kafka::client::CreateForRole;
use crate::kafka::group_offsets::Unstable;
use crate::kafka::topic_descriptions::topic_ids;
use crate::mirror::positions::every_groups_offsets;
use crate::mirror::shadow::CommitMetadata;
use crate::translate::translator::Translator;

/// The IDs of `topics` on the cluster of `config` (DescribeTopics), for failover's record of the
/// DR topics and failback's check against it; a topic the cluster gives no ID for is left out.
pub(crate) fn topic_ids_on(
    config: &ClientConfig,
    side: Side,
    topics: &BTreeSet<&str>,
    timeout: Duration,
) -> Result<HashMap<String, String>> {
    let client: BaseConsumer = config.create_for_role().map_err(Error::kafka(side, "creating a client"))?;
    topic_ids(client.client(), &topics.iter().copied().collect::<Vec<_>>(), timeout).map_err(|why| {
        Error::Unreachable {
            side,
            bootstrap: config.get("bootstrap.servers").unwrap_or_default().to_string(),
            message: format!("describing the topics for their IDs: {why}"),
        }
    })
}

/// (source partition, target partition) of every partition mirror `name` mirrors, in order.
pub(crate) fn mirrored_pairs(
    translator: &Translator,
    target: &ClientConfig,
    name: &str,
) -> Result<Vec<(TopicPartition, TopicPartition)>> {
    // Where the shadow groups' offsets expired (a mirror stopped longer than the target keeps
    // them), the last failover's record still names them.
    // The shard count is a metadata request: asked once.
    let shards = translator.shards()?;
    let recorded = uncopied_at_failover::read(target, name, shards)?;
    mirrored_pairs_with(translator, target, (name, shards), &recorded)
}

/// As [`mirrored_pairs`], with the last failover's record of partitions without copies as read
/// already (see [`uncopied_at_failover::read_all`]), and its shard count.
pub(crate) fn mirrored_pairs_with(
    translator: &Translator,
    target: &ClientConfig,
    (name, shards): (&str, u32),
    recorded: &[MirroredPosition],
) -> Result<Vec<(TopicPartition, TopicPartition)>> {
    let mut pairs = BTreeSet::new();
    for source in translator.source_partitions()? {
        if let Some(copy) = translator.target_of(&source)? {
            pairs.insert((source, copy));
        }
    }
    let copied: BTreeSet<TopicPartition> = pairs.iter().map(|(_, copy)| copy.clone()).collect();
    let positioned = positioned(target, name, shards)?.into_iter().map(|u| (u.source(), u.target()));
    for (source, copy) in positioned.chain(recorded.iter().map(|u| (u.source(), u.target()))) {
        if !copied.contains(&copy) {
            pairs.insert((source, copy));
        }
    }
    Ok(pairs.into_iter().collect())
}

/// Per shard, the partitions mirror `name` has a position in and no copies of, with that
/// position: for a failover to record (see [`crate::cmd::uncopied_at_failover`]).
pub(crate) fn uncopied_positions(
    translator: &Translator,
    target: &ClientConfig,
    name: &str,
) -> Result<BTreeMap<u32, Vec<MirroredPosition>>> {
    let shards = translator.shards()?;
    let mut by_shard: BTreeMap<u32, Vec<MirroredPosition>> = BTreeMap::new();
    for u in positioned(target, name, shards)? {
        if translator.target_of(&u.source())?.is_none() {
            by_shard.entry(shard_of(&u.source_topic, u.partition, shards)).or_default().push(u);
        }
    }
    Ok(by_shard)
}

/// Every partition mirror `name` has a position in, and the position: its shadow groups hold
/// one from its first run on (until Kafka expires the offsets of a mirror stopped longer than the
/// target's `offsets.retention.minutes`).
fn positioned(target: &ClientConfig, name: &str, shards: u32) -> Result<Vec<MirroredPosition>> {
    let client: BaseConsumer =
        target.create_for_role().map_err(Error::kafka(Side::Target, "creating a client"))?;
    // Which partitions have positions, beside a running mirror too: no wait for its commits.
    let every = every_groups_offsets(
        Consumer::client(&client),
        name,
        shards,
        Unstable::Settled,
        Duration::from_secs(30),
    )?;
    let mut positioned = Vec::new();
    for (shard, committed) in every {
        for c in committed {
            let Some(position) = c.offset.filter(|&o| o >= 0) else { continue };
            let Some(meta) = CommitMetadata::decode(&c.metadata) else { continue };
            // A position in another shard's group was written for another source topic.
            if shard_of(&meta.source_topic, c.partition, shards) == shard {
                positioned.push(MirroredPosition {
                    source_topic: meta.source_topic,
                    target_topic: c.topic,
                    partition: c.partition,
                    position,
                });
            }
        }
    }
    Ok(positioned)
}
