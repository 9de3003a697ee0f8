//! Scale-out: the same backlog mirrored by 1, 2 and 3 coordinated processes (`--coordinate`,
//! 8 shards) on the same brokers, each time to a fresh target. The rate is measured from the
//! first record landed on the target to the last (steady), so group joins are left out; CPU is
//! the processes' user + system time. On one 2-core host the gain is bounded by the cores.
//!
//! `cargo bench --bench scale` (KMIRROR_BENCH_RECORDS, default 400 000 records of 100 bytes over
//! 8 partitions). Results: bench-results/scale.json and the table between the markers in
//! BENCHMARKS.md.
mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kmirror_testcontainers::{KafkaCluster, Role};
use nix::sys::resource::UsageWho;
use serde_json::json;
use support::{cpu_seconds, env_or, load, steady, Landing, Workload, TOPIC};

fn start(source: &KafkaCluster, target: &KafkaCluster, state: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_kmirror"))
        .args(["mirror", "--source", source.bootstrap(), "--target", target.bootstrap(), "--name", "scale"])
        .args(["--topics", TOPIC, "--coordinate", "--shards", "8", "--num-streams", "2", "--state-dir"])
        .arg(state)
        .args(["--set", "target.session.timeout.ms=6000"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("kmirror")
}

fn main() {
    let w = Workload {
        name: "scale".into(),
        records: env_or("KMIRROR_BENCH_RECORDS", 400_000),
        value_bytes: 100,
        partitions: 8,
    };
    let source = KafkaCluster::start(Role::Source).expect("source");
    eprintln!("loading {} records...", w.records);
    load(&source, &w);
    let expected = w.records / w.partitions as usize * w.partitions as usize;
    let mut table = String::from(
        "| processes | records/s (steady) | seconds (steady) | CPU s per M records |\n| --- | --- | --- | --- |\n",
    );
    let mut results = Vec::new();
    for processes in 1..=3 {
        let target = KafkaCluster::start(Role::Target).expect("target");
        let state = tempfile::tempdir().expect("tempdir");
        let landing = Landing::watch(&target, w.partitions, expected);
        let cpu_before = cpu_seconds(UsageWho::RUSAGE_CHILDREN);
        let started = Instant::now();
        let mut children: Vec<Child> =
            (0..processes).map(|i| start(&source, &target, &state.path().join(format!("p{i}")))).collect();
        let landed = loop {
            // The watcher stops by itself once every record has landed.
            std::thread::sleep(Duration::from_millis(200));
            if started.elapsed() > Duration::from_secs(300) {
                panic!("{processes} processes did not finish");
            }
            if landing.done() {
                break landing.finish();
            }
        };
        for child in &children {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        for child in &mut children {
            let _ = child.wait();
        }
        let cpu = cpu_seconds(UsageWho::RUSAGE_CHILDREN) - cpu_before;
        let seconds = steady(&landed, started.elapsed().as_secs_f64());
        let rate = expected as f64 / seconds;
        table.push_str(&format!(
            "| {processes} | {rate:.0} | {seconds:.2} | {:.1} |\n",
            cpu / expected as f64 * 1e6
        ));
        results.push(json!({"processes": processes, "records": expected, "steady_seconds": seconds, "records_per_s": rate, "cpu_seconds_per_million_records": cpu / expected as f64 * 1e6}));
    }
    println!("{table}");
    support::write_json("scale.json", &results);
    support::write_table("scale-bench", &table);
}
