//! Which of a source topic's configs its copy on the target takes: all that were set on the
//! topic, but those that belong to the source cluster or to the time its records were written.
//! MirrorMaker 2 leaves out the same ones (its `config.properties.exclude` defaults), and the
//! two of them Kafka added since (the bounds that replaced `message.timestamp.difference.max.ms`).
use std::collections::BTreeMap;

/// The configs left behind.
const LEFT_BEHIND: [&str; 8] = [
    // The copy carries the record timestamps the source's readers see (with LogAppendTime, the
    // source's append times): stamped again on the target, they would all change.
    "message.timestamp.type",
    // A copy's records are as old as the source's: bounds that held when they were written
    // refuse them now (every record of a backlog older than the bound).
    "message.timestamp.difference.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.after.max.ms",
    // Replication is the target cluster's own: more in-sync replicas than the copy has would
    // refuse every write to it.
    "min.insync.replicas",
    "unclean.leader.election.enable",
    // Lists of the source's broker ids.
    "leader.replication.throttled.replicas",
    "follower.replication.throttled.replicas",
];

/// `configs` without those left behind.
pub(crate) fn copied(mut configs: BTreeMap<String, String>) -> BTreeMap<String, String> {
    configs.retain(|key, _| !LEFT_BEHIND.contains(&key.as_str()));
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
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let kept: Vec<String> = copied(source).into_keys().collect();
        assert_eq!(kept, vec!["cleanup.policy".to_string(), "retention.ms".to_string()]);
    }
}
