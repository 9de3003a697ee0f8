//! Transforms on the way: filters, header edits and provenance change the copy as configured,
//! translation steps over dropped records exactly, and two mirrors in opposite directions
//! (active-active) settle with every record once on each side.
mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use common::*;
use kmirror_testcontainers::{unique_suffix, KafkaCluster, RecordData, StoredRecord};

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

#[test]
fn two_mirrors_in_opposite_directions_settle_with_every_record_once_on_each_side() {
    let setup = Setup::new();
    let (a, b) = (&setup.source, &setup.target);
    let t = topic("active");
    a.create_topic(&t, PARTITIONS, &[]).expect("topic on a");
    b.create_topic(&t, PARTITIONS, &[]).expect("topic on b");
    let state = setup.state_dir.path();
    let (ab, ba) = (format!("ab{}", unique_suffix()), format!("ba{}", unique_suffix()));
    for round in 0..3 {
        for p in 0..PARTITIONS {
            a.produce(&t, p, &keyed(&format!("a{round}-{p}"), 0..100)).expect("produce on a");
            b.produce(&t, p, &keyed(&format!("b{round}-{p}"), 0..100)).expect("produce on b");
        }
        assert_success(&run(
            &mirror_args(a, b, &ab, &t, ("a", "b"), &state.join("ab")),
            Duration::from_secs(60),
        ));
        assert_success(&run(
            &mirror_args(b, a, &ba, &t, ("b", "a"), &state.join("ba")),
            Duration::from_secs(60),
        ));
    }
    // Once more each way: nothing new may appear (nothing cycles).
    assert_success(&run(&mirror_args(a, b, &ab, &t, ("a", "b"), &state.join("ab")), Duration::from_secs(60)));
    assert_success(&run(&mirror_args(b, a, &ba, &t, ("b", "a"), &state.join("ba")), Duration::from_secs(60)));
    let on_a = keys_once_each(a, &t);
    let on_b = keys_once_each(b, &t);
    assert_eq!(on_a.len(), 3 * 2 * PARTITIONS as usize * 100, "every record of both sides on a");
    assert_eq!(on_a, on_b, "both clusters hold the same records");
}
