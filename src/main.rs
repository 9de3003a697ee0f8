use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use kmirror::cli::LogFormat;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = kmirror::cli::Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(kmirror::terminal::log_writer);
    match cli.log_format {
        LogFormat::Json => logs.json().with_current_span(false).init(),
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    match kmirror::app::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kmirror: error: {e:#}");
            ExitCode::from(
                e.downcast_ref::<kmirror::error::Error>().map_or(1, kmirror::error::Error::exit_code),
            )
        }
    }
}
