//! The leak scan over one create run: the verdict over every data file,
//! reading back those whose probes did not fit the budgets.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::CreateError;
use crate::leak::run::{add_tally, LeakRun};
use crate::leak::verdict::{Finding, Verdict};
use crate::leak::{readback, LeakError, LeakScan, Tally};
use crate::plan::masking::MaskPlan;
use crate::snapshot::{SnapshotWriter, TableEntry};
use crate::source::catalog::Catalog;

/// Files probed as they were dumped: path → (what the probe found, whether
/// some probes went through the temporary file).
pub type Probed = HashMap<String, (Tally, bool)>;

/// What the run wrote, for the verdict.
pub struct Files<'a> {
    pub tables: &'a [TableEntry],
    /// Data files probed as they were dumped.
    pub probed: Probed,
    /// (path, text) of the schema scripts.
    pub scripts: &'a [(String, String)],
}

/// Reads back every data file that was not probed as it was dumped, adds
/// up what the probes found per kept column, probes the schema scripts,
/// confirms it all and gives the verdict; a leak is an error naming every
/// column (or schema object) that holds one.
pub async fn finish(
    leak: &LeakRun,
    writer: &SnapshotWriter<'_>,
    catalog: &Catalog,
    plan: &MaskPlan,
    files: Files<'_>,
    jobs: usize,
) -> Result<LeakScan, CreateError> {
    let Files { tables, probed, scripts } = files;
    use futures_util::StreamExt;
    let probed = &probed;
    let scans = tables.iter().enumerate().filter_map(|(slot, entry)| {
        let t = catalog.tables.iter().find(|t| t.schema == entry.schema && t.name == entry.name)?;
        let table = t.display_name();
        let files: Vec<_> = entry.data_files().into_iter().map(|(path, _)| path.to_string()).collect();
        Some(files.into_iter().map(move |path| {
            let (table, bloom) = (table.clone(), Arc::clone(leak.bloom()));
            async move {
                if let Some((tally, _)) = probed.get(&path) {
                    return Ok::<_, CreateError>((slot, tally.clone()));
                }
                let written = writer.files().iter().find(|f| f.path == path);
                let (key, codec) = match written.map(|f| (f.key(writer.id()), f.codec())) {
                    Some((key, Some(codec))) => (key, codec),
                    _ => return Err(CreateError::Store(crate::store::StoreError::BadKey(path))),
                };
                let reader = writer.store().open(&key).await?;
                let probes = LeakRun::probes_for(t, plan);
                let tally = readback::scan_file(reader, codec, &path, table, probes, bloom).await?;
                Ok((slot, tally))
            }
        }))
    });
    let results: Vec<Result<_, CreateError>> =
        futures_util::stream::iter(scans.flatten()).buffer_unordered(jobs.max(1)).collect().await;
    let mut per_table: BTreeMap<usize, Tally> = BTreeMap::new();
    for r in results {
        let (slot, tally) = r?;
        let sum = per_table.entry(slot).or_default();
        add_tally(sum, tally);
    }
    let streams: Vec<(String, Vec<String>, Tally)> = per_table
        .into_iter()
        .map(|(slot, tally)| {
            let entry = &tables[slot];
            (format!("{}.{}", entry.schema, entry.name), entry.columns.clone(), tally)
        })
        .collect();
    let fields_tested = streams.iter().flat_map(|(_, _, t)| t.tested.iter()).sum();
    let mut streams = streams;
    for (path, text) in scripts {
        streams.push(crate::leak::schema::probe(leak.bloom(), path, text));
    }
    let verdict = leak.verdict(&streams, plan).map_err(|source| CreateError::LeakScan(LeakError::Confirm(source)))?;
    log(leak, tables, probed, fields_tested, &verdict);
    let blocking: Vec<Finding> = verdict.blocking().cloned().collect();
    if !blocking.is_empty() {
        return Err(CreateError::Leak(blocking));
    }
    let bloom = leak.bloom();
    Ok(LeakScan {
        remembered: bloom.inserted(),
        filter_bytes: bloom.bytes(),
        false_positive_rate: bloom.false_positive_rate(),
        fields_tested,
        hits: Vec::new(),
        candidates: verdict.candidates,
        confirmed: verdict.confirmed,
        findings: verdict.findings,
    })
}

/// Says what the scan did.
fn log(leak: &LeakRun, tables: &[TableEntry], probed: &Probed, fields_tested: u64, verdict: &Verdict) {
    let bloom = leak.bloom();
    let files = tables.iter().map(|t| t.data_files().len()).sum::<usize>();
    let inline = probed.len();
    let spilled = probed.values().filter(|(_, spilled)| *spilled).count();
    tracing::info!(
        remembered = bloom.inserted(),
        fields_tested,
        candidates = verdict.candidates,
        confirmed = verdict.confirmed,
        "leak scan: {} original values and tokens remembered, {fields_tested} fields tested ({inline} file(s) probed as they were dumped, {spilled} of them through a temporary file; {} read back); {} candidate(s), {} confirmed; {} column(s) holding original values, {} of them blocking",
        bloom.inserted(),
        files.saturating_sub(inline),
        verdict.candidates,
        verdict.confirmed,
        verdict.findings.len(),
        verdict.blocking().count(),
    );
    for f in verdict.findings.iter().filter(|f| !f.evidence.blocks()) {
        tracing::info!("leak scan: not a leak ({:?}): {}", f.evidence, f.describe());
    }
}
