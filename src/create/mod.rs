//! `create`: the whole data path of a snapshot, composed here stage after
//! stage:
//!
//! 1. **source**: one read-only snapshot transaction, its catalog, and
//!    `COPY ... TO STDOUT` of each table (or chunk) as a stream of COPY text
//!    ([`crate::source`]);
//! 2. **plan**: the table selection and the masking plan, checked against
//!    the live schema before a row is read ([`crate::plan`]), then the jobs
//!    ([`jobs`]);
//! 3. **mask**: each row's ruled fields decoded, masked and encoded again,
//!    the others passed through as bytes ([`crate::mask`]);
//! 4. **leak probe**: originals remembered and what was written probed, as
//!    the rows pass ([`crate::leak`], run-wide in [`leak`]);
//! 5. **encode**: gzip ([`crate::encode`]);
//! 6. **store**: one file per table or chunk, the schema scripts from
//!    pg_dump ([`scripts`]), and the manifest last ([`crate::snapshot`]).
//!
//! [`pipeline`] sends one job through stages 1 and 3 to 6; [`workers`]
//! runs the jobs on connections that share the snapshot; [`dump`] strings
//! the steps together. Any failure removes what this run wrote; a snapshot
//! without a manifest is never listed anyway.

mod dump;
mod jobs;
mod leak;
pub mod pipeline;
mod scripts;
mod workers;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::conn::{ConnSpec, Env};
use crate::error::{Classify, Fault};
use crate::mask::MaskKey;
use crate::pgtools::Tool;
use crate::plan::masking::{self, MaskPlan};
use crate::plan::subset::{self, SubsetPlan};
use crate::plan::{Selection, SelectionError, TablePatterns};
use crate::progress::Progress;
use crate::rules::{Rules, RulesError};
use crate::snapshot::latest::{self, Advanced};
use crate::snapshot::lock::{LockError, RunLock};
use crate::snapshot::manifest::{MaskingInfo, Record, SourceInfo};
use crate::snapshot::{Manifest, SnapshotError, SnapshotWriter};
use crate::source::catalog::{self, Catalog, RelKind};
use crate::source::pg_dump::PgDump;
use crate::source::session::{SourceSession, Timeouts};
use crate::source::SourceError;
use crate::store::{Store, StoreError};
use pipeline::PipelineError;

/// Settings of one `create` run.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub source: ConnSpec,
    pub patterns: TablePatterns,
    pub pg_dump: Option<PathBuf>,
    /// How data files are compressed, and at which level (checked).
    pub codec: crate::encode::Codec,
    pub compress_level: i32,
    pub timeouts: Timeouts,
    /// The rules and key; `None` only with `--no-rules` (nothing is masked).
    pub masking: Option<Masking>,
    /// Leak scan filter size in bytes (and half as much again for probes
    /// kept until the filter is complete); `None` skips the scan.
    pub leak_scan: Option<usize>,
    /// Bytes of a temporary file for the probes past that memory; past
    /// them too, files are read back.
    pub leak_spill: u64,
    /// Restore into a scratch database on this server before publishing.
    pub verify_restore: Option<ConnSpec>,
    /// Tables dumped at once, each on its own connection to the snapshot.
    pub jobs: usize,
    /// How long the run lock lasts without a refresh (a killed run's lock
    /// expires after this).
    pub lock_ttl: Duration,
    /// Break a run lock that has not expired.
    pub force: bool,
    /// Tables whose work (bytes on disk, plus 400 per masked value) is more
    /// than this are dumped in chunks of about this much work; `None` picks
    /// it from the database and `jobs`.
    pub chunk_bytes: Option<u64>,
    /// Cancelled to stop the run (SIGINT, SIGTERM): what it wrote is
    /// removed, its locks released, and nothing is published.
    pub cancel: CancellationToken,
    /// Environment variables that hold secrets (the masking key's), kept
    /// from pg_dump.
    pub hide_env: Vec<String>,
    /// Signs the manifest, when given.
    pub signer: Option<std::sync::Arc<crate::snapshot::signature::SnapshotSigner>>,
}

/// Rules and key of a masked run.
#[derive(Debug, Clone)]
pub struct Masking {
    pub rules: Rules,
    pub key: MaskKey,
}

/// Why `create` failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The table selection cannot be dumped as asked (exit 1).
    #[error("the table selection cannot be dumped:\n{0}")]
    Selection(SelectionError),
    /// No usable pg_dump (exit 1).
    #[error(transparent)]
    Tool(#[from] crate::pgtools::ToolError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The leak scan found original values in the output (exit 1).
    #[error("the leak scan found original values of masked columns in the snapshot, so it was not published:{}", .0.iter().map(|f| format!("\n- {}; {}", f.describe(), f.remedy())).collect::<String>())]
    Leak(Vec<crate::leak::verdict::Finding>),
    /// The snapshot did not restore cleanly, so it was not published (exit 2).
    #[error("the snapshot failed its test restore, so it was not published: {0}")]
    Verify(crate::restore::RestoreError),
    /// The rules do not apply to this database (exit 1).
    #[error("the rules cannot be applied; nothing was read or written:\n{0}")]
    Rules(RulesError),
    /// Another run holds the store's lock, or took it over (exit 2).
    #[error(transparent)]
    Lock(#[from] LockError),
    /// A table's rows could not be masked or encoded; a value no masker
    /// can take is a rules problem (exit 1).
    #[error("table {table}: {source}")]
    Pipeline {
        table: String,
        #[source]
        source: PipelineError,
    },
    /// A task of the pipeline ended abnormally (exit 2).
    #[error("table {table}: a pipeline task stopped: {source}")]
    Task {
        table: String,
        #[source]
        source: tokio::task::JoinError,
    },
    /// The leak scan could not read a file back (exit 2).
    #[error(transparent)]
    LeakScan(#[from] crate::leak::LeakError),
    /// The run was stopped from outside (exit 2).
    #[error("interrupted by a signal; anything this run wrote was removed")]
    Interrupted,
    /// The snapshot is complete but `latest` could not be moved (exit 2).
    #[error("snapshot {id} was published, but `latest` was not moved to it (it still names the previous snapshot): {source}")]
    Pointer {
        id: String,
        #[source]
        source: SnapshotError,
    },
}

// By hand rather than `#[from]`: the message already holds the inner error,
// which as a `source` would be printed twice.
impl From<SelectionError> for CreateError {
    fn from(e: SelectionError) -> Self {
        CreateError::Selection(e)
    }
}

impl From<RulesError> for CreateError {
    fn from(e: RulesError) -> Self {
        CreateError::Rules(e)
    }
}

impl Classify for CreateError {
    fn fault(&self) -> Fault {
        match self {
            CreateError::Selection(_) | CreateError::Tool(_) | CreateError::Rules(_) | CreateError::Leak(_) => {
                Fault::Config
            }
            CreateError::Pipeline { source: PipelineError::Mask(_), .. } => Fault::Config,
            CreateError::Source(SourceError::Connect(crate::conn::ConnectError::Settings(_))) => Fault::Config,
            CreateError::Interrupted => Fault::Interrupted,
            _ => Fault::Runtime,
        }
    }
}

/// When the run started: the clock for durations and the snapshot's time.
#[derive(Clone, Copy)]
struct Started {
    at: Instant,
    created_at: chrono::DateTime<chrono::Utc>,
}

/// Runs `create` and returns the published manifest.
pub async fn create(
    opts: &CreateOptions,
    store: &dyn Store,
    env: &dyn Env,
    progress: &Progress,
) -> Result<Manifest, CreateError> {
    let started = Instant::now();
    let created_at = chrono::Utc::now();
    store.check_writable().await?;
    let lock = RunLock::acquire(store, opts.lock_ttl, opts.force).await?;
    // With the lock held, an unfinished upload is a dead run's leftover.
    match store.abort_stale_uploads("", Some(lock.taken_at())).await {
        Ok(0) => {}
        Ok(n) => tracing::info!("aborted {n} unfinished upload(s) left by an earlier run"),
        Err(e) => tracing::warn!("could not clean up unfinished uploads of earlier runs: {e}"),
    }
    let lock = tokio::sync::Mutex::new(lock);
    let lost = AtomicBool::new(false);
    // Set once the run writes to the store: from then on it handles a stop
    // itself, removing what it wrote. Before, a stop cancels what the
    // source session runs (a wait for a table lock) and drops the run.
    let writing = AtomicBool::new(false);
    let refresh_every = lock.lock().await.refresh_every();
    // The pipeline borrows the lock; it is dropped at the end of this block.
    let result = {
        let work = async {
            let session = tokio::select! {
                biased;
                () = opts.cancel.cancelled() => return Err(CreateError::Interrupted),
                s = SourceSession::open(&opts.source, env, opts.timeouts) => s?,
            };
            let when = Started { at: started, created_at };
            let before_writing = async {
                opts.cancel.cancelled().await;
                if writing.load(Ordering::SeqCst) {
                    std::future::pending::<()>().await;
                }
            };
            let result = tokio::select! {
                biased;
                () = before_writing => {
                    crate::conn::stop_running(&session.client, &opts.source, env).await;
                    Err(CreateError::Interrupted)
                }
                r = run(opts, store, &session, env, progress, when, (&lock, &lost, &writing)) => r,
            };
            // A stopped run's session is dropped, not rolled back: a statement
            // it still runs would hold up the ROLLBACK. Closing the connection
            // ends the transaction all the same.
            if !matches!(result, Err(CreateError::Interrupted)) {
                session.close().await;
            }
            result
        };
        tokio::pin!(work);
        loop {
            tokio::select! {
                r = &mut work => break r,
                _ = tokio::time::sleep(refresh_every) => match lock.lock().await.refresh(store).await {
                    Ok(()) => {}
                    Err(e @ LockError::Lost(_)) => {
                        tracing::error!("{e}");
                        lost.store(true, Ordering::SeqCst);
                    }
                    Err(e) => tracing::warn!("could not refresh the run lock: {e}"),
                },
            }
        }
    };
    if !lost.load(Ordering::SeqCst) {
        lock.into_inner().release(store).await;
    }
    result
}

/// What was decided before the dump: the tables, how each is masked, and
/// the pg_dump that writes the schema.
pub struct Decided {
    pub catalog: Catalog,
    pub selection: Selection,
    pub plan: MaskPlan,
    pub tool: Tool,
    /// The slice to dump, when the rules have `subset:`.
    pub subset: Option<SubsetPlan>,
}

async fn run(
    opts: &CreateOptions,
    store: &dyn Store,
    session: &SourceSession,
    env: &dyn Env,
    progress: &Progress,
    when: Started,
    (lock, lost, writing): (&tokio::sync::Mutex<RunLock>, &AtomicBool, &AtomicBool),
) -> Result<Manifest, CreateError> {
    let decided = decide(opts, session).await?;
    let exclude: Vec<String> = decided
        .selection
        .excluded
        .iter()
        .filter_map(|oid| decided.catalog.table(*oid))
        .map(crate::plan::selection::exact_pg_dump_pattern)
        .collect();
    let dumper = PgDump {
        tool: &decided.tool,
        spec: &opts.source,
        snapshot_id: &session.snapshot_id,
        exclude: &exclude,
        hide_env: &opts.hide_env,
        lock_timeout: opts.timeouts.lock,
    };
    let mut writer = SnapshotWriter::start(store, when.created_at).await?;
    writing.store(true, Ordering::SeqCst);
    let dumped = tokio::select! {
        biased;
        () = opts.cancel.cancelled() => Err(CreateError::Interrupted),
        r = dump::dump(opts, session, env, &decided, &dumper, &mut writer, progress) => r,
    };
    let dumped = match dumped {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(snapshot = writer.id(), "create failed; removing the files this run wrote");
            writer.discard().await;
            return Err(e);
        }
    };
    let materialized_views = decided
        .catalog
        .tables
        .iter()
        .filter(|t| t.kind == RelKind::MatView && decided.selection.selected.contains(&t.oid))
        .map(|t| t.display_name())
        .collect();
    let subset = decided.subset.as_ref().map(|s| subset_info(s, &decided.catalog, &dumped.tables));
    let record = Record {
        created_at: when.created_at,
        duration_ms: when.at.elapsed().as_millis() as u64,
        source: SourceInfo {
            server_version: session.server_version.clone(),
            server_version_num: session.server_version_num,
            database: session.database.clone(),
            pg_dump_version: decided.tool.version.clone(),
        },
        schema: dumped.schema,
        tables: dumped.tables,
        sequences: dumped.sequences,
        materialized_views,
        masking: opts.masking.as_ref().map(|m| MaskingInfo {
            rules_sha256: m.rules.sha256.clone(),
            key_fingerprint: m.key.fingerprint(),
            ephemeral_key: m.key.is_ephemeral(),
            columns: decided.plan.coverage.clone(),
            leak_scan: dumped.leak_scan,
            subset,
        }),
    };
    let manifest = Manifest::new(writer.id(), record);
    publish(opts, store, env, progress, writer, manifest, (lock, lost)).await
}

/// What `create --dry-run` reports: every table whose rows would be dumped,
/// how they would be chosen, the planner's estimate, and (in a slice) the
/// exact number kept. Nothing is written, no store is touched.
pub async fn dry_run(
    opts: &CreateOptions,
    env: &dyn Env,
) -> Result<Vec<crate::plan::subset::SubsetTable>, CreateError> {
    let session = SourceSession::open(&opts.source, env, opts.timeouts).await?;
    let decided = decide(opts, &session).await?;
    let lines = match &decided.subset {
        Some(subset) => subset
            .counts(&session.client, &decided.catalog)
            .await
            .map_err(|e| SourceError::query("counting the rows of the slice", &e))?,
        None => decided
            .catalog
            .tables
            .iter()
            .filter(|t| decided.selection.with_rows.contains(&t.oid))
            .map(|t| subset::SubsetTable {
                table: t.display_name(),
                reach: subset::Reach::Whole,
                estimated_rows: t.estimated_rows.max(0) as u64,
                kept_rows: None,
            })
            .collect(),
    };
    session.close().await;
    Ok(lines)
}

/// The manifest's record of a slice: its roots, and per table how its rows
/// were chosen, the planner's estimate and the rows kept.
fn subset_info(
    subset: &SubsetPlan,
    catalog: &Catalog,
    tables: &[crate::snapshot::TableEntry],
) -> crate::snapshot::manifest::SubsetInfo {
    let mut out = Vec::new();
    for entry in tables {
        let Some(t) = catalog.tables.iter().find(|t| t.schema == entry.schema && t.name == entry.name) else {
            continue;
        };
        let Some(reach) = subset.reach.get(&t.oid) else { continue };
        out.push(subset::SubsetTable {
            table: t.display_name(),
            reach: reach.clone(),
            estimated_rows: t.estimated_rows.max(0) as u64,
            kept_rows: Some(entry.rows),
        });
    }
    crate::snapshot::manifest::SubsetInfo { roots: subset.roots.clone(), tables: out }
}

/// Reads the catalog and decides what to dump and how, before a row is
/// read: the table selection, the masking plan (every problem at once),
/// the locks, and the pg_dump to use.
async fn decide(opts: &CreateOptions, session: &SourceSession) -> Result<Decided, CreateError> {
    let mut catalog = Catalog::read(&session.client).await?;
    let subset_rules = opts.masking.as_ref().and_then(|m| m.rules.subset.as_ref());
    if let Some(rules) = subset_rules {
        // Virtual keys join the catalog's: they carry masks and the slice alike.
        let problems = subset::add_virtual_keys(&mut catalog, rules);
        if !problems.is_empty() {
            return Err(RulesError(problems).into());
        }
    }
    let patterns = opts.patterns.with_rules(opts.masking.as_ref().map(|m| &m.rules));
    let selection = Selection::build(&catalog, &patterns)?;
    let plan = match &opts.masking {
        Some(m) => {
            let plan = masking::build(&m.rules, &catalog, &selection.with_rows, &m.key)?;
            for w in &plan.warnings {
                tracing::warn!("{w}");
            }
            plan
        }
        None => MaskPlan::default(),
    };
    // Lock as soon as the rules are known to apply: TRUNCATE is not MVCC-safe, so a table
    // must not change between the snapshot and its COPY.
    let lockable: Vec<String> = catalog
        .tables
        .iter()
        .filter(|t| selection.selected.contains(&t.oid) && matches!(t.kind, RelKind::Table | RelKind::Partitioned))
        .map(|t| t.qualified())
        .collect();
    session.lock(&lockable).await?;
    for p in &selection.unmatched {
        tracing::warn!(pattern = %p, "table pattern matched no table");
    }
    let subset = match subset_rules {
        Some(rules) => {
            let dumped = plan.dumped(&catalog, &selection.with_rows);
            let subset = SubsetPlan::build(rules, &catalog, &dumped).map_err(RulesError)?;
            subset.validate(&session.client, rules, &catalog).await.map_err(RulesError)?;
            Some(subset)
        }
        None => None,
    };
    let tool = crate::pgtools::find("pg_dump", session.server_major(), opts.pg_dump.as_deref())?;
    if catalog::has_large_objects(&session.client).await? {
        tracing::warn!("the database has large objects (pg_largeobject); snapshots do not carry their contents yet");
    }
    tracing::info!(
        server = %session.server_version,
        database = %session.database,
        pg_dump = %tool.path.display(),
        snapshot = %session.snapshot_id,
        "source transaction open"
    );
    Ok(Decided { catalog, selection, plan, tool, subset })
}

/// Publishes a complete snapshot: a test restore first when asked, the
/// manifest, then the `latest` pointer. Nothing is published when the run
/// lost its lock or is stopped.
async fn publish(
    opts: &CreateOptions,
    store: &dyn Store,
    env: &dyn Env,
    progress: &Progress,
    writer: SnapshotWriter<'_>,
    manifest: Manifest,
    (lock, lost): (&tokio::sync::Mutex<RunLock>, &AtomicBool),
) -> Result<Manifest, CreateError> {
    if let Some(server) = &opts.verify_restore {
        let mut candidate = manifest.clone();
        candidate.files = writer.files().to_vec();
        let listed = crate::snapshot::Listed { id: writer.id().to_string(), manifest: candidate };
        let verified = crate::verify::restore_into(store, &listed, server, env, false, &opts.cancel, progress).await;
        if let Err(e) = verified {
            writer.discard().await;
            return Err(match opts.cancel.is_cancelled() {
                true => CreateError::Interrupted,
                false => CreateError::Verify(e),
            });
        }
        tracing::info!(snapshot = writer.id(), "test restore passed");
    }
    // The lock is confirmed ours just before the manifest is written:
    // nobody took it over since it was last refreshed, so no prune
    // deleted a data file this snapshot reuses (see `snapshot::gc`).
    let confirmed = match lost.load(Ordering::SeqCst) {
        true => Err(LockError::Lost(store.describe())),
        false => lock.lock().await.refresh(store).await,
    };
    if let Err(e) = confirmed {
        if matches!(e, LockError::Lost(_)) {
            lost.store(true, Ordering::SeqCst);
        }
        writer.discard().await;
        return Err(e.into());
    }
    let id = writer.id().to_string();
    let (new_files, new_bytes, reused_files, reused_bytes) = writer.stored().totals();
    let published = writer.publish(manifest, opts.signer.as_deref()).await?;
    let human = crate::progress::human_bytes;
    tracing::info!(
        snapshot = %id,
        new_files,
        new_bytes,
        reused_files,
        reused_bytes,
        "data files: {new_files} new ({}), {reused_files} already in the store from earlier snapshots ({})",
        human(new_bytes),
        human(reused_bytes)
    );
    match latest::advance(store, &id).await {
        Ok(Advanced::Moved) => {}
        Ok(Advanced::KeptNewer(newer)) => {
            tracing::warn!(snapshot = %id, "a newer snapshot ({newer}) was published meanwhile; `latest` stays on it")
        }
        Err(source) => return Err(CreateError::Pointer { id, source }),
    }
    Ok(published)
}
