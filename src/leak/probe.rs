//! Probing rows as they are dumped: how each column is probed, and the
//! per-file tally of fields tested and hits.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::deferred::{Budgets, Deferred, Queued};
use super::Bloom;
use crate::mask::registry::{MaskerDef, Output};
use crate::mask::TypeClass;

/// How the fields of one column are probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Not probed: the output of a masker that makes values from scratch.
    Skip,
    /// The whole value only (`whole_keys`): types whose text has no
    /// words in it. Splitting a timestamp into tokens would cost four probes
    /// a field and report the dates free text mentions as leaks.
    Whole,
    /// Whole, token by token and phone-like digit runs (`keys`):
    /// text, JSON, arrays and every other type.
    Full,
}

impl Probe {
    /// The probe for a column of this type, masked (or not) by this masker.
    pub fn for_column(class: TypeClass, masker: Option<&MaskerDef>) -> Probe {
        use TypeClass as C;
        match (masker, class) {
            (Some(m), _) if m.output == Output::Generated => Probe::Skip,
            (
                _,
                C::Integer | C::Numeric | C::Float | C::Date | C::Timestamp | C::Uuid | C::Inet | C::Boolean | C::Point,
            ) => Probe::Whole,
            (_, C::Text | C::Json | C::Bytea | C::Hstore | C::Composite | C::Other) => Probe::Full,
        }
    }
}

/// Probing rows as they are dumped: the same test as reading the file
/// back, without reading it back. For a table that starts after the filter
/// is complete (every table with remembered columns is dumped), keys are
/// looked up at once; for one dumped while the filter still fills
/// ([`TableProbe::deferred`]), they are kept, within budgets shared by the
/// run, and looked up at the end ([`TableProbe::finish_deferred`]). A key
/// the filter passes is a candidate, confirmed or dismissed at the end.
pub struct TableProbe {
    probes: Vec<Probe>,
    bloom: Arc<Bloom>,
    /// Fields tested, per column.
    tested: Vec<AtomicU64>,
    found: Mutex<Found>,
    deferred: Option<Deferred>,
}

/// Distinct candidate keys kept per column; past this they are counted
/// only (the verdict extrapolates from those kept).
pub const MAX_CANDIDATES: usize = 100_000;

/// A key of a kept field that the filter passed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Candidate {
    /// Fields (rows) in which it was found.
    pub rows: u64,
    /// Found as a whole field (else inside one: a token, a phone number).
    pub whole: bool,
}

/// The candidates of one stream, per column.
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub columns: Vec<HashMap<u64, Candidate>>,
    /// Candidate fields past [`MAX_CANDIDATES`] distinct keys, per column.
    pub overflow: Vec<u64>,
}

impl Found {
    fn new(columns: usize) -> Self {
        Found { columns: vec![HashMap::new(); columns], overflow: vec![0; columns] }
    }

    /// Adds another stream's candidates of the same table.
    pub fn merge(&mut self, other: Found) {
        for (i, map) in other.columns.into_iter().enumerate() {
            if i >= self.columns.len() {
                self.columns.push(HashMap::new());
                self.overflow.push(0);
            }
            for (hash, c) in map {
                let mine = self.columns[i].entry(hash).or_default();
                mine.rows += c.rows;
                mine.whole |= c.whole;
            }
        }
        for (i, n) in other.overflow.into_iter().enumerate() {
            self.overflow[i] += n;
        }
    }
}

/// What one stream's probe found: fields tested and candidates per column.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub tested: Vec<u64>,
    pub found: Found,
}

impl TableProbe {
    pub fn new(probes: Vec<Probe>, bloom: Arc<Bloom>) -> Self {
        let tested = probes.iter().map(|_| AtomicU64::new(0)).collect();
        let found = Mutex::new(Found::new(probes.len()));
        TableProbe { probes, bloom, tested, found, deferred: None }
    }

    /// A probe whose lookups wait for [`TableProbe::finish_deferred`],
    /// keeping its keys within the run's `budgets`.
    pub fn deferred(probes: Vec<Probe>, bloom: Arc<Bloom>, budgets: Budgets) -> Self {
        let mut probe = TableProbe::new(probes, bloom);
        probe.deferred = Some(Deferred::new(budgets));
        probe
    }

    /// Looks up the kept keys, in memory and spilled, once the filter is
    /// complete. False when both budgets ran out or the temporary file
    /// failed (the file must then be read back).
    pub fn finish_deferred(&self) -> bool {
        match &self.deferred {
            None => true,
            Some(d) => d.finish(|batch| self.lookup(batch)),
        }
    }

    /// Whether some of the kept keys went to the temporary file.
    pub fn spilled(&self) -> bool {
        self.deferred.as_ref().is_some_and(Deferred::spilled)
    }

    /// How the field at COPY position `i` is probed.
    pub fn probe(&self, i: usize) -> Probe {
        self.probes.get(i).copied().unwrap_or(Probe::Skip)
    }

    /// Queues the keys of one field's value (COPY-decoded) into `batch`;
    /// `field` tells the fields of a column apart (the row number). Returns
    /// whether the field is tested; the caller counts them
    /// ([`TableProbe::count_tested`]), once per batch rather than per field.
    pub fn queue(&self, i: usize, field: u64, value: &[u8], batch: &mut Vec<Queued>) -> bool {
        let how = self.probe(i);
        if how == Probe::Skip {
            return false;
        }
        let column = i as u32;
        self.bloom.probes(value, how, |hash, whole| batch.push(Queued { column, whole, field, hash }));
        true
    }

    /// Queues the keys of a masker's output that carry something of the
    /// field's `original` ([`Bloom::kept_probes`]), as [`TableProbe::queue`] does.
    pub fn queue_kept(&self, i: usize, field: u64, output: &[u8], original: &[u8], batch: &mut Vec<Queued>) -> bool {
        let how = self.probe(i);
        if how == Probe::Skip {
            return false;
        }
        let column = i as u32;
        self.bloom.kept_probes(output, original, how, |hash, whole| batch.push(Queued { column, whole, field, hash }));
        true
    }

    /// Adds fields tested, per column.
    pub fn count_tested(&self, per_column: &mut [u64]) {
        for (counter, n) in self.tested.iter().zip(per_column.iter_mut()) {
            if *n > 0 {
                counter.fetch_add(std::mem::take(n), Ordering::Relaxed);
            }
        }
    }

    /// Looks up a batch of queued keys, keeping the candidates; a deferred
    /// probe keeps the keys instead, until the filter is complete.
    pub fn check(&self, batch: &mut Vec<Queued>) {
        match &self.deferred {
            None => self.lookup(batch),
            Some(d) => d.keep(batch),
        }
    }

    fn lookup(&self, batch: &mut Vec<Queued>) {
        let mut hits: Vec<Queued> = Vec::new();
        for q in batch.drain(..) {
            if self.bloom.contains(q.hash) {
                hits.push(q);
            }
        }
        if hits.is_empty() {
            return;
        }
        let Ok(mut found) = self.found.lock() else { return };
        let mut last = None;
        for q in hits {
            // A key found twice in one field counts once.
            if last == Some((q.column, q.field, q.hash)) {
                continue;
            }
            last = Some((q.column, q.field, q.hash));
            let column = q.column as usize;
            let Some(map) = found.columns.get_mut(column) else { continue };
            if map.len() >= MAX_CANDIDATES && !map.contains_key(&q.hash) {
                found.overflow[column] += 1;
                continue;
            }
            let c = map.entry(q.hash).or_default();
            c.rows += 1;
            c.whole |= q.whole;
        }
    }

    /// Fields tested and candidates per column so far.
    pub fn tally(&self) -> Tally {
        Tally {
            tested: self.tested.iter().map(|t| t.load(Ordering::Relaxed)).collect(),
            found: self.found.lock().map(|f| f.clone()).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deferred_probes_past_memory_go_to_disk_and_find_the_same() {
        let bloom = Arc::new(Bloom::new(1 << 16));
        let probe = |memory: usize, disk: u64| {
            let budget = Budgets::new(memory * crate::leak::SLOT_BYTES, disk);
            let inline = TableProbe::deferred(vec![Probe::Whole, Probe::Full], Arc::clone(&bloom), budget);
            let mut batch = Vec::new();
            for row in 0..1000u64 {
                let text = if row % 10 == 0 { "mail alice@example.com".to_string() } else { format!("nothing {row}") };
                inline.queue(0, row, row.to_string().as_bytes(), &mut batch);
                inline.queue(1, row, text.as_bytes(), &mut batch);
                if row % 100 == 99 {
                    inline.check(&mut batch);
                }
            }
            // The filter is complete only now, as when other tables remember originals.
            bloom.remember("alice@example.com");
            inline.count_tested(&mut [1000, 1000]);
            let (spilled, finished) = (inline.spilled(), inline.finish_deferred());
            let tally = inline.tally();
            let rows: Vec<u64> = tally.found.columns.iter().map(|m| m.values().map(|c| c.rows).sum()).collect();
            (spilled, finished, (tally.tested, rows))
        };
        let found = (vec![1000, 1000], vec![0, 100]);
        assert_eq!(probe(1 << 20, 0), (false, true, found.clone()));
        assert_eq!(probe(0, 1 << 20), (true, true, found.clone()), "all through the temporary file");
        assert_eq!(probe(150, 1 << 20), (true, true, found), "part in memory, part on disk");
        assert!(!probe(0, 1000).1, "past both budgets the file must be read back");
    }

    /// The rate the manifest records bounds what the filter does: random
    /// values never remembered, probed through the deferred path (kept in
    /// memory, then in the temporary file) and at once, pass the filter no
    /// more often than it says. And none of them is ever confirmed.
    #[test]
    fn the_recorded_false_positive_rate_is_an_upper_bound() {
        for (n, spill) in [(20_000u64, false), (60_000, true), (150_000, true)] {
            let bloom = Arc::new(Bloom::new(64 << 10));
            let origins = crate::leak::Origins::new(vec!["t.c".into()]);
            let mut batch = Vec::new();
            for i in 0..n {
                bloom.queue_remember(&format!("remembered value {i}"), 0, &mut batch);
            }
            bloom.remember_batch(&mut batch);
            origins.write(&batch);
            let bound = bloom.false_positive_rate();
            let m = 200_000u64;
            let budgets = Budgets::new(if spill { 1000 * crate::leak::SLOT_BYTES } else { 1 << 30 }, 1 << 30);
            let deferred = TableProbe::deferred(vec![Probe::Whole], Arc::clone(&bloom), budgets);
            let at_once = TableProbe::new(vec![Probe::Whole], Arc::clone(&bloom));
            let mut queued = Vec::new();
            for probe in [&deferred, &at_once] {
                for i in 0..m {
                    probe.queue(0, i, format!("probed value {i} of {n}").as_bytes(), &mut queued);
                    if queued.len() >= 4096 {
                        probe.check(&mut queued);
                    }
                }
                probe.check(&mut queued);
            }
            assert_eq!(deferred.spilled(), spill);
            assert!(deferred.finish_deferred());
            for probe in [&deferred, &at_once] {
                let found = probe.tally().found;
                let passed: u64 = found.columns[0].values().map(|c| c.rows).sum::<u64>() + found.overflow[0];
                let observed = passed as f64 / m as f64;
                let slack = 4.0 * (bound / m as f64).sqrt() + 1.0 / m as f64;
                assert!(observed <= bound + slack, "n {n}: {observed} passed, the bound says {bound}");
                let keys = found.columns[0].keys().copied().collect();
                assert!(origins.confirm(&keys).unwrap().is_empty(), "a value never remembered was confirmed");
            }
        }
    }

    #[test]
    fn typed_fields_are_probed_whole() {
        use crate::mask::TypeClass;
        let b = Bloom::new(1 << 16);
        b.remember("Order 1234567 for +44 20 7946 0958, ref 123456789");
        b.remember("1985-04-12");
        assert!(b.probe_whole("1985-04-12"), "a whole text original kept in a date column");
        assert!(b.probe_whole("442079460958"), "a phone's digits kept in a bigint column");
        assert!(b.probe_whole("123456789"), "a long number from inside a text");
        assert!(!b.probe_whole("1234567"), "shorter numbers are tested only in text columns");
        assert!(b.probe("1234567"));
        assert!(!b.probe_whole("2024-01-01 00:00:00+00"));
        let def = |name| crate::mask::registry::find(name);
        assert_eq!(Probe::for_column(TypeClass::Timestamp, None), Probe::Whole);
        assert_eq!(Probe::for_column(TypeClass::Text, def("pii_scrub")), Probe::Full);
        assert_eq!(Probe::for_column(TypeClass::Text, def("email")), Probe::Skip);
        assert_eq!(Probe::for_column(TypeClass::Other, None), Probe::Full);
    }
}

#[cfg(test)]
mod registry_claims {
    //! The leak scan trusts the registry: it does not probe the output of a
    //! masker whose entry says it generates from scratch. A masker that
    //! claims so but passes parts of its input through would open a hole,
    //! so every such claim is tried here against the scan itself.
    use super::*;
    use crate::mask::registry::{self, BuildCx};
    use crate::mask::{ColumnInfo, MaskKey};

    #[derive(serde::Deserialize)]
    struct Case {
        masker: String,
        options: serde_json::Map<String, serde_json::Value>,
        #[serde(rename = "type")]
        type_name: String,
        input: String,
    }

    /// Inputs full of what the scan remembers: emails, long digit runs,
    /// phone numbers, words.
    fn text_inputs() -> Vec<String> {
        (0..300u64)
            .map(|i| match i % 4 {
                0 => format!("person.{i}@mail{i}.example"),
                1 => format!("+44 20 7946 {:04}", i * 7 % 10_000),
                2 => format!("ref {} for account {:08}", i * 31, i * 104_729),
                _ => format!("Quentin{i} Xylophone-{i} 0{:09}", i * 7919),
            })
            .collect()
    }

    #[test]
    fn maskers_that_claim_to_generate_never_pass_an_original_through() {
        let key = MaskKey::from_material(b"registry-claims-key-0123456789").expect("key");
        let cases: Vec<Case> =
            serde_yaml::from_str(include_str!("../../tests/fixtures/golden/cases.yaml")).expect("golden cases");
        let mut tried = 0;
        for case in &cases {
            let def = registry::find(&case.masker).expect("masker");
            if def.output != Output::Generated {
                continue;
            }
            let column = ColumnInfo::from_type(&case.type_name, false, false);
            // Only the originals of text and JSON columns are remembered, so
            // only there could a skipped probe miss one.
            if !matches!(column.class, TypeClass::Text | TypeClass::Json) {
                continue;
            }
            let spec = registry::spec_string(&case.masker, &case.options);
            let cx = BuildCx { key: &key, column: &column, purpose: format!("d/{spec}"), domain: "d".into() };
            let masker = def.build(&case.options, &cx).expect("builds");
            let seeder = key.seeder("d", &spec);
            let mut inputs = vec![case.input.clone()];
            if column.class == TypeClass::Text {
                inputs.extend(text_inputs());
            }
            for input in inputs {
                let Ok(Some(output)) = masker.mask(&input, &seeder) else { continue };
                let bloom = Bloom::new(1 << 16);
                bloom.remember(&input);
                let mut hit = false;
                bloom.probes(output.as_bytes(), Probe::Full, |hash, _| hit |= bloom.contains(hash));
                assert!(
                    !hit,
                    "masker {} claims to generate, but its output for {input:?} carries the input: {output:?}",
                    def.name
                );
                tried += 1;
            }
        }
        assert!(tried > 1000, "{tried}");
    }
}
