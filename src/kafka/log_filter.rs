//! librdkafka's messages arrive as `log` records; this brings them into `tracing`. librdkafka
//! warns each time it retries getting a producer id while the coordinator loads or finishes the
//! fenced producer's transaction ("...: retrying"): routine on every start after a crash, so
//! those go on at debug level; so does rust-rdkafka's complaint, when it drops a consumer
//! [`crate::kafka::consumer_close`] already closed, that it could not close it again; and so does
//! a "SASL authentication error" whose cause is the connection's own end (a client destroyed
//! while it logged in, as every client of a run that stops on an error may be), which names no
//! authentication problem. Until a command has reached its clusters, librdkafka's lines on a
//! connection that failed go on at debug level too: a command that cannot reach a cluster stops
//! with a one-line error that carries librdkafka's reason, and the same reason printed above it
//! once or twice per client at ERROR level buried that line. A mirror that has started says
//! every such failure again (it goes on through them). Every other line passes as it is.
//! (Settings meant for the other kind of client never reach a client: see
//! [`crate::kafka::client`].)
use std::sync::atomic::{AtomicBool, Ordering};

use log::{Level, Log, Metadata, Record};
use tracing_log::{AsLog, LogTracer};

pub(crate) struct LibrdkafkaLog(LogTracer);

/// Whether the process is still starting (see the module's comment).
static STARTING: AtomicBool = AtomicBool::new(true);

/// The command has reached its clusters: from now on a failed connection is logged as
/// librdkafka logs it.
pub(crate) fn clusters_reached() {
    STARTING.store(false, Ordering::Relaxed);
}

impl LibrdkafkaLog {
    /// Routes `log` records into `tracing` through this filter; installed after the `tracing`
    /// subscriber, whose most verbose level it takes on.
    pub(crate) fn install() -> Result<(), log::SetLoggerError> {
        log::set_boxed_logger(Box::new(Self(LogTracer::new())))?;
        // Not `Trace` whatever the filter: rust-rdkafka traces twice for every message it
        // drops, and each such call went through this logger to be refused by the filter
        // (1.2 % of a shard's CPU in a steady mirror); below the level, `log` drops them at
        // the call for the price of one atomic load.
        log::set_max_level(tracing::level_filters::LevelFilter::current().as_log());
        Ok(())
    }
}

impl Log for LibrdkafkaLog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if is_routine_retry(record)
            || is_second_close(record)
            || is_login_cut_short(record)
            || (STARTING.load(Ordering::Relaxed) && is_connection_failure(record))
        {
            self.0.log(
                &Record::builder()
                    .level(Level::Debug)
                    .target(record.target())
                    .args(*record.args())
                    .module_path(record.module_path())
                    .file(record.file())
                    .line(record.line())
                    .build(),
            );
            return;
        }
        self.0.log(record);
    }

    fn flush(&self) {
        self.0.flush();
    }
}

fn is_routine_retry(record: &Record<'_>) -> bool {
    if !record.target().starts_with("librdkafka") || record.level() != Level::Warn {
        return false;
    }
    let message = record.args().to_string();
    message.contains("GETPID") && message.trim_end().ends_with(": retrying")
}

/// rust-rdkafka's drop closes a consumer of a group whether or not it is closed already; for
/// one that is, librdkafka answers "destroyed" and the drop skips its wait.
fn is_second_close(record: &Record<'_>) -> bool {
    if !record.target().starts_with("rdkafka::consumer") || record.level() != Level::Error {
        return false;
    }
    let message = record.args().to_string();
    message.starts_with("Failed to close consumer queue on drop") && message.contains("destroyed")
}

/// A login that failed because its connection went down, not because the broker refused it
/// (that is SASL_AUTHENTICATION_FAILED, "Authentication failed ..."): librdkafka logs it, and
/// rust-rdkafka logs it again as a global error, both as errors. A connection that keeps going
/// down says so in lines of its own.
fn is_login_cut_short(record: &Record<'_>) -> bool {
    if !(record.target().starts_with("librdkafka") || record.target().starts_with("rdkafka::client")) {
        return false;
    }
    let message = record.args().to_string();
    message.contains(
        "SASL authentication error: SaslAuthenticateRequest failed: Local: Broker transport failure",
    )
}

/// librdkafka's line on a connection to a bootstrap broker that failed (refused, unresolved,
/// TLS, login: its `FAIL` facility), rust-rdkafka's global error on one, and the one once all
/// brokers are down: what the one-line error says. A broker learned from the cluster's answer
/// (`host:port/ID`, a wrong `advertised.listeners` say) is not in that error, and is logged.
fn is_connection_failure(record: &Record<'_>) -> bool {
    let message = record.args().to_string();
    let bootstrap = message.contains("/bootstrap]") || message.contains("/bootstrap: ");
    (record.target().starts_with("librdkafka") && message.starts_with("librdkafka: FAIL [") && bootstrap)
        || (record.target().starts_with("rdkafka::client")
            && message.starts_with("librdkafka: Global error: ")
            && (bootstrap || message.contains("AllBrokersDown")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_producer_id_retry_is_routine_and_other_warnings_are_not() {
        let retry = format_args!("librdkafka: GETPID [thrd:main]: Failed to acquire transactional PID from broker TxnCoordinator/1: Broker: Coordinator load in progress: retrying");
        let record = Record::builder().target("librdkafka").level(Level::Warn).args(retry).build();
        assert!(is_routine_retry(&record));
        let fatal = format_args!("librdkafka: GETPID [thrd:main]: Failed to acquire transactional PID from broker TxnCoordinator/1: Broker: Transactional Id authorization failed");
        let record = Record::builder().target("librdkafka").level(Level::Warn).args(fatal).build();
        assert!(!is_routine_retry(&record), "a refusal is no routine retry");
    }

    #[test]
    fn only_the_close_of_an_already_closed_consumer_is_quietened() {
        let second = format_args!("Failed to close consumer queue on drop: Consumer queue close error: BrokerDestroy (Local: Broker handle destroyed for termination)");
        let record = Record::builder()
            .target("rdkafka::consumer::base_consumer")
            .level(Level::Error)
            .args(second)
            .build();
        assert!(is_second_close(&record));
        let failed = format_args!(
            "Failed to close consumer queue on drop: Consumer queue close error: Fatal (Local: Fatal error)"
        );
        let record = Record::builder()
            .target("rdkafka::consumer::base_consumer")
            .level(Level::Error)
            .args(failed)
            .build();
        assert!(!is_second_close(&record), "a close that failed is still an error");
    }

    #[test]
    fn a_login_cut_short_by_its_connection_is_quietened_and_a_refused_login_is_not() {
        let cut = format_args!("librdkafka: FAIL [thrd:GroupCoordinator]: GroupCoordinator: SASL authentication error: SaslAuthenticateRequest failed: Local: Broker transport failure (after 0ms in state DOWN)");
        let record = Record::builder().target("librdkafka").level(Level::Error).args(cut).build();
        assert!(is_login_cut_short(&record));
        let again = format_args!("librdkafka: Global error: BrokerTransportFailure (Local: Broker transport failure): GroupCoordinator: SASL authentication error: SaslAuthenticateRequest failed: Local: Broker transport failure (after 0ms in state DOWN)");
        let record = Record::builder().target("rdkafka::client").level(Level::Error).args(again).build();
        assert!(is_login_cut_short(&record));
        let refused = format_args!("librdkafka: FAIL [thrd:sasl_plaintext://127.0.0.1:9092/bootstrap]: sasl_plaintext://127.0.0.1:9092/bootstrap: SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256 (after 3ms in state AUTH_REQ)");
        let record = Record::builder().target("librdkafka").level(Level::Error).args(refused).build();
        assert!(!is_login_cut_short(&record), "wrong credentials are still an error");
    }

    #[test]
    fn connection_failures_are_told_apart_from_other_errors() {
        let refused = format_args!("librdkafka: FAIL [thrd:127.0.0.1:1/bootstrap]: 127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused (after 0ms in state CONNECT)");
        let record = Record::builder().target("librdkafka").level(Level::Error).args(refused).build();
        assert!(is_connection_failure(&record));
        let down = format_args!("librdkafka: Global error: AllBrokersDown (Local: All broker connections are down): 1/1 brokers are down");
        let record = Record::builder().target("rdkafka::client").level(Level::Error).args(down).build();
        assert!(is_connection_failure(&record));
        let fenced = format_args!("librdkafka: Global error: Fatal (Local: Fatal error): Producer fenced");
        let record = Record::builder().target("rdkafka::client").level(Level::Error).args(fenced).build();
        assert!(!is_connection_failure(&record), "a fatal error is no connection failure");
        let other = format_args!("librdkafka: TXNERR [thrd:main]: Current transaction failed");
        let record = Record::builder().target("librdkafka").level(Level::Error).args(other).build();
        assert!(!is_connection_failure(&record));
        let tls = format_args!("librdkafka: Global error: SSL (Local: SSL error): ssl://localhost:9093/bootstrap: SSL handshake failed: certificate verify failed (after 3ms in state SSL_HANDSHAKE)");
        let record = Record::builder().target("rdkafka::client").level(Level::Error).args(tls).build();
        assert!(is_connection_failure(&record), "the start's error says it");
        let learned = format_args!("librdkafka: FAIL [thrd:kafka-1.internal:9092/1]: kafka-1.internal:9092/1: Failed to resolve 'kafka-1.internal:9092': Name or service not known (after 2ms in state CONNECT)");
        let record = Record::builder().target("librdkafka").level(Level::Error).args(learned).build();
        assert!(!is_connection_failure(&record), "a broker the cluster named is not in the start's error");
    }
}
