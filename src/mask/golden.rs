//! Golden outputs: a fixed key and fixed inputs give fixed outputs for every
//! masker. A dependency upgrade or code change that alters any of them fails
//! here, and changing them is a deliberate, changelogged decision: snapshots
//! made before and after would no longer match.

use serde_json::{Map, Value};

use super::registry::{self, BuildCx};
use super::{ColumnInfo, MaskKey};

/// (masker, options as JSON, column type, input)
pub const CASES: &[(&str, &str, &str, &str)] = &[
    ("null", "{}", "text", "x"),
    ("fixed", r#"{"value": "n/a"}"#, "text", "secret"),
    ("redact", "{}", "text", "Ab1-Zz 9"),
    ("hash", "{}", "text", "alice@example.com"),
    ("hash", r#"{"length": 20, "encoding": "base32"}"#, "text", "alice@example.com"),
    ("email", "{}", "text", "alice@example.com"),
    ("email", r#"{"domain": "corp.test"}"#, "character varying(40)", "alice@example.com"),
    ("first_name", "{}", "text", "Alice"),
    ("last_name", "{}", "text", "Smith"),
    ("full_name", r#"{"locale": "fr_fr"}"#, "text", "Alice Smith"),
    ("username", "{}", "text", "asmith"),
    ("phone", "{}", "text", "+1 (555) 010-9999"),
    ("phone", r#"{"keep_country": false}"#, "text", "0044 20 7946 0958"),
    ("street_address", "{}", "text", "1 Main St"),
    ("city", "{}", "text", "Springfield"),
    ("postal_code", "{}", "text", "SW1A 1AA"),
    ("country", "{}", "text", "France"),
    ("company", "{}", "text", "Acme Inc"),
    ("lorem", "{}", "text", "Call me at home after six."),
    ("ip", "{}", "inet", "192.168.10.20"),
    ("ip", r#"{"keep_prefix": 64}"#, "inet", "2001:db8::1"),
    ("uuid", "{}", "uuid", "6f1c2a0e-8d1b-4c55-9a3e-2f4b5c6d7e8f"),
    ("integer", "{}", "integer", "42"),
    ("integer", r#"{"min": 1, "max": 1000}"#, "integer", "42"),
    ("numeric_noise", "{}", "numeric(12,2)", "1234.50"),
    ("date_shift", "{}", "date", "2024-02-29"),
    ("date_shift", r#"{"days": 5, "keep_time": false}"#, "timestamp with time zone", "2024-02-29 13:45:00+01"),
    ("date_of_birth", "{}", "date", "1990-05-17"),
    ("regex_replace", r#"{"pattern": "([0-9]{3})[0-9]{4}", "replacement": "${1}0000"}"#, "text", "ref 5551234"),
    ("partial", "{}", "text", "4111111111111111"),
    ("template", r#"{"template": "{first_name}.{last_name}@example.org"}"#, "text", "alice"),
    ("json", r#"{"paths": {"$.contact.email": "email", "$.tags[*]": "redact"}}"#, "jsonb", r#"{"contact": {"email": "a@b.co", "age": 3}, "tags": ["Ab1"]}"#),
    ("pii_scrub", "{}", "text", "Mail bob@example.com or call +44 20 7946 0958; card 4111 1111 1111 1111, IBAN GB82 WEST 1234 5698 7654 32, from 10.1.2.3."),
];

pub fn outputs() -> Vec<String> {
    let key = MaskKey::from_material(b"golden-test-key-do-not-change").unwrap_or_else(|_| MaskKey::ephemeral());
    CASES
        .iter()
        .map(|(name, opts, ty, input)| {
            let options: Map<String, Value> = serde_json::from_str(opts).unwrap_or_default();
            let def = registry::find(name).map(Ok).unwrap_or(Err(format!("no masker {name}")));
            let column = ColumnInfo::from_type(ty, false, false);
            let spec = registry::spec_string(name, &options);
            let cx =
                BuildCx { key: &key, column: &column, purpose: format!("default/{spec}"), domain: "default".into() };
            let out = def
                .and_then(|d| d.build(&options, &cx))
                .and_then(|m| m.mask(input, &key.seeder("default", &spec)).map_err(|e| e.0));
            match out {
                Ok(Some(v)) => v,
                Ok(None) => "NULL".to_string(),
                Err(e) => format!("ERROR {e}"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPECTED: &[&str] = &[
        "NULL",
        "n/a",
        "Xx9-Xx 9",
        "924e14ede391712a",
        "5c5uhwts27n5zzcjjntr",
        "diamond.schmidt.vljzy6uoqlvcr@example.net",
        "blair.ruecker.f5cm52bdggikb@corp.test",
        "Adelia",
        "Toy",
        "Annabelle Millot",
        "gunnarstrosin_3mfm6ptnaenaw",
        "+1 (870) 015-0267",
        "4537 31 6435 8511",
        "1987 Walker Village",
        "East Lesterhaven",
        "BP8Y 2QP",
        "Namibia",
        "Breitenberg and Sons",
        "et veniam commodi quia sun",
        "91.195.46.195",
        "2001:db8::a987:8f24:21ad:c475",
        "33a483da-5bd6-e595-1564-0968389cd5f3",
        "-1908310307",
        "563",
        "1234.57",
        "2024-02-18",
        "2024-03-04 18:11:58+01",
        "1996-09-03",
        "ref 5550000",
        "************1111",
        "Lelah.Balistreri@example.org",
        "{\"contact\":{\"email\":\"axel.ohara.kodeb5lrpbt2v@example.com\",\"age\":3},\"tags\":[\"Xx9\"]}",
        "Mail robb.funk.aym5dgrdzn4lm@example.com or call +44 64 1252 3219; card 1441 2989 6705 1488, IBAN GB83 WEST 2485 0783 4847 17, from 90.24.85.49.",
    ];

    /// After a deliberate change: `cargo test --lib print_golden -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn print_golden() {
        for g in outputs() {
            println!("        {g:?},");
        }
    }

    #[test]
    fn golden_outputs_are_stable() {
        let got = outputs();
        for (i, (case, want)) in CASES.iter().zip(EXPECTED).enumerate() {
            assert_eq!(&got[i], want, "masker {} (case {i})", case.0);
        }
        assert_eq!(got.len(), EXPECTED.len());
    }
}

#[cfg(test)]
mod uniqueness {
    //! One million distinct inputs into each injective masker give one
    //! million distinct outputs.
    use std::collections::HashSet;

    use serde_json::Map;

    use super::super::registry::{self, BuildCx};
    use super::super::{ColumnInfo, MaskKey};

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
}
