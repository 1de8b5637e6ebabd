//! The leak scan: proof, per snapshot, that no original value of a masked
//! column reached it.
//!
//! While rows are masked, the original values of masked text columns (whole,
//! and their word-like tokens) are remembered as keyed hashes in a Bloom
//! filter of fixed size: memory stays bounded whatever the data, and the
//! filter holds no value in the clear. Before publishing, every data file is
//! read back and every field that could carry an original (kept and unruled
//! columns, and the output of maskers that pass parts of their input
//! through: json, pii_scrub, partial, regex_replace, template) is tested,
//! whole and token by token. Any hit blocks publishing; the report names
//! table, column and count, never the value.
//!
//! What it cannot see: originals shorter than 4 characters (or purely
//! numeric ones shorter than 8), values of non-text masked columns, and
//! copies that were transformed (re-formatted phone numbers, case changes).

use std::hash::Hasher;
use std::sync::atomic::{AtomicU64, Ordering};

/// Default filter size.
pub const DEFAULT_BYTES: usize = 32 * 1024 * 1024;
const HASHES: u32 = 7;

/// A Bloom filter of keyed hashes, shared by the masking threads.
pub struct Bloom {
    bits: Vec<AtomicU64>,
    m: u64,
    keys: (u64, u64),
    inserted: AtomicU64,
}

impl Bloom {
    /// A filter of about `bytes` bytes with a random hashing key for this run.
    pub fn new(bytes: usize) -> Self {
        // Whole 512-bit blocks.
        let words = (bytes / 64).max(16) * 8;
        let mut bits = Vec::with_capacity(words);
        bits.resize_with(words, || AtomicU64::new(0));
        let keys = (rand::random(), rand::random());
        Bloom { bits, m: words as u64 * 64, keys, inserted: AtomicU64::new(0) }
    }

    fn hashes(&self, v: &[u8]) -> (u64, u64) {
        let mut a = siphasher::sip::SipHasher24::new_with_keys(self.keys.0, self.keys.1);
        a.write(v);
        let h1 = a.finish();
        let mut b = siphasher::sip::SipHasher24::new_with_keys(self.keys.1, self.keys.0 ^ 0x9e37_79b9_7f4a_7c15);
        b.write(v);
        (h1, b.finish() | 1)
    }

    /// The bits of a value, all inside one 512-bit block (one cache line):
    /// a blocked Bloom filter, one memory miss per probe instead of seven.
    fn positions(&self, v: &[u8]) -> impl Iterator<Item = (usize, u64)> {
        let (h1, h2) = self.hashes(v);
        let blocks = (self.m / 512).max(1);
        let base = (h1 % blocks) as usize * 8;
        (0..HASHES).map(move |i| {
            let bit = (h2 >> (9 * i)) & 511;
            (base + (bit / 64) as usize, 1u64 << (bit % 64))
        })
    }

    fn insert_raw(&self, v: &[u8]) {
        for (word, mask) in self.positions(v) {
            self.bits[word].fetch_or(mask, Ordering::Relaxed);
        }
        self.inserted.fetch_add(1, Ordering::Relaxed);
    }

    fn contains_raw(&self, v: &[u8]) -> bool {
        self.positions(v).all(|(word, mask)| self.bits[word].load(Ordering::Relaxed) & mask != 0)
    }

    /// Remembers an original value: whole, its identifying tokens (emails,
    /// long numbers) and the digits of phone-like numbers in it.
    pub fn remember(&self, value: &str) {
        if worth(value) {
            self.insert_raw(value.as_bytes());
        }
        for t in tokens(value) {
            if t.len() != value.len() && identifying(t) {
                self.insert_raw(t.as_bytes());
            }
        }
        for d in digit_runs(value) {
            self.insert_raw(d.as_bytes());
        }
    }

    /// Whether an output value, one of its identifying tokens, or the digits
    /// of a phone-like number in it, is a remembered original.
    pub fn probe(&self, value: &str) -> bool {
        (worth(value) && self.contains_raw(value.as_bytes()))
            || tokens(value).any(|t| identifying(t) && self.contains_raw(t.as_bytes()))
            || digit_runs(value).any(|d| self.contains_raw(d.as_bytes()))
    }

    /// Entries remembered.
    pub fn inserted(&self) -> u64 {
        self.inserted.load(Ordering::Relaxed)
    }

    /// Size in bytes.
    pub fn bytes(&self) -> u64 {
        self.m / 8
    }

    /// The chance that one probe of a value never remembered reports a hit,
    /// estimated as for a plain Bloom filter, (1 - e^(-k n / m))^k; blocking
    /// raises it slightly.
    pub fn false_positive_rate(&self) -> f64 {
        let n = self.inserted() as f64;
        let k = f64::from(HASHES);
        (1.0 - (-k * n / self.m as f64).exp()).powf(k)
    }
}

/// Values too short or too generic to identify anyone are not remembered.
fn worth(v: &str) -> bool {
    let len = v.chars().count();
    if len < 4 {
        return false;
    }
    let numeric = v.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | ' ' | ',' | ':'));
    !numeric || len >= 8
}

/// Tokens that identify on their own: an email address, or a run of six or
/// more digits. Ordinary words are not remembered: text that a masker keeps
/// on purpose (around the spans pii_scrub replaces, product names) would
/// otherwise look like a leak.
fn identifying(t: &str) -> bool {
    (t.contains('@') && t.contains('.') && t.len() >= 6) || t.chars().filter(|c| c.is_ascii_digit()).count() >= 6
}

/// The digits of phone-like spans (digits with spaces, dots, dashes,
/// brackets, a leading +), when there are at least eight: `#` + digits.
fn digit_runs(s: &str) -> impl Iterator<Item = String> + '_ {
    // Most fields have too few digits to hold a phone number: skip the regex.
    let enough = s.bytes().filter(u8::is_ascii_digit).count() >= 8;
    static RE: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| regex::Regex::new(r"[+(]?[0-9][0-9 ().\-]{6,}[0-9]").ok());
    re.iter().filter(move |_| enough).flat_map(move |re| re.find_iter(s)).filter_map(|m| {
        let digits: String = m.as_str().chars().filter(|c| c.is_ascii_digit()).collect();
        (digits.len() >= 8).then(|| format!("#{digits}"))
    })
}

/// Word-like tokens: split on white space and punctuation that never belongs
/// to an email, a phone number or an identifier.
pub fn tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                ',' | ';'
                    | '('
                    | ')'
                    | '<'
                    | '>'
                    | '"'
                    | '\''
                    | '['
                    | ']'
                    | '{'
                    | '}'
                    | '|'
                    | '\\'
                    | '/'
                    | '!'
                    | '?'
                    | '='
            )
    })
    .map(|t| t.trim_matches(|c: char| matches!(c, '.' | ':' | '-')))
    .filter(|t| !t.is_empty())
}

/// Maskers whose output is made from scratch: it cannot carry the original
/// (a coincidence with a list word is not a leak), so their fields are not probed.
pub fn generative(masker: &str) -> bool {
    !matches!(masker, "json" | "pii_scrub" | "partial" | "regex_replace" | "template")
}

/// The leak scan's result, for the manifest.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LeakScan {
    /// Original values and tokens remembered.
    pub remembered: u64,
    pub filter_bytes: u64,
    /// Per probe, for the number remembered.
    pub false_positive_rate: f64,
    pub fields_tested: u64,
    /// (table.column, hits); empty when the scan passed.
    pub hits: Vec<(String, u64)>,
}

/// Reads one data file back and probes the fields marked in `probe`, on a
/// blocking thread (so files are scanned in parallel). Returns the number of
/// fields tested and the hits per column.
pub async fn scan_file(
    reader: crate::store::ObjectReader,
    probe: Vec<bool>,
    bloom: std::sync::Arc<Bloom>,
) -> Result<(u64, Vec<u64>), String> {
    let mut chunks = crate::encode::decompress_stream(reader, 4);
    let task = tokio::task::spawn_blocking(move || {
        let mut hits = vec![0u64; probe.len()];
        let mut carry: Vec<u8> = Vec::new();
        let mut tested = 0u64;
        let mut decoded = Vec::new();
        while let Some(chunk) = chunks.blocking_recv() {
            let chunk = chunk.map_err(|e| e.to_string())?;
            carry.extend_from_slice(&chunk);
            let mut start = 0;
            while let Some(nl) = carry[start..].iter().position(|&b| b == b'\n') {
                for (i, field) in crate::copy_text::fields(&carry[start..start + nl]).enumerate() {
                    if let (Some(true), crate::copy_text::Field::Value(v)) = (probe.get(i), field) {
                        decoded.clear();
                        crate::copy_text::decode_into(v, &mut decoded);
                        tested += 1;
                        if bloom.probe(&String::from_utf8_lossy(&decoded)) {
                            hits[i] += 1;
                        }
                    }
                }
                start += nl + 1;
            }
            carry.drain(..start);
        }
        Ok((tested, hits))
    });
    task.await.map_err(|e| e.to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_values_and_tokens_not_noise() {
        let b = Bloom::new(1 << 16);
        b.remember("alice@example.com");
        b.remember("Call +44 20 7946 0958 or write to bob.smith@corp.example today");
        b.remember("42");
        assert!(b.probe("alice@example.com"));
        assert!(b.probe("ring +44-20-7946-0958"), "the same phone digits, formatted otherwise");
        assert!(!b.probe("write to us today"), "ordinary words are not leaks");
        assert!(b.probe("contact: alice@example.com."));
        assert!(b.probe("bob.smith@corp.example"));
        assert!(!b.probe("42"));
        assert!(!b.probe("carol@example.com"));
        assert!(b.false_positive_rate() < 1e-6);
    }
}
