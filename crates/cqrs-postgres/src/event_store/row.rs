//! The one row layer of the append functions and the command log: every append
//! (single, group commit, bulk) and every repeated command id answers with an
//! [`AppendRow`], turned into the port's result in one place.

use cqrs_core::{AppendResult, Error, ExpectedVersion, Position, StreamId, Version};
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgRow, PgTypeInfo, PgValueRef};
use sqlx::{Decode, FromRow, Postgres, Row, Type};

/// What an append function said about one request (the `status` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppendStatus {
    /// Appended.
    Ok,
    /// The command id was already recorded: nothing appended, the earlier result.
    Duplicate,
    /// The stream was not at the expected version: nothing appended.
    Conflict,
    /// Group commit only: the command id came twice in one group; send it alone.
    Retry,
}

impl Type<Postgres> for AppendStatus {
    fn type_info() -> PgTypeInfo {
        <&str as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <&str as Type<Postgres>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Postgres> for AppendStatus {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        match <&str as Decode<Postgres>>::decode(value)? {
            "ok" => Ok(Self::Ok),
            "duplicate" => Ok(Self::Duplicate),
            "conflict" => Ok(Self::Conflict),
            "retry" => Ok(Self::Retry),
            other => Err(format!("unknown append status `{other}`").into()),
        }
    }
}

/// A row of `cqrs_append`, `cqrs_append_group`, `cqrs_append_many` (which adds the
/// stream) or `cqrs_commands` (read as a duplicate).
#[derive(Debug, Clone)]
pub(crate) struct AppendRow {
    pub(crate) stream_id: Option<String>,
    pub(crate) status: AppendStatus,
    pub(crate) previous_version: i64,
    pub(crate) version: i64,
    pub(crate) last_position: Option<i64>,
}

impl FromRow<'_, PgRow> for AppendRow {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let stream_id = match row.try_get("stream_id") {
            Ok(stream_id) => Some(stream_id),
            Err(sqlx::Error::ColumnNotFound(_)) => None,
            Err(error) => return Err(error),
        };
        Ok(Self {
            stream_id,
            status: row.try_get("status")?,
            previous_version: row.try_get("previous_version")?,
            version: row.try_get("version")?,
            last_position: row.try_get("last_position")?,
        })
    }
}

impl AppendRow {
    /// The port's answer to the request for `stream_id` expecting `expected`: the
    /// result, or [`Error::Conflict`]. Numbers out of range are [`Error::Codec`],
    /// never a silent 0.
    pub(crate) fn into_result(
        self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
    ) -> Result<AppendResult, Error> {
        let stream_id = self
            .stream_id
            .map_or_else(|| stream_id.clone(), StreamId::new);
        let version = Version::try_from(self.version)?;
        match self.status {
            AppendStatus::Conflict => Err(Error::Conflict {
                stream_id,
                expected,
                actual: version,
            }),
            AppendStatus::Ok | AppendStatus::Duplicate => Ok(AppendResult {
                stream_id,
                previous_version: Version::try_from(self.previous_version)?,
                version,
                position: self.last_position.map(Position::try_from).transpose()?,
                already_handled: self.status == AppendStatus::Duplicate,
            }),
            AppendStatus::Retry => Err(Error::backend(
                "append",
                "a group-commit retry status outside a group",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: AppendStatus, version: i64, position: Option<i64>) -> AppendRow {
        AppendRow {
            stream_id: None,
            status,
            previous_version: 1,
            version,
            last_position: position,
        }
    }

    #[test]
    fn a_negative_number_is_a_codec_error_not_a_zero() {
        let stream = StreamId::new("s");
        for bad in [
            row(AppendStatus::Ok, -1, Some(3)),
            row(AppendStatus::Ok, 2, Some(-7)),
        ] {
            let error = bad
                .into_result(&stream, ExpectedVersion::Any)
                .expect_err("out of range");
            assert!(matches!(error, Error::Codec { .. }), "{error}");
        }
    }

    #[test]
    fn statuses_become_results_and_conflicts() {
        let stream = StreamId::new("s");
        let ok = row(AppendStatus::Duplicate, 2, Some(9))
            .into_result(&stream, ExpectedVersion::Any)
            .expect("ok");
        assert!(ok.already_handled);
        assert_eq!((ok.version, ok.position), (Version(2), Some(Position(9))));
        let conflict = row(AppendStatus::Conflict, 4, None)
            .into_result(&stream, ExpectedVersion::Exact(Version(3)))
            .expect_err("conflict");
        assert!(conflict.is_conflict());
    }
}
