//! The maskers themselves. Each is small: it turns one value into another,
//! drawing every choice from the generator seeded for that value. The two
//! with engines of their own have files of their own: [`json`] (values at
//! paths inside documents) and [`pii_scrub`] (spans inside free text).

use std::sync::Arc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{MaskError, MaskKey, Masker, Permutation, Person, Seeder};

mod general;
mod geo;
mod ids;
mod json;
mod pii_scrub;
mod web;

pub use general::{
    password_hash, Choice, Coarsen, GeneralizeDate, GeneralizeNumber, PasswordHash, Period, RandomNumber, Truncate,
};
pub use geo::{Axis, Coordinate, GeoPoint};
pub use ids::luhn_digit as ids_luhn_digit;
pub use ids::{Bic, CardNumber, DigitPerms, Digits, Iban, Imei, MacAddress, NationalId, NationalIdKind, VatNumber};
pub use web::{DomainName, Url, UserAgent};

pub use json::{parse_json_path, JsonPaths, PathStep};
pub use pii_scrub::{iban_ok, luhn_ok, PiiScrub, PII_PATTERN};

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
    pub states: &'static [&'static str],
    pub state_abbr: &'static [&'static str],
    pub country_codes: &'static [&'static str],
    pub job_seniority: &'static [&'static str],
    pub job_field: &'static [&'static str],
    pub job_position: &'static [&'static str],
    pub user_agents: &'static [&'static str],
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
            states: <$t as Data>::ADDRESS_STATE,
            state_abbr: <$t as Data>::ADDRESS_STATE_ABBR,
            country_codes: <$t as Data>::ADDRESS_COUNTRY_CODE,
            job_seniority: <$t as Data>::JOB_SENIORITY,
            job_field: <$t as Data>::JOB_FIELD,
            job_position: <$t as Data>::JOB_POSITION,
            user_agents: <$t as Data>::INTERNET_USER_AGENT,
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
/// The names a value's seed draws first: what [`Email`], [`Username`] and
/// [`Name`] are made of, and so the person a `person:` group is built on.
fn draw_person(rng: &mut ChaCha8Rng, locale: &Locale) -> Person {
    let first = pick(rng, locale.first_names);
    let last = pick(rng, locale.last_names);
    Person { first, last }
}

/// A masker made of a person's names (email, username, the name parts):
/// it masks a value alone with the person the value's own seed draws, and
/// as a `person:` group's member with the group's person.
trait PersonPart {
    fn locale(&self) -> &Locale;
    /// The output for `v` with the names of `person` (or its own).
    fn make(&self, v: &str, s: &Seeder, person: Option<&Person>) -> String;
}

impl<T: PersonPart + Send + Sync> Masker for T {
    fn mask(&self, v: &str, s: &Seeder) -> Result<Option<String>, MaskError> {
        Ok(Some(self.make(v, s, None)))
    }
    fn person(&self, v: &str, s: &Seeder) -> Option<Person> {
        Some(draw_person(&mut s.rng(v.as_bytes()), self.locale()))
    }
    fn mask_person(&self, v: &str, s: &Seeder, p: &Person) -> Option<Result<Option<String>, MaskError>> {
        Some(Ok(Some(self.make(v, s, Some(p)))))
    }
}

impl PersonPart for Email {
    fn locale(&self) -> &Locale {
        &self.locale
    }
    fn make(&self, v: &str, s: &Seeder, person: Option<&Person>) -> String {
        let seed = s.seed(v.as_bytes());
        let mut rng = <ChaCha8Rng as rand::SeedableRng>::from_seed(seed);
        let own = draw_person(&mut rng, &self.locale);
        let p = person.unwrap_or(&own);
        let (first, last) = (ascii_slug(p.first), ascii_slug(p.last));
        let domain = match &self.domain {
            Some(d) => d.clone(),
            None => pick(&mut rng, &["example.com", "example.org", "example.net"]).to_string(),
        };
        // The tag comes from the value itself, so the address stays unique
        // whoever's names it carries.
        let tail = format!(".{}@{domain}", tag(&seed, 13));
        let (first, last) = fit_names(first, last, self.max_chars.map(|m| m.saturating_sub(tail.len() + 1)));
        format!("{first}.{last}{tail}")
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
    /// `A. S.`
    Initials,
    /// `Alice S.`
    Display,
}

/// The first letter of a name, upper case.
fn initial(name: &str) -> String {
    name.chars().next().map(|c| c.to_uppercase().collect()).unwrap_or_default()
}

pub struct Name {
    pub locale: Locale,
    pub part: NamePart,
}
impl PersonPart for Name {
    fn locale(&self) -> &Locale {
        &self.locale
    }
    fn make(&self, v: &str, s: &Seeder, person: Option<&Person>) -> String {
        let own;
        let p = match person {
            Some(p) => p,
            None => {
                own = draw_person(&mut s.rng(v.as_bytes()), &self.locale);
                &own
            }
        };
        let (first, last) = (p.first, p.last);
        match self.part {
            NamePart::First => first.to_string(),
            NamePart::Last => last.to_string(),
            NamePart::Full => format!("{first} {last}"),
            NamePart::Initials => format!("{}. {}.", initial(first), initial(last)),
            NamePart::Display => format!("{first} {}.", initial(last)),
        }
    }
}

/// `firstlast_tag`: injective.
pub struct Username {
    pub locale: Locale,
    pub max_chars: Option<usize>,
}
impl PersonPart for Username {
    fn locale(&self) -> &Locale {
        &self.locale
    }
    fn make(&self, v: &str, s: &Seeder, person: Option<&Person>) -> String {
        let seed = s.seed(v.as_bytes());
        let mut rng = <ChaCha8Rng as rand::SeedableRng>::from_seed(seed);
        let own = draw_person(&mut rng, &self.locale);
        let p = person.unwrap_or(&own);
        let (first, last) =
            fit_names(ascii_slug(p.first), ascii_slug(p.last), self.max_chars.map(|m| m.saturating_sub(14)));
        format!("{first}{last}_{}", tag(&seed, 13))
    }
}

/// Keeps the original's format (separators, length, a leading `+CC` or
/// `00CC` prefix) and permutes the remaining digits with a keyed
/// permutation, so distinct numbers stay distinct.
pub struct Phone {
    /// One permutation per digit count (1 to 30), built once.
    perms: DigitPerms,
    pub keep_country: bool,
}

impl Phone {
    pub fn new(key: &MaskKey, purpose: &str, keep_country: bool) -> Self {
        Phone { perms: DigitPerms::new(key, purpose), keep_country }
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
        let value: Vec<u8> = digits.iter().map(|&i| chars[i] as u8 - b'0').collect();
        // Past 30 digits, no permutation: keyed random digits.
        let new_digits = self.perms.apply(&value).unwrap_or_else(|| {
            let mut rng = s.rng(v.as_bytes());
            digits.iter().map(|_| rng.random_range(0..10u8)).collect()
        });
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
    /// A street name without a number.
    StreetName,
    /// A house number.
    BuildingNumber,
    State,
    StateAbbr,
    CountryCode,
    JobTitle,
    Word,
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
            AddressPart::StreetName => format!("{} {}", pick(&mut rng, l.last_names), pick(&mut rng, l.street_suffix)),
            AddressPart::BuildingNumber => rng.random_range(1..2000).to_string(),
            AddressPart::State => pick(&mut rng, or_en(l.states, |e| e.states)).to_string(),
            AddressPart::StateAbbr => pick(&mut rng, or_en(l.state_abbr, |e| e.state_abbr)).to_string(),
            AddressPart::CountryCode => pick(&mut rng, or_en(l.country_codes, |e| e.country_codes)).to_string(),
            AddressPart::JobTitle => format!(
                "{} {} {}",
                pick(&mut rng, or_en(l.job_seniority, |e| e.job_seniority)),
                pick(&mut rng, or_en(l.job_field, |e| e.job_field)),
                pick(&mut rng, or_en(l.job_position, |e| e.job_position))
            ),
            AddressPart::Word => pick(&mut rng, l.words).to_string(),
        }))
    }
}

/// A locale's list, or English's when the locale has none.
fn or_en(list: &'static [&'static str], en: fn(&Locale) -> &'static [&'static str]) -> &'static [&'static str] {
    if list.is_empty() {
        locale("en").map(|l| en(&l)).unwrap_or(list)
    } else {
        list
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
        let v6 = match 128 - keep_prefix.min(128) {
            128 => Permutation::full(key, &format!("{purpose}/128")),
            free => Permutation::new(key, &format!("{purpose}/128"), 1u128 << free),
        };
        Ip { v4: Permutation::new(key, &format!("{purpose}/32"), 1u128 << (32 - keep_prefix.min(32))), v6, keep_prefix }
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

/// One part of a `from_row` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowPart {
    Text(String),
    /// The masked value of this column in the same row.
    Column(String),
    /// A 13-character keyed tag of the value itself (65 bits).
    Tag,
}

/// A `from_row` template: made from the other columns of its row, which the
/// mask stage hands it ([`crate::mask::rows`]); it cannot mask a value alone.
pub struct RowTemplate {
    pub parts: Vec<RowPart>,
}
impl Masker for RowTemplate {
    fn mask(&self, _: &str, _: &Seeder) -> Result<Option<String>, MaskError> {
        Err(MaskError("a from_row template is made from its row, not from a value alone".into()))
    }
    fn row_parts(&self) -> Option<&[RowPart]> {
        Some(&self.parts)
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
