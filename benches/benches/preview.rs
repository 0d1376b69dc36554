//! Preview throughput: recipients per second for 100,000 and 1,000,000 generated recipients.
//!
//! The recipients are generated before each timed run (not timed); the run normalises every
//! number, applies consent, renders the message and counts segments for every record.
//! Peak memory for 1,000,000 is measured by `cargo run --release -p sms-benches --bin preview_peak`.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sms_benches::{PREVIEW_TEMPLATE, preview_settings, recipients};
use sms_core::preview::preview;
use sms_core::{OptOutSnapshot, Template};

fn bench(c: &mut Criterion) {
    let template = Template::parse(PREVIEW_TEMPLATE).expect("valid template");
    let settings = preview_settings();
    let snapshot = OptOutSnapshot::default();
    let mut group = c.benchmark_group("preview");
    group.sample_size(10);
    for count in [100_000usize, 1_000_000] {
        group.throughput(Throughput::Elements(count as u64));
        group.bench_function(format!("{count}_recipients"), |b| {
            b.iter_batched(
                || recipients(count).collect::<Vec<_>>(),
                |list| preview(list, &template, &snapshot, &settings).expect("fields exist"),
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
