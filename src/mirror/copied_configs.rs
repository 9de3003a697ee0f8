//! Which of a source topic's configs its copy on the target takes: all that were set on the
//! topic, but those that belong to the source cluster or to the time its records were written.
//! MirrorMaker 2 leaves out the same ones (its `config.properties.exclude` defaults), and the
//! two of them Kafka added since (the bounds that replaced `message.timestamp.difference.max.ms`);
//! and those a target of another Kafka release or vendor refuses.
use std::collections::BTreeMap;

use crate::kafka::topic_configs::TIMESTAMP_TYPE;

/// The `message.timestamp.type` under which a topic keeps its writers' timestamps.
pub(crate) const CREATE_TIME: &str = "CreateTime";

/// The configs left behind.
const LEFT_BEHIND: [&str; 11] = [
    // The copy carries the record timestamps the source's readers see (with LogAppendTime, the
    // source's append times): stamped again on the target, they would all change.
    TIMESTAMP_TYPE,
    // A copy's records are as old as the source's: bounds that held when they were written
    // refuse them now (every record of a backlog older than the bound).
    "message.timestamp.difference.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.after.max.ms",
    // Replication is the target cluster's own: the copy has the target's replication factor,
    // and a source's durability settings, sized for the source's, would set how many of the
    // target's replicas must be up for the mirror to write (Kafka caps min.insync.replicas at
    // the replication factor, so they never refuse every write, but a copy kept on fewer
    // replicas would stop at the first one lost).
    "min.insync.replicas",
    "unclean.leader.election.enable",
    // Lists of the source's broker ids.
    "leader.replication.throttled.replicas",
    "follower.replication.throttled.replicas",
    // Gone from Kafka 4.0 (KIP-724), which refuses a topic made with them ("Unknown topic config
    // name"), and of no effect on Kafka 3 clusters since 3.0: a topic of a cluster upgraded
    // from Kafka 2 often still carries them, and its copy to a Kafka 4 target was never made.
    "message.format.version",
    "message.downconversion.enable",
    // Tiered storage is the target cluster's own (a target without it refuses the topic), and
    // a copy written on the target keeps its records on the target's disks either way.
    "remote.storage.enable",
];

/// Prefixes of configs left behind: a vendor's broker's own (Confluent Server's, for one:
/// its placement constraints name the source's racks), which Apache Kafka refuses.
const LEFT_BEHIND_PREFIXES: [&str; 1] = ["confluent."];

/// What a copy is made with: `configs` (already [`copied`]), and create times, whatever the
/// target's brokers default to (`log.message.timestamp.type`): a copy keeps the source's record
/// timestamps, which a topic stamping append times would replace.
pub(crate) fn for_new_copy(mut configs: BTreeMap<String, String>) -> BTreeMap<String, String> {
    configs.insert(TIMESTAMP_TYPE.into(), CREATE_TIME.into());
    configs
}

/// `configs` without those left behind, and without those `excluded` names
/// (`--exclude-configs`).
pub(crate) fn copied(
    mut configs: BTreeMap<String, String>,
    excluded: Option<&regex::Regex>,
) -> BTreeMap<String, String> {
    configs.retain(|key, _| {
        !LEFT_BEHIND.contains(&key.as_str())
            && !LEFT_BEHIND_PREFIXES.iter().any(|p| key.starts_with(p))
            && !excluded.is_some_and(|e| e.is_match(key))
    });
    configs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_of_the_source_cluster_and_of_write_time_stay_behind() {
        let source: BTreeMap<String, String> = [
            ("retention.ms", "1000"),
            ("cleanup.policy", "compact"),
            ("message.timestamp.type", "LogAppendTime"),
            ("min.insync.replicas", "2"),
            ("leader.replication.throttled.replicas", "0:1"),
            ("message.format.version", "2.8-IV1"),
            ("confluent.placement.constraints", "{}"),
            ("remote.storage.enable", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let excluded = regex::Regex::new("^(?:retention\\..*)$").ok();
        assert_eq!(
            copied(source.clone(), excluded.as_ref()).keys().collect::<Vec<_>>(),
            vec!["cleanup.policy"]
        );
        let kept = copied(source, None);
        assert_eq!(kept.keys().collect::<Vec<_>>(), vec!["cleanup.policy", "retention.ms"]);
        let made = for_new_copy(kept);
        assert_eq!(made.get("message.timestamp.type").map(String::as_str), Some("CreateTime"));
    }
}
