//! The offset map materialised in RocksDB: a forward index by source offset, a reverse index by
//! target offset, the source ranges skipped by policy, and the map-topic position already applied (written in the same batch as the
//! runs, so a crash never applies a map record twice or skips one).
use std::path::{Path, PathBuf};

use rocksdb::{ColumnFamilyDescriptor, Options, WriteBatch, DB};
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::error::{Result, StateError};
use crate::keys::{key, offset_of, partition_of, prefix};
use crate::records::{MapRecord, Skipped};
use crate::translate::{Answer, Span};
use crate::{Offset, Run, TopicPartition};

const FORWARD: &str = "forward";
const REVERSE: &str = "reverse";
const META: &str = "meta";
const SKIPPED: &str = "skipped";
const POSITION_KEY: &[u8] = b"map-topic-position/";
const MIRROR_KEY: &[u8] = b"mirror-name";
/// The ID of the map topic the store was filled from.
const MAP_TOPIC_ID_KEY: &[u8] = b"map-topic-id";

/// A forward entry: a run seen from the source side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ForwardEntry {
    target: TopicPartition,
    target_start: Offset,
    len: u32,
}

/// A reverse entry: a run seen from the target side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ReverseEntry {
    source: TopicPartition,
    source_start: Offset,
    len: u32,
}

pub struct MapStore {
    db: DB,
    path: PathBuf,
}

/// How [`MapStore::open_or_rebuild`] found the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    Existing,
    Created,
    /// It was unreadable and was replaced by an empty store, to be refilled from the topic.
    Rebuilt,
}

impl MapStore {
    /// Opens (creating if missing) the store of mirror `name` at `path`.
    pub fn open(path: &Path, name: &str) -> Result<(Self, Opened)> {
        let existed = path.join("CURRENT").exists();
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        // RocksDB's info LOG is written through the same writer as its data files: one line
        // that fails for lack of space makes the LOG's close at shutdown abort the process (an
        // assertion in Debian's 7.8). Only fatal lines are logged, and the store is a cache of
        // the map topic, so little is lost for diagnosis.
        options.set_log_level(rocksdb::LogLevel::Fatal);
        let cfs =
            [FORWARD, REVERSE, META, SKIPPED].map(|n| ColumnFamilyDescriptor::new(n, Options::default()));
        let db = DB::open_cf_descriptors(&options, path, cfs).map_err(|e| open_error(path, &e))?;
        let store = Self { db, path: path.to_path_buf() };
        match store.meta(MIRROR_KEY)? {
            Some(found) if found != name.as_bytes() => Err(StateError::Foreign {
                path: path.to_path_buf(),
                found: String::from_utf8_lossy(&found).into_owned(),
                expected: name.to_string(),
            }),
            Some(_) => Ok((store, Opened::Existing)),
            None => {
                store.db.put_cf(store.cf(META)?, MIRROR_KEY, name.as_bytes()).map_err(|e| store.io(&e))?;
                Ok((store, if existed { Opened::Rebuilt } else { Opened::Created }))
            }
        }
    }

    /// Opens the store; a corrupt one is deleted and recreated empty (the caller refills it
    /// from the map topic). A locked or foreign directory is an error, never overwritten.
    pub fn open_or_rebuild(path: &Path, name: &str) -> Result<(Self, Opened)> {
        match Self::open(path, name) {
            Err(StateError::Corrupt { .. }) => {
                std::fs::remove_dir_all(path).map_err(|e| StateError::Io {
                    path: path.to_path_buf(),
                    message: format!("cannot remove the corrupt store: {e}"),
                })?;
                let (store, _) = Self::open(path, name)?;
                Ok((store, Opened::Rebuilt))
            }
            other => other,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next offset to apply of the map topic's partition `map_partition`.
    pub fn position(&self, map_partition: i32) -> Result<Offset> {
        Ok(match self.meta(&position_key(map_partition))? {
            Some(bytes) => codec::decode(&bytes).map_err(|e| self.codec(e))?,
            None => 0,
        })
    }

    /// Applies one map record read at `map_offset`. A run overlapping an earlier run of the same
    /// source partition supersedes it (and its reverse entry): the earlier one came from a
    /// transaction that aborted and was mirrored again.
    pub fn apply(&self, map_partition: i32, map_offset: Offset, record: &MapRecord) -> Result<()> {
        let (forward, reverse, meta) = (self.cf(FORWARD)?, self.cf(REVERSE)?, self.cf(META)?);
        let mut batch = WriteBatch::default();
        for run in &record.runs {
            for (start, old) in self.overlapping(&record.source, run)? {
                batch.delete_cf(forward, key(&record.source, start));
                batch.delete_cf(reverse, key(&old.target, old.target_start));
            }
            let entry =
                ForwardEntry { target: record.target.clone(), target_start: run.target_start, len: run.len };
            let back =
                ReverseEntry { source: record.source.clone(), source_start: run.source_start, len: run.len };
            batch.put_cf(forward, key(&record.source, run.source_start), self.encode(&entry)?);
            batch.put_cf(reverse, key(&record.target, run.target_start), self.encode(&back)?);
        }
        let skipped = self.cf(SKIPPED)?;
        // An empty range marks where a partition's copying began (see the mirror's start
        // marks): nothing was skipped there.
        for gap in record.skipped.iter().filter(|g| g.to > g.from) {
            batch.put_cf(skipped, key(&record.source, gap.from), self.encode(&gap.to)?);
        }
        batch.put_cf(meta, position_key(map_partition), self.encode(&(map_offset + 1))?);
        self.db.write(batch).map_err(|e| self.io(&e))
    }

    /// The ID of the map topic the store was filled from, if recorded.
    pub fn map_topic_id(&self) -> Result<Option<String>> {
        Ok(self.meta(MAP_TOPIC_ID_KEY)?.map(|id| String::from_utf8_lossy(&id).into_owned()))
    }

    /// Records the ID of the map topic the store is filled from.
    pub fn set_map_topic_id(&self, id: &str) -> Result<()> {
        self.db.put_cf(self.cf(META)?, MAP_TOPIC_ID_KEY, id.as_bytes()).map_err(|e| self.io(&e))
    }

    /// Empties the store but for the mirror's name: every run, skipped range, position and the
    /// map topic's ID, to be filled again from the topic's start.
    pub fn clear(&self) -> Result<()> {
        let mut batch = WriteBatch::default();
        // Every run key starts with its topic's length (u16, big-endian, at most 249): below
        // 0xff. One range each, not a key each: a map can hold millions.
        for name in [FORWARD, REVERSE, SKIPPED] {
            batch.delete_range_cf(self.cf(name)?, [0u8].as_slice(), [0xffu8; 3].as_slice());
        }
        let meta = self.cf(META)?;
        let mut it = self.db.raw_iterator_cf(meta);
        it.seek_to_first();
        while let Some(key) = it.key() {
            if key != MIRROR_KEY {
                batch.delete_cf(meta, key);
            }
            it.next();
        }
        it.status().map_err(|e| self.io(&e))?;
        self.db.write(batch).map_err(|e| self.io(&e))
    }

    /// Records that a map-topic partition was read up to `position` with nothing to apply.
    pub fn set_position(&self, map_partition: i32, position: Offset) -> Result<()> {
        self.db
            .put_cf(self.cf(META)?, position_key(map_partition), self.encode(&position)?)
            .map_err(|e| self.io(&e))
    }

    fn overlapping(&self, source: &TopicPartition, run: &Run) -> Result<Vec<(Offset, ForwardEntry)>> {
        let forward = self.cf(FORWARD)?;
        let mut out = Vec::new();
        let mut it = self.db.raw_iterator_cf(forward);
        // The run starting at or before this one may reach into it.
        it.seek_for_prev(key(source, run.source_start));
        if !it.valid() || !it.key().is_some_and(|k| k.starts_with(&prefix(source))) {
            it.seek(key(source, run.source_start));
        }
        let pre = prefix(source);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if !k.starts_with(&pre) {
                break;
            }
            let start = offset_of(k);
            if start >= run.source_end() {
                break;
            }
            let entry: ForwardEntry = codec::decode(v).map_err(|e| self.codec(e))?;
            if start + i64::from(entry.len) > run.source_start {
                out.push((start, entry));
            }
            it.next();
        }
        Ok(out)
    }

    /// The target position for a group that would next read source offset `g`. Runs at or
    /// beyond `committed` (the shadow group's position, if known) are pending, not answers.
    pub fn translate(
        &self,
        source: &TopicPartition,
        g: Offset,
        committed: Option<Offset>,
    ) -> Result<Option<Answer>> {
        self.lookup(
            FORWARD,
            source,
            g,
            |v| {
                let e: ForwardEntry = codec::decode(v)?;
                Ok((e.target, e.target_start, e.len))
            },
            |span| committed.is_none_or(|c| span.from < c),
        )
    }

    /// The target offset of the copy of source record `g`, only if `g` itself was mirrored
    /// (inside a committed run); a gap or a pending run answers `None`.
    pub fn copy_of(
        &self,
        source: &TopicPartition,
        g: Offset,
        committed: Option<Offset>,
    ) -> Result<Option<Offset>> {
        let mut it = self.db.raw_iterator_cf(self.cf(FORWARD)?);
        it.seek_for_prev(key(source, g));
        let (Some(k), Some(v)) = (it.key(), it.value()) else { return Ok(None) };
        if !k.starts_with(&prefix(source)) {
            return Ok(None);
        }
        let from = offset_of(k);
        let entry: ForwardEntry = codec::decode(v).map_err(|e| self.codec(e))?;
        let inside = g < from + i64::from(entry.len) && committed.is_none_or(|c| from < c);
        Ok(inside.then_some(entry.target_start + (g - from)))
    }

    /// The start of the first run of a source partition: records before it were never mirrored
    /// (the mirror started later, e.g. from the end of the partition).
    pub fn mapped_start(&self, source: &TopicPartition) -> Result<Option<Offset>> {
        let pre = prefix(source);
        let mut it = self.db.raw_iterator_cf(self.cf(FORWARD)?);
        it.seek(&pre);
        Ok(it.key().filter(|k| k.starts_with(&pre)).map(offset_of))
    }

    /// The end of the last run of a source partition (pending runs included).
    pub fn mapped_end(&self, source: &TopicPartition) -> Result<Option<Offset>> {
        let mut end = prefix(source);
        end.extend_from_slice(&[0xff; 9]);
        let mut it = self.db.raw_iterator_cf(self.cf(FORWARD)?);
        it.seek_for_prev(&end);
        match (it.key(), it.value()) {
            (Some(k), Some(v)) if k.starts_with(&prefix(source)) => {
                let entry: ForwardEntry = codec::decode(v).map_err(|e| self.codec(e))?;
                Ok(Some(offset_of(k) + i64::from(entry.len)))
            }
            _ => Ok(None),
        }
    }

    /// The source position for a group that would next read target offset `t` (failback).
    /// `committed` is the shadow group's source position for the partition mirrored here.
    pub fn translate_reverse(
        &self,
        target: &TopicPartition,
        t: Offset,
        committed: Option<Offset>,
    ) -> Result<Option<Answer>> {
        self.lookup(
            REVERSE,
            target,
            t,
            |v| {
                let e: ReverseEntry = codec::decode(v)?;
                Ok((e.source, e.source_start, e.len))
            },
            |span| committed.is_none_or(|c| span.to_start < c),
        )
    }

    /// The same answer as [`crate::translate`] over all the partition's spans, found with a
    /// few seeks. Pending spans (failing `valid`) are always the partition's last ones: they
    /// began at or after the committed position, after every committed run.
    fn lookup(
        &self,
        cf: &str,
        tp: &TopicPartition,
        g: Offset,
        decode: impl Fn(&[u8]) -> std::result::Result<(TopicPartition, Offset, u32), codec::CodecError>,
        valid: impl Fn(&Span) -> bool,
    ) -> Result<Option<Answer>> {
        let pre = prefix(tp);
        let mut it = self.db.raw_iterator_cf(self.cf(cf)?);
        let span_at = |it: &rocksdb::DBRawIterator<'_>| -> Result<Option<Span>> {
            match (it.key(), it.value()) {
                (Some(k), Some(v)) if k.starts_with(&pre) => {
                    let (other, to_start, len) = decode(v).map_err(|e| self.codec(e))?;
                    Ok(Some(Span { from: offset_of(k), len, other, to_start }))
                }
                _ => Ok(None),
            }
        };
        // The run starting at or before g, if it holds g.
        it.seek_for_prev(key(tp, g));
        if let Some(span) = span_at(&it)? {
            if valid(&span) && g < span.from + i64::from(span.len) {
                let offset = span.to_start + (g - span.from);
                return Ok(Some(Answer { partition: span.other, offset }));
            }
        }
        // Else the first run after g.
        it.seek(key(tp, g));
        if let Some(span) = span_at(&it)? {
            if valid(&span) {
                return Ok(Some(Answer { partition: span.other, offset: span.to_start }));
            }
        }
        // Else g is past everything committed: just after the last valid run.
        let mut end = pre.clone();
        end.extend_from_slice(&[0xff; 9]);
        it.seek_for_prev(&end);
        while let Some(span) = span_at(&it)? {
            if valid(&span) {
                let offset = span.to_start + i64::from(span.len);
                return Ok(Some(Answer { partition: span.other, offset }));
            }
            it.prev();
        }
        Ok(None)
    }

    /// The ranges of a source partition skipped by policy that overlap `from..to`, in order.
    pub fn skipped_within(&self, source: &TopicPartition, from: Offset, to: Offset) -> Result<Vec<Skipped>> {
        let pre = prefix(source);
        let mut it = self.db.raw_iterator_cf(self.cf(SKIPPED)?);
        // A range starting before `from` may reach into it.
        it.seek_for_prev(key(source, from));
        if !it.key().is_some_and(|k| k.starts_with(&pre)) {
            it.seek(key(source, from));
        }
        let mut out = Vec::new();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if !k.starts_with(&pre) || offset_of(k) >= to {
                break;
            }
            let gap = Skipped { from: offset_of(k), to: codec::decode(v).map_err(|e| self.codec(e))? };
            if gap.to > from {
                out.push(gap);
            }
            it.next();
        }
        Ok(out)
    }

    /// The range skipped by policy that holds source offset `g`, if any.
    pub fn skipped_at(&self, source: &TopicPartition, g: Offset) -> Result<Option<Skipped>> {
        Ok(self.skipped_within(source, g, g + 1)?.into_iter().next())
    }

    /// All source partitions with runs.
    pub fn source_partitions(&self) -> Result<Vec<TopicPartition>> {
        self.partitions(FORWARD)
    }

    /// All target partitions with runs.
    pub fn target_partitions(&self) -> Result<Vec<TopicPartition>> {
        self.partitions(REVERSE)
    }

    /// The target partition a source partition is mirrored to.
    pub fn target_of(&self, source: &TopicPartition) -> Result<Option<TopicPartition>> {
        self.first_entry(FORWARD, source)?
            .map(|v| codec::decode::<ForwardEntry>(&v).map(|e| e.target))
            .transpose()
            .map_err(|e| self.codec(e))
    }

    /// The source partition a target partition is mirrored from.
    pub fn source_of(&self, target: &TopicPartition) -> Result<Option<TopicPartition>> {
        self.first_entry(REVERSE, target)?
            .map(|v| codec::decode::<ReverseEntry>(&v).map(|e| e.source))
            .transpose()
            .map_err(|e| self.codec(e))
    }

    fn first_entry(&self, cf: &str, tp: &TopicPartition) -> Result<Option<Vec<u8>>> {
        let pre = prefix(tp);
        let mut it = self.db.raw_iterator_cf(self.cf(cf)?);
        it.seek(&pre);
        Ok(match (it.key(), it.value()) {
            (Some(k), Some(v)) if k.starts_with(&pre) => Some(v.to_vec()),
            _ => None,
        })
    }

    fn partitions(&self, cf: &str) -> Result<Vec<TopicPartition>> {
        let mut it = self.db.raw_iterator_cf(self.cf(cf)?);
        it.seek_to_first();
        let mut out: Vec<TopicPartition> = Vec::new();
        while let Some(k) = it.key() {
            let tp = partition_of(k).ok_or_else(|| StateError::Corrupt {
                path: self.path.clone(),
                message: format!("a {cf} key of {} bytes names no topic-partition", k.len()),
            })?;
            if out.last() != Some(&tp) {
                out.push(tp.clone());
            }
            // Jump past this partition's entries.
            let mut next = prefix(&tp);
            next.extend_from_slice(&[0xff; 9]);
            it.seek(&next);
        }
        Ok(out)
    }

    fn meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get_cf(self.cf(META)?, key).map_err(|e| self.io(&e))
    }

    fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily> {
        self.db.cf_handle(name).ok_or_else(|| StateError::Corrupt {
            path: self.path.clone(),
            message: format!("column family {name} missing"),
        })
    }

    fn encode<T: Serialize>(&self, value: &T) -> Result<Vec<u8>> {
        codec::encode(value).map_err(|e| self.codec(e))
    }

    fn codec(&self, source: codec::CodecError) -> StateError {
        StateError::Codec { path: self.path.clone(), source }
    }

    fn io(&self, e: &rocksdb::Error) -> StateError {
        StateError::Io { path: self.path.clone(), message: e.to_string() }
    }
}

fn position_key(map_partition: i32) -> Vec<u8> {
    let mut key = POSITION_KEY.to_vec();
    key.extend_from_slice(&map_partition.to_be_bytes());
    key
}

fn open_error(path: &Path, e: &rocksdb::Error) -> StateError {
    let message = e.to_string();
    let lower = message.to_lowercase();
    if lower.contains("lock") && (lower.contains("temporarily unavailable") || lower.contains("no locks")) {
        StateError::Locked { path: path.to_path_buf() }
    } else if lower.contains("corrupt")
        || lower.contains("no such file")
        || lower.contains("invalid argument")
    {
        StateError::Corrupt { path: path.to_path_buf(), message }
    } else {
        StateError::Io { path: path.to_path_buf(), message }
    }
}
