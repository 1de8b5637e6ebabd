//! Planning the dump: every table gets its entry in the manifest, in
//! catalog order; its rows become jobs (the whole table, or chunks of heap
//! pages when it is large), ordered so that the run ends soonest and the
//! leak scan's filter is complete early.

use super::CreateError;
use crate::plan::masking::MaskPlan;
use crate::plan::Selection;
use crate::snapshot::TableEntry;
use crate::source::catalog::{self, Catalog, RelKind, Table};
use crate::source::copy_out::Pages;
use crate::source::session::SourceSession;

/// One unit of work of the dump: a table, or one chunk of it.
pub struct Job<'a> {
    /// The table's entry in the manifest.
    pub slot: usize,
    pub table: &'a Table,
    pub path: String,
    pub pages: Option<Pages>,
    /// Estimated work ([`cost_of`]), to start with the longest.
    pub cost: u64,
    /// Which chunk of how many.
    pub part: Option<(usize, usize)>,
    /// The table has columns whose originals the leak scan remembers.
    pub remembers: bool,
}

impl Job<'_> {
    /// How progress and logs name the job: the table, and which chunk.
    pub fn label(&self) -> String {
        match self.part {
            Some((i, n)) => format!("{} [{}/{n}]", self.table.display_name(), i + 1),
            None => self.table.display_name(),
        }
    }
}

/// The manifest's table entries (rows not counted yet) and the jobs that
/// fill them, in the order they start.
pub struct JobPlan<'a> {
    pub tables: Vec<TableEntry>,
    pub jobs: Vec<Job<'a>>,
}

/// What the plan needs to know besides the catalog.
pub struct Sizing<'a> {
    pub selection: &'a Selection,
    pub plan: &'a MaskPlan,
    pub jobs: usize,
    /// `--chunk-size` in bytes; `None` picks it from the database.
    pub chunk_bytes: Option<u64>,
    /// Whether a table remembers originals for the leak scan (false for
    /// every table when there is no scan).
    pub remembers: &'a dyn Fn(&Table) -> bool,
    /// Tables read by one query each, never in chunks (a slice's).
    pub unchunked: &'a dyn Fn(&Table) -> bool,
    /// How data files are compressed (their names end in its extension).
    pub codec: crate::encode::Codec,
}

/// Plans the jobs: every selected table gets its entry; its rows, when
/// dumped, become one job or chunks of about the chunk size.
pub async fn plan<'a>(
    session: &SourceSession,
    catalog: &'a Catalog,
    sizing: Sizing<'_>,
) -> Result<JobPlan<'a>, CreateError> {
    let Sizing { selection, plan, jobs: workers, chunk_bytes, remembers, unchunked, codec } = sizing;
    let chunk_cost = chunk_bytes.unwrap_or_else(|| auto_chunk_cost(catalog, selection, plan, workers));
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
        let remembers = remembers(t);
        // The tables whose originals are remembered end together on every
        // worker (a multiple of the workers in chunks): the other tables wait
        // for the last of them, so that they can be probed as they are dumped.
        let round_to = if remembers && cost > MIN_CHUNK / 4 { workers.max(1) as u64 } else { 1 };
        let parts = match unchunked(t) {
            true => vec![Pages { start: 0, end: None }],
            false => chunks_of(session, t, cost, chunk_cost, round_to).await?,
        };
        let n = parts.len();
        for (i, pages) in parts.into_iter().enumerate() {
            let ext = codec.extension();
            let (path, part) = match n {
                1 => (format!("{stem}{ext}"), None),
                _ => (format!("{stem}.{:03}{ext}", i + 1), Some((i, n))),
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
    Ok(JobPlan { tables, jobs })
}

/// Work of masking one value, in bytes of table: a masked value costs
/// about 2 µs (a keyed hash, a seeded generator, the fake value), the time
/// it takes to read and compress some 400 bytes.
const MASKED_VALUE_COST: u64 = 400;
/// Chunks no smaller than this, whatever the database size.
pub const MIN_CHUNK: u64 = 32 * 1024 * 1024;
/// Chunks no larger than this: a huge table is spread over all workers.
const MAX_CHUNK: u64 = 1024 * 1024 * 1024;

/// A table's estimated work in bytes: its size on disk plus its masked values.
fn cost_of(t: &Table, plan: &MaskPlan) -> u64 {
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
    t: &Table,
    cost: u64,
    chunk_cost: u64,
    round_to: u64,
) -> Result<Vec<Pages>, CreateError> {
    let parts = cost.div_ceil(chunk_cost.max(1)).clamp(1, 1000).div_ceil(round_to) * round_to;
    if session.server_version_num < 140_000 || parts <= 1 {
        return Ok(vec![Pages { start: 0, end: None }]);
    }
    let pages = catalog::relation_pages(&session.client, t).await?;
    Ok(Pages::split(pages, parts))
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
