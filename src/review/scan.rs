//! The leak analysis of `check` and `rules init`: the same stages as
//! `create` (mask, with the leak scan watching), over a sample of every
//! table spread over it (or every row with `--full`), and the same
//! verdict. Nothing is written anywhere.

use std::collections::HashSet;
use std::sync::Arc;

use tokio_postgres::Client;

use crate::create::pipeline::Rows;
use crate::leak::run::LeakRun;
use crate::leak::verdict::Verdict;
use crate::leak::{TableProbe, Tally, DEFAULT_BYTES};
use crate::plan::masking::MaskPlan;
use crate::source::catalog::{Catalog, RelKind, Table};
use crate::source::copy_out;
use crate::source::SourceError;
use crate::sql;

/// How many rows of each table the analysis reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sample {
    /// About this many, spread over the table (all of a smaller one).
    Rows(u64),
    /// Every row, as `create` reads them.
    Full,
}

/// Why the analysis could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("leak analysis of {table}: {source}")]
    Rows {
        table: String,
        #[source]
        source: crate::mask::rows::RowError,
    },
    #[error("leak analysis: confirming candidates: {0}")]
    Confirm(#[source] std::io::Error),
}

impl crate::error::Classify for ScanError {
    fn fault(&self) -> crate::error::Fault {
        match self {
            // A value no masker of the rules can take: a rules problem.
            ScanError::Rows { .. } => crate::error::Fault::Config,
            ScanError::Source(_) | ScanError::Confirm(_) => crate::error::Fault::Runtime,
        }
    }
}

/// Runs the leak analysis over the tables whose rows `create` would dump,
/// with the masking `plan`: tables whose originals are remembered first,
/// then the others, probed against the complete filter.
pub async fn scan(
    client: &Client,
    catalog: &Catalog,
    plan: &MaskPlan,
    with_rows: &HashSet<u32>,
    sample: Sample,
) -> Result<Verdict, ScanError> {
    let run = LeakRun::new(DEFAULT_BYTES, 1 << 30, catalog, plan);
    let mut tables: Vec<&Table> = catalog
        .tables
        .iter()
        .filter(|t| {
            t.kind == RelKind::Table && with_rows.contains(&t.oid) && !plan.skip_rows.contains(&t.display_name())
        })
        .collect();
    tables.sort_by_key(|t| !run.remembers(t));
    let remembering = tables.iter().filter(|t| run.remembers(t)).count();
    let mut deferred: Vec<(usize, Arc<TableProbe>)> = Vec::new();
    let mut streams: Vec<(String, Vec<String>, Tally)> = Vec::new();
    for (i, t) in tables.iter().enumerate() {
        let observer = run.observer(t, plan, i >= remembering);
        let probe = Arc::clone(observer.probe());
        let mask = plan.tables.get(&t.oid).cloned();
        let filter = plan.filters.get(&t.oid).map(String::as_str);
        let copy = copy_out::start(client, t, &sample_sql(t, filter, sample)).await?;
        let (mut batches, end) = copy.split();
        let mut rows = Rows::new(mask, Some(observer));
        let mut out = Vec::new();
        let table = t.display_name();
        while let Some(batch) = batches.recv().await {
            rows.process(&batch, &mut out).map_err(|source| ScanError::Rows { table: table.clone(), source })?;
        }
        end.finish().await?;
        rows.finish(&table).map_err(|source| ScanError::Rows { table: table.clone(), source })?;
        if i < remembering {
            deferred.push((streams.len(), Arc::clone(&probe)));
        }
        streams.push((table, t.copy_columns(), probe.tally()));
        if i + 1 == remembering {
            // The filter is complete: look up what the remembering tables kept.
            for (slot, probe) in deferred.drain(..) {
                probe.finish_deferred();
                streams[slot].2 = probe.tally();
            }
        }
    }
    run.verdict(&streams, plan).map_err(ScanError::Confirm)
}

/// `COPY` of a table's sample: all rows of a table no larger than the
/// sample; else rows spread over it (`BERNOULLI` for a table small enough to
/// read whole, `SYSTEM` pages for a larger one), the same every time.
pub fn sample_sql(t: &Table, filter: Option<&str>, sample: Sample) -> String {
    let cols: Vec<String> = t.copy_columns().iter().map(|c| sql::ident(c)).collect();
    let (tablesample, limit) = sampling(t, sample);
    let filter = filter.map(|f| format!(" WHERE ({f})")).unwrap_or_default();
    format!("COPY (SELECT {} FROM ONLY {}{tablesample}{filter}{limit}) TO STDOUT", cols.join(", "), t.qualified())
}

/// The `TABLESAMPLE` and `LIMIT` clauses of a sample of `t`.
pub fn sampling(t: &Table, sample: Sample) -> (String, String) {
    let rows = t.estimated_rows.max(0) as u64;
    match sample {
        Sample::Full => (String::new(), String::new()),
        Sample::Rows(n) if rows <= n => (String::new(), format!(" LIMIT {n}")),
        Sample::Rows(n) if rows <= 200_000 => {
            let pct = (100.0 * 1.5 * n as f64 / rows as f64).min(100.0);
            (format!(" TABLESAMPLE BERNOULLI ({pct:.4}) REPEATABLE (7)"), format!(" LIMIT {n}"))
        }
        Sample::Rows(n) => {
            let pct = (100.0 * 3.0 * n as f64 / rows as f64).min(100.0);
            (format!(" TABLESAMPLE SYSTEM ({pct:.4}) REPEATABLE (7)"), format!(" LIMIT {n}"))
        }
    }
}
