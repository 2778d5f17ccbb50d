//! OGC GeoPackage 1.3 (OGC 12-128r18) output: a SQLite file with one point
//! feature table, `trees`, and its R-tree spatial index.
//!
//! GeoPackage *is* a SQLite file format, so this module holds the only SQL
//! outside the `store` crate: the GeoPackage's own tables, nothing of the
//! project's database. It links the bundled libsqlite3 that `store` (sqlx
//! and rusqlite) already builds.

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use rusqlite::types::Value;

use super::rtree::{self, Cell};
use super::{COLUMNS, ExportError, ExportOptions, ExportResult, ExportRow, KINDS, Kind, Val, column_count, values};

/// `PRAGMA application_id` of a GeoPackage: `GPKG` in ASCII.
pub const GPKG_APPLICATION_ID: i32 = 0x4750_4B47;
/// `PRAGMA user_version` of GeoPackage 1.3.0.
pub const GPKG_USER_VERSION: i32 = 10300;

/// The feature table, its geometry column and the R-tree index table.
const TABLE: &str = "trees";
const GEOMETRY: &str = "geom";
const RTREE: &str = "rtree_trees_geom";
const SRS_ID: i32 = 4326;

/// The columns every tree has a value for.
const NOT_NULL: [&str; 10] =
    ["id", "code", "lon", "lat", "cultivar", "health", "orchard", "created_at", "updated_at", "version"];

/// Rows buffered before one batch of inserts.
const BATCH: usize = 4096;
/// Rows per INSERT statement (a multiple of it fills [`BATCH`]): fewer
/// statement executions; 64 rows of 23 values stay far below SQLite's
/// limit of 32766 parameters.
const ROWS_PER_INSERT: usize = 64;

/// WGS 84 as OGC WKT 1, as GDAL writes it.
const WGS84_WKT: &str = concat!(
    r#"GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG","7030"]],"#,
    r#"AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],"#,
    r#"UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],AXIS["Latitude",NORTH],AXIS["Longitude",EAST],"#,
    r#"AUTHORITY["EPSG","4326"]]"#
);

/// The mandatory GeoPackage tables (spec tables 1.1.2, 1.1.3, 2.1.5, 2.3.2).
const SCHEMA: &str = "
CREATE TABLE gpkg_spatial_ref_sys (
  srs_name TEXT NOT NULL,
  srs_id INTEGER NOT NULL PRIMARY KEY,
  organization TEXT NOT NULL,
  organization_coordsys_id INTEGER NOT NULL,
  definition TEXT NOT NULL,
  description TEXT
);
CREATE TABLE gpkg_contents (
  table_name TEXT NOT NULL PRIMARY KEY,
  data_type TEXT NOT NULL,
  identifier TEXT UNIQUE,
  description TEXT DEFAULT '',
  last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  min_x DOUBLE,
  min_y DOUBLE,
  max_x DOUBLE,
  max_y DOUBLE,
  srs_id INTEGER,
  CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id)
);
CREATE TABLE gpkg_geometry_columns (
  table_name TEXT NOT NULL,
  column_name TEXT NOT NULL,
  geometry_type_name TEXT NOT NULL,
  srs_id INTEGER NOT NULL,
  z TINYINT NOT NULL,
  m TINYINT NOT NULL,
  CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
  CONSTRAINT uk_gc_table_name UNIQUE (table_name),
  CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
  CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id)
);
CREATE TABLE gpkg_extensions (
  table_name TEXT,
  column_name TEXT,
  extension_name TEXT NOT NULL,
  definition TEXT NOT NULL,
  scope TEXT NOT NULL,
  CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name)
);
INSERT INTO gpkg_spatial_ref_sys VALUES
  ('Undefined cartesian SRS', -1, 'NONE', -1, 'undefined', 'undefined cartesian coordinate reference system'),
  ('Undefined geographic SRS', 0, 'NONE', 0, 'undefined', 'undefined geographic coordinate reference system');
";

/// The R-tree index's triggers (spec F.3, `gpkg_rtree_index`), created after
/// the bulk fill; they keep the index right when another program edits the
/// file (GDAL and QGIS provide the `ST_*` functions they call).
const RTREE_TRIGGERS: &str = "
CREATE TRIGGER rtree_trees_geom_insert AFTER INSERT ON trees
  WHEN (new.geom NOT NULL AND NOT ST_IsEmpty(NEW.geom))
BEGIN
  INSERT OR REPLACE INTO rtree_trees_geom VALUES (
    NEW.fid, ST_MinX(NEW.geom), ST_MaxX(NEW.geom), ST_MinY(NEW.geom), ST_MaxY(NEW.geom));
END;
CREATE TRIGGER rtree_trees_geom_update1 AFTER UPDATE OF geom ON trees
  WHEN OLD.fid = NEW.fid AND (NEW.geom NOTNULL AND NOT ST_IsEmpty(NEW.geom))
BEGIN
  INSERT OR REPLACE INTO rtree_trees_geom VALUES (
    NEW.fid, ST_MinX(NEW.geom), ST_MaxX(NEW.geom), ST_MinY(NEW.geom), ST_MaxY(NEW.geom));
END;
CREATE TRIGGER rtree_trees_geom_update2 AFTER UPDATE OF geom ON trees
  WHEN OLD.fid = NEW.fid AND (NEW.geom ISNULL OR ST_IsEmpty(NEW.geom))
BEGIN
  DELETE FROM rtree_trees_geom WHERE id = OLD.fid;
END;
CREATE TRIGGER rtree_trees_geom_update3 AFTER UPDATE ON trees
  WHEN OLD.fid != NEW.fid AND (NEW.geom NOTNULL AND NOT ST_IsEmpty(NEW.geom))
BEGIN
  DELETE FROM rtree_trees_geom WHERE id = OLD.fid;
  INSERT OR REPLACE INTO rtree_trees_geom VALUES (
    NEW.fid, ST_MinX(NEW.geom), ST_MaxX(NEW.geom), ST_MinY(NEW.geom), ST_MaxY(NEW.geom));
END;
CREATE TRIGGER rtree_trees_geom_update4 AFTER UPDATE ON trees
  WHEN OLD.fid != NEW.fid AND (NEW.geom ISNULL OR ST_IsEmpty(NEW.geom))
BEGIN
  DELETE FROM rtree_trees_geom WHERE id IN (OLD.fid, NEW.fid);
END;
CREATE TRIGGER rtree_trees_geom_delete AFTER DELETE ON trees
  WHEN old.geom NOT NULL
BEGIN
  DELETE FROM rtree_trees_geom WHERE id = OLD.fid;
END;
";

/// Writes trees to a new OGC GeoPackage 1.3 file, one tree at a time (see
/// the [module documentation](super)).
///
/// The file has `application_id` `GPKG` and `user_version` 10300; the
/// `gpkg_spatial_ref_sys` rows -1, 0 and 4326 (WGS 84); a `trees` feature
/// table (`fid`, a `geom` POINT in EPSG:4326, then the export's columns,
/// typed INTEGER, REAL, TEXT or DATETIME, times ISO 8601 UTC with `Z`)
/// registered in `gpkg_contents` (with its bounds) and
/// `gpkg_geometry_columns`; and the `gpkg_rtree_index` extension
/// (`rtree_trees_geom`, packed at [`finish`](Self::finish); the writer
/// keeps 24 bytes per tree for it until then). `fid` counts the trees
/// written from 1.
///
/// Everything is one transaction without a rollback journal: the file is a
/// valid GeoPackage only after `finish` returns. A writer dropped before
/// that leaves an unusable file (remove it).
pub struct GpkgWriter {
    conn: Connection,
    file: String,
    columns: usize,
    /// `INSERT INTO trees (...) VALUES ` without the rows.
    insert: String,
    pending: Vec<Value>,
    pending_rows: usize,
    /// The spatial index's entries, packed at `finish`.
    cells: Vec<Cell>,
    bounds: Option<[f64; 4]>,
    count: u64,
}

impl std::fmt::Debug for GpkgWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpkgWriter").field("file", &self.file).field("count", &self.count).finish_non_exhaustive()
    }
}

impl GpkgWriter {
    /// Creates the GeoPackage at `path` (replacing any file there) with its
    /// tables, empty.
    ///
    /// # Errors
    /// [`ExportError::Io`] when the file cannot be created,
    /// [`ExportError::GeoPackage`] when SQLite fails.
    pub fn create(path: impl AsRef<Path>, options: ExportOptions) -> ExportResult<Self> {
        let path = path.as_ref();
        let file = path.display().to_string();
        // Truncates an existing file: SQLite would otherwise add to it. The
        // journal or WAL of a database that was there must not be replayed
        // into the new file either.
        std::fs::File::create(path).map_err(|source| ExportError::Io { file: file.clone(), source })?;
        for suffix in ["-journal", "-wal", "-shm"] {
            let mut side = path.as_os_str().to_os_string();
            side.push(suffix);
            match std::fs::remove_file(&side) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(ExportError::Io { file: Path::new(&side).display().to_string(), source: e });
                }
                _ => {}
            }
        }
        let conn = Connection::open(path)
            .map_err(|e| ExportError::GeoPackage { file: file.clone(), reason: format!("cannot open: {e}") })?;
        let columns = column_count(options);
        let names = COLUMNS[..columns].iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ");
        let insert = format!("INSERT INTO {TABLE} (fid, {GEOMETRY}, {names}) VALUES ");
        let mut writer = Self {
            conn,
            file,
            columns,
            insert,
            pending: Vec::with_capacity(BATCH * (columns + 2)),
            pending_rows: 0,
            cells: Vec::new(),
            bounds: None,
            count: 0,
        };
        writer.init()?;
        Ok(writer)
    }

    fn sql(&self, what: &str, e: rusqlite::Error) -> ExportError {
        ExportError::GeoPackage { file: self.file.clone(), reason: format!("{what}: {e}") }
    }

    fn init(&mut self) -> ExportResult<()> {
        let pragmas = format!(
            "PRAGMA application_id = {GPKG_APPLICATION_ID}; PRAGMA user_version = {GPKG_USER_VERSION};
             PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA locking_mode = EXCLUSIVE;
             PRAGMA cache_size = -65536;"
        );
        self.conn.execute_batch(&pragmas).map_err(|e| self.sql("setting up the file", e))?;
        let mut columns = String::new();
        for (name, kind) in COLUMNS.iter().zip(KINDS).take(self.columns) {
            let ty = match kind {
                Kind::Int => "INTEGER",
                Kind::Int32 => "MEDIUMINT",
                Kind::Real => "REAL",
                Kind::Text => "TEXT",
                Kind::Time => "DATETIME",
            };
            let required = NOT_NULL.contains(name);
            columns.push_str(&format!(",\n  \"{name}\" {ty}{}", if required { " NOT NULL" } else { "" }));
        }
        let ddl = format!(
            "BEGIN;
{SCHEMA}
INSERT INTO gpkg_spatial_ref_sys VALUES ('WGS 84 geodetic', {SRS_ID}, 'EPSG', {SRS_ID}, '{WGS84_WKT}',
  'longitude/latitude coordinates in decimal degrees on the WGS 84 spheroid');
CREATE TABLE \"{TABLE}\" (
  \"fid\" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  \"{GEOMETRY}\" POINT{columns}
);
INSERT INTO gpkg_contents (table_name, data_type, identifier, description, srs_id)
  VALUES ('{TABLE}', 'features', '{TABLE}', 'orchardmap durian trees', {SRS_ID});
INSERT INTO gpkg_geometry_columns VALUES ('{TABLE}', '{GEOMETRY}', 'POINT', {SRS_ID}, 0, 0);
"
        );
        self.conn.execute_batch(&ddl).map_err(|e| self.sql("creating the tables", e))
    }

    /// Number of trees written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Adds one tree.
    ///
    /// # Errors
    /// [`ExportError::Value`] when the tree's position is not a finite
    /// number; [`ExportError::GeoPackage`] when SQLite fails.
    pub fn write(&mut self, row: &ExportRow<'_>) -> ExportResult<()> {
        let tree = row.tree;
        let (lon, lat) = (tree.location.lon, tree.location.lat);
        if !lon.is_finite() || !lat.is_finite() {
            return Err(ExportError::Value {
                file: self.file.clone(),
                tree: tree.id.0,
                reason: format!("position {lon},{lat} is not a number"),
            });
        }
        let fid = self.count as i64 + 1;
        self.pending.push(Value::Integer(fid));
        self.pending.push(Value::Blob(point(lon, lat)));
        self.cells.push(Cell::point(fid, lon, lat));
        let values = values(row);
        for value in values.iter().take(self.columns) {
            self.pending.push(match *value {
                Val::Null => Value::Null,
                Val::Int(v) => Value::Integer(v),
                Val::Real(v) if v.is_finite() => Value::Real(v),
                Val::Real(_) => Value::Null,
                Val::Text(v) => Value::Text(v.to_owned()),
                Val::Time(t) => Value::Text(datetime(t)),
            });
        }
        self.bounds = Some(match self.bounds {
            None => [lon, lat, lon, lat],
            Some([x0, y0, x1, y1]) => [x0.min(lon), y0.min(lat), x1.max(lon), y1.max(lat)],
        });
        self.pending_rows += 1;
        self.count += 1;
        if self.pending_rows >= BATCH { self.flush_rows() } else { Ok(()) }
    }

    fn flush_rows(&mut self) -> ExportResult<()> {
        if self.pending_rows == 0 {
            return Ok(());
        }
        let width = self.columns + 2;
        let sql = |rows: usize| {
            let row = format!("({})", vec!["?"; width].join(","));
            format!("{}{}", self.insert, vec![row; rows].join(","))
        };
        let result = (|| {
            let mut chunks = self.pending.chunks_exact(width * ROWS_PER_INSERT);
            if chunks.len() > 0 {
                let mut stmt = self.conn.prepare(&sql(ROWS_PER_INSERT))?;
                for chunk in &mut chunks {
                    stmt.execute(rusqlite::params_from_iter(chunk))?;
                }
            }
            let rest = chunks.remainder();
            if !rest.is_empty() {
                self.conn.prepare(&sql(rest.len() / width))?.execute(rusqlite::params_from_iter(rest))?;
            }
            Ok(())
        })();
        self.pending.clear();
        self.pending_rows = 0;
        result.map_err(|e| self.sql("adding trees", e))
    }

    /// Writes the remaining trees, the bounds and the spatial index, commits
    /// and closes the file. Returns the number of trees written.
    ///
    /// The R-tree index is built only when the linked SQLite has the R*Tree
    /// module (the bundled one has); without it the file is still a valid
    /// GeoPackage, just without the index.
    ///
    /// # Errors
    /// [`ExportError::GeoPackage`] when SQLite fails.
    pub fn finish(mut self) -> ExportResult<u64> {
        self.flush_rows()?;
        if let Some([min_x, min_y, max_x, max_y]) = self.bounds {
            self.conn
                .execute(
                    "UPDATE gpkg_contents SET min_x = ?1, min_y = ?2, max_x = ?3, max_y = ?4,
                       last_change = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE table_name = ?5",
                    rusqlite::params![min_x, min_y, max_x, max_y, TABLE],
                )
                .map_err(|e| self.sql("recording the bounds", e))?;
        }
        let rtree = format!("CREATE VIRTUAL TABLE {RTREE} USING rtree(id, minx, maxx, miny, maxy)");
        match self.conn.execute_batch(&rtree) {
            Ok(()) => {
                let cells = std::mem::take(&mut self.cells);
                rtree::bulk_load(&self.conn, RTREE, cells).map_err(|e| self.sql("building the spatial index", e))?;
                let register = format!(
                    "INSERT INTO gpkg_extensions VALUES ('{TABLE}', '{GEOMETRY}', 'gpkg_rtree_index',
                       'http://www.geopackage.org/spec120/#extension_rtree', 'write-only');
                     {RTREE_TRIGGERS}"
                );
                self.conn.execute_batch(&register).map_err(|e| self.sql("registering the spatial index", e))?;
            }
            Err(e) if e.to_string().contains("no such module") => {}
            Err(e) => return Err(self.sql("creating the spatial index", e)),
        }
        self.conn.execute_batch("COMMIT").map_err(|e| self.sql("committing", e))?;
        let Self { conn, file, count, .. } = self;
        conn.close().map_err(|(_, e)| ExportError::GeoPackage { file, reason: format!("closing: {e}") })?;
        Ok(count)
    }
}

/// A GeoPackageBinary point: header `GP`, version 0, flags (standard
/// binary, no envelope, little-endian), SRS id, then a little-endian WKB
/// Point.
pub(crate) fn point(lon: f64, lat: f64) -> Vec<u8> {
    let mut b = Vec::with_capacity(29);
    b.extend_from_slice(b"GP");
    b.push(0);
    b.push(0b0000_0001);
    b.extend_from_slice(&SRS_ID.to_le_bytes());
    b.push(1);
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&lon.to_le_bytes());
    b.extend_from_slice(&lat.to_le_bytes());
    b
}

/// A GeoPackage DATETIME: ISO 8601 in UTC with milliseconds and `Z`.
fn datetime(t: DateTime<Utc>) -> String {
    use chrono::{Datelike as _, Timelike as _};
    // By hand: chrono's `format` parses its pattern again for every value.
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        // A leap second's nanoseconds go past 10^9: keep them in the last millisecond.
        (t.nanosecond() / 1_000_000).min(999)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_is_geopackage_binary() {
        let b = point(108.5, 12.25);
        assert_eq!(b.len(), 29);
        assert_eq!(&b[..4], b"GP\x00\x01");
        assert_eq!(i32::from_le_bytes([b[4], b[5], b[6], b[7]]), 4326);
        assert_eq!(b[8], 1);
        assert_eq!(&b[9..13], &1u32.to_le_bytes());
        assert_eq!(&b[13..21], &108.5f64.to_le_bytes());
        assert_eq!(&b[21..29], &12.25f64.to_le_bytes());
    }

    #[test]
    fn datetimes_are_utc_with_z() {
        let t = DateTime::from_timestamp(1_741_000_000, 250_000_000).unwrap_or_default();
        assert_eq!(datetime(t), "2025-03-03T11:06:40.250Z");
        assert_eq!(datetime(DateTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = DateTime::from_timestamp(1_741_000_000, 999_999_999).unwrap_or_default();
        assert_eq!(datetime(t), t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
    }
}
