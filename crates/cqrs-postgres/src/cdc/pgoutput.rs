//! A decoder for the messages of PostgreSQL's `pgoutput` logical-decoding plugin,
//! protocol version 1: enough to read the inserts into `cqrs_events`, grouped by
//! transaction in commit order.
//!
//! Format: <https://www.postgresql.org/docs/15/protocol-logicalrep-message-formats.html>.

use std::collections::HashMap;

use cqrs_core::Error;

/// A column value of a row in text format (`None` for SQL NULL).
pub(crate) type Row = Vec<Option<String>>;

/// One committed transaction's inserts into the watched table.
#[derive(Debug, Default)]
pub(crate) struct Transaction {
    /// The inserted rows, in the order they were inserted, by column name.
    pub(crate) rows: Vec<HashMap<String, Option<String>>>,
    /// The LSN just past the transaction: advancing the slot here consumes it.
    pub(crate) end_lsn: u64,
}

/// A relation's column names, from its `Relation` message.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    relations: HashMap<u32, (String, Vec<String>)>,
    current: Option<Transaction>,
}

fn malformed(what: &str) -> Error {
    Error::backend(
        "change-data-capture",
        format!("malformed pgoutput message: {what}"),
    )
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Error> {
        if self.0.len() < n {
            return Err(malformed("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, Error> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, Error> {
        let b = self.take(8)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn string(&mut self) -> Result<String, Error> {
        let end = self
            .0
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| malformed("unterminated string"))?;
        let s = String::from_utf8(self.0[..end].to_vec())
            .map_err(|_| malformed("string is not UTF-8"))?;
        self.0 = &self.0[end + 1..];
        Ok(s)
    }
}

impl Decoder {
    /// Decodes one message. Returns a transaction when `message` is its commit.
    /// Inserts into relations other than `table` are ignored.
    pub(crate) fn decode(
        &mut self,
        message: &[u8],
        table: &str,
    ) -> Result<Option<Transaction>, Error> {
        let mut c = Cursor(message);
        match c.u8()? {
            b'B' => {
                self.current = Some(Transaction::default());
                Ok(None)
            }
            b'R' => {
                let id = c.u32()?;
                let _namespace = c.string()?;
                let name = c.string()?;
                let _replica_identity = c.u8()?;
                let columns = c.u16()?;
                let mut names = Vec::with_capacity(usize::from(columns));
                for _ in 0..columns {
                    let _flags = c.u8()?;
                    names.push(c.string()?);
                    let _type_oid = c.u32()?;
                    let _type_modifier = c.u32()?;
                }
                self.relations.insert(id, (name, names));
                Ok(None)
            }
            b'I' => {
                let id = c.u32()?;
                if c.u8()? != b'N' {
                    return Err(malformed("insert without a new tuple"));
                }
                let row = tuple(&mut c)?;
                let (name, columns) = self
                    .relations
                    .get(&id)
                    .ok_or_else(|| malformed("insert into an unknown relation"))?;
                if name == table {
                    let current = self
                        .current
                        .as_mut()
                        .ok_or_else(|| malformed("insert outside a transaction"))?;
                    current
                        .rows
                        .push(columns.iter().cloned().zip(row).collect());
                }
                Ok(None)
            }
            b'C' => {
                let _flags = c.u8()?;
                let _commit_lsn = c.u64()?;
                let end_lsn = c.u64()?;
                let mut transaction = self
                    .current
                    .take()
                    .ok_or_else(|| malformed("commit without a begin"))?;
                transaction.end_lsn = end_lsn;
                Ok(Some(transaction))
            }
            // Origin, Type, Update, Delete, Truncate, Message: nothing to read here
            // (the events table is append-only).
            _ => Ok(None),
        }
    }
}

fn tuple(c: &mut Cursor<'_>) -> Result<Row, Error> {
    let columns = c.u16()?;
    let mut row = Vec::with_capacity(usize::from(columns));
    for _ in 0..columns {
        match c.u8()? {
            b'n' | b'u' => row.push(None),
            b't' => {
                let len = c.u32()? as usize;
                let text = String::from_utf8(c.take(len)?.to_vec())
                    .map_err(|_| malformed("value is not UTF-8"))?;
                row.push(Some(text));
            }
            _ => return Err(malformed("unknown column kind")),
        }
    }
    Ok(row)
}
