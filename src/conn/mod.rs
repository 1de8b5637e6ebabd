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
//!
//! [`settings`] reads the string, the `PG*` variables and the password
//! file ([`pgpass`]); [`tls`] builds the rustls connector for `sslmode`;
//! this module connects, cancels, and describes driver errors.

mod pgpass;
mod settings;
mod tls;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

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
    #[error("sslrootcert=system checks the server's certificate against the system's trust store, which needs sslmode=verify-full (the default with it): a weaker sslmode would not check the host name")]
    WeakWithSystemRoots,
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

/// [`describe_pg_error`] for errors of reading the source, where the
/// server's message of a data exception (SQLSTATE class 22: a cast that
/// fails, a value out of range) may quote a cell value: that message is
/// reduced to its code and a hint, so no value reaches a log or a report.
pub fn describe_source_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) if db.code().code().starts_with("22") => format!(
            "{}: a data exception (SQLSTATE {}); the server's message is withheld because it may quote a value. Check the rules' `where:` conditions (the types they compare and the casts they make)",
            db.severity(),
            db.code().code()
        ),
        _ => describe_pg_error(e),
    }
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
        assert_eq!(pgpass::split_pgpass(r"h:5432:db:u:pa\:ss:word"), vec!["h", "5432", "db", "u", "pa:ss:word"]);
    }

    #[test]
    fn the_system_trust_store_means_verify_full() {
        let s = ConnSpec::parse("host=h sslrootcert=system", &env(&[])).unwrap();
        assert_eq!(s.sslmode, SslMode::VerifyFull);
        let s = ConnSpec::parse("postgresql://u@h/db?sslrootcert=system&sslmode=verify-full", &env(&[])).unwrap();
        assert_eq!(s.sslmode, SslMode::VerifyFull);
        for weak in ["require", "prefer", "verify-ca", "disable"] {
            let e = ConnSpec::parse(&format!("host=h sslrootcert=system sslmode={weak}"), &env(&[])).unwrap_err();
            assert!(matches!(e, ConnError::WeakWithSystemRoots), "{weak}");
        }
    }

    #[test]
    fn verify_modes_need_a_root_certificate() {
        let s = ConnSpec::parse("host=h sslmode=verify-full", &env(&[])).unwrap();
        assert!(matches!(s.tls(&env(&[])), Err(ConnError::MissingRootCert(_))));
        let s = ConnSpec::parse("host=h sslmode=require", &env(&[])).unwrap();
        assert!(s.tls(&env(&[])).is_ok());
    }
}
