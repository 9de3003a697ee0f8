//! Brings the local RocksDB map up to date from the map topic on the target, from the position
//! it already holds. The topic is the truth; the store is a cache of it.
use std::time::Duration;

use kmirror_state::{MapRecord, MapStore, StateError};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use tracing::{debug, warn};

use crate::error::{Error, Result, Side};
use crate::kafka::client::CreateForRole;
use crate::kafka::topic_descriptions::topic_ids;
use crate::kafka::topic_reader::{read_to_ends, Deleted};
use crate::state_dir::ensure_room;

/// How many map records are applied between two checks of the state dir's room (a record
/// takes well under a KiB there).
const ROOM_CHECK_EVERY: usize = 4096;

fn state_error(cause: StateError) -> Error {
    Error::Map { context: "the local copy".into(), cause }
}

/// Applies every map record from the store's positions to the end of each of the map topic's
/// `partitions` (one per shard). Returns how many were applied.
pub(crate) fn catch_up(
    store: &MapStore,
    target: &ClientConfig,
    topic: &str,
    partitions: i32,
    group: &str,
) -> Result<usize> {
    let mut applied = 0;
    let state_dir = store.path().parent().unwrap_or(store.path()).to_path_buf();
    ensure_room(&state_dir)?;
    let starts: Vec<(i32, i64)> = (0..partitions)
        .map(|p| store.position(p).map(|at| (p, at)))
        .collect::<std::result::Result<_, _>>()
        .map_err(state_error)?;
    let reached =
        read_to_ends(target, (topic, group), &starts, Deleted::Refuse, |partition, offset, _, value| {
            let record = MapRecord::decode(value).map_err(|e| {
                Error::State(format!(
                    "{topic} partition {partition} offset {offset}: undecodable map record: {e}"
                ))
            })?;
            store.apply(partition, offset, &record).map_err(state_error)?;
            applied += 1;
            if applied % ROOM_CHECK_EVERY == 0 {
                ensure_room(&state_dir)?;
            }
            Ok(())
        })?;
    for (partition, position) in reached {
        // Control markers at the end advance the position without a record to apply.
        if position > store.position(partition).map_err(state_error)? {
            store.set_position(partition, position).map_err(state_error)?;
        }
        debug!(topic, partition, position, "offset map partition caught up");
    }
    Ok(applied)
}

/// Empties the store if it was filled from another map topic than the target's `topic` now:
/// the topic made again (its mirror's topics deleted to copy anew), or a state dir used before
/// with the same mirror name against another target. Its runs would answer for copies that are
/// not there, and, its positions being past the new topic's end, nothing would replace them.
/// Whether the check was made (false: the cluster gave no ID, to be asked again next time).
pub(crate) fn same_topic_or_cleared(store: &MapStore, target: &ClientConfig, topic: &str) -> Result<bool> {
    let client: BaseConsumer =
        target.create_for_role().map_err(Error::kafka(Side::Target, "creating a client"))?;
    // A cluster that gives no ID (or no answer here) leaves the store as it is: the reads after
    // this one fail on their own where the cluster does not answer.
    let Some(id) =
        topic_ids(client.client(), &[topic], ID_TIMEOUT).ok().and_then(|mut ids| ids.remove(topic))
    else {
        return Ok(false);
    };
    match store.map_topic_id().map_err(state_error)? {
        Some(known) if known == id => return Ok(true),
        Some(known) => {
            warn!(topic, was = %known, now = %id, "the map topic was made again since the local copy was filled (or the state dir served another target): filling it again from the start");
            store.clear().map_err(state_error)?;
        }
        None => {}
    }
    store.set_map_topic_id(&id).map_err(state_error)?;
    Ok(true)
}

const ID_TIMEOUT: Duration = Duration::from_secs(10);
