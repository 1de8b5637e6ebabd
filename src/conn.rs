//! Connection settings for the source and target databases.
//!
//! Accepts what libpq users already write: a `postgresql://` URL or a
//! `key=value` string, with the usual `PG*` environment variables (and
//! `~/.pgpass`) filling whatever the string leaves out. The same settings are
//! handed to `tokio-postgres` for our own sessions and to `pg_dump` as
//! environment variables, so both reach the same server the same way.
//!
//! A password is held here and nowhere else: [`ConnSpec`]'s `Display` and
//! `Debug` leave it out, errors never quote the input string, and `pg_dump`
//! receives it through `PGPASSWORD`, never on its command line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// Default `application_name` reported to the server.
pub const APPLICATION_NAME: &str = "scrubsnap";

/// What went wrong while reading connection settings. Never carries the
/// connection string itself, which may hold a password.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("the connection URL is not valid ({0}); expected postgresql://user@host:port/dbname?sslmode=...")]
    BadUrl(String),
    #[error("the connection string is not valid: {0}")]
    BadKeyValue(String),
    #[error("unsupported connection parameter '{0}' (supported: host, port, user, password, dbname, sslmode, sslrootcert, connect_timeout, application_name, options)")]
    UnknownParameter(String),
    #[error("invalid value for connection parameter '{0}'")]
    BadValue(&'static str),
    #[error("sslmode={0} needs a root certificate: set sslrootcert=FILE (or sslrootcert=system for the system's trust store)")]
    MissingRootCert(&'static str),
    #[error("cannot read the root certificate file {path}: {reason}")]
    RootCert { path: PathBuf, reason: String },
    #[error("TLS set-up failed: {0}")]
    Tls(String),
}

/// `sslmode`, with libpq's meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// TLS if the server offers it, else plain; the certificate is not checked.
    Prefer,
    /// TLS, certificate not checked (unless a root certificate is given).
    Require,
    /// TLS, certificate chain checked against the root certificate.
    VerifyCa,
    /// TLS, chain and host name checked.
    VerifyFull,
}

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

    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Fully resolved connection settings.
#[derive(Clone)]
pub struct ConnSpec {
    /// Host names, IP addresses or Unix socket folders (starting with `/`).
    pub hosts: Vec<String>,
    pub port: u16,
    pub user: String,
    password: Option<String>,
    pub dbname: String,
    pub sslmode: SslMode,
    pub sslrootcert: Option<String>,
    pub connect_timeout: Option<Duration>,
    pub application_name: String,
    /// Server options (`-c name=value ...`), as libpq's `options`.
    pub options: Option<String>,
}

/// Where a setting may come from besides the string: the process environment
/// and the home folder. A trait object in tests, the real thing otherwise.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
    fn home(&self) -> Option<PathBuf>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
    fn home(&self) -> Option<PathBuf> {
        std::env::var_os("HOME").map(PathBuf::from)
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
        let sslmode = match p.get("sslmode") {
            Some(s) => SslMode::parse(s)?,
            None => SslMode::Prefer,
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
            spec.password = pgpass_lookup(&spec, env);
        }
        Ok(spec)
    }

    /// The same settings with another database name (e.g. `postgres` to
    /// create the target database).
    pub fn with_dbname(&self, dbname: &str) -> ConnSpec {
        let mut c = self.clone();
        c.dbname = dbname.to_string();
        c
    }

    /// Whether a password is known (from the string, `PGPASSWORD` or `.pgpass`).
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// Settings for `tokio-postgres`.
    pub fn pg_config(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        for h in &self.hosts {
            if h.starts_with('/') {
                c.host_path(h);
            } else {
                c.host(h);
            }
        }
        c.port(self.port);
        c.user(&self.user);
        if let Some(pw) = &self.password {
            c.password(pw.as_bytes());
        }
        c.dbname(&self.dbname);
        c.application_name(&self.application_name);
        if let Some(t) = self.connect_timeout {
            c.connect_timeout(t);
        }
        if let Some(o) = &self.options {
            c.options(o);
        }
        c.ssl_mode(match self.sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
        });
        c.keepalives(true);
        c
    }

    /// Environment variables that make a libpq program (`pg_dump`, `psql`)
    /// connect exactly as we do. The caller should clear inherited `PG*`
    /// variables first.
    pub fn libpq_env(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![
            ("PGHOST", self.hosts.join(",")),
            ("PGPORT", self.port.to_string()),
            ("PGUSER", self.user.clone()),
            ("PGDATABASE", self.dbname.clone()),
            ("PGSSLMODE", self.sslmode.as_str().to_string()),
            ("PGAPPNAME", self.application_name.clone()),
        ];
        if let Some(pw) = &self.password {
            v.push(("PGPASSWORD", pw.clone()));
        }
        if let Some(c) = &self.sslrootcert {
            v.push(("PGSSLROOTCERT", c.clone()));
        }
        if let Some(t) = self.connect_timeout {
            v.push(("PGCONNECT_TIMEOUT", t.as_secs().to_string()));
        }
        if let Some(o) = &self.options {
            v.push(("PGOPTIONS", o.clone()));
        }
        v
    }

    /// The TLS connector for this `sslmode`.
    pub fn tls(&self, env: &dyn Env) -> Result<MakeRustlsConnect, ConnError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ConnError::Tls(e.to_string()))?;
        let roots = self.root_store(env)?;
        let config = match (self.sslmode, roots) {
            (SslMode::VerifyFull, Some(roots)) => builder.with_root_certificates(roots).with_no_client_auth(),
            // libpq: with a root certificate at hand, `require` checks the chain like verify-ca.
            (SslMode::VerifyCa | SslMode::Require | SslMode::Prefer, Some(roots)) => {
                let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| ConnError::Tls(e.to_string()))?;
                builder.dangerous().with_custom_certificate_verifier(Arc::new(ChainOnly(inner))).with_no_client_auth()
            }
            (SslMode::VerifyCa, None) => return Err(ConnError::MissingRootCert("verify-ca")),
            (SslMode::VerifyFull, None) => return Err(ConnError::MissingRootCert("verify-full")),
            (SslMode::Disable | SslMode::Prefer | SslMode::Require, None) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
                .with_no_client_auth(),
            (SslMode::Disable, Some(_)) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
                .with_no_client_auth(),
        };
        Ok(MakeRustlsConnect::new(config))
    }

    fn root_store(&self, env: &dyn Env) -> Result<Option<RootCertStore>, ConnError> {
        let explicit = self.sslrootcert.as_deref();
        let path = match explicit {
            Some("system") => {
                let mut store = RootCertStore::empty();
                let found = rustls_native_certs::load_native_certs();
                for cert in found.certs {
                    let _ = store.add(cert);
                }
                return Ok(Some(store));
            }
            Some(p) => PathBuf::from(p),
            None => match env.home() {
                Some(h) if h.join(".postgresql/root.crt").is_file() => h.join(".postgresql/root.crt"),
                _ => return Ok(None),
            },
        };
        use rustls::pki_types::pem::PemObject;
        let certs = CertificateDer::pem_file_iter(&path)
            .map_err(|e| ConnError::RootCert { path: path.clone(), reason: e.to_string() })?;
        let mut store = RootCertStore::empty();
        for cert in certs {
            let cert = cert.map_err(|e| ConnError::RootCert { path: path.clone(), reason: e.to_string() })?;
            store.add(cert).map_err(|e| ConnError::RootCert { path: path.clone(), reason: e.to_string() })?;
        }
        if store.is_empty() {
            return Err(ConnError::RootCert { path, reason: "no certificate in the file".into() });
        }
        Ok(Some(store))
    }
}

impl fmt::Display for ConnSpec {
    /// `postgresql://user@host:port/dbname`, never with the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = self.hosts.join(",");
        write!(f, "postgresql://{}@{}:{}/{}", self.user, host, self.port, self.dbname)
    }
}

impl fmt::Debug for ConnSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnSpec")
            .field("hosts", &self.hosts)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("dbname", &self.dbname)
            .field("sslmode", &self.sslmode)
            .finish_non_exhaustive()
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

/// Looks the password up in the password file, as libpq does.
fn pgpass_lookup(spec: &ConnSpec, env: &dyn Env) -> Option<String> {
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

fn split_pgpass(line: &str) -> Vec<String> {
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

/// Accepts any server certificate, but still checks that the handshake is
/// signed by it (what libpq's `sslmode=require` does without a root file).
#[derive(Debug)]
struct Unverified(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Checks the chain against the roots but not the host name (`verify-ca`).
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Connects, spawning the connection's driver task. The error names the
/// server (without password) and says what to check.
pub async fn connect(spec: &ConnSpec, env: &dyn Env) -> Result<tokio_postgres::Client, ConnectError> {
    let tls = spec.tls(env).map_err(ConnectError::Settings)?;
    let (client, connection) = spec.pg_config().connect(tls).await.map_err(|e| ConnectError::Failed {
        target: spec.to_string(),
        reason: describe_pg_error(&e),
        hint: connect_hint(&e),
    })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %describe_pg_error(&e), "database connection closed");
        }
    });
    Ok(client)
}

/// Asks the server to cancel the statement `client` runs, if any (best
/// effort, a few seconds at most). For a connection that is dropped next:
/// a statement left running (a lock wait, an index build) would otherwise
/// hold its locks until it ends. Never for a connection that sends another
/// statement after: the request may arrive late and cancel that one.
pub async fn cancel_running(client: &tokio_postgres::Client, spec: &ConnSpec, env: &dyn Env) {
    let Ok(tls) = spec.tls(env) else { return };
    match tokio::time::timeout(Duration::from_secs(5), client.cancel_token().cancel_query(tls)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %describe_pg_error(&e), "could not cancel a running statement"),
        Err(_) => tracing::debug!("cancelling a running statement timed out"),
    }
}

/// Cancels what `client` runs and waits until it has ended (a few seconds
/// at most), for a connection that is dropped next. A cancel request that
/// arrives between two statements is ignored, and the statement queued next
/// would then run to its end: so each round sends a request and a no-op,
/// until the no-op comes back.
pub async fn stop_running(client: &tokio_postgres::Client, spec: &ConnSpec, env: &dyn Env) {
    for _ in 0..5 {
        cancel_running(client, spec, env).await;
        if tokio::time::timeout(Duration::from_secs(1), client.batch_execute("SELECT 1")).await.is_ok() {
            return;
        }
    }
}

/// A failed connection.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Settings(ConnError),
    #[error("cannot connect to {target}: {reason}{hint}")]
    Failed { target: String, reason: String, hint: String },
}

impl ConnectError {
    /// True when the server said the database does not exist.
    pub fn is_missing_database(&self) -> bool {
        matches!(self, ConnectError::Failed { reason, .. } if reason.contains("(3D000)"))
    }
}

/// A one-line description of a driver error: the server's message and
/// SQLSTATE where there is one, else the transport error. Server messages
/// name objects, not row values, for the statements we send.
pub fn describe_pg_error(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{}: {} ({})", db.severity(), db.message(), db.code().code());
        if let Some(h) = db.hint() {
            s.push_str("; hint: ");
            s.push_str(h);
        }
        return s;
    }
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

fn connect_hint(e: &tokio_postgres::Error) -> String {
    let code = e.as_db_error().map(|d| d.code().code().to_string());
    match code.as_deref() {
        Some("28P01") | Some("28000") => {
            " (check the user and password: in the connection string, PGPASSWORD or ~/.pgpass)".into()
        }
        Some("3D000") => " (check the database name; restore can create it with --create)".into(),
        Some(_) => String::new(),
        None => " (check host, port and that the server accepts TCP connections; sslmode may also matter)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct FakeEnv(HashMap<&'static str, &'static str>);
    impl Env for FakeEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|s| s.to_string())
        }
        fn home(&self) -> Option<PathBuf> {
            None
        }
    }
    fn env(pairs: &[(&'static str, &'static str)]) -> FakeEnv {
        FakeEnv(pairs.iter().copied().collect())
    }

    #[test]
    fn url_with_everything() {
        let s = ConnSpec::parse(
            "postgresql://al%40ice:p%2Fss@db.example:6543/my%20db?sslmode=verify-full&connect_timeout=5",
            &env(&[]),
        )
        .unwrap();
        assert_eq!(s.hosts, vec!["db.example"]);
        assert_eq!(s.port, 6543);
        assert_eq!(s.user, "al@ice");
        assert_eq!(s.password.as_deref(), Some("p/ss"));
        assert_eq!(s.dbname, "my db");
        assert_eq!(s.sslmode, SslMode::VerifyFull);
        assert_eq!(s.connect_timeout, Some(Duration::from_secs(5)));
        assert_eq!(s.application_name, "scrubsnap");
    }

    #[test]
    fn uppercase_scheme() {
        let s = ConnSpec::parse("POSTGRESQL://u@h/db", &env(&[])).unwrap();
        assert_eq!(s.dbname, "db");
    }

    #[test]
    fn url_host_list_ipv6_and_socket_query() {
        let s = ConnSpec::parse("postgres://u@[::1]:5433,other/db", &env(&[])).unwrap();
        assert_eq!(s.hosts, vec!["::1", "other"]);
        assert_eq!(s.port, 5433);
        let s = ConnSpec::parse("postgresql:///app?host=/tmp/sock&user=bob", &env(&[])).unwrap();
        assert_eq!(s.hosts, vec!["/tmp/sock"]);
        assert_eq!(s.dbname, "app");
        assert_eq!(s.user, "bob");
    }

    #[test]
    fn key_value_with_quotes_and_env_fallbacks() {
        let s = ConnSpec::parse(
            r"host=127.0.0.1 dbname='my \'db\'' application_name = x",
            &env(&[("PGUSER", "envuser"), ("PGPASSWORD", "envpw"), ("PGPORT", "7777")]),
        )
        .unwrap();
        assert_eq!(s.hosts, vec!["127.0.0.1"]);
        assert_eq!(s.dbname, "my 'db'");
        assert_eq!(s.user, "envuser");
        assert_eq!(s.port, 7777);
        assert!(s.has_password());
        assert_eq!(s.application_name, "x");
    }

    #[test]
    fn errors_never_echo_the_input() {
        let secret = "hunter2-secret";
        for input in [
            format!("postgresql://u:{secret}@h:notaport/db"),
            format!("host=h password={secret} bogus=1"),
            format!("host=h password='{secret}"),
            format!("postgresql://u:{secret}@h/db?sslmode=sometimes"),
            format!("postgresql+psycopg2://u:{secret}@h/db"),
            format!("jdbc:postgresql://h/db?password={secret}"),
            format!("\"postgresql://u:{secret}@h/db\""),
            format!("host=h password=my {secret}"),
        ] {
            let err = ConnSpec::parse(&input, &env(&[])).unwrap_err();
            assert!(!err.to_string().contains(secret), "{err}");
        }
    }

    #[test]
    fn display_and_debug_hide_the_password() {
        let s = ConnSpec::parse("postgresql://u:topsecret@h/db", &env(&[])).unwrap();
        assert!(!s.to_string().contains("topsecret"));
        assert!(!format!("{s:?}").contains("topsecret"));
        assert!(s.libpq_env().iter().any(|(k, v)| *k == "PGPASSWORD" && v == "topsecret"));
    }

    #[test]
    fn pgpass_fields_unescape() {
        assert_eq!(split_pgpass(r"h:5432:db:u:pa\:ss:word"), vec!["h", "5432", "db", "u", "pa:ss:word"]);
    }

    #[test]
    fn verify_modes_need_a_root_certificate() {
        let s = ConnSpec::parse("host=h sslmode=verify-full", &env(&[])).unwrap();
        assert!(matches!(s.tls(&env(&[])), Err(ConnError::MissingRootCert(_))));
        let s = ConnSpec::parse("host=h sslmode=require", &env(&[])).unwrap();
        assert!(s.tls(&env(&[])).is_ok());
    }
}
