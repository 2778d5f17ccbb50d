//! Map tiles of orchardmap: Web Mercator tile math and Mapbox Vector Tiles.
//!
//! This crate knows nothing of HTTP or SQL: the API fetches the trees and
//! orchards around a tile ([`TileId::bounds`] gives the box to query, widened
//! by [`BUFFER`]), turns them into [`TilePoint`]s and [`TilePolygon`]s and
//! calls [`encode_trees_tile`], then serves the bytes as [`MVT_CONTENT_TYPE`].
//!
//! * [`TileId`], [`tile_for`], [`lonlat_to_tile_pixel`]: XYZ tile addresses and
//!   spherical Web Mercator (EPSG:3857).
//! * [`mvt`]: a dependency-free MVT 2.1 encoder ([`mvt::LayerBuilder`],
//!   [`mvt::TileBuilder`]) and a strict decoder ([`mvt::decode`]) for tests.
//! * [`print`](mod@print): QR codes (SVG, PNG) and printable A4 sheets of tree tags and
//!   fruit labels (SVG, PDF).
//!
//! ```
//! use geo_core::LonLat;
//! use tiles::{TileId, TilePoint, encode_trees_tile, mvt};
//!
//! let tile = tiles::tile_for(LonLat::new(108.05, 12.68), 16)?;
//! let tree = TilePoint {
//!     id: 7,
//!     location: LonLat::new(108.05, 12.68),
//!     code: "DUR-0007".into(),
//!     cultivar: "Ri6".into(),
//!     health: "good".into(),
//!     planted_year: Some(2015),
//!     orchard: "DL-CMG-EATIEU-007".into(),
//! };
//! let bytes = encode_trees_tile(tile, &[tree], &[]);
//! let decoded = mvt::decode(&bytes)?;
//! let trees = decoded.layer("trees").expect("trees layer");
//! assert_eq!(trees.features[0].id, Some(7));
//! assert_eq!(trees.features[0].get("cultivar").and_then(|v| v.as_str()), Some("Ri6"));
//! # Ok::<(), tiles::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Tests may unwrap: a panic there is a failed test, which is what we want.
#![cfg_attr(test, allow(clippy::unwrap_used))]

use std::borrow::Cow;

use geo_core::{LonLat, Orchard, Tree};

mod clip;
pub mod cluster;
mod error;
pub mod mvt;
pub mod pmtiles;
pub mod print;
pub mod raster;
mod tile;

pub use cluster::{Cluster, ClusterPyramid, cluster_on_the_fly, encode_cluster_tile, tiles_containing};
pub use error::{Error, Result};
pub use tile::{MAX_LATITUDE, MAX_ZOOM, TileId, lonlat_to_tile_pixel, tile_for};

use mvt::{Geometry, LayerBuilder, Polygon, Value};

/// The media type of a Mapbox Vector Tile, for the `Content-Type` header.
pub const MVT_CONTENT_TYPE: &str = "application/vnd.mapbox-vector-tile";

/// Units per tile side in our tiles.
pub const EXTENT: u32 = mvt::DEFAULT_EXTENT;

/// How far beyond the tile edge, in tile units, features are still included
/// (64/4096 of the tile width), so that tree symbols and polygon outlines
/// drawn across the edge are not cut off by the renderer.
pub const BUFFER: u32 = 64;

/// Name of the layer holding one point per tree.
pub const TREES_LAYER: &str = "trees";

/// Name of the layer holding one polygon per orchard boundary.
pub const ORCHARDS_LAYER: &str = "orchards";

/// A tree as it goes into a tile: where it stands and what the map shows about it.
///
/// Properties become the feature's tags: `code`, `cultivar`, `health`,
/// `orchard` (strings) and `planted_year` (integer, left out when unknown).
#[derive(Debug, Clone, PartialEq)]
pub struct TilePoint {
    /// Feature id (the tree's database id), so clients can highlight one tree.
    pub id: u64,
    /// Where the tree stands.
    pub location: LonLat,
    /// The printed tag code.
    pub code: String,
    /// Cultivar name.
    pub cultivar: String,
    /// Health as the lower-case English word (`Health::as_str`), borrowed when static.
    pub health: Cow<'static, str>,
    /// Year planted, when known.
    pub planted_year: Option<i32>,
    /// Identifier of the orchard the tree belongs to.
    pub orchard: String,
}

impl TilePoint {
    /// The tile view of a stored tree; `None` for a negative id, which the
    /// database never hands out but the type allows.
    pub fn from_tree(tree: &Tree) -> Option<Self> {
        Some(Self {
            id: u64::try_from(tree.id.0).ok()?,
            location: tree.location,
            code: tree.code.as_str().to_string(),
            cultivar: tree.cultivar.as_str().to_string(),
            health: Cow::Borrowed(tree.health.as_str()),
            planted_year: tree.planted_year,
            orchard: tree.orchard_id.as_str().to_string(),
        })
    }
}

/// An orchard boundary as it goes into a tile.
///
/// Rings are longitude/latitude, open or closed, in either orientation. The
/// feature has no id (orchard ids are text; MVT ids are integers): clients
/// key on the `orchard` property. Tags: `orchard`, `name` and
/// `planting_area_code` (left out when there is none).
#[derive(Debug, Clone, PartialEq)]
pub struct TilePolygon {
    /// The orchard's identifier.
    pub orchard: String,
    /// The orchard's display name.
    pub name: String,
    /// The planting-area code for export traceability, when registered.
    pub planting_area_code: Option<String>,
    /// Outer boundary.
    pub exterior: Vec<LonLat>,
    /// Areas inside the boundary that are not orchard (ponds, houses).
    pub holes: Vec<Vec<LonLat>>,
}

impl TilePolygon {
    /// The tile view of an orchard; `None` when it has no surveyed boundary.
    pub fn from_orchard(orchard: &Orchard) -> Option<Self> {
        let boundary = orchard.boundary.as_ref()?;
        let ring = |r: &geo_types::LineString<f64>| r.coords().map(|c| LonLat::new(c.x, c.y)).collect();
        Some(Self {
            orchard: orchard.id.as_str().to_string(),
            name: orchard.name.clone(),
            planting_area_code: orchard.planting_area_code.clone(),
            exterior: ring(boundary.exterior()),
            holes: boundary.interiors().iter().map(ring).collect(),
        })
    }
}

/// Encodes the vector tile `tile` with layer [`ORCHARDS_LAYER`] (first, so
/// clients drawing in tile order put trees on top) and layer [`TREES_LAYER`].
///
/// * Trees whose location lies inside the tile or within [`BUFFER`] units of
///   it become points, in input order; invalid locations (see
///   [`LonLat::is_valid`]) are skipped.
/// * Orchard rings are projected, clipped to the tile square widened by
///   [`BUFFER`] (Sutherland–Hodgman), quantised and normalised
///   ([`mvt::Geometry::normalized`]); orchards with no part inside, or with an
///   invalid vertex, are skipped.
///
/// Layers with no feature are left out, so a tile with nothing in it is an
/// empty `Vec` — zero bytes is a valid tile by the spec (a `Tile` message
/// with no layers), and clients such as MapLibre accept it. The API may send
/// it as is or answer `204 No Content`.
///
/// The output depends only on the arguments, so equal inputs give equal
/// bytes (and equal ETags).
pub fn encode_trees_tile(tile: TileId, trees: &[TilePoint], orchards: &[TilePolygon]) -> Vec<u8> {
    let mut out = Vec::new();
    // Both names are constants and differ, so the layers can be concatenated
    // without TileBuilder's duplicate check.
    orchards_layer(tile, orchards).encode_into(&mut out);
    trees_layer(tile, trees).encode_into(&mut out);
    out
}

/// The buffered tile square, in tile units.
pub(crate) fn buffered() -> (f64, f64) {
    (-f64::from(BUFFER), f64::from(EXTENT + BUFFER))
}

fn trees_layer(tile: TileId, trees: &[TilePoint]) -> LayerBuilder {
    let mut layer = LayerBuilder::new(TREES_LAYER, EXTENT);
    let (lo, hi) = buffered();
    let extent = f64::from(EXTENT);
    for tree in trees {
        if !tree.location.is_valid() {
            continue;
        }
        let (fx, fy) = tile.fraction(tree.location);
        let (x, y) = ((fx * extent).round(), (fy * extent).round());
        // Filter before the cast so far-away points are dropped, not saturated.
        if !(lo..=hi).contains(&x) || !(lo..=hi).contains(&y) {
            continue;
        }
        let mut properties = Vec::with_capacity(5);
        properties.push(("code", Value::String(tree.code.clone())));
        properties.push(("cultivar", Value::String(tree.cultivar.clone())));
        properties.push(("health", Value::String(tree.health.to_string())));
        if let Some(year) = tree.planted_year {
            properties.push(("planted_year", Value::Int(year.into())));
        }
        properties.push(("orchard", Value::String(tree.orchard.clone())));
        layer.add_feature(Some(tree.id), &properties, &Geometry::point(x as i32, y as i32));
    }
    layer
}

pub(crate) fn orchards_layer(tile: TileId, orchards: &[TilePolygon]) -> LayerBuilder {
    let mut layer = LayerBuilder::new(ORCHARDS_LAYER, EXTENT);
    let (lo, hi) = buffered();
    let extent = f64::from(EXTENT);
    // Project, clip in floating point (so clipping does not add rounding),
    // then quantise; `None` when a vertex is not a valid position.
    let ring = |r: &[LonLat]| -> Option<Vec<(i32, i32)>> {
        let mut projected = Vec::with_capacity(r.len());
        for p in r {
            if !p.is_valid() {
                return None;
            }
            let (fx, fy) = tile.fraction(*p);
            projected.push((fx * extent, fy * extent));
        }
        // Clipped values lie within the buffered square, so the casts are exact.
        Some(
            clip::clip_ring(&projected, lo, hi)
                .into_iter()
                .map(|(x, y)| (x.round() as i32, y.round() as i32))
                .collect(),
        )
    };
    for orchard in orchards {
        let Some(exterior) = ring(&orchard.exterior) else { continue };
        let Some(holes) = orchard.holes.iter().map(|h| ring(h)).collect::<Option<Vec<_>>>() else { continue };
        let mut properties =
            vec![("orchard", Value::String(orchard.orchard.clone())), ("name", Value::String(orchard.name.clone()))];
        if let Some(code) = &orchard.planting_area_code {
            properties.push(("planting_area_code", Value::String(code.clone())));
        }
        // A polygon that clipped or quantised to nothing is not added.
        layer.add_feature(None, &properties, &Geometry::Polygon(vec![Polygon { exterior, holes }]));
    }
    layer
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo_core::{Cultivar, Health, OrchardId, TreeCode, TreeId};
    use proptest::prelude::*;

    fn tree(id: u64, location: LonLat) -> TilePoint {
        TilePoint {
            id,
            location,
            code: format!("C{id}"),
            cultivar: "Ri6".into(),
            health: "good".into(),
            planted_year: Some(2015),
            orchard: "DL-1".into(),
        }
    }

    fn square(min_lon: f64, min_lat: f64, max_lon: f64, max_lat: f64) -> Vec<LonLat> {
        vec![
            LonLat::new(min_lon, min_lat),
            LonLat::new(max_lon, min_lat),
            LonLat::new(max_lon, max_lat),
            LonLat::new(min_lon, max_lat),
            LonLat::new(min_lon, min_lat),
        ]
    }

    fn z16() -> TileId {
        tile_for(LonLat::new(108.05, 12.68), 16).unwrap()
    }

    #[test]
    fn empty_input_is_an_empty_tile() {
        let bytes = encode_trees_tile(z16(), &[], &[]);
        assert!(bytes.is_empty());
        assert!(mvt::decode(&bytes).unwrap().layers.is_empty());
    }

    #[test]
    fn trees_are_placed_and_tagged() {
        let t = z16();
        // Independently (Python, the textbook formulas): x = 52437.902, y = 30440.600.
        assert_eq!(t.to_string(), "16/52437/30440");
        let bytes = encode_trees_tile(t, &[tree(1, LonLat::new(108.05, 12.68)), layer_tree_2()], &[]);
        let tile = mvt::decode(&bytes).unwrap();
        assert_eq!(tile.layers.len(), 1);
        let layer = tile.layer(TREES_LAYER).unwrap();
        assert_eq!((layer.version, layer.extent), (2, 4096));
        let f = &layer.features[0];
        assert_eq!(f.id, Some(1));
        let (px, py) = lonlat_to_tile_pixel(LonLat::new(108.05, 12.68), t, EXTENT);
        assert_eq!(f.geometry, mvt::Geometry::point(px, py));
        // 0.902 and 0.600 of the way across: round(0.90222 * 4096), round(0.59989 * 4096).
        assert_eq!((px, py), (3696, 2457));
        let props: Vec<&str> = f.properties.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(props, ["code", "cultivar", "health", "planted_year", "orchard"]);
        assert_eq!(f.get("planted_year"), Some(&Value::Int(2015)));
        assert_eq!(f.get("health").and_then(Value::as_str), Some("good"));
        let g = &layer.features[1];
        assert_eq!(g.get("planted_year"), None);
        assert_eq!(g.get("health").and_then(Value::as_str), Some("poor"));
        // "Ri6" and "DL-1" are stored once for both trees.
        assert_eq!(layer.values.iter().filter(|v| v.as_str() == Some("Ri6")).count(), 1);
        // Deterministic.
        assert_eq!(bytes, encode_trees_tile(t, &[tree(1, LonLat::new(108.05, 12.68)), layer_tree_2()], &[]));
    }

    fn layer_tree_2() -> TilePoint {
        let mut t = tree(2, LonLat::new(108.0502, 12.6801));
        t.planted_year = None;
        t.health = Cow::Owned("poor".to_string());
        t
    }

    #[test]
    fn buffer_keeps_near_trees_and_drops_far_and_invalid_ones() {
        let t = z16();
        let b = t.bounds();
        let width = b.max_lon - b.min_lon;
        let lat = (b.min_lat + b.max_lat) / 2.0;
        let trees = [
            tree(1, LonLat::new(b.min_lon - width * 30.0 / 4096.0, lat)), // in the buffer: x ≈ -30
            tree(2, LonLat::new(b.max_lon + width * 63.0 / 4096.0, lat)), // x ≈ 4159
            tree(3, LonLat::new(b.min_lon - width * 100.0 / 4096.0, lat)), // beyond the buffer
            tree(4, LonLat::new(f64::NAN, lat)),
            tree(5, LonLat::new(200.0, lat)),
            tree(6, LonLat::new(108.0, 50.0)),
        ];
        let tile = mvt::decode(&encode_trees_tile(t, &trees, &[])).unwrap();
        let layer = tile.layer(TREES_LAYER).unwrap();
        let ids: Vec<_> = layer.features.iter().map(|f| f.id).collect();
        assert_eq!(ids, [Some(1), Some(2)]);
        let mvt::Geometry::Point(p) = &layer.features[0].geometry else { panic!() };
        assert_eq!(p[0].0, -30);
        let mvt::Geometry::Point(p) = &layer.features[1].geometry else { panic!() };
        assert_eq!(p[0].0, 4159);
    }

    #[test]
    fn orchards_are_clipped_to_the_buffered_tile() {
        let t = z16();
        let b = t.bounds();
        let (w, h) = (b.max_lon - b.min_lon, b.max_lat - b.min_lat);
        let cover = TilePolygon {
            orchard: "DL-BIG".into(),
            name: "Vườn lớn".into(),
            planting_area_code: Some("VN-DLK-0001".into()),
            exterior: square(b.min_lon - w, b.min_lat - h, b.max_lon + w, b.max_lat + h),
            // A pond in the middle quarter of the tile, given clockwise in lon/lat.
            holes: vec![
                square(b.min_lon + w / 4.0, b.min_lat + h / 4.0, b.max_lon - w / 4.0, b.max_lat - h / 4.0)
                    .into_iter()
                    .rev()
                    .collect(),
            ],
        };
        let away = TilePolygon {
            orchard: "DL-FAR".into(),
            name: "Xa".into(),
            planting_area_code: None,
            exterior: square(b.max_lon + w, b.min_lat, b.max_lon + 2.0 * w, b.max_lat),
            holes: vec![],
        };
        let small = TilePolygon {
            orchard: "DL-SMALL".into(),
            name: "Nhỏ".into(),
            planting_area_code: None,
            exterior: square(b.min_lon + w / 8.0, b.min_lat + h / 8.0, b.min_lon + w / 4.0, b.min_lat + h / 4.0),
            holes: vec![],
        };
        let tile = mvt::decode(&encode_trees_tile(t, &[], &[cover, away, small])).unwrap();
        assert_eq!(tile.layers.len(), 1);
        let layer = tile.layer(ORCHARDS_LAYER).unwrap();
        assert_eq!(layer.features.len(), 2);
        let f = &layer.features[0];
        assert_eq!(f.id, None);
        assert_eq!(f.get("orchard").and_then(Value::as_str), Some("DL-BIG"));
        assert_eq!(f.get("name").and_then(Value::as_str), Some("Vườn lớn"));
        assert_eq!(f.get("planting_area_code").and_then(Value::as_str), Some("VN-DLK-0001"));
        let mvt::Geometry::Polygon(polys) = &f.geometry else { panic!("{:?}", f.geometry) };
        assert_eq!(polys.len(), 1);
        let ext = &polys[0].exterior;
        let mut corners = ext.clone();
        corners.sort();
        assert_eq!(corners, [(-64, -64), (-64, 4160), (4160, -64), (4160, 4160)]);
        assert!(mvt::ring_area2(ext) > 0);
        let mut hole = polys[0].holes[0].clone();
        assert!(mvt::ring_area2(&hole) < 0);
        hole.sort();
        assert_eq!(hole.first(), Some(&(1024, 1024)));
        assert_eq!(hole.last(), Some(&(3072, 3072)));
        assert_eq!(layer.features[1].get("planting_area_code"), None);
    }

    #[test]
    fn stored_types_convert() {
        let t = Tree {
            id: TreeId(42),
            code: TreeCode::from_serial(42).unwrap(),
            location: LonLat::new(108.05, 12.68),
            accuracy_m: None,
            cultivar: Cultivar::new("ri 6"),
            planted_year: Some(2012),
            health: Health::Fair,
            height_m: None,
            girth_cm: None,
            orchard_id: OrchardId::new("DL-CMG-1").unwrap(),
            survey_id: None,
            created_at: chrono::DateTime::UNIX_EPOCH,
            updated_at: chrono::DateTime::UNIX_EPOCH,
            version: 1,
        };
        let p = TilePoint::from_tree(&t).unwrap();
        assert_eq!((p.id, p.cultivar.as_str(), p.health.as_ref(), p.orchard.as_str()), (42, "Ri6", "fair", "DL-CMG-1"));
        assert_eq!(p.code, t.code.as_str());
        assert_eq!(TilePoint::from_tree(&Tree { id: TreeId(-1), ..t }), None);

        let ring = geo_types::LineString::from(vec![(108.0, 12.0), (108.1, 12.0), (108.1, 12.1), (108.0, 12.0)]);
        let mut o = Orchard {
            id: OrchardId::new("DL-CMG-1").unwrap(),
            name: "Vườn".into(),
            owner: "Y".into(),
            commune: "Ea Tiêu".into(),
            district: "Cư Kuin".into(),
            province: "Đắk Lắk".into(),
            planting_area_code: None,
            gln: None,
            boundary: Some(geo_types::Polygon::new(ring, vec![])),
        };
        let p = TilePolygon::from_orchard(&o).unwrap();
        assert_eq!(p.exterior.len(), 4);
        assert_eq!(p.exterior[1], LonLat::new(108.1, 12.0));
        assert_eq!(p.orchard, "DL-CMG-1");
        o.boundary = None;
        assert_eq!(TilePolygon::from_orchard(&o), None);
    }

    fn finite() -> impl Strategy<Value = f64> {
        prop_oneof![-1e6f64..1e6, -180.0f64..180.0, Just(180.0), Just(-90.0), Just(90.0), any::<f64>()]
    }

    proptest! {
        #[test]
        fn encoder_never_panics_and_stays_in_the_buffer(
            t in crate::tile::tests::any_tile(),
            near in prop::collection::vec((0.0f64..1.0, 0.0f64..1.0), 0..20),
            wild in prop::collection::vec((finite(), finite()), 0..10),
            rings in prop::collection::vec(prop::collection::vec((finite(), finite()), 0..8), 0..4),
        ) {
            let b = t.bounds();
            // Points spread over the tile and its surroundings, plus arbitrary ones.
            let mut trees: Vec<TilePoint> = near.iter().enumerate().map(|(i, (u, v))| {
                let lon = b.min_lon + (u * 1.2 - 0.1) * (b.max_lon - b.min_lon);
                let lat = b.min_lat + (v * 1.2 - 0.1) * (b.max_lat - b.min_lat);
                tree(i as u64, LonLat::new(lon, lat))
            }).collect();
            trees.extend(wild.iter().map(|(lon, lat)| tree(999, LonLat::new(*lon, *lat))));
            let orchards: Vec<TilePolygon> = rings.iter().map(|r| TilePolygon {
                orchard: "o".into(), name: "n".into(), planting_area_code: None,
                exterior: r.iter().map(|(lon, lat)| LonLat::new(*lon, *lat)).collect(),
                holes: vec![r.iter().rev().map(|(lon, lat)| LonLat::new(*lon / 2.0, *lat / 2.0)).collect()],
            }).collect();
            let bytes = encode_trees_tile(t, &trees, &orchards);
            prop_assert_eq!(&bytes, &encode_trees_tile(t, &trees, &orchards));
            let tile = mvt::decode(&bytes).unwrap();
            let inside = |(x, y): (i32, i32)| (-64..=4160).contains(&x) && (-64..=4160).contains(&y);
            if let Some(layer) = tile.layer(TREES_LAYER) {
                for f in &layer.features {
                    let mvt::Geometry::Point(p) = &f.geometry else { panic!() };
                    prop_assert!(inside(p[0]));
                    // The feature sits exactly where lonlat_to_tile_pixel puts its tree.
                    let id = f.id.unwrap_or_default();
                    if id != 999 {
                        let tr = &trees[id as usize];
                        prop_assert_eq!(p[0], lonlat_to_tile_pixel(tr.location, t, EXTENT));
                    }
                }
            }
            if let Some(layer) = tile.layer(ORCHARDS_LAYER) {
                for f in &layer.features {
                    let mvt::Geometry::Polygon(polys) = &f.geometry else { panic!() };
                    for p in polys {
                        prop_assert!(p.exterior.iter().chain(p.holes.iter().flatten()).all(|c| inside(*c)));
                    }
                }
            }
        }
    }
}
