//! Where a binlog reader resumes: stored in `cqrs_binlog_readers`.

use cqrs_core::Position;
use sqlx::MySqlPool;

/// A point in the server's binary log where a reader can resume: the end of a
/// transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BinlogCoordinate {
    /// The binlog file (`binlog.000042`).
    pub file: String,
    /// The byte offset in it.
    pub offset: u64,
    /// Every event up to this position is in the binlog before this point.
    pub position: Position,
}

pub(super) async fn load(
    pool: &MySqlPool,
    name: &str,
) -> Result<Option<BinlogCoordinate>, sqlx::Error> {
    let row: Option<(Vec<u8>, u64, u64)> = sqlx::query_as(
        "SELECT binlog_file, binlog_offset, position FROM cqrs_binlog_readers WHERE name = ?",
    )
    .bind(name)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(file, offset, position)| BinlogCoordinate {
        file: String::from_utf8_lossy(&file).into_owned(),
        offset,
        position: Position(position),
    }))
}

pub(super) async fn store(
    pool: &MySqlPool,
    name: &str,
    at: &BinlogCoordinate,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO cqrs_binlog_readers (name, binlog_file, binlog_offset, position, updated_at)
         VALUES (?, ?, ?, ?, UTC_TIMESTAMP(6))
         ON DUPLICATE KEY UPDATE binlog_file = VALUES(binlog_file),
             binlog_offset = VALUES(binlog_offset), position = VALUES(position),
             updated_at = VALUES(updated_at)",
    )
    .bind(name)
    .bind(at.file.as_bytes())
    .bind(at.offset)
    .bind(at.position.0)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn forget(pool: &MySqlPool, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM cqrs_binlog_readers WHERE name = ?")
        .bind(name)
        .execute(pool)
        .await?;
    Ok(())
}
