//! `kmirror translate-offsets`: where should a consumer group resume on the other cluster?
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kmirror_state::{GroupOffset, TopicPartition};
use rdkafka::ClientConfig;
use tracing::{info, warn};

use crate::cmd::cli::TranslateArgs;
use crate::cmd::mirrored_partitions::uncopied_positions;
use crate::cmd::report::{render, Row};
use crate::cmd::uncopied_at_failover::MirroredPosition;
use crate::config::groups::GroupSelector;
use crate::config::names;
use crate::config::topics::TopicSelector;
use crate::config::{check_name, default_state_dir, group_regex};
use crate::error::{Error, Result, Side};
use crate::kafka::connect::reachable;
use crate::kafka::groups::{
    commit_offsets_of_groups, committed_offsets_exact_of_groups, committed_offsets_of_groups, list_groups,
    refuse_any_active,
};
use crate::kafka::log_filter::clusters_reached;
use crate::kafka::topic_reader::RangeReader;
use crate::kafka::watermarks::committed_ends;
use crate::state_dir::StateDir;
use crate::translate::checkpoint::latest_checkpoints;
use crate::translate::translator::{Translation, Translator};

struct Clusters {
    source: Option<ClientConfig>,
    target: ClientConfig,
}

/// One translate-offsets request, resolved.
struct Query<'a> {
    args: &'a TranslateArgs,
    clusters: Clusters,
    translator: Translator,
    groups: Option<GroupSelector>,
    topics: Option<TopicSelector>,
}

impl Query<'_> {
    fn picks(&self, tp: &TopicPartition) -> bool {
        self.topics.as_ref().is_none_or(|s| s.matches(&tp.topic))
    }

    /// The --group names plus the groups on `config` matching --groups.
    fn group_names(&self, config: &ClientConfig, side: Side) -> Result<Vec<String>> {
        let mut names = self.args.group.clone();
        if let Some(regex) = &self.groups {
            names.extend(list_groups(config, side, |g| regex.is_match(g))?);
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// No group to translate: a `--groups` pattern that matched none is a typo, not an empty
    /// answer (exit 0 with nothing moved).
    fn none_matched(&self, where_: &str) -> Error {
        Error::Usage(format!(
            "no consumer group {where_} matches --groups '{}': check the pattern (a whole-name regex)",
            self.args.groups.as_deref().unwrap_or_default()
        ))
    }

    fn wanted(&self, group: &str) -> bool {
        self.args.group.iter().any(|g| g == group) || self.groups.as_ref().is_some_and(|r| r.is_match(group))
    }
}

pub(crate) fn run(args: &TranslateArgs) -> Result<String> {
    Ok(render(&rows(args)?, args.format))
}

/// The translated positions of the request (committed too with --execute).
pub(super) fn rows(args: &TranslateArgs) -> Result<Vec<Row>> {
    check_name(&args.mirror.name)?;
    if args.group.is_empty() && args.groups.is_none() {
        return Err(Error::Usage("name the groups: --group GROUP (repeatable) or --groups REGEX".into()));
    }
    // Patterns first: a typo is a usage error (exit 2), whatever the clusters say.
    let groups = args.groups.as_deref().map(group_regex).transpose()?;
    let topics = args.topics.as_deref().map(|t| TopicSelector::new(t, None)).transpose()?;
    let clusters = clusters(args)?;
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| default_state_dir(&format!("{}.translate", args.mirror.name)));
    let state = StateDir::open(&state_dir)?;
    let translator = Translator::open(state.path(), &args.mirror.name, clusters.target.clone())?;
    let query = Query { args, clusters, translator, groups, topics };
    if args.reverse {
        reverse(&query)
    } else {
        forward(&query)
    }
}

fn clusters(args: &TranslateArgs) -> Result<Clusters> {
    let timeout = Duration::from_secs(args.mirror.connect_timeout.max(1));
    let (target, target_bootstrap) =
        args.mirror.clients.client_config(Side::Target, args.mirror.target.as_ref())?;
    reachable(&target, Side::Target, &target_bootstrap, timeout)?;
    // An empty value (an unset variable) is no "leave the source out": that would move the
    // groups to old checkpoints without a word.
    if args.source.as_ref().is_some_and(|s| s.trim().is_empty()) {
        return Err(Error::Usage(
            "--source is empty: give the source's bootstrap servers, or leave --source out to answer from the last checkpoints".into(),
        ));
    }
    let source = match args.mirror.clients.client_config(Side::Source, args.source.as_ref()) {
        Ok((config, servers)) => match reachable(&config, Side::Source, &servers, timeout) {
            Ok(()) => Some(config),
            // Old checkpoints would move the groups behind where they are (and past no check
            // of consumers still on the source): leaving out --source asks for them.
            Err(Error::Unreachable { side, bootstrap, message }) if args.execute => {
                return Err(Error::Unreachable {
                    side,
                    bootstrap,
                    message: format!(
                        "{message}; --execute moved nothing (leave --source out to move the groups to their last checkpoints)"
                    ),
                })
            }
            Err(e) if args.execute => return Err(e),
            Err(e) => {
                warn!("{e}; answering from the last checkpoints on the target");
                None
            }
        },
        // No source named: answer from the checkpoints.
        Err(Error::Usage(_)) => None,
        Err(e) => return Err(e),
    };
    clusters_reached();
    Ok(Clusters { source, target })
}

/// Source group positions, from the live source or else from the checkpoints; `uncopied`: the
/// partitions the mirror has a position in and no copies of, read beside those it has copies of.
fn source_positions(
    q: &Query<'_>,
    uncopied: &BTreeMap<TopicPartition, MirroredPosition>,
) -> Result<BTreeMap<String, Vec<GroupOffset>>> {
    let mut partitions: BTreeSet<TopicPartition> =
        q.translator.source_partitions()?.into_iter().filter(|tp| q.picks(tp)).collect();
    partitions.extend(uncopied.keys().cloned());
    let partitions: Vec<TopicPartition> = partitions.into_iter().collect();
    if let Some(source) = &q.clusters.source {
        let names = q.group_names(source, Side::Source)?;
        info!(groups = names.len(), "positions from the live source groups");
        let read = committed_offsets_of_groups(source, Side::Source, &names, &partitions)?;
        return names.into_iter().zip(read).map(|(g, offsets)| Ok((g, offsets?))).collect();
    }
    let topic = crate::config::names::checkpoint_topic(&q.args.mirror.name);
    let reader = crate::config::names::checkpoint_reader_group(&q.args.mirror.name);
    let mut out = BTreeMap::new();
    for (group, checkpoint) in latest_checkpoints(&q.clusters.target, &topic, &reader)? {
        if q.wanted(&group) {
            info!(%group, taken_at_ms = checkpoint.taken_at_ms, "positions from the last checkpoint");
            out.insert(group, checkpoint.offsets.into_iter().filter(|o| q.picks(&o.partition)).collect());
        }
    }
    if let Some(missing) = q.args.group.iter().find(|g| !out.contains_key(*g)) {
        return Err(Error::Group {
            group: missing.clone(),
            message: format!("has no checkpoint in {topic} and the source is not available"),
        });
    }
    Ok(out)
}

fn forward(q: &Query<'_>) -> Result<Vec<Row>> {
    // A partition the mirror has copied nothing of yet (a topic empty when it started, a start
    // from latest) is translated to nothing: said, where it was left out without a word, and
    // with `--execute` a group there was moved on its other partitions only.
    // A dry run goes on without them where the shadow groups cannot be read; `--execute`, whose
    // refusals need them, does not.
    let found = match uncopied_positions(&q.translator, &q.clusters.target, &q.args.mirror.name) {
        Ok(found) => found,
        Err(e) if !q.args.execute => {
            warn!(error = %e, "could not read the mirror's positions: partitions it copied nothing of are left out");
            BTreeMap::new()
        }
        Err(e) => return Err(e),
    };
    let mut uncopied: BTreeMap<TopicPartition, MirroredPosition> = BTreeMap::new();
    for u in found.into_values().flatten().filter(|u| q.picks(&u.source())) {
        // Listed twice (a position under an earlier --rename's target name too): the lower one,
        // whose refusal is the safe side.
        match uncopied.get(&u.source()) {
            Some(listed) if listed.position <= u.position => {}
            _ => {
                uncopied.insert(u.source(), u);
            }
        }
    }
    let positions = source_positions(q, &uncopied)?;
    if positions.is_empty() {
        return Err(q.none_matched(match q.clusters.source {
            Some(_) => "on the source",
            None => "in the target's checkpoints",
        }));
    }
    let groups: Vec<&[GroupOffset]> = positions.values().map(Vec::as_slice).collect();
    let mut translated: Vec<(String, Vec<Translation>)> =
        positions.keys().cloned().zip(q.translator.forward_all(&groups)?).collect();
    // Past the mirror's position there: the records between are copied later, as past the
    // copies of a partition that has some.
    for t in translated.iter_mut().flat_map(|(_, t)| t.iter_mut()).filter(|t| t.to.is_none()) {
        if let Some(u) = uncopied.get(&t.from.partition).filter(|u| t.from.offset > u.position) {
            t.past_copies = Some(u.position);
        }
    }
    match &q.clusters.source {
        // Past the copies on a live source: the records between are copied later, after the
        // position given, and a group moved there now would read them again. Past them by
        // control markers only (the last commit's) is the copies' end.
        // Each partition is read once, up to the group furthest on; one that cannot be read
        // counts as holding records there (`--execute` then refuses, as is safe).
        Some(source) => {
            let mut ranges: BTreeMap<TopicPartition, (i64, i64)> = BTreeMap::new();
            for t in translated.iter().flat_map(|(_, t)| t.iter()) {
                if let Some(end) = t.past_copies {
                    let range = ranges.entry(t.from.partition.clone()).or_insert((end, t.from.offset));
                    *range = (range.0.min(end), range.1.max(t.from.offset));
                }
            }
            let mut first_records = BTreeMap::new();
            for (partition, (from, to)) in ranges {
                let first =
                    first_record_in(source, &q.args.mirror.name, &partition, from, to).unwrap_or(Some(from));
                first_records.insert(partition, first);
            }
            for t in translated.iter_mut().flat_map(|(_, t)| t.iter_mut()) {
                let first = first_records.get(&t.from.partition).copied().flatten();
                if t.past_copies.is_some() && first.is_none_or(|first| first >= t.from.offset) {
                    t.past_copies = None;
                }
            }
        }
        // From checkpoints (the source is gone): what was not copied never will be, and the
        // copies' end is where the group goes on.
        None => translated.iter_mut().flat_map(|(_, t)| t.iter_mut()).for_each(|t| t.past_copies = None),
    }
    if q.args.execute {
        refuse_past_copies(&q.args.mirror.name, &translated, Side::Source)?;
        if !q.args.fenced {
            ready_to_move(&q.clusters.target, Side::Target, &translated)?;
        }
        // Read there: consumers still at work would move the positions after they were read.
        if let Some(source) = &q.clusters.source {
            still_on(source, Side::Source, &translated)?;
        }
    }
    let ends = all_ends(&q.clusters.target, Side::Target, &translated)?;
    let ahead = match q.args.execute {
        true => execute_all(&q.clusters.target, Side::Target, &translated)?,
        false => BTreeMap::new(),
    };
    let mut rows = Vec::new();
    for (group, translations) in &translated {
        let ahead = ahead.get(group).cloned().unwrap_or_default();
        rows.extend(translations.iter().map(|t| {
            let mut r = row(group, "forward", &t.from, t.to.as_ref(), &ends);
            r.note = t.skipped.map(|s| {
                format!(
                    "source offsets {}..{} were deleted on the source before they were copied and skipped by policy (--on-missing-source skip)",
                    s.from, s.to
                )
            });
            if let (None, Some(u)) = (&t.to, uncopied.get(&t.from.partition)) {
                r.target_topic = u.target_topic.clone();
                r.target_partition = u.partition;
                r.note = Some(format!(
                    "the mirror has copied no record of this partition (it stands at source offset {}): there is no copy to translate to, and nothing is committed for it; on the target the group starts here by its auto.offset.reset (earliest reads every copy to come)",
                    u.position
                ));
            }
            if let Some(end) = t.past_copies {
                r.note = Some(format!(
                    "the mirror has copied up to source offset {end}, behind the group: the records from there land after this position once copied, and a group moved here would read them again; wait until the mirror has copied up to the group (kmirror status), then translate again"
                ));
            }
            left_ahead(&mut r, t, &ahead, Side::Target);
            r
        }));
    }
    Ok(rows)
}

fn reverse(q: &Query<'_>) -> Result<Vec<Row>> {
    let partitions: Vec<TopicPartition> =
        q.translator.target_partitions()?.into_iter().filter(|tp| q.picks(tp)).collect();
    let mut positions = Vec::new();
    let names = q.group_names(&q.clusters.target, Side::Target)?;
    if names.is_empty() {
        return Err(q.none_matched("on the target"));
    }
    // Every group's read side by side (a client each took some 0.1 s a group).
    let read = committed_offsets_of_groups(&q.clusters.target, Side::Target, &names, &partitions)?;
    for (group, offsets) in names.into_iter().zip(read) {
        positions.push((group, offsets?));
    }
    // One translation for every group: each reads the mirror's positions and catches the map up.
    let all: Vec<GroupOffset> = positions.iter().flat_map(|(_, o)| o.iter().cloned()).collect();
    let mut answers = q.translator.reverse(&all)?;
    for t in answers.iter_mut().filter(|t| t.past_copies.is_some()) {
        t.past_copies = t.past_copies.filter(|&end| {
            // Past the copies' end by control markers only (the last commit's, the aborts of a
            // fenced mirror) is no read of records the source lacks.
            holds_records(&q.clusters.target, &q.args.mirror.name, &t.from.partition, end, t.from.offset)
                .unwrap_or(true)
        });
    }
    let mut answers = answers.into_iter();
    let translated: Vec<(String, Vec<Translation>)> = positions
        .into_iter()
        .map(|(group, offsets)| (group, answers.by_ref().take(offsets.len()).collect()))
        .collect();
    let source = match (q.args.execute, &q.clusters.source) {
        (true, None) => {
            return Err(Error::Usage(
                "--reverse --execute commits on the source: pass --source BOOTSTRAP".into(),
            ))
        }
        (true, Some(source)) => {
            refuse_past_copies(&q.args.mirror.name, &translated, Side::Target)?;
            ready_to_move(source, Side::Source, &translated)?;
            still_on(&q.clusters.target, Side::Target, &translated)?;
            Some(source)
        }
        (false, source) => source.as_ref(),
    };
    let ends = match source {
        Some(source) => all_ends(source, Side::Source, &translated)?,
        None => Default::default(),
    };
    let ahead = match (q.args.execute, source) {
        (true, Some(source)) => execute_all(source, Side::Source, &translated)?,
        _ => BTreeMap::new(),
    };
    let mut rows = Vec::new();
    for (group, translations) in &translated {
        let ahead = ahead.get(group).cloned().unwrap_or_default();
        // Rows name the source side first whatever the direction.
        rows.extend(translations.iter().map(|t| {
            let mut r = row(group, "reverse", &t.from, t.to.as_ref(), &ends);
            r.note = t.past_copies.map(|end| {
                format!(
                    "past the copies' end {end} on the target: the group read records written there, which the source does not have (kmirror failback copies them home and moves the group past them)"
                )
            });
            left_ahead(&mut r, t, &ahead, Side::Source);
            std::mem::swap(&mut r.source_topic, &mut r.target_topic);
            std::mem::swap(&mut r.source_partition, &mut r.target_partition);
            std::mem::swap(&mut r.source_offset, &mut r.target_offset);
            r
        }));
    }
    Ok(rows)
}

/// Whether `partition` on the cluster of `config` holds committed records in `from..to`
/// (control markers are no records).
pub(crate) fn holds_records(
    config: &ClientConfig,
    name: &str,
    partition: &TopicPartition,
    from: i64,
    to: i64,
) -> Result<bool> {
    Ok(first_record_in(config, name, partition, from, to)?.is_some())
}

/// The offset of the first committed record of `partition` in `from..to` on the cluster of
/// `config`, if any.
fn first_record_in(
    config: &ClientConfig,
    name: &str,
    partition: &TopicPartition,
    from: i64,
    to: i64,
) -> Result<Option<i64>> {
    let reader =
        RangeReader::new(config, &partition.topic, partition.partition, &names::map_reader_group(name))?;
    // The first record answers: the read stops there (a long DR period has many after it).
    const FOUND: &str = "a committed record in the range";
    let mut first = None;
    let read = reader.read(from, to, |offset, _| {
        first = Some(offset);
        Err(Error::Internal(FOUND.into()))
    });
    match read {
        Ok(()) => Ok(None),
        Err(Error::Internal(why)) if why == FOUND => Ok(first),
        Err(e) => Err(e),
    }
}

/// Before `--execute` moves any group: every one has a position to move to and none has
/// members on `side`, so that the run moves all of them or none. Not once a failover has fenced
/// the mirror (it checked before): there each group moves on its own (see [`move_groups`]).
fn ready_to_move(config: &ClientConfig, side: Side, translated: &[(String, Vec<Translation>)]) -> Result<()> {
    for (group, translations) in translated {
        translatable(group, translations)?;
    }
    still_on(config, side, translated)
}

/// Refuses groups with consumers on `side`, where their positions were read (the members of
/// all asked side by side).
fn still_on(config: &ClientConfig, side: Side, translated: &[(String, Vec<Translation>)]) -> Result<()> {
    let groups: Vec<String> = translated.iter().map(|(g, _)| g.clone()).collect();
    refuse_any_active(config, side, &groups)
}

/// Before `--execute` moves any group: none stands past the copies on `read_on` (see
/// [`Translation::past_copies`]), where it would read records again (forward) or skip those
/// written on the target (reverse).
fn refuse_past_copies(name: &str, translated: &[(String, Vec<Translation>)], read_on: Side) -> Result<()> {
    for (group, translations) in translated {
        let Some(t) = translations.iter().find(|t| t.past_copies.is_some()) else { continue };
        let (at, end) = (t.from.offset, t.past_copies.unwrap_or_default());
        let message = match read_on {
            Side::Source => format!(
                "is at source offset {at} of {}, past what mirror {name} has copied (up to {end}): moved now it would read those records again once they are copied; wait until the mirror has copied up to it (kmirror status), then run again (or leave the topic out with --topics if the mirror no longer copies it); nothing was changed",
                t.from.partition
            ),
            Side::Target => format!(
                "read records written on the target past the copies ({} from offset {end}, the group at {at}), which the source does not have: kmirror failback copies them home and moves the group past them; nothing was changed",
                t.from.partition
            ),
        };
        return Err(Error::Group { group: group.clone(), message });
    }
    Ok(())
}

/// Commits every group's translated positions on `side` (see [`move_groups`]), each group
/// checked first to have some.
fn execute_all(
    config: &ClientConfig,
    side: Side,
    translated: &[(String, Vec<Translation>)],
) -> Result<BTreeMap<String, BTreeMap<TopicPartition, i64>>> {
    let offsets: Vec<(String, Vec<GroupOffset>)> = translated
        .iter()
        .map(|(group, translations)| Ok((group.clone(), translatable(group, translations)?)))
        .collect::<Result<_>>()?;
    move_groups(config, side, offsets)
}

/// Commits each group's positions on `side`, but never one behind where the group already is
/// there: a group that read on after a cutover (or a failover run again, whose source positions
/// are the ones it moved the group from) would read again what it had read. Returns, for each
/// group, the positions left, with where the group is. Every group's positions and members are
/// asked side by side, and so are the commits (AlterConsumerGroupOffsets; a client per group
/// and call took some 0.1 s a group); the positions are read before, so that nothing but a
/// commit can fail half-way, and a failed one names the groups moved with it.
pub(crate) fn move_groups(
    config: &ClientConfig,
    side: Side,
    offsets: Vec<(String, Vec<GroupOffset>)>,
) -> Result<BTreeMap<String, BTreeMap<TopicPartition, i64>>> {
    let split = forward_only_all(config, side, offsets)?;
    let mut ahead = BTreeMap::new();
    let mut moving = Vec::new();
    for (group, moved, left) in split {
        if !left.is_empty() {
            warn!(%group, %side, partitions = left.len(), "the group is further on than the translated positions there; left where it is (a group is never moved back)");
        }
        if moved.is_empty() {
            info!(%group, partitions = 0, %side, "committed translated offsets");
        } else {
            moving.push((group.clone(), moved));
        }
        ahead.insert(group, left);
    }
    let outcomes = commit_offsets_of_groups(config, side, &moving)?;
    let mut failed = Vec::new();
    let mut moved = Vec::new();
    for ((group, offsets), outcome) in moving.iter().zip(outcomes) {
        match outcome {
            Ok(()) => {
                info!(%group, partitions = offsets.len(), %side, "committed translated offsets");
                moved.push(group.as_str());
            }
            Err(e) => {
                warn!(%group, %side, error = %e, "the group was not moved");
                failed.push((group.clone(), e));
            }
        }
    }
    let left: Vec<String> = failed.iter().map(|(group, _)| regex::escape(group)).collect();
    let Some((group, e)) = failed.into_iter().next() else { return Ok(ahead) };
    if moved.is_empty() {
        return Err(e);
    }
    let why = match e {
        Error::Group { message, .. } => message,
        e => e.to_string(),
    };
    // Run again as it was, the run would refuse the groups moved, whose consumers may have
    // started where they were moved to.
    Err(Error::Group {
        group,
        message: format!(
            "was not moved, or only in part ({why}); moved with it: {}; once the groups left have no consumers, run again for them alone: --groups '{}' (a group is never moved back)",
            moved.join(", "),
            left.join("|")
        ),
    })
}

/// The end offsets of the partitions the translations land on, read from `side`.
fn all_ends(
    config: &ClientConfig,
    side: Side,
    translated: &[(String, Vec<Translation>)],
) -> Result<BTreeMap<TopicPartition, i64>> {
    let mut partitions: Vec<TopicPartition> = translated
        .iter()
        .flat_map(|(_, t)| t.iter())
        .filter_map(|t| t.to.as_ref().map(|o| o.partition.clone()))
        .collect();
    partitions.sort();
    partitions.dedup();
    Ok(committed_ends(config, &partitions, Duration::from_secs(10))
        .map_err(Error::kafka(side, "reading end offsets"))?
        .into_iter()
        .collect())
}

fn row(
    group: &str,
    direction: &'static str,
    from: &GroupOffset,
    to: Option<&GroupOffset>,
    ends: &BTreeMap<TopicPartition, i64>,
) -> Row {
    let to_partition = to.map(|o| o.partition.clone()).unwrap_or_else(|| from.partition.clone());
    let end = ends.get(&to_partition).copied();
    let to_offset = to.map(|o| o.offset);
    Row {
        group: group.to_string(),
        direction,
        source_topic: from.partition.topic.clone(),
        source_partition: from.partition.partition,
        source_offset: Some(from.offset),
        target_topic: to_partition.topic.clone(),
        target_partition: to_partition.partition,
        target_offset: to_offset,
        end_offset: end,
        lag: end.zip(to_offset).map(|(e, o)| (e - o).max(0)),
        note: None,
    }
}

/// A group, the positions that move it forward, and where it stands past the others.
type Split = (String, Vec<GroupOffset>, BTreeMap<TopicPartition, i64>);

/// Each group's `offsets` split into those that move it forward (or to where it has none) on
/// `side`, and where it already stands past the others (a group is never moved back); where
/// each stands is read side by side.
fn forward_only_all(
    config: &ClientConfig,
    side: Side,
    groups: Vec<(String, Vec<GroupOffset>)>,
) -> Result<Vec<Split>> {
    let asked: Vec<(String, Vec<TopicPartition>)> = groups
        .iter()
        .map(|(g, offsets)| (g.clone(), offsets.iter().map(|o| o.partition.clone()).collect()))
        .collect();
    let current = committed_offsets_exact_of_groups(config, side, &asked)?;
    groups
        .into_iter()
        .zip(current)
        .map(|((group, offsets), current)| {
            let current: BTreeMap<TopicPartition, i64> =
                current?.into_iter().map(|c| (c.partition, c.offset)).collect();
            let (moved, ahead): (Vec<GroupOffset>, Vec<GroupOffset>) =
                offsets.into_iter().partition(|o| current.get(&o.partition).is_none_or(|&c| c <= o.offset));
            let ahead = ahead
                .into_iter()
                .filter_map(|o| Some((o.partition.clone(), *current.get(&o.partition)?)))
                .collect();
            Ok((group, moved, ahead))
        })
        .collect()
}

fn translatable(group: &str, translations: &[Translation]) -> Result<Vec<GroupOffset>> {
    let offsets: Vec<GroupOffset> = translations.iter().filter_map(|t| t.to.clone()).collect();
    if offsets.is_empty() {
        return Err(Error::Group {
            group: group.to_string(),
            message: "has no position that can be translated: it has no committed offset in a partition the mirror has copied into; check the group and --name, or leave it out".into(),
        });
    }
    Ok(offsets)
}

/// A row whose translation was not committed because the group is further on `side`: said in
/// its note (before what it said already), its lag counted from where the group is.
fn left_ahead(row: &mut Row, t: &Translation, ahead: &BTreeMap<TopicPartition, i64>, side: Side) {
    let Some(&at) = t.to.as_ref().and_then(|to| ahead.get(&to.partition)) else { return };
    let left = format!(
        "not committed: the group is at {at} on the {side}, past the translated position (a group is never moved back; reset it by hand if that is meant)"
    );
    row.note = Some(match row.note.take() {
        Some(other) => format!("{left}; {other}"),
        None => left,
    });
    row.lag = row.end_offset.map(|end| (end - at).max(0));
}
