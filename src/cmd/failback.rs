//! `kmirror failback`: after a failover to the DR cluster, the way back.
//!
//! The opposite mirror is the mirror `NAME-back` (source: DR, target: the original source). It
//! must copy only what was written on DR after the failover, never the records mirror NAME copied
//! there (those are on the source already, so copying them back would make them cycle): with
//! `--execute`, failback commits the opposite mirror's start positions, per DR partition the end of
//! NAME's copy, into its shadow groups on the source before it first runs, and prints the command
//! that runs it. A consumer group on DR at position q moves back to the source at:
//! - q at or below the end of NAME's copy: the source record NAME's map says q is a copy of;
//! - q above it: the source copy of DR record q, from NAME-back's own map (refused by name while
//!   that record is not copied back yet).
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use kmirror_state::{GroupOffset, TopicPartition};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use serde::Serialize;
use tracing::warn;

use crate::cmd::cli::FailbackArgs;
use crate::cmd::mirrored_partitions::{mirrored_pairs_with, topic_ids_on};
use crate::cmd::report::{self, Format, Row};
use crate::cmd::translate_offsets::{holds_records, move_groups};
use crate::cmd::uncopied_at_failover::{self, MirroredPosition};
use crate::config::names::{self, failback_starts_group, shadow_group, shard_of};
use crate::config::{check_name, default_state_dir, group_regex, DEFAULT_SHARDS};
use crate::error::{Error, Result, Side};
use crate::kafka::client::CreateForRole;
use crate::kafka::connect::reachable;
use crate::kafka::groups::{
    commit_offsets_of_groups, committed_offsets_exact_of_groups, committed_offsets_of_groups, list_groups,
    refuse_active,
};
use crate::kafka::log_filter::clusters_reached;
use crate::kafka::watermarks::committed_ends;
use crate::mirror::shadow::CommitMetadata;
use crate::state_dir::StateDir;
use crate::translate::translator::Translator;

/// Where the opposite mirror starts in one DR partition. Field names are part of the JSON output.
#[derive(Debug, Clone, Serialize)]
struct Start {
    dr_topic: String,
    dr_partition: i32,
    /// The end of the forward copy: the first DR offset the opposite mirror copies.
    start_offset: i64,
    source_topic: String,
    source_partition: i32,
    /// "committed", "already set" (the opposite mirror has a position there), or "dry run".
    state: String,
}

#[derive(Debug, Serialize)]
struct Record {
    name: String,
    back_name: String,
    executed: bool,
    /// The command that runs the opposite mirror.
    command: String,
    starts: Vec<Start>,
    /// Topics on DR that the source does not have and the mirror did not copy into (made on DR,
    /// in the DR period or before): the way home leaves their records on DR.
    left_on_dr: Vec<String>,
    groups: Vec<String>,
    positions: Vec<Row>,
}

pub(crate) fn run(args: &FailbackArgs) -> Result<String> {
    let name = &args.mirror.name;
    check_name(name)?;
    let back = names::back_mirror(name);
    let timeout = Duration::from_secs(args.mirror.connect_timeout.max(1));
    let (dr, dr_servers) = args.mirror.clients.client_config(Side::Target, args.mirror.target.as_ref())?;
    reachable(&dr, Side::Target, &dr_servers, timeout)?;
    let (source, source_servers) = args.mirror.clients.client_config(Side::Source, args.source.as_ref())?;
    reachable(&source, Side::Source, &source_servers, timeout)?;
    clusters_reached();

    let state_dir = args.state_dir.clone().unwrap_or_else(|| default_state_dir(&format!("{name}.failback")));
    let state = StateDir::open(&state_dir)?;
    let forward = Translator::open(&state.path().join("forward"), name, dr.clone())?;
    // Every partition `name` mirrored, copies or not: a topic empty at the failover takes DR
    // writes too, and they go home with the rest.
    // Checked before anything is committed.
    let groups = args.groups.as_deref().map(group_regex).transpose()?;
    let shards = forward.shards()?;
    // The failover's record (the partitions it found positioned without copies, the DR topics'
    // IDs), read once for all that follows.
    let (recorded, recorded_ids) = uncopied_at_failover::read_all(&dr, name, shards)?;
    let pairs = mirrored_pairs_with(&forward, &dr, (name, shards), &recorded)?;
    if pairs.is_empty() {
        return Err(Error::Usage(format!(
            "mirror {name} has copied nothing to {dr_servers}: there is nothing to fail back"
        )));
    }
    // The way home's own map, where it has run: a partition it copied has a start, set once,
    // even where its positions expired since (committed again, the start would send it back to
    // copy every DR write a second time).
    let back_map = match Translator::open(&state.path().join("back"), &back, source.clone()) {
        Ok(map) => Some(map),
        Err(Error::State(_)) => None,
        Err(e) => return Err(e),
    };
    // A report only: a failback does not fail for want of it.
    let left_on_dr = left_on_dr(&dr, &source, &pairs, timeout).unwrap_or_else(|e| {
        warn!(error = %e, "could not list the topics left on DR");
        Vec::new()
    });
    let dr_ids = dr_topic_ids(&dr, &pairs, timeout, args.execute)?;
    let made_again = made_again_since_the_failover(recorded_ids, &dr_ids);
    let starts = prepare_starts(
        &forward,
        back_map.as_ref(),
        (&source, &dr_ids, &made_again),
        &back,
        &pairs,
        args.execute,
    )?;
    drop(back_map);
    let ends: BTreeMap<TopicPartition, i64> = starts
        .iter()
        .map(|s| (TopicPartition::new(s.dr_topic.as_str(), s.dr_partition), s.start_offset))
        .collect();

    let mut group_names = Vec::new();
    let mut positions = Vec::new();
    if let (Some(pattern), Some(regex)) = (&args.groups, &groups) {
        group_names = list_groups(&dr, Side::Target, |g| regex.is_match(g))?;
        if group_names.is_empty() {
            return Err(Error::Usage(format!(
                "no consumer group on {dr_servers} matches --groups '{pattern}'"
            )));
        }
        let translated = translate_groups(
            name,
            &forward,
            &state,
            &back,
            &source,
            &dr,
            &group_names,
            (&pairs, &made_again, &recorded),
            &ends,
        )?;
        if args.execute {
            // Read on DR and committed on the source: consumers on either side would move
            // the positions, on DR after they were read.
            refuse_active(&dr, Side::Target, &group_names, "fail back")?;
            refuse_active(&source, Side::Source, &group_names, "fail back")?;
            refuse_untranslated(&translated)?;
            // Every group moved side by side (one after the other, 200 groups took 26 s), never
            // one behind where it is on the source already (its consumers read on there after
            // an earlier failback of it).
            let offsets: Vec<(String, Vec<GroupOffset>)> = translated
                .iter()
                .map(|(group, offsets)| {
                    (group.clone(), offsets.iter().filter_map(|(_, to)| to.clone()).collect())
                })
                .collect();
            move_groups(&source, Side::Source, offsets)?;
        }
        positions = rows(&source, &translated)?;
    }
    let record = Record {
        name: name.clone(),
        back_name: back.clone(),
        executed: args.execute,
        command: command(&back, &dr_servers, &source_servers, &pairs),
        starts,
        left_on_dr,
        groups: group_names,
        positions,
    };
    Ok(match args.format {
        Format::Json => serde_json::to_string_pretty(&record).unwrap_or_default() + "\n",
        Format::Csv => report::render(&record.positions, Format::Csv),
        Format::Table => table(&record),
    })
}

/// The DR offset after the forward copy's last record of `src` (in `dr`): 0 where it copied none.
fn forward_copy_end(forward: &Translator, src: &TopicPartition, dr: &TopicPartition) -> Result<i64> {
    let Some(end) = forward.mapped_end(src)? else { return Ok(0) };
    let committed = forward.committed_position(src, dr)?;
    let last = forward.copy_of(src, end - 1, committed)?.ok_or_else(|| {
        Error::State(format!("the map of {src} ends at {end} but holds no copy of {}", end - 1))
    })?;
    Ok(last + 1)
}

/// The topics on DR, kmirror's and Kafka's own aside, that the source does not have and the
/// mirror did not copy into (`pairs`): made on DR, their records stay there, and a failback that
/// left them unsaid lost them for the applications going home. Said in the log and the report.
fn left_on_dr(
    dr: &ClientConfig,
    source: &ClientConfig,
    pairs: &[(TopicPartition, TopicPartition)],
    timeout: Duration,
) -> Result<Vec<String>> {
    let topics = |config: &ClientConfig, side: Side| -> Result<BTreeSet<String>> {
        let client: BaseConsumer =
            config.create_for_role().map_err(Error::kafka(side, "creating a client"))?;
        let metadata = client.fetch_metadata(None, timeout).map_err(Error::kafka(side, "listing topics"))?;
        Ok(metadata.topics().iter().map(|t| t.name().to_string()).collect())
    };
    let copies: BTreeSet<&str> = pairs.iter().map(|(_, dr)| dr.topic.as_str()).collect();
    let on_source = topics(source, Side::Source)?;
    let left: Vec<String> = topics(dr, Side::Target)?
        .into_iter()
        .filter(|t| !t.starts_with("__") && !t.starts_with(names::OWN_PREFIX))
        .filter(|t| !copies.contains(t.as_str()) && !on_source.contains(t))
        .collect();
    if !left.is_empty() {
        warn!(topics = ?left, "topics on DR that the source does not have and the mirror did not copy: their records stay on DR (mirror them home with a mirror of their own)");
    }
    Ok(left)
}

/// The IDs of the DR topics of `pairs`, as DR gives them now: a start carries its topic's, as
/// every position the mirror commits does, so that the way home refuses a DR topic made again
/// after the failback (it would go on from the start's offset in the new topic, skipping its
/// first records) instead of copying from there. A DR that gives no IDs gives none to compare;
/// one that does not answer refuses `execute` (nothing is committed yet: starts set without the
/// check are never set again).
fn dr_topic_ids(
    dr: &ClientConfig,
    pairs: &[(TopicPartition, TopicPartition)],
    timeout: Duration,
    execute: bool,
) -> Result<HashMap<String, String>> {
    let topics: BTreeSet<&str> = pairs.iter().map(|(_, dr)| dr.topic.as_str()).collect();
    match topic_ids_on(dr, Side::Target, &topics, timeout) {
        Ok(ids) => Ok(ids),
        Err(Error::Unreachable { side, bootstrap, message }) if execute => {
            Err(Error::Unreachable { side, bootstrap, message: format!("{message}; nothing was committed") })
        }
        Err(e) if execute => Err(e),
        Err(e) => {
            warn!(error = %e, "could not read the DR topics' IDs");
            Ok(HashMap::new())
        }
    }
}

/// The DR topics whose ID is not the one the failover recorded (see `uncopied_at_failover`):
/// deleted and made again in the DR period, they hold DR writes only, every one of which goes
/// home. A failover that recorded none (an older kmirror's) gives none. `recorded`: the IDs the
/// failover recorded (a record that cannot be read fails the failback before: starts set without
/// it are never set again).
fn made_again_since_the_failover(
    recorded: BTreeMap<String, String>,
    dr_ids: &HashMap<String, String>,
) -> BTreeSet<String> {
    let unrecorded: BTreeSet<&String> =
        dr_ids.keys().filter(|topic| !recorded.contains_key(*topic)).collect();
    if !unrecorded.is_empty() {
        warn!(topics = ?unrecorded, "the failover recorded no ID of these DR topics (a kmirror older than the record, or a failed read): one deleted and made again since would go home from the copies' end, not its start");
    }
    let made_again: BTreeSet<String> = recorded
        .into_iter()
        .filter(|(topic, id)| dr_ids.get(topic).is_some_and(|now| now != id))
        .map(|(topic, _)| topic)
        .collect();
    for topic in &made_again {
        warn!(%topic, "DR topic deleted and made again since the failover: it holds DR writes only, and the way home copies it from its start");
    }
    made_again
}

/// Where the forward copy ends in each DR partition (a topic `made_again` since the failover:
/// at its start), and (with `execute`) those positions committed as the opposite mirror's start
/// where it has none yet; `dr_ids`: the DR topics' IDs (see [`dr_topic_ids`]).
fn prepare_starts(
    forward: &Translator,
    back_map: Option<&Translator>,
    (source, dr_ids, made_again): (&ClientConfig, &HashMap<String, String>, &BTreeSet<String>),
    back: &str,
    pairs: &[(TopicPartition, TopicPartition)],
    execute: bool,
) -> Result<Vec<Start>> {
    let mut by_group: BTreeMap<String, Vec<(TopicPartition, TopicPartition, i64)>> = BTreeMap::new();
    for (src, dr) in pairs {
        let start = match made_again.contains(&dr.topic) {
            true => 0,
            false => forward_copy_end(forward, src, dr)?,
        };
        let shard = shard_of(&dr.topic, dr.partition, DEFAULT_SHARDS);
        by_group.entry(shadow_group(back, shard)).or_default().push((src.clone(), dr.clone(), start));
    }
    // Every shadow group's positions read, and every start committed, side by side.
    let asked: Vec<(String, Vec<TopicPartition>)> = by_group
        .iter()
        .map(|(group, entries)| (group.clone(), entries.iter().map(|(src, _, _)| src.clone()).collect()))
        .collect();
    let read = committed_offsets_exact_of_groups(source, Side::Source, &asked)?;
    let mut starts = Vec::new();
    let mut to_commit: Vec<(String, Vec<GroupOffset>)> = Vec::new();
    for ((group, entries), read) in by_group.into_iter().zip(read) {
        let set: BTreeSet<TopicPartition> = read?.into_iter().map(|o| o.partition).collect();
        let mut offsets = Vec::new();
        for (src, dr, start) in entries {
            let copied_home = match back_map {
                Some(map) => map.mapped_end(&dr)?.is_some(),
                None => false,
            };
            let state = if set.contains(&src) || copied_home {
                "already set"
            } else if execute {
                let metadata = CommitMetadata {
                    v: 1,
                    source_topic: dr.topic.clone(),
                    shards: DEFAULT_SHARDS,
                    source_topic_id: dr_ids.get(&dr.topic).cloned(),
                    by_failback: true,
                };
                offsets.push(GroupOffset {
                    partition: src.clone(),
                    offset: start,
                    metadata: metadata.encode(),
                });
                "committed"
            } else {
                "dry run"
            };
            starts.push(Start {
                dr_topic: dr.topic.clone(),
                dr_partition: dr.partition,
                start_offset: start,
                source_topic: src.topic.clone(),
                source_partition: src.partition,
                state: state.into(),
            });
        }
        if !offsets.is_empty() {
            to_commit.push((group, offsets));
        }
    }
    let mut failed = Vec::new();
    for ((group, _), outcome) in
        to_commit.iter().zip(commit_offsets_of_groups(source, Side::Source, &to_commit)?)
    {
        if let Err(e) = outcome {
            warn!(%group, error = %e, "the way home's starts in this shadow group were not committed");
            failed.push((group.as_str(), e));
        }
    }
    // The marker below is written only once every start is in; a run again finds those
    // committed now "already set".
    if let Some((_, first)) = failed.first() {
        let groups: Vec<&str> = failed.iter().map(|(g, _)| *g).collect();
        let others = match failed.len() < to_commit.len() {
            true => "those of the other shadow groups were; ",
            false => "",
        };
        let why = match first {
            Error::Group { message, .. } => message.clone(),
            e => e.to_string(),
        };
        return Err(Error::Group {
            group: groups.join(", "),
            message: format!(
                "the way home's starts in it were not committed ({why}); {others}run failback --execute again"
            ),
        });
    }
    // Last, once every start is in: the way home starts only where it finds this (see
    // `failback_starts_group`). A group's commit needs a partition; any source partition of the
    // mirror does.
    if let (true, Some((first, _))) = (execute, pairs.first()) {
        let marker = GroupOffset {
            partition: first.clone(),
            offset: 0,
            metadata: format!("kmirror failback: every start of mirror {back} is committed"),
        };
        let marked = vec![(failback_starts_group(back), vec![marker])];
        for outcome in commit_offsets_of_groups(source, Side::Source, &marked)? {
            outcome?;
        }
    }
    starts.sort_by(|a, b| (&a.dr_topic, a.dr_partition).cmp(&(&b.dr_topic, b.dr_partition)));
    Ok(starts)
}

type Translated = BTreeMap<String, Vec<(GroupOffset, Option<GroupOffset>)>>;

/// Each group's DR positions and where they land on the source: all translated at once (each
/// translation reads the mirrors' positions and catches the local maps up).
#[allow(clippy::too_many_arguments)]
fn translate_groups(
    name: &str,
    forward: &Translator,
    state: &StateDir,
    back: &str,
    source: &ClientConfig,
    dr: &ClientConfig,
    groups: &[String],
    (pairs, made_again, recorded): (
        &[(TopicPartition, TopicPartition)],
        &BTreeSet<String>,
        &[MirroredPosition],
    ),
    ends: &BTreeMap<TopicPartition, i64>,
) -> Result<Translated> {
    let dr_partitions: Vec<TopicPartition> = pairs.iter().map(|(_, dr)| dr.clone()).collect();
    let mut positions = Vec::new();
    for (group, read) in
        groups.iter().zip(committed_offsets_of_groups(dr, Side::Target, groups, &dr_partitions)?)
    {
        positions.extend(read?.into_iter().map(|from| (group.clone(), from)));
    }
    // DR partitions the forward mirror copied nothing into (a topic empty at the failover), or
    // of a topic made again since: every record in them was written on DR, and `forward`'s map
    // has nothing to say (of the one made again, what it says is of the topic deleted).
    let mut uncopied: BTreeMap<TopicPartition, TopicPartition> = BTreeMap::new();
    for (src, dr_partition) in pairs {
        if made_again.contains(&dr_partition.topic) || forward.mapped_end(src)?.is_none() {
            uncopied.insert(dr_partition.clone(), src.clone());
        }
    }
    let copied_forward = |from: &GroupOffset| {
        !uncopied.contains_key(&from.partition)
            && ends.get(&from.partition).is_some_and(|&end| from.offset <= end)
    };
    let (inside, past): (Vec<GroupOffset>, Vec<GroupOffset>) =
        positions.iter().map(|(_, from)| from.clone()).partition(|from| copied_forward(from));
    // Past the copy's end by control markers only (a Java consumer's position moves over the
    // last commit's marker) is the copy's end: no DR record lies between, and the opposite
    // mirror, with nothing to copy there, never has an answer for it.
    let mut at_end: Vec<(GroupOffset, GroupOffset)> = Vec::new();
    let mut past_records = Vec::new();
    for from in past {
        match ends.get(&from.partition) {
            Some(&end)
                if !uncopied.contains_key(&from.partition)
                    && !holds_records(dr, name, &from.partition, end, from.offset)? =>
            {
                at_end.push((from.clone(), GroupOffset { offset: end, ..from }));
            }
            _ => past_records.push(from),
        }
    }
    let past = past_records;
    let mut answers: BTreeMap<(TopicPartition, i64), Option<GroupOffset>> = BTreeMap::new();
    let mut inside = inside;
    inside.extend(at_end.iter().map(|(_, end)| end.clone()));
    if !inside.is_empty() {
        for t in forward.reverse(&inside)? {
            answers.insert((t.from.partition.clone(), t.from.offset), t.to);
        }
        for (from, end) in &at_end {
            let to = answers.get(&(end.partition.clone(), end.offset)).cloned().flatten();
            answers.insert((from.partition.clone(), from.offset), to);
        }
    }
    if !past.is_empty() {
        // Past the forward copy: the source copy of the DR record there, from the opposite
        // mirror's own map, once it has copied that far (refused by name until then); one that
        // has not run yet (no map) has copied nothing back.
        match Translator::open(&state.path().join("back"), back, source.clone()) {
            Ok(map) => {
                for t in map.forward_copied(&past)? {
                    answers.insert((t.from.partition.clone(), t.from.offset), t.to);
                }
            }
            Err(Error::State(_)) => {}
            Err(e) => return Err(e),
        }
    }
    // An uncopied partition with no record on DR at all: nothing to copy either way, and the
    // group goes where the forward mirror stood on the source.
    let unanswered: Vec<&GroupOffset> = positions
        .iter()
        .map(|(_, from)| from)
        .filter(|from| uncopied.contains_key(&from.partition))
        .filter(|from| answers.get(&(from.partition.clone(), from.offset)).is_none_or(Option::is_none))
        .collect();
    if !unanswered.is_empty() {
        let partitions: Vec<TopicPartition> = unanswered.iter().map(|f| f.partition.clone()).collect();
        let dr_ends = committed_ends(dr, &partitions, Duration::from_secs(10))
            .map_err(Error::kafka(Side::Target, "reading end offsets"))?;
        // Where the forward mirror's own positions expired, the failover recorded them.
        let at_failover: BTreeMap<TopicPartition, i64> =
            recorded.iter().map(|u| (u.target(), u.position)).collect();
        for from in unanswered {
            let (Some(src), Some(&end)) = (uncopied.get(&from.partition), dr_ends.get(&from.partition))
            else {
                continue;
            };
            if !holds_records(dr, name, &from.partition, 0, end)? {
                let stood = forward.committed_position(src, &from.partition)?;
                if let Some(stood) = stood.or_else(|| at_failover.get(&from.partition).copied()) {
                    let to = GroupOffset {
                        partition: src.clone(),
                        offset: stood,
                        metadata: from.metadata.clone(),
                    };
                    answers.insert((from.partition.clone(), from.offset), Some(to));
                }
            }
        }
    }
    let mut out: Translated = groups.iter().map(|g| (g.clone(), Vec::new())).collect();
    for (group, from) in positions {
        let to = answers.get(&(from.partition.clone(), from.offset)).cloned().flatten();
        out.entry(group).or_default().push((from, to));
    }
    Ok(out)
}

fn refuse_untranslated(translated: &Translated) -> Result<()> {
    for (group, offsets) in translated {
        if let Some((from, _)) = offsets.iter().find(|(_, to)| to.is_none()) {
            return Err(Error::Group {
                group: group.clone(),
                message: format!(
                    "its position {} in DR partition {} is not copied back yet: run the opposite mirror until it is caught up, then fail back again (nothing was changed)",
                    from.offset, from.partition
                ),
            });
        }
    }
    Ok(())
}

fn rows(source: &ClientConfig, translated: &Translated) -> Result<Vec<Row>> {
    let landing: Vec<TopicPartition> = translated
        .values()
        .flatten()
        .filter_map(|(_, to)| to.as_ref().map(|t| t.partition.clone()))
        .collect();
    let ends = committed_ends(source, &landing, Duration::from_secs(10))
        .map_err(Error::kafka(Side::Source, "reading end offsets"))?;
    let mut rows = Vec::new();
    for (group, offsets) in translated {
        for (from, to) in offsets {
            let end = to.as_ref().and_then(|t| ends.get(&t.partition).copied());
            rows.push(Row {
                group: group.clone(),
                direction: "back",
                source_topic: to.as_ref().map(|t| t.partition.topic.clone()).unwrap_or_default(),
                source_partition: to.as_ref().map_or(-1, |t| t.partition.partition),
                source_offset: to.as_ref().map(|t| t.offset),
                target_topic: from.partition.topic.clone(),
                target_partition: from.partition.partition,
                target_offset: Some(from.offset),
                end_offset: end,
                lag: end.zip(to.as_ref()).map(|(e, t)| (e - t.offset).max(0)),
                note: None,
            });
        }
    }
    Ok(rows)
}

/// The opposite mirror's command line: DR topics back to their source names, configs left as
/// they are.
fn command(back: &str, dr: &str, source: &str, pairs: &[(TopicPartition, TopicPartition)]) -> String {
    let topics: BTreeSet<&str> = pairs.iter().map(|(_, d)| d.topic.as_str()).collect();
    let pattern = topics.iter().map(|t| regex::escape(t)).collect::<Vec<_>>().join("|");
    let renamed: BTreeSet<(&str, &str)> =
        pairs.iter().map(|(s, d)| (d.topic.as_str(), s.topic.as_str())).collect();
    let rename = if renamed.iter().all(|(d, s)| d == s) {
        String::new()
    } else {
        let prefixes: BTreeSet<&str> = renamed.iter().filter_map(|(d, s)| d.strip_suffix(*s)).collect();
        match (prefixes.len(), prefixes.iter().next()) {
            (1, Some(prefix)) if renamed.iter().all(|(d, s)| d.strip_suffix(*s) == Some(*prefix)) => {
                format!(" --rename 'regex:{}(.*)=>$1'", regex::escape(prefix))
            }
            _ => " --rename 'regex:FROM=>TO' (a rule that names each DR topic's source topic)".into(),
        }
    };
    // The way home copies records into the originals, never configs: those are the source's own
    // (a copy's retention set apart on DR, with --exclude-configs, would shorten the original's).
    format!(
        "kmirror mirror --source {dr} --target {source} --name {back} --topics '{pattern}'{rename} --exclude-configs '.*'"
    )
}

fn table(record: &Record) -> String {
    let mut out =
        format!("failback of mirror {}: the opposite mirror is {}\n\n", record.name, record.back_name);
    out += "dr partition          starts at  -> source partition   state\n";
    for s in &record.starts {
        out += &format!(
            "{:<21} {:>9}  -> {:<19} {}\n",
            format!("{}/{}", s.dr_topic, s.dr_partition),
            s.start_offset,
            format!("{}/{}", s.source_topic, s.source_partition),
            s.state
        );
    }
    out += &match record.executed {
        true => format!("\nrun the opposite mirror (it copies only what was written on DR):\n  {}\n", record.command),
        false => format!(
            "\nonce this has run with --execute (which sets the starts above), run the opposite mirror:\n  {}\n",
            record.command
        ),
    };
    if !record.left_on_dr.is_empty() {
        out += &format!(
            "\nleft on DR (topics the source does not have and the mirror did not copy; mirror them home with a mirror of their own): {}\n",
            record.left_on_dr.join(", ")
        );
    }
    if !record.positions.is_empty() {
        out += "\n";
        out += &report::render(&record.positions, Format::Table);
    }
    out += if record.executed {
        "\nresult: start positions (and group positions, with --groups) committed on the source\n"
    } else {
        "\nresult: nothing changed (dry run); run again with --execute\n"
    };
    out
}
