//! Parallel restore (`--jobs N`, N > 1): the schema in one transaction, then
//! the data files on N connections, largest first, then the indexes and
//! constraints of post-data on N connections where no two lock the same
//! table. As in `pg_restore -j`, a table's indexes and primary, unique and
//! check constraints are built as soon as its data is in, while other
//! tables still load.
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
use super::{
    file_label, load_file, prepare, run_clean, set_sequences, RestoreError, RestoreOptions, RestoreStats, Scripts,
};
use crate::conn::{self, ConnSpec, Env};
use crate::progress::Progress;
use crate::snapshot::{Listed, TableEntry};
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
            .map_err(|e| RestoreError::load("creating the schema (pre-data)", &e))
    };
    let schema = tokio::select! {
        biased;
        // The statement running is cancelled; the connection, closed by the
        // caller, rolls the transaction back.
        () = target.opts.cancel.cancelled() => {
            conn::stop_running(client, target.spec, target.env).await;
            return Err(RestoreError::Interrupted);
        }
        r = schema => r,
    };
    // COMMIT is not cut short: once sent, the schema may be committed, and
    // a stop after it is undone below like any failure.
    let committed = match schema {
        Ok(()) => client.batch_execute("COMMIT").await.map_err(|e| RestoreError::load("committing the schema", &e)),
        Err(e) => Err(e),
    };
    if let Err(e) = committed {
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(e);
    }
    // From here on the schema is committed: a failure drops it again.
    let result = {
        let workers = connect_workers(&target, snap).await;
        match workers {
            Ok(workers) => {
                let loaded = tokio::select! {
                    biased;
                    () = target.opts.cancel.cancelled() => Err(RestoreError::Interrupted),
                    r = load(client, &workers, store, snap, scripts, progress) => r,
                };
                if loaded.is_err() {
                    // What the connections still run (an index build) is cut
                    // short and waited for, so that its locks neither hold up
                    // nor deadlock the drops.
                    let stops = workers.iter().chain([client]).map(|c| conn::stop_running(c, target.spec, target.env));
                    futures_util::future::join_all(stops).await;
                }
                loaded
            }
            Err(e) => Err(e),
        }
        // The workers are closed here, before the drops below.
    };
    match result {
        Ok(stats) => Ok(stats),
        Err(cause) => {
            tracing::warn!("restore failed after the schema was committed; dropping what it created");
            // On a connection of its own: a cancel request sent to the main
            // one may arrive late and cut a drop short. (The main one when
            // no other can be made.)
            let own = match conn::connect(target.spec, target.env).await {
                Ok(c) => prepare(&c).await.ok().map(|()| c),
                Err(_) => None,
            };
            let client = own.as_ref().unwrap_or(client);
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
        prepare(&c).await?;
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
    let post = post_data::split(&scripts.post_data.body);
    if post.runs_in_parts() {
        // pg_dump's session settings, for the entries the workers build.
        for w in workers {
            w.batch_execute(&post.preamble)
                .await
                .map_err(|e| RestoreError::load("setting up a restore connection", &e))?;
        }
    }
    let early = early_entries(&post, snap);
    let mut stats = load_data(workers, store, snap, &post, &early, progress).await?;
    stats.tables = snap.manifest.tables.iter().filter(|t| t.has_data()).count();
    set_sequences(client, snap).await?;
    let built: HashSet<usize> = early.iter().map(|(i, _)| *i).collect();
    build(client, workers, &scripts.post_data.body, &post, &built).await?;
    Ok(stats)
}

/// The post-data entries that may run while data still loads: indexes and
/// primary, unique and check constraints that come before any entry that
/// must run alone, each on one table of the snapshot (by position in the
/// manifest). An entry naming a table written otherwise waits for the end.
fn early_entries(post: &post_data::PostData, snap: &Listed) -> Vec<(usize, usize)> {
    if !post.runs_in_parts() {
        return Vec::new();
    }
    let names: Vec<String> = snap
        .manifest
        .tables
        .iter()
        .map(|t| format!("{}.{}", pg_dump_ident(&t.schema), pg_dump_ident(&t.name)))
        .collect();
    post.entries
        .iter()
        .enumerate()
        .take_while(|(_, e)| group(&e.kind) != 0 && !e.tables.is_empty())
        .filter(|(_, e)| group(&e.kind) == 1 && e.tables.len() == 1)
        .filter_map(|(i, e)| names.iter().position(|n| *n == e.tables[0]).map(|t| (i, t)))
        .collect()
}

/// A name as pg_dump writes it: bare when it is lower case letters, digits
/// and underscores, else quoted. (pg_dump also quotes keywords; such an
/// entry simply waits for all data.)
fn pg_dump_ident(name: &str) -> String {
    let bare = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if bare {
        name.to_string()
    } else {
        sql::ident(name)
    }
}

/// A table's data: its position in the manifest, and its files (path,
/// rows) in order.
type TableFiles<'a> = (usize, &'a TableEntry, Vec<(&'a str, u64)>);

/// One file of a table: the table's position, the table, the file and its
/// rows, and its label.
type File<'a> = (usize, &'a TableEntry, &'a str, u64, String);

/// What a loading connection does next.
enum Task<'a> {
    /// Every file of a table, in one transaction.
    Table(TableFiles<'a>),
    /// One file handed over by the connection loading its table.
    File(File<'a>),
    /// (entry index, table position).
    Entry(usize, usize),
    /// Nothing is ready yet, but loads in progress will make an entry ready.
    Wait,
    /// Every file is loaded and every early entry started.
    Done,
}

/// Shared by the loading connections.
struct Loading<'a> {
    /// Tables to load, largest first.
    tables: VecDeque<TableFiles<'a>>,
    /// Files handed over to idle connections.
    shared: VecDeque<File<'a>>,
    /// Tables whose first files are being loaded (frozen), which may hand
    /// the rest over.
    loading: usize,
    /// Connections with nothing to do.
    idle: usize,
    /// Files still to load, per table (by manifest position).
    left: Vec<usize>,
    /// Early entries (entry index, table position) not started yet.
    waiting: Vec<(usize, usize)>,
    /// Tables an early entry is building on now.
    busy: HashSet<usize>,
}

impl<'a> Loading<'a> {
    fn next(&mut self) -> Task<'a> {
        // An entry whose table is loaded goes before more data: its table is
        // hot in the cache, and the build overlaps the remaining loads.
        let ready = self.waiting.iter().position(|&(_, t)| self.left.get(t) == Some(&0) && !self.busy.contains(&t));
        if let Some(i) = ready {
            let (entry, table) = self.waiting.remove(i);
            self.busy.insert(table);
            return Task::Entry(entry, table);
        }
        if let Some(table) = self.tables.pop_front() {
            self.loading += 1;
            return Task::Table(table);
        }
        match self.shared.pop_front() {
            Some(file) => Task::File(file),
            None if self.waiting.is_empty() && self.loading == 0 => Task::Done,
            None => Task::Wait,
        }
    }

    /// A file of table `pos` is loaded.
    fn loaded(&mut self, pos: usize) {
        if let Some(l) = self.left.get_mut(pos) {
            *l = l.saturating_sub(1);
        }
    }
}

/// Loads every table, largest first, each on the next free connection in
/// a transaction of its own that empties it first, so that its rows go in
/// frozen ([`load_table`]); builds the `early` post-data entries as their
/// tables are complete.
async fn load_data(
    workers: &[Client],
    store: &dyn Store,
    snap: &Listed,
    post: &post_data::PostData,
    early: &[(usize, usize)],
    progress: &Progress,
) -> Result<RestoreStats, RestoreError> {
    let manifest = &snap.manifest;
    let mut left = vec![0usize; manifest.tables.len()];
    let mut tables: Vec<TableFiles<'_>> = Vec::new();
    for (pos, t) in manifest.tables.iter().enumerate().filter(|(_, t)| t.has_data()) {
        let files = t.data_files();
        left[pos] = files.len();
        tables.push((pos, t, files));
    }
    // Longest first: a row costs the server about as much as 50 bytes of
    // text to load, and as much again in its index builds.
    tables.sort_by_key(|(_, t, _)| std::cmp::Reverse(t.raw_bytes.saturating_add(t.rows.saturating_mul(100))));
    let loader = Loader {
        state: Mutex::new(Loading {
            tables: VecDeque::from(tables),
            shared: VecDeque::new(),
            loading: 0,
            idle: 0,
            left,
            waiting: early.to_vec(),
            busy: HashSet::new(),
        }),
        changed: tokio::sync::Notify::new(),
        failed: std::sync::atomic::AtomicBool::new(false),
        store,
        snap,
        post,
        progress,
    };
    let mut stats = RestoreStats::default();
    for r in futures_util::future::join_all(workers.iter().map(|c| loader.work(c))).await {
        stats.rows += r?;
    }
    Ok(stats)
}

/// What the loading connections share.
struct Loader<'a> {
    state: Mutex<Loading<'a>>,
    /// Signalled after every task: what waits may be ready.
    changed: tokio::sync::Notify,
    /// Set after a failure: no connection starts another task.
    failed: std::sync::atomic::AtomicBool,
    store: &'a dyn Store,
    snap: &'a Listed,
    post: &'a post_data::PostData,
    progress: &'a Progress,
}

impl<'a> Loader<'a> {
    /// One connection's loop: tasks until none is left; the rows it loaded.
    async fn work(&self, client: &Client) -> Result<u64, RestoreError> {
        let mut rows = 0u64;
        loop {
            if self.failed.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            // Registered before looking, so a change in between is not missed.
            let notified = self.changed.notified();
            let task = match self.state.lock() {
                Ok(mut s) => s.next(),
                Err(_) => break,
            };
            let outcome = match task {
                Task::Done => break,
                Task::Wait => {
                    // A loader that sees this connection idle hands over
                    // files (it looks before each file).
                    self.with_state(|s| s.idle += 1);
                    notified.await;
                    self.with_state(|s| s.idle = s.idle.saturating_sub(1));
                    continue;
                }
                Task::Entry(i, table) => self.entry(client, i, table).await,
                Task::Table(table) => self.table(client, table).await.map(|n| rows += n),
                Task::File((pos, t, path, expected, label)) => {
                    let bar = self.progress.table("loading", &label);
                    let loaded = load_file(client, self.store, self.snap, t, (path, expected), false, &bar).await;
                    bar.finish();
                    loaded.map(|n| {
                        tracing::info!(table = %label, rows = n, "table loaded");
                        rows += n;
                        self.with_state(|s| s.loaded(pos));
                    })
                }
            };
            // The failure is marked before the others wake, so that none
            // of them goes back to waiting for a load that will not come.
            if outcome.is_err() {
                self.failed.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            self.changed.notify_waiters();
            outcome?;
        }
        Ok(rows)
    }

    fn with_state(&self, f: impl FnOnce(&mut Loading<'a>)) {
        if let Ok(mut s) = self.state.lock() {
            f(&mut s);
        }
    }

    /// Builds an early post-data entry.
    async fn entry(&self, client: &Client, i: usize, table: usize) -> Result<(), RestoreError> {
        let what = "creating indexes and constraints (post-data)";
        let r = match self.post.entries.get(i) {
            Some(e) => client.batch_execute(&e.sql).await.map_err(|err| RestoreError::load(entry_name(e, what), &err)),
            None => Ok(()),
        };
        self.with_state(|s| {
            s.busy.remove(&table);
        });
        r
    }

    /// Loads a table, frozen, handing the files it did not start over to
    /// idle connections; the rows it loaded.
    async fn table(&self, client: &Client, (pos, t, files): TableFiles<'a>) -> Result<u64, RestoreError> {
        // Before each file after the first: stop if another connection
        // failed; hand the rest over if another has nothing to do (claiming
        // it, so that one idle connection does not make every loader hand over).
        let next = || {
            if self.failed.load(std::sync::atomic::Ordering::SeqCst) {
                return Next::Stop;
            }
            match self.state.lock() {
                Ok(mut s) if s.idle > 0 => {
                    s.idle -= 1;
                    Next::Share
                }
                _ => Next::Go,
            }
        };
        let loaded = load_table(client, self.store, self.snap, t, &files, self.progress, &next).await;
        self.with_state(|s| {
            s.loading = s.loading.saturating_sub(1);
            if let Ok((_, done)) = &loaded {
                for _ in 0..*done {
                    s.loaded(pos);
                }
                let n = files.len();
                for (i, (path, rows)) in files.iter().enumerate().skip(*done) {
                    s.shared.push_back((pos, t, path, *rows, file_label(t, i, n)));
                }
            }
        });
        loaded.map(|(n, _)| n)
    }
}

/// What a table's loader does before its next file.
enum Next {
    Go,
    /// Commit and leave the other files to idle connections.
    Share,
    /// Another connection failed: roll back and load nothing more.
    Stop,
}

/// Loads a table's files in one transaction that first empties it: its
/// rows go in frozen (`COPY ... FREEZE`, which needs the table created or
/// emptied in the same transaction), so that its index builds, the
/// foreign key checks and the first queries after the restore do not
/// write every page again to set hint bits. (Measured: index builds after
/// a frozen load take about a third less time.) The table is new and
/// empty, so the TRUNCATE removes nothing. Before each file after the
/// first, `next` says whether to go on, to commit and leave the files not
/// started (the second number returned is how many were loaded) to other
/// connections, which load them unfrozen, in parallel, or to roll back
/// because the restore failed elsewhere (nothing loaded, then).
async fn load_table(
    client: &Client,
    store: &dyn Store,
    snap: &Listed,
    t: &TableEntry,
    files: &[(&str, u64)],
    progress: &Progress,
    next: &dyn Fn() -> Next,
) -> Result<(u64, usize), RestoreError> {
    let name = format!("{}.{}", t.schema, t.name);
    let begin = format!("BEGIN; TRUNCATE ONLY {}", t.qualified());
    let loaded = async {
        client.batch_execute(&begin).await.map_err(|e| RestoreError::load(format!("loading table {name}"), &e))?;
        let mut rows = 0;
        let mut done = 0;
        for (i, file) in files.iter().enumerate() {
            if i > 0 {
                match next() {
                    Next::Go => {}
                    Next::Share => break,
                    Next::Stop => return Ok(None),
                }
            }
            let bar = progress.table("loading", &file_label(t, i, files.len()));
            let n = load_file(client, store, snap, t, *file, true, &bar).await;
            bar.finish();
            rows += n?;
            done += 1;
        }
        client.batch_execute("COMMIT").await.map_err(|e| RestoreError::load(format!("loading table {name}"), &e))?;
        Ok(Some((rows, done)))
    }
    .await;
    match loaded {
        Ok(Some((rows, done))) => {
            tracing::info!(table = %name, rows, files = done, of = files.len(), "table loaded");
            Ok((rows, done))
        }
        Ok(None) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Ok((0, 0))
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
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

/// Runs the rest of post-data (all but `built`): entries that may run
/// beside others on the worker connections, never two on one table at
/// once; every other entry alone, in order, on the main connection.
async fn build(
    client: &Client,
    workers: &[Client],
    script: &str,
    post: &post_data::PostData,
    built: &HashSet<usize>,
) -> Result<(), RestoreError> {
    let what = "creating indexes, constraints and triggers (post-data)";
    if !post.runs_in_parts() {
        return client.batch_execute(script).await.map_err(|e| RestoreError::load(what, &e));
    }
    client.batch_execute(&post.preamble).await.map_err(|e| RestoreError::load(what, &e))?;
    let mut pending: VecDeque<&Entry> =
        post.entries.iter().enumerate().filter(|(i, _)| !built.contains(i)).map(|(_, e)| e).collect();
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
