//! kmirror against data written and read by Apache Kafka's own Java clients (Kafka's tools, from
//! the jars `scripts/setup.sh` installs): a source whose transactions, some aborted, come from
//! the Java producer, and a target read back by the Java consumer, read_committed. What
//! librdkafka (kmirror's client, and the harness's) makes of either is not the judge here.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::*;
use kmirror_testcontainers::java_tools::run_java_tool;
use kmirror_testcontainers::{Backend, KafkaCluster, RecordData};

const PARTITIONS: i32 = 2;
const PER_PARTITION: usize = 300;

/// What Kafka's Java console consumer reads of `topic`, read_committed, from the beginning:
/// (partition, key) in the order it printed them.
fn java_read_committed(cluster: &KafkaCluster, topic: &str, expected: usize) -> Vec<(i32, String)> {
    java_console_consumer(cluster, topic, expected, &["--from-beginning"])
}

/// Kafka's Java console consumer on `topic`, read_committed, until it has read `expected`
/// records (20 s without one ends it sooner), with `extra` arguments: (partition, key) in the
/// order it printed them.
fn java_console_consumer(
    cluster: &KafkaCluster,
    topic: &str,
    expected: usize,
    extra: &[&str],
) -> Vec<(i32, String)> {
    let mut args = vec![
        "--property",
        "print.partition=true",
        "--property",
        "print.key=true",
        "--property",
        "print.value=false",
    ];
    args.extend(extra);
    parse_console(&console_lines(cluster, topic, expected, &args))
}

/// The lines Kafka's Java console consumer prints for `topic`, read_committed, until it has read
/// `expected` records (20 s without one ends it sooner), with `extra` arguments.
fn console_lines(cluster: &KafkaCluster, topic: &str, expected: usize, extra: &[&str]) -> Vec<String> {
    let max = expected.to_string();
    let mut args = vec![
        "--bootstrap-server",
        cluster.bootstrap(),
        "--topic",
        topic,
        "--isolation-level",
        "read_committed",
        "--max-messages",
        &max,
        "--timeout-ms",
        "20000",
    ];
    args.extend(extra);
    let out =
        run_java_tool("org.apache.kafka.tools.consumer.ConsoleConsumer", &args, Duration::from_secs(90))
            .expect("the Java console consumer runs");
    String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect()
}

fn parse_console(lines: &[String]) -> Vec<(i32, String)> {
    lines
        .iter()
        .filter_map(|line| {
            // "Partition:N<TAB>KEY"
            let (partition, key) = line.split_once('\t')?;
            Some((partition.strip_prefix("Partition:")?.trim().parse().ok()?, key.to_string()))
        })
        .collect()
}

/// The Java producer (Kafka's TransactionalMessageCopier) writes the source topic in
/// transactions of 20 records, aborting some at random and writing them again (transaction
/// protocol version 2, KIP-890, which the harness's brokers finalize and the Java client of
/// Kafka 4 speaks, where librdkafka speaks version 1); kmirror copies
/// it; every committed record reaches the target once, in its partition and order, as the Java
/// consumer reads it there, and no aborted one does.
#[test]
fn transactions_of_the_java_producer_are_copied_exactly_once_as_the_java_consumer_reads_them() {
    if Backend::local().expect("broker choice") != Backend::ApacheKafka {
        eprintln!("skipped: Kafka's Java tools run against Apache Kafka");
        return;
    }
    let setup = Setup::new();
    let input = topic("java-in");
    let t = topic("java-txn");
    setup.source.create_topic(&input, PARTITIONS, &[]).expect("input topic");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    for p in 0..PARTITIONS {
        setup.source.produce(&input, p, &keyed(&format!("p{p}"), 0..PER_PARTITION)).expect("produce");
    }
    for p in 0..PARTITIONS {
        let (partition, id, group) = (p.to_string(), format!("{t}-copier-{p}"), format!("{t}-copier-{p}"));
        let out = run_java_tool(
            "org.apache.kafka.tools.TransactionalMessageCopier",
            &[
                "--broker-list",
                setup.source.bootstrap(),
                "--input-topic",
                &input,
                "--input-partition",
                &partition,
                "--output-topic",
                &t,
                "--transactional-id",
                &id,
                "--consumer-group",
                &group,
                "--transaction-size",
                "20",
                "--enable-random-aborts",
                "--use-group-metadata",
            ],
            Duration::from_secs(120),
        )
        .expect("the Java copier runs");
        assert!(out.status.success(), "copier: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut aborted = 0;
    let mut committed: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for p in 0..PARTITIONS {
        aborted += setup.source.audit_partition(&t, p).expect("audit").aborted.len();
        let records = setup.source.read_committed_audited(&t, p).expect("read");
        let keys = records
            .iter()
            .filter_map(|r| r.data.key.as_ref())
            .map(|k| String::from_utf8_lossy(k).into_owned());
        committed.insert(p, keys.collect());
    }
    let total: usize = committed.values().map(Vec::len).sum();
    assert_eq!(total, PARTITIONS as usize * PER_PARTITION, "the copier committed every input record once");
    assert!(aborted > 0, "the Java producer aborted some transactions (at random): none this time");

    let out = setup.mirror_until_caught_up(&regex::escape(&t), &[]);
    assert_success(&out);
    setup.assert_exactly_once(&t, PARTITIONS, None);

    let read = java_read_committed(&setup.target, &t, total);
    let mut by_partition: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for (p, key) in read {
        by_partition.entry(p).or_default().push(key);
    }
    assert_eq!(
        by_partition, committed,
        "the Java consumer reads on the target what was committed on the source"
    );
}

/// A DR cutover as a Java application sees it: a Java consumer group (classic protocol) reads
/// part of the source and commits; the mirror copies the topic and syncs the group; the same
/// group, now a Java consumer of Kafka 4's consumer protocol (KIP-848) on the target, reads from
/// where the mirror put it. Between them they read every record once, each partition in order.
#[test]
fn a_java_consumer_group_moved_to_the_target_reads_every_record_once() {
    if Backend::local().expect("broker choice") != Backend::ApacheKafka {
        eprintln!("skipped: Kafka's Java tools run against Apache Kafka");
        return;
    }
    const READ_ON_SOURCE: usize = 70;
    let setup = Setup::new();
    let t = topic("java-group");
    let group = format!("{t}-app");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    // A transaction, an aborted one and plain records: the target's offsets differ from the
    // source's, so only a translated position is the right one.
    for p in 0..PARTITIONS {
        let key = |part: &str| format!("p{p}-{part}");
        setup.source.produce_transaction(&t, p, &keyed(&key("a"), 0..20), true).expect("txn");
        setup.source.produce_transaction(&t, p, &keyed(&key("x"), 0..15), false).expect("aborted txn");
        setup.source.produce(&t, p, &keyed(&key("b"), 0..30)).expect("plain");
    }
    // One record per poll: the group commits (on close) the position past what it printed.
    let on_source = java_console_consumer(
        &setup.source,
        &t,
        READ_ON_SOURCE,
        &["--from-beginning", "--group", &group, "--consumer-property", "max.poll.records=1"],
    );
    assert_eq!(on_source.len(), READ_ON_SOURCE, "read on the source: {on_source:?}");

    let out = setup.mirror_until_caught_up(&regex::escape(&t), &["--groups", &group, "--sync-group-offsets"]);
    assert_success(&out);
    setup.assert_exactly_once(&t, PARTITIONS, Some(50));

    let rest = PARTITIONS as usize * 50 - READ_ON_SOURCE;
    let on_target = java_console_consumer(
        &setup.target,
        &t,
        rest,
        &["--group", &group, "--consumer-property", "group.protocol=consumer"],
    );
    let mut read: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for (p, key) in on_source.into_iter().chain(on_target) {
        read.entry(p).or_default().push(key);
    }
    let expected: BTreeMap<i32, Vec<String>> = (0..PARTITIONS)
        .map(|p| {
            let keys = (0..20).map(|i| format!("p{p}-a-{i}")).chain((0..30).map(|i| format!("p{p}-b-{i}")));
            (p, keys.collect())
        })
        .collect();
    assert_eq!(read, expected, "the group read each record once, in order, across the cutover");
}

/// Batches the Java producer compressed with each of Kafka's codecs (zstd's in transactions):
/// kmirror reads every one and copies each record once.
#[test]
fn batches_compressed_by_the_java_producer_with_every_codec_are_copied_exactly_once() {
    if Backend::local().expect("broker choice") != Backend::ApacheKafka {
        eprintln!("skipped: Kafka's Java tools run against Apache Kafka");
        return;
    }
    const RECORDS: usize = 3_000;
    let setup = Setup::new();
    let prefix = topic("java-codec");
    let codecs = ["gzip", "snappy", "lz4", "zstd"];
    for codec in codecs {
        let t = format!("{prefix}-{codec}");
        setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
        let bootstrap = format!("bootstrap.servers={}", setup.source.bootstrap());
        let compression = format!("compression.type={codec}");
        let records = RECORDS.to_string();
        let transactional_id = format!("{t}-producer");
        let mut args = vec![
            "--topic",
            &t,
            "--num-records",
            &records,
            "--throughput",
            "-1",
            "--payload-monotonic",
            "--producer-props",
            &bootstrap,
            &compression,
            "linger.ms=20",
        ];
        if codec == "zstd" {
            args.extend(["--transactional-id", &transactional_id, "--transaction-duration-ms", "50"]);
        }
        let out = run_java_tool("org.apache.kafka.tools.ProducerPerformance", &args, Duration::from_secs(90))
            .expect("the Java producer runs");
        assert!(out.status.success(), "{codec}: {}", String::from_utf8_lossy(&out.stderr));
    }

    let out = setup.mirror_until_caught_up(&format!("{}-.*", regex::escape(&prefix)), &[]);
    assert_success(&out);
    for codec in codecs {
        let t = format!("{prefix}-{codec}");
        setup.assert_exactly_once(&t, PARTITIONS, None);
        let copied: usize =
            (0..PARTITIONS).map(|p| setup.target.read_committed_audited(&t, p).expect("read").len()).sum();
        assert_eq!(copied, RECORDS, "{codec}");
    }
}

/// Records with headers (a key twice, one without a value), keys and values absent or empty,
/// and old create times, as Kafka's Java console consumer prints them: the same lines on the
/// target as on the source, partition by partition.
#[test]
fn the_java_consumer_reads_the_same_keys_values_headers_and_timestamps_on_both_sides() {
    if Backend::local().expect("broker choice") != Backend::ApacheKafka {
        eprintln!("skipped: Kafka's Java tools run against Apache Kafka");
        return;
    }
    const PER: usize = 40;
    let setup = Setup::new();
    let t = topic("java-shapes");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    for p in 0..PARTITIONS {
        let records: Vec<RecordData> = (0..PER)
            .map(|i| RecordData {
                key: match i % 4 {
                    0 => None,
                    1 => Some(Vec::new()),
                    _ => Some(format!("k{p}-{i}").into_bytes()),
                },
                value: match i % 5 {
                    0 => None,
                    1 => Some(Vec::new()),
                    _ => Some(format!("v{p}-{i}").into_bytes()),
                },
                headers: match i % 3 {
                    0 => vec![],
                    1 => vec![("trace".into(), Some(format!("t{i}").into_bytes()))],
                    _ => vec![
                        ("dup".into(), Some(b"first".to_vec())),
                        ("none".into(), None),
                        ("dup".into(), Some(b"second".to_vec())),
                    ],
                },
                timestamp: Some(1_500_000_000_000 + i as i64 * 1_000 + i64::from(p)),
            })
            .collect();
        setup.source.produce(&t, p, &records).expect("produce");
    }
    let out = setup.mirror_until_caught_up(&regex::escape(&t), &[]);
    assert_success(&out);

    let printed = |cluster: &KafkaCluster| -> Vec<String> {
        let mut lines = console_lines(
            cluster,
            &t,
            PARTITIONS as usize * PER,
            &[
                "--from-beginning",
                "--property",
                "print.partition=true",
                "--property",
                "print.timestamp=true",
                "--property",
                "print.headers=true",
                "--property",
                "print.key=true",
                "--property",
                "null.literal=<null>",
            ],
        );
        // Partitions interleave as they are fetched; within one the order is the log's.
        lines.sort_by_key(|l| l.split('\t').find(|f| f.starts_with("Partition:")).map(String::from));
        lines
    };
    let (on_source, on_target) = (printed(&setup.source), printed(&setup.target));
    assert_eq!(on_source.len(), PARTITIONS as usize * PER, "{on_source:#?}");
    assert!(on_source.iter().any(|l| l.contains("dup:first,none:<null>,dup:second")), "{on_source:#?}");
    assert_eq!(on_target, on_source, "the Java consumer's view of the copy");
}
