//! Scale-out on Kafka's own group protocol (`--coordinate`): processes share a mirror's shards
//! through a consumer group on the target. Processes die, join and leave mid-stream, and one is
//! frozen past the session timeout; every record still lands exactly once, in order.

use std::process::Child;
use std::time::{Duration, Instant};

use crate::common::*;
use kmirror_testcontainers::KafkaCluster;

/// Writes `rounds` batches of `per_round` records to every partition, one batch every `pause`.
fn write_in_background(
    cluster: &KafkaCluster,
    topic: &str,
    partitions: i32,
    rounds: usize,
    per_round: usize,
    pause: Duration,
) -> std::thread::JoinHandle<()> {
    let mut config = cluster.client_config();
    let topic = topic.to_string();
    std::thread::spawn(move || {
        use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
        let producer: ThreadedProducer<DefaultProducerContext> =
            config.set("linger.ms", "5").create().expect("producer");
        for round in 0..rounds {
            for p in 0..partitions {
                for i in 0..per_round {
                    let key = format!("{round}-{p}-{i}");
                    let mut record = BaseRecord::<str, str>::to(&topic).partition(p).key(&key).payload(&key);
                    while let Err((_, back)) = producer.send(record) {
                        record = back;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
            producer.flush(Duration::from_secs(30)).expect("flush");
            std::thread::sleep(pause);
        }
    })
}

/// A coordinated process whose log goes to a file (a pipe nobody reads would block it), named
/// after its state dir, so a failing test can show every log.
fn coordinated(setup: &Setup, topic: &str, shards: &str, label: &str) -> Child {
    coordinated_with(setup, topic, shards, label, &[])
}

fn coordinated_with(setup: &Setup, topic: &str, shards: &str, label: &str, extra: &[&str]) -> Child {
    let state = setup.state_dir.path().join(label);
    let mut flags = vec!["--coordinate", "--shards", shards, "--session-timeout", "6"];
    flags.extend_from_slice(extra);
    let args = setup.args_with_state(topic, &flags, state.clone());
    let log = std::fs::File::create(state.with_extension("log")).expect("log file");
    kmirror_command()
        .args(&args)
        .env("RUST_LOG", std::env::var("KMIRROR_TEST_RUST_LOG").unwrap_or_else(|_| "info".into()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("kmirror starts")
}

/// Every process log of the test, for a failure message.
fn logs(setup: &Setup) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(setup.state_dir.path()).into_iter().flatten().flatten() {
        if entry.path().extension().is_some_and(|e| e == "log") {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            out += &format!(
                "--- {}\n{}\n",
                entry.path().display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
    out
}

fn wait_until_copied(setup: &Setup, topic: &str, partitions: i32, limit: Duration) {
    let started = Instant::now();
    loop {
        let audits = setup.audit(topic, partitions);
        if audits.iter().all(|a| a.missing == 0) {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "not all copied after {limit:?}: {:?}\n{}",
            audits.iter().filter(|a| a.missing > 0).collect::<Vec<_>>(),
            logs(setup)
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn stop(setup: &Setup, mut child: Child) -> std::process::ExitStatus {
    terminate(&child);
    wait_exit(&mut child, Duration::from_secs(60))
        .unwrap_or_else(|| panic!("did not stop on SIGTERM\n{}", logs(setup)))
}

/// Three processes share 8 shards of a 24-partition topic under load; one is SIGKILLed, one
/// added and one SIGTERMed, `gap` apart. Every record lands exactly once, and the shards end
/// owned by exactly the two processes left.
fn membership_changes_mid_stream(gap: Duration) {
    let setup = Setup::new();
    let t = topic("scale");
    let partitions = 24;
    setup.source.create_topic(&t, partitions, &[]).expect("topic");
    // About 50 s of writing.
    let writer = write_in_background(&setup.source, &t, partitions, 40, 40, Duration::from_millis(1_200));
    let mut first = coordinated(&setup, &t, "8", "first");
    let second = coordinated(&setup, &t, "8", "second");
    let third = coordinated(&setup, &t, "8", "third");
    std::thread::sleep(Duration::from_secs(8));
    first.kill().expect("SIGKILL");
    first.wait().expect("reap");
    std::thread::sleep(gap);
    let fourth = coordinated(&setup, &t, "8", "fourth");
    std::thread::sleep(gap);
    let status = stop(&setup, second);
    assert!(status.success(), "a graceful leave exits 0: {status}\n{}", logs(&setup));
    writer.join().expect("writer");
    wait_until_copied(&setup, &t, partitions, Duration::from_secs(180));
    // Every shard ends owned by one of the two processes left.
    let status = status_json(&setup, false);
    let owners = status["owners"].as_array().expect("owners");
    let shards: Vec<i64> = owners.iter().filter_map(|o| o["shard"].as_i64()).collect();
    assert_eq!(shards, (0..8).collect::<Vec<i64>>(), "{status:#}");
    let pids: std::collections::BTreeSet<u64> = owners.iter().filter_map(|o| o["pid"].as_u64()).collect();
    let left: std::collections::BTreeSet<u64> = [third.id() as u64, fourth.id() as u64].into();
    assert_eq!(pids, left, "shared by the two processes left: {status:#}");
    for child in [third, fourth] {
        let status = stop(&setup, child);
        assert!(status.success(), "{status}\n{}", logs(&setup));
    }
    // Clean stops give every shard up: no stopped process is named as an owner.
    let status = status_json(&setup, false);
    assert_eq!(status["owners"], serde_json::json!([]), "{status:#}\n{}", logs(&setup));
    setup.assert_exactly_once(&t, partitions, Some(40 * 40));
}

#[test]
fn processes_dying_joining_and_leaving_mid_stream_lose_and_duplicate_nothing() {
    // One group rebalance apart.
    membership_changes_mid_stream(Duration::from_secs(14));
}

/// As in a rolling restart: each change comes while the rebalance after the last one is still
/// under way. (On the Tansu development broker the group sometimes never finishes such
/// rebalances; Apache Kafka's group coordinator does.)
#[test]
fn overlapping_membership_changes_lose_and_duplicate_nothing() {
    membership_changes_mid_stream(Duration::from_secs(4));
}

#[test]
fn a_process_frozen_past_the_session_timeout_is_fenced_and_nothing_is_duplicated() {
    let setup = Setup::new();
    let t = topic("zombie");
    let partitions = 8;
    setup.source.create_topic(&t, partitions, &[]).expect("topic");
    // A steady flow, so the frozen process has a transaction open when it is frozen.
    let writer = write_in_background(&setup.source, &t, partitions, 400, 5, Duration::from_millis(50));
    let frozen = coordinated(&setup, &t, "4", "frozen");
    let other = coordinated(&setup, &t, "4", "other");
    std::thread::sleep(Duration::from_secs(10));
    let pid = nix::unistd::Pid::from_raw(frozen.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("SIGSTOP");
    // Longer than the 6 s session timeout: the group hands its shards to the other process.
    std::thread::sleep(Duration::from_secs(14));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).expect("SIGCONT");
    writer.join().expect("writer");
    wait_until_copied(&setup, &t, partitions, Duration::from_secs(120));
    stop(&setup, frozen);
    let status = stop(&setup, other);
    assert!(status.success(), "{status}\n{}", logs(&setup));
    let frozen_log = std::fs::read_to_string(setup.state_dir.path().join("frozen.log")).unwrap_or_default();
    // Fenced on its next write, or told by the group first that its shards were taken (it
    // then writes nothing more): either way it learns it lost them.
    let fenced = frozen_log.contains("fenced") || frozen_log.contains("lost=true");
    let all = logs(&setup);
    assert!(fenced, "the thawed process learns it lost its shards:\n{all}");
    setup.assert_exactly_once(&t, partitions, Some(400 * 5));
}

/// The source freezes for longer than the group's rebalance timeout (20 s at a 6 s session
/// timeout) while a checkpoint cycle waits on it: the process keeps serving its group, so it
/// keeps its shards (each taken once) and picks up where it was when the source thaws.
#[test]
fn a_checkpoint_cycle_stuck_on_a_frozen_source_costs_no_shards() {
    let setup = Setup::dedicated();
    if setup.source.pid().is_none() {
        eprintln!("skipped: pausing needs a harness-owned source broker (external clusters are set)");
        return;
    }
    let t = topic("stuck");
    let partitions = 4;
    setup.source.create_topic(&t, partitions, &[]).expect("topic");
    for p in 0..partitions {
        setup.source.produce(&t, p, &keyed(&format!("a{p}"), 0..100)).expect("produce");
    }
    let group = format!("stuck-{}", kmirror_testcontainers::unique_suffix());
    let positions: std::collections::BTreeMap<i32, i64> = (0..partitions).map(|p| (p, 50)).collect();
    commit_group(&setup.source, &group, &t, &positions);
    let process =
        coordinated_with(&setup, &t, "4", "only", &["--groups", &group, "--checkpoint-interval", "1"]);
    wait_until_copied(&setup, &t, partitions, Duration::from_secs(60));
    setup.source.pause().expect("SIGSTOP source");
    std::thread::sleep(Duration::from_secs(28));
    setup.source.resume().expect("SIGCONT source");
    for p in 0..partitions {
        setup.source.produce(&t, p, &keyed(&format!("b{p}"), 0..100)).expect("produce");
    }
    wait_until_copied(&setup, &t, partitions, Duration::from_secs(90));
    let status = stop(&setup, process);
    assert!(status.success(), "{status}\n{}", logs(&setup));
    let log = std::fs::read_to_string(setup.state_dir.path().join("only.log")).unwrap_or_default();
    assert_eq!(log.matches("shard taken").count(), 4, "each shard taken once, never lost:\n{log}");
    setup.assert_exactly_once(&t, partitions, Some(200));
}

/// `failover --execute` fences every shard of a coordinated mirror of two processes. The one
/// whose shard has new records finds out first and stops with exit code 3, naming the failover;
/// the rebalance that follows hands its shard to the other, whose own shard is idle: it must not
/// start that shard (that would fence the failover and copy behind it) but stop too. Nothing
/// lands after the failover.
#[test]
fn coordinated_processes_stop_at_a_failover_and_write_nothing_behind_it() {
    let setup = Setup::new();
    let t = topic("coord-failover");
    let partitions = 2;
    setup.source.create_topic(&t, partitions, &[]).expect("topic");
    for p in 0..partitions {
        setup.source.produce(&t, p, &keyed(&format!("a{p}"), 0..50)).expect("produce");
    }
    let group = format!("app-{}", setup.name);
    commit_group(&setup.source, &group, &t, &[(0, 10), (1, 20)].into());
    let flags = ["--groups", group.as_str(), "--checkpoint-interval", "1"];
    let mut processes =
        [coordinated_with(&setup, &t, "2", "one", &flags), coordinated_with(&setup, &t, "2", "two", &flags)];
    wait_until_copied(&setup, &t, partitions, Duration::from_secs(60));
    // Both processes hold a shard, each partition is on its own shard, and a group is
    // checkpointed.
    let started = Instant::now();
    let status = loop {
        let status = status_json_once_there(&setup).unwrap_or_default();
        let owners: std::collections::BTreeSet<u64> =
            status["owners"].as_array().into_iter().flatten().filter_map(|o| o["pid"].as_u64()).collect();
        let shards: std::collections::BTreeSet<u64> = status["partitions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["shard"].as_u64())
            .collect();
        let checkpointed = status["groups"].as_array().map_or(0, Vec::len);
        if owners.len() == 2 && shards.len() == 2 && checkpointed == 1 {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{status:#}\n{}", logs(&setup));
        std::thread::sleep(Duration::from_millis(300));
    };
    let shard_of_0 = status["partitions"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["partition"].as_i64() == Some(0)))
        .and_then(|p| p["shard"].as_u64())
        .expect("partition 0's shard");
    let first = status["owners"]
        .as_array()
        .and_then(|os| os.iter().find(|o| o["shard"].as_u64() == Some(shard_of_0)))
        .and_then(|o| o["pid"].as_u64())
        .expect("partition 0's owner");

    let failover = setup.failover(&["--execute"]);
    assert_success(&failover);
    // Only partition 0 gets records: the other process's shard stays idle and never writes.
    setup.source.produce(&t, 0, &keyed("b0", 0..5)).expect("produce");
    let (first, second) = match u64::from(processes[0].id()) == first {
        true => processes.split_at_mut(1),
        false => {
            processes.reverse();
            processes.split_at_mut(1)
        }
    };
    for (which, process) in [("first", &mut first[0]), ("second", &mut second[0])] {
        let status = wait_exit(process, Duration::from_secs(60));
        if status.is_none() {
            let _ = process.kill();
        }
        assert_eq!(status.and_then(|s| s.code()), Some(3), "the {which} process stops\n{}", logs(&setup));
    }
    for label in ["one", "two"] {
        let log =
            std::fs::read_to_string(setup.state_dir.path().join(format!("{label}.log"))).unwrap_or_default();
        assert!(log.contains("kmirror failover --execute"), "{label} names the failover:\n{log}");
    }
    for p in 0..partitions {
        let audit = setup.target.audit_partition(&t, p).expect("audit");
        assert_eq!(audit.visible.len(), 50, "nothing landed behind the failover on partition {p}");
    }
}

/// A coordinated process whose shards another process fences outside the group (here a run of
/// the same mirror without `--coordinate`) stops, naming it, once the group has not taken them
/// back within twice the session timeout: it kept its place in the group and ran none of them,
/// for as long as no membership changed, with `/healthz` at 200.
#[test]
fn a_coordinated_process_whose_shards_are_fenced_outside_the_group_stops() {
    let setup = Setup::new();
    let t = topic("outside");
    let partitions = 4;
    setup.source.create_topic(&t, partitions, &[]).expect("topic");
    let writer = write_in_background(&setup.source, &t, partitions, 100, 5, Duration::from_millis(50));
    let mut grouped = coordinated(&setup, &t, "2", "grouped");
    std::thread::sleep(Duration::from_secs(8));
    let local_state = setup.state_dir.path().join("local");
    let args = setup.args_with_state(&t, &["--shards", "2"], local_state);
    let local_log = std::fs::File::create(setup.state_dir.path().join("local.log")).expect("log file");
    let local = kmirror_command()
        .args(&args)
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(local_log)
        .spawn()
        .expect("kmirror starts");
    writer.join().expect("writer");
    // Fenced at its next transaction, then twice the 6 s session timeout: well within 60 s.
    let status = wait_exit(&mut grouped, Duration::from_secs(60))
        .unwrap_or_else(|| panic!("the coordinated process runs on with no shard\n{}", logs(&setup)));
    assert_eq!(status.code(), Some(3), "{status}\n{}", logs(&setup));
    let grouped_log = std::fs::read_to_string(setup.state_dir.path().join("grouped.log")).unwrap_or_default();
    assert!(grouped_log.contains("still this process's in the group"), "{grouped_log}");
    wait_until_copied(&setup, &t, partitions, Duration::from_secs(120));
    let status = stop(&setup, local);
    assert!(status.success(), "{status}\n{}", logs(&setup));
    setup.assert_exactly_once(&t, partitions, Some(100 * 5));
}
