//! A shard fenced while the claim in force on it is still this process's: the target aborted its
//! transaction past `transaction.timeout.ms` (a network partition that long), which bumps the
//! producer epoch as a takeover does (see [`crate::mirror::owners`]). Nobody else holds the
//! shard, so it is started again, as a restart would: new producers fence the dead ones and it
//! resumes from the shadow group's last commit. A claim by anyone else stops it, and so does one
//! that appears while it starts again.
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::warn;

use crate::error::{Error, Result};
use crate::mirror::context::MirrorContext;
use crate::mirror::owners::{claim_in_force, ShardOwner};
use crate::mirror::shard::{target_config, Shard};

/// How long a fenced shard waits before it reads the claims: a new holder fences first and
/// writes its claim a moment later.
const CLAIM_GRACE: Duration = Duration::from_secs(2);

/// When each shard of a worker last took itself back.
#[derive(Default)]
pub(crate) struct TakenBack(HashMap<u32, Instant>);

/// `fenced` (closed here) started again if it is still this process's to hold, else `error`
/// (fencing) naming who took it where a claim says.
pub(crate) fn take_back(
    ctx: &Arc<MirrorContext>,
    fenced: Shard,
    error: Error,
    taken_back: &mut TakenBack,
) -> Result<Shard> {
    let id = fenced.id();
    let routes = fenced.routes().to_vec();
    let records = fenced.records_mirrored();
    fenced.close();
    let grace = Instant::now();
    while grace.elapsed() < CLAIM_GRACE {
        if ctx.stop.load(Ordering::Relaxed) {
            return Err(error);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let Some(claim) = read_claim(ctx, id) else { return Err(error) };
    if !claim.held_by_this_process() {
        return Err(claim.fenced(&ctx.settings.name));
    }
    // Fenced twice within one transaction timeout: whatever fences it does not claim it (an
    // older kmirror, another tool); taking it back again and again would fence that in turn.
    let timeout = ctx.settings.transaction_timeout();
    if taken_back.0.get(&id).is_some_and(|at| at.elapsed() < timeout) {
        return Err(error);
    }
    warn!(
        shard = id,
        "fenced, yet the claim in force on the shard is this process's: the target aborted its transaction after target.transaction.timeout.ms (was it out of reach that long?); taking the shard back and resuming from the last commit"
    );
    taken_back.0.insert(id, Instant::now());
    let mut shard = match Shard::start(id, ctx.clone(), routes, None) {
        Ok(shard) => shard,
        // Fenced again while starting (it commits positions it resolves): by whom, if a claim
        // says it was someone else.
        Err(e @ Error::Fenced { .. }) => {
            return Err(match read_claim(ctx, id) {
                Some(claim) if !claim.held_by_this_process() => claim.fenced(&ctx.settings.name),
                _ => e,
            })
        }
        Err(e) => return Err(e),
    };
    // Read again now that the new producers have fenced: a failover (whose claim lands before
    // it fences) or another process that claimed the shard since the first read would
    // otherwise be fenced in turn by this start. No record is copied before this check.
    match read_claim(ctx, id) {
        Some(claim) if claim.held_by_this_process() => {}
        Some(claim) => {
            shard.close();
            return Err(claim.fenced(&ctx.settings.name));
        }
        None => {
            shard.close();
            return Err(error);
        }
    }
    shard.add_records(records);
    Ok(shard)
}

/// The claim in force on shard `id`, None (said) where there is none or it cannot be read.
fn read_claim(ctx: &MirrorContext, id: u32) -> Option<ShardOwner> {
    match claim_in_force(&target_config(ctx), &ctx.settings.name, id) {
        Ok(claim) => claim,
        Err(e) => {
            warn!(shard = id, error = %e, "could not read the shard's claims to tell a takeover from the target's abort");
            None
        }
    }
}
