//! Printing: one tree-tag QR code as PNG (level Q, 8 px per module), and A4 sheets of 500 tree
//! tags (21 pages) as PDF and as SVG. The signed tree URL is 151 characters (version 10 at Q).
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use tiles::print::{EcLevel, Label, LabelKind, SheetOptions, encode, qr_png, sheet_pdf, sheet_svg};

/// 86 base64url characters, like an Ed25519 signature in GS1 AI 8030.
fn signature(seed: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    (0..86)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(ALPHABET[(state % 64) as usize])
        })
        .collect()
}

fn tree_url(i: usize) -> String {
    format!("https://orchardmap.example.vn/414/9520123456788/254/K{i:06}?8030={}", signature(i as u64 + 1))
}

fn labels(n: usize) -> Vec<Label> {
    (0..n)
        .map(|i| Label {
            url: tree_url(i),
            code: format!("K{i:06}"),
            lines: vec!["Sầu riêng Ri6".into(), format!("Vườn ông Y Blang Niê, Đắk Lắk, hàng {}", i / 20 + 1)],
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let url = tree_url(7);
    c.bench_function("encode tree URL at Q", |b| b.iter(|| encode(black_box(&url), EcLevel::Q).unwrap()));
    c.bench_function("qr_png tree URL at Q, 8 px", |b| b.iter(|| qr_png(black_box(&url), EcLevel::Q, 8).unwrap()));

    let labels = labels(500);
    let opts = SheetOptions { kind: LabelKind::TreeTag, ec: None, title: Some("Vườn ông Y Blang Niê".into()) };
    let mut group = c.benchmark_group("sheet of 500 tree tags");
    // One run takes a few hundred milliseconds: ten flat samples.
    group.sample_size(10).sampling_mode(SamplingMode::Flat).measurement_time(Duration::from_secs(8));
    group.bench_function("pdf", |b| b.iter(|| sheet_pdf(black_box(&labels), &opts).unwrap()));
    group.bench_function("svg", |b| b.iter(|| sheet_svg(black_box(&labels), &opts).unwrap()));
    group.finish();
}

criterion_group! {
    name = benches;
    // Fifty samples of the single codes fit a 3-second measurement.
    config = Criterion::default().sample_size(50);
    targets = bench
}
criterion_main!(benches);
