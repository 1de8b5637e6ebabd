//! The leak scan: proof, per snapshot, that no original value of a masked
//! column reached it.
//!
//! While rows are masked, the original values of masked text columns (whole,
//! and their word-like tokens) are remembered as seeded hashes in a Bloom
//! filter of fixed size: memory stays bounded whatever the data, and the
//! filter holds no value in the clear. Every field that could carry an
//! original (kept and unruled columns, and the output of maskers that pass
//! parts of their input through: json, pii_scrub, partial, regex_replace,
//! template) is tested, whole and token by token; fields of types without
//! words (numbers, dates, times, UUIDs, addresses) are tested whole only.
//! A table dumped after every table with remembered originals is tested as
//! its rows pass ([`Inline`]): the filter is complete by then. The probes of
//! rows dumped while it still fills are kept, in memory and then in an
//! unnamed temporary file, and looked up at the end; past both budgets a
//! file is read back before publishing ([`scan_file`]). Any hit blocks
//! publishing; the report names table, column and count, never the value.
//!
//! What it cannot see: originals shorter than 4 characters (or purely
//! numeric ones shorter than 8), values of non-text masked columns, a 6- or
//! 7-digit number from inside a masked text copied into a number column,
//! and copies that were transformed (re-formatted phone numbers, case
//! changes).

use std::hash::Hasher;
use std::sync::atomic::{AtomicU64, Ordering};

/// Default filter size.
pub const DEFAULT_BYTES: usize = 32 * 1024 * 1024;
const HASHES: u32 = 7;

/// Where one value's bits are in the filter.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    base: usize,
    h2: u64,
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

/// Whether `needle` occurs in `hay`. Fields and keys are short: finding the
/// first byte and comparing beats building a substring searcher per key.
fn occurs(hay: &[u8], needle: &[u8]) -> bool {
    match needle.split_first() {
        None => true,
        Some((&first, _)) => {
            needle.len() <= hay.len()
                && memchr::memchr_iter(first, &hay[..=hay.len() - needle.len()]).any(|at| hay[at..].starts_with(needle))
        }
    }
}

/// Visits the keys of a value, as [`Bloom::remember`] stores them and
/// [`Bloom::slots`] looks up a text field's, until `visit` returns true (and then
/// returns true): the whole value when it is worth it, its identifying
/// tokens (with `every_token`, also a token that is the whole value), and
/// `#` + the digits of each phone-like span. The order of the keys is not
/// part of the contract.
///
/// ASCII values, nearly all, take one pass over their bytes; others go
/// through the `char` functions below, which define the same keys.
fn keys(value: &[u8], every_token: bool, mut visit: impl FnMut(&[u8]) -> bool) -> bool {
    if !value.is_ascii() {
        // A field that is not UTF-8 is tested as its lossy decoding.
        let value = String::from_utf8_lossy(value);
        let value = value.as_ref();
        return (worth(value) && visit(value.as_bytes()))
            || tokens(value)
                .filter(|t| (every_token || t.len() != value.len()) && identifying(t))
                .any(|t| visit(t.as_bytes()))
            || digit_runs(value).any(|d| visit(d.as_bytes()));
    }
    let b = value;
    // One pass, without a branch that depends on the kind of each byte (hex
    // and random digits would mispredict it): byte classes from a table,
    // counters and selects. Branches are taken only where a token or a run of
    // phone characters ends holding enough to be a key, which is rare.
    let mut all: u8 = !0;
    // The current token: where it starts, and its score (one a digit, 1 << 20
    // an `@`): it may identify when the score reaches 6.
    let (mut tok_start, mut tok_score) = (0usize, 0u32);
    // The current run of phone characters: where it starts, its digits.
    let (mut run_start, mut run_digits) = (0usize, 0usize);
    for (i, &c) in b.iter().enumerate() {
        let k = CLASSES[c as usize];
        all &= k;
        let sep = k & SEPARATOR != 0;
        if sep & (tok_score >= 6) && token(b, tok_start, i, tok_score, every_token, &mut visit) {
            return true;
        }
        tok_start = if sep { i + 1 } else { tok_start };
        // Masks instead of branches: all ones to keep counting, zero to restart.
        tok_score = (tok_score + SCORES[c as usize]) & u32::from(sep).wrapping_sub(1);
        let span = k & SPAN != 0;
        if !span & (run_digits >= 8) && phone_key(&b[run_start..i], &mut visit) {
            return true;
        }
        run_start = if span { run_start } else { i + 1 };
        run_digits = (run_digits + usize::from(k & DIGIT)) & usize::from(span).wrapping_neg();
    }
    if tok_score >= 6 && token(b, tok_start, b.len(), tok_score, every_token, &mut visit) {
        return true;
    }
    if run_digits >= 8 && phone_key(&b[run_start..], &mut visit) {
        return true;
    }
    let numeric = all & NUMERIC != 0;
    b.len() >= 4 && (!numeric || b.len() >= 8) && visit(b)
}

/// An `@` in a token's score: more than any count of digits that matters.
const AT_SCORE: u32 = 1 << 20;

/// A token of an ASCII value that may identify (its `score` is 6 or more):
/// `b[start..end]` trimmed, visited when it is an email address or holds
/// six digits or more.
fn token(
    b: &[u8],
    start: usize,
    end: usize,
    score: u32,
    every_token: bool,
    visit: &mut impl FnMut(&[u8]) -> bool,
) -> bool {
    let t = trim_ascii_token(&b[start..end]);
    if t.is_empty() || (!every_token && t.len() == b.len()) {
        return false;
    }
    if score < AT_SCORE {
        // Six digits or more, and no `@`: trimming keeps every digit.
        return visit(t);
    }
    let (mut at, mut dot, mut d) = (false, false, 0);
    for &c in t {
        at |= c == b'@';
        dot |= c == b'.';
        d += usize::from(c.is_ascii_digit());
    }
    ((at && dot && t.len() >= 6) || d >= 6) && visit(t)
}

/// The key of a run of phone characters with eight digits or more: `#` + its digits.
fn phone_key(run: &[u8], visit: &mut impl FnMut(&[u8]) -> bool) -> bool {
    let mut key = Vec::with_capacity(run.len() + 1);
    key.push(b'#');
    key.extend(run.iter().filter(|c| c.is_ascii_digit()));
    visit(&key)
}

/// The keys of a field tested whole: the value (when worth it), and `#` +
/// its digits when it is made only of a phone number's characters.
fn whole_keys(value: &[u8], mut visit: impl FnMut(&[u8]) -> bool) -> bool {
    let b = value;
    // One pass, branch-free: the classes all bytes share, and the digits.
    let (mut all, mut any, mut digits) = (!0u8, 0u8, 0usize);
    for &c in b {
        let k = CLASSES[c as usize];
        all &= k;
        any |= c;
        digits += usize::from(k & DIGIT);
    }
    let visited = if any < 0x80 {
        b.len() >= 4 && (all & NUMERIC == 0 || b.len() >= 8) && visit(b)
    } else {
        // A field that is not UTF-8 is tested as its lossy decoding.
        let value = String::from_utf8_lossy(b);
        worth(&value) && visit(value.as_bytes())
    };
    if visited {
        return true;
    }
    digits >= 8 && all & PHONE != 0 && phone_key(b, &mut visit)
}

/// Byte classes of ASCII text, for the one-pass key finders.
const DIGIT: u8 = 1;
/// What [`worth`] counts as part of a number: digits and `.-+ ,:`.
const NUMERIC: u8 = 2;
/// What a phone-like run is made of inside a text: digits and ` ().-`.
const SPAN: u8 = 4;
/// What [`tokens`] splits on.
const SEPARATOR: u8 = 8;
/// What a whole phone number is made of: digits and `+-. ()`.
const PHONE: u8 = 32;

/// What a byte adds to its token's score ([`keys`]).
const SCORES: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut c = b'0';
    while c <= b'9' {
        t[c as usize] = 1;
        c += 1;
    }
    t[b'@' as usize] = AT_SCORE;
    t
};

/// Adds `class` to each of `bytes` in a table of byte classes.
const fn with_class(mut table: [u8; 256], bytes: &[u8], class: u8) -> [u8; 256] {
    let mut i = 0;
    while i < bytes.len() {
        table[bytes[i] as usize] |= class;
        i += 1;
    }
    table
}

const CLASSES: [u8; 256] = {
    let t = with_class([0; 256], b"0123456789", DIGIT | NUMERIC | SPAN | PHONE);
    let t = with_class(t, b".-+ ,:", NUMERIC);
    let t = with_class(t, b" ().-", SPAN);
    let t = with_class(t, b"+-. ()", PHONE);
    with_class(t, b" \t\n\x0b\x0c\r,;()<>\"'[]{}|\\/!?=", SEPARATOR)
};

fn trim_ascii_token(mut t: &[u8]) -> &[u8] {
    while let [b'.' | b':' | b'-', rest @ ..] = t {
        t = rest;
    }
    while let [rest @ .., b'.' | b':' | b'-'] = t {
        t = rest;
    }
    t
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
fn tokens(s: &str) -> impl Iterator<Item = &str> {
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
    pub fn for_column(class: crate::mask::TypeClass, masker: Option<&str>) -> Probe {
        use crate::mask::TypeClass as C;
        match (masker, class) {
            (Some(m), _) if generative(m) => Probe::Skip,
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
/// ([`Inline::deferred`]), they are kept, within a memory budget shared by
/// the run, and looked up at the end ([`Inline::finish_deferred`]).
pub struct Inline {
    probes: Vec<Probe>,
    bloom: std::sync::Arc<Bloom>,
    tested: AtomicU64,
    hits: Vec<AtomicU64>,
    deferred: Option<Deferred>,
}

/// Slots kept until the filter is complete.
struct Deferred {
    slots: std::sync::Mutex<Vec<(usize, u64, Slot)>>,
    /// Slots the run may still keep in memory, shared by every deferred probe.
    budget: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Batches past the memory budget, written to an unnamed temporary file
    /// (gone when closed), within the run's disk budget for them.
    spill: std::sync::Mutex<Option<std::fs::File>>,
    spill_budget: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Bytes of the disk budget this probe holds, given back with the file.
    spilled_bytes: AtomicU64,
    /// Set when both budgets ran out (or the temporary file failed): the
    /// file must be read back instead.
    overflowed: std::sync::atomic::AtomicBool,
}

/// Bytes of one kept slot.
pub const SLOT_BYTES: usize = std::mem::size_of::<(usize, u64, Slot)>();

/// Bytes of one slot written to the temporary file: column, field, block, bits.
pub const SPILLED_SLOT_BYTES: u64 = 4 + 8 + 8 + 8;

impl Deferred {
    /// Writes a batch to the temporary file, if the disk budget allows.
    fn spill(&self, batch: &[(usize, u64, Slot)]) -> bool {
        use std::io::Write;
        let bytes = batch.len() as u64 * SPILLED_SLOT_BYTES;
        if self.spill_budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(bytes)).is_err()
        {
            return false;
        }
        self.spilled_bytes.fetch_add(bytes, Ordering::Relaxed);
        let mut record = Vec::with_capacity(bytes as usize);
        for &(column, field, slot) in batch {
            record.extend_from_slice(&(column as u32).to_le_bytes());
            record.extend_from_slice(&field.to_le_bytes());
            record.extend_from_slice(&(slot.base as u64).to_le_bytes());
            record.extend_from_slice(&slot.h2.to_le_bytes());
        }
        let Ok(mut file) = self.spill.lock() else { return false };
        if file.is_none() {
            *file = tempfile::tempfile().ok();
        }
        file.as_mut().is_some_and(|f| f.write_all(&record).is_ok())
    }

    /// Closes (and so deletes) the temporary file, giving its disk budget back.
    fn drop_spill(&self) -> Option<std::fs::File> {
        self.spill_budget.fetch_add(self.spilled_bytes.swap(0, Ordering::Relaxed), Ordering::Relaxed);
        self.spill.lock().ok().and_then(|mut f| f.take())
    }

    /// Reads the spilled slots back, a block at a time, for `lookup`.
    fn unspill(&self, mut lookup: impl FnMut(&mut Vec<(usize, u64, Slot)>)) -> std::io::Result<()> {
        use std::io::{Read, Seek};
        let Some(mut file) = self.drop_spill() else { return Ok(()) };
        file.seek(std::io::SeekFrom::Start(0))?;
        let mut reader = std::io::BufReader::new(file);
        let mut record = [0u8; SPILLED_SLOT_BYTES as usize];
        let mut batch = Vec::with_capacity(4096);
        loop {
            match reader.read_exact(&mut record) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e),
            }
            let word = |at: usize| u64::from_le_bytes(record[at..at + 8].try_into().unwrap_or_default());
            let column = u32::from_le_bytes(record[..4].try_into().unwrap_or_default()) as usize;
            batch.push((column, word(4), Slot { base: word(12) as usize, h2: word(20) }));
            if batch.len() == 4096 {
                lookup(&mut batch);
            }
        }
        lookup(&mut batch);
        Ok(())
    }
}

impl Inline {
    pub fn new(probes: Vec<Probe>, bloom: std::sync::Arc<Bloom>) -> Self {
        let hits = probes.iter().map(|_| AtomicU64::new(0)).collect();
        Inline { probes, bloom, tested: AtomicU64::new(0), hits, deferred: None }
    }

    /// A probe whose lookups wait for [`Inline::finish_deferred`], keeping
    /// at most `budget` slots in memory and `spill_budget` bytes of them in
    /// a temporary file (both shared with other deferred probes).
    pub fn deferred(
        probes: Vec<Probe>,
        bloom: std::sync::Arc<Bloom>,
        budget: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        spill_budget: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> Self {
        let mut inline = Inline::new(probes, bloom);
        inline.deferred = Some(Deferred {
            slots: std::sync::Mutex::new(Vec::new()),
            budget,
            spill: std::sync::Mutex::new(None),
            spill_budget,
            spilled_bytes: AtomicU64::new(0),
            overflowed: std::sync::atomic::AtomicBool::new(false),
        });
        inline
    }

    /// Looks up the kept slots, in memory and spilled, once the filter is
    /// complete. False when both budgets ran out or the temporary file
    /// failed (the file must then be read back); the memory budget is given
    /// back either way.
    pub fn finish_deferred(&self) -> bool {
        let Some(d) = &self.deferred else { return true };
        let mut kept = match d.slots.lock() {
            Ok(mut v) => std::mem::take(&mut *v),
            Err(_) => return false,
        };
        d.budget.fetch_add(kept.len(), Ordering::Relaxed);
        if d.overflowed.load(Ordering::Relaxed) {
            return false;
        }
        self.lookup(&mut kept);
        d.unspill(|batch| self.lookup(batch)).is_ok()
    }

    /// Whether some of the kept slots went to the temporary file.
    pub fn spilled(&self) -> bool {
        self.deferred.as_ref().is_some_and(|d| d.spill.lock().is_ok_and(|f| f.is_some()))
    }

    /// How the field at COPY position `i` is probed.
    pub fn probe(&self, i: usize) -> Probe {
        self.probes.get(i).copied().unwrap_or(Probe::Skip)
    }

    /// Queues the slots of one field's value (COPY-decoded) into `batch`;
    /// `field` tells the fields of a column apart (the row number). Returns
    /// whether the field is tested; the caller counts them
    /// ([`Inline::count_tested`]), once per batch rather than per field.
    pub fn queue(&self, i: usize, field: u64, value: &[u8], batch: &mut Vec<(usize, u64, Slot)>) -> bool {
        let how = self.probe(i);
        if how == Probe::Skip {
            return false;
        }
        self.bloom.slots(value, how, |slot| batch.push((i, field, slot)));
        true
    }

    /// Queues the slots of a masker's output that carry something of the
    /// field's `original` ([`Bloom::kept_slots`]), as [`Inline::queue`] does.
    pub fn queue_kept(
        &self,
        i: usize,
        field: u64,
        output: &[u8],
        original: &[u8],
        batch: &mut Vec<(usize, u64, Slot)>,
    ) -> bool {
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
    pub fn check(&self, batch: &mut Vec<(usize, u64, Slot)>) {
        let Some(d) = &self.deferred else {
            self.lookup(batch);
            return;
        };
        if batch.is_empty() || d.overflowed.load(Ordering::Relaxed) {
            batch.clear();
            return;
        }
        let n = batch.len();
        let granted = d.budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(n)).is_ok();
        if let (true, Ok(mut kept)) = (granted, d.slots.lock()) {
            kept.append(batch);
            return;
        }
        if !granted && d.spill(batch) {
            batch.clear();
            return;
        }
        // Out of both budgets: this file will be read back. What it kept is
        // freed now, for the probes of other tables.
        d.overflowed.store(true, Ordering::Relaxed);
        let freed = d.slots.lock().map(|mut kept| std::mem::take(&mut *kept).len()).unwrap_or(0);
        d.budget.fetch_add(freed + if granted { n } else { 0 }, Ordering::Relaxed);
        d.drop_spill();
        batch.clear();
    }

    fn lookup(&self, batch: &mut Vec<(usize, u64, Slot)>) {
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

/// The leak scan's result, for the manifest.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LeakScan {
    /// Distinct original values and tokens remembered (a value whose bits
    /// were all set already is not counted again).
    pub remembered: u64,
    pub filter_bytes: u64,
    /// Per probe, for the number remembered.
    pub false_positive_rate: f64,
    pub fields_tested: u64,
    /// (table.column, hits); empty when the scan passed.
    pub hits: Vec<(String, u64)>,
}

/// Reads one data file back and probes each field as `probe` says for its
/// column, on a blocking thread (so files are scanned in parallel), the way
/// rows are probed as they are dumped. Returns the number of fields tested
/// and the hits per column.
pub async fn scan_file(
    reader: crate::store::ObjectReader,
    table: String,
    probe: Vec<Probe>,
    bloom: std::sync::Arc<Bloom>,
) -> Result<(u64, Vec<u64>), String> {
    use crate::mask::rows::{RowMasker, TableMask};
    let mut chunks = crate::encode::decompress_stream(reader, 4);
    let task = tokio::task::spawn_blocking(move || {
        let inline = std::sync::Arc::new(Inline::new(probe, bloom));
        let mut rows = RowMasker::new(TableMask { table, columns: Vec::new() })
            .with_inline_probe(Some(std::sync::Arc::clone(&inline)));
        while let Some(chunk) = chunks.blocking_recv() {
            let chunk = chunk.map_err(|e| e.to_string())?;
            rows.probe_rows(&chunk).map_err(|e| e.to_string())?;
        }
        rows.finish().map_err(|e| e.to_string())?;
        Ok(inline.tally())
    });
    task.await.map_err(|e| e.to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One value's probe through the path the scan takes: its slots, then
    /// the lookups.
    impl Bloom {
        fn probe_as(&self, value: &str, how: Probe) -> bool {
            let mut hit = false;
            self.slots(value.as_bytes(), how, |slot| hit |= self.contains(slot));
            hit
        }
        /// A text field: whole, token by token, phone digits.
        fn probe(&self, value: &str) -> bool {
            self.probe_as(value, Probe::Full)
        }
        /// A field of a type without words: whole only.
        fn probe_whole(&self, value: &str) -> bool {
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

    /// The keys of the `char` functions, which define them.
    fn reference_keys(value: &str, every_token: bool) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        if worth(value) {
            out.push(value.as_bytes().to_vec());
        }
        out.extend(
            tokens(value)
                .filter(|t| (every_token || t.len() != value.len()) && identifying(t))
                .map(|t| t.as_bytes().to_vec()),
        );
        out.extend(digit_runs(value).map(String::into_bytes));
        out.sort();
        out
    }

    /// The keys the fast functions visit, sorted (their order is not part
    /// of the contract).
    fn fast_keys(visit_all: impl FnOnce(&mut dyn FnMut(&[u8]) -> bool)) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        visit_all(&mut |k| {
            out.push(k.to_vec());
            false
        });
        out.sort();
        out
    }

    proptest::proptest! {
        #[test]
        fn the_ascii_pass_finds_the_keys_the_char_functions_define(
            value in "[a-c0-9@.:+() \\-,;/=\t\x0b]{0,40}",
            every_token: bool,
        ) {
            let fast = fast_keys(|v| {
                keys(value.as_bytes(), every_token, v);
            });
            proptest::prop_assert_eq!(fast, reference_keys(&value, every_token));
        }

        #[test]
        fn whole_values_give_the_keys_of_the_char_rules(value in "[0-9a-c .:,+()\\-é]{0,24}") {
            let fast = fast_keys(|v| {
                whole_keys(value.as_bytes(), v);
            });
            let mut reference = Vec::new();
            if worth(&value) {
                reference.push(value.as_bytes().to_vec());
            }
            let digits: Vec<u8> = value.bytes().filter(u8::is_ascii_digit).collect();
            if digits.len() >= 8 && value.bytes().all(|b| b.is_ascii_digit() || b"+-. ()".contains(&b)) {
                reference.push([b"#".as_slice(), &digits].concat());
            }
            reference.sort();
            proptest::prop_assert_eq!(fast, reference);
        }

        #[test]
        fn the_ascii_pass_finds_phone_numbers_as_the_char_functions_do(
            value in "[0-9 ().+\\-]{0,30}[a@.x]?[0-9 ().\\-]{0,20}",
        ) {
            let fast = fast_keys(|v| {
                keys(value.as_bytes(), true, v);
            });
            proptest::prop_assert_eq!(fast, reference_keys(&value, true));
        }
    }

    proptest::proptest! {
        #[test]
        fn occurs_finds_what_a_window_search_finds(hay in "[ab]{0,12}", needle in "[ab]{0,4}") {
            let reference = needle.is_empty() || hay.as_bytes().windows(needle.len()).any(|w| w == needle.as_bytes());
            proptest::prop_assert_eq!(occurs(hay.as_bytes(), needle.as_bytes()), reference);
        }
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

    #[test]
    fn deferred_probes_past_memory_go_to_disk_and_find_the_same() {
        use std::sync::atomic::AtomicUsize;
        use std::sync::Arc;
        let bloom = Arc::new(Bloom::new(1 << 16));
        let probe = |memory: usize, disk: u64| {
            let budget = (Arc::new(AtomicUsize::new(memory)), Arc::new(AtomicU64::new(disk)));
            let inline = Inline::deferred(vec![Probe::Whole, Probe::Full], Arc::clone(&bloom), budget.0, budget.1);
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
        assert_eq!(Probe::for_column(TypeClass::Timestamp, None), Probe::Whole);
        assert_eq!(Probe::for_column(TypeClass::Text, Some("pii_scrub")), Probe::Full);
        assert_eq!(Probe::for_column(TypeClass::Text, Some("email")), Probe::Skip);
        assert_eq!(Probe::for_column(TypeClass::Other, None), Probe::Full);
    }
}
