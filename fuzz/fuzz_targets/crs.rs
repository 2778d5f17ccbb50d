//! The CRS parser: `--crs` values, GeoJSON `crs` members, PROJ strings.
//!
//! Input: the definition, then optionally a NUL byte and little-endian `f64`s
//! used as coordinates. Every parsed system converts those numbers (the finite
//! ones) and a fixed set of positions to and from WGS 84 through both
//! `geo_core::crs::Crs` and the importer's `Reprojector` (what the service uses).
#![no_main]

use geo_core::LonLat;
use geo_core::crs::Crs;
use importer::Reprojector;
use libfuzzer_sys::fuzz_target;

/// Positions tried with every system: Vietnam, the edges of the world, the poles, far out.
const FIXED: [(f64, f64); 10] = [
    (108.3, 12.7),
    (106.7, 10.8),
    (105.8, 21.0),
    (478_084.7064, 1_404_503.7499),
    (0.0, 0.0),
    (-180.0, -90.0),
    (180.0, 90.0),
    (179.999_999, 85.051_128_779_806_59),
    (1e300, -1e300),
    (-0.0, 5e-324),
];

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let Ok(text) = std::str::from_utf8(&data[..split]) else { return };
    let numbers: Vec<f64> = data
        .get(split + 1..)
        .unwrap_or_default()
        .chunks_exact(8)
        .take(16)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .filter(|v| v.is_finite())
        .collect();
    let mut points: Vec<(f64, f64)> = FIXED.to_vec();
    points.extend(numbers.chunks_exact(2).map(|p| (p[0], p[1])));

    match Crs::parse(text) {
        Ok(crs) => check_crs(&crs, &points),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    // The importer's wrapper, as `--crs` and the GeoJSON `crs` member reach it.
    match Reprojector::parse(text) {
        Ok(r) => {
            assert!(!r.name().is_empty());
            let _ = (r.is_geographic(), r.is_wgs84());
            for &(x, y) in &points {
                if let Ok(p) = r.to_wgs84(x, y) {
                    assert!(p.is_valid(), "{}: ({x}, {y}) -> {p:?}", r.name());
                }
                if let Ok((x, y)) = r.from_wgs84(LonLat::new(x, y)) {
                    assert!(x.is_finite() && y.is_finite(), "{}: not finite", r.name());
                }
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});

fn check_crs(crs: &Crs, points: &[(f64, f64)]) {
    let name = crs.name();
    assert!(!name.is_empty());
    let _ = (crs.to_string(), crs.epsg(), crs.is_geographic(), crs.is_wgs84());
    if let Some(code) = crs.epsg() {
        assert_eq!(Crs::from_epsg(code).as_ref(), Ok(crs), "EPSG:{code}");
    }
    // The PROJ string the system gives (for cs2cs and for messages) must read back.
    let proj = crs.to_proj_string();
    let again = Crs::parse(&proj).unwrap_or_else(|e| panic!("{name}: its PROJ string {proj:?} does not parse: {e}"));
    assert_eq!(again.is_geographic(), crs.is_geographic(), "{proj}");

    for &(x, y) in points {
        match crs.to_wgs84(x, y) {
            Ok(p) => assert!(p.is_valid(), "{name}: ({x}, {y}) -> {p:?}"),
            Err(e) => assert!(e.to_string().contains(&name), "{name}: error {e} does not name the system"),
        }
        match crs.from_wgs84(LonLat::new(x, y)) {
            Ok((u, v)) => assert!(u.is_finite() && v.is_finite(), "{name}: ({x}, {y}) -> ({u}, {v})"),
            Err(e) => assert!(e.to_string().contains(&name), "{name}: error {e} does not name the system"),
        }
    }
}
