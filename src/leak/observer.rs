//! The leak scan watching rows as the mask stage writes them: it remembers
//! the originals of masked columns whose masker generates its output, and
//! probes what was written (fields passed through, and what a masker kept
//! of each original). A table without masked columns is read here alone,
//! row by row.

use std::sync::Arc;

use super::bloom::Key;
use super::{Bloom, Origins, Queued, TableProbe};
use crate::copy_text::{self, Field, RowSplitter};
use crate::mask::rows::{RowError, RowObserver};

/// The leak scan's eyes on one stream of rows (a table or a chunk).
pub struct LeakObserver {
    bloom: Arc<Bloom>,
    origins: Arc<Origins>,
    /// By COPY position: the source id of a column whose originals are
    /// remembered.
    remember: Vec<Option<u32>>,
    probe: Arc<TableProbe>,
    /// Keys of originals to remember, set in the filter once per batch.
    remembered: Vec<(u32, Key)>,
    /// Keys of the batch to look up.
    queued: Vec<Queued>,
    decoded: Vec<u8>,
    /// Fields probed since the last batch was looked up, per column.
    tested: Vec<u64>,
    /// For a table read here alone (nothing masked).
    rows: RowSplitter,
    row: u64,
}

impl LeakObserver {
    /// Remembers the originals of the columns `remember` gives a source id,
    /// in `bloom` and `origins`, and probes the output with `probe`.
    pub fn new(bloom: Arc<Bloom>, origins: Arc<Origins>, remember: Vec<Option<u32>>, probe: Arc<TableProbe>) -> Self {
        LeakObserver {
            bloom,
            origins,
            remember,
            probe,
            remembered: Vec::new(),
            queued: Vec::new(),
            decoded: Vec::new(),
            tested: Vec::new(),
            rows: RowSplitter::default(),
            row: 0,
        }
    }

    /// The probe's tally.
    pub fn probe(&self) -> &Arc<TableProbe> {
        &self.probe
    }

    /// Probes every complete row of `input`, for a table whose rows pass
    /// through unmasked.
    pub fn observe_rows(&mut self, input: &[u8]) {
        let mut rows = std::mem::take(&mut self.rows);
        let _ = rows.split(input, |row| {
            self.row += 1;
            for (i, field) in copy_text::fields(row).enumerate() {
                if let Field::Value(v) = field {
                    self.passed(i, self.row, v);
                }
            }
            Ok::<(), std::convert::Infallible>(())
        });
        self.rows = rows;
        self.end_batch();
    }

    /// Ends a stream read with [`LeakObserver::observe_rows`]: a last row
    /// without its newline is an error.
    pub fn finish(&self, table: &str) -> Result<(), RowError> {
        match self.rows.in_row() {
            false => Ok(()),
            true => Err(RowError::truncated(table, self.row)),
        }
    }

    fn count(&mut self, column: usize, tested: bool) {
        if tested {
            if self.tested.len() <= column {
                self.tested.resize(column + 1, 0);
            }
            self.tested[column] += 1;
        }
    }
}

impl RowObserver for LeakObserver {
    /// Probes a field that passes through as it came (COPY-escaped), when
    /// the scan tests its column.
    fn passed(&mut self, column: usize, row: u64, escaped: &[u8]) {
        if self.probe.probe(column) == super::Probe::Skip {
            return;
        }
        let value = if memchr::memchr(b'\\', escaped).is_some() {
            self.decoded.clear();
            copy_text::decode_into(escaped, &mut self.decoded);
            &self.decoded[..]
        } else {
            escaped
        };
        let tested = self.probe.queue(column, row, value, &mut self.queued);
        self.count(column, tested);
    }

    fn original(&mut self, column: usize, text: &str) {
        let Some(source) = self.remember.get(column).copied().flatten() else { return };
        let whole = self.bloom.queue_remember(text, source, &mut self.remembered);
        if let (Some(hash), Some(s)) = (whole, self.origins.source(source)) {
            s.add_value(hash);
        }
    }

    /// A masker that keeps parts of its input is probed for what it kept
    /// of this original.
    fn masked(&mut self, column: usize, row: u64, output: &[u8], original: &[u8]) {
        let tested = self.probe.queue_kept(column, row, output, original, &mut self.queued);
        self.count(column, tested);
    }

    /// Remembers the batch's originals (and records the new ones for
    /// confirmation), and looks up its probes.
    fn end_batch(&mut self) {
        if !self.remembered.is_empty() {
            self.bloom.remember_batch(&mut self.remembered);
            self.origins.write(&self.remembered);
            self.remembered.clear();
        }
        self.probe.check(&mut self.queued);
        self.probe.count_tested(&mut self.tested);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leak::Probe;
    use crate::mask::rows::{RowMasker, TableMask};

    /// Fields tested per column, and fields that held a candidate.
    fn fields_with_hits(probe: &TableProbe) -> (Vec<u64>, Vec<u64>) {
        let tally = probe.tally();
        let hits = tally.found.columns.iter().map(|m| m.values().map(|c| c.rows).max().unwrap_or(0)).collect();
        (tally.tested, hits)
    }

    #[test]
    fn the_probe_counts_fields_holding_an_original_whether_rows_are_masked_or_not() {
        let bloom = Arc::new(Bloom::new(1 << 16));
        bloom.remember("alice@example.com");
        bloom.remember("Call 0207 946 0958");
        let probes = vec![Probe::Whole, Probe::Full, Probe::Skip];
        let input =
            b"1\tto alice@example.com\\tor 020 7946 0958\talice@example.com\n2\t\\N\tx\n02079460958\tnothing\tz\n";
        // Through the mask stage (nothing to mask here), watched.
        let probe = Arc::new(TableProbe::new(probes.clone(), Arc::clone(&bloom)));
        let origins = Arc::new(Origins::new(Vec::new()));
        let watcher = LeakObserver::new(Arc::clone(&bloom), Arc::clone(&origins), Vec::new(), Arc::clone(&probe));
        let mut m = RowMasker::observed(TableMask { table: "public.t".into(), columns: Vec::new() }, watcher);
        let mut out = Vec::new();
        for chunk in input.chunks(7) {
            m.process(chunk, &mut out).unwrap();
        }
        m.finish().unwrap();
        assert_eq!(&out[..], &input[..], "rows pass through unchanged");
        // Row 1's text field holds two originals and counts once; the skipped
        // column is not tested; the phone in an integer-like field is found whole.
        assert_eq!(fields_with_hits(&probe), (vec![3, 2, 0], vec![1, 1, 0]));
        // Read here alone, without writing the rows out again: the same.
        let again = Arc::new(TableProbe::new(probes, Arc::clone(&bloom)));
        let mut rows = LeakObserver::new(Arc::clone(&bloom), origins, Vec::new(), Arc::clone(&again));
        for chunk in input.chunks(5) {
            rows.observe_rows(chunk);
        }
        rows.finish("public.t").unwrap();
        assert_eq!(fields_with_hits(&again), (vec![3, 2, 0], vec![1, 1, 0]));
        rows.observe_rows(b"4\tcut");
        assert!(rows.finish("public.t").is_err(), "a stream that ends inside a row");
    }
}
