//! Splits pg_dump's post-data script into its entries, so that indexes and
//! constraints can be built on several connections at once.
//!
//! pg_dump writes each object as a comment header
//! (`-- Name: ...; Type: INDEX; Schema: ...; Owner: ...`) followed by its
//! statements; session settings (`SET default_tablespace = ...`) come
//! before the header of the entry they apply to. An entry that builds an
//! index or a constraint names the tables it locks; two entries that share
//! a table never run at once (two foreign keys between the same tables
//! could otherwise deadlock). Everything else (triggers, rules,
//! materialized view refreshes, index attachments) runs alone, in order.

/// One entry of the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// pg_dump's type: `INDEX`, `CONSTRAINT`, `FK CONSTRAINT`, `TRIGGER`...
    pub kind: String,
    /// The session settings in force for it, then its statements.
    pub sql: String,
    /// Tables it locks, when it may run beside others; empty when it must
    /// run alone.
    pub tables: Vec<String>,
}

/// The script cut into a preamble (settings for every connection) and
/// entries in pg_dump's order.
#[derive(Debug, Clone, Default)]
pub struct PostData {
    pub preamble: String,
    pub entries: Vec<Entry>,
}

/// Splits a post-data script. Text that does not follow pg_dump's layout
/// ends up in entries that run alone, in order, so nothing is lost.
pub fn split(script: &str) -> PostData {
    let lines: Vec<&str> = script.lines().collect();
    let header = |i: usize| {
        lines.get(i).is_some_and(|l| *l == "--")
            && lines.get(i + 1).and_then(|l| l.strip_prefix("-- Name: ")).is_some_and(|l| l.contains("; Type: "))
    };
    let mut starts: Vec<usize> = (0..lines.len()).filter(|&i| header(i)).collect();
    let mut out = PostData::default();
    let Some(&first) = starts.first() else {
        out.preamble = script.to_string();
        return out;
    };
    out.preamble = lines[..first].join("\n");
    starts.push(lines.len());
    // Session settings carried from one entry to the next, as a psql
    // session running the whole script would have them.
    let mut settings: Vec<(String, String)> = Vec::new();
    for w in starts.windows(2) {
        let (start, end) = (w[0], w[1]);
        let kind =
            lines[start + 1].split("; Type: ").nth(1).and_then(|r| r.split(';').next()).unwrap_or("").to_string();
        // The trailing SET lines belong to the entries that follow.
        let mut body_end = end;
        while body_end > start + 2 {
            let l = lines[body_end - 1].trim();
            if l.is_empty() || (l.starts_with("SET ") && l.ends_with(';')) || l.starts_with("-- ") || l == "--" {
                body_end -= 1;
            } else {
                break;
            }
        }
        let body = lines[start..body_end].join("\n");
        let prefix: String = settings.iter().map(|(_, s)| format!("{s}\n")).collect();
        let tables = if matches!(kind.as_str(), "INDEX" | "CONSTRAINT" | "FK CONSTRAINT") && single_statement(&body) {
            tables_of(&body)
        } else {
            Vec::new()
        };
        out.entries.push(Entry { kind, sql: format!("{prefix}{body}\n"), tables });
        for l in &lines[body_end..end] {
            let l = l.trim();
            if let Some(rest) = l.strip_prefix("SET ").filter(|_| l.ends_with(';')) {
                let name = rest.split([' ', '=']).next().unwrap_or("").to_string();
                settings.retain(|(n, _)| *n != name);
                settings.push((name, l.to_string()));
            }
        }
    }
    out
}

impl PostData {
    /// Whether the script can run in parts on several connections: it has
    /// entries, and its preamble only sets session settings (which then run
    /// on every connection). Else it must run as one, in order.
    pub fn runs_in_parts(&self) -> bool {
        !self.entries.is_empty() && self.preamble_is_settings()
    }

    fn preamble_is_settings(&self) -> bool {
        self.preamble.lines().map(str::trim).all(|l| {
            l.is_empty()
                || l.starts_with("--")
                || (l.starts_with("SET ") && l.ends_with(';'))
                || (l.starts_with("SELECT pg_catalog.set_config(") && l.ends_with(';'))
        })
    }
}

/// Whether an entry holds exactly one statement (no `;` but the last).
fn single_statement(body: &str) -> bool {
    let sql: String = body.lines().filter(|l| !l.starts_with("--")).collect::<Vec<_>>().join("\n");
    let sql = sql.trim();
    sql.ends_with(';') && !sql[..sql.len() - 1].contains(';')
}

/// The tables an index or constraint statement locks: the table after
/// `ALTER TABLE [ONLY]` or `ON [ONLY]`, and the one after `REFERENCES`.
/// Empty when none is found (the entry then runs alone).
fn tables_of(body: &str) -> Vec<String> {
    let words: Vec<&str> = body.lines().filter(|l| !l.starts_with("--")).flat_map(str::split_whitespace).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let after = match (words[i], words.get(i + 1)) {
            ("ALTER", Some(&"TABLE")) => Some(i + 2),
            ("ON", _) | ("REFERENCES", _) => Some(i + 1),
            _ => None,
        };
        if let Some(mut j) = after {
            if words.get(j) == Some(&"ONLY") {
                j += 1;
            }
            if let Some(name) = words.get(j) {
                // `REFERENCES public.t(id)`: the name ends at the bracket.
                let name = name.split('(').next().unwrap_or(name);
                if !name.is_empty() && !out.iter().any(|t| t == name) {
                    out.push(name.to_string());
                }
            }
            i = j;
        }
        i += 1;
    }
    // Quoted names with spaces cannot be read word by word: run alone.
    if out.iter().any(|t| t.matches('"').count() % 2 == 1) {
        return Vec::new();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str = "SET statement_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\n\n\
--\n-- Name: customers customers_pkey; Type: CONSTRAINT; Schema: public; Owner: -\n--\n\n\
ALTER TABLE ONLY public.customers\n    ADD CONSTRAINT customers_pkey PRIMARY KEY (id);\n\n\n\
SET default_tablespace = '';\n\n\
--\n-- Name: idx; Type: INDEX; Schema: public; Owner: -\n--\n\n\
CREATE INDEX idx ON public.orders USING btree (customer_id);\n\n\n\
--\n-- Name: orders orders_customer_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -\n--\n\n\
ALTER TABLE ONLY public.orders\n    ADD CONSTRAINT orders_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES public.customers(id);\n\n\n\
--\n-- Name: t trg; Type: TRIGGER; Schema: public; Owner: -\n--\n\n\
CREATE TRIGGER trg BEFORE INSERT ON public.orders FOR EACH ROW EXECUTE FUNCTION public.f();\n\n\n\
--\n-- PostgreSQL database dump complete\n--\n\n";

    #[test]
    fn entries_keep_their_settings_and_name_their_tables() {
        let p = split(SCRIPT);
        assert!(p.preamble.contains("set_config('search_path'"));
        assert!(p.runs_in_parts());
        let kinds: Vec<&str> = p.entries.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["CONSTRAINT", "INDEX", "FK CONSTRAINT", "TRIGGER"]);
        assert_eq!(p.entries[0].tables, ["public.customers"]);
        assert!(!p.entries[0].sql.contains("default_tablespace"), "{}", p.entries[0].sql);
        assert!(p.entries[1].sql.starts_with("SET default_tablespace = '';\n"), "{}", p.entries[1].sql);
        assert_eq!(p.entries[1].tables, ["public.orders"]);
        assert_eq!(p.entries[2].tables, ["public.orders", "public.customers"]);
        assert!(p.entries[3].tables.is_empty(), "a trigger runs alone");
        assert!(p.entries[3].sql.contains("CREATE TRIGGER"));
        // Nothing of the script is lost.
        for e in &p.entries {
            for l in e.sql.lines().filter(|l| !l.starts_with("SET default_tablespace")) {
                assert!(SCRIPT.contains(l), "{l}");
            }
        }
    }

    #[test]
    fn text_without_headers_is_one_preamble() {
        let p = split("SET x = 1;\nCREATE INDEX a ON t USING btree (c);\n");
        assert!(p.entries.is_empty());
        assert!(p.preamble.contains("CREATE INDEX"));
        assert!(!p.preamble_is_settings());
        assert!(!p.runs_in_parts());
    }

    #[test]
    fn quoted_names_with_spaces_run_alone() {
        assert!(tables_of("ALTER TABLE ONLY public.\"my table\"\n ADD CONSTRAINT x PRIMARY KEY (id);").is_empty());
        assert_eq!(tables_of("CREATE UNIQUE INDEX i ON ONLY \"S\".\"T\" USING btree (a);"), ["\"S\".\"T\""]);
    }
}
