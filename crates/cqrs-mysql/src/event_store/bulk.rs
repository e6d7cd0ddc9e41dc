//! Bulk appends, for imports and migrations.

use std::collections::HashSet;

use cqrs_core::{AppendRequest, AppendResult, Error};
use sqlx::Executor;
use sqlx::mysql::MySqlRow;
use tracing::Instrument;

use super::MySqlEventStore;
use super::append::{Mode, call, row_result};

/// The most events one bulk append takes.
const MAX_EVENTS: usize = 1 << 20;

impl MySqlEventStore {
    /// Appends the events of many streams in one transaction and one round trip (a
    /// `cqrs_append` call per stream, sent together), then commits: for imports and
    /// migrations. Each request's expected version is checked; if any conflicts,
    /// nothing is written and the first conflict is returned. Inline projections
    /// are applied as for `append`.
    ///
    /// At most 2^20 events per call, and the whole call must fit in the server's
    /// `max_allowed_packet` (16 MiB by default; about 2 bytes per byte of JSON):
    /// split a larger import into calls. Streams must be distinct; command ids are
    /// not recorded (a bulk append is idempotent only through its expected
    /// versions).
    ///
    /// # Errors
    /// [`Error::Conflict`], [`Error::InvalidInput`] (a stream twice, a command id,
    /// too many events), [`Error::Backend`] (the server refused, for example a call
    /// larger than `max_allowed_packet`, or did not answer within the store's
    /// deadline plus as much again per 100,000 events).
    pub async fn append_many(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Result<Vec<AppendResult>, Error> {
        let events: usize = requests.iter().map(|r| r.events.len()).sum();
        let span = tracing::debug_span!("append_many", streams = requests.len(), events);
        // The deadline, and as much again for every 100,000 events.
        let deadline = self.deadline * u32::try_from(1 + events / 100_000).unwrap_or(u32::MAX);
        cqrs_core::within(
            deadline,
            "append_many",
            self.append_many_inner(requests, events),
        )
        .instrument(span)
        .await
    }

    async fn append_many_inner(
        &self,
        requests: Vec<AppendRequest>,
        events: usize,
    ) -> Result<Vec<AppendResult>, Error> {
        if requests.iter().any(|r| r.command_id.is_some()) {
            return Err(Error::InvalidInput(
                "a bulk append does not record command ids".into(),
            ));
        }
        if events > MAX_EVENTS {
            return Err(Error::InvalidInput(format!(
                "a bulk append takes at most {MAX_EVENTS} events, not {events}"
            )));
        }
        let mut streams = HashSet::with_capacity(requests.len());
        if let Some(twice) = requests.iter().find(|r| !streams.insert(&r.stream_id)) {
            return Err(Error::InvalidInput(format!(
                "stream {} appears twice in a bulk append",
                twice.stream_id
            )));
        }
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let mut calls = String::new();
        for request in &requests {
            calls.push_str(&call(request, Mode::Caller)?);
            calls.push_str(";\n");
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(Error::backend_in("append_many"))?;
        let rows: Vec<MySqlRow> = tx
            .fetch_all(sqlx::raw_sql(&calls))
            .await
            .map_err(Error::backend_in("append_many"))?;
        if rows.len() != requests.len() {
            return Err(Error::backend(
                "append_many",
                format!("{} answers to {} calls", rows.len(), requests.len()),
            ));
        }
        // The first conflict fails the whole call: the transaction is dropped,
        // nothing is committed.
        let results = rows
            .iter()
            .zip(&requests)
            .map(|(row, request)| row_result(row, request))
            .collect::<Result<Vec<_>, _>>()?;
        if !self.inline.is_empty() {
            let mut recorded: Vec<_> = requests
                .iter()
                .zip(&results)
                .flat_map(|(request, result)| request.recorded(result))
                .collect();
            recorded.sort_by_key(|e| e.position);
            for projection in self.inline.iter() {
                projection.apply(&mut tx, &recorded).await?;
            }
        }
        tx.commit()
            .await
            .map_err(Error::backend_in("append_many"))?;
        self.wake.bump();
        Ok(results)
    }
}
