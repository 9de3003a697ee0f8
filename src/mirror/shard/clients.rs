//! The shard's clients: the transactional producers (ready, older owners fenced), the shadow
//! client and the source consumer, made when the shard starts or ahead of it ([`EarlyClients`]).
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::Producer;
use rdkafka::ClientConfig;
use tracing::warn;

use super::txn_calls::TargetProducer;
use super::{CALL_TIMEOUT, MAX_BACKOFF};
use rdkafka::types::RDKafkaErrorCode;

use crate::error::{code_of, Error, Result, Side};
use crate::kafka::classify::{classify, Class};
use crate::kafka::client::CreateForRole;
use crate::mirror::context::MirrorContext;
use crate::mirror::decision::Decision;
use crate::mirror::delivery::DeliveryTracker;

/// A shard's clients, ready: its producers fenced every older owner, its shadow client and
/// source consumer are connected.
pub(super) struct ShardClients {
    pub(super) producers: Vec<Arc<TargetProducer>>,
    pub(super) shadow: BaseConsumer,
    pub(super) consumer: BaseConsumer,
}

impl ShardClients {
    /// Makes them side by side: fencing waits on the target's transaction coordinator, and the
    /// shadow client and the source consumer connect meanwhile. The shadow group is read only
    /// after fencing (a read before it could be overtaken by an earlier owner's last commit), but
    /// by then its client is connected: the read took 70-85 ms on a new client.
    /// `source_topic`: one of the topics the shard reads, which its consumer asks about once made.
    /// `gate`: the producers fence only once it says so (None: at once); `Ok(None)` when it says
    /// they must not.
    pub(super) fn make(
        ctx: &MirrorContext,
        shard: u32,
        source_topic: Option<&str>,
        gate: Option<&FenceGate>,
    ) -> Result<Option<Self>> {
        let (producers, shadow, consumer) = std::thread::scope(|scope| {
            let shadow = scope.spawn(|| connected(shadow_client(ctx, shard), &ctx.settings.map_topic()));
            let consumer = scope.spawn(|| match source_topic {
                Some(topic) => connected(source_consumer(ctx), topic),
                None => source_consumer(ctx),
            });
            let producers = transactional_producers(ctx, shard, gate);
            let joined = |made: std::thread::Result<Result<BaseConsumer>>| {
                made.unwrap_or_else(|_| {
                    Err(Error::Shard { shard, message: "making a client panicked".into() })
                })
            };
            (producers, joined(shadow.join()), joined(consumer.join()))
        });
        let Some(producers) = producers? else { return Ok(None) };
        Ok(Some(Self { producers, shadow: shadow?, consumer: consumer? }))
    }

    /// Asks the target about the map topic again through every target client, side by side.
    /// Clients made before the run made the map topic learned it was missing, and librdkafka
    /// looks again only on its own back-off: a shard's first look at its map partition took 196
    /// ms instead of 3-19.
    fn relearn(&self, topic: &str) {
        std::thread::scope(|scope| {
            scope.spawn(|| self.shadow.fetch_metadata(Some(topic), CALL_TIMEOUT));
            for producer in &self.producers {
                scope.spawn(move || producer.client().fetch_metadata(Some(topic), CALL_TIMEOUT));
            }
        });
    }
}

/// A shard's clients being made on a thread of their own from the process's start, while the
/// run lists the source, reads where the mirror stands and prepares the target (its own topics,
/// the mirrored topics): on a first run that takes 0.2-0.3 s, on a later run 50-70 ms, and
/// making the clients and fencing as long, and neither needs the other. Nothing is made before
/// the source's listing names a topic of the shard and the target has answered the run's first
/// request; the producers then connect at once but fence only when [`EarlyDecisions::fence`]
/// says so (not for a batch with nothing to do, nor for a mirror whose shard count differs from
/// the one the target records): fencing ends an older owner's open transaction.
pub(crate) struct EarlyClients(JoinHandle<Result<Option<ShardClients>>>);

impl EarlyClients {
    /// Starts making shard `shard`'s clients once `decisions` allow.
    pub(crate) fn spawn(ctx: Arc<MirrorContext>, shard: u32, decisions: Arc<EarlyDecisions>) -> Result<Self> {
        std::thread::Builder::new()
            .name(format!("kmirror-start-{shard}"))
            .spawn(move || {
                let Some(topic) = decisions.topics.wait().get(&shard).cloned() else { return Ok(None) };
                if !decisions.target_answered.wait() {
                    return Ok(None);
                }
                ShardClients::make(&ctx, shard, Some(&topic), Some(&decisions.fence))
            })
            .map(Self)
            .map_err(|cause| Error::Thread { what: format!("starting shard {shard}"), cause })
    }

    /// The clients, once made; None if the gate said not to fence. `made_map`: the map topic,
    /// if the run made it meanwhile: the clients are told it is there now.
    pub(super) fn join(self, shard: u32, made_map: Option<&str>) -> Result<Option<ShardClients>> {
        let clients = self.0.join().unwrap_or_else(|_| {
            Err(Error::Shard { shard, message: "making the shard's clients panicked".into() })
        })?;
        if let (Some(clients), Some(map_topic)) = (&clients, made_map) {
            clients.relearn(map_topic);
        }
        Ok(clients)
    }
}

/// Whether clients made early may fence: decided once by the run, waited for by every producer.
pub(crate) type FenceGate = Decision<bool>;

/// What the clients made early wait for (see [`EarlyClients`]).
#[derive(Default)]
pub(crate) struct EarlyDecisions {
    /// One source topic of each shard (shard -> topic), from the source's listing: the shard's
    /// consumer connects by asking about it; a shard missing from it makes no clients.
    pub(crate) topics: Decision<Arc<BTreeMap<u32, String>>>,
    /// Whether the target answered the run's first request.
    pub(crate) target_answered: Decision<bool>,
    /// Whether the producers may fence.
    pub(crate) fence: FenceGate,
}

impl EarlyDecisions {
    /// Settles every decision not made yet the way that makes and fences nothing.
    pub(crate) fn decide_nothing(&self) {
        self.topics.decide(Arc::default());
        self.target_answered.decide(false);
        self.fence.decide(false);
    }
}

/// Repeats a startup call while it fails retriably, logging every few seconds, until the
/// mirror is told to stop.
fn retry_until_done(
    ctx: &MirrorContext,
    what: &str,
    call: impl Fn() -> rdkafka::error::KafkaResult<()>,
) -> Result<()> {
    let mut backoff = Duration::from_millis(100);
    let mut last_log = Instant::now();
    loop {
        match call() {
            Ok(()) => return Ok(()),
            Err(e) => {
                if classify(&e) != Class::Retry || ctx.stop.load(Ordering::Relaxed) {
                    return Err(Error::from_kafka(Side::Target, what, e));
                }
                if last_log.elapsed() >= Duration::from_secs(3) {
                    warn!(call = what, error = %e, "retrying");
                    last_log = Instant::now();
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// The shard's transactional producers, ready, made side by side (each waits on the target's
/// transaction coordinator). Both are made even with --serial-commits: the second one's
/// `init_transactions` also fences a producer of that id left by an earlier, overlapping run.
fn transactional_producers(
    ctx: &MirrorContext,
    shard: u32,
    gate: Option<&FenceGate>,
) -> Result<Option<Vec<Arc<TargetProducer>>>> {
    let slots = ctx.settings.transactional_ids(shard).len();
    let made: Vec<Result<Option<TargetProducer>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..slots)
            .map(|slot| scope.spawn(move || transactional_producer_after(ctx, shard, slot, gate, None)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::Shard { shard, message: "making a transactional producer panicked".into() })
                })
            })
            .collect()
    });
    let mut producers = Vec::with_capacity(slots);
    for producer in made {
        let Some(producer) = producer? else { return Ok(None) };
        producers.push(Arc::new(producer));
    }
    if !ctx.settings.overlapping_commits {
        producers.truncate(1);
    }
    Ok(Some(producers))
}

/// The shard's transactional producer `slot`, ready: `init_transactions` fences every older
/// producer of the same id and aborts whatever transaction it left open.
/// `record_limit`: its `message.max.bytes`, where the shard has raised it for a larger record
/// (None: the configured one).
pub(super) fn transactional_producer(
    ctx: &MirrorContext,
    shard: u32,
    slot: usize,
    record_limit: Option<u64>,
) -> Result<TargetProducer> {
    transactional_producer_after(ctx, shard, slot, None, record_limit)?
        .ok_or_else(|| Error::Internal(format!("shard {shard}: a producer was not fenced")))
}

/// As [`transactional_producer`], fencing once `gate` says so (None: at once); `Ok(None)` when
/// it says not to.
fn transactional_producer_after(
    ctx: &MirrorContext,
    shard: u32,
    slot: usize,
    gate: Option<&FenceGate>,
    record_limit: Option<u64>,
) -> Result<Option<TargetProducer>> {
    let id = ctx.settings.transactional_ids(shard).swap_remove(slot);
    let mut config = producer_config(ctx);
    if let Some(limit) = record_limit {
        config.set("message.max.bytes", limit.to_string());
    }
    let producer: TargetProducer = config
        .set("transactional.id", id)
        .set("enable.idempotence", "true")
        .set("transaction.timeout.ms", ctx.settings.transaction_timeout().as_millis().to_string())
        .create_for_role_with_context(DeliveryTracker::default())
        .map_err(Error::kafka(Side::Target, "creating the transactional producer"))?;
    connect_before_fencing(&producer, &ctx.settings.map_topic());
    if gate.is_some_and(|gate| !gate.wait()) {
        return Ok(None);
    }
    retry_until_done(ctx, &format!("shard {shard}: init_transactions on the target"), || {
        producer.init_transactions(CALL_TIMEOUT)
    })
    .map_err(|e| timeout_refused(ctx, e))?;
    Ok(Some(producer))
}

/// The target's brokers refuse a transaction timeout above their `transaction.max.timeout.ms`,
/// in words that name neither the value asked nor the setting it came from: said here, with
/// the fix (the timeout is the user's setting, or kmirror's from `--transaction-max-ms`).
fn timeout_refused(ctx: &MirrorContext, e: Error) -> Error {
    let Error::Kafka { cause, .. } = &e else { return e };
    if code_of(cause) != Some(RDKafkaErrorCode::InvalidTransactionTimeout) {
        return e;
    }
    let ms = ctx.settings.transaction_timeout().as_millis();
    let (asked, fix) = match ctx.settings.transaction_timeout_set() {
        Some(_) => {
            (format!("target.transaction.timeout.ms {ms}"), "give a smaller target.transaction.timeout.ms")
        }
        None => (
            format!("the transaction timeout {ms} ms (--transaction-max-ms plus 30 s, at most 15 min)"),
            "give a smaller --transaction-max-ms",
        ),
    };
    Error::ClientConfig {
        side: Side::Target,
        message: format!(
            "{asked} is more than the target's brokers allow (their transaction.max.timeout.ms, 15 min by default): {fix}, or raise transaction.max.timeout.ms on the target's brokers"
        ),
    }
}

/// `init_transactions` asks for the transaction coordinator through any broker whose
/// connection is up; with none up at that moment librdkafka asks again only on a 500 ms timer.
/// A new client's first metadata answer comes over its bootstrap connection, which librdkafka
/// then drops for the brokers it names: an ask right after it found nothing up, and a
/// quarter of the shards' producers waited out the timer on every start (one shard or two
/// 500-600 ms behind the others in most samples of the phase bench). A second metadata request
/// waits for a named broker's connection, which the ask then finds up (32 of 32 producers
/// under 25 ms in four samples). Failing, it only loses the shortcut.
fn connect_before_fencing(producer: &TargetProducer, topic: &str) {
    for _ in 0..2 {
        if producer.client().fetch_metadata(Some(topic), CALL_TIMEOUT).is_err() {
            return;
        }
    }
}

/// The shard's consumer of the source, assigned nothing yet.
pub(super) fn source_consumer(ctx: &MirrorContext) -> Result<BaseConsumer> {
    source_config(ctx).create_for_role().map_err(Error::kafka(Side::Source, "creating the source consumer"))
}

/// The client that reads the shard's shadow group and commits to it through the producers.
pub(super) fn shadow_client(ctx: &MirrorContext, shard: u32) -> Result<BaseConsumer> {
    target_config(ctx)
        .set("group.id", ctx.settings.shadow_group(shard))
        .set("enable.auto.commit", "false")
        // Makes OffsetFetch wait for pending transactional commits (require_stable).
        .set("isolation.level", "read_committed")
        .create_for_role()
        .map_err(Error::kafka(Side::Target, "creating the shadow-group client"))
}

/// `client` once it has asked its cluster about `topic` (connected, and for a client of a group,
/// looking up its coordinator); a cluster that does not answer yet is left to the first call
/// that needs it, which says why.
fn connected(client: Result<BaseConsumer>, topic: &str) -> Result<BaseConsumer> {
    let client = client?;
    let _ = client.fetch_metadata(Some(topic), CALL_TIMEOUT);
    Ok(client)
}

fn source_config(ctx: &MirrorContext) -> ClientConfig {
    let mut config = ctx.settings.source.client_config();
    config
        .set("bootstrap.servers", &ctx.settings.source_bootstrap)
        // librdkafka wants a group for assign(); nothing is ever committed to it on the source.
        .set("group.id", crate::config::names::source_reader_group(&ctx.settings.name))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // Never jump silently: a position out of range is an error, checked and named.
        .set("auto.offset.reset", "error")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "false");
    // Prefetch bounds (each only where the user set nothing). librdkafka's defaults prefetch up
    // to 100 000 records per consumer and, once over a bound, wait a whole second before the
    // next fetch: measured with a 1 M-record backlog, the defaults peaked at 218-247 MB RSS;
    // 5 000 records with a 10 ms fetch back-off peaked at 148 MB at the same speed, while 5 000
    // with the 1 s back-off ran 2.3 times slower.
    for (key, value) in [
        ("fetch.wait.max.ms", "100"),
        ("queued.min.messages", "5000"),
        ("queued.max.messages.kbytes", "16384"),
        ("fetch.queue.backoff.ms", "10"),
    ] {
        if config.get(key).is_none() {
            config.set(key, value);
        }
    }
    config
}

/// How long a shard's producer lets a partition's records gather before it sends them, where
/// the user set nothing (librdkafka's default is 5 ms). An idempotent producer of librdkafka
/// 2.12 has one request in flight per partition (its limit of five counts records, not
/// requests), and while that request is unanswered a batch that is due makes the producer's
/// thread poll without sleeping until the answer comes: with 5 ms batches it polled some
/// 250 000-490 000 times in a 300 000-record batch run, on the cores the brokers needed. A
/// commit's flush sends what has gathered at once (`kafka::linger_skip`), so no record waits
/// past its transaction: 1 000-record transactions, which gather for some 10 ms, copied as much
/// with 100 ms as with 5 (143 000-153 000 records/s against 147 000-148 000).
const PRODUCER_LINGER_MS: &str = "100";

fn producer_config(ctx: &MirrorContext) -> ClientConfig {
    with_producer_defaults(target_config(ctx))
}

/// `config` with the shard producer's batching default where the user set none (under either of
/// librdkafka's names for it).
fn with_producer_defaults(mut config: ClientConfig) -> ClientConfig {
    if config.get("linger.ms").is_none() && config.get("queue.buffering.max.ms").is_none() {
        config.set("linger.ms", PRODUCER_LINGER_MS);
    }
    if config.get("message.max.bytes").is_none() {
        config.set("message.max.bytes", PRODUCER_MESSAGE_MAX_BYTES.to_string());
    }
    config
}

/// The largest record a shard's producer sends, where the user set nothing: what Kafka's brokers
/// accept by default (their `message.max.bytes`, 1 048 588). librdkafka's own default, 1 000 000,
/// is below it, and a record between the two was read but never written. Not more: librdkafka
/// sizes each produce request's buffer by what is queued for the partition up to this bound,
/// and at 100 000 000 the 1 M-record guard copy peaked at 186-200 MB RSS against 157-159 (two
/// runs each). A larger record raises it for its shard (`record_limit`).
pub(super) const PRODUCER_MESSAGE_MAX_BYTES: u64 = 1_048_588;

pub(crate) fn target_config(ctx: &MirrorContext) -> ClientConfig {
    let mut config = ctx.settings.target.client_config();
    config.set("bootstrap.servers", &ctx.settings.target_bootstrap);
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producers_gather_records_unless_the_user_chose() {
        let config = with_producer_defaults(ClientConfig::new());
        assert_eq!(config.get("linger.ms"), Some(PRODUCER_LINGER_MS));
        assert_eq!(config.get("message.max.bytes"), Some(PRODUCER_MESSAGE_MAX_BYTES.to_string().as_str()));
        let mut smaller = ClientConfig::new();
        smaller.set("message.max.bytes", "2000000");
        assert_eq!(with_producer_defaults(smaller).get("message.max.bytes"), Some("2000000"));
        let mut chosen = ClientConfig::new();
        chosen.set("linger.ms", "7");
        assert_eq!(with_producer_defaults(chosen).get("linger.ms"), Some("7"));
        let mut by_old_name = ClientConfig::new();
        by_old_name.set("queue.buffering.max.ms", "3");
        let config = with_producer_defaults(by_old_name);
        assert_eq!(config.get("linger.ms"), None);
        assert_eq!(config.get("queue.buffering.max.ms"), Some("3"));
    }
}
