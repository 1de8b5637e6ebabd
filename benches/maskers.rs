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
    input: String,
}

fn maskers(c: &mut Criterion) {
    let key = MaskKey::from_material(b"benchmark-key-0123456789abcdef").expect("key");
    let mut group = c.benchmark_group("maskers");
    group.throughput(Throughput::Elements(1));
    let mut seen = std::collections::HashSet::new();
    let cases: Vec<Case> =
        serde_yaml::from_str(include_str!("../tests/fixtures/golden/cases.yaml")).expect("golden cases");
    for Case { masker, options, type_name, input } in &cases {
        let (name, ty) = (masker.as_str(), type_name.as_str());
        if !seen.insert(name) {
            continue;
        }
        let column = ColumnInfo::from_type(ty, false, false);
        let spec = registry::spec_string(name, options);
        let cx = BuildCx { key: &key, column: &column, purpose: format!("d/{spec}"), domain: "d".into() };
        let m = registry::find(name).expect("masker").build(options, &cx).expect("build");
        let seeder = key.seeder("d", &spec);
        // Vary the input so no cache helps; keep its shape for the parsers.
        let inputs: Vec<String> = (0..1024)
            .map(|i| match ty {
                "integer" => (i * 7 + 1).to_string(),
                "inet" | "uuid" | "date" | "timestamp with time zone" | "jsonb" => input.to_string(),
                _ if name == "phone" => input.replace("9999", &format!("{:04}", i)),
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
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(1));
    targets = maskers
}
criterion_main!(benches);
