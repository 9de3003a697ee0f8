//! Exact translation of consumer-group positions between the clusters, from the offset map
//! (materialised locally) and the shadow group's committed positions.
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use kmirror_state::{GroupOffset, MapStore, Opened, Skipped, StateError, TopicPartition};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use tracing::warn;

use crate::config::names::shadow_group;
use crate::config::names::{self, shard_of};
use crate::error::{Error, Result, Side};
use crate::kafka::client::CreateForRole;
use crate::kafka::groups::committed_offsets_exact;
use crate::translate::map_sync::{catch_up, same_topic_or_cleared};

/// One group position and where it lands on the other cluster (`None`: nothing mirrored there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Translation {
    pub(crate) from: GroupOffset,
    pub(crate) to: Option<GroupOffset>,
    /// The range skipped by policy the position lies in: its records were never copied.
    pub(crate) skipped: Option<Skipped>,
    /// Where the copies end on the cluster the position was read on, when the position is past
    /// that end. Reverse: the group read records written on the target, which the source does
    /// not have. Forward: the group read source records the mirror has not copied (yet).
    pub(crate) past_copies: Option<i64>,
}

pub(crate) struct Translator {
    store: MapStore,
    target: ClientConfig,
    name: String,
    /// Set once the store is known to be filled from the map topic the target has (checked at
    /// the first refresh: a topic made again under a running mirror stops the mirror).
    same_topic: std::sync::OnceLock<()>,
}

fn state(cause: StateError) -> Error {
    Error::Map { context: "the local copy".into(), cause }
}

impl Translator {
    /// Opens the local map under `state_dir` (rebuilding it if unreadable) and brings it up to
    /// date from the target.
    pub(crate) fn open(state_dir: &Path, name: &str, target: ClientConfig) -> Result<Self> {
        let path = state_dir.join("offset-map");
        let (store, opened) = MapStore::open_or_rebuild(&path, name).map_err(state)?;
        if opened == Opened::Rebuilt {
            warn!(path = %path.display(), "offset map was unreadable; rebuilding it from the target");
        }
        let translator = Self { store, target, name: name.to_string(), same_topic: Default::default() };
        translator.refresh()?;
        Ok(translator)
    }

    /// Applies what the map topic gained since the last refresh.
    pub(crate) fn refresh(&self) -> Result<()> {
        let topic = names::map_topic(&self.name);
        let partitions = self.shards()? as i32;
        if self.same_topic.get().is_none() && same_topic_or_cleared(&self.store, &self.target, &topic)? {
            let _ = self.same_topic.set(());
        }
        catch_up(&self.store, &self.target, &topic, partitions, &names::map_reader_group(&self.name))
            .map(|_| ())
    }

    /// The target partition a source partition is mirrored to, if any run exists.
    pub(crate) fn target_of(&self, source: &TopicPartition) -> Result<Option<TopicPartition>> {
        self.store.target_of(source).map_err(state)
    }

    /// The committed source position of a mirrored partition (the shadow group's).
    pub(crate) fn committed_position(
        &self,
        source: &TopicPartition,
        target: &TopicPartition,
    ) -> Result<Option<i64>> {
        Ok(self.shadow_positions(&[(source.clone(), target.clone())])?.get(target).copied())
    }

    /// The target offset of the copy of source record `offset`, if that record was mirrored
    /// (committed, below `committed`).
    pub(crate) fn copy_of(
        &self,
        source: &TopicPartition,
        offset: i64,
        committed: Option<i64>,
    ) -> Result<Option<i64>> {
        self.store.copy_of(source, offset, committed).map_err(state)
    }

    /// The ranges of a source partition skipped by policy that overlap `from..to`.
    pub(crate) fn skipped_within(&self, source: &TopicPartition, from: i64, to: i64) -> Result<Vec<Skipped>> {
        self.store.skipped_within(source, from, to).map_err(state)
    }

    /// Where the map's runs of a source partition start.
    pub(crate) fn mapped_start(&self, source: &TopicPartition) -> Result<Option<i64>> {
        self.store.mapped_start(source).map_err(state)
    }

    /// Where the map's runs of a source partition end.
    pub(crate) fn mapped_end(&self, source: &TopicPartition) -> Result<Option<i64>> {
        self.store.mapped_end(source).map_err(state)
    }

    pub(crate) fn source_partitions(&self) -> Result<Vec<TopicPartition>> {
        self.store.source_partitions().map_err(state)
    }

    pub(crate) fn target_partitions(&self) -> Result<Vec<TopicPartition>> {
        self.store.target_partitions().map_err(state)
    }

    /// The shadow groups' committed source positions, per target partition. `pairs` are
    /// (source, target) partitions; the source partition decides the shard.
    fn shadow_positions(
        &self,
        pairs: &[(TopicPartition, TopicPartition)],
    ) -> Result<HashMap<TopicPartition, i64>> {
        let shards = self.shards()?;
        let mut by_group: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
        for (source, target) in pairs {
            let shard = shard_of(&source.topic, source.partition, shards);
            by_group.entry(shadow_group(&self.name, shard)).or_default().push(target.clone());
        }
        let mut out = HashMap::new();
        for (group, targets) in by_group {
            out.extend(
                committed_offsets_exact(&self.target, Side::Target, &group, &targets)?
                    .into_iter()
                    .map(|o| (o.partition, o.offset)),
            );
        }
        Ok(out)
    }

    /// The mirror's shard count: the partition count of its shards topic.
    pub(crate) fn shards(&self) -> Result<u32> {
        let topic = names::shards_topic(&self.name);
        let client: BaseConsumer =
            self.target.create_for_role().map_err(Error::kafka(Side::Target, "creating a client"))?;
        let metadata = client
            .fetch_metadata(Some(&topic), Duration::from_secs(30))
            .map_err(Error::kafka(Side::Target, format!("metadata of {topic}")))?;
        metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
            .map(|t| t.partitions().len() as u32)
            .ok_or_else(|| {
                Error::State(format!("{topic} is missing on the target: has mirror '{}' run yet?", self.name))
            })
    }

    /// [`Self::forward_all`] of one set of positions, but a position past the mirror's own (the source records there not
    /// copied yet) has no answer: for a group that must not land short of where it is.
    pub(crate) fn forward_copied(&self, offsets: &[GroupOffset]) -> Result<Vec<Translation>> {
        let (pairs, committed) = self.caught_up_for(&[offsets])?;
        let copied = |from: &GroupOffset| {
            pairs.get(&from.partition).and_then(|t| committed.get(t)).is_some_and(|&c| from.offset <= c)
        };
        offsets
            .iter()
            .map(|from| match copied(from) {
                true => self.forward_one(from, &committed),
                false => Ok(Translation { from: from.clone(), to: None, skipped: None, past_copies: None }),
            })
            .collect()
    }

    /// Source positions -> target positions (failover, cutover), for several groups at once: one
    /// read of the mirror's positions and one catch-up of the map for all. Metadata is carried
    /// over.
    pub(crate) fn forward_all(&self, groups: &[&[GroupOffset]]) -> Result<Vec<Vec<Translation>>> {
        let (_, committed) = self.caught_up_for(groups)?;
        groups
            .iter()
            .map(|offsets| offsets.iter().map(|from| self.forward_one(from, &committed)).collect())
            .collect()
    }

    /// The target partition of each source partition of `groups`' positions, and the mirror's
    /// committed positions there, the map caught up past them.
    #[allow(clippy::type_complexity)]
    fn caught_up_for(
        &self,
        groups: &[&[GroupOffset]],
    ) -> Result<(BTreeMap<TopicPartition, TopicPartition>, HashMap<TopicPartition, i64>)> {
        let mut pairs = BTreeMap::new();
        for offset in groups.iter().flat_map(|g| g.iter()) {
            if !pairs.contains_key(&offset.partition) {
                if let Some(target) = self.store.target_of(&offset.partition).map_err(state)? {
                    pairs.insert(offset.partition.clone(), target);
                }
            }
        }
        let listed: Vec<(TopicPartition, TopicPartition)> =
            pairs.iter().map(|(s, t)| (s.clone(), t.clone())).collect();
        let committed = self.committed_then_caught_up(&listed)?;
        Ok((pairs, committed))
    }

    /// The mirror's committed positions of `pairs`, then the map caught up past them. In this
    /// order: a map record commits in the transaction that moves its partition's position, so
    /// the map read to its end afterwards holds every run below the positions read. The other
    /// way round, a commit landing in between left a position past the map's last run, and a
    /// group there translated to that run's end: behind where it was.
    fn committed_then_caught_up(
        &self,
        pairs: &[(TopicPartition, TopicPartition)],
    ) -> Result<HashMap<TopicPartition, i64>> {
        let committed = self.shadow_positions(pairs)?;
        self.refresh()?;
        Ok(committed)
    }

    fn forward_one(
        &self,
        from: &GroupOffset,
        committed: &HashMap<TopicPartition, i64>,
    ) -> Result<Translation> {
        let target = self.store.target_of(&from.partition).map_err(state)?;
        let (answer, past_copies) = match &target {
            // No position read (the map learnt of the partition in the catch-up, or the shadow
            // group's expired): the map's runs, committed all, are the answer's bound.
            Some(t) => {
                let cap = committed.get(t).copied();
                let copied_to = match cap {
                    Some(cap) => Some(cap),
                    None => self.store.mapped_end(&from.partition).map_err(state)?,
                };
                (
                    self.store.translate(&from.partition, from.offset, cap).map_err(state)?,
                    copied_to.filter(|&end| from.offset > end),
                )
            }
            None => (None, None),
        };
        let to = answer.map(|a| GroupOffset {
            partition: a.partition,
            offset: a.offset,
            metadata: from.metadata.clone(),
        });
        let skipped = self.store.skipped_at(&from.partition, from.offset).map_err(state)?;
        Ok(Translation { from: from.clone(), to, skipped, past_copies })
    }

    /// Target positions -> source positions (failback).
    pub(crate) fn reverse(&self, offsets: &[GroupOffset]) -> Result<Vec<Translation>> {
        let mut pairs = Vec::new();
        for o in offsets {
            if let Some(source) = self.store.source_of(&o.partition).map_err(state)? {
                pairs.push((source, o.partition.clone()));
            }
        }
        let committed = self.committed_then_caught_up(&pairs)?;
        offsets
            .iter()
            .map(|from| {
                let cap = committed.get(&from.partition).copied();
                let answer =
                    self.store.translate_reverse(&from.partition, from.offset, cap).map_err(state)?;
                let to = answer.map(|a| GroupOffset {
                    partition: a.partition,
                    offset: a.offset,
                    metadata: from.metadata.clone(),
                });
                // Where the copies end: at the mirror's position, or (its shadow group expired
                // in a long DR period) at the map's last run, every run committed.
                let copied_to = match (&to, cap) {
                    (Some(_), Some(cap)) => Some(cap),
                    (Some(to), None) => self.store.mapped_end(&to.partition).map_err(state)?,
                    (None, _) => None,
                };
                let past_copies = match (&to, copied_to) {
                    (Some(to), Some(end)) => self
                        .store
                        .translate(&to.partition, end, cap)
                        .map_err(state)?
                        .map(|end| end.offset)
                        .filter(|&end| from.offset > end),
                    _ => None,
                };
                Ok(Translation { from: from.clone(), to, skipped: None, past_copies })
            })
            .collect()
    }
}
