//! Transforms on the way: filters, header edits and provenance change the copy as configured,
//! translation steps over dropped records exactly, and two mirrors in opposite directions
//! (active-active) settle with every record once on each side.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::common::*;
use kmirror_testcontainers::{unique_suffix, KafkaCluster, KafkaSpec, RecordData, StoredRecord};

const PARTITIONS: i32 = 2;

fn records(prefix: &str, partition: i32, n: usize) -> Vec<RecordData> {
    (0..n)
        .map(|i| {
            let key = if i % 3 == 0 {
                format!("{prefix}-{partition}-{i}-drop")
            } else {
                format!("{prefix}-{partition}-{i}")
            };
            RecordData {
                key: Some(key.into_bytes()),
                value: Some(format!("value-{i}").into_bytes()),
                headers: vec![("trace".into(), Some(format!("t{i}").into_bytes()))],
                timestamp: Some(1_700_000_000_000 + i as i64),
            }
        })
        .collect()
}

/// What the configured chain must make of a source record: the test's own reading of the spec.
fn expected(topic: &str, partition: i32, source: &StoredRecord) -> Option<RecordData> {
    let key = source.data.key.clone().unwrap_or_default();
    if key.ends_with(b"-drop") {
        return None;
    }
    let mut data = source.data.clone();
    for (name, _) in data.headers.iter_mut() {
        if name == "trace" {
            *name = "trace-id".into();
        }
    }
    data.headers.push(("env".into(), Some(b"dr".to_vec())));
    data.headers.push((
        "kmirror.provenance".into(),
        Some(format!("eu/{topic}/{partition}/{}", source.offset).into_bytes()),
    ));
    Some(data)
}

fn visible(cluster: &KafkaCluster, topic: &str, partition: i32) -> Vec<StoredRecord> {
    cluster.read_committed_audited(topic, partition).expect("read")
}

#[test]
fn filters_headers_and_provenance_shape_the_copy_and_translation_steps_over_gaps() {
    let setup = Setup::new();
    let t = topic("transform");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    for p in 0..PARTITIONS {
        setup.source.produce(&t, p, &records("r", p, 300)).expect("produce");
    }
    // Positions at a dropped record (offset 3), at a kept one (4), and past the last kept one.
    let group = format!("g-{}", unique_suffix());
    commit_group(&setup.source, &group, &t, &BTreeMap::from([(0, 3), (1, 4)]));
    let transforms = [
        "--transform",
        "filter:drop:key=.*-drop",
        "--transform",
        "headers:rename:trace=>trace-id",
        "--transform",
        "headers:add:env=dr",
        "--transform",
        "provenance:eu",
        "--groups",
        group.as_str(),
    ];
    assert_success(&setup.mirror_until_caught_up(&t, &transforms));

    let mut target_offset_of: HashMap<Vec<u8>, i64> = HashMap::new();
    for p in 0..PARTITIONS {
        let source = visible(&setup.source, &t, p);
        let want: Vec<RecordData> = source.iter().filter_map(|r| expected(&t, p, r)).collect();
        let got = visible(&setup.target, &t, p);
        assert_eq!(want.len(), 200, "two of three records kept");
        let got_data: Vec<RecordData> = got.iter().map(|r| r.data.clone()).collect();
        assert_eq!(got_data, want, "partition {p}: exactly the transformed records, once, in order");
        for r in &got {
            target_offset_of.insert(r.data.key.clone().unwrap_or_default(), r.offset);
        }
    }

    let out = run(
        &[
            "translate-offsets".to_string(),
            "--target".into(),
            setup.target.bootstrap().into(),
            "--source".into(),
            setup.source.bootstrap().into(),
            "--name".into(),
            setup.name.clone(),
            "--group".into(),
            group.clone(),
            "--format".into(),
            "json".into(),
            "--state-dir".into(),
            setup.state_dir.path().join("translate").display().to_string(),
        ],
        Duration::from_secs(60),
    );
    assert_success(&out);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let target_of = |p: i64| {
        rows.as_array()
            .and_then(|r| r.iter().find(|row| row["source_partition"] == p))
            .and_then(|row| row["target_offset"].as_i64())
    };
    // Partition 0 stands at offset 3, a dropped record: the group resumes at the next kept one (4).
    assert_eq!(target_of(0), target_offset_of.get(&b"r-0-4"[..]).copied(), "{rows}");
    assert_eq!(target_of(1), target_offset_of.get(&b"r-1-4"[..]).copied(), "{rows}");
}

fn mirror_args(
    source: &KafkaCluster,
    target: &KafkaCluster,
    name: &str,
    topic: &str,
    aliases: (&str, &str),
    state: &std::path::Path,
) -> Vec<String> {
    [
        "mirror",
        "--source",
        source.bootstrap(),
        "--target",
        target.bootstrap(),
        "--name",
        name,
        "--topics",
        topic,
        "--source-alias",
        aliases.0,
        "--target-alias",
        aliases.1,
        "--until-caught-up",
        "--transaction-max-ms",
        "100",
        "--state-dir",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(std::iter::once(state.display().to_string()))
    .collect()
}

fn keys_once_each(cluster: &KafkaCluster, topic: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for p in 0..PARTITIONS {
        keys.extend(
            visible(cluster, topic, p)
                .into_iter()
                .map(|r| String::from_utf8_lossy(&r.data.key.unwrap_or_default()).into_owned()),
        );
    }
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), keys.len(), "a record is present twice on {}", cluster.bootstrap());
    sorted
}

/// Writes `rounds` batches of 50 keyed records to every partition, one batch every 100 ms.
fn write_in_background(
    cluster: &KafkaCluster,
    topic: &str,
    prefix: &'static str,
    rounds: usize,
) -> std::thread::JoinHandle<()> {
    let config = cluster.client_config();
    let topic = topic.to_string();
    std::thread::spawn(move || {
        use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
        let producer: ThreadedProducer<DefaultProducerContext> = config.create().expect("producer");
        for round in 0..rounds {
            for p in 0..PARTITIONS {
                for i in 0..50 {
                    let key = format!("{prefix}-{round}-{p}-{i}");
                    let mut record = BaseRecord::<str, str>::to(&topic).partition(p).key(&key).payload(&key);
                    while let Err((_, back)) = producer.send(record) {
                        record = back;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        producer.flush(Duration::from_secs(30)).expect("flush");
    })
}

fn count_visible(cluster: &KafkaCluster, topic: &str) -> usize {
    (0..PARTITIONS).map(|p| cluster.read_committed_audited(topic, p).map(|r| r.len()).unwrap_or(0)).sum()
}

#[test]
fn two_mirrors_in_opposite_directions_settle_with_every_record_once_on_each_side() {
    let setup = Setup::new();
    let (a, b) = (&setup.source, &setup.target);
    let t = topic("active");
    a.create_topic(&t, PARTITIONS, &[]).expect("topic on a");
    b.create_topic(&t, PARTITIONS, &[]).expect("topic on b");
    let state = setup.state_dir.path();
    let (ab, ba) = (format!("ab{}", unique_suffix()), format!("ba{}", unique_suffix()));
    let continuous = |mut args: Vec<String>| {
        args.retain(|x| x != "--until-caught-up");
        spawn(&args)
    };
    // Both mirrors run while both sides are written.
    let mut a_to_b = continuous(mirror_args(a, b, &ab, &t, ("a", "b"), &state.join("ab")));
    let mut b_to_a = continuous(mirror_args(b, a, &ba, &t, ("b", "a"), &state.join("ba")));
    let rounds = 30;
    let writers = [write_in_background(a, &t, "a", rounds), write_in_background(b, &t, "b", rounds)];
    for w in writers {
        w.join().expect("writer");
    }
    let total = 2 * rounds * PARTITIONS as usize * 50;
    let started = std::time::Instant::now();
    while count_visible(a, &t) < total || count_visible(b, &t) < total {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "did not settle: a {} b {} of {total}",
            count_visible(a, &t),
            count_visible(b, &t)
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    // Give a cycle the chance to show, then stop both.
    std::thread::sleep(Duration::from_secs(3));
    for child in [&mut a_to_b, &mut b_to_a] {
        terminate(child);
        assert!(child.wait().expect("wait").success());
    }
    let on_a = keys_once_each(a, &t);
    let on_b = keys_once_each(b, &t);
    assert_eq!(on_a.len(), total, "every record of both sides on a, once");
    assert_eq!(on_a, on_b, "both clusters hold the same records");
}

/// Two mirrors both ways whose copies are named by cluster alias (`--rename prefix:`, as
/// MirrorMaker 2 names them): each copies the other side's own topic once, and never the copy
/// the other mirror made of its own (which copied back, then again, would make
/// `west.east.T`, `east.west.east.T`, ... without end).
#[test]
fn two_mirrors_both_ways_with_prefixed_copies_copy_no_copy_back() {
    let setup = Setup::new();
    let (a, b) = (&setup.source, &setup.target);
    let t = topic("ring");
    for (cluster, side) in [(a, "a"), (b, "b")] {
        cluster.create_topic(&t, 1, &[]).expect("topic");
        cluster.produce(&t, 0, &keyed(side, 0..10)).expect("produce");
    }
    let state = setup.state_dir.path();
    let (ab, ba) = (format!("ab{}", unique_suffix()), format!("ba{}", unique_suffix()));
    let every_name = format!("(?:.*\\.)?{}", regex::escape(&t));
    let mirror = |from, to, name: &str, aliases: (&str, &str)| {
        let mut args = mirror_args(from, to, name, &every_name, aliases, &state.join(name));
        args.extend(["--rename".to_string(), format!("prefix:{}", aliases.0)]);
        assert_success(&run(&args, Duration::from_secs(120)));
    };
    for _ in 0..2 {
        mirror(a, b, &ab, ("east", "west"));
        mirror(b, a, &ba, ("west", "east"));
    }
    let keys = |cluster: &KafkaCluster, topic: &str| -> Vec<Vec<u8>> {
        cluster
            .read_committed_audited(topic, 0)
            .expect("read")
            .into_iter()
            .map(|r| r.data.key.unwrap_or_default())
            .collect()
    };
    let expected =
        |side: &str| keyed(side, 0..10).into_iter().map(|r| r.key.unwrap_or_default()).collect::<Vec<_>>();
    assert_eq!(keys(b, &format!("east.{t}")), expected("a"), "a's own on b, once");
    assert_eq!(keys(a, &format!("west.{t}")), expected("b"), "b's own on a, once");
    for (cluster, copy_back) in [(a, format!("west.east.{t}")), (b, format!("east.west.{t}"))] {
        assert_eq!(cluster.partition_count(&copy_back).expect("metadata"), None, "{copy_back} was made");
    }
}

/// Three clusters, b and c mirrored both ways and a mirroring to b (identity names, origin
/// marks): the records born on a reach b and c once each. Before, only a record's birth was
/// marked, and a's records went on between b and c without end.
#[test]
fn three_clusters_with_two_mirrored_both_ways_copy_a_third_ones_records_once() {
    let setup = Setup::new();
    let c = KafkaCluster::start_kafka(&KafkaSpec::plaintext(1)).expect("a third cluster");
    let (a, b) = (&setup.source, &setup.target);
    let t = topic("three");
    for cluster in [a, b, &c] {
        cluster.create_topic(&t, PARTITIONS, &[]).expect("topic");
    }
    for p in 0..PARTITIONS {
        a.produce(&t, p, &keyed(&format!("a{p}"), 0..20)).expect("produce");
    }
    let state = setup.state_dir.path();
    let suffix = unique_suffix();
    let mirror = |from, to, aliases: (&str, &str)| {
        let name = format!("{}{}{suffix}", aliases.0, aliases.1);
        assert_success(&run(
            &mirror_args(from, to, &name, &t, aliases, &state.join(&name)),
            Duration::from_secs(120),
        ));
    };
    mirror(a, b, ("a", "b"));
    for _ in 0..2 {
        mirror(b, &c, ("b", "c"));
        mirror(&c, b, ("c", "b"));
    }
    let born_on_a = keys_once_each(a, &t);
    assert_eq!(born_on_a.len(), 2 * 20);
    for (name, cluster) in [("b", b), ("c", &c)] {
        assert_eq!(count_visible(cluster, &t), born_on_a.len(), "records on {name}");
        assert_eq!(keys_once_each(cluster, &t), born_on_a, "a's records on {name}, once");
    }
}

const REWRITE: &str = r#"
fn transform(record) {
    if record.offset % 3 == 0 { return (); }
    record.value = record.value.as_string().to_upper().to_blob();
    record
}
"#;

fn script_file(dir: &std::path::Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write script");
    path.display().to_string()
}

/// The rewrite script's output for a partition, computed here from the source.
fn rewritten(source: &[StoredRecord]) -> Vec<RecordData> {
    source
        .iter()
        .filter(|r| r.offset % 3 != 0)
        .map(|r| {
            let mut d = r.data.clone();
            d.value = d.value.map(|v| String::from_utf8_lossy(&v).to_uppercase().into_bytes());
            d
        })
        .collect()
}

#[test]
fn a_script_rewrites_and_drops_exactly_once_through_sigkills() {
    let setup = Setup::new();
    let t = topic("script");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    let script = script_file(setup.state_dir.path(), "rewrite.rhai", REWRITE);
    let args = [
        "--transform".to_string(),
        format!("script:{script}"),
        "--transaction-max-records".into(),
        "200".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    for round in 0..6 {
        for p in 0..PARTITIONS {
            setup.source.produce(&t, p, &keyed(&format!("s{round}-{p}"), 0..1_000)).expect("produce");
        }
        let mut child = setup.spawn_mirror(&t, &args);
        std::thread::sleep(Duration::from_millis(600 + 250 * round));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }
    assert_success(&setup.mirror_until_caught_up(&t, &args));
    for p in 0..PARTITIONS {
        let want = rewritten(&visible(&setup.source, &t, p));
        let got: Vec<RecordData> = visible(&setup.target, &t, p).into_iter().map(|r| r.data).collect();
        assert_eq!(got.len(), want.len(), "partition {p}: no record lost or repeated");
        assert!(got == want, "partition {p}: the script's output, in order");
    }
}

#[test]
fn a_runaway_script_stops_the_mirror_naming_the_record_and_skip_leaves_failures_out() {
    let setup = Setup::new();
    let t = topic("runaway");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("r", 0..100)).expect("produce");
    let looping = script_file(
        setup.state_dir.path(),
        "loop.rhai",
        "fn transform(r) { if r.offset == 50 { loop { } } r }",
    );
    let spec = format!("script:{looping}");
    let out = setup.mirror_until_caught_up(&t, &["--transform", &spec]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line =
        stderr(&out).lines().find(|l| l.starts_with("kmirror: error:")).map(String::from).unwrap_or_default();
    assert!(line.contains(&format!("{t}/0 offset 50")) && line.contains("operations"), "{}", stderr(&out));
    let written = setup.target.read_committed_audited(&t, 0).map(|r| r.len()).unwrap_or(0);
    assert_eq!(written, 0, "nothing of the failed transaction is visible");

    let throwing = script_file(
        setup.state_dir.path(),
        "throw.rhai",
        "fn transform(r) { if r.offset == 50 { throw \"bad\"; } r }",
    );
    let spec = format!("script:{throwing}");
    let out = setup.mirror_until_caught_up(&t, &["--transform", &spec, "--on-transform-error", "skip"]);
    assert_success(&out);
    assert!(
        stderr(&out).contains("offset=50") && stderr(&out).contains("record skipped"),
        "{}",
        stderr(&out)
    );
    let source = visible(&setup.source, &t, 0);
    let want: Vec<RecordData> = source.iter().filter(|r| r.offset != 50).map(|r| r.data.clone()).collect();
    let got: Vec<RecordData> = visible(&setup.target, &t, 0).into_iter().map(|r| r.data).collect();
    assert!(got == want, "every record but the failing one, once: {} of {}", got.len(), want.len());
}

/// A transform that drops every other record makes each kept copy a run of its own in the offset
/// map: one transaction of 150 000 of them holds more runs than one map record (1 MB) may, so
/// the runs go out as several records. (As one, the transaction aborted on every try and the
/// mirror copied nothing.) Translation then steps over the gaps anywhere in the partition.
#[test]
fn a_transaction_of_more_runs_than_one_map_record_holds_commits_and_translates() {
    const RECORDS: usize = 300_000;
    let setup = Setup::new();
    let t = topic("manyruns");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    let records: Vec<RecordData> = (0..RECORDS)
        .map(|i| RecordData::keyed(format!("{}-{i}", if i % 2 == 0 { "keep" } else { "drop" }), "v"))
        .collect();
    setup.source.produce(&t, 0, &records).expect("produce");
    let group = format!("g-{}", unique_suffix());
    // At a dropped record near the end: the group resumes at the next kept one.
    commit_group(&setup.source, &group, &t, &BTreeMap::from([(0, 250_001)]));
    let mut args = setup.args(&regex::escape(&t), &[]);
    // One transaction for the whole partition.
    let at = args.iter().position(|a| a == "--transaction-max-ms").expect("the setup's flag");
    args[at + 1] = "60000".into();
    args.extend(
        [
            "--transaction-max-records",
            "400000",
            "--transform",
            "filter:drop:key=drop-.*",
            "--groups",
            &group,
            "--sync-group-offsets",
            "--until-caught-up",
        ]
        .map(String::from),
    );
    let out = run(&args, Duration::from_secs(90));
    assert_success(&out);
    let copied = visible(&setup.target, &t, 0);
    let keys: Vec<Vec<u8>> = copied.iter().map(|r| r.data.key.clone().unwrap_or_default()).collect();
    let want: Vec<Vec<u8>> = (0..RECORDS).step_by(2).map(|i| format!("keep-{i}").into_bytes()).collect();
    assert!(keys == want, "{} copies, every kept record once and in order", keys.len());
    // The 150 000 runs went out as map records of at most 16 384 runs each (4 shards: the map
    // topic's partitions).
    let map = format!("kmirror.offset-map.{}", setup.name);
    let map_records: usize =
        (0..4).map(|p| setup.target.read_committed_audited(&map, p).expect("read the map").len()).sum();
    assert!(map_records >= 10, "{map_records} map records");
    let position = group_offsets(&setup.target, &group, &t, 1)[&0];
    let at = copied.iter().find(|r| r.data.key.as_deref() == Some(&b"keep-250002"[..])).map(|r| r.offset);
    assert_eq!(position, at, "the group moved to the copy of the next kept record");
}
