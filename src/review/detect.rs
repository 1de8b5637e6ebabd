//! Personal-data suspicion: from a column's name, and from a sample of its
//! values. Sampled values are matched and counted, never kept or printed.

use std::sync::OnceLock;

use regex::Regex;

use crate::mask::maskers::{iban_ok, luhn_ok};

/// A kind of personal or secret data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Email,
    Phone,
    Name,
    Address,
    Birth,
    NationalId,
    Passport,
    Iban,
    Card,
    Ip,
    Secret,
    Geo,
    Mac,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::Name => "name",
            Kind::Address => "address",
            Kind::Birth => "birth date",
            Kind::NationalId => "national id",
            Kind::Passport => "passport",
            Kind::Iban => "iban",
            Kind::Card => "card number",
            Kind::Ip => "ip address",
            Kind::Secret => "secret/token",
            Kind::Geo => "geolocation",
            Kind::Mac => "mac address",
        }
    }
}

fn name_rules() -> &'static [(Kind, Regex)] {
    static RULES: OnceLock<Vec<(Kind, Regex)>> = OnceLock::new();
    RULES.get_or_init(|| {
        let r = |k, p: &str| Regex::new(p).ok().map(|re| (k, re));
        [
            r(Kind::Email, r"(?i)e_?mail"),
            r(Kind::Phone, r"(?i)phone|mobile|(^|_)cell(_|$)|(^|_)fax(_|$)|(^|_)tel(_|$)|msisdn"),
            r(Kind::Name, r"(?i)^(first|last|full|middle|given|family|sur|maiden|display|contact|customer|person|user|owner|holder)_?name$|^(surname|fullname|forename)$"),
            r(Kind::Address, r"(?i)address|street|(^|_)city(_|$)|(^|_)zip(_|$)|postal|postcode|(^|_)addr(_|$)"),
            r(Kind::Birth, r"(?i)birth|(^|_)dob(_|$)"),
            r(Kind::NationalId, r"(?i)(^|_)ssn(_|$)|social_?sec|national_?id|tax_?id|(^|_)nin(_|$)|(^|_)sin(_|$)|personal_?(id|number)"),
            r(Kind::Passport, r"(?i)passport|driver_?licen[cs]e|licen[cs]e_?(no|number)"),
            r(Kind::Iban, r"(?i)iban|account_?(no|num|number)|(^|_)bic(_|$)|routing"),
            r(Kind::Card, r"(?i)(^|_)card(_|$)|card_?(no|num|number)|(^|_)pan(_|$)|(^|_)ccn?(_|$)|(^|_)cvv|credit"),
            r(Kind::Ip, r"(?i)(^|_)ip(_|$)|ip_?addr|remote_?addr|client_?addr"),
            r(Kind::Secret, r"(?i)token|api_?key|secret|password|passwd|(^|_)pwd(_|$)|private_?key|auth_?key|session_?key"),
            r(Kind::Geo, r"(?i)(^|_)lat(itude)?(_|$)|(^|_)(lon|lng)(g|gitude)?(_|$)|(^|_)geo|location|coordinates"),
            r(Kind::Mac, r"(?i)(^|_)mac(_|$)|mac_?addr|hw_?addr|(^|_)bssid(_|$)"),
        ]
        .into_iter()
        .flatten()
        .collect()
    })
}

/// Kinds suggested by a column name.
pub fn by_name(column: &str) -> Vec<Kind> {
    name_rules().iter().filter(|(_, re)| re.is_match(column)).map(|(k, _)| *k).collect()
}

/// Kinds suggested by a column name in its table: a bare `name` is a
/// person's name in a table of people, not in a table of products.
pub fn by_name_in(table: &str, column: &str) -> Vec<Kind> {
    let mut kinds = by_name(column);
    static PEOPLE: OnceLock<Option<Regex>> = OnceLock::new();
    let people = PEOPLE.get_or_init(|| {
        Regex::new(r"(?i)user|customer|person|people|employee|member|contact|patient|client|account|author|owner|staff|student|guest|applicant|driver|tenant").ok()
    });
    if column.eq_ignore_ascii_case("name") && people.as_ref().is_some_and(|re| re.is_match(table)) {
        kinds.push(Kind::Name);
    }
    kinds
}

struct ValueDetectors {
    email: Regex,
    phone: Regex,
    card: Regex,
    iban: Regex,
    ip: Regex,
    ssn: Regex,
    mac: Regex,
    jwt: Regex,
    api_key: Regex,
}

fn detectors() -> Option<&'static ValueDetectors> {
    static D: OnceLock<Option<ValueDetectors>> = OnceLock::new();
    D.get_or_init(|| {
        Some(ValueDetectors {
            email: Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}").ok()?,
            phone: Regex::new(r"(?:\+|\b00)[1-9][0-9]{0,2}[ .\-]?(?:\(?[0-9]{1,4}\)?[ .\-]?){2,5}[0-9]{2,4}\b|\(?\b[0-9]{3}\)?[ .\-][0-9]{3}[ .\-][0-9]{4}\b").ok()?,
            card: Regex::new(r"\b[0-9](?:[ \-]?[0-9]){12,18}\b").ok()?,
            iban: Regex::new(r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b").ok()?,
            ip: Regex::new(r"\b(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}\b|\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b").ok()?,
            ssn: Regex::new(r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b").ok()?,
            mac: Regex::new(r"\b[0-9A-Fa-f]{2}(?:[:\-][0-9A-Fa-f]{2}){5}\b").ok()?,
            jwt: Regex::new(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}").ok()?,
            api_key: Regex::new(r"\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}\b|\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{36}\b|\bxox[abpr]-[A-Za-z0-9\-]{10,}").ok()?,
        })
    })
    .as_ref()
}

/// Kinds found inside one value (anywhere in it, so free text counts).
pub fn in_value(v: &str) -> Vec<Kind> {
    let Some(d) = detectors() else { return Vec::new() };
    let mut out = Vec::new();
    if d.email.is_match(v) {
        out.push(Kind::Email);
    }
    if d.card.find_iter(v).any(|m| luhn_ok(m.as_str())) {
        out.push(Kind::Card);
    } else if d.phone.is_match(v) {
        out.push(Kind::Phone);
    }
    if d.iban.find_iter(v).any(|m| iban_ok(m.as_str())) {
        out.push(Kind::Iban);
    }
    if d.ip.find_iter(v).any(|m| m.as_str().parse::<std::net::IpAddr>().is_ok()) {
        out.push(Kind::Ip);
    }
    if d.ssn.is_match(v) {
        out.push(Kind::NationalId);
    }
    if d.mac.is_match(v) {
        out.push(Kind::Mac);
    }
    if d.jwt.is_match(v) || d.api_key.is_match(v) {
        out.push(Kind::Secret);
    }
    out
}

/// The kinds a value is as a whole (trimmed): the structured identifiers
/// whose maskers refuse anything else.
pub fn whole_value(v: &str) -> Vec<Kind> {
    let Some(d) = detectors() else { return Vec::new() };
    let v = v.trim();
    let whole = |re: &Regex| re.find(v).is_some_and(|m| m.start() == 0 && m.end() == v.len());
    let mut out = Vec::new();
    if whole(&d.card) && luhn_ok(v) {
        out.push(Kind::Card);
    }
    if whole(&d.iban) && iban_ok(v) {
        out.push(Kind::Iban);
    }
    if whole(&d.ssn) {
        out.push(Kind::NationalId);
    }
    if whole(&d.mac) {
        out.push(Kind::Mac);
    }
    out
}

/// Counts over a column's sample.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SampleStats {
    /// Non-NULL values looked at.
    pub sampled: u64,
    /// Per kind: how many sampled values contained it.
    pub hits: std::collections::BTreeMap<Kind, u64>,
    /// Per kind: how many sampled values were one, whole (an IBAN, not a
    /// sentence naming one).
    #[serde(skip)]
    pub whole: std::collections::BTreeMap<Kind, u64>,
}

impl SampleStats {
    pub fn add(&mut self, v: &str) {
        self.sampled += 1;
        for k in in_value(v) {
            *self.hits.entry(k).or_default() += 1;
        }
        for k in whole_value(v) {
            *self.whole.entry(k).or_default() += 1;
        }
    }

    /// Kinds that at least `min_share` of the sampled values are, whole.
    pub fn whole_kinds(&self, min_share: f64) -> Vec<Kind> {
        self.whole
            .iter()
            .filter(|(_, n)| self.sampled > 0 && **n as f64 / self.sampled as f64 >= min_share)
            .map(|(k, _)| *k)
            .collect()
    }

    /// Kinds found in at least `min_share` of the sample (and in two values
    /// or more, so one odd value does not flag a column).
    pub fn suspected(&self, min_share: f64) -> Vec<(Kind, f64)> {
        if self.sampled == 0 {
            return Vec::new();
        }
        self.hits
            .iter()
            .filter(|(_, n)| **n >= 2.min(self.sampled))
            .map(|(k, n)| (*k, *n as f64 / self.sampled as f64))
            .filter(|(_, share)| *share >= min_share)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_values() {
        assert_eq!(whole_value(" DE89 3704 0044 0532 0130 00 "), vec![Kind::Iban]);
        assert!(whole_value("IBAN DE89 3704 0044 0532 0130 00").is_empty());
        assert_eq!(whole_value("4111 1111 1111 1111"), vec![Kind::Card]);
        assert_eq!(whole_value("078-05-1120"), vec![Kind::NationalId]);
        assert_eq!(whole_value("00:1a:2b:3c:4d:5e"), vec![Kind::Mac]);
    }

    #[test]
    fn names() {
        assert_eq!(by_name("customer_email"), vec![Kind::Email]);
        assert_eq!(by_name("first_name"), vec![Kind::Name]);
        assert!(by_name("product_name").is_empty());
        assert!(by_name("total").is_empty());
        assert_eq!(by_name("birth_date"), vec![Kind::Birth]);
        assert_eq!(by_name("api_token"), vec![Kind::Secret]);
        assert_eq!(by_name("client_ip"), vec![Kind::Ip]);
        assert!(by_name("description").is_empty());
        assert_eq!(by_name_in("public.employees", "name"), vec![Kind::Name]);
        assert!(by_name_in("public.products", "name").is_empty());
    }

    #[test]
    fn values() {
        assert_eq!(in_value("write to bob@example.com please"), vec![Kind::Email]);
        assert_eq!(in_value("card 4111 1111 1111 1111"), vec![Kind::Card]);
        assert!(!in_value("order 4111 1111 1111 1112").contains(&Kind::Card), "Luhn fails");
        assert_eq!(in_value("GB82 WEST 1234 5698 7654 32"), vec![Kind::Iban]);
        assert_eq!(in_value("from 10.1.2.3"), vec![Kind::Ip]);
        assert_eq!(in_value("call +44 20 7946 0958"), vec![Kind::Phone]);
        assert_eq!(in_value("ssn 123-45-6789"), vec![Kind::NationalId]);
        assert_eq!(in_value("sk_live_abcdefghijklmnop1234"), vec![Kind::Secret]);
        for ordinary in ["Blue widget", "1234.50", "2024-01-01", "SKU-10042", "shipped", "42"] {
            assert!(in_value(ordinary).is_empty(), "{ordinary}");
        }
    }
}
