//! A row of `cqrs_events` from MySQL's binlog, as the binlog source turns it into an
//! event once mysql_async has parsed the row image: unsigned columns sent as signed,
//! a `BINARY(16)` cut short, a corrupt payload, too few or mistyped columns.
//!
//! Input: one column value per line —
//! `i <signed>`, `u <unsigned>`, `f <float>`, `b <bytes to the end of the line>`,
//! `x <hex bytes>`, `d <year> <month> <day> <hour> <minute> <second> <microsecond>`,
//! `t <negative 0|1> <days> <hours> <minutes> <seconds> <microseconds>`, `null`
//! (SQL NULL), or `-` (no value: a column the image left out). A line that is none of
//! these ends the row.

use mysql_async::Value;
use mysql_async::binlog::value::BinlogValue;

/// Reads the row of `input`.
pub fn row(input: &[u8]) -> Vec<Option<BinlogValue<'static>>> {
    let mut row = Vec::new();
    for line in input.split(|&b| b == b'\n') {
        let (tag, rest) = match line.iter().position(|&b| b == b' ') {
            Some(at) => (&line[..at], &line[at + 1..]),
            None => (line, &line[line.len()..]),
        };
        let text = std::str::from_utf8(rest).unwrap_or("");
        let numbers = || text.split(' ').map(str::parse::<u64>);
        let value = match tag {
            b"-" => None,
            b"null" => Some(Value::NULL),
            b"i" => text.parse().ok().map(Value::Int),
            b"u" => text.parse().ok().map(Value::UInt),
            b"f" => text.parse().ok().map(Value::Double),
            b"b" => Some(Value::Bytes(rest.to_vec())),
            b"x" => hex(text).map(Value::Bytes),
            b"d" => date(numbers().collect::<Result<Vec<_>, _>>().ok()),
            b"t" => time(numbers().collect::<Result<Vec<_>, _>>().ok()),
            _ => break,
        };
        match (tag, value) {
            (b"-", _) => row.push(None),
            (_, Some(value)) => row.push(Some(BinlogValue::Value(value))),
            (_, None) => break,
        }
    }
    row
}

fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn date(parts: Option<Vec<u64>>) -> Option<Value> {
    let parts = parts?;
    let [y, mo, d, h, mi, s, us] = parts.as_slice() else {
        return None;
    };
    Some(Value::Date(
        u16::try_from(*y).ok()?,
        u8::try_from(*mo).ok()?,
        u8::try_from(*d).ok()?,
        u8::try_from(*h).ok()?,
        u8::try_from(*mi).ok()?,
        u8::try_from(*s).ok()?,
        u32::try_from(*us).ok()?,
    ))
}

fn time(parts: Option<Vec<u64>>) -> Option<Value> {
    let parts = parts?;
    let [neg, d, h, mi, s, us] = parts.as_slice() else {
        return None;
    };
    Some(Value::Time(
        *neg != 0,
        u32::try_from(*d).ok()?,
        u8::try_from(*h).ok()?,
        u8::try_from(*mi).ok()?,
        u8::try_from(*s).ok()?,
        u32::try_from(*us).ok()?,
    ))
}

/// Runs one input.
pub fn run(input: &[u8]) {
    let row = row(input);
    if let Err(error) = cqrs_mysql::fuzzing::binlog_row(row) {
        assert!(
            matches!(error, cqrs_core::Error::Codec { .. }),
            "a bad row is a codec error, not {error:?}"
        );
    }
}
