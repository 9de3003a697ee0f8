//! Consumer groups' committed offsets through the admin API (ListConsumerGroupOffsets), with
//! `require_stable` (but for [`Unstable::Settled`]): a position a transaction has not finished
//! committing is asked again, never read half-written.
//!
//! A consumer reads only its own group's offsets, so reading several groups took a client per
//! group: a connection, a coordinator lookup and a close each. An admin request goes out on a
//! client that is already connected, for any group, several side by side. rust-rdkafka wraps no
//! ListConsumerGroupOffsets; librdkafka has it (one group per call), so it is called here
//! through the C API.
use std::time::{Duration, Instant};

use rdkafka::bindings as rd;
use rdkafka::client::{Client, ClientContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use tracing::warn;

use crate::error::{is_refusal, Error, Side};
use crate::kafka::ffi::{c_string, text, AdminRequest, Guard};

/// Between asks for a group whose answer was not final (a transaction still committing its
/// offsets, a coordinator still loading or moving).
const ASK_AGAIN_AFTER: Duration = Duration::from_millis(20);

/// One partition's committed offset in a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommittedOffset {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    /// `None`: the group has committed no offset for it.
    pub(crate) offset: Option<i64>,
    pub(crate) metadata: String,
}

/// Why a group's offsets were not read: librdkafka's code where it gave one, and its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotRead {
    pub(crate) code: Option<RDKafkaErrorCode>,
    pub(crate) why: String,
}

impl NotRead {
    pub(crate) fn uncoded(why: String) -> Self {
        Self { code: None, why }
    }

    /// The error to stop with: a refusal by the cluster's authorizer as one (the fix is an
    /// ACL, not another try), anything else in the cluster's words.
    pub(crate) fn into_error(self, side: Side, group: &str) -> Error {
        match self.code.filter(|code| is_refusal(*code)) {
            Some(code) => Error::Denied {
                side,
                context: format!("reading the committed offsets of group {group} ({})", self.why),
                cause: KafkaError::AdminOp(code),
            },
            None => Error::GroupRead { side, group: group.to_string(), message: self.why },
        }
    }
}

/// What one group is asked: its id and the partitions (None: every partition it has an
/// offset for).
pub(crate) struct GroupQuery<'a> {
    pub(crate) group: &'a str,
    pub(crate) partitions: Option<&'a [(String, i32)]>,
    /// A partition the cluster will not answer for (say, a topic the principal may no longer
    /// DESCRIBE) is left out with a warning instead of failing the group's read: for a reader
    /// of application groups, where a consumer's own read leaves it out too. Never for the
    /// mirror's own positions, which must not read as "none committed".
    pub(crate) skip_failed_partitions: bool,
}

/// Whether to wait while a transaction still commits offsets of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unstable {
    /// Ask again until the transaction ends or the time is up.
    Wait,
    /// Answer at once with an error: for a reader that knows the transaction ends only once it
    /// is fenced, which waits for this answer.
    Report,
    /// Answer with what the last finished commit left, without waiting (no `require_stable`):
    /// for a reader that only shows where a mirror stands. A killed mirror's open transaction
    /// stays open until the target's transaction timeout, which `status` must not wait out.
    Settled,
}

/// The committed offsets of every queried group, in the order asked, all asked side by side on
/// `client`, which must have a group id of its own (see `config::names::group_reader`). A group
/// whose answer stays unsettled (a transaction still committing, see `unstable`; a coordinator
/// unavailable) until `timeout` gets an error naming why.
pub(crate) fn committed_offsets<C: ClientContext>(
    client: &Client<C>,
    queries: &[GroupQuery<'_>],
    unstable: Unstable,
    timeout: Duration,
) -> Vec<Result<Vec<CommittedOffset>, NotRead>> {
    let deadline = Instant::now() + timeout;
    let mut answers: Vec<Answer> =
        queries.iter().map(|_| Answer::Again(NotRead::uncoded("not asked".into()))).collect();
    loop {
        let pending: Vec<usize> = (0..queries.len()).filter(|&i| answers[i].again()).collect();
        if pending.is_empty() {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        // Every request goes out before the first answer is waited for.
        let asked: Vec<(usize, Result<Asked, NotRead>)> =
            pending.iter().map(|&i| (i, send(client, &queries[i], unstable, left))).collect();
        for (i, request) in asked {
            answers[i] = match request {
                Ok(request) => request.answer(unstable),
                Err(e) => Answer::Done(Err(e)),
            };
        }
        if !answers.iter().any(Answer::again) || Instant::now() + ASK_AGAIN_AFTER >= deadline {
            break;
        }
        std::thread::sleep(ASK_AGAIN_AFTER);
    }
    answers
        .into_iter()
        .map(|a| match a {
            Answer::Done(result) => result,
            Answer::Again(NotRead { code, why }) => {
                Err(NotRead { code, why: format!("{why} (still after {} ms)", timeout.as_millis()) })
            }
        })
        .collect()
}

/// A group's answer: final, or one that asking again may change.
enum Answer {
    Done(Result<Vec<CommittedOffset>, NotRead>),
    Again(NotRead),
}

impl Answer {
    fn again(&self) -> bool {
        matches!(self, Answer::Again(_))
    }

    fn error(code: RDKafkaErrorCode, why: String, unstable: Unstable) -> Self {
        let reported = unstable == Unstable::Report && code == RDKafkaErrorCode::UnstableOffsetCommit;
        let not_read = NotRead { code: Some(code), why };
        match asking_again_helps(code) && !reported {
            true => Answer::Again(not_read),
            false => Answer::Done(Err(not_read)),
        }
    }
}

/// A request under way.
struct Asked {
    request: AdminRequest,
    group: String,
    skip_failed_partitions: bool,
}

fn send<C: ClientContext>(
    client: &Client<C>,
    query: &GroupQuery<'_>,
    unstable: Unstable,
    timeout: Duration,
) -> Result<Asked, NotRead> {
    let group = c_string(query.group).map_err(NotRead::uncoded)?;
    let topics = query
        .partitions
        .map(|partitions| {
            partitions.iter().map(|(t, p)| Ok((c_string(t)?, *p))).collect::<Result<Vec<_>, String>>()
        })
        .transpose()
        .map_err(NotRead::uncoded)?;
    // SAFETY: every pointer handed to librdkafka is its own (released by a Guard after its last
    // use) or a CString alive until the call returns; librdkafka copies the group, the
    // partition list and the options it is handed.
    unsafe {
        let request = AdminRequest::new(
            client.native_ptr(),
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS,
            timeout,
        );
        let require = i32::from(unstable != Unstable::Settled);
        let stable = rd::rd_kafka_AdminOptions_set_require_stable_offsets(request.options.ptr, require);
        if !stable.is_null() {
            let message = text(rd::rd_kafka_error_string(stable));
            rd::rd_kafka_error_destroy(stable);
            return Err(NotRead::uncoded(message));
        }
        let list = topics.map(|topics| {
            let list = Guard {
                ptr: rd::rd_kafka_topic_partition_list_new(i32::try_from(topics.len()).unwrap_or(i32::MAX)),
                release: rd::rd_kafka_topic_partition_list_destroy,
            };
            for (topic, partition) in &topics {
                rd::rd_kafka_topic_partition_list_add(list.ptr, topic.as_ptr(), *partition);
            }
            list
        });
        // A null list asks for every partition the group has an offset for.
        let partitions = list.as_ref().map_or(std::ptr::null(), |l| l.ptr.cast_const());
        let ask = Guard {
            ptr: rd::rd_kafka_ListConsumerGroupOffsets_new(group.as_ptr(), partitions),
            release: rd::rd_kafka_ListConsumerGroupOffsets_destroy,
        };
        let mut asks = [ask.ptr];
        rd::rd_kafka_ListConsumerGroupOffsets(
            request.rk,
            asks.as_mut_ptr(),
            1,
            request.options.ptr,
            request.queue.ptr,
        );
        Ok(Asked {
            request,
            group: query.group.to_string(),
            skip_failed_partitions: query.skip_failed_partitions,
        })
    }
}

impl Asked {
    fn answer(self, unstable: Unstable) -> Answer {
        // SAFETY: the request was sent on its own queue; the result, its groups and their
        // partition lists belong to the event, which outlives every read below.
        unsafe {
            // A refused coordinator lookup fails the whole request: a refusal, or a request
            // librdkafka will never take, is final (asked again, it hung for the whole
            // timeout); anything else is asked again.
            let event = match self.request.answer_coded("ListConsumerGroupOffsets") {
                Ok(event) => event,
                Err((code, why)) => {
                    let not_read = NotRead { code: Some(code), why };
                    return match is_refusal(code) || never_taken(code) {
                        true => Answer::Done(Err(not_read)),
                        false => Answer::Again(not_read),
                    };
                }
            };
            let result = rd::rd_kafka_event_ListConsumerGroupOffsets_result(event.ptr);
            if result.is_null() {
                return Answer::Done(Err(NotRead::uncoded(
                    "unexpected answer to ListConsumerGroupOffsets".into(),
                )));
            }
            let mut count = 0usize;
            let groups = rd::rd_kafka_ListConsumerGroupOffsets_result_groups(result, &mut count);
            if groups.is_null() || count == 0 {
                return Answer::Done(Err(NotRead::uncoded(format!("no answer for group {}", self.group))));
            }
            let group = *groups;
            let error = rd::rd_kafka_group_result_error(group);
            if !error.is_null() {
                return Answer::error(
                    rd::rd_kafka_error_code(error).into(),
                    text(rd::rd_kafka_error_string(error)),
                    unstable,
                );
            }
            let list = rd::rd_kafka_group_result_partitions(group);
            if list.is_null() {
                return Answer::Done(Ok(Vec::new()));
            }
            let list = &*list;
            let elems = match list.elems.is_null() {
                true => &[][..],
                false => std::slice::from_raw_parts(list.elems, usize::try_from(list.cnt).unwrap_or(0)),
            };
            let mut out = Vec::with_capacity(elems.len());
            // Every partition is looked at: a final error anywhere wins over one that asking
            // again may clear (which would be asked until the time is up, then misnamed).
            let mut again = None;
            for e in elems {
                if e.err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                    let why =
                        format!("{} [{}]: {}", text(e.topic), e.partition, text(rd::rd_kafka_err2str(e.err)));
                    match Answer::error(e.err.into(), why, unstable) {
                        Answer::Done(Err(failed)) if self.skip_failed_partitions => {
                            warn!(group = %self.group, error = %failed.why, "left out: the cluster gave no committed offset for it");
                        }
                        Answer::Again(passing) => again = again.or(Some(passing)),
                        done => return done,
                    }
                    continue;
                }
                let metadata = match e.metadata.is_null() {
                    true => String::new(),
                    false => String::from_utf8_lossy(std::slice::from_raw_parts(
                        e.metadata as *const u8,
                        e.metadata_size,
                    ))
                    .into_owned(),
                };
                out.push(CommittedOffset {
                    topic: text(e.topic),
                    partition: e.partition,
                    offset: (e.offset >= 0).then_some(e.offset),
                    metadata,
                });
            }
            match again {
                Some(passing) => Answer::Again(passing),
                None => Answer::Done(Ok(out)),
            }
        }
    }
}

/// librdkafka refuses the request itself (a partition listed twice, a feature the broker
/// lacks) or is shutting down: asking again changes nothing.
fn never_taken(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as E;
    matches!(code, E::InvalidArgument | E::UnsupportedFeature | E::BrokerDestroy)
}

/// An offset a transaction is still committing, or a coordinator that is loading or moving:
/// the same question a moment later gets the answer.
fn asking_again_helps(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as E;
    matches!(
        code,
        E::UnstableOffsetCommit
            | E::CoordinatorLoadInProgress
            | E::CoordinatorNotAvailable
            | E::NotCoordinator
            | E::OperationTimedOut
            | E::BrokerTransportFailure
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use RDKafkaErrorCode as E;

    #[test]
    fn only_a_passing_state_is_asked_again() {
        for code in [E::UnstableOffsetCommit, E::NotCoordinator, E::OperationTimedOut] {
            assert!(Answer::error(code, "passing".into(), Unstable::Wait).again(), "{code:?}");
        }
        for code in [E::GroupAuthorizationFailed, E::InvalidGroupId] {
            assert!(!Answer::error(code, "lasting".into(), Unstable::Wait).again(), "{code:?}");
        }
    }

    #[test]
    fn a_request_librdkafka_refuses_is_not_sent_again() {
        assert!(never_taken(E::InvalidArgument) && never_taken(E::UnsupportedFeature));
        assert!(!never_taken(E::OperationTimedOut) && !never_taken(E::BrokerTransportFailure));
    }

    #[test]
    fn an_open_transaction_is_reported_at_once_where_asked() {
        let unstable = E::UnstableOffsetCommit;
        assert!(!Answer::error(unstable, "open".into(), Unstable::Report).again());
        assert!(Answer::error(E::NotCoordinator, "moving".into(), Unstable::Report).again());
    }
}
