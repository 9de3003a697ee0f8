//! Records land on the target in the same partition and order, byte for byte, in topics created
//! with the source's partition count and configs.

use crate::common::*;
use kmirror_testcontainers::RecordData;

/// Records of every shape the mirror must carry unchanged.
fn varied_records(partition: i32, count: usize) -> Vec<RecordData> {
    (0..count)
        .map(|i| {
            let key = match i % 5 {
                0 => None,
                1 => Some(Vec::new()),
                _ => Some(format!("key-{partition}-{i}").into_bytes()),
            };
            let value = match i % 7 {
                0 => None,
                1 => Some(Vec::new()),
                2 => Some((0..=255u8).collect()),
                _ => Some(format!("value-{partition}-{i}-{}", "x".repeat(i % 50)).into_bytes()),
            };
            let headers = match i % 4 {
                0 => Vec::new(),
                1 => vec![("trace".to_string(), Some(vec![0, 1, 2, 255]))],
                2 => vec![
                    ("dup".to_string(), Some(b"first".to_vec())),
                    ("other".to_string(), None),
                    ("dup".to_string(), Some(b"second".to_vec())),
                ],
                _ => vec![("h1".to_string(), Some(Vec::new())), ("h2".to_string(), Some(b"v".to_vec()))],
            };
            RecordData {
                key,
                value,
                headers,
                timestamp: Some(1_600_000_000_000 + (i as i64) * 1000 + i64::from(partition)),
            }
        })
        .collect()
}

#[test]
fn every_record_lands_identical_in_its_partition_and_topic_matches_source() {
    let setup = Setup::new();
    let t = topic("content");
    setup
        .source
        .create_topic(&t, 4, &[("retention.ms", "987654321"), ("max.message.bytes", "2097152")])
        .expect("source topic");
    for partition in 0..4 {
        setup.source.produce(&t, partition, &varied_records(partition, 5_000)).expect("produce");
    }

    let out = setup.mirror_until_caught_up(&t, &[]);
    assert_success(&out);

    assert_eq!(setup.target.partition_count(&t).expect("metadata"), Some(4));
    let configs = setup.target.topic_configs(&t).expect("describe");
    assert_eq!(configs.get("retention.ms").map(String::as_str), Some("987654321"));
    assert_eq!(configs.get("max.message.bytes").map(String::as_str), Some("2097152"));
    setup.assert_exactly_once(&t, 4, Some(5_000));
    // The audit compared full contents; spot-check the shapes survived, as the source has them.
    let first = setup.target.read_committed_audited(&t, 2).expect("read");
    let expected = varied_records(2, 5_000);
    assert_eq!(first.len(), expected.len());
    for (got, want) in first.iter().zip(&expected) {
        assert_eq!(&got.data, want, "record at target offset {}", got.offset);
    }
}

#[test]
fn a_rerun_when_caught_up_copies_nothing_more() {
    let setup = Setup::new();
    let t = topic("rerun");
    setup.source.create_topic(&t, 2, &[]).expect("topic");
    for p in 0..2 {
        setup.source.produce(&t, p, &keyed(&format!("p{p}"), 0..300)).expect("produce");
    }
    assert_success(&setup.mirror_until_caught_up(&t, &[]));
    assert_success(&setup.mirror_until_caught_up(&t, &[]));
    setup.assert_exactly_once(&t, 2, Some(300));
}

#[test]
fn a_batch_run_with_more_workers_than_partitions_finishes() {
    let setup = Setup::new();
    let t = topic("single");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("k", 0..100)).expect("produce");
    // Two workers, one partition: one worker hosts no shard and must not hold the run open.
    assert_success(&setup.mirror_until_caught_up(&t, &["--num-streams", "2"]));
    setup.assert_exactly_once(&t, 1, Some(100));
}

/// Records larger than librdkafka's default `message.max.bytes` (1 000 000) on a topic that takes
/// them: with the producer's limit set by the user to Kafka's default (1 048 588), one of
/// 1 040 000 bytes is copied and one of 3 MiB stops the run at once in one line naming it and the
/// setting, with nothing of its transaction committed; left to kmirror, the limit is raised for
/// that record and the next run copies everything exactly once.
#[test]
fn records_over_a_mebibyte_are_copied_or_refused_by_name_never_retried_for_ever() {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let setup = Setup::new();
    let t = topic("large");
    setup.source.create_topic(&t, 1, &[("max.message.bytes", "8388608")]).expect("source topic");
    let producer: ThreadedProducer<DefaultProducerContext> = setup
        .source
        .client_config()
        .set("message.max.bytes", "8388608")
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    let pattern = |len: u32| -> Vec<u8> { (0..len).map(|i| (i % 251) as u8).collect() };
    let big = pattern(3 * 1024 * 1024 + 17);
    let values: Vec<Vec<u8>> =
        vec![b"before".to_vec(), pattern(1_040_000), b"between".to_vec(), big.clone(), b"after".to_vec()];
    for (i, value) in values.iter().enumerate() {
        let key = format!("k{i}");
        producer
            .send(BaseRecord::to(&t).partition(0).key(&key).payload(value))
            .map_err(|(e, _)| e)
            .expect("send");
    }
    producer.flush(std::time::Duration::from_secs(30)).expect("flush");

    // The limit set by the user: the 1 040 000-byte record (offset 1) is sent, the 3 MiB one
    // (offset 3) stops the run at once, named with the setting that lets it through.
    let started = std::time::Instant::now();
    let refused = setup.mirror_until_caught_up(&t, &["--set", "target.message.max.bytes=1048588"]);
    let line = stderr(&refused).lines().find(|l| l.starts_with("kmirror: error:")).map(String::from);
    assert!(
        refused.status.code() == Some(1)
            && line.as_ref().is_some_and(|l| {
                l.contains(&format!("source {t} partition 0 offset 3 ({} bytes", big.len() + 2))
                    && l.contains("--set target.message.max.bytes=")
            }),
        "one line naming the record and the fix ({}):\n{}",
        refused.status,
        stderr(&refused)
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "stopped at once: {:?}",
        started.elapsed()
    );
    let landed = setup.target.read_committed_audited(&t, 0).expect("read");
    assert!(landed.len() <= 3, "nothing from the refused record on: {} records", landed.len());
    for (got, want) in landed.iter().zip(&values) {
        assert_eq!(got.data.value.as_ref(), Some(want), "offset {}", got.offset);
    }

    // Left to kmirror, the limit is raised for the record: the run resumes there and the copy
    // is exact.
    let out = setup.mirror_until_caught_up(&t, &[]);
    assert_success(&out);
    assert!(stderr(&out).contains("raising it for this shard"), "the raise is said:\n{}", stderr(&out));
    setup.assert_exactly_once(&t, 1, Some(values.len()));
    let copied = setup.target.read_committed_audited(&t, 0).expect("read");
    let got: Vec<Vec<u8>> = copied.iter().map(|r| r.data.value.clone().unwrap_or_default()).collect();
    assert!(got == values, "values differ: lengths {:?}", got.iter().map(Vec::len).collect::<Vec<_>>());
}

/// A compacted source topic: its offsets have gaps where the cleaner removed records. The copy
/// holds exactly what the source still holds (the latest value of each key, tombstones kept),
/// in order, and groups that committed a position inside a gap (before the first record held,
/// or between two) are moved on the target to the copy of the first record after it, so that a
/// consumer moved there reads on from the same record.
#[test]
fn a_compacted_source_is_copied_as_it_stands_and_groups_inside_gaps_translate_exactly() {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};
    let setup = Setup::new();
    let t = topic("compacted");
    let configs = [
        ("cleanup.policy", "compact"),
        ("segment.ms", "100"),
        ("min.cleanable.dirty.ratio", "0.001"),
        ("min.compaction.lag.ms", "0"),
    ];
    setup.source.create_topic(&t, 1, &configs).expect("topic");
    let values = |round: usize, keys: std::ops::Range<usize>| -> Vec<RecordData> {
        keys.map(|k| RecordData::keyed(format!("k{k}"), format!("v{round}-{k}"))).collect()
    };
    // Offsets 0-9 and 10-19: every key twice; 20-24: five keys a third time.
    for (round, keys) in [(0, 0..10), (1, 0..10), (2, 0..5)] {
        setup.source.produce(&t, 0, &values(round, keys)).expect("produce");
    }
    let tombstones: Vec<RecordData> =
        (0..3).map(|k| RecordData { value: None, ..RecordData::keyed(format!("k{k}"), "") }).collect();
    setup.source.produce(&t, 0, &tombstones).expect("tombstones");
    setup.source.produce(&t, 0, &[RecordData::keyed("k3", "")]).expect("empty value");
    // A segment rolls at the first write after segment.ms; the cleaner never cleans the
    // segment being written.
    std::thread::sleep(Duration::from_millis(300));
    setup.source.produce(&t, 0, &[RecordData::keyed("last", "written after the roll")]).expect("roll");
    let started = Instant::now();
    let source = loop {
        let held = setup.source.read_committed_audited(&t, 0).expect("read the source");
        // k5-k9 of the second round, k4 of the third, three tombstones, k3's empty value and the
        // last record.
        if held.len() == 11 {
            break held;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the source was not compacted: {} records",
            held.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let kept: Vec<i64> = source.iter().map(|r| r.offset).collect();
    let leading_gap = kept[0] - 1;
    let middle_gap =
        (kept[0]..kept[kept.len() - 1]).find(|o| !kept.contains(o)).expect("a gap between records");
    let suffix = kmirror_testcontainers::unique_suffix();
    let groups = [(format!("leading-{suffix}"), leading_gap), (format!("middle-{suffix}"), middle_gap)];
    for (group, position) in &groups {
        commit_group(&setup.source, group, &t, &BTreeMap::from([(0, *position)]));
    }

    let out = setup.mirror_until_caught_up(
        &regex::escape(&t),
        &["--groups", &format!("(leading|middle)-{suffix}"), "--sync-group-offsets"],
    );
    assert_success(&out);
    setup.assert_exactly_once(&t, 1, Some(11));
    let copied = setup.target.read_committed_audited(&t, 0).expect("read the target");
    assert_eq!(
        copied.iter().map(|r| r.data.clone()).collect::<Vec<_>>(),
        source.iter().map(|r| r.data.clone()).collect::<Vec<_>>()
    );
    assert_eq!(copied.iter().filter(|r| r.data.value.is_none()).count(), 3, "tombstones kept");
    for (group, gap) in &groups {
        // The copy is dense: the first record after the gap is copied at the index it has
        // among the records the source still holds.
        let expected = kept.iter().filter(|&&o| o < *gap).count() as i64;
        let translated = group_offsets(&setup.target, group, &t, 1);
        assert_eq!(
            translated,
            BTreeMap::from([(0, Some(expected))]),
            "{group} at {gap}, source offsets {kept:?}"
        );
        let next_on_source = &source.iter().find(|r| r.offset >= *gap).expect("a record after the gap").data;
        assert_eq!(&copied[expected as usize].data, next_on_source, "{group}");
    }
}
