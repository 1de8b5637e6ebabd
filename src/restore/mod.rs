//! `restore`: loads a snapshot into a target database.
//!
//! Every file is checked to be there with its size before the target is
//! touched, and each is read once, its SHA-256 checked on the bytes loaded
//! before they are committed; from a remote store each file is downloaded
//! once, checked on the way into a temporary folder, and loaded from there. With one job,
//! everything happens in one transaction: the `--clean` drops if asked,
//! pre-data, each table through `COPY ... FROM STDIN` streamed out of its
//! gzip files, sequence values, post-data (indexes, constraints, triggers,
//! materialized view refreshes); a failure rolls everything back, so the
//! target is as it was. With more, `parallel` loads files and builds
//! indexes on several connections, and undoes a failure by dropping what it
//! created. A database that `--create` made is dropped again on failure.

mod parallel;
pub mod post_data;

use futures_util::SinkExt;
use tokio_postgres::Client;

use crate::conn::{self, ConnSpec, ConnectError, Env};
use crate::encode;
use crate::progress::Progress;
use crate::schema_script::{self, Script, ScriptError};
use crate::snapshot::{self, Listed, SnapshotError, TableEntry};
use crate::source::session::DUMP_SETTINGS;
use crate::sql;
use crate::store::{Store, StoreError};

/// Settings of one restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Drop what the snapshot creates before loading.
    pub clean: bool,
    /// Create the target database when it does not exist.
    pub create: bool,
    /// Connections loading at once; 0 or 1 restores in one transaction.
    pub jobs: usize,
    /// Cancelled to stop the restore (SIGINT, SIGTERM): it ends as a failed
    /// one does, rolled back or undone, and a database it created dropped.
    pub cancel: tokio_util::sync::CancellationToken,
    /// Keep the blobs of remote snapshots here, checked, for the next
    /// restore (`None`: download everything every time).
    pub cache: Option<CacheSettings>,
}

/// Runs `work` unless `cancel` fires first (then `Interrupted`, with `work`
/// dropped).
pub(crate) async fn until_cancelled<T>(
    cancel: &tokio_util::sync::CancellationToken,
    work: impl std::future::Future<Output = T>,
) -> Result<T, RestoreError> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(RestoreError::Interrupted),
        r = work => Ok(r),
    }
}

/// Why a restore failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Script(#[from] ScriptError),
    /// The target has tables and `--clean` was not given (exit 1).
    #[error("the target database {target} is not empty (it has {objects}); restore into an empty database, or add --clean to drop what the snapshot will create")]
    NotEmpty { target: String, objects: String },
    /// The target's server is of an older major version than the
    /// snapshot's source (exit 1): pg_dump's scripts only go forward.
    #[error("the snapshot comes from PostgreSQL {source_major} and the target server is PostgreSQL {target_major}: a restore goes into the same major version or a newer one; nothing was loaded")]
    OlderTarget { source_major: i32, target_major: i32 },
    #[error("{what}: {reason}")]
    Load { what: String, reason: String },
    /// A parallel restore failed after its schema was committed, and what
    /// it had created was dropped again (exit 2).
    #[error("{cause}; {}", undone_note(*.clean, .undo_failed.as_deref()))]
    Undone { cause: Box<RestoreError>, clean: bool, undo_failed: Option<String> },
    /// The restore was stopped from outside (exit 2).
    #[error("interrupted by a signal")]
    Interrupted,
}

fn undone_note(clean: bool, undo_failed: Option<&str>) -> String {
    match (undo_failed, clean) {
        (Some(e), _) => format!("dropping what the restore had created failed too, so the target is half restored: {e}"),
        (None, false) => "what the restore had created was dropped again, so the target is empty as it was".into(),
        (None, true) => "what the restore had created was dropped again; the objects --clean had dropped are gone (use --jobs 1 for a restore that leaves the target untouched on failure)".into(),
    }
}

impl crate::error::Classify for RestoreError {
    fn fault(&self) -> crate::error::Fault {
        use crate::error::Fault;
        match self {
            RestoreError::NotEmpty { .. }
            | RestoreError::OlderTarget { .. }
            | RestoreError::Connect(ConnectError::Settings(_)) => Fault::Config,
            RestoreError::Interrupted => Fault::Interrupted,
            RestoreError::Undone { cause, .. } if matches!(**cause, RestoreError::Interrupted) => Fault::Interrupted,
            _ => Fault::Runtime,
        }
    }
}

impl RestoreError {
    /// Whether the target may have changed (a parallel restore undone).
    pub fn touched_target(&self) -> bool {
        matches!(self, RestoreError::Undone { .. })
    }
    fn load(what: impl Into<String>, e: &tokio_postgres::Error) -> Self {
        RestoreError::Load { what: what.into(), reason: conn::describe_pg_error(e) }
    }
}

/// A column of a row the target returned, or an error naming what was read.
pub(crate) fn column<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    i: usize,
    what: &str,
) -> Result<T, RestoreError> {
    row.try_get(i).map_err(|e| RestoreError::Load { what: what.to_string(), reason: e.to_string() })
}

/// Counts of a finished restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreStats {
    pub tables: usize,
    pub rows: u64,
}

/// The three schema scripts of a snapshot, unwrapped.
pub struct Scripts {
    pub pre_data: Script,
    pub post_data: Script,
    pub clean: Script,
}

/// Reads the schema scripts of a snapshot, each checked against the
/// manifest on the bytes that are then used.
pub async fn read_scripts(store: &dyn Store, snap: &Listed) -> Result<Scripts, RestoreError> {
    let read = |path: String| async move {
        let bytes = snapshot::get_checked(store, snap, &path).await?;
        Ok::<Script, RestoreError>(schema_script::parse(&path, &bytes)?)
    };
    let s = &snap.manifest.schema;
    Ok(Scripts {
        pre_data: read(s.pre_data.clone()).await?,
        post_data: read(s.post_data.clone()).await?,
        clean: read(s.clean.clone()).await?,
    })
}

/// Restores `snap` into `target`.
pub async fn restore(
    store: &dyn Store,
    snap: &Listed,
    target: &ConnSpec,
    env: &dyn Env,
    opts: &RestoreOptions,
    progress: &Progress,
) -> Result<RestoreStats, RestoreError> {
    let fetched = if store.is_local() {
        // Missing and truncated files are named before anything is touched;
        // each file's contents are checked as it is loaded, before commit.
        until_cancelled(&opts.cancel, snapshot::check_listing(store, snap)).await??;
        None
    } else {
        let fetched = fetch(store, snap, opts, progress).await;
        progress.finish_overall();
        Some(fetched?)
    };
    let local = fetched.as_ref().map_or(store, |f| &f.local as &dyn Store);
    // Exact: the manifest knows every table's COPY text.
    let total: u64 =
        snap.manifest.tables.iter().map(|t| t.raw_bytes.max(t.chunks.iter().map(|c| c.raw_bytes).sum())).sum();
    progress.overall("loading", total, false);
    let result = restore_from(local, snap, target, env, opts, progress).await;
    progress.finish_overall();
    if let Some(cache) = fetched.as_ref().and_then(|f| f.cache.as_ref()) {
        match cache.evict() {
            Ok(e) if e.files > 0 => tracing::info!(
                "pull cache: removed {} least recently used file(s), {}; it holds {}",
                e.files,
                crate::progress::human_bytes(e.bytes),
                crate::progress::human_bytes(e.kept_bytes)
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("could not trim the pull cache: {e}"),
        }
    }
    result
}

/// Where the pull cache is, and how much it may hold.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    pub dir: std::path::PathBuf,
    pub limit: u64,
    /// Asked for by name (`--cache-dir`): a cache that cannot be opened is
    /// an error, not a warning.
    pub explicit: bool,
}

/// A remote snapshot's files on this machine: in a temporary folder, and
/// its blobs in the pull cache when there is one.
struct Fetched {
    local: crate::store::LocalStore,
    cache: Option<snapshot::cache::BlobCache>,
    _dir: tempfile::TempDir,
}

/// Downloads what is not in the cache, checking each file on the way.
async fn fetch(
    store: &dyn Store,
    snap: &Listed,
    opts: &RestoreOptions,
    progress: &Progress,
) -> Result<Fetched, RestoreError> {
    let load_err = |what: &str, e: std::io::Error| RestoreError::Load { what: what.into(), reason: e.to_string() };
    let dir = tempfile::tempdir().map_err(|e| load_err("creating a temporary folder for the snapshot's files", e))?;
    let cache = match &opts.cache {
        Some(c) => match snapshot::cache::BlobCache::open(&c.dir, c.limit) {
            Ok(cache) => Some(cache),
            Err(e) if c.explicit => return Err(load_err(&format!("opening the pull cache {}", c.dir.display()), e)),
            Err(e) => {
                tracing::warn!("no pull cache: {} cannot be used ({e})", c.dir.display());
                None
            }
        },
        None => None,
    };
    // Each object once, as it is downloaded (blobs repeat: empty tables).
    let mut seen = std::collections::HashSet::new();
    let total: u64 = snap.manifest.files.iter().filter(|f| seen.insert(f.key(&snap.id))).map(|f| f.bytes).sum();
    progress.overall("downloading", total, false);
    let staged = {
        let staging = snapshot::stage(store, snap, dir.path(), cache.as_ref(), opts.jobs.max(4), Some(progress));
        tokio::pin!(staging);
        tokio::select! {
            biased;
            // A stop removes the folder with what was downloaded so far,
            // once the file operations under way (on blocking threads, not
            // cancelled with the download) have ended.
            () = opts.cancel.cancelled() => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                return Err(RestoreError::Interrupted);
            }
            r = &mut staging => r?,
        }
    };
    let human = crate::progress::human_bytes;
    match &cache {
        Some(_) => tracing::info!(
            snapshot = %snap.id,
            downloaded_files = staged.downloaded_files,
            downloaded_bytes = staged.downloaded_bytes,
            cached_files = staged.cached_files,
            cached_bytes = staged.cached_bytes,
            "downloaded {} file(s), {}; reused {} from the pull cache ({}), {} damaged cached file(s) fetched again",
            staged.downloaded_files,
            human(staged.downloaded_bytes),
            staged.cached_files,
            human(staged.cached_bytes),
            staged.refetched,
        ),
        None => tracing::info!(
            snapshot = %snap.id,
            "downloaded {} file(s), {} (no pull cache)",
            staged.downloaded_files,
            human(staged.downloaded_bytes)
        ),
    }
    let local = match &cache {
        Some(c) => crate::store::LocalStore::with_blobs(dir.path().to_path_buf(), c.blobs_dir()),
        None => crate::store::LocalStore::new(dir.path().to_path_buf()),
    };
    Ok(Fetched { local, cache, _dir: dir })
}

/// Restores from a store whose files are on this machine.
async fn restore_from(
    store: &dyn Store,
    snap: &Listed,
    target: &ConnSpec,
    env: &dyn Env,
    opts: &RestoreOptions,
    progress: &Progress,
) -> Result<RestoreStats, RestoreError> {
    tracing::info!(snapshot = %snap.id, files = snap.manifest.files.len(), "files present; each is checked as it is read");
    let scripts = read_scripts(store, snap).await?;
    if opts.cancel.is_cancelled() {
        return Err(RestoreError::Interrupted);
    }
    let (client, created) = connect_target(target, env, opts.create).await?;
    let result = async {
        let target_num = server_version_num(&client).await?;
        let source_major = snap.manifest.source.server_version_num / 10_000;
        if target_num / 10_000 < source_major {
            return Err(RestoreError::OlderTarget { source_major, target_major: target_num / 10_000 });
        }
        if !opts.clean {
            let objects = existing_objects(&client).await?;
            if !objects.is_empty() {
                return Err(RestoreError::NotEmpty { target: target.to_string(), objects });
            }
        }
        prepare(&client).await?;
        if opts.jobs > 1 {
            let target = parallel::Target { client: &client, spec: target, env, opts };
            return parallel::restore(target, store, snap, &scripts, progress).await;
        }
        client.batch_execute("BEGIN").await.map_err(|e| RestoreError::load("starting the restore transaction", &e))?;
        let loaded = tokio::select! {
            biased;
            // The statement running is cancelled; the connection, closed
            // below, rolls the transaction back.
            () = opts.cancel.cancelled() => {
                conn::stop_running(&client, target, env).await;
                return Err(RestoreError::Interrupted);
            }
            r = load(&client, store, snap, &scripts, opts, progress) => r,
        };
        match loaded {
            Ok(stats) => {
                client.batch_execute("COMMIT").await.map_err(|e| RestoreError::load("committing the restore", &e))?;
                Ok(stats)
            }
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK").await;
                Err(e)
            }
        }
    }
    .await;
    drop(client);
    if result.is_err() && created {
        // The target did not exist: as it was is gone again.
        match drop_database(target, env).await {
            Ok(()) => {
                tracing::info!(database = %target.dbname, "the database created for this restore was dropped again")
            }
            Err(e) => {
                tracing::warn!(database = %target.dbname, "the database created for this restore is left behind: {e}")
            }
        }
    }
    result
}

async fn load(
    client: &Client,
    store: &dyn Store,
    snap: &Listed,
    scripts: &Scripts,
    opts: &RestoreOptions,
    progress: &Progress,
) -> Result<RestoreStats, RestoreError> {
    if opts.clean {
        run_clean(client, &scripts.clean.body).await?;
    }
    client
        .batch_execute(&scripts.pre_data.body)
        .await
        .map_err(|e| RestoreError::load("creating the schema (pre-data)", &e))?;
    // pg_dump's scripts clear search_path; our statements are qualified.
    let mut stats = RestoreStats::default();
    for t in snap.manifest.tables.iter().filter(|t| t.has_data()) {
        let files = t.data_files();
        let n = files.len();
        let mut rows = 0;
        // One progress line per file: a chunk's counts start from zero.
        for (i, (path, expected)) in files.into_iter().enumerate() {
            let bar = progress.table("loading", &file_label(t, i, n));
            // The table was created in this transaction, so its rows can go in frozen.
            let loaded = load_file(client, store, snap, t, (path, expected), true, &bar).await;
            bar.finish();
            rows += loaded?;
        }
        tracing::info!(table = %format!("{}.{}", t.schema, t.name), rows, "table loaded");
        stats.tables += 1;
        stats.rows += rows;
    }
    set_sequences(client, snap).await?;
    client
        .batch_execute(&scripts.post_data.body)
        .await
        .map_err(|e| RestoreError::load("creating indexes, constraints and triggers (post-data)", &e))?;
    Ok(stats)
}

/// How progress and logs name file `i` of a table's `n`: the table, and
/// which chunk when there are several.
fn file_label(t: &TableEntry, i: usize, n: usize) -> String {
    match n {
        1 => format!("{}.{}", t.schema, t.name),
        _ => format!("{}.{} [{}/{n}]", t.schema, t.name, i + 1),
    }
}

/// The session settings of every restore connection: the ones the data was
/// dumped with, and UTF-8.
async fn prepare(client: &Client) -> Result<(), RestoreError> {
    client
        .batch_execute(&format!("{DUMP_SETTINGS}; SET client_encoding = 'UTF8'"))
        .await
        .map_err(|e| RestoreError::load("setting up a restore connection", &e))
}

/// Sets every sequence to the value the manifest records.
async fn set_sequences(client: &Client, snap: &Listed) -> Result<(), RestoreError> {
    for s in &snap.manifest.sequences {
        client
            .execute(
                "SELECT pg_catalog.setval($1::text::regclass, $2, $3)",
                &[&sql::qualified(&s.schema, &s.name), &s.last_value, &s.is_called],
            )
            .await
            .map_err(|e| RestoreError::load(format!("setting sequence {}.{}", s.schema, s.name), &e))?;
    }
    Ok(())
}

/// Runs pg_dump's drop list one statement at a time. pg_dump also lists the
/// constraints that partitions inherit from their parent, which the server
/// refuses to drop on their own (SQLSTATE 42P16); they go with their table,
/// so that one error is skipped. Any other error fails the restore.
async fn run_clean(client: &Client, script: &str) -> Result<(), RestoreError> {
    for statement in split_statements(script) {
        client.batch_execute("SAVEPOINT scrubsnap_clean").await.map_err(|e| RestoreError::load("--clean", &e))?;
        match client.batch_execute(&statement).await {
            Ok(()) => {}
            Err(e) if e.code().is_some_and(|c| c.code() == "42P16") => {
                client
                    .batch_execute("ROLLBACK TO SAVEPOINT scrubsnap_clean")
                    .await
                    .map_err(|e| RestoreError::load("--clean", &e))?;
            }
            Err(e) => return Err(RestoreError::load("dropping existing objects (--clean)", &e)),
        }
        client
            .batch_execute("RELEASE SAVEPOINT scrubsnap_clean")
            .await
            .map_err(|e| RestoreError::load("--clean", &e))?;
    }
    Ok(())
}

/// Splits pg_dump's drop list into statements: each ends with `;` at the end
/// of a line; comment lines and blank lines are skipped.
fn split_statements(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in script.lines() {
        if current.is_empty() && (line.trim().is_empty() || line.starts_with("--")) {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if line.trim_end().ends_with(';') {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

/// The COPY statement that loads a table of the manifest.
pub fn copy_in_sql(t: &TableEntry) -> String {
    format!("COPY {}{} FROM STDIN", t.qualified(), sql::column_list(&t.columns))
}

/// The COPY statement that loads a table created or emptied in the same
/// transaction: its rows go in frozen (`FREEZE`), so that nothing after
/// the load (the index builds, the foreign key checks, the developer's
/// first queries) rewrites every page to set hint bits on them.
fn copy_in_frozen_sql(t: &TableEntry) -> String {
    format!("{} (FREEZE)", copy_in_sql(t))
}

/// Loads one data file (a table, or one chunk of it) and checks its row
/// count; `frozen` when the table was created or emptied in the same
/// transaction ([`copy_in_frozen_sql`]).
async fn load_file(
    client: &Client,
    store: &dyn Store,
    snap: &Listed,
    t: &TableEntry,
    (path, expected): (&str, u64),
    frozen: bool,
    bar: &crate::progress::TableProgress,
) -> Result<u64, RestoreError> {
    let name = format!("{}.{}", t.schema, t.name);
    let (reader, checked, codec) = snapshot::open_data(store, snap, path).await?;
    let mut chunks = encode::decompress_stream(reader, codec, 4);
    let sink = client
        .copy_in::<_, bytes::Bytes>(&if frozen { copy_in_frozen_sql(t) } else { copy_in_sql(t) })
        .await
        .map_err(|e| RestoreError::load(format!("loading table {name}"), &e))?;
    futures_util::pin_mut!(sink);
    let mut raw = 0u64;
    let mut rows_seen = 0u64;
    while let Some(chunk) = chunks.recv().await {
        let chunk = chunk.map_err(|e| RestoreError::Load { what: format!("reading {path}"), reason: e.to_string() })?;
        raw += chunk.len() as u64;
        rows_seen += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        bar.update(rows_seen, raw);
        sink.send(chunk).await.map_err(|e| RestoreError::load(format!("loading table {name}"), &e))?;
    }
    // The file's bytes must be the manifest's before its rows are kept:
    // dropping the unfinished COPY aborts it.
    checked.result()?;
    let rows = sink.finish().await.map_err(|e| RestoreError::load(format!("loading table {name}"), &e))?;
    if rows != expected {
        return Err(RestoreError::Load {
            what: format!("loading table {name} from {path}"),
            reason: format!("{rows} rows loaded, the manifest says {expected}"),
        });
    }
    Ok(rows)
}

/// Connects to the target, creating the database first if asked and
/// missing; says whether it did.
async fn connect_target(target: &ConnSpec, env: &dyn Env, create: bool) -> Result<(Client, bool), RestoreError> {
    match conn::connect(target, env).await {
        Ok(c) => Ok((c, false)),
        Err(e) if create && e.is_missing_database() => {
            admin_connection(target, env)
                .await?
                .batch_execute(&format!("CREATE DATABASE {}", sql::ident(&target.dbname)))
                .await
                .map_err(|e| RestoreError::load(format!("creating database {}", target.dbname), &e))?;
            tracing::info!(database = %target.dbname, "target database created");
            match conn::connect(target, env).await {
                Ok(c) => Ok((c, true)),
                Err(e) => {
                    let _ = drop_database(target, env).await;
                    Err(e.into())
                }
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// A connection to the target's server, for creating or dropping it.
async fn admin_connection(target: &ConnSpec, env: &dyn Env) -> Result<Client, RestoreError> {
    match conn::connect(&target.with_dbname("postgres"), env).await {
        Ok(c) => Ok(c),
        Err(_) => Ok(conn::connect(&target.with_dbname("template1"), env).await?),
    }
}

/// The server's version as a number (`180006` for 18.6).
async fn server_version_num(client: &Client) -> Result<i32, RestoreError> {
    const WHAT: &str = "reading the server version";
    let row = client
        .query_one("SELECT pg_catalog.current_setting('server_version_num')::int", &[])
        .await
        .map_err(|e| RestoreError::load(WHAT, &e))?;
    column(&row, 0, WHAT)
}

/// Drops the target database, which this restore created. Its own
/// connections are closed by now, though the server may still be ending
/// them: PostgreSQL 13+ ends them with FORCE; older ones get a few tries.
async fn drop_database(target: &ConnSpec, env: &dyn Env) -> Result<(), RestoreError> {
    let admin = admin_connection(target, env).await?;
    let version = server_version_num(&admin).await?;
    let force = if version >= 130_000 { " WITH (FORCE)" } else { "" };
    let statement = format!("DROP DATABASE IF EXISTS {}{force}", sql::ident(&target.dbname));
    let mut tries = 0;
    loop {
        match admin.batch_execute(&statement).await {
            Ok(()) => return Ok(()),
            Err(e) if tries < 10 => {
                tries += 1;
                tracing::debug!("dropping database {}: {}; trying again", target.dbname, conn::describe_pg_error(&e));
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(e) => return Err(RestoreError::load(format!("dropping database {}", target.dbname), &e)),
        }
    }
}

/// Names of a few user relations in the target ("" when empty).
async fn existing_objects(client: &Client) -> Result<String, RestoreError> {
    let rows = client
        .query(
            "SELECT n.nspname::text || '.' || c.relname::text FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND n.nspname <> 'information_schema' \
               AND n.nspname !~ '^pg_' \
               AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass \
                               AND d.objid = c.oid AND d.deptype = 'e') \
             ORDER BY 1 LIMIT 4",
            &[],
        )
        .await
        .map_err(|e| RestoreError::load("checking whether the target is empty", &e))?;
    let names: Vec<String> =
        rows.iter().map(|r| column(r, 0, "checking whether the target is empty")).collect::<Result<_, _>>()?;
    Ok(match names.len() {
        0 => String::new(),
        4 => format!("{}, ...", names[..3].join(", ")),
        _ => names.join(", "),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn drop_lists_split_into_statements() {
        let s =
            super::split_statements("--\n-- c\n\nSET x = 0;\nDROP TABLE IF EXISTS a;\nCREATE FUNCTION f()\nAS 1;\n");
        assert_eq!(s, vec!["SET x = 0;\n", "DROP TABLE IF EXISTS a;\n", "CREATE FUNCTION f()\nAS 1;\n"]);
    }
}
