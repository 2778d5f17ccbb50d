//! Survey import for orchardmap: turns files into validated domain records
//! and, through [`pipeline::import`], into one store transaction.
//!
//! The format layer only parses: the caller passes a reader and the name to
//! use in messages. The [`pipeline`] places, de-duplicates and writes the
//! records through the `store` crate's `Storage` trait (no SQL here).
//!
//! * [`SurveySource`]: survey files of every format volunteers bring (CSV
//!   with `,` `;` or tab, KoboToolbox and ODK Central exports, GeoJSON,
//!   newline-delimited GeoJSON, GPX waypoints, KML placemarks), detected
//!   from content and extension and streamed as [`Record`]s in bounded
//!   memory: columns mapped from English and Vietnamese names ([`Mapping`],
//!   [`ALIASES`]), coordinates converted from `--crs` systems, every value
//!   validated against [`Rules`], every problem a [`RowProblem`]; rejected
//!   records go back out in the input's own format through a
//!   [`RejectWriter`].
//! * [`read_trees_csv`]: tree rows from a CSV in the form of `data/trees.csv`,
//!   with a [`RowProblem`] (file, line, field, value, reason, [`Severity`])
//!   for every rejected row and every warning.
//! * [`read_orchards_geojson`]: orchards with boundaries from a GeoJSON
//!   FeatureCollection in the form of `data/orchards.geojson`; all or nothing.
//! * [`FileKind::from_file_name`]: which reader a file name calls for.
//!
//! An [`Error`] means the whole file is unusable (unreadable, empty, not
//! UTF-8, missing columns, not GeoJSON, invalid features); its message starts
//! with the file name.
//!
//! ```
//! let csv = "lat,lon,accuracy_m,cultivar,planted_year,health,orchard,surveyed_at\n\
//!            12.6405,108.1270,4.4,Ri6,2021,good,DL-CK-EATIEU-001,2025-03-03 08:16:17\n\
//!            1270.5,108.1271,4.0,Ri6,2021,good,DL-CK-EATIEU-001,2025-03-03 08:16:44\n";
//! let import = importer::read_trees_csv(csv.as_bytes(), "survey.csv", 2026).unwrap();
//! assert_eq!(import.rows.len(), 1);
//! assert_eq!(import.rows[0].surveyed_at.unwrap().to_rfc3339(), "2025-03-03T01:16:17+00:00");
//! assert_eq!(
//!     import.problems[0].to_string(),
//!     "survey.csv line 3: lat 1270.5: latitude must be within -90..90"
//! );
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod crs_proj;
mod error;
pub mod export;
mod orchards_geojson;
pub mod pipeline;
mod problem;
mod survey;
mod text;
mod trees_csv;

#[cfg(feature = "proj")]
pub use crs_proj::ProjCrs;
pub use crs_proj::Reprojector;
pub use error::{Error, Result};
pub use export::{ExportError, ExportFormat, ExportOptions, ExportRow, GpkgWriter, TextExportWriter};
pub use orchards_geojson::{OrchardImport, parse_orchards_geojson, read_orchards_geojson};
pub use problem::{FeatureProblem, RowProblem, Severity};
pub use survey::{
    ALIASES, CULTIVAR_NAMES, Field, Format, HEALTH_WORDS, Mapping, RawRecord, Record, RecordAt, RejectWriter, Rules,
    SourceOptions, SurveySource, field_of,
};
pub use trees_csv::{
    ACCURACY_WARNING_M, CsvImport, OPTIONAL_COLUMNS, REQUIRED_COLUMNS, TreeRow, parse_time, parse_trees_csv,
    read_trees_csv,
};

/// The kinds of file this crate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileKind {
    /// Trees, one per row: [`read_trees_csv`].
    TreesCsv,
    /// Orchards with boundaries: [`read_orchards_geojson`].
    OrchardsGeoJson,
}

impl FileKind {
    /// The kind a file name's extension calls for (`.csv`; `.geojson` or
    /// `.json`), case-insensitively; `None` for anything else.
    pub fn from_file_name(name: &str) -> Option<FileKind> {
        let ext = name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase())?;
        match ext.as_str() {
            "csv" => Some(FileKind::TreesCsv),
            "geojson" | "json" => Some(FileKind::OrchardsGeoJson),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_kind_follows_the_extension() {
        assert_eq!(FileKind::from_file_name("data/trees.csv"), Some(FileKind::TreesCsv));
        assert_eq!(FileKind::from_file_name("SURVEY.CSV"), Some(FileKind::TreesCsv));
        assert_eq!(FileKind::from_file_name("orchards.geojson"), Some(FileKind::OrchardsGeoJson));
        assert_eq!(FileKind::from_file_name("x.json"), Some(FileKind::OrchardsGeoJson));
        assert_eq!(FileKind::from_file_name("track.gpx"), None);
        assert_eq!(FileKind::from_file_name("README"), None);
    }
}
