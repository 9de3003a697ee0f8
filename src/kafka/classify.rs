//! What to do about an error of a Kafka call on the data path: one place that sorts every
//! error librdkafka returns into retry, abort, fatal or fenced.
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::error::{code_of, is_refusal};

/// The response an error calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Transient (a broker not answering, a timeout): the same call again, after a back-off.
    Retry,
    /// The open transaction cannot commit: abort it and read again from the last commit.
    Abort,
    /// The producer can do nothing more: stop; the next start resumes from the last commit.
    Fatal,
    /// Another instance with this transactional id took over: stop, never retry.
    Fenced,
    /// The cluster's authorizer refused: no retry or abort can succeed until someone grants
    /// the ACL, so stop and say which.
    Denied,
}

/// What librdkafka says of an error, taken apart so the rule below can be tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Facts {
    pub(crate) code: Option<RDKafkaErrorCode>,
    /// Set for errors of transactional calls.
    pub(crate) fatal: bool,
    pub(crate) retriable: bool,
    /// librdkafka's word that the transaction failed and must be aborted (e.g. records that
    /// timed out in a partition): calling again can never succeed.
    pub(crate) requires_abort: bool,
}

impl Facts {
    pub(crate) fn of(e: &KafkaError) -> Self {
        match e {
            KafkaError::Transaction(t) => Facts {
                code: Some(t.code()),
                fatal: t.is_fatal(),
                retriable: t.is_retriable(),
                requires_abort: t.txn_requires_abort(),
            },
            other => Facts { code: code_of(other), ..Facts::default() },
        }
    }
}

pub(crate) fn classify(e: &KafkaError) -> Class {
    classify_facts(Facts::of(e))
}

/// Fencing codes win over every flag: some brokers answer a fenced TxnOffsetCommit with an error
/// librdkafka calls abortable, yet the abort then never completes. Stopping is always safe.
pub(crate) fn classify_facts(facts: Facts) -> Class {
    match facts.code {
        Some(
            RDKafkaErrorCode::Fenced
            | RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch,
        ) => Class::Fenced,
        Some(code) if is_refusal(code) => Class::Denied,
        _ if facts.fatal => Class::Fatal,
        // Seen after a network partition: commit_transaction answered "1 message(s) timed out"
        // (abortable and not fatal) again and again; only an abort gets the shard going.
        _ if facts.requires_abort => Class::Abort,
        _ if facts.retriable => Class::Retry,
        Some(RDKafkaErrorCode::OperationTimedOut) => Class::Retry,
        _ => Class::Abort,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(code: RDKafkaErrorCode, fatal: bool, retriable: bool) -> Facts {
        Facts { code: Some(code), fatal, retriable, requires_abort: false }
    }

    #[test]
    fn a_transaction_librdkafka_says_must_be_aborted_is_aborted_not_retried() {
        let timed_out = Facts { requires_abort: true, ..txn(RDKafkaErrorCode::MessageTimedOut, false, true) };
        assert_eq!(classify_facts(timed_out), Class::Abort);
        let fenced = Facts { requires_abort: true, ..txn(RDKafkaErrorCode::ProducerFenced, false, false) };
        assert_eq!(classify_facts(fenced), Class::Fenced, "fencing still wins");
    }

    #[test]
    fn fencing_wins_over_every_flag() {
        for code in [
            RDKafkaErrorCode::Fenced,
            RDKafkaErrorCode::ProducerFenced,
            RDKafkaErrorCode::InvalidProducerEpoch,
        ] {
            assert_eq!(classify_facts(txn(code, false, true)), Class::Fenced, "{code:?}");
            assert_eq!(classify_facts(txn(code, true, false)), Class::Fenced, "{code:?}");
        }
    }

    #[test]
    fn a_refused_authorization_stops_whatever_librdkafka_says_of_it() {
        for code in [
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::GroupAuthorizationFailed,
            RDKafkaErrorCode::ClusterAuthorizationFailed,
            RDKafkaErrorCode::TransactionalIdAuthorizationFailed,
        ] {
            assert_eq!(classify_facts(txn(code, false, false)), Class::Denied, "{code:?}");
            let abortable = Facts { requires_abort: true, ..txn(code, false, true) };
            assert_eq!(classify_facts(abortable), Class::Denied, "{code:?}");
            assert_eq!(classify_facts(txn(code, true, false)), Class::Denied, "{code:?}");
        }
        assert_eq!(classify(&KafkaError::Global(RDKafkaErrorCode::TopicAuthorizationFailed)), Class::Denied);
        assert_eq!(classify(&KafkaError::AdminOp(RDKafkaErrorCode::TopicAuthorizationFailed)), Class::Denied);
    }

    #[test]
    fn fatal_then_retriable_then_abort() {
        assert_eq!(classify_facts(txn(RDKafkaErrorCode::Fatal, true, true)), Class::Fatal);
        assert_eq!(classify_facts(txn(RDKafkaErrorCode::CoordinatorNotAvailable, false, true)), Class::Retry);
        assert_eq!(
            classify_facts(txn(RDKafkaErrorCode::InvalidTransactionalState, false, false)),
            Class::Abort
        );
    }

    #[test]
    fn a_timed_out_call_is_retried_and_other_client_errors_abort() {
        assert_eq!(classify(&KafkaError::Global(RDKafkaErrorCode::OperationTimedOut)), Class::Retry);
        assert_eq!(classify(&KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)), Class::Retry);
        assert_eq!(classify(&KafkaError::Global(RDKafkaErrorCode::MessageSizeTooLarge)), Class::Abort);
        assert_eq!(classify(&KafkaError::Global(RDKafkaErrorCode::ProducerFenced)), Class::Fenced);
    }
}
