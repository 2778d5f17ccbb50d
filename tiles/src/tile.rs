//! Tile addresses and spherical Web Mercator (EPSG:3857) math.
//!
//! Tiles follow the XYZ ("slippy map") scheme used by OpenStreetMap, MapLibre
//! and the MVT spec: at zoom `z` the square Web Mercator world is cut into
//! `2^z × 2^z` tiles, column `x` growing east from the antimeridian and row `y`
//! growing *south* from the top edge at latitude +85.05112878°.
//!
//! Web Mercator is the *spherical* projection of WGS 84 longitude/latitude
//! (not the ellipsoidal EPSG:3395 that `geo_core::mercator` uses for
//! distances); it is only defined up to ±[`MAX_LATITUDE`], so latitudes beyond
//! are clamped to that limit. Orchards are in Viet Nam, far from the limit and
//! from the antimeridian, so neither clamping nor wrap-around matters in
//! practice; both are handled only so that no input can make the math fail.

use std::f64::consts::PI;
use std::fmt;
use std::str::FromStr;

use geo_core::{BBox, LonLat};

use crate::error::{Error, Result};

/// Highest zoom level a [`TileId`] may have.
///
/// Why 24: a z24 tile is about 2.4 m wide at the equator, narrower than the
/// crown of one durian tree (trees stand 8–10 m apart), so deeper tiles show
/// nothing new; it keeps `2^z` and the column/row in a `u32` and keeps world
/// pixel coordinates (`2^24 × 4096 = 2^36`) exact in an `f64`. Map clients
/// over-zoom the z24 tile past that, and most stop at z22 anyway.
pub const MAX_ZOOM: u8 = 24;

/// Northern and southern limit of Web Mercator in degrees: `atan(sinh(π))`,
/// where the projected world becomes a square.
pub const MAX_LATITUDE: f64 = 85.051_128_779_806_59;

/// One map tile, `z/x/y` in the XYZ scheme (y counted down from the north edge).
///
/// The fields are private so every `TileId` in the program is valid: build one
/// with [`TileId::new`], [`tile_for`] or by parsing `"z/x/y"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId {
    z: u8,
    x: u32,
    y: u32,
}

impl TileId {
    /// Checks and builds a tile address.
    ///
    /// `z` must be at most [`MAX_ZOOM`]; `x` and `y` must be below `2^z`. The
    /// zoom is taken as `u32` (like `x` and `y`) so a caller parsing a URL can
    /// hand over any number and get an error naming the part and its range.
    pub fn new(z: u32, x: u32, y: u32) -> Result<Self> {
        let zoom = u8::try_from(z).ok().filter(|z| *z <= MAX_ZOOM).ok_or(Error::Zoom { z, max: MAX_ZOOM })?;
        let max = (1u32 << zoom) - 1;
        if x > max {
            return Err(Error::Column { x, z: zoom, max });
        }
        if y > max {
            return Err(Error::Row { y, z: zoom, max });
        }
        Ok(Self { z: zoom, x, y })
    }

    /// Zoom level, `0..=MAX_ZOOM`.
    pub fn z(&self) -> u8 {
        self.z
    }

    /// Column, counted east from longitude -180.
    pub fn x(&self) -> u32 {
        self.x
    }

    /// Row, counted south from latitude +[`MAX_LATITUDE`].
    pub fn y(&self) -> u32 {
        self.y
    }

    /// Number of tiles along each side of the world at this zoom, `2^z`, as `f64`.
    fn world_size(&self) -> f64 {
        f64::from(1u32 << self.z)
    }

    /// The longitude/latitude box this tile covers.
    ///
    /// Adjacent tiles share their edges exactly (the same formula is evaluated
    /// on the same integer), so the four [`children`](Self::children) partition
    /// their parent without gaps.
    pub fn bounds(&self) -> BBox {
        let n = self.world_size();
        let lon = |x: u32| f64::from(x) / n * 360.0 - 180.0;
        let lat = |y: u32| (PI * (1.0 - 2.0 * f64::from(y) / n)).sinh().atan().to_degrees();
        BBox { min_lon: lon(self.x), min_lat: lat(self.y + 1), max_lon: lon(self.x + 1), max_lat: lat(self.y) }
    }

    /// The tile one zoom level up that contains this one, `None` at z0.
    pub fn parent(&self) -> Option<TileId> {
        let z = self.z.checked_sub(1)?;
        Some(TileId { z, x: self.x >> 1, y: self.y >> 1 })
    }

    /// The four tiles one zoom level down that make up this one, in the order
    /// north-west, north-east, south-west, south-east; `None` at [`MAX_ZOOM`].
    pub fn children(&self) -> Option<[TileId; 4]> {
        if self.z >= MAX_ZOOM {
            return None;
        }
        let (z, x, y) = (self.z + 1, self.x * 2, self.y * 2);
        Some([
            TileId { z, x, y },
            TileId { z, x: x + 1, y },
            TileId { z, x, y: y + 1 },
            TileId { z, x: x + 1, y: y + 1 },
        ])
    }

    /// Where `p` falls relative to this tile, in tile widths: `(0, 0)` is the
    /// north-west corner, `(1, 1)` the south-east one; outside points give
    /// values beyond 0..1. Latitude is clamped to the Mercator limit. Not
    /// rounded, so clipping can work before quantisation.
    pub(crate) fn fraction(&self, p: LonLat) -> (f64, f64) {
        let (wx, wy) = world(p);
        let n = self.world_size();
        (wx * n - f64::from(self.x), wy * n - f64::from(self.y))
    }
}

/// Normalised Web Mercator world coordinates of `p`: both in 0..1, `y` down.
fn world(p: LonLat) -> (f64, f64) {
    let x = (p.lon + 180.0) / 360.0;
    let phi = p.lat.clamp(-MAX_LATITUDE, MAX_LATITUDE).to_radians();
    // asinh(tan φ) is the Mercator ordinate ln(tan(π/4 + φ/2)) in a form
    // that stays accurate near the equator.
    let y = (1.0 - phi.tan().asinh() / PI) / 2.0;
    (x, y)
}

/// The tile at zoom `z` containing `p`.
///
/// Latitudes beyond ±[`MAX_LATITUDE`] are clamped (they fall in the top or
/// bottom row); longitude 180 falls in the last column. A point on an edge
/// between tiles belongs to the tile east/south of it, as in every XYZ tiler.
///
/// # Errors
/// [`Error::Zoom`] above [`MAX_ZOOM`]; [`Error::Position`] when `p` is not a
/// finite longitude in -180..180 and latitude in -90..90.
pub fn tile_for(p: LonLat, z: u8) -> Result<TileId> {
    if z > MAX_ZOOM {
        return Err(Error::Zoom { z: u32::from(z), max: MAX_ZOOM });
    }
    if !p.is_valid() {
        return Err(Error::Position { lon: p.lon, lat: p.lat });
    }
    let (wx, wy) = world(p);
    let max = (1u32 << z) - 1;
    let n = f64::from(1u32 << z);
    // The float-to-int cast saturates, and the `min` keeps lon 180 / the
    // southern limit inside the world.
    let cell = |w: f64| ((w * n).floor().max(0.0) as u32).min(max);
    Ok(TileId { z, x: cell(wx), y: cell(wy) })
}

/// Tile-local coordinates of `p` in a tile of `extent` units per side.
///
/// `(0, 0)` is the tile's north-west corner and `y` grows downward, as the MVT
/// spec wants. Values are rounded to the nearest unit; points outside the tile
/// (e.g. in the buffer around it) give values below 0 or above `extent`, and
/// far-away points saturate at the `i32` limits. `p` should be a valid
/// position (see [`LonLat::is_valid`]): a NaN part maps to 0.
pub fn lonlat_to_tile_pixel(p: LonLat, tile: TileId, extent: u32) -> (i32, i32) {
    let (fx, fy) = tile.fraction(p);
    let e = f64::from(extent);
    // `as` saturates (and maps NaN to 0), which is the documented behaviour.
    ((fx * e).round() as i32, (fy * e).round() as i32)
}

impl fmt::Display for TileId {
    /// Formats as `z/x/y`, the form used in tile URLs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.z, self.x, self.y)
    }
}

impl FromStr for TileId {
    type Err = Error;

    /// Parses `z/x/y` and checks the ranges like [`TileId::new`].
    fn from_str(s: &str) -> Result<Self> {
        let mut parts = s.split('/');
        let mut next = || -> Result<u32> {
            let part = parts.next().ok_or(Error::Parse { value: s.to_string(), reason: "must be z/x/y" })?;
            part.parse::<u32>()
                .map_err(|_| Error::Parse { value: s.to_string(), reason: "z, x and y must be non-negative integers" })
        };
        let (z, x, y) = (next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(Error::Parse { value: s.to_string(), reason: "must be z/x/y" });
        }
        TileId::new(z, x, y)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_tile_for_buon_ma_thuot_orchard() {
        // Independently: x = floor((108.05 + 180) / 360 * 4096) = floor(3277.37) = 3277;
        // y = floor((1 - ln(tan(45° + 6.34°)) / π) / 2 * 4096) = floor(1902.54) = 1902.
        let t = tile_for(LonLat::new(108.05, 12.68), 12).unwrap();
        assert_eq!((t.z(), t.x(), t.y()), (12, 3277, 1902));
        assert_eq!(t.to_string(), "12/3277/1902");
        let b = t.bounds();
        assert!(b.contains(LonLat::new(108.05, 12.68)));
        assert!((b.min_lon - 108.017_578_125).abs() < 1e-12, "{b:?}");
        assert!((b.max_lon - 108.105_468_75).abs() < 1e-12, "{b:?}");
    }

    #[test]
    fn z0_is_the_whole_mercator_world() {
        let t = TileId::new(0, 0, 0).unwrap();
        let b = t.bounds();
        assert_eq!((b.min_lon, b.max_lon), (-180.0, 180.0));
        assert!((b.max_lat - MAX_LATITUDE).abs() < 1e-9 && (b.min_lat + MAX_LATITUDE).abs() < 1e-9);
        assert_eq!(t.parent(), None);
        assert_eq!(tile_for(LonLat::new(180.0, -90.0), 0).unwrap(), t);
        assert_eq!(tile_for(LonLat::new(180.0, 90.0), 3).unwrap(), TileId::new(3, 7, 0).unwrap());
        assert_eq!(tile_for(LonLat::new(-180.0, -90.0), 3).unwrap(), TileId::new(3, 0, 7).unwrap());
    }

    #[test]
    fn errors_name_the_part_and_range() {
        assert_eq!(TileId::new(25, 0, 0), Err(Error::Zoom { z: 25, max: 24 }));
        assert_eq!(TileId::new(300, 0, 0), Err(Error::Zoom { z: 300, max: 24 }));
        assert_eq!(TileId::new(2, 4, 0), Err(Error::Column { x: 4, z: 2, max: 3 }));
        assert_eq!(TileId::new(2, 3, 4), Err(Error::Row { y: 4, z: 2, max: 3 }));
        let msg = TileId::new(12, 5000, 0).unwrap_err().to_string();
        assert_eq!(msg, "tile column x=5000 is out of range at zoom 12: allowed 0..=4095");
        assert!(TileId::new(24, (1 << 24) - 1, (1 << 24) - 1).is_ok());
        assert!(tile_for(LonLat::new(f64::NAN, 0.0), 3).is_err());
        assert!(tile_for(LonLat::new(190.0, 0.0), 3).is_err());
        assert!(tile_for(LonLat::new(0.0, 0.0), 25).is_err());
    }

    #[test]
    fn parses_z_x_y() {
        assert_eq!("12/3277/1902".parse::<TileId>().unwrap(), TileId::new(12, 3277, 1902).unwrap());
        for bad in ["", "12", "12/1", "12/1/2/3", "a/1/2", "-1/0/0", "12/1/ 2"] {
            assert!(matches!(bad.parse::<TileId>(), Err(Error::Parse { .. })), "{bad}");
        }
        assert!(matches!("2/9/0".parse::<TileId>(), Err(Error::Column { .. })));
    }

    #[test]
    fn pixel_placement() {
        let t = TileId::new(12, 3277, 1902).unwrap();
        let b = t.bounds();
        assert_eq!(lonlat_to_tile_pixel(LonLat::new(b.min_lon, b.max_lat), t, 4096), (0, 0));
        assert_eq!(lonlat_to_tile_pixel(LonLat::new(b.max_lon, b.min_lat), t, 4096), (4096, 4096));
        // The centre of the tile in Mercator (not in latitude) is pixel 2048.
        let mid_lon = (b.min_lon + b.max_lon) / 2.0;
        let (px, _) = lonlat_to_tile_pixel(LonLat::new(mid_lon, b.max_lat), t, 4096);
        assert_eq!(px, 2048);
        // 108.05 is (108.05 - 108.017578125) / 0.087890625 = 0.368888... of the width.
        // y independently: (1 - ln(tan(45° + 6.34°)) / π) / 2 * 4096 = 1902.5375 -> 0.5375 * 4096.
        let (px, py) = lonlat_to_tile_pixel(LonLat::new(108.05, 12.68), t, 4096);
        assert_eq!((px, py), (1511, 2202));
        // y grows downward: a point further north has a smaller y.
        let (_, north) = lonlat_to_tile_pixel(LonLat::new(108.05, 12.69), t, 4096);
        assert!(north < py);
        // Points in the buffer fall outside 0..extent.
        let (west, _) = lonlat_to_tile_pixel(LonLat::new(b.min_lon - 0.001, 12.68), t, 4096);
        assert!(west < 0);
    }

    #[test]
    fn parent_and_children() {
        let t = TileId::new(12, 3277, 1902).unwrap();
        assert_eq!(t.parent(), Some(TileId::new(11, 1638, 951).unwrap()));
        let kids = t.children().unwrap();
        assert_eq!(kids[0], TileId::new(13, 6554, 3804).unwrap());
        assert_eq!(kids[3], TileId::new(13, 6555, 3805).unwrap());
        assert!(kids.iter().all(|k| k.parent() == Some(t)));
        assert_eq!(TileId::new(24, 0, 0).unwrap().children(), None);
    }

    pub(crate) fn any_tile() -> impl Strategy<Value = TileId> {
        (0u8..=MAX_ZOOM).prop_flat_map(|z| (Just(z), 0..1u32 << z, 0..1u32 << z)).prop_map(|(z, x, y)| TileId {
            z,
            x,
            y,
        })
    }

    proptest! {
        #[test]
        fn new_never_panics_and_accepts_exactly_the_valid(z in any::<u32>(), x in any::<u32>(), y in any::<u32>()) {
            let valid = z <= 24 && u64::from(x) < (1u64 << z) && u64::from(y) < (1u64 << z);
            prop_assert_eq!(TileId::new(z, x, y).is_ok(), valid);
        }

        #[test]
        fn small_z_new_is_ok_when_in_range(t in any_tile()) {
            prop_assert_eq!(TileId::new(u32::from(t.z), t.x, t.y), Ok(t));
            prop_assert_eq!(t.to_string().parse::<TileId>(), Ok(t));
        }

        #[test]
        fn tile_of_a_point_contains_it(lon in -180.0f64..=180.0, lat in -MAX_LATITUDE..=MAX_LATITUDE, z in 0u8..=MAX_ZOOM) {
            let p = LonLat::new(lon, lat);
            let t = tile_for(p, z).unwrap();
            let b = t.bounds();
            // Edge points may land one ulp either side of the edge after the
            // trigonometry, so allow 1e-9 degree (0.1 mm).
            let eps = 1e-9;
            prop_assert!(lon >= b.min_lon - eps && lon <= b.max_lon + eps, "{t} {b:?} {p:?}");
            prop_assert!(lat >= b.min_lat - eps && lat <= b.max_lat + eps, "{t} {b:?} {p:?}");
            let (px, py) = lonlat_to_tile_pixel(p, t, 4096);
            prop_assert!((0..=4096).contains(&px) && (0..=4096).contains(&py), "{px},{py}");
        }

        #[test]
        fn children_partition_the_parent(t in any_tile()) {
            prop_assume!(t.z < MAX_ZOOM);
            let [nw, ne, sw, se] = t.children().unwrap();
            let b = t.bounds();
            // Shared edges are bit-for-bit equal: see `bounds`.
            prop_assert_eq!(nw.bounds().min_lon, b.min_lon);
            prop_assert_eq!(nw.bounds().max_lat, b.max_lat);
            prop_assert_eq!(se.bounds().max_lon, b.max_lon);
            prop_assert_eq!(se.bounds().min_lat, b.min_lat);
            prop_assert_eq!(nw.bounds().max_lon, ne.bounds().min_lon);
            prop_assert_eq!(sw.bounds().max_lon, se.bounds().min_lon);
            prop_assert_eq!(nw.bounds().min_lat, sw.bounds().max_lat);
            prop_assert_eq!(ne.bounds().min_lat, se.bounds().max_lat);
            prop_assert_eq!(nw.bounds().max_lon, sw.bounds().max_lon);
            prop_assert_eq!(nw.bounds().min_lat, ne.bounds().min_lat);
            for k in [nw, ne, sw, se] {
                prop_assert_eq!(k.parent(), Some(t));
            }
        }

        #[test]
        fn bound_corners_are_pixel_0_or_extent(t in any_tile(), extent in prop::sample::select(vec![256u32, 512, 4096, 8192])) {
            let b = t.bounds();
            let e = i32::try_from(extent).unwrap();
            for (lon, lat, want) in [
                (b.min_lon, b.max_lat, (0, 0)),
                (b.max_lon, b.max_lat, (e, 0)),
                (b.min_lon, b.min_lat, (0, e)),
                (b.max_lon, b.min_lat, (e, e)),
            ] {
                prop_assert_eq!(lonlat_to_tile_pixel(LonLat::new(lon, lat), t, extent), want, "{} {:?}", t, b);
            }
        }
    }
}
