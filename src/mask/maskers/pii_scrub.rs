//! The pii_scrub masker: finds emails, phone numbers, card numbers
//! (Luhn-checked), IBANs (mod-97 checked) and IP addresses inside free text
//! and replaces only those spans.

use std::sync::Arc;

use rand::Rng;

use super::super::{MaskError, Masker, Seeder};

/// Finds personal data inside free text and replaces only those spans.
pub struct PiiScrub {
    pub finder: regex::Regex,
    pub email: Arc<dyn Masker>,
    pub email_seeder: Seeder,
    pub phone: Arc<dyn Masker>,
    pub phone_seeder: Seeder,
    pub ip: Arc<dyn Masker>,
    pub ip_seeder: Seeder,
}

/// The kinds of span [`PiiScrub`] finds, in the order of its pattern's groups.
pub const PII_PATTERN: &str = concat!(
    r"(?P<email>[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,})",
    r"|(?P<iban>\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b)",
    r"|(?P<card>\b[0-9](?:[ \-]?[0-9]){12,18}\b)",
    r"|(?P<ip6>\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b|\b(?:[0-9A-Fa-f]{1,4}:){1,7}:(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?)",
    r"|(?P<ip4>\b(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}\b)",
    r"|(?P<phone>(?:\+|\b00)[1-9][0-9]{0,2}[ .\-]?(?:\(?[0-9]{1,4}\)?[ .\-]?){2,5}[0-9]{2,4}\b|\(?\b[0-9]{3}\)?[ .\-][0-9]{3}[ .\-][0-9]{4}\b)",
);

/// Luhn check over the digits of a card-number-like span.
pub fn luhn_ok(s: &str) -> bool {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
    match digits.split_last() {
        Some((&check, body)) if digits.len() >= 13 => super::ids::luhn_digit(body) == check,
        _ => false,
    }
}

/// IBAN mod-97 check.
pub fn iban_ok(s: &str) -> bool {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.len() < 15 || compact.len() > 34 {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut rem: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let v = match c.to_digit(36) {
            Some(v) => v,
            None => return false,
        };
        for d in v.to_string().chars() {
            rem = (rem * 10 + d.to_digit(10).unwrap_or(0)) % 97;
        }
    }
    rem == 1
}

fn replace_digits_keyed(span: &str, s: &Seeder, luhn: bool) -> String {
    let mut rng = s.rng(span.as_bytes());
    let mut out: Vec<char> =
        span.chars().map(|c| if c.is_ascii_digit() { (b'0' + rng.random_range(0..10u8)) as char } else { c }).collect();
    if luhn {
        // Fix the last digit so the fake number still passes Luhn.
        if let Some(last) = out.iter().rposition(|c| c.is_ascii_digit()) {
            for d in 0..10u8 {
                out[last] = (b'0' + d) as char;
                if luhn_ok(&out.iter().collect::<String>()) {
                    break;
                }
            }
        }
    }
    out.into_iter().collect()
}

impl Masker for PiiScrub {
    fn mask(&self, v: &str, s: &Seeder) -> Result<Option<String>, MaskError> {
        // Every kind it finds has an '@' or a digit: text with neither passes
        // without running the pattern.
        if !v.bytes().any(|b| b == b'@' || b.is_ascii_digit()) {
            return Ok(Some(v.to_string()));
        }
        let mut out = String::with_capacity(v.len());
        let mut last = 0;
        for caps in self.finder.captures_iter(v) {
            let Some(m) = caps.get(0) else { continue };
            let span = m.as_str();
            let replacement = if caps.name("email").is_some() {
                self.email.mask(span, &self.email_seeder)?
            } else if caps.name("iban").is_some() {
                if !iban_ok(span) {
                    continue;
                }
                Some(replace_digits_keyed(span, s, false))
            } else if caps.name("card").is_some() {
                if !luhn_ok(span) {
                    continue;
                }
                Some(replace_digits_keyed(span, s, true))
            } else if caps.name("ip4").is_some() || caps.name("ip6").is_some() {
                if span.parse::<std::net::IpAddr>().is_err() {
                    continue;
                }
                self.ip.mask(span, &self.ip_seeder)?
            } else {
                self.phone.mask(span, &self.phone_seeder)?
            };
            out.push_str(&v[last..m.start()]);
            out.push_str(&replacement.unwrap_or_default());
            last = m.end();
        }
        out.push_str(&v[last..]);
        Ok(Some(out))
    }
}
