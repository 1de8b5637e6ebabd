//! The password file (`~/.pgpass` or `PGPASSFILE`), read as libpq reads it.

use std::path::PathBuf;

use super::{ConnSpec, Env};

/// Looks the password up in the password file, as libpq does.
pub(super) fn lookup(spec: &ConnSpec, env: &dyn Env) -> Option<String> {
    let path = match env.var("PGPASSFILE") {
        Some(p) => PathBuf::from(p),
        None => env.home()?.join(".pgpass"),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let host = spec.hosts.first()?;
    let host = if host.starts_with('/') { "localhost" } else { host.as_str() };
    let port = spec.port.to_string();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_pgpass(line);
        if fields.len() < 5 {
            continue;
        }
        let matches = |pat: &str, v: &str| pat == "*" || pat == v;
        if matches(&fields[0], host)
            && matches(&fields[1], &port)
            && matches(&fields[2], &spec.dbname)
            && matches(&fields[3], &spec.user)
        {
            return Some(fields[4].clone());
        }
    }
    None
}

pub(super) fn split_pgpass(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    if let Some(last) = out.last_mut() {
                        last.push(n);
                    }
                }
            }
            ':' if out.len() < 5 => out.push(String::new()),
            c => {
                if let Some(last) = out.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    out
}
