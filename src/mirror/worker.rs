//! A worker thread: hosts some shards and drives them in turn.
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use tracing::info;

use crate::error::{Error, Result};
use crate::mirror::context::MirrorContext;
use crate::mirror::plan::Route;
use crate::mirror::shard::{EarlyClients, Shard};
use crate::mirror::take_back::{take_back, TakenBack};

/// What a worker is told while it runs, on its one channel. The process-wide stop (SIGINT,
/// SIGTERM, a failed worker) stays a flag in the context: a signal handler can only set a flag,
/// and a shard's retry loops must see it mid-call.
#[derive(Debug)]
pub(crate) enum WorkerCommand {
    /// New routes for one shard, found by the topic refresh.
    AddRoutes { shard: u32, routes: Vec<Route> },
    /// The worker's shards were taken from this process (a rebalance): commit and stop.
    Release,
}

/// The shards a worker starts with: each one's routes, and its clients if the run started
/// making them already.
pub(crate) type InitialShards = BTreeMap<u32, (Vec<Route>, Option<EarlyClients>)>;

/// What a worker did, for the run summary.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct WorkerReport {
    pub(crate) records: u64,
}

/// Runs until the mirror stops, or until told to release its shards: either way it commits
/// what it holds first.
pub(crate) fn run_worker(
    index: usize,
    ctx: Arc<MirrorContext>,
    initial: InitialShards,
    commands: Receiver<WorkerCommand>,
) -> Result<WorkerReport> {
    let mut shards = start_all(&ctx, initial)?;
    info!(worker = index, shards = ?shards.iter().map(Shard::id).collect::<Vec<_>>(), "worker started");
    // Several shards share the thread: give each a slice short enough to keep the others fresh.
    let budget = if shards.len() > 1 { Duration::from_millis(50) } else { Duration::from_millis(200) };
    let result = drive(&ctx, &mut shards, &commands, budget);
    let records = shards.iter().map(Shard::records_mirrored).sum();
    close_all(shards);
    result.map(|()| WorkerReport { records })
}

/// Starts the shards side by side: each start waits on the target (fencing, reading the shadow
/// group) for a good part of a second, which one after the other would add up.
fn start_all(ctx: &Arc<MirrorContext>, initial: InitialShards) -> Result<Vec<Shard>> {
    std::thread::scope(|scope| {
        let starting: Vec<_> = initial
            .into_iter()
            .map(|(id, (routes, early))| scope.spawn(move || Shard::start(id, ctx.clone(), routes, early)))
            .collect();
        let mut shards = Vec::new();
        let mut first_error = None;
        for handle in starting {
            match handle.join() {
                Ok(Ok(shard)) => shards.push(shard),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error
                        .get_or_insert(Error::Internal("a shard failed to start (thread panicked)".into()));
                }
            }
        }
        match first_error {
            Some(e) => {
                close_all(shards);
                Err(e)
            }
            None => Ok(shards),
        }
    })
}

/// Closes the shards' clients side by side: each close waits on its brokers.
fn close_all(shards: Vec<Shard>) {
    std::thread::scope(|scope| {
        for shard in shards {
            scope.spawn(move || shard.close());
        }
    });
}

fn drive(
    ctx: &Arc<MirrorContext>,
    shards: &mut Vec<Shard>,
    commands: &Receiver<WorkerCommand>,
    budget: Duration,
) -> Result<()> {
    let mut released = false;
    let mut taken_back = TakenBack::default();
    loop {
        while let Ok(command) = commands.try_recv() {
            match command {
                WorkerCommand::AddRoutes { shard: id, routes } => {
                    match shards.iter().position(|s| s.id() == id) {
                        // Adding commits the open transaction first, which may find the shard fenced.
                        Some(i) => match shards[i].add_routes(routes.clone()) {
                            Err(e) if e.may_be_the_targets_abort() => {
                                let mut again = take_back(ctx, shards.remove(i), e, &mut taken_back)?;
                                let added = again.add_routes(routes);
                                shards.insert(i, again);
                                added?;
                            }
                            other => other?,
                        },
                        None => shards.push(Shard::start(id, ctx.clone(), routes, None)?),
                    }
                }
                WorkerCommand::Release => released = true,
            }
        }
        if ctx.stop.load(Ordering::Relaxed) || released {
            for shard in shards.iter_mut() {
                shard.commit_if_open()?;
            }
            return Ok(());
        }
        // Batch mode has no topic refresh: a worker with no shards has nothing to wait for.
        if ctx.settings.until_caught_up && shards.iter().all(Shard::caught_up) {
            // Done, not silent: /healthz must not call them stuck while other workers copy on.
            for shard in shards.iter() {
                ctx.telemetry.forget_shard(shard.id());
            }
            return Ok(());
        }
        if shards.is_empty() {
            std::thread::sleep(budget);
            continue;
        }
        for i in 0..shards.len() {
            match shards[i].run_for(budget) {
                Ok(()) => {}
                Err(e) if e.may_be_the_targets_abort() => {
                    let fenced = shards.remove(i);
                    let again = take_back(ctx, fenced, e, &mut taken_back)?;
                    shards.insert(i, again);
                }
                Err(e) => return Err(e),
            }
        }
    }
}
