//! Throughput of the leak scan on one core: `cargo bench --bench leak_scan`.
//!
//! Rows with the columns of `bench/run`'s tables (COPY text, generated here,
//! with numbered values and hex payloads: hex is the hardest case for the
//! key finder): the originals of `customers`' personal columns are
//! remembered, then the kept columns of `orders`, `order_items` and `events`
//! are probed as the dump probes them, with the filter complete. Reported
//! per byte of COPY text.

use std::fmt::Write;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use scrubsnap::leak::{Bloom, LeakObserver, Origins, Probe, TableProbe, DEFAULT_BYTES};

const ROWS: u64 = 20_000;

/// A stand-in for md5: 32 hex digits that vary with `i`.
fn hex(i: u64) -> String {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let y = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    format!("{z:016x}{y:016x}")
}

fn timestamp(seconds: u64) -> String {
    let (d, s) = (seconds / 86_400, seconds % 86_400);
    format!("2024-{:02}-{:02} {:02}:{:02}:{:02}+00", 1 + d / 28 % 12, 1 + d % 28, s / 3600, s / 60 % 60, s % 60)
}

/// Each table's COPY text and how its columns are probed.
fn tables() -> Vec<(&'static str, Vec<Probe>, Vec<u8>)> {
    let (mut orders, mut items, mut events) = (String::new(), String::new(), String::new());
    for i in 1..=ROWS {
        let status = ["paid", "shipped", "new"][i as usize % 3];
        let _ = writeln!(
            orders,
            "{i}\t{}\t{}.{:02}\t{status}\t{}\t{{\"zip\": \"{:05}\", \"street\": \"{} Hamill Pass\"}}",
            1 + i % 1000,
            i % 1000,
            i % 100,
            timestamp(i * 60),
            i % 99_999,
            i % 9999
        );
        for line in 0..3 {
            let _ =
                writeln!(items, "{i}\t{line}\tSKU-{}\t{}\t{}.{}", (i * 3 + line) % 5000, 1 + i % 5, i % 900, i % 10);
        }
        let kind = ["view", "click", "buy"][i as usize % 3];
        let _ = writeln!(events, "{i}\t{}\t{kind}\t{} {}\t{}", 1 + i % 1000, hex(i), hex(i * 7), timestamp(i));
    }
    use Probe::{Full, Whole};
    vec![
        ("orders", vec![Whole, Whole, Whole, Full, Whole, Full], orders.into_bytes()),
        ("order_items", vec![Whole, Whole, Full, Whole, Whole], items.into_bytes()),
        ("events", vec![Whole, Whole, Full, Full, Whole], events.into_bytes()),
    ]
}

fn leak_scan(c: &mut Criterion) {
    let bloom = Arc::new(Bloom::new(DEFAULT_BYTES));
    let origins = Arc::new(Origins::new(vec!["public.customers.values".into()]));
    let mut group = c.benchmark_group("leak_scan");
    // Remembering customers' originals, as masking them does.
    let originals: Vec<String> = (1..=ROWS)
        .flat_map(|i| {
            [
                format!("user{i}@mail.example"),
                format!("First{}", i % 997),
                format!("Last{}", i % 1999),
                format!("+1 ({}) 555-{:04}", 200 + i % 700, i % 10_000),
                format!("{} Main Street", i % 9999),
                format!("City{}", i % 500),
                format!("Prefers email user{i}@mail.example, evenings"),
            ]
        })
        .collect();
    group.throughput(Throughput::Bytes(originals.iter().map(|o| o.len() as u64).sum()));
    // In batches, as a 64 KiB buffer of rows gives them.
    group.bench_function("remember customers", |b| {
        let mut batch = Vec::new();
        b.iter(|| {
            for values in originals.chunks(3000) {
                values.iter().for_each(|o| {
                    bloom.queue_remember(o, 0, &mut batch);
                });
                bloom.remember_batch(&mut batch);
                origins.write(&batch);
                batch.clear();
            }
        })
    });
    for (name, probes, text) in tables() {
        let inline = Arc::new(TableProbe::new(probes, Arc::clone(&bloom)));
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(format!("probe {name}"), |b| {
            b.iter(|| {
                let mut rows =
                    LeakObserver::new(Arc::clone(&bloom), Arc::clone(&origins), Vec::new(), Arc::clone(&inline));
                for chunk in text.chunks(64 * 1024) {
                    rows.observe_rows(chunk);
                }
                rows.finish(name).expect("end");
            })
        });
        let found = inline.tally().found;
        assert!(found.columns.iter().all(|c| c.is_empty()), "no original in {name}");
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(2));
    targets = leak_scan
}
criterion_main!(benches);
