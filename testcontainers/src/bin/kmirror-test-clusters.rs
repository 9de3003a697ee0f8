//! Starts one source and one target cluster for a whole test run and keeps them until its
//! standard input closes: `.ci/run` starts it before `cargo test`, so the test binaries share one
//! pair (`KMIRROR_TEST_SHARED_SOURCE` / `KMIRROR_TEST_SHARED_TARGET`) instead of each starting
//! its own JVMs. Prints the two variables as `NAME=BOOTSTRAP` lines once the clusters are ready.
use std::io::{Read, Write};

use kmirror_testcontainers::{KafkaCluster, SHARED_SOURCE_ENV, SHARED_TARGET_ENV};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (source, target) = KafkaCluster::start_pair()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{SHARED_SOURCE_ENV}={}", source.bootstrap())?;
    writeln!(out, "{SHARED_TARGET_ENV}={}", target.bootstrap())?;
    out.flush()?;
    drop(out);
    eprintln!(
        "kmirror-test-clusters: {} at {} and {}; close stdin to stop",
        source.describe(),
        source.bootstrap(),
        target.bootstrap()
    );
    // Until the caller goes away: its end of the pipe closes, the read returns.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop((source, target));
    Ok(())
}
