//! Shared by the cluster bench, tests and example: deterministic tree sets and
//! the tile pipeline a server runs (pyramid at clustered zooms, trees from an
//! R-tree above, on-the-fly clustering when a tile is still too full).

use geo_core::{Health, LonLat, TreeId, TreeIndex};
use tiles::cluster::{ClusterPyramid, cluster_on_the_fly, cluster_query_bounds, encode_cluster_tile};
use tiles::{EXTENT, TileId, TilePoint, encode_trees_tile, lonlat_to_tile_pixel};

/// A tree of the fixtures: id, position, health.
pub type Tree = (u64, LonLat, Health);

const CULTIVARS: [&str; 4] = ["Ri6", "Monthong", "Musang King", "Black Thorn"];

/// xorshift64*: a tiny deterministic generator, uniform in 0..1.
pub struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// Uniform in 0..1.
    pub fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_f64() * n as f64) as usize).min(n.saturating_sub(1))
    }
}

/// Health mostly good, as in the field.
fn health(r: f64) -> Health {
    match r {
        r if r < 0.7 => Health::Good,
        r if r < 0.85 => Health::Fair,
        r if r < 0.95 => Health::Poor,
        _ => Health::Dead,
    }
}

/// `n` trees spread uniformly over about 100 km × 100 km: 12.3..13.2 N, 107.9..108.8 E.
pub fn uniform(n: usize, seed: u64) -> Vec<Tree> {
    let mut rng = Rng::new(seed);
    (0..n as u64)
        .map(|i| {
            let at = LonLat::new(107.9 + 0.9 * rng.next_f64(), 12.3 + 0.9 * rng.next_f64());
            (i + 1, at, health(rng.next_f64()))
        })
        .collect()
}

/// `n` trees crowded into about 2 km × 2 km around 12.68 N, 108.05 E.
pub fn clumped(n: usize, seed: u64) -> Vec<Tree> {
    let mut rng = Rng::new(seed);
    (0..n as u64)
        .map(|i| {
            let at = LonLat::new(108.05 + 0.0184 * rng.next_f64(), 12.68 + 0.018 * rng.next_f64());
            (i + 1, at, health(rng.next_f64()))
        })
        .collect()
}

/// What a server holds: the trees (by id - 1), their R-tree and the pyramid.
pub struct World {
    /// The trees, tree `id` at index `id - 1`.
    pub trees: Vec<Tree>,
    /// The R-tree of the API's cache.
    pub index: TreeIndex,
    /// The clustering pyramid.
    pub pyramid: ClusterPyramid,
}

/// How a tile was rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// From the pyramid.
    Pyramid,
    /// Trees from the R-tree, one feature each.
    Raw,
    /// Trees from the R-tree, clustered on the fly.
    OnTheFly,
}

impl World {
    /// Indexes `trees` (ids must be 1..=n in order).
    pub fn new(trees: Vec<Tree>) -> Self {
        let index = TreeIndex::bulk_load(trees.iter().map(|(id, at, _)| (TreeId(*id as i64), *at)));
        let pyramid = ClusterPyramid::build(&trees);
        Self { trees, index, pyramid }
    }

    /// The tile view of tree `id`, as the API would make it from its record.
    pub fn point(&self, id: u64) -> Option<TilePoint> {
        let (id, at, h) = *self.trees.get(usize::try_from(id).ok()?.checked_sub(1)?)?;
        Some(TilePoint {
            id,
            location: at,
            code: format!("DUR-{id:07}"),
            cultivar: CULTIVARS[(id % 4) as usize].into(),
            health: h.as_str().into(),
            planted_year: Some(2008 + (id % 15) as i32),
            orchard: format!("DL-CMG-{:05}", id / 100),
        })
    }

    /// Renders `tile` as a server would.
    pub fn render(&self, tile: TileId) -> (Vec<u8>, Path) {
        if let Some(clusters) = self.pyramid.clusters_in(tile) {
            return (encode_cluster_tile(tile, &clusters, |id| self.point(id), &[]), Path::Pyramid);
        }
        let near: Vec<Tree> =
            self.index.in_bbox(&cluster_query_bounds(tile)).map(|e| self.trees[e.id.0 as usize - 1]).collect();
        let in_buffer = |at: LonLat| {
            let (x, y) = lonlat_to_tile_pixel(at, tile, EXTENT);
            let range = -64..=(EXTENT as i32 + 64);
            range.contains(&x) && range.contains(&y)
        };
        let shown: Vec<u64> = near.iter().filter(|t| in_buffer(t.1)).map(|t| t.0).collect();
        if shown.len() > self.pyramid.raw_limit() {
            let clusters = cluster_on_the_fly(tile, &near);
            return (encode_cluster_tile(tile, &clusters, |id| self.point(id), &[]), Path::OnTheFly);
        }
        let mut shown = shown;
        shown.sort_unstable(); // the R-tree's order is not the input's: sort for stable bytes
        let points: Vec<TilePoint> = shown.iter().filter_map(|id| self.point(*id)).collect();
        (encode_trees_tile(tile, &points, &[]), Path::Raw)
    }
}

/// `count` tiles at zoom `z` that contain trees: those of randomly drawn trees.
pub fn tiles_with_trees(trees: &[Tree], z: u8, count: usize, seed: u64) -> Vec<TileId> {
    let mut rng = Rng::new(seed);
    (0..count).filter_map(|_| tiles::tile_for(trees[rng.below(trees.len())].1, z).ok()).collect()
}
