//! Exactly once under crashes: SIGKILL at random moments while the source is being written,
//! a second instance with the same name, a restart with another --num-streams.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use kmirror_testcontainers::KafkaCluster;

const PARTITIONS: i32 = 4;

/// Produces up to `per_partition` records to every partition in chunks, from another thread,
/// until done or `stop` is set; the thread returns how many it produced per partition.
fn produce_in_background(
    source: &KafkaCluster,
    topic: &str,
    per_partition: usize,
    chunk: usize,
    pause: Duration,
    stop: Arc<AtomicBool>,
) -> (std::thread::JoinHandle<usize>, Arc<AtomicBool>) {
    let bootstrap_cluster = source.client_config();
    let topic = topic.to_string();
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let handle = std::thread::spawn(move || {
        use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
        let producer: ThreadedProducer<DefaultProducerContext> = bootstrap_cluster
            .clone()
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .create()
            .expect("producer");
        let mut start = 0;
        while start < per_partition && !stop.load(Ordering::SeqCst) {
            let end = (start + chunk).min(per_partition);
            for p in 0..PARTITIONS {
                for i in start..end {
                    let key = format!("p{p}-{i}");
                    let value = format!("value-{p}-{i}");
                    let mut record = BaseRecord::to(&topic).partition(p).key(&key).payload(&value);
                    loop {
                        match producer.send(record) {
                            Ok(()) => break,
                            Err((_, back)) => {
                                record = back;
                                std::thread::sleep(Duration::from_millis(5));
                            }
                        }
                    }
                }
            }
            producer.flush(Duration::from_secs(30)).expect("flush");
            start = end;
            std::thread::sleep(pause);
        }
        flag.store(true, Ordering::SeqCst);
        start
    });
    (handle, done)
}

/// A small deterministic generator, so a failing run can be repeated.
struct Lcg(u64);
impl Lcg {
    fn next_ms(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        lo + (self.0 >> 33) % (hi - lo)
    }
}

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    sigkills_while_producing(80_000, 20);
}

/// The longer form: run with `cargo test --test suite mirror_crash:: -- --ignored` (about 3 minutes).
#[test]
#[ignore]
fn sigkill_at_random_moments_long() {
    sigkills_while_producing(200_000, 50);
}

/// Kills the mirror at random moments while `per_partition` records per partition are produced
/// (paced, so at least `min_kills` kills land while the source is written), then checks that
/// every record is on the target exactly once.
fn sigkills_while_producing(per_partition: usize, min_kills: usize) {
    let setup = Setup::new();
    let t = topic("crash");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    let (producer, done) = produce_in_background(
        &setup.source,
        &t,
        per_partition,
        2_000,
        Duration::from_millis(700),
        Default::default(),
    );
    let seed = std::env::var("KMIRROR_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_u64);
    let mut rng = Lcg(seed);
    let (mut kills, mut kills_while_producing) = (0, 0);
    while !done.load(Ordering::SeqCst) {
        let mut child = setup.spawn_mirror(&t, &["--transaction-max-records", "500"]);
        std::thread::sleep(Duration::from_millis(rng.next_ms(200, 1_500)));
        let producing = !done.load(Ordering::SeqCst);
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        kills += 1;
        kills_while_producing += usize::from(producing);
    }
    assert!(
        kills_while_producing >= min_kills,
        "only {kills_while_producing} of {kills} kills happened while records were being produced"
    );
    producer.join().expect("producer thread");
    // The kills landed inside transactions, not only between them or during start-up: the
    // target's log holds records of transactions that were aborted (by the next start's
    // init_transactions, or the broker's timeout) or are still open.
    let cut: usize = (0..PARTITIONS)
        .map(|p| setup.target.audit_partition(&t, p).map(|a| a.aborted.len() + a.open.len()).unwrap_or(0))
        .sum();
    assert!(cut > 0, "none of {kills} kills cut a transaction on the target");
    assert_success(&setup.mirror_until_caught_up(&t, &[]));
    setup.assert_exactly_once(&t, PARTITIONS, Some(per_partition));
    eprintln!("seed {seed:#x}: {kills} kills, {kills_while_producing} while producing, {cut} records of cut transactions");
}

#[test]
fn a_second_instance_fences_the_first_and_nothing_is_duplicated() {
    let setup = Setup::new();
    let t = topic("fence");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    // The source keeps being written until the first instance has been fenced: a fenced
    // instance only learns it on its next write.
    let stop = Arc::new(AtomicBool::new(false));
    let (producer, _) =
        produce_in_background(&setup.source, &t, 1_000_000, 200, Duration::from_millis(100), stop.clone());
    let first = setup.spawn_mirror(&t, &[]);
    // Every shard of the first instance is writing before the second starts, so the second's
    // init_transactions is the newer one for every shard.
    let started = Instant::now();
    while (0..PARTITIONS).any(|p| {
        setup.target.partition_count(&t).ok().flatten().is_none()
            || setup.target.audit_partition(&t, p).map(|a| a.visible.is_empty()).unwrap_or(true)
    }) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the first instance never wrote to every partition"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let other_state = tempfile::tempdir().expect("tempdir");
    let second = spawn(&setup.args_with_state(&t, &[], other_state.path().to_path_buf()));

    let mut first = first;
    let started = Instant::now();
    while first.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = first.kill();
            let out = first.wait_with_output().expect("output");
            panic!("the first instance was never fenced: {}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let first_out = first.wait_with_output().expect("first output");
    assert!(!first_out.status.success(), "a fenced instance exits non-zero");
    let message = stderr(&first_out);
    assert!(message.contains("fenced"), "the first instance says it was fenced: {message}");
    assert!(
        message.contains(&format!("the kmirror process {} on host", second.id())),
        "it names the second instance, whose claim on the shard is the last: {message}"
    );

    stop.store(true, Ordering::SeqCst);
    let produced = producer.join().expect("producer");
    // The survivor stops gracefully on SIGTERM, committing what it has.
    std::thread::sleep(Duration::from_millis(1_000));
    terminate(&second);
    let stopped = Instant::now();
    let second_out = second.wait_with_output().expect("second output");
    assert!(second_out.status.success(), "graceful stop exits 0: {}", stderr(&second_out));
    assert!(stopped.elapsed() < Duration::from_secs(10), "stopped within a few seconds");
    assert_success(&setup.mirror_until_caught_up(&t, &[]));
    setup.assert_exactly_once(&t, PARTITIONS, Some(produced));
}

#[test]
fn a_restart_with_another_num_streams_loses_and_duplicates_nothing() {
    let setup = Setup::new();
    let t = topic("streams");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    let (producer, _) =
        produce_in_background(&setup.source, &t, 10_000, 1_000, Duration::ZERO, Default::default());
    let mut child = setup.spawn_mirror(&t, &["--num-streams", "1"]);
    std::thread::sleep(Duration::from_millis(2_000));
    child.kill().expect("kill");
    child.wait().expect("reap");
    // A killed process gives nothing up: its claim stays, and status says its process is gone.
    let status = crate::common::status_json(&setup, false);
    let owners = status["owners"].as_array().expect("owners");
    assert_eq!(owners.len() as u64, status["shards"].as_u64().expect("shards"), "{status:#}");
    for owner in owners {
        assert_eq!(owner["pid"].as_u64(), Some(u64::from(child.id())), "{status:#}");
        assert_eq!(owner["running"], serde_json::json!(false), "{status:#}");
    }
    producer.join().expect("producer");
    let out = setup.mirror_until_caught_up(&t, &["--num.streams", "3"]);
    assert_success(&out);
    setup.assert_exactly_once(&t, PARTITIONS, Some(10_000));
}

/// The pids `status` shows holding the mirror's shards, by shard.
fn owner_pids(setup: &Setup) -> Vec<(u64, u64)> {
    let status = crate::common::status_json(setup, false);
    let owners = status["owners"].as_array().cloned().unwrap_or_default();
    owners.iter().filter_map(|o| Some((o["shard"].as_u64()?, o["pid"].as_u64()?))).collect()
}

/// Every claim in the mirror's shards topic, read with an independent client.
fn claims_of(setup: &Setup) -> Vec<serde_json::Value> {
    let topic = format!("kmirror.shards.{}", setup.name);
    let partitions = setup.target.partition_count(&topic).expect("describe").expect("the shards topic");
    (0..partitions)
        .flat_map(|p| setup.target.read_uncommitted(&topic, p).expect("read the shards topic"))
        .filter_map(|r| serde_json::from_slice(r.data.value.as_deref()?).ok())
        .collect()
}

/// A rolling restart: the new process starts beside the old one and fences it; the old one,
/// idle, never learns it and stops cleanly, giving up shards that are no longer its own. Its
/// release must not end the new process's hold: `status` goes on naming the new process.
#[test]
fn a_rolling_restart_leaves_the_new_process_holding_every_shard() {
    let setup = Setup::new();
    let t = topic("rolling");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    for p in 0..PARTITIONS {
        setup.source.produce(&t, p, &keyed(&format!("a{p}"), 0..20)).expect("produce");
    }
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        let started = Instant::now();
        while !done() {
            assert!(started.elapsed() < Duration::from_secs(60), "{what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let mut old = setup.spawn_mirror(&t, &[]);
    let old_pid = old.id();
    wait_for("the old process copies", &|| {
        (0..PARTITIONS).all(|p| setup.target.audit_partition(&t, p).map_or(0, |a| a.visible.len()) == 20)
    });
    let held = owner_pids(&setup);
    assert!(!held.is_empty() && held.iter().all(|&(_, pid)| pid == u64::from(old.id())), "{held:?}");
    let other_state = tempfile::tempdir().expect("tempdir");
    let new = spawn(&setup.args_with_state(&t, &[], other_state.path().to_path_buf()));
    let new_pid = u64::from(new.id());
    wait_for("the new process claims every shard", &|| {
        let now = owner_pids(&setup);
        now.len() == held.len() && now.iter().all(|&(_, pid)| pid == new_pid)
    });
    terminate(&old);
    let stopped = wait_exit(&mut old, Duration::from_secs(60)).expect("the old process stops");
    let said = stderr(&old.wait_with_output().expect("output"));
    assert_eq!(stopped.code(), Some(0), "idle, it stops cleanly and releases: {said}");
    let after = owner_pids(&setup);
    assert_eq!(after.len(), held.len(), "status still shows every shard held: {after:?}");
    assert!(after.iter().all(|&(_, pid)| pid == new_pid), "by the new process: {after:?}");
    // Not even a release that status reads past: under the shard's key, compaction would in time
    // leave it in place of the new process's claim.
    let released_by_old = claims_of(&setup)
        .into_iter()
        .filter(|c| c["state"] == "released" && c["pid"].as_u64() == Some(u64::from(old_pid)))
        .count();
    assert_eq!(released_by_old, 0, "the old process released shards the new one held");

    // The new process copies on, and its own clean stop gives the shards up.
    for p in 0..PARTITIONS {
        setup.source.produce(&t, p, &keyed(&format!("b{p}"), 0..10)).expect("produce");
    }
    wait_for("the new process copies on", &|| {
        (0..PARTITIONS).all(|p| setup.target.audit_partition(&t, p).map_or(0, |a| a.visible.len()) == 30)
    });
    terminate(&new);
    let mut new = new;
    let stopped = wait_exit(&mut new, Duration::from_secs(60)).expect("the new process stops");
    let out = new.wait_with_output().expect("output");
    assert!(stopped.success(), "{}", stderr(&out));
    assert_eq!(owner_pids(&setup), vec![], "released by the process that held them");
    let released_by_new = claims_of(&setup)
        .into_iter()
        .filter(|c| c["state"] == "released" && c["pid"].as_u64() == Some(new_pid))
        .count();
    assert_eq!(released_by_new, held.len(), "the new process released each shard it held once");
    setup.assert_exactly_once(&t, PARTITIONS, Some(30));
}

#[test]
fn a_changed_shard_count_is_refused_by_name() {
    let setup = Setup::new();
    let t = topic("shards");
    setup.source.create_topic(&t, 2, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("a", 0..10)).expect("produce");
    assert_success(&setup.mirror_until_caught_up(&t, &["--shards", "4"]));
    let out = setup.mirror_until_caught_up(&t, &["--shards", "8"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--shards 4"), "{}", stderr(&out));
}

/// A run started with another shard count beside a running mirror is refused before it fences
/// anything: its shards' transactional ids are the running mirror's (shard K's are the same
/// whatever the count), and fencing them stopped that mirror (exit 3) before the refusal.
#[test]
fn a_changed_shard_count_beside_a_running_mirror_is_refused_without_stopping_it() {
    let setup = Setup::new();
    let t = topic("shards-live");
    setup.source.create_topic(&t, 2, &[]).expect("topic");
    for p in 0..2 {
        setup.source.produce(&t, p, &keyed(&format!("a{p}"), 0..10)).expect("produce");
    }
    let (mut running, log) = setup.spawn_mirror_logged(&t, &["--shards", "4"]);
    for p in 0..2 {
        let seen = plain_read_committed(&setup.target, &t, p, 10);
        assert_eq!(seen.len(), 10, "partition {p} copied: {}", last_lines(&log));
    }
    // Not a batch: a batch that finds everything copied would not fence anyway. From another
    // host, as it were: the running mirror holds the state dir's lock.
    let elsewhere = tempfile::tempdir().expect("state dir");
    let args = setup.args_with_state(&t, &["--shards", "2"], elsewhere.path().to_path_buf());
    let out = run(&args, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--shards 4"), "{}", stderr(&out));
    for p in 0..2 {
        setup.source.produce(&t, p, &keyed(&format!("b{p}"), 0..10)).expect("produce");
    }
    for p in 0..2 {
        let seen = plain_read_committed(&setup.target, &t, p, 20);
        assert_eq!(seen.len(), 20, "the running mirror copies on (partition {p}): {}", last_lines(&log));
    }
    assert!(running.try_wait().expect("wait").is_none(), "the running mirror stopped: {}", last_lines(&log));
    terminate(&running);
    let status = wait_exit(&mut running, Duration::from_secs(60)).expect("the mirror stops");
    assert!(status.success(), "{status:?}: {}", last_lines(&log));
    setup.assert_exactly_once(&t, 2, Some(20));
}

/// The producer ids of a target partition's data records, in log order, with runs folded.
fn writers(setup: &Setup, t: &str, partition: i32) -> Vec<i64> {
    let log = kmirror_testcontainers::raw_log::read_raw_log(&setup.target, t, partition).expect("raw log");
    let mut writers: Vec<i64> = log.records.iter().filter(|r| !r.control).map(|r| r.producer_id).collect();
    writers.dedup();
    writers
}

/// A shard's commit runs while its next transaction fills on its second producer: over a
/// backlog of many small transactions, each target partition holds transactions of both
/// producers in turn, and the copy is exact (every record once, in the source's order).
/// With --serial-commits a single producer writes each partition.
#[test]
fn overlapping_commits_alternate_two_producers_and_copy_exactly() {
    let partitions = 2;
    for (extra, expected_writers) in [(&[][..], 2), (&["--serial-commits"][..], 1)] {
        let setup = Setup::new();
        let t = topic("overlap");
        setup.source.create_topic(&t, partitions, &[]).expect("topic");
        for p in 0..partitions {
            setup.source.produce(&t, p, &keyed(&format!("o{p}-"), 0..3_000)).expect("produce");
        }
        let mut args = vec!["--transaction-max-records", "100"];
        args.extend_from_slice(extra);
        assert_success(&setup.mirror_until_caught_up(&t, &args));
        setup.assert_exactly_once(&t, partitions, Some(3_000));
        for p in 0..partitions {
            let writers = writers(&setup, &t, p);
            let distinct: std::collections::BTreeSet<i64> = writers.iter().copied().collect();
            assert_eq!(
                distinct.len(),
                expected_writers,
                "{extra:?}, partition {p}: writers in turn {writers:?}"
            );
            if expected_writers == 2 {
                // 30 transactions of 100 records: written by the two producers in turn.
                assert!(writers.len() >= 20, "partition {p}: writers in turn {writers:?}");
            }
        }
    }
}

/// A run killed between sending the shadow group's positions and its commit leaves a
/// transaction open that holds those positions back from every read that waits for stable
/// offsets, until a producer of the same transactional id fences it. The next run reads where
/// the mirror stands before its shards fence: it must not wait for that transaction (it ends
/// only once the shards fence, after that read), and the copy goes on exactly.
#[test]
fn an_open_transaction_on_the_shadow_group_does_not_hold_the_next_start() {
    use rdkafka::consumer::Consumer;
    use rdkafka::producer::Producer;
    let partitions = 2;
    let setup = Setup::new();
    let t = topic("pending");
    setup.source.create_topic(&t, partitions, &[]).expect("topic");
    for p in 0..partitions {
        setup.source.produce(&t, p, &keyed(&format!("a{p}-"), 0..500)).expect("produce");
    }
    assert_success(&setup.mirror_until_caught_up(&t, &[]));
    // The shard that owns partition 0, found by its group, as a killed run left it.
    let (shard, position) = (0..4)
        .find_map(|s| {
            let group = format!("kmirror.{}.shard-{s}", setup.name);
            group_offsets(&setup.target, &group, &t, 1)[&0].map(|o| (s, o))
        })
        .expect("a shard's group holds partition 0");
    assert_eq!(position, 500, "the first run committed every record's position");
    let group = format!("kmirror.{}.shard-{shard}", setup.name);
    let leftover = setup
        .target
        .transactional_producer(&format!("kmirror.{}.{shard}", setup.name))
        .expect("the shard's producer, as a killed run left it");
    let reader: rdkafka::consumer::BaseConsumer =
        setup.target.client_config().set("group.id", &group).create().expect("group client");
    let mut offsets = rdkafka::TopicPartitionList::new();
    offsets.add_partition_offset(&t, 0, rdkafka::Offset::Offset(position)).expect("offsets");
    leftover.begin_transaction().expect("begin");
    let metadata = reader.group_metadata().expect("group metadata");
    leftover.send_offsets_to_transaction(&offsets, &metadata, Duration::from_secs(10)).expect("offsets sent");
    for p in 0..partitions {
        setup.source.produce(&t, p, &keyed(&format!("b{p}-"), 500..1_000)).expect("produce");
    }
    // Waiting for that transaction would take the whole connect timeout before the shards fence.
    let started = Instant::now();
    let out = setup.mirror_until_caught_up(&t, &["--connect-timeout", "45"]);
    let took = started.elapsed();
    assert_success(&out);
    assert!(took < Duration::from_secs(30), "the start waited for the open transaction: {took:?}");
    setup.assert_exactly_once(&t, partitions, Some(1_000));
    drop(leftover);
}
