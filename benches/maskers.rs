//! Throughput of every masker on one core: `cargo bench --bench maskers`.
//! The first golden case of each masker is masked over and over with varying input.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use scrubsnap::mask::registry::{self, BuildCx};
use scrubsnap::mask::{ColumnInfo, MaskKey};
use serde_json::{Map, Value};

/// One golden case (tests/fixtures/golden/cases.yaml).
#[derive(serde::Deserialize)]
struct Case {
    masker: String,
    options: Map<String, Value>,
    #[serde(rename = "type")]
    type_name: String,
    #[serde(default)]
    fields: Vec<(String, String)>,
    input: String,
}

fn maskers(c: &mut Criterion) {
    let key = MaskKey::from_material(b"benchmark-key-0123456789abcdef").expect("key");
    let mut group = c.benchmark_group("maskers");
    group.throughput(Throughput::Elements(1));
    let mut seen = std::collections::HashSet::new();
    let cases: Vec<Case> =
        serde_yaml::from_str(include_str!("../tests/fixtures/golden/cases.yaml")).expect("golden cases");
    for Case { masker, options, type_name, fields, input } in &cases {
        let (name, ty) = (masker.as_str(), type_name.as_str());
        if !seen.insert(name) {
            continue;
        }
        let column = if fields.is_empty() {
            ColumnInfo::from_type(ty, false, false)
        } else {
            ColumnInfo::composite(ty, false, fields.clone())
        };
        let spec = registry::spec_string(name, options);
        let cx = BuildCx { key: &key, column: &column, purpose: format!("d/{spec}"), domain: "d".into() };
        let m = registry::find(name).expect("masker").build(options, &cx).expect("build");
        let seeder = key.seeder("d", &spec);
        // Vary the input so no cache helps; keep its shape for the parsers.
        let structured = registry::find(name).is_some_and(|d| STRUCTURED.contains(&d.name))
            || matches!(ty, "macaddr" | "point" | "hstore" | "numeric(9,6)" | "double precision");
        let inputs: Vec<String> = (0..1024)
            .map(|i| match ty {
                "integer" => (i * 7 + 1).to_string(),
                "inet" | "uuid" | "date" | "timestamp with time zone" | "jsonb" => input.to_string(),
                _ if name == "phone" => input.replace("9999", &format!("{:04}", i)),
                _ if structured => last_digits(input, i),
                _ => format!("{input}{i}"),
            })
            .collect();
        let mut i = 0usize;
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) & 1023;
                m.mask(&inputs[i], &seeder).expect("mask")
            })
        });
    }
    // A three-element array of emails, through the plan's array masker.
    let rule = scrubsnap::rules::MaskRule {
        masker: "email".into(),
        options: Map::new(),
        domain: None,
        on_error: scrubsnap::rules::OnErrorSpec::Fail,
        mask_empty: false,
    };
    let column = ColumnInfo::from_type("text[]", false, false);
    let built = scrubsnap::plan::masking::check_and_build(&rule, &column, "d", &key, "bench").expect("array rule");
    let inputs: Vec<String> = (0..1024).map(|i| format!("{{a{i}@corp.example,NULL,\"b {i}@corp.example\"}}")).collect();
    let mut i = 0usize;
    group.bench_function("email[] (3 elements)", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            built.masker.mask(&inputs[i], &built.seeder).expect("mask")
        })
    });
    group.finish();
}

/// Maskers whose input has a format (check digits, separators): their
/// inputs vary in their last digits instead of growing.
const STRUCTURED: &[&str] = &[
    "composite",
    "iban",
    "card_number",
    "national_id",
    "vat_number",
    "digits",
    "imei",
    "mac_address",
    "bic",
    "latitude",
    "longitude",
    "geo_point",
    "generalize_number",
    "truncate",
    "random_number",
    "url",
    "hstore",
    "password_hash",
    "building_number",
];

/// `input` with its last two ASCII digits replaced by those of `i`.
fn last_digits(input: &str, i: usize) -> String {
    let mut bytes = input.as_bytes().to_vec();
    let mut d = i;
    for b in bytes.iter_mut().rev().filter(|b| b.is_ascii_digit()).take(2) {
        *b = b'0' + (d % 10) as u8;
        d /= 10;
    }
    String::from_utf8(bytes).unwrap_or_else(|_| input.to_string())
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(1));
    targets = maskers
}
criterion_main!(benches);
