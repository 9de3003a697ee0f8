//! The binary's edge: runs a parsed command, installs signal handling, reports in one line.
use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{info, warn};

use crate::cli::{Cli, Command, MirrorArgs};
use crate::config::MirrorSettings;
use crate::mirror::Mirror;

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Mirror(args) => run_mirror(&args),
        Command::TranslateOffsets(args) => {
            print!("{}", crate::translate_cmd::run(&args)?);
            Ok(())
        }
        Command::Verify(args) => {
            let (report, proven) = crate::verify_cmd::run(&args)?;
            print!("{report}");
            if !proven {
                anyhow::bail!("verify failed: the target is not an exact copy (see first_problem above)");
            }
            Ok(())
        }
        Command::Demo(args) => crate::demo::run(&args),
        Command::Status(args) => {
            print!("{}", crate::status_cmd::run(&args)?);
            Ok(())
        }
    }
}

fn run_mirror(args: &MirrorArgs) -> anyhow::Result<()> {
    let settings = MirrorSettings::resolve(args)?;
    if args.print_config {
        print!("{}", crate::print_config::render(&settings));
        return Ok(());
    }
    let until_caught_up = settings.until_caught_up;
    let metrics_addr = settings.metrics_addr.clone();
    let mirror = Mirror::prepare(settings)?;
    let _endpoint = match &metrics_addr {
        Some(addr) => Some(crate::http_endpoint::serve(addr, mirror.context())?),
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
        info!("stopping: committing open transactions (signal again to exit at once)");
        ctx.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        warn!("second signal: exiting now; the next start resumes from the last commit");
        std::process::exit(130);
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
                crate::summary::render(
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
