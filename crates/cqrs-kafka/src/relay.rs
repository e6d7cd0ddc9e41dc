//! [`KafkaRelay`]: publishes the event log to Kafka topics, exactly once for
//! `read_committed` consumers.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use cqrs_core::{EventSubscriber, Lease, Position, RecordedEvent};
use futures::StreamExt;
use rdkafka::ClientConfig;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tracing::Instrument;

use crate::error::KafkaError;
use crate::record::{headers_of, payload_of};

type Route = Arc<dyn Fn(&RecordedEvent) -> String + Send + Sync>;

/// How long a transaction's commit, abort or initialisation may take.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Publishes the event log, read through any [`EventSubscriber`] (the in-memory
/// store, `PgEventStore`, `PgCdcSource`), to Kafka.
///
/// * **Topics:** by default one per aggregate type, `{prefix}.{type}` where the
///   type is the stream id up to its first `-` (`goal-42` → `cqrs.goal`);
///   [`with_topic`](Self::with_topic) chooses otherwise. Missing topics are created
///   with the configured partitions and replication; an existing one that differs
///   is a [`KafkaError::TopicMismatch`].
/// * **Keys:** by default the stream id, so each stream stays in one partition, in
///   version order; [`with_key`](Self::with_key) chooses otherwise (MADA keys by
///   user).
/// * **Records:** the value is the event's JSON payload; the type, schema version,
///   event id, stream, version, position, time and metadata travel in headers
///   ([`crate::headers`]).
/// * **Exactly once, for `read_committed` consumers:** each batch of events and the
///   relay's checkpoint (the position of the batch's last event, in the compacted
///   topic `{prefix}.relay-checkpoints`) are committed in one Kafka transaction. A
///   relay killed at any point leaves an open transaction that the next one, with
///   the same name (the transactional id), aborts before it reads the checkpoint
///   and resumes after it: every event ends up on its topic once. A consumer reading
///   `read_uncommitted` may see the records of an aborted attempt too (same event
///   ids).
/// * **One relay at a time:** with [`with_lease`](Self::with_lease), a second
///   replica waits for the lease. Without one, a second relay of the same name still
///   cannot publish twice: starting, it fences the first (whose next commit fails).
pub struct KafkaRelay {
    config: ClientConfig,
    name: String,
    prefix: String,
    partitions: i32,
    replication: i32,
    batch_size: usize,
    topic: Route,
    key: Route,
    lease: Option<(Arc<dyn DynLease>, Duration)>,
}

impl std::fmt::Debug for KafkaRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaRelay")
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("partitions", &self.partitions)
            .field("replication", &self.replication)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

/// A [`Lease`] behind a pointer.
trait DynLease: Send + Sync {
    fn acquire<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> futures::future::BoxFuture<'a, Result<bool, cqrs_core::Error>>;
}

impl<L: Lease> DynLease for L {
    fn acquire<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> futures::future::BoxFuture<'a, Result<bool, cqrs_core::Error>> {
        Box::pin(Lease::acquire(self, name, holder, ttl))
    }
}

/// The aggregate type of a stream id: what comes before its first `-`.
fn aggregate_type(event: &RecordedEvent) -> &str {
    let id = event.stream_id.as_str();
    id.split_once('-').map_or(id, |(kind, _)| kind)
}

impl KafkaRelay {
    /// The default number of events per transaction.
    pub const DEFAULT_BATCH_SIZE: usize = 500;

    /// A relay named `name` (its transactional id and checkpoint key: keep it stable
    /// across restarts) publishing to the brokers `brokers` (`host:port,...`), with
    /// topics under the prefix `cqrs`, 6 partitions, replication 1.
    pub fn new(brokers: &str, name: &str) -> Self {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("socket.timeout.ms", "10000");
        let prefix = "cqrs".to_owned();
        let topic_prefix = prefix.clone();
        Self {
            config,
            name: name.to_owned(),
            prefix,
            partitions: 6,
            replication: 1,
            batch_size: Self::DEFAULT_BATCH_SIZE,
            topic: Arc::new(move |event| format!("{topic_prefix}.{}", aggregate_type(event))),
            key: Arc::new(|event| event.stream_id.to_string()),
            lease: None,
        }
    }

    /// Puts the default topics and the checkpoint topic under `prefix` instead of
    /// `cqrs`.
    #[must_use]
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        prefix.clone_into(&mut self.prefix);
        let topic_prefix = prefix.to_owned();
        self.topic = Arc::new(move |event| format!("{topic_prefix}.{}", aggregate_type(event)));
        self
    }

    /// Creates missing topics with `partitions` partitions and `replication`
    /// replicas (default 6 and 1).
    #[must_use]
    pub fn with_topic_layout(mut self, partitions: i32, replication: i32) -> Self {
        self.partitions = partitions.max(1);
        self.replication = replication.max(1);
        self
    }

    /// Chooses each event's topic.
    #[must_use]
    pub fn with_topic(
        mut self,
        topic: impl Fn(&RecordedEvent) -> String + Send + Sync + 'static,
    ) -> Self {
        self.topic = Arc::new(topic);
        self
    }

    /// Chooses each event's key (its partition). Events of one key keep their order.
    #[must_use]
    pub fn with_key(
        mut self,
        key: impl Fn(&RecordedEvent) -> String + Send + Sync + 'static,
    ) -> Self {
        self.key = Arc::new(key);
        self
    }

    /// Sets the most events per transaction (at least 1).
    #[must_use]
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Publishes only while holding `lease` (named after the relay), renewed before
    /// every transaction; `ttl` should exceed the slowest transaction.
    #[must_use]
    pub fn with_lease(mut self, lease: impl Lease + 'static, ttl: Duration) -> Self {
        self.lease = Some((Arc::new(lease), ttl));
        self
    }

    /// Sets a client property (for example `security.protocol`) on every client the
    /// relay makes.
    #[must_use]
    pub fn with_client_config(mut self, key: &str, value: &str) -> Self {
        self.config.set(key, value);
        self
    }

    /// The compacted topic holding the relay's checkpoint.
    pub fn checkpoint_topic(&self) -> String {
        format!("{}.relay-checkpoints", self.prefix)
    }

    /// The position of the last event this relay published (`Position::START` if
    /// none), as committed.
    ///
    /// # Errors
    /// [`KafkaError`] if the broker cannot be read.
    pub async fn checkpoint(&self) -> Result<Position, KafkaError> {
        let (config, topic, name) = (
            self.config.clone(),
            self.checkpoint_topic(),
            self.name.clone(),
        );
        blocking(move || crate::checkpoint::read(&config, &topic, &name)).await
    }

    /// Publishes from the checkpoint on until `source` ends or fails (a store's
    /// subscription does not end: stop the relay by dropping this future, which is
    /// safe at any point).
    ///
    /// # Errors
    /// The first [`KafkaError`]; the events of the transaction in progress are
    /// then not visible to `read_committed` consumers, and a relay started again
    /// resumes after the last committed batch.
    pub async fn run(&self, source: &impl EventSubscriber) -> Result<(), KafkaError> {
        let span = tracing::info_span!("relay", relay = %self.name);
        self.run_inner(source).instrument(span).await
    }

    async fn run_inner(&self, source: &impl EventSubscriber) -> Result<(), KafkaError> {
        // Unique per run: two relays of one name in one process are two holders.
        let holder = format!("{}-{}", self.name, uuid::Uuid::now_v7());
        self.lead(&holder).await?;
        let admin: AdminClient<DefaultClientContext> = self
            .config
            .create()
            .map_err(KafkaError::kafka("admin client"))?;
        let checkpoints = self.checkpoint_topic();
        crate::topics::ensure(
            &admin,
            &checkpoints,
            1,
            self.replication,
            &[("cleanup.policy", "compact")],
        )
        .await?;
        let producer: FutureProducer = self
            .config
            .clone()
            .set(
                "transactional.id",
                format!("{}.relay.{}", self.prefix, self.name),
            )
            .set("enable.idempotence", "true")
            // Bounded waits: a transaction the broker does not finish, or a record it
            // does not acknowledge, fails the batch instead of hanging.
            .set("transaction.timeout.ms", "20000")
            .set("message.timeout.ms", "15000")
            .create()
            .map_err(KafkaError::kafka("producer"))?;
        // Destroying a producer blocks (librdkafka joins its threads): when the relay
        // is dropped, the guard, declared first and so dropped last, does it on a
        // thread of its own, never on a runtime worker.
        let guard = DestroyOffThread(Some(Arc::new(producer)));
        let producer = guard.handle();
        {
            // Aborts what a previous relay of this name left open, and fences it.
            let producer = producer.clone();
            blocking(move || {
                producer
                    .init_transactions(TRANSACTION_TIMEOUT)
                    .map_err(KafkaError::kafka("init transactions"))
            })
            .await?;
        }
        let mut checkpoint = self.checkpoint().await?;
        tracing::info!(position = %checkpoint, "relay resuming after its checkpoint");
        let mut known: HashSet<String> = HashSet::new();
        let mut stream = source.subscribe(checkpoint, self.batch_size);
        // With a lease, renew it while idle too, a third of its time to live apart.
        let renew_every = self
            .lease
            .as_ref()
            .map_or(Duration::from_secs(3600), |(_, ttl)| *ttl / 3);
        let mut renewal = tokio::time::interval(renew_every);
        renewal.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next = tokio::select! {
                next = stream.next() => next,
                _ = renewal.tick() => {
                    self.lead(&holder).await?;
                    continue;
                }
            };
            let Some(batch) = next else { break };
            let batch = batch?;
            let batch: Vec<_> = batch
                .into_iter()
                .filter(|e| e.position > checkpoint)
                .collect();
            let Some(last) = batch.last().map(|e| e.position) else {
                continue;
            };
            self.lead(&holder).await?;
            for event in &batch {
                let topic = (self.topic)(event);
                if known.insert(topic.clone()) {
                    crate::topics::ensure(&admin, &topic, self.partitions, self.replication, &[])
                        .await?;
                }
            }
            self.publish(&producer, &checkpoints, &batch, last).await?;
            checkpoint = last;
            tracing::debug!(position = %last, events = batch.len(), "batch published");
        }
        Err(KafkaError::Source(cqrs_core::Error::Closed(
            "the relay's event source ended".into(),
        )))
    }

    /// Waits for the lease (at once without one).
    async fn lead(&self, holder: &str) -> Result<(), KafkaError> {
        let Some((lease, ttl)) = &self.lease else {
            return Ok(());
        };
        let mut waiting = false;
        loop {
            if lease.acquire(&self.name, holder, *ttl).await? {
                return Ok(());
            }
            if !waiting {
                tracing::info!("another relay holds the lease; waiting");
                waiting = true;
            }
            tokio::time::sleep(*ttl / 3).await;
        }
    }

    /// One transaction: the events, then the checkpoint.
    async fn publish(
        &self,
        producer: &Arc<FutureProducer>,
        checkpoints: &str,
        batch: &[RecordedEvent],
        last: Position,
    ) -> Result<(), KafkaError> {
        producer
            .begin_transaction()
            .map_err(KafkaError::kafka("begin transaction"))?;
        let sent = self.send_all(producer, checkpoints, batch, last).await;
        let producer = producer.clone();
        match sent {
            Ok(()) => {
                blocking(move || {
                    producer
                        .commit_transaction(TRANSACTION_TIMEOUT)
                        .map_err(KafkaError::kafka("commit transaction"))
                })
                .await
            }
            Err(error) => {
                let _ = blocking(move || {
                    producer
                        .abort_transaction(TRANSACTION_TIMEOUT)
                        .map_err(KafkaError::kafka("abort transaction"))
                })
                .await;
                Err(error)
            }
        }
    }

    async fn send_all(
        &self,
        producer: &FutureProducer,
        checkpoints: &str,
        batch: &[RecordedEvent],
        last: Position,
    ) -> Result<(), KafkaError> {
        let mut deliveries = Vec::with_capacity(batch.len() + 1);
        for event in batch {
            let (topic, key, payload) = ((self.topic)(event), (self.key)(event), payload_of(event));
            let record = FutureRecord::to(&topic)
                .key(&key)
                .payload(&payload)
                .headers(headers_of(event));
            let delivery = producer
                .send_result(record)
                .map_err(|(error, _)| KafkaError::kafka("produce")(error))?;
            deliveries.push(delivery);
        }
        let position = last.to_string();
        let record = FutureRecord::to(checkpoints)
            .key(&self.name)
            .payload(&position);
        deliveries.push(
            producer
                .send_result(record)
                .map_err(|(error, _)| KafkaError::kafka("produce checkpoint")(error))?,
        );
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((error, _))) => return Err(KafkaError::kafka("delivery")(error)),
                Err(_) => {
                    return Err(KafkaError::Task("a delivery was cancelled".into()));
                }
            }
        }
        Ok(())
    }
}

/// Drops the last handle of a producer on a thread of its own.
struct DestroyOffThread(Option<Arc<FutureProducer>>);

impl DestroyOffThread {
    fn handle(&self) -> Arc<FutureProducer> {
        match &self.0 {
            Some(producer) => producer.clone(),
            None => unreachable!("the producer is only taken on drop"),
        }
    }
}

impl Drop for DestroyOffThread {
    fn drop(&mut self) {
        if let Some(producer) = self.0.take() {
            let _ = std::thread::Builder::new()
                .name("cqrs-kafka-destroy".into())
                .spawn(move || drop(producer));
        }
    }
}

/// Runs a blocking Kafka call on the blocking pool.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, KafkaError> + Send + 'static,
) -> Result<T, KafkaError> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| KafkaError::Task(e.to_string()))?
}
