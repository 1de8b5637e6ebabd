//! Probing rows as they are dumped: how each column is probed, and the
//! per-file tally of fields tested and hits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
            (_, C::Integer | C::Numeric | C::Float | C::Date | C::Timestamp | C::Uuid | C::Inet | C::Boolean) => {
                Probe::Whole
            }
            (_, C::Text | C::Json | C::Bytea | C::Other) => Probe::Full,
        }
    }
}

/// Probing rows as they are dumped: the same test as reading the file
/// back, without reading it back. For a table that starts after the filter
/// is complete (every table with remembered columns is dumped), slots are
/// looked up at once; for one dumped while the filter still fills
/// ([`TableProbe::deferred`]), they are kept, within a memory budget shared by
/// the run, and looked up at the end ([`TableProbe::finish_deferred`]).
pub struct TableProbe {
    probes: Vec<Probe>,
    bloom: Arc<Bloom>,
    tested: AtomicU64,
    hits: Vec<AtomicU64>,
    deferred: Option<Deferred>,
}

impl TableProbe {
    pub fn new(probes: Vec<Probe>, bloom: Arc<Bloom>) -> Self {
        let hits = probes.iter().map(|_| AtomicU64::new(0)).collect();
        TableProbe { probes, bloom, tested: AtomicU64::new(0), hits, deferred: None }
    }

    /// A probe whose lookups wait for [`TableProbe::finish_deferred`],
    /// keeping its slots within the run's `budgets`.
    pub fn deferred(probes: Vec<Probe>, bloom: Arc<Bloom>, budgets: Budgets) -> Self {
        let mut probe = TableProbe::new(probes, bloom);
        probe.deferred = Some(Deferred::new(budgets));
        probe
    }

    /// Looks up the kept slots, in memory and spilled, once the filter is
    /// complete. False when both budgets ran out or the temporary file
    /// failed (the file must then be read back).
    pub fn finish_deferred(&self) -> bool {
        match &self.deferred {
            None => true,
            Some(d) => d.finish(|batch| self.lookup(batch)),
        }
    }

    /// Whether some of the kept slots went to the temporary file.
    pub fn spilled(&self) -> bool {
        self.deferred.as_ref().is_some_and(Deferred::spilled)
    }

    /// How the field at COPY position `i` is probed.
    pub fn probe(&self, i: usize) -> Probe {
        self.probes.get(i).copied().unwrap_or(Probe::Skip)
    }

    /// Queues the slots of one field's value (COPY-decoded) into `batch`;
    /// `field` tells the fields of a column apart (the row number). Returns
    /// whether the field is tested; the caller counts them
    /// ([`TableProbe::count_tested`]), once per batch rather than per field.
    pub fn queue(&self, i: usize, field: u64, value: &[u8], batch: &mut Vec<Queued>) -> bool {
        let how = self.probe(i);
        if how == Probe::Skip {
            return false;
        }
        self.bloom.slots(value, how, |slot| batch.push((i, field, slot)));
        true
    }

    /// Queues the slots of a masker's output that carry something of the
    /// field's `original` ([`Bloom::kept_slots`]), as [`TableProbe::queue`] does.
    pub fn queue_kept(&self, i: usize, field: u64, output: &[u8], original: &[u8], batch: &mut Vec<Queued>) -> bool {
        let how = self.probe(i);
        if how == Probe::Skip {
            return false;
        }
        self.bloom.kept_slots(output, original, how, |slot| batch.push((i, field, slot)));
        true
    }

    /// Adds fields tested.
    pub fn count_tested(&self, n: u64) {
        self.tested.fetch_add(n, Ordering::Relaxed);
    }

    /// Looks up a batch of queued slots, counting each field with a hit
    /// once; a deferred probe keeps them instead.
    pub fn check(&self, batch: &mut Vec<Queued>) {
        match &self.deferred {
            None => self.lookup(batch),
            Some(d) => d.keep(batch),
        }
    }

    fn lookup(&self, batch: &mut Vec<Queued>) {
        let mut last_hit = None;
        for (column, field, slot) in batch.drain(..) {
            if last_hit != Some((column, field)) && self.bloom.contains(slot) {
                if let Some(h) = self.hits.get(column) {
                    h.fetch_add(1, Ordering::Relaxed);
                }
                last_hit = Some((column, field));
            }
        }
    }

    /// Fields tested and hits per column so far.
    pub fn tally(&self) -> (u64, Vec<u64>) {
        (self.tested.load(Ordering::Relaxed), self.hits.iter().map(|h| h.load(Ordering::Relaxed)).collect())
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
            inline.count_tested(2000);
            (inline.spilled(), inline.finish_deferred(), inline.tally())
        };
        assert_eq!(probe(1 << 20, 0), (false, true, (2000, vec![0, 100])));
        assert_eq!(probe(0, 1 << 20), (true, true, (2000, vec![0, 100])), "all through the temporary file");
        assert_eq!(probe(150, 1 << 20), (true, true, (2000, vec![0, 100])), "part in memory, part on disk");
        assert!(!probe(0, 1000).1, "past both budgets the file must be read back");
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
                bloom.slots(output.as_bytes(), Probe::Full, |slot| hit |= bloom.contains(slot));
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
