//! Exact translation of consumer-group positions between the clusters, from the offset map
//! (materialised locally) and the shadow group's committed positions.
use std::collections::HashMap;
use std::path::Path;

use kmirror_state::{GroupOffset, MapStore, Opened, StateError, TopicPartition};
use rdkafka::ClientConfig;
use tracing::warn;

use crate::error::{Error, Result, Side};
use crate::groups::committed_offsets;
use crate::map_sync::catch_up;

/// One group position and where it lands on the other cluster (`None`: nothing mirrored there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    pub from: GroupOffset,
    pub to: Option<GroupOffset>,
}

pub struct Translator {
    store: MapStore,
    target: ClientConfig,
    name: String,
}

fn state(e: StateError) -> Error {
    Error::State(e.to_string())
}

impl Translator {
    /// Opens the local map under `state_dir` (rebuilding it if unreadable) and brings it up to
    /// date from the target.
    pub fn open(state_dir: &Path, name: &str, target: ClientConfig) -> Result<Self> {
        let path = state_dir.join("offset-map");
        let (store, opened) = MapStore::open_or_rebuild(&path, name).map_err(state)?;
        if opened == Opened::Rebuilt {
            warn!(path = %path.display(), "offset map was unreadable; rebuilding it from the target");
        }
        let translator = Self { store, target, name: name.to_string() };
        translator.refresh()?;
        Ok(translator)
    }

    /// Applies what the map topic gained since the last refresh.
    pub fn refresh(&self) -> Result<()> {
        let topic = format!("kmirror.offset-map.{}", self.name);
        catch_up(&self.store, &self.target, &topic, &format!("kmirror.{}.map-reader", self.name)).map(|_| ())
    }

    pub fn source_partitions(&self) -> Result<Vec<TopicPartition>> {
        self.store.source_partitions().map_err(state)
    }

    pub fn target_partitions(&self) -> Result<Vec<TopicPartition>> {
        self.store.target_partitions().map_err(state)
    }

    /// The shadow group's committed source position per target partition.
    fn shadow_positions(&self, targets: &[TopicPartition]) -> Result<HashMap<TopicPartition, i64>> {
        let shadow = format!("kmirror.{}", self.name);
        Ok(committed_offsets(&self.target, Side::Target, &shadow, targets)?
            .into_iter()
            .map(|o| (o.partition, o.offset))
            .collect())
    }

    /// Source positions -> target positions (failover, cutover). Metadata is carried over.
    pub fn forward(&self, offsets: &[GroupOffset]) -> Result<Vec<Translation>> {
        let targets: Vec<(GroupOffset, Option<TopicPartition>)> = offsets
            .iter()
            .map(|o| Ok((o.clone(), self.store.target_of(&o.partition).map_err(state)?)))
            .collect::<Result<_>>()?;
        let known: Vec<TopicPartition> = targets.iter().filter_map(|(_, t)| t.clone()).collect();
        let committed = self.shadow_positions(&known)?;
        targets
            .into_iter()
            .map(|(from, target)| {
                let cap = target.as_ref().and_then(|t| committed.get(t).copied());
                let answer = match target {
                    Some(_) => self.store.translate(&from.partition, from.offset, cap).map_err(state)?,
                    None => None,
                };
                let to = answer.map(|a| GroupOffset {
                    partition: a.partition,
                    offset: a.offset,
                    metadata: from.metadata.clone(),
                });
                Ok(Translation { from, to })
            })
            .collect()
    }

    /// Target positions -> source positions (failback).
    pub fn reverse(&self, offsets: &[GroupOffset]) -> Result<Vec<Translation>> {
        let committed =
            self.shadow_positions(&offsets.iter().map(|o| o.partition.clone()).collect::<Vec<_>>())?;
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
                Ok(Translation { from: from.clone(), to })
            })
            .collect()
    }
}
