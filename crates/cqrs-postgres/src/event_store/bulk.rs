//! Bulk appends, for imports and migrations.

use cqrs_core::{AppendRequest, AppendResult, Error};
use tracing::Instrument;

use super::PgEventStore;
use super::columns::{self, EventColumns};
use super::row::AppendRow;

impl PgEventStore {
    /// Appends the events of many streams in one transaction and one round trip (a
    /// multi-row insert): for imports and migrations. Each request's expected
    /// version is checked; if any conflicts, nothing is written and the first
    /// conflict is returned. Inline projections are applied as for `append`.
    ///
    /// At most 2^20 events per call; streams must be distinct; command ids are not
    /// recorded (a bulk append is idempotent only through its expected versions).
    /// It waits for the server at most the store's deadline (see
    /// [`with_deadline`](Self::with_deadline)) plus as much again per 100,000
    /// events.
    ///
    /// # Errors
    /// [`Error::Conflict`], [`Error::InvalidInput`] (a stream twice, a command id),
    /// [`Error::Backend`].
    pub async fn append_many(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Result<Vec<AppendResult>, Error> {
        let events: usize = requests.iter().map(|r| r.events.len()).sum();
        // The deadline, and as much again for every 100,000 events.
        let deadline = self.deadline * u32::try_from(1 + events / 100_000).unwrap_or(u32::MAX);
        cqrs_core::within(deadline, "append_many", async {
            let span = tracing::debug_span!("append_many", streams = requests.len(), events);
            self.append_many_inner(requests).instrument(span).await
        })
        .await
    }

    async fn append_many_inner(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Result<Vec<AppendResult>, Error> {
        if requests.iter().any(|r| r.command_id.is_some()) {
            return Err(Error::InvalidInput(
                "a bulk append does not record command ids".into(),
            ));
        }
        let mut streams = Vec::with_capacity(requests.len());
        let mut expected = Vec::with_capacity(requests.len());
        let mut events = EventColumns::default();
        for (i, request) in requests.iter().enumerate() {
            streams.push(request.stream_id.as_str());
            expected.push(columns::expected(request.expected)?);
            events.push(i + 1, &request.events)?;
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(Error::backend_in("append_many"))?;
        let query =
            sqlx::query_as("SELECT * FROM cqrs_append_many($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(&streams)
                .bind(&expected)
                .bind(&events.owners);
        let rows: Vec<AppendRow> =
            events.bind(query).fetch_all(&mut *tx).await.map_err(|e| {
                match e.as_database_error().map(|d| d.message().to_owned()) {
                    Some(message) if message.contains("appears twice") => {
                        Error::InvalidInput(message)
                    }
                    _ => Error::backend("append_many", e),
                }
            })?;
        // The first conflict fails the whole call (nothing is committed).
        let results = rows
            .into_iter()
            .zip(&requests)
            .map(|(row, request)| row.into_result(&request.stream_id, request.expected))
            .collect::<Result<Vec<_>, _>>()?;
        if !self.inline.is_empty() {
            let events: Vec<_> = requests
                .iter()
                .zip(&results)
                .flat_map(|(request, result)| request.recorded(result))
                .collect();
            for projection in self.inline.iter() {
                projection.apply(&mut tx, &events).await?;
            }
        }
        tx.commit()
            .await
            .map_err(Error::backend_in("append_many"))?;
        Ok(results)
    }
}
