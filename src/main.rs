use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use kmirror::cmd::cli::LogFormat;
use kmirror::kafka::log_filter::LibrdkafkaLog;
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = kmirror::cmd::cli::Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let lines = tracing_subscriber::fmt::layer().with_writer(kmirror::ops::terminal::log_writer);
    let lines = match cli.log_format {
        LogFormat::Json => lines.json().with_current_span(false).boxed(),
        LogFormat::Text => lines.with_ansi(std::io::stderr().is_terminal()).boxed(),
    };
    let subscriber = tracing_subscriber::registry().with(filter).with(lines);
    // librdkafka's messages come as `log` records; they reach tracing through a filter.
    if tracing::subscriber::set_global_default(subscriber).is_err() || LibrdkafkaLog::install().is_err() {
        eprintln!("kmirror: warning: logging could not be set up");
    }
    match kmirror::cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kmirror: error: {e:#}");
            ExitCode::from(
                e.downcast_ref::<kmirror::error::Error>().map_or(1, kmirror::error::Error::exit_code),
            )
        }
    }
}
