//! Brings the local RocksDB map up to date from the map topic on the target, from the position
//! it already holds. The topic is the truth; the store is a cache of it.
use kmirror_state::{MapRecord, MapStore, StateError};
use rdkafka::ClientConfig;
use tracing::debug;

use crate::error::{Error, Result};
use crate::kafka::topic_reader::read_to_end;
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
    for partition in 0..partitions {
        let start = store.position(partition).map_err(state_error)?;
        let position = read_to_end(target, topic, partition, group, start, |offset, _, value| {
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
        // Control markers at the end advance the position without a record to apply.
        if position > store.position(partition).map_err(state_error)? {
            store.set_position(partition, position).map_err(state_error)?;
        }
        debug!(topic, partition, position, "offset map partition caught up");
    }
    Ok(applied)
}
