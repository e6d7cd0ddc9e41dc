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

/// A relation's schema, name and column names, from its `Relation` message.
#[derive(Debug)]
struct Relation {
    namespace: String,
    name: String,
    columns: Vec<String>,
}

/// Decodes a stream of `pgoutput` messages into transactions.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    relations: HashMap<u32, Relation>,
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
    /// Inserts into relations other than `namespace.table` (a table of the same name
    /// in another schema included) are ignored.
    pub(crate) fn decode(
        &mut self,
        message: &[u8],
        namespace: &str,
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
                let namespace = c.string()?;
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
                self.relations.insert(
                    id,
                    Relation {
                        namespace,
                        name,
                        columns: names,
                    },
                );
                Ok(None)
            }
            b'I' => {
                let id = c.u32()?;
                if c.u8()? != b'N' {
                    return Err(malformed("insert without a new tuple"));
                }
                let row = tuple(&mut c)?;
                let relation = self
                    .relations
                    .get(&id)
                    .ok_or_else(|| malformed("insert into an unknown relation"))?;
                if relation.name == table && relation.namespace == namespace {
                    let current = self
                        .current
                        .as_mut()
                        .ok_or_else(|| malformed("insert outside a transaction"))?;
                    current
                        .rows
                        .push(relation.columns.iter().cloned().zip(row).collect());
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds pgoutput messages byte by byte, as the server sends them.
    #[derive(Default)]
    struct Message(Vec<u8>);

    impl Message {
        fn kind(kind: u8) -> Self {
            Self(vec![kind])
        }
        fn u8(mut self, v: u8) -> Self {
            self.0.push(v);
            self
        }
        fn u16(mut self, v: u16) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn u32(mut self, v: u32) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn u64(mut self, v: u64) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn string(mut self, s: &str) -> Self {
            self.0.extend_from_slice(s.as_bytes());
            self.0.push(0);
            self
        }
        fn text(self, s: &str) -> Self {
            let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
            let mut m = self.u8(b't').u32(len);
            m.0.extend_from_slice(s.as_bytes());
            m
        }
    }

    fn begin() -> Vec<u8> {
        Message::kind(b'B').u64(100).u64(0).u32(7).0
    }

    fn relation(id: u32, namespace: &str, name: &str) -> Vec<u8> {
        let mut m = Message::kind(b'R')
            .u32(id)
            .string(namespace)
            .string(name)
            .u8(b'd')
            .u16(2);
        for column in ["position", "event_type"] {
            m = m.u8(0).string(column).u32(20).u32(u32::MAX);
        }
        m.0
    }

    fn insert(id: u32, position: &str, event_type: Option<&str>) -> Vec<u8> {
        let m = Message::kind(b'I').u32(id).u8(b'N').u16(2).text(position);
        match event_type {
            Some(t) => m.text(t).0,
            None => m.u8(b'n').0,
        }
    }

    fn commit(end_lsn: u64) -> Vec<u8> {
        Message::kind(b'C').u8(0).u64(90).u64(end_lsn).u64(0).0
    }

    fn run(messages: &[Vec<u8>]) -> Result<Vec<Transaction>, Error> {
        let mut decoder = Decoder::default();
        let mut done = Vec::new();
        for message in messages {
            if let Some(tx) = decoder.decode(message, "app", "cqrs_events")? {
                done.push(tx);
            }
        }
        Ok(done)
    }

    #[test]
    fn inserts_are_grouped_by_transaction_with_their_column_names() {
        let done = run(&[
            begin(),
            relation(1, "app", "cqrs_events"),
            insert(1, "1", Some("goal.Created")),
            insert(1, "2", None),
            commit(200),
        ])
        .expect("decodes");
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].end_lsn, 200);
        let rows = &done[0].rows;
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["position"].as_deref(), Some("1"));
        assert_eq!(rows[0]["event_type"].as_deref(), Some("goal.Created"));
        assert_eq!(rows[1]["event_type"], None, "SQL NULL");
    }

    #[test]
    fn a_table_of_the_same_name_in_another_schema_is_ignored() {
        let done = run(&[
            begin(),
            relation(1, "app", "cqrs_events"),
            relation(2, "other", "cqrs_events"),
            relation(3, "app", "cqrs_documents"),
            insert(2, "10", Some("x.Y")),
            insert(3, "11", Some("x.Y")),
            insert(1, "12", Some("x.Y")),
            commit(300),
        ])
        .expect("decodes");
        let positions: Vec<_> = done[0].rows.iter().map(|r| r["position"].clone()).collect();
        assert_eq!(positions, vec![Some("12".to_owned())]);
    }

    #[test]
    fn damaged_messages_are_errors_not_panics() {
        let mut truncated = insert(1, "1", Some("a.B"));
        truncated.truncate(truncated.len() - 2);
        let unknown_kind = Message::kind(b'I').u32(1).u8(b'N').u16(1).u8(b'?').0;
        let bad_utf8 = {
            let mut m = Message::kind(b'I').u32(1).u8(b'N').u16(1).u8(b't').u32(2);
            m.0.extend_from_slice(&[0xff, 0xfe]);
            m.0
        };
        let unterminated = Message::kind(b'R')
            .u32(1)
            .0
            .into_iter()
            .chain(*b"app")
            .collect();
        for (case, bytes) in [
            ("truncated", truncated),
            ("unknown column kind", unknown_kind),
            ("not UTF-8", bad_utf8),
            ("unterminated string", unterminated),
            ("empty", Vec::new()),
        ] {
            let result = run(&[begin(), relation(1, "app", "cqrs_events"), bytes]);
            assert!(result.is_err(), "{case}: accepted");
        }
        assert!(
            run(&[insert(1, "1", None)]).is_err(),
            "an insert into an unknown relation"
        );
        assert!(
            run(&[relation(1, "app", "cqrs_events"), insert(1, "1", None)]).is_err(),
            "an insert outside a transaction"
        );
        assert!(run(&[commit(5)]).is_err(), "a commit without a begin");
    }
}
