use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = kmirror::cmd::cli::Cli::parse();
    kmirror::cmd::logging::init(cli.log_format);
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
