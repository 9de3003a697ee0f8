//! Positions committed for many consumer groups side by side on a client (AlterConsumerGroupOffsets).
//!
//! A consumer commits only for its own group: moving 100 groups took a client each, with its
//! connection, coordinator lookup and close, some 80 ms a group, one after the other (8 s of a
//! 10 s checkpoint cycle). An admin request goes out on a client already connected, for any
//! group, all side by side. rust-rdkafka wraps no AlterConsumerGroupOffsets; librdkafka has it
//! (one group per call), so it is called here through the C API. Like a consumer's commit from
//! outside the group, the broker takes it only while the group has no members.
use std::time::{Duration, Instant};

use kmirror_state::GroupOffset;
use rdkafka::bindings as rd;
use rdkafka::client::{Client, ClientContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::kafka::commit_parts::{in_parts, position_bytes};
use crate::kafka::ffi::{c_string, text, AdminRequest, Guard};

/// Between asks for groups whose coordinator was loading.
const ASK_AGAIN_AFTER: Duration = Duration::from_millis(50);

/// Why a group's positions were not committed: the code (the group's, or the first refused
/// partition's) and librdkafka's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotCommitted {
    pub(crate) code: Option<RDKafkaErrorCode>,
    pub(crate) why: String,
}

/// Commits each group's positions, all side by side on `client`; each group's outcome, in the
/// order given (a group committed in parts, see `commit_parts`: its first part refused, if any).
/// A group whose coordinator is loading is asked again until `timeout`.
pub(crate) fn alter_group_offsets<C: ClientContext>(
    client: &Client<C>,
    commits: &[(String, Vec<GroupOffset>)],
    timeout: Duration,
) -> Vec<Result<(), NotCommitted>> {
    let deadline = Instant::now() + timeout;
    let parts: Vec<(usize, &[GroupOffset])> = commits
        .iter()
        .enumerate()
        .flat_map(|(i, (group, offsets))| {
            in_parts(offsets, |o| position_bytes(group, &o.partition.topic, &o.metadata))
                .into_iter()
                .map(move |part| (i, part))
        })
        .collect();
    let mut outcomes: Vec<Option<Result<(), NotCommitted>>> = parts.iter().map(|_| None).collect();
    loop {
        let pending: Vec<usize> = (0..parts.len()).filter(|&i| again(&outcomes[i])).collect();
        if pending.is_empty() {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        // Every request goes out before the first answer is waited for.
        let sent: Vec<(usize, Result<AdminRequest, NotCommitted>)> =
            pending.iter().map(|&i| (i, send(client, &commits[parts[i].0].0, parts[i].1, left))).collect();
        for (i, request) in sent {
            outcomes[i] = Some(request.and_then(|r| answer(&r)));
        }
        if !outcomes.iter().any(again) || Instant::now() + ASK_AGAIN_AFTER >= deadline {
            break;
        }
        std::thread::sleep(ASK_AGAIN_AFTER);
    }
    let mut of_groups: Vec<Result<(), NotCommitted>> = commits.iter().map(|_| Ok(())).collect();
    for ((group, _), outcome) in parts.iter().zip(outcomes) {
        let outcome = outcome.unwrap_or_else(|| Err(NotCommitted { code: None, why: "not asked".into() }));
        if let (Ok(()), Err(not)) = (&of_groups[*group], outcome) {
            of_groups[*group] = Err(not);
        }
    }
    of_groups
}

fn again(outcome: &Option<Result<(), NotCommitted>>) -> bool {
    match outcome {
        None => true,
        Some(Err(NotCommitted { code: Some(code), .. })) => coordinator_loading(*code),
        Some(_) => false,
    }
}

/// A coordinator still loading the group's offsets: the same commit a moment later goes
/// through. Not one that moved (NotCoordinator, CoordinatorNotAvailable): the client keeps the
/// coordinator it looked up for 15 idle minutes and would ask the same broker again; a new
/// client looks it up anew (see `groups::commit_offsets_of_groups`).
fn coordinator_loading(code: RDKafkaErrorCode) -> bool {
    code == RDKafkaErrorCode::CoordinatorLoadInProgress
}

fn send<C: ClientContext>(
    client: &Client<C>,
    group: &str,
    offsets: &[GroupOffset],
    timeout: Duration,
) -> Result<AdminRequest, NotCommitted> {
    let uncoded = |why: String| NotCommitted { code: None, why };
    let name = c_string(group).map_err(uncoded)?;
    let mut list = TopicPartitionList::with_capacity(offsets.len());
    for o in offsets {
        let mut element = list.add_partition(&o.partition.topic, o.partition.partition);
        element.set_offset(Offset::Offset(o.offset)).map_err(|e| uncoded(e.to_string()))?;
        element.set_metadata(&o.metadata);
    }
    // SAFETY: every pointer handed to librdkafka is its own (released by a Guard after its last
    // use), a CString or the list, both alive until the calls return; librdkafka copies the
    // group, the partition list and the options it is handed.
    unsafe {
        let request = AdminRequest::new(
            client.native_ptr(),
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS,
            timeout,
        );
        let alter = Guard {
            ptr: rd::rd_kafka_AlterConsumerGroupOffsets_new(name.as_ptr(), list.ptr()),
            release: rd::rd_kafka_AlterConsumerGroupOffsets_destroy,
        };
        let mut alters = [alter.ptr];
        rd::rd_kafka_AlterConsumerGroupOffsets(
            request.rk,
            alters.as_mut_ptr(),
            1,
            request.options.ptr,
            request.queue.ptr,
        );
        Ok(request)
    }
}

fn answer(request: &AdminRequest) -> Result<(), NotCommitted> {
    // SAFETY: the request was sent on its own queue; the result, its group and its partition
    // list belong to the event, which outlives every read below.
    unsafe {
        let event = request
            .answer_coded("AlterConsumerGroupOffsets")
            .map_err(|(code, why)| NotCommitted { code: Some(code), why })?;
        let result = rd::rd_kafka_event_AlterConsumerGroupOffsets_result(event.ptr);
        let unexpected = |why: &str| NotCommitted { code: None, why: why.to_string() };
        if result.is_null() {
            return Err(unexpected("unexpected answer to AlterConsumerGroupOffsets"));
        }
        let mut count = 0usize;
        let groups = rd::rd_kafka_AlterConsumerGroupOffsets_result_groups(result, &mut count);
        if groups.is_null() || count == 0 {
            return Err(unexpected("no answer for the group"));
        }
        let group = *groups;
        let error = rd::rd_kafka_group_result_error(group);
        if !error.is_null() {
            return Err(NotCommitted {
                code: Some(rd::rd_kafka_error_code(error).into()),
                why: text(rd::rd_kafka_error_string(error)),
            });
        }
        let list = rd::rd_kafka_group_result_partitions(group);
        if list.is_null() {
            return Ok(());
        }
        let list = &*list;
        let elems = match list.elems.is_null() {
            true => &[][..],
            false => std::slice::from_raw_parts(list.elems, usize::try_from(list.cnt).unwrap_or(0)),
        };
        match elems.iter().find(|e| e.err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR) {
            None => Ok(()),
            Some(e) => Err(NotCommitted {
                code: Some(e.err.into()),
                why: format!("{} [{}]: {}", text(e.topic), e.partition, text(rd::rd_kafka_err2str(e.err))),
            }),
        }
    }
}
