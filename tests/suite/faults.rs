//! Faults real operations bring, each verified with the transaction-aware audit: a target frozen
//! past the transaction timeout, a frozen source, a state directory that cannot be written, one
//! that is full and one that fills up mid-run, a partition leader killed on a 3-broker cluster,
//! both clusters gone under a running mirror.
//! Disk faults need root (chattr, mount); elsewhere they say why they skip.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;

const PARTITIONS: i32 = 2;

fn produce_batch(setup: &Setup, t: &str, prefix: &str, per_partition: usize) {
    for p in 0..PARTITIONS {
        setup.source.produce(t, p, &keyed(&format!("{prefix}{p}"), 0..per_partition)).expect("produce");
    }
}

#[test]
fn a_target_frozen_past_the_transaction_timeout_loses_and_duplicates_nothing() {
    let setup = Setup::dedicated();
    let t = topic("txn-timeout");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    produce_batch(&setup, &t, "a", 2_000);
    // Transactions time out after 3 s on the broker; the target stays frozen for 8 s while
    // records keep arriving, so a transaction is open across the freeze.
    let (mut mirror, log_path) =
        setup.spawn_mirror_logged(&t, &["--set", "target.transaction.timeout.ms=3000"]);
    let log_tail = || last_lines(&log_path);
    std::thread::sleep(Duration::from_secs(4));
    setup.target.pause().expect("pause");
    produce_batch(&setup, &t, "b", 1_000);
    std::thread::sleep(Duration::from_secs(8));
    setup.target.resume().expect("resume");
    produce_batch(&setup, &t, "c", 1_000);
    // The transaction open across the freeze fails: its records time out on the frozen broker
    // (the shard aborts it and reads again from its last commit), or the broker aborts it past
    // its timeout and bumps the producer epoch (the claims are still this process's, so the
    // shard takes itself back). Either way the same process copies the rest: no restart.
    copied_by_the_same_process(&setup, &t, &mut mirror, 4_000, "the freeze", &log_tail);
    setup.assert_exactly_once(&t, PARTITIONS, Some(4_000));
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        log.contains("aborting transaction; will re-read") || log.contains("taking the shard back"),
        "the freeze caught a transaction open:\n{}",
        log_tail()
    );
    terminate(&mirror);
    let status = wait_exit(&mut mirror, Duration::from_secs(30)).expect("stops on SIGTERM");
    assert!(status.success(), "{status}\n{}", log_tail());
    assert_success(&setup.mirror_until_caught_up(&t, &[]));
    setup.assert_exactly_once(&t, PARTITIONS, Some(4_000));
}

#[test]
fn a_source_frozen_mid_run_loses_and_duplicates_nothing() {
    let setup = Setup::dedicated();
    let t = topic("source-frozen");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    produce_batch(&setup, &t, "a", 5_000);
    let mut mirror = setup.spawn_mirror(&t, &[]);
    std::thread::sleep(Duration::from_millis(1_500));
    setup.source.pause().expect("pause");
    std::thread::sleep(Duration::from_secs(8));
    setup.source.resume().expect("resume");
    produce_batch(&setup, &t, "b", 1_000);
    // The same process carries on after the source comes back.
    let started = Instant::now();
    loop {
        let audits = setup.audit(&t, PARTITIONS);
        if audits.iter().all(|a| a.missing == 0) {
            break;
        }
        assert!(mirror.try_wait().expect("wait").is_none(), "the mirror died with the source frozen");
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "not caught up after the source came back: {audits:?}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    terminate(&mirror);
    let status = wait_exit(&mut mirror, Duration::from_secs(30)).expect("stops on SIGTERM");
    assert!(status.success(), "{status}");
    setup.assert_exactly_once(&t, PARTITIONS, Some(6_000));
}

fn have_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn chattr(flag: &str, path: &Path) -> bool {
    Command::new("chattr").arg(flag).arg(path).status().is_ok_and(|s| s.success())
}

#[test]
fn a_state_dir_that_cannot_be_written_is_a_clear_error_and_the_run_resumes_after() {
    let setup = Setup::new();
    let t = topic("readonly");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    produce_batch(&setup, &t, "a", 1_000);
    let state = setup.state_dir.path().join("immutable");
    std::fs::create_dir_all(&state).expect("mkdir");
    // Plain permissions do not stop root, so the directory is made immutable.
    if !have_root() || !chattr("+i", &state) {
        eprintln!("skipped: making a directory unwritable needs root and chattr (e2fsprogs)");
        return;
    }
    let out = run(&setup.args_with_state(&t, &["--until-caught-up"], state.clone()), Duration::from_secs(60));
    let _ = chattr("-i", &state);
    assert!(!out.status.success());
    let line =
        stderr(&out).lines().find(|l| l.starts_with("kmirror: error:")).map(String::from).unwrap_or_default();
    assert!(line.contains("state dir") && line.contains(&state.display().to_string()), "{}", stderr(&out));
    assert_eq!(setup.target.partition_count(&t).expect("metadata"), None, "nothing written");

    assert_success(&run(&setup.args_with_state(&t, &["--until-caught-up"], state), Duration::from_secs(60)));
    setup.assert_exactly_once(&t, PARTITIONS, Some(1_000));
}

/// A 64 MiB tmpfs mounted at a path, unmounted when dropped.
struct SmallTmpfs(std::path::PathBuf);

impl SmallTmpfs {
    /// `None` without root or mount.
    fn mount(path: &Path) -> Option<Self> {
        std::fs::create_dir_all(path).expect("mkdir");
        let mounted = have_root()
            && Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"])
                .arg(path)
                .status()
                .is_ok_and(|s| s.success());
        mounted.then(|| Self(path.to_path_buf()))
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A topic of 1 000 records per partition, a source group at offset 10 of partition 0, and a
/// state dir on a 64 MiB tmpfs; `None` without root or mount.
fn small_state_dir_setup(name: &str) -> Option<(Setup, String, String, std::path::PathBuf, SmallTmpfs)> {
    let setup = Setup::new();
    let state = setup.state_dir.path().join(name);
    let tmpfs = SmallTmpfs::mount(&state)?;
    let t = topic(name);
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    produce_batch(&setup, &t, "a", 1_000);
    let group = format!("g-{}", kmirror_testcontainers::unique_suffix());
    commit_group(&setup.source, &group, &t, &std::collections::BTreeMap::from([(0, 10)]));
    Some((setup, t, group, state, tmpfs))
}

#[test]
fn a_full_state_dir_is_a_clear_error_and_the_run_resumes_after() {
    let Some((setup, t, group, state, _unmount)) = small_state_dir_setup("diskfull") else {
        eprintln!("skipped: a small tmpfs for the state dir needs root and mount");
        return;
    };
    // Fill it, leaving room for nothing but the lock file.
    let filler = state.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 64 * 1024 * 1024]);
    let extra = ["--until-caught-up", "--groups", group.as_str(), "--sync-group-offsets"];
    let out = run(&setup.args_with_state(&t, &extra, state.clone()), Duration::from_secs(60));
    assert!(!out.status.success(), "{}", stderr(&out));
    let line =
        stderr(&out).lines().find(|l| l.starts_with("kmirror: error:")).map(String::from).unwrap_or_default();
    assert!(line.contains("space") || line.contains("state dir"), "names the fault: {}", stderr(&out));

    std::fs::remove_file(&filler).expect("free the space");
    assert_success(&run(&setup.args_with_state(&t, &extra, state.clone()), Duration::from_secs(60)));
    setup.assert_exactly_once(&t, PARTITIONS, Some(1_000));
}

/// The state dir fills up while the mirror runs and its local map takes new records (group
/// sync): one clear error line and a non-zero exit, not an abort; the next run resumes exactly.
#[test]
fn a_state_dir_filling_up_mid_run_stops_clearly_and_the_next_run_resumes_exactly() {
    let Some((setup, t, group, state, _unmount)) = small_state_dir_setup("fills") else {
        eprintln!("skipped: a small tmpfs for the state dir needs root and mount");
        return;
    };
    let extra = ["--groups", group.as_str(), "--sync-group-offsets", "--checkpoint-interval", "1"];
    let mut mirror = spawn(&setup.args_with_state(&t, &extra, state.clone()));
    let started = Instant::now();
    while (0..PARTITIONS)
        .any(|p| setup.target.audit_partition(&t, p).map(|a| a.visible.len()).unwrap_or(0) < 1_000)
    {
        assert!(started.elapsed() < Duration::from_secs(60), "the first records were not copied");
        std::thread::sleep(Duration::from_millis(250));
    }
    // Fill what is left of it, then give the local map more to hold.
    let filler = state.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 64 * 1024 * 1024]);
    let started = Instant::now();
    let mut round = 0;
    let status = loop {
        if let Some(status) = wait_exit(&mut mirror, Duration::from_secs(1)) {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(90) {
            let _ = mirror.kill();
            break None;
        }
        produce_batch(&setup, &t, &format!("b{round}-"), 200);
        round += 1;
    };
    let out = mirror.wait_with_output().expect("output");
    assert!(status.is_some(), "the mirror went on with a full state dir: {}", stderr(&out));
    assert!(!out.status.success(), "{}", stderr(&out));
    assert!(out.status.code().is_some(), "an exit, not a crash ({}): {}", out.status, stderr(&out));
    let errors: Vec<String> =
        stderr(&out).lines().filter(|l| l.starts_with("kmirror: error:")).map(String::from).collect();
    assert_eq!(errors.len(), 1, "one error line: {}", stderr(&out));
    assert!(
        errors[0].contains("space") && errors[0].contains(&state.display().to_string()),
        "names the fault and the dir: {}",
        errors[0]
    );

    std::fs::remove_file(&filler).expect("free the space");
    let extra = ["--until-caught-up", "--groups", group.as_str(), "--sync-group-offsets"];
    assert_success(&run(&setup.args_with_state(&t, &extra, state.clone()), Duration::from_secs(60)));
    setup.assert_exactly_once(&t, PARTITIONS, Some(1_000 + 200 * round));
}

fn vm_rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(String::from))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()))
        .map_or(0, |kb| kb * 1024)
}

/// A burst produced while the mirror is down is caught up with bounded memory. The reduced form
/// (200 000 records) runs in CI; `KMIRROR_TEST_BURST=500000` gives the long one.
#[test]
fn a_burst_while_the_mirror_is_down_is_caught_up_with_bounded_memory() {
    let records: usize =
        std::env::var("KMIRROR_TEST_BURST").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let setup = Setup::new();
    let t = topic("burst");
    setup.source.create_topic(&t, 4, &[]).expect("topic");
    produce_batch_to(&setup, &t, 4, 1_000);
    assert_success(&setup.mirror_until_caught_up(&t, &[]));
    // The burst: the mirror is down.
    let per_partition = records / 4;
    for p in 0..4 {
        let value = "v".repeat(100);
        let batch: Vec<kmirror_testcontainers::RecordData> = (0..per_partition)
            .map(|i| kmirror_testcontainers::RecordData::keyed(format!("burst-{p}-{i}"), value.clone()))
            .collect();
        for chunk in batch.chunks(20_000) {
            setup.source.produce(&t, p, chunk).expect("produce");
        }
    }
    let mut args = setup.args(&t, &[]);
    args.push("--until-caught-up".into());
    let mut child = spawn(&args);
    let mut peak = 0;
    while child.try_wait().expect("wait").is_none() {
        peak = peak.max(vm_rss_bytes(child.id()));
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    assert!(out.status.success(), "{}", stderr(&out));
    // The prefetch is bounded per shard and transactions by their size, whatever the backlog
    // (a release build peaks near 150 MB on 1 M records; this is a debug build).
    assert!(peak < 400 * 1024 * 1024, "peak RSS {} MB", peak / 1024 / 1024);
    eprintln!("burst of {records}: peak RSS {} MB", peak / 1024 / 1024);
    setup.assert_exactly_once(&t, 4, Some(1_000 + per_partition));
}

fn produce_batch_to(setup: &Setup, t: &str, partitions: i32, per_partition: usize) {
    for p in 0..partitions {
        setup.source.produce(t, p, &keyed(&format!("pre{p}"), 0..per_partition)).expect("produce");
    }
}

#[test]
fn transactions_are_cut_at_the_byte_bound() {
    let setup = Setup::new();
    let t = topic("bytes");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    // 400 records of about 30 key + value bytes: 12 000 bytes, one transaction by count.
    setup.source.produce(&t, 0, &keyed("bytes", 0..400)).expect("produce");
    assert_success(&setup.mirror_until_caught_up(&t, &["--transaction-max-bytes", "1000"]));
    setup.assert_exactly_once(&t, 1, Some(400));
    let log = kmirror_testcontainers::raw_log::read_raw_log(&setup.target, &t, 0).expect("raw log");
    let commits = log.records.iter().filter(|r| r.control).count();
    assert!(commits >= 10, "1 000-byte transactions over 12 000 bytes: {commits} commit markers");
}

/// Records on the target (read_committed, by the audit) across `partitions`.
/// Waits until `total` records of `t` are on the target, copied by `mirror` itself: it must not
/// stop after `fault` (the whole wait is bounded).
fn copied_by_the_same_process(
    setup: &Setup,
    t: &str,
    mirror: &mut std::process::Child,
    total: usize,
    fault: &str,
    log_tail: &dyn Fn() -> String,
) {
    let started = Instant::now();
    while copied(setup, t, PARTITIONS) < total {
        assert!(
            wait_exit(mirror, Duration::from_millis(200)).is_none(),
            "the mirror stopped after {fault}\n{}",
            log_tail()
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "only {} of {total} copied after {fault}\n{}",
            copied(setup, t, PARTITIONS),
            log_tail()
        );
    }
}

fn copied(setup: &Setup, t: &str, partitions: i32) -> usize {
    (0..partitions).map(|p| setup.target.audit_partition(t, p).map(|a| a.visible.len()).unwrap_or(0)).sum()
}

fn wait_for_copied(setup: &Setup, t: &str, at_least: usize) {
    let started = Instant::now();
    while copied(setup, t, PARTITIONS) < at_least {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "only {} of {at_least} copied",
            copied(setup, t, PARTITIONS)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Which side loses the leader of a mirrored partition.
#[derive(Clone, Copy, PartialEq)]
enum Killed {
    Source,
    Target,
}

/// A 3-broker source (`min.insync.replicas=2`) whose leader of a mirrored partition dies
/// mid-stream: the mirror goes on, and every record is on the target once, in order.
#[test]
fn a_source_partition_leader_killed_mid_stream_loses_and_duplicates_nothing() {
    leader_killed_mid_stream(Killed::Source);
}

/// The same on a 3-broker target. Not in the default run: in about one run in eight the mirror
/// made no progress for minutes after the target node holding its transaction coordinator died
/// (librdkafka's send_offsets_to_transaction blocked past its timeout; see the open issue).
/// Run it with `cargo test --test suite faults:: -- --ignored`.
#[test]
#[ignore]
fn a_target_partition_leader_killed_mid_stream_loses_and_duplicates_nothing() {
    leader_killed_mid_stream(Killed::Target);
}

fn leader_killed_mid_stream(killed: Killed) {
    use kmirror_testcontainers::{Backend, KafkaCluster, KafkaSpec};
    if Backend::local().expect("broker choice") != Backend::ApacheKafka {
        eprintln!(
            "skipped: 3-node clusters are Apache Kafka's (KMIRROR_TEST_BROKER asks for another broker)"
        );
        return;
    }
    let spec = KafkaSpec::for_leader_kills(3);
    let three = KafkaCluster::start_kafka(&spec).expect("3-node cluster");
    let (shared_source, shared_target) = KafkaCluster::shared_pair().expect("shared clusters");
    let (source, target) = match killed {
        Killed::Source => (three, shared_target),
        Killed::Target => (shared_source, three),
    };
    let mut setup = Setup {
        source,
        target,
        name: format!("t{}", kmirror_testcontainers::unique_suffix()),
        state_dir: tempfile::tempdir().expect("tempdir"),
    };
    let t = topic("leaders");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    let per_phase = 1_000;
    produce_batch(&setup, &t, "a", per_phase);
    let (mut mirror, log_path) = setup.spawn_mirror_logged(&t, &[]);
    let log_tail = || last_lines(&log_path);
    wait_for_copied(&setup, &t, 2 * per_phase);

    let side = match killed {
        Killed::Source => &mut setup.source,
        Killed::Target => &mut setup.target,
    };
    let leader = side.leader(&t, 0).expect("leader");
    side.kill_node(leader).expect("kill the leader");
    produce_batch(&setup, &t, "b", per_phase);
    wait_for_copied(&setup, &t, 3 * per_phase);
    assert!(
        wait_exit(&mut mirror, Duration::from_millis(1)).is_none(),
        "the mirror kept running\n{}",
        log_tail()
    );
    terminate(&mirror);
    // A clean stop, or, where a commit stays stuck in librdkafka after a coordinator died, an
    // exit once the stop's grace (45 s) is over: either way the next run resumes exactly.
    let status = wait_exit(&mut mirror, Duration::from_secs(75));
    assert!(status.is_some(), "the mirror stops on SIGTERM\n{}", log_tail());

    assert_success(&setup.mirror_until_caught_up(&t, &[]));
    setup.assert_exactly_once(&t, PARTITIONS, Some(2 * per_phase));
}

/// A network partition between the mirror and a running target, cut while a transaction is
/// open (the target's log shows records past its last stable offset) and held past the
/// target's transaction timeout, so the broker itself aborts the transaction on the far side
/// (a frozen broker, above, cannot: its timers stop too). After the heal the same process,
/// fenced by that abort, takes its shard back, and every record is on the target once, in
/// order.
#[test]
fn a_network_partition_to_the_target_mid_transaction_loses_and_duplicates_nothing() {
    partition_mid_transaction(&[], "takes its shard back", |log| log.contains("taking the shard back"));
}

/// The same partition under `--coordinate`, whose group lives on the target too: cut off past
/// its session timeout, the process loses its shard with its membership, and once the link
/// heals it joins again and takes the shard as a new owner would (fencing what was left). The
/// same process copies everything, once, in order.
#[test]
fn a_network_partition_to_the_target_of_a_coordinated_process_loses_and_duplicates_nothing() {
    // Two shards, each taken at the start: a shard taken a third time was taken after the cut
    // (or the fenced shard took itself back, where the membership outlived the cut).
    partition_mid_transaction(
        &["--coordinate", "--shards", "2", "--session-timeout", "6"],
        "takes a shard again after the heal",
        |log| log.matches("shard taken").count() > 2 || log.contains("taking the shard back"),
    );
}

/// The partition of the two tests above; `did`: what the log must show the process did about
/// it (`what`, for the failure message).
fn partition_mid_transaction(extra: &[&str], what: &str, did: impl Fn(&str) -> bool) {
    use kmirror_testcontainers::raw_log::{read_raw_log, LogEnds};
    use kmirror_testcontainers::{KafkaCluster, KafkaSpec};
    let (source, _) = KafkaCluster::shared_pair().expect("shared clusters");
    let target = KafkaCluster::start_kafka(&KafkaSpec::behind_slow_link(1, Duration::from_millis(2)))
        .expect("target behind a link");
    let setup = Setup {
        source,
        target,
        name: format!("t{}", kmirror_testcontainers::unique_suffix()),
        state_dir: tempfile::tempdir().expect("tempdir"),
    };
    let t = topic("partition");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    produce_batch(&setup, &t, "a", 20_000);
    // Its log goes to a file: across a partition librdkafka warns for seconds, and a mirror
    // blocked on a full stderr pipe would copy nothing.
    let mut flags = vec!["--set", "target.transaction.timeout.ms=5000", "--transaction-max-records", "2000"];
    flags.extend_from_slice(extra);
    let (mut mirror, log_path) = setup.spawn_mirror_logged(&t, &flags);
    let log_tail = || last_lines(&log_path);
    wait_for_copied(&setup, &t, 2_000);
    let open_transaction = || {
        (0..PARTITIONS).any(|p| {
            read_raw_log(&setup.target, &t, p).is_ok_and(|l| l.last_stable_offset < l.high_watermark)
        })
    };
    // Cut as soon as the target's log shows a transaction open (asked cheaply: reading the
    // whole log takes longer than a transaction stays open), while more records are being
    // produced: the mirror outpaces the test's producer, so a backlog produced before the
    // search would be copied before the search began. If the transaction committed before the
    // cut took, heal and try again (bounded).
    let mut ends: Vec<LogEnds> =
        (0..PARTITIONS).map(|p| LogEnds::open(&setup.target, &t, p).expect("log ends")).collect();
    let mut per_partition = 20_000;
    let mut cut_inside = false;
    for round in 0..20 {
        std::thread::scope(|scope| {
            scope.spawn(|| produce_batch(&setup, &t, &format!("r{round}-"), 5_000));
            let looking = Instant::now();
            while !ends.iter_mut().any(|e| e.transaction_open().expect("log ends"))
                && looking.elapsed() < Duration::from_secs(5)
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            setup.target.set_link_cut(true).expect("cut");
            std::thread::sleep(Duration::from_millis(300));
            cut_inside = open_transaction();
        });
        per_partition += 5_000;
        if cut_inside {
            break;
        }
        setup.target.set_link_cut(false).expect("heal");
        assert!(
            wait_exit(&mut mirror, Duration::from_millis(150)).is_none(),
            "the mirror stopped after a cut between transactions\n{}",
            log_tail()
        );
    }
    assert!(cut_inside, "no cut landed inside an open transaction in 20 tries\n{}", log_tail());
    produce_batch(&setup, &t, "b", 1_000);
    // Past the 5 s transaction timeout: the broker aborts what the mirror had open.
    std::thread::sleep(Duration::from_secs(12));
    assert!(!open_transaction(), "the target aborted the transaction cut off from its producer");
    setup.target.set_link_cut(false).expect("heal");
    produce_batch(&setup, &t, "c", 1_000);
    // The abort bumped the producer epoch, which librdkafka reports as fencing; the claim in
    // force on the shard is still this process's, so the same process takes the shard back and copies the
    // rest itself: no restart.
    let total = PARTITIONS as usize * (per_partition + 2_000);
    copied_by_the_same_process(&setup, &t, &mut mirror, total, "the heal", &log_tail);
    setup.assert_exactly_once(&t, PARTITIONS, Some(per_partition + 2_000));
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(did(&log), "the process {what}:\n{}", log_tail());
    terminate(&mirror);
    let status = wait_exit(&mut mirror, Duration::from_secs(30)).expect("stops on SIGTERM");
    assert!(status.success(), "{status}\n{}", log_tail());
    // Nothing more to copy, nothing copied twice by the stop.
    setup.assert_exactly_once(&t, PARTITIONS, Some(per_partition + 2_000));
}

/// CPU seconds (user and system, every thread) the process `pid` has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the mirror's /proc stat");
    // The fields after the command name, which is in parentheses and may hold spaces.
    let after_name = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields[i].parse::<f64>().expect("a tick count");
    let out = Command::new("getconf").arg("CLK_TCK").output().expect("getconf");
    let per_second: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("CLK_TCK");
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name and state.
    (ticks(11) + ticks(12)) / per_second
}

/// Both clusters stop under a running mirror, the target first (an outage spreading over a
/// site): the mirror waits for them with its clients backing off instead of spinning, and stops
/// on SIGTERM. Its topic-ID requests spun most of a core for as long as the source was down.
#[test]
fn a_mirror_whose_clusters_are_gone_waits_without_burning_a_core() {
    let mut setup = Setup::dedicated();
    let t = topic("outage");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    produce_batch(&setup, &t, "a", 20_000);
    let (mut mirror, log_path) = setup.spawn_mirror_logged(&t, &[]);
    let log_tail = || last_lines(&log_path);
    wait_for_copied(&setup, &t, 2 * 500);
    setup.target.stop().expect("stop the target");
    // The topic-ID watch asks every 5 s: let it ask the target while only the target is gone.
    std::thread::sleep(Duration::from_secs(6));
    setup.source.stop().expect("stop the source");
    // Reconnect back-offs grow to their bound within seconds; then the mirror should idle
    // (0.2-0.3 CPU s in 10 s here; 4.3-4.5 s before the fix).
    std::thread::sleep(Duration::from_secs(10));
    let before = cpu_seconds(mirror.id());
    std::thread::sleep(Duration::from_secs(10));
    let used = cpu_seconds(mirror.id()) - before;
    if wait_exit(&mut mirror, Duration::from_millis(1)).is_none() {
        terminate(&mirror);
    }
    let stopped = wait_exit(&mut mirror, Duration::from_secs(60));
    if stopped.is_none() {
        let _ = mirror.kill();
    }
    assert!(
        used < 1.5,
        "the mirror used {used:.1} CPU s in 10 s while its clusters were gone\n{}",
        log_tail()
    );
    assert!(stopped.is_some(), "the mirror stops on SIGTERM with its clusters gone\n{}", log_tail());
}
