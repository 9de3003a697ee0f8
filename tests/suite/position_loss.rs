//! A saved position that no longer means what it meant is refused by name, never jumped over:
//! a recreated source topic, records the source deleted before they were copied, a changed
//! `--rename` under the same `--name`. Exit code 4, one error line, the target untouched. A
//! position the shadow group lost to offset expiry is rebuilt from the map topic, not re-copied.

use std::time::Duration;

use crate::common::*;
use kmirror_testcontainers::{KafkaCluster, KafkaSpec, RecordData};

const REFUSED: i32 = 4;

/// Runs a batch that must be refused with exit code 4 and one error line holding every part.
fn assert_refused(setup: &Setup, topics: &str, extra: &[&str], parts: &[&str]) {
    let out = setup.mirror_until_caught_up(topics, extra);
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(REFUSED), "must be refused with exit code 4: {message}");
    let errors: Vec<&str> = message.lines().filter(|l| l.starts_with("kmirror: error:")).collect();
    assert_eq!(errors.len(), 1, "exactly one error line: {message}");
    for part in parts {
        assert!(errors[0].contains(part), "the error names {part}: {}", errors[0]);
    }
}

fn translate_offsets(setup: &Setup, group: &str) -> std::process::Output {
    let state = setup.state_dir.path().join(format!("{}.translate", setup.name));
    setup.translate_offsets(&state, &["--group", group])
}

fn values(records: &[RecordData]) -> Vec<Vec<u8>> {
    records.iter().filter_map(|r| r.value.clone()).collect()
}

/// The target partition's values, by the transaction-aware audit of its log; a plain
/// `read_committed` consumer must read the same.
fn target_values(setup: &Setup, topic: &str, expected: usize) -> Vec<Vec<u8>> {
    let audited: Vec<Vec<u8>> = setup
        .target
        .read_committed_audited(topic, 0)
        .expect("audit")
        .into_iter()
        .filter_map(|r| r.data.value)
        .collect();
    let plain: Vec<Vec<u8>> =
        plain_read_committed(&setup.target, topic, 0, expected).into_iter().filter_map(|(_, v)| v).collect();
    assert_eq!(audited, plain, "the audit and a plain read_committed consumer agree");
    audited
}

#[test]
fn a_recreated_source_topic_is_refused_not_skipped() {
    let setup = Setup::new();
    let t = topic("recreated");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    let first = keyed("old", 0..1000);
    setup.source.produce(&t, 0, &first).expect("produce");
    assert_success(&setup.mirror_until_caught_up(&t, &[]));
    assert_eq!(target_values(&setup, &t, first.len()), values(&first));

    setup.source.delete_topic(&t).expect("delete");
    setup.source.create_topic(&t, 1, &[]).expect("recreate");
    setup.source.produce(&t, 0, &keyed("new", 0..300)).expect("produce");
    // Before: "nothing to do", exit 0. The saved position 1000 is past the new topic's end too,
    // but the topic ID names the cause.
    assert_refused(&setup, &t, &[], &[&t, "deleted and recreated", "1000"]);

    // Before: 200 records past the old position copied, exit 0, 1000 records never mirrored.
    setup.source.produce(&t, 0, &keyed("new", 300..1200)).expect("produce");
    assert_refused(&setup, &t, &[], &[&t, "deleted and recreated", "--name"]);
    assert_refused(&setup, &t, &["--on-missing-source", "skip"], &["deleted and recreated"]);
    assert_eq!(target_values(&setup, &t, first.len()), values(&first), "nothing of the new topic was copied");
}

#[test]
fn records_deleted_before_they_were_copied_are_refused_then_skipped_by_policy() {
    let setup = Setup::new();
    let t = topic("truncated");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    let all = keyed("r", 0..300);
    setup.source.produce(&t, 0, &all[..100]).expect("produce");
    assert_success(&setup.mirror_until_caught_up(&t, &[]));
    setup.source.produce(&t, 0, &all[100..]).expect("produce");
    assert_eq!(setup.source.delete_records(&t, 0, 250).expect("delete records"), 250);

    assert_refused(
        &setup,
        &t,
        &[],
        &[&t, "partition 0", "position 100", "start 250", "--on-missing-source skip"],
    );
    assert_eq!(target_values(&setup, &t, 100), values(&all[..100]), "a refusal copies nothing");

    let out = setup.mirror_until_caught_up(&t, &["--on-missing-source", "skip"]);
    assert_success(&out);
    let log = stderr(&out);
    assert!(log.contains("from=100") && log.contains("to=250"), "the skipped range is logged: {log}");
    let mut expected = values(&all[..100]);
    expected.extend(values(&all[250..]));
    assert_eq!(
        target_values(&setup, &t, expected.len()),
        expected,
        "the records the source still had, once each, in order"
    );

    // verify from the moved log start: the 100 copies of records the source has since deleted
    // are neither extra nor compared; the 50 it still has are.
    let state = tempfile::tempdir().expect("tempdir");
    let out = setup.verify(state.path(), &[]);
    let report: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json report");
    assert!(out.status.success(), "{report:?} {}", stderr(&out));
    let row = &report[0];
    assert_eq!(
        (
            row["source_start"].as_i64(),
            row["expired"].as_i64(),
            row["checked"].as_i64(),
            row["extra"].as_i64()
        ),
        (Some(250), Some(100), Some(50), Some(0)),
        "{row}"
    );
    assert_eq!(row["skipped_by_policy"].as_i64(), Some(150), "the skipped range, counted apart: {row}");

    // A group whose position lies in the skipped range moves to the copy of the first record
    // after it, and the answer says why; one before the range gets no such note.
    let copies = setup.target.read_committed_audited(&t, 0).expect("audit");
    let copy_at =
        |value: &[u8]| copies.iter().find(|r| r.data.value.as_deref() == Some(value)).map(|r| r.offset);
    for (group, at, expected, note) in [
        (format!("in-gap-{t}"), 150, copy_at(all[250].value.as_deref().expect("value")), true),
        (format!("before-gap-{t}"), 40, copy_at(all[40].value.as_deref().expect("value")), false),
    ] {
        commit_group(&setup.source, &group, &t, &[(0, at)].into_iter().collect());
        let out = translate_offsets(&setup, &group);
        assert!(out.status.success(), "{}", stderr(&out));
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json rows");
        let row = &rows[0];
        assert_eq!(
            (row["source_offset"].as_i64(), row["target_offset"].as_i64()),
            (Some(at), expected),
            "{row}"
        );
        let says = row["note"].as_str().unwrap_or_default();
        assert_eq!(says.contains("skipped by policy") && says.contains("100..250"), note, "{row}");
    }

    // The gap is behind the mirror now: the next run has nothing to refuse or skip.
    let again = setup.mirror_until_caught_up(&t, &[]);
    assert_success(&again);
    assert!(!stderr(&again).contains("deleted records"), "{}", stderr(&again));
}

#[test]
fn a_changed_rename_under_the_same_name_is_refused() {
    let setup = Setup::new();
    let (a, b) = (topic("rename-a"), topic("rename-b"));
    let into = topic("rename-into");
    for t in [&a, &b] {
        setup.source.create_topic(t, 1, &[]).expect("topic");
    }
    setup.source.produce(&a, 0, &keyed("a", 0..50)).expect("produce");
    setup.source.produce(&b, 0, &keyed("b", 0..80)).expect("produce");
    let first = format!("regex:{a}=>{into}");
    assert_success(&setup.mirror_until_caught_up(&a, &["--rename", &first]));

    // Before: b resumed at a's position 50 in the same target partition, its first 50 records
    // never copied and two topics mixed in one.
    let second = format!("regex:{b}=>{into}");
    assert_refused(&setup, &b, &["--rename", &second], &[&a, &b, "--rename"]);
    let audit = setup.target.audit_partition(&into, 0).expect("audit");
    assert_eq!(audit.visible.len(), 50, "only a's records are in the target topic");
}

#[test]
fn help_names_the_policy() {
    let out = run(&["mirror".into(), "--help".into()], Duration::from_secs(10));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--on-missing-source") && help.contains("skip"), "{help}");
}

/// Kafka expires a member-less group's offsets `offsets.retention.minutes` after their last
/// commit: a mirror stopped for a week, or a partition idle that long, loses its shadow
/// position. Deleting the shadow groups does the same at once.
#[test]
fn expired_shadow_positions_resume_from_the_map_not_from_the_start() {
    let setup = Setup::new();
    let t = topic("expired");
    setup.source.create_topic(&t, 2, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("a", 0..400)).expect("produce");
    setup.source.produce(&t, 1, &keyed("b", 0..300)).expect("produce");
    assert_success(&setup.mirror_until_caught_up(&t, &[]));

    let groups: Vec<String> = (0..4).map(|shard| format!("kmirror.{}.shard-{shard}", setup.name)).collect();
    let expire = || {
        setup
            .target
            .delete_groups(&groups.iter().map(String::as_str).collect::<Vec<_>>())
            .expect("delete groups");
        for group in &groups {
            assert!(
                group_offsets(&setup.target, group, &t, 2).values().all(Option::is_none),
                "{group} holds no position once deleted"
            );
        }
    };
    expire();
    // Only partition 0 gets new records: partition 1's rebuilt position must be committed
    // again all the same, or it stays lost.
    setup.source.produce(&t, 0, &keyed("a", 400..600)).expect("produce");
    // Before: both partitions copied again from offset 0 (700 duplicates).
    let out = setup.mirror_until_caught_up(&t, &[]);
    assert_success(&out);
    setup.assert_exactly_once(&t, 2, None);
    let audits = setup.audit(&t, 2);
    assert_eq!(audits.iter().map(|a| a.source_records).collect::<Vec<_>>(), vec![600, 300]);
    assert!(stderr(&out).contains("resuming where the map ends"), "the rebuild is logged: {}", stderr(&out));

    assert_eq!(
        shadow_positions(&setup, &t, 2),
        [(0, 600), (1, 300)].into_iter().collect(),
        "both positions committed again"
    );

    // A second expiry with nothing new: status still knows where the mirror stands, and a
    // run has nothing to copy and copies nothing.
    expire();
    let status = status_json(&setup, true);
    let committed: Vec<(i64, i64)> = status["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .filter(|row| row["topic"] == t.as_str())
        .map(|row| (row["partition"].as_i64().unwrap_or(-1), row["committed"].as_i64().unwrap_or(-1)))
        .collect();
    assert_eq!(committed, vec![(0, 600), (1, 300)], "{status:#}");
    let again = setup.mirror_until_caught_up(&t, &[]);
    assert_success(&again);
    setup.assert_exactly_once(&t, 2, None);
}

/// A partition nothing was ever copied from has no map record: without a position of its own,
/// every start read the shard's whole map partition back to its beginning looking for one.
#[test]
fn an_empty_partition_gets_a_start_position_and_is_copied_whole_once_written() {
    let setup = Setup::new();
    let t = topic("empty-start");
    setup.source.create_topic(&t, 3, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("a", 0..120)).expect("produce");
    assert_success(&setup.mirror_until_caught_up(&t, &[]));
    assert_eq!(
        shadow_positions(&setup, &t, 3),
        [(0, 120), (1, 0), (2, 0)].into_iter().collect(),
        "the empty partitions hold their start"
    );

    setup.source.produce(&t, 1, &keyed("b", 0..70)).expect("produce");
    assert_success(&setup.mirror_until_caught_up(&t, &[]));
    setup.assert_exactly_once(&t, 3, None);
    let audits = setup.audit(&t, 3);
    assert_eq!(audits.iter().map(|a| a.source_records).collect::<Vec<_>>(), vec![120, 70, 0]);
    assert_eq!(shadow_positions(&setup, &t, 3), [(0, 120), (1, 70), (2, 0)].into_iter().collect());
}

/// Deletes the shadow groups of `setup`'s mirror, as `offsets.retention.minutes` does to a
/// mirror stopped that long.
fn expire_shadow_groups(setup: &Setup) {
    let groups: Vec<String> = (0..4).map(|shard| format!("kmirror.{}.shard-{shard}", setup.name)).collect();
    setup
        .target
        .delete_groups(&groups.iter().map(String::as_str).collect::<Vec<_>>())
        .expect("delete groups");
}

/// `--start-from latest` on a partition nothing was copied from yet: once the shadow group's
/// position expired, a start found the partition's end again, past what was written while the
/// mirror was stopped (records never copied, nothing said). The start is in the map topic.
#[test]
fn a_latest_start_outlives_the_shadow_group() {
    let setup = Setup::new();
    let t = topic("latest-expired");
    setup.source.create_topic(&t, 2, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("a", 0..50)).expect("produce");
    setup.source.produce(&t, 1, &keyed("b", 0..30)).expect("produce");
    let latest = ["--start-from", "latest"];
    assert_success(&setup.mirror_until_caught_up(&t, &latest));
    assert_eq!(shadow_positions(&setup, &t, 2), [(0, 50), (1, 30)].into_iter().collect());
    setup.source.produce(&t, 0, &keyed("a", 50..70)).expect("produce");
    assert_success(&setup.mirror_until_caught_up(&t, &latest));

    expire_shadow_groups(&setup);
    // Written while the mirror was stopped, to the partition it never copied from.
    setup.source.produce(&t, 1, &keyed("b", 30..40)).expect("produce");
    let out = setup.mirror_until_caught_up(&t, &latest);
    assert_success(&out);
    // Before: partition 1 started again at its end, 40, and its 10 new records were never copied.
    assert_eq!(target_values(&setup, &t, 20), values(&keyed("a", 50..70)));
    let p1: Vec<Vec<u8>> = setup
        .target
        .read_committed_audited(&t, 1)
        .expect("audit")
        .into_iter()
        .filter_map(|r| r.data.value)
        .collect();
    assert_eq!(p1, values(&keyed("b", 30..40)), "what was written while it was stopped is copied, once");
    assert_eq!(shadow_positions(&setup, &t, 2), [(0, 70), (1, 40)].into_iter().collect());
}

/// An empty partition's start expired with the shadow group, and the source wrote records and
/// deleted them while the mirror was stopped: the start found the new log start and went on
/// from there, the deleted records never copied and never said. Now refused as any records
/// deleted before they were copied are.
#[test]
fn records_deleted_from_an_empty_partition_while_its_start_expired_are_refused() {
    let setup = Setup::new();
    let t = topic("empty-expired");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    assert_success(&setup.mirror_until_caught_up(&t, &[]));
    assert_eq!(shadow_positions(&setup, &t, 1), [(0, 0)].into_iter().collect());

    expire_shadow_groups(&setup);
    setup.source.produce(&t, 0, &keyed("r", 0..100)).expect("produce");
    setup.source.delete_records(&t, 0, 60).expect("delete records");
    // Before: exit 0, records 60..100 copied, 0..59 lost without a word.
    assert_refused(&setup, &t, &[], &[&t, "deleted records 0..59", "--on-missing-source skip"]);
    assert_eq!(setup.target.read_uncommitted(&t, 0).expect("read").len(), 0, "nothing copied");
}

/// A target topic deleted and recreated under a stopped mirror: Kafka drops the shadow
/// positions with the topic, and the map still says what the old topic held. Resuming there
/// would leave the records before it out of the new topic; copying again from the start would
/// leave the map describing two topics. Refused, by name, with the fix.
#[test]
fn a_target_topic_recreated_under_a_stopped_mirror_is_refused() {
    let setup = Setup::new();
    let t = topic("target-recreated");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("a", 0..200)).expect("produce");
    assert_success(&setup.mirror_until_caught_up(&t, &[]));

    setup.target.delete_topic(&t).expect("delete the target topic");
    setup.target.create_topic(&t, 1, &[]).expect("recreate it");
    setup.source.produce(&t, 0, &keyed("a", 200..250)).expect("produce");
    assert_refused(&setup, &t, &[], &[&t, "deleted or recreated", "--name"]);
    assert!(setup.target.read_committed_audited(&t, 0).expect("read").is_empty(), "nothing was written");
}

/// The target topic deleted and made again (here by hand, with a record of someone else's)
/// while the mirror runs: the mirror stops with the refusal before any record of its own
/// lands in the new topic, and does not make the topic again itself.
#[test]
fn a_target_topic_recreated_under_a_running_mirror_stops_it_before_anything_lands_there() {
    let setup = Setup::new();
    let t = topic("target-live");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("before", 0..200)).expect("produce");
    let mirror = running_mirror_with(&setup, &t, 200);
    let theirs = keyed("theirs", 0..5);
    make_again_on_the_target(&setup, &t, &theirs);
    setup.source.produce(&t, 0, &keyed("after", 0..100)).expect("produce");

    assert_stops_refusing(mirror, &[&t, "was replaced", "under the mirror"]);
    assert_eq!(
        target_values(&setup, &t, theirs.len()),
        values(&theirs),
        "nothing of the mirror's in the new topic"
    );
}

/// Made again holding more records than the mirror had copied, the new target topic takes the
/// mirror's next records above where its last commit ended, so the offsets alone cannot tell;
/// the topic ID does, asked for off the shards' threads: the mirror stops within a minute.
#[test]
fn a_target_topic_made_again_longer_under_a_running_mirror_stops_it_by_its_topic_id() {
    let setup = Setup::new();
    let t = topic("target-longer");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("before", 0..20)).expect("produce");
    let mirror = running_mirror_with(&setup, &t, 20);
    make_again_on_the_target(&setup, &t, &keyed("theirs", 0..50));
    setup.source.produce(&t, 0, &keyed("after", 0..10)).expect("produce");
    assert_stops_refusing(mirror, &[&t, "deleted and recreated (topic ID", "under the mirror"]);
}

#[test]
fn a_target_topic_deleted_under_a_running_mirror_stops_it_and_is_not_made_again() {
    deleted_under_a_running_mirror(Setup::new());
}

/// Kafka's brokers make a topic a producer names on demand unless told not to
/// (`auto.create.topics.enable`, on by default), with their own partition count and configs.
#[test]
fn a_target_topic_deleted_on_brokers_that_make_topics_on_demand_is_not_made_again() {
    let mut spec = KafkaSpec::plaintext(1);
    spec.overrides.push(("auto.create.topics.enable".into(), "true".into()));
    spec.overrides.push(("num.partitions".into(), "3".into()));
    deleted_under_a_running_mirror(Setup::with_target(
        KafkaCluster::start_kafka(&spec).expect("a target that makes topics on demand"),
    ));
}

fn deleted_under_a_running_mirror(setup: Setup) {
    let t = topic("target-gone");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("before", 0..100)).expect("produce");
    let mirror = running_mirror_with(&setup, &t, 100);
    setup.target.delete_topic(&t).expect("delete the target topic");
    setup.source.produce(&t, 0, &keyed("after", 0..50)).expect("produce");
    assert_stops_refusing(mirror, &[&t, "was deleted under the mirror"]);
    assert_eq!(setup.target.partition_count(&t).expect("metadata"), None, "the mirror did not make it again");
}

/// Deletes the target topic `t` (one partition) and makes it again by hand, holding `theirs`.
fn make_again_on_the_target(setup: &Setup, t: &str, theirs: &[RecordData]) {
    setup.target.delete_topic(t).expect("delete the target topic");
    let started = std::time::Instant::now();
    while setup.target.create_topic(t, 1, &[]).is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "the target topic could not be made again");
        std::thread::sleep(Duration::from_millis(200));
    }
    setup.target.produce(t, 0, theirs).expect("produce to the new target topic");
}

/// A mirror of `t` running with a 1 s refresh, once its first `count` records are copied.
fn running_mirror_with(setup: &Setup, t: &str, count: usize) -> std::process::Child {
    let mirror = setup.spawn_mirror(&regex::escape(t), &["--refresh-interval", "1"]);
    let started = std::time::Instant::now();
    while setup.target.partition_count(t).expect("metadata").is_none()
        || setup.target.audit_partition(t, 0).map(|a| a.visible.len()).unwrap_or(0) < count
    {
        assert!(started.elapsed() < Duration::from_secs(60), "the first {count} records were not copied");
        std::thread::sleep(Duration::from_millis(250));
    }
    mirror
}

/// The running mirror stops within a minute, with exit code 4 and one error line holding every
/// part.
fn assert_stops_refusing(mut mirror: std::process::Child, parts: &[&str]) {
    if wait_exit(&mut mirror, Duration::from_secs(60)).is_none() {
        let _ = mirror.kill();
    }
    let out = mirror.wait_with_output().expect("output");
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(REFUSED), "must stop with exit code 4: {message}");
    let errors: Vec<&str> = message.lines().filter(|l| l.starts_with("kmirror: error:")).collect();
    assert_eq!(errors.len(), 1, "exactly one error line: {message}");
    for part in parts {
        assert!(errors[0].contains(part), "the error names {part}: {}", errors[0]);
    }
}

/// The position each partition of `topic` holds in the mirror's shadow groups (one per shard,
/// read with an independent client); a partition held by two groups fails the test.
fn shadow_positions(setup: &Setup, topic: &str, partitions: i32) -> std::collections::BTreeMap<i32, i64> {
    let mut held = std::collections::BTreeMap::new();
    for shard in 0..4 {
        let group = format!("kmirror.{}.shard-{shard}", setup.name);
        for (partition, offset) in group_offsets(&setup.target, &group, topic, partitions) {
            if let Some(offset) = offset {
                assert!(held.insert(partition, offset).is_none(), "partition {partition} in one group only");
            }
        }
    }
    held
}

/// A source topic deleted under a running mirror of several: the others are copied on, past
/// the topic-ID checks that follow (every 5 s), the deleted one's copy keeps what it had, and
/// the mirror says once what happened.
#[test]
fn a_source_topic_deleted_under_a_running_mirror_leaves_the_others_copied_on() {
    let setup = Setup::new();
    let suffix = kmirror_testcontainers::unique_suffix();
    let (gone, stays) = (format!("gone-{suffix}"), format!("stays-{suffix}"));
    for t in [&gone, &stays] {
        setup.source.create_topic(t, 1, &[]).expect("topic");
        setup.source.produce(t, 0, &keyed("before", 0..100)).expect("produce");
    }
    let (mut mirror, log) =
        setup.spawn_mirror_logged(&format!("(gone|stays)-{suffix}"), &["--refresh-interval", "1"]);
    let started = std::time::Instant::now();
    for t in [&gone, &stays] {
        while setup.target.audit_partition(t, 0).map(|a| a.visible.len()).unwrap_or(0) < 100 {
            assert!(started.elapsed() < Duration::from_secs(60), "{t}: the first records were not copied");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    setup.source.delete_topic(&gone).expect("delete the source topic");
    std::thread::sleep(Duration::from_secs(11));
    setup.source.produce(&stays, 0, &keyed("after", 0..50)).expect("produce");
    let started = std::time::Instant::now();
    while setup.target.audit_partition(&stays, 0).map(|a| a.visible.len()).unwrap_or(0) < 150 {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = mirror.kill();
            panic!("records written after the deletion were not copied: {}", last_lines(&log));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    terminate(&mirror);
    let status = wait_exit(&mut mirror, Duration::from_secs(30)).expect("the mirror stops on SIGTERM");
    assert!(status.success(), "{}", last_lines(&log));
    let text = std::fs::read_to_string(&log).expect("the mirror's log");
    let said: Vec<&str> = text.lines().filter(|l| l.contains("source topic is gone")).collect();
    assert_eq!(said.len(), 1, "said once: {text}");
    assert!(said[0].contains(&gone) && said[0].contains("WARN"), "{}", said[0]);
    setup.assert_exactly_once(&stays, 1, Some(150));
    assert_eq!(setup.target.audit_partition(&gone, 0).expect("audit").visible.len(), 100);

    // verify proves the rest and counts the deleted topic's copies as of records the source no
    // longer has (before: an error on the deleted topic, nothing verified).
    let state = tempfile::tempdir().expect("tempdir");
    let out = setup.verify(state.path(), &[]);
    assert_success(&out);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    let row =
        |t: &str| rows.iter().find(|r| r["topic"] == t).unwrap_or_else(|| panic!("no row for {t}: {rows:?}"));
    assert_eq!(
        (row(&stays)["checked"].as_u64(), row(&stays)["source_gone"].as_bool()),
        (Some(150), Some(false))
    );
    assert_eq!(
        (row(&gone)["expired"].as_u64(), row(&gone)["source_gone"].as_bool()),
        (Some(100), Some(true))
    );
    assert_eq!(row(&gone)["checked"].as_u64(), Some(0));
}

/// Two source topics, one of them large, and a batch of both started and copying the large
/// one, which is then deleted; returns the batch's exit status (`None`: still running after a
/// minute), its log, and the two topics' names.
fn batch_losing_a_topic(
    setup: &Setup,
    extra: &[&str],
) -> (Option<std::process::ExitStatus>, String, String, String) {
    let suffix = kmirror_testcontainers::unique_suffix();
    let (gone, stays) = (format!("gone-batch-{suffix}"), format!("stays-batch-{suffix}"));
    for t in [&gone, &stays] {
        setup.source.create_topic(t, 1, &[]).expect("topic");
    }
    setup.source.produce(&stays, 0, &keyed("stays", 0..100)).expect("produce");
    // Enough that the batch is still copying it when the topic goes.
    let many: Vec<RecordData> =
        (0..300_000).map(|i| RecordData::keyed(format!("k{i}"), vec![b'v'; 100])).collect();
    setup.source.produce(&gone, 0, &many).expect("produce");
    let mut args = vec!["--until-caught-up", "--transaction-max-records", "1000", "--num-streams", "1"];
    args.extend_from_slice(extra);
    let (mut mirror, log) = setup.spawn_mirror_logged(&format!("(gone|stays)-batch-{suffix}"), &args);
    let started = std::time::Instant::now();
    while setup.target.partition_count(&gone).expect("metadata").is_none()
        || setup.target.audit_partition(&gone, 0).map(|a| a.visible.len()).unwrap_or(0) == 0
    {
        assert!(started.elapsed() < Duration::from_secs(60), "nothing copied: {}", last_lines(&log));
        std::thread::sleep(Duration::from_millis(20));
    }
    setup.source.delete_topic(&gone).expect("delete the source topic");
    let status = wait_exit(&mut mirror, Duration::from_secs(60));
    if status.is_none() {
        let _ = mirror.kill();
    }
    let copied = setup.target.audit_partition(&gone, 0).expect("audit").visible.len();
    assert!(copied < many.len(), "the test needs the topic deleted before the batch copied it all");
    (status, std::fs::read_to_string(&log).unwrap_or_default(), gone, stays)
}

/// A source topic deleted under a batch (`--until-caught-up`): the end the batch set out to
/// reach is gone with it. The batch stops in one line naming the topic (it waited for ever
/// before), and the next one copies the other topics; with `--on-missing-source skip` the
/// batch finishes without it, saying so.
#[test]
fn a_source_topic_deleted_under_a_batch_stops_it_by_name_or_is_skipped_by_policy() {
    let setup = Setup::new();
    let (status, log, gone, stays) = batch_losing_a_topic(&setup, &[]);
    let status = status.unwrap_or_else(|| panic!("the batch still ran a minute after the deletion: {log}"));
    assert_eq!(status.code(), Some(REFUSED), "{log}");
    let errors: Vec<&str> = log.lines().filter(|l| l.starts_with("kmirror: error:")).collect();
    assert_eq!(errors.len(), 1, "one error line: {log}");
    for part in [gone.as_str(), "was deleted while the batch copied it", "--on-missing-source skip"] {
        assert!(errors[0].contains(part), "the error names {part}: {}", errors[0]);
    }
    assert_success(
        &setup.mirror_until_caught_up(&format!("{}|{}", regex::escape(&gone), regex::escape(&stays)), &[]),
    );
    setup.assert_exactly_once(&stays, 1, Some(100));

    let (status, log, gone, stays) = batch_losing_a_topic(&setup, &["--on-missing-source", "skip"]);
    let status = status.unwrap_or_else(|| panic!("the batch still ran a minute after the deletion: {log}"));
    assert!(status.success(), "{log}");
    let said: Vec<&str> =
        log.lines().filter(|l| l.contains("source topic deleted while the batch copied it")).collect();
    assert!(!said.is_empty() && said.iter().all(|l| l.contains(&gone) && l.contains("WARN")), "{log}");
    setup.assert_exactly_once(&stays, 1, Some(100));
    // The batch's last progress line counts what it copied against what was left to copy once
    // the skipped rest was gone: nothing behind (before, the rest the source lost stayed as lag).
    let last =
        log.lines().rfind(|l| l.contains("progress") && l.contains("scope=")).expect("a progress line");
    let field = |name: &str| {
        last.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {last}"))
            .to_string()
    };
    assert_eq!(field("lag"), "0", "{last}");
    assert_eq!(field("records"), field("of"), "{last}");
}
