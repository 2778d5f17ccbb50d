//! Which orchard a point stands in.

use geo::{BoundingRect, Contains, Point, Polygon};
use rstar::{AABB, RTree, RTreeObject};

use crate::geodesy::LonLat;
use crate::model::{Orchard, OrchardId};

struct Boundary {
    envelope: AABB<[f64; 2]>,
    polygon: Polygon<f64>,
    id: OrchardId,
}

impl RTreeObject for Boundary {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        self.envelope
    }
}

/// Finds the orchard whose boundary contains a point, for survey rows that
/// do not name their orchard. Orchards without a boundary are never found.
pub struct OrchardLocator {
    boundaries: RTree<Boundary>,
}

impl std::fmt::Debug for OrchardLocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrchardLocator").field("boundaries", &self.boundaries.size()).finish()
    }
}

impl OrchardLocator {
    /// Indexes the boundaries of `orchards`.
    pub fn new<'a>(orchards: impl IntoIterator<Item = &'a Orchard>) -> Self {
        let boundaries = orchards
            .into_iter()
            .filter_map(|o| {
                let polygon = o.boundary.clone()?;
                let rect = polygon.bounding_rect()?;
                let envelope = AABB::from_corners([rect.min().x, rect.min().y], [rect.max().x, rect.max().y]);
                Some(Boundary { envelope, polygon, id: o.id.clone() })
            })
            .collect();
        Self { boundaries: RTree::bulk_load(boundaries) }
    }

    /// Number of orchards with a boundary.
    pub fn len(&self) -> usize {
        self.boundaries.size()
    }

    /// True when no orchard has a boundary.
    pub fn is_empty(&self) -> bool {
        self.boundaries.size() == 0
    }

    /// The orchard whose boundary contains `p` (the one with the smallest id
    /// if boundaries overlap, so the answer does not depend on load order).
    pub fn locate(&self, p: LonLat) -> Option<&OrchardId> {
        let point = Point::new(p.lon, p.lat);
        self.boundaries
            .locate_in_envelope_intersecting(&AABB::from_point([p.lon, p.lat]))
            .filter(|b| b.polygon.contains(&point))
            .map(|b| &b.id)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::polygon_from_ring;

    fn orchard(id: &str, corner: LonLat, size_m: f64) -> Orchard {
        let ring = [
            corner,
            corner.offset_m(size_m, 0.0),
            corner.offset_m(size_m, size_m),
            corner.offset_m(0.0, size_m),
            corner,
        ];
        Orchard {
            id: OrchardId::new(id).unwrap(),
            name: id.into(),
            owner: "Y Blang".into(),
            commune: "Ea Tiêu".into(),
            district: "Cư Kuin".into(),
            province: "Đắk Lắk".into(),
            planting_area_code: None,
            gln: None,
            boundary: Some(polygon_from_ring(&ring)),
        }
    }

    #[test]
    fn finds_the_containing_orchard_only() {
        let a = LonLat::new(108.05, 12.68);
        let b = a.offset_m(500.0, 0.0);
        let mut no_boundary = orchard("DL-C", a, 50.0);
        no_boundary.boundary = None;
        let orchards = [orchard("DL-A", a, 100.0), orchard("DL-B", b, 100.0), no_boundary];
        let locator = OrchardLocator::new(&orchards);
        assert_eq!(locator.len(), 2);
        assert_eq!(locator.locate(a.offset_m(50.0, 50.0)).map(|o| o.as_str()), Some("DL-A"));
        assert_eq!(locator.locate(b.offset_m(10.0, 90.0)).map(|o| o.as_str()), Some("DL-B"));
        // Between the two, and in the bounding box of neither.
        assert_eq!(locator.locate(a.offset_m(300.0, 50.0)), None);
        assert_eq!(locator.locate(a.offset_m(-1.0, 50.0)), None);
    }
}
