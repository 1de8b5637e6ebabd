//! pg_dump's plain-format schema scripts, as we store and replay them.
//!
//! pg_dump 15.14 and later wraps its output in `\restrict KEY` ...
//! `\unrestrict KEY`: psql meta-commands that stop psql from obeying any
//! other meta-command inside the script, so a hostile object name in the
//! source cannot run commands on the machine that restores it.
//!
//! `restore` sends the script to the server over the wire protocol, where no
//! client-side meta-command exists at all: only those two wrapper lines are
//! removed, and anything else that looks like a meta-command reaches the
//! server as SQL and fails there. `export` writes a psql script again, so it
//! wraps the whole stream in `\restrict` with a fresh random key of its own.

use rand::distr::{Alphanumeric, SampleString};

/// A schema script with the restrict wrapper taken off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// The SQL between the wrapper lines (the whole text when unwrapped).
    pub body: String,
    /// Whether pg_dump wrapped it in `\restrict`.
    pub restricted: bool,
}

/// A schema script that does not have the shape pg_dump writes.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("{0}: '\\restrict' without a matching '\\unrestrict' at the end; the file is truncated or was edited")]
    Unbalanced(String),
    #[error("{0} is not valid UTF-8")]
    Encoding(String),
}

/// Removes pg_dump's `\restrict` / `\unrestrict` pair and makes its session
/// settings portable ([`portable_settings`]). `name` is used in errors.
pub fn parse(name: &str, bytes: &[u8]) -> Result<Script, ScriptError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ScriptError::Encoding(name.to_string()))?;
    // The opening line comes before any SQL: only comments and blank lines
    // may precede it.
    let mut key = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_end_matches(['\n', '\r']);
        if let Some(k) = trimmed.strip_prefix("\\restrict ") {
            key = Some((k.trim().to_string(), offset, offset + line.len()));
            break;
        }
        if !(trimmed.is_empty() || trimmed.starts_with("--")) {
            break;
        }
        offset += line.len();
    }
    let Some((key, start, after)) = key else {
        // Snapshots written before their scripts were made portable too.
        return Ok(Script { body: portable_settings(text), restricted: false });
    };
    let closing = format!("\\unrestrict {key}");
    let rest = &text[after..];
    let mut end = None;
    let mut pos = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end_matches(['\n', '\r']) == closing {
            end = Some((pos, pos + line.len()));
        }
        pos += line.len();
    }
    let Some((close_start, close_end)) = end else {
        return Err(ScriptError::Unbalanced(name.to_string()));
    };
    let mut body = String::with_capacity(text.len());
    body.push_str(&text[..start]);
    body.push_str(&rest[..close_start]);
    body.push_str(&rest[close_end..]);
    Ok(Script { body: portable_settings(&body), restricted: true })
}

/// The entries of a pg_dump script: each starts at its comment header
/// (`--` / `-- Name: ...; Type: ...; ...` / `--`); what precedes the first
/// is a preamble entry without a name. Yields (header line, entry text).
pub fn entries(text: &str) -> Vec<(&str, &str)> {
    let mut starts = vec![0];
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        if line.starts_with("-- Name: ") || line.starts_with("-- Data for Name: ") {
            // The entry starts at the "--" line above its header.
            let above = text[..pos].trim_end_matches('\n').rfind('\n').map_or(0, |i| i + 1);
            if text[above..pos].trim_end() == "--" && above > *starts.last().unwrap_or(&0) {
                starts.push(above);
            }
        }
        pos += line.len();
    }
    starts.push(text.len());
    starts
        .windows(2)
        .map(|w| {
            let entry = &text[w[0]..w[1]];
            let header = entry.lines().find(|l| l.starts_with("-- Name: ") || l.starts_with("-- Data for Name: "));
            (header.unwrap_or(""), entry)
        })
        .filter(|(_, e)| !e.is_empty())
        .collect()
}

/// pg_dump's script with its session settings made safe for every server
/// the snapshot may be restored into: pg_dump 17 and later write `SET
/// transaction_timeout = 0;`, which a server older than 17 rejects (a
/// PostgreSQL 16 source dumped with pg_dump 18 could not be restored into
/// 16). That line becomes a `set_config` that runs only on 17 and later.
pub fn portable_settings(text: &str) -> String {
    const LINE: &str = "SET transaction_timeout = 0;";
    const GUARDED: &str = "SELECT pg_catalog.set_config('transaction_timeout', '0', false) \
                           WHERE pg_catalog.current_setting('server_version_num')::int >= 170000;";
    if !text.contains(LINE) {
        return text.to_string();
    }
    text.split_inclusive('\n')
        .map(|l| if l.trim_end() == LINE { l.replacen(LINE, GUARDED, 1) } else { l.to_string() })
        .collect()
}

/// pg_dump's script without its user mappings: `CREATE USER MAPPING ...
/// OPTIONS (user ..., password ...)` carries the credentials production
/// uses to reach other servers, which no snapshot may hold (and a
/// developer's database has no use for). Returns the script and how many
/// entries were removed.
pub fn without_user_mappings(text: &str) -> (String, usize) {
    let mut out = String::with_capacity(text.len());
    let mut removed = 0;
    for (header, entry) in entries(text) {
        if header.contains("; Type: USER MAPPING;") {
            removed += 1;
            continue;
        }
        // The drop list of a --clean script has no headers of its own.
        for line in entry.split_inclusive('\n') {
            if line.starts_with("DROP USER MAPPING ") {
                removed += 1;
            } else {
                out.push_str(line);
            }
        }
    }
    (out, removed)
}

/// A fresh key for `\restrict` (alphanumeric, as psql requires).
pub fn new_restrict_key() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 40)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_the_wrapper_only() {
        assert_eq!(
            portable_settings("SET x = 1;\nSET transaction_timeout = 0;\n"),
            "SET x = 1;\nSELECT pg_catalog.set_config('transaction_timeout', '0', false) WHERE pg_catalog.current_setting('server_version_num')::int >= 170000;\n"
        );
        let text = "--\n-- PostgreSQL database dump\n--\n\n\\restrict abc123\n\nSET x = 1;\nCREATE FUNCTION f() RETURNS text AS $$\n\\unrestrict abc123 \n$$ LANGUAGE sql;\n\n\\unrestrict abc123\n";
        let s = parse("pre-data.sql", text.as_bytes()).unwrap();
        assert!(s.restricted);
        assert!(!s.body.contains("\\restrict"));
        assert!(s.body.contains("SET x = 1;"));
        // A look-alike line inside a function body (note the trailing space) stays.
        assert!(s.body.contains("\\unrestrict abc123 \n"));
        assert!(!s.body.ends_with("\\unrestrict abc123\n"));
    }

    #[test]
    fn plain_scripts_pass_and_truncated_ones_fail() {
        let s = parse("a", b"SET x = 1;\n").unwrap();
        assert!(!s.restricted);
        assert_eq!(s.body, "SET x = 1;\n");
        assert!(parse("a", b"\\restrict k\nSET x = 1;\n").is_err());
        // A restrict line after SQL is not the wrapper.
        let s = parse("a", b"SET x = 1;\n\\restrict k\n").unwrap();
        assert!(!s.restricted);
    }

    #[test]
    fn user_mappings_are_removed_and_the_rest_is_kept_byte_for_byte() {
        let text = "--\n-- PostgreSQL database dump\n--\n\nSET x = 1;\n\n--\n-- Name: foo; Type: SERVER; Schema: -; Owner: -\n--\n\nCREATE SERVER foo FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'db');\n\n\n--\n-- Name: USER MAPPING app SERVER foo; Type: USER MAPPING; Schema: -; Owner: -\n--\n\nCREATE USER MAPPING FOR app SERVER foo OPTIONS (\n    password 'hunter2',\n    \"user\" 'bob'\n);\n\n\n--\n-- Name: t; Type: TABLE; Schema: public; Owner: -\n--\n\nCREATE TABLE public.t (id int);\n";
        let (out, removed) = without_user_mappings(text);
        assert_eq!(removed, 1);
        assert!(!out.contains("hunter2") && !out.contains("USER MAPPING"), "{out}");
        assert!(out.contains("CREATE SERVER foo") && out.contains("CREATE TABLE public.t (id int);\n"));
        assert_eq!(without_user_mappings(&out).0, out);
        assert_eq!(entries(text).len(), 4);
    }

    #[test]
    fn keys_are_alphanumeric() {
        let k = new_restrict_key();
        assert_eq!(k.len(), 40);
        assert!(k.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
