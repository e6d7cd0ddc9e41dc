//! A user's notification profile: the devices that receive pushes, and when to be
//! reminded of the day's goals (a time of day in a time zone).
//!
//! Kept in the event store like everything else (one stream per user): settings
//! are written rarely, read by the notifier, and a device's history (registered,
//! then dropped because the push service said it was unregistered) is worth
//! keeping. The notifier reads them from its own table, fed by these events.

use std::collections::BTreeSet;

use chrono::NaiveTime;
use cqrs_core::{Aggregate, Command, Event};
use serde::{Deserialize, Serialize};

use super::UserId;

/// The most devices a user may register.
pub const MAX_DEVICES: usize = 20;
/// The longest device token accepted (FCM's are about 160 characters).
pub const MAX_TOKEN_CHARS: usize = 4096;

/// A request about a user's profile, made by that user (or, to drop a device the
/// push service refused, by the notifier on their behalf).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileCommand {
    /// The user.
    pub user_id: UserId,
    /// What to do.
    pub action: ProfileAction,
}

/// What can be done to a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileAction {
    /// Receive pushes on the device with this registration token.
    RegisterDevice {
        /// The device's FCM registration token.
        token: String,
    },
    /// Stop sending to this device.
    UnregisterDevice {
        /// The device's token.
        token: String,
        /// Why (the user, or the push service's answer).
        reason: String,
    },
    /// Be reminded every day at `at` in `time_zone`.
    SetReminder {
        /// An IANA time zone (`Europe/Paris`).
        time_zone: String,
        /// The time of day.
        at: NaiveTime,
    },
    /// No more reminders.
    ClearReminder,
}

impl Command for ProfileCommand {
    fn aggregate_id(&self) -> String {
        self.user_id.clone()
    }
}

/// What happened to a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Event)]
pub enum ProfileEvent {
    /// A device was registered.
    DeviceRegistered {
        /// The user.
        user_id: UserId,
        /// The device's token.
        token: String,
    },
    /// A device was unregistered.
    DeviceUnregistered {
        /// The user.
        user_id: UserId,
        /// The device's token.
        token: String,
        /// Why.
        reason: String,
    },
    /// The daily reminder was set.
    ReminderSet {
        /// The user.
        user_id: UserId,
        /// The IANA time zone.
        time_zone: String,
        /// The time of day.
        at: NaiveTime,
    },
    /// The daily reminder was turned off.
    ReminderCleared {
        /// The user.
        user_id: UserId,
    },
}

impl ProfileEvent {
    /// The user the event is about.
    pub fn user_id(&self) -> &str {
        match self {
            Self::DeviceRegistered { user_id, .. }
            | Self::DeviceUnregistered { user_id, .. }
            | Self::ReminderSet { user_id, .. }
            | Self::ReminderCleared { user_id } => user_id,
        }
    }
}

/// Why a profile command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The token is empty, too long, or has spaces or control characters.
    #[error("`{0}` is not a device token")]
    BadToken(String),
    /// The user has [`MAX_DEVICES`] devices already.
    #[error("at most {MAX_DEVICES} devices per user")]
    TooManyDevices,
    /// The device is not registered.
    #[error("no such device")]
    UnknownDevice,
    /// Not an IANA time zone.
    #[error("`{0}` is not a time zone (use an IANA name such as Europe/Paris)")]
    UnknownTimeZone(String),
}

/// A profile's state.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The registered devices' tokens.
    pub devices: BTreeSet<String>,
    /// The reminder: time zone and time of day.
    pub reminder: Option<(String, NaiveTime)>,
}

fn valid_token(token: &str) -> Result<String, ProfileError> {
    let token = token.trim();
    let bad = token.is_empty()
        || token.chars().count() > MAX_TOKEN_CHARS
        || token.chars().any(|c| c.is_whitespace() || c.is_control());
    if bad {
        let shown: String = token.chars().take(40).collect();
        return Err(ProfileError::BadToken(shown));
    }
    Ok(token.to_owned())
}

impl Aggregate for Profile {
    const TYPE: &'static str = "profile";
    type Command = ProfileCommand;
    type Event = ProfileEvent;
    type Error = ProfileError;

    fn handle(&self, command: &ProfileCommand) -> Result<Vec<ProfileEvent>, ProfileError> {
        let user_id = command.user_id.clone();
        Ok(match &command.action {
            ProfileAction::RegisterDevice { token } => {
                let token = valid_token(token)?;
                if self.devices.contains(&token) {
                    return Ok(Vec::new());
                }
                if self.devices.len() >= MAX_DEVICES {
                    return Err(ProfileError::TooManyDevices);
                }
                vec![ProfileEvent::DeviceRegistered { user_id, token }]
            }
            ProfileAction::UnregisterDevice { token, reason } => {
                if !self.devices.contains(token.trim()) {
                    return Err(ProfileError::UnknownDevice);
                }
                vec![ProfileEvent::DeviceUnregistered {
                    user_id,
                    token: token.trim().to_owned(),
                    reason: reason.clone(),
                }]
            }
            ProfileAction::SetReminder { time_zone, at } => {
                if time_zone.parse::<chrono_tz::Tz>().is_err() {
                    return Err(ProfileError::UnknownTimeZone(time_zone.clone()));
                }
                if self.reminder.as_ref() == Some(&(time_zone.clone(), *at)) {
                    return Ok(Vec::new());
                }
                vec![ProfileEvent::ReminderSet {
                    user_id,
                    time_zone: time_zone.clone(),
                    at: *at,
                }]
            }
            ProfileAction::ClearReminder => match self.reminder {
                None => Vec::new(),
                Some(_) => vec![ProfileEvent::ReminderCleared { user_id }],
            },
        })
    }

    fn apply(&mut self, event: &ProfileEvent) {
        match event {
            ProfileEvent::DeviceRegistered { token, .. } => {
                self.devices.insert(token.clone());
            }
            ProfileEvent::DeviceUnregistered { token, .. } => {
                self.devices.remove(token);
            }
            ProfileEvent::ReminderSet { time_zone, at, .. } => {
                self.reminder = Some((time_zone.clone(), *at));
            }
            ProfileEvent::ReminderCleared { .. } => self.reminder = None,
        }
    }
}
