//! Closing a consumer of a group without waiting out rust-rdkafka's 100 ms poll steps.
//!
//! Dropping a consumer that has a `group.id` (every consumer of kmirror: librdkafka wants one for
//! `assign`, and the shadow clients read their groups) starts librdkafka's close, then polls in
//! 100 ms steps until librdkafka says it is closed. A poll returns at its timeout, not when the
//! close is done, so each such drop took 100 ms or more: twice per shard at the end of every run,
//! once per shadow group read at the start. Here the close is started and polled for in 1 ms
//! steps; the drop then finds the consumer closed, and tries to close it once more (the error it
//! logs for that is quietened by the log filter, `kafka::log_filter`).
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, ConsumerContext};

const STEP: Duration = Duration::from_millis(1);
/// After this the drop goes on waiting in its own steps: a close never ends sooner by giving up.
const LIMIT: Duration = Duration::from_secs(5);

/// Closes and drops `consumer`.
pub(crate) fn close<C: ConsumerContext>(consumer: BaseConsumer<C>) {
    // Fails at once (and the drop then skips its close too) for a consumer without a group.
    if consumer.close_queue().is_ok() {
        let deadline = Instant::now() + LIMIT;
        while !consumer.closed() && Instant::now() < deadline {
            // Serves the close's own events; records still prefetched are let go (what the
            // mirror goes on from is its committed positions, never what a consumer held).
            let _ = consumer.poll(STEP);
        }
    }
    drop(consumer);
}
