//! Which tables are dumped, and which keep their structure only.
//!
//! Patterns are globs (`*`, `?`, `[abc]`) over `schema.table`; a pattern
//! without a dot matches the table name in any schema. A pattern that applies
//! to a partitioned table applies to its partitions too. Foreign keys are
//! checked: a restored snapshot must satisfy them, so leaving out the rows a
//! dumped table refers to is refused before anything is written.

use std::collections::{HashMap, HashSet};

use crate::source::catalog::{Catalog, RelKind, Table};

/// The `--include-table`, `--exclude-table` and `--schema-only-table` patterns.
#[derive(Debug, Clone, Default)]
pub struct TablePatterns {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub schema_only: Vec<String>,
}

impl TablePatterns {
    /// These patterns plus the rules' `rows: skip` tables as structure-only.
    pub fn with_rules(&self, rules: Option<&crate::rules::Rules>) -> TablePatterns {
        let mut out = self.clone();
        for t in rules.map(|r| r.tables.as_slice()).unwrap_or_default() {
            if t.rule.rows == crate::rules::Rows::Skip {
                if let Ok((schema, name)) = crate::rules::split_table_name(&t.name) {
                    out.schema_only.push(glob::Pattern::escape(&format!("{schema}.{name}")));
                }
            }
        }
        out
    }
}

/// Problems found while selecting tables (all of them, not the first).
#[derive(Debug, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct SelectionError {
    pub problems: Vec<String>,
}

/// The outcome: per table oid, whether it is dumped and with rows.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Tables whose structure is dumped.
    pub selected: HashSet<u32>,
    /// Ordinary tables whose rows are dumped (a subset of `selected`).
    pub with_rows: HashSet<u32>,
    /// Tables left out entirely (passed to pg_dump as exclusions).
    pub excluded: Vec<u32>,
    /// Patterns that matched nothing (worth a warning).
    pub unmatched: Vec<String>,
}

struct Pattern {
    text: String,
    glob: glob::Pattern,
    qualified: bool,
}

crate::error::message_error!(
    /// A table pattern that is not a valid glob.
    BadPattern
);

impl Pattern {
    fn new(text: &str) -> Result<Self, BadPattern> {
        let glob = glob::Pattern::new(text).map_err(|e| format!("table pattern '{text}' is not a valid glob: {e}"))?;
        Ok(Pattern { text: text.to_string(), glob, qualified: text.contains('.') })
    }
    fn matches(&self, t: &Table) -> bool {
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: false,
            require_literal_leading_dot: false,
        };
        if self.qualified {
            self.glob.matches_with(&t.display_name(), opts)
        } else {
            self.glob.matches_with(&t.name, opts)
        }
    }
}

impl Selection {
    /// Applies the patterns to the catalog and checks foreign keys.
    pub fn build(catalog: &Catalog, patterns: &TablePatterns) -> Result<Self, SelectionError> {
        let mut problems = Vec::new();
        let mut compile = |list: &[String]| -> Vec<Pattern> {
            list.iter()
                .filter_map(|p| match Pattern::new(p) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        problems.push(e.0);
                        None
                    }
                })
                .collect()
        };
        let include = compile(&patterns.include);
        let exclude = compile(&patterns.exclude);
        let schema_only = compile(&patterns.schema_only);
        if !problems.is_empty() {
            return Err(SelectionError { problems });
        }

        let by_oid: HashMap<u32, &Table> = catalog.tables.iter().map(|t| (t.oid, t)).collect();
        // A table and its ancestors, for patterns that name a parent.
        let lineage = |t: &Table| catalog.lineage(t.oid);
        let mut used: HashSet<String> = HashSet::new();
        let mut any_match = |pats: &[Pattern], t: &Table| -> bool {
            let mut hit = false;
            for anc in lineage(t) {
                for p in pats {
                    if p.matches(anc) {
                        used.insert(p.text.clone());
                        hit = true;
                    }
                }
            }
            hit
        };

        let mut sel = Selection::default();
        for t in &catalog.tables {
            let included = include.is_empty() || any_match(&include, t);
            let excluded = any_match(&exclude, t);
            let structure_only = any_match(&schema_only, t);
            if included && !excluded {
                sel.selected.insert(t.oid);
                if t.kind == RelKind::Table && !structure_only {
                    sel.with_rows.insert(t.oid);
                }
            } else {
                sel.excluded.push(t.oid);
            }
        }
        for p in include.iter().chain(&exclude).chain(&schema_only) {
            if !used.contains(&p.text) {
                sel.unmatched.push(p.text.clone());
            }
        }

        // Whether a table (or, for a partitioned one, any partition) has rows.
        let has_rows = |oid: u32| -> bool {
            if sel.with_rows.contains(&oid) {
                return true;
            }
            catalog.tables.iter().any(|t| sel.with_rows.contains(&t.oid) && lineage(t).iter().any(|a| a.oid == oid))
        };
        for fk in &catalog.foreign_keys {
            if fk.table == fk.references || !sel.selected.contains(&fk.table) {
                continue;
            }
            let (Some(child), Some(parent)) = (by_oid.get(&fk.table), by_oid.get(&fk.references)) else {
                continue;
            };
            if !sel.selected.contains(&fk.references) {
                problems.push(format!(
                    "{} is dumped but refers (foreign key {}) to {}, which is excluded: the restored schema could not create that key. Exclude {} as well, or stop excluding {}",
                    child.display_name(), fk.name, parent.display_name(), child.display_name(), parent.display_name()
                ));
            } else if has_rows(fk.table) && !has_rows(fk.references) {
                problems.push(format!(
                    "{} keeps its rows but refers (foreign key {}) to {}, whose rows are not dumped: the restored rows would violate that key. Mark {} --schema-only-table as well, or dump {}'s rows",
                    child.display_name(), fk.name, parent.display_name(), child.display_name(), parent.display_name()
                ));
            }
        }
        if problems.is_empty() {
            Ok(sel)
        } else {
            Err(SelectionError { problems })
        }
    }
}

/// A pg_dump `--exclude-table` pattern that matches exactly this table.
pub fn exact_pg_dump_pattern(t: &Table) -> String {
    crate::sql::qualified(&t.schema, &t.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::catalog::ForeignKey;

    fn table(oid: u32, schema: &str, name: &str, kind: RelKind, parents: Vec<u32>) -> Table {
        Table {
            oid,
            schema: schema.into(),
            name: name.into(),
            kind,
            parents,
            columns: vec![],
            estimated_rows: 0,
            bytes: 0,
        }
    }

    fn catalog() -> Catalog {
        Catalog {
            tables: vec![
                table(1, "public", "customers", RelKind::Table, vec![]),
                table(2, "public", "orders", RelKind::Table, vec![]),
                table(3, "audit", "log_2026", RelKind::Table, vec![4]),
                table(4, "audit", "log", RelKind::Partitioned, vec![]),
                table(5, "public", "audit_trail", RelKind::Table, vec![]),
            ],
            foreign_keys: vec![ForeignKey {
                name: "orders_customer_fk".into(),
                table: 2,
                references: 1,
                columns: vec!["customer_id".into()],
                ref_columns: vec!["id".into()],
            }],
            sequences: vec![],
            unique_columns: Default::default(),
            primary_columns: Default::default(),
        }
    }

    fn pats(include: &[&str], exclude: &[&str], schema_only: &[&str]) -> TablePatterns {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        TablePatterns { include: v(include), exclude: v(exclude), schema_only: v(schema_only) }
    }

    #[test]
    fn everything_by_default() {
        let s = Selection::build(&catalog(), &TablePatterns::default()).unwrap();
        assert_eq!(s.selected.len(), 5);
        assert_eq!(s.with_rows, HashSet::from([1, 2, 3, 5]));
    }

    #[test]
    fn exclusion_reaches_partitions_and_unqualified_patterns_match_names() {
        let s = Selection::build(&catalog(), &pats(&[], &["audit.log"], &["audit_*"])).unwrap();
        assert!(!s.selected.contains(&3) && !s.selected.contains(&4));
        assert!(s.selected.contains(&5) && !s.with_rows.contains(&5));
        assert!(s.unmatched.is_empty());
    }

    #[test]
    fn foreign_keys_are_checked_all_at_once() {
        let err = Selection::build(&catalog(), &pats(&[], &["public.customers"], &[])).unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert!(err.problems[0].contains("orders_customer_fk"), "{err}");
        let err = Selection::build(&catalog(), &pats(&[], &[], &["customers"])).unwrap_err();
        assert!(err.problems[0].contains("rows are not dumped"), "{err}");
        // Both structure-only: fine.
        assert!(Selection::build(&catalog(), &pats(&[], &[], &["customers", "orders"])).is_ok());
    }

    #[test]
    fn unmatched_and_bad_patterns() {
        let s = Selection::build(&catalog(), &pats(&[], &["nope.*"], &[])).unwrap();
        assert_eq!(s.unmatched, vec!["nope.*"]);
        assert!(Selection::build(&catalog(), &pats(&["[x"], &[], &[])).is_err());
    }
}
