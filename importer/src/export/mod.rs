//! Export of stored trees to files: GeoJSON, CSV, KML and GeoPackage.
//!
//! One streaming API for every format: the caller feeds [`ExportRow`]s (a
//! tree and its orchard) one at a time, in any number, and never holds the
//! whole export in memory.
//!
//! * [`TextExportWriter`] writes the text formats ([`ExportFormat::GeoJson`],
//!   [`ExportFormat::Csv`], [`ExportFormat::Kml`]) to any [`std::io::Write`]:
//!   [`TextExportWriter::begin`], [`TextExportWriter::write`] per tree,
//!   [`TextExportWriter::finish`]. [`TextExportWriter::flush`] hands what is
//!   written so far to the output (an HTTP body sends it in chunks).
//! * [`GpkgWriter`] writes an OGC GeoPackage 1.3 file (a SQLite database)
//!   at a path: [`GpkgWriter::create`], [`GpkgWriter::write`] per tree,
//!   [`GpkgWriter::finish`]. The file is usable only after `finish`.
//!
//! Every format carries the same fields ([`COLUMNS`]): the tree's own
//! (`id`, `code`, `lon`, `lat`, `accuracy_m`, `cultivar`, `planted_year`,
//! `health`, `height_m`, `girth_cm`, `orchard`, `survey_id`, `created_at`,
//! `updated_at`, `version`) and its orchard's (`orchard_name`,
//! `planting_area_code`, `commune`, `district`, `province`). The orchard's
//! `owner` is private: it is written only with
//! [`ExportOptions::include_private`] ([`PRIVATE_COLUMNS`]). In GeoJSON and
//! KML the position is the geometry (no `lon`/`lat` properties); CSV and
//! GeoPackage have `lon` and `lat` columns. The names are those the survey
//! importer reads back (`id`, `code`, `lat`, `lon`, `cultivar`, ...), so an
//! export re-imports as updates of the same trees.
//!
//! ```
//! use importer::export::{ExportFormat, ExportOptions, ExportRow, TextExportWriter};
//! # use geo_core::*;
//! # let tree = Tree {
//! #     id: TreeId(1), code: TreeCode::from_serial(1).unwrap(), location: LonLat::new(108.05, 12.68),
//! #     accuracy_m: None, cultivar: Cultivar::new("Ri6"), planted_year: Some(2019), health: Health::Good,
//! #     height_m: None, girth_cm: None, orchard_id: OrchardId::new("DL-1").unwrap(), survey_id: None,
//! #     created_at: chrono::DateTime::UNIX_EPOCH, updated_at: chrono::DateTime::UNIX_EPOCH, version: 1,
//! # };
//! let format: ExportFormat = "geojson".parse().unwrap();
//! let mut out = TextExportWriter::new(format, Vec::new(), ExportOptions::default(), "trees.geojson").unwrap();
//! out.begin().unwrap();
//! out.write(&ExportRow::new(&tree, None)).unwrap();
//! let bytes = out.finish().unwrap();
//! let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
//! assert_eq!(json["features"][0]["properties"]["cultivar"], "Ri6");
//! ```

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use geo_core::{Orchard, Tree};

mod gpkg;
mod rtree;
mod text;

pub use gpkg::GpkgWriter;
pub use text::TextExportWriter;

/// The file formats trees are exported to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExportFormat {
    /// A GeoJSON (RFC 7946) FeatureCollection of points.
    GeoJson,
    /// CSV with a header row, UTF-8, `lon` and `lat` columns.
    Csv,
    /// KML 2.2: a Document with one Placemark per tree.
    Kml,
    /// OGC GeoPackage 1.3: a SQLite file with a `trees` point table.
    GeoPackage,
}

impl ExportFormat {
    /// Every format.
    pub const ALL: [ExportFormat; 4] =
        [ExportFormat::GeoJson, ExportFormat::Csv, ExportFormat::Kml, ExportFormat::GeoPackage];

    /// The name [`FromStr`] takes: `geojson`, `csv`, `kml` or `gpkg`.
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::GeoJson => "geojson",
            ExportFormat::Csv => "csv",
            ExportFormat::Kml => "kml",
            ExportFormat::GeoPackage => "gpkg",
        }
    }

    /// The media type of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::GeoJson => "application/geo+json",
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Kml => "application/vnd.google-earth.kml+xml",
            ExportFormat::GeoPackage => "application/geopackage+sqlite3",
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::GeoJson => "geojson",
            ExportFormat::Csv => "csv",
            ExportFormat::Kml => "kml",
            ExportFormat::GeoPackage => "gpkg",
        }
    }

    /// True for the formats [`TextExportWriter`] writes (all but GeoPackage).
    pub fn is_text(self) -> bool {
        self != ExportFormat::GeoPackage
    }

    /// The format a file name's extension calls for (`.geojson` or `.json`,
    /// `.csv`, `.kml`, `.gpkg`), case-insensitively.
    pub fn from_file_name(name: &str) -> Option<ExportFormat> {
        let (_, ext) = name.rsplit_once('.')?;
        match ext.to_ascii_lowercase().as_str() {
            "json" => Some(ExportFormat::GeoJson),
            ext => ExportFormat::ALL.into_iter().find(|f| f.extension() == ext),
        }
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ExportFormat {
    type Err = ExportError;
    /// `geojson`, `csv`, `kml` or `gpkg` (also `geopackage`), in any case.
    fn from_str(s: &str) -> Result<Self, ExportError> {
        let name = s.trim().to_ascii_lowercase();
        match name.as_str() {
            "geopackage" => Ok(ExportFormat::GeoPackage),
            _ => ExportFormat::ALL
                .into_iter()
                .find(|f| f.name() == name)
                .ok_or_else(|| ExportError::UnknownFormat(s.to_string())),
        }
    }
}

/// What an export includes beyond the public fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// Write private fields too ([`PRIVATE_COLUMNS`]: the orchard's owner).
    /// Off by default; public exports must leave it off.
    pub include_private: bool,
}

/// One tree to export, with its orchard when known (without it the
/// orchard's fields are empty; `orchard` still names its id).
#[derive(Debug, Clone, Copy)]
pub struct ExportRow<'a> {
    /// The tree.
    pub tree: &'a Tree,
    /// The orchard it belongs to.
    pub orchard: Option<&'a Orchard>,
}

impl<'a> ExportRow<'a> {
    /// A row for `tree` in `orchard`.
    pub fn new(tree: &'a Tree, orchard: Option<&'a Orchard>) -> Self {
        Self { tree, orchard }
    }
}

/// An export could not be written. Messages start with the output's name.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Writing to the output failed.
    #[error("{file}: cannot write: {source}")]
    Io {
        /// The output's name.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The GeoPackage (SQLite) database refused an operation.
    #[error("{file}: cannot write the GeoPackage: {reason}")]
    GeoPackage {
        /// The file's name.
        file: String,
        /// What was being done and SQLite's message.
        reason: String,
    },
    /// A value cannot be written in this format.
    #[error("{file}: tree {tree}: {reason}")]
    Value {
        /// The output's name.
        file: String,
        /// The tree's id.
        tree: i64,
        /// What is wrong.
        reason: String,
    },
    /// A format name that is none of `geojson`, `csv`, `kml`, `gpkg`.
    #[error("unknown export format {0:?}: expected geojson, csv, kml or gpkg")]
    UnknownFormat(String),
    /// The format is not written by this writer ([`TextExportWriter`] takes
    /// text formats only; a GeoPackage needs [`GpkgWriter`] and a file).
    #[error("{file}: {format} is not a text format: write it with GpkgWriter to a file")]
    NotText {
        /// The output's name.
        file: String,
        /// The format asked for.
        format: ExportFormat,
    },
}

/// Result alias of the export writers.
pub type ExportResult<T> = std::result::Result<T, ExportError>;

/// Every column written, in order (private ones included, last).
pub const COLUMNS: [&str; 21] = [
    "id",
    "code",
    "lon",
    "lat",
    "accuracy_m",
    "cultivar",
    "planted_year",
    "health",
    "height_m",
    "girth_cm",
    "orchard",
    "orchard_name",
    "planting_area_code",
    "commune",
    "district",
    "province",
    "survey_id",
    "created_at",
    "updated_at",
    "version",
    "owner",
];

/// The columns written only with [`ExportOptions::include_private`].
pub const PRIVATE_COLUMNS: [&str; 1] = ["owner"];

/// Number of public columns (the first ones of [`COLUMNS`]).
const PUBLIC: usize = COLUMNS.len() - PRIVATE_COLUMNS.len();

/// The type of a column (GeoPackage column types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    /// 32-bit integer (GeoPackage MEDIUMINT; GDAL: Integer rather than Integer64).
    Int32,
    Real,
    Text,
    Time,
}

/// The type of each of [`COLUMNS`].
pub(crate) const KINDS: [Kind; 21] = [
    Kind::Int,   // id
    Kind::Text,  // code
    Kind::Real,  // lon
    Kind::Real,  // lat
    Kind::Real,  // accuracy_m
    Kind::Text,  // cultivar
    Kind::Int32, // planted_year
    Kind::Text,  // health
    Kind::Real,  // height_m
    Kind::Real,  // girth_cm
    Kind::Text,  // orchard
    Kind::Text,  // orchard_name
    Kind::Text,  // planting_area_code
    Kind::Text,  // commune
    Kind::Text,  // district
    Kind::Text,  // province
    Kind::Int,   // survey_id
    Kind::Time,  // created_at
    Kind::Time,  // updated_at
    Kind::Int,   // version
    Kind::Text,  // owner
];

/// One value of a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Val<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Time(DateTime<Utc>),
}

/// Index of `lon` and `lat` in [`COLUMNS`] (the geometry in GeoJSON and KML).
pub(crate) const LON: usize = 2;
pub(crate) const LAT: usize = 3;

/// The values of a row, in the order of [`COLUMNS`].
pub(crate) fn values<'a>(row: &ExportRow<'a>) -> [Val<'a>; 21] {
    let t = row.tree;
    let o = row.orchard;
    let real = |v: Option<f64>| v.map_or(Val::Null, Val::Real);
    let text = |v: Option<&'a str>| v.map_or(Val::Null, Val::Text);
    [
        Val::Int(t.id.0),
        Val::Text(t.code.as_str()),
        Val::Real(t.location.lon),
        Val::Real(t.location.lat),
        real(t.accuracy_m),
        Val::Text(t.cultivar.as_str()),
        t.planted_year.map_or(Val::Null, |y| Val::Int(i64::from(y))),
        Val::Text(t.health.as_str()),
        real(t.height_m),
        real(t.girth_cm),
        Val::Text(t.orchard_id.as_str()),
        text(o.map(|o| o.name.as_str())),
        text(o.and_then(|o| o.planting_area_code.as_deref())),
        text(o.map(|o| o.commune.as_str())),
        text(o.map(|o| o.district.as_str())),
        text(o.map(|o| o.province.as_str())),
        t.survey_id.map_or(Val::Null, |s| Val::Int(s.0)),
        Val::Time(t.created_at),
        Val::Time(t.updated_at),
        Val::Int(t.version),
        text(o.map(|o| o.owner.as_str())),
    ]
}

/// How many of [`COLUMNS`] an export with these options writes.
pub(crate) fn column_count(options: ExportOptions) -> usize {
    if options.include_private { COLUMNS.len() } else { PUBLIC }
}

/// The columns an export with these options writes, in order.
pub fn columns(options: ExportOptions) -> &'static [&'static str] {
    &COLUMNS[..column_count(options)]
}

/// A time as RFC 3339 in UTC with `Z`, to the microsecond when it has a
/// fraction (`2025-03-03T01:16:17Z`, `2025-03-03T01:16:17.250Z`).
pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_name_themselves() {
        for f in ExportFormat::ALL {
            assert_eq!(f.name().parse::<ExportFormat>().ok(), Some(f));
            assert_eq!(ExportFormat::from_file_name(&format!("x.{}", f.extension())), Some(f));
        }
        assert_eq!("GeoPackage".parse::<ExportFormat>().ok(), Some(ExportFormat::GeoPackage));
        assert_eq!(ExportFormat::from_file_name("A.JSON"), Some(ExportFormat::GeoJson));
        assert_eq!(ExportFormat::from_file_name("a.shp"), None);
        let e = "shp".parse::<ExportFormat>().err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("unknown export format \"shp\": expected geojson, csv, kml or gpkg"));
    }

    #[test]
    fn private_columns_come_last() {
        assert_eq!(columns(ExportOptions::default()).len(), 20);
        assert!(!columns(ExportOptions::default()).contains(&"owner"));
        assert_eq!(columns(ExportOptions { include_private: true }).last(), Some(&"owner"));
        assert_eq!((COLUMNS[LON], COLUMNS[LAT]), ("lon", "lat"));
        assert_eq!(KINDS.len(), COLUMNS.len());
    }
}
