//! Helpers around the librdkafka clients: blocking calls off the async threads, and
//! clients destroyed off them too.

use std::sync::Arc;

use crate::error::KafkaError;

/// Runs a blocking Kafka call on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, KafkaError> + Send + 'static,
) -> Result<T, KafkaError> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| KafkaError::Task(e.to_string()))?
}

/// Owns a client and drops its last handle on a thread of its own: destroying a
/// librdkafka client blocks (it joins its threads and may wait for the broker), which
/// must never happen on a runtime worker.
pub(crate) struct Owned<T: Send + Sync + 'static>(Option<Arc<T>>);

impl<T: Send + Sync + 'static> Owned<T> {
    /// Takes ownership of `client`.
    pub(crate) fn new(client: T) -> Self {
        Self(Some(Arc::new(client)))
    }

    /// A handle for blocking calls (never outlives the owner for long: the owner's
    /// drop waits for nothing, the last handle destroys the client).
    pub(crate) fn handle(&self) -> Arc<T> {
        match &self.0 {
            Some(client) => client.clone(),
            None => unreachable!("the client is only taken on drop"),
        }
    }
}

impl<T: Send + Sync + 'static> std::ops::Deref for Owned<T> {
    type Target = T;

    fn deref(&self) -> &T {
        match &self.0 {
            Some(client) => client,
            None => unreachable!("the client is only taken on drop"),
        }
    }
}

impl<T: Send + Sync + 'static> Drop for Owned<T> {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            let _ = std::thread::Builder::new()
                .name("cqrs-kafka-destroy".into())
                .spawn(move || drop(client));
        }
    }
}

/// Checks that the brokers `brokers` (`host:port,...`) answer a metadata request
/// within `timeout`, so that a service fails at start with a clear error rather than
/// retrying in the background.
///
/// # Errors
/// [`KafkaError::Unreachable`] naming the brokers.
pub async fn probe(brokers: &str, timeout: std::time::Duration) -> Result<(), KafkaError> {
    let config = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .clone();
    let named = brokers.to_owned();
    blocking(move || {
        let unreachable = |source| KafkaError::Unreachable {
            brokers: named.clone(),
            source,
        };
        let consumer: rdkafka::consumer::BaseConsumer = config.create().map_err(unreachable)?;
        rdkafka::consumer::Consumer::fetch_metadata(&consumer, None, timeout)
            .map(|_| ())
            .map_err(unreachable)
    })
    .await
}
