//! Rules files: which masker applies to which column, as a policy a
//! security reviewer reads.
//!
//! A table is written `schema.table`; a quoted part keeps spaces, dots and
//! capitals, and then the whole key needs YAML single quotes:
//! `'"Sales Data"."OrderLines"':`.
//!
//! Configuration has two stages. Here the YAML is parsed into plain types
//! (unknown keys and unknown maskers are errors carrying file:line:column);
//! [`crate::plan::masking`] then checks the rules against the live schema
//! and builds the maskers, reporting every problem at once.
//!
//! ```yaml
//! version: 1
//! strict: true                 # every column of every dumped table is ruled
//! include: [common.yaml]       # relative to this file
//! patterns:                    # for columns without an explicit rule
//!   - column: "(?i)e_?mail"
//!     mask: email
//! tables:
//!   public.customers:
//!     columns:
//!       id: keep
//!       email: {mask: email, domain: customer_email}
//!       phone: phone
//!       notes: {keep: {reason: "free text reviewed: product feedback only"}}
//!   public.audit_log:
//!     rows: skip                # structure only
//!   public.orders:
//!     where: "created_at > now() - interval '90 days'"
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::mask::registry;

/// The current rules format version.
pub const VERSION: u32 = 1;

/// Keys of a column rule that are not masker options.
const RULE_KEYS: &[&str] = &["mask", "domain", "on_error", "mask_empty", "reason"];

/// A problem in a rules file, with its position when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{}:{}: {}", self.file, l, c, self.message),
            (Some(l), None) => write!(f, "{}:{}: {}", self.file, l, self.message),
            _ => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Every problem found, one per line.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct RulesError(pub Vec<Problem>);

crate::error::message_error!(
    /// One rule that cannot be read, before its position is known.
    RuleError
);

/// What happens to a value the masker fails on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnErrorSpec {
    Fail,
    Null,
    Fixed(String),
}

/// The rule for one column.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnRule {
    /// Copied as is, after review. `may_contain` acknowledges masked
    /// columns (`schema.table.column`) whose values it may legitimately
    /// share: the leak scan does not count those matches against it.
    Keep { reason: Option<String>, may_contain: Vec<String> },
    /// Masked.
    Mask(MaskRule),
}

#[derive(Debug, Clone, PartialEq)]
pub struct MaskRule {
    pub masker: String,
    pub options: Map<String, Value>,
    pub domain: Option<String>,
    pub on_error: OnErrorSpec,
    pub mask_empty: bool,
}

impl MaskRule {
    /// Masker and options, canonical: two rules with the same spec and
    /// domain map every value identically.
    pub fn spec(&self) -> String {
        registry::spec_string(&self.masker, &self.options)
    }
}

impl<'de> Deserialize<'de> for ColumnRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        column_rule(v).map_err(de::Error::custom)
    }
}

fn column_rule(v: Value) -> Result<ColumnRule, RuleError> {
    match v {
        Value::String(s) if s == "keep" => Ok(ColumnRule::Keep { reason: None, may_contain: Vec::new() }),
        Value::String(s) => mask_rule(s, Map::new()).map(ColumnRule::Mask),
        Value::Object(mut m) => {
            if let Some(keep) = m.remove("keep") {
                if let Some(k) = m.keys().next() {
                    return Err(format!("'keep' cannot be combined with '{k}'").into());
                }
                return match keep {
                    Value::Bool(true) | Value::Null => Ok(ColumnRule::Keep { reason: None, may_contain: Vec::new() }),
                    Value::String(r) => Ok(ColumnRule::Keep { reason: Some(r), may_contain: Vec::new() }),
                    Value::Object(mut o) => {
                        let reason = match o.remove("reason") {
                            Some(Value::String(r)) => Some(r),
                            None => None,
                            Some(_) => return Err("keep: reason must be text".into()),
                        };
                        let may_contain = match o.remove("may_contain") {
                            None => Vec::new(),
                            Some(Value::Array(items)) => items
                                .into_iter()
                                .map(|i| match i {
                                    Value::String(c) => Ok(c),
                                    _ => {
                                        Err(RuleError::from("may_contain lists masked columns as schema.table.column"))
                                    }
                                })
                                .collect::<Result<_, _>>()?,
                            Some(Value::String(c)) => vec![c],
                            Some(_) => return Err("may_contain lists masked columns as schema.table.column".into()),
                        };
                        if let Some(k) = o.keys().next() {
                            return Err(format!("unknown key '{k}' in keep (expected: reason, may_contain)").into());
                        }
                        if !may_contain.is_empty() && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                            return Err("keep: may_contain needs a reason: why this column may share values with those masked columns".into());
                        }
                        Ok(ColumnRule::Keep { reason, may_contain })
                    }
                    _ => Err("keep takes a reason: keep: {reason: \"...\"}".into()),
                };
            }
            let name = match m.remove("mask") {
                Some(Value::String(n)) => n,
                Some(Value::Null) => "null".to_string(),
                Some(_) => return Err("'mask' must name a masker".into()),
                None => return Err("a column rule needs 'mask: MASKER' or 'keep'".into()),
            };
            mask_rule(name, m).map(ColumnRule::Mask)
        }
        Value::Null => mask_rule("null".into(), Map::new()).map(ColumnRule::Mask),
        _ => Err("a column rule is 'keep', a masker name, or a map with 'mask:'".into()),
    }
}

fn mask_rule(name: String, mut m: Map<String, Value>) -> Result<MaskRule, RuleError> {
    let def = registry::find(&name).ok_or_else(|| {
        let names: Vec<&str> = registry::MASKERS.iter().map(|d| d.name).collect();
        format!("unknown masker '{name}' (run `scrubsnap maskers`; known: {})", names.join(", "))
    })?;
    let domain = match m.remove("domain") {
        None => None,
        Some(Value::String(d)) if !d.is_empty() => Some(d),
        Some(_) => return Err("'domain' must be a non-empty name".into()),
    };
    let on_error = match m.remove("on_error") {
        None => OnErrorSpec::Fail,
        Some(Value::String(s)) if s == "fail" => OnErrorSpec::Fail,
        Some(Value::String(s)) if s == "null" => OnErrorSpec::Null,
        Some(Value::Null) => OnErrorSpec::Null,
        Some(Value::Object(mut o)) if o.contains_key("fixed") => match o.remove("fixed") {
            Some(Value::String(f)) if o.is_empty() => OnErrorSpec::Fixed(f),
            _ => return Err("on_error: {fixed: \"VALUE\"} takes one text value".into()),
        },
        Some(_) => return Err("on_error must be fail, null or {fixed: \"VALUE\"}".into()),
    };
    let mask_empty = match m.remove("mask_empty") {
        None => false,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err("mask_empty must be true or false".into()),
    };
    m.remove("reason");
    for k in m.keys() {
        if !def.options.iter().any(|o| o.name == k) && !RULE_KEYS.contains(&k.as_str()) {
            let known: Vec<&str> = def.options.iter().map(|o| o.name).collect();
            return Err(if known.is_empty() {
                format!("unknown key '{k}': masker '{name}' takes no options (rule keys: {})", RULE_KEYS.join(", "))
            } else {
                format!(
                    "unknown key '{k}': masker '{name}' takes {} (rule keys: {})",
                    known.join(", "),
                    RULE_KEYS.join(", ")
                )
            }
            .into());
        }
    }
    Ok(MaskRule { masker: name, options: m, domain, on_error, mask_empty })
}

/// `rows:` of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rows {
    #[default]
    All,
    Skip,
}

/// The rules of one table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableRule {
    #[serde(default)]
    pub rows: Rows,
    /// Keeps only the rows matching this SQL condition.
    #[serde(default, rename = "where")]
    pub filter: Option<String>,
    #[serde(default)]
    pub columns: BTreeMap<String, ColumnRule>,
    /// Columns that together make one fake person (column: masker); on
    /// loading they join `columns` and are named in `person_columns`.
    #[serde(default)]
    pub person: BTreeMap<String, ColumnRule>,
    /// The columns of the `person:` group.
    #[serde(skip)]
    pub person_columns: Vec<String>,
}

/// A rule by column-name pattern.
#[derive(Debug, Clone)]
pub struct PatternRule {
    pub column: regex::Regex,
    /// Optional glob over `schema.table`.
    pub table: Option<glob::Pattern>,
    pub rule: ColumnRule,
}

impl<'de> Deserialize<'de> for PatternRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let Value::Object(mut m) = v else {
            return Err(de::Error::custom("a pattern is a map: {column: REGEX, mask: MASKER, ...}"));
        };
        let column = match m.remove("column") {
            Some(Value::String(c)) => c,
            _ => return Err(de::Error::custom("a pattern needs 'column: REGEX'")),
        };
        let column = regex::Regex::new(&column)
            .map_err(|e| de::Error::custom(format!("pattern column '{column}' is not a valid regex: {e}")))?;
        let table = match m.remove("table") {
            None => None,
            Some(Value::String(t)) => Some(
                glob::Pattern::new(&t)
                    .map_err(|e| de::Error::custom(format!("pattern table '{t}' is not a valid glob: {e}")))?,
            ),
            Some(_) => return Err(de::Error::custom("pattern 'table' must be a glob")),
        };
        let rule = column_rule(Value::Object(m)).map_err(de::Error::custom)?;
        Ok(PatternRule { column, table, rule })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    version: u32,
    #[serde(default)]
    strict: bool,
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    patterns: Vec<PatternRule>,
    #[serde(default)]
    tables: BTreeMap<String, TableRule>,
    #[serde(default)]
    subset: Option<RawSubset>,
}

/// `subset:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubset {
    #[serde(default)]
    roots: BTreeMap<String, RootRule>,
    #[serde(default)]
    virtual_foreign_keys: Vec<RawVirtualKey>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVirtualKey {
    from: String,
    to: String,
}

/// Where a subset starts, in one table.
#[derive(Debug, Clone, PartialEq)]
pub enum RootRule {
    /// The rows matching an SQL condition on the table.
    Where(String),
    /// A deterministic sample: about this percentage of the rows, chosen by
    /// a hash of each row's primary key (or whole row), the same every run.
    Percent(f64),
}

impl<'de> Deserialize<'de> for RootRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(RootRule::Where(s)),
            Value::Object(mut m) => {
                let rule = match (m.remove("percent"), m.remove("where")) {
                    (Some(p), None) => match p.as_f64() {
                        Some(p) if (0.0..=100.0).contains(&p) => RootRule::Percent(p),
                        _ => return Err(de::Error::custom("percent must be a number from 0 to 100")),
                    },
                    (None, Some(Value::String(w))) => RootRule::Where(w),
                    _ => {
                        return Err(de::Error::custom("a root is an SQL condition, {where: CONDITION} or {percent: N}"))
                    }
                };
                match m.keys().next() {
                    Some(k) => {
                        Err(de::Error::custom(format!("unknown key '{k}' in a root (expected: where, percent)")))
                    }
                    None => Ok(rule),
                }
            }
            _ => Err(de::Error::custom("a root is an SQL condition, {where: CONDITION} or {percent: N}")),
        }
    }
}

/// A relation the catalog does not declare: `from` columns refer to `to`
/// columns, as a foreign key would.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualKey {
    pub from_table: String,
    pub from_columns: Vec<String>,
    pub to_table: String,
    pub to_columns: Vec<String>,
}

/// `subset:`: a slice of the source that follows foreign keys.
#[derive(Debug, Clone, Default)]
pub struct SubsetRules {
    /// (table as written, where the slice starts in it, where it is written).
    pub roots: Vec<(String, RootRule, Origin)>,
    pub virtual_keys: Vec<(VirtualKey, Origin)>,
}

/// `schema.table(col, col)`.
fn table_and_columns(text: &str) -> Result<(String, Vec<String>), RuleError> {
    let text = text.trim();
    let (table, rest) =
        text.split_once('(').ok_or_else(|| RuleError::from(format!("'{text}' must be schema.table(column, ...)")))?;
    let columns = rest
        .strip_suffix(')')
        .ok_or_else(|| RuleError::from(format!("'{text}' must end with ')'")))?
        .split(',')
        .map(|c| c.trim().trim_matches('"').to_string())
        .filter(|c| !c.is_empty())
        .collect::<Vec<_>>();
    if columns.is_empty() {
        return Err(format!("'{text}' names no column").into());
    }
    Ok((table.trim().to_string(), columns))
}

/// Where a rule was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl Origin {
    pub fn problem(&self, message: impl Into<String>) -> Problem {
        Problem { file: self.file.clone(), line: self.line, column: self.column, message: message.into() }
    }
}

/// A table's rules, with where they came from.
#[derive(Debug, Clone)]
pub struct TableRules {
    pub name: String,
    pub rule: TableRule,
    pub origin: Origin,
    /// Origin of each column rule.
    pub column_origins: BTreeMap<String, Origin>,
}

/// The merged rules of a file and its includes.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub strict: bool,
    /// `subset:`, from the one file that has it.
    pub subset: Option<SubsetRules>,
    pub patterns: Vec<(PatternRule, Origin)>,
    pub tables: Vec<TableRules>,
    /// SHA-256 over the files' bytes, in load order, for the manifest.
    pub sha256: String,
    pub files: Vec<PathBuf>,
}

impl Rules {
    /// Loads a rules file and its includes.
    pub fn load(path: &Path) -> Result<Rules, RulesError> {
        let mut rules = Rules::default();
        let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
        let mut problems = Vec::new();
        let mut stack = vec![path.to_path_buf()];
        while let Some(p) = stack.pop() {
            let shown = p.display().to_string();
            if rules.files.contains(&p) {
                problems.push(Problem {
                    file: shown,
                    line: None,
                    column: None,
                    message: "included more than once (or an include cycle)".into(),
                });
                continue;
            }
            rules.files.push(p.clone());
            let text = match std::fs::read_to_string(&p) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(Problem {
                        file: shown,
                        line: None,
                        column: None,
                        message: format!("cannot read: {e}"),
                    });
                    continue;
                }
            };
            sha2::Digest::update(&mut hasher, text.as_bytes());
            match parse_one(&shown, &text) {
                Ok((raw, origins)) => {
                    if raw.version != VERSION {
                        problems.push(Problem {
                            file: shown.clone(),
                            line: Some(1),
                            column: None,
                            message: format!(
                                "version {} is not supported (this scrubsnap reads version {VERSION})",
                                raw.version
                            ),
                        });
                    }
                    rules.strict |= raw.strict;
                    let base = p.parent().map(Path::to_path_buf).unwrap_or_default();
                    for inc in raw.include.iter().rev() {
                        stack.push(base.join(inc));
                    }
                    for pat in raw.patterns {
                        let origin = Origin {
                            file: shown.clone(),
                            line: origins.pattern_line(&text, pat.column.as_str()),
                            column: None,
                        };
                        rules.patterns.push((pat, origin));
                    }
                    if let Some(raw_subset) = raw.subset {
                        if rules.subset.is_some() {
                            problems.push(origins.at("subset", "subset").problem(
                                "subset: is already given in another rules file; write it in one".to_string(),
                            ));
                        } else {
                            rules.subset = Some(subset_rules(raw_subset, &origins, &mut problems));
                        }
                    }
                    for (name, rule) in raw.tables {
                        let origin = origins.table(&name);
                        if let Some(prev) = rules.tables.iter().find(|t| t.name == name) {
                            problems.push(origin.problem(format!(
                                "table {name} already has rules at {}:{}",
                                prev.origin.file,
                                prev.origin.line.unwrap_or(0)
                            )));
                            continue;
                        }
                        rules.tables.push(table_rules(name, rule, origin, &origins, &mut problems));
                    }
                }
                Err(p) => problems.push(p),
            }
        }
        if !problems.is_empty() {
            return Err(RulesError(problems));
        }
        rules.sha256 = hex::encode(sha2::Digest::finalize(hasher));
        Ok(rules)
    }

    /// Parses rules from text (for tests and stdin).
    pub fn from_str(name: &str, text: &str) -> Result<Rules, RulesError> {
        let (raw, origins) = parse_one(name, text).map_err(|p| RulesError(vec![p]))?;
        if !raw.include.is_empty() {
            return Err(RulesError(vec![Problem {
                file: name.into(),
                line: None,
                column: None,
                message: "include is only allowed in files".into(),
            }]));
        }
        let mut rules = Rules { strict: raw.strict, ..Default::default() };
        if let Some(raw_subset) = raw.subset {
            let mut problems = Vec::new();
            rules.subset = Some(subset_rules(raw_subset, &origins, &mut problems));
            if !problems.is_empty() {
                return Err(RulesError(problems));
            }
        }
        for pat in raw.patterns {
            let origin =
                Origin { file: name.into(), line: origins.pattern_line(text, pat.column.as_str()), column: None };
            rules.patterns.push((pat, origin));
        }
        let mut problems = Vec::new();
        for (tname, rule) in raw.tables {
            let origin = origins.table(&tname);
            rules.tables.push(table_rules(tname, rule, origin, &origins, &mut problems));
        }
        if !problems.is_empty() {
            return Err(RulesError(problems));
        }
        rules.sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()));
        Ok(rules)
    }
}

/// One table's rules with positions; a `person:` group's columns join
/// `columns` (a column ruled in both, or kept in `person:`, is a problem).
fn table_rules(
    name: String,
    mut rule: TableRule,
    origin: Origin,
    origins: &Locator,
    problems: &mut Vec<Problem>,
) -> TableRules {
    let mut column_origins: BTreeMap<String, Origin> =
        rule.columns.keys().map(|c| (c.clone(), origins.column(&name, "columns", c))).collect();
    for (c, r) in std::mem::take(&mut rule.person) {
        let at = origins.column(&name, "person", &c);
        if rule.columns.contains_key(&c) {
            problems.push(at.problem(format!("column {c} is ruled under both columns: and person:; rule it once")));
            continue;
        }
        if !matches!(r, ColumnRule::Mask(_)) {
            problems.push(at.problem(format!(
                "person: {c} must name a masker (first_name, last_name, full_name, email, username, ...), not keep"
            )));
            continue;
        }
        rule.person_columns.push(c.clone());
        rule.columns.insert(c.clone(), r);
        column_origins.insert(c, at);
    }
    TableRules { name, rule, origin, column_origins }
}

/// `subset:` with positions; bad virtual keys are problems.
fn subset_rules(raw: RawSubset, origins: &Locator, problems: &mut Vec<Problem>) -> SubsetRules {
    let mut out = SubsetRules::default();
    for (table, rule) in raw.roots {
        let origin = origins.at("roots", &table);
        out.roots.push((table, rule, origin));
    }
    for vk in raw.virtual_foreign_keys {
        let origin = origins.line_with(&vk.from);
        match (table_and_columns(&vk.from), table_and_columns(&vk.to)) {
            (Ok((from_table, from_columns)), Ok((to_table, to_columns))) => {
                if from_columns.len() != to_columns.len() {
                    problems.push(origin.problem(format!(
                        "virtual foreign key {} -> {}: {} column(s) refer to {}",
                        vk.from,
                        vk.to,
                        from_columns.len(),
                        to_columns.len()
                    )));
                    continue;
                }
                out.virtual_keys.push((VirtualKey { from_table, from_columns, to_table, to_columns }, origin));
            }
            (Err(e), _) | (_, Err(e)) => problems.push(origin.problem(format!("virtual foreign key: {e}"))),
        }
    }
    out
}

fn parse_one(name: &str, text: &str) -> Result<(RawFile, Locator), Problem> {
    let raw: RawFile = serde_yaml::from_str(text).map_err(|e| {
        let loc = e.location();
        Problem {
            file: name.to_string(),
            line: loc.as_ref().map(|l| l.line()),
            column: loc.as_ref().map(|l| l.column()),
            message: strip_location(&e.to_string()),
        }
    })?;
    Ok((raw, Locator { file: name.to_string(), lines: text.lines().map(str::to_string).collect() }))
}

/// serde_yaml appends " at line X column Y"; we print the position in front.
fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Finds where tables and columns are written, for errors found after
/// parsing (the YAML parser gives no positions for map keys).
struct Locator {
    file: String,
    lines: Vec<String>,
}

fn key_of(line: &str) -> Option<(usize, String)> {
    let indent = line.len() - line.trim_start().len();
    let t = line.trim_start();
    if t.starts_with('#') || t.starts_with('-') {
        return None;
    }
    let key = if let Some(rest) = t.strip_prefix('"') {
        rest.split_once("\":").map(|(k, _)| k.replace("\\\"", "\""))?
    } else if let Some(rest) = t.strip_prefix('\'') {
        rest.split_once("':").map(|(k, _)| k.replace("''", "'"))?
    } else {
        let (k, _) = t.split_once(':')?;
        k.trim().to_string()
    };
    Some((indent, key))
}

impl Locator {
    fn find(&self, after: usize, min_indent: Option<usize>, key: &str) -> Option<(usize, usize)> {
        for (i, line) in self.lines.iter().enumerate().skip(after) {
            if let Some((indent, k)) = key_of(line) {
                if let Some(min) = min_indent {
                    if indent < min {
                        return None;
                    }
                }
                if k == key {
                    return Some((i, indent));
                }
            }
        }
        None
    }

    fn table_pos(&self, table: &str) -> Option<(usize, usize)> {
        let (tables_line, _) = self.find(0, None, "tables")?;
        self.find(tables_line + 1, Some(1), table)
    }

    fn table(&self, table: &str) -> Origin {
        let pos = self.table_pos(table);
        Origin { file: self.file.clone(), line: pos.map(|p| p.0 + 1), column: pos.map(|p| p.1 + 1) }
    }

    fn column(&self, table: &str, section: &str, column: &str) -> Origin {
        let pos = self
            .table_pos(table)
            .and_then(|(tl, ti)| self.find(tl + 1, Some(ti + 1), section))
            .and_then(|(cl, ci)| self.find(cl + 1, Some(ci + 1), column));
        match pos {
            Some((l, c)) => Origin { file: self.file.clone(), line: Some(l + 1), column: Some(c + 1) },
            None => self.table(table),
        }
    }

    /// A key under a section (`subset:`'s `roots:`), or the section itself.
    fn at(&self, section: &str, key: &str) -> Origin {
        let pos = self
            .find(0, None, "subset")
            .and_then(|(sl, si)| match section {
                "subset" => Some((sl, si)),
                _ => self.find(sl + 1, Some(si + 1), section),
            })
            .and_then(|(l, i)| {
                if key == section || section == "subset" {
                    Some((l, i))
                } else {
                    self.find(l + 1, Some(i + 1), key)
                }
            });
        Origin { file: self.file.clone(), line: pos.map(|p| p.0 + 1), column: pos.map(|p| p.1 + 1) }
    }

    /// The first line holding `text`, at its column.
    fn line_with(&self, text: &str) -> Origin {
        let pos = self.lines.iter().enumerate().find_map(|(i, l)| l.find(text).map(|c| (i, c)));
        Origin { file: self.file.clone(), line: pos.map(|p| p.0 + 1), column: pos.map(|p| p.1 + 1) }
    }

    fn pattern_line(&self, _text: &str, regex: &str) -> Option<usize> {
        self.lines.iter().position(|l| l.contains(regex) && l.contains("column")).map(|i| i + 1)
    }
}

/// A table name in a rules file: `schema.table`, either part may be quoted
/// (`"Sales Data"."Order Lines"`). A name without a schema means `public`.
pub fn split_table_name(name: &str) -> Result<(String, String), RuleError> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = name.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if quoted {
        return Err(format!("table name '{name}' has an unclosed quote").into());
    }
    parts.push(cur);
    match parts.as_slice() {
        [t] if !t.is_empty() => Ok(("public".into(), t.clone())),
        [s, t] if !s.is_empty() && !t.is_empty() => Ok((s.clone(), t.clone())),
        _ => Err(format!("table name '{name}' is not schema.table").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"version: 1
strict: true
patterns:
  - column: "(?i)e_?mail"
    mask: email
tables:
  public.customers:
    columns:
      id: keep
      email: {mask: email, domain: customer_email}
      phone: phone
      notes: {keep: {reason: "reviewed"}}
      dob: {mask: date_of_birth, min_age: 20, on_error: null}
  '"Sales Data"."OrderLines"':
    rows: skip
  audit.log:
    where: "id > 10"
"#;

    #[test]
    fn parses_a_policy() {
        let r = Rules::from_str("rules.yaml", GOOD).unwrap();
        assert!(r.strict);
        assert_eq!(r.patterns.len(), 1);
        let c = r.tables.iter().find(|t| t.name == "public.customers").unwrap();
        assert_eq!(c.rule.columns["id"], ColumnRule::Keep { reason: None, may_contain: Vec::new() });
        let ColumnRule::Mask(m) = &c.rule.columns["email"] else { panic!() };
        assert_eq!((m.masker.as_str(), m.domain.as_deref()), ("email", Some("customer_email")));
        let ColumnRule::Mask(dob) = &c.rule.columns["dob"] else { panic!() };
        assert_eq!(dob.on_error, OnErrorSpec::Null);
        assert_eq!(dob.options["min_age"], 20);
        assert_eq!(c.column_origins["phone"].line, Some(11));
        let s = r.tables.iter().find(|t| t.name == "\"Sales Data\".\"OrderLines\"").unwrap();
        assert_eq!(s.rule.rows, Rows::Skip);
        assert_eq!(s.origin.line, Some(14));
        assert_eq!(split_table_name(&s.name).unwrap(), ("Sales Data".into(), "OrderLines".into()));
    }

    fn err(text: &str) -> Problem {
        Rules::from_str("bad.yaml", text).unwrap_err().0.remove(0)
    }

    #[test]
    fn errors_carry_line_and_column() {
        let p = err("version: 1\ntables:\n  t:\n    colums: {}\n");
        assert_eq!((p.line, p.column), (Some(4), Some(5)), "{p}");
        assert!(p.message.contains("unknown field `colums`"), "{p}");
        let p = err("version: 1\ntables:\n  t:\n    columns:\n      a: {mask: emial}\n");
        assert_eq!(p.line, Some(5), "{p}");
        assert!(p.message.contains("unknown masker 'emial'"), "{p}");
        let p = err("version: 1\ntables:\n  t:\n    columns:\n      a: {mask: hash, lenght: 3}\n");
        assert!(p.message.contains("unknown key 'lenght'"), "{p}");
        let p = err("version: 1\npatterns:\n  - column: \"(unclosed\"\n    mask: email\n");
        assert!(p.message.contains("not a valid regex"), "{p}");
        assert_eq!(p.line, Some(3), "{p}");
        let p = err("version: 1\ntables: [\n");
        assert!(p.line.is_some(), "{p}");
        let p = err("tables: {}\n");
        assert!(p.message.contains("version"), "{p}");
    }

    #[test]
    fn table_names() {
        assert_eq!(split_table_name("orders").unwrap(), ("public".into(), "orders".into()));
        assert_eq!(split_table_name("a.b").unwrap(), ("a".into(), "b".into()));
        assert_eq!(split_table_name("\"x.y\".\"q\"\"z\"").unwrap(), ("x.y".into(), "q\"z".into()));
        assert!(split_table_name("a.b.c").is_err());
    }
}
