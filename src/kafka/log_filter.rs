//! kmirror gives each cluster side's settings to every client of that side on purpose (one
//! `--set target.linger.ms` serves the producers; the consumers reading the map get it too).
//! librdkafka warns for each client that ignores a setting of the other kind ("... is a producer
//! property and will be ignored by this consumer instance"): nothing to act on, so those lines
//! are dropped on their way from the `log` records librdkafka's messages arrive as into
//! `tracing`. librdkafka also warns each time it retries getting a producer id while the
//! coordinator loads or finishes the fenced producer's transaction ("...: retrying"): routine on
//! every start after a crash, so those go on at debug level. Every other line passes as it is.
use log::{Level, Log, Metadata, Record};
use tracing_log::LogTracer;

pub struct QuietIgnoredSettings(LogTracer);

impl QuietIgnoredSettings {
    /// Routes `log` records into `tracing` through this filter.
    pub fn install() -> Result<(), log::SetLoggerError> {
        log::set_boxed_logger(Box::new(Self(LogTracer::new())))?;
        log::set_max_level(log::LevelFilter::Trace);
        Ok(())
    }
}

impl Log for QuietIgnoredSettings {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if is_ignored_setting(record) {
            return;
        }
        if is_routine_retry(record) {
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

fn is_ignored_setting(record: &Record<'_>) -> bool {
    if !record.target().starts_with("librdkafka") {
        return false;
    }
    let message = record.args().to_string();
    message.contains("CONFWARN") && message.contains("property and will be ignored by this")
}

fn is_routine_retry(record: &Record<'_>) -> bool {
    if !record.target().starts_with("librdkafka") || record.level() != Level::Warn {
        return false;
    }
    let message = record.args().to_string();
    message.contains("GETPID") && message.trim_end().ends_with(": retrying")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_ignored_setting_warning_is_dropped() {
        let ignored = format_args!(
            "librdkafka: CONFWARN [thrd:app]: Configuration property linger.ms is a producer property and will be ignored by this consumer instance"
        );
        let record = Record::builder().target("librdkafka").args(ignored).build();
        assert!(is_ignored_setting(&record));
        let other = format_args!("librdkafka: CONFWARN [thrd:app]: No `bootstrap.servers` configured");
        assert!(!is_ignored_setting(&Record::builder().target("librdkafka").args(other).build()));
        let elsewhere = format_args!("property and will be ignored by this CONFWARN");
        assert!(!is_ignored_setting(&Record::builder().target("kmirror").args(elsewhere).build()));
    }

    #[test]
    fn a_producer_id_retry_is_routine_and_other_warnings_are_not() {
        let retry = format_args!("librdkafka: GETPID [thrd:main]: Failed to acquire transactional PID from broker TxnCoordinator/1: Broker: Coordinator load in progress: retrying");
        let record = Record::builder().target("librdkafka").level(Level::Warn).args(retry).build();
        assert!(is_routine_retry(&record));
        let fatal = format_args!("librdkafka: GETPID [thrd:main]: Failed to acquire transactional PID from broker TxnCoordinator/1: Broker: Transactional Id authorization failed");
        let record = Record::builder().target("librdkafka").level(Level::Warn).args(fatal).build();
        assert!(!is_routine_retry(&record), "a refusal is no routine retry");
    }
}
