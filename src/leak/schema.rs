//! The schema scripts probed for remembered originals: pg_dump's pre-data
//! and post-data carry comments, column defaults, check constraints,
//! policy expressions and partition bounds, any of which can quote a value.
//! Each entry (one object) is probed whole for emails, phone numbers and
//! long numbers anywhere in it, and each of its string literals whole; what
//! passes the filter is confirmed and judged like a kept column's field.

use std::collections::HashMap;

use super::probe::{Candidate, Tally};
use super::{Bloom, Probe};
use crate::schema_script;

/// The table name findings of schema objects carry.
pub const SCHEMA: &str = "schema";

/// Probes one script: one "column" per entry (its object, named as pg_dump
/// names it, and the file), each tested once.
pub fn probe(bloom: &Bloom, file: &str, text: &str) -> (String, Vec<String>, Tally) {
    let mut names = Vec::new();
    let mut tally = Tally::default();
    for (header, entry) in schema_script::entries(text) {
        let mut found: HashMap<u64, Candidate> = HashMap::new();
        let mut look = |hash: u64, whole: bool| {
            if bloom.contains(hash) {
                let c = found.entry(hash).or_default();
                c.rows = 1;
                c.whole |= whole;
            }
        };
        bloom.probes(entry.as_bytes(), Probe::Full, |hash, _| look(hash, false));
        for literal in literals(entry) {
            bloom.probes(literal.as_bytes(), Probe::Full, &mut look);
        }
        let object = header
            .strip_prefix("-- Name: ")
            .or_else(|| header.strip_prefix("-- Data for Name: "))
            .and_then(|h| h.split("; Owner:").next())
            .unwrap_or("the script's preamble");
        names.push(format!("{object} ({file})"));
        tally.tested.push(1);
        tally.found.columns.push(found);
        tally.found.overflow.push(0);
    }
    (SCHEMA.to_string(), names, tally)
}

/// The SQL string literals of a text, unescaped (`''` is a quote).
fn literals(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut in_comment = false;
    while let Some(c) = chars.next() {
        if in_comment {
            in_comment = c != '\n';
            continue;
        }
        match c {
            '-' if chars.peek() == Some(&'-') => in_comment = true,
            '\'' => {
                let mut lit = String::new();
                loop {
                    match chars.next() {
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            lit.push('\'');
                        }
                        Some('\'') | None => break,
                        Some(c) => lit.push(c),
                    }
                }
                out.push(lit);
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_comments_are_probed_per_object() {
        let bloom = Bloom::new(1 << 16);
        bloom.remember("alice@example.com");
        bloom.remember("Jane Doe-Smith");
        let script = "--\n-- Name: t; Type: TABLE; Schema: public; Owner: -\n--\n\nCREATE TABLE public.t (who text DEFAULT 'Jane Doe-Smith', n text DEFAULT 'it''s');\n\n--\n-- Name: COLUMN t.who; Type: COMMENT; Schema: public; Owner: -\n--\n\nCOMMENT ON COLUMN public.t.who IS 'e.g. alice@example.com';\n\n--\n-- Name: u; Type: TABLE; Schema: public; Owner: -\n--\n\nCREATE TABLE public.u (id int);\n";
        let (table, names, tally) = probe(&bloom, "schema/pre-data.sql", script);
        assert_eq!(table, SCHEMA);
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names[0].starts_with("t; Type: TABLE; Schema: public"), "{names:?}");
        let hits: Vec<usize> = tally.found.columns.iter().map(|m| m.len()).collect();
        assert_eq!(hits, vec![1, 1, 0], "the default's whole literal, the comment's email");
        assert!(tally.found.columns[0].values().all(|c| c.whole));
        assert_eq!(literals("x 'a''b' -- 'not this'\n 'c'"), vec!["a'b", "c"]);
    }
}
