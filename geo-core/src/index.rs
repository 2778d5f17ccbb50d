//! The in-memory spatial index over tree positions.

use geo::{Contains, Coord, LineString, Point, Polygon};
use rstar::{AABB, ParentNode, PointDistance, RStarInsertionStrategy, RTree, RTreeNode, RTreeObject, RTreeParams};

use crate::bbox::BBox;
use crate::brief::TreeBrief;
use crate::geodesy::{LonLat, distance_m, mercator, mercator_scale};
use crate::model::TreeId;

/// One entry of the index: a tree id, its position, that position in
/// Mercator metres (the space the R-tree is built in) and the tree's brief.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndexedTree {
    /// The tree.
    pub id: TreeId,
    /// Where it stands.
    pub location: LonLat,
    merc: [f64; 2],
    /// Health, cultivar and planting year, for filtering without the record.
    pub brief: TreeBrief,
}

impl IndexedTree {
    /// An entry for tree `id` at `location`, without a brief.
    pub fn new(id: TreeId, location: LonLat) -> Self {
        Self::briefed(id, location, TreeBrief::UNKNOWN)
    }

    /// An entry for tree `id` at `location` with its brief.
    pub fn briefed(id: TreeId, location: LonLat, brief: TreeBrief) -> Self {
        Self { id, location, merc: mercator(location), brief }
    }
}

impl RTreeObject for IndexedTree {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        AABB::from_point(self.merc)
    }
}

impl PointDistance for IndexedTree {
    // Squared Mercator distance: conformal, so it orders neighbours as the ground does.
    fn distance_2(&self, point: &[f64; 2]) -> f64 {
        let dx = self.merc[0] - point[0];
        let dy = self.merc[1] - point[1];
        dx * dx + dy * dy
    }
}

/// Node fan-out. Larger than rstar's default 6: leaves dominate memory, and
/// with 16 children per node the inner nodes cost under 4 bytes per tree,
/// keeping the whole index under 64 bytes per tree.
struct Params;
impl RTreeParams for Params {
    const MIN_SIZE: usize = 6;
    const MAX_SIZE: usize = 16;
    const REINSERTION_COUNT: usize = 4;
    type DefaultInsertionStrategy = RStarInsertionStrategy;
}

/// A tree found by a distance query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    /// The tree.
    pub id: TreeId,
    /// Where it stands.
    pub location: LonLat,
    /// Ground distance from the query point in metres (see [`crate::distance_m`]).
    pub distance_m: f64,
    /// The tree's brief as indexed.
    pub brief: TreeBrief,
}

/// An R-tree over tree positions answering nearest, radius, bbox and polygon queries.
///
/// The index stores only ids and positions; moving or removing a tree takes its
/// previous position, which the caller (the service's tree cache) knows.
pub struct TreeIndex {
    tree: RTree<IndexedTree, Params>,
}

impl Default for TreeIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for TreeIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeIndex").field("len", &self.len()).finish()
    }
}

impl TreeIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self { tree: RTree::new_with_params() }
    }

    /// Builds an index from all trees at once (much faster than inserting one by one).
    pub fn bulk_load(trees: impl IntoIterator<Item = (TreeId, LonLat)>) -> Self {
        Self::bulk_load_entries(trees.into_iter().map(|(id, at)| IndexedTree::new(id, at)).collect())
    }

    /// Builds an index from entries made with [`IndexedTree::briefed`].
    pub fn bulk_load_entries(entries: Vec<IndexedTree>) -> Self {
        Self { tree: RTree::bulk_load_with_params(entries) }
    }

    /// Number of trees.
    pub fn len(&self) -> usize {
        self.tree.size()
    }

    /// True when the index holds no tree.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a tree.
    pub fn insert(&mut self, id: TreeId, at: LonLat) {
        self.insert_entry(IndexedTree::new(id, at));
    }

    /// Adds an entry (made with [`IndexedTree::briefed`]).
    pub fn insert_entry(&mut self, entry: IndexedTree) {
        self.tree.insert(entry);
    }

    /// Removes tree `id` that stood at `at`; false when it was not there.
    pub fn remove(&mut self, id: TreeId, at: LonLat) -> bool {
        self.remove_entry(&IndexedTree::new(id, at))
    }

    /// Removes an entry equal to `entry` (same id, position and brief); false when there is none.
    pub fn remove_entry(&mut self, entry: &IndexedTree) -> bool {
        self.tree.remove(entry).is_some()
    }

    /// Moves tree `id` from `from` to `to` (inserts it if it was not at `from`).
    pub fn relocate(&mut self, id: TreeId, from: LonLat, to: LonLat) {
        self.remove(id, from);
        self.insert(id, to);
    }

    /// The tree nearest to `at` (`None` when the index is empty); `nearest(at, 1)` without the `Vec`.
    pub fn nearest_one(&self, at: LonLat) -> Option<Neighbor> {
        nearest_one(self.tree.root(), &mercator(at)).map(|e| Neighbor {
            id: e.id,
            location: e.location,
            distance_m: distance_m(at, e.location),
            brief: e.brief,
        })
    }

    /// The `k` trees nearest to `at`, nearest first.
    pub fn nearest(&self, at: LonLat, k: usize) -> Vec<Neighbor> {
        let q = mercator(at);
        let neighbor = |e: &IndexedTree| Neighbor {
            id: e.id,
            location: e.location,
            distance_m: distance_m(at, e.location),
            brief: e.brief,
        };
        if k == 1 {
            return self.nearest_one(at).into_iter().collect();
        }
        self.tree.nearest_neighbor_iter(&q).take(k).map(neighbor).collect()
    }

    /// Every tree, nearest to `at` first (ordered by distance in the index's
    /// conformal projection, which agrees with ground distance to within its
    /// scale change across the span searched); lazily, so a caller filtering
    /// trees stops as soon as it has enough.
    pub fn nearest_iter(&self, at: LonLat) -> impl Iterator<Item = Neighbor> + '_ {
        let q = mercator(at);
        self.tree.nearest_neighbor_iter(&q).map(move |e| Neighbor {
            id: e.id,
            location: e.location,
            distance_m: distance_m(at, e.location),
            brief: e.brief,
        })
    }

    /// Every tree within `radius_m` metres of `at`, nearest first.
    pub fn within_radius(&self, at: LonLat, radius_m: f64) -> Vec<Neighbor> {
        if radius_m.is_nan() || radius_m < 0.0 {
            return Vec::new();
        }
        // Mercator scale grows towards the poles; take the largest scale over the
        // circle's latitude span (plus a hair) so no candidate is missed, then
        // keep exactly those within the ground radius.
        let dlat = radius_m / 110_000.0;
        let scale = mercator_scale(at.lat.abs() + dlat) * (1.0 + 1e-9);
        let r = radius_m * scale;
        let q = mercator(at);
        let mut found: Vec<Neighbor> = self
            .tree
            .locate_within_distance(q, r * r)
            .filter_map(|e| {
                let d = distance_m(at, e.location);
                (d <= radius_m).then_some(Neighbor { id: e.id, location: e.location, distance_m: d, brief: e.brief })
            })
            .collect();
        found.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m).then(a.id.cmp(&b.id)));
        found
    }

    /// Every tree inside `bbox` (edges included), in no particular order.
    pub fn in_bbox(&self, bbox: &BBox) -> impl Iterator<Item = &IndexedTree> + '_ {
        let lo = mercator(LonLat::new(bbox.min_lon, bbox.min_lat));
        let hi = mercator(LonLat::new(bbox.max_lon, bbox.max_lat));
        self.tree.locate_in_envelope(&AABB::from_corners(lo, hi))
    }

    /// Every tree inside `polygon` (lon/lat; holes respected, boundary excluded).
    pub fn in_polygon(&self, polygon: &Polygon<f64>) -> Vec<TreeId> {
        let Some(bbox) = BBox::around(polygon.exterior().0.iter().map(|c| LonLat::new(c.x, c.y))) else {
            return Vec::new();
        };
        let mut ids: Vec<TreeId> = self
            .in_bbox(&bbox)
            .filter(|e| polygon.contains(&Point::new(e.location.lon, e.location.lat)))
            .map(|e| e.id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &IndexedTree> + '_ {
        self.tree.iter()
    }
}

/// Depth-first branch-and-bound search for the single nearest entry.
///
/// rstar's own search keeps a binary heap of every visited child and rebuilds
/// it at each node; profiling the 1M-tree bench showed heap upkeep as a third
/// of the time. For k = 1 a depth-first descent, children nearest first and
/// pruned by the best distance so far, needs no allocation at all.
fn nearest_one<'a>(root: &'a ParentNode<IndexedTree>, q: &[f64; 2]) -> Option<&'a IndexedTree> {
    fn visit<'a>(node: &'a ParentNode<IndexedTree>, q: &[f64; 2], best: &mut (f64, Option<&'a IndexedTree>)) {
        let mut inner: [(f64, Option<&'a ParentNode<IndexedTree>>); Params::MAX_SIZE] = [(0.0, None); Params::MAX_SIZE];
        let mut n = 0;
        for child in node.children() {
            match child {
                RTreeNode::Leaf(entry) => {
                    let d = entry.distance_2(q);
                    if d < best.0 {
                        *best = (d, Some(entry));
                    }
                }
                RTreeNode::Parent(parent) => {
                    let d = parent.envelope().distance_2(q);
                    if d < best.0 && n < inner.len() {
                        // Insertion sort: at most MAX_SIZE items, cheaper than a general sort.
                        let mut i = n;
                        while i > 0 && inner[i - 1].0 > d {
                            inner[i] = inner[i - 1];
                            i -= 1;
                        }
                        inner[i] = (d, Some(parent));
                        n += 1;
                    }
                }
            }
        }
        let candidates = &inner[..n];
        for (d, parent) in candidates.iter() {
            if *d >= best.0 {
                break;
            }
            if let Some(parent) = parent {
                visit(parent, q, best);
            }
        }
    }
    let mut best = (f64::INFINITY, None);
    visit(root, q, &mut best);
    best.1
}

/// A polygon from a closed ring of lon/lat pairs (helper for tests and callers).
pub fn polygon_from_ring(ring: &[LonLat]) -> Polygon<f64> {
    Polygon::new(LineString::from(ring.iter().map(|p| Coord { x: p.lon, y: p.lat }).collect::<Vec<_>>()), vec![])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const ORIGIN: LonLat = LonLat::new(108.05, 12.68);

    fn grid(n: usize) -> Vec<(TreeId, LonLat)> {
        // n x n trees 9 m apart.
        (0..n * n).map(|i| (TreeId(i as i64), ORIGIN.offset_m((i % n) as f64 * 9.0, (i / n) as f64 * 9.0))).collect()
    }

    fn random(n: usize, seed: u64) -> Vec<(TreeId, LonLat)> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|i| {
                (TreeId(i as i64), ORIGIN.offset_m(rng.gen_range(-2000.0..2000.0), rng.gen_range(-2000.0..2000.0)))
            })
            .collect()
    }

    #[test]
    fn nearest_on_a_grid() {
        let index = TreeIndex::bulk_load(grid(10));
        let found = index.nearest(ORIGIN.offset_m(9.5, 0.2), 3);
        assert_eq!(found[0].id, TreeId(1));
        assert!((found[0].distance_m - (0.5f64.hypot(0.2))).abs() < 1e-3);
        assert!(found.windows(2).all(|w| w[0].distance_m <= w[1].distance_m));
        assert!(index.nearest(ORIGIN, 0).is_empty());
        assert_eq!(index.nearest(ORIGIN, 1000).len(), 100);
    }

    #[test]
    fn radius_is_in_metres() {
        let index = TreeIndex::bulk_load(grid(10));
        // Trees at 0, 9 east, 9 north are within 9.01 m; the diagonal (12.7 m) is not.
        let ids: Vec<_> = index.within_radius(ORIGIN, 9.01).iter().map(|n| n.id).collect();
        assert_eq!(ids.len(), 3);
        assert!(ids.contains(&TreeId(0)) && ids.contains(&TreeId(1)) && ids.contains(&TreeId(10)));
        assert!(index.within_radius(ORIGIN, -1.0).is_empty());
        assert!(index.within_radius(ORIGIN, f64::NAN).is_empty());
    }

    #[test]
    fn insert_relocate_remove() {
        let mut index = TreeIndex::bulk_load(grid(3));
        let far = ORIGIN.offset_m(500.0, 500.0);
        index.insert(TreeId(100), far);
        assert_eq!(index.nearest(far, 1)[0].id, TreeId(100));
        let farther = far.offset_m(100.0, 0.0);
        index.relocate(TreeId(100), far, farther);
        assert_eq!(index.len(), 10);
        assert!(index.within_radius(far, 50.0).is_empty());
        assert!(index.remove(TreeId(100), farther));
        assert!(!index.remove(TreeId(100), farther));
        assert_eq!(index.len(), 9);
    }

    #[test]
    fn bbox_and_polygon() {
        let index = TreeIndex::bulk_load(grid(10));
        let sw = ORIGIN.offset_m(-1.0, -1.0);
        let ne = ORIGIN.offset_m(19.0, 19.0);
        let bbox = BBox { min_lon: sw.lon, min_lat: sw.lat, max_lon: ne.lon, max_lat: ne.lat };
        assert_eq!(index.in_bbox(&bbox).count(), 9);
        // Triangle covering the lower-left half of the first 3x3 block.
        let tri = polygon_from_ring(&[
            ORIGIN.offset_m(-1.0, -1.0),
            ORIGIN.offset_m(30.0, -1.0),
            ORIGIN.offset_m(-1.0, 30.0),
            ORIGIN.offset_m(-1.0, -1.0),
        ]);
        let inside = index.in_polygon(&tri);
        // Grid points (i, j) with 9i+9j < 29: (0,0),(1,0),(2,0),(3,0),(0,1),(1,1),(2,1),(0,2),(1,2),(0,3) = 10.
        assert_eq!(inside.len(), 10, "{inside:?}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn queries_match_brute_force(seed in 0u64..1000, east in -2500.0f64..2500.0, north in -2500.0f64..2500.0,
                                     k in 1usize..20, radius in 0.0f64..300.0) {
            let points = random(2000, seed);
            let index = TreeIndex::bulk_load(points.clone());
            let q = ORIGIN.offset_m(east, north);
            let mut brute: Vec<(f64, TreeId)> = points.iter().map(|(id, p)| (distance_m(q, *p), *id)).collect();
            brute.sort_by(|a, b| a.0.total_cmp(&b.0));
            let got = index.nearest(q, k);
            prop_assert_eq!(got.len(), k);
            for (g, b) in got.iter().zip(&brute) {
                // Same distances (ids may differ only between exact ties).
                prop_assert!((g.distance_m - b.0).abs() < 1e-3, "{} vs {}", g.distance_m, b.0);
            }
            let within = index.within_radius(q, radius);
            let expected = brute.iter().filter(|(d, _)| *d <= radius).count();
            prop_assert_eq!(within.len(), expected);
        }
    }
}
