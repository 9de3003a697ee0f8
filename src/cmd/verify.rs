//! `kmirror verify`: proves a copy partition by partition through the offset map: every
//! mirrored source record has a byte-identical copy (key, value, headers, timestamp) at its
//! mapped target offset, and the target holds nothing else.
use std::collections::BTreeSet;
use std::time::Duration;

use kmirror_state::{RecordDigest, TopicPartition};
use rdkafka::consumer::BaseConsumer;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use serde::Serialize;

use crate::cmd::cli::VerifyArgs;
use crate::cmd::mirrored_partitions::mirrored_pairs;
use crate::cmd::report::Format;
use crate::config::names;
use crate::config::topics::TopicSelector;
use crate::config::{check_name, default_state_dir};
use crate::error::{Error, Result, Side};
use crate::kafka::client::CreateForRole;
use crate::kafka::committed_records::CommittedRecords;
use crate::kafka::connect::reachable;
use crate::kafka::log_filter::clusters_reached;
use crate::kafka::watermarks::log_starts_with;
use crate::state_dir::StateDir;
use crate::translate::translator::Translator;

const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// The verdict on one partition. Field names are part of the JSON output.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PartitionCheck {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) target_topic: String,
    pub(crate) target_partition: i32,
    /// Where the check starts on the source: 0, or with --from-mirror-start the first offset
    /// the mirror copied.
    pub(crate) from_offset: i64,
    /// The source partition's log start: records below it were deleted on the source
    /// (retention, DeleteRecords) and can no longer be compared.
    pub(crate) source_start: i64,
    /// The source topic was deleted: every copy is of a record the source no longer has, as
    /// for records below `source_start` (counted in `expired`).
    pub(crate) source_gone: bool,
    /// Copies of source records deleted on the source after they were copied: present on the
    /// target, not compared, and neither missing nor extra.
    pub(crate) expired: usize,
    /// Source offsets the source had deleted before they were copied, which the mirror went
    /// past under `--on-missing-source skip`: never on the target, neither checked nor missing.
    pub(crate) skipped_by_policy: usize,
    /// Source records compared with their copies.
    pub(crate) checked: usize,
    /// Mirrored source records with no copy at their mapped target offset.
    pub(crate) missing: usize,
    /// Target records that are no copy of a mirrored source record.
    pub(crate) extra: usize,
    /// Copies whose key, value, headers or timestamp differ from the source record.
    pub(crate) differing: usize,
    /// The first problem found, with its offsets.
    pub(crate) first_problem: Option<String>,
    /// FNV-1a digests of the compared source records and of their copies, in order.
    pub(crate) source_digest: String,
    pub(crate) target_digest: String,
}

impl PartitionCheck {
    fn ok(&self) -> bool {
        self.missing == 0 && self.extra == 0 && self.differing == 0
    }
}

/// Returns the report and whether the copy is proven.
pub(crate) fn run(args: &VerifyArgs) -> Result<(String, bool)> {
    check_name(&args.mirror.name)?;
    // Checked before any cluster is asked: a typo is a usage error (exit 2).
    let selector = args.topics.as_deref().map(|t| TopicSelector::new(t, None)).transpose()?;
    let source = client(args, Side::Source)?;
    let target = client(args, Side::Target)?;
    clusters_reached();
    let state_dir =
        args.state_dir.clone().unwrap_or_else(|| default_state_dir(&format!("{}.verify", args.mirror.name)));
    let state = StateDir::open(&state_dir)?;
    let translator = Translator::open(state.path(), &args.mirror.name, target.clone())?;
    let mut checks = Vec::new();
    // Partitions with no copy too: their copies must hold nothing (a record there is extra).
    for (source_tp, target_tp) in mirrored_pairs(&translator, &target, &args.mirror.name)? {
        if selector.as_ref().is_some_and(|s| !s.matches(&source_tp.topic)) {
            continue;
        }
        checks.push(check_partition(&translator, &source, &target, &source_tp, &target_tp, args)?);
    }
    if checks.is_empty() {
        return Err(Error::Usage(match &args.topics {
            Some(pattern) => format!(
                "no partition mirror {} copied matches --topics '{pattern}': check the pattern (verify proves nothing it did not check)",
                args.mirror.name
            ),
            None => format!("mirror {} has copied nothing yet: there is nothing to verify", args.mirror.name),
        }));
    }
    let proven = checks.iter().all(PartitionCheck::ok);
    Ok((render(&checks, args.format), proven))
}

fn client(args: &VerifyArgs, side: Side) -> Result<ClientConfig> {
    let flag = match side {
        Side::Source => args.source.as_ref(),
        Side::Target => args.mirror.target.as_ref(),
    };
    let (mut config, servers) = args.mirror.clients.client_config(side, flag)?;
    reachable(&config, side, &servers, Duration::from_secs(args.mirror.connect_timeout.max(1)))?;
    // Under the mirror's prefix, which the ACLs a mirror needs cover: a reader's group
    // coordinator lookup refused would stop the read.
    config.set("group.id", names::verify_reader_group(&args.mirror.name));
    Ok(config)
}

fn check_partition(
    translator: &Translator,
    source: &ClientConfig,
    target: &ClientConfig,
    source_tp: &TopicPartition,
    target_tp: &TopicPartition,
    args: &VerifyArgs,
) -> Result<PartitionCheck> {
    // A running mirror is checked at one cut: its committed position first, then the map up to
    // it, then the copies (copies, map records and position commit together). Read the copies
    // first, and those committed before the position was read counted as missing.
    let committed = translator.committed_position(source_tp, target_tp)?;
    translator.refresh()?;
    // Both sides are read side by side in offset order (a copy lands in its target partition in
    // its source record's order, so the map is monotonic): a record per side in memory.
    let mut copies = CommittedRecords::open(target, Side::Target, target_tp, 0, None, READ_TIMEOUT)?;
    // Without a committed position (e.g. the target topic was deleted, and its group offsets
    // with it) the map's whole extent counts as mirrored: verify then fails rather than passes.
    let until = committed.or(translator.mapped_end(source_tp)?).unwrap_or(0);
    // A partition the mirror copied nothing of started where it stands.
    let from = if args.from_mirror_start { translator.mapped_start(source_tp)?.unwrap_or(until) } else { 0 };
    let (source_start, source_gone) = match log_start(source, source_tp)? {
        Some(start) => (start, false),
        None => (until, true),
    };
    let read_from = from.max(source_start);
    let mut originals = match source_gone || read_from >= until {
        true => None,
        false => Some(CommittedRecords::open(
            source,
            Side::Source,
            source_tp,
            read_from,
            Some(until),
            READ_TIMEOUT,
        )?),
    };
    // Copies of source records deleted since: present, neither checked nor extra.
    let mut expired_copies = BTreeSet::new();
    for offset in from..source_start.min(until) {
        expired_copies.extend(translator.copy_of(source_tp, offset, committed)?);
    }
    // The first record at or past each n-th part of the range's offsets (a compacted partition
    // or one of many transactions has fewer records than offsets).
    let step = match args.sample {
        Some(n) if n > 0 => ((until - read_from).max(0) / n as i64).max(1),
        _ => 1,
    };
    let mut check = PartitionCheck {
        topic: source_tp.topic.clone(),
        partition: source_tp.partition,
        target_topic: target_tp.topic.clone(),
        target_partition: target_tp.partition,
        from_offset: from,
        source_start,
        source_gone,
        expired: 0,
        skipped_by_policy: 0,
        checked: 0,
        missing: 0,
        extra: 0,
        differing: 0,
        first_problem: None,
        source_digest: String::new(),
        target_digest: String::new(),
    };
    let note = |check: &mut PartitionCheck, problem: String| {
        check.first_problem.get_or_insert(problem);
    };
    // Target records that are no copy of a record read: extra, unless the mirror committed them
    // past the cut while this read (known once the copies are read).
    let mut not_copies = Vec::new();
    let mut unmatched = |check: &mut PartitionCheck, t: i64| match expired_copies.contains(&t) {
        true => check.expired += 1,
        false => not_copies.push(t),
    };
    let (mut source_digest, mut target_digest) = (RecordDigest::default(), RecordDigest::default());
    let mut next_sample = read_from;
    // The target offset of the last copy matched: the map goes up with the source offsets.
    let mut last_copy: Option<i64> = None;
    while let Some((offset, original)) = match originals.as_mut() {
        Some(records) => records.next()?,
        None => None,
    } {
        let mapped = translator.copy_of(source_tp, offset, committed)?;
        let behind = mapped.zip(last_copy).is_some_and(|(t, last)| t <= last);
        let copy = match mapped {
            Some(t) if !behind => {
                while let Some(before) = copies.peek()?.filter(|&o| o < t) {
                    copies.next()?;
                    unmatched(&mut check, before);
                }
                match copies.peek()? {
                    Some(o) if o == t => {
                        last_copy = Some(t);
                        copies.next()?
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        if offset < next_sample {
            continue;
        }
        next_sample = read_from + ((offset - read_from) / step + 1) * step;
        check.checked += 1;
        source_digest.add(&original);
        match copy {
            None if behind => {
                check.missing += 1;
                note(
                    &mut check,
                    format!(
                        "source offset {offset}: the offset map puts its copy at target offset {}, behind the copy of an earlier record: the target partition was replaced under the mirror",
                        mapped.unwrap_or_default()
                    ),
                );
            }
            None => {
                check.missing += 1;
                note(&mut check, format!("source offset {offset}: no copy on the target"));
            }
            Some((t, copy)) => {
                target_digest.add(&copy);
                if copy != original {
                    check.differing += 1;
                    note(
                        &mut check,
                        format!("source offset {offset} -> target offset {t}: the copy differs"),
                    );
                }
            }
        }
    }
    while let Some((t, _)) = copies.next()? {
        unmatched(&mut check, t);
    }
    for gap in translator.skipped_within(source_tp, from, until)? {
        check.skipped_by_policy += (gap.to.min(until) - gap.from.max(from)).max(0) as usize;
    }
    // Copies past the cut, committed while the copies were read: neither checked nor extra.
    let past_cut = match committed {
        Some(cut) => copies_committed_since(translator, source_tp, target_tp, cut)?,
        None => BTreeSet::new(),
    };
    for t in not_copies {
        if !past_cut.contains(&t) {
            check.extra += 1;
            note(&mut check, format!("target offset {t}: not a copy of any mirrored source record"));
        }
    }
    check.source_digest = source_digest.hex();
    check.target_digest = target_digest.hex();
    Ok(check)
}

/// The target offsets of the copies of `source_tp` the mirror committed past position `cut`
/// until now.
fn copies_committed_since(
    translator: &Translator,
    source_tp: &TopicPartition,
    target_tp: &TopicPartition,
    cut: i64,
) -> Result<BTreeSet<i64>> {
    let Some(now) = translator.committed_position(source_tp, target_tp)?.filter(|&now| now > cut) else {
        return Ok(BTreeSet::new());
    };
    translator.refresh()?;
    let mut copies = BTreeSet::new();
    for offset in cut..now {
        copies.extend(translator.copy_of(source_tp, offset, Some(now))?);
    }
    Ok(copies)
}

/// Where the partition's log starts now; `None` if the source no longer has it (its topic was
/// deleted).
fn log_start(config: &ClientConfig, tp: &TopicPartition) -> Result<Option<i64>> {
    let consumer: BaseConsumer =
        config.create_for_role().map_err(Error::kafka(Side::Source, "creating a reader"))?;
    match log_starts_with(&consumer, std::slice::from_ref(tp), READ_TIMEOUT) {
        Ok(starts) => Ok(Some(starts.get(tp).copied().unwrap_or(0))),
        Err(e) if e.rdkafka_error_code().is_some_and(is_unknown_partition) => Ok(None),
        Err(e) => Err(Error::kafka(Side::Source, format!("reading where {tp} starts"))(e)),
    }
}

fn is_unknown_partition(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::UnknownPartition
            | RDKafkaErrorCode::UnknownTopicOrPartition
            | RDKafkaErrorCode::UnknownTopic
    )
}

fn render(checks: &[PartitionCheck], format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(checks).unwrap_or_else(|_| "[]".into()) + "\n",
        Format::Csv | Format::Table => {
            let mut rows = vec![crate::ops::table::header(&[
                "topic",
                "target_topic",
                "partition",
                "from",
                "source_start",
                "expired",
                "skipped_by_policy",
                "checked",
                "missing",
                "extra",
                "differing",
                "source_digest",
                "target_digest",
                "first_problem",
            ])];
            for c in checks {
                rows.push(vec![
                    c.topic.clone(),
                    c.target_topic.clone(),
                    c.partition.to_string(),
                    c.from_offset.to_string(),
                    match c.source_gone {
                        true => "deleted".into(),
                        false => c.source_start.to_string(),
                    },
                    c.expired.to_string(),
                    c.skipped_by_policy.to_string(),
                    c.checked.to_string(),
                    c.missing.to_string(),
                    c.extra.to_string(),
                    c.differing.to_string(),
                    c.source_digest.clone(),
                    c.target_digest.clone(),
                    c.first_problem.clone().unwrap_or_else(|| "-".into()),
                ]);
            }
            match format {
                Format::Csv => rows.iter().map(|r| r.join(",") + "\n").collect(),
                _ => crate::ops::table::aligned(&rows),
            }
        }
    }
}
