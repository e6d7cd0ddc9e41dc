//! The arrays an append binds: one element per event, as the append functions
//! (`cqrs_append`, `cqrs_append_many`, `cqrs_append_group`) take them.

use cqrs_core::{Error, ExpectedVersion, NewEvent};
use sqlx::Postgres;
use sqlx::postgres::PgArguments;
use sqlx::query::QueryAs;
use uuid::Uuid;

/// An expected version as the SQL functions take it: -1 for any, else exact.
pub(super) fn expected(expected: ExpectedVersion) -> Result<i64, Error> {
    match expected {
        ExpectedVersion::Any => Ok(-1),
        ExpectedVersion::NoStream => Ok(0),
        ExpectedVersion::Exact(version) => i64::try_from(version.0)
            .map_err(|_| Error::InvalidInput(format!("version {version} is out of range"))),
    }
}

/// Events as columns, each tagged with the 1-based index of the request it belongs
/// to (for the functions that take many requests).
#[derive(Default)]
pub(super) struct EventColumns<'a> {
    pub(super) owners: Vec<i32>,
    ids: Vec<Uuid>,
    types: Vec<&'a str>,
    schemas: Vec<i32>,
    payloads: Vec<&'a serde_json::Value>,
    metadata: Vec<serde_json::Value>,
}

impl<'a> EventColumns<'a> {
    /// Adds the events of request number `owner` (1-based).
    pub(super) fn push(&mut self, owner: usize, events: &'a [NewEvent]) -> Result<(), Error> {
        let owner =
            i32::try_from(owner).map_err(|_| Error::InvalidInput("too many requests".into()))?;
        for event in events {
            let event_type = event.event.event_type.as_str();
            self.owners.push(owner);
            self.ids.push(event.event_id);
            self.types.push(event_type);
            self.schemas
                .push(i32::try_from(event.event.schema_version).map_err(|_| {
                    Error::InvalidInput(format!(
                        "schema version {} is out of range",
                        event.event.schema_version
                    ))
                })?);
            self.payloads.push(&event.event.payload);
            self.metadata.push(
                serde_json::to_value(&event.metadata).map_err(|e| Error::codec(event_type, e))?,
            );
        }
        Ok(())
    }

    /// Binds ids, types, schema versions, payloads and metadata, in that order.
    pub(super) fn bind<'q, O>(
        &'q self,
        query: QueryAs<'q, Postgres, O, PgArguments>,
    ) -> QueryAs<'q, Postgres, O, PgArguments> {
        query
            .bind(&self.ids)
            .bind(&self.types)
            .bind(&self.schemas)
            .bind(&self.payloads)
            .bind(&self.metadata)
    }
}
