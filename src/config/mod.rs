//! Turns flags, the TOML file (or a MirrorMaker 2 file) and properties files into one checked
//! [`MirrorSettings`]. A third of the file is its tests: how the layers combine is the contract.
pub(crate) mod alternatives;
mod client;
mod file;
pub(crate) mod groups;
pub(crate) mod mm2;
pub(crate) mod names;
mod origin;
mod properties;
pub(crate) mod rename;
pub(crate) mod secrets;
mod sides;
pub(crate) mod topics;

use std::path::PathBuf;
use std::time::Duration;

pub(crate) use client::ClientSettings;
pub(crate) use file::{
    read_mirror_file, AclPolicy, ClusterFile, MirrorFile, MissingSource, ProgressMode, StartFrom,
};
use origin::{blame_file, FileKind};
pub(crate) use properties::read_properties;
pub(crate) use sides::client_config;
use sides::{bootstrap, side_settings};

use crate::config::groups::GroupSelector;
use crate::config::topics::TopicSelector;
use crate::error::{Error, Result, Side};

pub(crate) const DEFAULT_SHARDS: u32 = 4;
/// The most shards a mirror may have (its shards topic has a partition each).
const MAX_SHARDS: u32 = 1024;
pub(crate) const DEFAULT_TRANSACTION_MAX_RECORDS: usize = 10_000;
pub(crate) const DEFAULT_TRANSACTION_MAX_MS: u64 = 250;
/// What a shard's open transaction holds undelivered in the producer bounds the process's memory
/// (times the shards): a 300 000 x 1 KiB backlog at 4 shards peaked at 351-413 MB RSS with
/// 64 MiB, 193-199 MB with 16 MiB, copying 0.79 vs 0.73 of the pipe's steady rate on average
/// over 7 and 3 alternating samples (within the samples' spread, 0.64-0.98).
pub(crate) const DEFAULT_TRANSACTION_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Where settings beside the flags come from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SettingsFile<'a> {
    None,
    /// kmirror's TOML file (`--config`).
    Toml(&'a std::path::Path),
    /// A MirrorMaker 2 properties file and the flow of it to run (`--mm2-config`, `--flow`).
    Mm2 {
        path: &'a std::path::Path,
        flow: Option<&'a str>,
    },
}

/// Everything a mirror run needs, validated.
#[derive(Debug, Clone)]
pub(crate) struct MirrorSettings {
    pub(crate) name: String,
    pub(crate) source_bootstrap: String,
    pub(crate) target_bootstrap: String,
    pub(crate) source: ClientSettings,
    pub(crate) target: ClientSettings,
    pub(crate) selector: TopicSelector,
    pub(crate) rename: crate::config::rename::RenamePolicy,
    /// Applied to every record on the way, in order (active-active first).
    pub(crate) transforms: crate::transform::Chain,
    /// The transform settings as given (for --print-config).
    pub(crate) transforms_given: TransformsGiven,
    pub(crate) num_streams: usize,
    pub(crate) shards: u32,
    pub(crate) state_dir: PathBuf,
    pub(crate) transaction_max_records: usize,
    pub(crate) transaction_max: Duration,
    /// Neither transaction size was given: where a commit takes long (a long link to the
    /// target), transactions grow so that committing stays a small part of the time.
    pub(crate) transaction_size_adapts: bool,
    pub(crate) transaction_max_bytes: u64,
    pub(crate) until_caught_up: bool,
    /// False with --serial-commits: a shard's commit runs while its next transaction fills.
    pub(crate) overlapping_commits: bool,
    /// Shards are shared with the other processes of this name through a group on the target.
    pub(crate) coordinate: bool,
    /// With --coordinate: the group session timeout.
    pub(crate) session_timeout: Duration,
    /// Start although `kmirror failover --execute` took the shards (see owners::failed_over).
    pub(crate) after_failover: bool,
    pub(crate) start_from: StartFrom,
    /// What to do where the source deleted records before they were copied.
    pub(crate) on_missing_source: MissingSource,
    pub(crate) replication_factor: Option<i32>,
    /// Topic configs the copies do not take from the source (whole-name regex), if any.
    pub(crate) exclude_configs: Option<regex::Regex>,
    pub(crate) refresh_interval: Duration,
    pub(crate) connect_timeout: Duration,
    /// Source groups to checkpoint (whole-name regex), if any.
    pub(crate) groups: Option<GroupSelector>,
    pub(crate) checkpoint_interval: Duration,
    pub(crate) sync_group_offsets: bool,
    /// Which ACLs are copied to the target, if any.
    pub(crate) sync_acls: Option<AclPolicy>,
    /// Where /metrics and /healthz are served, if anywhere.
    pub(crate) metrics_addr: Option<String>,
    pub(crate) progress: crate::config::ProgressMode,
}

impl MirrorSettings {
    /// Settings from `args` (the flags, as a layer of the file's shape), over the settings file
    /// if given; `sets` are the `--set SIDE.KEY=VALUE` flags, which win over both.
    pub(crate) fn resolve(args: &MirrorFile, sets: &[String], file: SettingsFile<'_>) -> Result<Self> {
        let (layer, from) = match file {
            SettingsFile::None => (MirrorFile::default(), None),
            SettingsFile::Toml(path) => (read_mirror_file(path)?, Some((path, FileKind::Toml))),
            SettingsFile::Mm2 { path, flow } => {
                (mm2::read_mm2_file(path, flow)?, Some((path, FileKind::Mm2)))
            }
        };
        Self::of_layers(args, sets, &layer).map_err(|e| match from {
            Some((path, kind)) => blame_file(e, args, &layer, path, kind),
            None => e,
        })
    }

    /// [`Self::resolve`] of the flags over the file's layer, read.
    fn of_layers(args: &MirrorFile, sets: &[String], file: &MirrorFile) -> Result<Self> {
        let name =
            args.name.clone().or(file.name.clone()).ok_or_else(|| {
                usage("--name is required (it names the shadow group and transactional ids)")
            })?;
        check_name(&name)?;

        let mut source = side_settings(
            Side::Source,
            file.source.config.as_ref(),
            args.source.config.as_ref(),
            &file.source.properties,
            sets,
        )?;
        let mut target = side_settings(
            Side::Target,
            file.target.config.as_ref(),
            args.target.config.as_ref(),
            &file.target.properties,
            sets,
        )?;
        let source_bootstrap = bootstrap(
            Side::Source,
            args.source.bootstrap.as_ref(),
            file.source.bootstrap.as_ref(),
            &mut source,
        )?;
        let target_bootstrap = bootstrap(
            Side::Target,
            args.target.bootstrap.as_ref(),
            file.target.bootstrap.as_ref(),
            &mut target,
        )?;

        // MirrorMaker consumer configs carry auto.offset.reset; it means our --start-from.
        let reset = source.take("auto.offset.reset");
        let start_from = match (args.start_from, file.start_from, reset.as_deref()) {
            (Some(s), _, _) | (None, Some(s), _) => s,
            (None, None, Some("latest" | "end" | "largest")) => StartFrom::Latest,
            _ => StartFrom::Earliest,
        };

        let topics = args
            .topics
            .clone()
            .or(file.topics.clone())
            .ok_or_else(|| usage("--topics REGEX is required (which source topics to mirror)"))?;
        let exclude = args.exclude.clone().or(file.exclude.clone());
        let selector = TopicSelector::new(&topics, exclude.as_deref())?;
        let rename = match args.rename.as_ref().or(file.rename.as_ref()) {
            Some(text) => crate::config::rename::RenamePolicy::parse(text)?,
            None => crate::config::rename::RenamePolicy::Identity,
        };

        let (transforms, transforms_given) = transforms(args, file)?;
        // Copies named by alias only: a regex rename names them otherwise.
        let selector = match (&rename, &transforms_given.target_alias) {
            (crate::config::rename::RenamePolicy::Prefix(_), Some(target_alias)) => {
                selector.leaving_out_copies_of(target_alias)
            }
            _ => selector,
        };
        let until_caught_up = args.until_caught_up.or(file.until_caught_up).unwrap_or(false);
        let coordinate = args.coordinate.or(file.coordinate).unwrap_or(false);
        if coordinate && until_caught_up {
            return Err(usage(
                "--coordinate and --until-caught-up do not go together: a batch runs as one process",
            ));
        }
        let session_timeout = args
            .session_timeout
            .or(file.session_timeout)
            .map(|seconds| within("--session-timeout", seconds, 1, 3600))
            .transpose()?;
        if session_timeout.is_some() && !coordinate {
            return Err(usage(
                "--session-timeout is the group's of --coordinate: add --coordinate (or coordinate = true in --config), or leave it out",
            ));
        }
        if session_timeout.is_some() && target.get("session.timeout.ms").is_some() {
            return Err(usage(
                "--session-timeout and target.session.timeout.ms both set the group's session timeout: give one",
            ));
        }
        let shards = args.shards.or(file.shards).unwrap_or(DEFAULT_SHARDS);
        if !(1..=MAX_SHARDS).contains(&shards) {
            return Err(usage(&format!(
                "--shards must be between 1 and {MAX_SHARDS}: a shard is a thread and a producer of its own"
            )));
        }
        // A thread per shard: a shard waits out its commit's round trips on its thread, and a
        // shard sharing that thread would wait with it (over a long link, most of the time).
        let asked_streams = args.num_streams.or(file.num_streams);
        if asked_streams.is_some_and(|n| n > shards as usize) {
            tracing::warn!(
                num_streams = asked_streams.unwrap_or_default(),
                shards,
                "--num-streams is more than --shards: one thread per shard runs, the others would have nothing to do (raise --shards for more parallelism)"
            );
        }
        let num_streams = asked_streams.unwrap_or(shards as usize).min(shards as usize);
        if num_streams == 0 {
            return Err(usage("--num-streams must be at least 1"));
        }
        let transaction_max_records = args
            .transaction_max_records
            .or(file.transaction_max_records)
            .unwrap_or(DEFAULT_TRANSACTION_MAX_RECORDS);
        if transaction_max_records == 0 {
            return Err(usage("--transaction-max-records must be at least 1"));
        }
        // Sizes the user chose are kept; the defaults grow where commits are slow.
        let transaction_size_adapts = args.transaction_max_records.or(file.transaction_max_records).is_none()
            && args.transaction_max_ms.or(file.transaction_max_ms).is_none();
        let transaction_max_ms = within(
            "--transaction-max-ms",
            args.transaction_max_ms.or(file.transaction_max_ms).unwrap_or(DEFAULT_TRANSACTION_MAX_MS),
            1,
            3_600_000,
        )?;
        let transaction_max_bytes = within(
            "--transaction-max-bytes",
            args.transaction_max_bytes
                .or(file.transaction_max_bytes)
                .unwrap_or(DEFAULT_TRANSACTION_MAX_BYTES),
            1,
            u64::MAX,
        )?;
        let refresh_interval = within(
            "--refresh-interval",
            args.refresh_interval.or(file.refresh_interval).unwrap_or(10),
            1,
            DAY,
        )?;
        let connect_timeout =
            within("--connect-timeout", args.connect_timeout.or(file.connect_timeout).unwrap_or(10), 1, DAY)?;
        let checkpoint_interval = within(
            "--checkpoint-interval",
            args.checkpoint_interval.or(file.checkpoint_interval).unwrap_or(10),
            1,
            DAY,
        )?;
        // -1 is Kafka's word for the broker's default: kmirror's default then.
        let replication_factor = args.replication_factor.or(file.replication_factor).filter(|&n| n != -1);
        if replication_factor.is_some_and(|n| n < 1) {
            return Err(usage(
                "--replication-factor must be at least 1, or -1 (leave it out) for the default",
            ));
        }
        let exclude_configs = args
            .exclude_configs
            .clone()
            .or(file.exclude_configs.clone())
            .map(|p| whole_name_regex("--exclude-configs", &p))
            .transpose()?;
        let groups = args.groups.clone().or(file.groups.clone()).map(|p| group_regex(&p)).transpose()?;
        let sync_group_offsets = args.sync_group_offsets.or(file.sync_group_offsets).unwrap_or(false);
        if sync_group_offsets && groups.is_none() {
            return Err(usage(
                "--sync-group-offsets needs --groups REGEX: it commits the positions of the groups checkpointed",
            ));
        }
        let state_dir =
            args.state_dir.clone().or(file.state_dir.clone()).unwrap_or_else(|| default_state_dir(&name));

        let settings = Self {
            name,
            source_bootstrap,
            target_bootstrap,
            source,
            target,
            selector,
            rename,
            transforms,
            transforms_given,
            num_streams,
            shards,
            state_dir,
            transaction_max_records,
            transaction_max: Duration::from_millis(transaction_max_ms),
            transaction_size_adapts,
            transaction_max_bytes,
            until_caught_up,
            overlapping_commits: !args.serial_commits.or(file.serial_commits).unwrap_or(false),
            coordinate,
            after_failover: args.after_failover,
            session_timeout: Duration::from_secs(session_timeout.unwrap_or(10)),
            start_from,
            on_missing_source: args.on_missing_source.or(file.on_missing_source).unwrap_or_default(),
            replication_factor,
            exclude_configs,
            refresh_interval: Duration::from_secs(refresh_interval),
            connect_timeout: Duration::from_secs(connect_timeout),
            groups,
            checkpoint_interval: Duration::from_secs(checkpoint_interval),
            sync_group_offsets,
            sync_acls: args.sync_acls.or(file.sync_acls),
            metrics_addr: metrics_addr(args.metrics_addr.clone().or(file.metrics_addr.clone()))?,
            progress: args.progress.or(file.progress).unwrap_or_default(),
        };
        settings.check_transaction_timeout()?;
        Ok(settings)
    }

    /// A transaction that may stay open as long as the target lets it is aborted by the target
    /// each time a source goes quiet (its flush and commit need time after its bound): refused.
    fn check_transaction_timeout(&self) -> Result<()> {
        let timeout = self.transaction_timeout();
        let room = Duration::from_secs(10).min(timeout / 2);
        if self.transaction_max + room > timeout {
            return Err(usage(&format!(
                "--transaction-max-ms {} leaves no room under the target's transaction timeout ({} ms, {}): the target would abort transactions that stay open that long; give at most {} ms, or a larger target.transaction.timeout.ms (the brokers' transaction.max.timeout.ms allows 15 min by default)",
                self.transaction_max.as_millis(),
                timeout.as_millis(),
                match self.target.client_config().get("transaction.timeout.ms") {
                    Some(_) => "target.transaction.timeout.ms",
                    None => "the bound plus 30 s, at most 15 min",
                },
                timeout.saturating_sub(room).as_millis()
            )));
        }
        Ok(())
    }

    /// The consumer group on the target that holds shard `shard`'s committed source positions.
    pub(crate) fn shadow_group(&self, shard: u32) -> String {
        names::shadow_group(&self.name, shard)
    }

    /// The target topic holding the offset map (runs of every committed transaction).
    pub(crate) fn map_topic(&self) -> String {
        names::map_topic(&self.name)
    }

    /// The target topic holding checkpoints of source consumer groups.
    pub(crate) fn checkpoint_topic(&self) -> String {
        names::checkpoint_topic(&self.name)
    }

    pub(crate) fn transactional_ids(&self, shard: u32) -> Vec<String> {
        names::transactional_ids(&self.name, shard)
    }

    /// How long the target lets a transaction of the mirror stay open before aborting it: the
    /// user's `target.transaction.timeout.ms`, else the transaction's time bound plus 30 s for
    /// its flush and commit (at most the brokers' default maximum, 15 min). librdkafka's own
    /// default, 60 s, would hold every read_committed reader of the target (consumers, status,
    /// translate-offsets) at a crashed mirror's open transaction for a minute.
    pub(crate) fn transaction_timeout(&self) -> Duration {
        match self.transaction_timeout_set() {
            Some(ms) => Duration::from_millis(ms),
            None => (self.transaction_max + Duration::from_secs(30)).min(Duration::from_secs(15 * 60)),
        }
    }

    /// The user's `target.transaction.timeout.ms` (None: kmirror's own, from the bound).
    pub(crate) fn transaction_timeout_set(&self) -> Option<u64> {
        self.target.client_config().get("transaction.timeout.ms").and_then(|ms| ms.parse().ok())
    }
}

const DAY: u64 = 86_400;

/// Refuses a setting beyond `max` (a day of seconds, an hour of milliseconds: larger ones are
/// typos, and would overflow the clock arithmetic) or below `min` (a time of 0 would spin).
fn within(flag: &str, value: u64, min: u64, max: u64) -> Result<u64> {
    if value > max {
        return Err(usage(&format!("{flag} {value} is out of range: at most {max}")));
    }
    if value < min {
        return Err(usage(&format!("{flag} {value} is out of range: at least {min}")));
    }
    Ok(value)
}

/// The transform settings as given: `--transform` specs and the active-active aliases.
#[derive(Debug, Clone, Default)]
pub(crate) struct TransformsGiven {
    pub(crate) specs: Vec<String>,
    pub(crate) source_alias: Option<String>,
    pub(crate) target_alias: Option<String>,
}

/// The transform chain: active-active marking first (so records from the target are dropped
/// before anything else), then the `--transform` flags (or the file's list) in order.
fn transforms(args: &MirrorFile, file: &MirrorFile) -> Result<(crate::transform::Chain, TransformsGiven)> {
    use crate::transform::{Origin, Transform};
    let given = TransformsGiven {
        specs: if args.transforms.is_empty() { file.transforms.clone() } else { args.transforms.clone() },
        source_alias: args.source_alias.clone().or(file.source_alias.clone()),
        target_alias: args.target_alias.clone().or(file.target_alias.clone()),
    };
    let mut chain = Vec::new();
    match (&given.source_alias, &given.target_alias) {
        (Some(source_alias), Some(target_alias)) if source_alias != target_alias => {
            chain.push(Transform::Origin(Origin::ActiveActive {
                source_alias: source_alias.clone(),
                target_alias: target_alias.clone(),
            }))
        }
        (None, None) => {}
        (Some(_), Some(_)) => return Err(usage("--source-alias and --target-alias must differ")),
        _ => return Err(usage("--source-alias and --target-alias go together (active-active mirroring)")),
    }
    for spec in &given.specs {
        chain.push(Transform::parse(spec)?);
    }
    let skip = match args.on_transform_error.as_deref().or(file.on_transform_error.as_deref()) {
        None | Some("stop") => false,
        Some("skip") => true,
        Some(other) => return Err(usage(&format!("--on-transform-error {other}: use stop or skip"))),
    };
    Ok((crate::transform::Chain::new(chain).skipping_errors(skip), given))
}

/// A `--groups` pattern (see [`GroupSelector`]).
pub(crate) fn group_regex(pattern: &str) -> Result<GroupSelector> {
    GroupSelector::new(pattern)
}

/// `pattern` matching whole names only; an invalid one is named with its flag. The pattern is
/// checked alone first: `a)|(b` wrapped as `^(?:a)|(b)$` compiles, and matches names that
/// merely start with `a` or end with `b`.
pub(crate) fn whole_name_regex(flag: &'static str, pattern: &str) -> Result<regex::Regex> {
    let refused = |message: String| Error::Regex {
        flag,
        pattern: pattern.to_string(),
        message: message.lines().last().unwrap_or_default().trim().to_string(),
    };
    regex_syntax::parse(pattern).map_err(|e| refused(e.to_string()))?;
    regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| refused(e.to_string()))
}

/// `--metrics-addr` as given, once it names an address (found before any cluster is asked).
fn metrics_addr(addr: Option<String>) -> Result<Option<String>> {
    use std::net::ToSocketAddrs;
    match addr {
        Some(addr) => match addr.to_socket_addrs().map(|mut found| found.next()) {
            Ok(Some(_)) => Ok(Some(addr)),
            Ok(None) => Err(usage(&format!(
                "--metrics-addr {addr}: names no address (give HOST:PORT, e.g. 0.0.0.0:9100)"
            ))),
            Err(e) => Err(usage(&format!("--metrics-addr {addr}: {e} (give HOST:PORT, e.g. 0.0.0.0:9100)"))),
        },
        None => Ok(None),
    }
}

fn usage(message: &str) -> Error {
    Error::Usage(message.to_string())
}

pub(crate) fn check_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 200
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(usage(&format!("--name '{name}' must be 1-200 characters of a-z, A-Z, 0-9, '.', '_' or '-'")))
    }
}

pub(crate) fn default_state_dir(name: &str) -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("kmirror").join(name)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn resolve(flags: &MirrorFile, sets: &[&str], config: Option<&PathBuf>) -> Result<MirrorSettings> {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let file = match config {
            Some(path) => SettingsFile::Toml(path),
            None => SettingsFile::None,
        };
        MirrorSettings::resolve(flags, &sets, file)
    }

    /// A value the file gave is refused as the file's, by its key (it was said under the flag's
    /// name only, sending the user to a command line that does not hold it); one the flag gave
    /// stays the flag's.
    #[test]
    fn a_refused_value_from_the_file_names_the_file_and_its_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("name = \"dr\"\n{text}\n[source]\nbootstrap = \"s:9092\"\n[target]\nbootstrap = \"t:9092\"\n")).expect("write");
            path
        };
        let bad_topics = write("topics.toml", "topics = \"(\"");
        let err = resolve(&MirrorFile::default(), &[], Some(&bad_topics)).expect_err("a bad regex");
        assert_eq!(err.exit_code(), 2);
        let said = err.to_string();
        let expected = format!(
            "config file {}: its topics (the value of --topics): invalid --topics regex '('",
            bad_topics.display()
        );
        assert!(said.starts_with(&expected), "{said}");

        let transform = write("transform.toml", "topics = \"orders\"\ntransforms = [\"no-such-transform\"]");
        let said =
            resolve(&MirrorFile::default(), &[], Some(&transform)).expect_err("no transform").to_string();
        assert!(
            said.contains("its transforms (the value of --transform): --transform 'no-such-transform'"),
            "{said}"
        );

        let streams = write("streams.toml", "topics = \"orders\"\nnum_streams = 0");
        let said = resolve(&MirrorFile::default(), &[], Some(&streams)).expect_err("no stream").to_string();
        assert!(
            said.contains("its num_streams (the value of --num-streams): --num-streams must be at least 1"),
            "{said}"
        );

        // The flag's own value: said as the flag's, the file not named.
        let good = write("good.toml", "topics = \"orders\"");
        let flags = MirrorFile { topics: Some("(".into()), ..MirrorFile::default() };
        let said = resolve(&flags, &[], Some(&good)).expect_err("a bad regex").to_string();
        assert!(said.starts_with("invalid --topics regex '('") && !said.contains("config file"), "{said}");
        // A flag over a file's bad value: the flag's value is the one used.
        let flags = MirrorFile { topics: Some("orders".into()), ..MirrorFile::default() };
        resolve(&flags, &[], Some(&bad_topics)).expect("the flag's topics win");
    }

    #[test]
    fn a_refused_value_from_a_mirrormaker_file_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mm2.properties");
        std::fs::write(
            &path,
            "clusters=src,dr\nsrc.bootstrap.servers=s:9092\ndr.bootstrap.servers=d:9092\nsrc->dr.enabled=true\nsrc->dr.topics=orders(\n",
        )
        .expect("write");
        let file = SettingsFile::Mm2 { path: &path, flow: None };
        let said =
            MirrorSettings::resolve(&MirrorFile::default(), &[], file).expect_err("a bad regex").to_string();
        let expected =
            format!("config file {}: the value of --topics it gives: invalid --topics regex", path.display());
        assert!(said.starts_with(&expected), "{said}");
    }

    #[test]
    fn toml_file_holds_the_settings_and_flags_win() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("consumer.properties"),
            "client.id=from-properties\nauto.offset.reset=latest\n",
        )
        .expect("write");
        let path = dir.path().join("mirror.toml");
        let mut file = std::fs::File::create(&path).expect("create");
        write!(
            file,
            r#"
name = "dr"
topics = "orders.*"
num_streams = 1
transaction_max_records = 500
[source]
bootstrap = "src:9092"
config = "consumer.properties"
[target]
bootstrap = "dst:9092"
[target.properties]
"compression.type" = "lz4"
"#
        )
        .expect("write");
        let flags = MirrorFile { transaction_max_records: Some(42), ..MirrorFile::default() };
        let settings = resolve(&flags, &["target.compression.type=zstd"], Some(&path)).expect("valid");
        assert_eq!(settings.name, "dr");
        assert_eq!(settings.source_bootstrap, "src:9092");
        assert_eq!(settings.target_bootstrap, "dst:9092");
        assert_eq!(settings.num_streams, 1);
        assert_eq!(settings.transaction_max_records, 42, "the flag wins over the file");
        assert_eq!(settings.source.get("client.id"), Some("from-properties"));
        assert_eq!(settings.target.get("compression.type"), Some("zstd"), "--set wins over the file");
        assert_eq!(settings.start_from, StartFrom::Latest, "auto.offset.reset from the consumer config");
        assert!(settings.selector.matches("orders-eu") && !settings.selector.matches("payments"));
        assert_eq!(settings.transactional_ids(3)[0], "kmirror.dr.3");
    }

    #[test]
    fn unknown_toml_keys_and_missing_settings_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "name = \"x\"\nnum_stream = 2\n").expect("write");
        let err = resolve(&MirrorFile::default(), &[], Some(&path)).expect_err("refused").to_string();
        assert!(err.contains("bad.toml") && err.contains("num_stream"), "{err}");
        let err = resolve(&MirrorFile::default(), &[], None).expect_err("refused").to_string();
        assert!(err.contains("--name is required"), "{err}");
    }

    #[test]
    fn a_toml_syntax_error_never_quotes_the_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret.toml");
        std::fs::write(&path, "name = \"x\"\n[source.properties]\n\"sasl.password\" = s3cret-in-toml\n")
            .expect("write");
        let err = resolve(&MirrorFile::default(), &[], Some(&path)).expect_err("refused").to_string();
        assert!(err.contains("secret.toml") && err.contains("line 3"), "{err}");
        assert!(!err.contains("s3cret-in-toml"), "{err}");
    }

    #[test]
    fn set_flags_go_to_their_own_side_and_resolve_references() {
        std::env::set_var("KMIRROR_TEST_TARGET_PW", "target-secret");
        let flags = MirrorFile {
            name: Some("sides".into()),
            topics: Some("t".into()),
            source: ClusterFile { bootstrap: Some("src:9092".into()), ..ClusterFile::default() },
            target: ClusterFile { bootstrap: Some("dst:9092".into()), ..ClusterFile::default() },
            ..MirrorFile::default()
        };
        let sets = [
            "source.sasl.username=reader",
            "target.sasl.username=writer",
            "target.sasl.password=${env:KMIRROR_TEST_TARGET_PW}",
        ];
        let settings = resolve(&flags, &sets, None).expect("valid");
        assert_eq!(settings.source.get("sasl.username"), Some("reader"));
        assert_eq!(settings.source.get("sasl.password"), None, "never borrowed from the other side");
        assert_eq!(settings.target.get("sasl.username"), Some("writer"));
        assert_eq!(settings.target.get("sasl.password"), Some("target-secret"));
        assert!(!format!("{settings:?}").contains("target-secret"));
    }
}
