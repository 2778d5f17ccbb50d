//! Query-string parsing whose every failure names the parameter and value.

use std::collections::HashMap;

use geo_core::{BBox, Cultivar, Health, LonLat, OrchardId, TreeFilter};

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

    /// Comma-separated values of a parameter (absent = empty; repeated values
    /// are not supported by the query map: the last one wins).
    fn list(&self, name: &str) -> Vec<&str> {
        self.get(name).map(|raw| raw.split(',').map(str::trim).filter(|v| !v.is_empty()).collect()).unwrap_or_default()
    }

    fn text(&self, name: &str) -> Option<String> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
    }

    fn year(&self, name: &'static str) -> Result<Option<i32>> {
        let Some(raw) = self.get(name).map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
        match raw.parse::<i32>() {
            Ok(y) if (1900..=2200).contains(&y) => Ok(Some(y)),
            _ => Err(AppError::bad(name, format!("{raw:?} is not a year (1900..2200)"))),
        }
    }

    /// The attribute filter shared by search, tiles, OGC items and exports:
    /// `cultivar` and `health` (comma-separated, any of), `planted_from`,
    /// `planted_to` (years), `orchard` (comma-separated ids),
    /// `planting_area_code`, `commune`, `district`, `province`,
    /// `updated_since` (RFC 3339), `q` (text in the tag code or orchard name).
    pub fn tree_filter(&self) -> Result<TreeFilter> {
        let mut health = Vec::new();
        for h in self.list("health") {
            health.push(
                h.parse::<Health>()
                    .map_err(|_| AppError::bad("health", format!("{h:?} is not one of good, fair, poor, dead")))?,
            );
        }
        let mut orchards = Vec::new();
        for o in self.list("orchard") {
            orchards
                .push(OrchardId::new(o).map_err(|_| AppError::bad("orchard", format!("{o:?} is not an orchard id")))?);
        }
        let updated_since = match self.get("updated_since").map(str::trim).filter(|v| !v.is_empty()) {
            None => None,
            Some(raw) => Some(
                chrono::DateTime::parse_from_rfc3339(raw)
                    .map_err(|_| AppError::bad("updated_since", format!("{raw:?} is not an RFC 3339 time")))?
                    .with_timezone(&chrono::Utc),
            ),
        };
        let filter = TreeFilter {
            cultivars: self.list("cultivar").into_iter().map(Cultivar::new).collect(),
            health,
            planted_from: self.year("planted_from")?,
            planted_to: self.year("planted_to")?,
            orchards,
            planting_area_code: self.text("planting_area_code"),
            commune: self.text("commune"),
            district: self.text("district"),
            province: self.text("province"),
            updated_since,
            text: self.text("q"),
        };
        if let (Some(from), Some(to)) = (filter.planted_from, filter.planted_to) {
            if from > to {
                return Err(AppError::bad("planted_from", format!("{from} is after planted_to {to}")));
            }
        }
        Ok(filter)
    }

    /// Names of the filter parameters [`Params::tree_filter`] reads.
    pub const FILTER_NAMES: [&'static str; 11] = [
        "cultivar",
        "health",
        "planted_from",
        "planted_to",
        "orchard",
        "planting_area_code",
        "commune",
        "district",
        "province",
        "updated_since",
        "q",
    ];
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

    #[test]
    fn filters_parse_and_name_bad_values() {
        let f = Params::parse(Some("cultivar=Ri6,musang%20king&health=poor,dead&planted_from=2015&q=%C4%90%E1%BA%AFk"))
            .tree_filter()
            .unwrap();
        assert_eq!(f.cultivars, [Cultivar::new("Ri6"), Cultivar::new("Musang King")]);
        assert_eq!(f.health, [Health::Poor, Health::Dead]);
        assert_eq!(f.planted_from, Some(2015));
        assert_eq!(f.text.as_deref(), Some("Đắk"));
        assert!(Params::parse(None).tree_filter().unwrap().is_empty());
        let e = Params::parse(Some("health=sick")).tree_filter().unwrap_err().to_string();
        assert!(e.starts_with("health: \"sick\""), "{e}");
        let e = Params::parse(Some("planted_from=20x")).tree_filter().unwrap_err().to_string();
        assert!(e.starts_with("planted_from:"), "{e}");
        let e = Params::parse(Some("updated_since=yesterday")).tree_filter().unwrap_err().to_string();
        assert!(e.starts_with("updated_since:"), "{e}");
        let e = Params::parse(Some("planted_from=2020&planted_to=2010")).tree_filter().unwrap_err().to_string();
        assert!(e.contains("after planted_to"), "{e}");
    }
}
