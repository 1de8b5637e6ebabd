//! Identifiers with a structure: account and card numbers, national and tax
//! identifiers, MAC addresses, bank codes.
//!
//! Each keeps the original's layout (separators, spaces, letter case) and
//! replaces its digits through a keyed permutation of the digit string, so
//! distinct identifiers of one format stay distinct, then writes check
//! digits that make the result valid again (Luhn, ISO 7064 mod 97, the
//! national rules). Where some digit strings are not valid identifiers
//! (an SSN's area 666, a BSN whose check would be 10), the permutation
//! walks on until it lands on a valid one, which keeps it a bijection of
//! the valid identifiers.

use rand::Rng;

use super::super::{MaskError, MaskKey, Masker, Permutation, Seeder};

/// Keyed permutations of digit strings, one per length (1 to 30 digits).
pub struct DigitPerms {
    perms: Vec<Permutation>,
}

impl DigitPerms {
    pub fn new(key: &MaskKey, purpose: &str) -> Self {
        DigitPerms {
            perms: (1..=30u32).map(|d| Permutation::new(key, &format!("{purpose}/{d}"), 10u128.pow(d))).collect(),
        }
    }

    /// One step of the permutation of strings of `digits.len()` digits
    /// (values 0 to 9); `None` for none or more than 30 digits.
    pub fn apply(&self, digits: &[u8]) -> Option<Vec<u8>> {
        let p = self.perms.get(digits.len().checked_sub(1)?)?;
        let x: u128 = digits.iter().fold(0u128, |acc, &d| acc * 10 + u128::from(d));
        Some(to_digits(p.apply(x), digits.len()))
    }

    /// The image of a string of `digits.len()` digits that satisfies
    /// `valid`, walking the permutation's cycle from `digits`.
    pub fn permute(&self, digits: &[u8], valid: impl Fn(&[u8]) -> bool) -> Result<Vec<u8>, MaskError> {
        let too_many = || MaskError("too many digits".into());
        let mut out = self.apply(digits).ok_or_else(too_many)?;
        for _ in 0..10_000 {
            if valid(&out) {
                return Ok(out);
            }
            out = self.apply(&out).ok_or_else(too_many)?;
        }
        Err(MaskError("no valid identifier of this format".into()))
    }
}

fn to_digits(mut x: u128, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    for slot in out.iter_mut().rev() {
        *slot = (x % 10) as u8;
        x /= 10;
    }
    out
}

/// The positions and values of a value's ASCII digits.
fn digits_of(v: &str) -> (Vec<usize>, Vec<u8>) {
    v.char_indices().filter(|(_, c)| c.is_ascii_digit()).map(|(i, c)| (i, c as u8 - b'0')).unzip()
}

/// `v` with the digits at `positions` (byte offsets of ASCII digits)
/// replaced by `digits`.
fn put_digits(v: &str, positions: &[usize], digits: &[u8]) -> String {
    let mut bytes = v.as_bytes().to_vec();
    for (&p, &d) in positions.iter().zip(digits) {
        bytes[p] = b'0' + d;
    }
    // Only ASCII digits were replaced by ASCII digits: still UTF-8.
    String::from_utf8(bytes).unwrap_or_default()
}

/// The Luhn check digit for `body` (the digits before it).
pub fn luhn_digit(body: &[u8]) -> u8 {
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// Every digit but the first `keep` and the last permuted, the last made
/// the Luhn check digit again.
fn luhn_mask(
    perms: &DigitPerms,
    v: &str,
    keep: usize,
    brand: bool,
    min: usize,
    what: &str,
) -> Result<String, MaskError> {
    let (pos, digits) = digits_of(v);
    if digits.len() < min || digits.len() > 30 || keep + 1 >= digits.len() {
        return Err(MaskError(format!("not a {what}")));
    }
    // With a brand kept, the output must name the same brand with as many
    // digits (a Maestro 5018... may not come out as a Mastercard 51...):
    // walking on past other bodies keeps each brand's numbers apart.
    let prefix = &digits[..keep];
    let body =
        perms.permute(&digits[keep..digits.len() - 1], |b| !brand || brand_digits(&[prefix, b].concat()) == keep)?;
    let mut out: Vec<u8> = prefix.to_vec();
    out.extend(body);
    out.push(luhn_digit(&out));
    Ok(put_digits(v, &pos, &out))
}

/// How many leading digits name a card's brand (scheme).
fn brand_digits(d: &[u8]) -> usize {
    let n = |k: usize| d.iter().take(k).fold(0u32, |a, &x| a * 10 + u32::from(x));
    match (n(1), n(2), n(3), n(4)) {
        (4, ..) => 1,
        (_, 34 | 37 | 51..=55 | 35 | 62 | 65 | 36 | 38 | 30, ..) => 2,
        (_, _, 644..=649, _) => 3,
        (_, _, _, 2221..=2720 | 6011) => 4,
        _ => 1,
    }
}

/// A Luhn-valid card number of the same length and layout.
pub struct CardNumber {
    pub perms: DigitPerms,
    pub keep_brand: bool,
}
impl Masker for CardNumber {
    fn mask(&self, v: &str, _: &Seeder) -> Result<Option<String>, MaskError> {
        let (_, digits) = digits_of(v);
        let keep = if self.keep_brand { brand_digits(&digits) } else { 0 };
        luhn_mask(&self.perms, v, keep, self.keep_brand, 12, "card number (12 to 19 digits)").map(Some)
    }
}

/// A Luhn-valid IMEI (15 digits), optionally keeping the 8-digit type code.
pub struct Imei {
    pub perms: DigitPerms,
    pub keep_tac: bool,
}
impl Masker for Imei {
    fn mask(&self, v: &str, _: &Seeder) -> Result<Option<String>, MaskError> {
        if digits_of(v).1.len() != 15 {
            return Err(MaskError("not an IMEI (15 digits)".into()));
        }
        luhn_mask(&self.perms, v, if self.keep_tac { 8 } else { 0 }, false, 15, "IMEI").map(Some)
    }
}

/// Every digit permuted, everything else kept: account numbers, references.
pub struct Digits {
    pub perms: DigitPerms,
}
impl Masker for Digits {
    fn mask(&self, v: &str, _: &Seeder) -> Result<Option<String>, MaskError> {
        let (pos, digits) = digits_of(v);
        if digits.is_empty() {
            return Ok(Some(v.to_string()));
        }
        let out = self.perms.permute(&digits, |_| true)?;
        Ok(Some(put_digits(v, &pos, &out)))
    }
}

/// The ISO 7064 mod-97 remainder of alphanumeric text (letters A=10 ... Z=35).
fn mod97(chars: impl Iterator<Item = char>) -> Option<u32> {
    let mut rem = 0u32;
    for c in chars {
        let v = c.to_digit(36)?;
        rem = if v >= 10 { (rem * 100 + v) % 97 } else { (rem * 10 + v) % 97 };
    }
    Some(rem)
}

/// An IBAN of the same country, length and layout, with valid check digits;
/// the account's digits permuted, letters of the bank code kept.
pub struct Iban {
    pub perms: DigitPerms,
}
impl Masker for Iban {
    fn mask(&self, v: &str, _: &Seeder) -> Result<Option<String>, MaskError> {
        let bad = || MaskError("not an IBAN".into());
        let alnum: Vec<(usize, char)> = v.char_indices().filter(|(_, c)| c.is_ascii_alphanumeric()).collect();
        if alnum.len() < 5 || alnum.len() > 34 || v.chars().any(|c| !c.is_ascii_alphanumeric() && c != ' ' && c != '-')
        {
            return Err(bad());
        }
        if !(alnum[0].1.is_ascii_alphabetic() && alnum[1].1.is_ascii_alphabetic()) {
            return Err(bad());
        }
        if !(alnum[2].1.is_ascii_digit() && alnum[3].1.is_ascii_digit()) {
            return Err(bad());
        }
        let bban = &alnum[4..];
        let digit_pos: Vec<usize> = bban.iter().filter(|(_, c)| c.is_ascii_digit()).map(|(i, _)| *i).collect();
        let digits: Vec<u8> = bban.iter().filter(|(_, c)| c.is_ascii_digit()).map(|(_, c)| *c as u8 - b'0').collect();
        let new_digits = if digits.is_empty() { Vec::new() } else { self.perms.permute(&digits, |_| true)? };
        let mut out = put_digits(v, &digit_pos, &new_digits);
        let upper: Vec<char> =
            out.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect();
        let rem =
            mod97(upper[4..].iter().copied().chain(upper[..2].iter().copied()).chain("00".chars())).ok_or_else(bad)?;
        let check = 98 - rem;
        out = put_digits(&out, &[alnum[2].0, alnum[3].0], &[(check / 10) as u8, (check % 10) as u8]);
        Ok(Some(out))
    }
}

/// Which country's national identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NationalIdKind {
    /// United States Social Security number: 9 digits, area 001-899 but
    /// 666, group 01-99, serial 0001-9999.
    UsSsn,
    /// Netherlands BSN: 9 digits passing the eleven test.
    NlBsn,
    /// Spain DNI: 8 digits and a check letter.
    EsDni,
    /// Brazil CPF: 9 digits and two check digits.
    BrCpf,
}

impl NationalIdKind {
    pub const NAMES: &'static [&'static str] = &["us", "nl", "es", "br"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "us" => NationalIdKind::UsSsn,
            "nl" => NationalIdKind::NlBsn,
            "es" => NationalIdKind::EsDni,
            "br" => NationalIdKind::BrCpf,
            _ => return None,
        })
    }
}

fn ssn_ok(d: &[u8]) -> bool {
    let area = u32::from(d[0]) * 100 + u32::from(d[1]) * 10 + u32::from(d[2]);
    let group = d[3] * 10 + d[4];
    let serial = d[5..9].iter().any(|&x| x != 0);
    area != 0 && area != 666 && area < 900 && group != 0 && serial
}

fn bsn_check(d: &[u8]) -> u32 {
    d.iter().take(8).enumerate().map(|(i, &x)| (9 - i as u32) * u32::from(x)).sum::<u32>() % 11
}

fn cpf_digit(d: &[u8], weight_start: u32) -> u8 {
    let s: u32 = d.iter().enumerate().map(|(i, &x)| (weight_start - i as u32) * u32::from(x)).sum();
    let r = s % 11;
    if r < 2 {
        0
    } else {
        (11 - r) as u8
    }
}

const DNI_LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";

/// A valid national identifier of the same country and layout.
pub struct NationalId {
    pub perms: DigitPerms,
    pub kind: NationalIdKind,
}
impl Masker for NationalId {
    fn mask(&self, v: &str, _: &Seeder) -> Result<Option<String>, MaskError> {
        let (pos, digits) = digits_of(v);
        let wrong = |what: &str| Err(MaskError(format!("not {what}")));
        match self.kind {
            NationalIdKind::UsSsn => {
                if digits.len() != 9 {
                    return wrong("a US SSN (9 digits)");
                }
                let out = self.perms.permute(&digits, ssn_ok)?;
                Ok(Some(put_digits(v, &pos, &out)))
            }
            NationalIdKind::NlBsn => {
                if digits.len() != 9 {
                    return wrong("a BSN (9 digits)");
                }
                let mut out = self.perms.permute(&digits[..8], |d| bsn_check(d) <= 9)?;
                out.push(bsn_check(&out) as u8);
                Ok(Some(put_digits(v, &pos, &out)))
            }
            NationalIdKind::EsDni => {
                let letter = v.char_indices().rfind(|(_, c)| c.is_ascii_alphabetic());
                let (Some((li, lc)), 8) = (letter, digits.len()) else {
                    return wrong("a DNI (8 digits and a letter)");
                };
                let out = self.perms.permute(&digits, |_| true)?;
                let n = out.iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
                let mut s = put_digits(v, &pos, &out);
                let mut l = DNI_LETTERS[(n % 23) as usize] as char;
                if lc.is_ascii_lowercase() {
                    l = l.to_ascii_lowercase();
                }
                s.replace_range(li..li + 1, &l.to_string());
                Ok(Some(s))
            }
            NationalIdKind::BrCpf => {
                if digits.len() != 11 {
                    return wrong("a CPF (11 digits)");
                }
                let mut out = self.perms.permute(&digits[..9], |d| d.iter().any(|&x| x != d[0]))?;
                out.push(cpf_digit(&out, 10));
                out.push(cpf_digit(&out, 11));
                Ok(Some(put_digits(v, &pos, &out)))
            }
        }
    }
}

/// ISO 7064 MOD 11,10 check digit (German VAT numbers).
fn mod11_10(d: &[u8]) -> u8 {
    let mut p = 10u32;
    for &x in d {
        let mut s = (u32::from(x) + p) % 10;
        if s == 0 {
            s = 10;
        }
        p = (2 * s) % 11;
    }
    ((11 - p) % 10) as u8
}

/// A VAT number with the same country prefix and layout: digits permuted,
/// check digits recomputed for DE, BE and FR.
pub struct VatNumber {
    pub perms: DigitPerms,
}
impl Masker for VatNumber {
    fn mask(&self, v: &str, _: &Seeder) -> Result<Option<String>, MaskError> {
        let (pos, digits) = digits_of(v);
        if digits.is_empty() {
            return Err(MaskError("not a VAT number (no digits)".into()));
        }
        let country: String = v.trim_start().chars().take(2).collect::<String>().to_ascii_uppercase();
        let out = match (country.as_str(), digits.len()) {
            // German numbers do not start with 0.
            ("DE", 9) => {
                let mut o = self.perms.permute(&digits[..8], |d| d[0] != 0)?;
                o.push(mod11_10(&o));
                o
            }
            // Belgian numbers start with 0 or 1.
            ("BE", 10) => {
                let mut o = self.perms.permute(&digits[..8], |d| d[0] <= 1)?;
                let n = o.iter().fold(0u64, |a, &x| a * 10 + u64::from(x));
                let c = 97 - (n % 97) as u8;
                o.extend([c / 10, c % 10]);
                o
            }
            ("FR", 11) => {
                // The SIREN carries a Luhn check digit of its own.
                let siren = self.perms.permute(&digits[2..], |d| luhn_digit(&d[..8]) == d[8])?;
                let n = siren.iter().fold(0u64, |a, &x| a * 10 + u64::from(x));
                let key = ((12 + 3 * (n % 97)) % 97) as u8;
                let mut o = vec![key / 10, key % 10];
                o.extend(siren);
                o
            }
            _ => self.perms.permute(&digits, |_| true)?,
        };
        Ok(Some(put_digits(v, &pos, &out)))
    }
}

/// A MAC address in the same notation: its 48 bits permuted, or only the
/// 24 device bits when the manufacturer's prefix (OUI) is kept.
pub struct MacAddress {
    pub perm: Permutation,
    pub keep_oui: bool,
}
impl Masker for MacAddress {
    fn mask(&self, v: &str, _: &Seeder) -> Result<Option<String>, MaskError> {
        let hex: Vec<(usize, char)> = v.char_indices().filter(|(_, c)| c.is_ascii_hexdigit()).collect();
        if hex.len() != 12 || v.chars().any(|c| !c.is_ascii_hexdigit() && !matches!(c, ':' | '-' | '.' | ' ')) {
            return Err(MaskError("not a MAC address".into()));
        }
        let x = hex.iter().fold(0u64, |a, (_, c)| (a << 4) | u64::from(c.to_digit(16).unwrap_or(0)));
        let y = if self.keep_oui {
            (x & 0xffff_ff00_0000) | self.perm.apply(u128::from(x & 0xff_ffff)) as u64
        } else {
            self.perm.apply(u128::from(x)) as u64
        };
        let upper = hex.iter().any(|(_, c)| c.is_ascii_uppercase());
        let mut out: Vec<u8> = v.as_bytes().to_vec();
        for (k, (i, _)) in hex.iter().enumerate() {
            let nib = ((y >> (4 * (11 - k))) & 0xf) as u8;
            let c = b"0123456789abcdef"[nib as usize];
            out[*i] = if upper { c.to_ascii_uppercase() } else { c };
        }
        Ok(Some(String::from_utf8(out).unwrap_or_default()))
    }
}

/// A BIC (SWIFT code) of the same length and country: bank and location
/// letters drawn from the value's seed; a branch of XXX stays XXX.
pub struct Bic;
impl Masker for Bic {
    fn mask(&self, v: &str, s: &Seeder) -> Result<Option<String>, MaskError> {
        let t = v.trim();
        if !(t.len() == 8 || t.len() == 11) || !t.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(MaskError("not a BIC (8 or 11 letters and digits)".into()));
        }
        let mut rng = s.rng(v.as_bytes());
        let mut out = String::with_capacity(11);
        for _ in 0..4 {
            out.push((b'A' + rng.random_range(0..26u8)) as char);
        }
        out.push_str(&t[4..6].to_ascii_uppercase());
        for _ in 0..2 {
            out.push(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[rng.random_range(0..36usize)] as char);
        }
        if t.len() == 11 {
            if t[8..].eq_ignore_ascii_case("XXX") {
                out.push_str("XXX");
            } else {
                for _ in 0..3 {
                    out.push((b'0' + rng.random_range(0..10u8)) as char);
                }
            }
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::super::pii_scrub::{iban_ok, luhn_ok};
    use super::*;

    fn key() -> MaskKey {
        MaskKey::from_material(b"ids-test-key-0123456789abcdef").unwrap()
    }

    #[test]
    fn outputs_are_valid_and_keep_layout() {
        let k = key();
        let s = k.seeder("d", "x");
        let perms = || DigitPerms::new(&k, "t");
        let iban = Iban { perms: perms() };
        for v in ["DE89 3704 0044 0532 0130 00", "GB29NWBK60161331926819", "fr1420041010050500013m02606"] {
            let out = iban.mask(v, &s).unwrap().unwrap();
            assert_eq!(out.len(), v.len());
            assert!(iban_ok(&out.to_ascii_uppercase()), "{out}");
            assert_eq!(&out[..2], &v[..2]);
            assert_ne!(out, v);
        }
        let card = CardNumber { perms: perms(), keep_brand: true };
        let out = card.mask("4111-1111-1111-1111", &s).unwrap().unwrap();
        assert!(luhn_ok(&out) && out.starts_with('4') && out.len() == 19, "{out}");
        let out = card.mask("378282246310005", &s).unwrap().unwrap();
        assert!(luhn_ok(&out) && out.starts_with("37"), "{out}");
        // A one-digit brand never comes out as a two-digit one.
        for i in 0..300u64 {
            let body = format!("5018{i:011}");
            let d: Vec<u8> = body.bytes().map(|b| b - b'0').collect();
            let out = card.mask(&format!("{body}{}", luhn_digit(&d)), &s).unwrap().unwrap();
            let o: Vec<u8> = out.bytes().map(|b| b - b'0').collect();
            assert_eq!(brand_digits(&o), 1, "{out}");
        }
        let imei = Imei { perms: perms(), keep_tac: true };
        let out = imei.mask("490154203237518", &s).unwrap().unwrap();
        assert!(luhn_ok(&out) && out.starts_with("49015420"), "{out}");
        let ssn = NationalId { perms: perms(), kind: NationalIdKind::UsSsn };
        for i in 0..2000u32 {
            let out = ssn.mask(&format!("{:03}-{:02}-{:04}", 1 + i % 600, 1 + i % 99, 1 + i), &s).unwrap().unwrap();
            let d: Vec<u8> = out.bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
            assert!(ssn_ok(&d) && out.as_bytes()[3] == b'-', "{out}");
        }
        let bsn = NationalId { perms: perms(), kind: NationalIdKind::NlBsn };
        let out = bsn.mask("111222333", &s).unwrap().unwrap();
        let d: Vec<u8> = out.bytes().map(|b| b - b'0').collect();
        assert_eq!(bsn_check(&d), u32::from(d[8]));
        let dni = NationalId { perms: perms(), kind: NationalIdKind::EsDni };
        let out = dni.mask("12345678Z", &s).unwrap().unwrap();
        let n: u32 = out[..8].parse().unwrap();
        assert_eq!(out.as_bytes()[8], DNI_LETTERS[(n % 23) as usize]);
        let cpf = NationalId { perms: perms(), kind: NationalIdKind::BrCpf };
        let out = cpf.mask("529.982.247-25", &s).unwrap().unwrap();
        let d: Vec<u8> = out.bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
        assert_eq!((cpf_digit(&d[..9], 10), cpf_digit(&d[..10], 11)), (d[9], d[10]), "{out}");
        assert_eq!(cpf_digit(&[5, 2, 9, 9, 8, 2, 2, 4, 7], 10), 2, "the reference CPF's first check digit");
        let vat = VatNumber { perms: perms() };
        let out = vat.mask("DE136695976", &s).unwrap().unwrap();
        let d: Vec<u8> = out.bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
        assert_eq!(mod11_10(&d[..8]), d[8]);
        assert_eq!(mod11_10(&[1, 3, 6, 6, 9, 5, 9, 7]), 6, "a known valid German VAT number");
        let mac = MacAddress { perm: Permutation::new(&k, "m", 1 << 24), keep_oui: true };
        let out = mac.mask("00:1A:2B:3C:4D:5E", &s).unwrap().unwrap();
        assert!(out.starts_with("00:1A:2B:") && out.len() == 17, "{out}");
        assert!(Bic.mask("DEUTDEFF500", &s).unwrap().unwrap()[4..6].eq("DE"));
        for bad in ["", "abc", "12-34"] {
            assert!(iban.mask(bad, &s).is_err() && ssn.mask(bad, &s).is_err() && mac.mask(bad, &s).is_err());
        }
    }
}
