//! The shards' clients, made from the process's start (see [`EarlyClients`]), and the three
//! decisions they wait for: which topic each shard's consumer asks about (a shard the listing
//! gives none makes no clients), whether the target answered (no client tries a cluster that
//! refused the run's first request: with wrong credentials, every try is a failed login), and
//! whether the producers may fence.
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::config::names::shard_of;
use crate::mirror::context::MirrorContext;
use crate::mirror::plan::SourceTopic;
use crate::mirror::shard::{EarlyClients, EarlyDecisions};

/// The shards' clients being made, and the decisions they wait for. Dropped undecided (a run
/// that ends at its start), it lets every client's thread end without making or fencing
/// anything.
pub(crate) struct EarlyStart {
    decisions: Arc<EarlyDecisions>,
    clients: HashMap<u32, EarlyClients>,
    shards: u32,
}

impl EarlyStart {
    /// Starts a thread per shard that makes its clients once the decisions allow. None with
    /// `--coordinate`, where the group decides which shards this process runs.
    pub(crate) fn spawn(ctx: &Arc<MirrorContext>) -> Self {
        let decisions = Arc::new(EarlyDecisions::default());
        let shards = ctx.settings.shards;
        let clients = match ctx.settings.coordinate {
            true => HashMap::new(),
            false => (0..shards)
                .filter_map(|shard| {
                    // Failing here only loses the head start: the shard makes its clients itself.
                    EarlyClients::spawn(ctx.clone(), shard, decisions.clone())
                        .ok()
                        .map(|early| (shard, early))
                })
                .collect(),
        };
        Self { decisions, clients, shards }
    }

    /// Names each shard's first source topic from the source's listing (None: it failed).
    pub(crate) fn decide_topics(&self, topics: Option<&[SourceTopic]>) {
        let mut first: BTreeMap<u32, String> = BTreeMap::new();
        if !self.clients.is_empty() {
            'topics: for topic in topics.unwrap_or_default() {
                for partition in 0..topic.partitions {
                    first
                        .entry(shard_of(&topic.name, partition, self.shards))
                        .or_insert_with(|| topic.name.clone());
                    if first.len() == self.shards as usize {
                        break 'topics;
                    }
                }
            }
        }
        self.decisions.topics.decide(Arc::new(first));
    }

    /// Whether the target answered the run's first request.
    pub(crate) fn decide_target_answered(&self, answered: bool) {
        self.decisions.target_answered.decide(answered);
    }

    /// Whether the producers may fence: the first decision stands.
    pub(crate) fn decide_fencing(&self, fence: bool) {
        self.decisions.fence.decide(fence);
    }

    /// The clients, for the shards to take. A shard that gets no routes drops its own: its
    /// thread made nothing, since the listing named no topic of it.
    pub(crate) fn take_clients(&mut self) -> HashMap<u32, EarlyClients> {
        std::mem::take(&mut self.clients)
    }
}

impl Drop for EarlyStart {
    fn drop(&mut self) {
        self.decisions.decide_nothing();
    }
}
