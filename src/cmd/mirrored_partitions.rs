//! Which partitions a mirror mirrors, as the target holds them: those with copies in its map,
//! and those it has a position in without any (a topic still empty, or whose every record a
//! transform dropped, has no run in the map, yet its copy is the mirror's all the same).
use std::collections::BTreeSet;
use std::time::Duration;

use kmirror_state::TopicPartition;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use crate::config::names::shard_of;
use crate::error::{Error, Result, Side};
use crate::kafka::client::CreateForRole;
use crate::kafka::group_offsets::Unstable;
use crate::mirror::positions::every_groups_offsets;
use crate::mirror::shadow::CommitMetadata;
use crate::translate::translator::Translator;

/// (source partition, target partition) of every partition mirror `name` mirrors, in order.
pub(crate) fn mirrored_pairs(
    translator: &Translator,
    target: &ClientConfig,
    name: &str,
) -> Result<Vec<(TopicPartition, TopicPartition)>> {
    let mut pairs = BTreeSet::new();
    for source in translator.source_partitions()? {
        if let Some(copy) = translator.target_of(&source)? {
            pairs.insert((source, copy));
        }
    }
    let copied: BTreeSet<TopicPartition> = pairs.iter().map(|(_, copy)| copy.clone()).collect();
    for (source, copy) in positioned_pairs(translator, target, name)? {
        if !copied.contains(&copy) {
            pairs.insert((source, copy));
        }
    }
    Ok(pairs.into_iter().collect())
}

/// (source partition, target partition) of every partition mirror `name` has a position in:
/// its shadow groups hold one from its first run on (until Kafka expires the offsets of a
/// mirror stopped longer than the target's `offsets.retention.minutes`).
fn positioned_pairs(
    translator: &Translator,
    target: &ClientConfig,
    name: &str,
) -> Result<Vec<(TopicPartition, TopicPartition)>> {
    let shards = translator.shards()?;
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
    let mut pairs = Vec::new();
    for (shard, committed) in every {
        for c in committed.into_iter().filter(|c| c.offset.is_some_and(|o| o >= 0)) {
            let Some(meta) = CommitMetadata::decode(&c.metadata) else { continue };
            // A position in another shard's group was written for another source topic.
            if shard_of(&meta.source_topic, c.partition, shards) == shard {
                pairs.push((
                    TopicPartition::new(&meta.source_topic, c.partition),
                    TopicPartition::new(&c.topic, c.partition),
                ));
            }
        }
    }
    Ok(pairs)
}
