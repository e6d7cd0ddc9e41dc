//! The repository: loads aggregates and executes commands against them.

mod cache;
mod locks;

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use self::cache::Cache;
use self::locks::StreamLocks;
use crate::aggregate::{Aggregate, Command};
use crate::backoff::Backoff;
use crate::error::{CommandError, Error};
use crate::event::{Metadata, NewEvent, Position, StreamId, Version};
use crate::ports::{AppendRequest, AppendResult, EventStore, ExpectedVersion, Snapshot};

/// An aggregate's state as loaded, with the version it is at.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<A> {
    /// The state after every event up to `version`.
    pub state: A,
    /// The stream version the state includes.
    pub version: Version,
}

/// What executing a command did.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandOutcome<E> {
    /// The aggregate's stream.
    pub stream_id: StreamId,
    /// The stream's version after the command.
    pub version: Version,
    /// The global position of the last event appended, `None` if the command
    /// produced no event. Wait for a projection to reach it to read your own write.
    pub position: Option<Position>,
    /// The events the command produced.
    pub events: Vec<E>,
    /// `true` if the command id had already been handled and this is the earlier
    /// outcome: nothing was appended now.
    pub already_handled: bool,
}

/// When the repository stores a snapshot of an aggregate's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SnapshotPolicy {
    /// Never: always replay the whole stream.
    #[default]
    Never,
    /// After a command whose events cross a multiple of `n` (every `n` events).
    Every(u64),
}

/// Loads aggregates from an [`EventStore`] and executes commands with optimistic
/// concurrency: load (snapshot, then newer events), decide, append expecting the
/// loaded version, and on a conflict reload and decide again, a bounded number of
/// times.
///
/// **Contention.** Commands on one aggregate sent through one repository (or its
/// clones) queue, one at a time per stream, so they never conflict with each other:
/// sixteen tasks depositing into one account all succeed. Conflicts with other
/// processes (or other repositories) are retried after a jittered backoff, 5 ms
/// doubling to 250 ms, up to [`DEFAULT_MAX_ATTEMPTS`](Self::DEFAULT_MAX_ATTEMPTS)
/// times; change these with [`with_max_attempts`](Self::with_max_attempts),
/// [`with_conflict_backoff`](Self::with_conflict_backoff) and
/// [`with_stream_queue`](Self::with_stream_queue).
///
/// A command with a [`command_id`](Command::command_id) is idempotent: if that id was
/// already handled, the earlier outcome is returned and nothing is appended. The id
/// is recorded atomically with the append, so two racing copies of one command
/// cannot both append.
pub struct Repository<A, S> {
    store: S,
    snapshots: SnapshotPolicy,
    max_attempts: u32,
    backoff: (Duration, Duration),
    locks: Option<StreamLocks>,
    cache: Option<Arc<Cache<A>>>,
    _aggregate: PhantomData<fn() -> A>,
}

impl<A, S: Clone> Clone for Repository<A, S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            snapshots: self.snapshots,
            max_attempts: self.max_attempts,
            backoff: self.backoff,
            locks: self.locks.clone(),
            cache: self.cache.clone(),
            _aggregate: PhantomData,
        }
    }
}

impl<A, S: std::fmt::Debug> std::fmt::Debug for Repository<A, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("store", &self.store)
            .field("snapshots", &self.snapshots)
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("stream_queue", &self.locks.is_some())
            .finish_non_exhaustive()
    }
}

impl<A: Aggregate, S: EventStore> Repository<A, S> {
    /// The default number of times a command is decided before giving up on conflicts.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;

    /// How many events a load reads at a time.
    pub const STREAM_CHUNK: usize = 512;

    /// A repository over `store`: no snapshots, no cache, commands queued per
    /// stream, conflicts retried [`DEFAULT_MAX_ATTEMPTS`](Self::DEFAULT_MAX_ATTEMPTS)
    /// times after a jittered backoff of 5 ms doubling to 250 ms.
    pub fn new(store: S) -> Self {
        Self {
            store,
            snapshots: SnapshotPolicy::Never,
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            backoff: (Duration::from_millis(5), Duration::from_millis(250)),
            locks: Some(StreamLocks::default()),
            cache: None,
            _aggregate: PhantomData,
        }
    }

    /// Sets the wait after the first conflict (`initial`, doubled after each
    /// further one, up to `max`); each wait is jittered between half and all of it.
    #[must_use]
    pub fn with_conflict_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = (initial, max.max(initial));
        self
    }

    /// Whether commands on one stream queue inside this repository and its clones
    /// (default: yes). Without the queue they race and retry on conflicts, as
    /// commands from different processes do.
    #[must_use]
    pub fn with_stream_queue(mut self, queue: bool) -> Self {
        self.locks = queue.then(StreamLocks::default);
        self
    }

    /// Keeps up to `capacity` aggregates in memory, as this repository last wrote
    /// them, and decides the next command on a cached aggregate without loading it.
    /// If another writer (another process, or a repository without this cache)
    /// appended in between, the append conflicts on the version, and the command is
    /// decided again on a fresh load: a cache can make a command retry, never decide
    /// on stale state. Clones of the repository share the cache.
    #[must_use]
    pub fn with_cache(mut self, capacity: usize) -> Self {
        self.cache = (capacity > 0).then(|| Arc::new(Cache::new(capacity)));
        self
    }

    /// Sets the snapshot policy.
    #[must_use]
    pub fn with_snapshots(mut self, policy: SnapshotPolicy) -> Self {
        self.snapshots = policy;
        self
    }

    /// Sets how many times a command is decided before [`CommandError::TooManyConflicts`]
    /// (at least 1).
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Loads aggregate `id`: its latest usable snapshot, then the events after it.
    /// An aggregate with no event is `A::default()` at `Version::INITIAL`.
    ///
    /// # Errors
    /// [`Error::Backend`] if the store fails, [`Error::Codec`] if an event cannot be
    /// decoded.
    pub async fn load(&self, id: &str) -> Result<Loaded<A>, Error> {
        self.load_stream(&A::stream_id(id)).await
    }

    async fn load_stream(&self, stream_id: &StreamId) -> Result<Loaded<A>, Error> {
        let mut loaded = Loaded {
            state: A::default(),
            version: Version::INITIAL,
        };
        if self.snapshots != SnapshotPolicy::Never {
            if let Some(snapshot) = self.store.load_snapshot(stream_id).await? {
                if snapshot.schema == A::SNAPSHOT_SCHEMA {
                    match serde_json::from_value::<A>(snapshot.state) {
                        Ok(state) => {
                            loaded = Loaded {
                                state,
                                version: snapshot.version,
                            };
                        }
                        Err(error) => {
                            tracing::warn!(%stream_id, %error, "ignoring unreadable snapshot");
                        }
                    }
                }
            }
        }
        loop {
            let chunk = self
                .store
                .read_stream(stream_id, loaded.version, Self::STREAM_CHUNK)
                .await?;
            let complete = chunk.len() < Self::STREAM_CHUNK;
            for recorded in chunk {
                let version = recorded.version;
                let envelope = recorded.decode::<A::Event>()?;
                loaded.state.apply(&envelope.event);
                loaded.version = version;
            }
            if complete {
                return Ok(loaded);
            }
        }
    }

    /// Executes `command`: see the type's docs. Events get `metadata`, with the
    /// command id as causation id (and as correlation id when none is set).
    ///
    /// # Errors
    /// [`CommandError::Rejected`] if the aggregate refuses it,
    /// [`CommandError::TooManyConflicts`] if every attempt conflicted,
    /// [`CommandError::Store`] if a store fails.
    pub async fn execute(
        &self,
        command: &A::Command,
        metadata: Metadata,
    ) -> Result<CommandOutcome<A::Event>, CommandError<A::Error>> {
        let id = command.aggregate_id();
        let span = tracing::info_span!("execute", aggregate = A::TYPE, id = %id);
        self.execute_inner(command, metadata, A::stream_id(&id))
            .instrument(span)
            .await
    }

    async fn execute_inner(
        &self,
        command: &A::Command,
        mut metadata: Metadata,
        stream_id: StreamId,
    ) -> Result<CommandOutcome<A::Event>, CommandError<A::Error>> {
        let _turn = match &self.locks {
            Some(locks) => Some(locks.lock(&stream_id).await),
            None => None,
        };
        let command_id = command.command_id();
        if let Some(command_id) = command_id {
            if let Some(earlier) = self.store.handled_command(command_id).await? {
                return Ok(self.earlier_outcome(earlier).await?);
            }
            metadata.causation_id.get_or_insert(command_id);
            metadata.correlation_id.get_or_insert(command_id);
        }

        let mut backoff = Backoff::new(self.backoff.0, self.backoff.1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let cached = if attempt == 1 {
                self.cache.as_ref().and_then(|c| c.get(&stream_id))
            } else {
                None
            };
            let loaded = match cached {
                Some(loaded) => loaded,
                None => self.load_stream(&stream_id).await?,
            };
            let events = loaded
                .state
                .handle(command)
                .map_err(CommandError::Rejected)?;
            let new_events = events
                .iter()
                .map(|event| NewEvent::encode(event, metadata.clone()))
                .collect::<Result<Vec<_>, _>>()?;
            let mut request = AppendRequest::new(
                stream_id.clone(),
                ExpectedVersion::Exact(loaded.version),
                new_events,
            );
            request.command_id = command_id;
            match self.store.append(request).await {
                Ok(result) if result.already_handled => {
                    return Ok(self.earlier_outcome(result).await?);
                }
                Ok(result) => {
                    self.after_append(loaded, &events, &result).await;
                    return Ok(CommandOutcome {
                        stream_id,
                        version: result.version,
                        position: result.position,
                        events,
                        already_handled: false,
                    });
                }
                Err(conflict @ Error::Conflict { .. }) => {
                    tracing::debug!(attempt, %conflict, "conflict, deciding again");
                    if let Some(cache) = &self.cache {
                        cache.forget(&stream_id);
                    }
                    if attempt >= self.max_attempts {
                        return Err(CommandError::TooManyConflicts {
                            attempts: attempt,
                            last: conflict,
                        });
                    }
                    tokio::time::sleep(backoff.fail()).await;
                }
                Err(other) => {
                    // The append may or may not have happened: do not trust the cache.
                    if let Some(cache) = &self.cache {
                        cache.forget(&stream_id);
                    }
                    return Err(other.into());
                }
            }
        }
    }

    async fn earlier_outcome(
        &self,
        earlier: AppendResult,
    ) -> Result<CommandOutcome<A::Event>, Error> {
        // Only the command's own events: no more than it appended.
        let count = usize::try_from(earlier.version.0.saturating_sub(earlier.previous_version.0))
            .unwrap_or(usize::MAX);
        let events = if count == 0 {
            Vec::new()
        } else {
            self.store
                .read_stream(&earlier.stream_id, earlier.previous_version, count)
                .await?
                .into_iter()
                .take_while(|e| e.version <= earlier.version)
                .map(|e| e.decode::<A::Event>().map(|e| e.event))
                .collect::<Result<Vec<_>, _>>()?
        };
        Ok(CommandOutcome {
            stream_id: earlier.stream_id,
            version: earlier.version,
            position: earlier.position,
            events,
            already_handled: true,
        })
    }

    /// Snapshots (per policy) and caches the state after a successful append.
    async fn after_append(&self, loaded: Loaded<A>, events: &[A::Event], result: &AppendResult) {
        let snapshot_due = match self.snapshots {
            SnapshotPolicy::Every(every) => {
                let every = every.max(1);
                result.previous_version.0 / every != result.version.0 / every
            }
            SnapshotPolicy::Never => false,
        };
        if !snapshot_due && self.cache.is_none() {
            return;
        }
        let mut state = loaded.state;
        for event in events {
            state.apply(event);
        }
        if snapshot_due {
            self.save_snapshot(&state, result).await;
        }
        if let Some(cache) = &self.cache {
            cache.put(
                result.stream_id.clone(),
                Loaded {
                    state,
                    version: result.version,
                },
            );
        }
    }

    async fn save_snapshot(&self, state: &A, result: &AppendResult) {
        let snapshot = match serde_json::to_value(state) {
            Ok(value) => Snapshot {
                stream_id: result.stream_id.clone(),
                version: result.version,
                schema: A::SNAPSHOT_SCHEMA,
                state: value,
                taken_at: chrono::Utc::now(),
            },
            Err(error) => {
                tracing::warn!(%error, "cannot serialize aggregate state for a snapshot");
                return;
            }
        };
        // The command has succeeded; a snapshot is only an optimisation.
        if let Err(error) = self.store.save_snapshot(snapshot).await {
            tracing::warn!(%error, "cannot save snapshot");
        }
    }
}
