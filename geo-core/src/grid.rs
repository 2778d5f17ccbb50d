//! A uniform grid for "is there already a point within a few metres?".
//!
//! The importer asks this once per survey row, against every stored tree and
//! every row read so far, while it streams a file. A hash grid answers that
//! in a fraction of a microsecond and takes rows one by one, where an R-tree
//! would need rebalancing inserts.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::geodesy::{LonLat, distance_m, mercator, mercator_scale};

/// Points bucketed in square Web Mercator cells, for radius queries of a
/// few metres. Cells are sized in Mercator units for the ground distance
/// `cell_m` at the equator; queries widen their cell range by the local
/// Mercator scale, so any radius is answered exactly (with the
/// [`distance_m`] model), only slower when it spans many cells.
#[derive(Debug, Clone)]
pub struct PointGrid<T> {
    cell: f64,
    heads: HashMap<(i32, i32), u32, BuildHasherDefault<CellHasher>>,
    points: Vec<Slot<T>>,
}

#[derive(Debug, Clone)]
struct Slot<T> {
    location: LonLat,
    value: T,
    /// The next point in the same cell, or `u32::MAX`.
    next: u32,
}

const END: u32 = u32::MAX;

impl<T: Copy> PointGrid<T> {
    /// An empty grid with cells of `cell_m` metres (use the largest radius
    /// you will query; values below 0.1 m are raised to 0.1 m).
    pub fn new(cell_m: f64) -> Self {
        Self::with_capacity(cell_m, 0)
    }

    /// An empty grid with room for `capacity` points.
    pub fn with_capacity(cell_m: f64, capacity: usize) -> Self {
        let cell = if cell_m.is_finite() { cell_m.max(0.1) } else { 0.1 };
        Self {
            cell,
            heads: HashMap::with_capacity_and_hasher(capacity, Default::default()),
            points: Vec::with_capacity(capacity),
        }
    }

    /// Number of points held.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// True when the grid holds no point.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    fn cell_of(&self, m: [f64; 2]) -> (i32, i32) {
        // Saturating casts: a point near the poles lands in an edge cell, which is still correct.
        ((m[0] / self.cell).floor() as i32, (m[1] / self.cell).floor() as i32)
    }

    /// Adds a point. Points beyond `u32::MAX - 1` are not stored (the
    /// grid serves one import at a time; that is 4 billion rows).
    pub fn insert(&mut self, location: LonLat, value: T) {
        let Ok(index) = u32::try_from(self.points.len()) else { return };
        if index == END {
            return;
        }
        let key = self.cell_of(mercator(location));
        let next = self.heads.insert(key, index).unwrap_or(END);
        self.points.push(Slot { location, value, next });
    }

    /// The point closest to `location` within `radius_m` metres, with its
    /// distance; ties go to the point inserted last.
    pub fn nearest_within(&self, location: LonLat, radius_m: f64) -> Option<(T, f64)> {
        if radius_m.is_nan() || radius_m < 0.0 || self.points.is_empty() {
            return None;
        }
        let m = mercator(location);
        // Slightly widened so a point exactly on the radius is not missed by rounding.
        let reach = radius_m * mercator_scale(location.lat) * 1.000_001 + 1e-9;
        let (x0, y0) = self.cell_of([m[0] - reach, m[1] - reach]);
        let (x1, y1) = self.cell_of([m[0] + reach, m[1] + reach]);
        let mut best: Option<(T, f64)> = None;
        for cx in x0..=x1 {
            for cy in y0..=y1 {
                let mut at = self.heads.get(&(cx, cy)).copied().unwrap_or(END);
                while let Some(slot) = self.points.get(at as usize) {
                    let d = distance_m(location, slot.location);
                    if d <= radius_m && best.is_none_or(|(_, b)| d < b) {
                        best = Some((slot.value, d));
                    }
                    at = slot.next;
                }
            }
        }
        best
    }
}

/// A fast hasher for small integer keys (the FxHash multiply-rotate step);
/// cell keys come from coordinates, not from anyone choosing collisions.
#[derive(Debug, Default, Clone, Copy)]
pub struct CellHasher(u64);

impl Hasher for CellHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_i32(&mut self, n: i32) {
        self.write_u64(u64::from(n as u32));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn finds_the_closest_point_within_the_radius() {
        let origin = LonLat::new(108.05, 12.68);
        let mut grid = PointGrid::new(4.0);
        grid.insert(origin.offset_m(3.0, 0.0), 1);
        grid.insert(origin.offset_m(0.0, 1.5), 2);
        grid.insert(origin.offset_m(-10.0, 0.0), 3);
        let (v, d) = grid.nearest_within(origin, 2.0).unwrap();
        assert_eq!(v, 2);
        assert!((d - 1.5).abs() < 0.01, "{d}");
        assert_eq!(grid.nearest_within(origin, 4.0).map(|(v, _)| v), Some(2));
        assert_eq!(grid.nearest_within(origin, 1.0), None);
        assert_eq!(grid.nearest_within(origin, 12.0).map(|(v, _)| v), Some(2));
        assert_eq!(grid.len(), 3);
    }

    #[test]
    fn empty_and_nonsense_radius_find_nothing() {
        let mut grid: PointGrid<u8> = PointGrid::new(2.0);
        let p = LonLat::new(108.0, 12.0);
        assert!(grid.is_empty());
        assert_eq!(grid.nearest_within(p, 5.0), None);
        grid.insert(p, 1);
        assert_eq!(grid.nearest_within(p, f64::NAN), None);
        assert_eq!(grid.nearest_within(p, -1.0), None);
        assert_eq!(grid.nearest_within(p, 0.0), Some((1, 0.0)));
    }

    proptest! {
        /// The grid agrees with a brute-force scan for any radius and cell size.
        #[test]
        fn agrees_with_brute_force(
            points in prop::collection::vec((-30.0f64..30.0, -30.0f64..30.0), 1..60),
            query in (-30.0f64..30.0, -30.0f64..30.0),
            radius in 0.0f64..12.0,
            cell in 0.5f64..8.0,
            lat in -60.0f64..60.0,
        ) {
            let origin = LonLat::new(108.0, lat);
            let mut grid = PointGrid::new(cell);
            let located: Vec<LonLat> = points.iter().map(|&(e, n)| origin.offset_m(e, n)).collect();
            for (i, p) in located.iter().enumerate() {
                grid.insert(*p, i);
            }
            let q = origin.offset_m(query.0, query.1);
            let brute = located
                .iter()
                .map(|p| distance_m(q, *p))
                .filter(|d| *d <= radius)
                .fold(None, |best: Option<f64>, d| Some(best.map_or(d, |b| b.min(d))));
            let found = grid.nearest_within(q, radius).map(|(_, d)| d);
            prop_assert_eq!(found, brute);
        }
    }
}
