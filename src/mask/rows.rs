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
use super::{Masker, Person, Seeder};
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
    /// In a `person:` group: the COPY position of the group's seed column,
    /// whose original value picks the person every member is made of.
    pub person_seed: Option<usize>,
    /// A `from_row` template's parts, columns as COPY positions (empty for
    /// every other masker).
    pub from_row: Vec<RowRef>,
}

/// A part of a `from_row` template, resolved against the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowRef {
    Text(String),
    /// The masked value of the field at this COPY position (its original
    /// if the column is kept; empty if NULL).
    Field(usize),
    /// A keyed tag of the value itself.
    Tag,
}

/// Masks one decoded value by its rule: in its person if it has one, with
/// the rule's `on_error`, cut to the column where allowed. `Err` names why
/// the run must stop (never the value).
fn mask_one(rule: &ColumnMask, text: &str, person: Option<&Person>) -> Result<Option<String>, String> {
    let in_person = match (person, rule.person_seed) {
        (Some(p), Some(_)) => rule.masker.mask_person(text, &rule.seeder, p),
        _ => None,
    };
    let result = in_person.unwrap_or_else(|| rule.masker.mask(text, &rule.seeder)).map_err(|e| e.0);
    let masked = match (result, &rule.on_error) {
        (Ok(v), _) => v,
        (Err(e), OnError::Fail) => return Err(e),
        (Err(_), OnError::Null) => None,
        (Err(_), OnError::Fixed(f)) => Some(f.clone()),
    };
    fit(rule, masked)
}

/// Cuts a value to the column where the rule allows it, or fails.
fn fit(rule: &ColumnMask, masked: Option<String>) -> Result<Option<String>, String> {
    match (masked, rule.max_chars) {
        (Some(v), Some(max)) if v.chars().count() > max => {
            if rule.truncate {
                Ok(Some(v.chars().take(max).collect()))
            } else {
                Err(format!("the masked value is longer than the column's {max} characters"))
            }
        }
        (v, _) => Ok(v),
    }
}

/// A `from_row` template's value: its text, the masked values of the
/// fields it names (masked again: masking is deterministic, so they equal
/// what is written for them), and the tag of its own value.
fn from_row(
    plan: &TableMask,
    row: &[u8],
    rule: &ColumnMask,
    own: &str,
    person: Option<&Person>,
) -> Result<Option<String>, String> {
    let mut out = String::new();
    let mut buf = Vec::new();
    for part in &rule.from_row {
        match part {
            RowRef::Text(t) => out.push_str(t),
            RowRef::Tag => out.push_str(&super::maskers::tag(&rule.seeder.seed(own.as_bytes()), 13)),
            RowRef::Field(at) => {
                let Some(Field::Value(raw)) = copy_text::fields(row).nth(*at) else { continue };
                buf.clear();
                copy_text::decode_into(raw, &mut buf);
                let text =
                    std::str::from_utf8(&buf).map_err(|_| "a value it is made from is not valid UTF-8".to_string())?;
                match plan.columns.iter().find(|c| c.index == *at) {
                    Some(other) if !text.is_empty() || other.mask_empty => {
                        out.push_str(&mask_one(other, text, person)?.unwrap_or_default())
                    }
                    Some(_) => {}
                    None => out.push_str(text),
                }
            }
        }
    }
    fit(rule, Some(out))
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
    /// The person group's seed: (COPY position, index into the plan's columns).
    person_seed: Option<(usize, usize)>,
    seed_buf: Vec<u8>,
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
        let person_seed = plan
            .columns
            .iter()
            .find_map(|c| c.person_seed)
            .and_then(|at| plan.columns.iter().position(|c| c.index == at).map(|i| (at, i)));
        RowMasker {
            plan,
            rows: RowSplitter::default(),
            row: 0,
            decoded: Vec::new(),
            person_seed,
            seed_buf: Vec::new(),
            observer,
        }
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

    /// The person of this row's group: drawn from the seed column's
    /// original value; `None` when that is NULL, empty or not text.
    fn person_of(&mut self, row: &[u8]) -> Option<Person> {
        let (at, i) = self.person_seed?;
        let Some(Field::Value(raw)) = copy_text::fields(row).nth(at) else { return None };
        if raw.is_empty() {
            return None;
        }
        self.seed_buf.clear();
        copy_text::decode_into(raw, &mut self.seed_buf);
        let rule = &self.plan.columns[i];
        std::str::from_utf8(&self.seed_buf).ok().and_then(|text| rule.masker.person(text, &rule.seeder))
    }

    fn row(&mut self, row: &[u8], out: &mut Vec<u8>) -> Result<(), RowError> {
        self.row += 1;
        let person = self.person_of(row);
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
            let masked = match std::str::from_utf8(&self.decoded) {
                Ok(text) => {
                    self.observer.original(i, text);
                    if rule.from_row.is_empty() {
                        mask_one(rule, text, person.as_ref())
                    } else {
                        from_row(&self.plan, row, rule, text, person.as_ref())
                    }
                }
                Err(_) => Err("the value is not valid UTF-8".to_string()),
            }
            .map_err(fail)?;
            match masked {
                None => out.extend_from_slice(copy_text::NULL),
                Some(v) => {
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
                person_seed: None,
                from_row: Vec::new(),
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
    fn a_person_group_is_one_person_and_its_seed_masks_as_alone() {
        use crate::mask::registry::{self, BuildCx};
        use crate::mask::ColumnInfo;
        let key = MaskKey::from_material(b"0123456789abcdef0123").unwrap();
        let column = |index: usize, name: &str, person_seed: Option<usize>| {
            let info = ColumnInfo::from_type("text", false, false);
            let cx = BuildCx { key: &key, column: &info, purpose: format!("d/{name}"), domain: "d".into() };
            let def = registry::find(name).unwrap();
            ColumnMask {
                index,
                column: name.into(),
                masker: def.build(&serde_json::Map::new(), &cx).unwrap(),
                def,
                seeder: key.seeder("d", name),
                max_chars: None,
                truncate: false,
                on_error: OnError::Fail,
                mask_empty: false,
                person_seed,
                from_row: Vec::new(),
            }
        };
        let group = |seed| TableMask {
            table: "public.u".into(),
            columns: vec![
                column(0, "first_name", seed),
                column(1, "last_name", seed),
                column(2, "email", seed),
                column(3, "username", seed),
            ],
        };
        let input = b"Ann\tLee\tann@corp.example\tannlee\nBo\tKim\t\\N\tbokim\n";
        let mut out = Vec::new();
        RowMasker::new(group(Some(2))).process(input, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
        let (first, last) = (rows[0][0].to_lowercase(), rows[0][1].to_lowercase());
        assert!(rows[0][2].starts_with(&format!("{first}.{last}.")), "{text}");
        assert!(rows[0][3].starts_with(&format!("{first}{last}_")), "{text}");
        // The seed column masks as it would alone: copies elsewhere match.
        let mut alone = Vec::new();
        RowMasker::new(group(None)).process(input, &mut alone).unwrap();
        let alone = String::from_utf8(alone).unwrap();
        assert_eq!(alone.lines().next().unwrap().split('\t').nth(2), Some(rows[0][2]));
        // A NULL seed: each column masks on its own, NULL stays NULL.
        assert_eq!(rows[1][2], "\\N");
        assert_eq!(rows[1], alone.lines().nth(1).unwrap().split('\t').collect::<Vec<_>>());
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
                person_seed: None,
                from_row: Vec::new(),
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
