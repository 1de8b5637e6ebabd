//! The masking key and everything derived from it.
//!
//! Every masked value is a function of (key, domain, masker and options,
//! input value): [`Seeder`] computes HMAC-SHA256 over those, and the result
//! seeds the generator of that one value. Nothing comes from a clock or an
//! unseeded random source, so the same key gives byte-identical output in
//! every run.

use hmac::{Hmac, Mac};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why no key could be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no masking key: set the {0} environment variable, pass --key-file FILE, or --ephemeral-key for a throwaway key (values then match only within this run)")]
    Missing(String),
    #[error("the masking key is too short: use at least 16 bytes (e.g. `openssl rand -hex 32`)")]
    TooShort,
    #[error("the masking key looks like a short passphrase: give hex or base64 of at least 16 random bytes, e.g. the output of `openssl rand -hex 32` (or `head -c 32 /dev/urandom | base64`)")]
    Passphrase,
    #[error("cannot read the key file {path}: {reason}")]
    File { path: String, reason: String },
}

/// The secret masking key. Its bytes never leave this type: no Display, a
/// redacting Debug, and they are zeroed when it is dropped.
#[derive(Clone)]
pub struct MaskKey {
    bytes: zeroize::Zeroizing<Vec<u8>>,
    ephemeral: bool,
}

/// How a configured key was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyForm {
    /// Hex or base64 of at least 16 bytes: random bytes, as they should be.
    Encoded,
    /// A text passphrase of 32 characters or more: accepted, but weaker
    /// than random bytes of the same length.
    Passphrase,
}

impl std::fmt::Debug for MaskKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MaskKey(<redacted>, fingerprint {})", self.fingerprint())
    }
}

impl MaskKey {
    /// A key from secret material (surrounding whitespace ignored).
    pub fn from_material(material: &[u8]) -> Result<Self, KeyError> {
        let trimmed = material.trim_ascii();
        if trimmed.len() < 16 {
            return Err(KeyError::TooShort);
        }
        Ok(MaskKey { bytes: zeroize::Zeroizing::new(trimmed.to_vec()), ephemeral: false })
    }

    /// A key as an operator configures it (the environment variable or the
    /// key file): hex or base64 of at least 16 random bytes, or a text
    /// passphrase of 32 characters or more (weaker; the caller warns). A
    /// shorter passphrase is refused. The text itself is the key material,
    /// as it always was, so snapshots made with the same key keep matching.
    pub fn configured(material: &[u8]) -> Result<(Self, KeyForm), KeyError> {
        let key = Self::from_material(material)?;
        let text = std::str::from_utf8(&key.bytes).unwrap_or("");
        let form = if decoded_len(text) >= Some(16) {
            KeyForm::Encoded
        } else if text.chars().count() >= 32 || (text.is_empty() && key.bytes.len() >= 32) {
            KeyForm::Passphrase
        } else {
            return Err(KeyError::Passphrase);
        };
        Ok((key, form))
    }

    /// A random key for one run.
    pub fn ephemeral() -> Self {
        let mut bytes = zeroize::Zeroizing::new(vec![0u8; 32]);
        rand::Rng::fill(&mut rand::rng(), &mut bytes[..]);
        MaskKey { bytes, ephemeral: true }
    }

    pub fn is_ephemeral(&self) -> bool {
        self.ephemeral
    }

    /// A public fingerprint: snapshots with the same fingerprint were masked
    /// with the same key and are mutually consistent. Reveals nothing of the key.
    pub fn fingerprint(&self) -> String {
        let mut mac = self.mac();
        mac.update(b"scrubsnap key fingerprint v1");
        hex::encode(&mac.finalize().into_bytes()[..8])
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length; this cannot fail.
        match HmacSha256::new_from_slice(&self.bytes) {
            Ok(m) => m,
            Err(_) => unreachable_mac(),
        }
    }

    /// A seeder for one (domain, masker spec) pair.
    pub fn seeder(&self, domain: &str, spec: &str) -> Seeder {
        let mut mac = self.mac();
        mac.update(b"scrubsnap value v1\0");
        mac.update(&(domain.len() as u64).to_be_bytes());
        mac.update(domain.as_bytes());
        mac.update(&(spec.len() as u64).to_be_bytes());
        mac.update(spec.as_bytes());
        Seeder { prefix: mac }
    }

    /// 32 bytes derived for a purpose (e.g. the round keys of a permutation).
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(b"scrubsnap derive v1\0");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// The bytes `text` encodes when it is hex, or base64 of random bytes
/// (standard or URL-safe alphabet, padded or not, with upper and lower
/// case letters and digits, as random bytes give); `None` otherwise.
fn decoded_len(text: &str) -> Option<usize> {
    let hex = text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit());
    if hex && !text.is_empty() {
        return Some(text.len() / 2);
    }
    let body = text.trim_end_matches('=');
    let alphabet = body.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_'));
    let mixed = body.bytes().any(|b| b.is_ascii_uppercase())
        && body.bytes().any(|b| b.is_ascii_lowercase())
        && body.bytes().any(|b| b.is_ascii_digit());
    (alphabet && mixed && body.len() % 4 != 1).then_some(body.len() * 3 / 4)
}

#[cold]
fn unreachable_mac() -> HmacSha256 {
    // Hmac::new_from_slice only fails for fixed-size-key MACs, not HMAC.
    match HmacSha256::new_from_slice(b"scrubsnap") {
        Ok(m) => m,
        Err(_) => unreachable_mac(),
    }
}

/// Seeds per value, for one (domain, masker spec).
#[derive(Clone)]
pub struct Seeder {
    prefix: HmacSha256,
}

impl Seeder {
    /// The 32-byte seed of one input value.
    pub fn seed(&self, value: &[u8]) -> [u8; 32] {
        let mut mac = self.prefix.clone();
        mac.update(value);
        mac.finalize().into_bytes().into()
    }

    /// A generator seeded from one input value.
    pub fn rng(&self, value: &[u8]) -> ChaCha8Rng {
        ChaCha8Rng::from_seed(self.seed(value))
    }
}

/// A keyed permutation of `[0, n)`: a balanced Feistel network with SipHash
/// rounds over the smallest even bit width covering `n`, with cycle walking;
/// or of all 128-bit values ([`Permutation::full`]). Injective by
/// construction, so unique keys stay unique.
#[derive(Clone)]
pub struct Permutation {
    /// The domain's size; 0 for all 2^128 values.
    n: u128,
    half_bits: u32,
    round_keys: [(u64, u64); 8],
}

impl Permutation {
    /// A permutation of all 128-bit values (UUIDs, IPv6 addresses).
    pub fn full(key: &MaskKey, purpose: &str) -> Self {
        let mut p = Permutation::new(key, purpose, u128::MAX);
        p.n = 0;
        p
    }

    /// A permutation of `[0, n)`, `n >= 1`.
    pub fn new(key: &MaskKey, purpose: &str, n: u128) -> Self {
        let n = n.max(1);
        let bits = 128 - (n - 1).leading_zeros();
        let half_bits = bits.div_ceil(2).max(1);
        let mut round_keys = [(0u64, 0u64); 8];
        for (i, rk) in round_keys.iter_mut().enumerate() {
            let d = key.derive(&format!("{purpose}/feistel/{i}"));
            let a = u64::from_le_bytes(d[0..8].try_into().unwrap_or([0; 8]));
            let b = u64::from_le_bytes(d[8..16].try_into().unwrap_or([0; 8]));
            *rk = (a, b);
        }
        Permutation { n, half_bits, round_keys }
    }

    fn round(&self, i: usize, x: u128) -> u128 {
        use std::hash::Hasher;
        let (k0, k1) = self.round_keys[i];
        let mut h = siphasher::sip::SipHasher24::new_with_keys(k0, k1);
        h.write_u128(x);
        let mask = if self.half_bits >= 64 { u64::MAX } else { (1u64 << self.half_bits) - 1 };
        u128::from(h.finish() & mask)
    }

    fn once(&self, x: u128) -> u128 {
        let hb = self.half_bits;
        let mask: u128 = if hb >= 128 { u128::MAX } else { (1u128 << hb) - 1 };
        let (mut l, mut r) = ((x >> hb) & mask, x & mask);
        for i in 0..self.round_keys.len() {
            let f = self.round(i, r) & mask;
            let nl = r;
            r = l ^ f;
            l = nl;
        }
        (l << hb) | r
    }

    /// The image of `x` (`x < n`; larger inputs are reduced modulo `n`).
    pub fn apply(&self, x: u128) -> u128 {
        if self.n == 0 {
            // The Feistel network of 2 x 64 bits is a bijection of all 128-bit values.
            return self.once(x);
        }
        let mut y = self.once(x % self.n);
        // Cycle walking: the Feistel domain is at most 4n, so this ends fast.
        while y >= self.n {
            y = self.once(y);
        }
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn key() -> MaskKey {
        MaskKey::from_material(b"test-key-0123456789abcdef").unwrap()
    }

    #[test]
    fn seeds_depend_on_every_input() {
        let k = key();
        let a = k.seeder("d", "email").seed(b"x");
        assert_eq!(a, k.seeder("d", "email").seed(b"x"));
        assert_ne!(a, k.seeder("d2", "email").seed(b"x"));
        assert_ne!(a, k.seeder("d", "email2").seed(b"x"));
        assert_ne!(a, k.seeder("d", "email").seed(b"y"));
        let other = MaskKey::from_material(b"another-key-0123456789").unwrap();
        assert_ne!(a, other.seeder("d", "email").seed(b"x"));
        // The length prefix keeps (domain, spec) boundaries apart.
        assert_ne!(k.seeder("ab", "c").seed(b""), k.seeder("a", "bc").seed(b""));
    }

    #[test]
    fn short_keys_are_refused_and_debug_hides_the_key() {
        assert!(matches!(MaskKey::from_material(b"short"), Err(KeyError::TooShort)));
        let k = key();
        assert!(!format!("{k:?}").contains("test-key"));
        assert_eq!(k.fingerprint().len(), 16);
        assert_eq!(k.fingerprint(), key().fingerprint());
    }

    #[test]
    fn configured_keys_are_random_bytes_or_long_passphrases() {
        let hex = "00112233445566778899aabbccddeeff";
        assert_eq!(MaskKey::configured(hex.as_bytes()).unwrap().1, KeyForm::Encoded);
        let b64 = "q3VwZXItc2VjcmV0LXJhbmRvbS1ieXRlczE=";
        assert_eq!(MaskKey::configured(b64.as_bytes()).unwrap().1, KeyForm::Encoded);
        assert_eq!(MaskKey::configured(b"q3VwZXItc2VjcmV0LXJhbmRvbS1ieXRlczE\n").unwrap().1, KeyForm::Encoded);
        let long = "correct horse battery staple, twice over";
        assert_eq!(MaskKey::configured(long.as_bytes()).unwrap().1, KeyForm::Passphrase);
        for short in ["mysecretpassword1234", "hunter2hunter2hunter2", "0011223344556677", "stop-test-key-0123456789"] {
            let e = MaskKey::configured(short.as_bytes()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("openssl rand -hex 32") && !e.contains(short), "{short}: {e}");
        }
        // The text is the material: the same key, written the same way, masks the same.
        let (k, _) = MaskKey::configured(hex.as_bytes()).unwrap();
        assert_eq!(k.fingerprint(), MaskKey::from_material(hex.as_bytes()).unwrap().fingerprint());
    }

    #[test]
    fn permutations_are_bijections() {
        let k = key();
        for n in [1u128, 2, 7, 10, 100, 1000, 65_536, 99_999] {
            let p = Permutation::new(&k, "t", n);
            let images: HashSet<u128> = (0..n).map(|x| p.apply(x)).collect();
            assert_eq!(images.len() as u128, n, "n = {n}");
            assert!(images.iter().all(|&y| y < n));
        }
    }

    #[test]
    fn the_full_permutation_keeps_the_extremes_apart() {
        let p = Permutation::full(&key(), "uuid");
        let images: HashSet<u128> = [0, 1, u128::MAX, u128::MAX - 1, 1 << 127].iter().map(|&x| p.apply(x)).collect();
        assert_eq!(images.len(), 5, "zero and the largest value no longer map alike");
    }

    #[test]
    fn a_million_inputs_give_a_million_outputs() {
        let k = key();
        let p = Permutation::new(&k, "big", 1u128 << 64);
        let mut seen = HashSet::with_capacity(1_000_000);
        for x in 0..1_000_000u128 {
            assert!(seen.insert(p.apply(x)));
        }
    }
}
