//! Where a mirror stands, read from the clusters alone: the committed source positions held by
//! the shadow groups on the target (or, where a group lost one to offset expiry, the map
//! topic), and the source ends. Used before a run starts (the total of a batch, "nothing to
//! do") and by `kmirror status`.
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use kmirror_state::TopicPartition;
use rdkafka::client::{Client, ClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use crate::config::names::shard_of;
use crate::config::names::{group_reader, shadow_group};
use crate::error::{Error, Result, Side};
use crate::kafka::client::CreateForRole;
use crate::kafka::consumer_close::close;
use crate::kafka::group_offsets::{committed_offsets, CommittedOffset, GroupQuery, Unstable};
use crate::mirror::map_positions::positions_from_map;
use crate::mirror::plan::Route;
use crate::mirror::shadow::{positions_of, SavedPosition};

/// The committed position of every route (None: never committed), from each shard's group: for
/// `status`, what the last finished commit left (a transaction still open is not waited for).
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
    let client: BaseConsumer = target
        .clone()
        .set("group.id", group_reader(name))
        .create_for_role()
        .map_err(Error::kafka(Side::Target, "creating a reader of the shadow groups"))?;
    let groups = read_groups(Consumer::client(&client), name, shards, by_shard, Unstable::Settled, timeout);
    close(client);
    let mut out = HashMap::new();
    for (shard, positions) in groups? {
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

/// Every offset each shard's group holds, by shard.
pub(crate) type EveryGroup = Vec<(u32, Vec<CommittedOffset>)>;

/// Every offset each shard's group holds, by shard, asked side by side: what the run's start
/// needs before it knows which partitions it mirrors (see [`positions_in_every_group`]). For the
/// start (`Unstable::Report`), a group with a transaction still committing to it (an earlier
/// run that was killed) is an error at once: only fencing ends that transaction, and the shards
/// fence and read their groups themselves. A reader beside a running mirror, which asks only
/// which partitions have positions, takes what the last finished commit left (`Settled`).
pub(crate) fn every_groups_offsets<C: ClientContext>(
    target: &Client<C>,
    name: &str,
    shards: u32,
    unstable: Unstable,
    timeout: Duration,
) -> Result<EveryGroup> {
    let groups: Vec<(u32, String)> = (0..shards).map(|shard| (shard, shadow_group(name, shard))).collect();
    let queries: Vec<GroupQuery<'_>> = groups
        .iter()
        .map(|(_, group)| GroupQuery { group, partitions: None, skip_failed_partitions: false })
        .collect();
    let answers = committed_offsets(target, &queries, unstable, timeout);
    groups
        .into_iter()
        .zip(answers)
        .map(|((shard, group), answer)| {
            Ok((shard, answer.map_err(|not_read| not_read.into_error(Side::Target, &group))?))
        })
        .collect()
}

/// What every shard's group holds for every route's target partition, by shard. A position in
/// a group other than the route's own shard was written for another source topic (a changed
/// `--rename`), since a partition's shard never changes.
pub(crate) fn positions_in_every_group(
    every: &EveryGroup,
    name: &str,
    shards: u32,
    routes: &[Route],
) -> Result<Vec<(u32, GroupPositions)>> {
    every
        .iter()
        .map(|(shard, committed)| Ok((*shard, group_positions(routes, name, shards, committed)?)))
        .collect()
}

/// `routes`' positions in a group that holds `committed`.
fn group_positions(
    routes: &[Route],
    name: &str,
    shards: u32,
    committed: &[CommittedOffset],
) -> Result<GroupPositions> {
    let entries =
        committed.iter().map(|c| (TopicPartition::new(&c.topic, c.partition), c.offset, c.metadata.clone()));
    positions_of(routes, name, shards, entries)
}

/// One shadow group's positions by source partition (None: never committed).
pub(crate) type GroupPositions = HashMap<TopicPartition, Option<SavedPosition>>;

/// Every shard's group asked side by side on one connected client (the admin API reads any
/// group; a consumer per group was a connection, a coordinator lookup and a close each).
fn read_groups<C: ClientContext>(
    client: &Client<C>,
    name: &str,
    shards: u32,
    by_shard: BTreeMap<u32, Vec<Route>>,
    unstable: Unstable,
    timeout: Duration,
) -> Result<Vec<(u32, GroupPositions)>> {
    let asked: Vec<GroupRead> = by_shard
        .into_iter()
        .map(|(shard, routes)| GroupRead {
            shard,
            group: shadow_group(name, shard),
            partitions: routes.iter().map(|r| (r.target.topic.clone(), r.target.partition)).collect(),
            routes,
        })
        .collect();
    let queries: Vec<GroupQuery<'_>> = asked
        .iter()
        .map(|a| GroupQuery {
            group: &a.group,
            partitions: Some(&a.partitions),
            skip_failed_partitions: false,
        })
        .collect();
    let answers = committed_offsets(client, &queries, unstable, timeout);
    asked
        .iter()
        .zip(answers)
        .map(|(a, answer)| {
            let committed = answer.map_err(|not_read| not_read.into_error(Side::Target, &a.group))?;
            Ok((a.shard, group_positions(&a.routes, name, shards, &committed)?))
        })
        .collect()
}

/// One shard's group and what is asked of it.
struct GroupRead {
    shard: u32,
    group: String,
    partitions: Vec<(String, i32)>,
    routes: Vec<Route>,
}
