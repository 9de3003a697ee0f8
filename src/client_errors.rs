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
pub struct ErrorRecorder {
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
pub fn unreachable(
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
        Some(r) if r.contains("SSL") || r.contains("ssl") => Error::Refused {
            side,
            bootstrap,
            message: format!(
                "TLS failed: {r} (check the {side} ssl.* settings: CA, certificate, key, host name)"
            ),
        },
        Some(r) if r.contains("SASL") || r.contains("uthenticat") => Error::Refused {
            side,
            bootstrap,
            message: format!("authentication failed: {r} (check the {side} sasl.* settings)"),
        },
        Some(r) => Error::Unreachable { side, bootstrap, message: format!("{e}: {r}") },
        None => Error::Unreachable { side, bootstrap, message: e.to_string() },
    }
}
