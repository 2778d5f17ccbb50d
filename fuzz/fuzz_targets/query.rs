//! Query strings, parsed by `api::params::Params` exactly as the routes read them:
//! bbox, point, radius, limits, zooms, counts and the attribute filter, with the
//! ranges the routes pass. Every value accepted is within the range asked for.
#![no_main]

use api::params::Params;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    let params = Params::parse(Some(raw));
    match params.bbox() {
        Ok(b) => {
            assert!(b.min_lon <= b.max_lon && b.min_lat <= b.max_lat, "{raw:?}: {b:?}");
            assert!(b.min_lon >= -180.0 && b.max_lon <= 180.0, "{raw:?}: {b:?}");
            assert!(b.min_lat >= -90.0 && b.max_lat <= 90.0, "{raw:?}: {b:?}");
        }
        Err(e) => names(&e, &["bbox"], raw),
    }
    match params.point() {
        Ok(p) => assert!(p.is_valid(), "{raw:?}: {p:?}"),
        Err(e) => names(&e, &["lon", "lat"], raw),
    }
    for (name, min, max) in [("radius_m", 0.0, api::MAX_RADIUS_M), ("lon", -180.0, 180.0), ("lat", -90.0, 90.0)] {
        match params.f64_in(name, min, max) {
            Ok(v) => assert!(v.is_finite() && (min..=max).contains(&v), "{raw:?}: {name} {v}"),
            Err(e) => names(&e, &[name], raw),
        }
    }
    let zoom = usize::from(api::MAX_TILE_ZOOM);
    for (name, default, min, max) in [
        ("limit", api::DEFAULT_LIMIT, 1, api::MAX_LIMIT),
        ("limit", 10, 1, 10_000),
        ("k", 1, 1, api::MAX_K),
        ("maxzoom", 18, 0, zoom),
        ("minzoom", 10, 0, zoom),
        ("count", 40, 1, 5_000),
    ] {
        match params.usize_in(name, default, min, max) {
            Ok(v) => assert!(
                (min..=max).contains(&v) || (v == default && params.get(name).is_none()),
                "{raw:?}: {name} {v} outside {min}..{max}"
            ),
            Err(e) => names(&e, &[name], raw),
        }
    }
    match params.tree_filter() {
        Ok(f) => {
            for year in [f.planted_from, f.planted_to].into_iter().flatten() {
                assert!((1900..=2200).contains(&year), "{raw:?}: year {year}");
            }
            if let (Some(from), Some(to)) = (f.planted_from, f.planted_to) {
                assert!(from <= to, "{raw:?}: planted {from}..{to}");
            }
            for text in [&f.planting_area_code, &f.commune, &f.district, &f.province, &f.text].into_iter().flatten() {
                assert!(!text.is_empty() && text.trim() == text, "{raw:?}: filter text {text:?}");
            }
        }
        Err(e) => names(&e, &Params::FILTER_NAMES, raw),
    }
});

/// A refusal is a 400 that starts with the name of one of `params`.
fn names(e: &api::AppError, params: &[&str], raw: &str) {
    let message = e.to_string();
    assert!(matches!(e, api::AppError::BadParameter { .. }), "{raw:?}: {message} is not a bad parameter");
    assert!(
        params.iter().any(|p| message.starts_with(&format!("{p}: "))),
        "{raw:?}: {message:?} does not start with one of {params:?}"
    );
}
