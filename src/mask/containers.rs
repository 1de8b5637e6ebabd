//! Maskers over containers: arrays of any maskable type, `hstore` values by
//! key, and the fields of composite values.
//!
//! Each works on PostgreSQL's text form of the container (what COPY gives),
//! takes it apart, hands every element, value or field to the masker named
//! for it and writes the container again in the form the server's input
//! function reads back: no round trip through the server. NULL elements,
//! values and fields stay NULL; an empty element stays empty; an array's
//! dimensions and bounds (`[0:2]={...}`) are kept.

use std::sync::Arc;

use super::{MaskError, Masker, Seeder};

/// Calls `mask` on every non-NULL element of an array literal and writes
/// the array again with the results, quoted where PostgreSQL quotes.
pub fn map_array(
    text: &str,
    mut mask: impl FnMut(&str) -> Result<Option<String>, MaskError>,
) -> Result<String, MaskError> {
    let bad = || MaskError("not an array value".into());
    let mut out = String::with_capacity(text.len() + 16);
    let t = text.trim();
    // Dimension decoration: "[1:2][0:1]={...}".
    let body = if t.starts_with('[') {
        let eq = t.find('=').ok_or_else(bad)?;
        out.push_str(&t[..=eq]);
        t[eq + 1..].trim_start()
    } else {
        t
    };
    let b = body.as_bytes();
    if b.first() != Some(&b'{') {
        return Err(bad());
    }
    let mut i = 0;
    let mut depth = 0usize;
    let mut value = String::new();
    while i < b.len() {
        match b[i] {
            b'{' => {
                depth += 1;
                out.push('{');
                i += 1;
            }
            b'}' => {
                depth = depth.checked_sub(1).ok_or_else(bad)?;
                out.push('}');
                i += 1;
                if depth == 0 {
                    if body[i..].trim().is_empty() {
                        return Ok(out);
                    }
                    return Err(bad());
                }
            }
            b',' if depth > 0 => {
                out.push(',');
                i += 1;
            }
            c if c.is_ascii_whitespace() => i += 1,
            _ if depth == 0 => return Err(bad()),
            b'"' => {
                value.clear();
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err(bad()),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            let next = body[i + 1..].chars().next().ok_or_else(bad)?;
                            value.push(next);
                            i += 1 + next.len_utf8();
                        }
                        Some(_) => {
                            let c = body[i..].chars().next().ok_or_else(bad)?;
                            value.push(c);
                            i += c.len_utf8();
                        }
                    }
                }
                write_element(&mut out, mask(&value)?.as_deref());
            }
            _ => {
                value.clear();
                let mut escaped = false;
                let mut trailing_ws = 0;
                while i < b.len() && !matches!(b[i], b',' | b'}' | b'{' | b'"') {
                    let c = body[i..].chars().next().ok_or_else(bad)?;
                    if c == '\\' {
                        let next = body[i + 1..].chars().next().ok_or_else(bad)?;
                        value.push(next);
                        escaped = true;
                        trailing_ws = 0;
                        i += 1 + next.len_utf8();
                        continue;
                    }
                    trailing_ws = if c.is_ascii_whitespace() { trailing_ws + 1 } else { 0 };
                    value.push(c);
                    i += c.len_utf8();
                }
                value.truncate(value.len() - trailing_ws);
                if !escaped && value.eq_ignore_ascii_case("NULL") {
                    out.push_str("NULL");
                } else if value.is_empty() {
                    write_element(&mut out, Some(""));
                } else {
                    write_element(&mut out, mask(&value)?.as_deref());
                }
            }
        }
    }
    Err(bad())
}

/// Writes one array element as `array_out` does: NULL bare, quoted when
/// empty, when it reads as NULL, or when it holds a special character.
fn write_element(out: &mut String, v: Option<&str>) {
    let Some(v) = v else {
        out.push_str("NULL");
        return;
    };
    let quote = v.is_empty()
        || v.eq_ignore_ascii_case("NULL")
        || v.chars().any(|c| matches!(c, '"' | '\\' | '{' | '}' | ',') || c.is_ascii_whitespace() || c == '\x0b');
    if !quote {
        out.push_str(v);
        return;
    }
    out.push('"');
    for c in v.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// An array column: its element masker applied to every element.
pub struct ArrayOf {
    pub inner: Arc<dyn Masker>,
    /// The element type's length (`varchar(20)[]`) and whether output may be cut to it.
    pub max_chars: Option<usize>,
    pub truncate: bool,
    /// Empty elements are masked too.
    pub mask_empty: bool,
}

impl Masker for ArrayOf {
    fn mask(&self, value: &str, seeder: &Seeder) -> Result<Option<String>, MaskError> {
        map_array(value, |e| {
            if e.is_empty() && !self.mask_empty {
                return Ok(Some(String::new()));
            }
            let Some(mut v) = self.inner.mask(e, seeder)? else { return Ok(None) };
            if let Some(max) = self.max_chars {
                if v.chars().count() > max {
                    if !self.truncate {
                        return Err(MaskError(format!(
                            "a masked element is longer than the element type's {max} characters"
                        )));
                    }
                    v = v.chars().take(max).collect();
                }
            }
            Ok(Some(v))
        })
        .map(Some)
    }
}

/// One `hstore` pair: key, and value or NULL.
type Pair = (String, Option<String>);

/// Reads an `hstore` text value: `"k"=>"v", "k2"=>NULL` (quotes optional
/// where hstore allows them).
pub fn parse_hstore(text: &str) -> Result<Vec<Pair>, MaskError> {
    let bad = || MaskError("not an hstore value".into());
    let mut pairs = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let (key, _, after) = hstore_token(rest).ok_or_else(bad)?;
        rest = after.trim_start().strip_prefix("=>").ok_or_else(bad)?.trim_start();
        let (value, quoted, after) = hstore_token(rest).ok_or_else(bad)?;
        let value = if !quoted && value.eq_ignore_ascii_case("NULL") { None } else { Some(value) };
        pairs.push((key, value));
        rest = after.trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
        } else if !rest.is_empty() {
            return Err(bad());
        }
    }
    Ok(pairs)
}

/// One key or value: its text, whether it was quoted, and the rest.
fn hstore_token(s: &str) -> Option<(String, bool, &str)> {
    let mut out = String::new();
    if let Some(body) = s.strip_prefix('"') {
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Some((out, true, &body[i + 1..])),
                '\\' => out.push(chars.next()?.1),
                c => out.push(c),
            }
        }
        return None;
    }
    let end = s.find(|c: char| c.is_whitespace() || c == ',' || c == '=').unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    let mut chars = s[..end].chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(chars.next()?);
        } else {
            out.push(c);
        }
    }
    Some((out, false, &s[end..]))
}

/// Writes pairs as `hstore_out` does.
pub fn write_hstore(pairs: &[Pair]) -> String {
    let quoted = |s: &str, out: &mut String| {
        out.push('"');
        for c in s.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    };
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        quoted(k, &mut out);
        out.push_str("=>");
        match v {
            Some(v) => quoted(v, &mut out),
            None => out.push_str("NULL"),
        }
    }
    out
}

/// Masks the values of some keys of an `hstore`; other keys and values stay.
pub struct Hstore {
    pub keys: Vec<(String, Arc<dyn Masker>, Seeder)>,
}

impl Masker for Hstore {
    fn mask(&self, value: &str, _: &Seeder) -> Result<Option<String>, MaskError> {
        let mut pairs = parse_hstore(value)?;
        for (k, v) in pairs.iter_mut() {
            if let (Some((_, m, s)), Some(old)) = (self.keys.iter().find(|(name, _, _)| name == k), v.as_ref()) {
                if old.is_empty() {
                    continue;
                }
                *v = m.mask(old, s)?;
            }
        }
        Ok(Some(write_hstore(&pairs)))
    }
}

/// Reads a composite (row) value: `(a,"b c",,)`; an empty field is NULL.
pub fn parse_record(text: &str) -> Result<Vec<Option<String>>, MaskError> {
    let bad = || MaskError("not a composite value".into());
    let body = text.trim().strip_prefix('(').and_then(|b| b.strip_suffix(')')).ok_or_else(bad)?;
    let mut fields = Vec::new();
    let mut chars = body.chars().peekable();
    loop {
        let mut field = String::new();
        let mut present = false;
        let mut in_quotes = false;
        loop {
            match chars.next() {
                None => {
                    if in_quotes {
                        return Err(bad());
                    }
                    fields.push(present.then_some(field));
                    return Ok(fields);
                }
                Some('"') if in_quotes && chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                Some('"') => {
                    in_quotes = !in_quotes;
                    present = true;
                }
                Some('\\') => {
                    field.push(chars.next().ok_or_else(bad)?);
                    present = true;
                }
                Some(',') if !in_quotes => break,
                Some(c) => {
                    field.push(c);
                    present = true;
                }
            }
        }
        fields.push(present.then_some(field));
    }
}

/// Writes fields as `record_out` does.
pub fn write_record(fields: &[Option<String>]) -> String {
    let mut out = String::from("(");
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let Some(f) = f else { continue };
        let quote = f.is_empty() || f.chars().any(|c| matches!(c, '"' | '\\' | '(' | ')' | ',') || c.is_whitespace());
        if !quote {
            out.push_str(f);
            continue;
        }
        out.push('"');
        for c in f.chars() {
            if c == '"' || c == '\\' {
                out.push(c);
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push(')');
    out
}

/// One masked field of a composite type.
pub struct CompositeField {
    pub position: usize,
    pub masker: Arc<dyn Masker>,
    pub seeder: Seeder,
    /// The field type's length, and whether output may be cut to it.
    pub max_chars: Option<usize>,
    pub truncate: bool,
}

/// Masks some fields of a composite value, by position.
pub struct Composite {
    pub fields: Vec<CompositeField>,
}

impl Masker for Composite {
    fn mask(&self, value: &str, _: &Seeder) -> Result<Option<String>, MaskError> {
        let mut fields = parse_record(value)?;
        for f in &self.fields {
            if let Some(Some(v)) = fields.get_mut(f.position) {
                if !v.is_empty() {
                    let mut masked = f.masker.mask(v, &f.seeder)?;
                    if let (Some(m), Some(max)) = (masked.as_mut(), f.max_chars) {
                        if m.chars().count() > max {
                            if !f.truncate {
                                return Err(MaskError(format!(
                                    "a masked field is longer than its type's {max} characters"
                                )));
                            }
                            *m = m.chars().take(max).collect();
                        }
                    }
                    fields[f.position] = masked;
                }
            }
        }
        Ok(Some(write_record(&fields)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upper(a: &str) -> String {
        map_array(a, |e| Ok(Some(e.to_uppercase()))).unwrap()
    }

    #[test]
    fn arrays_keep_nulls_dimensions_and_quoting() {
        assert_eq!(upper("{a,b,NULL,\"\"}"), "{A,B,NULL,\"\"}");
        assert_eq!(upper("{{a,b},{c,NULL}}"), "{{A,B},{C,NULL}}");
        assert_eq!(upper("[0:1]={x,y}"), "[0:1]={X,Y}");
        assert_eq!(upper("{}"), "{}");
        assert_eq!(upper("{\"a b\",\"c\\\"d\",\"null\"}"), "{\"A B\",\"C\\\"D\",\"NULL\"}");
        assert_eq!(upper("{ a , b }"), "{A,B}");
        assert_eq!(map_array("{a,b}", |_| Ok(Some("x,y".into()))).unwrap(), "{\"x,y\",\"x,y\"}");
        assert_eq!(map_array("{a}", |_| Ok(None)).unwrap(), "{NULL}");
        for bad in ["", "a", "{a", "{a}}", "{a}x", "{\"a}"] {
            assert!(map_array(bad, |e| Ok(Some(e.into()))).is_err(), "{bad}");
        }
    }

    #[test]
    fn hstore_round_trips() {
        let pairs = parse_hstore(r#""a"=>"1", "b c"=>NULL, "q\"x"=>"y\\z", d=>e"#).unwrap();
        assert_eq!(pairs[1], ("b c".to_string(), None));
        assert_eq!(pairs[2], ("q\"x".to_string(), Some("y\\z".to_string())));
        assert_eq!(pairs[3], ("d".to_string(), Some("e".to_string())));
        assert_eq!(parse_hstore(&write_hstore(&pairs)).unwrap(), pairs);
        assert!(parse_hstore("").unwrap().is_empty());
        assert!(parse_hstore("\"a\"=>").is_err());
    }

    #[test]
    fn records_round_trip() {
        let f = parse_record(r#"(1,"a b",,"",x""y,"q""r")"#).unwrap();
        // Outside quotes, "" is an empty quoted part: x""y reads as xy.
        assert_eq!(
            f,
            vec![
                Some("1".into()),
                Some("a b".into()),
                None,
                Some(String::new()),
                Some("xy".into()),
                Some("q\"r".into())
            ]
        );
        assert_eq!(parse_record(&write_record(&f)).unwrap(), f);
        assert_eq!(parse_record("()").unwrap(), vec![None]);
        let quoted = parse_record("(\"221B Baker Street\",London,\"NW1 6XE\")").unwrap();
        assert_eq!(quoted[0].as_deref(), Some("221B Baker Street"));
    }
}
