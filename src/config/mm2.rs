//! `--mm2-config`: a MirrorMaker 2 dedicated-mode properties file read as kmirror settings, so
//! its users bring the file they run today. One flow (`A->B`) becomes one mirror: clusters and
//! their client settings, topics and excludes, groups, the replication policy as `--rename`,
//! group offset sync. What kmirror does anyway (exactly once, config sync) or has no use for
//! (heartbeats, Connect's internal topics) is accepted and left out; what it cannot do is
//! refused by name.
use std::collections::BTreeMap;
use std::path::Path;

use super::{read_properties, ClusterFile, MirrorFile};
use crate::error::{Error, Result};

/// Settings of MM2 (or of its Connect worker) that have no meaning for kmirror: its copy is
/// exactly once and keeps its own state on the target, whatever they say.
const WITHOUT_MEANING: &[&str] = &[
    "checkpoints.topic.replication.factor",
    "heartbeats.topic.replication.factor",
    "offset-syncs.topic.replication.factor",
    "offset.storage.replication.factor",
    "status.storage.replication.factor",
    "config.storage.replication.factor",
    "offset-syncs.topic.location",
    "emit.heartbeats.enabled",
    "emit.heartbeats.interval.seconds",
    "offset.lag.max",
    "sync.group.offsets.interval.seconds",
    "refresh.groups.interval.seconds",
    "dedicated.mode.enable.internal.rest",
    "listeners",
    "exactly.once.source.support",
    "key.converter",
    "value.converter",
    "header.converter",
    "offset.flush.interval.ms",
    "consumer.poll.timeout.ms",
];

/// Settings read into the mirror's settings (top level, or for one flow as `A->B.KEY`).
const MAPPED: &[&str] = &[
    "topics",
    "topics.exclude",
    "topics.blacklist",
    "groups",
    "replication.policy.class",
    "replication.policy.separator",
    "emit.checkpoints.enabled",
    "emit.checkpoints.interval.seconds",
    "refresh.topics.interval.seconds",
    "sync.group.offsets.enabled",
    "sync.topic.acls.enabled",
    "sync.topic.configs.enabled",
    "tasks.max",
    "replication.factor",
    "config.properties.exclude",
    "config.properties.blacklist",
];

/// Reads `path` and picks the flow `flow` ("A->B"), or the one enabled flow if not given.
pub(crate) fn read_mm2_file(path: &Path, flow: Option<&str>) -> Result<MirrorFile> {
    let entries: BTreeMap<String, String> = read_properties(path)?.into_iter().collect();
    mm2_layer(path, &entries, flow)
}

fn refuse(path: &Path, message: String) -> Error {
    Error::ConfigFile { file: path.to_path_buf(), message }
}

pub(crate) fn mm2_layer(
    path: &Path,
    entries: &BTreeMap<String, String>,
    flow: Option<&str>,
) -> Result<MirrorFile> {
    let clusters: Vec<String> = list(entries.get("clusters").map(String::as_str).unwrap_or_default());
    if clusters.len() < 2 {
        return Err(refuse(path, "clusters must name at least two cluster aliases (clusters = A, B)".into()));
    }
    let (source, target) = pick_flow(path, entries, &clusters, flow)?;
    let flow_key = format!("{source}->{target}");
    // A flow's own setting wins over the top-level one, as in MM2.
    let setting = |key: &str| entries.get(&format!("{flow_key}.{key}")).or_else(|| entries.get(key)).cloned();

    let flag = |key: &str| boolean(path, key, setting(key));
    if flag("sync.topic.configs.enabled")? == Some(false) {
        return Err(refuse(
            path,
            "sync.topic.configs.enabled=false: kmirror always creates target topics with the source's configs".into(),
        ));
    }
    if setting("groups.exclude").or(setting("groups.blacklist")).is_some() {
        return Err(refuse(
            path,
            "groups.exclude has no equivalent: name the groups to checkpoint in groups".into(),
        ));
    }
    // The Default policy's separator: it names where a topic came from, so that a flow leaves
    // out the copies of its target's own topics (below).
    let mut separator = None;
    let rename = match setting("replication.policy.class").as_deref().map(str::trim) {
        None | Some("org.apache.kafka.connect.mirror.DefaultReplicationPolicy") => {
            let sep = setting("replication.policy.separator").unwrap_or_else(|| ".".into());
            separator = Some(sep.clone());
            match sep.as_str() {
                "." => format!("prefix:{source}"),
                sep => format!("regex:(.*)=>{source}{}$1", sep.replace('$', "$$")),
            }
        }
        Some("org.apache.kafka.connect.mirror.IdentityReplicationPolicy") => "identity".into(),
        Some(other) => {
            return Err(refuse(path, format!("replication.policy.class {other}: only MM2's Default and Identity policies have an equivalent (--rename)")))
        }
    };
    // Records flowing back into the source with copies under their own names (both ways, or
    // round a ring a->b->c->a): nothing but origin marks keeps a record from coming back to
    // where it was written (MM2 itself copies it round for ever). With renamed copies the
    // names do it (the exclude above).
    let mut flows_into_source = false;
    for other in clusters.iter().filter(|c| **c != source) {
        let key = format!("{other}->{source}.enabled");
        flows_into_source |= boolean(path, &key, entries.get(&key).cloned())? == Some(true);
    }
    let two_way_unrenamed = rename == "identity" && flows_into_source;
    let checkpoints = flag("emit.checkpoints.enabled")?.unwrap_or(true);
    let sync_group_offsets = flag("sync.group.offsets.enabled")?;
    if !checkpoints && sync_group_offsets == Some(true) {
        return Err(refuse(
            path,
            "sync.group.offsets.enabled=true with emit.checkpoints.enabled=false: the synced positions are the checkpoints' (enable both, or neither)".into(),
        ));
    }
    let file = MirrorFile {
        name: Some(format!("{source}-to-{target}")),
        topics: Some(patterns(&setting("topics").unwrap_or_else(|| ".*".into()))),
        exclude: Some(exclude(
            setting("topics.exclude").or(setting("topics.blacklist")),
            separator.as_deref(),
            &target,
        )),
        rename: Some(rename),
        groups: checkpoints.then(|| patterns(&setting("groups").unwrap_or_else(|| ".*".into()))),
        checkpoint_interval: seconds(
            path,
            "emit.checkpoints.interval.seconds",
            setting("emit.checkpoints.interval.seconds"),
        )?,
        refresh_interval: seconds(
            path,
            "refresh.topics.interval.seconds",
            setting("refresh.topics.interval.seconds"),
        )?,
        sync_group_offsets,
        // MM2's topic ACL sync leaves WRITE out, as the read-only policy does. MM2 syncs by
        // default and shrugs when the source has no authorizer; kmirror copies only when asked
        // (it refuses to start where it cannot copy what it was asked to).
        sync_acls: flag("sync.topic.acls.enabled")?
            .unwrap_or(false)
            .then_some(crate::config::AclPolicy::ReadOnly),
        source_alias: two_way_unrenamed.then(|| source.clone()),
        target_alias: two_way_unrenamed.then(|| target.clone()),
        num_streams: number(path, "tasks.max", setting("tasks.max"))?,
        replication_factor: number(path, "replication.factor", setting("replication.factor"))?,
        // MM2's default list is what kmirror always leaves out; a list given adds to it.
        exclude_configs: setting("config.properties.exclude")
            .or(setting("config.properties.blacklist"))
            .map(|given| patterns(&given))
            .filter(|p| !p.is_empty()),
        source: side(path, entries, &source, &clusters)?,
        target: side(path, entries, &target, &clusters)?,
        ..MirrorFile::default()
    };
    let known = |key: &str| key == "clusters" || MAPPED.contains(&key) || WITHOUT_MEANING.contains(&key);
    for key in entries.keys() {
        let acceptable = match flows_setting(key, &clusters) {
            Some(rest) => rest == "enabled" || known(rest),
            None => known(key) || clusters.iter().any(|c| key.starts_with(&format!("{c}."))),
        };
        if !acceptable {
            return Err(refuse(
                path,
                format!("{key}: no kmirror equivalent (remove it, or use the kmirror flag that does it)"),
            ));
        }
    }
    Ok(file)
}

/// `A->B.KEY`, `A->B.enabled` and the like: a flow's own settings.
fn flows_setting<'a>(key: &'a str, clusters: &[String]) -> Option<&'a str> {
    let (flow, rest) = key.split_once('.')?;
    let (from, to) = flow.split_once("->")?;
    (clusters.iter().any(|c| c == from) && clusters.iter().any(|c| c == to)).then_some(rest)
}

fn pick_flow(
    path: &Path,
    entries: &BTreeMap<String, String>,
    clusters: &[String],
    flow: Option<&str>,
) -> Result<(String, String)> {
    let mut enabled: Vec<(String, String)> = Vec::new();
    for (key, value) in entries {
        let Some((a, b)) = key.strip_suffix(".enabled").and_then(|flow| flow.split_once("->")) else {
            continue;
        };
        if clusters.iter().any(|c| c == a)
            && clusters.iter().any(|c| c == b)
            && boolean(path, key, Some(value.clone()))? == Some(true)
        {
            enabled.push((a.to_string(), b.to_string()));
        }
    }
    match flow {
        Some(wanted) => {
            let (a, b) = wanted
                .split_once("->")
                .ok_or_else(|| Error::Usage(format!("--flow '{wanted}' must look like SOURCE->TARGET")))?;
            let (a, b) = (a.trim().to_string(), b.trim().to_string());
            if !clusters.contains(&a) || !clusters.contains(&b) {
                return Err(refuse(path, format!("--flow {wanted}: clusters are {}", clusters.join(", "))));
            }
            Ok((a, b))
        }
        None => match enabled.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(refuse(path, "no flow is enabled (A->B.enabled = true); or pass --flow A->B".into())),
            many => Err(Error::Usage(format!(
                "{} enables {} flows ({}): pick one with --flow (one kmirror mirror is one flow)",
                path.display(),
                many.len(),
                many.iter().map(|(a, b)| format!("{a}->{b}")).collect::<Vec<_>>().join(", ")
            ))),
        },
    }
}

/// A cluster's bootstrap and client settings: `ALIAS.KEY`, and `ALIAS.consumer.KEY`,
/// `ALIAS.producer.KEY`, `ALIAS.admin.KEY` (kmirror gives a side's settings to all its clients).
fn side(
    path: &Path,
    entries: &BTreeMap<String, String>,
    alias: &str,
    clusters: &[String],
) -> Result<ClusterFile> {
    let prefix = format!("{alias}.");
    let mut cluster = ClusterFile::default();
    for (key, value) in entries {
        let Some(rest) = key.strip_prefix(&prefix) else { continue };
        if flows_setting(key, clusters).is_some() {
            continue;
        }
        let rest =
            ["consumer.", "producer.", "admin."].iter().find_map(|p| rest.strip_prefix(p)).unwrap_or(rest);
        if rest == "bootstrap.servers" {
            cluster.bootstrap = Some(value.trim().to_string());
        } else if WITHOUT_MEANING.contains(&rest) {
            continue;
        } else {
            cluster.properties.insert(rest.to_string(), value.trim().to_string());
        }
    }
    if cluster.bootstrap.is_none() {
        return Err(refuse(path, format!("{alias}.bootstrap.servers is missing")));
    }
    Ok(cluster)
}

fn list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

/// MM2's comma-separated list of (Java) regexes as one kmirror alternation.
/// MirrorMaker 2's default `topics.exclude` (its `DefaultTopicFilter`).
const MM2_TOPICS_EXCLUDE: &str = ".*[\\-\\.]internal, .*\\.replica, __.*";

/// The flow's `topics.exclude` (MM2's default where none is given), and under the Default
/// policy the topics whose chain of cluster prefixes names the flow's `target` (MM2's cycle
/// check): `A.orders` on B is A's topic copied there, and the B->A flow copying it back would
/// make `B.A.orders` on A, which A->B copies to `A.B.A.orders`, without end.
fn exclude(given: Option<String>, separator: Option<&str>, target: &str) -> String {
    let mut excluded = patterns(&given.unwrap_or_else(|| MM2_TOPICS_EXCLUDE.into()));
    if let Some(sep) = separator {
        let (sep, target) = (regex::escape(sep), regex::escape(target));
        excluded = format!("(?:{excluded})|(?:(?:.*{sep})?{target}{sep}.+)");
    }
    excluded
}

fn patterns(text: &str) -> String {
    let parts = list(text);
    match parts.as_slice() {
        [one] => one.clone(),
        many => many.iter().map(|p| format!("(?:{p})")).collect::<Vec<_>>().join("|"),
    }
}

fn number<T: std::str::FromStr>(path: &Path, key: &str, value: Option<String>) -> Result<Option<T>> {
    value
        .map(|v| v.trim().parse().map_err(|_| refuse(path, format!("{key} = {v}: not a number"))))
        .transpose()
}

/// As MirrorMaker 2 reads a boolean (Kafka's `ConfigDef`): `true` or `false` in any case; any
/// other value is refused, where reading it as false would quietly turn a setting off.
fn boolean(path: &Path, key: &str, value: Option<String>) -> Result<Option<bool>> {
    value
        .map(|v| match v.trim() {
            t if t.eq_ignore_ascii_case("true") => Ok(true),
            f if f.eq_ignore_ascii_case("false") => Ok(false),
            _ => Err(refuse(path, format!("{key} = {v}: must be true or false"))),
        })
        .transpose()
}

fn seconds(path: &Path, key: &str, value: Option<String>) -> Result<Option<u64>> {
    number(path, key, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Apache Kafka's own example file, `config/connect-mirror-maker.properties`.
    const KAFKA_EXAMPLE: &str = "\
# Licensed to the Apache Software Foundation (ASF) under one or more
# see org.apache.kafka.clients.consumer.ConsumerConfig for more details

# Sample MirrorMaker 2.0 top-level configuration file
# Run with ./bin/connect-mirror-maker.sh connect-mirror-maker.properties 

# specify any number of cluster aliases
clusters = A, B

# connection information for each cluster
# This is a comma separated host:port pairs for each cluster
# for e.g. \"A_host1:9092, A_host2:9092, A_host3:9092\"
A.bootstrap.servers = A_host1:9092, A_host2:9092, A_host3:9092
B.bootstrap.servers = B_host1:9092, B_host2:9092, B_host3:9092

# enable and configure individual replication flows
A->B.enabled = true

# regex which defines which topics gets replicated. For eg \"foo-.*\"
A->B.topics = .*

B->A.enabled = true
B->A.topics = .*

# Setting replication factor of newly created remote topics
replication.factor=1

############################# Internal Topic Settings  #############################
# The replication factor for mm2 internal topics \"heartbeats\", \"B.checkpoints.internal\" and
# \"mm2-offset-syncs.B.internal\"
# For anything other than development testing, a value greater than 1 is recommended to ensure availability such as 3.
checkpoints.topic.replication.factor=1
heartbeats.topic.replication.factor=1
offset-syncs.topic.replication.factor=1

# The replication factor for connect internal topics \"mm2-configs.B.internal\", \"mm2-offsets.B.internal\" and
# \"mm2-status.B.internal\"
# For anything other than development testing, a value greater than 1 is recommended to ensure availability such as 3.
offset.storage.replication.factor=1
status.storage.replication.factor=1
config.storage.replication.factor=1

# customize as needed
# replication.policy.separator = _
# sync.topic.acls.enabled = false
# emit.heartbeats.interval.seconds = 5
";

    fn layer(text: &str, flow: Option<&str>) -> Result<MirrorFile> {
        let path = Path::new("mm2.properties");
        let entries = crate::config::properties::parse_properties(path, text)?.into_iter().collect();
        mm2_layer(path, &entries, flow)
    }

    #[test]
    fn kafkas_example_needs_a_flow_and_maps_it() {
        let err = layer(KAFKA_EXAMPLE, None).expect_err("two flows").to_string();
        assert!(err.contains("A->B, B->A") && err.contains("--flow"), "{err}");
        let file = layer(KAFKA_EXAMPLE, Some("B->A")).expect("mapped");
        assert_eq!(file.name.as_deref(), Some("B-to-A"));
        assert_eq!(file.source.bootstrap.as_deref(), Some("B_host1:9092, B_host2:9092, B_host3:9092"));
        assert_eq!(file.target.bootstrap.as_deref(), Some("A_host1:9092, A_host2:9092, A_host3:9092"));
        assert_eq!(file.topics.as_deref(), Some(".*"));
        assert_eq!(
            file.rename.as_deref(),
            Some("prefix:B"),
            "MM2's default policy prefixes the source alias"
        );
        assert_eq!(file.groups.as_deref(), Some(".*"), "MM2 checkpoints every group by default");
        assert_eq!(file.replication_factor, Some(1));
        assert!(file.source.properties.is_empty() && file.target.properties.is_empty());
        // B->A leaves out what came from A (MM2's cycle check) and MM2's default exclusions.
        let excluded = regex::Regex::new(&format!("^(?:{})$", file.exclude.as_deref().unwrap_or_default()))
            .expect("a regex");
        for topic in ["A.orders", "C.A.orders", "mm2-offsets.A.internal", "__consumer_offsets", "x.replica"] {
            assert!(excluded.is_match(topic), "{topic} left out");
        }
        for topic in ["orders", "B.orders", "A", "AB.orders", "orders.A"] {
            assert!(!excluded.is_match(topic), "{topic} copied");
        }
    }

    #[test]
    fn both_ways_with_unrenamed_copies_mark_where_each_record_was_written() {
        let text = "clusters=a,b\na.bootstrap.servers=a:9092\nb.bootstrap.servers=b:9092\na->b.enabled=true\n\
                    b->a.enabled=true\nreplication.policy.class=org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n";
        let file = layer(text, Some("b->a")).expect("mapped");
        assert_eq!((file.source_alias.as_deref(), file.target_alias.as_deref()), (Some("b"), Some("a")));
        let prefixed = text.replace(
            "replication.policy.class=org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n",
            "",
        );
        let renamed = layer(&prefixed, Some("b->a")).expect("mapped");
        assert_eq!(renamed.rename.as_deref(), Some("prefix:b"));
        assert_eq!(renamed.source_alias, None, "copies renamed: the names keep records from cycling");
        // A ring: nothing flows straight back, but c's flow brings a's records home.
        let ring = "clusters=a,b,c\na.bootstrap.servers=a:9092\nb.bootstrap.servers=b:9092\nc.bootstrap.servers=c:9092\n\
                    a->b.enabled=true\nb->c.enabled=true\nc->a.enabled=true\n\
                    replication.policy.class=org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n";
        let file = layer(ring, Some("a->b")).expect("mapped");
        assert_eq!((file.source_alias.as_deref(), file.target_alias.as_deref()), (Some("a"), Some("b")));
    }

    #[test]
    fn client_settings_policy_and_lists_map_and_the_rest_is_refused_by_name() {
        let text = "clusters=src,dr\nsrc.bootstrap.servers=s:9092\ndr.bootstrap.servers=d:9092\n\
                    src->dr.enabled=true\nsrc->dr.topics=orders.*, payments\ntopics.exclude=.*-tmp\n\
                    src.security.protocol=SASL_SSL\nsrc.consumer.fetch.min.bytes=1024\ndr.producer.compression.type=zstd\n\
                    replication.policy.class=org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n\
                    emit.checkpoints.enabled=false\nsync.group.offsets.enabled=False\ntasks.max=4\n";
        let file = layer(text, None).expect("mapped");
        assert_eq!(file.topics.as_deref(), Some("(?:orders.*)|(?:payments)"));
        assert_eq!(file.exclude.as_deref(), Some(".*-tmp"), "the Identity policy names no source");
        assert_eq!(file.rename.as_deref(), Some("identity"));
        assert_eq!((file.source_alias, file.target_alias), (None, None), "one way: records as they are");
        assert_eq!(file.groups, None);
        assert_eq!((file.sync_group_offsets, file.num_streams), (Some(false), Some(4)));
        assert_eq!(file.source.properties.get("security.protocol").map(String::as_str), Some("SASL_SSL"));
        assert_eq!(file.source.properties.get("fetch.min.bytes").map(String::as_str), Some("1024"));
        assert_eq!(file.target.properties.get("compression.type").map(String::as_str), Some("zstd"));

        let refused = |extra: &str, expect: &str| {
            let err = layer(&format!("{text}{extra}\n"), None).expect_err(extra).to_string();
            assert!(err.contains(expect), "{extra}: {err}");
        };
        let acls = layer(&format!("{text}sync.topic.acls.enabled=TRUE\n"), None).expect("mapped");
        assert_eq!(
            acls.sync_acls,
            Some(crate::config::AclPolicy::ReadOnly),
            "true in any case, as MM2 reads it"
        );
        refused("sync.topic.acls.enabled=yes", "sync.topic.acls.enabled = yes: must be true or false");
        refused("src->dr.enabled=on", "src->dr.enabled = on: must be true or false");
        refused("sync.group.offsets.enabled=true", "emit.checkpoints.enabled=false");
        refused("groups.exclude=test-.*", "groups.exclude");
        refused("replication.policy.class=com.example.MyPolicy", "com.example.MyPolicy");
        refused("config.providers=file", "config.providers: no kmirror equivalent");
        let separator = layer(
            &text.replace(
                "replication.policy.class=org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n",
                "replication.policy.separator=_\n",
            ),
            None,
        );
        assert_eq!(separator.expect("mapped").rename.as_deref(), Some("regex:(.*)=>src_$1"));
    }
}
