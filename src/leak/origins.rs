//! Where remembered keys came from: every distinct key the filter learns
//! is written, with the masked column it came from and its shape, to an
//! unnamed temporary file (13 bytes a key, no value). At the end the
//! filter's candidates are confirmed against it exactly (the same 64-bit
//! keyed hash), and each confirmed match is attributed to its source
//! column, so that acknowledgements can name columns. Per source column, a
//! HyperLogLog sketch counts the distinct whole values: a column whose
//! values repeat (cities, states) identifies nobody by one of them.

use std::collections::{HashMap, HashSet};
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

use super::bloom::Key;
use super::keys::Shape;

/// Bytes of one record: hash, source, shape.
const RECORD: usize = 8 + 4 + 1;
/// HyperLogLog registers per source column (2^11: about 2.3% error).
const HLL_BITS: u32 = 11;

/// One masked column whose originals are remembered.
pub struct Source {
    pub name: String,
    /// Whole values remembered, repeats included.
    values: AtomicU64,
    registers: Vec<AtomicU8>,
}

impl Source {
    fn new(name: String) -> Self {
        let registers = (0..1usize << HLL_BITS).map(|_| AtomicU8::new(0)).collect();
        Source { name, values: AtomicU64::new(0), registers }
    }

    /// Counts one whole value (its key's hash).
    pub fn add_value(&self, hash: u64) {
        self.values.fetch_add(1, Ordering::Relaxed);
        let index = (hash >> (64 - HLL_BITS)) as usize;
        let rest = (hash << HLL_BITS) | (1 << (HLL_BITS - 1));
        let rank = rest.leading_zeros() as u8 + 1;
        if let Some(r) = self.registers.get(index) {
            r.fetch_max(rank, Ordering::Relaxed);
        }
    }

    /// Estimated distinct whole values over whole values: near 1 for emails
    /// and full names, near 0 for cities.
    pub fn distinct_ratio(&self) -> f64 {
        let values = self.values.load(Ordering::Relaxed);
        if values == 0 {
            return 0.0;
        }
        let m = self.registers.len() as f64;
        let (mut sum, mut zeros) = (0.0, 0u32);
        for r in &self.registers {
            let v = r.load(Ordering::Relaxed);
            sum += 2f64.powi(-i32::from(v));
            zeros += u32::from(v == 0);
        }
        let raw = 0.7213 / (1.0 + 1.079 / m) * m * m / sum;
        let estimate = if raw <= 2.5 * m && zeros > 0 { m * (m / f64::from(zeros)).ln() } else { raw };
        (estimate / values as f64).min(1.0)
    }
}

/// The confirmation store of one run.
pub struct Origins {
    sources: Vec<Source>,
    file: Mutex<Option<BufWriter<std::fs::File>>>,
    failed: AtomicBool,
    records: AtomicU64,
}

/// Where a confirmed key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub source: u32,
    pub shape: Shape,
}

impl Origins {
    /// A store for originals of these source columns (`schema.table.column`).
    pub fn new(sources: Vec<String>) -> Self {
        Origins {
            sources: sources.into_iter().map(Source::new).collect(),
            file: Mutex::new(None),
            failed: AtomicBool::new(false),
            records: AtomicU64::new(0),
        }
    }

    /// The source column with this id.
    pub fn source(&self, id: u32) -> Option<&Source> {
        self.sources.get(id as usize)
    }

    /// Distinct keys recorded.
    pub fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    /// Whether the temporary file failed: candidates can then not be
    /// confirmed, and count as they are (fail closed).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Records keys the filter did not hold before, from source `source`.
    pub fn write(&self, batch: &[(u32, Key)]) {
        if batch.is_empty() || self.failed() {
            return;
        }
        let mut bytes = Vec::with_capacity(batch.len() * RECORD);
        for (source, key) in batch {
            bytes.extend_from_slice(&key.hash.to_le_bytes());
            bytes.extend_from_slice(&source.to_le_bytes());
            bytes.push(key.shape as u8);
        }
        let written = self.file.lock().ok().is_some_and(|mut file| {
            if file.is_none() {
                *file = tempfile::tempfile().ok().map(|f| BufWriter::with_capacity(64 * 1024, f));
            }
            file.as_mut().is_some_and(|f| f.write_all(&bytes).is_ok())
        });
        if written {
            self.records.fetch_add(batch.len() as u64, Ordering::Relaxed);
        } else {
            self.failed.store(true, Ordering::Relaxed);
        }
    }

    /// The origins of each candidate hash that was remembered; a candidate
    /// absent from the result was a false positive of the filter. Reads the
    /// file once, holding only the candidates in memory.
    pub fn confirm(&self, candidates: &HashSet<u64>) -> std::io::Result<HashMap<u64, Vec<Origin>>> {
        let mut found: HashMap<u64, Vec<Origin>> = HashMap::new();
        let file = match self.file.lock() {
            Ok(mut f) => f.take(),
            Err(_) => return Err(std::io::Error::other("the confirmation store is unusable")),
        };
        let Some(writer) = file else { return Ok(found) };
        let mut file = writer.into_inner().map_err(|e| e.into_error())?;
        file.seek(std::io::SeekFrom::Start(0))?;
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        let mut record = [0u8; RECORD];
        loop {
            match reader.read_exact(&mut record) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e),
            }
            let mut hash = [0u8; 8];
            hash.copy_from_slice(&record[..8]);
            let hash = u64::from_le_bytes(hash);
            if !candidates.contains(&hash) {
                continue;
            }
            let mut source = [0u8; 4];
            source.copy_from_slice(&record[8..12]);
            let shape = match record[12] {
                0 => Shape::Identifying,
                1 => Shape::Phrase,
                _ => Shape::Word,
            };
            found.entry(hash).or_default().push(Origin { source: u32::from_le_bytes(source), shape });
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_ratios_tell_emails_from_cities() {
        let origins = Origins::new(vec!["emails".into(), "cities".into()]);
        let hash = |s: &str| {
            use std::hash::{BuildHasher, Hasher};
            let mut h = foldhash::quality::FixedState::with_seed(7).build_hasher();
            h.write(s.as_bytes());
            h.finish()
        };
        for i in 0..20_000 {
            origins.sources[0].add_value(hash(&format!("user{i}@mail.example")));
            origins.sources[1].add_value(hash(["Dublin", "Paris", "Oslo", "Lima"][i % 4]));
        }
        let emails = origins.sources[0].distinct_ratio();
        let cities = origins.sources[1].distinct_ratio();
        assert!(emails > 0.9, "{emails}");
        assert!(cities < 0.01, "{cities}");
    }

    #[test]
    fn candidates_are_confirmed_with_their_origin() {
        let origins = Origins::new(vec!["a".into(), "b".into()]);
        origins.write(&[
            (0, Key { hash: 1, shape: Shape::Identifying }),
            (1, Key { hash: 2, shape: Shape::Word }),
            (1, Key { hash: 1, shape: Shape::Phrase }),
        ]);
        let found = origins.confirm(&[1, 3].into_iter().collect()).unwrap();
        assert_eq!(
            found[&1],
            vec![Origin { source: 0, shape: Shape::Identifying }, Origin { source: 1, shape: Shape::Phrase }]
        );
        assert!(!found.contains_key(&3), "a false positive of the filter is not confirmed");
        assert_eq!(origins.records(), 3);
    }
}
