//! Applies a table's maskers to COPY text rows.
//!
//! Fields without a rule are copied through as bytes, never decoded. A ruled
//! field is decoded, masked, cut to the column's length where the masker
//! allows it, and encoded again. Rows may arrive split across buffers
//! ([`RowSplitter`] carries the unfinished tail to the next call).
//!
//! A [`RowObserver`] sees each field as it goes by: the originals of masked
//! fields, what was written, and the fields passed through. The mask stage
//! knows nothing of who watches; the leak scan is one such observer.

use std::sync::Arc;

use super::registry::MaskerDef;
use super::{Masker, Seeder};
use crate::copy_text::{self, Field, RowSplitter};

/// What to do when a masker fails on a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnError {
    /// Stop the run, naming table, column and row.
    Fail,
    /// Write NULL instead.
    Null,
    /// Write this value instead.
    Fixed(String),
}

/// One masked column of a table.
#[derive(Clone)]
pub struct ColumnMask {
    /// Position in the COPY column list.
    pub index: usize,
    pub column: String,
    pub masker: Arc<dyn Masker>,
    /// Its registry entry (what the masker is, not how it was configured).
    pub def: &'static MaskerDef,
    pub seeder: Seeder,
    /// Longest value the column takes, in characters, and whether output may be cut to it.
    pub max_chars: Option<usize>,
    pub truncate: bool,
    pub on_error: OnError,
    /// Empty strings are masked too (else they stay empty).
    pub mask_empty: bool,
}

/// The maskers of one table, by column position.
#[derive(Clone)]
pub struct TableMask {
    pub table: String,
    pub columns: Vec<ColumnMask>,
}

/// A value could not be masked. Names table, column and row; never the value.
#[derive(Debug, Clone, thiserror::Error)]
#[error("masking {table}.{column}, row {row}: {reason}")]
pub struct RowError {
    pub table: String,
    pub column: String,
    pub row: u64,
    pub reason: String,
}

impl RowError {
    /// The stream ended inside a row (after `rows` complete ones).
    pub fn truncated(table: &str, rows: u64) -> Self {
        RowError {
            table: table.to_string(),
            column: "-".into(),
            row: rows + 1,
            reason: "the COPY stream ended inside a row".into(),
        }
    }
}

/// Watches the fields of the rows the mask stage writes. Columns are COPY
/// positions; rows count from 1 within the stream.
pub trait RowObserver {
    /// A field without a rule, written as it came (still COPY-escaped).
    fn passed(&mut self, column: usize, row: u64, escaped: &[u8]);
    /// The original of a masked field (decoded), before it is masked.
    fn original(&mut self, column: usize, text: &str);
    /// What a masked field became, with its (decoded) original.
    fn masked(&mut self, column: usize, row: u64, output: &[u8], original: &[u8]);
    /// The end of a batch of rows.
    fn end_batch(&mut self);
}

/// Nobody watches.
pub struct Unobserved;

impl RowObserver for Unobserved {
    #[inline]
    fn passed(&mut self, _: usize, _: u64, _: &[u8]) {}
    #[inline]
    fn original(&mut self, _: usize, _: &str) {}
    #[inline]
    fn masked(&mut self, _: usize, _: u64, _: &[u8], _: &[u8]) {}
    #[inline]
    fn end_batch(&mut self) {}
}

/// Masks a stream of COPY text for one table.
pub struct RowMasker<O: RowObserver = Unobserved> {
    plan: TableMask,
    rows: RowSplitter,
    row: u64,
    decoded: Vec<u8>,
    observer: O,
}

impl RowMasker<Unobserved> {
    pub fn new(plan: TableMask) -> Self {
        RowMasker::observed(plan, Unobserved)
    }
}

impl<O: RowObserver> RowMasker<O> {
    /// A masker whose rows `observer` watches.
    pub fn observed(mut plan: TableMask, observer: O) -> Self {
        plan.columns.sort_by_key(|c| c.index);
        RowMasker { plan, rows: RowSplitter::default(), row: 0, decoded: Vec::new(), observer }
    }

    /// Masks every complete row of `input` into `out`.
    pub fn process(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), RowError> {
        let mut rows = std::mem::take(&mut self.rows);
        let result = rows.split(input, |row| self.row(row, out));
        self.rows = rows;
        result?;
        self.observer.end_batch();
        Ok(())
    }

    /// Ends the stream: a last row without its newline is an error.
    pub fn finish(&mut self) -> Result<(), RowError> {
        match self.rows.in_row() {
            false => Ok(()),
            true => Err(RowError::truncated(&self.plan.table, self.row)),
        }
    }

    fn row(&mut self, row: &[u8], out: &mut Vec<u8>) -> Result<(), RowError> {
        self.row += 1;
        let mut next = 0;
        for (i, field) in copy_text::fields(row).enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            let rule = self.plan.columns.get(next).filter(|c| c.index == i);
            let Some(rule) = rule else {
                match field {
                    Field::Null => out.extend_from_slice(copy_text::NULL),
                    Field::Value(v) => {
                        out.extend_from_slice(v);
                        self.observer.passed(i, self.row, v);
                    }
                }
                continue;
            };
            next += 1;
            let raw = match field {
                Field::Null => {
                    out.extend_from_slice(copy_text::NULL);
                    continue;
                }
                Field::Value(v) => v,
            };
            if raw.is_empty() && !rule.mask_empty {
                continue;
            }
            self.decoded.clear();
            copy_text::decode_into(raw, &mut self.decoded);
            let fail = |reason: String| RowError {
                table: self.plan.table.clone(),
                column: rule.column.clone(),
                row: self.row,
                reason,
            };
            let result = match std::str::from_utf8(&self.decoded) {
                Ok(text) => {
                    self.observer.original(i, text);
                    rule.masker.mask(text, &rule.seeder).map_err(|e| e.0)
                }
                Err(_) => Err("the value is not valid UTF-8".to_string()),
            };
            let masked = match (result, &rule.on_error) {
                (Ok(v), _) => v,
                (Err(e), OnError::Fail) => return Err(fail(e)),
                (Err(_), OnError::Null) => None,
                (Err(_), OnError::Fixed(f)) => Some(f.clone()),
            };
            match masked {
                None => out.extend_from_slice(copy_text::NULL),
                Some(mut v) => {
                    if let Some(max) = rule.max_chars {
                        if v.chars().count() > max {
                            if rule.truncate {
                                v = v.chars().take(max).collect();
                            } else {
                                return Err(fail(format!(
                                    "the masked value is longer than the column's {max} characters"
                                )));
                            }
                        }
                    }
                    copy_text::encode_into(v.as_bytes(), out);
                    self.observer.masked(i, self.row, v.as_bytes(), &self.decoded);
                }
            }
        }
        out.push(b'\n');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::maskers;
    use crate::mask::MaskKey;

    fn plan(on_error: OnError) -> TableMask {
        let key = MaskKey::from_material(b"0123456789abcdef0123").unwrap();
        TableMask {
            table: "public.t".into(),
            columns: vec![ColumnMask {
                index: 1,
                column: "v".into(),
                masker: Arc::new(maskers::Redact),
                def: crate::mask::registry::find("redact").unwrap(),
                seeder: key.seeder("default", "redact"),
                max_chars: Some(4),
                truncate: true,
                on_error,
                mask_empty: false,
            }],
        }
    }

    #[test]
    fn masks_only_ruled_fields_across_split_buffers() {
        let mut m = RowMasker::new(plan(OnError::Fail));
        let input = b"1\tAb1-x\tkeep\\tme\n2\t\\N\tz\n3\t\tq\n4\tcaf\xc3\xa9\\n!\t\\N\n";
        let mut out = Vec::new();
        for chunk in input.chunks(3) {
            m.process(chunk, &mut out).unwrap();
        }
        m.finish().unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "1\tXx9-\tkeep\\tme\n2\t\\N\tz\n3\t\tq\n4\txxxx\t\\N\n");
    }

    #[test]
    fn a_truncated_stream_is_an_error() {
        let mut m = RowMasker::new(plan(OnError::Fail));
        let mut out = Vec::new();
        m.process(b"1\tab", &mut out).unwrap();
        assert!(m.finish().is_err());
    }

    #[test]
    fn errors_name_the_row_not_the_value() {
        let key = MaskKey::from_material(b"0123456789abcdef0123").unwrap();
        let p = TableMask {
            table: "public.t".into(),
            columns: vec![ColumnMask {
                index: 0,
                column: "doc".into(),
                masker: Arc::new(maskers::JsonPaths { paths: vec![] }),
                def: crate::mask::registry::find("json").unwrap(),
                seeder: key.seeder("d", "json"),
                max_chars: None,
                truncate: false,
                on_error: OnError::Fail,
                mask_empty: false,
            }],
        };
        let mut m = RowMasker::new(p.clone());
        let mut out = Vec::new();
        m.process(b"{\"a\":1}\n{secret-not-json\n", &mut out).unwrap_err();
        let err = RowMasker::new(p.clone()).process(b"{\"a\":1}\n{secret-not-json\n", &mut Vec::new()).unwrap_err();
        assert_eq!(err.row, 2);
        assert!(!err.to_string().contains("secret"), "{err}");
        let mut lenient = p;
        lenient.columns[0].on_error = OnError::Null;
        let mut out = Vec::new();
        RowMasker::new(lenient).process(b"{secret\n", &mut out).unwrap();
        assert_eq!(out, b"\\N\n");
    }
}
