//! Day-2 operation: batch progress on a terminal and in a log, the summary and "nothing to do",
//! `kmirror status` against the real positions, and `/metrics` + `/healthz` during a run.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use kmirror_testcontainers::free_loopback_port;

const PARTITIONS: i32 = 4;

/// Runs kmirror with stdin, stdout and stderr on a pseudo-terminal; returns its exit status and
/// everything it wrote.
fn run_on_terminal(args: &[String]) -> (std::process::ExitStatus, String) {
    let size = nix::pty::Winsize { ws_row: 40, ws_col: 160, ws_xpixel: 0, ws_ypixel: 0 };
    let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
    let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup"));
    let mut child = kmirror_command()
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(stdio(&pty.slave))
        .stdout(stdio(&pty.slave))
        .stderr(stdio(&pty.slave))
        .spawn()
        .expect("kmirror starts");
    drop(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        // Reading the master ends with EIO once the child and every copy of the slave are gone.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    });
    let status = wait_exit(&mut child, Duration::from_secs(90)).expect("kmirror finishes on the terminal");
    let out = reader.join().expect("reader");
    (status, String::from_utf8_lossy(&out).into_owned())
}

fn run_with_log(args: &[String]) -> std::process::Output {
    let child = kmirror_command()
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kmirror starts");
    child.wait_with_output().expect("output")
}

/// The summary row of `topic`, split into cells.
fn summary_row(text: &str, topic: &str) -> Vec<String> {
    let line = text
        .lines()
        .map(|l| l.trim_start_matches(|c: char| c.is_control() || c == '\r'))
        .find(|l| l.starts_with(&format!("{topic} ")))
        .unwrap_or_else(|| panic!("no summary row for {topic} in\n{text}"));
    line.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect()
}

#[test]
fn a_batch_shows_bars_on_a_terminal_plain_lines_in_a_log_and_then_nothing_to_do() {
    let setup = Setup::new();
    let t = topic("batch");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    for p in 0..PARTITIONS {
        setup.source.produce(&t, p, &keyed(&format!("a{p}"), 0..1500)).expect("produce");
    }
    let mut args = setup.args(&t, &["--until-caught-up", "--progress", "partitions"]);

    let (status, screen) = run_on_terminal(&args);
    assert!(status.success(), "exit {status}: {screen}");
    assert!(screen.contains("\x1b["), "a terminal gets drawn bars: {screen}");
    assert!(
        screen.contains("all topics") && screen.contains(&format!("{t} ")),
        "overall and topic bars: {screen}"
    );
    assert!(
        screen.contains("/6,000 records") || screen.contains("/6000 records"),
        "total noted at start: {screen}"
    );
    let row = summary_row(&screen, &t);
    assert_eq!((row[1].as_str(), row[2].as_str()), ("4", "6000"), "partitions and records: {row:?}");
    assert_eq!(row.last().map(String::as_str), Some("0"), "no lag left: {row:?}");

    for p in 0..PARTITIONS {
        setup.source.produce(&t, p, &keyed(&format!("b{p}"), 0..250)).expect("produce");
    }
    let out = run_with_log(&args);
    let (log, stdout) = (stderr(&out), String::from_utf8_lossy(&out.stdout).into_owned());
    assert!(out.status.success(), "{log}");
    assert!(!log.contains('\x1b') && !stdout.contains('\x1b'), "no escape codes off a terminal: {log}");
    assert!(log.lines().any(|l| l.contains("progress") && l.contains("records=1000")), "plain lines: {log}");
    let row = summary_row(&stdout, &t);
    assert_eq!(row[2], "1000", "only the new records are copied: {stdout}");
    // committed and source_end are sums over the partitions
    assert_eq!((row[6].as_str(), row[7].as_str()), ("7000", "7000"), "{stdout}");

    args.push("--log-format".into());
    args.push("json".into());
    let out = run_with_log(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to do"), "{}", stderr(&out));
    for line in stderr(&out).lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(v["fields"]["message"].is_string(), "{line}");
    }
    setup.assert_exactly_once(&t, PARTITIONS, Some(1750));
}

#[test]
fn status_reports_the_real_positions_and_lag_after_a_partial_mirror() {
    let setup = Setup::new();
    let t = topic("status");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    let mirrored = |p: i32| 100 + 20 * p as usize;
    let later = |p: i32| 10 + 7 * p as usize;
    for p in 0..PARTITIONS {
        setup.source.produce(&t, p, &keyed(&format!("m{p}"), 0..mirrored(p))).expect("produce");
    }
    let group = format!("billing-{}", kmirror_testcontainers::unique_suffix());
    commit_group(&setup.source, &group, &t, &BTreeMap::from([(0, 5), (1, 6)]));
    let group_regex = group.clone();
    assert_success(&setup.mirror_until_caught_up(&t, &["--groups", &group_regex]));
    for p in 0..PARTITIONS {
        setup.source.produce(&t, p, &keyed(&format!("l{p}"), 0..later(p))).expect("produce");
    }

    let status = status_json(&setup, true);
    assert_eq!(status["source"], "reachable", "{status:#}");
    let rows = status["partitions"].as_array().expect("partitions");
    assert_eq!(rows.len(), PARTITIONS as usize, "{status:#}");
    for row in rows {
        assert_eq!(row["topic"], t.as_str());
        let p = row["partition"].as_i64().expect("partition") as i32;
        assert_eq!(row["committed"], mirrored(p) as i64, "{row}");
        assert_eq!(row["source_end"], (mirrored(p) + later(p)) as i64, "{row}");
        assert_eq!(row["lag_records"], later(p) as i64, "produced minus mirrored: {row}");
        let lag_seconds = row["lag_seconds"].as_f64().expect("lag seconds");
        assert!((0.0..120.0).contains(&lag_seconds), "{row}");
        assert!(row["last_commit_ms"].as_i64().is_some(), "{row}");
    }
    let groups = status["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 1, "{status:#}");
    assert_eq!(groups[0]["group"], group.as_str());
    assert_eq!(groups[0]["partitions"], 2);
    assert!(groups[0]["age_seconds"].as_f64().is_some_and(|a| (0.0..120.0).contains(&a)), "{status:#}");

    // Only the target: positions still known, the lag is not.
    let status = status_json(&setup, false);
    assert!(status["source"].as_str().is_some_and(|s| s.starts_with("unknown")), "{status:#}");
    for row in status["partitions"].as_array().expect("partitions") {
        let p = row["partition"].as_i64().expect("partition") as i32;
        assert_eq!(row["committed"], mirrored(p) as i64, "{row}");
        assert!(row["lag_records"].is_null() && row["source_end"].is_null(), "{row}");
    }

    // A record in the checkpoints topic that is none of kmirror's: the positions are still
    // shown, the groups' checkpoints are said to be unreadable (the whole status failed).
    let checkpoints = format!("kmirror.checkpoints.{}", setup.name);
    setup.target.produce(&checkpoints, 0, &keyed("not-a-checkpoint", 0..1)).expect("produce");
    let out = status_output_with(&setup, false, &[]);
    let said = stderr(&out);
    assert_success(&out);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    assert_eq!(status["partitions"].as_array().map(Vec::len), Some(PARTITIONS as usize), "{status:#}");
    assert_eq!(status["groups"], serde_json::json!([]), "{status:#}");
    assert!(said.contains("undecodable checkpoint") && said.contains("checkpoints are not shown"), "{said}");
}

/// A plain HTTP GET; returns the status code and body.
fn http_get(port: u16, path: &str) -> (u16, String) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return (0, String::new()) };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, body)
}

fn metric(body: &str, line_start: &str) -> Option<f64> {
    body.lines().find_map(|l| l.strip_prefix(line_start)).and_then(|v| v.trim().parse().ok())
}

fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn metrics_move_lag_falls_to_zero_and_healthz_follows_a_paused_target() {
    let setup = Setup::dedicated();
    let t = topic("metrics");
    setup.source.create_topic(&t, PARTITIONS, &[]).expect("topic");
    let port = free_loopback_port().expect("port");
    let addr = format!("127.0.0.1:{port}");
    let mut mirror = setup.spawn_mirror(&t, &["--metrics-addr", &addr]);

    let writing = Arc::new(AtomicBool::new(true));
    let source = setup.source.client_config();
    let producer = {
        let (writing, t) = (writing.clone(), t.clone());
        std::thread::spawn(move || {
            use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
            let producer: ThreadedProducer<DefaultProducerContext> = source.create().expect("producer");
            let mut sent = 0usize;
            while writing.load(Ordering::Relaxed) {
                for i in 0..50 {
                    let key = format!("k{sent}-{i}");
                    let partition = (i % PARTITIONS as usize) as i32;
                    let record =
                        || BaseRecord::<str, str>::to(&t).partition(partition).key(&key).payload(&key);
                    while producer.send(record()).is_err() {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                sent += 50;
                std::thread::sleep(Duration::from_millis(100));
            }
            producer.flush(Duration::from_secs(30)).expect("flush");
            sent
        })
    };

    let records_line = format!("kmirror_records_mirrored_total{{topic=\"{t}\"}} ");
    let mut seen = Vec::new();
    wait_for("the records counter to move", Duration::from_secs(60), || {
        let (code, body) = http_get(port, "/metrics");
        if code == 200 {
            if let Some(v) = metric(&body, &records_line) {
                seen.push(v);
            }
        }
        seen.windows(2).filter(|w| w[1] > w[0]).count() >= 2
    });
    let (_, body) = http_get(port, "/metrics");
    assert!(metric(&body, "kmirror_transactions_committed_total ").is_some_and(|v| v > 0.0), "{body}");
    assert!(body.contains("kmirror_transaction_commit_seconds_bucket"), "{body}");
    assert!(body.contains(&format!("kmirror_topics_created_total{{topic=\"{t}\"}} 1")), "{body}");
    assert_eq!(http_get(port, "/healthz").0, 200);

    setup.target.pause().expect("pause target");
    wait_for("/healthz to say 503 with the target paused", Duration::from_secs(60), || {
        http_get(port, "/healthz").0 == 503
    });
    setup.target.resume().expect("resume target");
    wait_for("/healthz to say 200 after the target resumed", Duration::from_secs(90), || {
        http_get(port, "/healthz").0 == 200
    });

    writing.store(false, Ordering::Relaxed);
    let sent = producer.join().expect("producer");
    let lag_prefix = format!("kmirror_partition_lag_records{{topic=\"{t}\",");
    wait_for("every record counted and every partition's lag at 0", Duration::from_secs(90), || {
        let (_, body) = http_get(port, "/metrics");
        if metric(&body, &records_line) != Some(sent as f64) {
            return false;
        }
        let lags: Vec<f64> = body
            .lines()
            .filter(|l| l.starts_with(&lag_prefix))
            .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse().ok()))
            .collect();
        lags.len() == PARTITIONS as usize && lags.iter().all(|&l| l == 0.0)
    });
    let (_, body) = http_get(port, "/metrics");
    assert_eq!(metric(&body, &records_line), Some(sent as f64), "no record counted twice: {body}");
    // The running process has claimed every shard (what a fenced shard reads to tell a takeover
    // from the target's abort); a clean stop gives them up.
    let status = status_json(&setup, false);
    let shards = status["shards"].as_u64().expect("shards");
    let owners = status["owners"].as_array().expect("owners");
    let claimed: Vec<u64> = owners.iter().filter_map(|o| o["shard"].as_u64()).collect();
    assert_eq!(claimed, (0..shards).collect::<Vec<_>>(), "{status:#}");
    assert!(owners.iter().all(|o| o["pid"].as_u64() == Some(u64::from(mirror.id()))), "{status:#}");
    assert!(owners.iter().all(|o| o["running"] == serde_json::json!(true)), "{status:#}");
    // A local run claims once: the claims must outlast the target's retention.
    let shards_topic = format!("kmirror.shards.{}", setup.name);
    let configs = setup.target.topic_configs(&shards_topic).expect("shards topic configs");
    assert_eq!(configs.get("cleanup.policy").map(String::as_str), Some("compact"), "{configs:?}");
    terminate(&mirror);
    let status = mirror.wait().expect("wait");
    assert!(status.success(), "{status}");
    setup.assert_exactly_once(&t, PARTITIONS, None);
    let status = status_json(&setup, false);
    assert_eq!(status["owners"], serde_json::json!([]), "released at the stop: {status:#}");
}

/// A scraper that asks and never reads, and a client that connects and sends nothing, stop no
/// one else's answers: `/healthz` and `/metrics` answer beside them (the server answered on one
/// thread, whose write to the first blocked for good once the socket's buffers were full, and
/// a liveness probe behind it timed out).
#[test]
fn a_client_that_never_reads_blocks_no_other_answer() {
    let setup = Setup::new();
    let t = topic("stuck-scrape");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("a", 0..5)).expect("produce");
    let port = free_loopback_port().expect("port");
    let addr = format!("127.0.0.1:{port}");
    let mut mirror = setup.spawn_mirror(&t, &["--metrics-addr", &addr]);
    wait_for("/healthz to answer", Duration::from_secs(60), || http_get(port, "/healthz").0 == 200);

    let silent = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let stuck = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stuck.set_write_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let asking = {
        let mut stuck = stuck.try_clone().expect("clone");
        std::thread::spawn(move || {
            // Pipelined requests whose answers (a few MB in all) fill both sockets' buffers.
            let request = b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(100);
            for _ in 0..200 {
                if stuck.write_all(&request).is_err() {
                    break;
                }
            }
        })
    };
    std::thread::sleep(Duration::from_secs(3));
    for _ in 0..5 {
        let asked = Instant::now();
        assert_eq!(http_get(port, "/healthz").0, 200, "answered beside a client that never reads");
        assert!(asked.elapsed() < Duration::from_secs(3), "answered at once: {:?}", asked.elapsed());
        let (code, body) = http_get(port, "/metrics");
        assert!(code == 200 && body.contains("kmirror_"), "{code}: {body}");
        std::thread::sleep(Duration::from_millis(300));
    }
    asking.join().expect("asking");
    drop((silent, stuck));
    // Connections past what is answered side by side (64, each bounded to 5 s) get a 503 at
    // once, not a reset.
    std::thread::sleep(Duration::from_secs(6));
    let idle: Vec<TcpStream> =
        (0..64).map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect")).collect();
    std::thread::sleep(Duration::from_millis(500));
    let (code, body) = http_get(port, "/healthz");
    assert_eq!((code, body.as_str()), (503, "busy\n"), "past the limit");
    drop(idle);
    wait_for("/healthz to answer again", Duration::from_secs(10), || http_get(port, "/healthz").0 == 200);
    terminate(&mirror);
    assert!(wait_exit(&mut mirror, Duration::from_secs(60)).is_some_and(|s| s.success()), "a clean stop");
    setup.assert_exactly_once(&t, 1, None);
}
