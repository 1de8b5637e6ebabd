//! `scrubsnap rules init`: a starting rules file for a database, so a
//! reviewer edits rather than writes. Every column of every table is listed:
//! suspected columns get a suggested masker and a comment saying why, the
//! rest `keep`. Each suggestion is checked as `create` would check it;
//! a column no masker fits is kept with a REVIEW reason.

use std::collections::{HashMap, HashSet};

use crate::mask::{ColumnInfo, MaskKey, TypeClass};
use crate::plan::masking::Coverage;
use crate::plan::masking::{check_and_build, DEFAULT_DOMAIN};
use crate::rules::{MaskRule, OnErrorSpec, Rules};
use crate::source::catalog::{Catalog, Column, RelKind, Table};

use super::detect::{self, Kind, SampleStats};
use super::scan::{scan, Sample, ScanError};
use super::MIN_SHARE;

enum Suggestion {
    Mask(String),
    Keep,
    KeepReview(String),
}

fn rule(masker: &str, options: &[(&str, serde_json::Value)]) -> MaskRule {
    let mut map = serde_json::Map::new();
    for (k, v) in options {
        map.insert(k.to_string(), v.clone());
    }
    MaskRule { masker: masker.into(), options: map, domain: None, on_error: OnErrorSpec::Fail, mask_empty: false }
}

/// Maskers that fit a column suspected of holding `kinds`, best first.
/// `confirmed` are the kinds nearly every sampled value holds whole: only
/// then is a masker suggested that fails on other formats (IBAN, card,
/// SSN). An array column gets its element type's suggestions (they mask
/// every element).
fn candidates(col: &Column, info: &ColumnInfo, kinds: &[Kind], confirmed: &[Kind], in_text: bool) -> Vec<MaskRule> {
    let n = col.name.to_ascii_lowercase();
    let mut out = Vec::new();
    let class = info.element.as_ref().map_or(info.class, |e| e.class);
    let segments: Vec<&str> = n.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    for k in kinds {
        match (k, class) {
            (Kind::Email, TypeClass::Text) if !in_text || detect::by_name(&col.name).contains(&Kind::Email) => {
                out.push(rule("email", &[]))
            }
            (Kind::Phone, TypeClass::Text) if !in_text || detect::by_name(&col.name).contains(&Kind::Phone) => {
                out.push(rule("phone", &[]))
            }
            (Kind::Name, TypeClass::Text) => out.push(rule(
                if n.contains("first") || n.contains("given") || n.contains("fore") {
                    "first_name"
                } else if n.contains("last") || n.contains("sur") || n.contains("family") || n.contains("maiden") {
                    "last_name"
                } else {
                    "full_name"
                },
                &[],
            )),
            (Kind::Address, TypeClass::Text) => out.push(rule(
                if n.contains("city") {
                    "city"
                } else if n.contains("zip") || n.contains("postal") || n.contains("postcode") {
                    "postal_code"
                } else {
                    "street_address"
                },
                &[],
            )),
            (Kind::Birth, TypeClass::Date) => out.push(rule("date_of_birth", &[])),
            (Kind::Birth, TypeClass::Timestamp) => out.push(rule("date_shift", &[("days", 180.into())])),
            (Kind::Ip, TypeClass::Inet | TypeClass::Text) if !in_text => out.push(rule("ip", &[])),
            (Kind::Geo, TypeClass::Numeric | TypeClass::Float | TypeClass::Text)
                if segments.iter().any(|s| matches!(*s, "lat" | "latitude")) =>
            {
                out.push(rule("latitude", &[]))
            }
            (Kind::Geo, TypeClass::Numeric | TypeClass::Float | TypeClass::Text)
                if segments.iter().any(|s| matches!(*s, "lon" | "lng" | "long" | "longitude")) =>
            {
                out.push(rule("longitude", &[]))
            }
            (Kind::Geo, TypeClass::Point) => out.push(rule("geo_point", &[])),
            (Kind::Geo, TypeClass::Numeric | TypeClass::Float) => {
                out.push(rule("numeric_noise", &[("percent", 1.into())]))
            }
            (Kind::Mac, TypeClass::Text) if !in_text => out.push(rule("mac_address", &[])),
            (Kind::Mac, TypeClass::Other) if info.type_name == "macaddr" => out.push(rule("mac_address", &[])),
            (Kind::Iban, TypeClass::Text) if !in_text && confirmed.contains(&Kind::Iban) => out.push(rule("iban", &[])),
            (Kind::Iban, TypeClass::Text) if !in_text && (n.contains("bic") || n.contains("swift")) => {
                out.push(rule("bic", &[]))
            }
            (Kind::Iban, TypeClass::Text) if !in_text && n.contains("account") => out.push(rule("digits", &[])),
            (Kind::Card, TypeClass::Text) if !in_text && confirmed.contains(&Kind::Card) => {
                out.push(rule("card_number", &[("keep_brand", true.into())]))
            }
            (Kind::NationalId, TypeClass::Text) if !in_text && confirmed.contains(&Kind::NationalId) => {
                out.push(rule("national_id", &[("country", "us".into())]))
            }
            (Kind::Secret, TypeClass::Text)
                if !in_text
                    && n.contains("password")
                    && (n.contains("hash") || n.contains("digest") || n.contains("encrypted")) =>
            {
                out.push(rule("password_hash", &[]))
            }
            (Kind::NationalId | Kind::Passport | Kind::Iban | Kind::Card | Kind::Secret, TypeClass::Text)
                if !in_text =>
            {
                let len = info.max_chars.unwrap_or(32).min(32);
                out.push(rule("hash", &[("length", (len as u64).into())]));
            }
            _ => {}
        }
    }
    if in_text && info.class == TypeClass::Text {
        out.push(rule("pii_scrub", &[]));
    }
    if info.class == TypeClass::Text && !kinds.is_empty() {
        out.push(rule("hash", &[("length", (info.max_chars.unwrap_or(32).min(32) as u64).into())]));
        out.push(rule("redact", &[]));
    }
    if info.class == TypeClass::Json && !kinds.is_empty() {
        out.push(rule("null", &[]));
    }
    out
}

fn yaml_of(r: &MaskRule) -> String {
    if r.options.is_empty() {
        return r.masker.clone();
    }
    let opts: Vec<String> = r.options.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("{{mask: {}, {}}}", r.masker, opts.join(", "))
}

fn plain(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn yaml_key(s: &str) -> String {
    if plain(s) && !matches!(s, "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null") {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

fn table_key(t: &Table) -> String {
    let part = |p: &str| {
        if plain(p) && p == p.to_ascii_lowercase() {
            p.to_string()
        } else {
            format!("\"{}\"", p.replace('"', "\"\""))
        }
    };
    let name = format!("{}.{}", part(&t.schema), part(&t.name));
    if name.contains('"') {
        format!("'{}'", name.replace('\'', "''"))
    } else {
        name
    }
}

/// A suggestion per column, with the reason for it.
type Suggestions = HashMap<(u32, String), (Suggestion, String)>;

/// Writes the starting rules file from the names and sampled values alone.
pub fn render(catalog: &Catalog, samples: &HashMap<(u32, String), SampleStats>, database: &str) -> String {
    let suggestions = suggest(catalog, samples);
    let inherits = inherited(catalog, &suggestions);
    write(catalog, &suggestions, &inherits, &HashMap::new(), database)
}

/// Writes a starting rules file that `create` will publish: the
/// suggestions from names and sampled values, then the leak analysis
/// `check` runs, over `sample` rows of every table. A kept column that holds
/// copies of a masked column gets the same rule (and so the same values);
/// one whose text holds emails or phone numbers is scrubbed; one that only
/// shares some words or values is kept, with a comment saying so. A few
/// rounds, until the analysis finds nothing that would block.
pub async fn rules(
    client: &tokio_postgres::Client,
    catalog: &Catalog,
    samples: &HashMap<(u32, String), SampleStats>,
    database: &str,
    sample: Sample,
) -> Result<String, ScanError> {
    let mut suggestions = suggest(catalog, samples);
    let mut notes: HashMap<(u32, String), String> = HashMap::new();
    let by_name: HashMap<String, (u32, String)> = catalog
        .tables
        .iter()
        .flat_map(|t| {
            t.columns.iter().map(move |c| (format!("{}.{}", t.display_name(), c.name), (t.oid, c.name.clone())))
        })
        .collect();
    let all: HashSet<u32> = catalog.tables.iter().filter(|t| t.kind == RelKind::Table).map(|t| t.oid).collect();
    let key = MaskKey::ephemeral();
    for _round in 0..4 {
        let inherits = inherited(catalog, &suggestions);
        let text = write(catalog, &suggestions, &inherits, &notes, database);
        let Ok(rules) = Rules::from_str("rules init", &text) else { return Ok(text) };
        let mut lenient = rules.clone();
        lenient.strict = false;
        let Ok(plan) = crate::plan::masking::build(&lenient, catalog, &all, &key) else { return Ok(text) };
        let verdict = scan(client, catalog, &plan, &all, sample).await?;
        let mut changed = false;
        for f in &verdict.findings {
            let (Some(kept), Some(source)) = (by_name.get(&f.column), by_name.get(&f.source)) else { continue };
            if !f.evidence.blocks() {
                let note = format!(
                    "shares {} of {} sampled values with {} ({})",
                    f.rows,
                    f.tested,
                    f.source,
                    if f.whole_values { "a coincidence, not a copy" } else { "words inside its text" }
                );
                let entry = notes.entry(kept.clone()).or_default();
                if !entry.contains(&f.source) {
                    match entry.is_empty() {
                        true => *entry = format!("{note}: kept, review"),
                        false => *entry = entry.replace(": kept, review", &format!("; {note}: kept, review")),
                    }
                }
                continue;
            }
            if let Some(rule) = remedy(catalog, &suggestions, &plan, kept, source, f) {
                notes.insert(
                    kept.clone(),
                    format!("holds values of {} in {} of {} sampled rows: masked like it", f.source, f.rows, f.tested),
                );
                suggestions.insert(kept.clone(), (Suggestion::Mask(rule), String::new()));
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let inherits = inherited(catalog, &suggestions);
    Ok(write(catalog, &suggestions, &inherits, &notes, database))
}

/// The rule for a kept column that would block: the masked column's own
/// rule when it holds copies of its values and the rule fits; `pii_scrub`
/// for text that holds emails or phone numbers inside it.
fn remedy(
    catalog: &Catalog,
    suggestions: &Suggestions,
    plan: &crate::plan::masking::MaskPlan,
    kept: &(u32, String),
    source: &(u32, String),
    finding: &crate::leak::verdict::Finding,
) -> Option<String> {
    let t = catalog.table(kept.0)?;
    let c = t.columns.iter().find(|c| c.name == kept.1)?;
    let unique = catalog.unique_columns.contains(kept);
    let info = ColumnInfo::from_type(&c.type_name, c.not_null, unique);
    let key = MaskKey::ephemeral();
    let fits = |r: &MaskRule| check_and_build(r, &info, DEFAULT_DOMAIN, &key, &finding.column).is_ok();
    let inside_text = finding.shape == crate::leak::Shape::Identifying && !finding.whole_values;
    if !inside_text {
        let like = match suggestions.get(source) {
            Some((Suggestion::Mask(yaml), _)) => Some(yaml.clone()),
            _ => plan.coverage.iter().find_map(|cov| match &cov.coverage {
                Coverage::Masked { masker, .. }
                    if catalog.table(source.0).is_some_and(|s| s.display_name() == cov.table)
                        && cov.column == source.1 =>
                {
                    Some(masker.clone())
                }
                _ => None,
            }),
        };
        if let Some(yaml) = like {
            let rule = parse_rule(&yaml)?;
            if fits(&rule) {
                return Some(yaml);
            }
        }
    }
    let scrub = rule("pii_scrub", &[]);
    fits(&scrub).then(|| yaml_of(&scrub))
}

/// A column rule as `rules init` writes it, read back.
fn parse_rule(yaml: &str) -> Option<MaskRule> {
    let text = format!("version: 1\ntables:\n  x.y:\n    columns:\n      c: {yaml}\n");
    let rules = Rules::from_str("rule", &text).ok()?;
    match rules.tables.first()?.rule.columns.get("c")? {
        crate::rules::ColumnRule::Mask(m) => Some(m.clone()),
        _ => None,
    }
}

/// A rule for every column: a masker that fits where the name or the
/// sampled values suggest personal data, `keep` elsewhere.
fn suggest(catalog: &Catalog, samples: &HashMap<(u32, String), SampleStats>) -> Suggestions {
    let key = MaskKey::ephemeral();
    let mut suggestions = Suggestions::new();
    for t in catalog.tables.iter().filter(|t| t.kind == RelKind::Table) {
        for c in t.columns.iter().filter(|c| !c.generated) {
            let unique = catalog.unique_columns.contains(&(t.oid, c.name.clone()));
            let info = if c.fields.is_empty() {
                ColumnInfo::from_type(&c.type_name, c.not_null, unique)
            } else {
                ColumnInfo::composite(&c.type_name, c.not_null, c.fields.clone())
            };
            let by_name = detect::by_name_in(&t.display_name(), &c.name);
            let by_values = samples.get(&(t.oid, c.name.clone())).map(|s| s.suspected(MIN_SHARE)).unwrap_or_default();
            let mut kinds = by_name.clone();
            for (k, _) in &by_values {
                if !kinds.contains(k) {
                    kinds.push(*k);
                }
            }
            if kinds.is_empty() {
                suggestions.insert((t.oid, c.name.clone()), (Suggestion::Keep, String::new()));
                continue;
            }
            // Values that only contain personal data inside longer text: scrub.
            let in_text = by_name.is_empty()
                && samples
                    .get(&(t.oid, c.name.clone()))
                    .is_some_and(|s| s.sampled > 0 && by_values.iter().all(|(_, share)| *share < 0.9));
            let why = {
                let mut parts: Vec<String> = by_name.iter().map(|k| format!("{} (column name)", k.name())).collect();
                parts.extend(
                    by_values.iter().map(|(k, s)| format!("{} in {:.0}% of sampled values", k.name(), s * 100.0)),
                );
                format!("suspected {}", parts.join(", "))
            };
            let what = format!("{}.{}", t.display_name(), c.name);
            let confirmed: Vec<Kind> =
                samples.get(&(t.oid, c.name.clone())).map(|s| s.whole_kinds(0.9)).unwrap_or_default();
            let chosen = candidates(c, &info, &kinds, &confirmed, in_text)
                .into_iter()
                .find(|r| check_and_build(r, &info, DEFAULT_DOMAIN, &key, &what).is_ok());
            let s = match chosen {
                Some(r) => Suggestion::Mask(yaml_of(&r)),
                None => Suggestion::KeepReview(format!("REVIEW: {why}; no masker fits {} automatically", c.type_name)),
            };
            suggestions.insert((t.oid, c.name.clone()), (s, why));
        }
    }
    suggestions
}

/// The columns that inherit a masked key's rule through a foreign key
/// (they must not repeat a different one, nor keep what their key masks),
/// with the key they inherit from.
fn inherited(catalog: &Catalog, suggestions: &Suggestions) -> HashMap<(u32, String), String> {
    let mut inherits: HashMap<(u32, String), String> = HashMap::new();
    let mut masked_keys: HashSet<(u32, String)> =
        suggestions.iter().filter(|(_, (s, _))| matches!(s, Suggestion::Mask(_))).map(|(k, _)| k.clone()).collect();
    for _ in 0..16 {
        let mut changed = false;
        for fk in &catalog.foreign_keys {
            for (c, p) in fk.columns.iter().zip(&fk.ref_columns) {
                let parents: Vec<u32> = std::iter::once(fk.references)
                    .chain(catalog.tables.iter().filter(|t| t.parents.contains(&fk.references)).map(|t| t.oid))
                    .collect();
                let children: Vec<u32> = std::iter::once(fk.table)
                    .chain(catalog.tables.iter().filter(|t| t.parents.contains(&fk.table)).map(|t| t.oid))
                    .collect();
                if parents.iter().any(|po| masked_keys.contains(&(*po, p.clone()))) {
                    let from =
                        format!("{}.{p}", catalog.table(fk.references).map(|t| t.display_name()).unwrap_or_default());
                    for co in &children {
                        if inherits.insert((*co, c.clone()), from.clone()).is_none() {
                            masked_keys.insert((*co, c.clone()));
                            changed = true;
                        }
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    inherits
}

/// The rules file: every table and column, with the suggestions.
fn write(
    catalog: &Catalog,
    suggestions: &Suggestions,
    inherits: &HashMap<(u32, String), String>,
    notes: &HashMap<(u32, String), String>,
    database: &str,
) -> String {
    let mut out = format!(
        "# Starting masking rules for database {database}, written by `scrubsnap rules init`.\n\
         # Every column is listed. Suspected personal data has a suggested masker and a\n\
         # comment saying why; everything else is `keep`. Review each line, write a reason\n\
         # for what you keep (keep: {{reason: \"...\"}}), then run `scrubsnap check`.\n\
         # Masker reference: `scrubsnap maskers`.\n\
         version: 1\n\
         strict: true\n\
         tables:\n"
    );
    for t in catalog.tables.iter().filter(|t| t.kind == RelKind::Table) {
        out.push_str(&format!("  {}:\n    columns:\n", table_key(t)));
        for c in t.columns.iter().filter(|c| !c.generated) {
            let k = (t.oid, c.name.clone());
            let key = yaml_key(&c.name);
            if let Some(note) = notes.get(&k) {
                out.push_str(&format!("      # {note}\n"));
            }
            if let Some(from) = inherits.get(&k) {
                out.push_str(&format!("      # {key}: masked like {from}, through its foreign key\n"));
                continue;
            }
            match suggestions.get(&k) {
                Some((Suggestion::Mask(yaml), why)) if why.is_empty() => {
                    out.push_str(&format!("      {key}: {yaml}\n"));
                }
                Some((Suggestion::Mask(yaml), why)) => {
                    out.push_str(&format!("      # {why}\n      {key}: {yaml}\n"));
                }
                Some((Suggestion::KeepReview(reason), _)) => {
                    out.push_str(&format!("      {key}: {{keep: {{reason: \"{}\"}}}}\n", reason.replace('"', "'")));
                }
                _ => out.push_str(&format!("      {key}: keep\n")),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_quoted_when_needed() {
        assert_eq!(yaml_key("email"), "email");
        assert_eq!(yaml_key("Quantity"), "Quantity");
        assert_eq!(yaml_key("select me"), "\"select me\"");
        assert_eq!(yaml_key("no"), "\"no\"");
    }
}
