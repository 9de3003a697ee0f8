//! Where the log goes: tracing to stderr as text or JSON lines, with librdkafka's own messages
//! brought in (filtered in `kafka::log_filter`).
use std::io::IsTerminal;

use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

use crate::cmd::cli::LogFormat;
use crate::kafka::log_filter::LibrdkafkaLog;

/// Sets up the process's logging, once, before anything else runs. `RUST_LOG` filters it
/// [default: info].
pub fn init(format: LogFormat) {
    init_with(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")), format);
}

fn init_with(filter: EnvFilter, format: LogFormat) {
    let lines = tracing_subscriber::fmt::layer().with_writer(crate::ops::terminal::log_writer);
    let lines = match format {
        LogFormat::Json => lines.json().with_current_span(false).boxed(),
        LogFormat::Text => lines.with_ansi(std::io::stderr().is_terminal()).boxed(),
    };
    let subscriber = tracing_subscriber::registry().with(filter).with(lines);
    if tracing::subscriber::set_global_default(subscriber).is_err() || LibrdkafkaLog::install().is_err() {
        eprintln!("kmirror: warning: logging could not be set up");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The only test of this binary that sets the process's logging. Its filter lets errors
    /// through and debug lines of a target nothing logs to: the other unit tests' lines, which
    /// the harness does not capture once a subscriber is global, stay out of its output.
    #[test]
    fn log_records_below_the_filter_are_refused_before_they_reach_the_logger() {
        init_with(EnvFilter::new("error,logging_test=debug"), LogFormat::Text);
        assert_eq!(log::max_level(), log::LevelFilter::Debug, "the filter's most verbose level");
        assert!(!log::log_enabled!(target: "rdkafka::util", log::Level::Trace));
        assert!(log::log_enabled!(target: "librdkafka", log::Level::Error));
        assert!(!log::log_enabled!(target: "librdkafka", log::Level::Warn), "below the filter for it");
    }
}
