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
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
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
