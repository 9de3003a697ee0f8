//! `kmirror failover`: moves the checkpointed consumer groups of a mirror to the target in one
//! step. With `--execute`: refuses groups with members on the target, fences the mirror's
//! transactional ids (a running instance stops, its open transactions are aborted, so the
//! target is final), writes a last checkpoint where the source answers, and commits every
//! group's exact translated position. Without it, a dry run that changes nothing.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kmirror_state::Checkpoint;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use serde::Serialize;
use tracing::{info, warn};

use crate::cmd::cli::{ClientFlags, FailoverArgs, MirrorRef, StatusArgs, StatusFormat, TranslateArgs};
use crate::cmd::mirrored_partitions::{topic_ids_on, uncopied_positions};
use crate::cmd::report::{self, Format, Row};
use crate::cmd::uncopied_at_failover::{self, MirroredPosition};
use crate::config::names;
use crate::config::topics::TopicSelector;
use crate::config::{check_name, default_state_dir, group_regex};
use crate::error::{code_of, Error, Result, Side};
use crate::kafka::client::CreateForRole;
use crate::kafka::connect::reachable;
use crate::kafka::groups::{list_groups, refuse_active};
use crate::kafka::log_filter::clusters_reached;
use crate::mirror::owners::{OwnershipLog, FAILED_OVER};
use crate::state_dir::StateDir;
use crate::translate::checkpoint::{latest_checkpoints, take_checkpoints, write_checkpoints, Writer};
use crate::translate::translator::Translator;

/// The record of one failover, for an incident log. Field names are part of the JSON output.
#[derive(Debug, Serialize)]
struct Record {
    name: String,
    at_ms: i64,
    executed: bool,
    /// Shards whose transactional ids were fenced (0 on a dry run).
    fenced_shards: u32,
    /// "reachable", or why the source was not asked.
    source: String,
    /// Records on the source not mirrored when the mirror stopped (None: source unknown).
    unmirrored_records: Option<i64>,
    groups: Vec<String>,
    positions: Vec<Row>,
}

pub(crate) fn run(args: &FailoverArgs) -> Result<String> {
    check_name(&args.mirror.name)?;
    let timeout = Duration::from_secs(args.mirror.connect_timeout.max(1));
    let (target, target_servers) =
        args.mirror.clients.client_config(Side::Target, args.mirror.target.as_ref())?;
    reachable(&target, Side::Target, &target_servers, timeout)?;
    let pattern = args.groups.clone().unwrap_or_else(|| ".*".into());
    let groups = group_regex(&pattern)?;
    // Without --groups every checkpointed group moves, kmirror's own too where the mirror was
    // told to checkpoint them; `.*` leaves those out (see GroupSelector).
    let takes_checkpointed = |g: &str| args.groups.is_none() || groups.is_match(g);
    // Checked before anything is fenced: a failover refused after its fencing leaves the
    // mirror stopped and no group moved.
    let selector = args.topics.as_deref().map(|topics| TopicSelector::new(topics, None)).transpose()?;
    let source = live_source(args, timeout)?;
    // A source given up on was said once in a warning; from here on failed connections are.
    clusters_reached();

    let status = crate::cmd::status::collect(&StatusArgs {
        source: source.as_ref().and(args.source.clone()),
        format: StatusFormat::Json,
        mirror: args.mirror.clone(),
    })?;
    let unmirrored =
        source.as_ref().and_then(|_| status.partitions.iter().map(|p| p.lag_records).sum::<Option<i64>>());
    if let (Some(selector), Some(topics)) = (&selector, &args.topics) {
        // Either name: status tells a renamed topic's source name from recent map records only.
        if !status.partitions.iter().any(|p| selector.matches(&p.topic) || selector.matches(&p.target_topic))
        {
            let mirrored: BTreeSet<&str> = status.partitions.iter().map(|p| p.topic.as_str()).collect();
            return Err(Error::Usage(format!(
                "--topics '{topics}' matches no topic mirror {} copies ({}): check the pattern (source topic names, whole-name regex); nothing was fenced",
                args.mirror.name,
                mirrored.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
    }

    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| default_state_dir(&format!("{}.failover", args.mirror.name)));
    let state = StateDir::open(&state_dir)?;
    let mut fenced_shards = 0;
    let mut source_answered = source.is_some();
    if args.execute {
        let checkpoints = checkpointed_groups(&target, &args.mirror.name)?;
        let every = chosen(&checkpoints, takes_checkpointed, None);
        let checkpointed = chosen(&checkpoints, takes_checkpointed, selector.as_ref());
        // No group to move, now or after the last checkpoint: refused before the fencing, which
        // would stop the mirror for nothing. The groups the mirror checkpointed move; where it
        // checkpointed none, those on the source --groups matches.
        let from_source = match (&source, every.is_empty()) {
            (Some(source), true) => list_groups(source, Side::Source, |g| groups.is_match(g))?,
            _ => Vec::new(),
        };
        let moving: Vec<String> = checkpointed
            .iter()
            .chain(&from_source)
            .cloned()
            .collect::<BTreeSet<String>>()
            .into_iter()
            .collect();
        if moving.is_empty() {
            return Err(no_group(&args.mirror.name, &pattern, args.topics.as_deref()));
        }
        refuse_active(&target, Side::Target, &moving, "fail over")?;
        // Consumers still at work on the source would read on past the positions taken there,
        // and read that again on DR: the groups the mirror checkpointed, or those --groups names
        // (not every group of a source the mirror was never told about). A source that does not
        // say is gone on without, as one that does not answer.
        let named = match (args.groups.is_some(), checkpointed.is_empty()) {
            (false, true) => Vec::new(),
            _ => moving.clone(),
        };
        if let Some(source) = &source {
            match refuse_active(source, Side::Source, &named, "fail over") {
                Err(e @ Error::Group { .. }) => return Err(e),
                Err(e) => {
                    warn!(error = %e, "could not ask the source whether the groups are still consuming there")
                }
                Ok(()) => {}
            }
        }
        // Read before this failover's claims replace the one in force (a failover run again).
        let earlier = recorded_before(&target, &args.mirror.name, status.shards);
        fence(&target, &args.mirror.name, status.shards)?;
        fenced_shards = status.shards;
        let translator = Translator::open(state.path(), &args.mirror.name, target.clone())?;
        translator.refresh()?;
        record_uncopied(&translator, (&target, timeout), &args.mirror.name, status.shards, earlier);
        // Fenced already: a source that does not answer for its groups (or for one of them)
        // leaves them to their last checkpoints (said in the log) rather than stopping the
        // failover half-way.
        let taken = match &source {
            Some(source) => {
                let groups =
                    group_regex(&moving.iter().map(|g| regex::escape(g)).collect::<Vec<_>>().join("|"))?;
                match take_checkpoints(source, &groups, &translator.source_partitions()?) {
                    Ok(taken) => Some(taken),
                    Err(e) => {
                        warn!(error = %e, "the source did not answer for its groups' positions: they move to their last checkpoints");
                        source_answered = false;
                        None
                    }
                }
            }
            None => None,
        };
        if let Some((checkpoints, unread)) = taken {
            if let Some(e) = unread {
                warn!(error = %e, "a group's positions could not be read on the source: it moves to its last checkpoint");
            }
            let not_stored = write_checkpoints(
                &target,
                &names::checkpoint_topic(&args.mirror.name),
                &checkpoints,
                Writer::Failover,
            )?;
            // Fenced already: such a group moves to its checkpoint before, if it has one, behind
            // where it is on the source (its consumers read again what they read since), rather
            // than the failover stopping half-way; one without is not moved (each was warned of
            // as not stored, with why).
            if !not_stored.is_empty() {
                let groups: Vec<&String> = not_stored.keys().collect();
                warn!(?groups, "these groups' last checkpoint was not stored: each moves to its earlier checkpoint, if it has one (one without is not moved)");
            }
            info!(groups = checkpoints.len() - not_stored.len(), "took a last checkpoint from the source");
        }
    }
    drop(state);

    let group_names =
        chosen(&checkpointed_groups(&target, &args.mirror.name)?, takes_checkpointed, selector.as_ref());
    if group_names.is_empty() {
        return Err(no_group(&args.mirror.name, &pattern, args.topics.as_deref()));
    }
    // Positions come from the checkpoints (the last one just taken where the source answered),
    // so that only groups with positions in mirrored topics are moved.
    let positions = crate::cmd::translate_offsets::rows(&TranslateArgs {
        group: group_names.clone(),
        groups: None,
        source: None,
        topics: args.topics.clone(),
        reverse: false,
        format: args.format,
        execute: args.execute,
        fenced: args.execute,
        state_dir: Some(state_dir),
        mirror: MirrorRef {
            // Only the target: the positions are the checkpoints' (a source named by a
            // `--set source.bootstrap.servers` would be asked again, and may be gone by now).
            clients: ClientFlags {
                source_config: None,
                set: args.mirror.clients.set.iter().filter(|s| !s.starts_with("source.")).cloned().collect(),
                ..args.mirror.clients.clone()
            },
            ..args.mirror.clone()
        },
    })?;
    let record = Record {
        name: args.mirror.name.clone(),
        at_ms: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0),
        executed: args.execute,
        fenced_shards,
        source: match (source.is_some(), source_answered) {
            (true, true) => "reachable".into(),
            (true, false) => "reachable, but it did not answer for the groups' positions".into(),
            (false, _) => "not asked or unreachable".into(),
        },
        unmirrored_records: unmirrored,
        groups: group_names,
        positions,
    };
    Ok(match args.format {
        Format::Json => serde_json::to_string_pretty(&record).unwrap_or_default() + "\n",
        Format::Csv => report::render(&record.positions, Format::Csv),
        Format::Table => {
            format!(
                "{}\n{}",
                report::render(&record.positions, Format::Table),
                summary(&record, &target_servers)
            )
        }
    })
}

/// The source's client config when `--source` is given and it answers. A source that does not
/// answer is what a failover is for (it goes on from the last checkpoints on the target); a
/// source config that cannot be used as given (a setting misspelt) is a mistake to fix first,
/// or the groups would move to older positions than the source has.
fn live_source(args: &FailoverArgs, timeout: Duration) -> Result<Option<ClientConfig>> {
    if args.source.is_none() {
        return Ok(None);
    }
    let (config, servers) = args.mirror.clients.client_config(Side::Source, args.source.as_ref())?;
    match reachable(&config, Side::Source, &servers, timeout) {
        Ok(()) => Ok(Some(config)),
        // Refused too (TLS, login): a dying cluster or its empty load balancer can answer so.
        Err(e @ (Error::Unreachable { .. } | Error::Refused { .. })) => {
            warn!("{e}; failing over from the last checkpoints on the target");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// What the failover in force, if any, recorded (see [`uncopied_at_failover`]): its partitions
/// without copies by shard, and its target topics' IDs.
fn recorded_before(target: &ClientConfig, name: &str, shards: u32) -> RecordedBefore {
    match uncopied_at_failover::read_all(target, name, shards) {
        Ok((recorded, ids)) => (
            recorded
                .into_iter()
                .map(|p| (names::shard_of(&p.source_topic, p.partition, shards), p))
                .collect(),
            ids,
        ),
        Err(e) => {
            warn!("could not read what the failover in force recorded ({e}); recording what this one finds");
            Default::default()
        }
    }
}

type RecordedBefore = (Vec<(u32, MirroredPosition)>, BTreeMap<String, String>);

/// The IDs of the target topics mirror `name` copies into (those of its map's copies, and of
/// `uncopied`), each under one shard (its topic's first partition's: a topic's partitions span
/// the shards, and an ID in each shard's record multiplied them past a record's size), as the
/// target gives them now, but those the failover in force recorded (`earlier`): the IDs at the
/// first failover of a DR period, which failback holds today's against. Not read, they are
/// said and left out (the partitions without copies are recorded all the same).
fn target_ids_by_shard(
    translator: &Translator,
    (target, timeout): (&ClientConfig, Duration),
    shards: u32,
    uncopied: &BTreeMap<u32, Vec<MirroredPosition>>,
    earlier: BTreeMap<String, String>,
) -> BTreeMap<u32, BTreeMap<String, String>> {
    let described = translator.target_partitions().and_then(|copies| {
        let topics: BTreeSet<&str> = copies
            .iter()
            .map(|c| c.topic.as_str())
            .chain(uncopied.values().flatten().map(|u| u.target_topic.as_str()))
            .collect();
        topic_ids_on(target, Side::Target, &topics, timeout)
    });
    let mut ids: BTreeMap<String, String> = described.map(|ids| ids.into_iter().collect()).unwrap_or_else(|e| {
        warn!(error = %e, "could not read the target topics' IDs: a failback will not know a DR topic deleted and made again in the DR period (it would bring it home from the copies' end, not its start)");
        BTreeMap::new()
    });
    ids.extend(earlier);
    let mut by_shard: BTreeMap<u32, BTreeMap<String, String>> = BTreeMap::new();
    for (topic, id) in ids {
        by_shard.entry(names::shard_of(&topic, 0, shards)).or_default().insert(topic, id);
    }
    by_shard
}

/// Records, after the fencing (nothing moves the mirror's positions any more), the partitions
/// it has positions in but no copies of, for a failback after Kafka expired those positions
/// (see [`uncopied_at_failover`]), with those the failover in force before recorded. A failure
/// is said, not fatal: the groups still move, and failback reads the positions themselves while
/// they last.
fn record_uncopied(
    translator: &Translator,
    (target, timeout): (&ClientConfig, Duration),
    name: &str,
    shards: u32,
    (earlier, earlier_ids): RecordedBefore,
) {
    let recorded = uncopied_positions(translator, target, name)
        .and_then(|found| {
            uncopied_at_failover::merged(found, earlier, |p| Ok(translator.target_of(&p.source())?.is_none()))
        })
        .and_then(|uncopied| {
            let ids = target_ids_by_shard(translator, (target, timeout), shards, &uncopied, earlier_ids);
            uncopied_at_failover::record(target, name, shards, uncopied, ids)
        });
    if let Err(e) = recorded {
        warn!("could not record the partitions without copies ({e}); a failback after the target expired the mirror's positions (offsets.retention.minutes) would leave them out");
    }
}

fn no_group(name: &str, pattern: &str, topics: Option<&str>) -> Error {
    let within = topics
        .map(|t| format!(" with a position in --topics '{t}' (source topic names)"))
        .unwrap_or_default();
    Error::Usage(format!(
        "no checkpointed group of mirror {name} matches --groups '{pattern}'{within} (nor, where --source answers, any group there): run the mirror with --groups REGEX, or check the patterns"
    ))
}

/// Every group's last checkpoint on the target.
fn checkpointed_groups(target: &ClientConfig, name: &str) -> Result<BTreeMap<String, Checkpoint>> {
    let topic = names::checkpoint_topic(name);
    let reader = names::checkpoint_reader_group(name);
    latest_checkpoints(target, &topic, &reader)
}

/// The groups of `checkpoints` that `takes`, and with `--topics` only those with a position in a
/// topic it picks (source names): a group with none there has nothing to move, and stopped the
/// failover after its fencing.
fn chosen(
    checkpoints: &BTreeMap<String, Checkpoint>,
    takes: impl Fn(&str) -> bool,
    topics: Option<&TopicSelector>,
) -> Vec<String> {
    checkpoints
        .iter()
        .filter(|(g, _)| takes(g))
        .filter(|(_, checkpoint)| {
            topics.is_none_or(|selector| {
                checkpoint.offsets.iter().any(|o| selector.matches(&o.partition.topic))
            })
        })
        .map(|(g, _)| g.clone())
        .collect()
}

/// Takes over every shard's transactional id: a running mirror of this name is fenced (it stops
/// with exit code 3) and whatever transaction it had open is aborted, so nothing more lands on
/// the target behind the translated positions.
fn fence(target: &ClientConfig, name: &str, shards: u32) -> Result<()> {
    // The claims go first: a mirror fenced while its own claim is the last one takes the shard
    // back (it takes the fencing for the target's abort of a transaction left open too long).
    let claims = OwnershipLog::new(target, name)?;
    for shard in 0..shards {
        claims.record(shard, FAILED_OVER);
    }
    claims.confirm(Duration::from_secs(30))?;
    let fencing = Instant::now();
    // The fencing sends no record: the record timeouts given for the mirror's (a config file
    // shared with it) are left out, as librdkafka refuses a transactional producer whose record
    // timeout exceeds its transaction timeout (the mirror sets its own; this one has the default).
    let mut config = target.clone();
    for unused in ["message.timeout.ms", "delivery.timeout.ms"] {
        config.remove(unused);
    }
    // Side by side: one after the other, each producer's making, coordinator lookup,
    // InitProducerId and close took 0.2-0.3 s, two ids a shard.
    let ids: Vec<String> = (0..shards).flat_map(|shard| names::transactional_ids(name, shard)).collect();
    let warned = AtomicBool::new(false);
    for some in ids.chunks(FENCING_AT_ONCE) {
        let fenced: Vec<Result<()>> = std::thread::scope(|scope| {
            let handles: Vec<_> = some
                .iter()
                .map(|id| scope.spawn(|| fence_within_the_brokers_bound(&config, id, &warned)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| Err(Error::Internal("a fencing thread panicked".into())))
                })
                .collect()
        });
        let failed: Vec<(&String, Error)> =
            some.iter().zip(fenced).filter_map(|(id, fenced)| fenced.err().map(|e| (id, e))).collect();
        if failed.len() > 1 {
            for (id, e) in &failed {
                warn!(%id, error = %e, "not fenced");
            }
        }
        if let Some((_, e)) = failed.into_iter().next() {
            return Err(e);
        }
    }
    info!(shards, ms = fencing.elapsed().as_millis(), "fenced the mirror's transactional ids");
    Ok(())
}

/// Transactional ids fenced at once (a producer and its connections each).
const FENCING_AT_ONCE: usize = 16;

/// Fences `id`. The fencing opens no transaction: a transaction timeout given above what the
/// brokers allow refused it for nothing, so once they refuse it every id goes at librdkafka's
/// default (said once).
fn fence_within_the_brokers_bound(config: &ClientConfig, id: &str, warned: &AtomicBool) -> Result<()> {
    if !warned.load(Ordering::Relaxed) {
        let fenced = fence_id(config.clone(), id);
        if !fenced.as_ref().is_err_and(timeout_refused) {
            return fenced;
        }
        if !warned.swap(true, Ordering::Relaxed) {
            warn!("fencing without the transaction timeout given: the target's brokers refuse it, as they would the mirror's own producers; every id goes at librdkafka's default");
        }
    }
    let mut config = config.clone();
    config.remove("transaction.timeout.ms");
    fence_id(config, id)
}

/// The target's brokers refused the transaction timeout asked (above their
/// `transaction.max.timeout.ms`).
fn timeout_refused(e: &Error) -> bool {
    matches!(e, Error::Kafka { cause, .. } if code_of(cause) == Some(RDKafkaErrorCode::InvalidTransactionTimeout))
}

/// Takes over transactional id `id` with a producer made from `config`.
fn fence_id(mut config: ClientConfig, id: &str) -> Result<()> {
    let producer: BaseProducer = config
        .set("transactional.id", id)
        .set("enable.idempotence", "true")
        .create_for_role()
        .map_err(Error::kafka(Side::Target, format!("creating a producer for {id}")))?;
    producer
        .init_transactions(Duration::from_secs(60))
        .map_err(Error::kafka(Side::Target, format!("fencing the mirror's transactional id {id}")))
}

/// A few lines to paste into an incident record.
fn summary(record: &Record, target: &str) -> String {
    let mut out = format!("failover of mirror {} to {target}\n", record.name);
    out += &match (record.executed, record.fenced_shards) {
        (true, shards) => {
            format!("  mirror:  fenced ({shards} shards); nothing more is written to the target\n")
        }
        (false, _) => "  mirror:  not touched (dry run)\n".into(),
    };
    out += &match (record.source.as_str(), record.unmirrored_records) {
        ("reachable", Some(0)) => "  source:  reachable; every record was mirrored\n".to_string(),
        ("reachable", Some(n)) => {
            format!("  source:  reachable; {n} record(s) on the source were not mirrored\n")
        }
        _ => "  source:  not asked or unreachable; positions from the last checkpoints\n".to_string(),
    };
    let lag: i64 = record.positions.iter().filter_map(|r| r.lag).sum();
    out += &format!(
        "  groups:  {} ({}); {} record(s) left for them to read on the target\n",
        record.groups.len(),
        record.groups.join(", "),
        lag
    );
    out += if record.executed {
        "  result:  positions committed on the target; start the consumers there\n"
    } else {
        "  result:  nothing changed; run again with --execute to fence the mirror and commit the positions\n"
    };
    out
}
