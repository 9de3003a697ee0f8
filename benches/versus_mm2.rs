//! kmirror against MirrorMaker 2, on the same brokers, the same records, in the same run.
//!
//! `cargo bench --bench versus_mm2` installs MirrorMaker 2 (MM2) from Maven Central
//! (`scripts/setup-mm2.sh`: `org.apache.kafka:connect-mirror`, the broker's version), starts one
//! source cluster, loads it, and copies it to a fresh target cluster once per run:
//! - kmirror at its defaults (`mirror --until-caught-up --groups ...`);
//! - MM2 in dedicated mode, exactly-once (KIP-618) and at-least-once, with the settings written
//!   to `bench-results/versus_mm2.properties` (IdentityReplicationPolicy, checkpoints and group
//!   offset sync every 5 s, tasks.max = the partition count);
//! - MM2 exactly-once with `offset.lag.max=0` (an offset sync for every record), for translation;
//! - each tool again with 10 SIGKILLs of the copier, at the same points of progress for both
//!   (after 1/11, 2/11, ... of the records landed), restarted at once.
//!
//! Every copy is audited before any figure counts (the harness's transaction-aware read of both
//! logs): records missing or duplicated, and whether the copy is identical in order. A consumer
//! group is committed on the source at known positions before the copy; after it, the group's
//! position on the target (as each tool set it) is compared with the exact one: how many records
//! a consumer resuming there would read again, or skip.
//!
//! CPU is the copier process's (and its restarts') user + system time; RSS is its peak (VmHWM;
//! for MM2 the JVM's). Wall time runs from the copier's start to the last write landed on the
//! target (for both tools: the last change of the target's ends, so MM2, which never exits, and
//! kmirror, which exits when done, are timed alike); "first" is the time to the first record.
//!
//! Freshness: with each copier running, 100 B records produced at KMIRROR_VS_RATE per second
//! (20 000) for KMIRROR_VS_SECONDS (20), each timed from its source timestamp to its read on the
//! target; KMIRROR_VS_ONLY=freshness runs only this part.
//!
//! Long link: KMIRROR_VS_LINK_RECORDS (200 000) x 100 B copied by kmirror and both MM2 modes to
//! a target whose clients reach it across a link of KMIRROR_VS_LINK_RTT_MS (50) round trip
//! (`KafkaSpec::behind_slow_link`); KMIRROR_VS_ONLY=slow-link runs only this part.
//!
//! Sizes: KMIRROR_VS_RECORDS (default 1 000 000 x 100 B), KMIRROR_VS_LARGE_RECORDS (200 000 x
//! 1 KiB; 0 leaves the workload out), KMIRROR_VS_CRASH_RECORDS (300 000 x 100 B), 8 partitions.
//! Results: bench-results/versus_mm2.json and the table between the markers in BENCHMARKS.md.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kmirror_testcontainers::{audit_mirror, KafkaCluster, KafkaSpec, Role};
use nix::sys::resource::UsageWho;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

mod support;

use support::{cpu_seconds, env_or, load, Workload, TOPIC};

const PARTITIONS: i32 = 8;
const GROUP: &str = "bench-consumers";
/// A copier that lands nothing for this long has failed, loudly.
const NO_PROGRESS: Duration = Duration::from_secs(180);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tool {
    Kmirror,
    Mm2 { exactly_once: bool, offset_lag_max: Option<u32> },
}

impl Tool {
    fn label(self) -> String {
        match self {
            Tool::Kmirror => "kmirror (defaults, exactly-once)".into(),
            Tool::Mm2 { exactly_once: true, offset_lag_max: None } => "MM2 exactly-once".into(),
            Tool::Mm2 { exactly_once: false, offset_lag_max: None } => "MM2 at-least-once".into(),
            Tool::Mm2 { exactly_once, offset_lag_max: Some(lag) } => format!(
                "MM2 {} offset.lag.max={lag}",
                if exactly_once { "exactly-once" } else { "at-least-once" }
            ),
        }
    }
}

struct Run {
    wall_seconds: f64,
    first_seconds: Option<f64>,
    cpu_seconds: f64,
    peak_rss_bytes: u64,
    kills: usize,
    duplicates: usize,
    missing: usize,
    identical: bool,
    /// Per partition: (source position, records a consumer would read again, records it would skip).
    group: Vec<(i32, i64, i64, i64)>,
}

/// Where the source group stands before the copy: nothing read, one record, a few, inside a long
/// stretch, near and at the end.
fn group_positions(per_partition: i64) -> BTreeMap<i32, i64> {
    let at = [0, 1, 57, 150, 999, per_partition / 3 + 13, per_partition - 1, per_partition];
    (0..PARTITIONS).map(|p| (p, at[p as usize].clamp(0, per_partition))).collect()
}

/// Commits the group's positions as a subscribed member (so the group is a consumer group,
/// as real ones are, and MM2 lists it), then leaves.
fn commit_source_group(source: &KafkaCluster, positions: &BTreeMap<i32, i64>) {
    let consumer: BaseConsumer = source
        .client_config()
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .create()
        .expect("group client");
    consumer.subscribe(&[TOPIC]).expect("subscribe");
    let joined = Instant::now();
    while consumer.assignment().map(|a| a.count()).unwrap_or(0) < PARTITIONS as usize {
        assert!(joined.elapsed() < Duration::from_secs(60), "the bench group got no assignment");
        let _ = consumer.poll(Duration::from_millis(100));
    }
    let mut tpl = TopicPartitionList::new();
    for (&p, &o) in positions {
        tpl.add_partition_offset(TOPIC, p, Offset::Offset(o)).expect("tpl");
    }
    consumer.commit(&tpl, rdkafka::consumer::CommitMode::Sync).expect("commit the source group");
    consumer.unsubscribe();
}

fn mm2_lib() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash").arg(root.join("scripts/setup-mm2.sh")).output().expect("run setup-mm2.sh");
    assert!(
        out.status.success(),
        "MirrorMaker 2 could not be installed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn mm2_properties(
    source: &KafkaCluster,
    target: &KafkaCluster,
    exactly_once: bool,
    lag: Option<u32>,
    port: u16,
) -> String {
    let mut p = vec![
        "clusters=A,B".to_string(),
        format!("A.bootstrap.servers={}", source.bootstrap()),
        format!("B.bootstrap.servers={}", target.bootstrap()),
        "A->B.enabled=true".into(),
        "B->A.enabled=false".into(),
        format!("A->B.topics={TOPIC}"),
        format!("A->B.groups={GROUP}"),
        "replication.policy.class=org.apache.kafka.connect.mirror.IdentityReplicationPolicy".into(),
        "emit.heartbeats.enabled=false".into(),
        "emit.checkpoints.enabled=true".into(),
        "emit.checkpoints.interval.seconds=5".into(),
        "sync.group.offsets.enabled=true".into(),
        "sync.group.offsets.interval.seconds=5".into(),
        "refresh.topics.interval.seconds=5".into(),
        "refresh.groups.interval.seconds=5".into(),
        "sync.topic.acls.enabled=false".into(),
        format!("tasks.max={PARTITIONS}"),
        "replication.factor=1".into(),
        "checkpoints.topic.replication.factor=1".into(),
        "heartbeats.topic.replication.factor=1".into(),
        "offset-syncs.topic.replication.factor=1".into(),
        "offset.storage.replication.factor=1".into(),
        "status.storage.replication.factor=1".into(),
        "config.storage.replication.factor=1".into(),
        "offset.storage.partitions=1".into(),
        "status.storage.partitions=1".into(),
        // Throughput: larger batches on both sides (the producer's 16 KiB default is small).
        "A.consumer.max.poll.records=2000".into(),
        "B.producer.linger.ms=5".into(),
        "B.producer.batch.size=262144".into(),
        "B.producer.compression.type=none".into(),
        "A.consumer.isolation.level=read_committed".into(),
    ];
    if exactly_once {
        p.extend([
            "B.exactly.once.source.support=enabled".to_string(),
            "dedicated.mode.enable.internal.rest=true".into(),
            format!("listeners=http://127.0.0.1:{port}"),
        ]);
    }
    if let Some(lag) = lag {
        p.push(format!("offset.lag.max={lag}"));
    }
    p.join("\n") + "\n"
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts the copier once (again after a kill: the same command).
fn start(
    tool: Tool,
    source: &KafkaCluster,
    target: &KafkaCluster,
    work: &Path,
    mm2: &Path,
    batch: bool,
) -> Child {
    match tool {
        Tool::Kmirror => Command::new(env!("CARGO_BIN_EXE_kmirror"))
            .args([
                "mirror",
                "--source",
                source.bootstrap(),
                "--target",
                target.bootstrap(),
                "--name",
                "versus",
            ])
            .args(["--topics", TOPIC, "--groups", GROUP, "--sync-group-offsets", "--state-dir"])
            .arg(work.join("state"))
            .args(if batch { &["--until-caught-up"][..] } else { &[][..] })
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(work.join("kmirror.log")).expect("log file"))
            .spawn()
            .expect("kmirror starts"),
        Tool::Mm2 { exactly_once, offset_lag_max } => {
            let props = work.join("mm2.properties");
            if !props.exists() {
                let text = mm2_properties(source, target, exactly_once, offset_lag_max, free_port());
                std::fs::write(&props, text).expect("write mm2.properties");
            }
            let log4j = work.join("log4j2.properties");
            std::fs::write(
                &log4j,
                format!(
                    "rootLogger.level=INFO\nrootLogger.appenderRef.f.ref=F\nappender.f.type=File\nappender.f.name=F\nappender.f.fileName={}\nappender.f.append=true\nappender.f.layout.type=PatternLayout\nappender.f.layout.pattern=%d %p %c{{1}} %m%n\n",
                    work.join("mm2.log").display()
                ),
            )
            .expect("write log4j2 config");
            Command::new("java")
                .args(["-Xms256m", "-Xmx2g"])
                .arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
                .arg("-cp")
                .arg(format!("{}/*", mm2.display()))
                .arg("org.apache.kafka.connect.mirror.MirrorMaker")
                .arg(&props)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(work.join("mm2.stderr")).expect("stderr file"))
                .spawn()
                .expect("java starts")
        }
    }
}

fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

/// Per partition of the target topic: (high watermark, last stable offset).
/// Two watchers of the target topic: one for its high watermarks, one (read_committed) for its
/// last stable offsets.
struct TargetEnds {
    high: BaseConsumer,
    stable: BaseConsumer,
}

impl TargetEnds {
    fn new(target: &KafkaCluster) -> Self {
        let client = |iso: &str| -> BaseConsumer {
            target
                .client_config()
                .set("group.id", "versus-watch")
                .set("isolation.level", iso)
                .create()
                .expect("watcher")
        };
        Self { high: client("read_uncommitted"), stable: client("read_committed") }
    }

    /// Per partition: (high watermark, last stable offset).
    fn read(&self) -> Option<Vec<(i64, i64)>> {
        let mut query = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            query.add_partition_offset(TOPIC, p, Offset::End).ok()?;
        }
        let stable = self.stable.offsets_for_times(query, Duration::from_secs(5)).ok()?;
        (0..PARTITIONS)
            .map(|p| {
                let (_, high) = self.high.fetch_watermarks(TOPIC, p, Duration::from_secs(5)).ok()?;
                let last_stable = match stable.find_partition(TOPIC, p)?.offset() {
                    Offset::Offset(o) => o,
                    _ => return None,
                };
                Some((high, last_stable))
            })
            .collect()
    }
}

/// Where the copier's log goes in its work folder.
fn log_of(tool: Tool, work: &Path) -> PathBuf {
    work.join(if tool == Tool::Kmirror { "kmirror.log" } else { "mm2.log" })
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// One copy of the loaded source to a fresh target, with `kills` SIGKILLs along the way.
fn copy(
    tool: Tool,
    source: &KafkaCluster,
    w: &Workload,
    kills: usize,
    mm2: &Path,
    positions: &BTreeMap<i32, i64>,
    link: Option<Duration>,
) -> Run {
    let target = match link {
        Some(round_trip) => KafkaCluster::start_kafka(&KafkaSpec::behind_slow_link(1, round_trip))
            .expect("target behind the link"),
        None => KafkaCluster::start(Role::Target).expect("target"),
    };
    let work = tempfile::tempdir().expect("tempdir");
    let expected = (w.records / PARTITIONS as usize * PARTITIONS as usize) as i64;
    let ends_of_target = TargetEnds::new(&target);
    let cpu_before = cpu_seconds(UsageWho::RUSAGE_CHILDREN);
    let started = Instant::now();
    let mut child = start(tool, source, &target, work.path(), mm2, true);
    let (mut first, mut peak, mut done_kills) = (None, 0u64, 0usize);
    let mut last_progress = (0i64, Instant::now());
    let log = log_of(tool, work.path());
    let finished = loop {
        std::thread::sleep(Duration::from_millis(100));
        peak = peak.max(peak_rss(child.id()).unwrap_or(0));
        let exited = child.try_wait().expect("wait").map(|s| s.success());
        let ends = ends_of_target.read().unwrap_or_default();
        let high: i64 = ends.iter().map(|e| e.0).sum();
        let stable: i64 = ends.iter().map(|e| e.1).sum();
        if high > 0 && first.is_none() {
            first = Some(started.elapsed().as_secs_f64());
        }
        if high != last_progress.0 {
            last_progress = (high, Instant::now());
        }
        assert!(
            last_progress.1.elapsed() < NO_PROGRESS,
            "{}: nothing landed for {} s (landed {high} of {expected}); its log ends:\n{}",
            tool.label(),
            NO_PROGRESS.as_secs(),
            tail(&log)
        );
        if done_kills < kills
            && high >= expected * (done_kills as i64 + 1) / (kills as i64 + 1)
            && exited.is_none()
        {
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
            done_kills += 1;
            child = start(tool, source, &target, work.path(), mm2, true);
            continue;
        }
        match (tool, exited) {
            (Tool::Kmirror, Some(true)) => break (last_progress.1 - started).as_secs_f64(),
            (Tool::Kmirror, Some(false)) => panic!("kmirror failed; its log ends:\n{}", tail(&log)),
            (Tool::Mm2 { .. }, Some(_)) => panic!("MM2 exited; its log ends:\n{}", tail(&log)),
            _ => {}
        }
        // MM2 never exits: done when every record is on the target and nothing is open there.
        let all_there = ends.len() == PARTITIONS as usize
            && high >= expected
            && stable == high
            && last_progress.1.elapsed() > Duration::from_secs(1);
        if matches!(tool, Tool::Mm2 { .. }) && all_there {
            let visible: usize = (0..PARTITIONS)
                .map(|p| target.audit_partition(TOPIC, p).map(|a| a.visible.len()).unwrap_or(0))
                .sum();
            if visible as i64 >= expected {
                break (last_progress.1 - started).as_secs_f64();
            }
        }
    };
    // The group's position on the target, as the tool set it (MM2 syncs every 5 s).
    let group_started = Instant::now();
    let translated = loop {
        let on_target = group_on_target(&target);
        if on_target.len() == PARTITIONS as usize || group_started.elapsed() > Duration::from_secs(60) {
            break on_target;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    if child.try_wait().expect("wait").is_none() {
        child.kill().expect("stop the copier");
    }
    child.wait().expect("reap");
    let cpu = cpu_seconds(UsageWho::RUSAGE_CHILDREN) - cpu_before;
    let audits = audit_mirror(source, TOPIC, &target, TOPIC, PARTITIONS).expect("audit");
    let mut group = Vec::new();
    for p in 0..PARTITIONS {
        let visible = target.audit_partition(TOPIC, p).expect("audit").visible;
        let exact_index = positions[&p];
        let (reread, skipped) = match translated.get(&p) {
            // No position on the target: a consumer there starts from the beginning.
            None => (exact_index, 0),
            Some(&t) => {
                let index = visible.iter().take_while(|&&o| o < t).count() as i64;
                ((exact_index - index).max(0), (index - exact_index).max(0))
            }
        };
        group.push((p, exact_index, reread, skipped));
    }
    Run {
        wall_seconds: finished,
        first_seconds: first,
        cpu_seconds: cpu,
        peak_rss_bytes: peak,
        kills: done_kills,
        duplicates: audits.iter().map(|a| a.duplicates).sum(),
        missing: audits.iter().map(|a| a.missing).sum(),
        identical: audits.iter().all(|a| a.identical),
        group,
    }
}

fn group_on_target(target: &KafkaCluster) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = target
        .client_config()
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .create()
        .expect("group reader");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(TOPIC, p);
    }
    let Ok(committed) = consumer.committed_offsets(tpl, Duration::from_secs(10)) else {
        return BTreeMap::new();
    };
    committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) if o >= 0 => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

/// Freshness: the copier running over an empty topic, then records produced at `rate` per
/// second for `seconds`, each timed from its source timestamp to its read on the target
/// (`read_committed`). Returns (p50 ms, p99 ms, records).
fn freshness(tool: Tool, mm2: &Path, rate: usize, seconds: u64) -> (f64, f64, usize) {
    let source = KafkaCluster::start(Role::Source).expect("source");
    let target = KafkaCluster::start(Role::Target).expect("target");
    source.create_topic(TOPIC, PARTITIONS, &[]).expect("topic");
    let work = tempfile::tempdir().expect("tempdir");
    let mut child = start(tool, &source, &target, work.path(), mm2, false);
    let log = log_of(tool, work.path());
    // Ready once a first record of every partition is committed on the target.
    for p in 0..PARTITIONS {
        let warm = kmirror_testcontainers::RecordData {
            key: Some(b"warm-up".to_vec()),
            value: Some(b"warm-up".to_vec()),
            headers: Vec::new(),
            timestamp: None,
        };
        source.produce(TOPIC, p, &[warm]).expect("warm-up record");
    }
    let ends_of_target = TargetEnds::new(&target);
    let started = Instant::now();
    let ready = loop {
        let ends = ends_of_target.read().unwrap_or_default();
        if ends.len() == PARTITIONS as usize
            && ends.iter().all(|&(high, stable)| stable >= 1 && stable == high)
        {
            break ends;
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "{} exited; its log ends:\n{}",
            tool.label(),
            tail(&log)
        );
        assert!(
            started.elapsed() < NO_PROGRESS,
            "{}: the warm-up records did not cross in {} s; its log ends:\n{}",
            tool.label(),
            NO_PROGRESS.as_secs(),
            tail(&log)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let latencies = support::latencies_from(&source, &target, TOPIC, PARTITIONS, rate, seconds, |p| {
        Offset::Offset(ready[p as usize].1)
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(latencies.len(), rate * seconds as usize, "{}: every record read on the target", tool.label());
    let n = latencies.len();
    let (p50, p99) = support::percentiles(latencies);
    (p50, p99, n)
}

fn write_freshness(mm2: &Path) {
    let (rate, seconds) = (env_or("KMIRROR_VS_RATE", 20_000), env_or("KMIRROR_VS_SECONDS", 20) as u64);
    let mut table = format!(
        "Records of 100 B produced at {rate}/s for {seconds} s over {PARTITIONS} partitions while the copier runs; each timed from its source timestamp to its read on the target (read_committed).\n\n| copier | records | p50 ms | p99 ms |\n| --- | --- | --- | --- |\n"
    );
    let mut results = Vec::new();
    for tool in [
        Tool::Kmirror,
        Tool::Mm2 { exactly_once: true, offset_lag_max: None },
        Tool::Mm2 { exactly_once: false, offset_lag_max: None },
    ] {
        eprintln!("versus_mm2: freshness of {}", tool.label());
        let (p50, p99, n) = freshness(tool, mm2, rate, seconds);
        table.push_str(&format!("| {} | {n} | {p50:.0} | {p99:.0} |\n", tool.label()));
        results.push(json!({"copier": tool.label(), "rate_per_s": rate, "seconds": seconds, "records": n, "p50_ms": p50, "p99_ms": p99}));
    }
    println!("{table}");
    support::write_json("versus_mm2_freshness.json", &results);
    support::write_table("versus-mm2-freshness", &table);
}

const TABLE_HEADER: &str = "| workload | copier | kills | records/s | MB/s | CPU s per M records | records per CPU s | peak RSS MB | first record after s | duplicates | missing | identical | group: re-read / skipped |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";

/// One table row and one JSON result of a measured copy.
fn measured(w: &Workload, tool: Tool, run: &Run) -> (String, serde_json::Value) {
    let per_partition = (w.records / PARTITIONS as usize) as i64;
    let records = (per_partition * PARTITIONS as i64) as f64;
    let rate = records / run.wall_seconds;
    let mb = records * (w.value_bytes + 16) as f64 / run.wall_seconds / 1e6;
    let (reread, skipped): (i64, i64) = run.group.iter().fold((0, 0), |(r, s), g| (r + g.2, s + g.3));
    // Positions are counted in records of an identical copy; a copy with duplicates or
    // gaps has no such count.
    let group_cell =
        if run.identical { format!("{reread} / {skipped}") } else { "n/a (copy not identical)".into() };
    let row = format!(
                "| {} ({} x {} B) | {} | {} | {:.0} | {:.1} | {:.1} | {:.0} | {:.0} | {} | {} | {} | {} | {group_cell} |\n",
                w.name,
                w.records,
                w.value_bytes,
                tool.label(),
                run.kills,
                rate,
                mb,
                run.cpu_seconds / records * 1e6,
                records / run.cpu_seconds.max(1e-9),
                run.peak_rss_bytes as f64 / 1e6,
                run.first_seconds.map(|s| format!("{s:.1}")).unwrap_or_else(|| "-".into()),
                run.duplicates,
                run.missing,
                if run.identical { "yes" } else { "no" },
            );
    let result = json!({
        "workload": w.name, "records": w.records, "value_bytes": w.value_bytes, "partitions": PARTITIONS,
        "copier": tool.label(), "kills": run.kills, "wall_seconds": run.wall_seconds,
        "records_per_s": rate, "mb_per_s": mb, "cpu_seconds": run.cpu_seconds,
        "cpu_seconds_per_million_records": run.cpu_seconds / records * 1e6,
        "peak_rss_bytes": run.peak_rss_bytes, "first_record_seconds": run.first_seconds,
        "duplicates": run.duplicates, "missing": run.missing, "identical": run.identical,
        "group_valid": run.identical, "group": run.group.iter().map(|g| json!({"partition": g.0, "source_position": g.1, "reread": g.2, "skipped": g.3})).collect::<Vec<_>>(),
    });
    (row, result)
}

/// Row 5: one backlog copied by each tool to a target behind a long link (the harness's
/// `KafkaSpec::behind_slow_link`; this kernel has no netem).
fn write_slow_link(mm2: &Path) {
    let round_trip = Duration::from_millis(env_or("KMIRROR_VS_LINK_RTT_MS", 50) as u64);
    let w = Workload {
        name: format!("{} ms link", round_trip.as_millis()),
        records: env_or("KMIRROR_VS_LINK_RECORDS", 200_000),
        value_bytes: 100,
        partitions: PARTITIONS,
    };
    let source = KafkaCluster::start(Role::Source).expect("source");
    eprintln!("versus_mm2: loading {} records for the long link", w.records);
    load(&source, &w);
    let positions = group_positions((w.records / PARTITIONS as usize) as i64);
    commit_source_group(&source, &positions);
    let mut table = format!(
        "The target behind a link that adds {} ms to every round trip between it and its clients (both copiers; the source is local).\n\n{TABLE_HEADER}",
        round_trip.as_millis()
    );
    let mut results = Vec::new();
    for tool in [
        Tool::Kmirror,
        Tool::Mm2 { exactly_once: true, offset_lag_max: None },
        Tool::Mm2 { exactly_once: false, offset_lag_max: None },
    ] {
        eprintln!("versus_mm2: {} over the long link", tool.label());
        let run = copy(tool, &source, &w, 0, mm2, &positions, Some(round_trip));
        let (row, result) = measured(&w, tool, &run);
        table.push_str(&row);
        results.push(result);
        println!("{table}");
    }
    support::write_json("versus_mm2_slow_link.json", &results);
    support::write_table("versus-mm2-slow-link", &table);
}

fn main() {
    let mm2 = mm2_lib();
    match std::env::var("KMIRROR_VS_ONLY").as_deref() {
        Ok("freshness") => return write_freshness(&mm2),
        Ok("slow-link") => return write_slow_link(&mm2),
        _ => {}
    }
    let mut workloads = vec![(
        Workload {
            name: "small".into(),
            records: env_or("KMIRROR_VS_RECORDS", 1_000_000),
            value_bytes: 100,
            partitions: PARTITIONS,
        },
        vec![
            Tool::Kmirror,
            Tool::Mm2 { exactly_once: true, offset_lag_max: None },
            Tool::Mm2 { exactly_once: false, offset_lag_max: None },
            Tool::Mm2 { exactly_once: true, offset_lag_max: Some(0) },
        ],
        0,
    )];
    let large = env_or("KMIRROR_VS_LARGE_RECORDS", 200_000);
    if large > 0 {
        workloads.push((
            Workload { name: "large".into(), records: large, value_bytes: 1024, partitions: PARTITIONS },
            vec![
                Tool::Kmirror,
                Tool::Mm2 { exactly_once: true, offset_lag_max: None },
                Tool::Mm2 { exactly_once: false, offset_lag_max: None },
            ],
            0,
        ));
    }
    workloads.push((
        Workload {
            name: "crashes".into(),
            records: env_or("KMIRROR_VS_CRASH_RECORDS", 300_000),
            value_bytes: 100,
            partitions: PARTITIONS,
        },
        vec![
            Tool::Kmirror,
            Tool::Mm2 { exactly_once: true, offset_lag_max: None },
            Tool::Mm2 { exactly_once: false, offset_lag_max: None },
        ],
        10,
    ));

    let mut results = Vec::new();
    let mut table = String::from(TABLE_HEADER);
    let mut brokers = String::new();
    for (w, tools, kills) in &workloads {
        let source = KafkaCluster::start(Role::Source).expect("source");
        brokers = source.describe();
        eprintln!(
            "versus_mm2: loading {} records of {} bytes into {PARTITIONS} partitions",
            w.records, w.value_bytes
        );
        load(&source, w);
        let per_partition = (w.records / PARTITIONS as usize) as i64;
        let positions = group_positions(per_partition);
        commit_source_group(&source, &positions);
        for &tool in tools {
            eprintln!("versus_mm2: {} ({}), {kills} kills", tool.label(), w.name);
            let run = copy(tool, &source, w, *kills, &mm2, &positions, None);
            let (row, result) = measured(w, tool, &run);
            table.push_str(&row);
            results.push(result);
            println!("{table}");
        }
    }
    support::write_json("versus_mm2.json", &results);
    let placeholder = KafkaCluster::start(Role::Source).expect("a cluster for the settings file");
    let settings = mm2_properties(&placeholder, &placeholder, true, None, 0)
        .replace(placeholder.bootstrap(), "<bootstrap>");
    std::fs::write(support::results_dir().join("versus_mm2.properties"), settings).expect("write settings");
    let table = format!("Brokers: {brokers}; a fresh target cluster for each copy.\n\n{table}");
    println!("{table}");
    support::write_table("versus-mm2", &table);
    write_freshness(&mm2);
    write_slow_link(&mm2);
}
