//! What a first run's plan costs per mirrored topic: `kmirror mirror --until-caught-up` of one
//! topic and of many (each with one partition and a few records), each to a fresh target, timed
//! from the process start to the log's "mirror starting" (every target topic and kmirror's own
//! topics made). The one-topic run is the baseline, measured in the same run.
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

use kmirror_testcontainers::{KafkaCluster, RecordData, Role};
use serde_json::json;

use crate::phases::{epoch_seconds, first_time_of};
use crate::support::{self, env_or};

const PREFIX: &str = "many-";
const RECORDS_PER_TOPIC: usize = 10;

/// One run: seconds from the process start to the plan made, and to the exit.
struct PlanTimes {
    plan: f64,
    wall: f64,
}

fn mirror(source: &KafkaCluster, topics: &str, expected: usize) -> PlanTimes {
    let target = KafkaCluster::start(Role::Target).expect("target");
    crate::warm_up(&target);
    let state = tempfile::tempdir().expect("tempdir");
    let log_path = state.path().join("kmirror.log");
    let spawned = epoch_seconds(SystemTime::now());
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_kmirror"))
        .args(["mirror", "--source", source.bootstrap(), "--target", target.bootstrap(), "--name", "plan"])
        .args(["--topics", topics, "--until-caught-up", "--progress", "off", "--state-dir"])
        .arg(state.path().join("state"))
        .args(std::env::var("KMIRROR_BENCH_ARGS").unwrap_or_default().split_whitespace())
        .env("RUST_LOG", std::env::var("KMIRROR_BENCH_TOPICS_RUST_LOG").unwrap_or("warn,kmirror=info".into()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).expect("log file"))
        .status()
        .expect("kmirror");
    let wall = started.elapsed().as_secs_f64();
    let log = std::fs::read_to_string(&log_path).expect("read log");
    if let Ok(kept) = std::env::var("KMIRROR_BENCH_TOPICS_KEEP_LOG") {
        std::fs::write(format!("{kept}.{expected}"), &log).expect("keep the log");
    }
    assert!(status.success(), "kmirror failed: {status}\n{log}");
    let planned = first_time_of(&log, "mirror starting").expect("the log says when the plan was made");
    // What the run made must be there: every topic, each with every record, committed.
    let made = (0..expected)
        .filter(|i| {
            target
                .audit_partition(&format!("{PREFIX}{i:03}"), 0)
                .is_ok_and(|report| report.visible.len() == RECORDS_PER_TOPIC)
        })
        .count();
    assert_eq!(made, expected, "topics copied whole on the target");
    PlanTimes { plan: planned - spawned, wall }
}

pub(crate) fn run() {
    let topics = env_or("KMIRROR_BENCH_TOPICS", 40);
    let samples = env_or("KMIRROR_BENCH_TOPIC_SAMPLES", 2);
    let source = KafkaCluster::start(Role::Source).expect("source");
    let records: Vec<RecordData> =
        (0..RECORDS_PER_TOPIC).map(|i| RecordData::keyed(format!("k{i}"), "value")).collect();
    for i in 0..topics {
        let topic = format!("{PREFIX}{i:03}");
        source.create_topic(&topic, 1, &[]).expect("source topic");
        source.produce(&topic, 0, &records).expect("load");
    }
    let mut table = format!(
        "A first run (`--until-caught-up`, fresh target) of 1 topic and of {topics} topics, each of 1 partition and {RECORDS_PER_TOPIC} records; {}.\n\n| sample | topics | process start to plan made (s) | wall (s) |\n| --- | --- | --- | --- |\n",
        source.describe()
    );
    let mut results = Vec::new();
    let mut summary = String::new();
    for sample in 1..=samples {
        let one = mirror(&source, &format!("{PREFIX}000"), 1);
        let many = mirror(&source, &format!("{PREFIX}.*"), topics);
        for (count, times) in [(1, &one), (topics, &many)] {
            table.push_str(&format!("| {sample} | {count} | {:.2} | {:.2} |\n", times.plan, times.wall));
        }
        let per_topic_ms = (many.plan - one.plan) * 1000.0 / (topics - 1) as f64;
        summary.push_str(&format!(
            "- sample {sample}: the plan of {topics} topics took {:.2}x that of one; {per_topic_ms:.1} ms per topic more.\n",
            many.plan / one.plan
        ));
        results.push(json!({
            "sample": sample, "topics": topics,
            "plan_one_seconds": one.plan, "wall_one_seconds": one.wall,
            "plan_many_seconds": many.plan, "wall_many_seconds": many.wall,
            "plan_ratio": many.plan / one.plan, "extra_ms_per_topic": per_topic_ms,
        }));
    }
    table.push('\n');
    table.push_str(&summary);
    println!("{table}");
    support::write_json("mirror-topics.json", &results);
    support::write_table("topics", &table);
}
