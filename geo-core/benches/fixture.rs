//! Deterministic, realistic bench fixtures: orchards of about 100 trees on
//! 9 m planting grids scattered over a 100 km square of Đắk Lắk.
// A panic in a test, bench or example is a failure report; unwrap is fine here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use geo_core::{LonLat, TreeId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// South-west corner of the area the orchards are spread over.
pub const AREA_ORIGIN: LonLat = LonLat::new(107.9, 12.3);

/// `n` trees in orchards of 100 (10 x 10 grid, 9 m apart, ±1.5 m GPS noise).
pub fn orchard_trees(n: usize, seed: u64) -> Vec<(TreeId, LonLat)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    let mut centre = AREA_ORIGIN;
    for i in 0..n {
        if i % 100 == 0 {
            centre = AREA_ORIGIN.offset_m(rng.gen_range(0.0..100_000.0), rng.gen_range(0.0..100_000.0));
        }
        let slot = i % 100;
        let east = (slot % 10) as f64 * 9.0 + rng.gen_range(-1.5..1.5);
        let north = (slot / 10) as f64 * 9.0 + rng.gen_range(-1.5..1.5);
        out.push((TreeId(i as i64 + 1), centre.offset_m(east, north)));
    }
    out
}

/// `n` query points, each within 20 m of a random tree of `trees`.
pub fn queries_near(trees: &[(TreeId, LonLat)], n: usize, seed: u64) -> Vec<LonLat> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let (_, p) = trees[rng.gen_range(0..trees.len())];
            p.offset_m(rng.gen_range(-20.0..20.0), rng.gen_range(-20.0..20.0))
        })
        .collect()
}
