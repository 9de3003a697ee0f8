//! The command line. Flag names follow MirrorMaker where one exists, so its users feel at home.
//!
//! Longer than the other modules on purpose: every flag of every subcommand, with the help text
//! that `--help` prints, in one file, so that one name means one thing across the subcommands.
use std::path::PathBuf;

use clap::builder::PossibleValue;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::ProgressMode;
use crate::config::{AclPolicy, ClusterFile, MirrorFile, MissingSource, StartFrom};

#[derive(Debug, Parser)]
#[command(
    name = "kmirror",
    version,
    about = "Mirror Kafka topics between clusters exactly once, with exact consumer-group offset translation",
    long_about = "kmirror copies topics from a source Kafka cluster to a target cluster exactly once: every \
                  source record lands once on the target, in the same partition and order, with key, value, \
                  headers and timestamp intact, even across crashes and restarts."
)]
pub struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// Log line format on stderr; RUST_LOG filters what is logged (e.g. RUST_LOG=kmirror=debug).
    #[arg(long, value_enum, global = true, default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Mirror topics from the source to the target cluster, exactly once.
    Mirror(Box<MirrorArgs>),
    /// Translate consumer-group positions between the clusters, exactly; with --execute,
    /// commit them (failover, client cutover, and with --reverse, failback).
    TranslateOffsets(Box<TranslateArgs>),
    /// Prove a copy: compare every mirrored source record with its copy on the target, through
    /// the offset map; exit 0 only if everything matches.
    Verify(Box<VerifyArgs>),
    /// Fail the mirror's checkpointed consumer groups over to the target: fence the mirror, take
    /// a last checkpoint where the source answers, commit every group's exact position on the
    /// target, and print a record of it. A dry run unless --execute.
    Failover(Box<FailoverArgs>),
    /// After a failover, the way back: prepare the opposite mirror (DR -> source, named
    /// NAME-back) so that it copies only what was written on DR, print the command that runs
    /// it, and (with --groups) move consumer groups back to the source at their exact
    /// positions once it has copied what they read. A dry run unless --execute.
    Failback(Box<FailbackArgs>),
    /// Show where a mirror stands: per partition the committed source position, the source end,
    /// the lag in records and seconds, the last commit; and the checkpointed groups.
    Status(Box<StatusArgs>),
    /// Run a self-contained demo: two local clusters, a mirror killed mid-stream and restarted,
    /// then an audit of the target.
    Demo(DemoArgs),
}

// The engine's enums know nothing of the command line; their flag values are named here.
impl ValueEnum for StartFrom {
    fn value_variants<'a>() -> &'a [Self] {
        &[StartFrom::Earliest, StartFrom::Latest]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            StartFrom::Earliest => PossibleValue::new("earliest").help("the partition's log start"),
            StartFrom::Latest => PossibleValue::new("latest")
                .help("the partition's last stable offset when the mirror first sees it"),
        })
    }
}

impl ValueEnum for MissingSource {
    fn value_variants<'a>() -> &'a [Self] {
        &[MissingSource::Fail, MissingSource::Skip]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            MissingSource::Fail => PossibleValue::new("fail")
                .help("refuse, naming the partition and the lost range (exit code 4)"),
            MissingSource::Skip => PossibleValue::new("skip")
                .help("go on at the partition's start; log and count the skipped range"),
        })
    }
}

impl ValueEnum for AclPolicy {
    fn value_variants<'a>() -> &'a [Self] {
        &[AclPolicy::ReadOnly, AclPolicy::All]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            AclPolicy::ReadOnly => PossibleValue::new("read-only").help(
                "DENY rules, and ALLOW rules for reading only (ALL becomes READ, DESCRIBE, DESCRIBE_CONFIGS)",
            ),
            AclPolicy::All => PossibleValue::new("all").help("every rule, as it is"),
        })
    }
}

impl ValueEnum for ProgressMode {
    fn value_variants<'a>() -> &'a [Self] {
        &[ProgressMode::Total, ProgressMode::Partitions, ProgressMode::Off]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            ProgressMode::Total => PossibleValue::new("total").help("one overall bar (or line)"),
            ProgressMode::Partitions => {
                PossibleValue::new("partitions").help("the overall bar and one per topic")
            }
            ProgressMode::Off => PossibleValue::new("off").help("nothing but the summary"),
        })
    }
}

/// Client settings of each side, as MirrorMaker takes them.
#[derive(Debug, Default, Clone, Args)]
pub(crate) struct ClientFlags {
    /// Source client settings, a Java .properties file.
    #[arg(long, visible_alias = "consumer.config", value_name = "FILE")]
    pub(crate) source_config: Option<PathBuf>,
    /// Target client settings, a Java .properties file.
    #[arg(long, visible_alias = "producer.config", value_name = "FILE")]
    pub(crate) target_config: Option<PathBuf>,
    /// One client setting: source.KEY=VALUE or target.KEY=VALUE (repeatable; wins over files).
    #[arg(long = "set", value_name = "SIDE.KEY=VALUE")]
    pub(crate) set: Vec<String>,
}

impl ClientFlags {
    /// The client config of `side` with `--source`/`--target` as `bootstrap`, and its servers.
    pub(crate) fn client_config(
        &self,
        side: crate::error::Side,
        bootstrap: Option<&String>,
    ) -> crate::Result<(rdkafka::ClientConfig, String)> {
        let properties = match side {
            crate::error::Side::Source => self.source_config.as_ref(),
            crate::error::Side::Target => self.target_config.as_ref(),
        };
        crate::config::client_config(side, bootstrap, properties, &self.set)
    }
}

#[derive(Debug, Default, Args)]
pub(crate) struct MirrorArgs {
    /// Source cluster bootstrap servers (host:port,...). May also come from the source config.
    #[arg(long, value_name = "BOOTSTRAP")]
    pub(crate) source: Option<String>,
    /// Target cluster bootstrap servers (host:port,...). May also come from the target config.
    #[arg(long, value_name = "BOOTSTRAP")]
    pub(crate) target: Option<String>,
    /// The mirror's name: it names the shadow groups (kmirror.NAME.shard-K) and the transactional ids
    /// (kmirror.NAME.SHARD) on the target. Keep it stable across restarts.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Regex of source topics to mirror (whole-name match).
    #[arg(long, visible_alias = "whitelist", value_name = "REGEX")]
    pub(crate) topics: Option<String>,
    /// Regex of source topics to leave out (whole-name match). Internal (__*) and kmirror's own
    /// topics are always left out unless an alternative of --topics spells their prefix
    /// ('.*|__audit' and '(?:__audit|.*)' take __audit only; '__.*' takes every __ topic).
    #[arg(long, value_name = "REGEX")]
    pub(crate) exclude: Option<String>,
    /// Target topic names: identity, prefix:ALIAS (ALIAS.topic, as MirrorMaker 2) or
    /// 'regex:FROM=>TO' (whole-name regex, $1 groups in TO; unmatched topics keep their name)
    /// [default: identity]. Positions are kept per target topic: a changed policy copies into
    /// the new names from the start.
    #[arg(long, value_name = "POLICY")]
    pub(crate) rename: Option<String>,
    /// Change records on the way, in order (repeatable): filter:drop|keep:key|value|header.NAME=REGEX,
    /// headers:add:NAME=VALUE, headers:drop:NAME, headers:rename:OLD=>NEW, provenance:ALIAS
    /// (a kmirror.provenance header ALIAS/topic/partition/offset), script:FILE.rhai (a Rhai
    /// script with fn transform(record) returning the record or () to drop it). Dropped records
    /// leave a gap that translation steps over exactly.
    #[arg(long = "transform", value_name = "SPEC")]
    pub(crate) transform: Vec<String>,
    /// When a transform fails on a record: stop (abort the transaction, exit non-zero, naming
    /// the record) or skip (leave the record out, log and count it) [default: stop].
    #[arg(long, value_name = "stop|skip")]
    pub(crate) on_transform_error: Option<String>,
    /// Active-active: this mirror's source cluster alias. With --target-alias, records are
    /// marked with the cluster they were first written to and each they were copied from, and
    /// never mirrored to a cluster they are marked with.
    #[arg(long, value_name = "ALIAS")]
    pub(crate) source_alias: Option<String>,
    /// Active-active: this mirror's target cluster alias (see --source-alias). With --rename
    /// prefix:, source topics named ALIAS.… (or ….ALIAS.…), copies of the target's own, are
    /// left out.
    #[arg(long, value_name = "ALIAS")]
    pub(crate) target_alias: Option<String>,
    /// Worker threads sharing the shards [default: one per shard]. A shard waits out its
    /// commit's round trips on its thread; fewer threads make shards wait for each other. More
    /// threads than --shards would have nothing to run: raise --shards for more parallelism.
    #[arg(long, visible_alias = "num.streams", value_name = "N")]
    pub(crate) num_streams: Option<usize>,
    /// Shards the mirror's partitions are split into, each with its own transactional id.
    /// Fixed for the life of a mirror name [default: 4].
    #[arg(long, value_name = "S")]
    pub(crate) shards: Option<u32>,
    /// Directory for kmirror's local state (locked while in use) [default: ~/.local/state/kmirror/NAME].
    #[arg(long, value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) clients: ClientFlags,
    /// Most records in one target transaction [default: 10000; with neither this nor
    /// --transaction-max-ms given, grown with the time while a shard is behind, see there, and
    /// a transaction at this bound with no more than another one's worth left to read takes the
    /// rest too].
    #[arg(long, value_name = "N")]
    pub(crate) transaction_max_records: Option<usize>,
    /// Longest a target transaction stays open, in milliseconds [default: 250; with neither
    /// this nor --transaction-max-records given, while a shard is behind, at least 1 s and 4
    /// times as long as its commits' round trips take, up to 10 s: fewer, larger commits copy a
    /// backlog sooner, and over a long link they would otherwise take most of the time; caught
    /// up, it stays at 250 ms for latency]. The target's transaction timeout is this plus 30 s unless `target.transaction.timeout.ms` is set: a
    /// crashed mirror's open transaction holds read_committed readers of the target that long.
    #[arg(long, value_name = "MS")]
    pub(crate) transaction_max_ms: Option<u64>,
    /// Most key + value + header bytes in one target transaction; bounds what a shard holds in
    /// flight [default: 16777216 (16 MiB)].
    #[arg(long, value_name = "BYTES")]
    pub(crate) transaction_max_bytes: Option<u64>,
    /// Share the shards with every other process of this --name: each joins one consumer group
    /// on the target and runs the shards the group coordinator hands it (for several hosts).
    #[arg(long, conflicts_with = "until_caught_up")]
    pub(crate) coordinate: bool,
    /// With --coordinate: how long a silent process keeps its shards before the group hands
    /// them to the others, in seconds [default: 10].
    #[arg(long, value_name = "SECONDS")]
    pub(crate) session_timeout: Option<u64>,
    /// Start although `kmirror failover --execute` took this mirror's shards, which it refuses
    /// otherwise (exit 3): once a drill is over and its clients are back on the source. Needed
    /// once: the run records that the mirror resumed. Flag only, never in --config.
    #[arg(long)]
    pub(crate) after_failover: bool,
    /// Note every partition's end at start, mirror up to it, commit, and exit 0 (batch migration).
    #[arg(long)]
    pub(crate) until_caught_up: bool,
    /// Commit each transaction before reading on, with one producer per shard. By default a
    /// shard's commit (positions, map, EndTxn: round trips to the target) runs while its next
    /// transaction fills on a second producer (transactional id kmirror.NAME.SHARD.b); the
    /// copy is exactly-once either way.
    #[arg(long)]
    pub(crate) serial_commits: bool,
    /// Where partitions without a committed position start [default: earliest].
    #[arg(long, value_enum)]
    pub(crate) start_from: Option<StartFrom>,
    /// When the source deleted records (retention, DeleteRecords) before the mirror copied them,
    /// so its position is below the partition's start, or deleted a topic a batch
    /// (--until-caught-up) was copying [default: fail]. A recreated source topic, a position
    /// past a partition's end or a changed --rename is always refused.
    #[arg(long, value_enum, value_name = "POLICY")]
    pub(crate) on_missing_source: Option<MissingSource>,
    /// Regex of topic configs the copies do not take from the source (whole-name match), e.g.
    /// 'retention\.ms|retention\.bytes' to keep the copies' retention as set on the target: an
    /// excluded config is neither set when a copy is made nor set back when the target's
    /// differs. Always left out: the record timestamp type (copies keep create times) and its
    /// bounds, min.insync.replicas, unclean.leader.election.enable, the replication throttles,
    /// configs a Kafka 4 target refuses, remote.storage.enable and confluent.* (as MirrorMaker
    /// 2's config.properties.exclude). Naming message.timestamp.type keeps a topic made before
    /// the mirror that stamps append times as it is.
    #[arg(long, value_name = "REGEX")]
    pub(crate) exclude_configs: Option<String>,
    /// Replication factor of topics kmirror creates on the target [default: for copies, the
    /// target's default.replication.factor (a warning says where that is fewer replicas than the
    /// source topic has); for kmirror's own topics, 3, or the target's broker count if fewer].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub(crate) replication_factor: Option<i32>,
    /// How often new topics and partitions are looked for, in seconds [default: 10].
    #[arg(long, value_name = "SECONDS")]
    pub(crate) refresh_interval: Option<u64>,
    /// How long to wait for each cluster to answer at start, in seconds [default: 10].
    #[arg(long, value_name = "SECONDS")]
    pub(crate) connect_timeout: Option<u64>,
    /// Source consumer groups to checkpoint on the target (whole-name regex) [default: none];
    /// kmirror's own groups (kmirror.…) only where the pattern spells `kmirror\.`.
    #[arg(long, value_name = "REGEX")]
    pub(crate) groups: Option<String>,
    /// Seconds between checkpoints of the --groups [default: 10].
    #[arg(long, value_name = "SECONDS")]
    pub(crate) checkpoint_interval: Option<u64>,
    /// Also commit the translated positions for the same groups on the target, while those
    /// groups have no active members there.
    #[arg(long)]
    pub(crate) sync_group_offsets: bool,
    /// Copy the source's ACLs of each mirrored topic (under its target name) and of each
    /// --groups group to the target, at start and at every refresh; rules are added, never
    /// removed. A prefixed or wildcard DENY on topics is copied as a DENY on each copy it
    /// covers; prefixed and wildcard ALLOWs (and group DENYs) are left out (they would grant on
    /// target names that are not copies), and said, as is a DENY that would stop the mirror
    /// itself. Needs an authorizer on both clusters, DESCRIBE on the source's CLUSTER and ALTER
    /// on the target's [default policy: read-only].
    #[arg(long, value_enum, value_name = "POLICY", num_args = 0..=1, default_missing_value = "read-only")]
    pub(crate) sync_acls: Option<AclPolicy>,
    /// Serve Prometheus metrics on http://HOST:PORT/metrics and a health check on /healthz
    /// (200 while every shard commits or is idle at its end, 503 when one is stuck). Past 64
    /// connections answered at once, a 503 "busy" with Retry-After: 1.
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) metrics_addr: Option<String>,
    /// Progress of a batch on a terminal: bars for the total or also per topic; elsewhere a
    /// log line every few seconds [default: total].
    #[arg(long, value_enum, value_name = "WHAT")]
    pub(crate) progress: Option<ProgressMode>,
    /// A TOML file with the same settings; flags win over it.
    #[arg(long, value_name = "FILE", conflicts_with = "mm2_config")]
    pub(crate) config: Option<PathBuf>,
    /// A MirrorMaker 2 dedicated-mode properties file: its clusters, client settings, topics,
    /// groups, replication policy (as --rename) and group offset sync become this mirror's
    /// settings (flags win); settings without an equivalent are refused by name. See
    /// --print-config for the result.
    #[arg(long, value_name = "FILE")]
    pub(crate) mm2_config: Option<PathBuf>,
    /// With --mm2-config: the flow to run, SOURCE->TARGET by cluster alias [default: the one
    /// flow the file enables]. The mirror's --name defaults to SOURCE-to-TARGET.
    #[arg(long, value_name = "SOURCE->TARGET", requires = "mm2_config")]
    pub(crate) flow: Option<String>,
    /// Print the effective configuration (flags, files and ${env:..}/${file:..} references
    /// combined; passwords and other secrets redacted) as TOML, and exit without connecting.
    #[arg(long)]
    pub(crate) print_config: bool,
}

impl MirrorArgs {
    /// Where settings beside the flags come from.
    pub(crate) fn settings_file(&self) -> crate::config::SettingsFile<'_> {
        use crate::config::SettingsFile;
        match (&self.config, &self.mm2_config) {
            (Some(path), _) => SettingsFile::Toml(path),
            (None, Some(path)) => SettingsFile::Mm2 { path, flow: self.flow.as_deref() },
            (None, None) => SettingsFile::None,
        }
    }

    /// The flags as a settings layer over the TOML file (flags win where given).
    pub(crate) fn layer(&self) -> MirrorFile {
        let given = |set: bool| set.then_some(true);
        MirrorFile {
            name: self.name.clone(),
            topics: self.topics.clone(),
            exclude: self.exclude.clone(),
            rename: self.rename.clone(),
            transforms: self.transform.clone(),
            source_alias: self.source_alias.clone(),
            on_transform_error: self.on_transform_error.clone(),
            target_alias: self.target_alias.clone(),
            num_streams: self.num_streams,
            shards: self.shards,
            state_dir: self.state_dir.clone(),
            transaction_max_records: self.transaction_max_records,
            transaction_max_ms: self.transaction_max_ms,
            transaction_max_bytes: self.transaction_max_bytes,
            until_caught_up: given(self.until_caught_up),
            serial_commits: given(self.serial_commits),
            coordinate: given(self.coordinate),
            after_failover: self.after_failover,
            session_timeout: self.session_timeout,
            start_from: self.start_from,
            on_missing_source: self.on_missing_source,
            replication_factor: self.replication_factor,
            exclude_configs: self.exclude_configs.clone(),
            refresh_interval: self.refresh_interval,
            connect_timeout: self.connect_timeout,
            groups: self.groups.clone(),
            checkpoint_interval: self.checkpoint_interval,
            sync_group_offsets: given(self.sync_group_offsets),
            sync_acls: self.sync_acls,
            metrics_addr: self.metrics_addr.clone(),
            progress: self.progress,
            source: ClusterFile {
                bootstrap: self.source.clone(),
                config: self.clients.source_config.clone(),
                ..ClusterFile::default()
            },
            target: ClusterFile {
                bootstrap: self.target.clone(),
                config: self.clients.target_config.clone(),
                ..ClusterFile::default()
            },
        }
    }
}

/// The flags that name one mirror on its target cluster, shared by every command that inspects
/// or moves a mirror (translate-offsets, failover, verify, status).
#[derive(Debug, Clone, Args)]
pub(crate) struct MirrorRef {
    /// Target cluster bootstrap servers (where the mirror writes). May also come from the
    /// target config.
    #[arg(long, value_name = "BOOTSTRAP")]
    pub(crate) target: Option<String>,
    /// The mirror's --name.
    #[arg(long)]
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) clients: ClientFlags,
    /// How long to wait for each cluster to answer, in seconds (1 to 86400).
    #[arg(long, value_name = "SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(crate) connect_timeout: u64,
}

#[derive(Debug, Args)]
pub(crate) struct TranslateArgs {
    /// A consumer group to translate (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    pub(crate) group: Vec<String>,
    /// Consumer groups to translate (whole-name regex; kmirror's own groups, kmirror.…, only
    /// where it spells `kmirror\.`).
    #[arg(long, value_name = "REGEX")]
    pub(crate) groups: Option<String>,
    /// Source cluster bootstrap servers. With it, positions come from the live source groups;
    /// without it (or, on a dry run, if it does not answer), from the last checkpoints on the
    /// target. With --execute a source that does not answer is an error.
    #[arg(long, value_name = "BOOTSTRAP")]
    pub(crate) source: Option<String>,
    /// Only these topics (whole-name regex; source names, or target names with --reverse).
    #[arg(long, value_name = "REGEX")]
    pub(crate) topics: Option<String>,
    /// Translate target positions back to the source (failback).
    #[arg(long)]
    pub(crate) reverse: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: crate::cmd::report::Format,
    /// Commit the translated positions for the groups (refused while a group has members).
    #[arg(long)]
    pub(crate) execute: bool,
    /// Directory for the local copy of the offset map [default: ~/.local/state/kmirror/NAME.translate].
    #[arg(long, value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) mirror: MirrorRef,
    /// Set by `failover`, never a flag: the mirror is fenced already (the groups it moves were
    /// checked for members before), so with --execute each group moves on its own (one with
    /// members by now is left and named, see `move_groups`) instead of all being refused
    /// half-way.
    #[arg(skip)]
    pub(crate) fenced: bool,
}

#[derive(Debug, Args)]
pub(crate) struct FailoverArgs {
    /// Source cluster bootstrap servers, if it still answers: a last checkpoint is taken there
    /// and the summary says how many records were not mirrored. Without it (or if it does not
    /// answer) the groups move from their last checkpoints on the target.
    #[arg(long, value_name = "BOOTSTRAP")]
    pub(crate) source: Option<String>,
    /// Which checkpointed groups move (whole-name regex; kmirror's own groups, kmirror.…, only
    /// where it spells `kmirror\.`) [default: all of them; with --source and none
    /// checkpointed, the groups on the source].
    #[arg(long, value_name = "REGEX")]
    pub(crate) groups: Option<String>,
    /// Only these source topics (whole-name regex).
    #[arg(long, value_name = "REGEX")]
    pub(crate) topics: Option<String>,
    /// Do it: refuse groups with members on the target (and, with --source, on the source),
    /// fence the mirror (a running instance stops with exit code 3), take the last checkpoint,
    /// commit the positions.
    #[arg(long)]
    pub(crate) execute: bool,
    /// Output format: the positions and a summary to paste into an incident record.
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: crate::cmd::report::Format,
    /// Directory for the local copy of the offset map [default: ~/.local/state/kmirror/NAME.failover].
    #[arg(long, value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) mirror: MirrorRef,
}

#[derive(Debug, Args)]
pub(crate) struct FailbackArgs {
    /// The original source cluster: where the groups go back and the opposite mirror writes.
    #[arg(long, value_name = "BOOTSTRAP")]
    pub(crate) source: Option<String>,
    /// Consumer groups on DR to move back (whole-name regex; kmirror's own groups, kmirror.…,
    /// only where it spells `kmirror\.`). Without it only the opposite mirror is prepared; run
    /// it until caught up, then fail back again with --groups.
    #[arg(long, value_name = "REGEX")]
    pub(crate) groups: Option<String>,
    /// Do it: commit the opposite mirror's start positions (where it has none) and, with
    /// --groups, the groups' positions on the source (refused while a group has members there,
    /// or while a position is not copied back yet).
    #[arg(long)]
    pub(crate) execute: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: crate::cmd::report::Format,
    /// Directory for the local copies of both offset maps [default: ~/.local/state/kmirror/NAME.failback].
    #[arg(long, value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    /// --target is the DR cluster (where mirror NAME wrote).
    #[command(flatten)]
    pub(crate) mirror: MirrorRef,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// Source cluster bootstrap servers.
    #[arg(long, value_name = "BOOTSTRAP")]
    pub(crate) source: Option<String>,
    /// Only these source topics (whole-name regex).
    #[arg(long, value_name = "REGEX")]
    pub(crate) topics: Option<String>,
    /// Compare only about N evenly spread records per partition (every Nth part of its offsets;
    /// extra records are always looked for).
    #[arg(long, value_name = "N", conflicts_with = "full", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub(crate) sample: Option<usize>,
    /// Compare every mirrored record (the default).
    #[arg(long)]
    pub(crate) full: bool,
    /// Start each partition at the first record the mirror copied, for a mirror started with
    /// --start-from latest. By default every record from the start of the partition must have
    /// a copy.
    #[arg(long)]
    pub(crate) from_mirror_start: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: crate::cmd::report::Format,
    /// Directory for the local copy of the offset map [default: ~/.local/state/kmirror/NAME.verify].
    #[arg(long, value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) mirror: MirrorRef,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Source cluster bootstrap servers, for the source ends and the lag. Without it (or if it
    /// does not answer) the lag is reported as unknown.
    #[arg(long, value_name = "BOOTSTRAP")]
    pub(crate) source: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: StatusFormat,
    #[command(flatten)]
    pub(crate) mirror: MirrorRef,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum StatusFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Records produced to the demo topic.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) records: usize,
    /// Partitions of the demo topic.
    #[arg(long, default_value_t = 4)]
    pub(crate) partitions: i32,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// MirrorMaker's flag names are accepted, and `--help` says so: a newcomer from MirrorMaker
    /// finds their flag there.
    #[test]
    fn mirrormakers_flag_names_are_accepted_and_shown_in_help() {
        let mut command = Cli::command();
        let help = command
            .find_subcommand_mut("mirror")
            .expect("the mirror subcommand")
            .render_long_help()
            .to_string();
        for alias in ["--whitelist", "--consumer.config", "--producer.config", "--num.streams"] {
            assert!(help.contains(alias), "{alias} in mirror --help:\n{help}");
        }
        let parsed =
            Cli::try_parse_from(["kmirror", "mirror", "--whitelist", "orders.*", "--num.streams", "2"])
                .expect("MirrorMaker's names parse");
        let Command::Mirror(args) = parsed.command else { panic!("mirror") };
        assert_eq!((args.topics.as_deref(), args.num_streams), (Some("orders.*"), Some(2)));
    }

    #[test]
    fn a_sample_of_zero_records_is_refused() {
        let parsed =
            Cli::try_parse_from(["kmirror", "verify", "--target", "t:9092", "--name", "dr", "--sample", "0"]);
        assert!(parsed.is_err(), "it ran a full check instead");
        assert!(Cli::try_parse_from([
            "kmirror", "verify", "--target", "t:9092", "--name", "dr", "--sample", "5"
        ])
        .is_ok());
    }
}
