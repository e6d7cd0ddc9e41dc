//! One subscription: a consumer assigned every partition of the topics, the merge,
//! the offset commits and the dead letters.

use std::time::{Duration, Instant};

use cqrs_core::{Error, Position, RecordedEvent};
use futures::FutureExt;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError as ClientError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::lag::LagContext;
use super::merge::{Lane, Merge};
use super::{Format, KafkaSubscriber};
use crate::client::{Owned, blocking};
use crate::dead_letters::KafkaDeadLetters;
use crate::error::KafkaError;
use crate::record::{Record, decode, headers};

/// How long a metadata or offsets request may take.
const REQUEST: Duration = Duration::from_secs(10);
/// While events are held for a partition that has said nothing, how often it is
/// asked again whether it is at its end.
const RECHECK: Duration = Duration::from_millis(50);
/// While a topic does not exist, how often it is looked for when nothing else
/// happens.
const LOOK_FOR_TOPICS: Duration = Duration::from_secs(1);
/// The most records taken from the client's queue before trying to release.
const DRAIN: usize = 4096;

type LagConsumer = StreamConsumer<LagContext>;
type Consumed = Owned<LagConsumer>;

/// A subscription, opened on its first batch.
pub(super) struct Reader {
    settings: KafkaSubscriber,
    after: Position,
    batch_size: usize,
    live: Option<Live>,
}

struct Live {
    format: Format,
    consumer: Consumed,
    /// A second client for metadata and partition ends: asked on the consumer's own
    /// connection, they would wait behind its long-polling fetches.
    probe: Owned<BaseConsumer>,
    merge: Merge,
    /// Topics that did not exist when last looked at.
    missing: Vec<String>,
    /// A batch was handed out: when the next is asked for, it has been applied.
    delivered: bool,
    last_check: Option<Instant>,
    looked_for_topics: Option<Instant>,
    dead_letters: Option<KafkaDeadLetters>,
}

fn backend(context: &'static str) -> impl FnOnce(KafkaError) -> Error {
    move |error| Error::backend(context, error)
}

impl Reader {
    pub(super) fn new(settings: KafkaSubscriber, after: Position, batch_size: usize) -> Self {
        Self {
            settings,
            after,
            batch_size,
            live: None,
        }
    }

    /// The next batch, in position order.
    pub(super) async fn next_batch(&mut self) -> Result<Vec<RecordedEvent>, Error> {
        if self.live.is_none() {
            let live = open(&self.settings, self.after)
                .await
                .map_err(backend("opening the Kafka subscription"))?;
            self.live = Some(live);
        }
        let Some(live) = self.live.as_mut() else {
            unreachable!("opened above")
        };
        live.next_batch(&self.settings, self.batch_size).await
    }
}

/// Creates the consumer and assigns it every partition of the topics, each from its
/// committed offset (from its first record when rebuilding or when none is
/// committed).
async fn open(settings: &KafkaSubscriber, after: Position) -> Result<Live, KafkaError> {
    let consumer: LagConsumer = settings
        .config
        .clone()
        .set("statistics.interval.ms", super::lag::INTERVAL_MS)
        .set("group.id", &settings.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("allow.auto.create.topics", "false")
        // A fetch waits at most this long for records: it bounds how late a
        // transaction's commit is seen.
        .set("fetch.wait.max.ms", "5")
        .create_with_context(LagContext(settings.lag.clone()))
        .map_err(KafkaError::kafka("consumer"))?;
    let probe: BaseConsumer = settings
        .config
        .clone()
        .set("allow.auto.create.topics", "false")
        .create()
        .map_err(KafkaError::kafka("probe client"))?;
    let consumer = Owned::new(consumer);
    let probe = Owned::new(probe);
    let handle = consumer.handle();
    let asker = probe.handle();
    let topics = settings.topics.clone();
    let format = settings.format;
    let (lanes, missing) = blocking(move || {
        let mut lanes = Vec::new();
        let mut missing = Vec::new();
        for topic in &topics {
            match partitions(&asker, topic)? {
                Some(count) if format == Format::Debezium && count != 1 => {
                    return Err(KafkaError::TopicMismatch {
                        topic: topic.clone(),
                        expected: "1 partition (Debezium's commit order)".into(),
                        actual: format!("{count} partitions"),
                    });
                }
                Some(count) => lanes.extend((0..count).map(|p| (topic.clone(), p))),
                None => missing.push(topic.clone()),
            }
        }
        let starts = start_offsets(&handle, &asker, &lanes, after)?;
        let mut assignment = TopicPartitionList::new();
        for ((topic, partition), start) in lanes.iter().zip(&starts) {
            assignment
                .add_partition_offset(topic, *partition, Offset::Offset(*start))
                .map_err(KafkaError::kafka("assignment"))?;
        }
        handle
            .assign(&assignment)
            .map_err(KafkaError::kafka("assignment"))?;
        Ok((lanes.into_iter().zip(starts).collect::<Vec<_>>(), missing))
    })
    .await?;
    let mut merge = Merge::new(after, settings.format == Format::Relay);
    for (lane, start) in lanes {
        merge.add_lane(lane, start);
    }
    if !missing.is_empty() {
        tracing::info!(
            ?missing,
            "topics not created yet: read once the relay creates them"
        );
    }
    tracing::debug!(group = %settings.group, %after, "Kafka subscription opened");
    Ok(Live {
        format: settings.format,
        consumer,
        probe,
        merge,
        missing,
        delivered: false,
        last_check: None,
        looked_for_topics: None,
        dead_letters: None,
    })
}

/// The number of partitions of `topic`, or `None` if it does not exist.
fn partitions(consumer: &BaseConsumer, topic: &str) -> Result<Option<i32>, KafkaError> {
    let metadata = consumer
        .fetch_metadata(Some(topic), REQUEST)
        .map_err(KafkaError::kafka("topic metadata"))?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Ok(None);
    };
    match found.error() {
        None if !found.partitions().is_empty() => Ok(Some(
            i32::try_from(found.partitions().len()).unwrap_or(i32::MAX),
        )),
        None => Ok(None),
        Some(code) if RDKafkaErrorCode::from(code) == RDKafkaErrorCode::UnknownTopicOrPartition => {
            Ok(None)
        }
        Some(code) => Err(KafkaError::kafka("topic metadata")(
            ClientError::MetadataFetch(code.into()),
        )),
    }
}

/// Where to read each lane from: its committed offset, unless rebuilding (`after`
/// is the start) or none is committed; never before its first record.
fn start_offsets(
    consumer: &LagConsumer,
    probe: &BaseConsumer,
    lanes: &[Lane],
    after: Position,
) -> Result<Vec<i64>, KafkaError> {
    let mut committed = TopicPartitionList::new();
    for (topic, partition) in lanes {
        committed
            .add_partition_offset(topic, *partition, Offset::Invalid)
            .map_err(KafkaError::kafka("committed offsets"))?;
    }
    let committed = if after == Position::START || lanes.is_empty() {
        TopicPartitionList::new()
    } else {
        consumer
            .committed_offsets(committed, REQUEST)
            .map_err(KafkaError::kafka("committed offsets"))?
    };
    lanes
        .iter()
        .map(|(topic, partition)| {
            let (low, _) = probe
                .fetch_watermarks(topic, *partition, REQUEST)
                .map_err(KafkaError::kafka("partition offsets"))?;
            let stored =
                committed
                    .find_partition(topic, *partition)
                    .and_then(|p| match p.offset() {
                        Offset::Offset(offset) => Some(offset),
                        _ => None,
                    });
            Ok(stored.map_or(low, |offset| offset.max(low)))
        })
        .collect()
}

impl Live {
    async fn next_batch(
        &mut self,
        settings: &KafkaSubscriber,
        batch_size: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        if self.delivered {
            // The runner asks for the next batch only once the last one is stored.
            self.commit();
            self.delivered = false;
        }
        loop {
            if !self.missing.is_empty()
                && self
                    .looked_for_topics
                    .is_none_or(|at| at.elapsed() >= LOOK_FOR_TOPICS)
            {
                self.look_for_topics()
                    .await
                    .map_err(backend("Kafka subscription"))?;
            }
            if self.merge.holds_events() {
                if let Some(bound) = self.bound().await.map_err(backend("Kafka subscription"))? {
                    let batch = self.merge.release(bound, batch_size);
                    if !batch.is_empty() {
                        self.delivered = true;
                        return Ok(batch);
                    }
                }
            }
            self.receive(settings).await?;
        }
    }

    /// Commits, without waiting, where each partition has been applied to.
    fn commit(&self) {
        let position = self.consumer.position().unwrap_or_default();
        let consumed = |(topic, partition): &Lane| {
            position
                .find_partition(topic, *partition)
                .and_then(|p| p.offset().to_raw())
                .filter(|offset| *offset >= 0)
        };
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), offset) in self.merge.committable(consumed) {
            if offsets
                .add_partition_offset(&topic, partition, Offset::Offset(offset))
                .is_err()
            {
                return;
            }
        }
        if let Err(error) = self.consumer.commit(&offsets, CommitMode::Async) {
            // Only a hint for the next subscription, which drops what it sees again.
            tracing::warn!(%error, "could not commit the consumer's offsets");
        }
    }

    /// Waits for records (bounded while events are held, to ask the silent
    /// partitions again) and takes what the client has queued.
    async fn receive(&mut self, settings: &KafkaSubscriber) -> Result<(), Error> {
        let wait = if self.merge.holds_events() {
            Some(RECHECK)
        } else if !self.missing.is_empty() {
            Some(LOOK_FOR_TOPICS)
        } else {
            None
        };
        let first = if let Some(wait) = wait {
            match tokio::time::timeout(wait, self.consumer.recv()).await {
                Ok(message) => message,
                Err(_) => return Ok(()),
            }
        } else {
            self.consumer.recv().await
        };
        let format = settings.format;
        let mut outcome = take(&mut self.merge, format, first);
        for _ in 0..DRAIN {
            if outcome.is_err() {
                break;
            }
            let Some(next) = self.consumer.recv().now_or_never() else {
                break;
            };
            outcome = take(&mut self.merge, format, next);
        }
        match outcome {
            Ok(()) => Ok(()),
            Err(Taken::Bad {
                lane,
                offset,
                reason,
                record,
            }) => {
                self.dead_letter(settings, &lane, offset, &reason, record)
                    .await
                    .map_err(backend("writing a dead letter"))?;
                self.merge.skipped(&lane, offset);
                Ok(())
            }
            Err(Taken::Failed(error)) => Err(Error::backend("reading Kafka", error)),
        }
    }

    /// The highest position up to which every partition has vouched, if known: asks
    /// the partitions that have said nothing yet whether they are at their end, and
    /// whether missing topics exist now.
    async fn bound(&mut self) -> Result<Option<Position>, KafkaError> {
        let Some(vouched) = self.merge.lowest_frontier() else {
            return Ok(None);
        };
        let silent = self.merge.silent_lanes();
        if silent.is_empty() && self.missing.is_empty() {
            return Ok(Some(vouched));
        }
        if self.last_check.is_some_and(|at| at.elapsed() < RECHECK) {
            return Ok(None);
        }
        self.last_check = Some(Instant::now());
        // Asked only now, after `vouched` was received: a record at or before it on
        // any partition was written before the transaction that vouched for it
        // committed, so before this question. A topic still missing holds nothing;
        // one that appeared must be read first.
        if !self.missing.is_empty() && self.look_for_topics().await? {
            return Ok(None);
        }
        if silent.is_empty() {
            return Ok(Some(vouched));
        }
        let handle = self.consumer.handle();
        let probe = self.probe.handle();
        let at_end = blocking(move || {
            let position = handle.position().unwrap_or_default();
            let mut at_end = Vec::new();
            for ((topic, partition), next) in silent {
                let (_, high) = probe
                    .fetch_watermarks(&topic, partition, REQUEST)
                    .map_err(KafkaError::kafka("partition offsets"))?;
                let read_to = position
                    .find_partition(&topic, partition)
                    .and_then(|p| match p.offset() {
                        Offset::Offset(offset) => Some(offset),
                        _ => None,
                    })
                    .unwrap_or(next)
                    .max(next);
                if read_to >= high {
                    at_end.push((topic, partition));
                }
            }
            Ok(at_end)
        })
        .await?;
        let all_silent_at_end = at_end.len() == self.merge.silent_lanes().len();
        for lane in &at_end {
            self.merge.vouch(lane, vouched);
        }
        Ok(all_silent_at_end.then_some(vouched))
    }

    /// Looks whether missing topics exist now, and reads those that do; whether any
    /// did.
    async fn look_for_topics(&mut self) -> Result<bool, KafkaError> {
        self.looked_for_topics = Some(Instant::now());
        let probe = self.probe.handle();
        let missing = self.missing.clone();
        let appeared = blocking(move || {
            let mut appeared = Vec::new();
            for topic in missing {
                if let Some(count) = partitions(&probe, &topic)? {
                    appeared.push((topic, count));
                }
            }
            Ok(appeared)
        })
        .await?;
        if appeared.is_empty() {
            return Ok(false);
        }
        self.assign_new(appeared).await?;
        Ok(true)
    }

    /// Adds the partitions of topics that appeared, read from their first record.
    async fn assign_new(&mut self, appeared: Vec<(String, i32)>) -> Result<(), KafkaError> {
        if self.format == Format::Debezium {
            if let Some((topic, count)) = appeared.iter().find(|(_, count)| *count != 1) {
                return Err(KafkaError::TopicMismatch {
                    topic: topic.clone(),
                    expected: "1 partition (Debezium's commit order)".into(),
                    actual: format!("{count} partitions"),
                });
            }
        }
        let handle = self.consumer.handle();
        let probe = self.probe.handle();
        let names: Vec<String> = appeared.iter().map(|(topic, _)| topic.clone()).collect();
        let lanes = blocking(move || {
            let mut lanes = Vec::new();
            let mut assignment = TopicPartitionList::new();
            for (topic, count) in appeared {
                for partition in 0..count {
                    let (low, _) = probe
                        .fetch_watermarks(&topic, partition, REQUEST)
                        .map_err(KafkaError::kafka("partition offsets"))?;
                    assignment
                        .add_partition_offset(&topic, partition, Offset::Offset(low))
                        .map_err(KafkaError::kafka("assignment"))?;
                    lanes.push(((topic.clone(), partition), low));
                }
            }
            handle
                .incremental_assign(&assignment)
                .map_err(KafkaError::kafka("assignment"))?;
            Ok(lanes)
        })
        .await?;
        for (lane, start) in lanes {
            self.merge.add_lane(lane, start);
        }
        self.missing.retain(|topic| !names.contains(topic));
        tracing::info!(topics = ?names, "topics appeared; reading them");
        Ok(())
    }

    /// Produces a bad record to the dead-letter topic and waits for the broker.
    async fn dead_letter(
        &mut self,
        settings: &KafkaSubscriber,
        lane: &Lane,
        offset: i64,
        reason: &str,
        record: BadRecord,
    ) -> Result<(), KafkaError> {
        tracing::warn!(topic = %lane.0, partition = lane.1, offset, %reason, dead_letters = %settings.dead_letters, "bad record set aside");
        let letters = self.dead_letters.get_or_insert_with(|| {
            KafkaDeadLetters::with_config(settings.config.clone(), &settings.dead_letters)
        });
        let (partition, offset) = (lane.1.to_string(), offset.to_string());
        let extra = [
            (headers::DEAD_LETTER_ERROR, reason),
            (headers::DEAD_LETTER_TOPIC, lane.0.as_str()),
            (headers::DEAD_LETTER_PARTITION, partition.as_str()),
            (headers::DEAD_LETTER_OFFSET, offset.as_str()),
        ];
        letters
            .send(
                record.key.as_deref(),
                record.value.as_deref(),
                record.headers,
                &extra,
            )
            .await
    }
}

/// Takes one record into the merge.
fn take(
    merge: &mut Merge,
    format: Format,
    message: Result<BorrowedMessage<'_>, ClientError>,
) -> Result<(), Taken> {
    let message = match message {
        Ok(message) => message,
        Err(error) if transient(&error) => {
            tracing::debug!(%error, "Kafka client error; the client retries");
            return Ok(());
        }
        Err(error) => return Err(Taken::Failed(KafkaError::kafka("consume")(error))),
    };
    let lane = (message.topic().to_owned(), message.partition());
    let offset = message.offset();
    let decoded = match format {
        Format::Relay => decode(&message),
        Format::Debezium => crate::debezium::decode(&message),
    };
    match decoded {
        Ok(Record::Event(event)) => merge.event(&lane, offset, event),
        Ok(Record::Watermark(position)) => merge.watermark(&lane, offset, position),
        Ok(Record::Other) => merge.skipped(&lane, offset),
        Err(reason) => {
            return Err(Taken::Bad {
                lane,
                offset,
                reason,
                record: BadRecord::of(&message),
            });
        }
    }
    Ok(())
}

/// Why a record could not be taken.
enum Taken {
    Bad {
        lane: Lane,
        offset: i64,
        reason: String,
        record: BadRecord,
    },
    Failed(KafkaError),
}

/// A bad record, copied for its dead letter.
struct BadRecord {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: OwnedHeaders,
}

impl BadRecord {
    fn of(message: &BorrowedMessage<'_>) -> Self {
        let headers = message
            .headers()
            .map(|headers| {
                headers.iter().fold(OwnedHeaders::new(), |out, header| {
                    out.insert(Header {
                        key: header.key,
                        value: header.value,
                    })
                })
            })
            .unwrap_or_default();
        Self {
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers,
        }
    }
}

/// Errors librdkafka reports and recovers from by itself (a broker restarting).
fn transient(error: &ClientError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::NetworkException
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::PartitionEOF
        )
    )
}
