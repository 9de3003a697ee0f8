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

/// A consumer closed with [`close`] when dropped: for one kept in a longer-lived value.
pub(crate) struct ClosedOnDrop<C: ConsumerContext>(Option<BaseConsumer<C>>);

impl<C: ConsumerContext> ClosedOnDrop<C> {
    pub(crate) fn new(consumer: BaseConsumer<C>) -> Self {
        Self(Some(consumer))
    }
}

impl<C: ConsumerContext> std::ops::Deref for ClosedOnDrop<C> {
    type Target = BaseConsumer<C>;

    fn deref(&self) -> &BaseConsumer<C> {
        // Taken only by the drop.
        self.0.as_ref().expect("a consumer closed on drop is there until then")
    }
}

impl<C: ConsumerContext> Drop for ClosedOnDrop<C> {
    fn drop(&mut self) {
        if let Some(consumer) = self.0.take() {
            close(consumer);
        }
    }
}
