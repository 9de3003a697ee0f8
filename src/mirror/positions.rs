//! Where a mirror stands, read from the clusters alone: the committed source positions held by
//! the shadow groups on the target (or, where a group lost one to offset expiry, the map
//! topic), and the source ends. Used before a run starts (the total of a batch, "nothing to
//! do") and by `kmirror status`.
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use kmirror_state::TopicPartition;
use rdkafka::consumer::BaseConsumer;
use rdkafka::ClientConfig;

use crate::config::names::shadow_group;
use crate::config::names::shard_of;
use crate::error::{Error, Result, Side};
use crate::kafka::client::CreateForRole;
use crate::kafka::consumer_close::close;
use crate::mirror::map_positions::positions_from_map;
use crate::mirror::plan::Route;
use crate::mirror::shadow::{read_committed_positions, SavedPosition};

/// The committed position of every route (None: never committed), from each shard's group.
pub(crate) fn committed_positions(
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
    let routes_of = by_shard.clone();
    let mut out = HashMap::new();
    for (shard, positions) in read_groups(target, name, shards, by_shard, timeout)? {
        // A position the group lost to offset expiry is still in the map topic.
        let lost: Vec<Route> = routes_of[&shard]
            .iter()
            .filter(|r| positions.get(&r.source).is_none_or(|p| p.is_none()))
            .cloned()
            .collect();
        let rebuilt = positions_from_map(target, name, shard, &lost)?;
        out.extend(positions.into_iter().map(|(tp, p)| (tp, p.map(|p| p.offset))));
        out.extend(rebuilt.into_iter().map(|(tp, end)| (tp, Some(end.source))));
    }
    Ok(out)
}

/// What every shard's group holds for every route's target partition, by shard. A position in
/// a group other than the route's own shard was written for another source topic (a changed
/// `--rename`), since a partition's shard never changes.
pub(crate) fn positions_in_every_group(
    target: &ClientConfig,
    name: &str,
    shards: u32,
    routes: &[Route],
    timeout: Duration,
) -> Result<Vec<(u32, GroupPositions)>> {
    let by_shard = (0..shards).map(|shard| (shard, routes.to_vec())).collect();
    read_groups(target, name, shards, by_shard, timeout)
}

/// One shadow group's positions by source partition (None: never committed).
pub(crate) type GroupPositions = HashMap<TopicPartition, Option<SavedPosition>>;

/// One group per shard, each behind its own coordinator lookup: asked side by side.
fn read_groups(
    target: &ClientConfig,
    name: &str,
    shards: u32,
    by_shard: BTreeMap<u32, Vec<Route>>,
    timeout: Duration,
) -> Result<Vec<(u32, GroupPositions)>> {
    std::thread::scope(|scope| {
        let reads: Vec<_> = by_shard
            .into_iter()
            .map(|(shard, routes)| {
                scope.spawn(move || {
                    read_group(target, name, shards, shard, &routes, timeout).map(|p| (shard, p))
                })
            })
            .collect();
        let mut out = Vec::new();
        for read in reads {
            out.push(read.join().map_err(|_| Error::Internal("reading a shadow group panicked".into()))??);
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
) -> Result<GroupPositions> {
    let group = shadow_group(name, shard);
    let client: BaseConsumer = target
        .clone()
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create_for_role()
        .map_err(Error::kafka(Side::Target, format!("creating a reader of group {group}")))?;
    let positions = read_committed_positions(&client, routes, name, shards, timeout);
    close(client);
    positions
}
