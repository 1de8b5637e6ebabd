//! `create`: the whole pipeline, source → plan → encode → store.
//!
//! Opens the source transaction, selects tables, dumps the schema scripts
//! and every table's rows under one snapshot, and publishes the manifest
//! last. Any failure removes what this run wrote; a snapshot without a
//! manifest is never listed anyway.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::conn::{ConnSpec, Env};
use crate::mask::MaskKey;
use crate::plan::masking::{self, MaskPlan};
use crate::plan::{Selection, SelectionError, TablePatterns};
use crate::progress::Progress;
use crate::review::leak::{self, Bloom, LeakScan};
use crate::rules::{Rules, RulesError};
use crate::snapshot::latest::{self, Advanced};
use crate::snapshot::lock::{LockError, RunLock};
use crate::snapshot::manifest::ChunkEntry;
use crate::snapshot::manifest::{self, MaskingInfo, SchemaFiles, SourceInfo};
use crate::snapshot::{Manifest, SequenceEntry, SnapshotError, SnapshotWriter, TableEntry};
use crate::source::catalog::{self, Catalog, RelKind};
use crate::source::copy_out;
use crate::source::pg_dump::{PgDump, Section};
use crate::source::session::{SourceSession, Timeouts};
use crate::source::SourceError;
use crate::store::{Store, StoreError};
use tokio_util::sync::CancellationToken;

/// Settings of one `create` run.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub source: ConnSpec,
    pub patterns: TablePatterns,
    pub pg_dump: Option<PathBuf>,
    pub compress_level: u32,
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
    #[error("the leak scan found original values of masked columns in the snapshot, so it was not published: {}. Mask those columns (or give them the same rule as the column they copy)", .0.iter().map(|(c, n)| format!("{c} ({n} value(s))")).collect::<Vec<_>>().join(", "))]
    Leak(Vec<(String, u64)>),
    /// The snapshot did not restore cleanly, so it was not published (exit 2).
    #[error("the snapshot failed its test restore, so it was not published: {0}")]
    Verify(crate::restore::RestoreError),
    /// The rules do not apply to this database (exit 1).
    #[error("the rules cannot be applied; nothing was read or written:\n{0}")]
    Rules(RulesError),
    /// Another run holds the store's lock, or took it over (exit 2).
    #[error(transparent)]
    Lock(#[from] LockError),
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

impl CreateError {
    /// Whether the user must change the invocation (exit 1) rather than
    /// retry (exit 2).
    pub fn is_config(&self) -> bool {
        matches!(self, CreateError::Selection(_) | CreateError::Tool(_) | CreateError::Rules(_) | CreateError::Leak(_))
            || matches!(self, CreateError::Source(SourceError::Connect(crate::conn::ConnectError::Settings(_))))
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
    let mut lock = RunLock::acquire(store, opts.lock_ttl, opts.force).await?;
    // With the lock held, an unfinished upload is a dead run's leftover.
    match store.abort_stale_uploads("", Some(lock.taken_at())).await {
        Ok(0) => {}
        Ok(n) => tracing::info!("aborted {n} unfinished upload(s) left by an earlier run"),
        Err(e) => tracing::warn!("could not clean up unfinished uploads of earlier runs: {e}"),
    }
    let lost = AtomicBool::new(false);
    // Set once the run writes to the store: from then on it handles a stop
    // itself, removing what it wrote. Before, a stop cancels what the
    // source session runs (a wait for a table lock) and drops the run.
    let writing = AtomicBool::new(false);
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
            r = run(opts, store, &session, env, progress, when, (&lost, &writing)) => r,
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
    let result = loop {
        tokio::select! {
            r = &mut work => break r,
            _ = tokio::time::sleep(lock.refresh_every()) => match lock.refresh(store).await {
                Ok(()) => {}
                Err(e @ LockError::Lost(_)) => {
                    tracing::error!("{e}");
                    lost.store(true, Ordering::SeqCst);
                }
                Err(e) => tracing::warn!("could not refresh the run lock: {e}"),
            },
        }
    };
    if !lost.load(Ordering::SeqCst) {
        lock.release(store).await;
    }
    result
}

async fn run(
    opts: &CreateOptions,
    store: &dyn Store,
    session: &SourceSession,
    env: &dyn Env,
    progress: &Progress,
    when: Started,
    (lost, writing): (&AtomicBool, &AtomicBool),
) -> Result<Manifest, CreateError> {
    let Started { at: started, created_at } = when;
    let catalog = Catalog::read(&session.client).await?;
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

    let exclude: Vec<String> = selection
        .excluded
        .iter()
        .filter_map(|oid| catalog.table(*oid))
        .map(crate::plan::selection::exact_pg_dump_pattern)
        .collect();
    let dumper = PgDump {
        tool: &tool,
        spec: &opts.source,
        snapshot_id: &session.snapshot_id,
        exclude: &exclude,
        lock_timeout: opts.timeouts.lock,
    };

    let mut writer = SnapshotWriter::start(store, created_at).await?;
    writing.store(true, Ordering::SeqCst);
    let decided = Decided { catalog: &catalog, selection: &selection, plan: &plan };
    let dumped = tokio::select! {
        biased;
        () = opts.cancel.cancelled() => Err(CreateError::Interrupted),
        r = dump_all(opts, session, env, decided, &dumper, &mut writer, progress) => r,
    };
    match dumped {
        Ok((schema, tables, sequences, leak_scan)) => {
            let materialized_views = catalog
                .tables
                .iter()
                .filter(|t| t.kind == RelKind::MatView && selection.selected.contains(&t.oid))
                .map(|t| t.display_name())
                .collect();
            let manifest = Manifest {
                format: manifest::FORMAT.to_string(),
                format_version: if tables.iter().any(|t| !t.chunks.is_empty()) {
                    manifest::FORMAT_VERSION
                } else {
                    manifest::FORMAT_VERSION_UNCHUNKED
                },
                tool_version: env!("CARGO_PKG_VERSION").to_string(),
                snapshot_id: writer.id().to_string(),
                created_at,
                duration_ms: started.elapsed().as_millis() as u64,
                source: SourceInfo {
                    server_version: session.server_version.clone(),
                    server_version_num: session.server_version_num,
                    database: session.database.clone(),
                    pg_dump_version: tool.version.clone(),
                },
                schema,
                files: Vec::new(),
                tables,
                sequences,
                materialized_views,
                masking: opts.masking.as_ref().map(|m| MaskingInfo {
                    rules_sha256: m.rules.sha256.clone(),
                    key_fingerprint: m.key.fingerprint(),
                    ephemeral_key: m.key.is_ephemeral(),
                    columns: plan.coverage.clone(),
                    leak_scan,
                }),
            };
            if let Some(server) = &opts.verify_restore {
                let mut candidate = manifest.clone();
                candidate.files = writer.files().to_vec();
                let listed = crate::snapshot::Listed { id: writer.id().to_string(), manifest: candidate };
                let verified =
                    crate::verify::restore_into(store, &listed, server, env, false, &opts.cancel, progress).await;
                if let Err(e) = verified {
                    writer.discard().await;
                    return Err(match opts.cancel.is_cancelled() {
                        true => CreateError::Interrupted,
                        false => CreateError::Verify(e),
                    });
                }
                tracing::info!(snapshot = writer.id(), "test restore passed");
            }
            if lost.load(Ordering::SeqCst) {
                writer.discard().await;
                return Err(LockError::Lost(store.describe()).into());
            }
            let id = writer.id().to_string();
            let published = writer.publish(manifest).await?;
            match latest::advance(store, &id).await {
                Ok(Advanced::Moved) => {}
                Ok(Advanced::KeptNewer(newer)) => {
                    tracing::warn!(snapshot = %id, "a newer snapshot ({newer}) was published meanwhile; `latest` stays on it")
                }
                Err(source) => return Err(CreateError::Pointer { id, source }),
            }
            Ok(published)
        }
        Err(e) => {
            tracing::warn!(snapshot = writer.id(), "create failed; removing the files this run wrote");
            writer.discard().await;
            Err(e)
        }
    }
}

type Dumped = (SchemaFiles, Vec<TableEntry>, Vec<SequenceEntry>, Option<LeakScan>);

/// What was decided before the dump: the tables and how each is masked.
struct Decided<'a> {
    catalog: &'a Catalog,
    selection: &'a Selection,
    plan: &'a MaskPlan,
}

async fn dump_all(
    opts: &CreateOptions,
    session: &SourceSession,
    env: &dyn Env,
    decided: Decided<'_>,
    dumper: &PgDump<'_>,
    writer: &mut SnapshotWriter<'_>,
    progress: &Progress,
) -> Result<Dumped, CreateError> {
    let Decided { catalog, selection, plan } = decided;
    let bloom = match (&opts.masking, opts.leak_scan) {
        (Some(_), Some(bytes)) => Some(Arc::new(Bloom::new(bytes))),
        _ => None,
    };
    let schema = SchemaFiles {
        pre_data: "schema/pre-data.sql".into(),
        post_data: "schema/post-data.sql".into(),
        clean: "schema/clean.sql".into(),
    };
    // Every table gets its entry in catalog order; its rows are then dumped
    // largest first by `opts.jobs` workers that share the snapshot, a large
    // table in chunks (ranges of pages) so that it does not serialise the run.
    let chunk_cost = opts.chunk_bytes.unwrap_or_else(|| auto_chunk_cost(catalog, selection, plan, opts.jobs));
    let mut tables = Vec::new();
    let mut jobs = Vec::new();
    let mut number = 0;
    for t in &catalog.tables {
        if t.kind != RelKind::Table || !selection.selected.contains(&t.oid) {
            continue;
        }
        let slot = tables.len();
        tables.push(TableEntry {
            schema: t.schema.clone(),
            name: t.name.clone(),
            columns: t.copy_columns(),
            file: None,
            rows: 0,
            raw_bytes: 0,
            chunks: Vec::new(),
        });
        if !selection.with_rows.contains(&t.oid) {
            continue;
        }
        number += 1;
        let stem = format!("data/{number:05}_{}", file_stem(&t.schema, &t.name));
        let cost = cost_of(t, plan);
        let remembers =
            bloom.is_some() && plan.tables.get(&t.oid).is_some_and(|m| m.columns.iter().any(|c| c.remember));
        // The tables whose originals are remembered end together on every
        // worker (a multiple of the workers in chunks): the other tables wait
        // for the last of them, so that they can be probed as they are dumped.
        let round_to = if remembers && cost > MIN_CHUNK / 4 { opts.jobs.max(1) as u64 } else { 1 };
        let parts = chunks_of(session, t, cost, chunk_cost, round_to).await?;
        let n = parts.len();
        for (i, pages) in parts.into_iter().enumerate() {
            let (path, part) = match n {
                1 => (format!("{stem}.copy.gz"), None),
                _ => (format!("{stem}.{:03}.copy.gz", i + 1), Some((i, n))),
            };
            if part.is_none() {
                tables[slot].file = Some(path.clone());
            }
            let pages = part.map(|_| pages);
            jobs.push(Job { slot, table: t, path, pages, cost: cost / n as u64, part, remembers });
        }
    }
    // Tables whose originals the leak scan remembers go first, so that the
    // tables after them can be probed as they are dumped (the filter is
    // complete by then) instead of read back. Then longest first: the run
    // ends soonest when no large job starts last.
    jobs.sort_by_key(|j| (std::cmp::Reverse(j.remembers), std::cmp::Reverse(j.cost)));
    // Jobs of tables with remembered originals still to finish. When tables
    // are chunked (PostgreSQL 14+) no such job is long, and a worker done
    // with them waits for the others rather than start a table it would
    // have to read back.
    let (remembering, remembered) = tokio::sync::watch::channel(jobs.iter().filter(|j| j.remembers).count());
    let wait_for_filter = session.server_version_num >= 140_000;
    // Half the filter's memory again for the slots kept until it is complete.
    let slot_budget = Arc::new(std::sync::atomic::AtomicUsize::new(opts.leak_scan.unwrap_or(0) / 2 / leak::SLOT_BYTES));
    let spill_budget = Arc::new(std::sync::atomic::AtomicU64::new(opts.leak_spill));
    let queue = std::sync::Mutex::new(std::collections::VecDeque::from(jobs));
    let failed = std::sync::atomic::AtomicBool::new(false);
    let workers = opts.jobs.max(1).min(queue.lock().map(|q| q.len()).unwrap_or(1).max(1));
    let mut clients = Vec::with_capacity(workers);
    for _ in 0..workers {
        clients.push(session.worker(&opts.source, env).await?);
    }
    let writer_ref = &*writer;
    // Ends the run after a failure: no worker takes another job, and those
    // waiting for the leak scan's filter wake up to see it.
    let stop = || {
        failed.store(true, std::sync::atomic::Ordering::SeqCst);
        remembering.send_replace(0);
    };
    let work = clients.iter().map(|client| async {
        let mut done = Vec::new();
        loop {
            if failed.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            let next = queue.lock().ok().and_then(|mut q| q.pop_front());
            let Some(job) = next else { break };
            if bloom.is_some() && !job.remembers && wait_for_filter {
                let _ = remembered.clone().wait_for(|n| *n == 0).await;
                if failed.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
            }
            let t = job.table;
            let label = match job.part {
                Some((i, n)) => format!("{} [{}/{n}]", t.display_name(), i + 1),
                None => t.display_name(),
            };
            // With the filter complete, rows are probed as they pass; before,
            // their slots are kept for the end (within the budget).
            let inline = bloom.as_ref().map(|bloom| {
                let probes = probes_for(t, plan);
                Arc::new(match *remembered.borrow() {
                    0 => leak::Inline::new(probes, Arc::clone(bloom)),
                    _ => leak::Inline::deferred(
                        probes,
                        Arc::clone(bloom),
                        Arc::clone(&slot_budget),
                        Arc::clone(&spill_budget),
                    ),
                })
            });
            let bar = progress.table("dumping", &label);
            let bar2 = bar.clone();
            let on_progress = Arc::new(move |s: crate::encode::CompressStats| bar2.update(s.rows, s.raw_bytes));
            let result = async {
                let file = writer_ref.create(&job.path).await?;
                let mask = plan.tables.get(&t.oid).cloned().map(|mut m| {
                    if job.part.is_some() {
                        // Row numbers in errors count from the chunk's first row.
                        m.table = format!("{} (chunk {})", m.table, job.path);
                    }
                    m
                });
                let filter = plan.filters.get(&t.oid).map(String::as_str);
                let rows = copy_out::RowHandling {
                    mask,
                    leak: bloom.clone(),
                    filter,
                    pages: job.pages,
                    inline: inline.clone(),
                };
                Ok::<_, CreateError>(
                    copy_out::dump_table(client, t, file, opts.compress_level, rows, on_progress).await?,
                )
            }
            .await;
            bar.finish();
            match result {
                Ok(dumped) => {
                    if job.remembers {
                        remembering.send_modify(|n| *n = n.saturating_sub(1));
                    }
                    tracing::info!(
                        table = %label,
                        rows = dumped.stats.rows,
                        raw_bytes = dumped.stats.raw_bytes,
                        stored_bytes = dumped.file.bytes,
                        "table dumped"
                    );
                    done.push((job.slot, job.part, dumped, inline));
                }
                Err(e) => {
                    stop();
                    return Err(e);
                }
            }
        }
        Ok(done)
    });
    // pg_dump writes the schema scripts from the same snapshot while the
    // rows are dumped.
    let scripts = async {
        let mut files = Vec::new();
        for (section, path) in [
            (Section::PreData, &schema.pre_data),
            (Section::PostData, &schema.post_data),
            (Section::Clean, &schema.clean),
        ] {
            let written = async {
                let bytes = dumper.run(section).await?;
                let mut file = writer_ref.create(path).await?;
                file.write(&bytes).await?;
                Ok::<_, CreateError>(file.finish().await?)
            };
            match written.await {
                Ok(f) => files.push(f),
                Err(e) => {
                    stop();
                    return Err(e);
                }
            }
        }
        Ok(files)
    };
    let (results, scripts) = tokio::join!(futures_util::future::join_all(work), scripts);
    for c in &clients {
        let _ = c.batch_execute("ROLLBACK").await;
    }
    for file in scripts? {
        writer.add(file);
    }
    let mut dumped_all = Vec::new();
    for r in results {
        dumped_all.extend(r?);
    }
    dumped_all.sort_by_key(|(slot, part, _, _)| (*slot, part.map(|p| p.0)));
    // Files probed as they were dumped, with what the probes found.
    let mut probed = Probed::new();
    for (slot, part, dumped, inline) in dumped_all {
        // A deferred probe past both budgets leaves its file to be read back.
        if let Some(inline) = inline {
            let spilled = inline.spilled();
            if inline.finish_deferred() {
                let (tested, hits) = inline.tally();
                probed.insert(dumped.file.path.clone(), (tested, hits, spilled));
            }
        }
        let entry = &mut tables[slot];
        entry.rows += dumped.stats.rows;
        entry.raw_bytes += dumped.stats.raw_bytes;
        if part.is_some() {
            entry.chunks.push(ChunkEntry {
                file: dumped.file.path.clone(),
                rows: dumped.stats.rows,
                raw_bytes: dumped.stats.raw_bytes,
            });
        }
        writer.add(dumped.file);
    }

    let mut sequences = Vec::new();
    for s in &catalog.sequences {
        if s.owner.is_some_and(|o| !selection.selected.contains(&o)) {
            continue;
        }
        let (last_value, is_called) = catalog::sequence_state(&session.client, s).await?;
        sequences.push(SequenceEntry { schema: s.schema.clone(), name: s.name.clone(), last_value, is_called });
    }
    let leak_scan = match &bloom {
        Some(bloom) => Some(scan_for_leaks(writer, catalog, plan, &tables, bloom, probed, opts.jobs).await?),
        None => None,
    };
    Ok((schema, tables, sequences, leak_scan))
}

/// How the leak scan probes each COPY column of a table: fields of maskers
/// that make their output from scratch are not probed; fields of types
/// without words are probed whole.
fn probes_for(t: &crate::source::catalog::Table, plan: &MaskPlan) -> Vec<leak::Probe> {
    let table = t.display_name();
    t.copy_columns()
        .iter()
        .map(|col| {
            let masker =
                plan.coverage.iter().find(|c| c.table == table && &c.column == col).and_then(|c| match &c.coverage {
                    crate::plan::masking::Coverage::Masked { masker, .. } => Some(masker.as_str()),
                    _ => None,
                });
            let class = t.columns.iter().find(|c| &c.name == col).map_or(crate::mask::TypeClass::Other, |c| {
                crate::mask::ColumnInfo::from_type(&c.type_name, false, false).class
            });
            leak::Probe::for_column(class, masker)
        })
        .collect()
}

/// Files probed as they were dumped: path → (fields tested, hits per
/// column, whether some probes went through the temporary file).
type Probed = std::collections::HashMap<String, (u64, Vec<u64>, bool)>;

/// Reads back every data file that was not probed as it was dumped, probes
/// the fields that could carry an original value, and adds what the inline
/// probes found; any hit is an error.
async fn scan_for_leaks(
    writer: &SnapshotWriter<'_>,
    catalog: &Catalog,
    plan: &MaskPlan,
    tables: &[TableEntry],
    bloom: &Arc<Bloom>,
    probed: Probed,
    jobs: usize,
) -> Result<LeakScan, CreateError> {
    use futures_util::StreamExt;
    let probed = &probed;
    let scans = tables.iter().filter_map(|entry| {
        let t = catalog.tables.iter().find(|t| t.schema == entry.schema && t.name == entry.name)?;
        let table = t.display_name();
        let files: Vec<_> = entry.data_files().into_iter().map(|(path, _)| path.to_string()).collect();
        Some(files.into_iter().map(move |path| {
            let (table, bloom) = (table.clone(), Arc::clone(bloom));
            async move {
                if let Some((tested, counts, _)) = probed.get(&path) {
                    return Ok::<_, String>((table, &entry.columns, *tested, counts.clone()));
                }
                let reader =
                    writer.store().open(&format!("{}/{path}", writer.id())).await.map_err(|e| e.to_string())?;
                let (tested, counts) = leak::scan_file(reader, table.clone(), probes_for(t, plan), bloom).await?;
                Ok((table, &entry.columns, tested, counts))
            }
        }))
    });
    let scans = scans.flatten();
    let results: Vec<Result<_, String>> =
        futures_util::stream::iter(scans).buffer_unordered(jobs.max(1)).collect().await;
    let mut fields_tested = 0;
    let mut by_column = std::collections::BTreeMap::new();
    for r in results {
        let (table, columns, tested, counts) =
            r.map_err(|e| CreateError::Source(SourceError::Other(format!("leak scan: {e}"))))?;
        fields_tested += tested;
        for (i, n) in counts.iter().enumerate() {
            if *n > 0 {
                *by_column.entry(format!("{table}.{}", columns[i])).or_insert(0) += *n;
            }
        }
    }
    let hits: Vec<(String, u64)> = by_column.into_iter().collect();
    let files = tables.iter().map(|t| t.data_files().len()).sum::<usize>();
    let inline = probed.len();
    let spilled = probed.values().filter(|(_, _, spilled)| *spilled).count();
    tracing::info!(
        remembered = bloom.inserted(),
        fields_tested,
        false_positive_rate = bloom.false_positive_rate(),
        "leak scan: {} original values and tokens remembered, {fields_tested} fields tested ({inline} file(s) probed as they were dumped, {spilled} of them through a temporary file; {} read back), {} column(s) with hits",
        bloom.inserted(),
        files.saturating_sub(inline),
        hits.len()
    );
    // A crowded filter gives false alarms: say so before one blocks a run.
    let expected_false_hits = bloom.false_positive_rate() * fields_tested as f64;
    if expected_false_hits >= 0.01 {
        tracing::warn!(
            "the leak scan's filter is crowded: {} values remembered in {} MiB give about {expected_false_hits:.2} false hit(s) over {fields_tested} fields; raise --leak-scan-memory (a hit may be a false alarm until then)",
            bloom.inserted(),
            bloom.bytes() / (1024 * 1024)
        );
    }
    if !hits.is_empty() {
        return Err(CreateError::Leak(hits));
    }
    Ok(LeakScan {
        remembered: bloom.inserted(),
        filter_bytes: bloom.bytes(),
        false_positive_rate: bloom.false_positive_rate(),
        fields_tested,
        hits,
    })
}

/// One unit of work of the dump: a table, or one chunk of it.
struct Job<'a> {
    /// The table's entry in the manifest.
    slot: usize,
    table: &'a crate::source::catalog::Table,
    path: String,
    pages: Option<copy_out::Pages>,
    /// Estimated work ([`cost_of`]), to start with the longest.
    cost: u64,
    /// Which chunk of how many.
    part: Option<(usize, usize)>,
    /// The table has columns whose originals the leak scan remembers.
    remembers: bool,
}

/// Work of masking one value, in bytes of table: a masked value costs
/// about 2 µs (a keyed hash, a seeded generator, the fake value), the time
/// it takes to read and compress some 400 bytes.
const MASKED_VALUE_COST: u64 = 400;
/// Chunks no smaller than this, whatever the database size.
const MIN_CHUNK: u64 = 32 * 1024 * 1024;
/// Chunks no larger than this: a huge table is spread over all workers.
const MAX_CHUNK: u64 = 1024 * 1024 * 1024;

/// A table's estimated work in bytes: its size on disk plus its masked values.
fn cost_of(t: &crate::source::catalog::Table, plan: &MaskPlan) -> u64 {
    let masked = plan.tables.get(&t.oid).map_or(0, |m| m.columns.len()) as u64;
    let rows = t.estimated_rows.max(0) as u64;
    (t.bytes.max(0) as u64).saturating_add(rows.saturating_mul(masked).saturating_mul(MASKED_VALUE_COST))
}

/// The chunk size when none is given: a quarter of each worker's share of
/// the work, between 32 MiB and 1 GiB, so that the largest unit of work is
/// small next to the whole run.
fn auto_chunk_cost(catalog: &Catalog, selection: &Selection, plan: &MaskPlan, jobs: usize) -> u64 {
    let total: u64 = catalog
        .tables
        .iter()
        .filter(|t| t.kind == RelKind::Table && selection.with_rows.contains(&t.oid))
        .map(|t| cost_of(t, plan))
        .sum();
    (total / (4 * jobs.max(1) as u64)).clamp(MIN_CHUNK, MAX_CHUNK)
}

/// The page ranges a table is dumped in: one (the whole table) unless its
/// work is more than `chunk_cost`, or `round_to` is more than one, and the
/// server scans ctid ranges efficiently (PostgreSQL 14+); then a multiple
/// of `round_to` of them, at most about 1,000.
async fn chunks_of(
    session: &SourceSession,
    t: &crate::source::catalog::Table,
    cost: u64,
    chunk_cost: u64,
    round_to: u64,
) -> Result<Vec<copy_out::Pages>, CreateError> {
    let parts = cost.div_ceil(chunk_cost.max(1)).clamp(1, 1000).div_ceil(round_to) * round_to;
    if session.server_version_num < 140_000 || parts <= 1 {
        return Ok(vec![copy_out::Pages { start: 0, end: None }]);
    }
    let row = session
        .client
        .query_one(
            "SELECT pg_catalog.pg_relation_size($1::oid::regclass) / pg_catalog.current_setting('block_size')::int8",
            &[&t.oid],
        )
        .await
        .map_err(|e| SourceError::query(format!("reading the size of table {}", t.display_name()), &e))?;
    let pages = row.get::<_, i64>(0).max(0) as u64;
    Ok(copy_out::Pages::split(pages, parts))
}

/// A file-name-safe stem for a table: readable, never ambiguous thanks to the
/// numeric prefix in front of it.
fn file_stem(schema: &str, name: &str) -> String {
    let raw = format!("{schema}.{name}");
    raw.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' { c } else { '_' })
        .take(80)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn stems_are_safe() {
        assert_eq!(super::file_stem("Sales Data", "Order/Lines"), "Sales_Data.Order_Lines");
        assert_eq!(super::file_stem("public", "é"), "public._");
    }
}
