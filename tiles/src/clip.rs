//! Sutherland–Hodgman clipping of a ring to an axis-aligned square.
//!
//! Orchard boundaries can be much larger than a z18 tile; sending the whole
//! ring in every tile it touches would waste bytes and push coordinates far
//! outside the 32-bit range the spec allows, so each ring is cut to the
//! buffered tile square before quantisation. Sutherland–Hodgman is exact for
//! convex clip regions (our square) and keeps one ring per ring; a concave
//! ring crossing the square more than twice comes out as one ring joined by
//! zero-width slivers along the square's edge, which renderers fill the same
//! way, so the simpler algorithm is good enough for display tiles.

/// Clips `ring` (open or closed, either orientation) to the square
/// `min..=max` on both axes. The result is open; it is empty when the ring
/// lies wholly outside.
pub(crate) fn clip_ring(ring: &[(f64, f64)], min: f64, max: f64) -> Vec<(f64, f64)> {
    let mut out = ring.to_vec();
    for edge in [Edge::Left(min), Edge::Right(max), Edge::Top(min), Edge::Bottom(max)] {
        let input = std::mem::take(&mut out);
        let Some(&last) = input.last() else { break };
        let mut prev = last;
        for &cur in &input {
            match (edge.inside(prev), edge.inside(cur)) {
                (true, true) => out.push(cur),
                (true, false) => out.push(edge.intersect(prev, cur)),
                (false, true) => {
                    out.push(edge.intersect(prev, cur));
                    out.push(cur);
                }
                (false, false) => {}
            }
            prev = cur;
        }
    }
    out
}

/// One side of the clip square: the half-plane kept and its boundary line.
#[derive(Clone, Copy)]
enum Edge {
    Left(f64),
    Right(f64),
    Top(f64),
    Bottom(f64),
}

impl Edge {
    fn inside(self, p: (f64, f64)) -> bool {
        match self {
            Edge::Left(v) => p.0 >= v,
            Edge::Right(v) => p.0 <= v,
            Edge::Top(v) => p.1 >= v,
            Edge::Bottom(v) => p.1 <= v,
        }
    }

    /// Where segment `a`–`b` crosses the boundary line. Only called when
    /// exactly one end is inside, so the segment is not parallel to the line
    /// and the division is safe.
    fn intersect(self, a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
        match self {
            Edge::Left(v) | Edge::Right(v) => (v, a.1 + (v - a.0) / (b.0 - a.0) * (b.1 - a.1)),
            Edge::Top(v) | Edge::Bottom(v) => (a.0 + (v - a.1) / (b.1 - a.1) * (b.0 - a.0), v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn area(r: &[(f64, f64)]) -> f64 {
        let n = r.len();
        (0..n).map(|i| r[i].0 * r[(i + 1) % n].1 - r[(i + 1) % n].0 * r[i].1).sum::<f64>() / 2.0
    }

    #[test]
    fn inside_ring_is_kept_and_covering_ring_becomes_the_square() {
        let tri = [(1.0, 1.0), (5.0, 1.0), (1.0, 5.0)];
        assert_eq!(clip_ring(&tri, 0.0, 10.0), tri.to_vec());
        let big = [(-100.0, -100.0), (100.0, -100.0), (100.0, 100.0), (-100.0, 100.0), (-100.0, -100.0)];
        let clipped = clip_ring(&big, 0.0, 10.0);
        assert!((area(&clipped).abs() - 100.0).abs() < 1e-9, "{clipped:?}");
        assert!(clipped.iter().all(|p| [0.0, 10.0].contains(&p.0) && [0.0, 10.0].contains(&p.1)));
    }

    #[test]
    fn outside_ring_vanishes_and_crossing_ring_is_cut() {
        assert!(clip_ring(&[(20.0, 20.0), (30.0, 20.0), (30.0, 30.0)], 0.0, 10.0).is_empty());
        // A square from 5,5 to 15,15: a quarter (25) is inside 0..10.
        let sq = [(5.0, 5.0), (15.0, 5.0), (15.0, 15.0), (5.0, 15.0)];
        let c = clip_ring(&sq, 0.0, 10.0);
        assert!((area(&c) - 25.0).abs() < 1e-9, "{c:?}");
        assert!(clip_ring(&[], 0.0, 10.0).is_empty());
    }

    proptest! {
        #[test]
        fn result_stays_in_the_square_and_never_grows(ring in prop::collection::vec((-1e4f64..1e4, -1e4f64..1e4), 0..12)) {
            let c = clip_ring(&ring, -64.0, 4160.0);
            // Intersections are convex combinations, exact up to an ulp or so.
            let ok = |v: f64| (-64.0 - 1e-9..=4160.0 + 1e-9).contains(&v);
            for p in &c {
                prop_assert!(ok(p.0) && ok(p.1), "{p:?}");
            }
            if ring.iter().all(|p| (-64.0..=4160.0).contains(&p.0) && (-64.0..=4160.0).contains(&p.1)) {
                prop_assert_eq!(c, ring);
            }
        }
    }
}
