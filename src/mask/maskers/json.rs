//! The json masker: values at paths inside json/jsonb documents, each
//! masked by the masker its path names. Only the objects and arrays on a
//! path are taken apart and written again; every other value keeps its text.

use std::sync::Arc;

use super::super::{MaskError, Masker, Seeder};

/// Masks values at JSON paths (`$.a.b`, `$.list[*].c`, `$.list[0]`).
pub struct JsonPaths {
    pub paths: Vec<(Vec<PathStep>, Arc<dyn Masker>, Seeder)>,
}
#[derive(Debug, Clone, PartialEq)]
pub enum PathStep {
    Key(String),
    Index(usize),
    All,
}

pub fn parse_json_path(p: &str) -> Result<Vec<PathStep>, super::super::OptionError> {
    let rest = p.strip_prefix('$').ok_or_else(|| format!("JSON path '{p}' must start with '$'"))?;
    let mut steps = Vec::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                let mut key = String::new();
                while let Some(&n) = chars.peek() {
                    if n == '.' || n == '[' {
                        break;
                    }
                    key.push(n);
                    chars.next();
                }
                if key.is_empty() {
                    return Err(format!("JSON path '{p}' has an empty key").into());
                }
                steps.push(PathStep::Key(key));
            }
            '[' => {
                let mut inner = String::new();
                for n in chars.by_ref() {
                    if n == ']' {
                        break;
                    }
                    inner.push(n);
                }
                let inner = inner.trim();
                if inner == "*" {
                    steps.push(PathStep::All);
                } else if let Ok(i) = inner.parse() {
                    steps.push(PathStep::Index(i));
                } else {
                    let key = inner.trim_matches(['\'', '"']);
                    steps.push(PathStep::Key(key.to_string()));
                }
            }
            _ => return Err(format!("JSON path '{p}': unexpected '{c}'").into()),
        }
    }
    Ok(steps)
}

/// The tree walk over a parsed document that [`apply_raw`] must agree with
/// (up to formatting): the tests' reference.
#[cfg(test)]
fn apply_path(v: &mut serde_json::Value, steps: &[PathStep], m: &dyn Masker, s: &Seeder) -> Result<(), MaskError> {
    let Some((first, rest)) = steps.split_first() else {
        let replacement = match v {
            serde_json::Value::String(t) => m.mask(t, s)?.map(serde_json::Value::String),
            serde_json::Value::Number(n) => m.mask(&n.to_string(), s)?.map(|r| {
                r.parse::<serde_json::Number>().map(serde_json::Value::Number).unwrap_or(serde_json::Value::String(r))
            }),
            serde_json::Value::Bool(_) | serde_json::Value::Null => return Ok(()),
            // A whole object or array at the path: its string leaves are masked.
            serde_json::Value::Array(items) => {
                for item in items {
                    apply_path(item, &[], m, s)?;
                }
                return Ok(());
            }
            serde_json::Value::Object(map) => {
                for (_, item) in map.iter_mut() {
                    apply_path(item, &[], m, s)?;
                }
                return Ok(());
            }
        };
        *v = replacement.unwrap_or(serde_json::Value::Null);
        return Ok(());
    };
    match (first, v) {
        (PathStep::Key(k), serde_json::Value::Object(map)) => {
            if let Some(child) = map.get_mut(k) {
                apply_path(child, rest, m, s)?;
            }
        }
        (PathStep::Index(i), serde_json::Value::Array(items)) => {
            if let Some(child) = items.get_mut(*i) {
                apply_path(child, rest, m, s)?;
            }
        }
        (PathStep::All, serde_json::Value::Array(items)) => {
            for child in items {
                apply_path(child, rest, m, s)?;
            }
        }
        (PathStep::All, serde_json::Value::Object(map)) => {
            for (_, child) in map.iter_mut() {
                apply_path(child, rest, m, s)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The members of a JSON object as they are written: every key (a key
/// given twice stays twice) with its value's text.
struct Members<'a>(Vec<(String, &'a serde_json::value::RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Members<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Members<'a>, A::Error> {
                let mut out = Vec::new();
                while let Some(member) = map.next_entry()? {
                    out.push(member);
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

fn json_error(e: serde_json::Error) -> MaskError {
    MaskError(format!("not valid JSON (line {}, column {})", e.line(), e.column()))
}

/// Applies one path to the JSON text `raw`: only the objects and arrays on
/// the path are taken apart and written again (compactly); every other
/// value keeps its text. At the end of the path a string or number is
/// masked (a number as its text, and kept a number when the masker gives
/// one), a whole object or array has its string and number leaves masked,
/// and `true`, `false` and `null` stay. `None` when nothing changed.
fn apply_raw(raw: &str, steps: &[PathStep], m: &dyn Masker, s: &Seeder) -> Result<Option<String>, MaskError> {
    let text = raw.trim_start();
    let Some(&kind) = text.as_bytes().first() else { return Ok(None) };
    let Some((first, rest)) = steps.split_first() else {
        return match kind {
            b'"' => {
                let t: std::borrow::Cow<str> = serde_json::from_str(raw).map_err(json_error)?;
                m.mask(&t, s)?.map_or(Ok(Some("null".into())), |v| json_string(&v).map(Some))
            }
            b'{' | b'[' => rewrite(raw, |_, _| Some(&[]), m, s),
            b't' | b'f' | b'n' => Ok(None),
            _ => {
                match m.mask(serde_json::from_str::<&serde_json::value::RawValue>(raw).map_err(json_error)?.get(), s)? {
                    Some(v) if is_json_number(&v) => Ok(Some(v)),
                    Some(v) => json_string(&v).map(Some),
                    None => Ok(Some("null".into())),
                }
            }
        };
    };
    match (kind, first) {
        (b'{', PathStep::Key(want)) => rewrite(raw, |_, k| (k == Some(want.as_str())).then_some(rest), m, s),
        (b'[', PathStep::Index(want)) => rewrite(raw, |i, _| (i == *want).then_some(rest), m, s),
        (b'{' | b'[', PathStep::All) => rewrite(raw, |_, _| Some(rest), m, s),
        _ => Ok(None),
    }
}

/// Rewrites the object or array `raw` when the members or items that
/// `on_path` names (by position, and key for a member) change: the path's
/// rest for each of them.
fn rewrite<'p>(
    raw: &str,
    on_path: impl Fn(usize, Option<&str>) -> Option<&'p [PathStep]>,
    m: &dyn Masker,
    s: &Seeder,
) -> Result<Option<String>, MaskError> {
    let object = raw.trim_start().starts_with('{');
    let parts: Vec<(Option<String>, &serde_json::value::RawValue)> = if object {
        let Members(members) = serde_json::from_str(raw).map_err(json_error)?;
        members.into_iter().map(|(k, v)| (Some(k), v)).collect()
    } else {
        let items: Vec<&serde_json::value::RawValue> = serde_json::from_str(raw).map_err(json_error)?;
        items.into_iter().map(|v| (None, v)).collect()
    };
    let mut masked = Vec::with_capacity(parts.len());
    for (i, (k, v)) in parts.iter().enumerate() {
        masked.push(match on_path(i, k.as_deref()) {
            Some(rest) => apply_raw(v.get(), rest, m, s)?,
            None => None,
        });
    }
    if masked.iter().all(Option::is_none) {
        return Ok(None);
    }
    let mut out = String::with_capacity(raw.len() + 16);
    out.push(if object { '{' } else { '[' });
    for (i, ((k, v), new)) in parts.iter().zip(&masked).enumerate() {
        if i > 0 {
            out.push(',');
        }
        if let Some(k) = k {
            out.push_str(&json_string(k)?);
            out.push(':');
        }
        out.push_str(new.as_deref().unwrap_or(v.get()));
    }
    out.push(if object { '}' } else { ']' });
    Ok(Some(out))
}

fn json_string(v: &str) -> Result<String, MaskError> {
    serde_json::to_string(v).map_err(|e| MaskError(format!("writing JSON: {e}")))
}

/// Whether `v` is one JSON number, as it may be written into a document.
fn is_json_number(v: &str) -> bool {
    v.starts_with(|c: char| c == '-' || c.is_ascii_digit())
        && serde_json::from_str::<&serde_json::value::RawValue>(v).is_ok_and(|r| r.get() == v)
}

impl Masker for JsonPaths {
    /// Each path in turn, on the text the ones before it left. A document
    /// no path matches comes out as it went in.
    fn mask(&self, v: &str, _: &Seeder) -> Result<Option<String>, MaskError> {
        let mut doc = std::borrow::Cow::Borrowed(v);
        for (steps, m, s) in &self.paths {
            if let Some(new) = apply_raw(&doc, steps, m.as_ref(), s)? {
                doc = std::borrow::Cow::Owned(new);
            }
        }
        if let std::borrow::Cow::Borrowed(_) = doc {
            // Taking the document apart checked it; nothing did.
            serde_json::from_str::<&serde_json::value::RawValue>(v).map_err(json_error)?;
        }
        Ok(Some(doc.into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use crate::mask::registry::{self, BuildCx};
    use crate::mask::{ColumnInfo, MaskKey};

    /// What the paths do not name comes out as it went in, text and all:
    /// numbers keep their digits (a jsonb numeric keeps `1.10`; a number
    /// past f64's precision or range is not rounded), strings their
    /// escapes, nested values their spacing. A key given twice is masked
    /// twice and kept twice.
    #[test]
    fn json_keeps_what_it_does_not_mask_as_it_was() {
        let key = MaskKey::from_material(b"json-numbers-test-key-0123456789").unwrap();
        let options: Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"paths": {"$.email": "email", "$.n": "integer"}}"#).unwrap();
        let column = ColumnInfo::from_type("json", false, false);
        let spec = registry::spec_string("json", &options);
        let cx = BuildCx { key: &key, column: &column, purpose: format!("d/{spec}"), domain: "d".into() };
        let m = registry::find("json").unwrap().build(&options, &cx).unwrap();
        let seeder = key.seeder("d", &spec);
        let doc = r#"{"price": 1.10, "big": 123456789012345678901234, "tiny": 1e-400, "e": 1E2, "n": 42, "email": "a@b.co", "list": [0.50, -0], "meta": {"k": "caf\u00e9",  "x": [1, 2]}, "email": "second@b.co"}"#;
        let out = m.mask(doc, &seeder).unwrap().unwrap();
        for kept in [
            r#"{"price":1.10,"#,
            r#""big":123456789012345678901234,"#,
            r#""tiny":1e-400,"#,
            r#""e":1E2,"#,
            r#""list":[0.50, -0],"#,
            r#""meta":{"k": "caf\u00e9",  "x": [1, 2]},"#,
        ] {
            assert!(out.contains(kept), "{kept} is not in {out}");
        }
        assert_eq!(out.matches(r#""email":""#).count(), 2, "{out}");
        assert!(!out.contains("a@b.co") && !out.contains("second@b.co") && !out.contains(r#""n":42,"#), "{out}");
        // A document that no path matches is left as it is.
        let other = r#"{ "a": [1,  2], "b": {"c": null} }"#;
        assert_eq!(m.mask(other, &seeder).unwrap().as_deref(), Some(other));
        assert!(m.mask(r#"{"email": "x@y.z""#, &seeder).is_err(), "invalid JSON is an error");
        // The whole document at `$`: a JSON value is masked, other text refused.
        let options: Map<String, serde_json::Value> = serde_json::from_str(r#"{"paths": {"$": "redact"}}"#).unwrap();
        let spec = registry::spec_string("json", &options);
        let cx = BuildCx { key: &key, column: &column, purpose: format!("d/{spec}"), domain: "d".into() };
        let whole = registry::find("json").unwrap().build(&options, &cx).unwrap();
        assert_eq!(whole.mask(r#" "Ab1" "#, &seeder).unwrap().as_deref(), Some(r#""Xx9""#));
        assert_eq!(whole.mask("12", &seeder).unwrap().as_deref(), Some("99"));
        assert!(whole.mask("hello", &seeder).is_err(), "text that is not JSON is an error");
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            (-1000i64..1000).prop_map(serde_json::Value::from),
            "[a-z@. ]{0,8}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
                proptest::collection::btree_map("[abc]", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Rewriting only what is on the paths gives the document the
        /// tree walk gives: the same values, whatever the input's spacing.
        #[test]
        fn json_masks_as_the_tree_walk_does(doc in json_value(), pretty: bool) {
            let key = MaskKey::from_material(b"json-tree-test-key-0123456789").unwrap();
            let options: Map<String, serde_json::Value> = serde_json::from_str(
                r#"{"paths": {"$.a": "redact", "$.b[*]": "redact", "$.c.a": "redact", "$[1]": "redact", "$[*].b": "redact"}}"#,
            )
            .unwrap();
            let column = ColumnInfo::from_type("jsonb", false, false);
            let spec = registry::spec_string("json", &options);
            let cx = BuildCx { key: &key, column: &column, purpose: format!("d/{spec}"), domain: "d".into() };
            let m = registry::find("json").unwrap().build(&options, &cx).unwrap();
            let seeder = key.seeder("d", &spec);
            let text = if pretty { serde_json::to_string_pretty(&doc) } else { serde_json::to_string(&doc) }.unwrap();
            let out = m.mask(&text, &seeder).unwrap().unwrap();
            let mut expected = doc.clone();
            for p in ["$.a", "$.b[*]", "$.c.a", "$[1]", "$[*].b"] {
                let steps = super::parse_json_path(p).unwrap();
                super::apply_path(&mut expected, &steps, &crate::mask::maskers::Redact, &seeder).unwrap();
            }
            let got: serde_json::Value = serde_json::from_str(&out).unwrap();
            proptest::prop_assert_eq!(got, expected);
        }
    }
}
