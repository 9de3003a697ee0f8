//! The mirror against the limit: what the brokers and librdkafka allow, in one run.
//!
//! `cargo bench --bench mirror` starts its own clusters, loads the source, then copies it:
//! - limit: a plain consume -> produce pipe in this process (at-least-once, no transactions,
//!   read_committed, the same partitions and producer batching as the mirror);
//! - kmirror exactly-once (`kmirror mirror --until-caught-up`) at the default settings and at
//!   transaction sizes of 1 000, 10 000 and 100 000 records.
//!
//! Each copy goes to a fresh target cluster. Results: bench-results/mirror.json, and the table
//! between the markers in BENCHMARKS.md.
//!
//! Sizes: KMIRROR_BENCH_RECORDS (default 1 000 000), KMIRROR_BENCH_VALUE_BYTES (100),
//! KMIRROR_BENCH_PARTITIONS (8); KMIRROR_BENCH_LARGE=1 adds 200 000 records of 1 KiB.
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kmirror_testcontainers::{KafkaCluster, RecordData};
use nix::sys::resource::{getrusage, UsageWho};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

const TOPIC: &str = "bench";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Workload {
    name: String,
    records: usize,
    value_bytes: usize,
    partitions: i32,
}

#[derive(Debug)]
struct Measure {
    seconds: f64,
    cpu_seconds: f64,
    peak_rss_bytes: Option<u64>,
    target_records: usize,
}

fn load(source: &KafkaCluster, w: &Workload) {
    source.create_topic(TOPIC, w.partitions, &[]).expect("source topic");
    let per_partition = w.records / w.partitions as usize;
    let value = vec![b'x'; w.value_bytes];
    for p in 0..w.partitions {
        let mut batch = Vec::with_capacity(10_000);
        for i in 0..per_partition {
            batch.push(RecordData {
                key: Some(format!("key-{p}-{i}").into_bytes()),
                value: Some(value.clone()),
                headers: vec![
                    ("trace".into(), Some(b"0123456789abcdef".to_vec())),
                    ("source".into(), Some(b"bench".to_vec())),
                ],
                timestamp: None,
            });
            if batch.len() == 10_000 {
                source.produce(TOPIC, p, &batch).expect("load");
                batch.clear();
            }
        }
        source.produce(TOPIC, p, &batch).expect("load");
    }
}

fn cpu_seconds(who: UsageWho) -> f64 {
    getrusage(who)
        .map(|u| {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or(0.0)
}

/// The limit: consume read_committed and produce each record to the same partition, no
/// transactions, flushing at the end; as many threads as kmirror has workers by default (the
/// cores), each with its own consumer and producer over its share of the partitions.
fn limit_pipe(source: &KafkaCluster, target: &KafkaCluster, w: &Workload) -> Measure {
    target.create_topic(TOPIC, w.partitions, &[]).expect("target topic");
    let threads =
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(w.partitions as usize);
    let per_partition = w.records / w.partitions as usize;
    let cpu_before = cpu_seconds(UsageWho::RUSAGE_SELF);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let partitions: Vec<i32> = (0..w.partitions).filter(|p| *p as usize % threads == t).collect();
            let consumer: BaseConsumer = source
                .client_config()
                .set("group.id", "bench-limit")
                .set("enable.auto.commit", "false")
                .set("isolation.level", "read_committed")
                .set("fetch.wait.max.ms", "100")
                .create()
                .expect("consumer");
            let producer: BaseProducer =
                target.client_config().set("enable.idempotence", "true").create().expect("producer");
            std::thread::spawn(move || {
                pipe(consumer, producer, &partitions, per_partition * partitions.len())
            })
        })
        .collect();
    let copied = handles.into_iter().map(|h| h.join().expect("pipe thread")).sum();
    Measure {
        seconds: started.elapsed().as_secs_f64(),
        cpu_seconds: cpu_seconds(UsageWho::RUSAGE_SELF) - cpu_before,
        peak_rss_bytes: None,
        target_records: copied,
    }
}

fn pipe(consumer: BaseConsumer, producer: BaseProducer, partitions: &[i32], total: usize) -> usize {
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        tpl.add_partition_offset(TOPIC, p, Offset::Beginning).expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut copied = 0;
    while copied < total {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
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
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    copied
}

fn vm_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

fn kmirror_run(source: &KafkaCluster, target: &KafkaCluster, w: &Workload, extra: &[&str]) -> Measure {
    let state = tempfile::tempdir().expect("tempdir");
    let cpu_before = cpu_seconds(UsageWho::RUSAGE_CHILDREN);
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kmirror"))
        .args(["mirror", "--source", source.bootstrap(), "--target", target.bootstrap(), "--name", "bench"])
        .args(["--topics", TOPIC, "--until-caught-up", "--state-dir"])
        .arg(state.path())
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("kmirror");
    let mut peak = 0;
    while child.try_wait().expect("wait").is_none() {
        peak = peak.max(vm_rss(child.id()).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(50));
    }
    let seconds = started.elapsed().as_secs_f64();
    let status = child.wait().expect("wait");
    assert!(status.success(), "kmirror failed: {status}");
    let target_records = (0..w.partitions)
        .map(|p| target.audit_partition(TOPIC, p).map(|a| a.visible.len()).unwrap_or(0))
        .sum();
    Measure {
        seconds,
        cpu_seconds: cpu_seconds(UsageWho::RUSAGE_CHILDREN) - cpu_before,
        peak_rss_bytes: Some(peak),
        target_records,
    }
}

fn main() {
    let mut workloads = vec![Workload {
        name: "small".into(),
        records: env_or("KMIRROR_BENCH_RECORDS", 1_000_000),
        value_bytes: env_or("KMIRROR_BENCH_VALUE_BYTES", 100),
        partitions: env_or("KMIRROR_BENCH_PARTITIONS", 8) as i32,
    }];
    if std::env::var("KMIRROR_BENCH_LARGE").is_ok_and(|v| v == "1") {
        workloads.push(Workload { name: "large".into(), records: 200_000, value_bytes: 1024, partitions: 8 });
    }
    let mut results = Vec::new();
    let mut table = String::from(
        "| workload | run | records/s | MB/s | ratio to limit | peak RSS MB | CPU s per M records |\n| --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for w in &workloads {
        let source = KafkaCluster::start_tansu().expect("source");
        eprintln!(
            "loading {} records of {} bytes into {} partitions...",
            w.records, w.value_bytes, w.partitions
        );
        load(&source, w);
        let bytes = (w.records * (w.value_bytes + 16)) as f64;
        let mut runs: Vec<(String, Measure)> = Vec::new();
        let limit_target = KafkaCluster::start_tansu().expect("target");
        runs.push(("limit (plain pipe)".into(), limit_pipe(&source, &limit_target, w)));
        drop(limit_target);
        for (label, extra) in [
            ("kmirror default", vec![]),
            ("kmirror txn 1 000", vec!["--transaction-max-records", "1000", "--transaction-max-ms", "60000"]),
            (
                "kmirror txn 10 000",
                vec!["--transaction-max-records", "10000", "--transaction-max-ms", "60000"],
            ),
            (
                "kmirror txn 100 000",
                vec!["--transaction-max-records", "100000", "--transaction-max-ms", "60000"],
            ),
        ] {
            let target = KafkaCluster::start_tansu().expect("target");
            runs.push((label.into(), kmirror_run(&source, &target, w, &extra)));
        }
        let limit_rate = runs[0].1.target_records as f64 / runs[0].1.seconds;
        for (label, m) in &runs {
            assert_eq!(
                m.target_records,
                w.records / w.partitions as usize * w.partitions as usize,
                "{label} copied everything"
            );
            let rate = m.target_records as f64 / m.seconds;
            let row = json!({
                "workload": w.name, "records": w.records, "value_bytes": w.value_bytes, "partitions": w.partitions,
                "run": label, "seconds": m.seconds, "records_per_s": rate, "mb_per_s": bytes / m.seconds / 1e6,
                "ratio_to_limit": rate / limit_rate, "peak_rss_bytes": m.peak_rss_bytes,
                "cpu_seconds_per_million_records": m.cpu_seconds / m.target_records as f64 * 1e6,
            });
            table.push_str(&format!(
                "| {} ({} x {} B) | {} | {:.0} | {:.1} | {:.2} | {} | {:.1} |\n",
                w.name,
                w.records,
                w.value_bytes,
                label,
                rate,
                bytes / m.seconds / 1e6,
                rate / limit_rate,
                m.peak_rss_bytes.map(|b| format!("{:.0}", b as f64 / 1e6)).unwrap_or_else(|| "-".into()),
                m.cpu_seconds / m.target_records as f64 * 1e6,
            ));
            results.push(row);
        }
    }
    println!("{table}");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let _ = std::fs::create_dir_all(root.join("bench-results"));
    std::fs::write(
        root.join("bench-results/mirror.json"),
        serde_json::to_string_pretty(&results).unwrap_or_default() + "\n",
    )
    .expect("write json");
    let doc = root.join("BENCHMARKS.md");
    if let Ok(text) = std::fs::read_to_string(&doc) {
        let (start, end) = ("<!-- mirror-bench:start -->", "<!-- mirror-bench:end -->");
        if let (Some(a), Some(b)) = (text.find(start), text.find(end)) {
            let updated = format!("{}{start}\n{table}{}", &text[..a], &text[b..]);
            std::fs::write(&doc, updated).expect("write BENCHMARKS.md");
        }
    }
}
