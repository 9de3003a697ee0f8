//! `kmirror demo`: two local clusters, a live mirror killed mid-stream and restarted, and an
//! audit of the target that shows nothing was lost or doubled.
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kmirror_testcontainers::{audit_mirror, KafkaCluster, RecordData};

use crate::cmd::cli::DemoArgs;

const TOPIC: &str = "demo.orders";
const NAME: &str = "demo";

/// Apache Kafka when `scripts/setup.sh` installed it, else the Tansu development broker.
fn start_clusters() -> anyhow::Result<(KafkaCluster, KafkaCluster)> {
    match KafkaCluster::start_pair() {
        Ok(pair) => Ok(pair),
        Err(e @ kmirror_testcontainers::Error::KafkaMissing(_)) => {
            println!("  ({e}; falling back to Tansu)");
            let source = KafkaCluster::start_tansu().context("starting the source cluster")?;
            let target = KafkaCluster::start_tansu().context("starting the target cluster")?;
            Ok((source, target))
        }
        Err(e) => Err(e).context("starting the demo clusters"),
    }
}

pub(crate) fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("locating the kmirror binary")?;
    println!("Starting two local Kafka clusters (source and target)...");
    let (source, target) = start_clusters()?;
    println!("  broker: {}", source.describe());
    println!("  source: {}\n  target: {}", source.bootstrap(), target.bootstrap());
    source.create_topic(TOPIC, args.partitions, &[("retention.ms", "604800000")])?;
    println!("Created {TOPIC} with {} partitions on the source.", args.partitions);

    let state = std::env::temp_dir().join(format!("kmirror-demo-{}", std::process::id()));
    let _state_removed = RemovedOnDrop(state.clone());
    let mirror_args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["mirror", "--source", source.bootstrap(), "--target", target.bootstrap()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(["--name", NAME, "--topics", "demo\\..*", "--transaction-max-ms", "100"].map(String::from));
        a.extend(["--state-dir".to_string(), state.display().to_string()]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };

    // Produce in the background so the mirror is killed while records are still arriving.
    let per_partition = args.records / args.partitions.max(1) as usize;
    let first_half = per_partition / 2;
    produce_range(&source, args.partitions, 0, first_half)?;
    println!(
        "Produced {} records; starting the mirror and producing the rest while it runs...",
        first_half * args.partitions as usize
    );
    let mut mirror = KilledOnDrop(spawn(&exe, &mirror_args(&[]))?);
    let started = Instant::now();
    produce_range(&source, args.partitions, first_half, per_partition - first_half / 2)?;
    // Killed as soon as the first transactions have landed, so the kill falls mid-copy.
    let landed_now = || -> usize {
        (0..args.partitions)
            .map(|p| target.audit_partition(TOPIC, p).map(|a| a.visible.len()).unwrap_or(0))
            .sum()
    };
    while landed_now() == 0 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    mirror.0.kill().context("killing the mirror")?;
    mirror.0.wait().context("reaping the mirror")?;
    let landed = landed_now();
    println!(
        "Killed the mirror with SIGKILL after {:.1} s, mid-stream: {landed} committed records were on the target.",
        started.elapsed().as_secs_f64()
    );
    produce_range(&source, args.partitions, per_partition - first_half / 2, per_partition)?;
    let total = per_partition * args.partitions as usize;
    println!("Produced the rest: {total} records in all. Restarting the mirror with --until-caught-up...");

    let mut restarted = KilledOnDrop(spawn(&exe, &mirror_args(&["--until-caught-up"]))?);
    let status = restarted.0.wait().context("waiting for the mirror")?;
    if !status.success() {
        bail!("the restarted mirror failed: {status}");
    }

    println!("\nAudit of the target (transaction-aware, record by record):");
    println!(
        "{:>9} {:>8} {:>8} {:>10} {:>7} {:>9}",
        "partition", "source", "target", "duplicates", "missing", "identical"
    );
    let audits = audit_mirror(&source, TOPIC, &target, TOPIC, args.partitions)?;
    for a in &audits {
        println!(
            "{:>9} {:>8} {:>8} {:>10} {:>7} {:>9}",
            a.partition, a.source_records, a.target_records, a.duplicates, a.missing, a.identical
        );
    }
    let (src, tgt): (usize, usize) =
        audits.iter().fold((0, 0), |(s, t), a| (s + a.source_records, t + a.target_records));
    let dups: usize = audits.iter().map(|a| a.duplicates).sum();
    let missing: usize = audits.iter().map(|a| a.missing).sum();
    println!("\nrecords in source: {src}, records in target: {tgt}, duplicates: {dups}, missing: {missing}");
    if dups != 0 || missing != 0 || audits.iter().any(|a| !a.identical) {
        bail!("the audit found differences");
    }
    println!("Exactly once: every source record is on the target once, in order, byte for byte.");
    Ok(())
}

fn spawn(exe: &std::path::Path, args: &[String]) -> anyhow::Result<Child> {
    Command::new(exe)
        .args(args)
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .stdin(Stdio::null())
        .spawn()
        .context("starting the mirror")
}

fn produce_range(source: &KafkaCluster, partitions: i32, from: usize, to: usize) -> anyhow::Result<()> {
    for partition in 0..partitions {
        let records: Vec<RecordData> = (from..to)
            .map(|i| RecordData {
                key: Some(format!("order-{partition}-{i}").into_bytes()),
                value: Some(format!("{{\"order\":{i},\"amount\":{}}}", i * 7 % 1000).into_bytes()),
                headers: vec![("source".into(), Some(b"demo".to_vec()))],
                timestamp: None,
            })
            .collect();
        source.produce(TOPIC, partition, &records)?;
    }
    Ok(())
}

/// A mirror the demo started: killed if the demo ends early (an error, a panic), so that it
/// does not run on against clusters that are gone.
struct KilledOnDrop(std::process::Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The demo's state dir, removed however the demo ends.
struct RemovedOnDrop(std::path::PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
