use std::path::PathBuf;

/// Everything that stops kmirror; each message names the thing at fault and the fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}: line {line}: {message}")]
    Properties { file: PathBuf, line: usize, message: String },
    #[error("{side} config: {message}")]
    ClientConfig { side: Side, message: String },
    #[error("config file {file}: {message}")]
    ConfigFile { file: PathBuf, message: String },
    #[error("{0}")]
    Usage(String),
    #[error("invalid {flag} regex '{pattern}': {message}")]
    Regex { flag: &'static str, pattern: String, message: String },
    #[error("state dir {path}: {message}")]
    StateDir { path: PathBuf, message: String },
    #[error("{side} cluster at {bootstrap} is unreachable: {message} (check the bootstrap address and that the brokers are up)")]
    Unreachable { side: Side, bootstrap: String, message: String },
    /// The broker answered but the TLS handshake or the login failed: the address is right,
    /// the security settings are not.
    #[error("{side} cluster at {bootstrap} refused the connection: {message}")]
    Refused { side: Side, bootstrap: String, message: String },
    #[error("target topic {topic} has {target_partitions} partitions but source topic {source_topic} has {source_partitions}: kmirror never remaps partitions; add partitions to it (kafka-topics.sh --alter --topic {topic} --partitions {source_partitions}) or mirror under another name")]
    TooFewPartitions { topic: String, source_topic: String, source_partitions: i32, target_partitions: i32 },
    /// A cluster's authorizer leaves topics the principal may not DESCRIBE out of its listing.
    #[error("no source topic matches --topics '{pattern}' (excluding '{exclude}'): check the pattern, and that the principal kmirror logs in as may DESCRIBE the topics (README's \"Access a mirror needs\")")]
    NoTopics { pattern: String, exclude: String },
    #[error("mirror {name} was started with --shards {recorded}; a mirror's shard count is fixed for life: pass --shards {recorded} or use a new --name")]
    ShardsChanged { name: String, recorded: u32 },
    /// `by`: who took the shard, as its claim says (None: no claim read); `failed_over`: that
    /// claim is `kmirror failover --execute`'s.
    #[error("worker for shard {shard} was fenced: {}; this one stops, and a restart resumes from the last commit", fenced_by(.name, .by))]
    Fenced { name: String, shard: u32, by: Option<String>, failed_over: bool },
    /// `by` names who wrote the failover's claims, `ago` how long before the start.
    #[error("mirror {name} was failed over: {by} took shards {shards} ({ago} ago), and its consumers may read the target since; a run now would copy into the cluster they use. Leave it stopped (in a real failover, run `kmirror failback` when the source is back), or, once a drill is over and its clients are back on the source, start it once with --after-failover")]
    FailedOver { name: String, by: String, shards: String, ago: String },
    /// `--after-failover` given, but the claims it is to end could not be read.
    #[error("mirror {name}: --after-failover ends the failover its shards' claims record, but reading them failed: {cause}; nothing was copied: start it again with --after-failover once the claims can be read")]
    ClaimsUnread { name: String, cause: String },
    /// The cause is in the message, not a source: the fix has to end the line.
    #[error("{side} cluster refused {context} ({cause}): the principal kmirror logs in as lacks an ACL; grant what README's \"Access a mirror needs\" lists for the {side}")]
    Denied { side: Side, context: String, cause: rdkafka::error::KafkaError },
    #[error("{side} cluster: reading the committed positions of group {group}: {message}")]
    GroupRead { side: Side, group: String, message: String },
    #[error("{side} cluster: {context}: {cause}")]
    Kafka {
        side: Side,
        context: String,
        #[source]
        cause: rdkafka::error::KafkaError,
    },
    /// The cluster answers, but a read of a whole partition does not finish: the address is
    /// right, the cluster (or the partition's leader) is slow.
    /// `stalled`: no record came for `seconds` (else the whole read took longer).
    #[error("{side} cluster: reading {partition} {}: the cluster answers but delivers slowly (check its load and the partition's leader)", slow_read(*stalled, *seconds))]
    SlowRead { side: Side, partition: String, seconds: u64, stalled: bool },
    /// `first` is the error of the topic whose exit code is the run's (`exit_code`), whose fix
    /// ends the line.
    #[error("the mirror stopped with errors in topics {topics}; {first}")]
    TopicsFailed { topics: String, first: String, exit_code: u8 },
    #[error("shard {shard}: {message}")]
    Shard { shard: u32, message: String },
    #[error("transform failed on {topic}/{partition} offset {offset}: {message}; its transaction was aborted (fix the transform, or pass --on-transform-error skip)")]
    Transform { topic: String, partition: i32, offset: i64, message: String },
    #[error(
        "target topic {topic} was created but did not appear in the target's metadata within {seconds} s"
    )]
    TopicNotVisible { topic: String, seconds: u64 },
    #[error("offset map: {0}")]
    State(String),
    #[error("offset map: {context}: {cause}")]
    Map {
        context: String,
        #[source]
        cause: kmirror_state::StateError,
    },
    #[error("could not start the {what} thread: {cause} (the process is out of threads or memory)")]
    Thread {
        what: String,
        #[source]
        cause: std::io::Error,
    },
    #[error("group {group}: {message}")]
    Group { group: String, message: String },
    #[error("syncing configs of target topic {topic}: {message}")]
    ConfigSync { topic: String, message: String },
    #[error("source {topic} partition {partition}: the mirror's next position {offset} is below the partition's start {log_start} (end {end}): the source deleted records {offset}..{last} (retention or DeleteRecords) before they were copied; to go on from {log_start} and log the gap, pass --on-missing-source skip", last = log_start - 1)]
    SourceTruncated { topic: String, partition: i32, offset: i64, log_start: i64, end: i64 },
    #[error("source topic {topic} was deleted while the batch copied it: partition {partition} is copied up to offset {offset}, {short_of}; run the batch again to copy the other topics (a deleted topic is no longer selected), or pass --on-missing-source skip to let a batch finish without what a deleted topic held")]
    SourceDeletedInBatch { topic: String, partition: i32, offset: i64, short_of: String },
    #[error("source {topic} partition {partition}: the mirror's next position {offset} is past the partition's end {end} (start {log_start}): the source lost records it had acknowledged (an unclean leader election) or the topic was recreated; kmirror will not guess where to go on: mirror it under a new --name into a new target topic")]
    PositionPastEnd { topic: String, partition: i32, offset: i64, log_start: i64, end: i64 },
    #[error("source topic {topic} was deleted and recreated (topic ID {recorded} is now {current}) since the mirror committed position {offset} of partition {partition}: the records there are not the ones mirrored; mirror it under a new --name into a new target topic (or delete the target topic and the mirror's shadow groups)")]
    SourceRecreated { topic: String, partition: i32, offset: i64, recorded: String, current: String },
    #[error("target partition {target} holds the mirror's position of source topic {recorded}, but --rename now maps {topic} to it: two source topics would be mixed in one target topic; use the old --rename again, or a new --name")]
    PositionOfAnotherTopic { target: String, recorded: String, topic: String },
    #[error("target partition {target} ends at {end}, but the mirror's map says it copied {source_partition} up to target offset {copied}: the target topic was deleted or recreated (or truncated) under the mirror, and resuming would leave the records before that out of the new topic; to copy {source_partition} again from its start, delete the mirror's topics (kmirror.offset-map.NAME, kmirror.checkpoints.NAME, kmirror.shards.NAME) on the target, or use a new --name")]
    TargetRecreated { target: String, source_partition: String, end: i64, copied: i64 },
    #[error("target topic {topic} was {how} under the mirror: the copy there no longer matches the offset map, and going on would leave the records copied before out of it; to copy it again from the start, stop the mirror (every process of it) and delete the mirror's topics (kmirror.offset-map.NAME, kmirror.checkpoints.NAME, kmirror.shards.NAME) on the target, or use a new --name")]
    TargetReplaced { topic: String, how: String },
    /// The target refused one record for what it is (its size, its timestamp): reading it
    /// again meets the same answer, so the fix, a setting, ends the line.
    #[error("target cluster refused the copy of source {topic} partition {partition} offset {offset} ({bytes} bytes of key, value and headers): {cause}; {fix}")]
    RecordRefused { topic: String, partition: i32, offset: i64, bytes: u64, cause: String, fix: String },
    #[error("--sync-acls: {side} ACLs: {message} ({fix}; or leave out --sync-acls)")]
    AclSync { side: Side, message: String, fix: &'static str },
    #[error("internal error: {0} (please report it with the log)")]
    Internal(String),
    #[error("i/o error on {path}: {cause}")]
    Io {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which cluster a setting or error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Source,
    Target,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Source => "source",
            Side::Target => "target",
        })
    }
}

fn slow_read(stalled: bool, seconds: u64) -> String {
    if stalled {
        format!("made no progress for {seconds} s")
    } else {
        format!("did not finish within {seconds} s")
    }
}

fn fenced_by(name: &str, by: &Option<String>) -> String {
    match by {
        Some(who) => format!("{who} took it over (its claim in kmirror.shards.{name} is in force)"),
        None => format!("another kmirror instance with --name {name} took over this shard, or `kmirror failover --execute` did, or the target aborted its transaction after target.transaction.timeout.ms, and the shard's claims could not tell which"),
    }
}

impl Error {
    /// Whether the target's abort of the shard's transaction past `transaction.timeout.ms` (a
    /// network partition that long) can be what this error is: fencing, or a
    /// producer librdkafka made unusable for INVALID_TXN_STATE, the coordinator's answer to the
    /// requests of a producer whose transaction it aborted so (seen after a 12 s partition to
    /// the target: EndTxn or AddOffsetsToTxn sent again once the link healed; librdkafka makes
    /// it fatal). The shard's claims then tell that from a takeover (`mirror::take_back`), and
    /// the shard is taken back where the claim in force is still this process's: stopping the
    /// whole mirror on it stopped a mirror that the same partition answered with
    /// PRODUCER_FENCED kept running. Where the claims do not say, the error stays what it was.
    pub(crate) fn may_be_the_targets_abort(&self) -> bool {
        match self {
            Error::Fenced { .. } => true,
            Error::Kafka { side: Side::Target, cause, .. } => {
                code_of(cause) == Some(rdkafka::types::RDKafkaErrorCode::InvalidTransactionalState)
            }
            _ => false,
        }
    }

    /// The process exit code for this error (documented in the README): 2 for bad usage or
    /// configuration, 3 when another instance fenced this one, 4 when going on would skip or mix
    /// records, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Properties { .. }
            | Error::ClientConfig { .. }
            | Error::ConfigFile { .. }
            | Error::Usage(_)
            | Error::Regex { .. }
            // A pattern that matches nothing is the flag's mistake, as a bad one is.
            | Error::NoTopics { .. }
            | Error::ShardsChanged { .. } => 2,
            Error::Fenced { .. } | Error::FailedOver { .. } => 3,
            Error::SourceTruncated { .. }
            | Error::SourceDeletedInBatch { .. }
            | Error::PositionPastEnd { .. }
            | Error::SourceRecreated { .. }
            | Error::PositionOfAnotherTopic { .. }
            | Error::TargetRecreated { .. }
            | Error::TargetReplaced { .. } => 4,
            Error::TopicsFailed { exit_code, .. } => *exit_code,
            _ => 1,
        }
    }

    /// The local state dir could not be written (full, read-only, failing).
    pub fn is_state_dir_fault(&self) -> bool {
        matches!(
            self,
            Error::StateDir { .. } | Error::Map { cause: kmirror_state::StateError::Io { .. }, .. }
        )
    }

    pub fn kafka(side: Side, context: impl Into<String>) -> impl FnOnce(rdkafka::error::KafkaError) -> Error {
        let context = context.into();
        move |cause| Error::from_kafka(side, context, cause)
    }

    /// A failed Kafka call: [`Error::Denied`] where the cluster's authorizer refused it (no
    /// retry can help until an ACL is granted, and the line says which list to grant from),
    /// [`Error::Kafka`] otherwise.
    pub fn from_kafka(side: Side, context: impl Into<String>, cause: rdkafka::error::KafkaError) -> Error {
        let context = context.into();
        match code_of(&cause).is_some_and(is_refusal) {
            true => Error::Denied { side, context, cause },
            false => Error::Kafka { side, context, cause },
        }
    }
}

/// The broker's or librdkafka's code of `e`: rust-rdkafka gives none for admin errors, though
/// they carry one.
pub(crate) fn code_of(e: &rdkafka::error::KafkaError) -> Option<rdkafka::types::RDKafkaErrorCode> {
    match e {
        rdkafka::error::KafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    }
}

/// Whether `code` is a cluster's authorizer refusing a call: no retry or abort can succeed
/// until someone grants the ACL.
pub(crate) fn is_refusal(code: rdkafka::types::RDKafkaErrorCode) -> bool {
    use rdkafka::types::RDKafkaErrorCode as Code;
    matches!(
        code,
        Code::TopicAuthorizationFailed
            | Code::GroupAuthorizationFailed
            | Code::ClusterAuthorizationFailed
            | Code::TransactionalIdAuthorizationFailed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_kept_as_sources_and_named_in_the_line() {
        let e = Error::Thread { what: "worker 1".into(), cause: std::io::Error::other("no more threads") };
        assert!(std::error::Error::source(&e).is_some(), "the cause is kept");
        assert_eq!(
            e.to_string(),
            "could not start the worker 1 thread: no more threads (the process is out of threads or memory)"
        );
        let slow =
            Error::SlowRead { side: Side::Source, partition: "orders/3".into(), seconds: 120, stalled: true };
        assert!(slow.to_string().contains("reading orders/3 made no progress for 120 s"), "{slow}");
        assert!(!slow.to_string().contains("bootstrap address"), "a slow read is not an address problem");
        assert_eq!(slow.exit_code(), 1);
    }

    #[test]
    fn a_refusal_names_the_acl_list_whatever_call_met_it() {
        use rdkafka::error::KafkaError;
        use rdkafka::types::RDKafkaErrorCode;
        let refused = Error::from_kafka(
            Side::Target,
            "creating topic orders",
            KafkaError::AdminOp(RDKafkaErrorCode::TopicAuthorizationFailed),
        );
        assert!(matches!(refused, Error::Denied { side: Side::Target, .. }), "{refused:?}");
        let line = refused.to_string();
        assert!(line.starts_with("target cluster refused creating topic orders ("), "{line}");
        assert!(
            line.ends_with("grant what README's \"Access a mirror needs\" lists for the target"),
            "{line}"
        );
        let failed = Error::kafka(Side::Source, "listing topics")(KafkaError::MetadataFetch(
            RDKafkaErrorCode::BrokerNotAvailable,
        ));
        assert!(matches!(failed, Error::Kafka { side: Side::Source, .. }), "{failed:?}");
    }

    #[test]
    fn fencing_and_an_invalid_transaction_state_on_the_target_may_be_its_abort() {
        use rdkafka::error::KafkaError;
        use rdkafka::types::RDKafkaErrorCode;
        let fenced = Error::Fenced { name: "m".into(), shard: 0, by: None, failed_over: false };
        assert!(fenced.may_be_the_targets_abort());
        let invalid = |side| Error::Kafka {
            side,
            context: "shard 0: fatal producer error".into(),
            cause: KafkaError::Global(RDKafkaErrorCode::InvalidTransactionalState),
        };
        assert!(invalid(Side::Target).may_be_the_targets_abort());
        assert_eq!(invalid(Side::Target).exit_code(), 1, "not taken back, it stays what it was");
        assert!(!invalid(Side::Source).may_be_the_targets_abort());
        let other = Error::Kafka {
            side: Side::Target,
            context: "shard 0: fatal producer error".into(),
            cause: KafkaError::Global(RDKafkaErrorCode::UnsupportedForMessageFormat),
        };
        assert!(!other.may_be_the_targets_abort());
    }
}
