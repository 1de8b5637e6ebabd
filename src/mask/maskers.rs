//! The maskers themselves. Each is small: it turns one value into another,
//! drawing every choice from the generator seeded for that value.

use std::sync::Arc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{MaskError, MaskKey, Masker, Permutation, Seeder};

/// Word lists of one locale, from the `fake` crate.
#[derive(Clone, Copy)]
pub struct Locale {
    pub first_names: &'static [&'static str],
    pub last_names: &'static [&'static str],
    pub cities_prefix: &'static [&'static str],
    pub cities_suffix: &'static [&'static str],
    pub street_suffix: &'static [&'static str],
    pub countries: &'static [&'static str],
    pub company_suffix: &'static [&'static str],
    pub words: &'static [&'static str],
}

macro_rules! locale {
    ($t:ty) => {
        Locale {
            first_names: <$t as Data>::NAME_FIRST_NAME,
            last_names: <$t as Data>::NAME_LAST_NAME,
            cities_prefix: <$t as Data>::ADDRESS_CITY_PREFIX,
            cities_suffix: <$t as Data>::ADDRESS_CITY_SUFFIX,
            street_suffix: <$t as Data>::ADDRESS_STREET_SUFFIX,
            countries: <$t as Data>::ADDRESS_COUNTRY,
            company_suffix: <$t as Data>::COMPANY_SUFFIX,
            words: <$t as Data>::LOREM_WORD,
        }
    };
}

/// Locales the name, address and text maskers accept.
pub const LOCALES: &[&str] = &["en", "fr_fr", "de_de", "it_it", "pt_br", "pt_pt", "ja_jp", "zh_cn", "zh_tw", "ar_sa"];

pub fn locale(name: &str) -> Option<Locale> {
    use fake::locales::{Data, *};
    Some(match name {
        "en" => locale!(EN),
        "fr_fr" => locale!(FR_FR),
        "de_de" => locale!(DE_DE),
        "it_it" => locale!(IT_IT),
        "pt_br" => locale!(PT_BR),
        "pt_pt" => locale!(PT_PT),
        "ja_jp" => locale!(JA_JP),
        "zh_cn" => locale!(ZH_CN),
        "zh_tw" => locale!(ZH_TW),
        "ar_sa" => locale!(AR_SA),
        _ => return None,
    })
}

fn pick<'a>(rng: &mut ChaCha8Rng, list: &[&'a str]) -> &'a str {
    if list.is_empty() {
        return "x";
    }
    list[rng.random_range(0..list.len())]
}

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// `n` base32 characters (5 bits each, at most 25) of a value's seed: its
/// keyed hash, so distinct values get distinct tags but for hash collisions.
pub fn tag(seed: &[u8; 32], n: usize) -> String {
    let mut bits: u128 = u128::from_le_bytes(seed[16..32].try_into().unwrap_or([0; 16]));
    let mut out = String::with_capacity(n);
    for _ in 0..n.min(25) {
        out.push(BASE32[(bits & 31) as usize] as char);
        bits >>= 5;
    }
    out
}

fn ascii_slug(s: &str) -> String {
    let slug: String =
        s.chars().filter_map(|c| if c.is_ascii_alphanumeric() { Some(c.to_ascii_lowercase()) } else { None }).collect();
    if slug.is_empty() {
        "user".to_string()
    } else {
        slug
    }
}

/// Always NULL.
pub struct Null;
impl Masker for Null {
    fn mask(&self, _: &str, _: &Seeder) -> Result<Option<String>, MaskError> {
        Ok(None)
    }
}

/// Always the same value.
pub struct Fixed(pub String);
impl Masker for Fixed {
    fn mask(&self, _: &str, _: &Seeder) -> Result<Option<String>, MaskError> {
        Ok(Some(self.0.clone()))
    }
}

/// Keeps length and character classes: letters become X/x, digits 9.
pub struct Redact;
impl Masker for Redact {
    fn mask(&self, v: &str, _: &Seeder) -> Result<Option<String>, MaskError> {
        Ok(Some(
            v.chars()
                .map(|c| {
                    if c.is_uppercase() {
                        'X'
                    } else if c.is_alphabetic() {
                        'x'
                    } else if c.is_numeric() {
                        '9'
                    } else {
                        c
                    }
                })
                .collect(),
        ))
    }
}

/// A keyed hash, hex or base32.
pub struct Hash {
    pub length: usize,
    pub base32: bool,
}
impl Masker for Hash {
    fn mask(&self, v: &str, s: &Seeder) -> Result<Option<String>, MaskError> {
        let seed = s.seed(v.as_bytes());
        let mut out = if self.base32 {
            let mut o = String::new();
            let mut rng = <ChaCha8Rng as rand::SeedableRng>::from_seed(seed);
            for b in seed.iter() {
                o.push(BASE32[(b & 31) as usize] as char);
            }
            while o.len() < self.length {
                o.push(BASE32[rng.random_range(0..32)] as char);
            }
            o
        } else {
            let mut o = hex::encode(seed);
            let mut rng = <ChaCha8Rng as rand::SeedableRng>::from_seed(seed);
            while o.len() < self.length {
                o.push_str(&format!("{:x}", rng.random::<u64>()));
            }
            o
        };
        out.truncate(self.length);
        Ok(Some(out))
    }
}

/// `first.last.tag@example.org`: realistic, deliverable nowhere (RFC 2606
/// domains), and injective thanks to a 65-bit keyed tag.
pub struct Email {
    pub locale: Locale,
    pub domain: Option<String>,
    /// The column's length: the name part is shortened to fit, the tag kept.
    pub max_chars: Option<usize>,
}
impl Masker for Email {
    fn mask(&self, v: &str, s: &Seeder) -> Result<Option<String>, MaskError> {
        let seed = s.seed(v.as_bytes());
        let mut rng = <ChaCha8Rng as rand::SeedableRng>::from_seed(seed);
        let first = ascii_slug(pick(&mut rng, self.locale.first_names));
        let last = ascii_slug(pick(&mut rng, self.locale.last_names));
        let domain = match &self.domain {
            Some(d) => d.clone(),
            None => pick(&mut rng, &["example.com", "example.org", "example.net"]).to_string(),
        };
        let tail = format!(".{}@{domain}", tag(&seed, 13));
        let (first, last) = fit_names(first, last, self.max_chars.map(|m| m.saturating_sub(tail.len() + 1)));
        Ok(Some(format!("{first}.{last}{tail}")))
    }
}

/// Shortens two name parts so together they take at most `budget` characters
/// (each keeps at least one).
fn fit_names(mut a: String, mut b: String, budget: Option<usize>) -> (String, String) {
    if let Some(budget) = budget {
        let budget = budget.max(2);
        while a.len() + b.len() > budget {
            if a.len() >= b.len() && a.len() > 1 {
                a.pop();
            } else if b.len() > 1 {
                b.pop();
            } else {
                break;
            }
        }
    }
    (a, b)
}

#[derive(Clone, Copy)]
pub enum NamePart {
    First,
    Last,
    Full,
}

pub struct Name {
    pub locale: Locale,
    pub part: NamePart,
}
impl Masker for Name {
    fn mask(&self, v: &str, s: &Seeder) -> Result<Option<String>, MaskError> {
        let mut rng = s.rng(v.as_bytes());
        let first = pick(&mut rng, self.locale.first_names);
        let last = pick(&mut rng, self.locale.last_names);
        Ok(Some(match self.part {
            NamePart::First => first.to_string(),
            NamePart::Last => last.to_string(),
            NamePart::Full => format!("{first} {last}"),
        }))
    }
}

/// `firstlast_tag`: injective.
pub struct Username {
    pub locale: Locale,
    pub max_chars: Option<usize>,
}
impl Masker for Username {
    fn mask(&self, v: &str, s: &Seeder) -> Result<Option<String>, MaskError> {
        let seed = s.seed(v.as_bytes());
        let mut rng = <ChaCha8Rng as rand::SeedableRng>::from_seed(seed);
        let first = ascii_slug(pick(&mut rng, self.locale.first_names));
        let last = ascii_slug(pick(&mut rng, self.locale.last_names));
        let (first, last) = fit_names(first, last, self.max_chars.map(|m| m.saturating_sub(14)));
        Ok(Some(format!("{first}{last}_{}", tag(&seed, 13))))
    }
}

/// Keeps the original's format (separators, length, a leading `+CC` or
/// `00CC` prefix) and permutes the remaining digits with a keyed
/// permutation, so distinct numbers stay distinct.
pub struct Phone {
    /// One permutation per digit count (1 to 30), built once.
    perms: Vec<Permutation>,
    pub keep_country: bool,
}

impl Phone {
    pub fn new(key: &MaskKey, purpose: &str, keep_country: bool) -> Self {
        let perms = (1..=30u32).map(|d| Permutation::new(key, &format!("{purpose}/{d}"), 10u128.pow(d))).collect();
        Phone { perms, keep_country }
    }
}
impl Masker for Phone {
    fn mask(&self, v: &str, s: &Seeder) -> Result<Option<String>, MaskError> {
        let chars: Vec<char> = v.chars().collect();
        // Digits that belong to the country prefix stay.
        let mut keep = vec![false; chars.len()];
        if self.keep_country {
            let start = chars.iter().position(|c| !c.is_whitespace()).unwrap_or(0);
            let mut i = start;
            let prefixed = if chars.get(i) == Some(&'+') {
                i += 1;
                true
            } else if chars.get(i) == Some(&'0') && chars.get(i + 1) == Some(&'0') {
                keep[i] = true;
                keep[i + 1] = true;
                i += 2;
                true
            } else {
                false
            };
            if prefixed {
                // Country codes are 1-3 digits, ended by a separator.
                let mut n = 0;
                while i < chars.len() && chars[i].is_ascii_digit() && n < 3 {
                    keep[i] = true;
                    i += 1;
                    n += 1;
                }
            }
        }
        let digits: Vec<usize> = (0..chars.len()).filter(|&i| chars[i].is_ascii_digit() && !keep[i]).collect();
        if digits.is_empty() {
            return Ok(Some(v.to_string()));
        }
        let new_digits: Vec<u8> = if let Some(p) = self.perms.get(digits.len() - 1) {
            let value: u128 = digits.iter().fold(0u128, |acc, &i| acc * 10 + u128::from(chars[i] as u8 - b'0'));
            let mut y = p.apply(value);
            let mut out = vec![0u8; digits.len()];
            for slot in out.iter_mut().rev() {
                *slot = (y % 10) as u8;
                y /= 10;
            }
            out
        } else {
            let mut rng = s.rng(v.as_bytes());
            digits.iter().map(|_| rng.random_range(0..10u8)).collect()
        };
        let mut out: Vec<char> = chars.clone();
        for (slot, d) in digits.iter().zip(new_digits) {
            out[*slot] = (b'0' + d) as char;
        }
        Ok(Some(out.into_iter().collect()))
    }
}

#[derive(Clone, Copy)]
pub enum AddressPart {
    Street,
    City,
    Country,
    Company,
}

pub struct Address {
    pub locale: Locale,
    pub part: AddressPart,
}
impl Masker for Address {
    fn mask(&self, v: &str, s: &Seeder) -> Result<Option<String>, MaskError> {
        let mut rng = s.rng(v.as_bytes());
        let l = &self.locale;
        Ok(Some(match self.part {
            AddressPart::Street => {
                format!(
                    "{} {} {}",
                    rng.random_range(1..2000),
                    pick(&mut rng, l.last_names),
                    pick(&mut rng, l.street_suffix)
                )
            }
            AddressPart::City => {
                if l.cities_prefix.is_empty() || rng.random_bool(0.5) {
                    format!("{}{}", pick(&mut rng, l.last_names), pick(&mut rng, l.cities_suffix))
                } else {
                    format!(
                        "{} {}{}",
                        pick(&mut rng, l.cities_prefix),
                        pick(&mut rng, l.first_names),
                        pick(&mut rng, l.cities_suffix)
                    )
                }
            }
            AddressPart::Country => pick(&mut rng, l.countries).to_string(),
            AddressPart::Company => format!("{} {}", pick(&mut rng, l.last_names), pick(&mut rng, l.company_suffix)),
        }))
    }
}

/// Keeps the shape of a postal code: digits stay digits, letters letters.
pub struct PostalCode;
impl Masker for PostalCode {
    fn mask(&self, v: &str, s: &Seeder) -> Result<Option<String>, MaskError> {
        let mut rng = s.rng(v.as_bytes());
        Ok(Some(
            v.chars()
                .map(|c| {
                    if c.is_ascii_digit() {
                        (b'0' + rng.random_range(0..10u8)) as char
                    } else if c.is_ascii_uppercase() {
                        (b'A' + rng.random_range(0..26u8)) as char
                    } else if c.is_ascii_lowercase() {
                        (b'a' + rng.random_range(0..26u8)) as char
                    } else {
                        c
                    }
                })
                .collect(),
        ))
    }
}

/// Lorem words of roughly the original's length.
pub struct Lorem {
    pub locale: Locale,
}
impl Masker for Lorem {
    fn mask(&self, v: &str, s: &Seeder) -> Result<Option<String>, MaskError> {
        let target = v.chars().count();
        let mut rng = s.rng(v.as_bytes());
        let mut out = String::with_capacity(target + 8);
        while out.chars().count() < target {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(pick(&mut rng, self.locale.words));
        }
        let out: String = out.chars().take(target.max(1)).collect();
        Ok(Some(out.trim_end().to_string()))
    }
}

/// Keeps the address family and the first `keep_prefix` bits, permutes the rest.
pub struct Ip {
    v4: Permutation,
    v6: Permutation,
    keep_prefix: u32,
}

impl Ip {
    pub fn new(key: &MaskKey, purpose: &str, keep_prefix: u32) -> Self {
        let domain = |bits: u32| {
            let free = bits - keep_prefix.min(bits);
            if free >= 128 {
                u128::MAX
            } else {
                1u128 << free
            }
        };
        Ip {
            v4: Permutation::new(key, &format!("{purpose}/32"), domain(32)),
            v6: Permutation::new(key, &format!("{purpose}/128"), domain(128)),
            keep_prefix,
        }
    }
}
impl Masker for Ip {
    fn mask(&self, v: &str, _: &Seeder) -> Result<Option<String>, MaskError> {
        let (addr_part, suffix) = match v.split_once('/') {
            Some((a, m)) => (a, Some(m)),
            None => (v, None),
        };
        let addr: std::net::IpAddr = addr_part.trim().parse().map_err(|_| MaskError("not an IP address".into()))?;
        let (bits, value) = match addr {
            std::net::IpAddr::V4(a) => (32u32, u128::from(u32::from(a))),
            std::net::IpAddr::V6(a) => (128u32, u128::from(a)),
        };
        let keep = self.keep_prefix.min(bits);
        let free = bits - keep;
        let masked = if free == 0 {
            value
        } else {
            let low_mask = if free == 128 { u128::MAX } else { (1u128 << free) - 1 };
            let p = if bits == 32 { &self.v4 } else { &self.v6 };
            (value & !low_mask) | (p.apply(value & low_mask) & low_mask)
        };
        let out = match addr {
            std::net::IpAddr::V4(_) => std::net::Ipv4Addr::from(masked as u32).to_string(),
            std::net::IpAddr::V6(_) => std::net::Ipv6Addr::from(masked).to_string(),
        };
        Ok(Some(match suffix {
            Some(m) => format!("{out}/{m}"),
            None => out,
        }))
    }
}

/// A keyed permutation of the 128 bits of a UUID.
pub struct Uuid {
    pub perm: Permutation,
}
impl Masker for Uuid {
    fn mask(&self, v: &str, _: &Seeder) -> Result<Option<String>, MaskError> {
        let hexs: String = v.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        if hexs.len() != 32 {
            return Err(MaskError("not a UUID".into()));
        }
        let x = u128::from_str_radix(&hexs, 16).map_err(|_| MaskError("not a UUID".into()))?;
        let y = self.perm.apply(x);
        let h = format!("{y:032x}");
        Ok(Some(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])))
    }
}

/// A keyed permutation of an integer range: injective.
pub struct Integer {
    pub min: i128,
    pub max: i128,
    pub perm: Permutation,
}
impl Masker for Integer {
    fn mask(&self, v: &str, _: &Seeder) -> Result<Option<String>, MaskError> {
        let x: i128 = v.trim().parse().map_err(|_| MaskError("not an integer".into()))?;
        if x < self.min || x > self.max {
            return Err(MaskError(format!("value outside the masker's range [{}, {}]", self.min, self.max)));
        }
        let off = (x - self.min) as u128;
        Ok(Some((self.min + self.perm.apply(off) as i128).to_string()))
    }
}

/// Adds ± `percent` noise, keeping the number of decimals.
pub struct NumericNoise {
    pub percent: f64,
}
impl Masker for NumericNoise {
    fn mask(&self, v: &str, s: &Seeder) -> Result<Option<String>, MaskError> {
        let t = v.trim();
        if matches!(t, "NaN" | "Infinity" | "-Infinity") {
            return Ok(Some(t.to_string()));
        }
        let x: f64 = t.parse().map_err(|_| MaskError("not a number".into()))?;
        let scale = t.split_once('.').map(|(_, f)| f.chars().take_while(|c| c.is_ascii_digit()).count()).unwrap_or(0);
        let mut rng = s.rng(v.as_bytes());
        let factor = 1.0 + rng.random_range(-self.percent..=self.percent) / 100.0;
        let y = x * factor;
        if !t.contains('.') && !t.contains(['e', 'E']) {
            return Ok(Some(format!("{}", y.round() as i128)));
        }
        Ok(Some(format!("{y:.scale$}")))
    }
}

/// Shifts a date or timestamp by a keyed number of days in ±`days`.
pub struct Shift {
    pub days: i64,
    pub keep_time: bool,
}
impl Masker for Shift {
    fn mask(&self, v: &str, s: &Seeder) -> Result<Option<String>, MaskError> {
        let t = v.trim();
        if matches!(t, "infinity" | "-infinity") {
            return Ok(Some(t.to_string()));
        }
        let mut rng = s.rng(v.as_bytes());
        let shift = rng.random_range(-self.days..=self.days);
        let secs = if self.keep_time { 0 } else { rng.random_range(0..86_400i64) };
        // ISO output: "YYYY-MM-DD[ HH:MM:SS[.ffffff][+TZ]]".
        let (date_part, rest) = t.split_at(t.find(' ').unwrap_or(t.len()));
        let date = chrono::NaiveDate::parse_from_str(date_part, "%Y-%m-%d")
            .map_err(|_| MaskError("not an ISO date".into()))?;
        let shifted = date + chrono::Duration::days(shift);
        if rest.is_empty() {
            return Ok(Some(shifted.format("%Y-%m-%d").to_string()));
        }
        let rest = rest.trim_start();
        let time_end = rest.find(['+', '-']).unwrap_or(rest.len());
        let (time_s, tz) = rest.split_at(time_end);
        let time = chrono::NaiveTime::parse_from_str(time_s, "%H:%M:%S%.f")
            .map_err(|_| MaskError("not an ISO timestamp".into()))?;
        let (time, carry) = if self.keep_time {
            (time, 0)
        } else {
            let dt = chrono::NaiveDate::from_ymd_opt(2000, 1, 1)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|base| base + chrono::Duration::seconds(secs))
                .ok_or_else(|| MaskError("time out of range".into()))?;
            (dt.time(), 0)
        };
        let day = shifted + chrono::Duration::days(carry);
        Ok(Some(format!("{} {}{}", day.format("%Y-%m-%d"), time.format("%H:%M:%S"), tz)))
    }
}

/// A date of birth giving an age within [min_age, max_age] on `as_of`.
pub struct DateOfBirth {
    pub earliest: chrono::NaiveDate,
    pub span_days: i64,
}
impl Masker for DateOfBirth {
    fn mask(&self, v: &str, s: &Seeder) -> Result<Option<String>, MaskError> {
        let mut rng = s.rng(v.as_bytes());
        let d = self.earliest + chrono::Duration::days(rng.random_range(0..=self.span_days.max(0)));
        Ok(Some(d.format("%Y-%m-%d").to_string()))
    }
}

/// Regex replacement with capture groups.
pub struct RegexReplace {
    pub re: regex::Regex,
    pub replacement: String,
}
impl Masker for RegexReplace {
    fn mask(&self, v: &str, _: &Seeder) -> Result<Option<String>, MaskError> {
        Ok(Some(self.re.replace_all(v, self.replacement.as_str()).into_owned()))
    }
}

/// Keeps the first and last N characters, masks the middle.
pub struct Partial {
    pub keep_first: usize,
    pub keep_last: usize,
    pub mask_char: char,
}
impl Masker for Partial {
    fn mask(&self, v: &str, _: &Seeder) -> Result<Option<String>, MaskError> {
        let chars: Vec<char> = v.chars().collect();
        let n = chars.len();
        Ok(Some(
            chars
                .iter()
                .enumerate()
                .map(|(i, &c)| if i < self.keep_first || i + self.keep_last >= n { c } else { self.mask_char })
                .collect(),
        ))
    }
}

/// A template of literal text and `{masker}` parts, each fed the original value.
pub struct Template {
    pub parts: Vec<TemplatePart>,
}
pub enum TemplatePart {
    Text(String),
    Masker(Arc<dyn Masker>, Seeder),
}
impl Masker for Template {
    fn mask(&self, v: &str, _: &Seeder) -> Result<Option<String>, MaskError> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                TemplatePart::Text(t) => out.push_str(t),
                TemplatePart::Masker(m, s) => out.push_str(&m.mask(v, s)?.unwrap_or_default()),
            }
        }
        Ok(Some(out))
    }
}

/// Masks values at JSON paths (`$.a.b`, `$.list[*].c`, `$.list[0]`).
pub struct JsonPaths {
    pub paths: Vec<(Vec<PathStep>, Arc<dyn Masker>, Seeder)>,
}
#[derive(Debug, Clone, PartialEq)]
pub enum PathStep {
    Key(String),
    Index(usize),
    All,
}

pub fn parse_json_path(p: &str) -> Result<Vec<PathStep>, String> {
    let rest = p.strip_prefix('$').ok_or_else(|| format!("JSON path '{p}' must start with '$'"))?;
    let mut steps = Vec::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                let mut key = String::new();
                while let Some(&n) = chars.peek() {
                    if n == '.' || n == '[' {
                        break;
                    }
                    key.push(n);
                    chars.next();
                }
                if key.is_empty() {
                    return Err(format!("JSON path '{p}' has an empty key"));
                }
                steps.push(PathStep::Key(key));
            }
            '[' => {
                let mut inner = String::new();
                for n in chars.by_ref() {
                    if n == ']' {
                        break;
                    }
                    inner.push(n);
                }
                let inner = inner.trim();
                if inner == "*" {
                    steps.push(PathStep::All);
                } else if let Ok(i) = inner.parse() {
                    steps.push(PathStep::Index(i));
                } else {
                    let key = inner.trim_matches(['\'', '"']);
                    steps.push(PathStep::Key(key.to_string()));
                }
            }
            _ => return Err(format!("JSON path '{p}': unexpected '{c}'")),
        }
    }
    Ok(steps)
}

/// The tree walk over a parsed document that [`apply_raw`] must agree with
/// (up to formatting): the tests' reference.
#[cfg(test)]
fn apply_path(v: &mut serde_json::Value, steps: &[PathStep], m: &dyn Masker, s: &Seeder) -> Result<(), MaskError> {
    let Some((first, rest)) = steps.split_first() else {
        let replacement = match v {
            serde_json::Value::String(t) => m.mask(t, s)?.map(serde_json::Value::String),
            serde_json::Value::Number(n) => m.mask(&n.to_string(), s)?.map(|r| {
                r.parse::<serde_json::Number>().map(serde_json::Value::Number).unwrap_or(serde_json::Value::String(r))
            }),
            serde_json::Value::Bool(_) | serde_json::Value::Null => return Ok(()),
            // A whole object or array at the path: its string leaves are masked.
            serde_json::Value::Array(items) => {
                for item in items {
                    apply_path(item, &[], m, s)?;
                }
                return Ok(());
            }
            serde_json::Value::Object(map) => {
                for (_, item) in map.iter_mut() {
                    apply_path(item, &[], m, s)?;
                }
                return Ok(());
            }
        };
        *v = replacement.unwrap_or(serde_json::Value::Null);
        return Ok(());
    };
    match (first, v) {
        (PathStep::Key(k), serde_json::Value::Object(map)) => {
            if let Some(child) = map.get_mut(k) {
                apply_path(child, rest, m, s)?;
            }
        }
        (PathStep::Index(i), serde_json::Value::Array(items)) => {
            if let Some(child) = items.get_mut(*i) {
                apply_path(child, rest, m, s)?;
            }
        }
        (PathStep::All, serde_json::Value::Array(items)) => {
            for child in items {
                apply_path(child, rest, m, s)?;
            }
        }
        (PathStep::All, serde_json::Value::Object(map)) => {
            for (_, child) in map.iter_mut() {
                apply_path(child, rest, m, s)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The members of a JSON object as they are written: every key (a key
/// given twice stays twice) with its value's text.
struct Members<'a>(Vec<(String, &'a serde_json::value::RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Members<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Members<'a>, A::Error> {
                let mut out = Vec::new();
                while let Some(member) = map.next_entry()? {
                    out.push(member);
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

fn json_error(e: serde_json::Error) -> MaskError {
    MaskError(format!("not valid JSON (line {}, column {})", e.line(), e.column()))
}

/// Applies one path to the JSON text `raw`: only the objects and arrays on
/// the path are taken apart and written again (compactly); every other
/// value keeps its text. At the end of the path a string or number is
/// masked (a number as its text, and kept a number when the masker gives
/// one), a whole object or array has its string and number leaves masked,
/// and `true`, `false` and `null` stay. `None` when nothing changed.
fn apply_raw(raw: &str, steps: &[PathStep], m: &dyn Masker, s: &Seeder) -> Result<Option<String>, MaskError> {
    let text = raw.trim_start();
    let Some(&kind) = text.as_bytes().first() else { return Ok(None) };
    let Some((first, rest)) = steps.split_first() else {
        return match kind {
            b'"' => {
                let t: std::borrow::Cow<str> = serde_json::from_str(raw).map_err(json_error)?;
                m.mask(&t, s)?.map_or(Ok(Some("null".into())), |v| json_string(&v).map(Some))
            }
            b'{' | b'[' => rewrite(raw, |_, _| Some(&[]), m, s),
            b't' | b'f' | b'n' => Ok(None),
            _ => {
                match m.mask(serde_json::from_str::<&serde_json::value::RawValue>(raw).map_err(json_error)?.get(), s)? {
                    Some(v) if is_json_number(&v) => Ok(Some(v)),
                    Some(v) => json_string(&v).map(Some),
                    None => Ok(Some("null".into())),
                }
            }
        };
    };
    match (kind, first) {
        (b'{', PathStep::Key(want)) => rewrite(raw, |_, k| (k == Some(want.as_str())).then_some(rest), m, s),
        (b'[', PathStep::Index(want)) => rewrite(raw, |i, _| (i == *want).then_some(rest), m, s),
        (b'{' | b'[', PathStep::All) => rewrite(raw, |_, _| Some(rest), m, s),
        _ => Ok(None),
    }
}

/// Rewrites the object or array `raw` when the members or items that
/// `on_path` names (by position, and key for a member) change: the path's
/// rest for each of them.
fn rewrite<'p>(
    raw: &str,
    on_path: impl Fn(usize, Option<&str>) -> Option<&'p [PathStep]>,
    m: &dyn Masker,
    s: &Seeder,
) -> Result<Option<String>, MaskError> {
    let object = raw.trim_start().starts_with('{');
    let parts: Vec<(Option<String>, &serde_json::value::RawValue)> = if object {
        let Members(members) = serde_json::from_str(raw).map_err(json_error)?;
        members.into_iter().map(|(k, v)| (Some(k), v)).collect()
    } else {
        let items: Vec<&serde_json::value::RawValue> = serde_json::from_str(raw).map_err(json_error)?;
        items.into_iter().map(|v| (None, v)).collect()
    };
    let mut masked = Vec::with_capacity(parts.len());
    for (i, (k, v)) in parts.iter().enumerate() {
        masked.push(match on_path(i, k.as_deref()) {
            Some(rest) => apply_raw(v.get(), rest, m, s)?,
            None => None,
        });
    }
    if masked.iter().all(Option::is_none) {
        return Ok(None);
    }
    let mut out = String::with_capacity(raw.len() + 16);
    out.push(if object { '{' } else { '[' });
    for (i, ((k, v), new)) in parts.iter().zip(&masked).enumerate() {
        if i > 0 {
            out.push(',');
        }
        if let Some(k) = k {
            out.push_str(&json_string(k)?);
            out.push(':');
        }
        out.push_str(new.as_deref().unwrap_or(v.get()));
    }
    out.push(if object { '}' } else { ']' });
    Ok(Some(out))
}

fn json_string(v: &str) -> Result<String, MaskError> {
    serde_json::to_string(v).map_err(|e| MaskError(format!("writing JSON: {e}")))
}

/// Whether `v` is one JSON number, as it may be written into a document.
fn is_json_number(v: &str) -> bool {
    v.starts_with(|c: char| c == '-' || c.is_ascii_digit())
        && serde_json::from_str::<&serde_json::value::RawValue>(v).is_ok_and(|r| r.get() == v)
}

impl Masker for JsonPaths {
    /// Each path in turn, on the text the ones before it left. A document
    /// no path matches comes out as it went in.
    fn mask(&self, v: &str, _: &Seeder) -> Result<Option<String>, MaskError> {
        let mut doc = std::borrow::Cow::Borrowed(v);
        for (steps, m, s) in &self.paths {
            if let Some(new) = apply_raw(&doc, steps, m.as_ref(), s)? {
                doc = std::borrow::Cow::Owned(new);
            }
        }
        if let std::borrow::Cow::Borrowed(_) = doc {
            // Taking the document apart checked it; nothing did.
            serde_json::from_str::<&serde_json::value::RawValue>(v).map_err(json_error)?;
        }
        Ok(Some(doc.into_owned()))
    }
}

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
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() < 13 {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
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
    sum.is_multiple_of(10)
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

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::super::registry::{self, BuildCx};
    use super::super::{ColumnInfo, MaskKey};

    /// What the paths do not name comes out as it went in, text and all:
    /// numbers keep their digits (a jsonb numeric keeps `1.10`; a number
    /// past f64's precision or range is not rounded), strings their
    /// escapes, nested values their spacing. A key given twice is masked
    /// twice and kept twice.
    #[test]
    fn json_keeps_what_it_does_not_mask_as_it_was() {
        let key = MaskKey::from_material(b"json-numbers-test-key-0123456789").unwrap();
        let options: Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"paths": {"$.email": "email", "$.n": "integer"}}"#).unwrap();
        let column = ColumnInfo::from_type("json", false, false);
        let spec = registry::spec_string("json", &options);
        let cx = BuildCx { key: &key, column: &column, purpose: format!("d/{spec}"), domain: "d".into() };
        let m = registry::find("json").unwrap().build(&options, &cx).unwrap();
        let seeder = key.seeder("d", &spec);
        let doc = r#"{"price": 1.10, "big": 123456789012345678901234, "tiny": 1e-400, "e": 1E2, "n": 42, "email": "a@b.co", "list": [0.50, -0], "meta": {"k": "caf\u00e9",  "x": [1, 2]}, "email": "second@b.co"}"#;
        let out = m.mask(doc, &seeder).unwrap().unwrap();
        for kept in [
            r#"{"price":1.10,"#,
            r#""big":123456789012345678901234,"#,
            r#""tiny":1e-400,"#,
            r#""e":1E2,"#,
            r#""list":[0.50, -0],"#,
            r#""meta":{"k": "caf\u00e9",  "x": [1, 2]},"#,
        ] {
            assert!(out.contains(kept), "{kept} is not in {out}");
        }
        assert_eq!(out.matches(r#""email":""#).count(), 2, "{out}");
        assert!(!out.contains("a@b.co") && !out.contains("second@b.co") && !out.contains(r#""n":42,"#), "{out}");
        // A document that no path matches is left as it is.
        let other = r#"{ "a": [1,  2], "b": {"c": null} }"#;
        assert_eq!(m.mask(other, &seeder).unwrap().as_deref(), Some(other));
        assert!(m.mask(r#"{"email": "x@y.z""#, &seeder).is_err(), "invalid JSON is an error");
        // The whole document at `$`: a JSON value is masked, other text refused.
        let options: Map<String, serde_json::Value> = serde_json::from_str(r#"{"paths": {"$": "redact"}}"#).unwrap();
        let spec = registry::spec_string("json", &options);
        let cx = BuildCx { key: &key, column: &column, purpose: format!("d/{spec}"), domain: "d".into() };
        let whole = registry::find("json").unwrap().build(&options, &cx).unwrap();
        assert_eq!(whole.mask(r#" "Ab1" "#, &seeder).unwrap().as_deref(), Some(r#""Xx9""#));
        assert_eq!(whole.mask("12", &seeder).unwrap().as_deref(), Some("99"));
        assert!(whole.mask("hello", &seeder).is_err(), "text that is not JSON is an error");
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            (-1000i64..1000).prop_map(serde_json::Value::from),
            "[a-z@. ]{0,8}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
                proptest::collection::btree_map("[abc]", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Rewriting only what is on the paths gives the document the
        /// tree walk gives: the same values, whatever the input's spacing.
        #[test]
        fn json_masks_as_the_tree_walk_does(doc in json_value(), pretty: bool) {
            let key = MaskKey::from_material(b"json-tree-test-key-0123456789").unwrap();
            let options: Map<String, serde_json::Value> = serde_json::from_str(
                r#"{"paths": {"$.a": "redact", "$.b[*]": "redact", "$.c.a": "redact", "$[1]": "redact", "$[*].b": "redact"}}"#,
            )
            .unwrap();
            let column = ColumnInfo::from_type("jsonb", false, false);
            let spec = registry::spec_string("json", &options);
            let cx = BuildCx { key: &key, column: &column, purpose: format!("d/{spec}"), domain: "d".into() };
            let m = registry::find("json").unwrap().build(&options, &cx).unwrap();
            let seeder = key.seeder("d", &spec);
            let text = if pretty { serde_json::to_string_pretty(&doc) } else { serde_json::to_string(&doc) }.unwrap();
            let out = m.mask(&text, &seeder).unwrap().unwrap();
            let mut expected = doc.clone();
            for p in ["$.a", "$.b[*]", "$.c.a", "$[1]", "$[*].b"] {
                let steps = super::parse_json_path(p).unwrap();
                super::apply_path(&mut expected, &steps, &super::Redact, &seeder).unwrap();
            }
            let got: serde_json::Value = serde_json::from_str(&out).unwrap();
            proptest::prop_assert_eq!(got, expected);
        }
    }
}
