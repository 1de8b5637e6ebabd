//! Running the jobs: `--jobs` workers, each on its own connection that
//! joins the exported snapshot, take jobs from one queue and send each
//! through the pipeline. Jobs of tables whose originals the leak scan
//! remembers run first; on PostgreSQL 14+ (where such jobs are chunked, so
//! none is long) a worker done with them waits until all are done, so that
//! the other tables are probed as they pass instead of later.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio_postgres::Client;

use super::jobs::Job;
use super::pipeline::{self, Part, Stages};
use super::CreateError;
use crate::conn::{ConnSpec, Env};
use crate::leak::run::LeakRun;
use crate::leak::TableProbe;
use crate::plan::masking::MaskPlan;
use crate::progress::Progress;
use crate::snapshot::SnapshotWriter;
use crate::source::copy_out;
use crate::source::session::SourceSession;

/// A finished job: which entry and chunk, its file and counts, and the
/// leak scan's probe of it.
pub struct Done {
    pub slot: usize,
    pub part: Option<(usize, usize)>,
    pub dumped: Part,
    pub probe: Option<Arc<TableProbe>>,
}

/// The queue and the signals the workers share.
pub struct Workers<'a> {
    queue: Mutex<VecDeque<Job<'a>>>,
    /// Set after a failure: no worker takes another job.
    failed: AtomicBool,
    /// Jobs of tables with remembered originals still to finish.
    remembering: watch::Sender<usize>,
    /// Whether workers wait for those before other jobs (PostgreSQL 14+).
    wait_for_filter: bool,
}

/// What every job needs besides its own description.
pub struct JobCx<'a> {
    pub plan: &'a MaskPlan,
    /// The slice, when the rules have `subset:`.
    pub subset: Option<&'a crate::plan::subset::SubsetPlan>,
    pub leak: Option<&'a LeakRun>,
    pub codec: crate::encode::Codec,
    pub level: i32,
    pub writer: &'a SnapshotWriter<'a>,
    pub progress: &'a Progress,
}

impl<'a> Workers<'a> {
    pub fn new(jobs: Vec<Job<'a>>, server_version_num: i32) -> Self {
        let remembering = jobs.iter().filter(|j| j.remembers).count();
        Workers {
            queue: Mutex::new(VecDeque::from(jobs)),
            failed: AtomicBool::new(false),
            remembering: watch::Sender::new(remembering),
            wait_for_filter: server_version_num >= 140_000,
        }
    }

    /// Opens the workers' connections to the snapshot: `jobs` of them, or
    /// fewer when there are fewer jobs.
    pub async fn connect(
        &self,
        session: &SourceSession,
        spec: &ConnSpec,
        env: &dyn Env,
        jobs: usize,
    ) -> Result<Vec<Client>, CreateError> {
        let queued = self.queue.lock().map(|q| q.len()).unwrap_or(1).max(1);
        let mut clients = Vec::new();
        for _ in 0..jobs.max(1).min(queued) {
            clients.push(session.worker(spec, env).await?);
        }
        Ok(clients)
    }

    /// Ends the run after a failure: no worker takes another job, and those
    /// waiting for the leak scan's filter wake up to see it.
    pub fn stop(&self) {
        self.failed.store(true, Ordering::SeqCst);
        self.remembering.send_replace(0);
    }

    /// Runs every job on `clients`, one worker each; returns what each
    /// finished, or the first failure (after which the others stop).
    pub async fn run(&self, clients: &[Client], cx: &JobCx<'_>) -> Result<Vec<Done>, CreateError> {
        let work = clients.iter().map(|client| self.worker(client, cx));
        let mut done = Vec::new();
        for r in futures_util::future::join_all(work).await {
            done.extend(r?);
        }
        Ok(done)
    }

    async fn worker(&self, client: &Client, cx: &JobCx<'_>) -> Result<Vec<Done>, CreateError> {
        let mut done = Vec::new();
        while let Some(job) = self.next().await {
            match self.dump(client, &job, cx).await {
                Ok(d) => {
                    if job.remembers {
                        self.remembering.send_modify(|n| *n = n.saturating_sub(1));
                    }
                    done.push(d);
                }
                Err(e) => {
                    self.stop();
                    return Err(e);
                }
            }
        }
        Ok(done)
    }

    /// The next job, once it may start; `None` when there is none or the
    /// run failed.
    async fn next(&self) -> Option<Job<'a>> {
        if self.failed.load(Ordering::SeqCst) {
            return None;
        }
        let job = self.queue.lock().ok().and_then(|mut q| q.pop_front())?;
        if !job.remembers && self.wait_for_filter {
            let _ = self.remembering.subscribe().wait_for(|n| *n == 0).await;
            if self.failed.load(Ordering::SeqCst) {
                return None;
            }
        }
        Some(job)
    }

    /// One job through the pipeline.
    async fn dump(&self, client: &Client, job: &Job<'_>, cx: &JobCx<'_>) -> Result<Done, CreateError> {
        let t = job.table;
        let label = job.label();
        let filter_complete = *self.remembering.borrow() == 0;
        let leak = cx.leak.map(|l| l.observer(t, cx.plan, filter_complete));
        let probe = leak.as_ref().map(|l| Arc::clone(l.probe()));
        let bar = cx.progress.table("dumping", &label);
        let progress = bar.clone();
        let result = async {
            let file = cx.writer.create_data(&job.path, cx.codec).await?;
            let mask = cx.plan.tables.get(&t.oid).cloned().map(|mut m| {
                if job.part.is_some() {
                    // Row numbers in errors count from the chunk's first row.
                    m.table = format!("{} (chunk {})", m.table, job.path);
                }
                m
            });
            let filter = cx.plan.filters.get(&t.oid).map(String::as_str);
            let sql = cx
                .subset
                .and_then(|s| s.copy_sql(t, filter))
                .unwrap_or_else(|| copy_out::copy_out_sql(t, filter, job.pages));
            let copy = copy_out::start(client, t, &sql).await?;
            let stages = Stages { mask, leak, codec: cx.codec, level: cx.level };
            pipeline::dump_part(copy, file, stages, move |s| progress.update(s.rows, s.raw_bytes)).await
        }
        .await;
        bar.finish();
        let dumped = result?;
        tracing::info!(
            table = %label,
            rows = dumped.stats.rows,
            raw_bytes = dumped.stats.raw_bytes,
            stored_bytes = dumped.file.bytes,
            "table dumped"
        );
        Ok(Done { slot: job.slot, part: job.part, dumped, probe })
    }
}
