//! The mirror against the limit: what the brokers and librdkafka allow, in one run.
//!
//! `cargo bench --bench mirror` starts its own clusters, loads the source, then copies it:
//! - limit: a plain consume -> produce pipe in this process (at-least-once, no transactions,
//!   read_committed, the same partitions and producer batching as the mirror);
//! - the transactional limit, beside kmirror's 1 000-record transactions: the textbook
//!   exactly-once copy (consume, produce in a transaction, send the consumer's positions, commit)
//!   every 1 000 records, one transaction under way per thread (KMIRROR_BENCH_TXN_PIPE_THREADS,
//!   default 4, kmirror's default shard count), no offset map;
//! - kmirror exactly-once (`kmirror mirror --until-caught-up`) at the default settings and at
//!   transaction sizes of 1 000, 10 000 and 100 000 records;
//! - kmirror with a no-op script transform and with a filter transform (the cost of the
//!   transform path: every record is copied out and back).
//!
//! Each copy goes to a fresh target cluster. Results: bench-results/mirror.json, and the table
//! between the markers in BENCHMARKS.md.
//!
//! Rates: "wall" counts from the start of the copy (for kmirror: the process start) to the last
//! record landed; "steady" from the first record landed on the target to the last, watched by a
//! consumer on the target, so start-up costs (fencing, group lookups) are told apart from the
//! cost of copying (counted from the moment every partition has records readable, leaving out
//! the records there by then: a transactional copy shows each shard's first transaction at
//! once, after the time it took). Latency: with the mirror running, records produced at a fixed
//! rate are read on the target (read_committed) and their source timestamps compared with the
//! time they are read: p50 and p99.
//!
//! Sizes: KMIRROR_BENCH_RECORDS (default 1 000 000), KMIRROR_BENCH_VALUE_BYTES (100),
//! KMIRROR_BENCH_PARTITIONS (8); KMIRROR_BENCH_LARGE=1 adds 200 000 records of 1 KiB.
//! KMIRROR_BENCH_ONLY=slow-link: only the long-link phase (below).
//!
//! Long link: the plain pipe and kmirror at its defaults with the target, then the source,
//! behind a link of KMIRROR_BENCH_LINK_RTT_MS (50) round trip (`KafkaSpec::behind_slow_link`:
//! the delay is added in user space, as this machine's kernel has no netem), on
//! KMIRROR_BENCH_LINK_RECORDS (300 000) records of 100 B; the pipe over the same link is the
//! limit. Results: bench-results/mirror-slow-link.json and BENCHMARKS.md (`slow-link` markers).
//!
//! KMIRROR_BENCH_ONLY=phases: where a batch run's wall time goes (KMIRROR_BENCH_PHASE_RECORDS,
//! default 300 000 records of 100 B, 8 partitions; KMIRROR_BENCH_PHASE_SAMPLES runs, default 3),
//! phase by phase from kmirror's log and the target's watch, against the time kmirror's steady
//! rate would need (measured per sample on a third run of KMIRROR_BENCH_PHASE_REFERENCE_RECORDS,
//! default 1 000 000, into the same topics). Each target has had a transaction and a group commit first, as any
//! long-lived cluster has (KMIRROR_BENCH_PHASE_COLD=1: not). Results:
//! bench-results/mirror-phases.json, BENCHMARKS.md (`phases`).
//!
//! KMIRROR_BENCH_ONLY=topics: what a first run's plan costs per mirrored topic (see
//! `many_topics`; KMIRROR_BENCH_TOPICS, default 40; KMIRROR_BENCH_TOPIC_SAMPLES, default 2;
//! KMIRROR_BENCH_TOPICS_RUST_LOG, kmirror's log filter, default `warn,kmirror=info`;
//! KMIRROR_BENCH_TOPICS_KEEP_LOG=PATH keeps each run's log as PATH.<topics>;
//! KMIRROR_BENCH_ARGS, as for the batch runs).
//! Results: bench-results/mirror-topics.json, BENCHMARKS.md (`topics`).
//!
//! KMIRROR_BENCH_ONLY=groups: what consumer groups cost a batch run and a failover (see
//! `many_groups`; KMIRROR_BENCH_GROUPS, default 200; KMIRROR_BENCH_GROUP_SAMPLES, default 2;
//! KMIRROR_BENCH_GROUPS_RUST_LOG, kmirror's log filter, default `warn`;
//! KMIRROR_BENCH_GROUPS_KEEP_LOG=PATH keeps the last sample's logs as PATH.mirror, PATH.failover).
//! Results: bench-results/mirror-groups.json, BENCHMARKS.md (`groups`).
//!
//! KMIRROR_BENCH_ONLY=latency: the latency run alone, KMIRROR_BENCH_LATENCY_SAMPLES times
//! (default 3) on fresh clusters. Results: bench-results/mirror-latency.json, BENCHMARKS.md
//! (`latency`).
//!
//! KMIRROR_BENCH_RUN_LOG=FILE: every kmirror copy logs at debug level (each commit's timings)
//! into FILE.
//!
//! KMIRROR_BENCH_GUARD=R (the CI regression guard): only the limit and kmirror at its default
//! settings, no latency phase, no files written; fails unless kmirror's steady rate is at least
//! R times the limit's.
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use kmirror_testcontainers::{KafkaCluster, KafkaSpec, Role};
use nix::sys::resource::UsageWho;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

mod many_groups;
mod many_topics;
mod phases;
mod support;

use support::{cpu_seconds, env_or, load, load_more, steady, vm_rss, Landing, Measure, Workload, TOPIC};

/// The limit: consume read_committed and produce each record to the same partition, no
/// transactions, flushing at the end; as many threads as kmirror has workers by default (the
/// cores), each with its own consumer and producer over its share of the partitions.
fn limit_pipe(source: &KafkaCluster, target: &KafkaCluster, w: &Workload) -> Measure {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    threaded_copy(target, w, threads, |_| {
        let consumer = pipe_consumer(source, "bench-limit".into());
        let producer: BaseProducer =
            target.client_config().set("enable.idempotence", "true").create().expect("producer");
        move |partitions: Vec<i32>, total: usize| pipe(consumer, producer, &partitions, total, None)
    })
}

/// The transactional limit: the textbook exactly-once copy (KIP-98's consume -> produce loop)
/// with no offset map, no overlapping commits and no adaptive sizing: `threads` threads, each a
/// read_committed consumer and a transactional producer over its share of the partitions,
/// committing every `per_transaction` records with the consumer's positions
/// (`send_offsets_to_transaction`). What any copy in transactions of that size costs the
/// brokers, measured beside the plain pipe.
fn transactional_pipe(
    source: &KafkaCluster,
    target: &KafkaCluster,
    w: &Workload,
    per_transaction: usize,
    threads: usize,
) -> Measure {
    threaded_copy(target, w, threads, |t| {
        let consumer = pipe_consumer(source, format!("bench-transactional-{t}"));
        let producer: BaseProducer = target
            .client_config()
            .set("transactional.id", format!("bench-transactional-{t}"))
            .create()
            .expect("producer");
        move |partitions: Vec<i32>, total: usize| {
            pipe(consumer, producer, &partitions, total, Some(per_transaction))
        }
    })
}

/// Copies the workload on `threads` threads (at most one per partition), each over its share of
/// the partitions with what `make(thread)` returns (its clients made on the clock, as kmirror's
/// are), and measures the copy as the target's readers see it.
fn threaded_copy<F>(target: &KafkaCluster, w: &Workload, threads: usize, make: impl Fn(usize) -> F) -> Measure
where
    F: FnOnce(Vec<i32>, usize) -> usize + Send + 'static,
{
    target.create_topic(TOPIC, w.partitions, &[]).expect("target topic");
    let threads = threads.clamp(1, w.partitions as usize);
    let per_partition = w.records / w.partitions as usize;
    let landing = Landing::watch(target, w.partitions, per_partition * w.partitions as usize);
    let cpu_before = cpu_seconds(UsageWho::RUSAGE_SELF);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let partitions: Vec<i32> = (0..w.partitions).filter(|p| *p as usize % threads == t).collect();
            let total = per_partition * partitions.len();
            let copy = make(t);
            std::thread::spawn(move || copy(partitions, total))
        })
        .collect();
    let copied = handles.into_iter().map(|h| h.join().expect("pipe thread")).sum();
    let seconds = started.elapsed().as_secs_f64();
    let landed = landing.finish_within(Duration::from_secs(10));
    Measure {
        seconds,
        steady_seconds: steady(&landed, seconds),
        cpu_seconds: cpu_seconds(UsageWho::RUSAGE_SELF) - cpu_before,
        peak_rss_bytes: None,
        target_records: copied,
    }
}

fn pipe_consumer(source: &KafkaCluster, group: String) -> BaseConsumer {
    source
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer")
}

/// Copies `total` records of `partitions` from their beginning, each to the same partition;
/// with `per_transaction`, in transactions of that many records that also commit the consumer's
/// positions (the producer must be transactional), else flushing at the end.
fn pipe(
    consumer: BaseConsumer,
    producer: BaseProducer,
    partitions: &[i32],
    total: usize,
    per_transaction: Option<usize>,
) -> usize {
    let wait = Duration::from_secs(120);
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        tpl.add_partition_offset(TOPIC, p, Offset::Beginning).expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let group = per_transaction.map(|_| {
        producer.init_transactions(wait).expect("init_transactions");
        producer.begin_transaction().expect("begin");
        consumer.group_metadata().expect("group metadata")
    });
    let (mut copied, mut open) = (0, 0);
    while copied < total {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else { continue };
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(TOPIC).partition(m.partition());
        if let Some(k) = m.key() {
            record = record.key(k);
        }
        if let Some(v) = m.payload() {
            record = record.payload(v);
        }
        if let Some(ts) = m.timestamp().to_millis() {
            record = record.timestamp(ts);
        }
        if let Some(h) = m.headers() {
            record = record.headers(h.detach());
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
        producer.poll(Duration::ZERO);
        copied += 1;
        open += 1;
        if let (Some(size), Some(group)) = (per_transaction, &group) {
            if open == size || copied == total {
                // Delivered first, a millisecond at a time: rust-rdkafka's own flush (which its
                // commit_transaction calls) waits in 100 ms steps, a cost of that crate, not of
                // transactions.
                while !flushed_within(&producer, Duration::from_millis(1)) {
                    serve_reports(&producer);
                }
                let positions = consumer.position().expect("positions");
                producer.send_offsets_to_transaction(&positions, group, wait).expect("send_offsets");
                producer.commit_transaction(wait).expect("commit");
                open = 0;
                if copied < total {
                    producer.begin_transaction().expect("begin");
                }
            }
        }
    }
    if per_transaction.is_none() {
        producer.flush(wait).expect("flush");
    }
    copied
}

/// Serves every delivery report waiting, without waiting for more.
fn serve_reports(producer: &BaseProducer) {
    loop {
        let before = producer.in_flight_count();
        producer.poll(Duration::ZERO);
        if before == 0 || producer.in_flight_count() >= before {
            return;
        }
    }
}

/// librdkafka's flush for at most `wait` (it sends what lingers at once while it waits).
#[allow(unsafe_code)]
fn flushed_within(producer: &BaseProducer, wait: Duration) -> bool {
    let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX).max(1);
    // SAFETY: the handle belongs to `producer`, alive for the call.
    let err = unsafe { rdkafka::bindings::rd_kafka_flush(producer.client().native_ptr(), ms) };
    err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
}

fn kmirror_run(source: &KafkaCluster, target: &KafkaCluster, w: &Workload, extra: &[&str]) -> Measure {
    let state = tempfile::tempdir().expect("tempdir");
    let landing =
        Landing::watch(target, w.partitions, w.records / w.partitions as usize * w.partitions as usize);
    let cpu_before = cpu_seconds(UsageWho::RUSAGE_CHILDREN);
    let started = Instant::now();
    let mut command = batch_command(source, target, state.path());
    command.args(extra).stdin(Stdio::null());
    // KMIRROR_BENCH_RUN_LOG=FILE: each run's debug log (per-commit timings) appended to FILE.
    match std::env::var("KMIRROR_BENCH_RUN_LOG") {
        Ok(path) => {
            let mut log = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("run log");
            std::io::Write::write_all(&mut log, format!("=== kmirror {extra:?}\n").as_bytes())
                .expect("run log");
            command.env("RUST_LOG", "warn,kmirror=debug").stderr(log)
        }
        Err(_) => command.env("RUST_LOG", "warn"),
    };
    let mut child = command.spawn().expect("kmirror");
    let mut peak = 0;
    while child.try_wait().expect("wait").is_none() {
        peak = peak.max(vm_rss(child.id()).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(50));
    }
    let seconds = started.elapsed().as_secs_f64();
    let status = child.wait().expect("wait");
    assert!(status.success(), "kmirror failed: {status}");
    let landed = landing.finish_within(Duration::from_secs(10));
    let target_records = (0..w.partitions)
        .map(|p| target.audit_partition(TOPIC, p).map(|a| a.visible.len()).unwrap_or(0))
        .sum();
    Measure {
        seconds,
        steady_seconds: steady(&landed, seconds),
        cpu_seconds: cpu_seconds(UsageWho::RUSAGE_CHILDREN) - cpu_before,
        peak_rss_bytes: Some(peak),
        target_records,
    }
}

/// `kmirror mirror --until-caught-up` of the bench topic as mirror "bench", its state in `state`.
fn batch_command(source: &KafkaCluster, target: &KafkaCluster, state: &std::path::Path) -> Command {
    batch_command_for(source, target, state, "bench", TOPIC)
}

/// `kmirror mirror --until-caught-up` of `topic` as mirror `name`, its state in `state`.
fn batch_command_for(
    source: &KafkaCluster,
    target: &KafkaCluster,
    state: &std::path::Path,
    name: &str,
    topic: &str,
) -> Command {
    // KMIRROR_BENCH_WRAP="perf record -o FILE --": the batch runs under that command (profiles).
    let wrap = std::env::var("KMIRROR_BENCH_WRAP").unwrap_or_default();
    let mut wrap = wrap.split_whitespace();
    let mut command = match wrap.next() {
        Some(program) => {
            let mut command = Command::new(program);
            command.args(wrap).arg(env!("CARGO_BIN_EXE_kmirror"));
            command
        }
        None => Command::new(env!("CARGO_BIN_EXE_kmirror")),
    };
    command
        .args(["mirror", "--source", source.bootstrap(), "--target", target.bootstrap(), "--name", name])
        .args(["--topics", topic, "--until-caught-up", "--state-dir"])
        .arg(state)
        // KMIRROR_BENCH_ARGS="--set target.linger.ms=50": added to every batch run (A/B of a setting).
        .args(std::env::var("KMIRROR_BENCH_ARGS").unwrap_or_default().split_whitespace());
    command
}

/// A second batch over a copy that is complete: how long kmirror takes to see there is nothing
/// to do and exit (goal: under 1 s).
fn nothing_to_do(source: &KafkaCluster, target: &KafkaCluster) -> f64 {
    let state = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let out = batch_command(source, target, state.path())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("kmirror");
    let seconds = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "kmirror failed: {}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("nothing to do"), "the second run copied again: {said}");
    seconds
}

/// End-to-end latency of kmirror at its default settings: records produced at `rate` per second
/// for `seconds` while the mirror runs; a read_committed consumer on the target compares each
/// record's source timestamp with the time it reads it, and a read_committed consumer on the
/// source notes when each was readable there.
fn latency(
    source: &KafkaCluster,
    target: &KafkaCluster,
    partitions: i32,
    rate: usize,
    seconds: u64,
) -> LatencyRun {
    let topic = "latency";
    source.create_topic(topic, partitions, &[]).expect("latency topic");
    let state = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_kmirror"));
    command
        .args(["mirror", "--source", source.bootstrap(), "--target", target.bootstrap(), "--name", "latency"])
        .args(["--topics", topic, "--state-dir"])
        .arg(state.path())
        // KMIRROR_BENCH_ARGS: as for the batch runs, an A/B of a setting.
        .args(std::env::var("KMIRROR_BENCH_ARGS").unwrap_or_default().split_whitespace())
        .stdin(Stdio::null());
    // KMIRROR_BENCH_LATENCY_LOG=FILE: the mirror's debug log (its transactions' timings) there.
    match std::env::var("KMIRROR_BENCH_LATENCY_LOG") {
        Ok(path) => {
            command.env("RUST_LOG", "kmirror=debug").stderr(std::fs::File::create(path).expect("latency log"))
        }
        Err(_) => command.env("RUST_LOG", "warn"),
    };
    let mut child = command.spawn().expect("kmirror");
    let started = Instant::now();
    while target.partition_count(topic).ok().flatten().is_none() {
        assert!(started.elapsed() < Duration::from_secs(30), "the mirror did not create the target topic");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Measured from the first record after one per partition has been copied: the shards have
    // fenced, read their positions and committed once, and the target's transaction coordinator
    // is loaded (on a new cluster that alone takes seconds), so the percentiles are the running
    // mirror's and not its start-up's (measured apart and returned).
    for p in 0..partitions {
        source
            .produce(topic, p, &[kmirror_testcontainers::RecordData::keyed("warm-up", "x")])
            .expect("warm-up");
    }
    // From the last of them written (the harness makes a producer per partition, some 0.6 s
    // each on a fresh source: until 2026-12-06 that time was counted here too, 11 s in all).
    let warm_up = Instant::now();
    while (0..partitions).any(|p| target.audit_partition(topic, p).map_or(true, |a| a.visible.is_empty())) {
        assert!(warm_up.elapsed() < Duration::from_secs(60), "the warm-up records were not copied");
        std::thread::sleep(Duration::from_millis(50));
    }
    let start_up = warm_up.elapsed();
    let (latencies, added) = support::latencies_on_both_sides(
        source,
        target,
        topic,
        partitions,
        rate,
        seconds,
        |_| Offset::Offset(1),
        true,
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    assert_eq!(latencies.len(), rate * seconds as usize, "every produced record read on the target");
    assert_eq!(added.len(), latencies.len(), "every record read on the source too");
    let n = latencies.len();
    let (p50, p99) = support::percentiles(latencies);
    let (added_p50, added_p99) = support::percentiles(added);
    LatencyRun { p50, p99, added_p50, added_p99, records: n, first_record_s: start_up.as_secs_f64() }
}

/// Percentiles in ms: from the source timestamp (end to end), and from the record being
/// readable on the source (what the mirror adds).
struct LatencyRun {
    p50: f64,
    p99: f64,
    added_p50: f64,
    added_p99: f64,
    records: usize,
    first_record_s: f64,
}

impl LatencyRun {
    /// Its figures as one result, at `rate` records/s over `seconds`.
    fn json(&self, rate: usize, seconds: u64) -> serde_json::Value {
        json!({"rate_per_s": rate, "seconds": seconds, "records": self.records, "p50_ms": self.p50, "p99_ms": self.p99, "mirror_p50_ms": self.added_p50, "mirror_p99_ms": self.added_p99, "first_record_s": self.first_record_s})
    }
}

/// The pipe and kmirror with the target, then the source, across a long link.
fn slow_link() {
    let round_trip = Duration::from_millis(env_or("KMIRROR_BENCH_LINK_RTT_MS", 50) as u64);
    let w = Workload {
        name: "long link".into(),
        records: env_or("KMIRROR_BENCH_LINK_RECORDS", 300_000),
        value_bytes: 100,
        partitions: 8,
    };
    let far = || {
        KafkaCluster::start_kafka(&KafkaSpec::behind_slow_link(1, round_trip))
            .expect("cluster behind the link")
    };
    let near = || KafkaCluster::start(Role::Target).expect("cluster");
    let mut table = format!(
        "{} x {} B records, {} partitions; the link adds {} ms to every round trip (half each way) between the clients and the far cluster.\n\n| far side | run | records/s (wall) | records/s (steady) | MB/s (steady) | ratio to the pipe (steady) | ratio (wall) |\n| --- | --- | --- | --- | --- | --- | --- |\n",
        w.records,
        w.value_bytes,
        w.partitions,
        round_trip.as_millis()
    );
    let mut results = Vec::new();
    let bytes = (w.records * (w.value_bytes + 16)) as f64;
    // Extra kmirror rows, e.g. KMIRROR_BENCH_LINK_ARGS='--num-streams 4;--transaction-max-ms 1000'.
    let extra_runs: Vec<Vec<String>> = std::env::var("KMIRROR_BENCH_LINK_ARGS")
        .unwrap_or_default()
        .split(';')
        .filter(|a| !a.trim().is_empty())
        .map(|a| a.split_whitespace().map(String::from).collect())
        .collect();
    let sides = std::env::var("KMIRROR_BENCH_LINK_SIDES").unwrap_or_else(|_| "target,source".into());
    for far_side in sides.split(',').map(str::trim) {
        let source = if far_side == "source" { far() } else { near() };
        eprintln!(
            "slow link: loading {} records into the {} source",
            w.records,
            if far_side == "source" { "far" } else { "near" }
        );
        load(&source, &w);
        let target_for = || if far_side == "target" { far() } else { near() };
        let limit_target = target_for();
        let limit = limit_pipe(&source, &limit_target, &w);
        drop(limit_target);
        let target = target_for();
        let mirror = kmirror_run(&source, &target, &w, &[]);
        drop(target);
        let mut runs =
            vec![("limit (plain pipe)".to_string(), limit), ("kmirror default".to_string(), mirror)];
        for args in &extra_runs {
            let target = target_for();
            let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
            runs.push((format!("kmirror {}", args.join(" ")), kmirror_run(&source, &target, &w, &args_ref)));
        }
        let limit = &runs[0].1;
        let (limit_wall, limit_steady) = limit.rates();
        for (label, m) in &runs {
            assert_eq!(m.target_records, w.loaded(), "{label} copied everything");
            let (wall, steady) = m.rates();
            table.push_str(&format!(
                "| {far_side} | {label} | {wall:.0} | {steady:.0} | {:.1} | {:.2} | {:.2} |\n",
                bytes / m.steady_seconds / 1e6,
                steady / limit_steady,
                wall / limit_wall
            ));
            results.push(json!({
                "far_side": far_side, "round_trip_ms": round_trip.as_millis() as u64, "run": label,
                "records": w.records, "value_bytes": w.value_bytes, "partitions": w.partitions,
                "seconds": m.seconds, "steady_seconds": m.steady_seconds,
                "records_per_s": wall, "steady_records_per_s": steady,
                "ratio_to_limit_steady": steady / limit_steady, "ratio_to_limit_wall": wall / limit_wall,
            }));
            println!("{table}");
        }
    }
    support::write_json("mirror-slow-link.json", &results);
    support::write_table("slow-link", &table);
}

/// Gives a fresh cluster what any cluster that has served clients has: its transaction log and
/// group offsets topics, which Kafka creates (and its coordinators load) on first use.
pub(crate) fn warm_up(cluster: &KafkaCluster) {
    cluster.create_topic("warm-up", 1, &[]).expect("warm-up topic");
    let records = [kmirror_testcontainers::RecordData::keyed("k", "v")];
    cluster.produce_transaction("warm-up", 0, &records, true).expect("a first transaction");
    let consumer: BaseConsumer =
        cluster.client_config().set("group.id", "warm-up").create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("warm-up", 0, Offset::Offset(1)).expect("tpl");
    consumer.commit(&tpl, rdkafka::consumer::CommitMode::Sync).expect("a first group commit");
}

/// One measured batch run: its phases, wall time and the time its own steady rate needs.
struct BatchSample {
    phases: Vec<phases::Phase>,
    wall: f64,
    steady_seconds: f64,
    /// Records readable once every partition had some (left out of the rate).
    at_first: usize,
}

/// Runs `kmirror mirror --until-caught-up` and splits its wall time into phases; the workload's
/// records are expected on the target, from `from` in each partition.
fn measured_batch(
    source: &KafkaCluster,
    target: &KafkaCluster,
    w: &Workload,
    state: &std::path::Path,
    from: &[Offset],
    keep_log: Option<String>,
) -> BatchSample {
    let log_path = state.join("kmirror.log");
    let log_file = std::fs::File::create(&log_path).expect("log file");
    let landing = Landing::watch_from(target, from, w.loaded());
    let spawned = phases::epoch_seconds(SystemTime::now());
    let started = Instant::now();
    let status = batch_command(source, target, &state.join("state"))
        .env(
            "RUST_LOG",
            std::env::var("KMIRROR_BENCH_PHASE_RUST_LOG").unwrap_or_else(|_| "warn,kmirror=info".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .status()
        .expect("kmirror");
    let wall = started.elapsed().as_secs_f64();
    assert!(status.success(), "kmirror failed: {status}");
    let landed = landing.finish_within(Duration::from_secs(10));
    let log = std::fs::read_to_string(&log_path).expect("read log");
    if let Some(keep) = keep_log {
        std::fs::write(keep, &log).expect("keep the log");
    }
    BatchSample {
        phases: phases::phases(&log, spawned, started, landed.first_at(), landed.last, spawned + wall),
        wall,
        steady_seconds: steady(&landed, wall),
        at_first: landed.first.map_or(0, |(_, n)| n),
    }
}

/// KMIRROR_BENCH_PHASE_SERVED=1: the target has served another mirror before (its JVM has run
/// the paths a copy takes), as a long-lived cluster has: a batch of another topic under another
/// name, copied and done before the measured runs.
fn serve_a_mirror(source: &KafkaCluster, target: &KafkaCluster, w: &Workload) {
    let topic = "served-before";
    source.create_topic(topic, w.partitions, &[]).expect("served-before topic");
    support::load_into(source, topic, w);
    let state = tempfile::tempdir().expect("tempdir");
    let out = batch_command_for(source, target, state.path(), "served-before", topic)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("kmirror");
    assert!(out.status.success(), "the earlier mirror failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Where the target's partitions of the bench topic end now.
fn target_ends(target: &KafkaCluster, partitions: i32) -> Vec<Offset> {
    let consumer: BaseConsumer = target.client_config().create().expect("watermark client");
    (0..partitions)
        .map(|p| {
            let (_, high) = consumer.fetch_watermarks(TOPIC, p, Duration::from_secs(10)).expect("target end");
            Offset::Offset(high)
        })
        .collect()
}

/// A batch run's wall time phase by phase (see [`phases::phases`]), a few samples, each on a
/// fresh source and target: the first run into a target without the mirror's topics, then (after
/// a run with nothing to do) as many records more, copied by a second run into the topics the
/// first made, as a scheduled migration's next run would.
fn phase_profile() {
    let w = Workload {
        name: "batch".into(),
        records: env_or("KMIRROR_BENCH_PHASE_RECORDS", 300_000),
        value_bytes: 100,
        partitions: 8,
    };
    let reference = Workload {
        name: "reference".into(),
        records: env_or("KMIRROR_BENCH_PHASE_REFERENCE_RECORDS", 1_000_000),
        ..w.clone()
    };
    let samples = env_or("KMIRROR_BENCH_PHASE_SAMPLES", 3);
    let cold = std::env::var("KMIRROR_BENCH_PHASE_COLD").is_ok_and(|v| v == "1");
    let served = std::env::var("KMIRROR_BENCH_PHASE_SERVED").is_ok_and(|v| v == "1");
    let mut results = Vec::new();
    let mut brokers = String::new();
    let mut table =
        String::from("| sample | run | phase | seconds | share of wall |\n| --- | --- | --- | --- | --- |\n");
    let mut summary = String::new();
    for sample in 1..=samples {
        let source = KafkaCluster::start(Role::Source).expect("source");
        brokers = source.describe();
        load(&source, &w);
        let target = KafkaCluster::start(Role::Target).expect("target");
        if !cold {
            warm_up(&target);
        }
        if served {
            serve_a_mirror(&source, &target, &w);
        }
        let state = tempfile::tempdir().expect("tempdir");
        let keep = |run: &str| {
            std::env::var("KMIRROR_BENCH_PHASE_KEEP_LOG").ok().map(|keep| format!("{keep}.{sample}.{run}"))
        };
        let from_start = vec![Offset::Beginning; w.partitions as usize];
        let first = measured_batch(&source, &target, &w, state.path(), &from_start, keep("first"));
        let idle = nothing_to_do(&source, &target);
        let ends = target_ends(&target, w.partitions);
        load_more(&source, &w);
        let second = measured_batch(&source, &target, &w, state.path(), &ends, keep("second"));
        // The steady rate the runs are held against: kmirror's own over a long backlog, on
        // these clusters, counted as in the mirror table. A run's own rate after its first
        // records is no measure of it: at the default sizes a 300 000-record run makes two or
        // three transactions per shard, and the few left after the first land at once.
        let ends = target_ends(&target, w.partitions);
        load_more(&source, &reference);
        let long = measured_batch(&source, &target, &reference, state.path(), &ends, keep("reference"));
        let steady_rate = reference.loaded() as f64 / long.steady_seconds;
        summary.push_str(&format!(
            "- sample {sample}: kmirror's steady rate over a backlog of {} records: {steady_rate:.0} records/s.\n",
            reference.loaded()
        ));
        results.push(json!({"sample": sample, "run": "reference", "records": reference.loaded(), "wall_seconds": long.wall, "steady_rate": steady_rate}));
        for (run, b) in [("first", &first), ("second", &second)] {
            for phase in &b.phases {
                table.push_str(&format!(
                    "| {sample} | {run} | {} | {:.2} | {:.2} |\n",
                    phase.name,
                    phase.seconds,
                    phase.seconds / b.wall
                ));
            }
            let steady_seconds = w.loaded() as f64 / steady_rate;
            summary.push_str(&format!(
                "- sample {sample}, {run} run: wall {:.2} s for {} records ({} readable once every partition had some); at the steady rate the copy needs {steady_seconds:.2} s: wall / steady time {:.2} (goal: at most 1.5).\n",
                b.wall,
                w.loaded(),
                b.at_first,
                b.wall / steady_seconds
            ));
            results.push(json!({
                "sample": sample, "run": run, "records": w.loaded(), "wall_seconds": b.wall, "steady_seconds": steady_seconds,
                "wall_over_steady": b.wall / steady_seconds, "readable_at_first_sighting": b.at_first,
                "own_rate_after_first_sighting": w.loaded() as f64 / b.steady_seconds,
                "phases": b.phases.iter().map(|p| json!({"phase": p.name, "seconds": p.seconds})).collect::<Vec<_>>(),
            }));
        }
        summary.push_str(&format!(
            "- sample {sample}: a run with nothing to do (after the first) exits after {idle:.2} s (goal: under 1 s).\n"
        ));
        results.push(json!({"sample": sample, "run": "nothing to do", "seconds": idle}));
    }
    let table = format!(
        "{} x {} B records, {} partitions, kmirror at its defaults (`--until-caught-up`); per sample a fresh source and target{}: the first run makes the mirror's topics, the second copies as many records more into them, a third {} more, whose steady rate (from the moment every partition has records readable) is the one both are held against; {}.\n\n{table}\n{summary}",
        w.records,
        w.value_bytes,
        w.partitions,
        if cold { " (cold: its first transaction and group commit are kmirror's)" } else { ", the target having had a transaction and a group commit before (its internal topics exist)" },
        reference.loaded(),
        brokers
    );
    println!("{table}");
    support::write_json("mirror-phases.json", &results);
    support::write_table("phases", &table);
}

/// `KMIRROR_BENCH_ONLY=latency`: the latency run alone, `KMIRROR_BENCH_LATENCY_SAMPLES` times
/// (default 3), each on fresh clusters: one sample's p99 rests on a few transactions out of
/// some 160, and these machines pause now and then.
fn latency_samples() {
    let (rate, seconds) =
        (env_or("KMIRROR_BENCH_LATENCY_RATE", 20_000), env_or("KMIRROR_BENCH_LATENCY_SECONDS", 10) as u64);
    let samples = env_or("KMIRROR_BENCH_LATENCY_SAMPLES", 3);
    let mut results = Vec::new();
    let mut brokers = String::new();
    let mut table = String::from(
        "| sample | source timestamp to readable on the target, p50 / p99 ms | readable on the source to readable on the target (the mirror's share), p50 / p99 ms | a first record per partition, written once the mirror runs on a new target, copied within, s |\n| --- | --- | --- | --- |\n",
    );
    let mut met = 0;
    for sample in 1..=samples {
        let source = KafkaCluster::start(Role::Source).expect("source");
        let target = KafkaCluster::start(Role::Target).expect("target");
        brokers = source.describe();
        let l = latency(&source, &target, 8, rate, seconds);
        met += usize::from(l.added_p99 < 500.0);
        table.push_str(&format!(
            "| {sample} | {:.0} / {:.0} | {:.0} / {:.0} | {:.1} |\n",
            l.p50, l.p99, l.added_p50, l.added_p99, l.first_record_s
        ));
        let mut result = l.json(rate, seconds);
        result["sample"] = json!(sample);
        results.push(result);
    }
    let table = format!(
        "kmirror at its defaults (transactions of at most 250 ms), 8 partitions, {rate} records/s of 100 B for {seconds} s, measured once the mirror has copied a first record; fresh clusters per sample; {brokers}.\n\n{table}\nThe mirror's share p99 under 500 ms (goal) in {met} of {samples} samples.\n"
    );
    println!("{table}");
    support::write_json("mirror-latency.json", &results);
    support::write_table("latency", &table);
}

fn main() {
    match std::env::var("KMIRROR_BENCH_ONLY").as_deref() {
        Ok("slow-link") => return slow_link(),
        Ok("phases") => return phase_profile(),
        Ok("topics") => return many_topics::run(),
        Ok("groups") => return many_groups::run(),
        Ok("latency") => return latency_samples(),
        _ => {}
    }
    let guard: Option<f64> = std::env::var("KMIRROR_BENCH_GUARD").ok().and_then(|v| v.parse().ok());
    let mut workloads = vec![Workload {
        name: "small".into(),
        records: env_or("KMIRROR_BENCH_RECORDS", 1_000_000),
        value_bytes: env_or("KMIRROR_BENCH_VALUE_BYTES", 100),
        partitions: env_or("KMIRROR_BENCH_PARTITIONS", 8) as i32,
    }];
    if std::env::var("KMIRROR_BENCH_LARGE").is_ok_and(|v| v == "1") {
        workloads.push(Workload { name: "large".into(), records: 200_000, value_bytes: 1024, partitions: 8 });
    }
    let scripts = tempfile::tempdir().expect("tempdir");
    let noop = scripts.path().join("noop.rhai");
    std::fs::write(&noop, "fn transform(record) { record }\n").expect("write script");
    let noop_spec = format!("script:{}", noop.display());
    let mut configs: Vec<(&str, Vec<&str>)> = vec![("kmirror default", vec![])];
    if guard.is_none() {
        configs.extend([
            ("kmirror no-op script transform", vec!["--transform", noop_spec.as_str()]),
            ("kmirror filter transform", vec!["--transform", "filter:drop:key=never"]),
            ("kmirror --serial-commits", vec!["--serial-commits"]),
            ("kmirror txn 1 000", vec!["--transaction-max-records", "1000", "--transaction-max-ms", "60000"]),
            (
                "kmirror txn 1 000 --serial-commits",
                vec![
                    "--transaction-max-records",
                    "1000",
                    "--transaction-max-ms",
                    "60000",
                    "--serial-commits",
                ],
            ),
            (
                "kmirror txn 10 000",
                vec!["--transaction-max-records", "10000", "--transaction-max-ms", "60000"],
            ),
            (
                "kmirror txn 100 000",
                vec!["--transaction-max-records", "100000", "--transaction-max-ms", "60000"],
            ),
        ]);
    }
    // KMIRROR_BENCH_RUNS='default,txn 1 000': only the runs whose label holds one of these.
    if let Ok(wanted) = std::env::var("KMIRROR_BENCH_RUNS") {
        let wanted: Vec<&str> = wanted.split(',').map(str::trim).filter(|w| !w.is_empty()).collect();
        configs.retain(|(label, _)| wanted.iter().any(|w| label.contains(w)));
    }
    let mut results = Vec::new();
    let mut table = String::from(
        "| workload | run | records/s (wall) | records/s (steady) | MB/s (steady) | ratio to limit (steady) | ratio (wall) | peak RSS MB | CPU s per M records |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    let mut guard_failures = Vec::new();
    for w in &workloads {
        let source = KafkaCluster::start(Role::Source).expect("source");
        if !table.starts_with("Brokers") {
            table = format!("Brokers: {}, a fresh target for each run.\n\n{table}", source.describe());
        }
        eprintln!(
            "loading {} records of {} bytes into {} partitions...",
            w.records, w.value_bytes, w.partitions
        );
        load(&source, w);
        let bytes = (w.records * (w.value_bytes + 16)) as f64;
        let mut runs: Vec<(String, Measure)> = Vec::new();
        let limit_target = KafkaCluster::start(Role::Target).expect("target");
        runs.push(("limit (plain pipe)".into(), limit_pipe(&source, &limit_target, w)));
        drop(limit_target);
        // Beside kmirror's 1 000-record transactions, what the textbook transactional copy makes
        // of that size on the same brokers, with as many transactions under way as kmirror has
        // shards by default (KMIRROR_BENCH_TXN_PIPE_THREADS).
        if configs.iter().any(|(label, _)| *label == "kmirror txn 1 000") {
            let threads = env_or("KMIRROR_BENCH_TXN_PIPE_THREADS", 4);
            let target = KafkaCluster::start(Role::Target).expect("target");
            let m = transactional_pipe(&source, &target, w, 1000, threads);
            runs.push((format!("transactional pipe, txn 1 000 ({threads} threads)"), m));
        }
        let mut idle_seconds = None;
        for (label, extra) in &configs {
            let target = KafkaCluster::start(Role::Target).expect("target");
            runs.push((label.to_string(), kmirror_run(&source, &target, w, extra)));
            if idle_seconds.is_none() {
                idle_seconds = Some(nothing_to_do(&source, &target));
            }
        }
        let limit = &runs[0].1;
        let (limit_wall, limit_steady) = limit.rates();
        for (label, m) in &runs {
            assert_eq!(m.target_records, w.loaded(), "{label} copied everything");
            let (wall, steady) = m.rates();
            let ratio = steady / limit_steady;
            if let (Some(min), true) = (guard, label.as_str() == "kmirror default") {
                if ratio < min {
                    guard_failures
                        .push(format!("{label}: {ratio:.2} of the limit's steady rate (minimum {min})"));
                }
            }
            results.push(json!({
                "workload": w.name, "records": w.records, "value_bytes": w.value_bytes, "partitions": w.partitions,
                "run": label, "seconds": m.seconds, "steady_seconds": m.steady_seconds,
                "records_per_s": wall, "steady_records_per_s": steady, "mb_per_s_steady": bytes / m.steady_seconds / 1e6,
                "ratio_to_limit_steady": ratio, "ratio_to_limit_wall": wall / limit_wall,
                "peak_rss_bytes": m.peak_rss_bytes,
                "cpu_seconds_per_million_records": m.cpu_seconds / m.target_records as f64 * 1e6,
            }));
            table.push_str(&format!(
                "| {} ({} x {} B) | {} | {:.0} | {:.0} | {:.1} | {:.2} | {:.2} | {} | {:.1} |\n",
                w.name,
                w.records,
                w.value_bytes,
                label,
                wall,
                steady,
                bytes / m.steady_seconds / 1e6,
                ratio,
                wall / limit_wall,
                m.peak_rss_bytes.map(|b| format!("{:.0}", b as f64 / 1e6)).unwrap_or_else(|| "-".into()),
                m.cpu_seconds / m.target_records as f64 * 1e6,
            ));
        }
        if let Some(idle) = idle_seconds {
            table.push_str(&format!(
                "\nA second `--until-caught-up` run over the complete copy ({}): nothing to do, exit after {idle:.2} s (goal: under 1 s).\n\n",
                w.name
            ));
            results.push(json!({"workload": w.name, "run": "nothing to do", "seconds": idle}));
        }
    }
    println!("{table}");
    if guard.is_some() {
        assert!(guard_failures.is_empty(), "regression guard: {}", guard_failures.join("; "));
        println!("regression guard passed");
        return;
    }
    let (rate, seconds) =
        (env_or("KMIRROR_BENCH_LATENCY_RATE", 20_000), env_or("KMIRROR_BENCH_LATENCY_SECONDS", 10) as u64);
    let source = KafkaCluster::start(Role::Source).expect("source");
    let target = KafkaCluster::start(Role::Target).expect("target");
    let l = latency(&source, &target, 8, rate, seconds);
    table.push_str(&format!(
        "\nLatency, kmirror default (transactions of at most 250 ms), once the mirror has copied a first record: {} records at {rate}/s over {seconds} s. From the source timestamp to readable on the target: p50 {:.0} ms, p99 {:.0} ms. From readable on the source to readable on the target (the mirror's share): p50 {:.0} ms, p99 {:.0} ms (goal: p99 under 500 ms). A first record per partition, written once the mirror runs on a new target, copied within {:.1} s.\n",
        l.records, l.p50, l.p99, l.added_p50, l.added_p99, l.first_record_s
    ));
    let mut result = l.json(rate, seconds);
    result["run"] = json!("latency kmirror default");
    results.push(result);
    println!("{table}");
    support::write_json("mirror.json", &results);
    support::write_table("mirror-bench", &table);
}
