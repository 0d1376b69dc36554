//! Phone parsing: the NANP fast path (`PhoneNumber::parse`) against the `phonenumber` crate
//! (`parse_with_crate`) on typical formatted input. Throughput is per number.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sms_core::phone::parse_with_crate;
use sms_core::{PhoneNumber, Region};

/// Mobile numbers as a registration form collects them: several formats, a spread of real area
/// codes (US, Canada, one Caribbean), and one in ten with the fictional 555 area code (invalid).
fn typed_numbers(count: usize) -> Vec<String> {
    const AREAS: [u32; 12] = [212, 415, 312, 617, 713, 206, 604, 416, 403, 876, 801, 919];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (seed >> 33) as u32
    };
    (0..count)
        .map(|i| {
            let npa = if i % 10 == 9 {
                555
            } else {
                AREAS[next() as usize % AREAS.len()]
            };
            let nxx = 200 + next() % 800;
            let line = next() % 10_000;
            match i % 6 {
                0 => format!("({npa}) {nxx}-{line:04}"),
                1 => format!("{npa}.{nxx}.{line:04}"),
                2 => format!("+1 {npa} {nxx} {line:04}"),
                3 => format!("1-{npa}-{nxx}-{line:04}"),
                4 => format!("{npa}{nxx}{line:04}"),
                _ => format!("+1{npa}{nxx}{line:04}"),
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let inputs = typed_numbers(1000);

    // The fast path derives its table from the crate's metadata on first use: report that once.
    let started = Instant::now();
    let _ = black_box(PhoneNumber::parse("(212) 555-0123", Region::US));
    eprintln!(
        "phone: first use (table build) took {:?}",
        started.elapsed()
    );

    let mut group = c.benchmark_group("phone");
    group.throughput(Throughput::Elements(inputs.len() as u64));
    group.bench_function("fast_path", |b| {
        b.iter(|| {
            inputs
                .iter()
                .filter(|raw| PhoneNumber::parse(black_box(raw), Region::US).is_ok())
                .count()
        })
    });
    group.sample_size(10);
    group.bench_function("crate", |b| {
        b.iter(|| {
            inputs
                .iter()
                .filter(|raw| parse_with_crate(black_box(raw), Region::US).is_ok())
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
