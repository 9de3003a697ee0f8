//! Where a mirror stands, read from the clusters alone: the committed source positions held by
//! the shadow groups on the target, and the source ends. Used before a run starts (the total of
//! a batch, "nothing to do") and by `kmirror status`.
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use kmirror_state::TopicPartition;
use rdkafka::consumer::BaseConsumer;
use rdkafka::ClientConfig;

use crate::config::names::shadow_group;
use crate::config::names::shard_of;
use crate::error::{Error, Result, Side};
use crate::mirror::plan::Route;
use crate::mirror::shadow::read_committed_positions;

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
    // One group per shard, each behind its own coordinator lookup: ask them side by side.
    std::thread::scope(|scope| {
        let reads: Vec<_> = by_shard
            .into_iter()
            .map(|(shard, routes)| {
                scope.spawn(move || read_group(target, name, shards, shard, &routes, timeout))
            })
            .collect();
        let mut out = HashMap::new();
        for read in reads {
            let positions =
                read.join().map_err(|_| Error::State("reading a shadow group panicked".into()))??;
            out.extend(positions);
        }
        Ok(out)
    })
}

fn read_group(
    target: &ClientConfig,
    name: &str,
    shards: u32,
    shard: u32,
    routes: &[Route],
    timeout: Duration,
) -> Result<HashMap<TopicPartition, Option<i64>>> {
    let group = shadow_group(name, shard);
    let client: BaseConsumer = target
        .clone()
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .map_err(Error::kafka(Side::Target, format!("creating a reader of group {group}")))?;
    read_committed_positions(&client, routes, name, shards, timeout)
}
