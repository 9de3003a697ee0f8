//! The shards' clients, made from the process's start (see [`EarlyClients`]), and the two
//! decisions they wait for: which topic each shard's consumer asks about, and whether the
//! producers may fence.
use std::collections::HashMap;
use std::sync::Arc;

use crate::mirror::context::MirrorContext;
use crate::mirror::plan::{routes_by_shard, SourceTopic};
use crate::mirror::shard::{EarlyClients, FenceGate, ShardTopics};

pub(crate) struct EarlyStart {
    gate: Arc<FenceGate>,
    topics: Arc<ShardTopics>,
    clients: HashMap<u32, EarlyClients>,
}

impl EarlyStart {
    /// Starts making every shard's clients. None with `--coordinate`, where the group decides
    /// which shards this process runs.
    pub(crate) fn spawn(ctx: &Arc<MirrorContext>) -> Self {
        let gate = Arc::new(FenceGate::default());
        let topics = Arc::new(ShardTopics::default());
        let clients = match ctx.settings.coordinate {
            true => HashMap::new(),
            false => (0..ctx.settings.shards)
                .filter_map(|shard| {
                    // Failing here only loses the head start: the shard makes its clients itself.
                    EarlyClients::spawn(ctx.clone(), shard, topics.clone(), gate.clone())
                        .ok()
                        .map(|early| (shard, early))
                })
                .collect(),
        };
        Self { gate, topics, clients }
    }

    /// Names each shard's first source topic from the source's listing (None: it failed, and
    /// the consumers connect on their first call).
    pub(crate) fn listed(&self, topics: Option<&[SourceTopic]>, shards: u32) {
        let first = topics
            .map(|topics| {
                routes_by_shard(topics, shards)
                    .into_iter()
                    .filter_map(|(shard, routes)| routes.first().map(|r| (shard, r.source.topic.clone())))
                    .collect()
            })
            .unwrap_or_default();
        self.topics.decide(Arc::new(first));
    }

    /// Whether the producers may fence: the first decision stands.
    pub(crate) fn decide_fencing(&self, fence: bool) {
        self.gate.decide(fence);
    }

    /// The clients, for the shards to take; shards that get none (no routes) drop theirs.
    pub(crate) fn take_clients(&mut self) -> HashMap<u32, EarlyClients> {
        std::mem::take(&mut self.clients)
    }
}

impl Drop for EarlyStart {
    /// A run that ends before deciding (an error at the start) lets the clients' threads end
    /// without fencing.
    fn drop(&mut self) {
        self.gate.decide(false);
        self.topics.decide(Arc::default());
    }
}
