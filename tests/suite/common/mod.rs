//! Helpers that make each mirror test read as its scenario.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use kmirror_testcontainers::{audit_mirror, unique_suffix, KafkaCluster, PartitionAudit, RecordData};

pub const KMIRROR: &str = env!("CARGO_BIN_EXE_kmirror");

pub struct Setup {
    pub source: KafkaCluster,
    pub target: KafkaCluster,
    pub name: String,
    pub state_dir: tempfile::TempDir,
}

impl Setup {
    /// This test binary's shared source and target clusters, under a mirror name of the test's
    /// own. For tests that do not stop, freeze or reconfigure a broker.
    pub fn new() -> Self {
        Self::with(KafkaCluster::shared_pair().expect("shared clusters start"))
    }

    /// Clusters of this test's own, for tests that stop or freeze a broker.
    pub fn dedicated() -> Self {
        Self::with(KafkaCluster::start_pair().expect("clusters start"))
    }

    /// A source of this test's own (to freeze) and the shared target.
    pub fn with_source(source: KafkaCluster) -> Self {
        let (_, target) = KafkaCluster::shared_pair().expect("shared clusters start");
        Self::with((source, target))
    }

    /// The shared source and a target of this test's own.
    pub fn with_target(target: KafkaCluster) -> Self {
        let (source, _) = KafkaCluster::shared_pair().expect("shared clusters start");
        Self::with((source, target))
    }

    fn with((source, target): (KafkaCluster, KafkaCluster)) -> Self {
        Self {
            source,
            target,
            name: format!("t{}", unique_suffix()),
            state_dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// The mirror's command line with this setup's clusters, name and state dir.
    pub fn args(&self, topics: &str, extra: &[&str]) -> Vec<String> {
        self.args_with_state(topics, extra, self.state_dir.path().to_path_buf())
    }

    pub fn args_with_state(&self, topics: &str, extra: &[&str], state: PathBuf) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "mirror".into(),
            "--source".into(),
            self.source.bootstrap().into(),
            "--target".into(),
            self.target.bootstrap().into(),
            "--name".into(),
            self.name.clone(),
            "--topics".into(),
            topics.into(),
            "--state-dir".into(),
            state.display().to_string(),
            "--transaction-max-ms".into(),
            "100".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// Runs `kmirror verify --format json` on this setup's mirror (local map copy in `state`).
    pub fn verify(&self, state: &std::path::Path, extra: &[&str]) -> Output {
        self.with_both_sides("verify", state, extra)
    }

    /// `kmirror translate-offsets` of this setup's mirror, positions from the live source.
    pub fn translate_offsets(&self, state: &std::path::Path, extra: &[&str]) -> Output {
        self.with_both_sides("translate-offsets", state, extra)
    }

    /// A subcommand given both clusters, this mirror's name, JSON output and `state`.
    fn with_both_sides(&self, command: &str, state: &std::path::Path, extra: &[&str]) -> Output {
        let mut args: Vec<String> = [
            command,
            "--source",
            self.source.bootstrap(),
            "--target",
            self.target.bootstrap(),
            "--name",
            &self.name,
            "--format",
            "json",
            "--state-dir",
            &state.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        run(&args, Duration::from_secs(120))
    }

    /// `kmirror failover` of this setup's mirror (its local map copy under the state dir).
    pub fn failover(&self, extra: &[&str]) -> Output {
        let mut args: Vec<String> = ["failover", "--target", self.target.bootstrap(), "--name", &self.name]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend([
            "--state-dir".to_string(),
            self.state_dir.path().join("failover").display().to_string(),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        run(&args, Duration::from_secs(120))
    }

    /// Runs the mirror with --until-caught-up and returns its output once it exits.
    pub fn mirror_until_caught_up(&self, topics: &str, extra: &[&str]) -> Output {
        let mut args = self.args(topics, extra);
        args.push("--until-caught-up".into());
        run(&args, Duration::from_secs(60))
    }

    /// A mirror whose log (info) goes to a file in its state dir, returned beside it: a pipe
    /// nobody reads until the end would fill (with a broker down librdkafka warns for seconds),
    /// and a mirror blocked writing its log cannot go on or stop.
    pub fn spawn_mirror_logged(&self, topics: &str, extra: &[&str]) -> (Child, PathBuf) {
        self.spawn_mirror_logged_at("info,librdkafka=warn", topics, extra)
    }

    /// As [`Setup::spawn_mirror_logged`], logging at `rust_log` (a `RUST_LOG` value).
    pub fn spawn_mirror_logged_at(&self, rust_log: &str, topics: &str, extra: &[&str]) -> (Child, PathBuf) {
        let log_path = self.state_dir.path().join("mirror.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let mirror = kmirror_command()
            .args(self.args(topics, extra))
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("kmirror starts");
        (mirror, log_path)
    }

    pub fn spawn_mirror(&self, topics: &str, extra: &[&str]) -> Child {
        spawn(&self.args(topics, extra))
    }

    pub fn audit(&self, topic: &str, partitions: i32) -> Vec<PartitionAudit> {
        audit_mirror(&self.source, topic, &self.target, topic, partitions).expect("audit")
    }

    /// Prints the raw target log around the first duplicated record, to tell a mirror fault
    /// from a broker fault.
    pub fn describe_duplicates(&self, topic: &str, partition: i32) {
        let log =
            kmirror_testcontainers::raw_log::read_raw_log(&self.target, topic, partition).expect("raw log");
        let records = self.target.read_uncommitted(topic, partition).expect("read");
        let audit = kmirror_testcontainers::audit_records(&log.records);
        let visible: std::collections::HashSet<i64> = audit.visible.iter().copied().collect();
        let mut first_seen: std::collections::HashMap<&RecordData, i64> = Default::default();
        for r in records.iter().filter(|r| visible.contains(&r.offset)) {
            if let Some(earlier) = first_seen.get(&r.data) {
                eprintln!("duplicate: offset {} repeats offset {earlier}", r.offset);
                let around = |o: i64| {
                    let mut prev = None;
                    for x in log.records.iter().filter(|x| x.offset + 5 >= o && x.offset <= o + 600) {
                        let k = (x.producer_id, x.producer_epoch, x.control, x.control_kind);
                        if prev != Some(k) {
                            eprintln!(
                                "  {} pid {} epoch {} control {:?}",
                                x.offset, x.producer_id, x.producer_epoch, x.control_kind
                            );
                            prev = Some(k);
                        }
                    }
                };
                around(*earlier);
                eprintln!("  ---");
                around(r.offset);
                return;
            }
            first_seen.insert(&r.data, r.offset);
        }
    }

    /// Asserts every source record is on the target exactly once, in order, byte for byte.
    pub fn assert_exactly_once(&self, topic: &str, partitions: i32, expected_per_partition: Option<usize>) {
        for audit in self.audit(topic, partitions) {
            if audit.duplicates > 0 {
                self.describe_duplicates(topic, audit.partition);
            }
            assert_eq!(audit.duplicates, 0, "duplicates on the target: {audit:?}");
            assert_eq!(audit.missing, 0, "records missing on the target: {audit:?}");
            assert!(audit.identical, "target differs from source (order or content): {audit:?}");
            if let Some(n) = expected_per_partition {
                assert_eq!(audit.source_records, n, "source holds what the test produced: {audit:?}");
            }
        }
    }
}

/// A kmirror command whose process is killed when the test thread that started it ends, passed
/// or failed: a test that panics before stopping its mirror would otherwise leave it running
/// after the test binary, against clusters that are gone.
#[allow(unsafe_code)]
pub fn kmirror_command() -> Command {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(KMIRROR);
    // SAFETY: prctl is async-signal-safe and touches nothing of the parent's.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
    command
}

pub fn spawn(args: &[String]) -> Child {
    kmirror_command()
        .args(args)
        .env("RUST_LOG", std::env::var("KMIRROR_TEST_RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kmirror starts")
}

/// Waits until the process exits or `limit` passes; returns its status if it exited.
pub fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status);
        }
        if started.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs kmirror to completion (killing it after `limit`) and returns its output. Its output is
/// read while it runs: a process writing more than a pipe holds (64 KiB of JSON rows) waited
/// for a reader until it was killed.
pub fn run(args: &[String], limit: Duration) -> Output {
    let mut child = spawn(args);
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let exited = wait_exit(&mut child, limit);
    if exited.is_none() {
        let _ = child.kill();
    }
    let status = child.wait().expect("wait");
    let (stdout, stderr) = (stdout.join().expect("stdout"), stderr.join().expect("stderr"));
    if exited.is_none() {
        panic!("kmirror did not finish within {limit:?}: {}", String::from_utf8_lossy(&stderr));
    }
    Output { status, stdout, stderr }
}

/// The last 40 lines of a log, for a failure message.
pub fn last_lines(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn assert_success(out: &Output) {
    assert!(out.status.success(), "kmirror failed ({}): {}", out.status, stderr(out));
}

pub fn topic(name: &str) -> String {
    format!("{name}-{}", unique_suffix())
}

/// Simple keyed records `prefix-i` for i in range.
pub fn keyed(prefix: &str, range: std::ops::Range<usize>) -> Vec<RecordData> {
    range.map(|i| RecordData::keyed(format!("{prefix}-{i}"), format!("value-{prefix}-{i}"))).collect()
}

/// Sends SIGTERM (a graceful stop request).
pub fn terminate(child: &Child) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .expect("signal");
}

/// Commits `offsets` for `group` on `cluster` (as a consumer that read up to there would).
pub fn commit_group(
    cluster: &KafkaCluster,
    group: &str,
    topic: &str,
    offsets: &std::collections::BTreeMap<i32, i64>,
) {
    let consumer: rdkafka::consumer::BaseConsumer = cluster
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for (&p, &o) in offsets {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Offset(o)).expect("tpl");
    }
    // A cluster just started may still be loading the group's offsets partition, or electing
    // its coordinator: asked again, as a consumer would.
    let started = std::time::Instant::now();
    loop {
        match rdkafka::consumer::Consumer::commit(&consumer, &tpl, rdkafka::consumer::CommitMode::Sync) {
            Ok(()) => return,
            Err(e)
                if started.elapsed() < Duration::from_secs(30)
                    && matches!(
                        e.rdkafka_error_code(),
                        Some(
                            rdkafka::types::RDKafkaErrorCode::CoordinatorLoadInProgress
                                | rdkafka::types::RDKafkaErrorCode::CoordinatorNotAvailable
                                | rdkafka::types::RDKafkaErrorCode::NotCoordinator
                        )
                    ) =>
            {
                std::thread::sleep(Duration::from_millis(200))
            }
            Err(e) => panic!("commit: {e:?}"),
        }
    }
}

/// The committed offset of `group` in each of `partitions` of `topic` (None: nothing committed),
/// read with an independent client.
pub fn group_offsets(
    cluster: &KafkaCluster,
    group: &str,
    topic: &str,
    partitions: i32,
) -> std::collections::BTreeMap<i32, Option<i64>> {
    let consumer: rdkafka::consumer::BaseConsumer = cluster
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let committed = rdkafka::consumer::Consumer::committed_offsets(&consumer, tpl, Duration::from_secs(10))
        .expect("committed offsets");
    committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            rdkafka::Offset::Offset(o) if o >= 0 => (e.partition(), Some(o)),
            _ => (e.partition(), None),
        })
        .collect()
}

/// `kmirror status --format json` for this setup's mirror, with or without the source.
pub fn status_json(setup: &Setup, with_source: bool) -> serde_json::Value {
    let out = status_output(setup, with_source);
    assert_success(&out);
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

/// As [`status_json`], `None` while the status fails: a mirror just started may not have made
/// its own topics yet (they are made beside the mirrored ones), and status then says there is
/// no such mirror.
pub fn status_json_once_there(setup: &Setup) -> Option<serde_json::Value> {
    let out = status_output(setup, false);
    out.status.success().then(|| serde_json::from_slice(&out.stdout).expect("status JSON"))
}

fn status_output(setup: &Setup, with_source: bool) -> Output {
    status_output_with(setup, with_source, &[])
}

/// `kmirror status --format json` for this setup's mirror, with `extra` arguments.
pub fn status_output_with(setup: &Setup, with_source: bool, extra: &[&str]) -> Output {
    let mut args = vec![
        "status".to_string(),
        "--target".into(),
        setup.target.bootstrap().into(),
        "--name".into(),
        setup.name.clone(),
        "--format".into(),
        "json".into(),
    ];
    if with_source {
        args.extend(["--source".to_string(), setup.source.bootstrap().into()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    run(&args, std::time::Duration::from_secs(60))
}

/// A record's key and value.
pub type KeyValue = (Option<Vec<u8>>, Option<Vec<u8>>);

/// (key, value) of every record a plain `read_committed` consumer of `topic`/`partition` sees:
/// an independent client, not the harness's audit. Reads until `expected` records came, then
/// one second more to catch any extra.
pub fn plain_read_committed(
    cluster: &KafkaCluster,
    topic: &str,
    partition: i32,
    expected: usize,
) -> Vec<KeyValue> {
    use rdkafka::consumer::Consumer;
    use rdkafka::Message;
    let consumer: rdkafka::consumer::BaseConsumer = cluster
        .client_config()
        .set("group.id", format!("plain-reader-{}", unique_suffix()))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, rdkafka::Offset::Beginning).expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut extra_until = None;
    loop {
        let now = Instant::now();
        if now >= deadline || extra_until.is_some_and(|t| now >= t) {
            return seen;
        }
        if seen.len() >= expected && extra_until.is_none() {
            extra_until = Some(now + Duration::from_secs(1));
        }
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let m = message.expect("read");
            seen.push((m.key().map(<[u8]>::to_vec), m.payload().map(<[u8]>::to_vec)));
        }
    }
}

/// What a group member reads from its committed positions to the end, per partition.
pub fn consume_as_group(
    cluster: &KafkaCluster,
    group: &str,
    topic: &str,
    expected: usize,
) -> std::collections::BTreeMap<i32, Vec<RecordData>> {
    use rdkafka::consumer::Consumer;
    use rdkafka::Message;
    let consumer: rdkafka::consumer::BaseConsumer = cluster
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut out: std::collections::BTreeMap<i32, Vec<RecordData>> = std::collections::BTreeMap::new();
    let started = Instant::now();
    let mut quiet_since = None;
    while started.elapsed() < Duration::from_secs(60) {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                out.entry(m.partition()).or_default().push(kmirror_testcontainers::record_data(&m));
                quiet_since = None;
            }
            _ => {
                let total: usize = out.values().map(Vec::len).sum();
                // Once everything expected is read, keep listening a moment for extras.
                if total >= expected {
                    let since = *quiet_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(2) {
                        break;
                    }
                }
            }
        }
    }
    out
}

/// The records of `records` at or after `offset`.
pub fn data_after(records: &[kmirror_testcontainers::StoredRecord], offset: i64) -> Vec<RecordData> {
    records.iter().filter(|r| r.offset >= offset).map(|r| r.data.clone()).collect()
}

/// A member of `group` on `cluster` under the classic protocol, subscribed to `topic` and
/// holding partitions of it (a 6 s session: dropped, it leaves the group at once).
pub fn classic_member(cluster: &KafkaCluster, group: &str, topic: &str) -> rdkafka::consumer::BaseConsumer {
    use rdkafka::consumer::Consumer;
    let member: rdkafka::consumer::BaseConsumer = cluster
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("member");
    member.subscribe(&[topic]).expect("subscribe");
    let joined = Instant::now();
    while member.assignment().map_or(0, |a| a.count()) == 0 {
        assert!(joined.elapsed() < Duration::from_secs(30), "the member of {group} never joined");
        let _ = member.poll(Duration::from_millis(100));
    }
    member
}
