//! Exact offset translation: a failover drill, group-offset sync that never touches an active
//! group, failback, and a rebuilt local map that answers the same.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::*;
use kmirror_testcontainers::{unique_suffix, KafkaCluster, RecordData, StoredRecord};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 4;

/// A source topic with gaps: committed transactions (their markers take offsets) between plain
/// records, in every partition.
fn source_with_gaps(setup: &Setup, topic: &str) {
    setup.source.create_topic(topic, PARTITIONS, &[]).expect("topic");
    for p in 0..PARTITIONS {
        let name = |part: &str| format!("p{p}-{part}");
        setup.source.produce_transaction(topic, p, &keyed(&name("txn-a"), 0..10), true).expect("txn");
        setup.source.produce(topic, p, &keyed(&name("plain-a"), 0..5)).expect("plain");
        setup.source.produce_transaction(topic, p, &keyed(&name("txn-b"), 0..7), true).expect("txn");
        setup.source.produce_transaction(topic, p, &keyed(&name("txn-c"), 0..3), true).expect("txn");
        setup.source.produce(topic, p, &keyed(&name("plain-b"), 0..6)).expect("plain");
    }
}

fn committed(cluster: &KafkaCluster, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = cluster.client_config().set("group.id", group).create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(topic, p);
    }
    consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed")
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

fn translate(setup: &Setup, state: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut args: Vec<String> = vec![
        "translate-offsets".into(),
        "--target".into(),
        setup.target.bootstrap().into(),
        "--name".into(),
        setup.name.clone(),
        "--state-dir".into(),
        state.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    run(&args, Duration::from_secs(120))
}

/// The group's positions on the source: inside gaps (commit markers), mid-run, nothing read,
/// everything read.
fn group_positions(source: &[Vec<StoredRecord>]) -> BTreeMap<i32, i64> {
    let mut positions = BTreeMap::new();
    positions.insert(0, 10); // the commit marker after txn-a: a position inside a gap
    positions.insert(1, source[1][12].offset); // mid plain-a
    positions.insert(2, 0); // nothing read yet
    let last = source[3].last().expect("records").offset;
    positions.insert(3, last + 1); // everything read
    positions
}

#[test]
fn failover_drill_with_the_source_stopped_is_exact() {
    let mut setup = Setup::dedicated();
    let t = topic("drill");
    source_with_gaps(&setup, &t);
    let group = format!("billing-{}", unique_suffix());
    let source_records: Vec<Vec<StoredRecord>> =
        (0..PARTITIONS).map(|p| setup.source.read_committed_audited(&t, p).expect("read")).collect();
    let positions = group_positions(&source_records);
    commit_group(&setup.source, &group, &t, &positions);

    let out = setup.mirror_until_caught_up(&regex::escape(&t), &["--groups", &regex::escape(&group)]);
    assert_success(&out);
    let expected: BTreeMap<i32, Vec<RecordData>> =
        (0..PARTITIONS).map(|p| (p, data_after(&source_records[p as usize], positions[&p]))).collect();

    setup.source.stop().expect("source down");
    let state = tempfile::tempdir().expect("tempdir");
    let out = translate(&setup, state.path(), &["--group", &group, "--format", "json", "--execute"]);
    assert_success(&out);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json output");
    assert_eq!(rows.as_array().map(Vec::len), Some(PARTITIONS as usize), "{rows}");
    // Markers on both sides make offsets differ: the drill would catch an identity "translation".
    let shifted =
        rows.as_array().into_iter().flatten().filter(|r| r["source_offset"] != r["target_offset"]).count();
    assert!(shifted >= 2, "translation must move offsets here: {rows}");
    eprintln!("{rows}");

    // The target holds only committed data: a plain consumer sees what the audit sees.
    for p in 0..PARTITIONS {
        let audit = setup.target.audit_partition(&t, p).expect("audit");
        assert!(audit.aborted.is_empty() && audit.open.is_empty(), "{audit:?}");
    }
    let total: usize = expected.values().map(Vec::len).sum();
    let read = consume_as_group(&setup.target, &group, &t, total);
    for p in 0..PARTITIONS {
        assert_eq!(
            read.get(&p).cloned().unwrap_or_default(),
            expected[&p],
            "partition {p}: the group must read exactly what it had not read on the source (from {})",
            positions[&p]
        );
    }
}

/// The target positions `translate-offsets --format json` printed, per target partition.
fn translated_positions(out: &std::process::Output) -> BTreeMap<i32, i64> {
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    rows.iter()
        .map(|r| {
            (r["target_partition"].as_i64().unwrap_or(-1) as i32, r["target_offset"].as_i64().unwrap_or(-1))
        })
        .collect()
}

/// A member of `group` under Kafka 4's consumer group protocol (KIP-848) on `cluster`, holding
/// every partition of `topic`, which commits `positions` and stays in the group for 20 s on the
/// thread returned.
fn member_848(
    cluster: &KafkaCluster,
    group: &str,
    topic: &str,
    positions: &BTreeMap<i32, i64>,
) -> std::thread::JoinHandle<()> {
    let member: BaseConsumer = cluster
        .client_config()
        .set("group.id", group)
        .set("group.protocol", "consumer")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("member");
    member.subscribe(&[topic]).expect("subscribe");
    let joined = Instant::now();
    while member.assignment().map(|a| a.count()).unwrap_or(0) < PARTITIONS as usize {
        assert!(joined.elapsed() < Duration::from_secs(30), "member never got every partition");
        let _ = member.poll(Duration::from_millis(100));
    }
    let mut at = TopicPartitionList::new();
    for (p, offset) in positions {
        at.add_partition_offset(topic, *p, Offset::Offset(*offset)).expect("tpl");
    }
    member.commit(&at, rdkafka::consumer::CommitMode::Sync).expect("the member commits");
    std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            let _ = member.poll(Duration::from_millis(100));
        }
    })
}

#[test]
fn group_offset_sync_moves_idle_groups_forward_and_never_an_active_one() {
    let setup = Setup::new();
    let t = topic("sync");
    source_with_gaps(&setup, &t);
    let idle = format!("idle-{}", unique_suffix());
    let active = format!("active-{}", unique_suffix());
    // Already further on the target in partition 0 (as after a cutover), behind elsewhere.
    let ahead = format!("ahead-{}", unique_suffix());
    let source_records: Vec<Vec<StoredRecord>> =
        (0..PARTITIONS).map(|p| setup.source.read_committed_audited(&t, p).expect("read")).collect();
    let positions = group_positions(&source_records);
    commit_group(&setup.source, &idle, &t, &positions);
    commit_group(&setup.source, &active, &t, &positions);
    commit_group(&setup.source, &ahead, &t, &positions);

    // First copy the data, then keep a member of `active` on the target while syncing.
    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &[]));
    let own: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 1)).collect();
    commit_group(&setup.target, &active, &t, &own);
    let target_end_0 =
        setup.target.read_committed_audited(&t, 0).expect("read").last().map_or(0, |r| r.offset + 1);
    let ahead_own: BTreeMap<i32, i64> =
        (0..PARTITIONS).map(|p| (p, if p == 0 { target_end_0 } else { 0 })).collect();
    commit_group(&setup.target, &ahead, &t, &ahead_own);
    let member = classic_member(&setup.target, &active, &t);
    // In the group until told (a fixed time could end before a slow machine's runs did).
    let (stop_member, stopped) = std::sync::mpsc::channel::<()>();
    let keep_alive = std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(300);
        while Instant::now() < until && stopped.try_recv().is_err() {
            let _ = member.poll(Duration::from_millis(100));
        }
    });

    let pattern = format!("{}|{}|{}", regex::escape(&idle), regex::escape(&active), regex::escape(&ahead));
    let out =
        setup.mirror_until_caught_up(&regex::escape(&t), &["--groups", &pattern, "--sync-group-offsets"]);
    assert_success(&out);
    assert_eq!(committed(&setup.target, &active, &t), own, "an active group's offsets are never overwritten");

    // translate-offsets --execute refuses the active group by name.
    let state = tempfile::tempdir().expect("tempdir");
    let source_arg = ["--source", setup.source.bootstrap()];
    let out =
        translate(&setup, state.path(), &[&["--group", &active, "--execute"][..], &source_arg[..]].concat());
    assert!(!out.status.success(), "must refuse an active group");
    assert!(stderr(&out).contains(&format!("group {active}: has 1 active member")), "{}", stderr(&out));
    let _ = stop_member.send(());
    keep_alive.join().expect("member thread");
    // A group still at work on the source, where its positions are read: refused too (its
    // consumers would read on past the positions moved, and read that again on the target).
    let on_source = classic_member(&setup.source, &idle, &t);
    let before = committed(&setup.target, &idle, &t);
    let out =
        translate(&setup, state.path(), &[&["--group", &idle, "--execute"][..], &source_arg[..]].concat());
    assert!(!out.status.success(), "must refuse a group active on the source");
    assert!(
        stderr(&out).contains(&format!("group {idle}: has 1 active member(s) on the source")),
        "{}",
        stderr(&out)
    );
    assert_eq!(committed(&setup.target, &idle, &t), before, "nothing moved");
    drop(on_source);
    // A pattern that matches no group is a typo, said as one (it exited 0 with nothing moved).
    for reverse in [false, true] {
        let mut extra = vec!["--groups", "no-such-group-.*", "--execute"];
        extra.extend_from_slice(&source_arg);
        if reverse {
            extra.push("--reverse");
        }
        let out = translate(&setup, state.path(), &extra);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("matches --groups 'no-such-group-.*'"), "{}", stderr(&out));
    }

    // The idle group was moved to exactly the translated positions.
    let out = translate(
        &setup,
        state.path(),
        &[&["--group", &idle, "--format", "json"][..], &source_arg[..]].concat(),
    );
    assert_success(&out);
    let translated = translated_positions(&out);
    assert_eq!(committed(&setup.target, &idle, &t), translated);
    // Never backwards: partition 0 stays at the end, the others move forward to the translation.
    let mut ahead_expected = translated.clone();
    ahead_expected.insert(0, target_end_0);
    assert!(translated[&0] < target_end_0, "the test needs a translation behind the end: {translated:?}");
    assert_eq!(committed(&setup.target, &ahead, &t), ahead_expected, "a group is only ever moved forward");
    let expected: BTreeMap<i32, Vec<RecordData>> =
        (0..PARTITIONS).map(|p| (p, data_after(&source_records[p as usize], positions[&p]))).collect();
    let read = consume_as_group(&setup.target, &idle, &t, expected.values().map(Vec::len).sum());
    for p in 0..PARTITIONS {
        assert_eq!(read.get(&p).cloned().unwrap_or_default(), expected[&p], "partition {p}");
    }
}

/// A source group consuming under Kafka 4's consumer group protocol (KIP-848) while the mirror
/// runs, as an application stays on the source during a DR mirror: the mirror finds it by
/// `--groups`, reads its committed positions and commits their exact translation on the target,
/// where it has no member.
#[test]
fn a_source_group_live_under_the_new_consumer_protocol_is_synced_to_its_exact_translation() {
    let setup = Setup::new();
    let t = topic("src848");
    source_with_gaps(&setup, &t);
    let group = format!("live848-{}", unique_suffix());
    let source_records: Vec<Vec<StoredRecord>> =
        (0..PARTITIONS).map(|p| setup.source.read_committed_audited(&t, p).expect("read")).collect();
    let positions = group_positions(&source_records);

    let keep_alive = member_848(&setup.source, &group, &t, &positions);

    let out =
        setup.mirror_until_caught_up(&regex::escape(&t), &["--groups", "live848-.*", "--sync-group-offsets"]);
    assert_success(&out);
    let state = tempfile::tempdir().expect("tempdir");
    let out = translate(&setup, state.path(), &["--group", &group, "--format", "json"]);
    assert_success(&out);
    let translated = translated_positions(&out);
    assert_eq!(translated.len(), PARTITIONS as usize, "{translated:?}");
    assert_eq!(committed(&setup.target, &group, &t), translated, "{}", stderr(&out));
    keep_alive.join().expect("member thread");
    let expected: BTreeMap<i32, Vec<RecordData>> =
        (0..PARTITIONS).map(|p| (p, data_after(&source_records[p as usize], positions[&p]))).collect();
    let read = consume_as_group(&setup.target, &group, &t, expected.values().map(Vec::len).sum());
    for p in 0..PARTITIONS {
        assert_eq!(read.get(&p).cloned().unwrap_or_default(), expected[&p], "partition {p}");
    }
}

/// A group on the target whose member uses the consumer group protocol of KIP-848
/// (`group.protocol=consumer`, Kafka 4's), which the classic DescribeGroups does not describe:
/// its positions are neither overwritten by the group sync nor by `translate-offsets --execute`,
/// which names it as active.
#[test]
fn a_group_active_on_the_target_under_the_new_consumer_protocol_is_never_moved() {
    let setup = Setup::new();
    let t = topic("sync848");
    source_with_gaps(&setup, &t);
    let group = format!("active848-{}", unique_suffix());
    let source_records: Vec<Vec<StoredRecord>> =
        (0..PARTITIONS).map(|p| setup.source.read_committed_audited(&t, p).expect("read")).collect();
    commit_group(&setup.source, &group, &t, &group_positions(&source_records));
    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &[]));

    // The member's own positions: one record into each partition.
    let own: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 1)).collect();
    let keep_alive = member_848(&setup.target, &group, &t, &own);

    let out = setup.mirror_until_caught_up(&regex::escape(&t), &["--groups", &group, "--sync-group-offsets"]);
    assert_success(&out);
    // Skipped as an active group (an info line), not tried and failed (a warning, every cycle).
    assert!(!stderr(&out).contains("group offset sync failed"), "{}", stderr(&out));
    assert_eq!(
        committed(&setup.target, &group, &t),
        own,
        "the group sync left the active group alone: {}",
        stderr(&out)
    );
    let state = tempfile::tempdir().expect("tempdir");
    let out = translate(
        &setup,
        state.path(),
        &["--group", &group, "--execute", "--source", setup.source.bootstrap()],
    );
    assert!(!out.status.success(), "must refuse an active group: {}", stderr(&out));
    assert!(stderr(&out).contains(&format!("group {group}: has 1 active member")), "{}", stderr(&out));
    assert_eq!(committed(&setup.target, &group, &t), own, "translate-offsets left the active group alone");
    keep_alive.join().expect("member thread");
}

#[test]
fn failback_puts_the_group_back_on_the_source_exactly_and_a_rebuilt_map_agrees() {
    let setup = Setup::new();
    let t = topic("failback");
    source_with_gaps(&setup, &t);
    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &[]));
    // The group consumed on the target (after a failover) and committed there.
    let group = format!("failback-{}", unique_suffix());
    let target_records: Vec<Vec<StoredRecord>> =
        (0..PARTITIONS).map(|p| setup.target.read_committed_audited(&t, p).expect("read")).collect();
    let on_target: BTreeMap<i32, i64> = [
        (0, target_records[0][3].offset),
        (1, target_records[1][10].offset + 1), // just past a copied transaction: a target gap
        (2, 0),
        (3, target_records[3].last().expect("records").offset + 1),
    ]
    .into_iter()
    .collect();
    commit_group(&setup.target, &group, &t, &on_target);

    let state = tempfile::tempdir().expect("tempdir");
    let out = translate(
        &setup,
        state.path(),
        &[
            "--group",
            &group,
            "--reverse",
            "--execute",
            "--source",
            setup.source.bootstrap(),
            "--format",
            "json",
        ],
    );
    assert_success(&out);
    let expected: BTreeMap<i32, Vec<RecordData>> =
        (0..PARTITIONS).map(|p| (p, data_after(&target_records[p as usize], on_target[&p]))).collect();
    let read = consume_as_group(&setup.source, &group, &t, expected.values().map(Vec::len).sum());
    for p in 0..PARTITIONS {
        assert_eq!(read.get(&p).cloned().unwrap_or_default(), expected[&p], "partition {p} after failback");
    }

    // The local map is a cache: thrown away and rebuilt from the target, it answers the same.
    let first: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    std::fs::remove_dir_all(state.path()).expect("delete state");
    let again = translate(&setup, state.path(), &["--group", &group, "--reverse", "--format", "json"]);
    assert_success(&again);
    let second: serde_json::Value = serde_json::from_slice(&again.stdout).expect("json");
    let offsets = |v: &serde_json::Value| -> Vec<(i64, i64)> {
        v.as_array()
            .map(|rows| {
                rows.iter()
                    .map(|r| {
                        (r["target_offset"].as_i64().unwrap_or(-1), r["source_offset"].as_i64().unwrap_or(-1))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(offsets(&first), offsets(&second));
}

/// What the target holds of `topic` so far (committed or not), asked by a new client (one
/// made before the topic would not see it at once); an error where it cannot say (as before the
/// topic exists): never a count it did not read.
fn landed(setup: &Setup, topic: &str) -> Result<i64, rdkafka::error::KafkaError> {
    let probe: rdkafka::consumer::BaseConsumer =
        setup.target.client_config().set("group.id", "landed-probe").create()?;
    let probe = &probe;
    (0..2)
        .map(|p| {
            rdkafka::consumer::Consumer::fetch_watermarks(probe, topic, p, Duration::from_secs(5))
                .map(|(_, high)| high)
        })
        .sum()
}

#[test]
fn answers_stay_exact_across_mirror_crashes_and_agree_with_a_rebuilt_map() {
    let setup = Setup::new();
    let t = topic("crashmap");
    setup.source.create_topic(&t, 2, &[]).expect("topic");
    let group = format!("crash-{}", unique_suffix());
    let kept = tempfile::tempdir().expect("tempdir");
    let translate_json = |state: &std::path::Path| -> Vec<(i64, i64, i64)> {
        let out = translate(
            &setup,
            state,
            &["--group", &group, "--source", setup.source.bootstrap(), "--format", "json"],
        );
        assert_success(&out);
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
        rows.iter()
            .map(|r| {
                let n = |k: &str| r[k].as_i64().unwrap_or(-1);
                (n("source_partition"), n("source_offset"), n("target_offset"))
            })
            .collect()
    };
    // Kill the mirror mid-transaction again and again; the map topic then holds runs of
    // aborted transactions too.
    for round in 0..5usize {
        for p in 0..2 {
            setup.source.produce(&t, p, &keyed(&format!("r{round}-p{p}"), 0..400)).expect("produce");
        }
        // Taken before the mirror starts: a mirror quicker than this probe (a loaded machine)
        // had copied the whole round before it was taken, and nothing more ever landed. Before
        // the first round the topic does not exist: nothing has landed.
        let landed_before = landed(&setup, &t).unwrap_or(0);
        // A killed mirror's open transaction holds readers of its shadow groups back until the
        // target aborts it: a short timeout keeps each round short.
        let (mut mirror, log) = setup.spawn_mirror_logged(
            &regex::escape(&t),
            &["--transaction-max-records", "50", "--set", "target.transaction.timeout.ms=5000"],
        );
        // Kill once this round's records are landing (never before the mirror has made its
        // topics: a loaded machine starts it slowly), at a point that moves from round to round.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut probe_error = None;
        loop {
            match landed(&setup, &t) {
                Ok(now) if now > landed_before => break,
                Ok(_) => {}
                Err(e) => probe_error = Some(e),
            }
            if let Some(status) = mirror.try_wait().expect("the mirror's status") {
                panic!(
                    "round {round}: the mirror exited ({status}) before anything landed: {}",
                    last_lines(&log)
                );
            }
            if std::time::Instant::now() >= deadline {
                let _ = mirror.kill();
                let _ = mirror.wait();
                panic!(
                    "round {round}: nothing landed in 60 s (the probe's last error: {probe_error:?}); the mirror's log:\n{}",
                    last_lines(&log)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(40 * round as u64));
        mirror.kill().expect("kill");
        mirror.wait().expect("reap");
        let positions: BTreeMap<i32, i64> = (0..2).map(|p| (p, 37 * (round as i64 + 1) + p as i64)).collect();
        commit_group(&setup.source, &group, &t, &positions);
        // The kept state dir is updated incrementally after every crash.
        let _ = translate_json(kept.path());
    }
    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &[]));
    setup.assert_exactly_once(&t, 2, Some(2_000));
    let incremental = translate_json(kept.path());
    let fresh = tempfile::tempdir().expect("tempdir");
    let rebuilt = translate_json(fresh.path());
    assert_eq!(incremental, rebuilt, "an incrementally kept map and a rebuilt one agree");
    assert_eq!(incremental.len(), 2);

    // And the answers are exact: the copy of each position's record is at the answer.
    for (p, source_offset, target_offset) in incremental {
        let source = setup.source.read_committed_audited(&t, p as i32).expect("read");
        let target = setup.target.read_committed_audited(&t, p as i32).expect("read");
        let want = source.iter().find(|r| r.offset >= source_offset).map(|r| r.data.clone());
        let got = target.iter().find(|r| r.offset >= target_offset).map(|r| r.data.clone());
        assert_eq!(got, want, "partition {p}: source {source_offset} -> target {target_offset}");
        let remaining_source = source.iter().filter(|r| r.offset >= source_offset).count();
        let remaining_target = target.iter().filter(|r| r.offset >= target_offset).count();
        assert_eq!(remaining_source, remaining_target, "partition {p}: same records left on both sides");
    }
}

/// A compacted source (the cleaner running on small segments) with an aborted and a committed
/// transaction, ending in a commit marker: the copy holds exactly what a reader of the source
/// sees, a batch run ends although the last offset is a marker, and the translation of every
/// source position, gaps included, is the copy of the first surviving record at or after it.
#[test]
fn a_compacted_transactional_source_is_copied_and_translated_exactly_at_every_gap() {
    let setup = Setup::new();
    if *setup.source.backend() == kmirror_testcontainers::Backend::Tansu {
        eprintln!("skipped: the Tansu development broker neither compacts nor hides aborted records");
        return;
    }
    let t = topic("compacted");
    let configs =
        [("cleanup.policy", "compact"), ("segment.ms", "100"), ("min.cleanable.dirty.ratio", "0.01")];
    setup.source.create_topic(&t, 1, &configs).expect("topic");
    let round = |r: usize| -> Vec<RecordData> {
        (0..10).map(|k| RecordData::keyed(format!("key-{k}"), format!("round-{r}-key-{k}"))).collect()
    };
    // Each round lands in a segment of its own: a segment rolls at the first write 100 ms after
    // it began, and only rolled segments are compacted.
    for r in 0..6 {
        setup.source.produce(&t, 0, &round(r)).expect("produce");
        if r == 2 {
            setup.source.produce_transaction(&t, 0, &keyed("aborted", 0..4), false).expect("abort");
            setup.source.produce_transaction(&t, 0, &keyed("committed", 0..5), true).expect("commit");
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    setup.source.produce_transaction(&t, 0, &keyed("last", 0..3), true).expect("commit");
    // The fixed point of compaction: every key once, the committed transactions' records.
    let survivors = 10 + 5 + 3;
    let started = Instant::now();
    let source = loop {
        let visible = setup.source.read_committed_audited(&t, 0).expect("audit the source");
        if visible.len() == survivors {
            break visible;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the source was not compacted: {} records",
            visible.len()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let source_end =
        kmirror_testcontainers::raw_log::read_raw_log(&setup.source, &t, 0).expect("raw log").high_watermark;
    assert!(source[0].offset > 0 && source_end > survivors as i64 + 3, "compaction left gaps: {source:?}");
    assert_eq!(
        source_end,
        source.last().expect("records").offset + 2,
        "the partition ends in a commit marker"
    );

    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &[]));
    let target = setup.target.read_committed_audited(&t, 0).expect("audit the target");
    let data = |records: &[StoredRecord]| records.iter().map(|r| r.data.clone()).collect::<Vec<_>>();
    assert_eq!(data(&target), data(&source), "the copy is what a reader of the source sees, in order");
    let plain = plain_read_committed(&setup.target, &t, 0, source.len());
    assert_eq!(plain.len(), source.len(), "a plain read_committed consumer reads the same count");

    // Every source position from 0 to the end, one group each, translated in one call.
    let prefix = format!("at-{t}-");
    for g in 0..=source_end {
        commit_group(&setup.source, &format!("{prefix}{g}"), &t, &[(0, g)].into_iter().collect());
    }
    let state = setup.state_dir.path().join("compacted.translate");
    let groups = format!("{}.*", regex::escape(&prefix));
    let out = setup.translate_offsets(&state, &["--groups", &groups]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json rows");
    assert_eq!(rows.len() as i64, source_end + 1, "one row per position");
    let pairs: Vec<(i64, i64)> = source.iter().zip(&target).map(|(s, t)| (s.offset, t.offset)).collect();
    let expected = |g: i64| {
        let last = pairs.last().map(|&(_, t)| t + 1);
        pairs.iter().find(|&&(s, _)| s >= g).map(|&(_, t)| t).or(last)
    };
    for row in &rows {
        let g = row["source_offset"].as_i64().expect("source offset");
        assert_eq!(row["target_offset"].as_i64(), expected(g), "source position {g}: {row}");
        assert!(row["note"].is_null(), "{row}");
    }

    let out = setup.verify(&setup.state_dir.path().join("compacted.verify"), &[]);
    let report: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json report");
    assert!(out.status.success(), "{report:?} {}", stderr(&out));
    let row = report.iter().find(|r| r["topic"] == t.as_str()).expect("the topic's row");
    assert_eq!(
        (row["checked"].as_i64(), row["missing"].as_i64(), row["extra"].as_i64()),
        (Some(survivors as i64), Some(0), Some(0)),
        "{row}"
    );
}

/// The local copy of the map remembers which map topic it was filled from: after the mirror's
/// topics are deleted on the target and the mirror copies anew under the same name (from a later
/// source position), `translate-offsets` with the same state dir fills its copy again instead of
/// answering from the old runs, whose positions lay past the new topic's end.
#[test]
fn a_local_map_filled_from_a_map_topic_since_made_again_is_filled_anew() {
    let setup = Setup::new();
    let t = topic("remade");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("first", 0..100)).expect("produce");
    assert_success(&setup.mirror_until_caught_up(&t, &[]));
    let early = format!("early-{}", unique_suffix());
    commit_group(&setup.source, &early, &t, &BTreeMap::from([(0, 50)]));
    let state = setup.state_dir.path().join("remade.translate");
    let target_of = |out: &std::process::Output| -> Option<i64> {
        assert!(out.status.success(), "{}", stderr(out));
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json rows");
        rows.first().and_then(|r| r["target_offset"].as_i64())
    };
    assert_eq!(target_of(&setup.translate_offsets(&state, &["--group", &early])), Some(50));

    // Copied anew: the target topic and the mirror's topics deleted, the mirror started again
    // from the source's end, then 50 records more.
    setup.target.delete_topic(&t).expect("delete the copy");
    for own in ["offset-map", "checkpoints", "shards"] {
        setup
            .target
            .delete_topic(&format!("kmirror.{own}.{}", setup.name))
            .expect("delete the mirror's topic");
    }
    // The shadow groups' positions in the deleted topic go with it (Kafka drops a deleted
    // partition's committed offsets), so that the next start resolves --start-from latest.
    let deadline = Instant::now() + Duration::from_secs(60);
    let shadow: Vec<String> = (0..4).map(|shard| format!("kmirror.{}.shard-{shard}", setup.name)).collect();
    while shadow.iter().any(|g| group_offsets(&setup.target, g, &t, 1).get(&0).is_some_and(Option::is_some)) {
        assert!(Instant::now() < deadline, "the shadow positions of the deleted copy stayed");
        std::thread::sleep(Duration::from_millis(300));
    }
    setup.source.produce(&t, 0, &keyed("second", 0..100)).expect("produce");
    loop {
        let out = setup.mirror_until_caught_up(&t, &["--start-from", "latest"]);
        if out.status.success() {
            break;
        }
        // The deletions take a moment to reach every broker's metadata.
        assert!(Instant::now() < deadline, "{}", stderr(&out));
        std::thread::sleep(Duration::from_millis(500));
    }
    setup.source.produce(&t, 0, &keyed("third", 0..50)).expect("produce");
    assert_success(&setup.mirror_until_caught_up(&t, &[]));
    let copies = setup.target.read_committed_audited(&t, 0).expect("read the copy");
    assert_eq!(copies.len(), 50, "only the records after the new start");
    let later = format!("later-{}", unique_suffix());
    commit_group(&setup.source, &later, &t, &BTreeMap::from([(0, 220)]));
    // Source 50 now precedes the copy: the first copy (0). Source 220: the copy of "third-20".
    assert_eq!(target_of(&setup.translate_offsets(&state, &["--group", &early])), Some(0));
    let third_20 = copies.iter().find(|r| r.data.key.as_deref() == Some(&b"third-20"[..])).map(|r| r.offset);
    assert_eq!(target_of(&setup.translate_offsets(&state, &["--group", &later])), third_20);
}

/// `--execute` over several groups checks every one before it moves any: a group with no
/// position in a mirrored topic stops the run in one line naming it, and the others stay where
/// they were on the target (the run moved those sorted before it, then stopped half-way).
#[test]
fn execute_moves_no_group_while_one_of_them_cannot_be_translated() {
    let setup = Setup::new();
    let (mirrored, other) = (topic("halfway"), topic("unmirrored"));
    for t in [&mirrored, &other] {
        setup.source.create_topic(t, 1, &[]).expect("topic");
        setup.source.produce(t, 0, &keyed("r", 0..20)).expect("produce");
    }
    assert_success(&setup.mirror_until_caught_up(&regex::escape(&mirrored), &[]));
    let prefix = format!("halfway-{}-", unique_suffix());
    let (a, b) = (format!("{prefix}a"), format!("{prefix}b"));
    commit_group(&setup.source, &a, &mirrored, &BTreeMap::from([(0, 12)]));
    commit_group(&setup.source, &b, &other, &BTreeMap::from([(0, 5)]));
    let state = setup.state_dir.path().join("halfway.translate");
    let groups = format!("{}.*", regex::escape(&prefix));
    let out = setup.translate_offsets(&state, &["--groups", &groups, "--execute"]);
    let said = stderr(&out);
    let line = said.lines().find(|l| l.starts_with("kmirror: error:")).unwrap_or_default();
    assert!(
        !out.status.success() && line.contains(&b) && line.contains("has no position that can be translated"),
        "{said}"
    );
    assert_eq!(group_offsets(&setup.target, &a, &mirrored, 1), BTreeMap::from([(0, None)]), "nothing moved");
    // Without the group that cannot be translated, the other moves.
    assert_success(&setup.translate_offsets(&state, &["--group", &a, "--execute"]));
    assert_eq!(group_offsets(&setup.target, &a, &mirrored, 1), BTreeMap::from([(0, Some(12))]));
}

/// Records deleted from the head of the offset-map topic (DeleteRecords) leave positions that can
/// no longer be translated exactly: a local map filled from scratch refuses in one line naming the
/// partition, instead of starting at the topic's end and answering from what it never read.
#[test]
fn a_map_topic_missing_its_first_records_is_refused_not_read_from_its_end() {
    let setup = Setup::new();
    let t = topic("mapcut");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    for round in 0..2 {
        setup.source.produce(&t, 0, &keyed(&format!("round{round}"), 0..10)).expect("produce");
        assert_success(&setup.mirror_until_caught_up(&t, &[]));
    }
    let group = format!("cut-{}", unique_suffix());
    commit_group(&setup.source, &group, &t, &BTreeMap::from([(0, 5)]));
    let map = format!("kmirror.offset-map.{}", setup.name);
    let (partition, records) = (0..4)
        .map(|p| (p, setup.target.read_committed_audited(&map, p).expect("read the map").len()))
        .find(|&(_, n)| n > 0)
        .expect("a map partition with records");
    assert!(records >= 2, "one map record per batch: {records}");
    let state = setup.state_dir.path().join("cut.translate");
    let out = setup.translate_offsets(&state, &["--group", &group]);
    assert_success(&out);
    setup.target.delete_records(&map, partition, 1).expect("delete the map's first record");
    let fresh = setup.state_dir.path().join("cut-fresh.translate");
    let out = setup.translate_offsets(&fresh, &["--group", &group]);
    let said = stderr(&out);
    let line = said.lines().find(|l| l.starts_with("kmirror: error:")).unwrap_or_default();
    assert!(
        !out.status.success()
            && line.contains(&format!(
                "{map} partition {partition} starts at 1: its records from 0 were deleted"
            )),
        "{said}"
    );
    // A local map filled before the deletion goes on from where it was.
    assert_success(&setup.translate_offsets(&state, &["--group", &group]));
}

/// The target offset of the copy of the source record keyed `key` in partition 0.
fn copy_offset(setup: &Setup, topic: &str, key: &str) -> i64 {
    setup
        .target
        .read_committed_audited(topic, 0)
        .expect("read")
        .into_iter()
        .find(|r| r.data.key.as_deref() == Some(key.as_bytes()))
        .unwrap_or_else(|| panic!("no copy of {key}"))
        .offset
}

/// A cutover with the live source while the group has read past what the mirror copied: the
/// records between land on the target after the copies' end, so a group moved there would read
/// them again. The dry run says so, `--execute` moves nothing, naming the group, and once the
/// mirror has copied them the group moves to its exact position (before: to the copies' end at
/// once, then read the rest again).
#[test]
fn a_cutover_waits_for_the_copies_to_reach_the_group() {
    let setup = Setup::new();
    let t = topic("ahead");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("a", 0..20)).expect("produce");
    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &[]));
    setup.source.produce(&t, 0, &keyed("b", 0..10)).expect("produce");
    let group = format!("ahead-{}", unique_suffix());
    commit_group(&setup.source, &group, &t, &BTreeMap::from([(0, 25)]));
    let state = setup.state_dir.path().join("ahead.translate");

    let out = setup.translate_offsets(&state, &["--group", &group]);
    assert_success(&out);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let note = rows[0]["note"].as_str().unwrap_or_default();
    assert!(note.contains("copied up to source offset 20"), "{rows}");
    let out = setup.translate_offsets(&state, &["--group", &group, "--execute"]);
    let said = stderr(&out);
    let line = said.lines().find(|l| l.starts_with("kmirror: error:")).unwrap_or_default();
    assert!(!out.status.success() && line.contains(&group) && line.contains("past what mirror"), "{said}");
    assert_eq!(group_offsets(&setup.target, &group, &t, 1), BTreeMap::from([(0, None)]), "nothing moved");

    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &[]));
    assert_success(&setup.translate_offsets(&state, &["--group", &group, "--execute"]));
    let at = copy_offset(&setup, &t, "b-5");
    assert_eq!(group_offsets(&setup.target, &group, &t, 1), BTreeMap::from([(0, Some(at))]));
}

/// `--reverse --execute` for a group that read records written on the target (DR writes): the
/// source does not have them, and moving the group to the copies' end there would let it read
/// them again when failback copies them home. Refused, naming failback, with nothing moved
/// (before: committed, with only a note).
#[test]
fn reverse_execute_refuses_a_group_that_read_dr_writes() {
    let setup = Setup::new();
    let t = topic("drwrites");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("a", 0..20)).expect("produce");
    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &[]));
    setup.target.produce(&t, 0, &keyed("dr", 0..5)).expect("DR writes");
    let group = format!("drwrites-{}", unique_suffix());
    let end = copy_offset(&setup, &t, "dr-4") + 1;
    commit_group(&setup.target, &group, &t, &BTreeMap::from([(0, end)]));
    let state = setup.state_dir.path().join("drwrites.translate");
    let out = setup.translate_offsets(&state, &["--group", &group, "--reverse", "--execute"]);
    let said = stderr(&out);
    let line = said.lines().find(|l| l.starts_with("kmirror: error:")).unwrap_or_default();
    assert!(!out.status.success() && line.contains(&group) && line.contains("kmirror failback"), "{said}");
    assert_eq!(group_offsets(&setup.source, &group, &t, 1), BTreeMap::from([(0, None)]), "nothing moved");
    // A group that read only copies still moves home.
    let copies = format!("{group}-copies");
    commit_group(&setup.target, &copies, &t, &BTreeMap::from([(0, copy_offset(&setup, &t, "a-7"))]));
    assert_success(&setup.translate_offsets(&state, &["--group", &copies, "--reverse", "--execute"]));
    assert_eq!(group_offsets(&setup.source, &copies, &t, 1), BTreeMap::from([(0, Some(7))]));
}

/// `--execute` with a `--source` that does not answer: refused, not moved to the last checkpoints
/// (minutes old, so behind where the group is, and with no check for consumers still on the
/// source). Leaving `--source` out asks for the checkpoints.
#[test]
fn execute_with_a_source_that_does_not_answer_moves_nothing() {
    let setup = Setup::new();
    let t = topic("nosource");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("a", 0..20)).expect("produce");
    let group = format!("nosource-{}", unique_suffix());
    commit_group(&setup.source, &group, &t, &BTreeMap::from([(0, 9)]));
    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &["--groups", &regex::escape(&group)]));
    let state = setup.state_dir.path().join("nosource.translate");
    let args = |source: Option<&str>| {
        let mut args: Vec<String> =
            ["translate-offsets", "--target", setup.target.bootstrap(), "--name", &setup.name]
                .iter()
                .map(|s| s.to_string())
                .collect();
        if let Some(source) = source {
            args.extend(["--source".to_string(), source.to_string(), "--connect-timeout".into(), "3".into()]);
        }
        args.extend(["--group", &group, "--execute", "--state-dir"].iter().map(|s| s.to_string()));
        args.push(state.display().to_string());
        args
    };
    let out = run(&args(Some("127.0.0.1:1")), Duration::from_secs(60));
    assert!(!out.status.success(), "{}", stderr(&out));
    assert_eq!(group_offsets(&setup.target, &group, &t, 1), BTreeMap::from([(0, None)]), "nothing moved");
    assert_success(&run(&args(None), Duration::from_secs(60)));
    assert_eq!(
        group_offsets(&setup.target, &group, &t, 1),
        BTreeMap::from([(0, Some(copy_offset(&setup, &t, "a-9")))])
    );
}

/// The checkpoint topic is compacted, and a group whose positions stand still is written once,
/// not every cycle: the topic, which a failover reads whole, grew by every group at every cycle
/// for ever. One an earlier version made to keep every checkpoint is made compacted.
#[test]
fn checkpoints_of_a_group_standing_still_are_written_once_into_a_compacted_topic() {
    let setup = Setup::new();
    let t = topic("still");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("r", 0..10)).expect("produce");
    let group = format!("still-{}", unique_suffix());
    commit_group(&setup.source, &group, &t, &BTreeMap::from([(0, 5)]));
    let checkpoints = format!("kmirror.checkpoints.{}", setup.name);
    setup
        .target
        .create_topic(&checkpoints, 1, &[("cleanup.policy", "delete"), ("retention.ms", "-1")])
        .expect("an earlier version's checkpoint topic");
    let (mut mirror, log) = setup.spawn_mirror_logged(
        &regex::escape(&t),
        &["--groups", &regex::escape(&group), "--checkpoint-interval", "1"],
    );
    let written = || -> usize {
        setup
            .target
            .read_committed_audited(&checkpoints, 0)
            .map(|records| records.iter().filter(|r| r.data.key.as_deref() == Some(group.as_bytes())).count())
            .unwrap_or(0)
    };
    let started = Instant::now();
    while written() == 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "no checkpoint: {}", last_lines(&log));
        std::thread::sleep(Duration::from_millis(200));
    }
    // Five cycles more with the group where it was.
    std::thread::sleep(Duration::from_secs(5));
    terminate(&mirror);
    assert!(mirror.wait().expect("wait").success(), "{}", last_lines(&log));
    assert_eq!(written(), 1, "{}", last_lines(&log));
    let configs = setup.target.topic_configs(&checkpoints).expect("configs");
    assert_eq!(configs.get("cleanup.policy").map(String::as_str), Some("compact"), "{configs:?}");
    assert_eq!(configs.get("min.compaction.lag.ms").map(String::as_str), Some("3600000"), "{configs:?}");
}

/// A partition the mirror has copied nothing of (empty when it ran) gets a row saying so, where
/// it was left out without a word; a group past the mirror's position there is refused by
/// `--execute` (moved on its other partitions only, it read those records again once copied).
#[test]
fn a_partition_the_mirror_copied_nothing_of_is_said_and_a_group_past_it_is_not_moved() {
    let setup = Setup::new();
    let t = topic("uncopied");
    setup.source.create_topic(&t, 2, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("a", 0..20)).expect("produce");
    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &[]));
    let state = setup.state_dir.path().join("uncopied.translate");
    let rows_of = |group: &str| -> Vec<serde_json::Value> {
        let out = setup.translate_offsets(&state, &["--group", group]);
        assert_success(&out);
        serde_json::from_slice(&out.stdout).expect("json rows")
    };

    let idle = format!("idle-{}", unique_suffix());
    commit_group(&setup.source, &idle, &t, &BTreeMap::from([(0, 5), (1, 0)]));
    let rows = rows_of(&idle);
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let empty = rows.iter().find(|r| r["source_partition"] == 1).expect("a row for partition 1");
    assert_eq!(
        (empty["target_topic"].as_str(), &empty["target_offset"]),
        (Some(t.as_str()), &serde_json::Value::Null)
    );
    assert!(empty["note"].as_str().unwrap_or_default().contains("copied no record"), "{rows:#?}");

    // Records written there since, read by a group, not copied yet.
    setup.source.produce(&t, 1, &keyed("b", 0..10)).expect("produce");
    let ahead = format!("ahead-{}", unique_suffix());
    commit_group(&setup.source, &ahead, &t, &BTreeMap::from([(0, 5), (1, 3)]));
    let rows = rows_of(&ahead);
    let past = rows.iter().find(|r| r["source_partition"] == 1).expect("a row for partition 1");
    assert!(past["note"].as_str().unwrap_or_default().contains("copied up to source offset 0"), "{rows:#?}");
    let out = setup.translate_offsets(&state, &["--group", &ahead, "--execute"]);
    assert!(!out.status.success() && stderr(&out).contains("past what mirror"), "{}", stderr(&out));
    assert_eq!(
        group_offsets(&setup.target, &ahead, &t, 2),
        BTreeMap::from([(0, None), (1, None)]),
        "nothing moved"
    );

    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &[]));
    assert_success(&setup.translate_offsets(&state, &["--group", &ahead, "--execute"]));
    let copies = setup.target.read_committed_audited(&t, 1).expect("read");
    let at = copies.iter().find(|r| r.data.key.as_deref() == Some(b"b-3".as_slice())).map(|r| r.offset);
    assert!(at.is_some(), "copied: {copies:?}");
    assert_eq!(
        group_offsets(&setup.target, &ahead, &t, 2)[&1],
        at,
        "at the copy of the first record it had not read"
    );
}

/// Forty groups synced in one cycle: each lands at the copy of its own next record (their
/// target positions, members and commits are asked side by side over a few clients, where a
/// client per group and call took 13 s a cycle for 100 groups).
#[test]
fn many_groups_are_synced_each_to_the_copy_of_its_next_record() {
    let setup = Setup::new();
    let t = topic("many-groups");
    setup.source.create_topic(&t, 2, &[]).expect("topic");
    for p in 0..2 {
        setup.source.produce(&t, p, &keyed(&format!("p{p}"), 0..60)).expect("produce");
    }
    let prefix = format!("many-{}", unique_suffix());
    let groups: Vec<(String, [i64; 2])> =
        (0..40).map(|i| (format!("{prefix}-{i}"), [i as i64, 59 - i as i64])).collect();
    for (group, at) in &groups {
        commit_group(&setup.source, group, &t, &[(0, at[0]), (1, at[1])].into_iter().collect());
    }
    let pattern = format!("{}-.*", regex::escape(&prefix));
    let out =
        setup.mirror_until_caught_up(&regex::escape(&t), &["--groups", &pattern, "--sync-group-offsets"]);
    assert_success(&out);
    let read = |cluster: &KafkaCluster, p: i32| cluster.read_committed_audited(&t, p).expect("read");
    let source: Vec<Vec<StoredRecord>> = (0..2).map(|p| read(&setup.source, p)).collect();
    let target: Vec<Vec<StoredRecord>> = (0..2).map(|p| read(&setup.target, p)).collect();
    for (group, at) in &groups {
        let synced = committed(&setup.target, group, &t);
        for p in 0..2usize {
            let next = source[p].iter().find(|r| r.offset == at[p]).expect("the group's next record");
            let position =
                *synced.get(&(p as i32)).unwrap_or_else(|| panic!("{group} synced on partition {p}"));
            let landed = target[p].iter().find(|r| r.offset >= position).expect("a copy at or after it");
            assert_eq!(
                landed.data, next.data,
                "{group} partition {p}: its next record on the target is its copy"
            );
            let before = target[p].iter().filter(|r| r.offset < position).count() as i64;
            assert_eq!(before, at[p], "{group} partition {p}: every copy before it was read on the source");
        }
    }
}

/// A group's checkpoint past librdkafka's 1 000 000-byte record limit (here 300 partitions, each
/// position with 4 000 bytes of commit metadata, which Kafka takes up to 4 096; its members
/// commit a part each) is stored, and a failover finds the group's positions in it (the cycle
/// failed with the record too large: no checkpoint, exit 1). The group's sync commits it on the
/// target in parts, each under the 1 MB Kafka writes a commit in (one commit: refused).
#[test]
fn a_group_past_a_megabyte_is_checkpointed_and_synced() {
    const MANY: i32 = 300;
    let setup = Setup::new();
    let t = topic("bigcheckpoint");
    setup.source.create_topic(&t, MANY, &[]).expect("topic");
    let producer: rdkafka::producer::BaseProducer =
        setup.source.client_config().set("enable.idempotence", "true").create().expect("producer");
    for p in 0..MANY {
        for i in 0..2 {
            let key = format!("p{p}-{i}");
            let record = rdkafka::producer::BaseRecord::to(&t).partition(p).key(&key).payload(&key);
            producer.send(record).map_err(|(e, _)| e).expect("send");
        }
    }
    rdkafka::producer::Producer::flush(&producer, Duration::from_secs(30)).expect("flush");
    let group = format!("wide-{}", unique_suffix());
    let consumer: BaseConsumer = setup
        .source
        .client_config()
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    // A commit is one batch on the broker, under its 1 MB: a member's share each.
    for share in (0..MANY).collect::<Vec<_>>().chunks(65) {
        let mut tpl = TopicPartitionList::new();
        for &p in share {
            let mut position = tpl.add_partition(&t, p);
            position.set_offset(Offset::Offset(1)).expect("offset");
            position.set_metadata(format!("{p:04}").repeat(1000));
        }
        consumer.commit(&tpl, rdkafka::consumer::CommitMode::Sync).expect("commit");
    }

    let out = setup.mirror_until_caught_up(
        &regex::escape(&t),
        &["--groups", &regex::escape(&group), "--sync-group-offsets"],
    );
    assert_success(&out);
    // The synced group, as a new client of the target reads it: every position with its metadata.
    let reader: BaseConsumer =
        setup.target.client_config().set("group.id", &group).create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..MANY {
        tpl.add_partition(&t, p);
    }
    let synced = reader.committed_offsets(tpl, Duration::from_secs(30)).expect("committed");
    let exact = synced
        .elements()
        .iter()
        .filter(|e| {
            e.offset() == Offset::Offset(1) && e.metadata() == format!("{:04}", e.partition()).repeat(1000)
        })
        .count();
    assert_eq!(exact, MANY as usize, "{}", stderr(&out));
    // The checkpoint, as a failover (a dry run) reads it: every position, at the copy of offset 1.
    let out = setup.failover(&["--format", "json"]);
    assert_success(&out);
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let rows = record["positions"].as_array().map_or(0, |rows| {
        rows.iter()
            .filter(|r| r["group"] == group.as_str() && r["source_offset"] == 1 && r["target_offset"] == 1)
            .count()
    });
    assert_eq!(rows, MANY as usize, "{}", stderr(&out));
}
