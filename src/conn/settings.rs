//! Reading connection settings: a `postgresql://` URL or a libpq
//! `key=value` string, then the `PG*` environment variables, the password
//! file and libpq's defaults for whatever the string leaves out.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::{pgpass, ConnError, ConnSpec, Env, SslMode, APPLICATION_NAME};

impl SslMode {
    fn parse(s: &str) -> Result<Self, ConnError> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return Err(ConnError::BadValue("sslmode")),
        })
    }
}

impl ConnSpec {
    /// Parses a URL or key=value string (either may be empty), then fills the
    /// gaps from `PG*` variables, `~/.pgpass` and libpq's defaults.
    pub fn parse(input: &str, env: &dyn Env) -> Result<Self, ConnError> {
        let input = input.trim();
        let lower = input.get(..13).unwrap_or(input).to_ascii_lowercase();
        let params = if lower.starts_with("postgresql://") || lower.starts_with("postgres://") {
            let scheme_len = if lower.starts_with("postgresql://") { 13 } else { 11 };
            parse_url(&format!("{}{}", &lower[..scheme_len], &input[scheme_len..]))?
        } else if input.contains("://") {
            return Err(ConnError::BadUrl("only postgresql:// and postgres:// URLs are supported".into()));
        } else {
            parse_key_value(input)?
        };
        Self::resolve(params, env)
    }

    fn resolve(mut p: BTreeMap<String, String>, env: &dyn Env) -> Result<Self, ConnError> {
        for (key, var) in [
            ("host", "PGHOST"),
            ("port", "PGPORT"),
            ("user", "PGUSER"),
            ("password", "PGPASSWORD"),
            ("dbname", "PGDATABASE"),
            ("sslmode", "PGSSLMODE"),
            ("sslrootcert", "PGSSLROOTCERT"),
            ("connect_timeout", "PGCONNECT_TIMEOUT"),
            ("application_name", "PGAPPNAME"),
            ("options", "PGOPTIONS"),
        ] {
            if !p.contains_key(key) {
                if let Some(v) = env.var(var) {
                    p.insert(key.to_string(), v);
                }
            }
        }
        let hosts: Vec<String> = match p.get("host") {
            Some(h) => h.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
            None => Vec::new(),
        };
        let hosts = if hosts.is_empty() {
            if Path::new("/var/run/postgresql").is_dir() {
                vec!["/var/run/postgresql".to_string()]
            } else {
                vec!["localhost".to_string()]
            }
        } else {
            hosts
        };
        let port = match p.get("port") {
            // libpq allows one port per host; we take the first, which is
            // what every single-host set-up means.
            Some(s) => s
                .split(',')
                .next()
                .unwrap_or_default()
                .trim()
                .parse::<u16>()
                .map_err(|_| ConnError::BadValue("port"))?,
            None => 5432,
        };
        let user = p.get("user").cloned().or_else(|| env.var("USER")).unwrap_or_else(|| "postgres".to_string());
        let dbname = p.get("dbname").cloned().unwrap_or_else(|| user.clone());
        // As libpq 16+ does: the system's trust store means checking the
        // host name too, and a weaker mode with it is a mistake.
        let system_roots = p.get("sslrootcert").is_some_and(|r| r == "system");
        let sslmode = match (p.get("sslmode"), system_roots) {
            (Some(s), false) => SslMode::parse(s)?,
            (Some(s), true) => match SslMode::parse(s)? {
                SslMode::VerifyFull => SslMode::VerifyFull,
                _ => return Err(ConnError::WeakWithSystemRoots),
            },
            (None, true) => SslMode::VerifyFull,
            (None, false) => SslMode::Prefer,
        };
        let connect_timeout = match p.get("connect_timeout") {
            Some(s) => {
                let secs: u64 = s.trim().parse().map_err(|_| ConnError::BadValue("connect_timeout"))?;
                (secs > 0).then(|| Duration::from_secs(secs.max(2)))
            }
            None => Some(Duration::from_secs(30)),
        };
        let application_name = p.get("application_name").cloned().unwrap_or_else(|| APPLICATION_NAME.to_string());
        let mut spec = ConnSpec {
            hosts,
            port,
            user,
            password: p.get("password").cloned(),
            dbname,
            sslmode,
            sslrootcert: p.get("sslrootcert").cloned(),
            connect_timeout,
            application_name,
            options: p.get("options").cloned(),
        };
        if spec.password.is_none() {
            spec.password = pgpass::lookup(&spec, env);
        }
        Ok(spec)
    }
}

const KNOWN_KEYS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "user",
    "password",
    "dbname",
    "sslmode",
    "sslrootcert",
    "connect_timeout",
    "application_name",
    "options",
];

fn check_key(key: &str) -> Result<String, ConnError> {
    if KNOWN_KEYS.contains(&key) {
        // hostaddr is accepted as a host: both name the server to reach.
        Ok(if key == "hostaddr" { "host".to_string() } else { key.to_string() })
    } else {
        Err(ConnError::UnknownParameter(safe_key(key)))
    }
}

/// A key as it may be shown: only plain parameter names are echoed, since
/// anything else may be part of a value (a password) that was mistyped.
fn safe_key(key: &str) -> String {
    if !key.is_empty() && key.len() <= 40 && key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
        key.to_string()
    } else {
        "(not shown)".to_string()
    }
}

fn parse_url(input: &str) -> Result<BTreeMap<String, String>, ConnError> {
    let mut p = BTreeMap::new();
    // The `url` crate reads one host; libpq also allows a host list in the
    // authority. Keep the host list apart and let `url` read the rest.
    let (scheme_len, rest) = match input.strip_prefix("postgresql://") {
        Some(r) => ("postgresql://".len(), r),
        None => ("postgres://".len(), &input["postgres://".len()..]),
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let (userinfo, hostlist) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let first_host = hostlist.split(',').next().unwrap_or("");
    let rebuilt = format!(
        "{}{}{}{}",
        &input[..scheme_len],
        userinfo.map(|u| format!("{u}@")).unwrap_or_default(),
        first_host,
        &rest[authority_end..]
    );
    let url = url::Url::parse(&rebuilt).map_err(|e| ConnError::BadUrl(e.to_string()))?;
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    if !url.username().is_empty() {
        p.insert("user".into(), decode(url.username()));
    }
    if let Some(pw) = url.password() {
        p.insert("password".into(), decode(pw));
    }
    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    for entry in hostlist.split(',').filter(|s| !s.is_empty()) {
        let (h, port) = split_host_port(entry)?;
        if !h.is_empty() {
            hosts.push(decode(h));
        }
        if let Some(port) = port {
            ports.push(port.to_string());
        }
    }
    if !hosts.is_empty() {
        p.insert("host".into(), hosts.join(","));
    }
    if !ports.is_empty() {
        p.insert("port".into(), ports.join(","));
    }
    let path = url.path().trim_start_matches('/');
    if !path.is_empty() {
        p.insert("dbname".into(), decode(path));
    }
    for (k, v) in url.query_pairs() {
        let key = check_key(&k)?;
        p.insert(key, v.into_owned());
    }
    Ok(p)
}

fn split_host_port(entry: &str) -> Result<(&str, Option<&str>), ConnError> {
    if let Some(rest) = entry.strip_prefix('[') {
        // [ipv6]:port
        let end = rest.find(']').ok_or_else(|| ConnError::BadUrl("unclosed '[' in host".into()))?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        let port = after.strip_prefix(':').filter(|s| !s.is_empty());
        return Ok((host, port));
    }
    match entry.rsplit_once(':') {
        Some((h, p)) => Ok((h, Some(p).filter(|s| !s.is_empty()))),
        None => Ok((entry, None)),
    }
}

fn parse_key_value(input: &str) -> Result<BTreeMap<String, String>, ConnError> {
    let mut p = BTreeMap::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(ConnError::BadKeyValue(format!(
                "expected '=' after the parameter name '{}'; quote values with spaces: key='a value'",
                safe_key(&key)
            )));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let key = check_key(&key)?;
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some(n) => value.push(n),
                        None => break,
                    },
                    '\'' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(ConnError::BadKeyValue(format!("unterminated quoted value for '{key}'")));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        value.push(n);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        p.insert(key, value);
    }
    Ok(p)
}
