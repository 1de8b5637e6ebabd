//! The security review: `scrubsnap check` and `scrubsnap rules init`.
//!
//! `check` validates the rules against the live schema exactly as `create`
//! does, then reports every column: its type and key role, the rule that
//! applies and why, and whether its name or a sample of its values suggests
//! personal data. Sampled values are counted, never printed.

pub mod detect;
pub mod init;
pub mod scan;

use std::collections::{BTreeMap, HashMap};

use tokio_postgres::Client;

use crate::leak::verdict::{Finding, Verdict};
use crate::mask::{ColumnInfo, MaskKey, TypeClass};
use crate::plan::masking::{self, Coverage, MaskPlan, Why};
use crate::plan::Selection;
use crate::rules::{Rules, RulesError};
use crate::source::catalog::{Catalog, RelKind, Table};
use crate::source::SourceError;
use crate::sql;

use detect::{Kind, SampleStats};

/// Share of sampled values that must contain a kind for the column to be suspected.
pub const MIN_SHARE: f64 = 0.1;

/// Why a column is suspected of holding personal data.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Suspicion {
    pub kind: Kind,
    /// `name` or `values`.
    pub from: &'static str,
    /// For `values`: the share of sampled values that matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
}

/// One column of the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ColumnReport {
    pub table: String,
    pub column: String,
    #[serde(rename = "type")]
    pub type_name: String,
    /// `primary key`, `unique`, `foreign key -> schema.table.column`.
    pub roles: Vec<String>,
    pub coverage: Coverage,
    pub suspected: Vec<Suspicion>,
    /// Masked columns whose original values this column holds (from the
    /// leak analysis), with the verdict `create` would give.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<Finding>,
    /// Why this column fails the check, if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// The whole report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub strict: bool,
    pub rules_sha256: String,
    /// Rows per table sampled for the values (0: every row, `--full`).
    pub sampled_rows_per_table: u64,
    /// The leak analysis over the same rows: candidates and confirmed matches.
    pub leak_candidates: u64,
    pub leak_confirmed: u64,
    pub columns: Vec<ColumnReport>,
    /// With `subset:`: which rule keeps each table's rows, and how many.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subset: Vec<crate::plan::subset::SubsetTable>,
    pub passed: bool,
}

/// Samples up to `limit` rows, spread over each table, of every text-like
/// column of the tables whose rows are dumped.
pub async fn sample(
    client: &Client,
    catalog: &Catalog,
    with_rows: &std::collections::HashSet<u32>,
    limit: u64,
) -> Result<HashMap<(u32, String), SampleStats>, SourceError> {
    let mut out = HashMap::new();
    if limit == 0 {
        return Ok(out);
    }
    for t in catalog.tables.iter().filter(|t| t.kind == RelKind::Table && with_rows.contains(&t.oid)) {
        let cols: Vec<&str> = t
            .columns
            .iter()
            .filter(|c| {
                matches!(
                    ColumnInfo::from_type(&c.type_name, false, false).class,
                    TypeClass::Text | TypeClass::Json | TypeClass::Other | TypeClass::Inet
                )
            })
            .map(|c| c.name.as_str())
            .collect();
        if cols.is_empty() {
            continue;
        }
        let select: Vec<String> = cols.iter().map(|c| format!("{}::text", sql::ident(c))).collect();
        let (tablesample, limit) = scan::sampling(t, scan::Sample::Rows(limit));
        let q = format!("SELECT {} FROM ONLY {}{tablesample}{limit}", select.join(", "), t.qualified());
        let rows = client
            .query(&q, &[])
            .await
            .map_err(|e| SourceError::query(format!("sampling {}", t.display_name()), &e))?;
        for row in rows {
            for (i, c) in cols.iter().enumerate() {
                if let Ok(Some(v)) = row.try_get::<_, Option<String>>(i) {
                    out.entry((t.oid, c.to_string())).or_insert_with(SampleStats::default).add(&v);
                }
            }
        }
    }
    Ok(out)
}

/// Key roles of every column: primary key, unique, foreign key targets.
pub fn roles(catalog: &Catalog) -> HashMap<(u32, String), Vec<String>> {
    let mut out: HashMap<(u32, String), Vec<String>> = HashMap::new();
    for (oid, col) in &catalog.primary_columns {
        out.entry((*oid, col.clone())).or_default().push("primary key".into());
    }
    for (oid, col) in &catalog.unique_columns {
        if !catalog.primary_columns.contains(&(*oid, col.clone())) {
            out.entry((*oid, col.clone())).or_default().push("unique".into());
        }
    }
    for fk in &catalog.foreign_keys {
        let target = catalog.table(fk.references).map(Table::display_name).unwrap_or_default();
        for (c, p) in fk.columns.iter().zip(&fk.ref_columns) {
            out.entry((fk.table, c.clone())).or_default().push(format!("foreign key -> {target}.{p}"));
        }
    }
    for v in out.values_mut() {
        v.sort();
        v.dedup();
    }
    out
}

/// The masking plan `check` judges: the rules as `create` would apply them,
/// with strict's refusal left to the report, and a key of its own (check
/// never writes a masked value anywhere).
pub fn plan(rules: &Rules, catalog: &Catalog, selection: &Selection) -> Result<MaskPlan, RulesError> {
    let mut lenient = rules.clone();
    lenient.strict = false;
    masking::build(&lenient, catalog, &selection.with_rows, &MaskKey::ephemeral())
}

/// What `check` looked at besides the rules.
pub struct Evidence<'a> {
    pub samples: &'a HashMap<(u32, String), SampleStats>,
    pub sampled_rows: u64,
    /// The leak analysis over the samples (or every row).
    pub leaks: &'a Verdict,
    /// With `subset:`, how each table's rows are chosen and how many are kept.
    pub subset: Vec<crate::plan::subset::SubsetTable>,
}

/// Checks the rules' `plan` against the catalog and what was sampled; the
/// report says whether the check passed: every suspected column masked or
/// kept with a reason, under strict every column covered, and no kept
/// column holding original values `create`'s leak scan would refuse.
pub fn check(rules: &Rules, plan: &MaskPlan, catalog: &Catalog, evidence: Evidence) -> Report {
    let roles = roles(catalog);
    let by_name: BTreeMap<(String, String), &Table> =
        catalog.tables.iter().map(|t| ((t.display_name(), String::new()), t)).collect();
    let mut columns = Vec::new();
    for cov in &plan.coverage {
        let Some(t) = by_name.get(&(cov.table.clone(), String::new())) else { continue };
        let type_name =
            t.columns.iter().find(|c| c.name == cov.column).map(|c| c.type_name.clone()).unwrap_or_default();
        let mut suspected: Vec<Suspicion> = detect::by_name_in(&cov.table, &cov.column)
            .into_iter()
            .map(|kind| Suspicion { kind, from: "name", share: None })
            .collect();
        if let Some(stats) = evidence.samples.get(&(t.oid, cov.column.clone())) {
            for (kind, share) in stats.suspected(MIN_SHARE) {
                suspected.push(Suspicion { kind, from: "values", share: Some((share * 1000.0).round() / 1000.0) });
            }
        }
        let name = format!("{}.{}", cov.table, cov.column);
        let holds: Vec<Finding> = evidence.leaks.findings.iter().filter(|f| f.column == name).cloned().collect();
        let failure = failure_of(&cov.coverage, &suspected, &holds, rules.strict);
        columns.push(ColumnReport {
            table: cov.table.clone(),
            column: cov.column.clone(),
            type_name,
            roles: roles.get(&(t.oid, cov.column.clone())).cloned().unwrap_or_default(),
            coverage: cov.coverage.clone(),
            suspected,
            holds,
            failure,
        });
    }
    let passed = columns.iter().all(|c| c.failure.is_none());
    Report {
        strict: rules.strict,
        rules_sha256: rules.sha256.clone(),
        sampled_rows_per_table: evidence.sampled_rows,
        leak_candidates: evidence.leaks.candidates,
        leak_confirmed: evidence.leaks.confirmed,
        columns,
        passed,
        subset: evidence.subset,
    }
}

/// Why a column fails the check, if it does.
fn failure_of(coverage: &Coverage, suspected: &[Suspicion], holds: &[Finding], strict: bool) -> Option<String> {
    let leaks: Vec<String> =
        holds.iter().filter(|f| f.evidence.blocks()).map(|f| format!("{}; {}", f.describe(), f.remedy())).collect();
    if !leaks.is_empty() {
        return Some(format!("create's leak scan would refuse it: {}", leaks.join("; ")));
    }
    match coverage {
        Coverage::Uncovered if !suspected.is_empty() => {
            Some("suspected personal data, and no rule covers it".to_string())
        }
        Coverage::Uncovered if strict => Some("strict: no rule covers it".to_string()),
        Coverage::Kept { reason: None, .. } if !suspected.is_empty() => {
            Some("suspected personal data, kept without a written reason (keep: {reason: \"...\"})".to_string())
        }
        _ => None,
    }
}

impl ColumnReport {
    /// `masked: email (explicit)`, `kept: reason`, `UNCOVERED`...
    pub fn rule_text(&self) -> String {
        match &self.coverage {
            Coverage::Masked { masker, domain, why } => {
                let why = match why {
                    Why::Explicit => "explicit".to_string(),
                    Why::Pattern { pattern } => format!("name pattern {pattern}"),
                    Why::ForeignKey { from } => format!("inherited from {from}"),
                };
                if domain == masking::DEFAULT_DOMAIN {
                    format!("mask {masker} ({why})")
                } else {
                    format!("mask {masker}, domain {domain} ({why})")
                }
            }
            Coverage::Kept { reason: Some(r), may_contain } if !may_contain.is_empty() => {
                format!("keep: {r} (may contain {})", may_contain.join(", "))
            }
            Coverage::Kept { reason: Some(r), .. } => format!("keep: {r}"),
            Coverage::Kept { reason: None, .. } => "keep".to_string(),
            Coverage::Uncovered => "UNCOVERED".to_string(),
            Coverage::NoRows => "rows not dumped".to_string(),
        }
    }

    /// What the leak analysis found in this column, one line a masked column.
    pub fn holds_text(&self) -> String {
        self.holds
            .iter()
            .map(|f| {
                let verdict = match f.evidence {
                    crate::leak::verdict::Evidence::Leak => "LEAK",
                    crate::leak::verdict::Evidence::Copy => "COPY",
                    crate::leak::verdict::Evidence::Coincidence => "coincidence",
                    crate::leak::verdict::Evidence::Acknowledged => "acknowledged",
                };
                format!("values of {} in {} of {} rows ({verdict})", f.source, f.rows, f.tested)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn suspicion_text(&self) -> String {
        self.suspected
            .iter()
            .map(|s| match s.share {
                Some(share) => format!("{} ({:.0}% of sampled values)", s.kind.name(), share * 100.0),
                None => format!("{} (name)", s.kind.name()),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The report as text for a terminal.
pub fn render_text(r: &Report) -> String {
    let mut out = String::new();
    let mut current = String::new();
    for c in &r.columns {
        if c.table != current {
            out.push_str(&format!("\n{}\n", c.table));
            current = c.table.clone();
        }
        let mark = if c.failure.is_some() { "FAIL" } else { "ok  " };
        out.push_str(&format!("  {mark} {:<28} {:<28} {}", c.column, truncate(&c.type_name, 28), c.rule_text()));
        if !c.roles.is_empty() {
            out.push_str(&format!(" [{}]", c.roles.join("; ")));
        }
        if !c.suspected.is_empty() {
            out.push_str(&format!(" suspected: {}", c.suspicion_text()));
        }
        if !c.holds.is_empty() {
            out.push_str(&format!(" holds: {}", c.holds_text()));
        }
        if let Some(f) = &c.failure {
            out.push_str(&format!("\n       -> {f}"));
        }
        out.push('\n');
    }
    out.push_str(&subset_text(r));
    out.push_str(&summary(r));
    out
}

/// The subset section: every table, how its rows are kept, how many.
fn subset_text(r: &Report) -> String {
    if r.subset.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nSubset (rows kept per table)\n");
    for t in &r.subset {
        out.push_str(&format!(
            "  {:<40} {:>10} of ~{:<10} {}\n",
            t.table,
            t.kept_rows.map_or_else(|| "all".to_string(), |n| n.to_string()),
            t.estimated_rows,
            t.reach.describe()
        ));
    }
    out
}

/// The report as Markdown, for a pull request.
pub fn render_markdown(r: &Report) -> String {
    let esc = |s: &str| s.replace('|', "\\|");
    let mut out = String::from("## scrubsnap check\n\n");
    out.push_str(&format!("{}\n\n", summary(r).trim()));
    out.push_str(
        "| | table | column | type | keys | rule | suspected | holds values of |\n|---|---|---|---|---|---|---|---|\n",
    );
    for c in &r.columns {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            if c.failure.is_some() { "❌" } else { "✅" },
            esc(&c.table),
            esc(&c.column),
            esc(&c.type_name),
            esc(&c.roles.join("; ")),
            esc(&c.rule_text()),
            esc(&c.suspicion_text()),
            esc(&c.holds_text())
        ));
    }
    if !r.subset.is_empty() {
        out.push_str("\n### Subset\n\n| table | rows kept | of (estimate) | why |\n|---|---:|---:|---|\n");
        for t in &r.subset {
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                esc(&t.table),
                t.kept_rows.map_or_else(|| "all".to_string(), |n| n.to_string()),
                t.estimated_rows,
                esc(&t.reach.describe())
            ));
        }
    }
    let failures: Vec<&ColumnReport> = r.columns.iter().filter(|c| c.failure.is_some()).collect();
    if !failures.is_empty() {
        out.push_str("\n### To fix\n\n");
        for c in failures {
            out.push_str(&format!("- `{}.{}`: {}\n", c.table, c.column, c.failure.as_deref().unwrap_or("")));
        }
    }
    out
}

fn summary(r: &Report) -> String {
    let count = |f: &dyn Fn(&ColumnReport) -> bool| r.columns.iter().filter(|c| f(c)).count();
    let masked = count(&|c| matches!(c.coverage, Coverage::Masked { .. }));
    let kept = count(&|c| matches!(c.coverage, Coverage::Kept { .. }));
    let uncovered = count(&|c| matches!(c.coverage, Coverage::Uncovered));
    let inherited = count(&|c| matches!(c.coverage, Coverage::Masked { why: Why::ForeignKey { .. }, .. }));
    let failed = count(&|c| c.failure.is_some());
    let sample = match r.sampled_rows_per_table {
        0 => "every row".to_string(),
        n => format!("up to {n} rows per table"),
    };
    format!(
        "\n{} columns: {masked} masked ({inherited} through foreign keys), {kept} kept, {uncovered} uncovered; {} suspected; {} holding masked values ({sample}); {}{}\n",
        r.columns.len(),
        count(&|c| !c.suspected.is_empty()),
        count(&|c| !c.holds.is_empty()),
        if r.passed { "check passed" } else { "check FAILED" },
        if failed > 0 { format!(" ({failed} column(s) to fix)") } else { String::new() }
    )
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}
