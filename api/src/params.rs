//! Query-string parsing whose every failure names the parameter and value.

use std::collections::HashMap;

use geo_core::{BBox, LonLat};

use crate::error::{AppError, Result};

/// The query string of a request, decoded.
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Decodes a raw query string (`None` = no query).
    pub fn parse(raw: Option<&str>) -> Self {
        Self(raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default())
    }

    /// The raw value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn number(&self, name: &'static str) -> Result<Option<f64>> {
        match self.get(name) {
            None => Ok(None),
            Some(raw) => raw
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map(Some)
                .ok_or_else(|| AppError::bad(name, format!("{raw:?} is not a number"))),
        }
    }

    /// A required number within `min..=max`.
    pub fn f64_in(&self, name: &'static str, min: f64, max: f64) -> Result<f64> {
        let v = self.number(name)?.ok_or_else(|| AppError::bad(name, "is required"))?;
        if v < min || v > max {
            return Err(AppError::bad(name, format!("{v} is outside {min}..{max}")));
        }
        Ok(v)
    }

    /// An optional whole number within `min..=max`, `default` when absent.
    pub fn usize_in(&self, name: &'static str, default: usize, min: usize, max: usize) -> Result<usize> {
        let Some(raw) = self.get(name) else { return Ok(default) };
        let v: usize = raw.trim().parse().map_err(|_| AppError::bad(name, format!("{raw:?} is not a whole number")))?;
        if v < min || v > max {
            return Err(AppError::bad(name, format!("{v} is outside {min}..{max}")));
        }
        Ok(v)
    }

    /// The required `lon` and `lat` pair.
    pub fn point(&self) -> Result<LonLat> {
        let lon = self.f64_in("lon", -180.0, 180.0)?;
        let lat = self.f64_in("lat", -90.0, 90.0)?;
        Ok(LonLat::new(lon, lat))
    }

    /// The required `bbox` (`minLon,minLat,maxLon,maxLat`).
    pub fn bbox(&self) -> Result<BBox> {
        let raw = self.get("bbox").ok_or_else(|| AppError::bad("bbox", "is required (minLon,minLat,maxLon,maxLat)"))?;
        raw.parse::<BBox>().map_err(|e| match e {
            geo_core::Error::Parse { value, reason, .. } => AppError::bad("bbox", format!("{value:?} {reason}")),
            other => AppError::bad("bbox", other.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_parameter_and_value() {
        let p = Params::parse(Some("lat=95&lon=108&k=abc"));
        let e = p.point().unwrap_err().to_string();
        assert_eq!(e, "lat: 95 is outside -90..90");
        let e = p.usize_in("k", 10, 1, 100).unwrap_err().to_string();
        assert_eq!(e, "k: \"abc\" is not a whole number");
        let e = Params::parse(None).point().unwrap_err().to_string();
        assert_eq!(e, "lon: is required");
        let e = Params::parse(Some("bbox=1,2,3")).bbox().unwrap_err().to_string();
        assert!(e.starts_with("bbox: \"1,2,3\""), "{e}");
    }
}
