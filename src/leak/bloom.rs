//! The Bloom filter of remembered originals: blocked (all bits of a value
//! in one cache line), shared by the masking threads through atomics, with
//! a random hashing key per run.

use std::hash::Hasher;
use std::sync::atomic::{AtomicU64, Ordering};

use super::keys::{keys, occurs, whole_keys, Shape};
use super::Probe;

const HASHES: u32 = 7;

/// A remembered original's key, as the filter and the confirmation store
/// know it: a 64-bit keyed hash and what kind of key it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub hash: u64,
    pub shape: Shape,
}

/// A Bloom filter of seeded hashes, shared by the masking threads.
pub struct Bloom {
    bits: Vec<AtomicU64>,
    m: u64,
    state: foldhash::quality::FixedState,
    inserted: AtomicU64,
}

impl Bloom {
    /// A filter of about `bytes` bytes with a random hashing key for this run.
    pub fn new(bytes: usize) -> Self {
        // Whole 512-bit blocks.
        let words = (bytes / 64).max(16) * 8;
        let mut bits = Vec::with_capacity(words);
        bits.resize_with(words, || AtomicU64::new(0));
        let state = foldhash::quality::FixedState::with_seed(rand::random());
        Bloom { bits, m: words as u64 * 64, state, inserted: AtomicU64::new(0) }
    }

    /// A key's 64-bit hash, seeded for this run. The filter lives only for
    /// one run, with a random seed, so a fast hash serves: it needs spread,
    /// not secrecy. The same hash confirms a candidate exactly (see
    /// [`super::origins`]): two different keys share it with probability
    /// 2^-64.
    pub fn hash(&self, key: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        let mut h = self.state.build_hasher();
        h.write(key);
        h.finish()
    }

    /// Where a hash's bits are: all inside one 512-bit block (one cache
    /// line), a blocked Bloom filter, one memory miss per probe instead of
    /// seven. Multiply-shift maps the hash onto the blocks; a SplitMix64
    /// finaliser of it picks the bits inside the block.
    fn words(&self, hash: u64) -> impl Iterator<Item = (usize, u64)> {
        let blocks = (self.m / 512).max(1);
        let base = ((u128::from(hash) * u128::from(blocks)) >> 64) as usize * 8;
        let mut z = hash ^ 0x9e37_79b9_7f4a_7c15;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let h2 = z ^ (z >> 31);
        (0..HASHES).map(move |i| {
            let bit = (h2 >> (9 * i)) & 511;
            (base + (bit / 64) as usize, 1u64 << (bit % 64))
        })
    }

    /// Sets a hash's bits; true when some were not set (a value not seen
    /// before, as far as the filter can tell). Most repeated values (first
    /// names, cities) find their bits set already and skip the atomic
    /// writes; they are counted once, so `inserted` is about the number of
    /// distinct values.
    fn insert(&self, hash: u64) -> bool {
        let mut added = false;
        for (word, mask) in self.words(hash) {
            if let Some(w) = self.bits.get(word) {
                if w.load(Ordering::Relaxed) & mask != mask {
                    w.fetch_or(mask, Ordering::Relaxed);
                    added = true;
                }
            }
        }
        if added {
            self.inserted.fetch_add(1, Ordering::Relaxed);
        }
        added
    }

    /// Whether all bits of a hash are set: the value may have been
    /// remembered (or is a false positive, which confirmation rules out).
    /// Looking up a batch of hashes computed beforehand lets the processor
    /// wait for several memory misses at once.
    pub fn contains(&self, hash: u64) -> bool {
        self.words(hash).all(|(word, mask)| self.bits.get(word).is_some_and(|w| w.load(Ordering::Relaxed) & mask != 0))
    }

    /// Remembers an original value at once: whole, its identifying tokens
    /// (emails, long numbers) and the digits of phone-like numbers in it.
    pub fn remember(&self, value: &str) {
        remember_keys(value.as_bytes(), |k, _| {
            self.insert(self.hash(k));
        });
    }

    /// Queues the keys of an original value of masked column `source`, to
    /// be remembered with [`Bloom::remember_batch`]; returns the hash of the
    /// whole value when it is long enough to be a key.
    pub fn queue_remember(&self, value: &str, source: u32, batch: &mut Vec<(u32, Key)>) -> Option<u64> {
        let mut whole = None;
        remember_keys(value.as_bytes(), |k, shape| {
            let hash = self.hash(k);
            if k.len() == value.len() {
                whole = Some(hash);
            }
            batch.push((source, Key { hash, shape }));
        });
        whole
    }

    /// Remembers a batch of queued keys, keeping in it only those the
    /// filter did not hold yet for their source column (for the
    /// confirmation store, which must know every column a value came from).
    /// Each key goes in twice: as itself, which probes look up, and salted
    /// with its source. The bits are read for all of them first, so that
    /// their memory misses overlap, then set where some are missing; most
    /// repeated values need no write.
    pub fn remember_batch(&self, batch: &mut Vec<(u32, Key)>) {
        batch.retain(|(source, k)| !self.contains(salted(k.hash, *source)));
        batch.retain(|(source, k)| {
            self.insert(k.hash);
            self.insert(salted(k.hash, *source))
        });
    }

    /// The hashes a field (its bytes, decoded from COPY) is looked up at, as
    /// `how` says, each with whether it is the whole field.
    pub fn probes(&self, value: &[u8], how: Probe, mut visit: impl FnMut(u64, bool)) {
        Self::keys_as(value, how, |k| visit(self.hash(k), k.len() == value.len()));
    }

    /// The hashes of a masker's output that carry something of the field's
    /// original: the keys that occur in it (a phone number's digits: among
    /// its digits). What the masker made from scratch, such as the fake
    /// emails and phone numbers inside scrubbed text, can equal another
    /// row's original by chance (a seven-digit group of a phone number does,
    /// about once in a hundred against 100,000 remembered phones); a
    /// chance equality is not a leak, and would stop every run.
    pub fn kept_probes(&self, output: &[u8], original: &[u8], how: Probe, mut visit: impl FnMut(u64, bool)) {
        if output == original {
            // Nothing was replaced: every key is kept.
            return self.probes(output, how, visit);
        }
        let mut digits: Option<Vec<u8>> = None;
        Self::keys_as(output, how, |k| {
            let phone_digits = match k {
                [b'#', d @ ..] if d.iter().all(u8::is_ascii_digit) => Some(d),
                _ => None,
            };
            let kept = occurs(original, k)
                || phone_digits.is_some_and(|d| {
                    occurs(
                        digits.get_or_insert_with(|| original.iter().copied().filter(u8::is_ascii_digit).collect()),
                        d,
                    )
                });
            if kept {
                visit(self.hash(k), k.len() == output.len());
            }
        });
    }

    fn keys_as(value: &[u8], how: Probe, mut visit: impl FnMut(&[u8])) {
        let each = |k: &[u8]| {
            visit(k);
            false
        };
        match how {
            Probe::Skip => {}
            Probe::Whole => {
                whole_keys(value, each);
            }
            Probe::Full => {
                keys(value, true, each);
            }
        }
    }

    /// Entries remembered.
    pub fn inserted(&self) -> u64 {
        self.inserted.load(Ordering::Relaxed)
    }

    /// Size in bytes.
    pub fn bytes(&self) -> u64 {
        self.m / 8
    }

    /// An upper bound on the chance that one probe of a value never
    /// remembered passes the filter. Blocking puts each value's bits in one
    /// of `B` blocks of 512 bits, so a block holds `j` values with
    /// probability Poisson(n / B; j) and a probe into it passes with
    /// probability (1 - (1 - 1/512)^(k j))^k; summed over `j`. (A plain
    /// Bloom filter's (1 - e^(-kn/m))^k is too low here by orders of
    /// magnitude.) `n` is the number of distinct values: `inserted` counts
    /// a value only when it set a bit, which a value arriving when the
    /// filter already passes it does not, so `n` is taken as the fixed point
    /// of inserted / (1 - rate(n)). Every candidate is confirmed exactly, so
    /// this is a cost, never a false alarm.
    pub fn false_positive_rate(&self) -> f64 {
        let inserted = self.inserted() as f64;
        let mut n = inserted;
        let mut rate = self.rate_for(n);
        for _ in 0..64 {
            if rate >= 0.999 {
                return 1.0;
            }
            let next = inserted / (1.0 - rate);
            if next - n < 0.5 {
                break;
            }
            n = next;
            rate = self.rate_for(n);
        }
        rate
    }

    /// The rate of a blocked filter holding `n` distinct values.
    fn rate_for(&self, n: f64) -> f64 {
        let blocks = (self.m / 512).max(1) as f64;
        let lambda = n / blocks;
        let k = f64::from(HASHES);
        let mut rate = 0.0;
        // Poisson terms over ten standard deviations either side of the
        // mean, in logarithms (e^-lambda underflows for a full filter):
        // ln p(j) = j ln(lambda) - lambda - ln(j!), with Stirling's ln(j!).
        let spread = 10.0 * lambda.sqrt() + 20.0;
        let (from, to) = ((lambda - spread).max(0.0) as u64, (lambda + spread) as u64);
        let ln_factorial = |j: f64| match j < 1.0 {
            true => 0.0,
            false => j * j.ln() - j + 0.5 * (2.0 * std::f64::consts::PI * j).ln() + 1.0 / (12.0 * j),
        };
        for j in from..=to {
            let j = j as f64;
            let ln_p = match lambda > 0.0 {
                true => j * lambda.ln() - lambda - ln_factorial(j),
                false if j == 0.0 => 0.0,
                false => f64::NEG_INFINITY,
            };
            let set = 1.0 - (1.0 - 1.0 / 512.0f64).powf(k * j);
            rate += ln_p.exp() * set.powf(k);
        }
        rate.min(1.0)
    }
}

/// A key's hash salted with its source column: a second entry, so that one
/// value of several masked columns is recorded for each of them.
fn salted(hash: u64, source: u32) -> u64 {
    let mut z = hash ^ (u64::from(source) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    z ^ (z >> 33)
}

/// The keys of an original as they are remembered, each with its shape
/// ([`keys`] with `every_token` off: the whole value when worth it, its
/// identifying tokens, the digits of its phone-like runs).
pub fn remember_keys(value: &[u8], mut visit: impl FnMut(&[u8], Shape)) {
    keys(value, false, |k| {
        let shape = match k.len() == value.len() {
            true => Shape::of_whole(value),
            false => Shape::Identifying,
        };
        visit(k, shape);
        false
    });
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// One value's probe through the path the scan takes: its slots, then
    /// the lookups.
    impl Bloom {
        pub(crate) fn probe_as(&self, value: &str, how: Probe) -> bool {
            let mut hit = false;
            self.probes(value.as_bytes(), how, |hash, _| hit |= self.contains(hash));
            hit
        }
        /// A text field: whole, token by token, phone digits.
        pub(crate) fn probe(&self, value: &str) -> bool {
            self.probe_as(value, Probe::Full)
        }
        /// A field of a type without words: whole only.
        pub(crate) fn probe_whole(&self, value: &str) -> bool {
            self.probe_as(value, Probe::Whole)
        }
    }

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

    #[test]
    fn a_maskers_output_is_probed_for_what_it_kept_of_the_original() {
        let b = Bloom::new(1 << 16);
        b.remember("+1 (412) 041-4041");
        b.remember("alice@example.com");
        let hit = |output: &str, original: &str| {
            let mut hit = false;
            b.kept_probes(output.as_bytes(), original.as_bytes(), Probe::Full, |hash, _| hit |= b.contains(hash));
            hit
        };
        // A fake phone number whose last group equals a remembered one's.
        let scrubbed = "Call +1 (270) 041-4041 before noon";
        assert!(b.probe(scrubbed), "on its own, the group looks like a leak");
        assert!(!hit(scrubbed, "Call +1 (555) 867-5309 before noon"), "but the masker made it");
        // What the masker kept.
        assert!(hit("Mail alice@example.com, or call", "Mail alice@example.com, or call +1 555 867 5309"));
        assert!(hit("ring 1 412 041 4041", "ring 1 412 041 4041"), "phone digits kept as they were");
        assert!(!hit("ring 1 412 041 4041", "ring 1 999 041 4041"));
    }
}
