//! Applies a table's maskers to COPY text rows.
//!
//! Fields without a rule are copied through as bytes, never decoded. A ruled
//! field is decoded, masked, cut to the column's length where the masker
//! allows it, and encoded again. Rows may arrive split across buffers; the
//! unfinished tail is carried to the next call.

use std::sync::Arc;

use super::{Masker, Seeder};
use crate::copy_text::{self, Field};
use crate::review::leak::{Inline, Probe, Slot};

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
    pub seeder: Seeder,
    /// Longest value the column takes, in characters, and whether output may be cut to it.
    pub max_chars: Option<usize>,
    pub truncate: bool,
    pub on_error: OnError,
    /// Empty strings are masked too (else they stay empty).
    pub mask_empty: bool,
    /// Remember the originals for the leak scan (text and JSON columns).
    pub remember: bool,
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

/// Masks a stream of COPY text for one table.
pub struct RowMasker {
    plan: TableMask,
    carry: Vec<u8>,
    row: u64,
    decoded: Vec<u8>,
    leak: Option<Arc<crate::review::leak::Bloom>>,
    /// Slots of originals to remember, set in the filter once per batch.
    remembered: Vec<Slot>,
    /// Probing the output for the leak scan, with the slots of the batch.
    inline: Option<Arc<Inline>>,
    slots: Vec<(usize, u64, Slot)>,
    probe_buf: Vec<u8>,
    /// Fields probed since the last batch was looked up.
    tested: u64,
}

impl RowMasker {
    pub fn new(mut plan: TableMask) -> Self {
        plan.columns.sort_by_key(|c| c.index);
        RowMasker {
            plan,
            carry: Vec::new(),
            row: 0,
            decoded: Vec::new(),
            leak: None,
            remembered: Vec::new(),
            inline: None,
            slots: Vec::new(),
            probe_buf: Vec::new(),
            tested: 0,
        }
    }

    /// Remembers the originals of text columns in the leak scan's filter.
    pub fn with_leak_filter(mut self, bloom: Option<Arc<crate::review::leak::Bloom>>) -> Self {
        self.leak = bloom;
        self
    }

    /// Probes the output rows for the leak scan as they pass.
    pub fn with_inline_probe(mut self, inline: Option<Arc<Inline>>) -> Self {
        self.inline = inline;
        self
    }

    /// Masks every complete row of `input` into `out`.
    pub fn process(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), RowError> {
        self.each_row(input, |m, row| m.row(row, out))
    }

    /// Whether no column is masked: the rows are only looked at (probed for
    /// the leak scan), and go on as they came.
    pub fn passes_rows_through(&self) -> bool {
        self.plan.columns.is_empty()
    }

    /// Probes every complete row of `input` for the leak scan without
    /// writing it out again (for a table whose rows pass through).
    pub fn probe_rows(&mut self, input: &[u8]) -> Result<(), RowError> {
        self.each_row(input, |m, row| {
            m.row += 1;
            for (i, field) in copy_text::fields(row).enumerate() {
                if let Field::Value(v) = field {
                    m.queue_probe(i, v);
                }
            }
            Ok(())
        })
    }

    /// Calls `f` on every complete row of `input`, carrying an unfinished
    /// tail to the next call; then remembers the batch's originals and looks
    /// up its probes.
    fn each_row(
        &mut self,
        input: &[u8],
        mut f: impl FnMut(&mut Self, &[u8]) -> Result<(), RowError>,
    ) -> Result<(), RowError> {
        let mut start = 0;
        if !self.carry.is_empty() {
            match memchr::memchr(b'\n', input) {
                None => {
                    self.carry.extend_from_slice(input);
                    return Ok(());
                }
                Some(nl) => {
                    let mut row = std::mem::take(&mut self.carry);
                    row.extend_from_slice(&input[..nl]);
                    f(self, &row)?;
                    start = nl + 1;
                }
            }
        }
        let rest = &input[start..];
        let mut pos = 0;
        while let Some(nl) = memchr::memchr(b'\n', &rest[pos..]) {
            let row = &rest[pos..pos + nl];
            f(self, row)?;
            pos += nl + 1;
        }
        self.carry.extend_from_slice(&rest[pos..]);
        if let Some(bloom) = &self.leak {
            bloom.remember_batch(&mut self.remembered);
        }
        if let Some(inline) = &self.inline {
            inline.check(&mut self.slots);
            inline.count_tested(std::mem::take(&mut self.tested));
        }
        Ok(())
    }

    /// Ends the stream: a last row without its newline is an error.
    pub fn finish(&mut self) -> Result<(), RowError> {
        if self.carry.is_empty() {
            Ok(())
        } else {
            Err(RowError {
                table: self.plan.table.clone(),
                column: "-".into(),
                row: self.row + 1,
                reason: "the COPY stream ended inside a row".into(),
            })
        }
    }

    /// Queues the leak scan's probes of a field that passes through as it
    /// came (COPY-escaped), when the scan tests its column.
    fn queue_probe(&mut self, i: usize, v: &[u8]) {
        let Some(inline) = self.inline.as_ref().filter(|p| p.probe(i) != Probe::Skip) else { return };
        let value = if memchr::memchr(b'\\', v).is_some() {
            self.probe_buf.clear();
            copy_text::decode_into(v, &mut self.probe_buf);
            &self.probe_buf[..]
        } else {
            v
        };
        self.tested += u64::from(inline.queue(i, self.row, value, &mut self.slots));
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
                        self.queue_probe(i, v);
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
                    if let (true, Some(bloom)) = (rule.remember, &self.leak) {
                        bloom.queue_remember(text, &mut self.remembered);
                    }
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
                    // A masker that keeps parts of its input is probed for
                    // what it kept of this original.
                    if let Some(inline) = &self.inline {
                        self.tested +=
                            u64::from(inline.queue_kept(i, self.row, v.as_bytes(), &self.decoded, &mut self.slots));
                    }
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
                seeder: key.seeder("default", "redact"),
                max_chars: Some(4),
                truncate: true,
                on_error,
                mask_empty: false,
                remember: true,
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
    fn the_inline_probe_counts_fields_holding_an_original() {
        use crate::review::leak::{Bloom, Inline, Probe};
        let bloom = Arc::new(Bloom::new(1 << 16));
        bloom.remember("alice@example.com");
        bloom.remember("Call 0207 946 0958");
        let probe = Arc::new(Inline::new(vec![Probe::Whole, Probe::Full, Probe::Skip], Arc::clone(&bloom)));
        let plan = TableMask { table: "public.t".into(), columns: Vec::new() };
        let mut m = RowMasker::new(plan).with_inline_probe(Some(Arc::clone(&probe)));
        let input =
            b"1\tto alice@example.com\\tor 020 7946 0958\talice@example.com\n2\t\\N\tx\n02079460958\tnothing\tz\n";
        let mut out = Vec::new();
        for chunk in input.chunks(7) {
            m.process(chunk, &mut out).unwrap();
        }
        m.finish().unwrap();
        assert_eq!(&out[..], &input[..], "rows pass through unchanged");
        // Row 1's text field holds two originals and counts once; the skipped
        // column is not tested; the phone in an integer-like field is found whole.
        assert_eq!(probe.tally(), (5, vec![1, 1, 0]));
        // Probing without writing the rows out again finds the same.
        let again = Arc::new(Inline::new(vec![Probe::Whole, Probe::Full, Probe::Skip], Arc::clone(&bloom)));
        let plan = TableMask { table: "public.t".into(), columns: Vec::new() };
        let mut m = RowMasker::new(plan).with_inline_probe(Some(Arc::clone(&again)));
        assert!(m.passes_rows_through());
        for chunk in input.chunks(5) {
            m.probe_rows(chunk).unwrap();
        }
        m.finish().unwrap();
        assert_eq!(again.tally(), (5, vec![1, 1, 0]));
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
                seeder: key.seeder("d", "json"),
                max_chars: None,
                truncate: false,
                on_error: OnError::Fail,
                mask_empty: false,
                remember: true,
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
