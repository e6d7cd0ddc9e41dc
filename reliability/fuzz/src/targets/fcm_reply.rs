//! Replies of Firebase Cloud Messaging's `messages:send`, as MADA's notifier sorts
//! them ([`mada::notify::fcm::classify`]).
//!
//! Input: the HTTP status on the first line, the `Retry-After` header on the second
//! (empty for none), then the body. An input whose first line is not a status is
//! skipped.

use mada::notify::fcm::{Reply, Sent, classify};

/// Runs one input.
pub fn run(input: &[u8]) {
    let mut parts = input.splitn(3, |&b| b == b'\n');
    let Some(status) = parts
        .next()
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.trim().parse::<u16>().ok())
    else {
        return;
    };
    let retry_after = parts.next().map(String::from_utf8_lossy);
    let retry_after = retry_after.as_deref().filter(|s| !s.is_empty());
    let body = String::from_utf8_lossy(parts.next().unwrap_or_default());
    match classify(status, retry_after, &body) {
        Reply::Done(Sent::Delivered(name)) => {
            assert!((200..300).contains(&status), "delivered on {status}");
            assert!(name.len() <= body.len(), "a name longer than the body");
        }
        Reply::Done(Sent::Rejected(reason)) => {
            assert_eq!(status, 400, "rejected on {status}");
            assert!(reason.chars().count() <= 300, "an unbounded reason");
        }
        Reply::Done(Sent::Retry { reason, .. }) => {
            assert!(reason.chars().count() <= 320, "an unbounded reason");
        }
        Reply::Done(Sent::Unregistered) => assert!(matches!(status, 400 | 404)),
        Reply::RefreshToken => assert_eq!(status, 401),
    }
}
