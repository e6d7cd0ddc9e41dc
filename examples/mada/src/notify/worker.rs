//! The notifier's loop: one round per tick, done by the replica that holds the
//! lease.
//!
//! 1. **Events** (from its checkpoint): a device registered or dropped, a reminder
//!    set, and a goal completed or reopened — which becomes a data message to each
//!    of the user's *other* devices. Intents and checkpoint commit together.
//! 2. **Reminders**: every user whose reminder time has come in their time zone and
//!    whose local day was not handled yet gets one push per device listing today's
//!    unfinished goals (none if nothing is left). A reminder more than the stale
//!    window late (the notifier was down) is skipped, and logged.
//! 3. **Sending**: due notifications are claimed, sent through FCM, and marked.

use std::sync::Arc;
use std::time::Duration;

use cqrs_core::{Lease, LogReader, Metadata, Position, ReadModel, ReadModelReader, Repository};
use cqrs_postgres::{PgEventStore, PgLease};
use sqlx::PgPool;

use super::DEVICE_METADATA;
use super::clock::Clock;
use super::fcm::{Fcm, Sent};
use super::outbox::{self, Intent};
use super::reminder::{self, Due};
use crate::domain::{GoalEvent, Profile, ProfileAction, ProfileCommand, ProfileEvent};
use crate::projections::PlanProjection;

/// Why the notifier stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// Its tables could not be read or written.
    #[error("notifier tables: {0}")]
    Database(#[from] sqlx::Error),
    /// A store failed.
    #[error(transparent)]
    Store(#[from] cqrs_core::Error),
}

/// How the notifier behaves.
#[derive(Debug, Clone)]
pub struct NotifierOptions {
    /// Time between rounds.
    pub tick: Duration,
    /// How late a reminder may still be sent.
    pub stale: chrono::Duration,
    /// How long a claimed notification is left to its sender before another try.
    pub claim: chrono::Duration,
    /// Tries before a notification is given up (recorded as dead).
    pub max_attempts: i32,
    /// Events read per batch.
    pub batch: usize,
    /// The lease's time to live: a standby takes over this long after the holder
    /// died.
    pub lease_ttl: Duration,
}

impl Default for NotifierOptions {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(1),
            stale: chrono::Duration::hours(2),
            claim: chrono::Duration::seconds(30),
            max_attempts: 10,
            batch: 500,
            lease_ttl: Duration::from_secs(10),
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Whether this replica held the lease.
    pub leader: bool,
    /// Events read.
    pub events: usize,
    /// Notifications recorded.
    pub queued: usize,
    /// Notifications FCM accepted.
    pub sent: usize,
}

/// The notifier.
pub struct Notifier<P> {
    pool: PgPool,
    events: PgEventStore,
    plans: ReadModel<PlanProjection, P>,
    profiles: Repository<Profile, PgEventStore>,
    fcm: Fcm,
    clock: Arc<dyn Clock>,
    lease: PgLease,
    /// The lease's name: one per schema (leases are database-wide advisory locks,
    /// and two deployments in two schemas each need their notifier).
    lease_name: String,
    holder: String,
    options: NotifierOptions,
}

impl<P> std::fmt::Debug for Notifier<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("holder", &self.holder)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<P: ReadModelReader + Clone + Send + Sync + 'static> Notifier<P> {
    /// A notifier over the events in `pool`'s schema (its tables go there too),
    /// reading users' plans from `plans`, sending through `fcm`.
    ///
    /// # Errors
    /// Its tables could not be created.
    pub async fn new(
        pool: PgPool,
        plans: P,
        fcm: Fcm,
        clock: Arc<dyn Clock>,
        options: NotifierOptions,
    ) -> Result<Self, NotifyError> {
        outbox::migrate(&pool).await?;
        let schema: String = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&pool)
            .await?;
        let events = PgEventStore::new(pool.clone());
        Ok(Self {
            lease_name: format!("mada-notify:{schema}"),
            plans: ReadModel::new(plans),
            profiles: Repository::new(events.clone()),
            lease: PgLease::new(pool.clone()),
            holder: uuid::Uuid::now_v7().to_string(),
            events,
            pool,
            fcm,
            clock,
            options,
        })
    }

    /// Runs rounds every tick until `stop` completes, then gives the lease back.
    ///
    /// # Errors
    /// Only what cannot be retried; a failing round is logged and retried.
    pub async fn run(&self, stop: impl Future<Output = ()>) -> Result<(), NotifyError> {
        let mut stop = std::pin::pin!(stop);
        loop {
            match self.round().await {
                Ok(round) if round.queued + round.sent > 0 => {
                    tracing::debug!(?round, "notifier round");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "notifier round failed; retrying"),
            }
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(self.options.tick) => {}
            }
        }
        if let Err(error) = self.lease.release(&self.lease_name, &self.holder).await {
            tracing::warn!(%error, "could not give the lease back; it will expire");
        }
        Ok(())
    }

    /// One round: events, reminders, sending — if this replica holds the lease.
    ///
    /// # Errors
    /// A store or table failed.
    pub async fn round(&self) -> Result<Round, NotifyError> {
        let leader = self
            .lease
            .acquire(&self.lease_name, &self.holder, self.options.lease_ttl)
            .await?;
        if !leader {
            return Ok(Round::default());
        }
        let (events, from_events) = self.consume().await?;
        let reminders = self.remind().await?;
        let sent = self.send_due().await?;
        Ok(Round {
            leader,
            events,
            queued: from_events + reminders,
            sent,
        })
    }

    /// Reads the events after the checkpoint; returns (events, intents).
    async fn consume(&self) -> Result<(usize, usize), NotifyError> {
        let (mut read, mut queued) = (0, 0);
        loop {
            let from = outbox::checkpoint(&self.pool).await?;
            let batch = self
                .events
                .read_all(Position(from), self.options.batch)
                .await?;
            let Some(last) = batch.last().map(|e| e.position.0) else {
                return Ok((read, queued));
            };
            let now = self.clock.now();
            let mut tx = self.pool.begin().await?;
            if outbox::lock_checkpoint(&mut tx).await? != from {
                continue; // another notifier read them meanwhile
            }
            let mut intents = Vec::new();
            for event in &batch {
                if let Some(profile) = event.decode_if::<ProfileEvent>()? {
                    apply_profile(&mut tx, &profile.event).await?;
                } else if let Some(goal) = event.decode_if::<GoalEvent>()? {
                    let (goal_id, user, day, done) = match goal.event {
                        GoalEvent::GoalCompleted {
                            goal_id,
                            user_id,
                            day,
                        } => (goal_id, user_id, day, true),
                        GoalEvent::GoalUncompleted {
                            goal_id,
                            user_id,
                            day,
                        } => (goal_id, user_id, day, false),
                        _ => continue,
                    };
                    let origin = goal.metadata.extra.get(DEVICE_METADATA);
                    for device in outbox::devices(&mut tx, &user).await? {
                        if origin == Some(&device) {
                            continue;
                        }
                        let key = format!("sync:{}:{}", event.event_id, short(&device));
                        let message =
                            reminder::sync_message(&device, &key, &goal_id.to_string(), day, done);
                        intents.push(Intent {
                            key,
                            user_id: user.clone(),
                            device,
                            kind: "sync",
                            message,
                        });
                    }
                }
            }
            outbox::enqueue(&mut tx, &intents, now).await?;
            outbox::set_checkpoint(&mut tx, last).await?;
            tx.commit().await?;
            read += batch.len();
            queued += intents.len();
        }
    }

    /// Records the reminders that are due.
    async fn remind(&self) -> Result<usize, NotifyError> {
        let now = self.clock.now();
        let mut queued = 0;
        for user in outbox::reminded(&self.pool).await? {
            let Ok(tz) = user.time_zone.parse::<chrono_tz::Tz>() else {
                continue;
            };
            let day = match reminder::due(now, tz, user.at, user.reminded_on, self.options.stale) {
                Due::No => continue,
                Due::Stale { day } => {
                    tracing::info!(user = %user.user_id, %day, "reminder skipped: the notifier was down past the stale window");
                    let mut tx = self.pool.begin().await?;
                    outbox::mark_reminded(&mut tx, &user.user_id, day).await?;
                    tx.commit().await?;
                    continue;
                }
                Due::Yes { day, .. } => day,
            };
            let list = match self.plans.get(&user.user_id).await? {
                Some(plan) => plan.today(day),
                None => crate::projections::TodayList {
                    user_id: user.user_id.clone(),
                    day,
                    items: Vec::new(),
                },
            };
            let intents: Vec<Intent> = user
                .devices
                .iter()
                .filter_map(|device| {
                    let key = format!("reminder:{}:{day}:{}", user.user_id, short(device));
                    let message = reminder::reminder_message(&list, device, &key)?;
                    Some(Intent {
                        key,
                        user_id: user.user_id.clone(),
                        device: device.clone(),
                        kind: "reminder",
                        message,
                    })
                })
                .collect();
            let mut tx = self.pool.begin().await?;
            if outbox::mark_reminded(&mut tx, &user.user_id, day).await? {
                outbox::enqueue(&mut tx, &intents, now).await?;
                queued += intents.len();
            }
            tx.commit().await?;
        }
        Ok(queued)
    }

    /// Sends what is due; returns how many FCM accepted.
    async fn send_due(&self) -> Result<usize, NotifyError> {
        let mut sent = 0;
        loop {
            let now = self.clock.now();
            let claimed = outbox::claim(&self.pool, now, now + self.options.claim, 50).await?;
            if claimed.is_empty() {
                return Ok(sent);
            }
            for item in claimed {
                let outcome = self.fcm.send(&item.message).await;
                let now = self.clock.now();
                match outcome {
                    Sent::Delivered(name) => {
                        outbox::finish(&self.pool, &item.key, "sent", &name, now).await?;
                        metrics::counter!("mada_notifications_total", "outcome" => "sent")
                            .increment(1);
                        sent += 1;
                    }
                    Sent::Unregistered => {
                        outbox::finish(&self.pool, &item.key, "dropped", "UNREGISTERED", now)
                            .await?;
                        metrics::counter!("mada_notifications_total", "outcome" => "unregistered")
                            .increment(1);
                        self.drop_device(&item.user_id, &item.device).await;
                    }
                    Sent::Rejected(why) => {
                        tracing::warn!(key = %item.key, %why, "FCM refused the message: dead letter");
                        outbox::finish(&self.pool, &item.key, "dead", &why, now).await?;
                        metrics::counter!("mada_notifications_total", "outcome" => "dead")
                            .increment(1);
                    }
                    Sent::Retry { after, reason } if item.attempts < self.options.max_attempts => {
                        let backoff =
                            chrono::Duration::seconds(1_i64 << item.attempts.clamp(0, 10));
                        // FCM's Retry-After when it gives one (at least a second),
                        // else an exponential backoff.
                        let after = after
                            .and_then(|a| chrono::Duration::from_std(a).ok())
                            .map_or(backoff, |a| a.max(chrono::Duration::seconds(1)));
                        tracing::info!(key = %item.key, %reason, retry_in = %after, "FCM will be asked again");
                        outbox::retry_at(&self.pool, &item.key, now + after, &reason).await?;
                        metrics::counter!("mada_notifications_total", "outcome" => "retry")
                            .increment(1);
                    }
                    Sent::Retry { reason, .. } => {
                        tracing::warn!(key = %item.key, %reason, "giving up after {} attempts", item.attempts);
                        outbox::finish(&self.pool, &item.key, "dead", &reason, now).await?;
                        metrics::counter!("mada_notifications_total", "outcome" => "dead")
                            .increment(1);
                    }
                }
            }
        }
    }

    /// Removes a device FCM no longer knows, through the write model.
    async fn drop_device(&self, user: &str, device: &str) {
        let command = ProfileCommand {
            user_id: user.to_owned(),
            action: ProfileAction::UnregisterDevice {
                token: device.to_owned(),
                reason: "FCM: UNREGISTERED".into(),
            },
        };
        let metadata = Metadata::new().with_user(user).with("by", "notifier");
        if let Err(error) = self.profiles.execute(&command, metadata).await {
            // Already gone (the user removed it meanwhile) is fine.
            tracing::info!(%error, user, "could not drop the device");
        }
    }
}

async fn apply_profile(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    event: &ProfileEvent,
) -> Result<(), sqlx::Error> {
    match event {
        ProfileEvent::DeviceRegistered { user_id, token } => {
            outbox::set_device(tx, user_id, token, true).await
        }
        ProfileEvent::DeviceUnregistered { user_id, token, .. } => {
            outbox::set_device(tx, user_id, token, false).await
        }
        ProfileEvent::ReminderSet {
            user_id,
            time_zone,
            at,
        } => outbox::set_reminder(tx, user_id, Some((time_zone, *at))).await,
        ProfileEvent::ReminderCleared { user_id } => outbox::set_reminder(tx, user_id, None).await,
    }
}

/// A device's token, shortened for a key: its last 32 characters (tokens are
/// long; their tails are unique enough within one user).
fn short(device: &str) -> String {
    let chars: Vec<char> = device.chars().collect();
    chars[chars.len().saturating_sub(32)..].iter().collect()
}
