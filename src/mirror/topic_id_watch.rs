//! The topic IDs of the mirrored topics on both clusters, asked for on a thread of its own every
//! [`INTERVAL`]. Shards compare them with the IDs they resumed against without a round trip on
//! their own threads: two DescribeTopics there, made while a transaction was open, stretched
//! that transaction by 300-400 ms every 10 s on busy brokers, and the latency bench's p99 with it.
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use tracing::debug;

use crate::kafka::client::CreateForRole;
use crate::kafka::topic_descriptions::describe_topic_ids;

/// How often the clusters are asked: the window in which a target topic made again longer than
/// the mirror's copy takes committed records unseen. One request per cluster and process (the
/// shards asked every 10 s each before).
const INTERVAL: Duration = Duration::from_secs(5);
const TIMEOUT: Duration = Duration::from_secs(5);
/// How often the thread looks whether the run is over.
const TICK: Duration = Duration::from_millis(100);

/// One answer of one cluster, for the topics it answered about: `Some(id)`, or `None` for a
/// topic it says it does not have. A topic not in it (not asked for, or answered with another
/// error) says nothing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) ids: HashMap<String, Option<String>>,
}

impl Answer {
    /// `None` if the cluster said nothing of the topic; `Some(None)` if it said it has none.
    pub(crate) fn id_of(&self, topic: &str) -> Option<Option<&str>> {
        self.ids.get(topic).map(Option::as_deref)
    }
}

/// Both clusters' latest answers; `round` grows with each, so a shard checks each one once.
#[derive(Debug, Default, Clone)]
pub(crate) struct Round {
    pub(crate) round: u64,
    /// `None` where that cluster could not be asked this round.
    pub(crate) source: Option<Answer>,
    pub(crate) target: Option<Answer>,
}

/// Shared by the shards (through the run's context) and the thread that asks; the thread ends
/// once the shards' side is gone.
#[derive(Default)]
pub(crate) struct TopicIdWatch {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    wanted: Mutex<(BTreeSet<String>, BTreeSet<String>)>,
    latest: Mutex<Arc<Round>>,
}

impl TopicIdWatch {
    /// Adds topics to the ones asked about from the next round on.
    pub(crate) fn want<'a>(
        &self,
        source: impl IntoIterator<Item = &'a str>,
        target: impl IntoIterator<Item = &'a str>,
    ) {
        if let Ok(mut wanted) = self.shared.wanted.lock() {
            wanted.0.extend(source.into_iter().map(str::to_string));
            wanted.1.extend(target.into_iter().map(str::to_string));
        }
    }

    pub(crate) fn latest(&self) -> Arc<Round> {
        self.shared.latest.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Starts the thread that asks both clusters (clients made from these settings) every
    /// [`INTERVAL`] while this watch lives.
    /// Starts watching both clusters with clients of group `group` (never committed to).
    pub(crate) fn spawn(
        &self,
        source: ClientConfig,
        target: ClientConfig,
        group: String,
    ) -> std::io::Result<()> {
        let shared = Arc::downgrade(&self.shared);
        std::thread::Builder::new()
            .name("kmirror-topic-ids".into())
            .spawn(move || watch(shared, source, target, group))
            .map(|_| ())
    }
}

impl Shared {
    fn publish(&self, source: Option<Answer>, target: Option<Answer>) {
        if let Ok(mut latest) = self.latest.lock() {
            *latest = Arc::new(Round { round: latest.round + 1, source, target });
        }
    }

    fn wanted(&self) -> (BTreeSet<String>, BTreeSet<String>) {
        self.wanted.lock().map(|w| w.clone()).unwrap_or_default()
    }
}

fn watch(shared: Weak<Shared>, source: ClientConfig, target: ClientConfig, group: String) {
    // Made at the first round: a batch run over sooner never connects them.
    let mut made: Option<(BaseConsumer, BaseConsumer)> = None;
    let mut next = Instant::now() + INTERVAL;
    loop {
        std::thread::sleep(TICK);
        if shared.strong_count() == 0 {
            return;
        }
        if Instant::now() < next {
            continue;
        }
        next = Instant::now() + INTERVAL;
        if made.is_none() {
            made = clients(&source, &target, &group);
        }
        let Some((source_client, target_client)) = &made else { return };
        let Some(wanted) = shared.upgrade().map(|s| s.wanted()) else { return };
        let (source_topics, target_topics) = wanted;
        let answers = (ask(source_client, source_topics), ask(target_client, target_topics));
        match shared.upgrade() {
            Some(s) => s.publish(answers.0, answers.1),
            None => return,
        }
    }
}

fn ask(client: &BaseConsumer, topics: BTreeSet<String>) -> Option<Answer> {
    if topics.is_empty() {
        return None;
    }
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    // librdkafka's admin requests wait for the controller in a loop woken by every broker state
    // change, each turn asking for a connection again: against a cluster that is down that spins
    // two threads for the request's whole timeout, round after round (most of a core for as long
    // as an outage lasts). A metadata request waits out the reconnect back-off instead, so only a
    // cluster that answers one is asked for IDs.
    if let Err(e) = client.fetch_metadata(names.first().copied(), TIMEOUT) {
        debug!(error = %e, "cluster not answering; no topic IDs this round");
        return None;
    }
    match describe_topic_ids(client.client(), &names, TIMEOUT) {
        Ok(ids) => Some(Answer { ids }),
        Err(e) => {
            debug!(error = %e, "no topic IDs this round");
            None
        }
    }
}

fn clients(
    source: &ClientConfig,
    target: &ClientConfig,
    group: &str,
) -> Option<(BaseConsumer, BaseConsumer)> {
    let make = |config: &ClientConfig| -> Option<BaseConsumer> {
        config
            .clone()
            .set("group.id", group)
            .create_for_role()
            .map_err(|e| debug!(error = %e, "no topic-ID client"))
            .ok()
    };
    Some((make(source)?, make(target)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_not_answered_about_says_nothing_and_one_answered_as_missing_is_gone() {
        let answer = Answer {
            ids: [("orders".to_string(), Some("id-1".to_string())), ("gone".to_string(), None)].into(),
        };
        assert_eq!(answer.id_of("orders"), Some(Some("id-1")));
        assert_eq!(answer.id_of("gone"), Some(None));
        assert_eq!(answer.id_of("new"), None);
    }

    #[test]
    fn each_published_round_is_told_apart_and_wanted_topics_add_up() {
        let watch = TopicIdWatch::default();
        assert_eq!(watch.latest().round, 0);
        watch.want(["a"], ["dr.a"]);
        watch.want(["b"], []);
        let (source, target) = watch.shared.wanted();
        assert_eq!(source.into_iter().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(target.into_iter().collect::<Vec<_>>(), ["dr.a"]);
        watch.shared.publish(None, Some(Answer::default()));
        let first = watch.latest();
        watch.shared.publish(None, None);
        assert_eq!((first.round, watch.latest().round), (1, 2));
        assert!(first.target.is_some() && watch.latest().target.is_none());
    }
}
