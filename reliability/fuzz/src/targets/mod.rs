//! One module per decoder under test.

pub mod binlog;
pub mod binlog_row;
pub mod envelope;
pub mod fcm_reply;
pub mod graphql;
pub mod kafka;
pub mod pgoutput;

/// Splits `input` at its first empty line: the lines before it, and the bytes after
/// it (`None` if there is no empty line). The head of the textual formats.
pub(crate) fn head_and_body(input: &[u8]) -> (Vec<&[u8]>, Option<&[u8]>) {
    let mut lines = Vec::new();
    let mut rest = input;
    loop {
        match rest.iter().position(|&b| b == b'\n') {
            Some(0) => return (lines, Some(&rest[1..])),
            Some(end) => {
                lines.push(&rest[..end]);
                rest = &rest[end + 1..];
            }
            None => {
                if !rest.is_empty() {
                    lines.push(rest);
                }
                return (lines, None);
            }
        }
    }
}
