//! Positions and the distance model.
//!
//! # Distance model
//! Positions are WGS 84 longitude/latitude in degrees (`f64`, far finer than
//! the 1e-7 degree ≈ 1 cm we must keep). Ground distances use the WGS 84
//! ellipsoid's local tangent plane at the mean latitude of the two points:
//! east-west metres are `N(φ)·cos φ·Δλ`, north-south metres `M(φ)·Δφ`, with `N`
//! and `M` the prime-vertical and meridional radii of curvature. Up to 10 km
//! this agrees with the exact ellipsoidal geodesic (Karney) to better than
//! 1 part in 10,000 (tested below), i.e. millimetres across an orchard.
//!
//! The index works in ellipsoidal (World) Mercator metres ([`mercator`]),
//! which is conformal: around any point it is the ground scaled by the same
//! factor in every direction ([`mercator_scale`]), so nearest-neighbour order
//! in Mercator space is nearest-neighbour order on the ground.

/// WGS 84 semi-major axis in metres.
const A: f64 = 6_378_137.0;
/// WGS 84 flattening.
const F: f64 = 1.0 / 298.257_223_563;
/// First eccentricity squared.
const E2: f64 = F * (2.0 - F);

/// A WGS 84 position (EPSG:4326) in degrees, longitude first as in GeoJSON.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LonLat {
    /// Longitude in degrees, east positive.
    pub lon: f64,
    /// Latitude in degrees, north positive.
    pub lat: f64,
}

impl LonLat {
    /// A position from longitude and latitude in degrees.
    pub const fn new(lon: f64, lat: f64) -> Self {
        Self { lon, lat }
    }

    /// True when both parts are finite and within -180..180 / -90..90.
    pub fn is_valid(&self) -> bool {
        self.lon.is_finite()
            && self.lat.is_finite()
            && (-180.0..=180.0).contains(&self.lon)
            && (-90.0..=90.0).contains(&self.lat)
    }

    /// This position moved `east_m` metres east and `north_m` metres north
    /// (local tangent plane; for offsets up to a few kilometres).
    pub fn offset_m(&self, east_m: f64, north_m: f64) -> Self {
        let (m, n) = radii(self.lat.to_radians());
        let lat = self.lat + (north_m / m).to_degrees();
        let lon = self.lon + (east_m / (n * self.lat.to_radians().cos())).to_degrees();
        Self { lon, lat }
    }
}

/// Meridional (M) and prime-vertical (N) radii of curvature at latitude `phi` (radians).
fn radii(phi: f64) -> (f64, f64) {
    let s = phi.sin();
    let w2 = 1.0 - E2 * s * s;
    let w = w2.sqrt();
    (A * (1.0 - E2) / (w2 * w), A / w)
}

/// Ground distance in metres between two positions (see the module docs for the model).
pub fn distance_m(a: LonLat, b: LonLat) -> f64 {
    let phi = ((a.lat + b.lat) * 0.5).to_radians();
    let (m, n) = radii(phi);
    let mut dlon = b.lon - a.lon;
    if dlon > 180.0 {
        dlon -= 360.0;
    } else if dlon < -180.0 {
        dlon += 360.0;
    }
    let dx = n * phi.cos() * dlon.to_radians();
    let dy = m * (b.lat - a.lat).to_radians();
    // Plain sqrt: glibc's hypot guards against overflow we cannot have here and costs more.
    (dx * dx + dy * dy).sqrt()
}

/// Ellipsoidal Mercator (EPSG:3395) coordinates in metres, `[x, y]`.
///
/// Latitude is clamped to ±89.9 degrees so the result is always finite.
pub fn mercator(p: LonLat) -> [f64; 2] {
    let e = E2.sqrt();
    let phi = p.lat.clamp(-89.9, 89.9).to_radians();
    let s = phi.sin();
    let y = A * (s.atanh() - e * (e * s).atanh());
    [A * p.lon.to_radians(), y]
}

/// How many Mercator metres one ground metre is at latitude `lat` degrees (≥ 1).
pub fn mercator_scale(lat: f64) -> f64 {
    let phi = lat.clamp(-89.9, 89.9).to_radians();
    let s = phi.sin();
    (1.0 - E2 * s * s).sqrt() / phi.cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{Distance, Geodesic, Point};
    use proptest::prelude::*;

    fn geodesic(a: LonLat, b: LonLat) -> f64 {
        Geodesic.distance(Point::new(a.lon, a.lat), Point::new(b.lon, b.lat))
    }

    #[test]
    fn orchard_scale_distance_matches_geodesic() {
        let a = LonLat::new(108.05, 12.68);
        let b = LonLat::new(108.0512, 12.6793);
        let d = distance_m(a, b);
        assert!((d - geodesic(a, b)).abs() < 0.001, "{d} vs {}", geodesic(a, b));
    }

    #[test]
    fn offset_round_trips() {
        let a = LonLat::new(108.05, 12.68);
        let b = a.offset_m(30.0, -40.0);
        assert!((distance_m(a, b) - 50.0).abs() < 1e-3);
    }

    #[test]
    fn mercator_matches_epsg3395_reference() {
        // EPSG:3395 for 12.68N 108.05E computed with PROJ 9 (pyproj, EPSG:4326 -> EPSG:3395).
        let [x, y] = mercator(LonLat::new(108.05, 12.68));
        assert!((x - 12_028_070.980_2).abs() < 0.001);
        assert!((y - 1_413_822.994_7).abs() < 0.001, "{y}");
    }

    proptest! {
        #[test]
        fn within_10km_error_is_below_1e4(lon in 102.0f64..110.0, lat in -60.0f64..60.0,
                                          east in -7000.0f64..7000.0, north in -7000.0f64..7000.0) {
            let a = LonLat::new(lon, lat);
            let b = a.offset_m(east, north);
            let exact = geodesic(a, b);
            prop_assume!(exact > 1.0);
            prop_assert!((distance_m(a, b) - exact).abs() / exact < 1e-4);
        }

        #[test]
        fn mercator_is_locally_isotropic(lon in 102.0f64..110.0, lat in -60.0f64..60.0, bearing in 0.0f64..std::f64::consts::TAU) {
            let a = LonLat::new(lon, lat);
            let b = a.offset_m(100.0 * bearing.cos(), 100.0 * bearing.sin());
            let [ax, ay] = mercator(a);
            let [bx, by] = mercator(b);
            let merc = (bx - ax).hypot(by - ay);
            let ground = distance_m(a, b);
            prop_assert!((merc / mercator_scale(lat) - ground).abs() < 0.01);
        }
    }
}
