//! Longitude/latitude bounding boxes.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;
use crate::geodesy::LonLat;

/// A WGS 84 bounding box, `minLon,minLat,maxLon,maxLat` as in GeoJSON and OGC APIs.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BBox {
    /// Western edge.
    pub min_lon: f64,
    /// Southern edge.
    pub min_lat: f64,
    /// Eastern edge.
    pub max_lon: f64,
    /// Northern edge.
    pub max_lat: f64,
}

impl BBox {
    /// True when `p` lies inside or on the edge.
    pub fn contains(&self, p: LonLat) -> bool {
        p.lon >= self.min_lon && p.lon <= self.max_lon && p.lat >= self.min_lat && p.lat <= self.max_lat
    }

    /// The smallest box holding every position, or `None` for no positions.
    pub fn around(points: impl IntoIterator<Item = LonLat>) -> Option<Self> {
        points.into_iter().fold(None, |acc, p| {
            Some(match acc {
                None => BBox { min_lon: p.lon, min_lat: p.lat, max_lon: p.lon, max_lat: p.lat },
                Some(b) => BBox {
                    min_lon: b.min_lon.min(p.lon),
                    min_lat: b.min_lat.min(p.lat),
                    max_lon: b.max_lon.max(p.lon),
                    max_lat: b.max_lat.max(p.lat),
                },
            })
        })
    }
}

impl fmt::Display for BBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{},{},{}", self.min_lon, self.min_lat, self.max_lon, self.max_lat)
    }
}

impl FromStr for BBox {
    type Err = Error;
    /// Parses `minLon,minLat,maxLon,maxLat`, checking ranges and order.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::Parse { field: "bbox", value: s.to_string(), reason: reason.to_string() };
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        if parts.len() != 4 {
            return Err(bad("must be four numbers minLon,minLat,maxLon,maxLat"));
        }
        let mut v = [0.0; 4];
        for (slot, part) in v.iter_mut().zip(&parts) {
            *slot = part
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| bad(&format!("{part:?} is not a number")))?;
        }
        let [min_lon, min_lat, max_lon, max_lat] = v;
        if !(-180.0..=180.0).contains(&min_lon) || !(-180.0..=180.0).contains(&max_lon) {
            return Err(bad("longitudes must be within -180..180"));
        }
        if !(-90.0..=90.0).contains(&min_lat) || !(-90.0..=90.0).contains(&max_lat) {
            return Err(bad("latitudes must be within -90..90"));
        }
        if min_lon > max_lon || min_lat > max_lat {
            return Err(bad("minimum is greater than maximum"));
        }
        Ok(BBox { min_lon, min_lat, max_lon, max_lat })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let b: BBox = "108,12.5,108.2,12.8".parse().unwrap();
        assert!(b.contains(LonLat::new(108.1, 12.6)));
        assert!("108,12.5,108.2".parse::<BBox>().is_err());
        assert!("108,95,108.2,96".parse::<BBox>().is_err());
        assert!("108.2,12.5,108,12.8".parse::<BBox>().is_err());
        assert!("a,b,c,d".parse::<BBox>().is_err());
        assert!("NaN,1,2,3".parse::<BBox>().is_err());
    }
}
