//! The Bloom filter of remembered originals: blocked (all bits of a value
//! in one cache line), shared by the masking threads through atomics, with
//! a random hashing key per run.

use std::hash::Hasher;
use std::sync::atomic::{AtomicU64, Ordering};

use super::keys::{keys, occurs, whole_keys};
use super::Probe;

const HASHES: u32 = 7;

/// Where one value's bits are in the filter.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    pub(super) base: usize,
    pub(super) h2: u64,
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

    /// One seeded foldhash per value; a SplitMix64 finaliser of it picks the
    /// bits inside the block. The filter lives only in memory for one run,
    /// with a random seed, so a fast hash serves: it needs spread, not secrecy.
    fn hashes(&self, v: &[u8]) -> (u64, u64) {
        use std::hash::BuildHasher;
        let mut h = self.state.build_hasher();
        h.write(v);
        let h1 = h.finish();
        let mut z = h1 ^ 0x9e37_79b9_7f4a_7c15;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (h1, z ^ (z >> 31))
    }

    /// Where a value's bits are: all inside one 512-bit block (one cache
    /// line), a blocked Bloom filter, one memory miss per probe instead of seven.
    pub fn slot(&self, v: &[u8]) -> Slot {
        let (h1, h2) = self.hashes(v);
        let blocks = (self.m / 512).max(1);
        // Multiply-shift maps h1 onto the blocks without a division.
        let block = ((u128::from(h1) * u128::from(blocks)) >> 64) as usize;
        Slot { base: block * 8, h2 }
    }

    fn words(slot: Slot) -> impl Iterator<Item = (usize, u64)> {
        (0..HASHES).map(move |i| {
            let bit = (slot.h2 >> (9 * i)) & 511;
            (slot.base + (bit / 64) as usize, 1u64 << (bit % 64))
        })
    }

    /// Sets a slot's bits. Most repeated values (first names, cities) find
    /// their bits set already and skip the atomic writes; they are counted
    /// once, so `inserted` is about the number of distinct values.
    fn insert(&self, slot: Slot) {
        let mut added = false;
        for (word, mask) in Self::words(slot) {
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
    }

    /// Whether all bits of a slot are set. Looking up a batch of slots
    /// computed beforehand lets the processor wait for several memory
    /// misses at once.
    pub fn contains(&self, slot: Slot) -> bool {
        Self::words(slot).all(|(word, mask)| self.bits.get(word).is_some_and(|w| w.load(Ordering::Relaxed) & mask != 0))
    }

    /// Remembers an original value: whole, its identifying tokens (emails,
    /// long numbers) and the digits of phone-like numbers in it.
    pub fn remember(&self, value: &str) {
        keys(value.as_bytes(), false, |k| {
            self.insert(self.slot(k));
            false
        });
    }

    /// Queues the slots of an original value, to be remembered with
    /// [`Bloom::remember_batch`].
    pub fn queue_remember(&self, value: &str, batch: &mut Vec<Slot>) {
        keys(value.as_bytes(), false, |k| {
            batch.push(self.slot(k));
            false
        });
    }

    /// Remembers a batch of queued slots (emptying it). The bits are read
    /// for all of them first, so that their memory misses overlap, then set
    /// where some are missing; most repeated values need no write.
    pub fn remember_batch(&self, batch: &mut Vec<Slot>) {
        batch.retain(|&slot| !self.contains(slot));
        for slot in batch.drain(..) {
            self.insert(slot);
        }
    }

    /// The slots a field (its bytes, decoded from COPY) is looked up at, as
    /// `how` says.
    pub fn slots(&self, value: &[u8], how: Probe, mut visit: impl FnMut(Slot)) {
        Self::keys_as(value, how, |k| visit(self.slot(k)));
    }

    /// The slots of a masker's output that carry something of the field's
    /// original: the keys that occur in it (a phone number's digits: among
    /// its digits). What the masker made from scratch, such as the fake
    /// emails and phone numbers inside scrubbed text, can equal another
    /// row's original by chance (a seven-digit group of a phone number does,
    /// about once in a hundred against 100,000 remembered phones); a
    /// chance equality is not a leak, and would stop every run.
    pub fn kept_slots(&self, output: &[u8], original: &[u8], how: Probe, mut visit: impl FnMut(Slot)) {
        if output == original {
            // Nothing was replaced: every key is kept.
            return self.slots(output, how, visit);
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
                visit(self.slot(k));
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

    /// The chance that one probe of a value never remembered reports a hit,
    /// estimated as for a plain Bloom filter, (1 - e^(-k n / m))^k; blocking
    /// raises it slightly.
    pub fn false_positive_rate(&self) -> f64 {
        let n = self.inserted() as f64;
        let k = f64::from(HASHES);
        (1.0 - (-k * n / self.m as f64).exp()).powf(k)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// One value's probe through the path the scan takes: its slots, then
    /// the lookups.
    impl Bloom {
        pub(crate) fn probe_as(&self, value: &str, how: Probe) -> bool {
            let mut hit = false;
            self.slots(value.as_bytes(), how, |slot| hit |= self.contains(slot));
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
            b.kept_slots(output.as_bytes(), original.as_bytes(), Probe::Full, |slot| hit |= b.contains(slot));
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
