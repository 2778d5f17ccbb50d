//! Reading EPSG codes and PROJ strings into a [`Crs`].

use super::math::{Ellipsoid, Helmert, Mercator, TransverseMercator, wrap_degrees};
use super::{Crs, CrsError, DatumShift, Label, Projection, utm_central_meridian};

/// See [`Crs::parse`].
pub(super) fn parse(s: &str) -> Result<Crs, CrsError> {
    let text = s.trim();
    if text.is_empty() {
        Err(CrsError::Empty)
    } else if text.starts_with('+') || text.contains("proj=") {
        parse_proj(text)
    } else {
        parse_code(text)
    }
}

/// `EPSG:9218`, `9218`, `urn:ogc:def:crs:EPSG::9218`, `http://www.opengis.net/def/crs/EPSG/0/9218`,
/// `CRS84` and its OGC forms.
fn parse_code(text: &str) -> Result<Crs, CrsError> {
    let lower = text.to_ascii_lowercase();
    let ogc = ["urn:ogc:def:crs:", "http://www.opengis.net/def/crs/", "https://www.opengis.net/def/crs/"]
        .iter()
        .find_map(|prefix| lower.strip_prefix(prefix));
    let (authority, code) = match ogc {
        // "epsg::9218", "epsg:9.9.1:9218", "ogc:1.3:crs84", "epsg/0/9218"
        Some(rest) => {
            let authority = rest.split([':', '/']).next().unwrap_or_default();
            (Some(authority), rest.rsplit([':', '/']).next().unwrap_or_default())
        }
        None => match lower.split_once(':') {
            Some((authority, code)) => (Some(authority.trim()), code.trim()),
            None => (None, lower.as_str()),
        },
    };
    if code == "crs84" && matches!(authority, None | Some("ogc")) {
        return Ok(Crs::wgs84());
    }
    match authority {
        None | Some("epsg") => {}
        Some(_) => {
            return Err(CrsError::Unsupported {
                token: text.to_string(),
                reason: "only EPSG codes (EPSG:NNNN) and PROJ strings are understood".into(),
            });
        }
    }
    match code.parse::<u32>() {
        Ok(code) if code > 0 => Crs::from_epsg(code),
        _ if authority.is_none() => Err(CrsError::Unrecognized(text.to_string())),
        _ => {
            Err(CrsError::Invalid { token: text.to_string(), reason: "an EPSG code is a positive whole number".into() })
        }
    }
}

/// One `+key=value` or `+flag` of a PROJ string.
struct Param<'a> {
    token: &'a str,
    key: &'a str,
    value: Option<&'a str>,
    used: bool,
}

/// The parameters of a PROJ string; each is taken at most once and any left over is an error.
struct Params<'a> {
    items: Vec<Param<'a>>,
}

impl<'a> Params<'a> {
    fn new(text: &'a str) -> Result<Params<'a>, CrsError> {
        let mut items: Vec<Param<'a>> = Vec::new();
        for token in text.split_whitespace() {
            let body = token.strip_prefix('+').unwrap_or(token);
            let (key, value) = match body.split_once('=') {
                Some((key, value)) => (key, Some(value)),
                None => (body, None),
            };
            if key.is_empty() {
                return Err(invalid(token, "expected +name or +name=value"));
            }
            if key == "init" {
                return Err(CrsError::Unsupported {
                    token: token.into(),
                    reason: "init files are not read; give the EPSG code (EPSG:NNNN) instead".into(),
                });
            }
            if items.iter().any(|p| p.key == key) {
                return Err(invalid(token, "given twice"));
            }
            items.push(Param { token, key, value, used: false });
        }
        Ok(Params { items })
    }

    /// Takes `key`: its token and value, if present.
    fn take(&mut self, key: &str) -> Option<(&'a str, Option<&'a str>)> {
        let p = self.items.iter_mut().find(|p| p.key == key)?;
        p.used = true;
        Some((p.token, p.value))
    }

    /// Takes `key` with a text value.
    fn text(&mut self, key: &str) -> Result<Option<(&'a str, &'a str)>, CrsError> {
        match self.take(key) {
            None => Ok(None),
            Some((token, Some(value))) if !value.is_empty() => Ok(Some((token, value))),
            Some((token, _)) => Err(invalid(token, "needs a value")),
        }
    }

    /// Takes `key` with a finite number, checked by `ok` (which says what is expected).
    fn number(&mut self, key: &str, ok: (fn(f64) -> bool, &str)) -> Result<Option<f64>, CrsError> {
        let Some((token, value)) = self.text(key)? else { return Ok(None) };
        match value.parse::<f64>() {
            Ok(v) if v.is_finite() && ok.0(v) => Ok(Some(v)),
            Ok(_) => Err(invalid(token, ok.1)),
            Err(_) => Err(invalid(token, "not a number")),
        }
    }

    /// Takes the flag `key` (no value).
    fn flag(&mut self, key: &str) -> Result<bool, CrsError> {
        match self.take(key) {
            None => Ok(false),
            Some((_, None)) => Ok(true),
            Some((token, Some(_))) => Err(invalid(token, "takes no value")),
        }
    }

    /// Takes `key`, whose value (if present) must be one of `allowed` (any case).
    fn only(&mut self, key: &str, allowed: &[&str], reason: &str) -> Result<(), CrsError> {
        match self.take(key) {
            Some((token, value)) if !allowed.iter().any(|a| value.is_some_and(|v| v.eq_ignore_ascii_case(a))) => {
                Err(CrsError::Unsupported { token: token.into(), reason: reason.into() })
            }
            _ => Ok(()),
        }
    }

    /// Fails on the first parameter nothing took.
    fn finish(&self, projection: &str) -> Result<(), CrsError> {
        match self.items.iter().find(|p| !p.used) {
            Some(p) => Err(CrsError::Unsupported {
                token: p.token.into(),
                reason: format!("not a parameter of +proj={projection} that orchardmap understands"),
            }),
            None => Ok(()),
        }
    }
}

fn invalid(token: &str, reason: &str) -> CrsError {
    CrsError::Invalid { token: token.into(), reason: reason.into() }
}

const ANY: (fn(f64) -> bool, &str) = (|_| true, "");
const LATITUDE: (fn(f64) -> bool, &str) = (|v| (-90.0..=90.0).contains(&v), "a latitude must be within -90..90");
const POSITIVE: (fn(f64) -> bool, &str) = (|v| v > 0.0, "must be positive");

fn parse_proj(text: &str) -> Result<Crs, CrsError> {
    let mut p = Params::new(text)?;
    let Some((proj_token, proj)) = p.text("proj")? else {
        return Err(CrsError::Missing { param: "proj", context: "it names the projection".into() });
    };
    let ellipsoid = ellipsoid(&mut p)?;
    let shift = datum_shift(&mut p, ellipsoid)?;
    let (projection, units) = match proj {
        "tmerc" | "etmerc" => {
            let lat0 = p.number("lat_0", LATITUDE)?.unwrap_or(0.0);
            let lon0 = wrap_degrees(p.number("lon_0", ANY)?.unwrap_or(0.0));
            let k0 = scale_factor(&mut p)?.unwrap_or(1.0);
            let (x0, y0) = (p.number("x_0", ANY)?.unwrap_or(0.0), p.number("y_0", ANY)?.unwrap_or(0.0));
            (Projection::TransverseMercator(TransverseMercator::new(&ellipsoid, lon0, lat0, k0, x0, y0)), true)
        }
        "utm" => {
            let Some((token, zone)) = p.text("zone")? else {
                return Err(CrsError::Missing { param: "zone", context: "+proj=utm needs it".into() });
            };
            let zone = match zone.parse::<u32>() {
                Ok(z) if (1..=60).contains(&z) => z,
                _ => return Err(invalid(token, "a UTM zone is a whole number 1..60")),
            };
            let y0 = if p.flag("south")? { 10_000_000.0 } else { 0.0 };
            let tm = TransverseMercator::new(&ellipsoid, utm_central_meridian(zone), 0.0, 0.9996, 500_000.0, y0);
            (Projection::TransverseMercator(tm), true)
        }
        "merc" => {
            let lat_ts = p.number("lat_ts", (|v| v.abs() < 90.0, "must be within -90..90, exclusive"))?;
            let k0 = scale_factor(&mut p)?.unwrap_or(1.0);
            let lon0 = wrap_degrees(p.number("lon_0", ANY)?.unwrap_or(0.0));
            p.number("lat_0", (|v| v == 0.0, "Mercator's origin is on the equator: use +lat_ts"))?;
            let (x0, y0) = (p.number("x_0", ANY)?.unwrap_or(0.0), p.number("y_0", ANY)?.unwrap_or(0.0));
            (Projection::Mercator(Mercator::new(&ellipsoid, lon0, k0, lat_ts, x0, y0)), true)
        }
        "longlat" | "latlong" | "lonlat" | "latlon" => (Projection::LongLat, false),
        _ => {
            return Err(CrsError::Unsupported {
                token: proj_token.into(),
                reason: "projections built in: tmerc, utm, merc, longlat (build with the `proj` feature for others)"
                    .into(),
            });
        }
    };
    if units {
        p.only("units", &["m"], "only metres (+units=m) are supported")?;
        p.only("to_meter", &["1", "1.0"], "only metres are supported")?;
    }
    p.only("type", &["crs"], "only +type=crs is understood")?;
    p.only("axis", &["enu"], "only the east, north axis order (+axis=enu) is supported")?;
    p.only("pm", &["greenwich", "0"], "only the Greenwich prime meridian is supported")?;
    p.flag("no_defs")?;
    p.flag("wktext")?;
    p.finish(proj)?;
    let label = Label::Proj(text.split_whitespace().collect::<Vec<_>>().join(" "));
    Ok(Crs::new(label, ellipsoid, projection, shift))
}

/// `+k` or `+k_0` (not both).
fn scale_factor(p: &mut Params<'_>) -> Result<Option<f64>, CrsError> {
    let k = p.number("k", POSITIVE)?;
    let k_0 = p.number("k_0", POSITIVE)?;
    match (k, k_0) {
        (Some(_), Some(_)) => Err(invalid("+k_0", "give +k or +k_0, not both")),
        _ => Ok(k.or(k_0)),
    }
}

/// The ellipsoid from `+datum=WGS84`, `+ellps=`, `+R=` or `+a=` with `+b=`/`+rf=`/`+f=`; GRS80 when
/// none is given, as in PROJ.
fn ellipsoid(p: &mut Params<'_>) -> Result<Ellipsoid, CrsError> {
    let datum = p.text("datum")?;
    if let Some((token, value)) = datum {
        if !value.eq_ignore_ascii_case("wgs84") {
            return Err(CrsError::Unsupported {
                token: token.into(),
                reason: "only +datum=WGS84 is built in; give +ellps= and +towgs84= for another datum".into(),
            });
        }
    }
    let named = match p.text("ellps")? {
        None => None,
        Some((_, v)) if v.eq_ignore_ascii_case("wgs84") => Some(Ellipsoid::WGS84),
        Some((_, v)) if v.eq_ignore_ascii_case("grs80") => Some(Ellipsoid::GRS80),
        Some((token, _)) => {
            return Err(CrsError::Unsupported {
                token: token.into(),
                reason: "ellipsoids built in: WGS84, GRS80; give +a= and +rf= for another".into(),
            });
        }
    };
    let radius = p.number("R", POSITIVE)?;
    let a = p.number("a", POSITIVE)?;
    let b = p.number("b", POSITIVE)?;
    let rf = p.number("rf", (|v| v >= 1.0, "the inverse flattening must be at least 1"))?;
    let f = p.number("f", (|v| (0.0..1.0).contains(&v), "the flattening must be within 0..1"))?;
    if datum.is_some() && named.is_some_and(|e| e != Ellipsoid::WGS84) {
        return Err(invalid("+ellps", "conflicts with +datum=WGS84"));
    }
    let given = [datum.is_some() || named.is_some(), radius.is_some(), a.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(invalid("+a/+R", "give one of +datum, +ellps, +R or +a, not several"));
    }
    if a.is_none() && (b.is_some() || rf.is_some() || f.is_some()) {
        return Err(CrsError::Missing { param: "a", context: "+b, +rf and +f need it".into() });
    }
    if let Some(r) = radius {
        return Ok(Ellipsoid { a: r, f: 0.0 });
    }
    let Some(a) = a else {
        return Ok(if datum.is_some() { Ellipsoid::WGS84 } else { named.unwrap_or(Ellipsoid::GRS80) });
    };
    let f = match (b, rf, f) {
        (None, None, None) => 0.0,
        (Some(b), None, None) if b <= a => 1.0 - b / a,
        (Some(_), None, None) => return Err(invalid("+b", "the semi-minor axis cannot exceed +a")),
        (None, Some(rf), None) => 1.0 / rf,
        (None, None, Some(f)) => f,
        _ => return Err(invalid("+b/+rf/+f", "give one of +b, +rf or +f")),
    };
    // Spell WGS 84 and GRS 80 given by numbers as the named ones, for equality and output.
    Ok([Ellipsoid::WGS84, Ellipsoid::GRS80]
        .into_iter()
        .find(|e| e.a == a && (e.f - f).abs() < 1e-15)
        .unwrap_or(Ellipsoid { a, f }))
}

/// `+towgs84=` (3 or 7 values) or none; `+nadgrids=@null` is accepted as no shift.
fn datum_shift(p: &mut Params<'_>, ellipsoid: Ellipsoid) -> Result<Option<DatumShift>, CrsError> {
    p.only("nadgrids", &["@null"], "grid shift files are not supported (only +nadgrids=@null)")?;
    let Some((token, value)) = p.text("towgs84")? else { return Ok(None) };
    let numbers: Result<Vec<f64>, _> = value.split(',').map(|v| v.trim().parse::<f64>()).collect();
    let params = match numbers {
        Ok(v) if v.iter().any(|x| !x.is_finite()) => return Err(invalid(token, "values must be finite")),
        Ok(v) if v.len() == 3 => [v[0], v[1], v[2], 0.0, 0.0, 0.0, 0.0],
        Ok(v) if v.len() == 7 => [v[0], v[1], v[2], v[3], v[4], v[5], v[6]],
        Ok(v) => return Err(invalid(token, &format!("needs 3 or 7 comma-separated numbers, got {}", v.len()))),
        Err(_) => return Err(invalid(token, "needs 3 or 7 comma-separated numbers")),
    };
    if p.items.iter().any(|i| i.key == "datum") {
        return Err(invalid(token, "conflicts with +datum=WGS84"));
    }
    if p.items.iter().any(|i| i.key == "nadgrids") {
        return Err(invalid(token, "conflicts with +nadgrids"));
    }
    if ellipsoid == Ellipsoid::WGS84 && params.iter().all(|v| *v == 0.0) {
        return Ok(None);
    }
    Ok(Some(DatumShift { helmert: Helmert::new(params), regional: None }))
}
