//! When to ask whether a source consumer is wedged.
//!
//! librdkafka drops every broker it knows when a metadata answer lists none (a Kafka broker
//! fenced by its controller answers so, e.g. a single broker that was frozen past its session
//! timeout), and from then on it skips every topic refresh for want of a "usable broker": the
//! consumer never fetches again, with no error to the application (librdkafka issue 5301). A
//! shard therefore notes when its consumer last handed it a record; after a quiet spell it asks
//! the source where its partitions end, and replaces a consumer that cannot answer or that sits
//! below an end.
use std::time::{Duration, Instant};

/// Quiet time before the question is asked; an idle source costs one ListOffsets per spell.
const QUIET: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub(crate) struct StallWatch {
    last_progress: Instant,
    quiet: Duration,
}

impl Default for StallWatch {
    fn default() -> Self {
        Self::new(QUIET)
    }
}

impl StallWatch {
    pub(crate) fn new(quiet: Duration) -> Self {
        Self { last_progress: Instant::now(), quiet }
    }

    /// The consumer handed over a record (or was just checked and found well).
    pub(crate) fn progressed(&mut self) {
        self.last_progress = Instant::now();
    }

    /// Has the consumer been quiet long enough to be checked?
    pub(crate) fn due(&self) -> bool {
        self.last_progress.elapsed() >= self.quiet
    }
}

/// Is a consumer at `position` (None: it has not read yet) below the partition's committed
/// `end` (None: the source did not say)? Not having an answer counts as being below.
pub(crate) fn behind(position: Option<i64>, end: Option<i64>) -> bool {
    match (position, end) {
        (_, None) => true,
        (Some(position), Some(end)) => position < end,
        (None, Some(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_spell_then_due_and_progress_resets_it() {
        let mut watch = StallWatch::new(Duration::from_millis(30));
        assert!(!watch.due());
        std::thread::sleep(Duration::from_millis(40));
        assert!(watch.due());
        watch.progressed();
        assert!(!watch.due());
    }

    #[test]
    fn behind_only_below_a_known_end_or_without_an_answer() {
        assert!(behind(Some(5), Some(10)));
        assert!(!behind(Some(10), Some(10)), "at the end: idle, not wedged");
        assert!(behind(Some(10), None), "no answer from the source");
        assert!(!behind(None, Some(10)), "not reading yet");
    }
}
