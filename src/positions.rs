//! Where a mirror stands, read from the clusters alone: the committed source positions held by
//! the shadow groups on the target, and the source ends. Used before a run starts (the total of
//! a batch, "nothing to do") and by `kmirror status`.
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use kmirror_state::TopicPartition;
use rdkafka::consumer::BaseConsumer;
use rdkafka::ClientConfig;

use crate::config::shadow_group;
use crate::error::{Error, Result, Side};
use crate::plan::{shard_of, Route};
use crate::shadow::read_committed_positions;

/// The committed position of every route (None: never committed), from each shard's group.
pub fn committed_positions(
    target: &ClientConfig,
    name: &str,
    shards: u32,
    routes: &[Route],
    timeout: Duration,
) -> Result<HashMap<TopicPartition, Option<i64>>> {
    let mut by_shard: BTreeMap<u32, Vec<Route>> = BTreeMap::new();
    for route in routes {
        by_shard
            .entry(shard_of(&route.source.topic, route.source.partition, shards))
            .or_default()
            .push(route.clone());
    }
    let mut out = HashMap::new();
    for (shard, routes) in by_shard {
        let group = shadow_group(name, shard);
        let client: BaseConsumer = target
            .clone()
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .map_err(Error::kafka(Side::Target, format!("creating a reader of group {group}")))?;
        out.extend(read_committed_positions(&client, &routes, name, shards, timeout)?);
    }
    Ok(out)
}
