//! The largest record a shard's producers send (`message.max.bytes`), raised for a larger record
//! where the user left it to kmirror: a topic made to take records over Kafka's default is then
//! copied without a setting. The limit is a producer's for life, so a raise aborts the open
//! transaction and makes the shard's producers again, and the record is read again.
use super::clients::{target_config, PRODUCER_MESSAGE_MAX_BYTES};
use crate::mirror::context::MirrorContext;

/// librdkafka's largest `message.max.bytes`.
const LARGEST: u64 = 1_000_000_000;

#[derive(Debug, Clone, Copy)]
pub(super) struct RecordLimit {
    /// Set by the user: never raised (a record over it stops the mirror, naming the setting).
    user_set: bool,
    /// What the shard's producers were made with, where kmirror raised it.
    raised: Option<u64>,
    /// What the next producers must take.
    wanted: Option<u64>,
}

impl RecordLimit {
    pub(super) fn new(ctx: &MirrorContext) -> Self {
        Self { user_set: target_config(ctx).get("message.max.bytes").is_some(), raised: None, wanted: None }
    }

    fn current(&self) -> u64 {
        self.wanted.or(self.raised).unwrap_or(PRODUCER_MESSAGE_MAX_BYTES)
    }

    /// Whether a record over the limit may raise it.
    pub(super) fn raisable(&self) -> bool {
        !self.user_set && self.current() < LARGEST
    }

    /// Raises the limit the next producers get for a record of `bytes` (key, value and headers):
    /// twice past it, so that a topic of large records raises it once or twice, not at every
    /// larger one. Returns the new limit.
    pub(super) fn raise_for(&mut self, bytes: u64) -> u64 {
        let raised = bytes.saturating_add(64 * 1024).saturating_mul(2).clamp(self.current(), LARGEST);
        self.wanted = Some(raised);
        raised
    }

    /// A limit the producers do not have yet, to make them with; afterwards they have it.
    pub(super) fn take_wanted(&mut self) -> Option<u64> {
        let wanted = self.wanted.take()?;
        self.raised = Some(wanted);
        Some(wanted)
    }

    /// The limit to make a producer with (None: the configured one).
    pub(super) fn raised(&self) -> Option<u64> {
        self.raised
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raise_doubles_past_the_record_and_stops_at_librdkafkas_largest() {
        let mut limit = RecordLimit { user_set: false, raised: None, wanted: None };
        assert!(limit.raisable());
        let raised = limit.raise_for(3_000_000);
        assert_eq!(raised, 2 * (3_000_000 + 64 * 1024));
        assert_eq!(limit.raised(), None, "the producers have it only once made again");
        assert_eq!(limit.take_wanted(), Some(raised));
        assert_eq!((limit.raised(), limit.take_wanted()), (Some(raised), None));
        assert_eq!(limit.raise_for(900_000_000), LARGEST);
        limit.take_wanted();
        assert!(!limit.raisable(), "at librdkafka's largest");
        let set = RecordLimit { user_set: true, raised: None, wanted: None };
        assert!(!set.raisable(), "the user's own setting is never raised");
    }
}
