//! The leak scan watching rows as the mask stage writes them: it remembers
//! the originals of masked columns whose masker generates its output, and
//! probes what was written (fields passed through, and what a masker kept
//! of each original). A table without masked columns is read here alone,
//! row by row.

use std::sync::Arc;

use super::{Bloom, Queued, Slot, TableProbe};
use crate::copy_text::{self, Field, RowSplitter};
use crate::mask::rows::{RowError, RowObserver};

/// The leak scan's eyes on one stream of rows (a table or a chunk).
pub struct LeakObserver {
    bloom: Arc<Bloom>,
    /// By COPY position: whether originals of the column are remembered.
    remember: Vec<bool>,
    probe: Arc<TableProbe>,
    /// Slots of originals to remember, set in the filter once per batch.
    remembered: Vec<Slot>,
    /// Slots of the batch to look up.
    slots: Vec<Queued>,
    decoded: Vec<u8>,
    /// Fields probed since the last batch was looked up.
    tested: u64,
    /// For a table read here alone (nothing masked).
    rows: RowSplitter,
    row: u64,
}

impl LeakObserver {
    /// Remembers the originals of the columns `remember` marks in `bloom`,
    /// and probes the output with `probe`.
    pub fn new(bloom: Arc<Bloom>, remember: Vec<bool>, probe: Arc<TableProbe>) -> Self {
        LeakObserver {
            bloom,
            remember,
            probe,
            remembered: Vec::new(),
            slots: Vec::new(),
            decoded: Vec::new(),
            tested: 0,
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
        self.tested += u64::from(self.probe.queue(column, row, value, &mut self.slots));
    }

    fn original(&mut self, column: usize, text: &str) {
        if self.remember.get(column).copied().unwrap_or(false) {
            self.bloom.queue_remember(text, &mut self.remembered);
        }
    }

    /// A masker that keeps parts of its input is probed for what it kept
    /// of this original.
    fn masked(&mut self, column: usize, row: u64, output: &[u8], original: &[u8]) {
        self.tested += u64::from(self.probe.queue_kept(column, row, output, original, &mut self.slots));
    }

    /// Remembers the batch's originals and looks up its probes.
    fn end_batch(&mut self) {
        self.bloom.remember_batch(&mut self.remembered);
        self.probe.check(&mut self.slots);
        self.probe.count_tested(std::mem::take(&mut self.tested));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leak::Probe;
    use crate::mask::rows::{RowMasker, TableMask};

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
        let watcher = LeakObserver::new(Arc::clone(&bloom), Vec::new(), Arc::clone(&probe));
        let mut m = RowMasker::observed(TableMask { table: "public.t".into(), columns: Vec::new() }, watcher);
        let mut out = Vec::new();
        for chunk in input.chunks(7) {
            m.process(chunk, &mut out).unwrap();
        }
        m.finish().unwrap();
        assert_eq!(&out[..], &input[..], "rows pass through unchanged");
        // Row 1's text field holds two originals and counts once; the skipped
        // column is not tested; the phone in an integer-like field is found whole.
        assert_eq!(probe.tally(), (5, vec![1, 1, 0]));
        // Read here alone, without writing the rows out again: the same.
        let again = Arc::new(TableProbe::new(probes, Arc::clone(&bloom)));
        let mut rows = LeakObserver::new(Arc::clone(&bloom), Vec::new(), Arc::clone(&again));
        for chunk in input.chunks(5) {
            rows.observe_rows(chunk);
        }
        rows.finish("public.t").unwrap();
        assert_eq!(again.tally(), (5, vec![1, 1, 0]));
        rows.observe_rows(b"4\tcut");
        assert!(rows.finish("public.t").is_err(), "a stream that ends inside a row");
    }
}
