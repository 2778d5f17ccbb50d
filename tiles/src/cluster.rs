//! Low-zoom clustering of the trees layer: a grid-aggregation pyramid that
//! keeps every vector tile small whatever the number of trees.
//!
//! # The grid
//!
//! At zoom `z` the Web Mercator world is cut into `2^(z+CELL_BITS)` ×
//! `2^(z+CELL_BITS)` *cells*, [`CELLS_PER_TILE`] × [`CELLS_PER_TILE`] (16 × 16)
//! per tile. Every tree falls in exactly one cell per zoom; a cell shown on a
//! map is a *cluster*: a point at the mean position of its trees, with their
//! number and their counts by health. Cells nest (each cell of zoom `z` is
//! four cells of zoom `z + 1`), and a tile's cells are one contiguous range of
//! the cells' Morton (Z-order) keys, so a tile is one range query.
//!
//! Positions are quantised to 32 bits per axis of the Web Mercator world
//! (about 9 mm at the equator) and cells keep integer sums, so means are
//! exact, and the same trees give the same bytes in any input order.
//!
//! # What a tile shows
//!
//! [`ClusterPyramid::build`] stores zooms `0..=L` (see
//! [`ClusterPyramid::clustered_zooms`]), choosing `L` once for the whole
//! dataset: the lowest zoom such that no tile at zoom `L + 1` holds more than
//! three quarters of [`ClusterOptions::raw_limit`] trees. So at one zoom every tile looks alike
//! (all clusters, or all trees), with no seam between neighbouring tiles.
//!
//! * Zooms `0..=L`: [`ClusterPyramid::clusters_in`] gives the clusters of the
//!   tile (its 256 cells and the ring of neighbouring cells whose mean lies in
//!   the tile's [`BUFFER`](crate::BUFFER)); [`encode_cluster_tile`] writes
//!   them, a cell of one tree as that tree.
//! * Zooms above `L`: `clusters_in` answers `None`; the caller takes the trees
//!   of the tile from its R-tree and encodes them with
//!   [`encode_trees_tile`](crate::encode_trees_tile). Should a tile still hold
//!   more than [`ClusterPyramid::raw_limit`] trees (later inserts, or data too
//!   dense for the memory budget), the caller clusters them with
//!   [`cluster_on_the_fly`], same grid, same output, so the size limits hold
//!   for any data.
//!
//! # Filters
//!
//! A health-only filter is answered from the counts ([`Cluster::with_health`]:
//! positions stay those of all the cell's trees). Any other filter (cultivar)
//! needs the trees: query [`cluster_query_bounds`], keep the matching trees
//! and pass them to [`cluster_on_the_fly`] (at zooms `0..=L`, or when more than
//! the raw limit match), so filtered tiles look like unfiltered ones.
//!
//! # Updates and cache invalidation
//!
//! [`ClusterPyramid::insert`] and [`ClusterPyramid::remove`] touch one cell
//! per stored zoom: O(levels · log n). [`tiles_containing`] names every tile
//! whose content can change when a tree at a position changes.
//!
//! ```
//! use geo_core::{Health, LonLat};
//! use tiles::cluster::{ClusterOptions, ClusterPyramid, encode_cluster_tile};
//!
//! let trees: Vec<_> = (0..100u64)
//!     .map(|i| (i, LonLat::new(108.05 + i as f64 * 1e-4, 12.68), Health::Good))
//!     .collect();
//! let pyramid = ClusterPyramid::build_with(&trees, ClusterOptions { raw_limit: 10, ..Default::default() });
//! let tile = tiles::tile_for(LonLat::new(108.05, 12.68), 5)?;
//! let clusters = pyramid.clusters_in(tile).expect("zoom 5 is clustered");
//! assert_eq!(clusters.iter().map(|c| c.count()).sum::<u64>(), 100);
//! let bytes = encode_cluster_tile(tile, &clusters, |_| None, &[]);
//! let decoded = tiles::mvt::decode(&bytes)?;
//! let f = &decoded.layer("trees").expect("trees layer").features[0];
//! assert_eq!(f.get("point_count").and_then(|v| v.as_i64()), Some(100));
//! # Ok::<(), tiles::Error>(())
//! ```

use std::collections::BTreeMap;
use std::f64::consts::PI;

use geo_core::{BBox, Health, LonLat};

use crate::mvt::{Geometry, LayerBuilder, Value};
use crate::{EXTENT, MAX_ZOOM, TREES_LAYER, TileId, TilePoint, TilePolygon, buffered, orchards_layer};

/// log2 of the cells per tile side: 4 gives 16 × 16 cells per tile.
pub const CELL_BITS: u8 = 4;

/// Cells per tile side (16): a tile shows at most 256 clusters of its own,
/// plus those of neighbouring cells whose mean lies within the buffer.
pub const CELLS_PER_TILE: u32 = 1 << CELL_BITS;

/// Highest zoom the pyramid may store: every zoom a [`TileId`] can have, so
/// even a million trees within a metre give small tiles at every zoom (cells
/// of zoom 24 are about 15 cm wide). Ordinary data stops far lower, where
/// tiles hold few enough trees to be drawn one by one.
pub const MAX_CLUSTER_ZOOM: u8 = MAX_ZOOM;

/// Default of [`ClusterOptions::raw_limit`]. Drawn one by one, a tree costs
/// 2–3 µs from R-tree to bytes (query, `TilePoint`, encoding), so a tile of up
/// to 500 trees renders in about 1.5 ms, leaving room under a 5 ms p99 on a
/// busy machine; tiles at the first unclustered zoom hold at most 375 by
/// construction.
pub const DEFAULT_RAW_LIMIT: usize = 500;

/// The stored cells of all zooms together never exceed this many per tree at
/// build time (a cell takes about 50 bytes, so the pyramid stays under about
/// 60 bytes per tree whatever the data).
const CELL_BUDGET_PER_TREE: usize = 1;

/// ... but small datasets may use this many cells (about 3 MB) whatever their size.
const MIN_CELL_BUDGET: usize = 1 << 16;

/// Quantisation: bits per axis of the world coordinate.
const QBITS: u32 = 32;

/// Property names of a cluster feature.
const HEALTH_KEYS: [&str; 4] = ["good", "fair", "poor", "dead"];

/// How [`ClusterPyramid::build_with`] chooses the clustered zooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterOptions {
    /// Most trees a tile above the clustered zooms may show one by one,
    /// counting those in its buffer: the pyramid stores zooms up to the lowest
    /// `L` such that every tile at `L + 1` holds at most three quarters of this
    /// (headroom for the buffer and for later inserts); a tile with more is
    /// clustered on the fly. Default [`DEFAULT_RAW_LIMIT`].
    pub raw_limit: usize,
    /// Highest zoom stored, at most [`MAX_CLUSTER_ZOOM`] (larger values are
    /// taken as it). Default [`MAX_CLUSTER_ZOOM`].
    pub max_cluster_zoom: u8,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self { raw_limit: DEFAULT_RAW_LIMIT, max_cluster_zoom: MAX_CLUSTER_ZOOM }
    }
}

/// One cell's aggregate: counts by health, sums of the trees' offsets from the
/// cell's north-west corner (quantised world units), XOR of the tree ids.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Cell {
    counts: [u32; 4],
    sum_x: u64,
    sum_y: u64,
    ids: u64,
}

impl Cell {
    fn total(&self) -> u64 {
        self.counts.iter().map(|c| u64::from(*c)).sum()
    }

    fn add(&mut self, id: u64, off: (u32, u32), h: usize) {
        self.counts[h] += 1;
        self.sum_x += u64::from(off.0);
        self.sum_y += u64::from(off.1);
        self.ids ^= id;
    }

    fn sub(&mut self, id: u64, off: (u32, u32), h: usize) {
        self.counts[h] -= 1;
        self.sum_x -= u64::from(off.0);
        self.sum_y -= u64::from(off.1);
        self.ids ^= id;
    }
}

/// What a tile shows for one cell: a point at the mean position of the cell's
/// trees, with their counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// Mean position of the trees (exact to the 32-bit quantisation).
    pub location: LonLat,
    /// Trees by health: good, fair, poor, dead (the order of [`Health::ALL`]).
    pub counts: [u32; 4],
    /// The tree's id when the cluster holds exactly one tree.
    pub single: Option<u64>,
}

impl Cluster {
    /// Number of trees in the cluster.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| u64::from(*c)).sum()
    }

    /// The cluster restricted to the healths marked `true` in `keep` (indexed
    /// like [`counts`](Self::counts)); `None` when no tree is left.
    ///
    /// Answers a health-only filter without the trees. The position stays the
    /// mean of *all* the cell's trees, and `single` is kept only when the cell
    /// held one tree (when a filter leaves one tree of several, which one is
    /// not known here, so it stays a cluster of 1).
    pub fn with_health(&self, keep: [bool; 4]) -> Option<Cluster> {
        let mut counts = self.counts;
        for (c, k) in counts.iter_mut().zip(keep) {
            if !k {
                *c = 0;
            }
        }
        if counts.iter().all(|c| *c == 0) {
            return None;
        }
        Some(Cluster { location: self.location, counts, single: self.single })
    }
}

/// The clustering pyramid: for each clustered zoom, the non-empty cells by
/// Morton key (a `BTreeMap<u64, Cell>` per zoom; a cell is 40 bytes: counts
/// by health, integer coordinate sums, XOR of tree ids). Build it once from
/// all trees, then keep it current with [`insert`](Self::insert) and
/// [`remove`](Self::remove).
///
/// The clustered zooms are chosen at build time and kept by updates, so tiles
/// do not switch between clusters and trees as trees come and go; rebuild
/// (about 0.5 s per million trees) when the number of trees has changed a lot,
/// e.g. doubled, to choose them afresh.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterPyramid {
    /// `levels[z]`: cells of zoom `z`, for `z` in `0..=L`.
    levels: Vec<BTreeMap<u64, Cell>>,
    len: usize,
    raw_limit: usize,
}

/// A tree ready for aggregation.
#[derive(Clone, Copy)]
struct Quantised {
    key: u64,
    q: (u32, u32),
    id: u64,
    h: u8,
}

impl ClusterPyramid {
    /// Builds the pyramid of `trees` (tree id, position, health) with
    /// [`ClusterOptions::default`]. Trees with an invalid position (see
    /// [`LonLat::is_valid`]) are left out. Ids should be unique (a cell knows
    /// its single tree from the XOR of its ids).
    ///
    /// About 0.5 s for 1,000,000 trees (one sort, then one pass per zoom);
    /// the input order does not matter.
    pub fn build(trees: &[(u64, LonLat, Health)]) -> Self {
        Self::build_with(trees, ClusterOptions::default())
    }

    /// Builds the pyramid with explicit options; see [`ClusterOptions`].
    ///
    /// The clustered zooms are `0..=L` with `L` the lowest zoom such that every
    /// tile at `L + 1` holds at most `raw_limit * 3 / 4` trees, capped by
    /// `max_cluster_zoom` and by a memory budget (all stored cells together at
    /// most one per tree). No zoom is stored when even the zoom-0 tile holds
    /// at most `raw_limit` trees: every tile then shows trees.
    pub fn build_with(trees: &[(u64, LonLat, Health)], options: ClusterOptions) -> Self {
        let max_zoom = options.max_cluster_zoom.min(MAX_CLUSTER_ZOOM);
        let bits = u32::from(max_zoom) + u32::from(CELL_BITS);
        let mut items: Vec<Quantised> = trees
            .iter()
            .filter_map(|(id, at, h)| {
                let q = quantise(*at)?;
                Some(Quantised { key: cell_key(q, bits), q, id: *id, h: health_index(*h) as u8 })
            })
            .collect();
        let len = items.len();
        items.sort_unstable_by_key(|t| t.key);

        // Choose L: walk zooms up until the tiles of the next zoom are light enough.
        let budget = len.saturating_mul(CELL_BUDGET_PER_TREE).max(MIN_CELL_BUDGET);
        // A quarter of headroom for the trees of the buffer and later inserts.
        let target = options.raw_limit - options.raw_limit / 4;
        let mut stored = 0usize;
        let mut levels = 0usize; // number of zooms to store: 0..levels
        for z in 0..=u32::from(max_zoom) {
            // Tiles of zoom z: the fine keys without their last 2 * (bits - z) bits.
            if max_run(&items, 2 * (bits - z)) <= target {
                break;
            }
            let cells = distinct(&items, 2 * (bits - z - u32::from(CELL_BITS)));
            if stored + cells > budget {
                break;
            }
            stored += cells;
            levels += 1;
        }

        let levels = (0..levels as u32)
            .map(|z| {
                let level_bits = z + u32::from(CELL_BITS);
                let shift = 2 * (bits - level_bits);
                let mask = offset_mask(level_bits);
                let mut cells: Vec<(u64, Cell)> = Vec::new();
                for t in &items {
                    let key = t.key >> shift;
                    if cells.last().is_none_or(|(k, _)| *k != key) {
                        cells.push((key, Cell::default()));
                    }
                    if let Some((_, cell)) = cells.last_mut() {
                        cell.add(t.id, (t.q.0 & mask, t.q.1 & mask), usize::from(t.h));
                    }
                }
                // Sorted and unique already: the map is bulk-built with full nodes.
                cells.into_iter().collect()
            })
            .collect();
        Self { levels, len, raw_limit: options.raw_limit }
    }

    /// Adds tree `id` at `at` with health `health`: one cell per clustered
    /// zoom, O(levels · log n). Returns `false`, changing nothing, when `at`
    /// is not a valid position.
    pub fn insert(&mut self, id: u64, at: LonLat, health: Health) -> bool {
        let Some(q) = quantise(at) else { return false };
        let h = health_index(health);
        for (z, level) in self.levels.iter_mut().enumerate() {
            let bits = z as u32 + u32::from(CELL_BITS);
            let mask = offset_mask(bits);
            level.entry(cell_key(q, bits)).or_default().add(id, (q.0 & mask, q.1 & mask), h);
        }
        self.len += 1;
        true
    }

    /// Removes tree `id`, which was inserted at `at` with health `health` (the
    /// caller knows the old values). Returns `false`, changing nothing, when
    /// `at` is invalid or (when some zoom is stored) no tree of that health is
    /// in `at`'s cell.
    ///
    /// A move or a change of health is a `remove` of the old values and an
    /// [`insert`](Self::insert) of the new ones; see [`update`](Self::update).
    pub fn remove(&mut self, id: u64, at: LonLat, health: Health) -> bool {
        let Some(q) = quantise(at) else { return false };
        let h = health_index(health);
        // The finest stored cell holds such a tree iff every coarser one does.
        if let Some(finest) = self.levels.last() {
            let bits = (self.levels.len() - 1) as u32 + u32::from(CELL_BITS);
            if finest.get(&cell_key(q, bits)).is_none_or(|c| c.counts[h] == 0) {
                return false;
            }
        } else if self.len == 0 {
            return false;
        }
        for (z, level) in self.levels.iter_mut().enumerate() {
            let bits = z as u32 + u32::from(CELL_BITS);
            let mask = offset_mask(bits);
            let key = cell_key(q, bits);
            if let Some(cell) = level.get_mut(&key) {
                cell.sub(id, (q.0 & mask, q.1 & mask), h);
                if cell.total() == 0 {
                    level.remove(&key);
                }
            }
        }
        self.len -= 1;
        true
    }

    /// Moves and/or re-grades tree `id`: [`remove`](Self::remove) of `from`
    /// then [`insert`](Self::insert) of `to`. Returns `false`, changing
    /// nothing, when the removal fails or `to` is not a valid position.
    pub fn update(&mut self, id: u64, from: (LonLat, Health), to: (LonLat, Health)) -> bool {
        if quantise(to.0).is_none() || !self.remove(id, from.0, from.1) {
            return false;
        }
        self.insert(id, to.0, to.1)
    }

    /// Number of trees in the pyramid.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the pyramid holds no tree.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The highest clustered zoom `L` (tiles of zooms `0..=L` come from
    /// [`clusters_in`](Self::clusters_in)); `None` when no zoom is clustered.
    pub fn clustered_zooms(&self) -> Option<u8> {
        (self.levels.len() as u8).checked_sub(1)
    }

    /// The raw limit the pyramid was built with: above the clustered zooms, a
    /// tile with more trees than this should go through [`cluster_on_the_fly`].
    pub fn raw_limit(&self) -> usize {
        self.raw_limit
    }

    /// Number of stored cells over all zooms.
    pub fn cell_count(&self) -> usize {
        self.levels.iter().map(BTreeMap::len).sum()
    }

    /// Approximate heap bytes held (for `/metrics`): the entries (key and
    /// cell, 48 bytes) plus the B-tree nodes' headers and child pointers,
    /// taken as nine tenths full. The `cluster_memory` example measures the
    /// real figure (about 50 bytes per cell right after a build, whose nodes
    /// are full; random inserts leave nodes from half to fully used).
    pub fn heap_bytes(&self) -> usize {
        let per_entry = size_of::<u64>() + size_of::<Cell>() + 2;
        self.cell_count() * per_entry * 10 / 9 + self.levels.capacity() * size_of::<BTreeMap<u64, Cell>>()
    }

    /// What tile `tile` shows: `Some(clusters)` when its zoom is clustered
    /// (possibly empty), `None` when the caller must supply the trees (see the
    /// [module documentation](self)).
    ///
    /// The clusters are the tile's cells in Morton order, then the cells of
    /// the surrounding ring whose mean lies within the tile's buffer, row by
    /// row: at most 256 + 68. A cell of one tree has `single` set.
    pub fn clusters_in(&self, tile: TileId) -> Option<Vec<Cluster>> {
        let level = self.levels.get(usize::from(tile.z()))?;
        let base = morton(tile.x(), tile.y()) << (2 * u32::from(CELL_BITS));
        let end = base + (1 << (2 * u32::from(CELL_BITS)));
        let inside = level.range(base..end).map(|(k, c)| (*k, *c));
        Some(assemble(tile, inside, |key| level.get(&key).copied()))
    }
}

/// Clusters `trees` (id, position, health) for one tile with the pyramid's
/// grid: the same cells, means and output as [`ClusterPyramid::clusters_in`]
/// would give for these trees, at any zoom `0..=MAX_ZOOM`. For filtered
/// requests and for tiles above the clustered zooms that hold too many trees.
///
/// Pass the trees within [`cluster_query_bounds`] (the tile widened by one
/// cell) so the cells along the edge are complete; trees elsewhere are
/// ignored, as are invalid positions. The input order does not matter.
pub fn cluster_on_the_fly(tile: TileId, trees: &[(u64, LonLat, Health)]) -> Vec<Cluster> {
    let bits = u32::from(tile.z()) + u32::from(CELL_BITS);
    let mask = offset_mask(bits);
    let n = i64::from(CELLS_PER_TILE);
    let (x0, y0) = (i64::from(tile.x()) * n, i64::from(tile.y()) * n);
    let mut items: Vec<(u64, Cell)> = trees
        .iter()
        .filter_map(|(id, at, h)| {
            let q = quantise(*at)?;
            let (cx, cy) = (q.0 >> (QBITS - bits), q.1 >> (QBITS - bits));
            let near = |c: u32, o: i64| (o - 1..=o + n).contains(&i64::from(c));
            if !near(cx, x0) || !near(cy, y0) {
                return None;
            }
            let mut cell = Cell::default();
            cell.add(*id, (q.0 & mask, q.1 & mask), health_index(*h));
            Some((morton(cx, cy), cell))
        })
        .collect();
    items.sort_unstable_by_key(|(k, _)| *k);
    let mut cells: Vec<(u64, Cell)> = Vec::new();
    for (key, one) in items {
        match cells.last_mut() {
            Some((k, cell)) if *k == key => {
                for (c, o) in cell.counts.iter_mut().zip(one.counts) {
                    *c += o;
                }
                cell.sum_x += one.sum_x;
                cell.sum_y += one.sum_y;
                cell.ids ^= one.ids;
            }
            _ => cells.push((key, one)),
        }
    }
    let base = morton(tile.x(), tile.y()) << (2 * u32::from(CELL_BITS));
    let end = base + (1 << (2 * u32::from(CELL_BITS)));
    let lo = cells.partition_point(|(k, _)| *k < base);
    let hi = cells.partition_point(|(k, _)| *k < end);
    let get = |key: u64| cells.binary_search_by_key(&key, |(k, _)| *k).ok().map(|i| cells[i].1);
    assemble(tile, cells[lo..hi].iter().copied(), get)
}

/// The box whose trees [`cluster_on_the_fly`] needs for `tile`: the tile
/// widened by one cell (1/16 of its width) on every side, clamped to the
/// Web Mercator world, plus a hair so cells on the edge are whole.
pub fn cluster_query_bounds(tile: TileId) -> BBox {
    let n = f64::from(1u32 << tile.z()) * f64::from(CELLS_PER_TILE);
    let cells = f64::from(CELLS_PER_TILE);
    let (x0, y0) = (f64::from(tile.x()) * cells - 1.0, f64::from(tile.y()) * cells - 1.0);
    let (x1, y1) = (x0 + cells + 2.0, y0 + cells + 2.0);
    let lon = |x: f64| (x / n).clamp(0.0, 1.0) * 360.0 - 180.0;
    let lat = |y: f64| (PI * (1.0 - 2.0 * (y / n).clamp(0.0, 1.0))).sinh().atan().to_degrees();
    let hair = 1e-9;
    BBox { min_lon: lon(x0) - hair, min_lat: lat(y1) - hair, max_lon: lon(x1) + hair, max_lat: lat(y0) + hair }
}

/// The clusters of `tile` from its own cells (`inside`, in key order) and the
/// ring around it (looked up by key), keeping those whose mean lies within
/// the buffered tile, exactly as the encoder tests it.
fn assemble(
    tile: TileId,
    inside: impl Iterator<Item = (u64, Cell)>,
    get: impl Fn(u64) -> Option<Cell>,
) -> Vec<Cluster> {
    let bits = u32::from(tile.z()) + u32::from(CELL_BITS);
    let mut out: Vec<Cluster> = inside.map(|(k, c)| cluster_of(k, &c, bits)).collect();
    let n = i64::from(CELLS_PER_TILE);
    let (x0, y0) = (i64::from(tile.x()) * n, i64::from(tile.y()) * n);
    let world = 1i64 << bits;
    for cy in y0 - 1..=y0 + n {
        for cx in x0 - 1..=x0 + n {
            let ring = cx == x0 - 1 || cx == x0 + n || cy == y0 - 1 || cy == y0 + n;
            if !ring || cx < 0 || cy < 0 || cx >= world || cy >= world {
                continue;
            }
            let key = morton(cx as u32, cy as u32);
            if let Some(cell) = get(key) {
                let c = cluster_of(key, &cell, bits);
                if pixel_in_buffer(tile, c.location).is_some() {
                    out.push(c);
                }
            }
        }
    }
    out
}

fn cluster_of(key: u64, cell: &Cell, bits: u32) -> Cluster {
    let (cx, cy) = unmorton(key);
    let n = cell.total() as f64;
    let scale = f64::from(1u32 << (QBITS - bits));
    let origin = |c: u32| f64::from(c) * scale;
    // +0.5: a quantised value stands for the middle of its 1-unit interval.
    let wx = (origin(cx) + cell.sum_x as f64 / n + 0.5) / 2f64.powi(QBITS as i32);
    let wy = (origin(cy) + cell.sum_y as f64 / n + 0.5) / 2f64.powi(QBITS as i32);
    let location = LonLat::new(wx * 360.0 - 180.0, (PI * (1.0 - 2.0 * wy)).sinh().atan().to_degrees());
    Cluster { location, counts: cell.counts, single: (cell.total() == 1).then_some(cell.ids) }
}

/// Encodes a tile of clusters: layer [`ORCHARDS_LAYER`](crate::ORCHARDS_LAYER)
/// (as in [`encode_trees_tile`](crate::encode_trees_tile)), then layer
/// [`TREES_LAYER`] with one point per cluster, in the order given.
///
/// * A cluster with `single: Some(id)` for which `single(id)` gives the tree is
///   written as that tree, exactly as `encode_trees_tile` writes it (feature
///   id = tree id; `code`, `cultivar`, `health`, `planted_year`, `orchard`).
/// * Any other cluster is a point without id at its mean position, tagged
///   `clustered` (true), `point_count`, `point_count_abbreviated` (see
///   [`abbreviate`]) and `good`, `fair`, `poor`, `dead` (counts by health).
///
/// Points outside the buffered tile are skipped. The output depends only on
/// the arguments (and what `single` returns): same input, same bytes.
pub fn encode_cluster_tile(
    tile: TileId,
    clusters: &[Cluster],
    single: impl Fn(u64) -> Option<TilePoint>,
    orchards: &[TilePolygon],
) -> Vec<u8> {
    let mut layer = LayerBuilder::new(TREES_LAYER, EXTENT);
    for c in clusters {
        if let Some(tree) = c.single.and_then(&single) {
            add_tree(&mut layer, tile, &tree);
            continue;
        }
        let Some((x, y)) = pixel_in_buffer(tile, c.location) else { continue };
        let count = c.count();
        let mut properties = Vec::with_capacity(7);
        properties.push(("clustered", Value::Bool(true)));
        properties.push(("point_count", Value::Int(count as i64)));
        properties.push(("point_count_abbreviated", Value::String(abbreviate(count))));
        for (key, n) in HEALTH_KEYS.iter().zip(c.counts) {
            properties.push((key, Value::Int(i64::from(n))));
        }
        layer.add_feature(None, &properties, &Geometry::point(x, y));
    }
    let mut out = Vec::new();
    orchards_layer(tile, orchards).encode_into(&mut out);
    layer.encode_into(&mut out);
    out
}

/// A tree feature, as `trees_layer` in lib.rs writes it (a test checks they agree).
fn add_tree(layer: &mut LayerBuilder, tile: TileId, tree: &TilePoint) {
    let Some((x, y)) = pixel_in_buffer(tile, tree.location) else { return };
    let mut properties = Vec::with_capacity(5);
    properties.push(("code", Value::String(tree.code.clone())));
    properties.push(("cultivar", Value::String(tree.cultivar.clone())));
    properties.push(("health", Value::String(tree.health.to_string())));
    if let Some(year) = tree.planted_year {
        properties.push(("planted_year", Value::Int(year.into())));
    }
    properties.push(("orchard", Value::String(tree.orchard.clone())));
    layer.add_feature(Some(tree.id), &properties, &Geometry::point(x, y));
}

/// Tile units of `p` when it lies within the buffered tile (the encoder's test).
fn pixel_in_buffer(tile: TileId, p: LonLat) -> Option<(i32, i32)> {
    if !p.is_valid() {
        return None;
    }
    let (lo, hi) = buffered();
    let extent = f64::from(EXTENT);
    let (fx, fy) = tile.fraction(p);
    let (x, y) = ((fx * extent).round(), (fy * extent).round());
    ((lo..=hi).contains(&x) && (lo..=hi).contains(&y)).then_some((x as i32, y as i32))
}

/// The short form of a count for labels: the number itself under 1,000, then
/// `1.2k` (one decimal under 10k), `35k`, `1.1M` (one decimal under 10M),
/// `12M`; rounded half up, a trailing `.0` dropped (`1k`, not `1.0k`).
pub fn abbreviate(n: u64) -> String {
    let tenths = |t: u64, unit: &str| {
        if t % 10 == 0 { format!("{}{unit}", t / 10) } else { format!("{}.{}{unit}", t / 10, t % 10) }
    };
    match n {
        0..1_000 => n.to_string(),
        1_000..9_950 => tenths((n + 50) / 100, "k"),
        9_950..999_500 => format!("{}k", (n + 500) / 1_000),
        999_500..9_950_000 => tenths((n + 50_000) / 100_000, "M"),
        _ => format!("{}M", (n + 500_000) / 1_000_000),
    }
}

/// Every tile, at each zoom `0..=max_zoom` (capped at [`MAX_ZOOM`]), whose
/// content can change when a tree at `at` is added, removed, moved from or
/// to `at`, or changes health: the tile containing `at` and each of its eight
/// neighbours whose buffered square reaches the clustering cell (1/16 of a
/// tile) containing `at`. That is, a neighbour is included when `at` lies in
/// the outermost column or row of cells on its side.
///
/// This covers tiles of trees (a tree is drawn in a neighbour only within
/// [`BUFFER`](crate::BUFFER) = 1/64 tile of the edge, well inside that cell)
/// and tiles of clusters (a cluster's mean moves anywhere within its cell, and
/// only edge cells show in neighbours), whichever way the tile is rendered.
/// Ordered by zoom, then as [`TileId`] orders; empty for an invalid position.
/// For a move, invalidate the tiles of both the old and the new position.
pub fn tiles_containing(at: LonLat, max_zoom: u8) -> Vec<TileId> {
    let Some(q) = quantise(at) else { return Vec::new() };
    let mut out = Vec::new();
    for z in 0..=max_zoom.min(MAX_ZOOM) {
        let bits = u32::from(z) + u32::from(CELL_BITS);
        let shift = |v: u32, b: u32| u64::from(v) >> (QBITS - b);
        let (tx, ty) = (shift(q.0, u32::from(z)), shift(q.1, u32::from(z)));
        let (cx, cy) = (shift(q.0, bits) & 15, shift(q.1, bits) & 15);
        let side = |c: u64| -> (i64, i64) { (if c == 0 { -1 } else { 0 }, if c == 15 { 1 } else { 0 }) };
        let (xs, ys) = (side(cx), side(cy));
        let mut at_zoom = Vec::with_capacity(4);
        for dy in ys.0..=ys.1 {
            for dx in xs.0..=xs.1 {
                let (x, y) = (tx as i64 + dx, ty as i64 + dy);
                let tile = u32::try_from(x).ok().zip(u32::try_from(y).ok());
                if let Some(t) = tile.and_then(|(x, y)| TileId::new(u32::from(z), x, y).ok()) {
                    at_zoom.push(t);
                }
            }
        }
        at_zoom.sort();
        out.extend(at_zoom);
    }
    out
}

/// Health as an index into the counts.
fn health_index(h: Health) -> usize {
    match h {
        Health::Good => 0,
        Health::Fair => 1,
        Health::Poor => 2,
        Health::Dead => 3,
    }
}

/// Quantised Web Mercator world coordinates, 32 bits per axis (`y` down);
/// `None` for an invalid position. Agrees with [`tile_for`](crate::tile_for):
/// the top `z` bits are the tile's column and row.
fn quantise(p: LonLat) -> Option<(u32, u32)> {
    if !p.is_valid() {
        return None;
    }
    let (wx, wy) = TileId::new(0, 0, 0).ok()?.fraction(p);
    let scale = 2f64.powi(QBITS as i32);
    // The saturating cast keeps lon 180 / the southern limit inside the world.
    let q = |w: f64| (w * scale).floor().clamp(0.0, u32::MAX as f64) as u32;
    Some((q(wx), q(wy)))
}

/// Morton key of the cell of `q` at `bits` bits per axis.
fn cell_key(q: (u32, u32), bits: u32) -> u64 {
    morton(((u64::from(q.0)) >> (QBITS - bits)) as u32, ((u64::from(q.1)) >> (QBITS - bits)) as u32)
}

/// Mask of the offset within a cell at `bits` bits per axis.
fn offset_mask(bits: u32) -> u32 {
    ((1u64 << (QBITS - bits)) - 1) as u32
}

/// Longest run of equal `key >> shift` in sorted `items`: the most trees in one tile.
fn max_run(items: &[Quantised], shift: u32) -> usize {
    let mut best = 0;
    let mut start = 0;
    for i in 1..=items.len() {
        if i == items.len() || items[i].key >> shift != items[start].key >> shift {
            best = best.max(i - start);
            start = i;
        }
    }
    best
}

/// Number of distinct `key >> shift` in sorted `items`: the cells of a zoom.
fn distinct(items: &[Quantised], shift: u32) -> usize {
    if items.is_empty() {
        return 0;
    }
    1 + items.windows(2).filter(|w| w[0].key >> shift != w[1].key >> shift).count()
}

fn spread(v: u32) -> u64 {
    let mut x = u64::from(v);
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

fn compact(v: u64) -> u32 {
    let mut x = v & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    ((x | (x >> 16)) & 0xFFFF_FFFF) as u32
}

/// Z-order key: the bits of `x` and `y` interleaved, `x` in the even bits.
fn morton(x: u32, y: u32) -> u64 {
    spread(x) | (spread(y) << 1)
}

fn unmorton(k: u64) -> (u32, u32) {
    (compact(k), compact(k >> 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn morton_round_trips_and_tiles_are_ranges() {
        for (x, y) in [(0, 0), (1, 0), (0, 1), (12345, 67890), (u32::MAX, 7), ((1 << 24) - 1, (1 << 24) - 1)] {
            assert_eq!(unmorton(morton(x, y)), (x, y));
        }
        // Every cell of tile (5, 9) is within its key range.
        let base = morton(5, 9) << 8;
        for cy in 0..16 {
            for cx in 0..16 {
                let k = morton(5 * 16 + cx, 9 * 16 + cy);
                assert!((base..base + 256).contains(&k));
            }
        }
    }

    #[test]
    fn quantisation_agrees_with_tile_for() {
        for p in
            [LonLat::new(108.05, 12.68), LonLat::new(-180.0, 85.1), LonLat::new(180.0, -90.0), LonLat::new(0.0, 0.0)]
        {
            let q = quantise(p).unwrap();
            for z in [0u8, 1, 7, 16, 24] {
                let t = crate::tile_for(p, z).unwrap();
                let s = QBITS - u32::from(z);
                assert_eq!(((u64::from(q.0) >> s) as u32, (u64::from(q.1) >> s) as u32), (t.x(), t.y()), "{p:?} z{z}");
            }
        }
    }

    #[test]
    fn abbreviations() {
        let cases = [
            (0, "0"),
            (999, "999"),
            (1_000, "1k"),
            (1_249, "1.2k"),
            (1_250, "1.3k"),
            (9_949, "9.9k"),
            (9_950, "10k"),
            (35_123, "35k"),
            (999_499, "999k"),
            (999_500, "1M"),
            (1_149_999, "1.1M"),
            (12_345_678, "12M"),
        ];
        for (n, s) in cases {
            assert_eq!(abbreviate(n), s, "{n}");
        }
    }
}
