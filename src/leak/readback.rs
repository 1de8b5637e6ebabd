//! Reading a data file back, for the files whose probes did not fit the
//! budgets: every field probed as it would have been while dumping.

use std::sync::Arc;

use super::probe::Tally;
use super::{Bloom, LeakError, LeakObserver, Origins, Probe, TableProbe};
use crate::store::ObjectReader;

/// Reads one data file back and probes each field as `probes` says for its
/// column, on a blocking thread (so files are scanned in parallel), the way
/// rows are probed as they are dumped. Returns the fields tested and the
/// candidates per column.
pub async fn scan_file(
    reader: ObjectReader,
    codec: crate::encode::Codec,
    path: &str,
    table: String,
    probes: Vec<Probe>,
    bloom: Arc<Bloom>,
) -> Result<Tally, LeakError> {
    let mut chunks = crate::encode::decompress_stream(reader, codec, 4);
    let file = path.to_string();
    let task = tokio::task::spawn_blocking(move || {
        let probe = Arc::new(TableProbe::new(probes, Arc::clone(&bloom)));
        let mut rows = LeakObserver::new(bloom, Arc::new(Origins::new(Vec::new())), Vec::new(), Arc::clone(&probe));
        while let Some(chunk) = chunks.blocking_recv() {
            let chunk = chunk.map_err(|source| LeakError::Read { path: file.clone(), source })?;
            rows.observe_rows(&chunk);
        }
        rows.finish(&table)?;
        Ok(probe.tally())
    });
    task.await.map_err(|source| LeakError::Task { path: path.to_string(), source })?
}
