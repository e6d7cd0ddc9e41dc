//! Appending: [`EventAppender`] and [`CommandLog`] for [`MySqlEventStore`].

use cqrs_core::{
    AppendRequest, AppendResult, CommandLog, Error, EventAppender, ExpectedVersion, Metadata,
    Position, StreamId, Version,
};
use serde::Serialize;
use sqlx::mysql::MySqlRow;
use sqlx::{Executor, MySqlConnection, Row};
use std::sync::atomic::{AtomicUsize, Ordering};
use tracing::Instrument;

use uuid::Uuid;

use super::{MySqlEventStore, group};

/// `p_expected` of `cqrs_append`: -1 any, -2 no stream, else the version.
fn expected(expected: ExpectedVersion) -> Result<i64, Error> {
    Ok(match expected {
        ExpectedVersion::Any => -1,
        ExpectedVersion::NoStream => -2,
        ExpectedVersion::Exact(v) => {
            i64::try_from(v.0).map_err(|_| Error::out_of_range("expected version", v.0))?
        }
    })
}

/// One event as `cqrs_append` reads it, borrowed from the request (nothing is
/// cloned or built as a `serde_json::Value` on the way).
#[derive(Serialize)]
struct EventJson<'a> {
    id: Uuid,
    #[serde(rename = "type")]
    event_type: &'a str,
    schema: u32,
    payload: &'a serde_json::Value,
    metadata: &'a Metadata,
}

/// The request's events as the JSON array `cqrs_append` reads.
fn events_json(request: &AppendRequest) -> Result<String, Error> {
    let events: Vec<EventJson<'_>> = request
        .events
        .iter()
        .map(|e| EventJson {
            id: e.event_id,
            event_type: &e.event.event_type,
            schema: e.event.schema_version,
            payload: &e.event.payload,
            metadata: &e.metadata,
        })
        .collect();
    serde_json::to_string(&events).map_err(|e| Error::codec("events", e))
}

/// `text` as a SQL literal that cannot break out of itself: hexadecimal digits,
/// converted back to UTF-8 text by the server.
pub(super) fn text_literal(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut literal = String::with_capacity(text.len() * 2 + 32);
    literal.push_str("CONVERT(X'");
    for byte in text.bytes() {
        literal.push(char::from(HEX[usize::from(byte >> 4)]));
        literal.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    literal.push_str("' USING utf8mb4)");
    literal
}

/// Which transaction a `cqrs_append` call runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The caller's (which commits).
    Caller = 0,
    /// One of its own: one round trip.
    Own = 1,
    /// A group's: it rolls back to a savepoint of its own if it writes nothing or
    /// fails, and answers an error as a row.
    Member = 2,
}

/// The `CALL` of `cqrs_append` for `request`, its arguments written as literals.
///
/// A procedure's result set comes back over the text protocol only: a prepared
/// `CALL` announces no columns, so the driver could not read the row. Strings go as
/// hexadecimal literals, numbers as digits: nothing in a request can change the
/// statement.
pub(super) fn call(request: &AppendRequest, mode: Mode) -> Result<String, Error> {
    let command = request
        .command_id
        .map_or_else(|| "NULL".to_owned(), |id| format!("X'{}'", id.simple()));
    Ok(format!(
        "CALL cqrs_append({}, {}, {command}, {}, {})",
        text_literal(request.stream_id.as_str()),
        expected(request.expected)?,
        text_literal(&events_json(request)?),
        mode as u8,
    ))
}

/// Calls `cqrs_append` for `request` on `conn`, in its own transaction
/// ([`Mode::Own`], one round trip) or in the connection's ([`Mode::Caller`], a
/// transaction the caller commits).
pub(crate) async fn append_one(
    conn: &mut MySqlConnection,
    request: &AppendRequest,
    mode: Mode,
) -> Result<AppendResult, Error> {
    let call = call(request, mode)?;
    let mut backoff = cqrs_core::Backoff::new(
        std::time::Duration::from_millis(2),
        std::time::Duration::from_millis(100),
    );
    let mut deadlocks = 0;
    loop {
        match conn.fetch_one(sqlx::raw_sql(&call)).await {
            Ok(row) => return row_result(&row, request),
            // InnoDB made this append a deadlock's victim (first appends to a new
            // stream race on its row: `INSERT ... ON DUPLICATE KEY` takes a shared
            // lock before the exclusive one) and rolled its transaction back whole.
            // Nothing was written, so in its own transaction it simply runs again.
            Err(error) if mode == Mode::Own && is_deadlock(&error) && deadlocks < 8 => {
                deadlocks += 1;
                tokio::time::sleep(backoff.fail()).await;
            }
            Err(error) => return Err(Error::backend("append", error)),
        }
    }
}

/// Whether the server rolled the transaction back as a deadlock's victim (error
/// 1213, SQLSTATE 40001).
pub(super) fn is_deadlock(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "40001")
}

/// The port's answer for `request` in `row`, a row of `cqrs_append`.
pub(super) fn row_result(row: &MySqlRow, request: &AppendRequest) -> Result<AppendResult, Error> {
    let read = |e| Error::backend_in("append")(e);
    let status: String = row.try_get("status").map_err(read)?;
    if status == "error" {
        // A group member's failure, answered as a row.
        let errno: i64 = row.try_get("errno").map_err(read)?;
        let message: String = row.try_get("message").map_err(read)?;
        return Err(Error::backend(
            "append",
            format!("the server refused the append (error {errno}): {message}"),
        ));
    }
    let previous: u64 = row.try_get("previous_version").map_err(read)?;
    let version: u64 = row.try_get("version").map_err(read)?;
    let position: Option<u64> = row.try_get("position").map_err(read)?;
    result(
        &request.stream_id,
        request.expected,
        &status,
        previous,
        version,
        position,
    )
}

/// The port's answer for a row of `cqrs_append`.
fn result(
    stream_id: &StreamId,
    expected: ExpectedVersion,
    status: &str,
    previous: u64,
    version: u64,
    position: Option<u64>,
) -> Result<AppendResult, Error> {
    match status {
        "conflict" => Err(Error::Conflict {
            stream_id: stream_id.clone(),
            expected,
            actual: Version(version),
        }),
        "ok" | "handled" => Ok(AppendResult {
            stream_id: stream_id.clone(),
            previous_version: Version(previous),
            version: Version(version),
            position: position.map(Position),
            already_handled: status == "handled",
        }),
        other => Err(Error::backend(
            "append",
            format!("cqrs_append answered an unknown status `{other}`"),
        )),
    }
}

impl MySqlEventStore {
    /// An append with the inline projections, all in one transaction.
    async fn append_inline(&self, request: &AppendRequest) -> Result<AppendResult, Error> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(Error::backend_in("append"))?;
        let result = append_one(&mut tx, request, Mode::Caller).await?;
        let events = request.recorded(&result);
        if !events.is_empty() {
            for projection in self.inline.iter() {
                projection.apply(&mut tx, &events).await?;
            }
        }
        // An error above drops the transaction: the events roll back with the
        // documents (and a conflict or a handled command wrote nothing to keep).
        tx.commit().await.map_err(Error::backend_in("append"))?;
        Ok(result)
    }
}

impl MySqlEventStore {
    /// An append in a transaction of its own: one round trip.
    async fn append_alone(&self, request: &AppendRequest) -> Result<AppendResult, Error> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(Error::backend_in("append"))?;
        append_one(&mut conn, request, Mode::Own).await
    }

    /// An append through the group-commit queue.
    async fn append_grouped(
        queue: tokio::sync::mpsc::Sender<group::Job>,
        request: AppendRequest,
    ) -> Result<AppendResult, Error> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        if queue.send(group::Job { request, reply }).await.is_err() {
            return Err(Error::Closed("the group-commit workers stopped".into()));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(Error::Closed("the group-commit worker stopped".into())))
    }
}

/// Counts this store's appends in progress while it lives.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    /// Counts one more; says whether it is the only one.
    fn enter(count: &'a AtomicUsize) -> (Self, bool) {
        let before = count.fetch_add(1, Ordering::AcqRel);
        (Self(count), before == 0)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl EventAppender for MySqlEventStore {
    async fn append(&self, request: AppendRequest) -> Result<AppendResult, Error> {
        cqrs_core::within(self.deadline, "append", async {
            let span = tracing::debug_span!("append", stream = %request.stream_id, events = request.events.len());
            async move {
                let result = match self.group_queue() {
                    // With group commit, an append while no other is in progress goes
                    // straight to the server: no queue, no task switch. Those that
                    // come while one is in progress wait in the queue and share
                    // commits.
                    Some(queue) => {
                        let (_in_flight, alone) = InFlight::enter(&self.in_flight);
                        if alone {
                            self.group_counters.alone(1);
                            self.append_alone(&request).await
                        } else {
                            Self::append_grouped(queue, request).await
                        }
                    }
                    None if self.inline.is_empty() => self.append_alone(&request).await,
                    None => self.append_inline(&request).await,
                };
                if matches!(&result, Ok(r) if r.position.is_some() && !r.already_handled) {
                    self.wake.bump();
                }
                result
            }
            .instrument(span)
            .await
        })
        .await
    }
}

impl CommandLog for MySqlEventStore {
    async fn handled_command(&self, command_id: Uuid) -> Result<Option<AppendResult>, Error> {
        cqrs_core::within(self.deadline, "handled_command", async {
            let row: Option<(Vec<u8>, u64, u64, Option<u64>)> = sqlx::query_as(
                "SELECT stream_id, previous_version, version, position FROM cqrs_commands
                 WHERE command_id = ?",
            )
            .bind(command_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::backend_in("handled_command"))?;
            row.map(|(stream, previous, version, position)| {
                Ok(AppendResult {
                    stream_id: StreamId::new(super::read::text(stream, "stream id")?),
                    previous_version: Version(previous),
                    version: Version(version),
                    position: position.map(Position),
                    already_handled: true,
                })
            })
            .transpose()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::text_literal;

    #[test]
    fn a_text_literal_is_hex_whatever_the_text() {
        assert_eq!(
            text_literal("a'\\é"),
            "CONVERT(X'61275cc3a9' USING utf8mb4)"
        );
        assert_eq!(text_literal(""), "CONVERT(X'' USING utf8mb4)");
    }
}
