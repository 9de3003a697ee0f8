//! Loopback ports for test brokers, taken from below the kernel's ephemeral range.
//!
//! A port that `bind(0)` hands out comes from the ephemeral range, which is also where every
//! outgoing connection gets its local port: between the moment the harness learns a free port
//! and the moment a JVM (seconds later) binds it, a client connecting anywhere may take it, and
//! the broker dies with "Address already in use". Ports below the range are never given to
//! outgoing connections, so only another listener can take one, and [`next_candidates`] walks
//! the range from a per-process starting point so parallel test processes seldom meet.
use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::{Error, Result};

/// The lowest port handed out: clear of the well-known services under 10000.
const LOWEST: u16 = 10_000;
/// Where the range ends when the kernel does not say (Linux's default ephemeral start).
const DEFAULT_EPHEMERAL_START: u16 = 32_768;

/// How far this process has walked the range; ports are not handed out twice by one process
/// until the range wraps, so a killed node's port stays its own until it restarts.
static WALKED: AtomicU32 = AtomicU32::new(0);

/// A loopback port that was free a moment ago and that no outgoing connection can take.
pub fn free_loopback_port() -> Result<u16> {
    Ok(free_loopback_ports(1)?[0])
}

/// `n` different free loopback ports; each stays bound until all are found.
pub fn free_loopback_ports(n: usize) -> Result<Vec<u16>> {
    let (low, high) = usable_range();
    let span = u32::from(high - low);
    let mut held = Vec::with_capacity(n);
    let mut tried = 0u32;
    while held.len() < n {
        if tried >= span {
            return Err(Error::Io(std::io::Error::other(format!(
                "no free loopback port between {low} and {high} (close the processes that hold them)"
            ))));
        }
        tried += 1;
        let step = WALKED.fetch_add(1, Ordering::Relaxed);
        let port = low + ((process_offset(span) + step) % span) as u16;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(listener);
        }
    }
    held.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

/// The ports below the ephemeral range, or the whole upper range if the kernel's ephemeral
/// range starts too low to leave any.
fn usable_range() -> (u16, u16) {
    let start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next().and_then(|s| s.parse::<u16>().ok()))
        .unwrap_or(DEFAULT_EPHEMERAL_START);
    if start > LOWEST + 1_000 {
        (LOWEST, start)
    } else {
        (LOWEST, u16::MAX)
    }
}

fn process_offset(span: u32) -> u32 {
    // Spread by pid: test binaries and the shared-cluster holder run side by side.
    std::process::id().wrapping_mul(2_654_435_761) % span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let ports = free_loopback_ports(16).expect("ports");
        let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), 16);
        let (low, high) = usable_range();
        for port in ports {
            assert!((low..high).contains(&port), "{port} outside {low}..{high}");
            TcpListener::bind(("127.0.0.1", port)).expect("released and bindable");
        }
    }
}
