//! Appending: [`EventAppender`] for [`PgEventStore`].

use cqrs_core::{
    AppendRequest, AppendResult, Error, EventAppender, ExpectedVersion, Position, Version,
};
use tracing::Instrument;

use super::PgEventStore;
use crate::error::backend;

type AppendRow = (String, i64, i64, Option<i64>);

fn to_i64(version: Version) -> Result<i64, Error> {
    i64::try_from(version.0)
        .map_err(|_| Error::InvalidInput(format!("version {version} is out of range")))
}

impl EventAppender for PgEventStore {
    async fn append(&self, request: AppendRequest) -> Result<AppendResult, Error> {
        let span = tracing::debug_span!("append", stream = %request.stream_id, events = request.events.len());
        async move {
            let expected = match request.expected {
                ExpectedVersion::Any => -1,
                ExpectedVersion::NoStream => 0,
                ExpectedVersion::Exact(version) => to_i64(version)?,
            };
            let count = request.events.len();
            let mut ids = Vec::with_capacity(count);
            let mut types = Vec::with_capacity(count);
            let mut schemas = Vec::with_capacity(count);
            let mut payloads = Vec::with_capacity(count);
            let mut metadata = Vec::with_capacity(count);
            for event in &request.events {
                ids.push(event.event_id);
                types.push(event.event.event_type.as_str());
                schemas.push(i32::try_from(event.event.schema_version).map_err(|_| {
                    Error::InvalidInput(format!(
                        "schema version {} is out of range",
                        event.event.schema_version
                    ))
                })?);
                payloads.push(&event.event.payload);
                metadata.push(
                    serde_json::to_value(&event.metadata)
                        .map_err(|e| Error::codec(event.event.event_type.as_str(), e))?,
                );
            }
            let (status, previous, version, last): AppendRow =
                sqlx::query_as("SELECT * FROM cqrs_append($1, $2, $3, $4, $5, $6, $7, $8)")
                    .bind(request.stream_id.as_str())
                    .bind(expected)
                    .bind(request.command_id)
                    .bind(&ids)
                    .bind(&types)
                    .bind(&schemas)
                    .bind(&payloads)
                    .bind(&metadata)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(backend("append"))?;
            let previous_version = Version(previous.try_into().unwrap_or_default());
            let version = Version(version.try_into().unwrap_or_default());
            match status.as_str() {
                "conflict" => Err(Error::Conflict {
                    stream_id: request.stream_id,
                    expected: request.expected,
                    actual: version,
                }),
                "ok" | "duplicate" => Ok(AppendResult {
                    stream_id: request.stream_id,
                    previous_version,
                    version,
                    position: last.and_then(|p| u64::try_from(p).ok()).map(Position),
                    already_handled: status == "duplicate",
                }),
                other => Err(Error::backend(
                    "append",
                    format!("unexpected append status `{other}`"),
                )),
            }
        }
        .instrument(span)
        .await
    }
}
