//! The leak scan of one run (a create, or a check over samples): which
//! masked columns feed it (read from the masker registry), how each kept
//! column is probed, one observer per stream of rows, and the verdict over
//! what every stream found.

use std::collections::HashMap;
use std::sync::Arc;

use super::verdict::{decide, ColumnScan, Verdict};
use super::{Bloom, Budgets, LeakObserver, Origins, Probe, TableProbe, Tally};
use crate::mask::registry::Output;
use crate::mask::{ColumnInfo, TypeClass};
use crate::plan::masking::{Coverage, MaskPlan};
use crate::source::catalog::{Catalog, Table};

/// The scan of one run: its filter, the budgets of its deferred probes,
/// the confirmation store, and which masked columns feed it.
pub struct LeakRun {
    bloom: Arc<Bloom>,
    budgets: Budgets,
    origins: Arc<Origins>,
    /// (table oid, COPY position) of each remembered column → its source id.
    sources: HashMap<(u32, usize), u32>,
}

/// The broad type of a column of `t`.
fn class_of(t: &Table, column: &str) -> TypeClass {
    t.columns.iter().find(|c| c.name == column).map_or(TypeClass::Other, |c| {
        // An array's originals are remembered as its elements' would be.
        let info = ColumnInfo::from_type(&c.type_name, false, false);
        info.element.map_or(info.class, |e| e.class)
    })
}

impl LeakRun {
    /// A filter of `memory` bytes, half as much again for the probes kept
    /// until it is complete, and `spill` bytes of temporary file past that.
    /// Every masked text and JSON column whose masker makes its output from
    /// scratch feeds it: a masker that keeps parts of its input keeps them
    /// on purpose, and they would look like leaks.
    pub fn new(memory: usize, spill: u64, catalog: &Catalog, plan: &MaskPlan) -> Self {
        let mut names = Vec::new();
        let mut sources = HashMap::new();
        for t in &catalog.tables {
            for c in plan.tables.get(&t.oid).map(|m| &m.columns[..]).unwrap_or_default() {
                let text = matches!(class_of(t, &c.column), TypeClass::Text | TypeClass::Json);
                if text && c.def.output == Output::Generated {
                    sources.insert((t.oid, c.index), names.len() as u32);
                    names.push(format!("{}.{}", t.display_name(), c.column));
                }
            }
        }
        LeakRun {
            bloom: Arc::new(Bloom::new(memory)),
            budgets: Budgets::new(memory / 2, spill),
            origins: Arc::new(Origins::new(names)),
            sources,
        }
    }

    /// Whether `t` has columns whose originals are remembered.
    pub fn remembers(&self, t: &Table) -> bool {
        self.sources.keys().any(|(oid, _)| *oid == t.oid)
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
    /// probed as they pass; before, their keys are kept for the end
    /// (within the budgets).
    pub fn observer(&self, t: &Table, plan: &MaskPlan, filter_complete: bool) -> LeakObserver {
        let probes = Self::probes_for(t, plan);
        let remember = (0..probes.len()).map(|i| self.sources.get(&(t.oid, i)).copied()).collect();
        let probe = Arc::new(match filter_complete {
            true => TableProbe::new(probes, Arc::clone(&self.bloom)),
            false => TableProbe::deferred(probes, Arc::clone(&self.bloom), self.budgets.clone()),
        });
        LeakObserver::new(Arc::clone(&self.bloom), Arc::clone(&self.origins), remember, probe)
    }

    /// The filter.
    pub fn bloom(&self) -> &Arc<Bloom> {
        &self.bloom
    }

    /// Confirms what the streams found, per table (`schema.table` and its
    /// COPY columns), and judges it.
    pub fn verdict(&self, tables: &[(String, Vec<String>, Tally)], plan: &MaskPlan) -> std::io::Result<Verdict> {
        decide(&column_scans(tables, plan), &self.origins)
    }
}

/// Adds one stream's tally to its table's.
pub fn add_tally(sum: &mut Tally, tally: Tally) {
    if sum.tested.len() < tally.tested.len() {
        sum.tested.resize(tally.tested.len(), 0);
    }
    for (i, n) in tally.tested.iter().enumerate() {
        sum.tested[i] += n;
    }
    sum.found.merge(tally.found);
}

/// One scan per kept column that was tested, with its acknowledgements.
fn column_scans(tables: &[(String, Vec<String>, Tally)], plan: &MaskPlan) -> Vec<ColumnScan> {
    let mut out = Vec::new();
    for (table, columns, tally) in tables {
        for (i, column) in columns.iter().enumerate() {
            let tested = tally.tested.get(i).copied().unwrap_or(0);
            let found = tally.found.columns.get(i).cloned().unwrap_or_default();
            if tested == 0 && found.is_empty() {
                continue;
            }
            let acknowledged = plan
                .coverage
                .iter()
                .find(|c| &c.table == table && &c.column == column)
                .and_then(|c| match &c.coverage {
                    Coverage::Kept { may_contain, .. } => Some(may_contain.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            out.push(ColumnScan {
                table: table.clone(),
                column: column.clone(),
                tested,
                found,
                overflow: tally.found.overflow.get(i).copied().unwrap_or(0),
                acknowledged,
            });
        }
    }
    out
}
