//! PostgreSQL's COPY text format: splitting rows into fields, decoding a
//! field to its value, and encoding a value back.
//!
//! In this format a row ends with `\n`, fields are separated by `\t`, NULL is
//! the field `\N`, and a backslash escapes special bytes inside a value
//! (`\\`, `\n`, `\r`, `\t`, `\b`, `\f`, `\v`, octal `\NNN`, hex `\xHH`, and
//! `\c` for any other `c`). Newlines and tabs inside values are always
//! escaped, so raw `\n` and `\t` bytes are always row and field boundaries:
//! fields that need no change are passed through as bytes, never decoded.

/// One field of a row: NULL, or the still-escaped bytes of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    Null,
    Value(&'a [u8]),
}

/// The fields of one row (without its newline).
pub fn fields(row: &[u8]) -> impl Iterator<Item = Field<'_>> {
    let mut rest = Some(row);
    std::iter::from_fn(move || {
        let r = rest?;
        let f = match memchr::memchr(b'\t', r) {
            Some(tab) => {
                rest = Some(&r[tab + 1..]);
                &r[..tab]
            }
            None => {
                rest = None;
                r
            }
        };
        Some(if f == b"\\N" { Field::Null } else { Field::Value(f) })
    })
}

/// Decodes an escaped field into raw bytes (appended to `out`).
pub fn decode_into(field: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < field.len() {
        let b = field[i];
        if b != b'\\' || i + 1 == field.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let c = field[i + 1];
        i += 2;
        match c {
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                let mut n = 1;
                while n < 3 && i < field.len() && (b'0'..=b'7').contains(&field[i]) {
                    v = v * 8 + u32::from(field[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push((v & 0xff) as u8);
            }
            b'x' if i < field.len() && field[i].is_ascii_hexdigit() => {
                let mut v = 0u32;
                let mut n = 0;
                while n < 2 && i < field.len() && field[i].is_ascii_hexdigit() {
                    v = v * 16 + (field[i] as char).to_digit(16).unwrap_or(0);
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
}

/// Decodes an escaped field into a new buffer.
pub fn decode(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    decode_into(field, &mut out);
    out
}

/// Encodes raw bytes as a COPY text field (appended to `out`).
pub fn encode_into(value: &[u8], out: &mut Vec<u8>) {
    for &b in value {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0x0b => out.extend_from_slice(b"\\v"),
            _ => out.push(b),
        }
    }
}

/// The NULL marker.
pub const NULL: &[u8] = b"\\N";

/// Writes a row again with every field decoded and encoded afresh (NULL
/// stays NULL), followed by its newline: the same values, in the one
/// canonical spelling. A line that would read as psql's end-of-data marker
/// (`\.`) comes out as the field it encodes (`.`), so no line of a data file
/// can end a COPY block early.
pub fn reencode_row(row: &[u8], out: &mut Vec<u8>) {
    let mut value = Vec::new();
    for (i, field) in fields(row).enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        match field {
            Field::Null => out.extend_from_slice(NULL),
            Field::Value(v) => {
                value.clear();
                decode_into(v, &mut value);
                encode_into(&value, out);
            }
        }
    }
    out.push(b'\n');
}

/// Splits a stream of COPY text that arrives in buffers of any size into
/// rows: an unfinished last row is carried over to the next buffer. The one
/// row splitter of the data path: the mask stage and the leak scan both
/// read rows through it.
#[derive(Debug, Default)]
pub struct RowSplitter {
    carry: Vec<u8>,
}

impl RowSplitter {
    /// Calls `row` with every complete row of `input` (without its
    /// newline), in order, and keeps the unfinished tail for the next call.
    pub fn split<E>(&mut self, input: &[u8], mut row: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        let mut start = 0;
        if !self.carry.is_empty() {
            match memchr::memchr(b'\n', input) {
                None => {
                    self.carry.extend_from_slice(input);
                    return Ok(());
                }
                Some(nl) => {
                    let mut joined = std::mem::take(&mut self.carry);
                    joined.extend_from_slice(&input[..nl]);
                    row(&joined)?;
                    start = nl + 1;
                }
            }
        }
        let rest = &input[start..];
        let mut pos = 0;
        while let Some(nl) = memchr::memchr(b'\n', &rest[pos..]) {
            row(&rest[pos..pos + nl])?;
            pos += nl + 1;
        }
        self.carry.extend_from_slice(&rest[pos..]);
        Ok(())
    }

    /// Whether the stream so far ends inside a row (a last row without its
    /// newline: a truncated stream when nothing more comes).
    pub fn in_row(&self) -> bool {
        !self.carry.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_fields_and_nulls() {
        let row = b"1\t\\N\t\ta\\tb";
        let f: Vec<Field> = fields(row).collect();
        assert_eq!(f, vec![Field::Value(b"1"), Field::Null, Field::Value(b""), Field::Value(b"a\\tb")]);
    }

    #[test]
    fn decodes_every_escape() {
        assert_eq!(decode(b"a\\\\b\\nc\\td\\re\\bf\\fg\\vh"), b"a\\b\nc\td\re\x08f\x0cg\x0bh");
        assert_eq!(decode(b"\\101\\x41\\x4a\\7\\q"), b"AAJ\x07q");
        // A literal "\N" inside text arrives as "\\N" and decodes to backslash-N.
        assert_eq!(decode(b"\\\\N"), b"\\N");
        // A trailing lone backslash is kept.
        assert_eq!(decode(b"x\\"), b"x\\");
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_identity(value in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut enc = Vec::new();
            encode_into(&value, &mut enc);
            prop_assert!(!enc.contains(&b'\n') && !enc.contains(&b'\t'));
            prop_assert_eq!(decode(&enc), value);
        }

        #[test]
        fn rows_of_encoded_values_split_back(values in proptest::collection::vec(proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)), 1..8)) {
            let mut row = Vec::new();
            for (i, v) in values.iter().enumerate() {
                if i > 0 { row.push(b'\t'); }
                match v { None => row.extend_from_slice(NULL), Some(v) => encode_into(v, &mut row) }
            }
            let back: Vec<Option<Vec<u8>>> = fields(&row).map(|f| match f { Field::Null => None, Field::Value(v) => Some(decode(v)) }).collect();
            prop_assert_eq!(back, values);
        }

        #[test]
        fn rows_split_the_same_whatever_the_buffers(rows in proptest::collection::vec("[a-z\t\\\\]{0,12}", 0..20), cut in 1usize..17) {
            let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
            let mut splitter = RowSplitter::default();
            let mut got = Vec::new();
            for piece in text.as_bytes().chunks(cut) {
                splitter.split(piece, |row| { got.push(String::from_utf8_lossy(row).into_owned()); Ok::<(), ()>(()) }).unwrap();
            }
            prop_assert!(!splitter.in_row());
            prop_assert_eq!(got, rows);
        }

        #[test]
        fn reencoded_rows_hold_the_same_values_and_never_end_a_copy(row in "[a-z.\\\\\t]{0,16}") {
            let mut out = Vec::new();
            reencode_row(row.as_bytes(), &mut out);
            prop_assert!(!out.starts_with(b"\\.\n") && !out.starts_with(b"\\.\r"));
            let again: Vec<Field> = fields(&out[..out.len() - 1]).collect();
            let before: Vec<Field> = fields(row.as_bytes()).collect();
            prop_assert_eq!(again.len(), before.len());
            for (a, b) in again.iter().zip(&before) {
                match (a, b) {
                    (Field::Value(a), Field::Value(b)) => prop_assert_eq!(decode(a), decode(b)),
                    (a, b) => prop_assert_eq!(a, b),
                }
            }
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }
    }
}
