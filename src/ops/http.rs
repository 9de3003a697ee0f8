//! `--metrics-addr`: Prometheus text on `/metrics`, and `/healthz` for liveness probes.
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::ops::telemetry::Telemetry;

/// The HTTP server; dropping it stops it.
pub(crate) struct Endpoint {
    server: Arc<tiny_http::Server>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.server.unblock();
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
    let server = tiny_http::Server::http(addr).map_err(|e| {
        Error::Usage(format!("--metrics-addr {addr}: cannot listen: {e} (pick a free HOST:PORT)"))
    })?;
    let server = Arc::new(server);
    info!(addr, "serving /metrics and /healthz");
    let serving = server.clone();
    std::thread::Builder::new()
        .name("kmirror-http".into())
        .spawn(move || {
            for request in serving.incoming_requests() {
                let (status, body, content_type) = answer(request.url(), &telemetry, transaction_max);
                let header = tiny_http::Header::from_bytes("Content-Type", content_type)
                    .unwrap_or_else(|()| tiny_http::Header::from_bytes("X", "").expect("static header"));
                let response =
                    tiny_http::Response::from_string(body).with_status_code(status).with_header(header);
                if let Err(e) = request.respond(response) {
                    warn!(error = %e, "answering an HTTP request");
                }
            }
        })
        .map_err(|cause| Error::Thread { what: "HTTP".into(), cause })?;
    Ok(Endpoint { server })
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
