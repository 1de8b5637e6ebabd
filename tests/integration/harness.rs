//! Test harness: the throwaway cluster, databases, and running the binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

pub struct Cluster {
    host: String,
    port: u16,
    user: String,
    password: String,
    bin: PathBuf,
    ca_cert: Option<PathBuf>,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn pg_bin() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("SCRUBSNAP_PG_BIN") {
        return Ok(PathBuf::from(p));
    }
    for major in [17, 16, 15] {
        let p = PathBuf::from(format!("/usr/lib/postgresql/{major}/bin"));
        if p.join("psql").is_file() {
            return Ok(p);
        }
    }
    Err("PostgreSQL client and server programs not found in /usr/lib/postgresql/{17,16,15}/bin: install postgresql-15 (scripts/test does) or set SCRUBSNAP_PG_BIN".into())
}

fn start() -> Result<Cluster, String> {
    let bin = pg_bin()?;
    let mut ca_cert = std::env::var_os("SCRUBSNAP_TEST_PG_CA").map(PathBuf::from);
    let url = match std::env::var("SCRUBSNAP_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            let dir = PathBuf::from(format!("/tmp/scrubsnap-test-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/throwaway-pg");
            let out = Command::new(script)
                .arg("start")
                .arg(&dir)
                .arg("--watch")
                .arg(std::process::id().to_string())
                // Distinctive, so a test can tell it never leaks into output.
                .env("SCRUBSNAP_PG_PASSWORD", format!("Pw-{}-x7Q9", std::process::id()))
                .stderr(Stdio::piped())
                .output()
                .map_err(|e| format!("running scripts/throwaway-pg: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "could not start a throwaway PostgreSQL cluster: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            if dir.join("ca.crt").is_file() {
                ca_cert = Some(dir.join("ca.crt"));
            }
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        }
    };
    let parsed = url::Url::parse(&url).map_err(|e| format!("bad SCRUBSNAP_TEST_PG_URL: {e}"))?;
    Ok(Cluster {
        host: parsed.host_str().unwrap_or("127.0.0.1").to_string(),
        port: parsed.port().unwrap_or(5432),
        user: if parsed.username().is_empty() { "postgres".into() } else { parsed.username().to_string() },
        password: parsed.password().unwrap_or("").to_string(),
        bin,
        ca_cert,
    })
}

pub fn cluster() -> &'static Cluster {
    match CLUSTER.get_or_init(start) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

/// Where `scripts/install-pg-matrix` puts the servers of other majors.
pub fn matrix_dir(major: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/tools/pg/{major}"))
}

/// A throwaway cluster of PostgreSQL `major` (13, 14, 16, 17 or 18, from
/// `scripts/install-pg-matrix`), started on first use and stopped when the
/// test process ends. Its client programs (psql, pg_dump for the checks)
/// are PostgreSQL 18's, which speak to every one of them.
pub fn version_cluster(major: u32) -> &'static Cluster {
    static VERSIONS: OnceLock<std::sync::Mutex<BTreeMap<u32, &'static Cluster>>> = OnceLock::new();
    let map = VERSIONS.get_or_init(Default::default);
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = map.get(&major) {
        return c;
    }
    let (server, client) = (matrix_dir(major), matrix_dir(18));
    for (dir, what) in [(&server, "postgres"), (&client, "psql")] {
        assert!(
            dir.join("bin").join(what).is_file(),
            "PostgreSQL {major} for the version matrix is not installed at {}: run scripts/setup (it runs scripts/install-pg-matrix)",
            dir.display()
        );
    }
    let dir = PathBuf::from(format!("/tmp/scrubsnap-test-{}-pg{major}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/throwaway-pg"))
        .arg("start")
        .arg(&dir)
        .arg("--watch")
        .arg(std::process::id().to_string())
        .env("SCRUBSNAP_PG_BIN", server.join("bin"))
        .env("SCRUBSNAP_PG_LIB", server.join("lib"))
        .env("SCRUBSNAP_PG_PASSWORD", format!("Pw-{}-v{major}", std::process::id()))
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("running scripts/throwaway-pg for PostgreSQL {major}: {e}"));
    assert!(
        out.status.success(),
        "could not start a PostgreSQL {major} cluster: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let parsed = url::Url::parse(&url).unwrap_or_else(|e| panic!("bad URL from throwaway-pg: {e}"));
    let c: &'static Cluster = Box::leak(Box::new(Cluster {
        host: parsed.host_str().unwrap_or("127.0.0.1").to_string(),
        port: parsed.port().unwrap_or(5432),
        user: "postgres".into(),
        password: parsed.password().unwrap_or("").to_string(),
        bin: client.join("bin"),
        ca_cert: dir.join("ca.crt").is_file().then(|| dir.join("ca.crt")),
    }));
    map.insert(major, c);
    c
}

impl Cluster {
    pub fn password(&self) -> &str {
        &self.password
    }
    /// The CA certificate that signed the server's TLS certificate.
    pub fn ca_cert(&self) -> &Path {
        match &self.ca_cert {
            Some(p) => p,
            None => panic!("the test server has no TLS certificate: scripts/throwaway-pg needs openssl (or set SCRUBSNAP_TEST_PG_CA for SCRUBSNAP_TEST_PG_URL)"),
        }
    }
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgresql://{}:{}@{}:{}/{}", self.user, self.password, self.host, self.port, db)
    }

    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    fn libpq(&self, cmd: &mut Command) {
        for (k, _) in std::env::vars() {
            if k.starts_with("PG") {
                cmd.env_remove(k);
            }
        }
        cmd.env("PGHOST", &self.host)
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", &self.user)
            .env("PGPASSWORD", &self.password);
    }

    /// A new, empty database with a unique name.
    pub fn fresh_db(&self, prefix: &str) -> String {
        let name = self.unused_db(prefix);
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
        name
    }

    /// A unique database name that does not exist yet.
    /// Unique even across machines sharing one server (SCRUBSNAP_TEST_PG_URL),
    /// where process ids repeat.
    pub fn unused_db(&self, prefix: &str) -> String {
        static RUN: OnceLock<u32> = OnceLock::new();
        let run = RUN.get_or_init(rand::random::<u32>);
        format!("{prefix}_{}_{run:08x}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst))
    }

    /// Fails if `text` holds the server's password (when it has one).
    pub fn assert_no_password(&self, text: &str, what: &str) {
        assert!(self.password.is_empty() || !text.contains(&self.password), "{what}: the password was printed");
    }

    /// Restores `<store>/<snapshot>` (an id or `latest`) into a new database
    /// that `restore --create` makes; returns the run and the database name.
    pub fn restore_new(&self, store: &Path, snapshot: &str, prefix: &str) -> (Run, String) {
        let dst = self.unused_db(prefix);
        let from = format!("{}/{snapshot}", store.display());
        let r = scrubsnap(&["restore", "--from", &from, "--target", &self.url(&dst), "--create"]);
        (r, dst)
    }

    /// Runs SQL with psql (stop on error); returns unaligned, tuples-only output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let mut cmd = Command::new(self.bin("psql"));
        self.libpq(&mut cmd);
        let out =
            cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-d", db, "-c", sql]).output().expect("running psql");
        assert!(out.status.success(), "psql failed on {db}: {}\nSQL: {sql}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }

    /// Loads a SQL file with psql (stop on error).
    pub fn psql_file(&self, db: &str, file: &Path) -> Output {
        let mut cmd = Command::new(self.bin("psql"));
        self.libpq(&mut cmd);
        cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-f"]).arg(file).output().expect("running psql")
    }

    /// Runs a SQL file with psql as a careless user would: going on after
    /// errors (no ON_ERROR_STOP).
    pub fn psql_file_lax(&self, db: &str, file: &Path) -> Output {
        let mut cmd = Command::new(self.bin("psql"));
        self.libpq(&mut cmd);
        cmd.args(["-X", "-q", "-d", db, "-f"]).arg(file).output().expect("running psql")
    }

    /// Loads a SQL file (relative to the repository) into a new database.
    pub fn sql_db(&self, prefix: &str, rel_path: &str) -> String {
        let db = self.fresh_db(prefix);
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel_path);
        let out = self.psql_file(&db, &path);
        assert!(out.status.success(), "loading {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
        db
    }

    /// Loads one of tests/fixtures/*.sql into a new database.
    pub fn fixture_db(&self, fixture: &str) -> String {
        let db = self.fresh_db(fixture);
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/{fixture}.sql"));
        let out = self.psql_file(&db, &path);
        assert!(out.status.success(), "loading {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
        db
    }

    /// `pg_dump --schema-only` of a database, comparable across databases.
    pub fn schema_dump(&self, db: &str) -> String {
        let mut cmd = Command::new(self.bin("pg_dump"));
        self.libpq(&mut cmd);
        let out =
            cmd.args(["--schema-only", "--no-owner", "--no-privileges", "-d", db]).output().expect("running pg_dump");
        assert!(out.status.success(), "pg_dump {db}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with("\\restrict ") && !l.starts_with("\\unrestrict "))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every ordinary table (leaf partitions included) with an md5 over its
    /// sorted rows, and its row count.
    pub fn table_digests(&self, db: &str) -> BTreeMap<String, String> {
        let tables = self.psql(
            db,
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' ORDER BY 1",
        );
        let mut out = BTreeMap::new();
        for t in tables.lines().filter(|l| !l.is_empty()) {
            let digest = self.psql(
                db,
                &format!(
                    "SELECT count(*) || ':' || md5(coalesce(string_agg(x.r, E'\\n' ORDER BY x.r), '')) \
                     FROM (SELECT t::text AS r FROM ONLY {t} t) x"
                ),
            );
            out.insert(t.to_string(), digest);
        }
        out
    }

    /// Current `last_value, is_called` of every sequence.
    pub fn sequence_states(&self, db: &str) -> String {
        self.psql(
            db,
            "SELECT string_agg(format('%s.%s=%s/%s', schemaname, sequencename, last_value, last_value IS NOT NULL), ',' ORDER BY schemaname, sequencename) FROM pg_sequences",
        )
    }

    pub fn user_table_count(&self, db: &str) -> usize {
        self.psql(
            db,
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r','p') AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'",
        )
        .parse()
        .unwrap_or(usize::MAX)
    }
}

/// The result of running the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `scrubsnap` with a clean environment (no PG*, DATABASE_URL or SCRUBSNAP_* inherited).
pub fn scrubsnap(args: &[&str]) -> Run {
    scrubsnap_env(args, &[])
}

pub fn scrubsnap_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = scrubsnap_cmd(args, env).stdin(Stdio::null()).output().expect("running scrubsnap");
    Run::from(out)
}

/// The binary with a clean environment (no PG*, SCRUBSNAP_*, AWS_* or
/// DATABASE_URL from the caller, no home folder) plus `env`.
pub fn scrubsnap_cmd(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scrubsnap"));
    for (k, _) in std::env::vars() {
        if k.starts_with("PG") || k.starts_with("SCRUBSNAP_") || k.starts_with("AWS_") || k == "DATABASE_URL" {
            cmd.env_remove(k);
        }
    }
    cmd.env("HOME", "/nonexistent-home");
    cmd.env_remove("XDG_CACHE_HOME");
    // The AWS chain must never probe the cloud metadata address from a test.
    cmd.env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args);
    cmd
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// A temporary store folder.
pub fn store_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("scrubsnap-store-").tempdir().expect("temp dir")
}

/// Snapshot folders (with or without manifest) in a local store: not the
/// `blobs` folder of data files shared between snapshots.
pub fn snapshot_dirs(store: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(store)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "blobs")
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Where a file of snapshot `id` in a local store is: a schema script in
/// the snapshot's folder, a data file in `blobs/` under its checksum.
pub fn file_path(store: &Path, id: &str, path: &str) -> PathBuf {
    let m = read_manifest(store, id);
    let entry = m["files"].as_array().expect("files").iter().find(|f| f["path"] == path).cloned();
    let entry = entry.unwrap_or_else(|| panic!("{path} is not a file of {id}"));
    if entry["blob"].as_bool() == Some(true) {
        let sha = entry["sha256"].as_str().expect("sha256");
        let ext = match entry["codec"].as_str() {
            Some("zstd") => ".copy.zst",
            _ => ".copy.gz",
        };
        store.join("blobs/sha256").join(&sha[..2]).join(format!("{sha}{ext}"))
    } else {
        store.join(id).join(path)
    }
}

/// Every file under the `blobs` folder of a local store (data files, and
/// those being written in `blobs/.incoming`).
pub fn blob_files(store: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![store.join("blobs")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// The bytes of a data file, decompressed (gzip or zstd).
pub fn decompressed(path: &Path) -> Vec<u8> {
    use std::io::Read;
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        out = zstd::stream::decode_all(&bytes[..]).expect("zstd");
    } else {
        flate2::read::MultiGzDecoder::new(&bytes[..]).read_to_end(&mut out).expect("gunzip");
    }
    out
}

/// A loopback port nothing listens on.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let p = l.local_addr().expect("addr").port();
    drop(l);
    p
}

/// The manifest of snapshot `id` in a local store.
pub fn read_manifest(store: &Path, id: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(store.join(id).join("manifest.json")).expect("manifest")).expect("json")
}

/// (path, sha256) of every data file of snapshot `id`, in manifest order.
pub fn data_file_sums(store: &Path, id: &str) -> Vec<(String, String)> {
    read_manifest(store, id)["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter(|f| f["path"].as_str().is_some_and(|p| p.starts_with("data/")))
        .map(|f| (f["path"].as_str().unwrap_or("").to_string(), f["sha256"].as_str().unwrap_or("").to_string()))
        .collect()
}
