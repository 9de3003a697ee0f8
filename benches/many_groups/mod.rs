//! What consumer groups cost a batch run and a failover: `kmirror mirror --until-caught-up` of
//! one topic without groups (the baseline, measured in the same sample), then with
//! `--groups … --sync-group-offsets` over many groups (each checkpointed on the target and
//! moved to its translated position there), then `kmirror failover --execute` moving them all,
//! then `kmirror failback --execute` moving them all back to the source; each sample on a fresh
//! target. Every group's synced position is checked on the target with an
//! independent client.
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kmirror_testcontainers::{KafkaCluster, RecordData, Role};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

use crate::support::{self, env_or};

const TOPIC: &str = "grouped";
const PARTITIONS: i32 = 4;
const RECORDS_PER_PARTITION: usize = 100;
const GROUP_PREFIX: &str = "bench-group-";

/// Runs kmirror with `args`, to its exit; its wall time in seconds.
fn timed(args: &[&str], state: &std::path::Path) -> f64 {
    let log_path = state.join("kmirror.log");
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_kmirror"))
        .args(args)
        .arg("--state-dir")
        .arg(state.join("state"))
        .env("RUST_LOG", std::env::var("KMIRROR_BENCH_GROUPS_RUST_LOG").unwrap_or("warn".into()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).expect("log file"))
        .status()
        .expect("kmirror");
    let wall = started.elapsed().as_secs_f64();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    if let Ok(kept) = std::env::var("KMIRROR_BENCH_GROUPS_KEEP_LOG") {
        std::fs::write(format!("{kept}.{}", args[0]), &log).expect("keep the log");
    }
    assert!(status.success(), "kmirror {args:?} failed: {status}\n{log}");
    wall
}

/// The group's committed offset in each partition of the topic on `cluster` (None: none).
fn committed(cluster: &KafkaCluster, group: &str) -> Vec<Option<i64>> {
    let consumer: BaseConsumer = cluster.client_config().set("group.id", group).create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(TOPIC, p);
    }
    let answer = consumer.committed_offsets(tpl, Duration::from_secs(30)).expect("committed offsets");
    answer
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        })
        .collect()
}

/// Commits, for group `i`, offset `at(i)` in every partition on `cluster`.
fn commit_groups(cluster: &KafkaCluster, groups: usize, at: impl Fn(usize) -> i64) {
    for i in 0..groups {
        let consumer: BaseConsumer = cluster
            .client_config()
            .set("group.id", format!("{GROUP_PREFIX}{i:04}"))
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            tpl.add_partition_offset(TOPIC, p, Offset::Offset(at(i))).expect("tpl");
        }
        consumer.commit(&tpl, CommitMode::Sync).expect("commit");
    }
}

pub(crate) fn run() {
    let groups = env_or("KMIRROR_BENCH_GROUPS", 200);
    let samples = env_or("KMIRROR_BENCH_GROUP_SAMPLES", 2);
    let source = KafkaCluster::start(Role::Source).expect("source");
    crate::warm_up(&source);
    source.create_topic(TOPIC, PARTITIONS, &[]).expect("topic");
    let records: Vec<RecordData> =
        (0..RECORDS_PER_PARTITION).map(|i| RecordData::keyed(format!("k{i}"), "value")).collect();
    for p in 0..PARTITIONS {
        source.produce(TOPIC, p, &records).expect("load");
    }
    let position = |i: usize| (i % RECORDS_PER_PARTITION) as i64;
    commit_groups(&source, groups, position);
    let pattern = format!("{}.*", regex::escape(GROUP_PREFIX));
    let mut table = format!(
        "A batch (`--until-caught-up`, fresh target) of one topic of {PARTITIONS} partitions x {RECORDS_PER_PARTITION} records, without groups and with `--groups '{pattern}' --sync-group-offsets` over {groups} groups, then `failover --execute` moving them, then `failback --execute` moving them back to the source; {}.\n\n| sample | batch without groups (s) | batch with {groups} groups synced (s) | ratio | ms per group | failover moving {groups} groups (s) | failback moving {groups} groups (s) |\n| --- | --- | --- | --- | --- | --- | --- |\n",
        source.describe()
    );
    let mut results = Vec::new();
    for sample in 1..=samples {
        let batch = |target: &KafkaCluster, extra: &[&str], state: &std::path::Path| {
            let mut args = vec!["mirror", "--source", source.bootstrap(), "--target", target.bootstrap()];
            args.extend(["--name", "grouped", "--topics", TOPIC, "--until-caught-up", "--progress", "off"]);
            args.extend(extra);
            timed(&args, state)
        };
        let plain_target = KafkaCluster::start(Role::Target).expect("target");
        crate::warm_up(&plain_target);
        let plain_state = tempfile::tempdir().expect("tempdir");
        let plain = batch(&plain_target, &[], plain_state.path());
        drop(plain_target);

        let target = KafkaCluster::start(Role::Target).expect("target");
        crate::warm_up(&target);
        let state = tempfile::tempdir().expect("tempdir");
        let synced = batch(&target, &["--groups", &pattern, "--sync-group-offsets"], state.path());
        // Every group synced, on every partition (where exactly is the suite's to check:
        // translate::many_groups_are_synced_each_to_the_copy_of_its_next_record).
        for i in 0..groups {
            let at = committed(&target, &format!("{GROUP_PREFIX}{i:04}"));
            assert!(
                at.iter().all(Option::is_some),
                "group {i} synced on every partition of the target: {at:?}"
            );
        }
        let failover_state = tempfile::tempdir().expect("tempdir");
        let args = ["failover", "--target", target.bootstrap(), "--name", "grouped", "--execute"];
        let failover = timed(&args, failover_state.path());
        // Every source group back at 0: failback has to move each forward to its position
        // (one it left out would be found at 0).
        commit_groups(&source, groups, |_| 0);
        let failback_state = tempfile::tempdir().expect("tempdir");
        let args = [
            "failback",
            "--source",
            source.bootstrap(),
            "--target",
            target.bootstrap(),
            "--name",
            "grouped",
            "--groups",
            &pattern,
            "--execute",
        ];
        let failback = timed(&args, failback_state.path());
        // Every group back on the source, on every partition.
        for i in 0..groups {
            let at = committed(&source, &format!("{GROUP_PREFIX}{i:04}"));
            let expected = Some(position(i));
            assert!(
                at.iter().all(|&o| o == expected),
                "group {i} back on the source at {expected:?}: {at:?}"
            );
        }
        let per_group_ms = (synced - plain) * 1000.0 / groups as f64;
        table.push_str(&format!(
            "| {sample} | {plain:.2} | {synced:.2} | {:.2} | {per_group_ms:.1} | {failover:.2} | {failback:.2} |\n",
            synced / plain
        ));
        results.push(json!({
            "sample": sample, "groups": groups,
            "batch_without_groups_seconds": plain, "batch_with_groups_seconds": synced,
            "ratio": synced / plain, "extra_ms_per_group": per_group_ms,
            "failover_seconds": failover, "failback_seconds": failback,
        }));
    }
    println!("{table}");
    support::write_json("mirror-groups.json", &results);
    support::write_table("groups", &table);
}
