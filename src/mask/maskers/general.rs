//! Maskers that coarsen a value instead of replacing it (dates to their
//! month, numbers to their bucket, text to a prefix), that draw from a
//! list or a range, and the development password hash.

use rand::Rng;

use super::super::{MaskError, Masker, Seeder};

/// The period a date is generalized to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Month,
    Quarter,
    Year,
}

/// A date or timestamp moved to the first day of its month, quarter or
/// year (a timestamp's time to midnight, its time zone kept).
pub struct GeneralizeDate {
    pub to: Period,
}
impl Masker for GeneralizeDate {
    fn mask(&self, v: &str, _: &Seeder) -> Result<Option<String>, MaskError> {
        let t = v.trim();
        if matches!(t, "infinity" | "-infinity") {
            return Ok(Some(t.to_string()));
        }
        // Dates before year 1 end in " BC"; the period keeps it.
        let (t, era) = match t.strip_suffix(" BC") {
            Some(rest) => (rest, " BC"),
            None => (t, ""),
        };
        let bad = || MaskError("not an ISO date or timestamp".into());
        let date_end = t.find([' ', 'T']).unwrap_or(t.len());
        let date = chrono::NaiveDate::parse_from_str(&t[..date_end], "%Y-%m-%d").map_err(|_| bad())?;
        use chrono::Datelike;
        let month = match self.to {
            Period::Month => date.month(),
            Period::Quarter => (date.month() - 1) / 3 * 3 + 1,
            Period::Year => 1,
        };
        let first = chrono::NaiveDate::from_ymd_opt(date.year(), month, 1).ok_or_else(bad)?;
        let rest = &t[date_end..];
        if rest.is_empty() {
            return Ok(Some(format!("{}{era}", first.format("%Y-%m-%d"))));
        }
        // Keep the zone: whatever follows the time of day's digits and colons.
        let time = rest.get(1..).unwrap_or("");
        let zone_at = time.find(['+', '-', 'Z', ' ']).unwrap_or(time.len());
        Ok(Some(format!("{} 00:00:00{}{era}", first.format("%Y-%m-%d"), &time[zone_at..])))
    }
}

/// How a number is generalized.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Coarsen {
    /// Down to a multiple of this.
    Bucket(f64),
    /// Rounded to this many significant digits.
    Digits(u32),
}

/// A number rounded down to its bucket or to a few significant digits,
/// written with the original's number of decimals.
pub struct GeneralizeNumber {
    pub how: Coarsen,
}
impl Masker for GeneralizeNumber {
    fn mask(&self, v: &str, _: &Seeder) -> Result<Option<String>, MaskError> {
        let t = v.trim();
        if matches!(t, "NaN" | "Infinity" | "-Infinity") {
            return Ok(Some(t.to_string()));
        }
        let x: f64 = t.parse().map_err(|_| MaskError("not a number".into()))?;
        let y = match self.how {
            // A quotient a hair under a whole number (0.3 / 0.1) is that number.
            Coarsen::Bucket(b) => ((x / b) + 1e-9).floor() * b,
            // Toward zero, so the result never outgrows the column (32767 to
            // 32000, not 33000).
            Coarsen::Digits(d) => {
                if x == 0.0 {
                    0.0
                } else {
                    let mag = 10f64.powi(x.abs().log10().floor() as i32 + 1 - d as i32);
                    ((x / mag) + 1e-9 * (x / mag).signum()).trunc() * mag
                }
            }
        };
        let scale = t.split_once('.').map(|(_, f)| f.chars().take_while(|c| c.is_ascii_digit()).count()).unwrap_or(0);
        if t.contains(['e', 'E']) {
            return Ok(Some(format!("{y}")));
        }
        Ok(Some(format!("{y:.scale$}")))
    }
}

/// The first `keep` characters (a postal district, an area code).
pub struct Truncate {
    pub keep: usize,
}
impl Masker for Truncate {
    fn mask(&self, v: &str, _: &Seeder) -> Result<Option<String>, MaskError> {
        Ok(Some(v.chars().take(self.keep).collect()))
    }
}

/// One of a list of values, by weight, chosen by the value's seed.
pub struct Choice {
    pub values: Vec<(String, f64)>,
    pub total: f64,
}
impl Masker for Choice {
    fn mask(&self, v: &str, s: &Seeder) -> Result<Option<String>, MaskError> {
        let mut rng = s.rng(v.as_bytes());
        let mut at = rng.random_range(0.0..self.total);
        for (value, w) in &self.values {
            if at < *w {
                return Ok(Some(value.clone()));
            }
            at -= w;
        }
        Ok(self.values.last().map(|(v, _)| v.clone()))
    }
}

/// A number drawn uniformly from [min, max] with a number of decimals.
pub struct RandomNumber {
    pub min: f64,
    pub max: f64,
    pub decimals: usize,
}
impl Masker for RandomNumber {
    fn mask(&self, v: &str, s: &Seeder) -> Result<Option<String>, MaskError> {
        let mut rng = s.rng(v.as_bytes());
        let scale = 10f64.powi(self.decimals as i32);
        let lo = (self.min * scale).ceil() as i64;
        let hi = (self.max * scale).floor() as i64;
        let n = rng.random_range(lo..=hi.max(lo));
        let d = self.decimals;
        if d == 0 {
            return Ok(Some(n.to_string()));
        }
        Ok(Some(format!("{:.d$}", n as f64 / scale)))
    }
}

/// One fixed hash, the same for every row: a valid password hash of a
/// known development password, so every account's login works in
/// development with that password.
pub struct PasswordHash {
    pub hash: String,
}
impl Masker for PasswordHash {
    fn mask(&self, _: &str, _: &Seeder) -> Result<Option<String>, MaskError> {
        Ok(Some(self.hash.clone()))
    }
}

/// The hash of `password` with a salt derived from the masking key, so
/// every run writes the same hash: bcrypt (`$2b$`) or argon2id (PHC string).
pub fn password_hash(algorithm: &str, password: &str, cost: u32, salt: [u8; 16]) -> Result<String, String> {
    match algorithm {
        "bcrypt" => bcrypt::hash_with_salt(password, cost, salt)
            .map(|h| h.format_for_version(bcrypt::Version::TwoB))
            .map_err(|e| format!("bcrypt: {e}")),
        "argon2id" => {
            use argon2::password_hash::{PasswordHasher, SaltString};
            let salt = SaltString::encode_b64(&salt).map_err(|e| format!("argon2: {e}"))?;
            argon2::Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| format!("argon2: {e}"))
        }
        other => Err(format!("option 'algorithm' must be bcrypt or argon2id, not '{other}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::MaskKey;

    #[test]
    fn coarsening() {
        let k = MaskKey::from_material(b"general-test-key-0123456789").unwrap();
        let s = k.seeder("d", "x");
        let m = |to| GeneralizeDate { to };
        assert_eq!(m(Period::Month).mask("2024-03-17", &s).unwrap().unwrap(), "2024-03-01");
        assert_eq!(m(Period::Quarter).mask("2024-08-17", &s).unwrap().unwrap(), "2024-07-01");
        assert_eq!(m(Period::Year).mask("2024-08-17 10:11:12.5+02", &s).unwrap().unwrap(), "2024-01-01 00:00:00+02");
        assert_eq!(m(Period::Month).mask("2024-08-17 10:11:12", &s).unwrap().unwrap(), "2024-08-01 00:00:00");
        let n = |how| GeneralizeNumber { how };
        assert_eq!(n(Coarsen::Bucket(10.0)).mask("57", &s).unwrap().unwrap(), "50");
        assert_eq!(n(Coarsen::Bucket(1000.0)).mask("-1234.50", &s).unwrap().unwrap(), "-2000.00");
        assert_eq!(n(Coarsen::Digits(2)).mask("123456", &s).unwrap().unwrap(), "120000");
        assert_eq!(n(Coarsen::Digits(2)).mask("0.012345", &s).unwrap().unwrap(), "0.012000");
        assert_eq!(n(Coarsen::Digits(2)).mask("32767", &s).unwrap().unwrap(), "32000", "stays in smallint");
        assert_eq!(n(Coarsen::Digits(2)).mask("99.99", &s).unwrap().unwrap(), "99.00", "stays in numeric(4,2)");
        assert_eq!(n(Coarsen::Bucket(0.1)).mask("0.30", &s).unwrap().unwrap(), "0.30");
        assert_eq!(m(Period::Month).mask("0044-03-15 BC", &s).unwrap().unwrap(), "0044-03-01 BC");
        assert_eq!(Truncate { keep: 4 }.mask("SW1A 1AA", &s).unwrap().unwrap(), "SW1A");
        let r = RandomNumber { min: 1.0, max: 2.0, decimals: 2 };
        let x: f64 = r.mask("a", &s).unwrap().unwrap().parse().unwrap();
        assert!((1.0..=2.0).contains(&x));
    }

    #[test]
    fn password_hashes_verify() {
        let h = password_hash("bcrypt", "dev", 4, [7; 16]).unwrap();
        assert!(h.starts_with("$2b$04$") && bcrypt::verify("dev", &h).unwrap());
        let h = password_hash("argon2id", "dev", 0, [7; 16]).unwrap();
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        let parsed = PasswordHash::new(&h).unwrap();
        assert!(argon2::Argon2::default().verify_password(b"dev", &parsed).is_ok());
        assert_eq!(h, password_hash("argon2id", "dev", 0, [7; 16]).unwrap(), "deterministic");
    }
}
