//! kmirror gives each cluster side's settings to every client of that side on purpose (one
//! `--set target.linger.ms` serves the producers; the consumers reading the map get it too).
//! librdkafka warns for each client that ignores a setting of the other kind ("... is a producer
//! property and will be ignored by this consumer instance"): nothing to act on, so those lines
//! are dropped on their way from the `log` records librdkafka's messages arrive as into
//! `tracing`. Every other line passes.
use log::{Log, Metadata, Record};
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
        if !is_ignored_setting(record) {
            self.0.log(record);
        }
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
}
