//! The leak scan over one create run: which columns are remembered and how
//! each is probed (read from the masker registry), one observer per job,
//! and, at the end, the verdict over every file (reading back those whose
//! probes did not fit the budgets).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::CreateError;
use crate::leak::{readback, Bloom, Budgets, LeakObserver, LeakScan, Probe, TableProbe};
use crate::mask::registry::Output;
use crate::mask::{ColumnInfo, TypeClass};
use crate::plan::masking::MaskPlan;
use crate::snapshot::{SnapshotWriter, TableEntry};
use crate::source::catalog::{Catalog, Table};

/// The scan of one run: its filter and the budgets of its deferred probes.
pub struct LeakRun {
    bloom: Arc<Bloom>,
    budgets: Budgets,
}

/// Files probed as they were dumped: path → (fields tested, hits per
/// column, whether some probes went through the temporary file).
pub type Probed = HashMap<String, (u64, Vec<u64>, bool)>;

/// The broad type of a column of `t`.
fn class_of(t: &Table, column: &str) -> TypeClass {
    t.columns
        .iter()
        .find(|c| c.name == column)
        .map_or(TypeClass::Other, |c| ColumnInfo::from_type(&c.type_name, false, false).class)
}

impl LeakRun {
    /// A filter of `memory` bytes, half as much again for the probes kept
    /// until it is complete, and `spill` bytes of temporary file past that.
    pub fn new(memory: usize, spill: u64) -> Self {
        LeakRun { bloom: Arc::new(Bloom::new(memory)), budgets: Budgets::new(memory / 2, spill) }
    }

    /// By COPY position: whether the originals of a column of `t` are
    /// remembered. Those of text and JSON columns whose masker makes its
    /// output from scratch; a masker that keeps parts of its input keeps
    /// them on purpose, and they would look like leaks.
    pub fn remembered_columns(t: &Table, plan: &MaskPlan) -> Vec<bool> {
        let mut flags = vec![false; t.copy_columns().len()];
        for c in plan.tables.get(&t.oid).map(|m| &m.columns[..]).unwrap_or_default() {
            let text = matches!(class_of(t, &c.column), TypeClass::Text | TypeClass::Json);
            if let Some(flag) = flags.get_mut(c.index) {
                *flag = text && c.def.output == Output::Generated;
            }
        }
        flags
    }

    /// Whether `t` has columns whose originals are remembered.
    pub fn remembers(t: &Table, plan: &MaskPlan) -> bool {
        Self::remembered_columns(t, plan).contains(&true)
    }

    /// How the leak scan probes each COPY column of a table: fields of
    /// maskers that make their output from scratch are not probed; fields of
    /// types without words are probed whole.
    pub fn probes_for(t: &Table, plan: &MaskPlan) -> Vec<Probe> {
        let masks = plan.tables.get(&t.oid).map(|m| &m.columns[..]).unwrap_or_default();
        t.copy_columns()
            .iter()
            .map(|col| {
                let def = masks.iter().find(|c| &c.column == col).map(|c| c.def);
                Probe::for_column(class_of(t, col), def)
            })
            .collect()
    }

    /// The observer of one job's rows. With the filter complete, rows are
    /// probed as they pass; before, their slots are kept for the end
    /// (within the budgets).
    pub fn observer(&self, t: &Table, plan: &MaskPlan, filter_complete: bool) -> LeakObserver {
        let probes = Self::probes_for(t, plan);
        let probe = Arc::new(match filter_complete {
            true => TableProbe::new(probes, Arc::clone(&self.bloom)),
            false => TableProbe::deferred(probes, Arc::clone(&self.bloom), self.budgets.clone()),
        });
        LeakObserver::new(Arc::clone(&self.bloom), Self::remembered_columns(t, plan), probe)
    }

    /// Reads back every data file that was not probed as it was dumped,
    /// probes the fields that could carry an original value, and adds what
    /// the probes while dumping found; any hit is an error.
    pub async fn finish(
        &self,
        writer: &SnapshotWriter<'_>,
        catalog: &Catalog,
        plan: &MaskPlan,
        tables: &[TableEntry],
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
                let (table, bloom) = (table.clone(), Arc::clone(&self.bloom));
                async move {
                    if let Some((tested, counts, _)) = probed.get(&path) {
                        return Ok::<_, CreateError>((table, &entry.columns, *tested, counts.clone()));
                    }
                    let reader = writer.store().open(&format!("{}/{path}", writer.id())).await?;
                    let (tested, counts) =
                        readback::scan_file(reader, &path, table.clone(), Self::probes_for(t, plan), bloom).await?;
                    Ok((table, &entry.columns, tested, counts))
                }
            }))
        });
        let results: Vec<Result<_, CreateError>> =
            futures_util::stream::iter(scans.flatten()).buffer_unordered(jobs.max(1)).collect().await;
        let mut fields_tested = 0;
        let mut by_column = BTreeMap::new();
        for r in results {
            let (table, columns, tested, counts) = r?;
            fields_tested += tested;
            for (i, n) in counts.iter().enumerate() {
                if *n > 0 {
                    *by_column.entry(format!("{table}.{}", columns[i])).or_insert(0) += *n;
                }
            }
        }
        let hits: Vec<(String, u64)> = by_column.into_iter().collect();
        self.log(tables, probed, fields_tested, hits.len());
        if !hits.is_empty() {
            return Err(CreateError::Leak(hits));
        }
        Ok(LeakScan {
            remembered: self.bloom.inserted(),
            filter_bytes: self.bloom.bytes(),
            false_positive_rate: self.bloom.false_positive_rate(),
            fields_tested,
            hits,
        })
    }

    /// Says what the scan did, and warns when the filter is crowded enough
    /// to give false alarms, before one blocks a run.
    fn log(&self, tables: &[TableEntry], probed: &Probed, fields_tested: u64, columns_hit: usize) {
        let bloom = &self.bloom;
        let files = tables.iter().map(|t| t.data_files().len()).sum::<usize>();
        let inline = probed.len();
        let spilled = probed.values().filter(|(_, _, spilled)| *spilled).count();
        tracing::info!(
            remembered = bloom.inserted(),
            fields_tested,
            false_positive_rate = bloom.false_positive_rate(),
            "leak scan: {} original values and tokens remembered, {fields_tested} fields tested ({inline} file(s) probed as they were dumped, {spilled} of them through a temporary file; {} read back), {columns_hit} column(s) with hits",
            bloom.inserted(),
            files.saturating_sub(inline),
        );
        let expected_false_hits = bloom.false_positive_rate() * fields_tested as f64;
        if expected_false_hits >= 0.01 {
            tracing::warn!(
                "the leak scan's filter is crowded: {} values remembered in {} MiB give about {expected_false_hits:.2} false hit(s) over {fields_tested} fields; raise --leak-scan-memory (a hit may be a false alarm until then)",
                bloom.inserted(),
                bloom.bytes() / (1024 * 1024)
            );
        }
    }
}
