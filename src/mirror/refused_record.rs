//! A record the target will never take as it is: larger than it allows, with a timestamp it
//! does not accept, one it calls invalid. Aborting and reading it again meets the same answer
//! (a mirror went round that loop for good, copying nothing of the shard and saying only
//! "aborting transaction"), so the mirror stops and names the record and the setting that lets
//! it through.
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::error::code_of;

/// What lets the record through, where `e` refuses the record itself; None for any other error.
/// `local`: librdkafka refused it before sending it (its own `message.max.bytes`), not a broker.
pub(crate) fn fix_for(e: &KafkaError, local: bool, target_topic: &str) -> Option<String> {
    match code_of(e)? {
        RDKafkaErrorCode::MessageSizeTooLarge if local => Some(
            "it is larger than the target producer's message.max.bytes: raise that, e.g. --set target.message.max.bytes=N (at most 1000000000)"
                .into(),
        ),
        RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::MessageBatchTooLarge => Some(format!(
            "raise max.message.bytes of target topic {target_topic} (kafka-configs.sh --alter --entity-type topics --entity-name {target_topic} --add-config max.message.bytes=N), or the target brokers' message.max.bytes"
        )),
        RDKafkaErrorCode::InvalidTimestamp => Some(format!(
            "its timestamp is outside what target topic {target_topic} accepts: raise message.timestamp.before.max.ms or message.timestamp.after.max.ms there"
        )),
        RDKafkaErrorCode::InvalidRecord => Some(format!(
            "target topic {target_topic} refuses such records (a compacted topic takes none without a key): give it the source topic's configs"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_errors_about_the_record_itself_are_refusals() {
        let local = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        assert!(fix_for(&local, true, "t").is_some_and(|f| f.contains("target.message.max.bytes")));
        assert!(
            fix_for(&local, false, "t").is_some_and(|f| f.contains("max.message.bytes of target topic t"))
        );
        let stale = KafkaError::MessageProduction(RDKafkaErrorCode::InvalidTimestamp);
        assert!(fix_for(&stale, false, "t").is_some_and(|f| f.contains("message.timestamp.before.max.ms")));
        for passing in [
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::NotLeaderForPartition,
            RDKafkaErrorCode::ProducerFenced,
            RDKafkaErrorCode::TopicAuthorizationFailed,
        ] {
            assert_eq!(fix_for(&KafkaError::MessageProduction(passing), false, "t"), None, "{passing:?}");
        }
    }
}
