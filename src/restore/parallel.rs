//! Parallel restore (`--jobs N`, N > 1): the schema in one transaction, then
//! the data files on N connections, largest first, then the indexes and
//! constraints of post-data on N connections where no two lock the same
//! table.
//!
//! Several connections cannot share a transaction, so this restore is not
//! all-or-nothing the way the single-transaction one is. Instead, once the
//! schema is committed, any failure drops everything the snapshot creates
//! (pg_dump's drop list), which leaves an empty target as it was found; the
//! error says so. With `--clean`, what it dropped before loading is gone.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio_postgres::Client;

use super::post_data::{self, Entry};
use super::{load_file, run_clean, RestoreError, RestoreOptions, RestoreStats, Scripts};
use crate::conn::{self, ConnSpec, Env};
use crate::progress::Progress;
use crate::snapshot::{Listed, TableEntry};
use crate::source::session::DUMP_SETTINGS;
use crate::sql;
use crate::store::Store;

/// Where to restore and how.
pub(super) struct Target<'a> {
    pub client: &'a Client,
    pub spec: &'a ConnSpec,
    pub env: &'a dyn Env,
    pub opts: &'a RestoreOptions,
}

/// Restores with `opts.jobs` connections; `target.client` is already
/// connected, with the session settings of a restore.
pub(super) async fn restore(
    target: Target<'_>,
    store: &dyn Store,
    snap: &Listed,
    scripts: &Scripts,
    progress: &Progress,
) -> Result<RestoreStats, RestoreError> {
    let client = target.client;
    client.batch_execute("BEGIN").await.map_err(|e| RestoreError::load("starting the restore transaction", &e))?;
    let schema = async {
        if target.opts.clean {
            run_clean(client, &scripts.clean.body).await?;
        }
        client
            .batch_execute(&scripts.pre_data.body)
            .await
            .map_err(|e| RestoreError::load("creating the schema (pre-data)", &e))?;
        client.batch_execute("COMMIT").await.map_err(|e| RestoreError::load("committing the schema", &e))
    };
    if let Err(e) = schema.await {
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(e);
    }
    // From here on the schema is committed: a failure drops it again.
    let result = {
        let workers = connect_workers(&target, snap).await;
        match workers {
            Ok(workers) => load(client, &workers, store, snap, scripts, progress).await,
            Err(e) => Err(e),
        }
        // The workers are dropped here: whatever they still run is cancelled
        // and their locks go before the drops below.
    };
    match result {
        Ok(stats) => Ok(stats),
        Err(cause) => {
            tracing::warn!("restore failed after the schema was committed; dropping what it created");
            let undo = async {
                client.batch_execute("BEGIN").await.map_err(|e| RestoreError::load("--clean", &e))?;
                run_clean(client, &scripts.clean.body).await?;
                client.batch_execute("COMMIT").await.map_err(|e| RestoreError::load("dropping what was created", &e))
            };
            let undo_failed = match undo.await {
                Ok(()) => None,
                Err(e) => {
                    let _ = client.batch_execute("ROLLBACK").await;
                    Some(e.to_string())
                }
            };
            Err(RestoreError::Undone { cause: Box::new(cause), clean: target.opts.clean, undo_failed })
        }
    }
}

/// One connection per job, at most one per data file (and at least one).
async fn connect_workers(target: &Target<'_>, snap: &Listed) -> Result<Vec<Client>, RestoreError> {
    let files: usize = snap.manifest.tables.iter().map(|t| t.data_files().len()).sum();
    let n = target.opts.jobs.clamp(1, files.max(1));
    let mut workers = Vec::with_capacity(n);
    for _ in 0..n {
        let c = conn::connect(target.spec, target.env).await?;
        c.batch_execute(&format!("{DUMP_SETTINGS}; SET client_encoding = 'UTF8'"))
            .await
            .map_err(|e| RestoreError::load("setting up a restore connection", &e))?;
        workers.push(c);
    }
    Ok(workers)
}

async fn load(
    client: &Client,
    workers: &[Client],
    store: &dyn Store,
    snap: &Listed,
    scripts: &Scripts,
    progress: &Progress,
) -> Result<RestoreStats, RestoreError> {
    let mut stats = load_data(workers, store, snap, progress).await?;
    stats.tables = snap.manifest.tables.iter().filter(|t| t.has_data()).count();
    for s in &snap.manifest.sequences {
        client
            .execute(
                "SELECT pg_catalog.setval($1::text::regclass, $2, $3)",
                &[&sql::qualified(&s.schema, &s.name), &s.last_value, &s.is_called],
            )
            .await
            .map_err(|e| RestoreError::load(format!("setting sequence {}.{}", s.schema, s.name), &e))?;
    }
    build(client, workers, &scripts.post_data.body).await?;
    Ok(stats)
}

/// Loads every data file, largest first, each on the next free connection.
async fn load_data(
    workers: &[Client],
    store: &dyn Store,
    snap: &Listed,
    progress: &Progress,
) -> Result<RestoreStats, RestoreError> {
    let mut files: Vec<(&TableEntry, &str, u64, String)> = Vec::new();
    for t in snap.manifest.tables.iter().filter(|t| t.has_data()) {
        let parts = t.data_files();
        let n = parts.len();
        for (i, (path, rows)) in parts.into_iter().enumerate() {
            let label = match n {
                1 => format!("{}.{}", t.schema, t.name),
                _ => format!("{}.{} [{}/{n}]", t.schema, t.name, i + 1),
            };
            files.push((t, path, rows, label));
        }
    }
    let size = |path: &str| snap.manifest.file(path).map_or(0, |f| f.bytes);
    files.sort_by_key(|(_, path, _, _)| std::cmp::Reverse(size(path)));
    let queue = Mutex::new(VecDeque::from(files));
    let failed = std::sync::atomic::AtomicBool::new(false);
    let work = workers.iter().map(|client| async {
        let mut rows = 0u64;
        loop {
            if failed.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            let next = queue.lock().ok().and_then(|mut q| q.pop_front());
            let Some((t, path, expected, label)) = next else { break };
            let bar = progress.table("loading", &label);
            let loaded = load_file(client, store, snap, t, (path, expected), &bar).await;
            bar.finish();
            match loaded {
                Ok(n) => {
                    tracing::info!(table = %label, rows = n, "table loaded");
                    rows += n;
                }
                Err(e) => {
                    failed.store(true, std::sync::atomic::Ordering::SeqCst);
                    return Err(e);
                }
            }
        }
        Ok(rows)
    });
    let mut stats = RestoreStats::default();
    for r in futures_util::future::join_all(work).await {
        stats.rows += r?;
    }
    Ok(stats)
}

/// Which entries may run beside each other: indexes and primary, unique and
/// check constraints; or foreign keys, once those are all built.
fn group(kind: &str) -> u8 {
    match kind {
        "INDEX" | "CONSTRAINT" => 1,
        "FK CONSTRAINT" => 2,
        _ => 0,
    }
}

type Running<'a> = FuturesUnordered<Pin<Box<dyn Future<Output = (usize, Vec<String>, Result<(), RestoreError>)> + 'a>>>;

/// Runs post-data: entries that may run beside others on the worker
/// connections, never two on one table at once; every other entry alone,
/// in order, on the main connection.
async fn build(client: &Client, workers: &[Client], script: &str) -> Result<(), RestoreError> {
    let what = "creating indexes, constraints and triggers (post-data)";
    let post = post_data::split(script);
    if post.entries.is_empty() || !post.preamble_is_settings() {
        return client.batch_execute(script).await.map_err(|e| RestoreError::load(what, &e));
    }
    for c in std::iter::once(client).chain(workers) {
        c.batch_execute(&post.preamble).await.map_err(|e| RestoreError::load(what, &e))?;
    }
    let mut pending: VecDeque<&Entry> = post.entries.iter().collect();
    let mut idle: Vec<usize> = (0..workers.len()).collect();
    let mut busy: HashSet<String> = HashSet::new();
    let mut running: Running<'_> = FuturesUnordered::new();
    let mut running_group = 0u8;
    loop {
        // Start what may start: the first entries of the group in progress
        // whose tables are free, while a connection is idle.
        while let Some(front) = pending.front() {
            let g = group(&front.kind);
            if front.tables.is_empty() || g == 0 {
                if !running.is_empty() {
                    break;
                }
                let e = pending.pop_front().ok_or_else(|| RestoreError::Load {
                    what: what.into(),
                    reason: "the post-data queue emptied".into(),
                })?;
                client.batch_execute(&e.sql).await.map_err(|err| RestoreError::load(entry_name(e, what), &err))?;
                continue;
            }
            if !running.is_empty() && g != running_group {
                break;
            }
            let free = pending
                .iter()
                .take_while(|e| group(&e.kind) == g && !e.tables.is_empty())
                .position(|e| e.tables.iter().all(|t| !busy.contains(t)));
            let (Some(i), Some(w)) = (free, idle.last().copied()) else { break };
            let Some(e) = pending.remove(i) else { break };
            idle.pop();
            running_group = g;
            busy.extend(e.tables.iter().cloned());
            let c = &workers[w];
            running.push(Box::pin(async move {
                let r = c.batch_execute(&e.sql).await.map_err(|err| RestoreError::load(entry_name(e, what), &err));
                (w, e.tables.clone(), r)
            }));
        }
        match running.next().await {
            Some((w, tables, result)) => {
                result?;
                idle.push(w);
                for t in &tables {
                    busy.remove(t);
                }
            }
            None if pending.is_empty() => return Ok(()),
            None => {}
        }
    }
}

/// "creating INDEX public.idx" style context for an entry's error.
fn entry_name(e: &Entry, what: &str) -> String {
    match e.tables.first() {
        Some(t) => format!("{what}: {} on {t}", e.kind),
        None => format!("{what}: {}", e.kind),
    }
}
