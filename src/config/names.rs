//! Every name kmirror gives a topic, group or transactional id on the clusters, and the shard a
//! partition belongs to. All of them are stored state of existing mirrors: changing one orphans
//! a running mirror's positions, map or fencing, so they only ever gain new entries.

/// The prefix of every topic and group kmirror owns; never mirrored unless asked for by name.
pub(crate) const OWN_PREFIX: &str = "kmirror.";

/// The target topic holding the offset map (runs of every committed transaction).
pub(crate) fn map_topic(name: &str) -> String {
    format!("kmirror.offset-map.{name}")
}

/// The target topic holding checkpoints of source consumer groups.
pub(crate) fn checkpoint_topic(name: &str) -> String {
    format!("kmirror.checkpoints.{name}")
}

/// The topic whose partition K stands for shard K: the coordination group's subscription and
/// the owners log.
pub(crate) fn shards_topic(name: &str) -> String {
    format!("kmirror.shards.{name}")
}

/// Shard `shard`'s transactional id on the target.
pub(crate) fn transactional_id(name: &str, shard: u32) -> String {
    format!("kmirror.{name}.{shard}")
}

/// Both transactional ids of shard `shard`: its transactions alternate between two producers,
/// one committing while the other fills. The second id ends in `.b`, which no first id does (a
/// shard is a number), so no two mirrors' ids meet.
pub(crate) fn transactional_ids(name: &str, shard: u32) -> Vec<String> {
    vec![transactional_id(name, shard), format!("kmirror.{name}.{shard}.b")]
}

/// The group id of mirror `name`'s clients that read its shadow groups' positions (through the
/// admin API); never joined and never committed to, and under the mirror's own prefix, as its
/// shadow groups are (an ACL on `kmirror.NAME.` covers it). librdkafka (2.12) answers such a
/// read that met a moving coordinator by telling the asking client's own group to look for its
/// coordinator again, which a client without a group id does not have: kmirror crashed there on
/// a new target (librdkafka issue 5040, open).
pub(crate) fn group_reader(name: &str) -> String {
    format!("kmirror.{name}.group-reader")
}

/// The mirror that runs the other way after a failover of mirror `name` (`kmirror failback`).
pub(crate) fn back_mirror(name: &str) -> String {
    format!("{name}-back")
}

/// Committed on the source by `kmirror failback --execute` once every start position of the way
/// home (mirror `back`) is committed: its starts go into one shadow group per shard, one commit
/// each, and a failback stopped between them leaves some partitions without one, which the way
/// home would copy from their first record.
pub(crate) fn failback_starts_group(back: &str) -> String {
    format!("kmirror.{back}.failback-starts")
}

/// One shadow group per shard, so that only that shard's producer ever has a transaction open
/// on it: a shard's restart then never waits on (or, on a broker that answers a require-stable
/// OffsetFetch with the offsets from before an open transaction, reads past) another shard's
/// transaction, and a shard's position is whatever its own last commit left.
pub(crate) fn shadow_group(name: &str, shard: u32) -> String {
    format!("kmirror.{name}.shard-{shard}")
}

/// The group the processes of a coordinated mirror share its shards through.
pub(crate) fn coordinator_group(name: &str) -> String {
    format!("kmirror.{name}.coordinator")
}

/// The source consumers' group id: never joined or committed to (partitions are assigned), but
/// librdkafka needs one, and brokers' logs and ACLs then name the mirror.
pub(crate) fn source_reader_group(name: &str) -> String {
    format!("kmirror.{name}.source-reader")
}

/// Readers of kmirror's own topics (never committing): the map, the checkpoints, status.
pub(crate) fn map_reader_group(name: &str) -> String {
    format!("kmirror.{name}.map-reader")
}

pub(crate) fn checkpoint_reader_group(name: &str) -> String {
    format!("kmirror.{name}.checkpoint-reader")
}

pub(crate) fn status_reader_group(name: &str) -> String {
    format!("kmirror.{name}.status")
}

/// `kmirror verify`'s readers of both clusters (never committing).
pub(crate) fn verify_reader_group(name: &str) -> String {
    format!("kmirror.{name}.verify")
}

/// The clients that watch both clusters' topic IDs while a mirror runs (never committing).
pub(crate) fn topic_id_reader_group(name: &str) -> String {
    format!("kmirror.{name}.topic-ids")
}

/// The shard a partition belongs to. Stable across versions and platforms (FNV-1a, not std's
/// hasher), because a partition moving shard would hand it to another transactional id.
/// Partitions of one topic land on consecutive shards so they spread evenly.
pub(crate) fn shard_of(topic: &str, partition: i32, shards: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in topic.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    ((hash.wrapping_add(partition as u64)) % u64::from(shards)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_existing_mirrors_never_change() {
        assert_eq!(map_topic("dr"), "kmirror.offset-map.dr");
        assert_eq!(checkpoint_topic("dr"), "kmirror.checkpoints.dr");
        assert_eq!(shards_topic("dr"), "kmirror.shards.dr");
        assert_eq!(transactional_id("dr", 3), "kmirror.dr.3");
        assert_eq!(transactional_ids("dr", 3), ["kmirror.dr.3", "kmirror.dr.3.b"]);
        assert_eq!(shadow_group("dr", 3), "kmirror.dr.shard-3");
        assert_eq!(coordinator_group("dr"), "kmirror.dr.coordinator");
        assert_eq!(failback_starts_group("dr-back"), "kmirror.dr-back.failback-starts");
        for n in [map_topic("x"), shadow_group("x", 0), coordinator_group("x"), failback_starts_group("x")] {
            assert!(n.starts_with(OWN_PREFIX));
        }
    }

    #[test]
    fn shard_placement_is_stable() {
        // Pinned values: a change here moves partitions of existing mirrors between shards.
        assert_eq!((0..5).map(|p| shard_of("orders", p, 4)).collect::<Vec<_>>(), [0, 1, 2, 3, 0]);
        assert_eq!(shard_of("orders", 0, 7), 4);
        assert_eq!(shard_of("orders", 0, 1), 0);
    }
}
