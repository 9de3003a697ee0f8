//! One checkpoint cycle of a running mirror: record the source groups' positions on the
//! target and, with --sync-group-offsets, move idle target groups to the translated positions.
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::config::groups::GroupSelector;
use kmirror_state::{Checkpoint, GroupOffset, TopicPartition};
use rdkafka::ClientConfig;
use tracing::{debug, info, warn};

use crate::error::{Error, Result, Side};
use crate::kafka::groups::{commit_offsets_of_groups, committed_offsets_exact_of_groups};
use crate::translate::checkpoint::{compact_checkpoint_topic, take_checkpoints, write_checkpoints, Writer};
use crate::translate::translator::Translator;

pub(crate) struct GroupSync<'a> {
    pub(crate) source: &'a ClientConfig,
    pub(crate) target: &'a ClientConfig,
    pub(crate) groups: &'a GroupSelector,
    pub(crate) checkpoint_topic: &'a str,
    /// Set with --sync-group-offsets.
    pub(crate) translator: Option<&'a Translator>,
    /// Each group's positions as this run last wrote them, and when (see [`Self::unwritten`]).
    pub(crate) written: Mutex<HashMap<String, (Vec<GroupOffset>, Instant)>>,
    /// Whether the checkpoint topic has been made compacted, if an earlier version made it
    /// otherwise (see [`compact_checkpoint_topic`]): asked once a run.
    pub(crate) compacted: OnceLock<()>,
}

/// How often a group's unchanged positions are written again anyway.
const REWRITE_UNCHANGED: Duration = Duration::from_secs(300);

/// What one cycle did: the groups checkpointed, with when each was taken, and the first error
/// of a group left out (a group refused, unreadable, or whose checkpoint the target did not
/// store: the others were synced all the same).
pub(crate) struct Cycle {
    pub(crate) taken: Vec<(String, i64)>,
    pub(crate) failed: Option<Error>,
}

impl GroupSync<'_> {
    /// One cycle; an error only where no group could be synced.
    pub(crate) fn run_cycle(&self, partitions: &[TopicPartition]) -> Result<Cycle> {
        self.compacted.get_or_init(|| compact_checkpoint_topic(self.target, self.checkpoint_topic));
        let started = Instant::now();
        let (checkpoints, unread) = take_checkpoints(self.source, self.groups, partitions)?;
        let taken_ms = started.elapsed().as_millis() as u64;
        let changed = self.unwritten(&checkpoints);
        let mut not_stored = write_checkpoints(self.target, self.checkpoint_topic, &changed, Writer::Mirror)?;
        // Those not stored are written again next cycle, and are not said to be checkpointed.
        let stored: Vec<Checkpoint> =
            changed.into_iter().filter(|c| !not_stored.contains_key(&c.group)).collect();
        self.note_written(&stored);
        debug!(
            groups = checkpoints.len(),
            taken_ms,
            written_ms = started.elapsed().as_millis() as u64,
            "checkpoint cycle: groups read and written"
        );
        let taken: Vec<(String, i64)> = checkpoints
            .iter()
            .filter(|c| !not_stored.contains_key(&c.group))
            .map(|c| (c.group.clone(), c.taken_at_ms))
            .collect();
        // A group whose checkpoint the target did not take fails the cycle, once the others
        // are synced (a batch's last checkpoint so fails the run, naming why).
        let unstored = not_stored.pop_first().map(|(_, e)| e);
        if !taken.is_empty() {
            info!(groups = ?taken.iter().map(|(g, _)| g).collect::<Vec<_>>(), "groups checkpointed");
        }
        let Some(translator) = self.translator else {
            return Ok(Cycle { taken, failed: unstored.or(unread) });
        };
        let groups: Vec<&[GroupOffset]> = checkpoints.iter().map(|c| c.offsets.as_slice()).collect();
        let translations = translator.forward_all(&groups)?;
        let translated: Vec<(String, Vec<GroupOffset>)> = checkpoints
            .iter()
            .zip(translations)
            .map(|(c, ts)| (c.group.clone(), ts.into_iter().filter_map(|t| t.to).collect::<Vec<_>>()))
            .filter(|(_, offsets)| !offsets.is_empty())
            .collect();
        // A refusal is no passing fault: the other groups are synced, then it is the cycle's
        // error (a batch run's last cycle then fails, naming the ACL, instead of exiting 0).
        let mut refused = None;
        let mut note = |group: &str, e: Error| match e {
            Error::Group { group, message } => info!(%group, reason = %message, "skipped group offset sync"),
            e @ Error::Denied { .. } => {
                refused.get_or_insert(e);
            }
            e => warn!(%group, error = %e, "group offset sync failed; will retry"),
        };
        // Every group's target positions read, every moved group's members asked and commit
        // sent, side by side: a client per group and call made 100 groups take 13 s a cycle.
        let translated_ms = started.elapsed().as_millis() as u64;
        let mut moving = Vec::new();
        for ((group, _), forward) in translated.iter().zip(self.only_forward(&translated)?) {
            match forward {
                Ok(forward) if forward.is_empty() => {}
                Ok(forward) => moving.push((group.clone(), forward)),
                Err(e) => note(group, e),
            }
        }
        let read_ms = started.elapsed().as_millis() as u64;
        let outcomes = commit_offsets_of_groups(self.target, Side::Target, &moving)?;
        debug!(
            moving = moving.len(),
            translated_ms,
            read_ms,
            committed_ms = started.elapsed().as_millis() as u64,
            "checkpoint cycle: groups translated, read and moved on the target"
        );
        for ((group, offsets), outcome) in moving.iter().zip(outcomes) {
            match outcome {
                Ok(()) => info!(%group, partitions = offsets.len(), "synced group offsets to the target"),
                Err(e) => note(group, e),
            }
        }
        // A group left unread is the cycle's error too, once the others are synced.
        Ok(Cycle { taken, failed: refused.or(unstored).or(unread) })
    }

    /// The checkpoints whose positions differ from what this run last wrote for the group, or
    /// were written five minutes ago or more: a cycle every 10 s wrote every group again, and the topic
    /// (read whole by a failover) grew by that for ever.
    fn unwritten(&self, checkpoints: &[Checkpoint]) -> Vec<Checkpoint> {
        let written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        checkpoints
            .iter()
            .filter(|c| match written.get(&c.group) {
                Some((offsets, at)) => *offsets != c.offsets || at.elapsed() >= REWRITE_UNCHANGED,
                None => true,
            })
            .cloned()
            .collect()
    }

    /// Forgets what this process wrote: another process syncs the groups now, and what it
    /// writes may differ.
    pub(crate) fn forget_written(&self) {
        self.written.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn note_written(&self, checkpoints: &[Checkpoint]) {
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        for c in checkpoints {
            written.insert(c.group.clone(), (c.offsets.clone(), Instant::now()));
        }
    }

    /// Drops, for each group, positions at or behind what it already committed on the target:
    /// a consumer that read further there (e.g. after a cutover) must never be sent back to
    /// re-read. Each group's positions to commit or why they were not read, in order.
    fn only_forward(
        &self,
        translated: &[(String, Vec<GroupOffset>)],
    ) -> Result<Vec<Result<Vec<GroupOffset>>>> {
        let asked: Vec<(String, Vec<TopicPartition>)> = translated
            .iter()
            .map(|(group, offsets)| (group.clone(), offsets.iter().map(|t| t.partition.clone()).collect()))
            .collect();
        let current = committed_offsets_exact_of_groups(self.target, Side::Target, &asked)?;
        Ok(translated
            .iter()
            .zip(current)
            .map(|((group, offsets), current)| {
                let current: HashMap<TopicPartition, i64> =
                    current?.into_iter().map(|c| (c.partition, c.offset)).collect();
                let (forward, behind): (Vec<GroupOffset>, Vec<GroupOffset>) = offsets
                    .iter()
                    .cloned()
                    .partition(|t| current.get(&t.partition).is_none_or(|&c| t.offset > c));
                if !behind.is_empty() {
                    debug!(
                        group,
                        partitions = behind.len(),
                        "target group is already at or past the translated position there; left as it is"
                    );
                }
                Ok(forward)
            })
            .collect())
    }
}
