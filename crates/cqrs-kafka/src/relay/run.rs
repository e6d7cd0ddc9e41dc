//! Running the relay: the transaction loop, the lease, and the producer's lifetime.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use cqrs_core::{Backoff, EventSubscriber, RecordedEvent};
use futures::StreamExt;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tracing::Instrument;

use super::KafkaRelay;
use crate::checkpoint::Checkpoint;
use crate::client::{Owned, blocking};
use crate::error::KafkaError;
use crate::record::{headers_of, payload_of, watermark_headers};

type Delivery = rdkafka::producer::DeliveryFuture;

/// Sends the checkpoint record.
fn send_checkpoint(
    producer: &FutureProducer,
    checkpoints: &str,
    name: &str,
    next: &Checkpoint,
) -> Result<Delivery, KafkaError> {
    let value = next.to_bytes();
    let record = FutureRecord::to(checkpoints).key(name).payload(&value);
    producer
        .send_result(record)
        .map_err(|(error, _)| KafkaError::kafka("produce checkpoint")(error))
}

/// Waits for every delivery; the first failure is the error.
async fn await_all(deliveries: Vec<Delivery>) -> Result<(), KafkaError> {
    for delivery in deliveries {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((error, _))) => return Err(KafkaError::kafka("delivery")(error)),
            Err(_) => return Err(KafkaError::Task("a delivery was cancelled".into())),
        }
    }
    Ok(())
}

/// The first wait after a transient failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A run this long counts as healthy: the next failure waits the first backoff.
const HEALTHY: Duration = Duration::from_secs(60);

/// How long a transaction's commit, abort or initialisation may take.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);

impl KafkaRelay {
    /// Publishes from the checkpoint on until stopped (a store's subscription does
    /// not end: stop the relay by dropping this future, which is safe at any point).
    ///
    /// A transient failure (the broker unreachable or restarting, the event store's
    /// backend failing: [`KafkaError::is_transient`]) aborts the transaction in
    /// progress, and the relay starts again from its checkpoint after a backoff
    /// ([`Backoff`](cqrs_core::Backoff): 100 ms doubling to 30 s, each wait between
    /// half and all of that; back to 100 ms after a minute of health), logged at warn
    /// level.
    ///
    /// # Errors
    /// The first error that is not transient: a topic that does not match, an
    /// unreadable checkpoint, the source ending, or this relay fenced by another of
    /// the same name. The events of the transaction in progress are then not visible
    /// to `read_committed` consumers, and a relay started again resumes after the
    /// last committed batch.
    pub async fn run(&self, source: &impl EventSubscriber) -> Result<(), KafkaError> {
        let span = tracing::info_span!("relay", relay = %self.name);
        // Unique per run (two relays of one name in one process are two holders), kept
        // across restarts after a failure, so that the relay keeps its own lease.
        let holder = format!("{}-{}", self.name, uuid::Uuid::now_v7());
        let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
        loop {
            let started = std::time::Instant::now();
            let attempt = self.run_inner(source, &holder).instrument(span.clone());
            let error = match attempt.await {
                Ok(()) => return Ok(()),
                Err(error) if error.is_transient() => error,
                Err(error) => return Err(error),
            };
            if started.elapsed() > HEALTHY {
                backoff.reset();
            }
            let wait = backoff.fail();
            span.in_scope(|| {
                tracing::warn!(%error, ?wait, "relay failed; starting again from its checkpoint");
            });
            tokio::time::sleep(wait).await;
        }
    }

    async fn run_inner(
        &self,
        source: &impl EventSubscriber,
        holder: &str,
    ) -> Result<(), KafkaError> {
        self.lead(holder).await?;
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
        let mut config = self.config.clone();
        if self.transactions {
            config.set(
                "transactional.id",
                format!("{}.relay.{}", self.prefix, self.name),
            );
        }
        let producer: FutureProducer = config
            .set("enable.idempotence", "true")
            // Bounded waits: a transaction the broker does not finish, or a record it
            // does not acknowledge, fails the batch instead of hanging.
            .set("transaction.timeout.ms", "20000")
            .set("message.timeout.ms", "15000")
            // A batch is produced at once and then committed: waiting for more records
            // to fill a request only adds latency.
            .set("linger.ms", "0")
            // A transaction that starts while the previous one's markers are still
            // being written is refused (CONCURRENT_TRANSACTIONS) and retried after
            // this backoff: librdkafka's 100 ms default shows in the latency's tail.
            .set("retry.backoff.ms", "5")
            .create()
            .map_err(KafkaError::kafka("producer"))?;
        // Destroying a producer blocks (librdkafka joins its threads): when the relay
        // is dropped, the guard, declared first and so dropped last, does it on a
        // thread of its own, never on a runtime worker.
        let guard = Owned::new(producer);
        let producer = guard.handle();
        if self.transactions {
            // Aborts what a previous relay of this name left open, and fences it.
            let producer = producer.clone();
            blocking(move || {
                producer
                    .init_transactions(TRANSACTION_TIMEOUT)
                    .map_err(KafkaError::kafka("init transactions"))
            })
            .await?;
        }
        let mut checkpoint = {
            let (config, topic, name) =
                (self.config.clone(), checkpoints.clone(), self.name.clone());
            blocking(move || crate::checkpoint::read(&config, &topic, &name)).await?
        };
        tracing::info!(position = %checkpoint.position, "relay resuming after its checkpoint");
        // Topics published to before: still watermarked, so checked again.
        let mut known: HashSet<String> = HashSet::new();
        for topic in &checkpoint.topics {
            crate::topics::ensure(&admin, topic, self.partitions, self.replication, &[]).await?;
            known.insert(topic.clone());
        }
        let mut stream = source.subscribe(checkpoint.position, self.batch_size);
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
                    self.lead(holder).await?;
                    continue;
                }
            };
            let Some(batch) = next else { break };
            let batch = batch?;
            let batch: Vec<_> = batch
                .into_iter()
                .filter(|e| e.position > checkpoint.position)
                .collect();
            let Some(last) = batch.last().map(|e| e.position) else {
                continue;
            };
            self.lead(holder).await?;
            let topics: Vec<String> = batch.iter().map(|event| (self.topic)(event)).collect();
            let mut next = Checkpoint {
                position: last,
                topics: checkpoint.topics.clone(),
            };
            for topic in &topics {
                if !known.contains(topic) {
                    crate::topics::ensure(&admin, topic, self.partitions, self.replication, &[])
                        .await?;
                    known.insert(topic.clone());
                    next.topics.push(topic.clone());
                }
            }
            let started = std::time::Instant::now();
            self.publish(&producer, &checkpoints, &batch, &topics, &next)
                .await?;
            checkpoint = next;
            tracing::debug!(
                position = %last,
                events = batch.len(),
                transaction_ms = started.elapsed().as_secs_f64() * 1000.0,
                "batch published"
            );
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

    /// One transaction: the events, the watermarks, then the checkpoint.
    async fn publish(
        &self,
        producer: &Arc<FutureProducer>,
        checkpoints: &str,
        batch: &[RecordedEvent],
        topics: &[String],
        next: &Checkpoint,
    ) -> Result<(), KafkaError> {
        if !self.transactions {
            // At least once: the events and watermarks acknowledged, then the
            // checkpoint. A relay stopped in between sends them again.
            self.send_all(producer, batch, topics, next).await?;
            return await_all(vec![send_checkpoint(
                producer,
                checkpoints,
                &self.name,
                next,
            )?])
            .await;
        }
        producer
            .begin_transaction()
            .map_err(KafkaError::kafka("begin transaction"))?;
        let sent = match send_checkpoint(producer, checkpoints, &self.name, next) {
            // In one transaction the order does not matter: all or nothing is seen.
            Ok(checkpoint) => match self.send_all(producer, batch, topics, next).await {
                Ok(()) => await_all(vec![checkpoint]).await,
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        };
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

    /// Sends the events and the watermarks and waits for the broker's
    /// acknowledgements.
    async fn send_all(
        &self,
        producer: &FutureProducer,
        batch: &[RecordedEvent],
        topics: &[String],
        next: &Checkpoint,
    ) -> Result<(), KafkaError> {
        let watermarks = next.topics.len() * usize::try_from(self.partitions).unwrap_or(0);
        let mut deliveries = Vec::with_capacity(batch.len() + watermarks + 1);
        for (event, topic) in batch.iter().zip(topics) {
            let (key, payload) = ((self.key)(event), payload_of(event));
            let record = FutureRecord::to(topic)
                .key(&key)
                .payload(&payload)
                .headers(headers_of(event));
            let delivery = producer
                .send_result(record)
                .map_err(|(error, _)| KafkaError::kafka("produce")(error))?;
            deliveries.push(delivery);
        }
        // After the events: a partition's watermark follows its events of the batch.
        for topic in &next.topics {
            for partition in 0..self.partitions {
                let record = FutureRecord::<(), ()>::to(topic)
                    .partition(partition)
                    .headers(watermark_headers(next.position));
                let delivery = producer
                    .send_result(record)
                    .map_err(|(error, _)| KafkaError::kafka("produce watermark")(error))?;
                deliveries.push(delivery);
            }
        }
        await_all(deliveries).await
    }
}
