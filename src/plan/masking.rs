//! The masking plan: rules checked against the live schema, maskers built.
//!
//! Runs after the catalog is read and before a single row is. Every problem
//! is collected and reported at once: unknown tables and columns, a masker
//! that does not fit the column's type or length, a non-injective masker on
//! a unique column, NULL into NOT NULL, conflicting rules along a foreign
//! key or within a domain, and (under `strict`) every uncovered column.
//!
//! Rules spread along foreign keys: a rule on a referenced column applies,
//! with the same masker, options and domain, to every column that refers to
//! it (transitively, composite keys column by column), so masked keys still
//! join.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::mask::registry::{self, BuildCx};
use crate::mask::rows::{ColumnMask, OnError, TableMask};
use crate::mask::{ColumnInfo, MaskKey};
use crate::rules::{self, ColumnRule, MaskRule, OnErrorSpec, Origin, Problem, Rows, Rules, RulesError};
use crate::source::catalog::{Catalog, RelKind, Table};

/// The domain of rules that name none: the same value masked by the same
/// masker and options gives the same output in every column.
pub const DEFAULT_DOMAIN: &str = "default";

/// Why a column is masked the way it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Why {
    Explicit,
    Pattern { pattern: String },
    ForeignKey { from: String },
}

/// What happens to one column.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Coverage {
    Masked {
        masker: String,
        domain: String,
        why: Why,
    },
    Kept {
        reason: Option<String>,
        /// Masked columns it may share values with (acknowledged).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        may_contain: Vec<String>,
    },
    Uncovered,
    /// The table's rows are not dumped.
    NoRows,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ColumnCoverage {
    pub table: String,
    pub column: String,
    #[serde(flatten)]
    pub coverage: Coverage,
}

/// The checked plan.
#[derive(Default)]
pub struct MaskPlan {
    /// Masks per table oid (only tables with masked columns).
    pub tables: HashMap<u32, TableMask>,
    /// `where:` conditions per table oid.
    pub filters: HashMap<u32, String>,
    /// Tables whose rows are skipped (`rows: skip`), as `schema.table`.
    pub skip_rows: Vec<String>,
    pub coverage: Vec<ColumnCoverage>,
    pub warnings: Vec<String>,
}

#[derive(Clone)]
struct Assigned {
    rule: ColumnRule,
    why: Why,
    origin: Origin,
}

impl MaskPlan {
    /// Of `with_rows` (the tables selected with their rows), those whose
    /// rows are dumped: all but the ones the rules skip (`rows: skip`).
    pub fn dumped(&self, catalog: &Catalog, with_rows: &HashSet<u32>) -> HashSet<u32> {
        with_rows
            .iter()
            .copied()
            .filter(|o| catalog.table(*o).is_some_and(|t| !self.skip_rows.contains(&t.display_name())))
            .collect()
    }
}

/// Builds the plan. `with_rows` are the tables whose rows will be dumped.
/// Every problem is collected and reported at once.
pub fn build(
    rules: &Rules,
    catalog: &Catalog,
    with_rows: &HashSet<u32>,
    key: &MaskKey,
) -> Result<MaskPlan, RulesError> {
    let mut problems: Vec<Problem> = Vec::new();
    let mut plan = MaskPlan::default();
    let table_rules = resolve_tables(rules, catalog, &mut problems);
    let mut assigned = assign(rules, catalog, &table_rules, &mut plan, &mut problems);
    spread_along_keys(catalog, &mut assigned, &mut problems);
    let uncovered = build_masks(catalog, with_rows, key, &assigned, &mut plan, &mut problems);
    link_people(catalog, &table_rules, key, &mut plan, &mut problems);
    check_acknowledgements(&assigned, catalog, &plan, &mut problems);
    if !uncovered.is_empty() {
        let msg = format!("{} column(s) have no rule: {}", uncovered.len(), uncovered.join(", "));
        if rules.strict {
            problems.push(Problem {
                file: rules.files.first().map(|f| f.display().to_string()).unwrap_or_else(|| "rules".into()),
                line: None,
                column: None,
                message: format!("strict: {msg}; add a masker or 'keep' for each"),
            });
        } else {
            plan.warnings.push(format!("{msg} (copied as they are; set strict: true to refuse this)"));
        }
    }
    if problems.is_empty() {
        Ok(plan)
    } else {
        Err(RulesError(problems))
    }
}

/// Step 1: table rules resolved to tables (unknown tables and columns,
/// generated columns and empty `where:` are problems). A rule on a
/// partitioned table covers its partitions (see [`assign`]).
fn resolve_tables<'r>(
    rules: &'r Rules,
    catalog: &Catalog,
    problems: &mut Vec<Problem>,
) -> HashMap<u32, &'r rules::TableRules> {
    let by_name: HashMap<(String, String), &Table> =
        catalog.tables.iter().map(|t| ((t.schema.clone(), t.name.clone()), t)).collect();
    let mut table_rules: HashMap<u32, &rules::TableRules> = HashMap::new();
    for tr in &rules.tables {
        let (schema, name) = match rules::split_table_name(&tr.name) {
            Ok(x) => x,
            Err(e) => {
                problems.push(tr.origin.problem(e.0));
                continue;
            }
        };
        let Some(t) = by_name.get(&(schema.clone(), name.clone())) else {
            problems.push(tr.origin.problem(format!("table {schema}.{name} does not exist in the source database")));
            continue;
        };
        if let Some(f) = &tr.rule.filter {
            if f.trim().is_empty() {
                problems.push(tr.origin.problem(format!("table {}: 'where' is empty", t.display_name())));
            }
        }
        for col in tr.rule.columns.keys() {
            let origin = tr.column_origins.get(col).cloned().unwrap_or_else(|| tr.origin.clone());
            match t.columns.iter().find(|c| &c.name == col) {
                None => problems.push(origin.problem(format!("column {}.{col} does not exist", t.display_name()))),
                Some(c) if c.generated => problems.push(origin.problem(format!(
                    "column {}.{col} is generated: it is computed again on restore, so rule the columns it is computed from"
                , t.display_name()))),
                Some(_) => {}
            }
        }
        table_rules.insert(t.oid, tr);
    }
    table_rules
}

/// Step 2: the explicit and pattern rule of every (table, column), and each
/// table's `rows:` and `where:`. A partition (or an inheriting table) adds
/// to the rules of its parents rather than replacing them: `rows: skip`
/// anywhere up the line skips it, every `where:` up the line applies
/// (together), and a column takes its own rule or its nearest parent's. A
/// column a parent masks can never come out kept, or masked otherwise, from
/// one partition: that is a problem.
fn assign(
    rules: &Rules,
    catalog: &Catalog,
    table_rules: &HashMap<u32, &rules::TableRules>,
    plan: &mut MaskPlan,
    problems: &mut Vec<Problem>,
) -> BTreeMap<(u32, String), Assigned> {
    let mut assigned: BTreeMap<(u32, String), Assigned> = BTreeMap::new();
    for t in catalog.tables.iter().filter(|t| t.kind == RelKind::Table) {
        // Own rules first, then the parents', nearest first.
        let line: Vec<&rules::TableRules> =
            catalog.lineage(t.oid).into_iter().filter_map(|a| table_rules.get(&a.oid).copied()).collect();
        if line.iter().any(|tr| tr.rule.rows == Rows::Skip) {
            plan.skip_rows.push(t.display_name());
        }
        let filters: Vec<&String> = line.iter().filter_map(|tr| tr.rule.filter.as_ref()).collect();
        match filters.as_slice() {
            [] => {}
            [one] => {
                plan.filters.insert(t.oid, (*one).clone());
            }
            many => {
                let all: Vec<String> = many.iter().map(|f| format!("({f})")).collect();
                plan.filters.insert(t.oid, all.join(" AND "));
            }
        }
        for c in t.columns.iter().filter(|c| !c.generated) {
            let ruled: Vec<(ColumnRule, Origin)> = line
                .iter()
                .filter_map(|tr| {
                    tr.rule.columns.get(&c.name).map(|r| {
                        (r.clone(), tr.column_origins.get(&c.name).cloned().unwrap_or_else(|| tr.origin.clone()))
                    })
                })
                .collect();
            if let Some((rule, origin)) = ruled.first().cloned() {
                for (above, _) in &ruled[1..] {
                    if let ColumnRule::Mask(m) = above {
                        let same =
                            matches!(&rule, ColumnRule::Mask(own) if own.spec() == m.spec() && own.domain == m.domain);
                        if !same {
                            problems.push(origin.problem(format!(
                                "{}.{} has its own rule, but a parent table masks that column with {}: a partition adds to its parent's rules and cannot keep (or mask otherwise) what the parent masks; remove the partition's rule on it",
                                t.display_name(),
                                c.name,
                                m.masker
                            )));
                        }
                    }
                }
                assigned.insert((t.oid, c.name.clone()), Assigned { rule, why: Why::Explicit, origin });
                continue;
            }
            let opts = glob::MatchOptions::new();
            if let Some((p, origin)) = rules.patterns.iter().find(|(p, _)| {
                p.column.is_match(&c.name) && p.table.as_ref().is_none_or(|g| g.matches_with(&t.display_name(), opts))
            }) {
                assigned.insert(
                    (t.oid, c.name.clone()),
                    Assigned {
                        rule: p.rule.clone(),
                        why: Why::Pattern { pattern: p.column.as_str().to_string() },
                        origin: origin.clone(),
                    },
                );
            }
        }
    }
    assigned
}

/// Step 3: rules spread along foreign keys until nothing changes. A foreign
/// key declared on a partitioned table binds each of its partitions; a key
/// wins over a name pattern; an explicit, different rule on a referencing
/// column is a problem naming both.
fn spread_along_keys(catalog: &Catalog, assigned: &mut BTreeMap<(u32, String), Assigned>, problems: &mut Vec<Problem>) {
    let by_oid: HashMap<u32, &Table> = catalog.tables.iter().map(|t| (t.oid, t)).collect();
    let leaves_of = |oid: u32| catalog.descendants(oid);
    let mut links: Vec<(u32, String, u32, String, String)> = Vec::new(); // child, col, parent, col, fk name
    for fk in &catalog.foreign_keys {
        for child in leaves_of(fk.table) {
            for parent in leaves_of(fk.references) {
                for (c, p) in fk.columns.iter().zip(&fk.ref_columns) {
                    links.push((child, c.clone(), parent, p.clone(), fk.name.clone()));
                }
            }
        }
    }
    let name_of =
        |oid: u32, col: &str| format!("{}.{col}", by_oid.get(&oid).map(|t| t.display_name()).unwrap_or_default());
    let mut reported: HashSet<(u32, String)> = HashSet::new();
    for _ in 0..64 {
        let mut changed = false;
        for (child, ccol, parent, pcol, fk) in &links {
            let Some(parent_rule) = assigned.get(&(*parent, pcol.clone())).cloned() else { continue };
            let key = (*child, ccol.clone());
            let inherited = Assigned {
                rule: parent_rule.rule.clone(),
                why: Why::ForeignKey { from: name_of(*parent, pcol) },
                origin: parent_rule.origin.clone(),
            };
            match assigned.get(&key) {
                None => {
                    if matches!(parent_rule.rule, ColumnRule::Mask(_)) {
                        assigned.insert(key, inherited);
                        changed = true;
                    }
                }
                Some(existing) => {
                    let same = match (&existing.rule, &parent_rule.rule) {
                        (ColumnRule::Mask(a), ColumnRule::Mask(b)) => a.spec() == b.spec() && a.domain == b.domain,
                        (ColumnRule::Keep { .. }, ColumnRule::Keep { .. }) => true,
                        _ => false,
                    };
                    if same {
                        continue;
                    }
                    if matches!(existing.why, Why::Pattern { .. }) && matches!(parent_rule.rule, ColumnRule::Mask(_)) {
                        // The key wins over a name pattern, or joins break.
                        assigned.insert(key, inherited);
                        changed = true;
                    } else if matches!(existing.why, Why::Explicit) && reported.insert(key.clone()) {
                        problems.push(existing.origin.problem(format!(
                            "{} refers to {} (foreign key {fk}) but has a different rule; masked keys would not match. Remove the rule on {} (it inherits {}'s) or give both the same rule",
                            name_of(*child, ccol), name_of(*parent, pcol), name_of(*child, ccol), name_of(*parent, pcol)
                        )));
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
}

/// Each `from_row` template's column names resolved to COPY positions: a
/// column that does not exist (or is not dumped), itself, or another
/// `from_row` column is a problem.
fn resolve_row_templates(
    t: &Table,
    copy_cols: &[String],
    origins: &HashMap<String, Origin>,
    masks: &mut [ColumnMask],
    problems: &mut Vec<Problem>,
) {
    use crate::mask::maskers::RowPart;
    use crate::mask::rows::RowRef;
    let row_columns: Vec<String> =
        masks.iter().filter(|m| m.masker.row_parts().is_some()).map(|m| m.column.clone()).collect();
    for m in masks.iter_mut() {
        let Some(parts) = m.masker.row_parts() else { continue };
        let Some(origin) = origins.get(&m.column) else { continue };
        let mut refs = Vec::new();
        for p in parts {
            refs.push(match p {
                RowPart::Text(s) => RowRef::Text(s.clone()),
                RowPart::Tag => RowRef::Tag,
                RowPart::Column(name) => {
                    let what = format!("{}.{}: template part {{{name}}}", t.display_name(), m.column);
                    if name == &m.column || row_columns.contains(name) {
                        problems.push(origin.problem(format!("{what} names a from_row column; a template takes other columns' masked values, not its own or another template's")));
                        continue;
                    }
                    match copy_cols.iter().position(|c| c == name) {
                        Some(at) => RowRef::Field(at),
                        None => {
                            problems.push(origin.problem(format!("{what} is not a column of the table (with from_row, parts name columns; {{tag}} is a keyed tag)")));
                            continue;
                        }
                    }
                }
            });
        }
        m.from_row = refs;
    }
}

/// The maskers a `person:` group's seed is taken from, most telling first:
/// the email, which copies in other tables keep matching.
const PERSON_SEED_ORDER: &[&str] =
    &["email", "username", "full_name", "display_name", "first_name", "last_name", "initials"];

/// Step 4b: each table's `person:` group (its own, or its nearest parent's)
/// made one person per row: every member takes its names from the person
/// its seed column's value stands for. Every member must be a person part
/// (names, email, username); only the seed masks as it would alone, so a
/// member other than the seed may not be part of a foreign key.
fn link_people(
    catalog: &Catalog,
    table_rules: &HashMap<u32, &rules::TableRules>,
    key: &MaskKey,
    plan: &mut MaskPlan,
    problems: &mut Vec<Problem>,
) {
    // Every member must be a person part, whatever else is wrong with it.
    let mut in_order: Vec<&rules::TableRules> = table_rules.values().copied().collect();
    in_order.sort_by(|a, b| a.name.cmp(&b.name));
    for tr in in_order {
        for c in &tr.rule.person_columns {
            let Some(ColumnRule::Mask(m)) = tr.rule.columns.get(c) else { continue };
            let Some(def) = registry::find(&m.masker) else { continue };
            let text = ColumnInfo::from_type("text", false, false);
            let cx = BuildCx { key, column: &text, purpose: format!("person/{}", m.spec()), domain: "person".into() };
            let Ok(masker) = def.build(&m.options, &cx) else { continue };
            if masker.person("x", &key.seeder("person", &m.spec())).is_none() {
                let origin = tr.column_origins.get(c).cloned().unwrap_or_else(|| tr.origin.clone());
                problems.push(origin.problem(format!(
                    "{}.{c}: masker '{}' cannot be part of a person (person parts: {})",
                    tr.name,
                    m.masker,
                    PERSON_SEED_ORDER.join(", ")
                )));
            }
        }
    }
    for t in catalog.tables.iter().filter(|t| t.kind == RelKind::Table) {
        let Some(tr) = catalog
            .lineage(t.oid)
            .into_iter()
            .filter_map(|a| table_rules.get(&a.oid).copied())
            .find(|tr| !tr.rule.person_columns.is_empty())
        else {
            continue;
        };
        let Some(mask) = plan.tables.get_mut(&t.oid) else { continue };
        let members: Vec<usize> = mask
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| tr.rule.person_columns.contains(&c.column))
            .map(|(i, _)| i)
            .collect();
        let origin = |c: &str| tr.column_origins.get(c).cloned().unwrap_or_else(|| tr.origin.clone());
        let mut ok = true;
        for &i in &members {
            let c = &mask.columns[i];
            if c.masker.person("x", &c.seeder).is_some() {
                continue;
            }
            ok = false;
            // A masker that is no person part was named above; an array is
            // the other way a member cannot take the person's names.
            let type_name = t.columns.iter().find(|x| x.name == c.column).map_or("", |x| x.type_name.as_str());
            if type_name.ends_with("[]") {
                problems.push(origin(&c.column).problem(format!(
                    "{}.{}: a person's parts are single values (names, email, username), and this column is {type_name}",
                    t.display_name(),
                    c.column
                )));
            }
        }
        let Some(seed) = PERSON_SEED_ORDER
            .iter()
            .find_map(|name| members.iter().copied().find(|&i| mask.columns[i].def.name == *name))
        else {
            continue;
        };
        for &i in &members {
            let c = &mask.columns[i];
            if i == seed {
                continue;
            }
            let keyed = catalog.foreign_keys.iter().find(|fk| {
                (catalog.descendants(fk.table).contains(&t.oid) && fk.columns.contains(&c.column))
                    || (catalog.descendants(fk.references).contains(&t.oid) && fk.ref_columns.contains(&c.column))
            });
            if let Some(fk) = keyed {
                ok = false;
                problems.push(origin(&c.column).problem(format!(
                    "{}.{} is part of foreign key {} but in a person group only the seed ({}) masks as it would alone, so the key would not match; take it out of person: or make it the seed",
                    t.display_name(),
                    c.column,
                    fk.name,
                    mask.columns[seed].column
                )));
            }
        }
        if ok {
            let at = mask.columns[seed].index;
            for &i in &members {
                mask.columns[i].person_seed = Some(at);
            }
        }
    }
}

/// Step 5: an acknowledgement (`may_contain`) names masked columns.
fn check_acknowledgements(
    assigned: &BTreeMap<(u32, String), Assigned>,
    catalog: &Catalog,
    plan: &MaskPlan,
    problems: &mut Vec<Problem>,
) {
    let masked: HashSet<String> = plan
        .coverage
        .iter()
        .filter(|c| matches!(c.coverage, Coverage::Masked { .. }))
        .map(|c| format!("{}.{}", c.table, c.column))
        .collect();
    for ((oid, column), a) in assigned {
        let ColumnRule::Keep { may_contain, .. } = &a.rule else { continue };
        let table = catalog.table(*oid).map(Table::display_name).unwrap_or_default();
        for name in may_contain {
            if !masked.contains(name) {
                problems.push(a.origin.problem(format!(
                    "{table}.{column}: may_contain names {name}, which is not a masked column (write schema.table.column of a column the rules mask)"
                )));
            }
        }
    }
}

/// Step 4: every masked column checked against its column and built, and
/// every column's coverage recorded; returns the columns without a rule.
fn build_masks(
    catalog: &Catalog,
    with_rows: &HashSet<u32>,
    key: &MaskKey,
    assigned: &BTreeMap<(u32, String), Assigned>,
    plan: &mut MaskPlan,
    problems: &mut Vec<Problem>,
) -> Vec<String> {
    let mut domains: HashMap<String, (String, String)> = HashMap::new();
    let mut uncovered = Vec::new();
    for t in catalog.tables.iter().filter(|t| t.kind == RelKind::Table) {
        let copy_cols = t.copy_columns();
        let dumped = with_rows.contains(&t.oid) && !plan.skip_rows.contains(&t.display_name());
        let mut masks = Vec::new();
        let mut origins: HashMap<String, Origin> = HashMap::new();
        for c in t.columns.iter().filter(|c| !c.generated) {
            let a = assigned.get(&(t.oid, c.name.clone()));
            let coverage = match a {
                _ if !dumped => Coverage::NoRows,
                None => {
                    uncovered.push(format!("{}.{}", t.display_name(), c.name));
                    Coverage::Uncovered
                }
                Some(Assigned { rule: ColumnRule::Keep { reason, may_contain }, .. }) => {
                    Coverage::Kept { reason: reason.clone(), may_contain: may_contain.clone() }
                }
                Some(Assigned { rule: ColumnRule::Mask(m), why, origin }) => {
                    origins.insert(c.name.clone(), origin.clone());
                    if let (Why::ForeignKey { from }, Some(serde_json::Value::Bool(true))) =
                        (why, m.options.get("from_row"))
                    {
                        problems.push(origin.problem(format!(
                            "{}.{} refers to {from}, whose from_row template is made from its own row and cannot be repeated here; give {from} a masker of its own value",
                            t.display_name(), c.name
                        )));
                    }
                    let domain = m.domain.clone().unwrap_or_else(|| DEFAULT_DOMAIN.to_string());
                    if let Some(d) = &m.domain {
                        let entry = domains
                            .entry(d.clone())
                            .or_insert_with(|| (m.spec(), format!("{}.{}", t.display_name(), c.name)));
                        if entry.0 != m.spec() {
                            problems.push(origin.problem(format!(
                                "{}.{} is in domain '{d}' with masker {} but {} is in it with {}; a domain maps values identically, so its columns need one masker",
                                t.display_name(), c.name, m.spec(), entry.1, entry.0
                            )));
                        }
                    }
                    let unique = catalog.unique_columns.contains(&(t.oid, c.name.clone()));
                    let info = if c.fields.is_empty() {
                        ColumnInfo::from_type(&c.type_name, c.not_null, unique)
                    } else {
                        ColumnInfo::composite(&c.type_name, c.not_null, c.fields.clone())
                    };
                    let index = copy_cols.iter().position(|n| n == &c.name).unwrap_or(0);
                    match check_and_build(m, &info, &domain, key, &format!("{}.{}", t.display_name(), c.name)) {
                        Ok(mask) => masks.push(ColumnMask { index, column: c.name.clone(), ..mask }),
                        Err(e) => problems.push(origin.problem(e.0)),
                    }
                    Coverage::Masked { masker: m.masker.clone(), domain, why: why.clone() }
                }
            };
            plan.coverage.push(ColumnCoverage { table: t.display_name(), column: c.name.clone(), coverage });
        }
        resolve_row_templates(t, &copy_cols, &origins, &mut masks, problems);
        if !masks.is_empty() && dumped {
            plan.tables.insert(t.oid, TableMask { table: t.display_name(), columns: masks });
        }
    }
    uncovered
}

crate::error::message_error!(
    /// A rule does not fit its column (type, length, uniqueness, NULL), or its masker cannot be built.
    Unfit
);

/// What an array column's rule must satisfy beyond its element's: a value
/// that replaces the whole array (`fixed`, `choice`, `on_error: {fixed}`)
/// must be an array literal, and a template from the row makes scalars.
fn check_array_rule(m: &MaskRule, def: &registry::MaskerDef, what: &str) -> Result<(), Unfit> {
    let is_array = |v: &str| crate::mask::containers::map_array(v, |e| Ok(Some(e.to_string()))).is_ok();
    let mut whole: Vec<String> = Vec::new();
    if def.whole_value() {
        if let Some(serde_json::Value::String(v)) = m.options.get("value") {
            whole.push(v.clone());
        }
        match m.options.get("values") {
            Some(serde_json::Value::Array(a)) => whole.extend(a.iter().map(|v| v.as_str().unwrap_or("").to_string())),
            Some(serde_json::Value::Object(o)) => whole.extend(o.keys().cloned()),
            _ => {}
        }
    }
    if let OnErrorSpec::Fixed(f) = &m.on_error {
        whole.push(f.clone());
    }
    if whole.iter().any(|v| !is_array(v)) {
        return Err(format!(
            "{what} is an array: a value that replaces it whole (masker '{}' or on_error) must be an array literal such as '{{}}' or '{{a,b}}'",
            m.masker
        )
        .into());
    }
    if m.options.get("from_row").and_then(serde_json::Value::as_bool) == Some(true) {
        return Err(format!("{what} is an array: a from_row template makes one value, not an array").into());
    }
    Ok(())
}

pub fn check_and_build(
    m: &MaskRule,
    info: &ColumnInfo,
    domain: &str,
    key: &MaskKey,
    what: &str,
) -> Result<ColumnMask, Unfit> {
    let def = registry::find(&m.masker).ok_or_else(|| format!("unknown masker '{}'", m.masker))?;
    if info.not_null && (m.masker == "null" || m.on_error == OnErrorSpec::Null) {
        return Err(format!("{what} is NOT NULL, so it cannot be set to NULL (masker null or on_error: null)").into());
    }
    // An array is masked element by element (with the element type's fit
    // and uniqueness), except by the maskers that take any type, which
    // replace the whole value.
    if info.element.is_some() {
        check_array_rule(m, def, what)?;
    }
    if let (Some(element), false) = (&info.element, def.whole_value()) {
        let inner = check_and_build(m, element, domain, key, &format!("the elements of {what}"))?;
        let masker: Arc<dyn crate::mask::Masker> = Arc::new(crate::mask::containers::ArrayOf {
            inner: inner.masker,
            max_chars: inner.max_chars,
            truncate: inner.truncate,
            mask_empty: m.mask_empty,
        });
        return Ok(ColumnMask { masker, max_chars: None, truncate: false, ..inner });
    }
    if !def.accepts(info.class) {
        let types: Vec<&str> = def.types.iter().map(|t| t.name()).collect();
        return Err(format!(
            "masker '{}' cannot mask {what}, of type {} (it takes {})",
            m.masker,
            info.type_name,
            types.join(", ")
        )
        .into());
    }
    if info.unique && !def.is_injective(&m.options) {
        return Err(format!(
            "{what} is unique (primary key or unique index) but masker '{}' can map two values to one, which would break the constraint on restore; use an injective masker (email, username, phone, ip, uuid, integer, hash with length >= 16) or keep",
            m.masker
        ).into());
    }
    if let Some(max) = info.max_chars {
        let needed = def.min_chars_for(&m.options);
        if needed > max {
            return Err(format!(
                "masker '{}' writes at least {needed} characters but {what} is {} (at most {max})",
                m.masker, info.type_name
            )
            .into());
        }
        if let OnErrorSpec::Fixed(f) = &m.on_error {
            if f.chars().count() > max {
                return Err(format!("the on_error value is longer than {what} allows ({max})").into());
            }
        }
    }
    let spec = m.spec();
    let cx = BuildCx { key, column: info, purpose: format!("{domain}/{spec}"), domain: domain.to_string() };
    let masker = def.build(&m.options, &cx).map_err(|e| format!("{what}: {e}"))?;
    Ok(ColumnMask {
        index: 0,
        column: String::new(),
        masker: Arc::clone(&masker),
        def,
        seeder: key.seeder(domain, &spec),
        max_chars: info.max_chars,
        truncate: def.may_truncate(&m.options),
        on_error: match &m.on_error {
            OnErrorSpec::Fail => OnError::Fail,
            OnErrorSpec::Null => OnError::Null,
            OnErrorSpec::Fixed(f) => OnError::Fixed(f.clone()),
        },
        mask_empty: m.mask_empty,
        person_seed: None,
        from_row: Vec::new(),
    })
}
