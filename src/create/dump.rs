//! The dump, step by step: plan the jobs, run the workers while pg_dump
//! writes the schema scripts, assemble the manifest's entries from what
//! they wrote, record the sequences, and give the leak scan's verdict.

use std::sync::Arc;

use super::jobs::{self, Sizing};
use super::leak::{self, Probed};
use super::workers::{Done, JobCx, Workers};
use super::{scripts, CreateError, CreateOptions, Decided};
use crate::conn::Env;
use crate::leak::run::LeakRun;
use crate::leak::LeakScan;
use crate::progress::Progress;
use crate::snapshot::manifest::{ChunkEntry, SchemaFiles};
use crate::snapshot::{SequenceEntry, SnapshotWriter, TableEntry};
use crate::source::catalog;
use crate::source::pg_dump::PgDump;
use crate::source::session::SourceSession;

/// What the dump wrote, for the manifest.
pub struct Dumped {
    pub schema: SchemaFiles,
    pub tables: Vec<TableEntry>,
    pub sequences: Vec<SequenceEntry>,
    /// `None` without a scan.
    pub leak_scan: Option<LeakScan>,
}

/// Dumps the schema and every selected table's rows into `writer`.
pub async fn dump(
    opts: &CreateOptions,
    session: &SourceSession,
    env: &dyn Env,
    decided: &Decided,
    dumper: &PgDump<'_>,
    writer: &mut SnapshotWriter<'_>,
    progress: &Progress,
) -> Result<Dumped, CreateError> {
    let Decided { catalog, selection, plan, subset, .. } = decided;
    let leak = match (&opts.masking, opts.leak_scan) {
        (Some(_), Some(bytes)) => Some(LeakRun::new(bytes, opts.leak_spill, catalog, plan)),
        _ => None,
    };
    let remembers = |t: &catalog::Table| leak.as_ref().is_some_and(|l| l.remembers(t));
    // A slice's tables are read whole by their query: no chunks.
    let whole = |t: &catalog::Table| subset.as_ref().is_some_and(|s| s.is_subset(t.oid));
    let sizing = Sizing {
        selection,
        plan,
        jobs: opts.jobs,
        chunk_bytes: opts.chunk_bytes,
        codec: opts.codec,
        remembers: &remembers,
        unchunked: &whole,
    };
    let jobs::JobPlan { mut tables, jobs } = jobs::plan(session, catalog, sizing).await?;
    // The catalog's size of every table dumped: an estimate of the COPY text.
    let estimate: u64 = jobs
        .iter()
        .map(|j| (j.slot, j.table.bytes.max(0) as u64))
        .collect::<std::collections::HashMap<_, _>>()
        .values()
        .sum();
    progress.overall("dumping", estimate, true);
    let overall = progress.overall_guard();
    let workers = Workers::new(jobs, session.server_version_num);
    let clients = workers.connect(session, &opts.source, env, opts.jobs).await?;
    let schema = scripts::files();
    let done = {
        let cx = JobCx {
            plan,
            subset: subset.as_ref(),
            leak: leak.as_ref(),
            codec: opts.codec,
            level: opts.compress_level,
            writer: &*writer,
            progress,
        };
        let (done, scripts) =
            tokio::join!(workers.run(&clients, &cx), scripts::write(dumper, &schema, &*writer, &workers));
        for c in &clients {
            let _ = c.batch_execute("ROLLBACK").await;
        }
        let scripts = scripts?;
        for file in scripts.files {
            writer.add(file);
        }
        (done?, scripts.texts)
    };
    drop(overall);
    let (done, script_texts) = done;
    let probed = assemble(&mut tables, done, writer);
    let sequences = sequences(session, decided).await?;
    let leak_scan = match &leak {
        Some(run) => {
            let files = leak::Files { tables: &tables, probed, scripts: &script_texts };
            Some(leak::finish(run, writer, catalog, plan, files, opts.jobs).await?)
        }
        None => None,
    };
    Ok(Dumped { schema, tables, sequences, leak_scan })
}

/// Adds each finished job's rows and file to its table's entry (in table
/// and chunk order) and to the snapshot's files; returns the files the leak
/// scan probed as they were dumped, with what it found.
fn assemble(tables: &mut [TableEntry], mut done: Vec<Done>, writer: &mut SnapshotWriter<'_>) -> Probed {
    done.sort_by_key(|d| (d.slot, d.part.map(|p| p.0)));
    let mut probed = Probed::new();
    for Done { slot, part, dumped, probe } in done {
        // A deferred probe past both budgets leaves its file to be read back.
        if let Some(probe) = probe.as_ref().map(Arc::as_ref) {
            let spilled = probe.spilled();
            if probe.finish_deferred() {
                probed.insert(dumped.file.path.clone(), (probe.tally(), spilled));
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
    probed
}

/// Every sequence's state, but those owned by tables left out.
async fn sequences(session: &SourceSession, decided: &Decided) -> Result<Vec<SequenceEntry>, CreateError> {
    let mut out = Vec::new();
    for s in &decided.catalog.sequences {
        if s.owner.is_some_and(|o| !decided.selection.selected.contains(&o)) {
            continue;
        }
        let (last_value, is_called) = catalog::sequence_state(&session.client, s).await?;
        out.push(SequenceEntry { schema: s.schema.clone(), name: s.name.clone(), last_value, is_called });
    }
    Ok(out)
}
