//! The binary's edge: the subcommands, their flags and their output. Runs a parsed command,
//! installs signal handling, reports in one line.
pub mod cli;
#[cfg(feature = "demo")]
mod demo;
mod failback;
mod failover;
pub mod logging;
mod mirrored_partitions;
mod print_config;
mod report;
mod status;
mod translate_offsets;
mod uncopied_at_failover;
mod verify;
use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, warn};

use crate::cmd::cli::{Cli, Command, MirrorArgs};
use crate::config::MirrorSettings;
use crate::mirror::run::Mirror;

/// How long a stop requested by a signal may take to commit what is open before the process
/// exits anyway.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(45);

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Mirror(args) => run_mirror(&args),
        Command::TranslateOffsets(args) => {
            print!("{}", crate::cmd::translate_offsets::run(&args)?);
            Ok(())
        }
        Command::Verify(args) => {
            let (report, proven) = crate::cmd::verify::run(&args)?;
            print!("{report}");
            if !proven {
                anyhow::bail!("verify failed: the target is not an exact copy (see first_problem above)");
            }
            Ok(())
        }
        #[cfg(feature = "demo")]
        Command::Demo(args) => demo::run(&args),
        #[cfg(not(feature = "demo"))]
        Command::Demo(_) => anyhow::bail!(
            "this kmirror was built without its demo (the `demo` feature starts local test clusters): run `cargo run -- demo` in a source checkout"
        ),
        Command::Failover(args) => {
            print!("{}", failover::run(&args)?);
            Ok(())
        }
        Command::Failback(args) => {
            print!("{}", failback::run(&args)?);
            Ok(())
        }
        Command::Status(args) => {
            print!("{}", crate::cmd::status::run(&args)?);
            Ok(())
        }
    }
}

fn run_mirror(args: &MirrorArgs) -> anyhow::Result<()> {
    let settings = MirrorSettings::resolve(&args.layer(), &args.clients.set, args.settings_file())?;
    if args.print_config {
        print!("{}", crate::cmd::print_config::render(&settings));
        return Ok(());
    }
    let until_caught_up = settings.until_caught_up;
    let metrics_addr = settings.metrics_addr.clone();
    let mirror = Mirror::prepare(settings)?;
    let _endpoint = match &metrics_addr {
        Some(addr) => {
            let ctx = mirror.context();
            Some(crate::ops::http::serve(addr, ctx.telemetry.clone(), ctx.settings.transaction_max)?)
        }
        None => None,
    };
    let telemetry_ctx = mirror.context();
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting runtime")?;
    let ctx = mirror.context();
    runtime.spawn(async move {
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        else {
            warn!("could not install signal handlers");
            return;
        };
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        info!(
            grace_s = STOP_GRACE.as_secs(),
            "stopping: committing open transactions (signal again to exit at once)"
        );
        ctx.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        tokio::select! {
            _ = term.recv() => {
                warn!("second signal: exiting now; the next start resumes from the last commit");
                std::process::exit(130);
            }
            _ = int.recv() => {
                warn!("second signal: exiting now; the next start resumes from the last commit");
                std::process::exit(130);
            }
            _ = tokio::time::sleep(STOP_GRACE) => {
                // Seen after the target's transaction coordinator died: librdkafka's
                // send_offsets_to_transaction blocked past its own timeout. Leaving an open
                // transaction is safe: the target aborts it, the next start fences it.
                error!(
                    grace_s = STOP_GRACE.as_secs(),
                    "the target did not let the open transactions finish in time; exiting (the next start resumes from the last commit)"
                );
                std::process::exit(1);
            }
        }
    });
    let summary = runtime
        .block_on(async { tokio::task::spawn_blocking(move || mirror.run()).await })
        .context("mirror task")??;
    if until_caught_up {
        if summary.nothing_to_do {
            println!("nothing to do: every partition of {} topic(s) is already copied", summary.topics.len());
        } else {
            print!(
                "{}",
                crate::ops::summary::render(
                    &telemetry_ctx.telemetry.snapshot(),
                    telemetry_ctx.telemetry.elapsed()
                )
            );
        }
        info!(records = summary.records, topics = summary.topics.len(), "caught up; exiting");
    } else {
        info!(records = summary.records, "stopped");
    }
    Ok(())
}
