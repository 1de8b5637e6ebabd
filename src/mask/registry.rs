//! The one list of maskers. `scrubsnap maskers`, `--help`, the README's
//! table and the JSON Schema of rule files are all generated from
//! [`MASKERS`]; a masker that is not here does not exist.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::maskers::{self, AddressPart, NamePart, RowPart, TemplatePart};
use super::{ColumnInfo, MaskKey, Masker, OptionError, Permutation, TypeClass};

/// One option of a masker.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct OptionDef {
    pub name: &'static str,
    /// JSON Schema type: string, integer, number, boolean, object.
    pub kind: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

/// Whether a masker maps distinct inputs to distinct outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Injective {
    Yes,
    No,
    /// Depends on the options (e.g. a hash's length).
    Depends,
}

/// What a masker's output is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// Made from scratch (lists, keyed permutations, hashes): it can equal
    /// an original only by chance.
    Generated,
    /// Keeps parts of the input as they were (the text around scrubbed
    /// spans, a JSON document's other values, a prefix).
    KeepsInput,
}

/// A masker's entry in the registry.
pub struct MaskerDef {
    pub name: &'static str,
    pub summary: &'static str,
    pub options: &'static [OptionDef],
    /// A rule using it, as YAML.
    pub example: &'static str,
    /// Column types it applies to.
    pub types: &'static [TypeClass],
    pub injective: Injective,
    /// Shortest output it makes; a narrower column is a plan-time error.
    pub min_chars: usize,
    /// Whether longer output may be cut to the column's length.
    pub truncate: bool,
    /// Whether the output is made from scratch or keeps parts of the
    /// input. The leak scan reads this: it remembers the originals of a
    /// column whose masker generates, and does not probe that masker's
    /// output (a fake value that equals a word of another row is not a
    /// leak); the output of a masker that keeps parts of its input is
    /// probed for what it kept of each original.
    pub output: Output,
    /// Whether it may be named inside another masker (a template part, a
    /// JSON path's masker, pii_scrub's spans).
    pub nests: bool,
    build: BuildFn,
}

/// Builds a masker from its checked options.
type BuildFn = fn(&Opts, &BuildCx) -> Result<Arc<dyn Masker>, OptionError>;

/// What a masker is built for.
pub struct BuildCx<'a> {
    pub key: &'a MaskKey,
    pub column: &'a ColumnInfo,
    /// `domain/spec`: a unique purpose string for derived keys.
    pub purpose: String,
    pub domain: String,
}

/// Options of one rule, checked against the masker's definition.
pub struct Opts<'a> {
    map: &'a Map<String, Value>,
}

impl<'a> Opts<'a> {
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Opts { map }
    }
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name)
    }
    fn str(&self, name: &str) -> Result<Option<&'a str>, OptionError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("option '{name}' must be a string").into()),
        }
    }
    fn int(&self, name: &str) -> Result<Option<i128>, OptionError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {
                Ok(n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)))
            }
            Some(Value::String(s)) => {
                s.trim().parse().map(Some).map_err(|_| format!("option '{name}' must be an integer").into())
            }
            Some(_) => Err(format!("option '{name}' must be an integer").into()),
        }
    }
    fn num(&self, name: &str) -> Result<Option<f64>, OptionError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(_) => Err(format!("option '{name}' must be a number").into()),
        }
    }
    fn bool(&self, name: &str) -> Result<Option<bool>, OptionError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(format!("option '{name}' must be true or false").into()),
        }
    }
    fn locale(&self) -> Result<maskers::Locale, OptionError> {
        let name = self.str("locale")?.unwrap_or("en");
        maskers::locale(name)
            .ok_or_else(|| format!("unknown locale '{name}' (known: {})", maskers::LOCALES.join(", ")).into())
    }
}

const TEXT: &[TypeClass] = &[TypeClass::Text];
const ANY: &[TypeClass] = &[
    TypeClass::Text,
    TypeClass::Integer,
    TypeClass::Numeric,
    TypeClass::Float,
    TypeClass::Date,
    TypeClass::Timestamp,
    TypeClass::Uuid,
    TypeClass::Inet,
    TypeClass::Json,
    TypeClass::Boolean,
    TypeClass::Bytea,
    TypeClass::Point,
    TypeClass::Hstore,
    TypeClass::Composite,
    TypeClass::Other,
];
const LOCALE: OptionDef = OptionDef {
    name: "locale",
    kind: "string",
    default: "en",
    help: "word lists: en, fr_fr, de_de, it_it, pt_br, pt_pt, ja_jp, zh_cn, zh_tw, ar_sa",
};

macro_rules! def {
    ($name:expr, $summary:expr, $opts:expr, $example:expr, $types:expr, $inj:expr, $min:expr, $trunc:expr, $output:expr, $nests:expr, $build:expr) => {
        MaskerDef {
            name: $name,
            summary: $summary,
            options: $opts,
            example: $example,
            types: $types,
            injective: $inj,
            min_chars: $min,
            truncate: $trunc,
            output: $output,
            nests: $nests,
            build: $build,
        }
    };
}

/// Every masker.
pub static MASKERS: &[MaskerDef] = &[
    def!("null", "Replaces every value with NULL (the column must allow NULL).", &[], "notes: {mask: null}", ANY, Injective::No, 0, false, Output::Generated, false,
        |_, _| Ok(Arc::new(maskers::Null))),
    def!("fixed", "Replaces every value with the same value.", &[OptionDef { name: "value", kind: "string", default: "", help: "the value, as PostgreSQL text input" }],
        "status_note: {mask: fixed, value: \"n/a\"}", ANY, Injective::No, 0, false, Output::Generated, true,
        |o, _| Ok(Arc::new(maskers::Fixed(o.str("value")?.ok_or("option 'value' is required")?.to_string())))),
    def!("redact", "Keeps length and character classes: letters become X/x, digits 9, the rest stays (Ab1- becomes Xx9-). Not keyed.", &[],
        "license_plate: redact", TEXT, Injective::No, 0, true, Output::Generated, true, |_, _| Ok(Arc::new(maskers::Redact))),
    def!("hash", "A keyed hash of the value (HMAC-SHA256), hex or base32, cut to a length. Injective in practice from 16 characters (64 bits).",
        &[OptionDef { name: "length", kind: "integer", default: "16", help: "characters of output (1-64)" },
          OptionDef { name: "encoding", kind: "string", default: "hex", help: "hex or base32" }],
        "api_token: {mask: hash, length: 32}", TEXT, Injective::Depends, 1, false, Output::Generated, true,
        |o, _| {
            let length = o.int("length")?.unwrap_or(16);
            if !(1..=64).contains(&length) { return Err("option 'length' must be between 1 and 64".into()); }
            let base32 = match o.str("encoding")?.unwrap_or("hex") { "hex" => false, "base32" => true, other => return Err(format!("option 'encoding' must be hex or base32, not '{other}'").into()) };
            Ok(Arc::new(maskers::Hash { length: length as usize, base32 }))
        }),
    def!("email", "first.last.tag@example.org: realistic, undeliverable (RFC 2606 domains), unique in practice: a 65-bit keyed tag, so n distinct inputs collide with probability about n\u{b2}/2^66. The name part is shortened to fit the column.",
        &[LOCALE, OptionDef { name: "domain", kind: "string", default: "example.com/.org/.net", help: "fixed domain for every address" }],
        "email: {mask: email, domain: customer_email}", TEXT, Injective::Yes, 29, false, Output::Generated, true,
        |o, cx| Ok(Arc::new(maskers::Email { locale: o.locale()?, domain: o.str("domain")?.map(str::to_string), max_chars: cx.column.max_chars }))),
    def!("first_name", "A first name from the locale's list.", &[LOCALE], "first_name: first_name", TEXT, Injective::No, 1, true, Output::Generated, true,
        |o, _| Ok(Arc::new(maskers::Name { locale: o.locale()?, part: NamePart::First }))),
    def!("last_name", "A last name from the locale's list.", &[LOCALE], "last_name: last_name", TEXT, Injective::No, 1, true, Output::Generated, true,
        |o, _| Ok(Arc::new(maskers::Name { locale: o.locale()?, part: NamePart::Last }))),
    def!("full_name", "First and last name.", &[LOCALE], "name: full_name", TEXT, Injective::No, 3, true, Output::Generated, true,
        |o, _| Ok(Arc::new(maskers::Name { locale: o.locale()?, part: NamePart::Full }))),
    def!("username", "firstlast_tag: unique in practice (65-bit keyed tag, as email); shortened to fit the column.", &[LOCALE], "login: username", TEXT, Injective::Yes, 16, false, Output::Generated, true,
        |o, cx| Ok(Arc::new(maskers::Username { locale: o.locale()?, max_chars: cx.column.max_chars }))),
    def!("phone", "Keeps the original's format (separators, length, +CC or 00CC prefix) and permutes the other digits: injective for numbers of one format.",
        &[OptionDef { name: "keep_country", kind: "boolean", default: "true", help: "keep a leading +CC / 00CC country prefix" }],
        "phone: phone", TEXT, Injective::Yes, 0, false, Output::Generated, true,
        |o, cx| Ok(Arc::new(maskers::Phone::new(cx.key, &cx.purpose, o.bool("keep_country")?.unwrap_or(true))))),
    def!("street_address", "A house number, street name and suffix.", &[LOCALE], "street: street_address", TEXT, Injective::No, 5, true, Output::Generated, true,
        |o, _| Ok(Arc::new(maskers::Address { locale: o.locale()?, part: AddressPart::Street }))),
    def!("city", "A city name.", &[LOCALE], "city: city", TEXT, Injective::No, 2, true, Output::Generated, true,
        |o, _| Ok(Arc::new(maskers::Address { locale: o.locale()?, part: AddressPart::City }))),
    def!("postal_code", "Keeps the shape of the original (digits stay digits, letters letters).", &[], "zip: postal_code", TEXT, Injective::No, 0, false, Output::Generated, true,
        |_, _| Ok(Arc::new(maskers::PostalCode))),
    def!("country", "A country name.", &[LOCALE], "country: country", TEXT, Injective::No, 4, true, Output::Generated, true,
        |o, _| Ok(Arc::new(maskers::Address { locale: o.locale()?, part: AddressPart::Country }))),
    def!("company", "A company name.", &[LOCALE], "employer: company", TEXT, Injective::No, 4, true, Output::Generated, true,
        |o, _| Ok(Arc::new(maskers::Address { locale: o.locale()?, part: AddressPart::Company }))),
    def!("lorem", "Lorem ipsum words of about the original's length.", &[LOCALE], "notes: lorem", TEXT, Injective::No, 1, true, Output::Generated, true,
        |o, _| Ok(Arc::new(maskers::Lorem { locale: o.locale()? }))),
    def!("ip", "Keeps the address family (and optionally a prefix) and permutes the other bits: injective.",
        &[OptionDef { name: "keep_prefix", kind: "integer", default: "0", help: "leading bits kept as they are (e.g. 24 keeps the /24 network)" }],
        "client_ip: {mask: ip, keep_prefix: 16}", &[TypeClass::Inet, TypeClass::Text], Injective::Yes, 0, false, Output::Generated, true,
        |o, cx| {
            let keep = o.int("keep_prefix")?.unwrap_or(0);
            if !(0..=128).contains(&keep) { return Err("option 'keep_prefix' must be between 0 and 128".into()); }
            Ok(Arc::new(maskers::Ip::new(cx.key, &cx.purpose, keep as u32)))
        }),
    def!("uuid", "A keyed permutation of the UUID's 128 bits: injective.", &[], "external_id: uuid", &[TypeClass::Uuid, TypeClass::Text], Injective::Yes, 36, false, Output::Generated, true,
        |_, cx| Ok(Arc::new(maskers::Uuid { perm: Permutation::full(cx.key, &cx.purpose) }))),
    def!("integer", "A keyed permutation of [min, max] (default: the column type's range): injective, so keys stay unique. Values outside the range fail.",
        &[OptionDef { name: "min", kind: "integer", default: "type minimum", help: "smallest value" },
          OptionDef { name: "max", kind: "integer", default: "type maximum", help: "largest value" }],
        "id: integer", &[TypeClass::Integer, TypeClass::Text, TypeClass::Numeric], Injective::Yes, 0, false, Output::Generated, true,
        |o, cx| {
            let (tmin, tmax) = cx.column.int_range.unwrap_or((i128::from(i64::MIN), i128::from(i64::MAX)));
            let min = o.int("min")?.unwrap_or(tmin);
            let max = o.int("max")?.unwrap_or(tmax);
            if min > max { return Err("option 'min' is larger than 'max'".into()); }
            if min < tmin || max > tmax { return Err(format!("range [{min}, {max}] does not fit the column type {}", cx.column.type_name).into()); }
            let n = (max - min) as u128 + 1;
            Ok(Arc::new(maskers::Integer { min, max, perm: Permutation::new(cx.key, &cx.purpose, n) }))
        }),
    def!("numeric_noise", "Adds ± percent noise, keeping the number of decimals.",
        &[OptionDef { name: "percent", kind: "number", default: "10", help: "largest change, in percent" }],
        "salary: {mask: numeric_noise, percent: 5}", &[TypeClass::Numeric, TypeClass::Integer, TypeClass::Float], Injective::No, 0, false, Output::Generated, true,
        |o, _| {
            let p = o.num("percent")?.unwrap_or(10.0);
            if !(0.0..=100.0).contains(&p) { return Err("option 'percent' must be between 0 and 100".into()); }
            Ok(Arc::new(maskers::NumericNoise { percent: p }))
        }),
    def!("date_shift", "Shifts a date or timestamp by a keyed number of days within ± days; the time of day is kept unless keep_time is false.",
        &[OptionDef { name: "days", kind: "integer", default: "30", help: "largest shift in days" },
          OptionDef { name: "keep_time", kind: "boolean", default: "true", help: "keep the time of day of timestamps" }],
        "created_at: {mask: date_shift, days: 10}", &[TypeClass::Date, TypeClass::Timestamp], Injective::No, 0, false, Output::Generated, true,
        |o, _| {
            let days = o.int("days")?.unwrap_or(30);
            if !(0..=36_500).contains(&days) { return Err("option 'days' must be between 0 and 36500".into()); }
            Ok(Arc::new(maskers::Shift { days: days as i64, keep_time: o.bool("keep_time")?.unwrap_or(true) }))
        }),
    def!("date_of_birth", "A birth date giving an age between min_age and max_age on the as_of date (fixed, so runs stay identical).",
        &[OptionDef { name: "min_age", kind: "integer", default: "18", help: "youngest age" },
          OptionDef { name: "max_age", kind: "integer", default: "90", help: "oldest age" },
          OptionDef { name: "as_of", kind: "string", default: "2025-01-01", help: "reference date (YYYY-MM-DD)" }],
        "birth_date: {mask: date_of_birth, min_age: 18, max_age: 80}", &[TypeClass::Date, TypeClass::Text], Injective::No, 10, false, Output::Generated, true,
        |o, _| {
            let min = o.int("min_age")?.unwrap_or(18);
            let max = o.int("max_age")?.unwrap_or(90);
            if min < 0 || max < min || max > 150 { return Err("need 0 <= min_age <= max_age <= 150".into()); }
            let as_of = chrono::NaiveDate::parse_from_str(o.str("as_of")?.unwrap_or("2025-01-01"), "%Y-%m-%d").map_err(|_| "option 'as_of' must be YYYY-MM-DD".to_string())?;
            let latest = as_of.checked_sub_months(chrono::Months::new(min as u32 * 12)).ok_or("as_of out of range")?;
            let earliest = as_of.checked_sub_months(chrono::Months::new((max as u32 + 1) * 12)).ok_or("as_of out of range")? + chrono::Duration::days(1);
            Ok(Arc::new(maskers::DateOfBirth { earliest, span_days: (latest - earliest).num_days() }))
        }),
    def!("regex_replace", "Replaces every match of a regular expression; the replacement may use $1, ${name}.",
        &[OptionDef { name: "pattern", kind: "string", default: "", help: "regular expression (Rust regex syntax)" },
          OptionDef { name: "replacement", kind: "string", default: "", help: "replacement text with $1 / ${name}" }],
        "ref: {mask: regex_replace, pattern: \"[0-9]{4}$\", replacement: \"0000\"}", TEXT, Injective::No, 0, true, Output::KeepsInput, true,
        |o, _| {
            let pattern = o.str("pattern")?.ok_or("option 'pattern' is required")?;
            let re = regex::Regex::new(pattern).map_err(|e| format!("option 'pattern' is not a valid regex: {e}"))?;
            Ok(Arc::new(maskers::RegexReplace { re, replacement: o.str("replacement")?.unwrap_or("").to_string() }))
        }),
    def!("partial", "Keeps the first and last characters and masks the middle.",
        &[OptionDef { name: "keep_first", kind: "integer", default: "0", help: "characters kept at the start" },
          OptionDef { name: "keep_last", kind: "integer", default: "4", help: "characters kept at the end" },
          OptionDef { name: "mask_char", kind: "string", default: "*", help: "the masking character" }],
        "card_number: {mask: partial, keep_last: 4}", TEXT, Injective::No, 0, false, Output::KeepsInput, true,
        |o, _| {
            let first = o.int("keep_first")?.unwrap_or(0);
            let last = o.int("keep_last")?.unwrap_or(4);
            if first < 0 || last < 0 { return Err("keep_first and keep_last must not be negative".into()); }
            let mut chars = o.str("mask_char")?.unwrap_or("*").chars();
            let mask_char = match (chars.next(), chars.next()) { (Some(c), None) => c, _ => return Err("option 'mask_char' must be one character".into()) };
            Ok(Arc::new(maskers::Partial { keep_first: first as usize, keep_last: last as usize, mask_char }))
        }),
    def!("template", "Composes other maskers: {name} parts are filled by that masker from the original value, the rest is literal. Injective when a part is.",
        &[OptionDef { name: "template", kind: "string", default: "", help: "e.g. \"{first_name}.{last_name}@example.org\"; {{ and }} for braces" },
          OptionDef { name: "from_row", kind: "boolean", default: "false", help: "{name} is the masked value of column name in the same row, {tag} a keyed tag of this value (unique in practice)" }],
        "contact: {mask: template, template: \"{first_name}.{last_name}@example.org\"}", TEXT, Injective::Depends, 0, false, Output::KeepsInput, false,
        build_template),
    def!("json", "Masks values inside json/jsonb at the given paths ($.a.b, $.items[*].c, $.list[0]); each path names a masker. Only the objects and arrays on a path are rewritten (compactly); every other value keeps its text, numbers digit for digit (1.10 stays 1.10), and a document no path matches is left as it is.",
        &[OptionDef { name: "paths", kind: "object", default: "", help: "map of JSON path to masker name or {mask: name, options...}" }],
        "profile: {mask: json, paths: {\"$.contact.email\": email, \"$.contact.phone\": phone}}", &[TypeClass::Json, TypeClass::Text], Injective::No, 0, false, Output::KeepsInput, false,
        build_json),
    def!("initials", "Initials of a fake name (A. S.).", &[LOCALE], "initials: initials", TEXT, Injective::No, 5, true, Output::Generated, true,
        |o, _| Ok(Arc::new(maskers::Name { locale: o.locale()?, part: NamePart::Initials }))),
    def!("display_name", "A first name and the initial of a last name (Alice S.).", &[LOCALE], "display_name: display_name", TEXT, Injective::No, 4, true, Output::Generated, true,
        |o, _| Ok(Arc::new(maskers::Name { locale: o.locale()?, part: NamePart::Display }))),
    def!("street_name", "A street name without a house number.", &[LOCALE], "street: street_name", TEXT, Injective::No, 3, true, Output::Generated, true,
        |o, _| Ok(Arc::new(maskers::Address { locale: o.locale()?, part: AddressPart::StreetName }))),
    def!("building_number", "A house number (1 to 1999).", &[], "house_number: building_number", &[TypeClass::Text, TypeClass::Integer], Injective::No, 4, false, Output::Generated, true,
        |_, _| Ok(Arc::new(maskers::Address { locale: maskers::locale("en").ok_or("no English word lists")?, part: AddressPart::BuildingNumber }))),
    def!("state", "A state or region name (the locale's, else English's); abbr: true for a code such as CA.",
        &[LOCALE, OptionDef { name: "abbr", kind: "boolean", default: "false", help: "write the abbreviation" }],
        "region: {mask: state, abbr: true}", TEXT, Injective::No, 2, true, Output::Generated, true,
        |o, _| Ok(Arc::new(maskers::Address { locale: o.locale()?, part: if o.bool("abbr")?.unwrap_or(false) { AddressPart::StateAbbr } else { AddressPart::State } }))),
    def!("country_code", "A two-letter country code (ISO 3166-1 alpha-2).", &[LOCALE], "country: country_code", TEXT, Injective::No, 2, false, Output::Generated, true,
        |o, _| Ok(Arc::new(maskers::Address { locale: o.locale()?, part: AddressPart::CountryCode }))),
    def!("job_title", "A job title (seniority, field, position).", &[LOCALE], "title: job_title", TEXT, Injective::No, 5, true, Output::Generated, true,
        |o, _| Ok(Arc::new(maskers::Address { locale: o.locale()?, part: AddressPart::JobTitle }))),
    def!("word", "One word from the locale's lorem list.", &[LOCALE], "nickname: word", TEXT, Injective::No, 1, true, Output::Generated, true,
        |o, _| Ok(Arc::new(maskers::Address { locale: o.locale()?, part: AddressPart::Word }))),
    def!("iban", "An IBAN of the same country, length and layout with valid check digits: the account's digits permuted (injective for IBANs of one format), the bank code's letters kept.",
        &[], "account_iban: iban", TEXT, Injective::Yes, 5, false, Output::Generated, true,
        |_, cx| Ok(Arc::new(maskers::Iban { perms: maskers::DigitPerms::new(cx.key, &cx.purpose) }))),
    def!("card_number", "A Luhn-valid payment card number of the same length and layout (digits permuted: injective over valid numbers of one length); keep_brand keeps the digits that name the scheme (4 for Visa, 51-55 for Mastercard, ...).",
        &[OptionDef { name: "keep_brand", kind: "boolean", default: "false", help: "keep the scheme's leading digits" }],
        "pan: {mask: card_number, keep_brand: true}", TEXT, Injective::Yes, 12, false, Output::Generated, true,
        |o, cx| Ok(Arc::new(maskers::CardNumber { perms: maskers::DigitPerms::new(cx.key, &cx.purpose), keep_brand: o.bool("keep_brand")?.unwrap_or(false) }))),
    def!("national_id", "A valid national identifier in the original's layout: us (SSN: area, group and serial rules), nl (BSN, eleven test), es (DNI, check letter), br (CPF, two check digits). Injective over valid identifiers.",
        &[OptionDef { name: "country", kind: "string", default: "us", help: "us, nl, es or br" }],
        "ssn: {mask: national_id, country: us}", TEXT, Injective::Yes, 9, false, Output::Generated, true,
        |o, cx| {
            let c = o.str("country")?.unwrap_or("us");
            let kind = maskers::NationalIdKind::parse(c).ok_or_else(|| format!("option 'country' must be one of {}, not '{c}'", maskers::NationalIdKind::NAMES.join(", ")))?;
            Ok(Arc::new(maskers::NationalId { perms: maskers::DigitPerms::new(cx.key, &cx.purpose), kind }))
        }),
    def!("vat_number", "A VAT number with the same country prefix and layout: digits permuted (injective), check digits recomputed for DE, BE and FR.",
        &[], "vat_id: vat_number", TEXT, Injective::Yes, 0, false, Output::Generated, true,
        |_, cx| Ok(Arc::new(maskers::VatNumber { perms: maskers::DigitPerms::new(cx.key, &cx.purpose) }))),
    def!("digits", "Permutes every digit and keeps everything else (account numbers, references): injective for values of one layout.",
        &[], "account_no: digits", TEXT, Injective::Yes, 0, false, Output::Generated, true,
        |_, cx| Ok(Arc::new(maskers::Digits { perms: maskers::DigitPerms::new(cx.key, &cx.purpose) }))),
    def!("imei", "A Luhn-valid IMEI (15 digits, layout kept), injective; keep_tac keeps the 8-digit device type.",
        &[OptionDef { name: "keep_tac", kind: "boolean", default: "false", help: "keep the type allocation code" }],
        "device_imei: imei", TEXT, Injective::Yes, 15, false, Output::Generated, true,
        |o, cx| Ok(Arc::new(maskers::Imei { perms: maskers::DigitPerms::new(cx.key, &cx.purpose), keep_tac: o.bool("keep_tac")?.unwrap_or(false) }))),
    def!("mac_address", "A MAC address in the same notation, its 48 bits permuted (injective); keep_oui keeps the manufacturer's 24-bit prefix.",
        &[OptionDef { name: "keep_oui", kind: "boolean", default: "false", help: "keep the manufacturer prefix" }],
        "mac: {mask: mac_address, keep_oui: true}", &[TypeClass::Text, TypeClass::Other], Injective::Yes, 12, false, Output::Generated, true,
        |o, cx| {
            let keep = o.bool("keep_oui")?.unwrap_or(false);
            Ok(Arc::new(maskers::MacAddress { perm: Permutation::new(cx.key, &cx.purpose, if keep { 1 << 24 } else { 1 << 48 }), keep_oui: keep }))
        }),
    def!("bic", "A BIC (SWIFT code) of the same length and country; a branch XXX stays XXX.", &[], "swift: bic", TEXT, Injective::No, 8, false, Output::Generated, true,
        |_, _| Ok(Arc::new(maskers::Bic))),
    def!("url", "Keeps a URL's scheme, host, port and parameter names; replaces user information, path segments (file extensions kept), parameter values and the fragment by keyed tokens.",
        &[OptionDef { name: "keep_path", kind: "boolean", default: "false", help: "keep the path as it is" }],
        "profile_url: url", TEXT, Injective::No, 0, false, Output::KeepsInput, true,
        |o, _| Ok(Arc::new(maskers::Url { keep_path: o.bool("keep_path")?.unwrap_or(false) }))),
    def!("domain_name", "name-tag.example.com: unique in practice (65-bit keyed tag, as email).", &[LOCALE], "tenant_domain: domain_name", TEXT, Injective::Yes, 27, false, Output::Generated, true,
        |o, cx| Ok(Arc::new(maskers::DomainName { locale: o.locale()?, max_chars: cx.column.max_chars }))),
    def!("user_agent", "A browser user agent string from a list.", &[], "agent: user_agent", TEXT, Injective::No, 10, true, Output::Generated, true,
        |_, _| Ok(Arc::new(maskers::UserAgent { agents: maskers::locale("en").ok_or("no English word lists")?.user_agents }))),
    def!("latitude", "A latitude moved by keyed noise of up to radius metres, with the original's decimals.",
        &[OptionDef { name: "radius", kind: "number", default: "1000", help: "largest move in metres" }],
        "lat: {mask: latitude, radius: 500}", &[TypeClass::Numeric, TypeClass::Float, TypeClass::Text], Injective::No, 0, false, Output::Generated, true,
        |o, _| Ok(Arc::new(maskers::Coordinate { axis: maskers::Axis::Latitude, radius: radius(o)? }))),
    def!("longitude", "A longitude moved by keyed noise of up to radius metres (degrees counted as at the equator), with the original's decimals.",
        &[OptionDef { name: "radius", kind: "number", default: "1000", help: "largest move in metres" }],
        "lon: {mask: longitude, radius: 500}", &[TypeClass::Numeric, TypeClass::Float, TypeClass::Text], Injective::No, 0, false, Output::Generated, true,
        |o, _| Ok(Arc::new(maskers::Coordinate { axis: maskers::Axis::Longitude, radius: radius(o)? }))),
    def!("geo_point", "A point (x = longitude, y = latitude) moved to a keyed place within radius metres, uniformly over the disc.",
        &[OptionDef { name: "radius", kind: "number", default: "1000", help: "largest move in metres" }],
        "location: {mask: geo_point, radius: 250}", &[TypeClass::Point, TypeClass::Text], Injective::No, 5, false, Output::Generated, true,
        |o, _| Ok(Arc::new(maskers::GeoPoint { radius: radius(o)? }))),
    def!("choice", "One value of a list, chosen by the value's keyed seed; a map of value to weight draws by weight.",
        &[OptionDef { name: "values", kind: "array|object", default: "", help: "a list of values, or a map of value to weight" }],
        "plan: {mask: choice, values: {free: 8, pro: 2}}", ANY, Injective::No, 0, false, Output::Generated, true,
        build_choice),
    def!("random_number", "A number drawn from [min, max] with a number of decimals, by the value's keyed seed.",
        &[OptionDef { name: "min", kind: "number", default: "0", help: "smallest value" },
          OptionDef { name: "max", kind: "number", default: "100", help: "largest value" },
          OptionDef { name: "decimals", kind: "integer", default: "0", help: "digits after the point" }],
        "score: {mask: random_number, min: 0, max: 5, decimals: 1}", &[TypeClass::Integer, TypeClass::Numeric, TypeClass::Float, TypeClass::Text], Injective::No, 0, false, Output::Generated, true,
        |o, _| {
            let (min, max) = (o.num("min")?.unwrap_or(0.0), o.num("max")?.unwrap_or(100.0));
            let decimals = o.int("decimals")?.unwrap_or(0);
            if !min.is_finite() || !max.is_finite() || min > max { return Err("need finite min <= max".into()); }
            if !(0..=12).contains(&decimals) { return Err("option 'decimals' must be between 0 and 12".into()); }
            Ok(Arc::new(maskers::RandomNumber { min, max, decimals: decimals as usize }))
        }),
    def!("generalize_date", "A date or timestamp moved to the first day of its month, quarter or year (a timestamp to midnight, its zone kept): keeps analytics by period.",
        &[OptionDef { name: "to", kind: "string", default: "month", help: "month, quarter or year" }],
        "signup_date: {mask: generalize_date, to: quarter}", &[TypeClass::Date, TypeClass::Timestamp, TypeClass::Text], Injective::No, 0, false, Output::KeepsInput, true,
        |o, _| {
            let to = match o.str("to")?.unwrap_or("month") { "month" => maskers::Period::Month, "quarter" => maskers::Period::Quarter, "year" => maskers::Period::Year,
                other => return Err(format!("option 'to' must be month, quarter or year, not '{other}'").into()) };
            Ok(Arc::new(maskers::GeneralizeDate { to }))
        }),
    def!("generalize_number", "A number rounded down to a multiple of bucket, or rounded to digits significant digits, with the original's decimals.",
        &[OptionDef { name: "bucket", kind: "number", default: "", help: "round down to a multiple of this" },
          OptionDef { name: "digits", kind: "integer", default: "", help: "significant digits to keep" }],
        "salary: {mask: generalize_number, bucket: 5000}", &[TypeClass::Integer, TypeClass::Numeric, TypeClass::Float, TypeClass::Text], Injective::No, 0, false, Output::KeepsInput, true,
        |o, _| {
            let how = match (o.num("bucket")?, o.int("digits")?) {
                (Some(b), None) if b > 0.0 && b.is_finite() => maskers::Coarsen::Bucket(b),
                (None, Some(d)) if (1..=15).contains(&d) => maskers::Coarsen::Digits(d as u32),
                _ => return Err("give either bucket (a positive number) or digits (1 to 15)".into()),
            };
            Ok(Arc::new(maskers::GeneralizeNumber { how }))
        }),
    def!("truncate", "Keeps the first length characters (a postal district, an area code) and drops the rest.",
        &[OptionDef { name: "length", kind: "integer", default: "3", help: "characters kept" }],
        "postcode: {mask: truncate, length: 4}", TEXT, Injective::No, 0, false, Output::KeepsInput, true,
        |o, _| {
            let keep = o.int("length")?.unwrap_or(3);
            if keep < 0 { return Err("option 'length' must not be negative".into()); }
            Ok(Arc::new(maskers::Truncate { keep: keep as usize }))
        }),
    def!("password_hash", "The same valid password hash in every row, of a known development password (default \"scrubsnap-dev\"), so every account logs in with it in development: bcrypt ($2b$) or argon2id, salted from the masking key.",
        &[OptionDef { name: "password", kind: "string", default: "scrubsnap-dev", help: "the development password" },
          OptionDef { name: "algorithm", kind: "string", default: "bcrypt", help: "bcrypt or argon2id" },
          OptionDef { name: "cost", kind: "integer", default: "10", help: "bcrypt cost (4-14)" }],
        "password_digest: {mask: password_hash, algorithm: bcrypt}", TEXT, Injective::No, 60, false, Output::Generated, false,
        |o, cx| {
            let cost = o.int("cost")?.unwrap_or(10);
            if !(4..=14).contains(&cost) { return Err("option 'cost' must be between 4 and 14".into()); }
            let mut salt = [0u8; 16];
            salt.copy_from_slice(&cx.key.derive(&format!("{}/salt", cx.purpose))[..16]);
            let hash = maskers::password_hash(o.str("algorithm")?.unwrap_or("bcrypt"), o.str("password")?.unwrap_or("scrubsnap-dev"), cost as u32, salt)?;
            Ok(Arc::new(maskers::PasswordHash { hash }))
        }),
    def!("hstore", "Masks the values of some keys of an hstore; other keys and values stay. Each key names a masker.",
        &[OptionDef { name: "keys", kind: "object", default: "", help: "map of key to masker name or {mask: name, options...}" }],
        "attrs: {mask: hstore, keys: {email: email, phone: phone}}", &[TypeClass::Hstore], Injective::No, 0, false, Output::KeepsInput, false,
        build_hstore),
    def!("composite", "Masks some fields of a composite (row type) value by name; the other fields stay. Each field names a masker, checked against the field's type.",
        &[OptionDef { name: "fields", kind: "object", default: "", help: "map of field name to masker name or {mask: name, options...}" }],
        "address: {mask: composite, fields: {street: street_address, city: city}}", &[TypeClass::Composite], Injective::No, 0, false, Output::KeepsInput, false,
        build_composite),
    def!("pii_scrub", "Finds emails, phone numbers, card numbers (Luhn-checked), IBANs (mod-97 checked) and IP addresses inside free text and replaces only those spans.",
        &[], "notes: pii_scrub", TEXT, Injective::No, 0, true, Output::KeepsInput, false, build_pii_scrub),
];

fn radius(o: &Opts) -> Result<f64, OptionError> {
    let r = o.num("radius")?.unwrap_or(1000.0);
    if !(r > 0.0 && r <= 1_000_000.0) {
        return Err("option 'radius' must be between 0 and 1000000 metres".into());
    }
    Ok(r)
}

fn build_choice(o: &Opts, _: &BuildCx) -> Result<Arc<dyn Masker>, OptionError> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let values: Vec<(String, f64)> = match o.get("values") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| text(v).map(|t| (t, 1.0)))
            .collect::<Option<_>>()
            .ok_or("option 'values' holds something that is not a value")?,
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, w)| match w.as_f64() {
                Some(w) if w >= 0.0 && w.is_finite() => Ok((k.clone(), w)),
                _ => Err(format!("the weight of '{k}' must be a number of 0 or more")),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("option 'values' is required: a list of values or a map of value to weight".into()),
    };
    let total: f64 = values.iter().map(|(_, w)| w).sum();
    if values.is_empty() || total <= 0.0 || !total.is_finite() {
        return Err("option 'values' needs at least one value of positive weight".into());
    }
    Ok(Arc::new(maskers::Choice { values, total }))
}

fn build_hstore(o: &Opts, cx: &BuildCx) -> Result<Arc<dyn Masker>, OptionError> {
    let Some(Value::Object(keys)) = o.get("keys") else {
        return Err("option 'keys' is required: a map of hstore key to masker".into());
    };
    if keys.is_empty() {
        return Err("option 'keys' is empty".into());
    }
    let mut out = Vec::new();
    for (k, spec) in keys {
        let (name, options) = nested_spec(spec).ok_or_else(|| format!("key '{k}' must name a masker"))?;
        let (m, s) = sub_masker(&name, &options, cx, true).map_err(|e| format!("key '{k}': {e}"))?;
        out.push((k.clone(), m, s));
    }
    Ok(Arc::new(super::containers::Hstore { keys: out }))
}

fn build_composite(o: &Opts, cx: &BuildCx) -> Result<Arc<dyn Masker>, OptionError> {
    let Some(Value::Object(fields)) = o.get("fields") else {
        return Err("option 'fields' is required: a map of field name to masker".into());
    };
    if fields.is_empty() {
        return Err("option 'fields' is empty".into());
    }
    let mut out = Vec::new();
    for (f, spec) in fields {
        let Some(pos) = cx.column.fields.iter().position(|(name, _)| name == f) else {
            let known: Vec<&str> = cx.column.fields.iter().map(|(n, _)| n.as_str()).collect();
            return Err(
                format!("type {} has no field '{f}' (its fields: {})", cx.column.type_name, known.join(", ")).into()
            );
        };
        let (name, options) = nested_spec(spec).ok_or_else(|| format!("field '{f}' must name a masker"))?;
        let column = ColumnInfo::from_type(&cx.column.fields[pos].1, false, false);
        let def = find(&name).ok_or_else(|| format!("field '{f}': unknown masker '{name}'"))?;
        if !def.accepts(column.class) {
            return Err(format!("field '{f}': masker '{name}' cannot mask type {}", column.type_name).into());
        }
        if let Some(max) = column.max_chars {
            let needed = def.min_chars_for(&options);
            if needed > max {
                return Err(format!(
                    "field '{f}': masker '{name}' writes at least {needed} characters but the field is {} (at most {max})",
                    column.type_name
                )
                .into());
            }
        }
        let (masker, seeder) = sub_masker_for(&name, &options, cx, &column).map_err(|e| format!("field '{f}': {e}"))?;
        out.push(super::containers::CompositeField {
            position: pos,
            masker,
            seeder,
            max_chars: column.max_chars,
            truncate: def.may_truncate(&options),
        });
    }
    Ok(Arc::new(super::containers::Composite { fields: out }))
}

/// A nested masker's name and options: `name` or `{mask: name, ...}`.
fn nested_spec(spec: &Value) -> Option<(String, Map<String, Value>)> {
    match spec {
        Value::String(n) => Some((n.clone(), Map::new())),
        Value::Object(m) => {
            let name = m.get("mask").and_then(Value::as_str)?;
            let mut rest = m.clone();
            rest.remove("mask");
            Some((name.to_string(), rest))
        }
        _ => None,
    }
}

/// The definition of a masker, by name.
pub fn find(name: &str) -> Option<&'static MaskerDef> {
    MASKERS.iter().find(|d| d.name == name)
}

impl MaskerDef {
    /// Whether the masker accepts this column type.
    pub fn accepts(&self, class: TypeClass) -> bool {
        self.types.contains(&class)
    }

    /// Whether it replaces a whole value of any type (null, fixed,
    /// choice): on an array column it replaces the array, where every
    /// other masker masks each element.
    pub fn whole_value(&self) -> bool {
        self.types == ANY
    }

    /// Whether it is injective with these options.
    pub fn is_injective(&self, options: &Map<String, Value>) -> bool {
        match self.injective {
            Injective::Yes => true,
            Injective::No => false,
            Injective::Depends => match self.name {
                "hash" => options.get("length").and_then(Value::as_i64).unwrap_or(16) >= 16,
                "template" => {
                    // From the row, only the value's own tag keeps it unique.
                    let from_row = options.get("from_row").and_then(Value::as_bool).unwrap_or(false);
                    options
                        .get("template")
                        .and_then(Value::as_str)
                        .map(|t| {
                            template_parts(t).unwrap_or_default().iter().any(|p| match p {
                                Part::Masker(n) if from_row => n == "tag",
                                Part::Masker(n) => find(n).is_some_and(|d| d.injective == Injective::Yes),
                                Part::Text(_) => false,
                            })
                        })
                        .unwrap_or(false)
                }
                _ => false,
            },
        }
    }

    /// The shortest output with these options, in characters: a column
    /// narrower than this is refused at plan time.
    pub fn min_chars_for(&self, options: &Map<String, Value>) -> usize {
        match self.name {
            "hash" => options.get("length").and_then(Value::as_u64).unwrap_or(16) as usize,
            "fixed" => options.get("value").and_then(Value::as_str).map(|v| v.chars().count()).unwrap_or(0),
            // Any value may be drawn, so the longest must fit.
            "choice" => match options.get("values") {
                Some(Value::Array(a)) => {
                    a.iter().map(|v| v.as_str().map_or(v.to_string().len(), |s| s.chars().count())).max().unwrap_or(0)
                }
                Some(Value::Object(m)) => m.keys().map(|k| k.chars().count()).max().unwrap_or(0),
                _ => 0,
            },
            "password_hash" => match options.get("algorithm").and_then(Value::as_str) {
                Some("argon2id") => 97,
                _ => 60,
            },
            "template" => options
                .get("template")
                .and_then(Value::as_str)
                .and_then(|t| template_parts(t).ok())
                .map(|parts| {
                    parts
                        .iter()
                        .map(|p| match p {
                            Part::Text(t) => t.chars().count(),
                            Part::Masker(n) if options.get("from_row").and_then(Value::as_bool).unwrap_or(false) => {
                                if n == "tag" {
                                    13
                                } else {
                                    0
                                }
                            }
                            Part::Masker(n) => find(n).map(|d| d.min_chars).unwrap_or(0),
                        })
                        .sum()
                })
                .unwrap_or(0),
            _ => self.min_chars,
        }
    }

    /// Whether output longer than the column may be cut to fit: never for
    /// an injective masker, whose uniqueness would not survive the cut.
    pub fn may_truncate(&self, options: &Map<String, Value>) -> bool {
        self.truncate || (self.name == "template" && !self.is_injective(options))
    }

    /// Checks option names, then builds the masker.
    pub fn build(&self, options: &Map<String, Value>, cx: &BuildCx) -> Result<Arc<dyn Masker>, OptionError> {
        for k in options.keys() {
            if !self.options.iter().any(|o| o.name == k) {
                let known: Vec<&str> = self.options.iter().map(|o| o.name).collect();
                return Err(if known.is_empty() {
                    format!("masker '{}' takes no options, but got '{k}'", self.name)
                } else {
                    format!("masker '{}' has no option '{k}' (its options: {})", self.name, known.join(", "))
                }
                .into());
            }
        }
        (self.build)(&Opts::new(options), cx)
    }
}

/// A canonical string of a masker and its options, part of every seed.
pub fn spec_string(name: &str, options: &Map<String, Value>) -> String {
    let mut sorted: Vec<(&String, &Value)> = options.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut s = name.to_string();
    for (k, v) in sorted {
        s.push(';');
        s.push_str(k);
        s.push('=');
        s.push_str(&canonical_json(v));
    }
    s
}

fn canonical_json(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let inner: Vec<String> =
                keys.into_iter().map(|k| format!("{}:{}", Value::String(k.clone()), canonical_json(&m[k]))).collect();
            format!("{{{}}}", inner.join(","))
        }
        other => other.to_string(),
    }
}

/// Builds a sub-masker named in a template, JSON path or scrubber, with its
/// own seed domain derived from the parent's.
fn sub_masker(
    name: &str,
    options: &Map<String, Value>,
    cx: &BuildCx,
    text_column: bool,
) -> Result<(Arc<dyn Masker>, super::Seeder), OptionError> {
    let column = if text_column { ColumnInfo::from_type("text", false, false) } else { cx.column.clone() };
    sub_masker_for(name, options, cx, &column)
}

/// [`sub_masker`] for a given column (a composite's field).
fn sub_masker_for(
    name: &str,
    options: &Map<String, Value>,
    cx: &BuildCx,
    column: &ColumnInfo,
) -> Result<(Arc<dyn Masker>, super::Seeder), OptionError> {
    let def = find(name).ok_or_else(|| format!("unknown masker '{name}'"))?;
    if !def.nests {
        return Err(format!("masker '{name}' cannot be nested here").into());
    }
    let column = column.clone();
    let spec = spec_string(name, options);
    let sub =
        BuildCx { key: cx.key, column: &column, purpose: format!("{}/{spec}", cx.domain), domain: cx.domain.clone() };
    let m = def.build(options, &sub)?;
    Ok((m, cx.key.seeder(&cx.domain, &spec)))
}

enum Part {
    Text(String),
    Masker(String),
}

fn template_parts(t: &str) -> Result<Vec<Part>, OptionError> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let mut name = String::new();
                let mut closed = false;
                for n in chars.by_ref() {
                    if n == '}' {
                        closed = true;
                        break;
                    }
                    name.push(n);
                }
                if !closed {
                    return Err("template has an unclosed '{'".into());
                }
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(Part::Masker(name.trim().to_string()));
            }
            '}' => return Err("template has a '}' without '{' (write }} for a literal brace)".into()),
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    Ok(parts)
}

fn build_template(o: &Opts, cx: &BuildCx) -> Result<Arc<dyn Masker>, OptionError> {
    let t = o.str("template")?.ok_or("option 'template' is required")?;
    if o.bool("from_row")?.unwrap_or(false) {
        // {column} is that column's masked value in the same row; {tag} a
        // keyed tag of this value. Columns are resolved against the table
        // when the plan is built.
        let parts = template_parts(t)?
            .into_iter()
            .map(|p| match p {
                Part::Text(s) => RowPart::Text(s),
                Part::Masker(n) if n == "tag" => RowPart::Tag,
                Part::Masker(n) => RowPart::Column(n),
            })
            .collect();
        return Ok(Arc::new(maskers::RowTemplate { parts }));
    }
    let mut parts = Vec::new();
    for p in template_parts(t)? {
        parts.push(match p {
            Part::Text(s) => TemplatePart::Text(s),
            Part::Masker(name) => {
                let (m, s) = sub_masker(&name, &Map::new(), cx, true)?;
                TemplatePart::Masker(m, s)
            }
        });
    }
    Ok(Arc::new(maskers::Template { parts }))
}

fn build_json(o: &Opts, cx: &BuildCx) -> Result<Arc<dyn Masker>, OptionError> {
    let Some(Value::Object(paths)) = o.get("paths") else {
        return Err("option 'paths' is required: a map of JSON path to masker".into());
    };
    if paths.is_empty() {
        return Err("option 'paths' is empty".into());
    }
    let mut out = Vec::new();
    for (path, spec) in paths {
        let steps = maskers::parse_json_path(path)?;
        let (name, options) = match (spec, nested_spec(spec)) {
            (_, Some(named)) => named,
            (Value::Object(_), None) => return Err(format!("path '{path}' needs 'mask: NAME'").into()),
            _ => return Err(format!("path '{path}' must name a masker").into()),
        };
        let (m, s) = sub_masker(&name, &options, cx, true).map_err(|e| format!("path '{path}': {e}"))?;
        out.push((steps, m, s));
    }
    Ok(Arc::new(maskers::JsonPaths { paths: out }))
}

fn build_pii_scrub(_: &Opts, cx: &BuildCx) -> Result<Arc<dyn Masker>, OptionError> {
    let finder = regex::Regex::new(maskers::PII_PATTERN).map_err(|e| e.to_string())?;
    let (email, email_seeder) = sub_masker("email", &Map::new(), cx, true)?;
    let (phone, phone_seeder) = sub_masker("phone", &Map::new(), cx, true)?;
    let (ip, ip_seeder) = sub_masker("ip", &Map::new(), cx, true)?;
    Ok(Arc::new(maskers::PiiScrub { finder, email, email_seeder, phone, phone_seeder, ip, ip_seeder }))
}

/// The registry as JSON, for `scrubsnap maskers --format json` and the schema.
pub fn describe() -> Value {
    Value::Array(
        MASKERS
            .iter()
            .map(|d| {
                serde_json::json!({
                    "name": d.name,
                    "summary": d.summary,
                    "options": d.options,
                    "example": d.example,
                    "types": d.types.iter().map(|t| t.name()).collect::<Vec<_>>(),
                    "injective": d.injective,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_examples_name_their_masker() {
        let mut names: Vec<&str> = MASKERS.iter().map(|d| d.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), MASKERS.len());
        for d in MASKERS {
            assert!(d.example.contains(d.name), "{}", d.name);
        }
    }

    #[test]
    fn uuid_and_ipv6_keep_the_extremes_apart() {
        let key = MaskKey::from_material(b"extremes-test-key-0123456789").unwrap();
        let mask = |name: &str, ty: &str, a: &str, b: &str| {
            let column = ColumnInfo::from_type(ty, true, true);
            let cx = BuildCx { key: &key, column: &column, purpose: format!("d/{name}"), domain: "d".into() };
            let m = find(name).unwrap().build(&Map::new(), &cx).unwrap();
            let seeder = key.seeder("d", name);
            (m.mask(a, &seeder).unwrap(), m.mask(b, &seeder).unwrap())
        };
        let (zero, max) =
            mask("uuid", "uuid", "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff");
        assert_ne!(zero, max, "the smallest and the largest UUID map apart");
        let (zero, max) = mask("ip", "inet", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
        assert_ne!(zero, max, "the smallest and the largest IPv6 address map apart");
    }

    #[test]
    fn spec_strings_are_canonical() {
        let a: Map<String, Value> = serde_json::from_str(r#"{"b": 1, "a": {"y": 2, "x": 1}}"#).unwrap();
        let b: Map<String, Value> = serde_json::from_str(r#"{"a": {"x": 1, "y": 2}, "b": 1}"#).unwrap();
        assert_eq!(spec_string("m", &a), spec_string("m", &b));
    }
}

#[cfg(test)]
mod uniqueness {
    //! One million distinct inputs into each injective masker give one
    //! million distinct outputs.
    use std::collections::HashSet;

    use serde_json::Map;

    use crate::mask::registry::{self, BuildCx};
    use crate::mask::{ColumnInfo, MaskKey};

    fn distinct(name: &str, opts: &str, ty: &str, input: impl Fn(u64) -> String) {
        let key = MaskKey::from_material(b"uniqueness-test-key-0123456789").unwrap();
        let options: Map<String, serde_json::Value> = serde_json::from_str(opts).unwrap();
        let column = ColumnInfo::from_type(ty, true, true);
        let spec = registry::spec_string(name, &options);
        let def = registry::find(name).unwrap();
        assert!(def.is_injective(&options), "{name} claims injectivity");
        let cx = BuildCx { key: &key, column: &column, purpose: format!("d/{spec}"), domain: "d".into() };
        let m = def.build(&options, &cx).unwrap();
        let seeder = key.seeder("d", &spec);
        let n = 1_000_000u64;
        let mut seen = HashSet::with_capacity(n as usize);
        for i in 0..n {
            let out = m.mask(&input(i), &seeder).unwrap().unwrap();
            assert!(seen.insert(out), "{name}: two inputs gave one output at {i}");
        }
    }

    #[test]
    fn email() {
        distinct("email", "{}", "text", |i| format!("user{i}@corp.example"));
    }
    #[test]
    fn username() {
        distinct("username", "{}", "text", |i| format!("user{i}"));
    }
    #[test]
    fn phone() {
        distinct("phone", "{}", "text", |i| {
            format!("+1 ({:03}) {:03}-{:04}", 200 + i / 10_000_000 % 800, i / 10_000 % 1000, i % 10_000)
        });
    }
    #[test]
    fn ip() {
        distinct("ip", "{}", "inet", |i| std::net::Ipv4Addr::from(0x0a00_0000u32 + i as u32).to_string());
    }
    #[test]
    fn uuid() {
        distinct("uuid", "{}", "uuid", |i| format!("00000000-0000-4000-8000-{i:012x}"));
    }
    #[test]
    fn integer() {
        distinct("integer", "{}", "bigint", |i| i.to_string());
    }
    #[test]
    fn hash() {
        distinct("hash", "{}", "text", |i| format!("token-{i}"));
    }
    #[test]
    fn iban() {
        distinct("iban", "{}", "text", |i| {
            format!("DE00 3704 0044 {:04} {:04} {:02}", i / 1_000_000, i / 100 % 10_000, i % 100)
        });
    }
    #[test]
    fn card_number() {
        distinct("card_number", r#"{"keep_brand": true}"#, "text", |i| {
            let body = format!("411111{i:09}");
            let d: Vec<u8> = body.bytes().map(|b| b - b'0').collect();
            format!("{body}{}", crate::mask::maskers::ids_luhn_digit(&d))
        });
    }
    #[test]
    fn national_id() {
        distinct("national_id", r#"{"country": "us"}"#, "text", |i| {
            format!("{:03}-{:02}-{:04}", 100 + i / 989_901, 1 + i / 9_999 % 99, 1 + i % 9_999)
        });
    }
    #[test]
    fn vat_number() {
        distinct("vat_number", "{}", "text", |i| format!("NL{i:09}B01"));
    }
    #[test]
    fn digits() {
        distinct("digits", "{}", "text", |i| format!("ACC-{i:010}"));
    }
    #[test]
    fn imei() {
        distinct("imei", "{}", "text", |i| {
            let body = format!("3569{i:010}");
            let d: Vec<u8> = body.bytes().map(|b| b - b'0').collect();
            format!("{body}{}", crate::mask::maskers::ids_luhn_digit(&d))
        });
    }
    #[test]
    fn mac_address() {
        distinct("mac_address", r#"{"keep_oui": true}"#, "macaddr", |i| {
            format!("00:1a:2b:{:02x}:{:02x}:{:02x}", i >> 16 & 0xff, i >> 8 & 0xff, i & 0xff)
        });
    }
    #[test]
    fn domain_name() {
        distinct("domain_name", "{}", "text", |i| format!("tenant{i}.example.org"));
    }
}
