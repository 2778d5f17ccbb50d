//! The coordinate system of survey input: geo-core's built-in [`Crs`] (pure Rust), or with the
//! `proj` cargo feature any system the PROJ library knows.
//!
//! [`Reprojector::parse`] tries the built-in systems first; only what they cannot read (an EPSG code
//! that is not built in, another authority such as `ESRI:102100`, a CRS name, a projection other than
//! tmerc/utm/merc/longlat) goes to PROJ when the feature is on. Without the feature those give the
//! built-in error, which names the value and mentions the feature.
//!
//! With PROJ, EPSG codes are resolved with PROJ's database (`proj.db`) and PROJ chooses the
//! transformation to WGS 84 as `cs2cs` does. The `proj` crate's objects cannot move between threads,
//! so a [`ProjCrs`] keeps only its definition, and each thread creates (once) and caches the PROJ
//! objects it uses: a [`Reprojector`] is `Send + Sync` and cheap to clone either way.
//!
//! ```
//! use importer::Reprojector;
//!
//! // Đắk Lắk's VN-2000 TM-3 zone, built in: no PROJ needed.
//! let crs = Reprojector::parse("EPSG:9218").unwrap();
//! let p = crs.to_wgs84(478_084.706_4, 1_404_503.749_9).unwrap();
//! assert!((p.lon - 108.30).abs() < 1e-7 && (p.lat - 12.70).abs() < 1e-7);
//! // Without the `proj` feature, a system that is not built in is refused by name.
//! if !cfg!(feature = "proj") {
//!     assert!(Reprojector::parse("EPSG:2154").unwrap_err().to_string().contains("EPSG:2154"));
//! }
//! ```

use std::fmt;
use std::str::FromStr;

use geo_core::LonLat;
use geo_core::crs::{Crs, CrsError};

/// A coordinate system to convert survey coordinates from (and back, for reject files).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Reprojector {
    /// One of geo-core's built-in systems, converted in pure Rust.
    BuiltIn(Crs),
    /// Any other system, converted by the PROJ library (`proj` feature).
    #[cfg(feature = "proj")]
    Proj(ProjCrs),
}

impl Reprojector {
    /// The built-in system `definition` names (see [`Crs::parse`]), else (with the `proj` feature)
    /// the system PROJ makes of it.
    ///
    /// # Errors
    /// The built-in parser's [`CrsError`], naming the value; with the `proj` feature, for a value
    /// the built-in parser does not support, [`CrsError::Proj`] with PROJ's reason instead.
    pub fn parse(definition: &str) -> Result<Reprojector, CrsError> {
        match Crs::parse(definition) {
            Ok(crs) => Ok(Reprojector::BuiltIn(crs)),
            #[cfg(feature = "proj")]
            Err(CrsError::NotBuiltIn(_) | CrsError::Unsupported { .. } | CrsError::Unrecognized(_)) => {
                Reprojector::with_proj(definition)
            }
            Err(e) => Err(e),
        }
    }

    /// The system PROJ makes of `definition` (an `AUTHORITY:CODE`, a CRS name, a PROJ string or
    /// WKT), even when it is built in.
    ///
    /// # Errors
    /// [`CrsError::Proj`] when PROJ cannot make a conversion between it and WGS 84.
    #[cfg(feature = "proj")]
    pub fn with_proj(definition: &str) -> Result<Reprojector, CrsError> {
        ProjCrs::new(definition).map(Reprojector::Proj)
    }

    /// A name for messages (see [`Crs::name`]; for PROJ, its name of the system and the definition).
    pub fn name(&self) -> String {
        match self {
            Reprojector::BuiltIn(crs) => crs.name(),
            #[cfg(feature = "proj")]
            Reprojector::Proj(p) => p.name(),
        }
    }

    /// True for longitude/latitude systems (x = longitude, y = latitude in degrees).
    pub fn is_geographic(&self) -> bool {
        match self {
            Reprojector::BuiltIn(crs) => crs.is_geographic(),
            #[cfg(feature = "proj")]
            Reprojector::Proj(p) => p.is_geographic(),
        }
    }

    /// True when conversion to WGS 84 changes nothing.
    pub fn is_wgs84(&self) -> bool {
        match self {
            Reprojector::BuiltIn(crs) => crs.is_wgs84(),
            #[cfg(feature = "proj")]
            Reprojector::Proj(_) => false,
        }
    }

    /// Converts `x`, `y` (easting, northing; longitude, latitude when geographic) to WGS 84.
    ///
    /// # Errors
    /// [`CrsError::OutOfDomain`] naming the system and the input.
    pub fn to_wgs84(&self, x: f64, y: f64) -> Result<LonLat, CrsError> {
        match self {
            Reprojector::BuiltIn(crs) => crs.to_wgs84(x, y),
            #[cfg(feature = "proj")]
            Reprojector::Proj(p) => p.to_wgs84(x, y),
        }
    }

    /// Converts a WGS 84 position to this system's `(x, y)`.
    ///
    /// # Errors
    /// [`CrsError::OutOfDomain`] naming the system and the input.
    pub fn from_wgs84(&self, p: LonLat) -> Result<(f64, f64), CrsError> {
        match self {
            Reprojector::BuiltIn(crs) => crs.from_wgs84(p),
            #[cfg(feature = "proj")]
            Reprojector::Proj(proj) => proj.from_wgs84(p),
        }
    }
}

impl From<Crs> for Reprojector {
    fn from(crs: Crs) -> Reprojector {
        Reprojector::BuiltIn(crs)
    }
}

impl fmt::Display for Reprojector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for Reprojector {
    type Err = CrsError;

    fn from_str(s: &str) -> Result<Reprojector, CrsError> {
        Reprojector::parse(s)
    }
}

#[cfg(feature = "proj")]
pub use with_proj::ProjCrs;

#[cfg(feature = "proj")]
mod with_proj {
    use std::cell::RefCell;

    use geo_core::LonLat;
    use geo_core::crs::CrsError;
    use proj::Proj;

    /// How many PROJ objects each thread keeps (two per system: to and from WGS 84).
    const CACHE_SIZE: usize = 8;

    thread_local! {
        /// (definition, towards WGS 84?, PROJ object), most recently created last.
        static CACHE: RefCell<Vec<(String, bool, Proj)>> = const { RefCell::new(Vec::new()) };
    }

    /// A system converted by PROJ, kept as its definition; each thread makes its own PROJ objects
    /// from it on first use (see [`Reprojector`](super::Reprojector)).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ProjCrs {
        definition: String,
        description: String,
        geographic: bool,
    }

    impl ProjCrs {
        /// Asks PROJ for `definition` and its conversions to and from WGS 84.
        ///
        /// # Errors
        /// [`CrsError::Proj`] with PROJ's reason.
        pub fn new(definition: &str) -> Result<ProjCrs, CrsError> {
            let definition = definition.trim().to_string();
            let refused = |reason: String| CrsError::Proj { definition: definition.clone(), reason };
            let crs = Proj::new(&definition).map_err(|e| refused(e.to_string()))?;
            let description = crs.proj_info().description.unwrap_or_default();
            let (area, _) = crs.area_of_use().unwrap_or((None, None));
            // Probe at the middle of the area of use (or somewhere in Vietnam): one thousandth of a
            // degree of latitude is about 111 m in a projected system, 0.001 in a geographic one.
            let (lon, lat) = area.map_or((105.8, 16.0), |a| {
                // An area across the antimeridian has east < west.
                let east = if a.east < a.west { a.east + 360.0 } else { a.east };
                let lon = (a.west + east) / 2.0;
                (if lon > 180.0 { lon - 360.0 } else { lon }, (a.south + a.north) / 2.0)
            });
            let probe = ProjCrs { definition: definition.clone(), description, geographic: false };
            let a = probe.from_wgs84(LonLat::new(lon, lat)).map_err(|e| refused(e.to_string()))?;
            let b = probe.from_wgs84(LonLat::new(lon, lat + 0.001)).map_err(|e| refused(e.to_string()))?;
            let geographic = (b.0 - a.0).hypot(b.1 - a.1) < 0.05;
            probe.to_wgs84(a.0, a.1).map_err(|e| refused(e.to_string()))?;
            Ok(ProjCrs { geographic, ..probe })
        }

        /// `PROJ name of the system (definition)`, or the definition when PROJ gives no name.
        pub fn name(&self) -> String {
            if self.description.is_empty() || self.description == self.definition {
                self.definition.clone()
            } else {
                format!("{} ({})", self.description, self.definition)
            }
        }

        /// The definition as given.
        pub fn definition(&self) -> &str {
            &self.definition
        }

        /// True for a longitude/latitude system (judged by how PROJ converts a probe point).
        pub fn is_geographic(&self) -> bool {
            self.geographic
        }

        /// Converts `x`, `y` to WGS 84 with PROJ.
        ///
        /// # Errors
        /// [`CrsError::OutOfDomain`] with PROJ's reason.
        pub fn to_wgs84(&self, x: f64, y: f64) -> Result<LonLat, CrsError> {
            let input = || if self.geographic { format!("lon {x}, lat {y}") } else { format!("x {x}, y {y}") };
            if !x.is_finite() || !y.is_finite() {
                return Err(self.out_of_domain(input(), "not a finite number".into()));
            }
            let (lon, lat) = self.convert(true, (x, y)).map_err(|reason| self.out_of_domain(input(), reason))?;
            let p = LonLat::new(lon, lat);
            if p.is_valid() {
                Ok(p)
            } else {
                Err(self.out_of_domain(input(), "the result is not a valid position".into()))
            }
        }

        /// Converts a WGS 84 position to this system with PROJ.
        ///
        /// # Errors
        /// [`CrsError::OutOfDomain`] with PROJ's reason.
        pub fn from_wgs84(&self, p: LonLat) -> Result<(f64, f64), CrsError> {
            let input = || format!("lon {}, lat {}", p.lon, p.lat);
            if !p.is_valid() {
                return Err(self.out_of_domain(input(), "not a valid WGS 84 position".into()));
            }
            let (x, y) = self.convert(false, (p.lon, p.lat)).map_err(|reason| self.out_of_domain(input(), reason))?;
            if x.is_finite() && y.is_finite() {
                Ok((x, y))
            } else {
                Err(self.out_of_domain(input(), "the result is not finite".into()))
            }
        }

        fn out_of_domain(&self, input: String, reason: String) -> CrsError {
            CrsError::OutOfDomain { crs: self.name(), input, reason }
        }

        /// Runs PROJ's conversion towards (or from) WGS 84 on this thread's cached object, creating it
        /// on first use. Axis order is longitude, latitude / easting, northing whatever the system's.
        fn convert(&self, to_wgs84: bool, point: (f64, f64)) -> Result<(f64, f64), String> {
            CACHE.with(|cache| {
                let mut cache = cache.borrow_mut();
                let found = cache.iter().position(|(d, dir, _)| *dir == to_wgs84 && *d == self.definition);
                let index = match found {
                    Some(i) => i,
                    None => {
                        let (from, to) = if to_wgs84 {
                            (self.definition.as_str(), "EPSG:4326")
                        } else {
                            ("EPSG:4326", self.definition.as_str())
                        };
                        let proj = Proj::new_known_crs(from, to, None).map_err(|e| e.to_string())?;
                        if cache.len() == CACHE_SIZE {
                            cache.remove(0);
                        }
                        cache.push((self.definition.clone(), to_wgs84, proj));
                        cache.len() - 1
                    }
                };
                cache[index].2.convert(point).map_err(|e| e.to_string())
            })
        }
    }
}

#[cfg(test)]
#[cfg(feature = "proj")]
mod tests {
    use super::*;

    /// geo-core's reference points (PROJ 9.1.1 values): crs,lat,lon,x,y,given,check.
    const REFERENCE: &str = include_str!("../../geo-core/tests/data/crs-reference.csv");

    struct Row {
        code: String,
        lat: f64,
        lon: f64,
        x: f64,
        y: f64,
        given_lat_lon: bool,
        check: String,
    }

    fn rows() -> Vec<Row> {
        REFERENCE
            .lines()
            .skip(1)
            .map(|line| {
                let f: Vec<&str> = line.split(',').collect();
                let n = |i: usize| f[i].parse::<f64>().unwrap();
                Row {
                    code: f[0].to_string(),
                    lat: n(1),
                    lon: n(2),
                    x: n(3),
                    y: n(4),
                    given_lat_lon: f[5] == "latlon",
                    check: f[6].to_string(),
                }
            })
            .collect()
    }

    #[test]
    fn reprojector_is_send_and_sync() {
        fn check<T: Send + Sync + Clone>() {}
        check::<Reprojector>();
    }

    #[test]
    fn proj_agrees_with_the_built_in_systems_on_the_reference_points() {
        let rows = rows();
        assert!(rows.len() >= 130);
        let (mut worst_m, mut worst_deg) = (0.0f64, 0.0f64);
        for r in rows {
            let built_in = Reprojector::parse(&r.code).unwrap();
            assert!(matches!(built_in, Reprojector::BuiltIn(_)), "{}", r.code);
            let proj = Reprojector::with_proj(&r.code).unwrap();
            assert_eq!(proj.is_geographic(), built_in.is_geographic(), "{}", r.code);
            let wgs84 = LonLat::new(r.lon, r.lat);
            // The binding reproduces what cs2cs printed, in the direction cs2cs computed.
            if r.given_lat_lon {
                let (px, py) = proj.from_wgs84(wgs84).unwrap();
                let tol = if proj.is_geographic() { 1e-9 } else { 1e-4 };
                assert!((px - r.x).abs() <= tol && (py - r.y).abs() <= tol, "{} {wgs84:?}: ({px}, {py})", r.code);
            } else {
                let p = proj.to_wgs84(r.x, r.y).unwrap();
                assert!(
                    (p.lon - r.lon).abs() <= 1e-9 && (p.lat - r.lat).abs() <= 1e-9,
                    "{} ({}, {}): {p:?}",
                    r.code,
                    r.x,
                    r.y
                );
            }
            // The built-in systems agree with PROJ both ways, where PROJ agrees with itself.
            if r.check != "to_wgs84" {
                let (px, py) = proj.from_wgs84(wgs84).unwrap();
                let (bx, by) = built_in.from_wgs84(wgs84).unwrap();
                let d = (bx - px).abs().max((by - py).abs());
                let tol = if proj.is_geographic() { 1e-7 } else { 0.01 };
                assert!(d < tol, "{} {wgs84:?}: built-in ({bx}, {by}) vs PROJ ({px}, {py})", r.code);
                if !proj.is_geographic() {
                    worst_m = worst_m.max(d);
                }
            }
            if r.check != "from_wgs84" {
                let p = proj.to_wgs84(r.x, r.y).unwrap();
                let b = built_in.to_wgs84(r.x, r.y).unwrap();
                let d = (p.lon - b.lon).abs().max((p.lat - b.lat).abs());
                assert!(d < 1e-7, "{} ({}, {}): built-in {b:?} vs PROJ {p:?}", r.code, r.x, r.y);
                worst_deg = worst_deg.max(d);
            }
        }
        eprintln!("built-in vs PROJ: from_wgs84 worst {worst_m:.6} m, to_wgs84 worst {worst_deg:.2e} deg");
    }

    #[test]
    fn systems_that_are_not_built_in_go_to_proj() {
        // RGF93 / Lambert-93: its natural origin (lon 3, lat 46.5) is at (700000, 6600000).
        let lambert = Reprojector::parse("EPSG:2154").unwrap();
        assert!(matches!(lambert, Reprojector::Proj(_)) && !lambert.is_geographic());
        assert!(lambert.name().contains("Lambert-93"), "{}", lambert.name());
        let p = lambert.to_wgs84(700_000.0, 6_600_000.0).unwrap();
        assert!((p.lon - 3.0).abs() < 1e-9 && (p.lat - 46.5).abs() < 1e-9, "{p:?}");
        let (x, y) = lambert.from_wgs84(p).unwrap();
        assert!((x - 700_000.0).abs() < 1e-3 && (y - 6_600_000.0).abs() < 1e-3);
        // Another authority, a PROJ string with another projection, a geographic system.
        let web = Reprojector::parse("ESRI:102100").unwrap();
        let (x, _) = web.from_wgs84(LonLat::new(108.05, 12.68)).unwrap();
        assert!((x - 12_028_070.980_2).abs() < 0.01, "{x}");
        let lcc = Reprojector::parse("+proj=lcc +lat_1=10 +lat_2=20 +lat_0=15 +lon_0=106 +datum=WGS84").unwrap();
        let q = lcc.to_wgs84(0.0, 0.0).unwrap();
        assert!((q.lon - 106.0).abs() < 1e-9 && (q.lat - 15.0).abs() < 1e-9, "{q:?}");
        let nad83 = Reprojector::parse("EPSG:4269").unwrap();
        assert!(nad83.is_geographic());
        let q = nad83.to_wgs84(-100.0, 40.0).unwrap();
        assert!((q.lon + 100.0).abs() < 1e-4 && (q.lat - 40.0).abs() < 1e-4, "{q:?}");
        // The built-in parser's own errors stay when PROJ would not help, and PROJ's are named.
        assert!(matches!(Reprojector::parse("+proj=tmerc +k=abc"), Err(CrsError::Invalid { .. })));
        let err = Reprojector::parse("EPSG:999999").unwrap_err();
        assert!(matches!(err, CrsError::Proj { .. }) && err.to_string().contains("EPSG:999999"), "{err}");
    }

    #[test]
    fn proj_conversions_work_on_other_threads() {
        let lambert = Reprojector::parse("EPSG:2154").unwrap();
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let r = lambert.clone();
                std::thread::spawn(move || r.to_wgs84(700_000.0, 6_600_000.0).unwrap())
            })
            .collect();
        for h in handles {
            let p = h.join().unwrap();
            assert!((p.lon - 3.0).abs() < 1e-9);
        }
    }
}
