//! `--metrics-addr`: Prometheus text on `/metrics`, and `/healthz` for liveness probes.
//!
//! One request per connection, each connection on a thread of its own with read and write
//! timeouts: a scraper that stops reading, or a client that connects and sends nothing, holds
//! its own thread for at most [`IO_TIMEOUT`] and never the answers to anyone else (a liveness
//! probe timed out behind a stuck scrape restarts a healthy mirror).
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};

use crate::error::{Error, Result};
use crate::ops::telemetry::Telemetry;

/// How long one read or write on a connection may wait.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections answered at once; more are closed unanswered until some end.
const MAX_CONNECTIONS: usize = 64;
/// A request's line and headers; a longer one is refused.
const MAX_REQUEST_BYTES: usize = 8 * 1024;

/// The HTTP server; dropping it stops it.
pub(crate) struct Endpoint {
    stopping: Arc<AtomicBool>,
    addr: SocketAddr,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which then sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// How long a shard may go without committing or being idle at its end before `/healthz` says
/// 503: a few transaction intervals, and never under 15 s so one slow commit is not an alarm.
pub(crate) fn stall_limit(transaction_max: Duration) -> Duration {
    (transaction_max * 4).max(Duration::from_secs(15))
}

/// Serves `telemetry` on `addr`; `/healthz` fails once a shard has not committed (or been idle
/// at its end) for [`stall_limit`] of `transaction_max`.
pub(crate) fn serve(addr: &str, telemetry: Arc<Telemetry>, transaction_max: Duration) -> Result<Endpoint> {
    let listener = TcpListener::bind(addr).map_err(|e| {
        Error::Usage(format!("--metrics-addr {addr}: cannot listen: {e} (pick a free HOST:PORT)"))
    })?;
    let bound = listener.local_addr().map_err(|e| {
        Error::Usage(format!("--metrics-addr {addr}: cannot listen: {e} (pick a free HOST:PORT)"))
    })?;
    info!(addr, "serving /metrics and /healthz");
    let stopping = Arc::new(AtomicBool::new(false));
    let stop = stopping.clone();
    std::thread::Builder::new()
        .name("kmirror-http".into())
        .spawn(move || accept(listener, &stop, &telemetry, transaction_max))
        .map_err(|cause| Error::Thread { what: "HTTP".into(), cause })?;
    Ok(Endpoint { stopping, addr: bound })
}

fn accept(
    listener: TcpListener,
    stopping: &AtomicBool,
    telemetry: &Arc<Telemetry>,
    transaction_max: Duration,
) {
    let busy = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                // Out of file descriptors, say: wait rather than spin.
                warn!(error = %e, "accepting an HTTP connection");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if busy.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            busy.fetch_sub(1, Ordering::SeqCst);
            debug!("HTTP connection answered busy: {MAX_CONNECTIONS} are being answered");
            answer_busy(stream);
            continue;
        }
        let (done, telemetry) = (busy.clone(), telemetry.clone());
        let spawned = std::thread::Builder::new().name("kmirror-http-conn".into()).spawn(move || {
            if let Err(e) = answer_connection(stream, &telemetry, transaction_max) {
                debug!(error = %e, "HTTP connection ended early");
            }
            done.fetch_sub(1, Ordering::SeqCst);
        });
        if let Err(e) = spawned {
            warn!(error = %e, "no thread for an HTTP connection");
            busy.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A 503 at once, from the accepting thread, without reading the request: a probe gets an
/// answer (not a reset) while the connections before it are answered. Never waits: what the
/// socket's send buffer does not take at once is dropped.
fn answer_busy(stream: TcpStream) {
    const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nRetry-After: 1\r\nConnection: close\r\n\r\nbusy\n";
    if stream.set_nonblocking(true).is_ok() {
        // What of the request has arrived: closed unread, it would make the close a reset,
        // which some clients read before the answer.
        let _ = (&stream).read(&mut [0; MAX_REQUEST_BYTES]);
        let _ = (&stream).write(BUSY);
    }
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

fn answer_connection(
    mut stream: TcpStream,
    telemetry: &Telemetry,
    transaction_max: Duration,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let (status, body, content_type, head_only) = match read_request_line(&mut stream)? {
        Some(line) => {
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap_or_default();
            let target = parts.next().unwrap_or_default();
            match method {
                "GET" | "HEAD" => {
                    let (status, body, content_type) = answer(target, telemetry, transaction_max);
                    (status, body, content_type, method == "HEAD")
                }
                _ => (405, "only GET and HEAD\n".to_string(), "text/plain", false),
            }
        }
        None => (400, "bad request\n".to_string(), "text/plain", false),
    };
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reason(status),
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()?;
    let _ = stream.shutdown(std::net::Shutdown::Both);
    Ok(())
}

/// The request line of a request whose line and headers arrived whole, or None for one too
/// long or cut off.
fn read_request_line(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    // The timeout bounds each read; this, the whole request (a byte every few seconds would
    // otherwise hold the thread for as long as the client likes).
    let deadline = std::time::Instant::now() + IO_TIMEOUT;
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && !request.windows(2).any(|w| w == b"\n\n") {
        if request.len() > MAX_REQUEST_BYTES || std::time::Instant::now() >= deadline {
            return Ok(None);
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        request.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&request);
    Ok(text.lines().next().map(str::to_string))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "",
    }
}

fn answer(url: &str, telemetry: &Telemetry, transaction_max: Duration) -> (u16, String, &'static str) {
    match url.split('?').next().unwrap_or_default() {
        "/metrics" => (200, telemetry.exposition(), "text/plain; version=0.0.4; charset=utf-8"),
        "/healthz" => {
            let stalled = telemetry.stalled_shards(stall_limit(transaction_max));
            if stalled.is_empty() {
                (200, "ok\n".into(), "text/plain")
            } else {
                let list: Vec<String> =
                    stalled.iter().map(|(s, d)| format!("shard {s} ({} s)", d.as_secs())).collect();
                (503, format!("no progress: {}\n", list.join(", ")), "text/plain")
            }
        }
        _ => (404, "not found: try /metrics or /healthz\n".into(), "text/plain"),
    }
}
