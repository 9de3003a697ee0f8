//! A commit's positions in parts Kafka takes.
//!
//! Kafka writes one offset commit (a consumer's, a transaction's TxnOffsetCommit, an admin's
//! AlterConsumerGroupOffsets) as one batch into `__consumer_offsets`, and refuses it past that
//! topic's record limit (1 MB by default; Kafka 4's group coordinator answers
//! UNKNOWN_SERVER_ERROR, "Unknown broker error"): a group or a shard over thousands of partitions,
//! or with long commit metadata, commits in parts under it. A transaction's parts commit
//! together. A group's parts outside one do not: a group refused part-way (a member joined, its
//! coordinator moved) may be partly moved, each part forward-only positions of an idle group,
//! and the next cycle or run moves the rest.

/// At most this much of a commit's batch per part: half of Kafka's default limit, for the
/// estimate below and for a `__consumer_offsets` whose limit was lowered.
pub(crate) const PART_BYTES: usize = 512 * 1024;

/// What a position adds to the batch besides its names and metadata: the record's framing, the
/// key's and value's versions and lengths, the offset, the leader epoch and the timestamps
/// (some 46 bytes; twice that, for what a later record version adds).
const POSITION_OVERHEAD: usize = 96;

/// The bytes a position of `group` in `topic` with `metadata` takes in the batch, about.
pub(crate) fn position_bytes(group: &str, topic: &str, metadata: &str) -> usize {
    POSITION_OVERHEAD + group.len() + topic.len() + metadata.len()
}

/// `items` in consecutive parts of at most [`PART_BYTES`] each by `bytes` (an item alone past it
/// is a part of its own, for the broker to judge); one empty part for no items.
pub(crate) fn in_parts<T>(items: &[T], bytes: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut parts = Vec::new();
    let (mut start, mut total) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let size = bytes(item);
        if i > start && total + size > PART_BYTES {
            parts.push(&items[start..i]);
            (start, total) = (i, 0);
        }
        total += size;
    }
    parts.push(&items[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_past_the_limit_go_in_parts_under_it_in_order() {
        let each = position_bytes("wide", "orders", &"m".repeat(4_000));
        let items: Vec<usize> = (0..260).collect();
        let parts = in_parts(&items, |_| each);
        assert!(parts.len() > 1, "{} parts", parts.len());
        assert!(
            parts.iter().all(|p| p.len() * each <= PART_BYTES),
            "{:?}",
            parts.iter().map(|p| p.len()).collect::<Vec<_>>()
        );
        assert_eq!(parts.concat(), items);
    }

    #[test]
    fn items_under_the_limit_are_one_part_and_none_one_empty_part() {
        let items: Vec<usize> = (0..1_000).collect();
        assert_eq!(in_parts(&items, |_| position_bytes("g", "orders", "")), vec![&items[..]]);
        assert_eq!(in_parts(&[] as &[usize], |_| 1), vec![&[] as &[usize]]);
        assert_eq!(in_parts(&[1, 2], |_| PART_BYTES + 1).len(), 2, "an item past the limit alone");
    }
}
