//! Coordinate reference systems: survey coordinates to and from WGS 84, in pure Rust.
//!
//! A [`Crs`] comes from [`Crs::parse`], which takes
//! * an EPSG code: `EPSG:9218` (any case), a bare `9218`, `urn:ogc:def:crs:EPSG::9218` or
//!   `http://www.opengis.net/def/crs/EPSG/0/9218` (the forms GeoJSON and GML files carry), and
//!   `CRS84` / `OGC:CRS84` / `urn:ogc:def:crs:OGC:1.3:CRS84` for WGS 84 longitude/latitude;
//! * a PROJ string, the form `projinfo EPSG:NNNN -o PROJ` prints (see below).
//!
//! # Built in
//! | EPSG | CRS |
//! | --- | --- |
//! | 4326 | WGS 84 (longitude/latitude) |
//! | 3857 | WGS 84 / Pseudo-Mercator (spherical Web Mercator of map tiles) |
//! | 32601-32660, 32701-32760 | WGS 84 / UTM zones 1N-60N, 1S-60S (48N and 49N cover Vietnam) |
//! | 4756 | VN-2000 (longitude/latitude) |
//! | 3405, 3406 | VN-2000 / UTM zone 48N, 49N (scale 0.9996) |
//! | 9205-9218, 5896-5899 | VN-2000 / TM-3 provincial zones (scale 0.9999, false easting 500000) |
//!
//! The definitions are PROJ 9.1.1's (`projinfo EPSG:9218 -o PROJ`).
//!
//! # Axis order
//! Geographic systems (4326, 4756) take and give `x` = longitude, `y` = latitude in degrees, as
//! GeoJSON and GIS software do, whatever EPSG's official latitude-first order. Projected systems take
//! easting, northing in metres.
//!
//! # Method and accuracy
//! Transverse Mercator (TM-3, UTM) uses Krüger's series to sixth order with the exact conformal
//! latitude (Karney 2011), the method of PROJ's default `tmerc` (Poder/Engsager): nanometre-exact
//! within thousands of kilometres of the central meridian. VN-2000 lies on the WGS 84 ellipsoid and
//! is shifted to WGS 84 through geocentric coordinates with a 7-parameter Helmert transformation
//! (position-vector convention, as PROJ's `+towgs84`), taking the point on the source ellipsoid
//! (height 0), as PROJ does for 2D coordinates.
//!
//! [`Crs::to_wgs84`] agrees with PROJ 9.1.1 (`cs2cs EPSG:NNNN EPSG:4326`) to well under a millimetre.
//! [`Crs::from_wgs84`] is its exact inverse: it finds the point on the VN-2000 ellipsoid that
//! `to_wgs84` takes to the given position, so round trips close to rounding error. PROJ's own
//! WGS 84 → VN-2000 instead starts from height 0 on the WGS 84 ellipsoid, about 35 m off the VN-2000
//! one, which moves the result by up to about 2 mm; so `from_wgs84` agrees with `cs2cs EPSG:4326
//! EPSG:NNNN` within 2 mm. The tests check both directions against PROJ values to 1 cm / 1e-7 degree.
//!
//! ## Two VN-2000 transformations
//! EPSG has two VN-2000 → WGS 84 transformations, both said to be good to 1 m: (2) EPSG:6960 for all
//! of onshore Vietnam, and (1) EPSG:5194, used by Total in the Mekong delta blocks DBSCL 02 and 03
//! (latitude 9.35-11.04, longitude 104.24-107.11). For the systems whose area of use meets those
//! blocks (EPSG:4756, 3405, 5897, 5898, 5899, 9207, 9208, 9209, 9210) PROJ, given EPSG codes, uses (1)
//! for a point inside the blocks' bounding box and (2) elsewhere; the two differ by about 0.8 m. The
//! built-in systems do the same so that they agree with PROJ: from WGS 84 the test is on the WGS 84
//! position, towards WGS 84 on the input coordinates against the box's bounding rectangle in that
//! system, computed as PROJ computes it. As in PROJ, a point within about a kilometre outside the box
//! can therefore take transformation (2) one way and (1) the other. A PROJ string carries a single
//! `+towgs84` and always uses it.
//!
//! # PROJ strings
//! `+proj=` `tmerc` (or `etmerc`), `utm` (`+zone=`, `+south`), `merc` (`+lat_ts=` or `+k=`) and
//! `longlat` (or `latlong`, `lonlat`, `latlon`), with `+lat_0 +lon_0 +k/+k_0 +x_0 +y_0`,
//! `+ellps=WGS84|GRS80`, `+datum=WGS84`, `+a= +b=|+rf=|+f=`, `+R=`, `+towgs84=` (3 or 7 values),
//! `+nadgrids=@null`, `+units=m`, `+no_defs`, `+wktext`, `+type=crs`. Anything else is refused with
//! an error naming it rather than silently ignored. As in PROJ the ellipsoid defaults to GRS80, and a
//! system without `+towgs84` is taken to share the WGS 84 datum (no shift).
//!
//! ```
//! use geo_core::LonLat;
//! use geo_core::crs::Crs;
//!
//! let crs = Crs::parse("EPSG:9218").unwrap();
//! assert_eq!(crs.name(), "EPSG:9218 VN-2000 / TM-3 108-30");
//! // cs2cs EPSG:4326 EPSG:9218 (PROJ 9.1.1): lat 12.70, lon 108.30 -> 478084.7064 1404503.7499
//! let (x, y) = crs.from_wgs84(LonLat::new(108.30, 12.70)).unwrap();
//! assert!((x - 478_084.706_4).abs() < 0.01 && (y - 1_404_503.749_9).abs() < 0.01);
//! let p = crs.to_wgs84(x, y).unwrap();
//! assert!((p.lon - 108.30).abs() < 1e-9 && (p.lat - 12.70).abs() < 1e-9);
//! ```

mod math;
mod parse;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use self::math::{Ellipsoid, Helmert, Mercator, TransverseMercator, wrap_degrees};
use crate::LonLat;

/// The EPSG codes [`Crs::parse`] knows without PROJ, for messages.
const BUILT_IN_SUMMARY: &str = "4326, 3857, 32601-32660, 32701-32760, 4756, 3405, 3406, 5896-5899, 9205-9218";

/// Why a coordinate reference system could not be parsed or a coordinate not converted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CrsError {
    /// The text was empty.
    #[error("no coordinate reference system given")]
    Empty,
    /// The text is neither an EPSG code nor a PROJ string.
    #[error(
        "{0:?} is not a coordinate reference system: expected EPSG:NNNN or a PROJ string such as \
         \"+proj=utm +zone=48 +datum=WGS84\""
    )]
    Unrecognized(String),
    /// An EPSG code that is not built in.
    #[error(
        "EPSG:{0} is not built in (built in: EPSG:{BUILT_IN_SUMMARY}); give its PROJ string \
         (`projinfo EPSG:{0} -o PROJ`) or build orchardmap with the `proj` feature"
    )]
    NotBuiltIn(u32),
    /// A part of the text names something this crate does not implement.
    #[error("{token} is not supported: {reason}")]
    Unsupported {
        /// The offending part as written, e.g. `+proj=lcc`.
        token: String,
        /// What is supported instead.
        reason: String,
    },
    /// A part of the text has a malformed or out-of-range value.
    #[error("{token} is invalid: {reason}")]
    Invalid {
        /// The offending part as written, e.g. `+k=abc` or `EPSG:12x`.
        token: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A PROJ string lacks a parameter it needs.
    #[error("the PROJ string lacks +{param} ({context})")]
    Missing {
        /// The missing parameter, without `+`.
        param: &'static str,
        /// Why it is needed, e.g. `+proj=utm needs it`.
        context: String,
    },
    /// A coordinate that cannot be converted (not finite, out of range, or outside the projection).
    #[error("{input} cannot be converted with {crs}: {reason}")]
    OutOfDomain {
        /// The system's [`Crs::name`].
        crs: String,
        /// The coordinate as given, e.g. `x 478084.7, y 1404503.7` or `lon 108.3, lat 95`.
        input: String,
        /// Why.
        reason: String,
    },
    /// A system outside the built-in ones that PROJ itself refused (with the `proj` feature).
    #[error("PROJ cannot use {definition:?}: {reason}")]
    Proj {
        /// The definition as given.
        definition: String,
        /// PROJ's message.
        reason: String,
    },
}

/// A coordinate reference system that converts to and from WGS 84 (see the [module docs](self)).
///
/// Two values are equal when they were made from the same code or the same PROJ string (up to
/// spacing); an EPSG code and its PROJ string are different values with the same results (except
/// for the Mekong delta rule of the module docs, which only EPSG codes carry).
///
/// Cloning is cheap (the definition is shared).
#[derive(Debug, Clone, PartialEq)]
pub struct Crs {
    inner: Arc<Inner>,
}

#[derive(Debug, PartialEq)]
struct Inner {
    label: Label,
    ellipsoid: Ellipsoid,
    projection: Projection,
    shift: Option<DatumShift>,
}

#[derive(Debug, Clone, PartialEq)]
enum Label {
    Epsg { code: u32, name: String },
    Proj(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Projection {
    LongLat,
    TransverseMercator(TransverseMercator),
    Mercator(Mercator),
}

impl Projection {
    /// Longitude, latitude (degrees, on the system's own datum) to x, y.
    fn forward(&self, lon: f64, lat: f64) -> Result<(f64, f64), &'static str> {
        match self {
            Projection::LongLat => Ok((lon, lat)),
            Projection::TransverseMercator(tm) => tm.forward(lon, lat),
            Projection::Mercator(m) => m.forward(lon, lat),
        }
    }

    /// x, y to longitude, latitude (degrees, on the system's own datum).
    fn inverse(&self, x: f64, y: f64) -> Result<(f64, f64), &'static str> {
        match self {
            Projection::LongLat => {
                if !(-90.0..=90.0).contains(&y) {
                    Err("latitude (y) must be within -90..90")
                } else if !(-180.0..=180.0).contains(&x) {
                    Err("longitude (x) must be within -180..180")
                } else {
                    Ok((x, y))
                }
            }
            Projection::TransverseMercator(tm) => tm.inverse(x, y),
            Projection::Mercator(m) => Ok(m.inverse(x, y)),
        }
    }
}

/// How a system's datum goes to WGS 84.
#[derive(Debug, Clone, PartialEq)]
struct DatumShift {
    helmert: Helmert,
    /// A second transformation used inside an area instead (EPSG codes only).
    regional: Option<Regional>,
}

#[derive(Debug, Clone, PartialEq)]
struct Regional {
    helmert: Helmert,
    /// west, south, east, north of the area in WGS 84 degrees: where `from_wgs84` uses it.
    wgs84_box: [f64; 4],
    /// min x, min y, max x, max y of that area in the system's coordinates: where `to_wgs84` uses it.
    source_box: [f64; 4],
}

impl DatumShift {
    fn for_source(&self, x: f64, y: f64) -> &Helmert {
        match &self.regional {
            Some(r) if inside(&r.source_box, x, y) => &r.helmert,
            _ => &self.helmert,
        }
    }

    fn for_wgs84(&self, p: LonLat) -> &Helmert {
        match &self.regional {
            Some(r) if inside(&r.wgs84_box, p.lon, p.lat) => &r.helmert,
            _ => &self.helmert,
        }
    }
}

fn inside(b: &[f64; 4], x: f64, y: f64) -> bool {
    x >= b[0] && y >= b[1] && x <= b[2] && y <= b[3]
}

/// VN-2000 to WGS 84 (2), EPSG:6960: all of onshore Vietnam.
const VN2000_TOWGS84: [f64; 7] =
    [-191.904_414_29, -39.303_182_79, -111.450_328_35, 0.009_288_36, -0.019_754_79, 0.004_273_72, 0.252_906_278];
/// VN-2000 to WGS 84 (1), EPSG:5194 (coordinate frame, rotations negated here to position vector).
const VN2000_TOWGS84_DBSCL: [f64; 7] = [-192.873, -39.382, -111.202, -0.00205, -0.0005, 0.00335, 0.0188];
/// EPSG:5194's area: Vietnam - Mekong delta blocks DBSCL 02 and 03 (west, south, east, north).
const DBSCL_BOX: [f64; 4] = [104.24, 9.35, 107.11, 11.04];

/// The VN-2000 / TM-3 zones: EPSG code, central meridian, name, whether PROJ also considers
/// EPSG:5194 for it (its area of use meets the DBSCL blocks).
const TM3_ZONES: [(u32, f64, &str, bool); 18] = [
    (9205, 103.0, "TM-3 103-00", false),
    (9206, 104.0, "TM-3 104-00", false),
    (9207, 104.5, "TM-3 104-30", true),
    (9208, 104.75, "TM-3 104-45", true),
    (9209, 105.5, "TM-3 105-30", true),
    (9210, 105.75, "TM-3 105-45", true),
    (9211, 106.0, "TM-3 106-00", false),
    (9212, 106.25, "TM-3 106-15", false),
    (9213, 106.5, "TM-3 106-30", false),
    (9214, 107.0, "TM-3 107-00", false),
    (9215, 107.25, "TM-3 107-15", false),
    (9216, 107.5, "TM-3 107-30", false),
    (9217, 108.25, "TM-3 108-15", false),
    (9218, 108.5, "TM-3 108-30", false),
    (5896, 102.0, "TM-3 zone 481", false),
    (5897, 105.0, "TM-3 zone 482", true),
    (5898, 108.0, "TM-3 zone 491", true),
    (5899, 107.75, "TM-3 107-45", true),
];

impl Crs {
    fn new(label: Label, ellipsoid: Ellipsoid, projection: Projection, shift: Option<DatumShift>) -> Crs {
        Crs { inner: Arc::new(Inner { label, ellipsoid, projection, shift }) }
    }

    /// Parses an EPSG code or a PROJ string (forms in the [module docs](self)).
    ///
    /// # Errors
    /// [`CrsError`] naming the part it cannot use: an EPSG code that is not built in, an unknown or
    /// unsupported PROJ parameter or value, a missing parameter.
    pub fn parse(s: &str) -> Result<Crs, CrsError> {
        parse::parse(s)
    }

    /// The built-in system with this EPSG code.
    ///
    /// # Errors
    /// [`CrsError::NotBuiltIn`] for any other code.
    pub fn from_epsg(code: u32) -> Result<Crs, CrsError> {
        let wgs84 = Ellipsoid::WGS84;
        let epsg = |name: String, projection, shift| Crs::new(Label::Epsg { code, name }, wgs84, projection, shift);
        let tm = |lon0: f64, k0: f64, y0: f64| {
            Projection::TransverseMercator(TransverseMercator::new(&wgs84, lon0, 0.0, k0, 500_000.0, y0))
        };
        let crs = match code {
            4326 => epsg("WGS 84".into(), Projection::LongLat, None),
            3857 => {
                let sphere = Ellipsoid { a: 6_378_137.0, f: 0.0 };
                let merc = Mercator::new(&sphere, 0.0, 1.0, Some(0.0), 0.0, 0.0);
                let name = "WGS 84 / Pseudo-Mercator".into();
                Crs::new(Label::Epsg { code, name }, sphere, Projection::Mercator(merc), None)
            }
            32601..=32660 | 32701..=32760 => {
                let zone = code % 100;
                let (hemisphere, y0) = if code < 32700 { ('N', 0.0) } else { ('S', 10_000_000.0) };
                let name = format!("WGS 84 / UTM zone {zone}{hemisphere}");
                epsg(name, tm(utm_central_meridian(zone), 0.9996, y0), None)
            }
            4756 => vn2000(code, "VN-2000".into(), Projection::LongLat, true),
            3405 => vn2000(code, "VN-2000 / UTM zone 48N".into(), tm(105.0, 0.9996, 0.0), true),
            3406 => vn2000(code, "VN-2000 / UTM zone 49N".into(), tm(111.0, 0.9996, 0.0), false),
            _ => match TM3_ZONES.iter().find(|z| z.0 == code) {
                Some(&(_, lon0, zone, dbscl)) => {
                    vn2000(code, format!("VN-2000 / {zone}"), tm(lon0, 0.9999, 0.0), dbscl)
                }
                None => return Err(CrsError::NotBuiltIn(code)),
            },
        };
        Ok(crs)
    }

    /// Every EPSG code [`Crs::from_epsg`] accepts, ascending.
    pub fn built_in_codes() -> Vec<u32> {
        let mut codes = vec![4326, 3857, 4756, 3405, 3406];
        codes.extend(TM3_ZONES.iter().map(|z| z.0));
        codes.extend((32601..=32660).chain(32701..=32760));
        codes.sort_unstable();
        codes
    }

    /// WGS 84 longitude/latitude (EPSG:4326), the system of [`LonLat`].
    pub fn wgs84() -> Crs {
        Crs::new(Label::Epsg { code: 4326, name: "WGS 84".into() }, Ellipsoid::WGS84, Projection::LongLat, None)
    }

    /// True for longitude/latitude systems (x = longitude, y = latitude in degrees).
    pub fn is_geographic(&self) -> bool {
        matches!(self.inner.projection, Projection::LongLat)
    }

    /// True when conversion to WGS 84 changes nothing (longitude/latitude on the WGS 84 datum).
    pub fn is_wgs84(&self) -> bool {
        self.is_geographic() && self.inner.shift.is_none()
    }

    /// The EPSG code, for a system made from one.
    pub fn epsg(&self) -> Option<u32> {
        match self.inner.label {
            Label::Epsg { code, .. } => Some(code),
            Label::Proj(_) => None,
        }
    }

    /// A name for messages: `EPSG:9218 VN-2000 / TM-3 108-30`, or the PROJ string as given.
    pub fn name(&self) -> String {
        match &self.inner.label {
            Label::Epsg { code, name } => format!("EPSG:{code} {name}"),
            Label::Proj(s) => s.clone(),
        }
    }

    /// The system as a PROJ string, e.g. for `cs2cs`. For EPSG codes with the Mekong delta rule of
    /// the module docs, the string carries only the onshore transformation.
    pub fn to_proj_string(&self) -> String {
        let mut s = match &self.inner.projection {
            Projection::LongLat => "+proj=longlat".to_string(),
            Projection::TransverseMercator(tm) => {
                format!("+proj=tmerc +lat_0={} +lon_0={} +k={} +x_0={} +y_0={}", tm.lat0, tm.lon0, tm.k0, tm.x0, tm.y0)
            }
            Projection::Mercator(m) => {
                let scale = match m.lat_ts {
                    Some(lat) => format!("+lat_ts={lat}"),
                    None => format!("+k={}", m.k0),
                };
                format!("+proj=merc {scale} +lon_0={} +x_0={} +y_0={}", m.lon0, m.x0, m.y0)
            }
        };
        let e = self.inner.ellipsoid;
        match &self.inner.shift {
            None if e == Ellipsoid::WGS84 => s.push_str(" +datum=WGS84"),
            _ if e == Ellipsoid::WGS84 => s.push_str(" +ellps=WGS84"),
            _ if e == Ellipsoid::GRS80 => s.push_str(" +ellps=GRS80"),
            _ if e.f == 0.0 => s.push_str(&format!(" +a={} +b={}", e.a, e.a)),
            _ => s.push_str(&format!(" +a={} +rf={}", e.a, 1.0 / e.f)),
        }
        if let Some(shift) = &self.inner.shift {
            let p = shift.helmert.params();
            let n = if shift.helmert.is_translation() { 3 } else { 7 };
            let values: Vec<String> = p[..n].iter().map(f64::to_string).collect();
            s.push_str(&format!(" +towgs84={}", values.join(",")));
        }
        if !self.is_geographic() {
            s.push_str(" +units=m");
        }
        s.push_str(" +no_defs +type=crs");
        s
    }

    /// Converts `x`, `y` in this system (metres; longitude, latitude degrees when geographic) to WGS 84.
    ///
    /// # Errors
    /// [`CrsError::OutOfDomain`] for a value that is not finite, a latitude or longitude out of range,
    /// or a point too far from a transverse Mercator system's central meridian.
    pub fn to_wgs84(&self, x: f64, y: f64) -> Result<LonLat, CrsError> {
        let fail = |reason: &str| {
            let input = if self.is_geographic() { format!("lon {x}, lat {y}") } else { format!("x {x}, y {y}") };
            CrsError::OutOfDomain { crs: self.name(), input, reason: reason.to_string() }
        };
        if !x.is_finite() || !y.is_finite() {
            return Err(fail("not a finite number"));
        }
        let (lon, lat) = self.inner.projection.inverse(x, y).map_err(fail)?;
        let p = match &self.inner.shift {
            None => LonLat::new(lon, lat),
            Some(shift) => {
                let xyz = shift.for_source(x, y).forward(self.inner.ellipsoid.geocentric(lon, lat, 0.0));
                let (lon, lat) = Ellipsoid::WGS84.lon_lat(xyz);
                LonLat::new(wrap_degrees(lon), lat)
            }
        };
        if p.is_valid() { Ok(p) } else { Err(fail("the result is not a valid position")) }
    }

    /// Converts a WGS 84 position to this system: `(x, y)` in metres, or (longitude, latitude) in
    /// degrees when geographic.
    ///
    /// # Errors
    /// [`CrsError::OutOfDomain`] for a position that is not finite or out of range, a pole in
    /// Mercator, or a point too far from a transverse Mercator system's central meridian.
    pub fn from_wgs84(&self, p: LonLat) -> Result<(f64, f64), CrsError> {
        let fail = |reason: &str| CrsError::OutOfDomain {
            crs: self.name(),
            input: format!("lon {}, lat {}", p.lon, p.lat),
            reason: reason.to_string(),
        };
        if !p.is_valid() {
            return Err(fail("not a valid WGS 84 position (longitude -180..180, latitude -90..90)"));
        }
        let (lon, lat) = match &self.inner.shift {
            None => (p.lon, p.lat),
            Some(shift) => {
                let helmert = shift.for_wgs84(p);
                let wgs84 = Ellipsoid::WGS84;
                // The WGS 84 height of the point that lies on this datum's ellipsoid: start from
                // height 0, then once more from the height that puts the result at 0.
                let (_, _, h) = self.inner.ellipsoid.geodetic(helmert.inverse(wgs84.geocentric(p.lon, p.lat, 0.0)));
                let (lon, lat) = self.inner.ellipsoid.lon_lat(helmert.inverse(wgs84.geocentric(p.lon, p.lat, -h)));
                (wrap_degrees(lon), lat)
            }
        };
        let (x, y) = self.inner.projection.forward(lon, lat).map_err(fail)?;
        if x.is_finite() && y.is_finite() { Ok((x, y)) } else { Err(fail("the result is not finite")) }
    }
}

/// Central meridian of UTM zone `zone` (1..=60), degrees.
fn utm_central_meridian(zone: u32) -> f64 {
    f64::from(zone) * 6.0 - 183.0
}

/// A VN-2000 system; `dbscl` adds the Mekong delta transformation as PROJ applies it to EPSG codes.
fn vn2000(code: u32, name: String, projection: Projection, dbscl: bool) -> Crs {
    let regional = dbscl.then(|| Regional {
        helmert: Helmert::new(VN2000_TOWGS84_DBSCL),
        wgs84_box: DBSCL_BOX,
        source_box: bounding_rectangle(&projection, DBSCL_BOX),
    });
    let shift = DatumShift { helmert: Helmert::new(VN2000_TOWGS84), regional };
    Crs::new(Label::Epsg { code, name }, Ellipsoid::WGS84, projection, Some(shift))
}

/// The rectangle in a system's coordinates that PROJ tests a point against to pick a transformation:
/// the min/max of 21 points along each edge of the area's longitude/latitude box, projected without
/// a datum shift (PROJ's `reproject_bbox`).
fn bounding_rectangle(projection: &Projection, [west, south, east, north]: [f64; 4]) -> [f64; 4] {
    const STEPS: u32 = 20;
    let mut r = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
    let (dlon, dlat) = ((east - west) / f64::from(STEPS), (north - south) / f64::from(STEPS));
    for j in 0..=STEPS {
        let (lon, lat) = (west + f64::from(j) * dlon, south + f64::from(j) * dlat);
        for (lon, lat) in [(lon, south), (lon, north), (west, lat), (east, lat)] {
            if let Ok((x, y)) = projection.forward(lon, lat) {
                r = [r[0].min(x), r[1].min(y), r[2].max(x), r[3].max(y)];
            }
        }
    }
    r
}

impl fmt::Display for Crs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.label {
            Label::Epsg { code, name } => write!(f, "EPSG:{code} {name}"),
            Label::Proj(s) => f.write_str(s),
        }
    }
}

impl FromStr for Crs {
    type Err = CrsError;

    fn from_str(s: &str) -> Result<Crs, CrsError> {
        Crs::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_codes_all_construct() {
        let codes = Crs::built_in_codes();
        assert_eq!(codes.len(), 5 + 18 + 120);
        for code in codes {
            let crs = Crs::from_epsg(code).unwrap();
            assert_eq!(crs.epsg(), Some(code));
            assert!(crs.name().starts_with(&format!("EPSG:{code} ")), "{}", crs.name());
        }
        assert_eq!(Crs::from_epsg(2154), Err(CrsError::NotBuiltIn(2154)));
    }

    #[test]
    fn wgs84_is_epsg_4326() {
        assert_eq!(Crs::wgs84(), Crs::from_epsg(4326).unwrap());
        assert!(Crs::wgs84().is_wgs84() && Crs::wgs84().is_geographic());
        let vn = Crs::from_epsg(4756).unwrap();
        assert!(vn.is_geographic() && !vn.is_wgs84());
        assert!(!Crs::from_epsg(3857).unwrap().is_geographic());
    }

    #[test]
    fn names_follow_epsg() {
        let name = |code| Crs::from_epsg(code).unwrap().name();
        assert_eq!(name(9218), "EPSG:9218 VN-2000 / TM-3 108-30");
        assert_eq!(name(5897), "EPSG:5897 VN-2000 / TM-3 zone 482");
        assert_eq!(name(3405), "EPSG:3405 VN-2000 / UTM zone 48N");
        assert_eq!(name(32649), "EPSG:32649 WGS 84 / UTM zone 49N");
        assert_eq!(name(32756), "EPSG:32756 WGS 84 / UTM zone 56S");
        assert_eq!(name(3857), "EPSG:3857 WGS 84 / Pseudo-Mercator");
        assert_eq!(Crs::from_epsg(9218).unwrap().to_string(), name(9218));
    }

    #[test]
    fn proj_strings_match_projinfo() {
        // projinfo EPSG:NNNN -o PROJ (PROJ 9.1.1), up to the order and spelling of equivalent parameters.
        assert_eq!(
            Crs::from_epsg(9218).unwrap().to_proj_string(),
            "+proj=tmerc +lat_0=0 +lon_0=108.5 +k=0.9999 +x_0=500000 +y_0=0 +ellps=WGS84 \
             +towgs84=-191.90441429,-39.30318279,-111.45032835,0.00928836,-0.01975479,0.00427372,0.252906278 \
             +units=m +no_defs +type=crs"
        );
        assert_eq!(
            Crs::from_epsg(32648).unwrap().to_proj_string(),
            "+proj=tmerc +lat_0=0 +lon_0=105 +k=0.9996 +x_0=500000 +y_0=0 +datum=WGS84 +units=m +no_defs +type=crs"
        );
        assert_eq!(
            Crs::from_epsg(3857).unwrap().to_proj_string(),
            "+proj=merc +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +a=6378137 +b=6378137 +units=m +no_defs +type=crs"
        );
        assert_eq!(Crs::wgs84().to_proj_string(), "+proj=longlat +datum=WGS84 +no_defs +type=crs");
        // Every built-in system's PROJ string parses back to the same conversion.
        for code in Crs::built_in_codes() {
            let crs = Crs::from_epsg(code).unwrap();
            let again = Crs::parse(&crs.to_proj_string()).unwrap();
            assert_eq!(again.inner.projection, crs.inner.projection, "EPSG:{code}");
            assert_eq!(again.inner.ellipsoid, crs.inner.ellipsoid, "EPSG:{code}");
            assert_eq!(
                again.inner.shift.as_ref().map(|s| s.helmert),
                crs.inner.shift.as_ref().map(|s| s.helmert),
                "EPSG:{code}"
            );
        }
    }

    #[test]
    fn dbscl_rectangle_contains_the_box_image() {
        let crs = Crs::from_epsg(3405).unwrap();
        let r = crs.inner.shift.as_ref().and_then(|s| s.regional.as_ref()).unwrap();
        let (x, y) = crs.inner.projection.forward(106.0, 10.0).unwrap();
        assert!(inside(&r.source_box, x, y));
        let (x, y) = crs.inner.projection.forward(108.0, 10.0).unwrap();
        assert!(!inside(&r.source_box, x, y));
        // Systems whose area of use misses the blocks have no regional transformation.
        assert!(Crs::from_epsg(9218).unwrap().inner.shift.as_ref().unwrap().regional.is_none());
    }

    #[test]
    fn out_of_domain_errors_name_the_input() {
        let crs = Crs::from_epsg(9218).unwrap();
        let err = crs.to_wgs84(f64::NAN, 1.0).unwrap_err();
        assert!(err.to_string().contains("EPSG:9218") && err.to_string().contains("x NaN"), "{err}");
        let err = crs.from_wgs84(LonLat::new(108.0, 95.0)).unwrap_err();
        assert!(err.to_string().contains("lat 95"), "{err}");
        let err = crs.from_wgs84(LonLat::new(-71.5, 10.0)).unwrap_err();
        assert!(err.to_string().contains("central meridian"), "{err}");
        let err = Crs::wgs84().to_wgs84(1_404_503.0, 478_084.0).unwrap_err();
        assert!(err.to_string().contains("latitude (y) must be within -90..90"), "{err}");
        let err = Crs::from_epsg(3857).unwrap().from_wgs84(LonLat::new(0.0, 90.0)).unwrap_err();
        assert!(err.to_string().contains("pole"), "{err}");
    }
}
