//! `kmirror verify`: proves a copy partition by partition through the offset map: every
//! mirrored source record has a byte-identical copy (key, value, headers, timestamp) at its
//! mapped target offset, and the target holds nothing else.
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kmirror_state::{RecordData, RecordDigest, TopicPartition};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde::Serialize;

use crate::cmd::cli::VerifyArgs;
use crate::cmd::report::Format;
use crate::config::names;
use crate::config::topics::TopicSelector;
use crate::config::{check_name, default_state_dir};
use crate::error::{Error, Result, Side};
use crate::kafka::client::CreateForRole;
use crate::kafka::connect::reachable;
use crate::kafka::log_filter::clusters_reached;
use crate::kafka::watermarks::{committed_end, log_starts_with};
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
    let source = client(args, Side::Source)?;
    let target = client(args, Side::Target)?;
    clusters_reached();
    let state_dir =
        args.state_dir.clone().unwrap_or_else(|| default_state_dir(&format!("{}.verify", args.mirror.name)));
    let state = StateDir::open(&state_dir)?;
    let selector = args.topics.as_deref().map(|t| TopicSelector::new(t, None)).transpose()?;
    let translator = Translator::open(state.path(), &args.mirror.name, target.clone())?;
    let mut checks = Vec::new();
    for source_tp in translator.source_partitions()? {
        if selector.as_ref().is_some_and(|s| !s.matches(&source_tp.topic)) {
            continue;
        }
        let Some(target_tp) = translator.target_of(&source_tp)? else { continue };
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
    let copies = read_partition(target, Side::Target, target_tp, 0, None)?;
    // Copies past the cut, committed while the copies were read: neither checked nor extra.
    let past_cut = match committed {
        Some(cut) => copies_committed_since(translator, source_tp, target_tp, cut)?,
        None => BTreeSet::new(),
    };
    // Without a committed position (e.g. the target topic was deleted, and its group offsets
    // with it) the map's whole extent counts as mirrored: verify then fails rather than passes.
    let until = committed.or(translator.mapped_end(source_tp)?).unwrap_or(0);
    let from = if args.from_mirror_start { translator.mapped_start(source_tp)?.unwrap_or(0) } else { 0 };
    let (source_start, source_gone) = match log_start(source, source_tp)? {
        Some(start) => (start, false),
        None => (until, true),
    };
    let originals = match source_gone {
        true => BTreeMap::new(),
        false => read_partition(source, Side::Source, source_tp, from.max(source_start), Some(until))?,
    };
    let step = match args.sample {
        Some(n) if n > 0 => (originals.len() / n).max(1),
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
    let mut copy_offsets = std::collections::BTreeSet::new();
    let (mut source_digest, mut target_digest) = (RecordDigest::default(), RecordDigest::default());
    for (i, (&offset, original)) in originals.iter().enumerate() {
        let mapped = translator.copy_of(source_tp, offset, committed)?;
        if let Some(t) = mapped {
            copy_offsets.insert(t);
        }
        if i % step != 0 {
            continue;
        }
        check.checked += 1;
        source_digest.add(original);
        match mapped.and_then(|t| copies.get(&t).map(|c| (t, c))) {
            None => {
                check.missing += 1;
                note(&mut check, format!("source offset {offset}: no copy on the target"));
            }
            Some((t, copy)) => {
                target_digest.add(copy);
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
    for offset in from..source_start.min(until) {
        if let Some(t) = translator.copy_of(source_tp, offset, committed)?.filter(|t| copies.contains_key(t))
        {
            copy_offsets.insert(t);
            check.expired += 1;
        }
    }
    for gap in translator.skipped_within(source_tp, from, until)? {
        check.skipped_by_policy += (gap.to.min(until) - gap.from.max(from)).max(0) as usize;
    }
    for &t in copies.keys() {
        if !copy_offsets.contains(&t) && !past_cut.contains(&t) {
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

/// The committed records of a partition from `from` (below `until` if given), by offset.
fn read_partition(
    config: &ClientConfig,
    side: Side,
    tp: &TopicPartition,
    from: i64,
    until: Option<i64>,
) -> Result<BTreeMap<i64, RecordData>> {
    let mut out = BTreeMap::new();
    if until == Some(0) {
        return Ok(out);
    }
    let consumer: BaseConsumer = config
        .clone()
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create_for_role()
        .map_err(Error::kafka(side, "creating a reader"))?;
    let mut tpl = TopicPartitionList::new();
    let start = if from > 0 { Offset::Offset(from) } else { Offset::Beginning };
    tpl.add_partition_offset(&tp.topic, tp.partition, start).map_err(Error::kafka(side, "assigning"))?;
    consumer.assign(&tpl).map_err(Error::kafka(side, "assigning"))?;
    let end = committed_end(&consumer, &tp.topic, tp.partition, READ_TIMEOUT)
        .map_err(Error::kafka(side, format!("reading the end of {tp}")))?;
    let target_end = until.map_or(end, |u| u.min(end));
    if from >= target_end {
        return Ok(out);
    }
    // A stall ends the read, not its length: a partition of many millions of records takes
    // minutes to read whole, and a deadline on the whole read failed the verify of a copy that
    // was fine.
    let mut progress = Instant::now();
    loop {
        if progress.elapsed() > READ_TIMEOUT {
            return Err(Error::SlowRead {
                side,
                partition: tp.to_string(),
                seconds: READ_TIMEOUT.as_secs(),
                stalled: true,
            });
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                if until.is_some_and(|u| m.offset() >= u) {
                    return Ok(out);
                }
                progress = Instant::now();
                out.insert(m.offset(), RecordData::of(&m));
            }
            Some(Err(e)) => return Err(Error::kafka(side, format!("reading {tp}"))(e)),
            None => {}
        }
        let position = match consumer.position().ok().and_then(|p| p.elements().first().map(|e| e.offset())) {
            Some(Offset::Offset(o)) => o,
            _ => 0,
        };
        if position >= target_end {
            return Ok(out);
        }
    }
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
