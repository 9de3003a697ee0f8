//! Apache Kafka's own Java tools (`org.apache.kafka.tools.*`, from the kafka-tools jars that
//! `scripts/setup.sh` installs): data written and read by Kafka's Java clients, for tests that
//! must not rest on librdkafka's view alone.
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::apache_kafka::{java_binary, workspace_root, KAFKA_VERSION};
use crate::error::{Error, Result};

/// The folder of the kafka-tools jar and its runtime closure.
pub fn kafka_tools_lib() -> Result<PathBuf> {
    let lib = workspace_root().join(".cache/kafka-tools").join(KAFKA_VERSION).join("lib");
    match lib.join(format!("kafka-tools-{KAFKA_VERSION}.jar")).is_file() {
        true => Ok(lib),
        false => Err(Error::KafkaMissing(lib.display().to_string())),
    }
}

/// Runs `class` of Kafka's tools with `args` to its end (killed after `limit`), its output kept.
pub fn run_java_tool(class: &str, args: &[&str], limit: Duration) -> Result<Output> {
    let lib = kafka_tools_lib()?;
    let mut child = Command::new(java_binary())
        .arg("-cp")
        .arg(format!("{}/*", lib.display()))
        // The tools log through log4j2: warnings only, to stderr.
        .arg("-Dlog4j2.rootLogger.level=warn")
        .arg(class)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn { binary: format!("java {class}"), source })?;
    let started = Instant::now();
    // Read as it comes: a tool that prints much would block on a full pipe.
    let stdout = child.stdout.take().map(|mut out| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = std::io::Read::read_to_end(&mut out, &mut text);
            text
        })
    });
    let stderr = child.stderr.take().map(|mut err| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = std::io::Read::read_to_end(&mut err, &mut text);
            text
        })
    });
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Timeout { what: format!("java {class}"), seconds: limit.as_secs() });
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let take = |reader: Option<std::thread::JoinHandle<Vec<u8>>>| {
        reader.and_then(|r| r.join().ok()).unwrap_or_default()
    };
    Ok(Output { status, stdout: take(stdout), stderr: take(stderr) })
}
