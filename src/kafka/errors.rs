//! The reason behind "unreachable": librdkafka tells why a connection failed (TLS handshake,
//! authentication, refused) only through its error callback, while the failed call itself
//! says "transport failure". This context keeps the last reason so the error can name it.
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;

use crate::error::{Error, Side};

#[derive(Default)]
pub(crate) struct ErrorRecorder {
    last: Mutex<Option<String>>,
}

impl ClientContext for ErrorRecorder {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(%error, reason, "client error");
        if let Ok(mut last) = self.last.lock() {
            *last = Some(reason.to_string());
        }
    }
}

impl ConsumerContext for ErrorRecorder {}

/// The "unreachable" error for a failed metadata request, with librdkafka's reason when it gave
/// one and a hint that fits it.
pub(crate) fn unreachable(
    side: Side,
    bootstrap: &str,
    client: &BaseConsumer<ErrorRecorder>,
    e: KafkaError,
) -> Error {
    // Error events wait in the client's queue until it is polled.
    for _ in 0..3 {
        let _ = client.poll(Duration::from_millis(10));
    }
    let reason = client.context().last.lock().ok().and_then(|l| l.clone());
    let bootstrap = bootstrap.to_string();
    match reason {
        Some(r) if is_tls(&r) => Error::Refused {
            side,
            bootstrap,
            message: format!(
                "TLS failed: {r} (check the {side} ssl.* settings: CA, certificate, key, host name)"
            ),
        },
        Some(r) if is_login(&r) => Error::Refused {
            side,
            bootstrap,
            message: format!("authentication failed: {r} (check the {side} sasl.* settings)"),
        },
        Some(r) => Error::Unreachable { side, bootstrap, message: format!("{e}: {r}") },
        None => Error::Unreachable { side, bootstrap, message: e.to_string() },
    }
}

/// librdkafka starts its reasons with the broker's name, e.g. `sasl_ssl://host:9093/bootstrap: `,
/// whose protocol says nothing of what failed.
fn without_broker_name(reason: &str) -> &str {
    match reason.split_once("://") {
        Some((_, rest)) => rest.split_once(": ").map_or(reason, |(_, message)| message),
        None => reason,
    }
}

fn is_tls(reason: &str) -> bool {
    let message = without_broker_name(reason);
    !is_login(reason) && (message.contains("SSL") || message.contains("ssl"))
}

fn is_login(reason: &str) -> bool {
    let message = without_broker_name(reason);
    message.contains("SASL") || message.contains("uthenticat")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_login_over_tls_is_a_login_failure_and_a_handshake_failure_is_tls() {
        let login = "sasl_ssl://localhost:44413/bootstrap: SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 356ms in state AUTH_REQ)";
        assert!(is_login(login) && !is_tls(login));
        let handshake = "ssl://localhost:9093/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified";
        assert!(is_tls(handshake) && !is_login(handshake));
        let tls_under_sasl = "sasl_ssl://localhost:9093/bootstrap: SSL handshake failed: Disconnected";
        assert!(is_tls(tls_under_sasl), "a TLS failure on a SASL_SSL listener is still TLS");
        assert!(!is_tls(
            "127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: Connection refused"
        ));
    }
}
