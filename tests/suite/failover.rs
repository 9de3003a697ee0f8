//! `kmirror failover`: a disaster-recovery drill end to end on real brokers. Consumers that
//! committed known positions on the source read, on the target after the failover, exactly the
//! records they had not read; the mirror is fenced so nothing lands behind those positions; a
//! group with members on the target is refused by name before anything changes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::*;
use kmirror_testcontainers::{KafkaCluster, Role};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;

const PARTITIONS: i32 = 2;
const PER_PARTITION: usize = 100;

/// The group's committed positions on the target, and the keys a consumer resuming there reads
/// to the end of each partition (an independent read_committed client).
fn resume_on_target(setup: &Setup, group: &str, topic: &str) -> BTreeMap<i32, (i64, Vec<Vec<u8>>)> {
    let mut out = BTreeMap::new();
    for (partition, position) in group_offsets(&setup.target, group, topic, PARTITIONS) {
        let position =
            position.unwrap_or_else(|| panic!("group {group} has no position on {topic}/{partition}"));
        let reader: BaseConsumer = setup
            .target
            .client_config()
            .set("group.id", format!("reader-{group}"))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .expect("reader");
        let mut one = rdkafka::TopicPartitionList::new();
        one.add_partition_offset(topic, partition, rdkafka::Offset::Offset(position)).expect("tpl");
        reader.assign(&one).expect("assign");
        let expected = PER_PARTITION - position as usize;
        let mut keys = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut quiet_until = None;
        while Instant::now() < deadline && quiet_until.is_none_or(|t| Instant::now() < t) {
            if keys.len() >= expected && quiet_until.is_none() {
                quiet_until = Some(Instant::now() + Duration::from_secs(1));
            }
            if let Some(m) = reader.poll(Duration::from_millis(100)) {
                keys.push(m.expect("read").key().map(<[u8]>::to_vec).unwrap_or_default());
            }
        }
        out.insert(partition, (position, keys));
    }
    out
}

#[test]
fn a_failover_drill_moves_every_checkpointed_group_to_its_exact_position() {
    let setup = Setup::new();
    let t = topic("drill");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    for p in 0..PARTITIONS {
        setup.source.produce(&t, p, &keyed(&format!("p{p}"), 0..PER_PARTITION)).expect("produce");
    }
    let (billing, shipping) = (format!("billing-{}", setup.name), format!("shipping-{}", setup.name));
    let positions: BTreeMap<&str, BTreeMap<i32, i64>> = [
        (billing.as_str(), BTreeMap::from([(0, 40), (1, 70)])),
        (shipping.as_str(), BTreeMap::from([(0, 100), (1, 3)])),
    ]
    .into();
    for (group, offsets) in &positions {
        commit_group(&setup.source, group, &t, offsets);
    }
    let groups = format!("(billing|shipping)-{}", setup.name);
    let mut mirror = setup.spawn_mirror(&t, &["--groups", &groups, "--checkpoint-interval", "1"]);
    // Running, caught up and checkpointed: both groups' checkpoints are on the target.
    let started = Instant::now();
    loop {
        let copied: usize = (0..PARTITIONS)
            .map(|p| setup.target.audit_partition(&t, p).map(|a| a.visible.len()).unwrap_or(0))
            .sum();
        let status = status_json_once_there(&setup).unwrap_or_default();
        let checkpointed = status["groups"].as_array().map_or(0, Vec::len);
        if copied == PARTITIONS as usize * PER_PARTITION && checkpointed == 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "copied {copied}, checkpointed {checkpointed}: {status:#}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    setup.assert_exactly_once(&t, PARTITIONS, Some(PER_PARTITION));

    // Dry run, from the checkpoints alone (the source is "gone"): the plan, nothing changed.
    let dry = setup.failover(&["--format", "json"]);
    assert_success(&dry);
    let record: serde_json::Value = serde_json::from_slice(&dry.stdout).expect("json record");
    assert_eq!(record["executed"], false, "{record:#}");
    for row in record["positions"].as_array().expect("positions") {
        let group = row["group"].as_str().expect("group");
        let p = row["source_partition"].as_i64().expect("partition") as i32;
        let expected = positions[group][&p];
        assert_eq!(
            (row["source_offset"].as_i64(), row["target_offset"].as_i64()),
            (Some(expected), Some(expected)),
            "{row}"
        );
    }

    // Consumers of both groups still on the target, shipping's under Kafka 4's consumer group
    // protocol (KIP-848), which the classic DescribeGroups does not describe: refused by name,
    // nothing changed.
    let members: Vec<BaseConsumer> = [(&billing, "classic"), (&shipping, "consumer")]
        .into_iter()
        .map(|(group, protocol)| {
            let member: BaseConsumer = setup
                .target
                .client_config()
                .set("group.id", group)
                .set("group.protocol", protocol)
                .set("enable.auto.commit", "false")
                .create()
                .expect("member");
            member.subscribe(&[&t]).expect("subscribe");
            member
        })
        .collect();
    let joined = Instant::now();
    while members.iter().any(|m| m.assignment().map_or(0, |a| a.count()) == 0) {
        for member in &members {
            member.poll(Duration::from_millis(50));
        }
        assert!(joined.elapsed() < Duration::from_secs(30), "the members never joined");
    }
    let refused = setup.failover(&["--execute"]);
    assert!(!refused.status.success(), "must be refused: {}", stderr(&refused));
    let said = stderr(&refused);
    assert!(
        said.contains(&format!("{billing} (1)"))
            && said.contains(&format!("{shipping} (1)"))
            && said.contains("active member"),
        "{said}"
    );
    drop(members);

    // The drill: fence, commit, and consumers on the target read exactly what they had not read.
    let done = setup.failover(&["--execute"]);
    assert_success(&done);
    let table = String::from_utf8_lossy(&done.stdout);
    assert!(table.contains("fenced (4 shards)") && table.contains("positions committed"), "{table}");
    for (group, offsets) in &positions {
        for (p, (position, keys)) in resume_on_target(&setup, group, &t) {
            assert_eq!(position, offsets[&p], "{group} partition {p}");
            let expected: Vec<Vec<u8>> =
                (offsets[&p] as usize..PER_PARTITION).map(|i| format!("p{p}-{i}").into_bytes()).collect();
            assert_eq!(keys, expected, "{group} partition {p} reads exactly what it had not read");
        }
    }

    // The fenced mirror writes nothing more: its next transaction fails, and it stops (exit 3).
    setup.source.produce(&t, 0, &keyed("after-", 0..5)).expect("produce");
    let status = wait_exit(&mut mirror, Duration::from_secs(60)).expect("the fenced mirror stops");
    assert_eq!(status.code(), Some(3), "fenced");
    let said = stderr(&mirror.wait_with_output().expect("output"));
    assert!(said.contains("kmirror failover --execute"), "the mirror names who fenced it: {said}");
    let audit = setup.target.audit_partition(&t, 0).expect("audit");
    assert_eq!(audit.visible.len(), PER_PARTITION, "nothing landed behind the translated positions");

    // Started again after the failover (by hand, or by a supervisor restarting the process): it
    // refuses before anything is written, naming the failover and how to resume.
    let again = setup.mirror_until_caught_up(&t, &["--groups", &groups, "--sync-group-offsets"]);
    let said = stderr(&again);
    assert_eq!(again.status.code(), Some(3), "a start after the failover is refused: {said}");
    let line = said.lines().find(|l| l.starts_with("kmirror: error:")).unwrap_or_default();
    assert!(
        line.contains("was failed over")
            && line.contains("kmirror failover --execute")
            && line.contains("--after-failover"),
        "one line naming the failover and the fix: {said}"
    );
    let audit = setup.target.audit_partition(&t, 0).expect("audit");
    assert_eq!(audit.visible.len(), PER_PARTITION, "the refused start copied nothing");
    for (group, offsets) in &positions {
        for (p, (position, _)) in resume_on_target(&setup, group, &t) {
            assert_eq!(position, offsets[&p], "{group} partition {p} stays where the failover put it");
        }
    }

    // Consumers on the target read on (billing, 10 more in partition 0), then the failover is
    // run again (a runbook step repeated): it leaves billing there, saying so, instead of
    // sending it back to read those again.
    commit_group(&setup.target, &billing, &t, &BTreeMap::from([(0, 50)]));
    let repeated = setup.failover(&["--execute"]);
    assert_success(&repeated);
    let table = String::from_utf8_lossy(&repeated.stdout);
    assert!(table.contains("not committed: the group is at 50 on the target"), "{table}");
    assert_eq!(
        group_offsets(&setup.target, &billing, &t, PARTITIONS),
        BTreeMap::from([(0, Some(50)), (1, Some(70))]),
        "{table}"
    );
    let status = status_json_once_there(&setup).expect("status");
    let held: Vec<i64> = status["failed_over"]
        .as_array()
        .expect("failed_over")
        .iter()
        .filter_map(|c| c["shard"].as_i64())
        .collect();
    assert_eq!(held, vec![0, 1, 2, 3], "status shows the failover in force on every shard: {status:#}");

    // The drill is over, its clients back on the source: resumed on purpose, the mirror copies
    // exactly what the source gained meanwhile, and later starts need no flag.
    assert_success(&setup.mirror_until_caught_up(&t, &["--after-failover"]));
    let status = status_json_once_there(&setup).expect("status");
    assert_eq!(status["failed_over"], serde_json::json!([]), "resumed: {status:#}");
    setup.source.produce(&t, 1, &keyed("resumed-", 0..3)).expect("produce");
    assert_success(&setup.mirror_until_caught_up(&t, &[]));
    let audits = setup.audit(&t, PARTITIONS);
    for audit in &audits {
        assert_eq!((audit.duplicates, audit.missing), (0, 0), "{audit:?}");
        assert!(audit.identical, "{audit:?}");
    }
    let copied: Vec<usize> = audits.iter().map(|a| a.source_records).collect();
    assert_eq!(copied, vec![PER_PARTITION + 5, PER_PARTITION + 3], "{audits:?}");
}

/// A mirror idle at the failover is never fenced (it writes nothing): its group sync, which reads
/// the claims before each cycle, finds the failover and stops it, and it gives up no shard over
/// the failover's claims; its next start must refuse all the same.
#[test]
fn a_mirror_idle_at_a_failover_stops_by_itself_and_its_next_start_refuses() {
    let setup = Setup::new();
    let t = topic("idlefo");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    for p in 0..PARTITIONS {
        setup.source.produce(&t, p, &keyed(&format!("p{p}"), 0..20)).expect("produce");
    }
    let group = format!("app-{}", setup.name);
    commit_group(&setup.source, &group, &t, &BTreeMap::from([(0, 5), (1, 5)]));
    // One shard, so that the release covers every shard the failover took.
    let mut mirror = setup.spawn_mirror(
        &t,
        &["--shards", "1", "--groups", &regex::escape(&group), "--checkpoint-interval", "1"],
    );
    let started = Instant::now();
    while (0..PARTITIONS).any(|p| setup.target.audit_partition(&t, p).map_or(0, |a| a.visible.len()) < 20)
        || status_json_once_there(&setup).and_then(|s| s["groups"].as_array().map(Vec::len)) != Some(1)
    {
        assert!(started.elapsed() < Duration::from_secs(60), "the mirror never copied and checkpointed");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_success(&setup.failover(&["--execute"]));
    let stopped = wait_exit(&mut mirror, Duration::from_secs(60)).expect("the idle mirror stops by itself");
    let said = stderr(&mirror.wait_with_output().expect("output"));
    assert_eq!(stopped.code(), Some(3), "idle, it stops on the failover its group sync reads: {said}");
    assert!(said.contains("was failed over") && said.contains("kmirror failover --execute"), "{said}");

    setup.source.produce(&t, 0, &keyed("after-", 0..5)).expect("produce");
    let again = setup.mirror_until_caught_up(&t, &["--shards", "1"]);
    let said = stderr(&again);
    assert_eq!(again.status.code(), Some(3), "a start after the failover is refused: {said}");
    assert!(said.contains("was failed over") && said.contains("--after-failover"), "{said}");
    let status = status_json_once_there(&setup).expect("status");
    assert_eq!(status["owners"], serde_json::json!([]), "the failover holds the shard: {status:#}");
    let held = status["failed_over"].as_array().map_or(0, Vec::len);
    assert_eq!(held, 1, "the failover is in force on the one shard: {status:#}");
    let audit = setup.target.audit_partition(&t, 0).expect("audit");
    assert_eq!(audit.visible.len(), 20, "nothing copied after the failover");
}

/// A failover that lands after a start read the shards' claims but before its shards fenced
/// (here the start waits on a frozen source in between): the shards' fencing takes the ids back
/// from the failover, and only a read of the claims after it can stop them. Nothing may be
/// committed behind the failover, and no group moved.
#[test]
fn a_failover_landing_between_a_starts_claims_read_and_its_fencing_stops_it_before_it_commits() {
    let setup = Setup::with_source(KafkaCluster::start(Role::Source).expect("a source of this test's own"));
    if setup.source.pid().is_none() {
        eprintln!("skipped: pausing needs a harness-owned source broker (external clusters are set)");
        return;
    }
    let t = topic("racefo");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    for p in 0..PARTITIONS {
        setup.source.produce(&t, p, &keyed(&format!("p{p}"), 0..20)).expect("produce");
    }
    let group = format!("app-{}", setup.name);
    let groups = regex::escape(&group);
    commit_group(&setup.source, &group, &t, &BTreeMap::from([(0, 5), (1, 7)]));
    let sync = ["--groups", groups.as_str(), "--sync-group-offsets"];
    assert_success(&setup.mirror_until_caught_up(&t, &sync));
    setup.assert_exactly_once(&t, PARTITIONS, Some(20));
    for p in 0..PARTITIONS {
        setup.source.produce(&t, p, &keyed(&format!("late{p}-"), 0..10)).expect("produce");
    }
    // The group reads on at the source: a run that got through would move it on the target too.
    commit_group(&setup.source, &group, &t, &BTreeMap::from([(0, 25), (1, 27)]));

    setup.source.pause().expect("pause the source");
    let (mut mirror, log_path) = setup.spawn_mirror_logged_at(
        "info,kmirror=debug,librdkafka=warn",
        &t,
        &[&sync[..], &["--until-caught-up", "--connect-timeout", "120"]].concat(),
    );
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let started = Instant::now();
    while !log().contains("shard claims read") {
        assert!(mirror.try_wait().expect("wait").is_none(), "the mirror stopped:\n{}", log());
        assert!(started.elapsed() < Duration::from_secs(60), "the start never read the claims:\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!log().contains("shard fenced"), "the shards fenced with the source frozen:\n{}", log());
    let failover = setup.failover(&["--execute"]);
    setup.source.resume().expect("resume the source");
    assert_success(&failover);
    let moved = group_offsets(&setup.target, &group, &t, PARTITIONS);
    assert_eq!(
        moved,
        BTreeMap::from([(0, Some(5)), (1, Some(7))]),
        "the failover's positions: the last checkpoint's"
    );

    let stopped = wait_exit(&mut mirror, Duration::from_secs(120)).expect("the mirror stops");
    let said = log();
    assert_eq!(stopped.code(), Some(3), "the failover stops the run before its first commit:\n{said}");
    assert!(said.contains("shard fenced"), "the shards fenced after the failover:\n{said}");
    assert!(said.contains("was failed over") && said.contains("--after-failover"), "{said}");
    for p in 0..PARTITIONS {
        let audit = setup.target.audit_partition(&t, p).expect("audit");
        assert_eq!(audit.visible.len(), 20, "partition {p}: nothing committed behind the failover");
        // No transaction began either: none is left open for the target's consumers to wait on.
        let written = setup.target.read_uncommitted(&t, p).expect("read uncommitted");
        assert_eq!(written.len(), 20, "partition {p}: nothing written behind the failover, aborted or not");
    }
    assert_eq!(
        group_offsets(&setup.target, &group, &t, PARTITIONS),
        moved,
        "the group stays where the failover put it"
    );
    let status = status_json_once_there(&setup).expect("status");
    let taken = status["failed_over"].as_array().map_or(0, Vec::len);
    assert!(taken > 0, "the failover is still in force: {status:#}");
}

fn failback(setup: &Setup, extra: &[&str]) -> std::process::Output {
    let mut args: Vec<String> = [
        "failback",
        "--target",
        setup.target.bootstrap(),
        "--source",
        setup.source.bootstrap(),
        "--name",
        &setup.name,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(["--state-dir".to_string(), setup.state_dir.path().join("failback").display().to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    run(&args, Duration::from_secs(120))
}

/// The opposite mirror `back` (DR -> source) of `topics`, as a batch.
fn way_home(setup: &Setup, back: &str, topics: &str, state: &std::path::Path) -> Vec<String> {
    [
        "mirror",
        "--source",
        setup.target.bootstrap(),
        "--target",
        setup.source.bootstrap(),
        "--name",
        back,
        "--topics",
        topics,
        "--until-caught-up",
        "--transaction-max-ms",
        "100",
        // As failback's command has it.
        "--exclude-configs",
        ".*",
        "--state-dir",
        &state.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn keys(records: &[kmirror_testcontainers::StoredRecord]) -> Vec<Vec<u8>> {
    records.iter().map(|r| r.data.key.clone().unwrap_or_default()).collect()
}

/// The way back: after a failover, DR takes writes; the opposite mirror copies exactly those (not
/// the records mirrored to DR, which would cycle), and the group moves back to the source at the
/// exact record, whether it had read into the DR writes or still lagged in the mirrored records.
#[test]
fn a_failback_brings_the_dr_writes_home_and_the_groups_to_their_exact_positions() {
    let setup = Setup::new();
    let t = topic("failback");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    for p in 0..PARTITIONS {
        setup.source.produce(&t, p, &keyed(&format!("p{p}"), 0..PER_PARTITION)).expect("produce");
    }
    // Mirrored too, but empty until the failover: nothing of it is in the map.
    let empty = format!("{t}-dlq");
    setup.source.create_topic(&empty, 1, &[]).expect("topic");
    let both = format!("{}|{}", regex::escape(&t), regex::escape(&empty));
    let group = format!("orders-{}", setup.name);
    commit_group(&setup.source, &group, &t, &BTreeMap::from([(0, 40), (1, 60)]));
    assert_success(&setup.mirror_until_caught_up(&both, &["--groups", &regex::escape(&group)]));
    setup.assert_exactly_once(&t, PARTITIONS, Some(PER_PARTITION));
    assert_success(&setup.failover(&["--execute"]));

    // Life on DR: producers write there, the group reads on.
    const DR_WRITES: usize = 30;
    for p in 0..PARTITIONS {
        setup.target.produce(&t, p, &keyed(&format!("dr{p}"), 0..DR_WRITES)).expect("produce on DR");
    }
    setup.target.produce(&empty, 0, &keyed("dlq", 0..5)).expect("produce on DR");
    let on_dr: Vec<Vec<kmirror_testcontainers::StoredRecord>> =
        (0..PARTITIONS).map(|p| setup.target.read_committed_audited(&t, p).expect("read DR")).collect();
    assert!(on_dr.iter().all(|r| r.len() == PER_PARTITION + DR_WRITES));
    // Partition 0 has read 10 of the DR writes; partition 1 still lags at mirrored record 70.
    let dr_positions = BTreeMap::from([(0, on_dr[0][PER_PARTITION + 10].offset), (1, on_dr[1][70].offset)]);
    commit_group(&setup.target, &group, &t, &dr_positions);
    // Nothing read yet of the topic that was empty at the failover (an auto-commit of 0).
    commit_group(&setup.target, &group, &empty, &BTreeMap::from([(0, 0)]));

    // translate-offsets --reverse says which position lies past the copies: there the group read
    // DR writes the source does not have.
    let reverse_state = tempfile::tempdir().expect("tempdir");
    let reversed = setup.translate_offsets(reverse_state.path(), &["--group", &group, "--reverse"]);
    assert_success(&reversed);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&reversed.stdout).expect("json rows");
    let note_of = |p: i64| rows.iter().find(|r| r["target_partition"] == p).map(|r| r["note"].clone());
    let copies_end = on_dr[0][PER_PARTITION - 1].offset + 1;
    assert_eq!(
        note_of(0).and_then(|n| n.as_str().map(String::from)),
        Some(format!("past the copies' end {copies_end} on the target: the group read records written there, which the source does not have (kmirror failback copies them home and moves the group past them)")),
        "{rows:#?}"
    );
    assert_eq!(note_of(1), Some(serde_json::Value::Null), "inside the copies: {rows:#?}");
    // A group that read every copy and no DR write stands past the last commit marker, not past
    // any record the source lacks: no note.
    let edge = format!("edge-{}", setup.name);
    commit_group(&setup.target, &edge, &t, &BTreeMap::from([(0, on_dr[0][PER_PARTITION].offset)]));
    assert!(on_dr[0][PER_PARTITION].offset > copies_end, "a commit marker lies between");
    let reversed = setup.translate_offsets(reverse_state.path(), &["--group", &edge, "--reverse"]);
    assert_success(&reversed);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&reversed.stdout).expect("json rows");
    assert!(rows.iter().all(|r| r["note"].is_null()), "{rows:#?}");

    // Dry run: where the opposite mirror would start (the end of the forward copy), nothing set.
    let dry = failback(&setup, &["--format", "json"]);
    assert_success(&dry);
    let plan: serde_json::Value = serde_json::from_slice(&dry.stdout).expect("json");
    for start in plan["starts"].as_array().expect("starts").iter().filter(|s| s["dr_topic"] == t.as_str()) {
        let p = start["dr_partition"].as_i64().expect("partition") as usize;
        assert_eq!(start["state"], "dry run", "{plan:#}");
        assert_eq!(start["start_offset"].as_i64(), Some(on_dr[p][PER_PARTITION - 1].offset + 1), "{plan:#}");
    }
    let back = format!("{}-back", setup.name);
    assert_eq!(plan["back_name"], back.as_str());
    let empty_start =
        plan["starts"].as_array().expect("starts").iter().find(|s| s["dr_topic"] == empty.as_str());
    assert_eq!(empty_start.map(|s| s["start_offset"].clone()), Some(serde_json::json!(0)), "{plan:#}");

    // The opposite mirror, DR -> source.
    let state = tempfile::tempdir().expect("tempdir");
    let reverse = way_home(&setup, &back, &both, state.path());
    // Run before failback --execute set its starts, it would copy back every mirrored record.
    let too_soon = run(&reverse, Duration::from_secs(120));
    assert_eq!(too_soon.status.code(), Some(2), "{}", stderr(&too_soon));
    assert!(
        stderr(&too_soon).contains(&format!("run `kmirror failback --name {}", setup.name)),
        "{}",
        stderr(&too_soon)
    );
    assert_eq!(
        setup.source.read_committed_audited(&t, 0).expect("read").len(),
        PER_PARTITION,
        "nothing copied"
    );
    let back_map = format!("kmirror.offset-map.{back}");
    assert_eq!(setup.source.partition_count(&back_map).expect("metadata"), None, "nothing made either");

    let prepared = failback(&setup, &["--execute"]);
    assert_success(&prepared);
    let said = String::from_utf8_lossy(&prepared.stdout);
    assert!(said.contains(&format!("--name {back}")), "the command to run: {said}");
    assert!(said.contains(&regex::escape(&empty)), "the empty topic goes home too: {said}");
    // A failback stopped before its end: the shadow group of one partition's start not committed
    // yet, nor the mark failback commits last. The way home refuses (it would copy every record
    // of that partition), and failback run again commits what is missing.
    let holder = (0..4)
        .map(|shard| format!("kmirror.{back}.shard-{shard}"))
        .find(|g| group_offsets(&setup.source, g, &t, PARTITIONS).get(&1).is_some_and(Option::is_some))
        .expect("a shadow group holds partition 1's start");
    let mark = format!("kmirror.{back}.failback-starts");
    setup.source.delete_groups(&[holder.as_str(), mark.as_str()]).expect("delete");
    let half_way = run(&reverse, Duration::from_secs(120));
    assert_eq!(half_way.status.code(), Some(2), "{}", stderr(&half_way));
    assert!(
        stderr(&half_way).contains(&format!("run `kmirror failback --name {}", setup.name)),
        "{}",
        stderr(&half_way)
    );
    assert_eq!(
        setup.source.read_committed_audited(&t, 1).expect("read").len(),
        PER_PARTITION,
        "nothing copied"
    );
    let mended = failback(&setup, &["--execute", "--format", "json"]);
    assert_success(&mended);
    let plan: serde_json::Value = serde_json::from_slice(&mended.stdout).expect("json");
    let committed: Vec<(String, i64)> = plan["starts"]
        .as_array()
        .expect("starts")
        .iter()
        .filter(|s| s["state"] == "committed")
        .map(|s| {
            (s["dr_topic"].as_str().unwrap_or_default().to_string(), s["dr_partition"].as_i64().unwrap_or(-1))
        })
        .collect();
    assert!(committed.contains(&(t.clone(), 1)), "the missing start committed again: {plan:#}");
    let none = failback(&setup, &["--groups", "no-such-group-.*", "--execute"]);
    assert!(!none.status.success() && stderr(&none).contains("matches --groups"), "{}", stderr(&none));
    // Groups cannot move before the DR writes they are past are copied back: refused by name.
    let early = failback(&setup, &["--groups", &regex::escape(&group), "--execute"]);
    assert!(!early.status.success() && stderr(&early).contains("not copied back yet"), "{}", stderr(&early));

    assert_success(&run(&reverse, Duration::from_secs(120)));
    let dlq_home = setup.source.read_committed_audited(&empty, 0).expect("read source");
    assert_eq!(keys(&dlq_home), keys(&setup.target.read_committed_audited(&empty, 0).expect("read DR")));
    assert_eq!(dlq_home.len(), 5, "the DR writes of the topic empty at the failover");
    let home: Vec<Vec<kmirror_testcontainers::StoredRecord>> =
        (0..PARTITIONS).map(|p| setup.source.read_committed_audited(&t, p).expect("read source")).collect();
    for (p, records) in home.iter().enumerate() {
        let mut expected: Vec<Vec<u8>> =
            (0..PER_PARTITION).map(|i| format!("p{p}-{i}").into_bytes()).collect();
        expected.extend((0..DR_WRITES).map(|i| format!("dr{p}-{i}").into_bytes()));
        assert_eq!(keys(records), expected, "partition {p}: the DR writes once each, nothing mirrored twice");
    }
    let again = failback(&setup, &["--execute", "--format", "json"]);
    assert_success(&again);
    let plan: serde_json::Value = serde_json::from_slice(&again.stdout).expect("json");
    assert!(
        plan["starts"].as_array().expect("starts").iter().all(|s| s["state"] == "already set"),
        "{plan:#}"
    );

    // More DR writes the opposite mirror has not copied yet, and the group past some of them in
    // partition 0: refused by name, nothing moved (the source copy of the last DR write copied
    // back is no answer: the group would read again the ones between).
    const LATER: usize = 5;
    for p in 0..PARTITIONS {
        setup.target.produce(&t, p, &keyed(&format!("later{p}"), 0..LATER)).expect("produce on DR");
    }
    let later = setup.target.read_committed_audited(&t, 0).expect("read DR");
    assert_eq!(later.len(), PER_PARTITION + DR_WRITES + LATER);
    commit_group(
        &setup.target,
        &group,
        &t,
        &BTreeMap::from([(0, later[PER_PARTITION + DR_WRITES + 3].offset)]),
    );
    let ahead = failback(&setup, &["--groups", &regex::escape(&group), "--execute"]);
    assert!(
        !ahead.status.success() && stderr(&ahead).contains("not copied back yet"),
        "a DR position past what the opposite mirror copied: {}",
        stderr(&ahead)
    );
    assert_eq!(
        group_offsets(&setup.source, &group, &t, PARTITIONS),
        BTreeMap::from([(0, Some(40)), (1, Some(60))]),
        "nothing moved on the source"
    );
    commit_group(&setup.target, &group, &t, &dr_positions);

    // Its consumers still at work on DR, where the positions are read: refused, nothing moved.
    let still_on_dr = classic_member(&setup.target, &group, &t);
    let refused = failback(&setup, &["--groups", &regex::escape(&group), "--execute"]);
    assert!(
        !refused.status.success() && stderr(&refused).contains("active member(s) on the target"),
        "{}",
        stderr(&refused)
    );
    drop(still_on_dr);
    assert_eq!(
        group_offsets(&setup.source, &group, &t, PARTITIONS),
        BTreeMap::from([(0, Some(40)), (1, Some(60))]),
        "nothing moved on the source"
    );

    // The group goes home, at the first record it has not read, on either side of the failover.
    assert_success(&failback(&setup, &["--groups", &regex::escape(&group), "--execute"]));
    let positions = group_offsets(&setup.source, &group, &t, PARTITIONS);
    let unread = [PER_PARTITION + 10, 70];
    for p in 0..PARTITIONS as usize {
        let position = positions[&(p as i32)].expect("a position on the source");
        let next: Vec<Vec<u8>> = keys(&home[p]).split_off(unread[p]);
        let from_position: Vec<Vec<u8>> = home[p]
            .iter()
            .filter(|r| r.offset >= position)
            .map(|r| r.data.key.clone().unwrap_or_default())
            .collect();
        assert_eq!(
            from_position, next,
            "partition {p}: a consumer resuming at {position} reads exactly what it had not read"
        );
    }

    let dlq_home = setup.source.read_committed_audited(&empty, 0).expect("read source");
    assert_eq!(
        group_offsets(&setup.source, &group, &empty, 1),
        BTreeMap::from([(0, Some(dlq_home[0].offset))]),
        "at the first DR write copied home, which it had not read"
    );

    // Its consumers read on at the source; the same failback run again (a later step of the
    // drill naming more groups) leaves it where it is: never moved back.
    let further = BTreeMap::from([
        (0, positions[&0].expect("position") + 5),
        (1, positions[&1].expect("position") + 3),
    ]);
    commit_group(&setup.source, &group, &t, &further);
    assert_success(&failback(&setup, &["--groups", &regex::escape(&group), "--execute"]));
    assert_eq!(
        group_offsets(&setup.source, &group, &t, PARTITIONS),
        further.iter().map(|(&p, &o)| (p, Some(o))).collect::<BTreeMap<_, _>>(),
        "not moved back"
    );

    // The way home's positions expire (its shadow groups deleted, as expiry does) before the
    // failback is run again: the partitions it copied keep their starts ("already set", where
    // they were committed again, and the way home copied every DR write a second time).
    let back_shadows: Vec<String> = (0..4).map(|shard| format!("kmirror.{back}.shard-{shard}")).collect();
    setup.source.delete_groups(&back_shadows.iter().map(String::as_str).collect::<Vec<_>>()).expect("delete");
    let again = failback(&setup, &["--execute", "--format", "json"]);
    assert_success(&again);
    let plan: serde_json::Value = serde_json::from_slice(&again.stdout).expect("json");
    for start in plan["starts"].as_array().expect("starts") {
        assert_eq!(start["state"], "already set", "{plan:#}");
    }
    assert_success(&run(&reverse, Duration::from_secs(120)));
    for p in 0..PARTITIONS {
        let now = setup.source.read_committed_audited(&t, p).expect("read source");
        let mut expected = keys(&home[p as usize]);
        expected.extend((0..LATER).map(|i| format!("later{p}-{i}").into_bytes()));
        assert_eq!(keys(&now), expected, "partition {p}: every DR write home once, nothing copied twice");
    }
    assert_eq!(setup.source.read_committed_audited(&empty, 0).expect("read source").len(), 5);
}

/// A one-partition topic of `PER_PARTITION` records ("a-0"...), mirrored with a checkpointed
/// group, then failed over; its name.
fn failed_over_topic(setup: &Setup, name: &str) -> String {
    let t = topic(name);
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("a", 0..PER_PARTITION)).expect("produce");
    let group = format!("{name}-{}", setup.name);
    commit_group(&setup.source, &group, &t, &BTreeMap::from([(0, 10)]));
    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &["--groups", &regex::escape(&group)]));
    assert_success(&setup.failover(&["--execute"]));
    t
}

/// A DR topic deleted and made again between the failback and the way home's first run: its
/// starts carry the DR topic's ID, and the way home refuses (exit 4) where it went on from the
/// start's offset in the new topic, its first records never brought home.
#[test]
fn a_dr_topic_made_again_after_the_failback_is_refused_by_the_way_home() {
    let setup = Setup::new();
    let t = failed_over_topic(&setup, "failback-recreated");
    setup.target.produce(&t, 0, &keyed("dr", 0..10)).expect("produce on DR");
    assert_success(&failback(&setup, &["--execute"]));

    setup.target.delete_topic(&t).expect("delete on DR");
    setup.target.create_topic(&t, 1, &[]).expect("made again on DR");
    setup.target.produce(&t, 0, &keyed("new", 0..PER_PARTITION * 2)).expect("produce on DR");
    let state = tempfile::tempdir().expect("tempdir");
    let back = format!("{}-back", setup.name);
    let refused = run(&way_home(&setup, &back, &regex::escape(&t), state.path()), Duration::from_secs(120));
    assert_eq!(refused.status.code(), Some(4), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("was deleted and recreated"), "{}", stderr(&refused));
    assert_eq!(
        setup.source.read_committed_audited(&t, 0).expect("read").len(),
        PER_PARTITION,
        "nothing copied"
    );
}

/// A DR topic deleted and made again in the DR period (before the failback) holds DR writes
/// only: the failover recorded the DR topics' IDs, and failback starts the way home at the new
/// topic's start, where it started at the old copies' end and skipped as many of its records.
#[test]
fn a_dr_topic_made_again_before_the_failback_goes_home_whole() {
    let setup = Setup::new();
    let t = failed_over_topic(&setup, "failback-remade");

    setup.target.delete_topic(&t).expect("delete on DR");
    setup.target.create_topic(&t, 1, &[]).expect("made again on DR");
    const NEW: usize = PER_PARTITION + 50;
    setup.target.produce(&t, 0, &keyed("new", 0..NEW)).expect("produce on DR");
    // A topic made on DR alone: the way home leaves it there, and failback says so.
    let dr_only = format!("{t}-dr-only");
    setup.target.create_topic(&dr_only, 1, &[]).expect("topic on DR");
    setup.target.produce(&dr_only, 0, &keyed("dr", 0..5)).expect("produce on DR");
    let prepared = failback(&setup, &["--execute", "--format", "json"]);
    assert_success(&prepared);
    let plan: serde_json::Value = serde_json::from_slice(&prepared.stdout).expect("json");
    let left: Vec<&str> =
        plan["left_on_dr"].as_array().expect("left_on_dr").iter().filter_map(|t| t.as_str()).collect();
    assert!(left.contains(&dr_only.as_str()) && !left.contains(&t.as_str()), "{left:?}");
    let start =
        plan["starts"].as_array().expect("starts").iter().find(|s| s["dr_topic"] == t.as_str()).cloned();
    assert_eq!(start.map(|s| s["start_offset"].clone()), Some(serde_json::json!(0)), "{plan:#}");

    let state = tempfile::tempdir().expect("tempdir");
    let back = format!("{}-back", setup.name);
    assert_success(&run(
        &way_home(&setup, &back, &regex::escape(&t), state.path()),
        Duration::from_secs(120),
    ));
    let mut expected: Vec<Vec<u8>> = (0..PER_PARTITION).map(|i| format!("a-{i}").into_bytes()).collect();
    expected.extend((0..NEW).map(|i| format!("new-{i}").into_bytes()));
    let home = setup.source.read_committed_audited(&t, 0).expect("read source");
    assert_eq!(keys(&home), expected);

    // Groups on DR that read none and 30 of the new topic's records go home at the copies of the
    // first and the 31st, through the way home's map: the forward map's copies are of the topic
    // deleted (the first group went back to the first record it had read before the failover).
    let group = format!("failback-remade-{}", setup.name);
    let further = format!("{group}-further");
    commit_group(&setup.target, &group, &t, &BTreeMap::from([(0, 0)]));
    commit_group(&setup.target, &further, &t, &BTreeMap::from([(0, 30)]));
    let both = format!("{}|{}", regex::escape(&group), regex::escape(&further));
    assert_success(&failback(&setup, &["--groups", &both, "--execute"]));
    let copy_of =
        |key: &str| home.iter().find(|r| r.data.key.as_deref() == Some(key.as_bytes())).map(|r| r.offset);
    assert_eq!(group_offsets(&setup.source, &group, &t, 1), BTreeMap::from([(0, copy_of("new-0"))]));
    assert_eq!(group_offsets(&setup.source, &further, &t, 1), BTreeMap::from([(0, copy_of("new-30"))]));
}

/// A group on DR that read every copy of a partition with no DR writes, its position past the
/// last commit's marker (where a Java consumer's moves): it goes home at the end of the source's
/// records there, where it was refused for good ("not copied back yet": the opposite mirror has
/// nothing to copy in that partition).
#[test]
fn a_failback_moves_a_group_past_only_the_last_commit_marker_to_the_copys_end() {
    let setup = Setup::new();
    let t = topic("failback-marker");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("a", 0..PER_PARTITION)).expect("produce");
    // Mirrored and empty throughout: no copy, no DR write.
    let quiet = format!("{t}-quiet");
    setup.source.create_topic(&quiet, 1, &[]).expect("topic");
    let group = format!("marker-{}", setup.name);
    commit_group(&setup.source, &group, &t, &BTreeMap::from([(0, 10)]));
    let both = format!("{}|{}", regex::escape(&t), regex::escape(&quiet));
    assert_success(&setup.mirror_until_caught_up(&both, &["--groups", &regex::escape(&group)]));
    assert_success(&setup.failover(&["--execute"]));
    let on_dr = setup.target.read_committed_audited(&t, 0).expect("read DR");
    let copies_end = on_dr.last().expect("copies").offset + 1;
    commit_group(&setup.target, &group, &t, &BTreeMap::from([(0, copies_end + 1)]));
    commit_group(&setup.target, &group, &quiet, &BTreeMap::from([(0, 0)]));

    assert_success(&failback(&setup, &["--execute"]));
    let state = tempfile::tempdir().expect("tempdir");
    let back = format!("{}-back", setup.name);
    let reverse = way_home(&setup, &back, &regex::escape(&t), state.path());
    assert_success(&run(&reverse, Duration::from_secs(120)));
    let moved = failback(&setup, &["--groups", &regex::escape(&group), "--execute"]);
    assert_success(&moved);
    let home = setup.source.read_committed_audited(&t, 0).expect("read source");
    assert_eq!(home.len(), PER_PARTITION, "nothing was written on DR, nothing came back");
    let expected = home.last().expect("records").offset + 1;
    assert_eq!(group_offsets(&setup.source, &group, &t, 1), BTreeMap::from([(0, Some(expected))]));
    assert_eq!(group_offsets(&setup.source, &group, &quiet, 1), BTreeMap::from([(0, Some(0))]));
}

/// A DR period longer than the target keeps the mirror's positions (`offsets.retention.minutes`,
/// 7 days by default; here its shadow groups are deleted, as their expiry does): the topics that
/// were empty at the failover, which only those positions named, still go home, from what the
/// failover recorded (a second failover after the expiry keeps it), and a group at 0 in one with
/// no DR write moves to where the mirror stood. The way home leaves the originals' configs alone.
#[test]
fn a_failback_after_the_mirrors_positions_expired_still_brings_home_the_topics_empty_at_the_failover() {
    let setup = Setup::new();
    let t = topic("failback-expired");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("a", 0..PER_PARTITION)).expect("produce");
    // Empty at the failover: one takes DR writes, one none.
    let dlq = format!("{t}-dlq");
    let quiet = format!("{t}-quiet");
    for empty in [&dlq, &quiet] {
        setup.source.create_topic(empty, 1, &[]).expect("topic");
    }
    // Its records deleted before the mirror ran: the mirror stands at 3 there, with no copies.
    setup.source.produce(&quiet, 0, &keyed("gone", 0..3)).expect("produce");
    assert_eq!(setup.source.delete_records(&quiet, 0, 3).expect("delete records"), 3);
    let group = format!("expired-{}", setup.name);
    commit_group(&setup.source, &group, &t, &BTreeMap::from([(0, 10)]));
    let all = [&t, &dlq, &quiet].map(|t| regex::escape(t)).join("|");
    assert_success(&setup.mirror_until_caught_up(&all, &["--groups", &regex::escape(&group)]));
    assert_success(&setup.failover(&["--execute"]));

    let shadows: Vec<String> = (0..4).map(|shard| format!("kmirror.{}.shard-{shard}", setup.name)).collect();
    setup.target.delete_groups(&shadows.iter().map(String::as_str).collect::<Vec<_>>()).expect("delete");
    // The drill's failover run again, after the expiry: it finds no position, and keeps what the
    // failover in force recorded.
    assert_success(&setup.failover(&["--execute"]));
    setup.target.produce(&dlq, 0, &keyed("dlq", 0..5)).expect("produce on DR");
    // The copy's retention set apart on DR.
    setup.target.set_topic_configs(&t, &[("retention.ms", "60000")]).expect("alter on DR");
    commit_group(&setup.target, &group, &dlq, &BTreeMap::from([(0, 0)]));
    commit_group(&setup.target, &group, &quiet, &BTreeMap::from([(0, 0)]));

    let prepared = failback(&setup, &["--execute", "--format", "json"]);
    assert_success(&prepared);
    let plan: serde_json::Value = serde_json::from_slice(&prepared.stdout).expect("json");
    let starts: Vec<(String, i64)> = plan["starts"]
        .as_array()
        .expect("starts")
        .iter()
        .map(|s| {
            (s["dr_topic"].as_str().unwrap_or_default().to_string(), s["start_offset"].as_i64().unwrap_or(-1))
        })
        .collect();
    let copies_end =
        setup.target.read_committed_audited(&t, 0).expect("read DR").last().expect("copies").offset + 1;
    assert_eq!(starts, vec![(t.clone(), copies_end), (dlq.clone(), 0), (quiet.clone(), 0)], "{plan:#}");
    assert!(plan["command"].as_str().is_some_and(|c| c.ends_with(" --exclude-configs '.*'")), "{plan:#}");

    let state = tempfile::tempdir().expect("tempdir");
    let back = format!("{}-back", setup.name);
    assert_success(&run(&way_home(&setup, &back, &all, state.path()), Duration::from_secs(120)));
    let dlq_home = setup.source.read_committed_audited(&dlq, 0).expect("read source");
    assert_eq!(keys(&dlq_home), keys(&setup.target.read_committed_audited(&dlq, 0).expect("read DR")));
    assert_eq!(dlq_home.len(), 5, "the DR writes of the topic empty at the failover");
    assert_eq!(setup.source.read_committed_audited(&t, 0).expect("read").len(), PER_PARTITION);
    let original = setup.source.topic_configs(&t).expect("configs");
    assert_ne!(original.get("retention.ms").map(String::as_str), Some("60000"), "the original's own");

    assert_success(&failback(&setup, &["--groups", &regex::escape(&group), "--execute"]));
    assert_eq!(
        group_offsets(&setup.source, &group, &dlq, 1),
        BTreeMap::from([(0, Some(dlq_home[0].offset))])
    );
    assert_eq!(
        group_offsets(&setup.source, &group, &quiet, 1),
        BTreeMap::from([(0, Some(3))]),
        "where the mirror stood"
    );
}

/// The way home's shadow positions expired (stopped longer than `offsets.retention.minutes`)
/// after a run that copied nothing from a DR topic without DR writes: its start, set by
/// failback, was in no map record, and the next run started that topic at its earliest and
/// copied the forward mirror's copies back onto the source (a duplicate of every record). The
/// way home's first run marks failback's starts in its map.
#[test]
fn the_way_homes_starts_outlive_its_shadow_groups() {
    let setup = Setup::new();
    let quiet = topic("home-quiet");
    let busy = format!("{quiet}-busy");
    for t in [&quiet, &busy] {
        setup.source.create_topic(t, 1, &[]).expect("topic");
        setup.source.produce(t, 0, &keyed("a", 0..PER_PARTITION)).expect("produce");
    }
    let both = format!("{}|{}", regex::escape(&quiet), regex::escape(&busy));
    let group = format!("home-{}", setup.name);
    commit_group(&setup.source, &group, &quiet, &BTreeMap::from([(0, 10)]));
    assert_success(&setup.mirror_until_caught_up(&both, &["--groups", &regex::escape(&group)]));
    assert_success(&setup.failover(&["--execute"]));
    setup.target.produce(&busy, 0, &keyed("dr", 0..20)).expect("produce on DR");
    assert_success(&failback(&setup, &["--execute"]));

    let state = tempfile::tempdir().expect("tempdir");
    let back = format!("{}-back", setup.name);
    let home = || run(&way_home(&setup, &back, &both, state.path()), Duration::from_secs(120));
    assert_success(&home());
    let count = |t: &str| setup.source.read_committed_audited(t, 0).expect("read").len();
    assert_eq!((count(&quiet), count(&busy)), (PER_PARTITION, PER_PARTITION + 20));

    let shadows: Vec<String> = (0..4).map(|shard| format!("kmirror.{back}.shard-{shard}")).collect();
    setup.source.delete_groups(&shadows.iter().map(String::as_str).collect::<Vec<_>>()).expect("delete");
    setup.target.produce(&busy, 0, &keyed("dr", 20..25)).expect("produce on DR");
    assert_success(&home());
    // Before: the quiet topic held 200 records, its 100 copied back from DR.
    assert_eq!((count(&quiet), count(&busy)), (PER_PARTITION, PER_PARTITION + 25));
    let mut expected: Vec<Vec<u8>> = (0..PER_PARTITION).map(|i| format!("a-{i}").into_bytes()).collect();
    expected.extend((0..25).map(|i| format!("dr-{i}").into_bytes()));
    assert_eq!(keys(&setup.source.read_committed_audited(&busy, 0).expect("read")), expected);
}

/// A failover's record of the partitions it found without copies counts only while that
/// failover is in force: once the mirror resumed (`--after-failover`), a topic the record named
/// and that is gone since is no longer one of the mirror's (verify read it, and failed).
#[test]
fn a_resumed_mirror_no_longer_goes_by_its_last_failovers_record() {
    let setup = Setup::new();
    let t = topic("stale-record");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("a", 0..10)).expect("produce");
    let dlq = format!("{t}-dlq");
    setup.source.create_topic(&dlq, 1, &[]).expect("topic");
    let group = format!("stale-{}", setup.name);
    commit_group(&setup.source, &group, &t, &BTreeMap::from([(0, 5)]));
    let both = format!("{}|{}", regex::escape(&t), regex::escape(&dlq));
    assert_success(&setup.mirror_until_caught_up(&both, &["--groups", &regex::escape(&group)]));
    assert_success(&setup.failover(&["--execute"]));
    // The drill is over: the mirror resumes, of the first topic alone, and the other goes.
    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &["--after-failover"]));
    for cluster in [&setup.source, &setup.target] {
        cluster.delete_topic(&dlq).expect("delete");
    }
    let state = tempfile::tempdir().expect("tempdir");
    let out = setup.verify(state.path(), &[]);
    assert_success(&out);
    let report: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json report");
    let topics: Vec<&str> = report.iter().filter_map(|c| c["topic"].as_str()).collect();
    assert_eq!(topics, [t.as_str()], "{report:#?}");
}

/// The failover's fencing opens no transaction and sends no record: timeouts given for the
/// mirror's own (a config shared with the mirror), a transaction timeout above what the brokers
/// allow or a delivery timeout above librdkafka's default transaction timeout, do not refuse it,
/// and the groups move (before: the fencing failed, exit 1).
#[test]
fn a_transaction_timeout_above_the_brokers_maximum_does_not_stop_the_fencing() {
    let setup = Setup::new();
    let t = topic("fotimeout");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    for p in 0..PARTITIONS {
        setup.source.produce(&t, p, &keyed(&format!("p{p}"), 0..PER_PARTITION)).expect("produce");
    }
    let group = format!("app-{}", setup.name);
    commit_group(&setup.source, &group, &t, &BTreeMap::from([(0, 30), (1, 70)]));
    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &["--groups", &regex::escape(&group)]));
    // A delivery timeout above librdkafka's default transaction timeout, which the mirror's
    // own (its bound plus 30 s) may take: refused to a producer left at that default.
    assert_success(&setup.failover(&["--execute", "--set", "target.delivery.timeout.ms=90000"]));
    // Run again (a failover may be): a transaction timeout above the brokers' maximum, said
    // once for all the ids fenced side by side.
    let refused = setup.failover(&[
        "--execute",
        "--set",
        "target.transaction.timeout.ms=2000000",
        "--set",
        "target.delivery.timeout.ms=2000000",
    ]);
    assert_success(&refused);
    let said = stderr(&refused).matches("fencing without the transaction timeout given").count();
    assert_eq!(said, 1, "{}", stderr(&refused));
    let resumed = resume_on_target(&setup, &group, &t);
    for (partition, from) in [(0, 30), (1, 70)] {
        let (position, keys) = &resumed[&partition];
        let expected: Vec<Vec<u8>> =
            (from..PER_PARTITION).map(|i| format!("p{partition}-{i}").into_bytes()).collect();
        assert_eq!(*position, from as i64, "partition {partition}");
        assert_eq!(keys, &expected, "partition {partition}: the records the group had not read");
    }
    // Fenced: a start after the failover is refused.
    let again = setup.mirror_until_caught_up(&regex::escape(&t), &[]);
    assert_eq!(again.status.code(), Some(3), "{}", stderr(&again));
}

/// A failover with no group to move (no checkpointed group matches --groups, nor any group on
/// the source) is refused before it fences: the mirror is not stopped for nothing, and starts
/// again without --after-failover. Both with the source and without it.
#[test]
fn a_failover_with_no_group_to_move_is_refused_before_it_fences() {
    let setup = Setup::new();
    let t = topic("nogroup");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("a", 0..10)).expect("produce");
    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &[]));
    let with_source = ["--execute", "--source", setup.source.bootstrap(), "--groups", "no-such-group-.*"];
    for args in [&with_source[..], &["--execute", "--groups", "no-such-group-.*"][..]] {
        let out = setup.failover(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("no checkpointed group of mirror {} matches", setup.name)),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // A --topics pattern that matches no mirrored topic (a typo) moves nothing: refused before
    // the fencing too.
    let out = setup.failover(&["--execute", "--topics", "no-such-topic"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "--topics 'no-such-topic' matches no topic mirror {} copies ({t})",
            setup.name
        )),
        "{}",
        stderr(&out)
    );
    setup.source.produce(&t, 0, &keyed("b", 0..5)).expect("produce");
    // A failover in force would refuse this start (exit 3).
    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &[]));
    setup.assert_exactly_once(&t, 1, Some(15));
}

/// With `--source`, a group still consuming there is refused before anything is fenced (it would
/// read on past the positions taken, and read that again on DR); without `--groups`, only the
/// groups the mirror checkpointed move (every group on the source moved, ones the mirror was
/// never asked about among them).
#[test]
fn a_failover_with_the_source_moves_only_checkpointed_groups_and_none_still_consuming_there() {
    let setup = Setup::new();
    let t = topic("fo-source");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("a", 0..20)).expect("produce");
    let (mine, other) = (format!("{t}-mine"), format!("{t}-other"));
    commit_group(&setup.source, &mine, &t, &BTreeMap::from([(0, 5)]));
    commit_group(&setup.source, &other, &t, &BTreeMap::from([(0, 7)]));
    assert_success(&setup.mirror_until_caught_up(&regex::escape(&t), &["--groups", &regex::escape(&mine)]));

    let consumer: BaseConsumer = setup
        .source
        .client_config()
        .set("group.id", &mine)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[&t]).expect("subscribe");
    let joined = Instant::now();
    while consumer.assignment().map(|a| a.count()).unwrap_or(0) == 0 {
        assert!(joined.elapsed() < Duration::from_secs(30), "the member never joined");
        let _ = consumer.poll(Duration::from_millis(100));
    }
    let out = setup.failover(&["--execute", "--source", setup.source.bootstrap()]);
    let said = stderr(&out);
    let line = said.lines().find(|l| l.starts_with("kmirror: error:")).unwrap_or_default();
    assert!(!out.status.success() && line.contains(&mine) && line.contains("on the source"), "{said}");
    let status = status_json_once_there(&setup).expect("status");
    assert_eq!(status["failed_over"], serde_json::json!([]), "nothing fenced: {status:#}");
    drop(consumer);

    // Read on since its last checkpoint: the failover's own, from the source, moves it.
    commit_group(&setup.source, &mine, &t, &BTreeMap::from([(0, 9)]));
    assert_success(&setup.failover(&["--execute", "--source", setup.source.bootstrap()]));
    let copy_of_9 = setup
        .target
        .read_committed_audited(&t, 0)
        .expect("read")
        .into_iter()
        .find(|r| r.data.key.as_deref() == Some(&b"a-9"[..]))
        .map(|r| r.offset);
    assert_eq!(
        group_offsets(&setup.target, &mine, &t, 1),
        BTreeMap::from([(0, copy_of_9)]),
        "the checkpointed group moved"
    );
    assert_eq!(
        group_offsets(&setup.target, &other, &t, 1),
        BTreeMap::from([(0, None)]),
        "never checkpointed"
    );

    // Once the way home has run (its map on the source), resuming the mirror would copy the DR
    // writes it brought home back to DR: refused, the failover left in force.
    let back_map = format!("kmirror.offset-map.{}-back", setup.name);
    setup.source.create_topic(&back_map, 1, &[]).expect("the way home's map");
    let out = setup.mirror_until_caught_up(&regex::escape(&t), &["--after-failover"]);
    let said = stderr(&out);
    let line = said.lines().find(|l| l.starts_with("kmirror: error:")).unwrap_or_default();
    assert!(
        out.status.code() == Some(2) && line.contains("--after-failover") && line.contains(&back_map),
        "{said}"
    );
    let again = setup.mirror_until_caught_up(&regex::escape(&t), &[]);
    assert_eq!(again.status.code(), Some(3), "the failover is still in force: {}", stderr(&again));
}
