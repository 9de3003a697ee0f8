//! Topic selection while running, source transactions, and a target that stops answering.

use std::time::{Duration, Instant};

use crate::common::*;
use kmirror_testcontainers::{unique_suffix, Backend, RecordData, SKIP_ABORTED_VISIBLE};

/// Waits until the target partition holds `count` committed records.
/// Keys and values of the target partition 0, by the transaction-aware audit of its log.
fn audited_key_values(setup: &Setup, topic: &str) -> Vec<KeyValue> {
    setup
        .target
        .read_committed_audited(topic, 0)
        .expect("audit")
        .into_iter()
        .map(|r| (r.data.key, r.data.value))
        .collect()
}

/// Waits until the mirror's shadow group holds `offset` for the partition (read by `status`).
fn wait_for_committed(setup: &Setup, topic: &str, partition: i32, offset: i64) {
    wait_for_target_topic(setup, topic);
    let started = Instant::now();
    loop {
        let status = status_json_once_there(setup).unwrap_or_default();
        let committed = status["partitions"].as_array().and_then(|rows| {
            rows.iter()
                .find(|r| r["topic"] == topic && r["partition"] == partition)
                .and_then(|r| r["committed"].as_i64())
        });
        if committed == Some(offset) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the shadow group holds {committed:?} for {topic}/{partition}, not {offset}: {status:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn wait_for_target(setup: &Setup, topic: &str, partition: i32, count: usize, limit: Duration) {
    let started = Instant::now();
    loop {
        let have = if setup.target.partition_count(topic).expect("metadata").is_some() {
            setup.target.audit_partition(topic, partition).map(|a| a.visible.len()).unwrap_or(0)
        } else {
            0
        };
        if have >= count {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "target {topic}/{partition} has {have} of {count} records after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The Tansu development broker shows aborted records to read_committed readers: tests of
/// transactional sources say so and skip there.
fn shows_aborted_records(setup: &Setup) -> bool {
    let tansu = *setup.source.backend() == Backend::Tansu;
    if tansu {
        eprintln!("{SKIP_ABORTED_VISIBLE} (the Tansu development broker; Apache Kafka runs this)");
    }
    tansu
}

/// Waits until the mirror has created `topic` on the target (it has planned by then).
fn wait_for_target_topic(setup: &Setup, topic: &str) {
    let started = Instant::now();
    while setup.target.partition_count(topic).expect("metadata").is_none() {
        assert!(started.elapsed() < Duration::from_secs(30), "the mirror never created the target topic");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_topic_created_while_running_is_mirrored() {
    let setup = Setup::new();
    let prefix = topic("live");
    let first = format!("{prefix}-a");
    let second = format!("{prefix}-b");
    setup.source.create_topic(&first, 2, &[]).expect("topic");
    setup.source.produce(&first, 1, &keyed("a", 0..100)).expect("produce");
    let pattern = format!("{}-.*", regex::escape(&prefix));
    let mirror = setup.spawn_mirror(&pattern, &["--refresh-interval", "1"]);
    wait_for_target(&setup, &first, 1, 100, Duration::from_secs(30));

    setup.source.create_topic(&second, 3, &[("retention.ms", "3600000")]).expect("topic");
    setup.source.produce(&second, 2, &keyed("b", 0..150)).expect("produce");
    wait_for_target(&setup, &second, 2, 150, Duration::from_secs(30));

    terminate(&mirror);
    let out = mirror.wait_with_output().expect("output");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(setup.target.partition_count(&second).expect("metadata"), Some(3));
    assert_eq!(
        setup.target.topic_configs(&second).expect("configs").get("retention.ms").map(String::as_str),
        Some("3600000")
    );
    setup.assert_exactly_once(&first, 2, None);
    setup.assert_exactly_once(&second, 3, None);
}

/// The source topic grows while it is mirrored: the target gets the same partitions (never a
/// remap) and the new ones are mirrored like the old.
#[test]
fn partitions_added_to_a_source_topic_while_running_are_added_on_the_target_and_mirrored() {
    let setup = Setup::new();
    let t = topic("grow");
    setup.source.create_topic(&t, 2, &[]).expect("topic");
    for p in 0..2 {
        setup.source.produce(&t, p, &keyed(&format!("old{p}"), 0..100)).expect("produce");
    }
    let mirror = setup.spawn_mirror(&t, &["--refresh-interval", "1"]);
    wait_for_target(&setup, &t, 1, 100, Duration::from_secs(30));

    match setup.source.add_partitions(&t, 4) {
        Ok(()) => {}
        Err(kmirror_testcontainers::Error::Kafka {
            source: rdkafka::error::KafkaError::AdminOp(rdkafka::types::RDKafkaErrorCode::UnsupportedFeature),
            ..
        }) if *setup.source.backend() == Backend::Tansu => {
            terminate(&mirror);
            let _ = mirror.wait_with_output();
            eprintln!(
                "skipped: the Tansu development broker has no CreatePartitions (Apache Kafka runs this)"
            );
            return;
        }
        Err(e) => panic!("growing the source topic: {e}"),
    }
    for p in 0..4 {
        setup.source.produce(&t, p, &keyed(&format!("new{p}"), 0..50)).expect("produce");
    }
    for p in 0..4 {
        wait_for_target(&setup, &t, p, if p < 2 { 150 } else { 50 }, Duration::from_secs(30));
    }
    terminate(&mirror);
    let out = mirror.wait_with_output().expect("output");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(setup.target.partition_count(&t).expect("metadata"), Some(4));
    setup.assert_exactly_once(&t, 4, None);
    assert!(!stderr(&out).contains("topic stopped"), "{}", stderr(&out));
}

/// The source topic grows between two batch runs (a scheduled migration's next run, or a
/// restart): the next run adds the partitions on the target and copies them, where it left the
/// topic out, telling the user to add the partitions by hand.
#[test]
fn partitions_added_to_a_source_topic_between_runs_are_added_on_the_target_by_the_next() {
    let setup = Setup::new();
    if *setup.source.backend() == Backend::Tansu {
        eprintln!("skipped: the Tansu development broker has no CreatePartitions (Apache Kafka runs this)");
        return;
    }
    let t = topic("grow-stopped");
    setup.source.create_topic(&t, 2, &[]).expect("topic");
    for p in 0..2 {
        setup.source.produce(&t, p, &keyed(&format!("old{p}"), 0..100)).expect("produce");
    }
    assert_success(&setup.mirror_until_caught_up(&t, &[]));
    setup.source.add_partitions(&t, 5).expect("grow the source topic");
    for p in 0..5 {
        setup.source.produce(&t, p, &keyed(&format!("new{p}"), 0..30)).expect("produce");
    }
    let out = setup.mirror_until_caught_up(&t, &[]);
    assert_success(&out);
    assert_eq!(setup.target.partition_count(&t).expect("metadata"), Some(5));
    setup.assert_exactly_once(&t, 5, None);
    let audits = setup.audit(&t, 5);
    assert_eq!(audits.iter().map(|a| a.source_records).collect::<Vec<_>>(), vec![130, 130, 30, 30, 30]);
}

#[test]
fn aborted_source_transactions_are_not_copied() {
    let setup = Setup::new();
    if shows_aborted_records(&setup) {
        return;
    }
    let t = topic("src-txn");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce_transaction(&t, 0, &keyed("committed-1", 0..50), true).expect("commit");
    setup.source.produce_transaction(&t, 0, &keyed("aborted", 0..50), false).expect("abort");
    setup.source.produce_transaction(&t, 0, &keyed("committed-2", 0..50), true).expect("commit");
    assert_success(&setup.mirror_until_caught_up(&t, &[]));
    let target: Vec<RecordData> =
        setup.target.read_committed_audited(&t, 0).expect("read").into_iter().map(|r| r.data).collect();
    let mut expected = keyed("committed-1", 0..50);
    expected.extend(keyed("committed-2", 0..50));
    let target_kv: Vec<KeyValue> = target.into_iter().map(|r| (r.key, r.value)).collect();
    let expected_kv: Vec<KeyValue> = expected.into_iter().map(|r| (r.key, r.value)).collect();
    assert_eq!(target_kv, expected_kv, "the transaction-aware audit of the target");
    // An independent client sees the same: a plain read_committed consumer of the target.
    let plain = plain_read_committed(&setup.target, &t, 0, expected_kv.len());
    assert_eq!(plain, expected_kv, "a plain read_committed consumer of the target");
}

#[test]
fn a_target_frozen_for_20_seconds_mid_run_loses_and_duplicates_nothing() {
    let setup = Setup::dedicated();
    if setup.target.pid().is_none() {
        eprintln!("skipped: pausing needs a harness-owned target broker (external clusters are set)");
        return;
    }
    let t = topic("paused");
    setup.source.create_topic(&t, 2, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("before", 0..2_000)).expect("produce");
    let mirror = setup.spawn_mirror(&t, &["--transaction-max-records", "200"]);
    wait_for_target(&setup, &t, 0, 200, Duration::from_secs(30));
    setup.source.produce(&t, 1, &keyed("during", 0..2_000)).expect("produce");
    setup.target.pause().expect("pause");
    std::thread::sleep(Duration::from_secs(20));
    setup.target.resume().expect("resume");
    setup.source.produce(&t, 0, &keyed("after", 0..1_000)).expect("produce");
    wait_for_target(&setup, &t, 0, 3_000, Duration::from_secs(90));
    wait_for_target(&setup, &t, 1, 2_000, Duration::from_secs(90));
    terminate(&mirror);
    let out = mirror.wait_with_output().expect("output");
    assert!(out.status.success(), "the same process survived the pause: {}", stderr(&out));
    setup.assert_exactly_once(&t, 2, None);
}

#[test]
fn topic_configs_changed_on_the_source_are_synced_to_the_target() {
    let setup = Setup::new();
    let t = topic("drift");
    setup.source.create_topic(&t, 1, &[("retention.ms", "3600000")]).expect("topic");
    setup.source.produce(&t, 0, &keyed("k", 0..10)).expect("produce");
    let mirror = setup.spawn_mirror(&regex::escape(&t), &["--refresh-interval", "1"]);
    wait_for_target(&setup, &t, 0, 10, Duration::from_secs(30));
    setup.source.set_topic_configs(&t, &[("retention.ms", "7200000")]).expect("alter on source");
    let started = Instant::now();
    loop {
        let value = setup.target.topic_configs(&t).expect("configs").get("retention.ms").cloned();
        if value.as_deref() == Some("7200000") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "target retention.ms is still {value:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
    terminate(&mirror);
    let out = mirror.wait_with_output().expect("output");
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `--exclude-configs`: a config named there is not copied when the copy is made, and a value
/// set on the copy by hand stays, while the configs not named are set back as before.
#[test]
fn configs_excluded_are_neither_copied_nor_set_back() {
    let setup = Setup::new();
    let t = topic("exclcfg");
    setup
        .source
        .create_topic(&t, 1, &[("retention.ms", "3600000"), ("max.message.bytes", "2000000")])
        .expect("topic");
    setup.source.produce(&t, 0, &keyed("k", 0..10)).expect("produce");
    let mirror = setup.spawn_mirror(
        &regex::escape(&t),
        &["--refresh-interval", "1", "--exclude-configs", "retention\\.ms"],
    );
    wait_for_target(&setup, &t, 0, 10, Duration::from_secs(30));
    let made = setup.target.topic_configs(&t).expect("configs");
    assert_eq!(made.get("max.message.bytes").map(String::as_str), Some("2000000"));
    assert_ne!(made.get("retention.ms").map(String::as_str), Some("3600000"), "not copied");
    // By hand on the copy: its own retention, and (AlterConfigs sets all) every other config
    // back to the default.
    setup.target.set_topic_configs(&t, &[("retention.ms", "60000")]).expect("alter on target");
    let started = Instant::now();
    loop {
        let configs = setup.target.topic_configs(&t).expect("configs");
        if configs.get("max.message.bytes").map(String::as_str) == Some("2000000") {
            assert_eq!(configs.get("retention.ms").map(String::as_str), Some("60000"), "kept as set");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "max.message.bytes not set back: {configs:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
    // Later refreshes leave it too.
    std::thread::sleep(Duration::from_secs(3));
    let configs = setup.target.topic_configs(&t).expect("configs");
    assert_eq!(configs.get("retention.ms").map(String::as_str), Some("60000"));
    terminate(&mirror);
    let out = mirror.wait_with_output().expect("output");
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Topic configs that belong to the source cluster or to the time records were first written are
/// not copied; the others are. A source topic stamping its records at append time
/// (`LogAppendTime`) keeps those stamps on the copy, as the copy's create times; records older
/// than the source's `message.timestamp.before.max.ms` (they were not when written) are copied;
/// `min.insync.replicas` above what the copy's replicas can meet, and throttled-replica lists
/// naming the source's brokers, stay behind.
#[test]
fn configs_of_the_source_cluster_or_of_write_time_are_not_copied_and_timestamps_stay_exact() {
    let setup = Setup::new();
    let t = topic("cfg-own");
    setup
        .source
        .create_topic(&t, 1, &[("message.timestamp.type", "LogAppendTime"), ("retention.ms", "987654321")])
        .expect("topic");
    setup.source.produce(&t, 0, &keyed("k", 0..20)).expect("produce");
    // Set after the writes, as they may be on a long-lived source (alter configs sets exactly
    // these: the others go back to their defaults).
    let kept = [("message.timestamp.type", "LogAppendTime"), ("retention.ms", "987654321")];
    let left = [
        ("min.insync.replicas", "2"),
        ("message.timestamp.before.max.ms", "1000"),
        ("leader.replication.throttled.replicas", "0:1"),
        ("follower.replication.throttled.replicas", "0:1"),
        ("unclean.leader.election.enable", "true"),
    ];
    setup.source.set_topic_configs(&t, &[&kept[..], &left[..]].concat()).expect("configs");
    std::thread::sleep(Duration::from_millis(1_500));

    let out = setup.mirror_until_caught_up(&regex::escape(&t), &[]);
    assert_success(&out);
    // The audit compares timestamps too: the source's append times, kept exactly.
    setup.assert_exactly_once(&t, 1, Some(20));
    let configs = setup.target.topic_configs(&t).expect("configs");
    assert_eq!(configs.get("retention.ms").map(String::as_str), Some("987654321"), "{configs:?}");
    assert_eq!(configs.get("message.timestamp.type").map(String::as_str), Some("CreateTime"), "{configs:?}");
    for (key, value) in left {
        assert_ne!(configs.get(key).map(String::as_str), Some(value), "{key} copied: {configs:?}");
    }
}

/// A target whose brokers stamp append times by default (`log.message.timestamp.type`): the
/// copies kmirror makes keep the source's create times all the same, and so do target topics
/// made before the mirror, by hand or by an earlier kmirror that copied a source's
/// `LogAppendTime`, whether the topic or its brokers say so.
#[test]
fn copies_keep_the_source_timestamps_on_a_target_that_defaults_to_append_times() {
    use kmirror_testcontainers::{KafkaCluster, KafkaSpec};
    if Backend::local().expect("broker choice") != Backend::ApacheKafka {
        eprintln!("skipped: a target with broker overrides is Apache Kafka's");
        return;
    }
    let spec = KafkaSpec {
        overrides: vec![("log.message.timestamp.type".into(), "LogAppendTime".into())],
        ..KafkaSpec::plaintext(1)
    };
    let target = KafkaCluster::start_kafka(&spec).expect("target");
    let (source, _) = KafkaCluster::shared_pair().expect("shared clusters");
    let setup = Setup {
        source,
        target,
        name: format!("ts{}", kmirror_testcontainers::unique_suffix()),
        state_dir: tempfile::tempdir().expect("tempdir"),
    };
    let made_by_kmirror = topic("create-times");
    let made_before = topic("made-before");
    let stamped_before = topic("stamped-before");
    setup.target.create_topic(&made_before, 1, &[]).expect("target topic on the brokers' default");
    setup
        .target
        .create_topic(&stamped_before, 1, &[("message.timestamp.type", "LogAppendTime")])
        .expect("target topic set to append times");
    let all = [&made_by_kmirror, &made_before, &stamped_before];
    let records: Vec<RecordData> = (0..20)
        .map(|i| RecordData {
            timestamp: Some(1_400_000_000_000 + i * 60_000),
            ..RecordData::keyed(format!("k{i}"), "v")
        })
        .collect();
    for t in all {
        setup.source.create_topic(t, 1, &[]).expect("topic");
        setup.source.produce(t, 0, &records).expect("produce");
    }
    let pattern = all.iter().map(|t| regex::escape(t)).collect::<Vec<_>>().join("|");
    let out = setup.mirror_until_caught_up(&pattern, &[]);
    assert_success(&out);
    for t in all {
        // The audit compares timestamps too.
        setup.assert_exactly_once(t, 1, Some(20));
        let configs = setup.target.topic_configs(t).expect("configs");
        assert_eq!(
            configs.get("message.timestamp.type").map(String::as_str),
            Some("CreateTime"),
            "{t}: {configs:?}"
        );
    }
    let log = stderr(&out);
    for t in [&made_before, &stamped_before] {
        assert!(
            log.lines().any(|l| l.contains("stamps the records it appends") && l.contains(t.as_str())),
            "no warning for {t}: {log}"
        );
    }
}

/// Replicas on a 3-broker target whose `default.replication.factor` is 1 (Kafka's own
/// default): kmirror's own topics (the offset map, the shards, the checkpoints) get 3, so that
/// they outlive a broker; a copy gets the target's default, with a warning naming
/// `--replication-factor 3` since its source has 3; with `--replication-factor 3`, 3 and no
/// warning.
#[test]
fn own_topics_outlive_a_broker_and_a_copy_less_durable_than_its_source_is_said() {
    use kmirror_testcontainers::{KafkaCluster, KafkaSpec};
    if Backend::local().expect("broker choice") != Backend::ApacheKafka {
        eprintln!("skipped: three-node clusters are Apache Kafka's");
        return;
    }
    let target_spec = KafkaSpec {
        overrides: vec![("default.replication.factor".into(), "1".into())],
        ..KafkaSpec::plaintext(3)
    };
    let (source, target) = std::thread::scope(|scope| {
        let source = scope.spawn(|| KafkaCluster::start_kafka(&KafkaSpec::plaintext(3)).expect("source"));
        let target = KafkaCluster::start_kafka(&target_spec).expect("target");
        (source.join().expect("source start"), target)
    });
    let setup = Setup {
        source,
        target,
        name: format!("rf{}", kmirror_testcontainers::unique_suffix()),
        state_dir: tempfile::tempdir().expect("tempdir"),
    };
    let (by_default, by_flag) = (topic("rf-default"), topic("rf-flag"));
    for t in [&by_default, &by_flag] {
        setup.source.create_topic(t, 2, &[]).expect("topic");
        assert_eq!(setup.source.replication_factor(t).expect("metadata"), Some(3));
        for p in 0..2 {
            setup.source.produce(t, p, &keyed("r", 0..20)).expect("produce");
        }
    }
    let out = setup.mirror_until_caught_up(&regex::escape(&by_default), &[]);
    assert_success(&out);
    setup.assert_exactly_once(&by_default, 2, Some(20));
    assert_eq!(setup.target.replication_factor(&by_default).expect("metadata"), Some(1));
    let log = stderr(&out);
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains(&by_default) && l.contains("--replication-factor 3")),
        "{log}"
    );
    for own in ["kmirror.offset-map", "kmirror.shards", "kmirror.checkpoints"] {
        let own = format!("{own}.{}", setup.name);
        assert_eq!(setup.target.replication_factor(&own).expect("metadata"), Some(3), "{own}");
    }

    let out = setup.mirror_until_caught_up(&regex::escape(&by_flag), &["--replication-factor", "3"]);
    assert_success(&out);
    setup.assert_exactly_once(&by_flag, 2, Some(20));
    assert_eq!(setup.target.replication_factor(&by_flag).expect("metadata"), Some(3));
    assert!(!stderr(&out).contains("fewer replicas than its source"), "{}", stderr(&out));
}

/// "Latest" is the end of committed data: a source transaction still open at the start is
/// copied whole once it commits (starting at the high watermark would copy only what follows
/// it and lose the transaction).
#[test]
fn start_from_latest_never_cuts_an_open_source_transaction_in_two() {
    let setup = Setup::new();
    if shows_aborted_records(&setup) {
        return;
    }
    let t = topic("latest-open");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("old", 0..30)).expect("produce");
    let producer = setup.source.transactional_producer(&format!("open-{t}")).expect("producer");
    setup.source.open_transaction(&producer, &t, 0, &keyed("open", 0..20)).expect("open transaction");
    let mirror = setup.spawn_mirror(&regex::escape(&t), &["--start-from", "latest"]);
    // The start is committed before anything is read: below the open transaction.
    wait_for_committed(&setup, &t, 0, 30);
    {
        use rdkafka::producer::Producer;
        producer.commit_transaction(Duration::from_secs(10)).expect("commit the open transaction");
    }
    setup.source.produce(&t, 0, &keyed("new", 0..10)).expect("produce");
    wait_for_target(&setup, &t, 0, 30, Duration::from_secs(30));
    terminate(&mirror);
    let out = mirror.wait_with_output().expect("output");
    assert!(out.status.success(), "{}", stderr(&out));
    let mut expected: Vec<KeyValue> = keyed("open", 0..20).into_iter().map(|r| (r.key, r.value)).collect();
    expected.extend(keyed("new", 0..10).into_iter().map(|r| (r.key, r.value)));
    let audited: Vec<KeyValue> = audited_key_values(&setup, &t);
    assert_eq!(audited, expected, "the open transaction whole, then what followed");
    assert_eq!(plain_read_committed(&setup.target, &t, 0, expected.len()), expected);
}

/// A batch copies what is committed on the source when it starts: a source transaction still
/// open then (a producer that hangs, or one that commits seldom) is not waited for; the next
/// batch copies it once it commits, whole and once.
#[test]
fn a_batch_ends_at_the_committed_end_beside_an_open_source_transaction() {
    let setup = Setup::new();
    if shows_aborted_records(&setup) {
        return;
    }
    let t = topic("batch-open");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("old", 0..30)).expect("produce");
    let producer = setup.source.transactional_producer(&format!("open-{t}")).expect("producer");
    setup.source.open_transaction(&producer, &t, 0, &keyed("open", 0..20)).expect("open transaction");
    let started = Instant::now();
    let first = setup.mirror_until_caught_up(&regex::escape(&t), &[]);
    assert_success(&first);
    // Its summary: copied to the end it noted, nothing left (the open transaction is not lag).
    let said = String::from_utf8_lossy(&first.stdout);
    let row: Vec<&str> = said
        .lines()
        .find(|l| l.starts_with(&format!("{t} ")))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    assert_eq!(row.iter().rev().take(3).rev().copied().collect::<Vec<_>>(), ["30", "30", "0"], "{said}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "not held by the open transaction: {:?}",
        started.elapsed()
    );
    let old: Vec<KeyValue> = keyed("old", 0..30).into_iter().map(|r| (r.key, r.value)).collect();
    assert_eq!(audited_key_values(&setup, &t), old, "what was committed at the start");
    {
        use rdkafka::producer::Producer;
        producer.commit_transaction(Duration::from_secs(10)).expect("commit the open transaction");
    }
    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &[]));
    let mut expected = old;
    expected.extend(keyed("open", 0..20).into_iter().map(|r| (r.key, r.value)));
    assert_eq!(audited_key_values(&setup, &t), expected, "the transaction whole, once");
    assert_eq!(plain_read_committed(&setup.target, &t, 0, expected.len()), expected);
}

/// A source whose last transaction aborted (its records and marker are no data): the batch
/// commits its position past them, so nothing counts them as left to copy: the next batch has
/// nothing to do, and `status` shows no lag (both kept counting them for ever).
#[test]
fn a_batch_past_an_aborted_transaction_leaves_nothing_to_copy() {
    let setup = Setup::new();
    if shows_aborted_records(&setup) {
        return;
    }
    let t = topic("batch-aborted");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("kept", 0..10)).expect("produce");
    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &[]));
    // Read by the next batch alone: nothing in it to copy, no transaction to commit it with.
    setup.source.produce_transaction(&t, 0, &keyed("aborted", 0..5), false).expect("aborted transaction");
    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &[]));
    let kept: Vec<KeyValue> = keyed("kept", 0..10).into_iter().map(|r| (r.key, r.value)).collect();
    assert_eq!(audited_key_values(&setup, &t), kept);
    let status = status_json(&setup, true);
    let lag: Vec<i64> = status["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .filter(|p| p["topic"] == t.as_str())
        .map(|p| p["lag_records"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(lag, vec![0], "{status:#}");
    let again = setup.mirror_until_caught_up(&regex::escape(&t), &[]);
    assert_success(&again);
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to do"), "{}", stderr(&again));

    // A topic that holds nothing but an aborted transaction: nothing to copy, and its first
    // batch commits where it stands.
    let only = topic("batch-only-aborted");
    setup.source.create_topic(&only, 1, &[]).expect("topic");
    setup.source.produce_transaction(&only, 0, &keyed("aborted", 0..5), false).expect("aborted transaction");
    assert_success(&setup.mirror_until_caught_up(&regex::escape(&only), &[]));
    let again = setup.mirror_until_caught_up(&regex::escape(&only), &[]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to do"), "{}", stderr(&again));
    assert_eq!(audited_key_values(&setup, &only), Vec::<KeyValue>::new());

    // A running mirror commits such a position once it has stood a while (10 s).
    let mirror = setup.spawn_mirror(&regex::escape(&t), &[]);
    setup
        .source
        .produce_transaction(&t, 0, &keyed("aborted-later", 0..5), false)
        .expect("aborted transaction");
    let started = Instant::now();
    let lag = || {
        let status = status_json(&setup, true);
        status["partitions"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["topic"] == t.as_str()))
            .map(|p| p["lag_records"].clone())
    };
    while lag() != Some(serde_json::json!(0)) {
        assert!(started.elapsed() < Duration::from_secs(40), "lag stays {:?}", lag());
        std::thread::sleep(Duration::from_millis(500));
    }
    terminate(&mirror);
    let out = mirror.wait_with_output().expect("output");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(audited_key_values(&setup, &t), kept);
}

/// A crash before the first data commit must not move a `--start-from latest` start forward:
/// what arrived between the first start and the restart is copied, not skipped.
#[test]
fn start_from_latest_is_durable_before_anything_is_copied() {
    let setup = Setup::new();
    let t = topic("latest-durable");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("old", 0..100)).expect("produce");
    let mut mirror = setup.spawn_mirror(&regex::escape(&t), &["--start-from", "latest"]);
    wait_for_committed(&setup, &t, 0, 100);
    mirror.kill().expect("SIGKILL");
    mirror.wait().expect("reap");
    setup.source.produce(&t, 0, &keyed("between", 0..50)).expect("produce");
    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &["--start-from", "latest"]));
    let expected: Vec<KeyValue> = keyed("between", 0..50).into_iter().map(|r| (r.key, r.value)).collect();
    let audited: Vec<KeyValue> = audited_key_values(&setup, &t);
    assert_eq!(audited, expected, "by the transaction-aware audit");
    assert_eq!(plain_read_committed(&setup.target, &t, 0, expected.len()), expected);
}

#[test]
fn start_from_latest_copies_only_what_arrives_after_the_start() {
    let setup = Setup::new();
    let t = topic("latest");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    // Several batches, so a wrong "latest" (inside the last batch) would show.
    for chunk in 0..4 {
        setup.source.produce(&t, 0, &keyed("old", chunk * 25..(chunk + 1) * 25)).expect("produce");
    }
    let mirror = setup.spawn_mirror(&regex::escape(&t), &["--start-from", "latest"]);
    wait_for_committed(&setup, &t, 0, 100);
    setup.source.produce(&t, 0, &keyed("new", 0..40)).expect("produce");
    wait_for_target(&setup, &t, 0, 40, Duration::from_secs(30));
    terminate(&mirror);
    let out = mirror.wait_with_output().expect("output");
    assert!(out.status.success(), "{}", stderr(&out));
    let target: Vec<KeyValue> = audited_key_values(&setup, &t);
    let expected: Vec<KeyValue> = keyed("new", 0..40).into_iter().map(|r| (r.key, r.value)).collect();
    assert_eq!(target, expected, "only records produced after the start");

    // verify: strict by default (the 100 older records have no copy), exact from the start.
    let state = tempfile::tempdir().expect("tempdir");
    let verify = |extra: &[&str]| {
        let out = setup.verify(state.path(), extra);
        let report: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json report");
        (out.status.success(), report)
    };
    let (ok, report) = verify(&[]);
    assert!(!ok, "{report:?}");
    assert_eq!((report[0]["missing"].as_i64(), report[0]["from_offset"].as_i64()), (Some(100), Some(0)));
    let (ok, report) = verify(&["--from-mirror-start"]);
    assert!(ok, "{report:?}");
    assert_eq!((report[0]["checked"].as_i64(), report[0]["from_offset"].as_i64()), (Some(40), Some(100)));
}

#[test]
fn a_second_signal_exits_at_once_and_the_next_start_resumes_exactly() {
    let setup = Setup::dedicated();
    if setup.target.pid().is_none() {
        eprintln!("skipped: pausing needs a harness-owned target broker (external clusters are set)");
        return;
    }
    let t = topic("signals");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("a", 0..500)).expect("produce");
    let mut mirror = setup.spawn_mirror(&regex::escape(&t), &[]);
    wait_for_target(&setup, &t, 0, 500, Duration::from_secs(30));
    // A frozen target keeps the graceful stop from finishing its commit...
    setup.target.pause().expect("pause");
    setup.source.produce(&t, 0, &keyed("b", 0..500)).expect("produce");
    std::thread::sleep(Duration::from_millis(500));
    terminate(&mirror);
    std::thread::sleep(Duration::from_secs(2));
    assert!(mirror.try_wait().expect("wait").is_none(), "the first signal waits for the commit");
    // ...and a second signal ends the process at once.
    terminate(&mirror);
    let asked = Instant::now();
    while mirror.try_wait().expect("wait").is_none() {
        assert!(asked.elapsed() < Duration::from_secs(2), "the second signal must exit at once");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = mirror.wait_with_output().expect("output");
    assert!(!out.status.success(), "an interrupted stop is not a clean exit");
    setup.target.resume().expect("resume");
    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &[]));
    setup.assert_exactly_once(&t, 1, Some(1_000));
}

/// A shard's transaction commits the source positions of every partition it moved, and Kafka
/// writes one TxnOffsetCommit as one batch into `__consumer_offsets`, under its 1 MB: here one
/// shard over 2 000 partitions of a topic with a long name (each position some 640 bytes with
/// its metadata: 1.3 MB) commits them in parts, the backlog in one first transaction (open at
/// least 1 s while behind) (in one: refused, the shard aborting and reading again
/// until killed). Every record lands once, and a second run finds every position and copies
/// nothing again. On clusters of its own: thousands of partitions more weigh on the brokers every
/// other test shares.
#[test]
fn a_shard_over_thousands_of_partitions_commits_its_positions_in_parts() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use rdkafka::Message;
    const MANY: i32 = 2_000;
    let setup = Setup::dedicated();
    // Near Kafka's longest topic name (249), in the key and in the metadata of each position.
    let t = topic(&"w".repeat(220));
    setup.source.create_topic(&t, MANY, &[]).expect("topic");
    let producer: BaseProducer =
        setup.source.client_config().set("linger.ms", "20").create().expect("producer");
    for p in 0..MANY {
        let key = format!("p{p}");
        let mut record = BaseRecord::to(&t).partition(p).key(&key).payload(&key);
        while let Err((_, back)) = producer.send(record) {
            record = back;
            producer.poll(Duration::from_millis(5));
        }
    }
    producer.flush(Duration::from_secs(60)).expect("flush");

    let copied = |out: &std::process::Output| -> std::collections::BTreeMap<i32, Vec<String>> {
        let reader: BaseConsumer = setup
            .target
            .client_config()
            .set("group.id", format!("wide-reader-{}", unique_suffix()))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .expect("consumer");
        let mut tpl = rdkafka::TopicPartitionList::new();
        for p in 0..MANY {
            tpl.add_partition_offset(&t, p, rdkafka::Offset::Beginning).expect("tpl");
        }
        reader.assign(&tpl).expect("assign");
        let mut seen: std::collections::BTreeMap<i32, Vec<String>> = Default::default();
        let (mut count, deadline) = (0, Instant::now() + Duration::from_secs(60));
        let mut quiet_until = None;
        while Instant::now() < deadline && quiet_until.is_none_or(|q| Instant::now() < q) {
            if count >= MANY && quiet_until.is_none() {
                quiet_until = Some(Instant::now() + Duration::from_secs(2));
            }
            if let Some(message) = reader.poll(Duration::from_millis(100)) {
                let m = message.unwrap_or_else(|e| panic!("read: {e}; {}", stderr(out)));
                let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
                seen.entry(m.partition()).or_default().push(key);
                count += 1;
            }
        }
        seen
    };
    let once: std::collections::BTreeMap<i32, Vec<String>> =
        (0..MANY).map(|p| (p, vec![format!("p{p}")])).collect();

    // At the default transaction bound (the suite's 100 ms would cut the backlog in small ones).
    let mut args = setup.args(&regex::escape(&t), &["--shards", "1", "--until-caught-up"]);
    if let Some(at) = args.iter().position(|a| a == "--transaction-max-ms") {
        args.drain(at..at + 2);
    }
    let first = run(&args, Duration::from_secs(180));
    assert_success(&first);
    assert!(copied(&first) == once, "every partition holds its one record: {}", stderr(&first));
    // The shard's position in every partition, past its one record, with the source end there.
    let status = status_json(&setup, true);
    let rows = status["partitions"].as_array().cloned().unwrap_or_default();
    let at_end = rows
        .iter()
        .filter(|r| r["topic"] == t.as_str() && r["committed"] == 1 && r["source_end"] == 1)
        .count();
    assert_eq!(
        at_end,
        MANY as usize,
        "{} rows: {}",
        rows.len(),
        rows.first().map(|r| r.to_string()).unwrap_or_default()
    );
    let second = run(&args, Duration::from_secs(180));
    assert_success(&second);
    assert!(copied(&second) == once, "the second run copied nothing again: {}", stderr(&second));
}
