//! Coordinate conversion per point: VN-2000 TM-3 (EPSG:9218) to WGS 84 and back, WGS 84 UTM
//! (no datum shift) for comparison, and parsing a PROJ string.
//!
//! `cargo bench -p orchardmap-geo-core --bench crs`
// A panic in a bench is a failure report; unwrap is fine here.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use geo_core::LonLat;
use geo_core::crs::Crs;

/// 4096 points scattered over Đắk Lắk (about 12.3-13.3 N, 107.9-108.9 E).
fn points() -> Vec<LonLat> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..4096).map(|_| LonLat::new(107.9 + next(), 12.3 + next())).collect()
}

fn crs_benches(c: &mut Criterion) {
    let wgs84 = points();
    let mut group = c.benchmark_group("crs");
    group.throughput(Throughput::Elements(1));
    for code in ["EPSG:9218", "EPSG:32649"] {
        let crs = Crs::parse(code).unwrap();
        let projected: Vec<(f64, f64)> = wgs84.iter().map(|p| crs.from_wgs84(*p).unwrap()).collect();
        let mut i = 0;
        group.bench_function(format!("{code} to_wgs84"), |b| {
            b.iter(|| {
                i = (i + 1) % projected.len();
                let (x, y) = projected[i];
                black_box(crs.to_wgs84(black_box(x), black_box(y)).unwrap())
            })
        });
        group.bench_function(format!("{code} from_wgs84"), |b| {
            b.iter(|| {
                i = (i + 1) % wgs84.len();
                black_box(crs.from_wgs84(black_box(wgs84[i])).unwrap())
            })
        });
    }
    let def = Crs::parse("EPSG:9218").unwrap().to_proj_string();
    group.bench_function("parse PROJ string", |b| b.iter(|| black_box(Crs::parse(black_box(&def)).unwrap())));
    group.finish();
}

criterion_group!(benches, crs_benches);
criterion_main!(benches);
