//! Consumer groups: listing, their committed offsets, whether anyone is in them, and committing
//! positions for them.
use std::time::Duration;

use kmirror_state::{GroupOffset, TopicPartition};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use crate::error::{Error, Result, Side};
use crate::kafka::client::CreateForRole;
use crate::kafka::consumer_close::close;
use crate::kafka::group_commit::{alter_group_offsets, NotCommitted};
use crate::kafka::group_members::member_counts;
use crate::kafka::group_offsets::{self, GroupQuery, NotRead, Unstable};

const TIMEOUT: Duration = Duration::from_secs(30);
/// Longer than a mirror's default transaction timeout (30.25 s) plus the broker's abort sweep.
const OPEN_TRANSACTION_WAIT: Duration = Duration::from_secs(45);

fn client(config: &ClientConfig, group: &str, side: Side) -> Result<BaseConsumer> {
    config
        .clone()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create_for_role()
        .map_err(Error::kafka(side, format!("creating a client for group {group}")))
}

/// Groups on the cluster that `wanted` takes (a `--groups` pattern's match).
pub(crate) fn list_groups(
    config: &ClientConfig,
    side: Side,
    wanted: impl Fn(&str) -> bool,
) -> Result<Vec<String>> {
    let consumer: BaseConsumer = config.create_for_role().map_err(Error::kafka(side, "creating a client"))?;
    let list =
        consumer.fetch_group_list(None, TIMEOUT).map_err(Error::kafka(side, "listing consumer groups"))?;
    let mut groups: Vec<String> =
        list.groups().iter().map(|g| g.name().to_string()).filter(|g| wanted(g)).collect();
    groups.sort();
    groups.dedup();
    Ok(groups)
}

/// The group's committed offsets (with metadata) on these partitions; partitions it never
/// committed are left out, and a partition the cluster would not answer for fails the read: for
/// the mirror's own positions, and for where a group stands before it is moved, which must never
/// read as "none committed".
pub(crate) fn committed_offsets_exact(
    config: &ClientConfig,
    side: Side,
    group: &str,
    partitions: &[TopicPartition],
) -> Result<Vec<GroupOffset>> {
    if partitions.is_empty() {
        return Ok(Vec::new());
    }
    read_side_by_side(config, side, &[group.to_string()], partitions, false)?
        .pop()
        .unwrap_or_else(|| Ok(Vec::new()))
}

/// Each group's committed offsets (with metadata) on these partitions, or its error, in the
/// order given: partitions a group never committed are left out, and so, with a warning, are
/// partitions the cluster would not answer for (as an application's consumer reading the group
/// leaves them out). Asked side by side over a few clients (see [`in_chunks`]; one after the
/// other, a group held by an open transaction made every later one wait its 45 s too, and a
/// client each took some 0.1 s a group).
pub(crate) fn committed_offsets_of_groups(
    config: &ClientConfig,
    side: Side,
    groups: &[String],
    partitions: &[TopicPartition],
) -> Result<Vec<Result<Vec<GroupOffset>>>> {
    if partitions.is_empty() {
        return Ok(groups.iter().map(|_| Ok(Vec::new())).collect());
    }
    read_side_by_side(config, side, groups, partitions, true)
}

/// As [`committed_offsets_exact`] for several groups side by side (see [`in_chunks`]), each
/// asked its own partitions: each group's offsets or error, in the order given.
pub(crate) fn committed_offsets_exact_of_groups(
    config: &ClientConfig,
    side: Side,
    groups: &[(String, Vec<TopicPartition>)],
) -> Result<Vec<Result<Vec<GroupOffset>>>> {
    let asked: Vec<(String, Vec<(String, i32)>)> =
        groups.iter().map(|(group, partitions)| (group.clone(), asked(partitions))).collect();
    read_asked(config, side, &asked, false)
}

fn read_side_by_side(
    config: &ClientConfig,
    side: Side,
    groups: &[String],
    partitions: &[TopicPartition],
    skip_failed_partitions: bool,
) -> Result<Vec<Result<Vec<GroupOffset>>>> {
    let asked = asked(partitions);
    let each: Vec<(String, Vec<(String, i32)>)> = groups.iter().map(|g| (g.clone(), asked.clone())).collect();
    read_asked(config, side, &each, skip_failed_partitions)
}

/// `partitions` as a request names them: librdkafka refuses a list naming a partition twice.
fn asked(partitions: &[TopicPartition]) -> Vec<(String, i32)> {
    let mut asked: Vec<(String, i32)> =
        partitions.iter().map(|tp| (tp.topic.clone(), tp.partition)).collect();
    asked.sort();
    asked.dedup();
    asked
}

/// Each group's offsets on the partitions it is asked (none asked: none read), all on one
/// client.
fn read_asked(
    config: &ClientConfig,
    side: Side,
    groups: &[(String, Vec<(String, i32)>)],
    skip_failed_partitions: bool,
) -> Result<Vec<Result<Vec<GroupOffset>>>> {
    // Through the admin API, not the consumer's own OffsetFetch: a consumer whose group the
    // principal may not READ looks for its coordinator again and again, and its call ends only
    // at the timeout, 45 s later, with no word of the refusal. A transaction open on the group
    // (a mirror's, or one a crashed mirror left) holds the answer back until it ends: the
    // broker aborts a crashed one within its timeout.
    let wanted: Vec<&(String, Vec<(String, i32)>)> =
        groups.iter().filter(|(_, asked)| !asked.is_empty()).collect();
    let read = in_chunks(&wanted, |chunk| {
        let Some((first, _)) = chunk.first() else { return Ok(Vec::new()) };
        let consumer = client(config, first, side)?;
        let queries: Vec<GroupQuery<'_>> = chunk
            .iter()
            .map(|(group, asked)| GroupQuery { group, partitions: Some(asked), skip_failed_partitions })
            .collect();
        let answers = group_offsets::committed_offsets(
            consumer.client(),
            &queries,
            Unstable::Wait,
            OPEN_TRANSACTION_WAIT,
        );
        close(consumer);
        Ok(answers)
    })?;
    let mut answers = read.into_iter();
    Ok(groups
        .iter()
        .map(|(group, asked)| {
            if asked.is_empty() {
                return Ok(Vec::new());
            }
            let answer = answers.next().unwrap_or_else(|| Err(NotRead::uncoded("no answer".into())));
            offsets_of(answer, side, group)
        })
        .collect())
}

/// A broker takes one connection's requests one after the other, and each read or commit of a
/// group's offsets waits there on the group's log: calls over many groups go out on up to this
/// many clients side by side, each with its own connection.
const GROUP_CLIENTS: usize = 4;
/// ...with no fewer groups to a client than this (each client costs a connection).
const GROUPS_A_CLIENT: usize = 25;

/// `call` over `items` in up to [`GROUP_CLIENTS`] chunks, side by side, its answers in order.
fn in_chunks<T: Sync, R: Send>(items: &[T], call: impl Fn(&[T]) -> Result<Vec<R>> + Sync) -> Result<Vec<R>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let clients = items.len().div_ceil(GROUPS_A_CLIENT).clamp(1, GROUP_CLIENTS);
    let size = items.len().div_ceil(clients);
    let answers: Vec<Result<Vec<R>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = items.chunks(size).map(|chunk| scope.spawn(|| call(chunk))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(Error::Internal("a group call panicked".into()))))
            .collect()
    });
    let mut all = Vec::with_capacity(items.len());
    for answer in answers {
        all.extend(answer?);
    }
    Ok(all)
}

/// One group's answer as its positions, or an error naming why there is none.
fn offsets_of(
    answer: std::result::Result<Vec<group_offsets::CommittedOffset>, NotRead>,
    side: Side,
    group: &str,
) -> Result<Vec<GroupOffset>> {
    let committed = answer.map_err(|not_read| match not_read.code {
        Some(code @ RDKafkaErrorCode::UnstableOffsetCommit) => Error::Kafka {
            side,
            context: format!(
                "reading offsets of group {group}: no answer within {} s, as when a transaction is still open on it (a mirror that crashed mid-transaction; the {side} cluster aborts it within the mirror's transaction timeout, at once when the mirror restarts): run again then",
                OPEN_TRANSACTION_WAIT.as_secs()
            ),
            cause: KafkaError::AdminOp(code),
        },
        _ => not_read.into_error(side, group),
    })?;
    Ok(committed
        .into_iter()
        .filter_map(|c| {
            c.offset.map(|offset| GroupOffset {
                partition: TopicPartition::new(&c.topic, c.partition),
                offset,
                metadata: c.metadata,
            })
        })
        .collect())
}

/// The members of each of `groups` on the cluster (0 when nobody is consuming), whether they
/// joined with the classic group protocol or Kafka 4's consumer protocol, in the order given,
/// asked side by side over a few clients (a client per group took a connection and a
/// coordinator lookup each: 100 groups synced took 13 s, longer than the checkpoint interval).
pub(crate) fn active_members_of_groups(
    config: &ClientConfig,
    side: Side,
    groups: &[String],
) -> Result<Vec<Result<usize>>> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = groups.iter().map(String::as_str).collect();
    Ok(groups
        .iter()
        .zip(members_of(config, side, &names)?)
        .map(|(group, count)| count.map_err(Error::kafka(side, format!("describing group {group}"))))
        .collect())
}

/// The members of each of `groups`, or the cluster's error, in order: asked on up to
/// [`GROUP_CLIENTS`] clients side by side (librdkafka asks a group at a time, and for a classic
/// group twice). A request that fails whole fails each of its groups, as a client per group did.
fn members_of(config: &ClientConfig, side: Side, groups: &[&str]) -> Result<Vec<Result<usize, KafkaError>>> {
    in_chunks(groups, |chunk| {
        let consumer: BaseConsumer =
            config.create_for_role().map_err(Error::kafka(side, "creating a client"))?;
        Ok(member_counts(consumer.client(), chunk, TIMEOUT)
            .unwrap_or_else(|e| chunk.iter().map(|_| Err(e.clone())).collect()))
    })
}

/// Refuses the first of `groups` that has members on `side` (whether they joined with the
/// classic group protocol or Kafka 4's consumer protocol), by name: its positions are not to be
/// moved. Their members are asked side by side.
pub(crate) fn refuse_any_active(config: &ClientConfig, side: Side, groups: &[String]) -> Result<()> {
    for (group, members) in groups.iter().zip(active_members_of_groups(config, side, groups)?) {
        match members? {
            0 => {}
            n => return Err(has_members(side, group, n)),
        }
    }
    Ok(())
}

fn has_members(side: Side, group: &str, members: usize) -> Error {
    Error::Group {
        group: group.to_string(),
        message: format!(
            "has {members} active member(s) on the {side} cluster; stop its consumers before moving its offsets"
        ),
    }
}

/// Commits positions for `groups`, each with its positions, refusing each that has members
/// (Kafka itself refuses to move an active group, and a running consumer would overwrite the
/// positions anyway): the members of all, then every commit (AlterConsumerGroupOffsets), asked
/// side by side over a few clients (see [`in_chunks`]); each group's outcome, in order.
pub(crate) fn commit_offsets_of_groups(
    config: &ClientConfig,
    side: Side,
    groups: &[(String, Vec<GroupOffset>)],
) -> Result<Vec<Result<()>>> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = groups.iter().map(|(g, _)| g.as_str()).collect();
    let members = members_of(config, side, &names)?;
    let mut outcomes: Vec<Option<Result<()>>> = Vec::with_capacity(groups.len());
    let mut idle = Vec::new();
    for ((group, offsets), members) in groups.iter().zip(members) {
        match members {
            Ok(0) => {
                outcomes.push(None);
                idle.push((group.clone(), offsets.clone()));
            }
            Ok(n) => outcomes.push(Some(Err(has_members(side, group, n)))),
            Err(e) => {
                outcomes.push(Some(Err(Error::from_kafka(side, format!("describing group {group}"), e))))
            }
        }
    }
    let altered = altered_with_fresh_clients(config, side, &idle)?;
    let mut committed = altered.into_iter().zip(&idle);
    Ok(outcomes
        .into_iter()
        .map(|outcome| {
            outcome.unwrap_or_else(|| match committed.next() {
                Some((Ok(()), _)) => Ok(()),
                Some((Err(not), (group, _))) => Err(not_committed(side, group, not)),
                None => Err(Error::Internal("a group's commit had no outcome".into())),
            })
        })
        .collect())
}

/// Each group's commit, over up to [`GROUP_CLIENTS`] clients. A group whose coordinator moved
/// is asked again on new clients (a client keeps the coordinator it looked up, and would ask the
/// same broker again), a few times: a one-shot `failover` or `translate-offsets --execute` has no
/// next cycle to leave it to.
fn altered_with_fresh_clients(
    config: &ClientConfig,
    side: Side,
    groups: &[(String, Vec<GroupOffset>)],
) -> Result<Vec<std::result::Result<(), NotCommitted>>> {
    let alter = |groups: &[(String, Vec<GroupOffset>)]| {
        in_chunks(groups, |chunk| {
            let consumer: BaseConsumer =
                config.create_for_role().map_err(Error::kafka(side, "creating a client"))?;
            Ok(alter_group_offsets(consumer.client(), chunk, TIMEOUT))
        })
    };
    let mut outcomes = alter(groups)?;
    for _ in 0..COORDINATOR_MOVED_TRIES {
        let moved: Vec<usize> = (0..outcomes.len())
            .filter(|&i| matches!(&outcomes[i], Err(NotCommitted { code: Some(code), .. }) if coordinator_moved(*code)))
            .collect();
        if moved.is_empty() {
            break;
        }
        std::thread::sleep(COORDINATOR_MOVED_BACKOFF);
        let again: Vec<(String, Vec<GroupOffset>)> = moved.iter().map(|&i| groups[i].clone()).collect();
        for (i, outcome) in moved.into_iter().zip(alter(&again)?) {
            outcomes[i] = outcome;
        }
    }
    Ok(outcomes)
}

const COORDINATOR_MOVED_TRIES: usize = 3;
const COORDINATOR_MOVED_BACKOFF: Duration = Duration::from_millis(200);

fn coordinator_moved(code: RDKafkaErrorCode) -> bool {
    matches!(code, RDKafkaErrorCode::NotCoordinator | RDKafkaErrorCode::CoordinatorNotAvailable)
}

/// A group's commit refused: by its members (one joined since they were counted), by the
/// authorizer, or by the cluster.
fn not_committed(side: Side, group: &str, not: NotCommitted) -> Error {
    let context = format!("committing offsets of group {group}");
    match not.code {
        Some(code) if joined_since(code) => Error::Group {
            group: group.to_string(),
            message: format!(
                "has active members on the {side} cluster (it refused the commit: {}); stop its consumers before moving its offsets",
                not.why
            ),
        },
        Some(code) => Error::from_kafka(side, format!("{context} ({})", not.why), KafkaError::AdminOp(code)),
        None => Error::from_kafka(side, context, KafkaError::AdminOpCreation(not.why)),
    }
}

/// The broker takes commits from outside a group only while it is empty, and says it is not
/// in one of these.
fn joined_since(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::UnknownMemberId
            | RDKafkaErrorCode::IllegalGeneration
            | RDKafkaErrorCode::RebalanceInProgress
            | RDKafkaErrorCode::StaleMemberEpoch
    )
}

/// Refuses, before anything changes, every group of `groups` that has consumers on `side`:
/// one error naming them all and what to do `then`.
pub(crate) fn refuse_active(config: &ClientConfig, side: Side, groups: &[String], then: &str) -> Result<()> {
    let mut active = Vec::new();
    for (group, members) in groups.iter().zip(active_members_of_groups(config, side, groups)?) {
        let members = members?;
        if members > 0 {
            active.push(format!("{group} ({members})"));
        }
    }
    if active.is_empty() {
        return Ok(());
    }
    Err(Error::Group {
        group: active.join(", "),
        message: format!(
            "active member(s) on the {side}; stop those consumers, then {then} (nothing was changed)"
        ),
    })
}
