//! The verdict: which candidates were real, where they came from, and
//! which of them block publishing.
//!
//! A candidate is a key of a kept field that the filter passed. It is
//! confirmed when a remembered original has the same 64-bit keyed hash
//! ([`super::origins`]), and attributed to the masked column(s) it came
//! from. What a confirmed match means depends on what it is:
//!
//! - an email, a phone number's digits or a run of six digits or more
//!   ([`Shape::Identifying`]) is a leak wherever it is found;
//! - a whole original of two words or more, or with digits
//!   ([`Shape::Phrase`]: a full name, a street address) is a leak when its
//!   column's values are mostly distinct (half or more); in a column of
//!   repeating values (a city, a state) it identifies nobody by itself;
//! - a single word ([`Shape::Word`]: a first name, a city) found as a whole
//!   kept field is a coincidence, unless it is a pattern: when half or more
//!   of the kept column's fields (and at least five) hold such values of
//!   one masked column, the kept column is a copy of it, and that is a leak.
//!
//! A kept column may acknowledge masked columns it legitimately shares
//! values with (`keep: {reason, may_contain: [...]}`); their matches never
//! block, and are recorded as acknowledged.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::keys::Shape;
use super::probe::Candidate;
use super::Origins;

/// Share of a kept column's fields that must hold one masked column's
/// values (whole, repeating ones) before it counts as a copy of it; also
/// the share of distinct values above which a phrase identifies.
pub const COPY_SHARE: f64 = 0.5;
/// Fields a copy must hold at least: two rows of a tiny table that share a
/// city are a coincidence, whatever their share.
pub const COPY_ROWS: u64 = 5;

/// What one kept column showed.
#[derive(Debug, Clone, Default)]
pub struct ColumnScan {
    /// `schema.table`, as messages name it.
    pub table: String,
    pub column: String,
    /// Fields tested (non-NULL).
    pub tested: u64,
    pub found: HashMap<u64, Candidate>,
    /// Candidate fields past the ones kept, extrapolated from them.
    pub overflow: u64,
    /// Masked columns (`schema.table.column`) it may share values with.
    pub acknowledged: Vec<String>,
}

/// What a confirmed match is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    /// Original values that identify: publishing is refused.
    Leak,
    /// Repeating words, in so many of the column's fields that it is a
    /// copy of the masked column: publishing is refused.
    Copy,
    /// Repeating words or values, in few fields: not a leak.
    Coincidence,
    /// Shared values the rules acknowledge: not a leak.
    Acknowledged,
}

impl Evidence {
    /// Whether it refuses publishing.
    pub fn blocks(self) -> bool {
        matches!(self, Evidence::Leak | Evidence::Copy)
    }
}

/// One kept column holding values of one masked column.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    /// The kept column, `schema.table.column`.
    pub column: String,
    /// The masked column whose original values it holds.
    pub source: String,
    /// Fields (rows) that hold them.
    pub rows: u64,
    /// Fields tested in the kept column.
    pub tested: u64,
    /// Found as whole fields (else inside longer text).
    pub whole_values: bool,
    /// The most identifying kind of match.
    pub shape: Shape,
    pub evidence: Evidence,
    /// The "column" is an object of the schema scripts (a comment, a
    /// default, a constraint), not a kept column.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub schema: bool,
}

impl Finding {
    /// One line for a person: what, where, how many, and what to do.
    pub fn describe(&self) -> String {
        let what = match (self.shape, self.whole_values) {
            (Shape::Identifying, false) => "emails, phone numbers or long numbers inside its text",
            (Shape::Identifying, true) => "whole values (emails, phone numbers or long numbers)",
            (Shape::Phrase, _) => "whole values (names or addresses of two words or more, or with digits)",
            (Shape::Word, _) => "whole values of one word",
        };
        match self.schema {
            true => format!("the schema object {} holds original values of {}: {what}", self.column, self.source),
            false => format!(
                "{} holds original values of {} in {} of {} row(s): {what}",
                self.column, self.source, self.rows, self.tested
            ),
        }
    }

    /// The two ways out, with the lines to write.
    pub fn remedy(&self) -> String {
        if self.schema {
            return "change that object in the source (a comment, a default, a constraint or a bound that quotes personal data), or leave its table out of the snapshot".to_string();
        }
        let column = self.column.rsplit('.').next().unwrap_or(&self.column);
        let mask = match (self.shape, self.whole_values) {
            (Shape::Identifying, false) => {
                format!("scrub the values out of its text (`{column}: pii_scrub`)")
            }
            _ => format!("mask it like {} (give `{column}` the same rule and domain)", self.source),
        };
        format!(
            "{mask}, or acknowledge it in the rules with a reason: `{column}: {{keep: {{reason: \"...\", may_contain: [{source}]}}}}`",
            source = self.source
        )
    }
}

/// The scan's conclusion over every kept column.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// Every confirmed match, blocking or not, by column and source.
    pub findings: Vec<Finding>,
    /// Distinct candidate keys, and those confirmed.
    pub candidates: u64,
    pub confirmed: u64,
}

impl Verdict {
    /// The findings that refuse publishing.
    pub fn blocking(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.evidence.blocks())
    }
}

/// Confirms every column's candidates against `origins` and judges them.
pub fn decide(columns: &[ColumnScan], origins: &Origins) -> std::io::Result<Verdict> {
    let all: HashSet<u64> = columns.iter().flat_map(|c| c.found.keys().copied()).collect();
    let unconfirmable = origins.failed();
    let confirmed = if unconfirmable { HashMap::new() } else { origins.confirm(&all)? };
    let mut verdict = Verdict { candidates: all.len() as u64, confirmed: confirmed.len() as u64, ..Verdict::default() };
    for scan in columns {
        let schema = scan.table == super::schema::SCHEMA;
        let column = match schema {
            true => scan.column.clone(),
            false => format!("{}.{}", scan.table, scan.column),
        };
        let (strong, weak) = attribute(scan, &confirmed, origins, unconfirmable);
        let found_rows: u64 = scan.found.values().map(|c| c.rows).sum();
        let scale = |rows: u64| match found_rows {
            0 => rows,
            n => rows.saturating_add(((rows as u128 * scan.overflow as u128) / n as u128) as u64),
        };
        let mut sources: Vec<&String> = strong.keys().chain(weak.keys()).collect();
        sources.sort();
        sources.dedup();
        for source in sources {
            let s = strong.get(source).copied().unwrap_or_default();
            let w = weak.get(source).copied().unwrap_or_default();
            let acknowledged = scan.acknowledged.iter().any(|a| a == source);
            let evidence = if acknowledged {
                Evidence::Acknowledged
            } else if s.rows > 0 {
                Evidence::Leak
            } else if scale(w.rows) >= COPY_ROWS && scale(w.rows) as f64 >= COPY_SHARE * scan.tested as f64 {
                Evidence::Copy
            } else {
                Evidence::Coincidence
            };
            let main = if s.rows > 0 { s } else { w };
            verdict.findings.push(Finding {
                column: column.clone(),
                source: source.clone(),
                rows: scale(s.rows.max(w.rows)).min(scan.tested.max(1)),
                tested: scan.tested,
                whole_values: main.whole,
                shape: main.shape,
                evidence,
                schema,
            });
        }
    }
    Ok(verdict)
}

/// Rows of a kept column holding one source's values, how, and the most
/// identifying kind of match.
#[derive(Debug, Clone, Copy)]
struct Held {
    rows: u64,
    whole: bool,
    shape: Shape,
}

impl Default for Held {
    fn default() -> Self {
        Held { rows: 0, whole: true, shape: Shape::Word }
    }
}

impl Held {
    fn add(&mut self, c: &Candidate, shape: Shape) {
        self.rows += c.rows;
        self.whole &= c.whole;
        self.shape = self.shape.min(shape);
    }
}

/// A column's confirmed candidates, by source: those that identify
/// (strong) and those that only repeat words or values (weak).
fn attribute(
    scan: &ColumnScan,
    confirmed: &HashMap<u64, Vec<super::origins::Origin>>,
    origins: &Origins,
    unconfirmable: bool,
) -> (BTreeMap<String, Held>, BTreeMap<String, Held>) {
    let (mut strong, mut weak): (BTreeMap<String, Held>, BTreeMap<String, Held>) = Default::default();
    for (hash, c) in &scan.found {
        if unconfirmable {
            // The store failed: every candidate counts, as the filter says.
            strong
                .entry("(a masked column; the confirmation store failed)".into())
                .or_default()
                .add(c, Shape::Identifying);
            continue;
        }
        for origin in confirmed.get(hash).into_iter().flatten() {
            let Some(source) = origins.source(origin.source) else { continue };
            let identifies = match origin.shape {
                Shape::Identifying => true,
                Shape::Phrase => source.distinct_ratio() >= COPY_SHARE,
                Shape::Word => false,
            };
            let map = if identifies { &mut strong } else { &mut weak };
            map.entry(source.name.clone()).or_default().add(c, origin.shape);
        }
    }
    (strong, weak)
}
