//! Mirrors between Apache Kafka releases: from a Kafka 3 cluster (3.9, the last of Kafka 3,
//! KRaft) to the harness's Kafka 4, as in a migration off an old cluster, and back. Kafka 3.9
//! keeps transactions and groups as Kafka 3 had them: no transaction protocol version 2 (which
//! the harness's Kafka 4.1 finalizes) and no consumer protocol of KIP-848 unless enabled, so
//! group members are known only through the classic DescribeGroups there.

use std::collections::BTreeMap;

use crate::common::*;
use kmirror_testcontainers::{
    unique_suffix, Backend, KafkaCluster, KafkaSpec, RecordData, Role, StoredRecord, OLDER_KAFKA_VERSION,
};

const PARTITIONS: i32 = 3;

/// A Kafka 3.9 cluster of one node (`scripts/setup.sh` installs its jars), or `None` where the
/// tests run on another broker.
fn older_cluster() -> Option<KafkaCluster> {
    if Backend::local().expect("broker choice") != Backend::ApacheKafka {
        eprintln!("skipped: Kafka releases are Apache Kafka's");
        return None;
    }
    let spec = KafkaSpec { version: Some(OLDER_KAFKA_VERSION), ..KafkaSpec::plaintext(1) };
    let cluster =
        KafkaCluster::start_kafka(&spec).expect("a Kafka 3.9 cluster (bash scripts/setup.sh installs it)");
    assert!(cluster.describe().contains(OLDER_KAFKA_VERSION), "{}", cluster.describe());
    Some(cluster)
}

/// Per partition: a committed transaction, plain records, an aborted transaction, plain
/// records; returns what a read_committed reader sees, per partition.
fn write_source(cluster: &KafkaCluster, topic: &str, configs: &[(&str, &str)]) -> Vec<Vec<StoredRecord>> {
    cluster.create_topic(topic, PARTITIONS, configs).expect("topic");
    for p in 0..PARTITIONS {
        let name = |part: &str| format!("p{p}-{part}");
        cluster.produce_transaction(topic, p, &keyed(&name("committed"), 0..10), true).expect("transaction");
        cluster.produce(topic, p, &keyed(&name("plain-a"), 0..5)).expect("plain");
        cluster.produce_transaction(topic, p, &keyed(&name("aborted"), 0..4), false).expect("aborted");
        cluster.produce(topic, p, &keyed(&name("plain-b"), 0..6)).expect("plain");
    }
    (0..PARTITIONS).map(|p| cluster.read_committed_audited(topic, p).expect("read the source")).collect()
}

/// A group's position on the source in each partition: a different record of each, so that
/// partitions cannot be mixed up.
fn positions(source: &[Vec<StoredRecord>]) -> BTreeMap<i32, i64> {
    (0..PARTITIONS).map(|p| (p, source[p as usize][4 + 5 * p as usize].offset)).collect()
}

/// A consumer of `group` on `cluster` reads, from its committed positions, exactly the source
/// records at and after `at`, per partition.
fn assert_reads_on_from(
    cluster: &KafkaCluster,
    group: &str,
    topic: &str,
    source: &[Vec<StoredRecord>],
    at: &BTreeMap<i32, i64>,
) {
    let expected: BTreeMap<i32, Vec<RecordData>> =
        (0..PARTITIONS).map(|p| (p, data_after(&source[p as usize], at[&p]))).collect();
    let read = consume_as_group(cluster, group, topic, expected.values().map(Vec::len).sum());
    for p in 0..PARTITIONS {
        assert_eq!(read.get(&p).cloned().unwrap_or_default(), expected[&p], "{group}, partition {p}");
    }
}

/// A migration from Kafka 3.9 to Kafka 4.1: the source's committed records land once each, in
/// order, its aborted ones never, and a classic group that read part of the source reads on
/// from exactly the next record on the target.
#[test]
fn from_kafka_3_to_kafka_4_records_and_a_group_land_exactly() {
    let Some(older) = older_cluster() else { return };
    let setup = Setup {
        source: older,
        target: KafkaCluster::shared(Role::Target).expect("shared target"),
        name: format!("up{}", unique_suffix()),
        state_dir: tempfile::tempdir().expect("tempdir"),
    };
    let t = topic("from-3");
    // As a topic of a cluster upgraded from Kafka 2 carries them: Kafka 4 has no such configs
    // and refuses a topic made with them.
    let legacy = [("message.format.version", "2.8-IV1"), ("message.downconversion.enable", "false")];
    let source = write_source(&setup.source, &t, &[legacy[0], legacy[1], ("retention.ms", "86400000")]);
    let group = format!("migrating-{}", unique_suffix());
    let at = positions(&source);
    commit_group(&setup.source, &group, &t, &at);

    let out = setup.mirror_until_caught_up(
        &regex::escape(&t),
        &["--groups", &regex::escape(&group), "--sync-group-offsets"],
    );
    assert_success(&out);
    setup.assert_exactly_once(&t, PARTITIONS, Some(21));
    assert_reads_on_from(&setup.target, &group, &t, &source, &at);
    let configs = setup.target.topic_configs(&t).expect("target configs");
    assert_eq!(configs.get("retention.ms").map(String::as_str), Some("86400000"), "{configs:?}");
    assert!(legacy.iter().all(|(key, _)| !configs.contains_key(*key)), "{configs:?}");
}

/// Back to Kafka 3.9 (a failback, or a migration undone): the copy's transactions commit on
/// the older brokers, and `translate-offsets --execute` refuses a group with a member there,
/// then moves it to its exact position once the member has left.
#[test]
fn from_kafka_4_to_kafka_3_a_group_active_there_is_moved_only_once_it_leaves() {
    let Some(older) = older_cluster() else { return };
    let setup = Setup {
        source: KafkaCluster::shared(Role::Source).expect("shared source"),
        target: older,
        name: format!("down{}", unique_suffix()),
        state_dir: tempfile::tempdir().expect("tempdir"),
    };
    let t = topic("to-3");
    let source = write_source(&setup.source, &t, &[]);
    let group = format!("returning-{}", unique_suffix());
    let at = positions(&source);
    commit_group(&setup.source, &group, &t, &at);
    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &["--groups", &regex::escape(&group)]));
    setup.assert_exactly_once(&t, PARTITIONS, Some(21));

    let member = classic_member(&setup.target, &group, &t);
    let state = tempfile::tempdir().expect("tempdir");
    let refused = setup.translate_offsets(state.path(), &["--group", &group, "--execute"]);
    assert!(!refused.status.success(), "must refuse a group with a member: {}", stderr(&refused));
    assert!(
        stderr(&refused).contains(&format!("group {group}: has 1 active member")),
        "{}",
        stderr(&refused)
    );
    assert_eq!(
        group_offsets(&setup.target, &group, &t, PARTITIONS).values().flatten().count(),
        0,
        "nothing committed"
    );

    // Dropped, the member leaves the group.
    drop(member);
    assert_success(&setup.translate_offsets(state.path(), &["--group", &group, "--execute"]));
    assert_reads_on_from(&setup.target, &group, &t, &source, &at);
}
