//! PMTiles v3 archives: a whole tile pyramid in one file, for offline packs.
//!
//! Spec: <https://github.com/protomaps/PMTiles/blob/main/spec/v3/spec.md>.
//! An archive is laid out as
//!
//! ```text
//! | header (127 B) | root directory | JSON metadata | leaf directories | tile data |
//! ```
//!
//! * Tiles are addressed by a [`tile_id`]: the position on the chain of
//!   Hilbert curves covering zoom 0, then zoom 1, and so on.
//! * A directory is a sorted list of [`Entry`]s (tile id, offset, length, run
//!   length). A run covers consecutive tile ids with the same bytes (rows of
//!   empty tiles); an entry with run length 0 points to a leaf directory.
//!   Directories are varint-encoded column by column and compressed with the
//!   header's internal compression (gzip here).
//! * The header and the root directory together fit in the first 16,384 bytes,
//!   so a client gets both with one request; when all entries do not fit, they
//!   go to leaf directories and the root only points at those.
//!
//! [`PmtilesWriter`] collects tiles in any order, stores identical tiles once
//! and writes the archive to any [`std::io::Write`]; [`PmtilesReader`] reads
//! an archive held in memory, to check packs and in tests.
//!
//! ```
//! use geo_core::BBox;
//! use tiles::TileId;
//! use tiles::pmtiles::{Compression, PmtilesReader, PmtilesWriter, orchard_metadata};
//!
//! let bounds = BBox { min_lon: 108.0, min_lat: 12.6, max_lon: 108.1, max_lat: 12.7 };
//! let mut writer = PmtilesWriter::new(Compression::None, bounds, 0, 1);
//! writer.add_tile(TileId::new(1, 1, 0)?, b"tile bytes");
//! writer.add_tile(TileId::new(0, 0, 0)?, b"world");
//! let mut pack = Vec::new();
//! let written = writer.finish(&orchard_metadata("Cu Kuin", 0, 1), &mut pack)?;
//! assert_eq!(written, pack.len() as u64);
//!
//! let reader = PmtilesReader::new(&pack)?;
//! assert_eq!(reader.tile(TileId::new(1, 1, 0)?)?, Some(&b"tile bytes"[..]));
//! assert_eq!(reader.tile(TileId::new(1, 0, 0)?)?, None);
//! assert_eq!(reader.header().addressed_tiles, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, Read, Write};

use geo_core::{BBox, LonLat};
use serde_json::{Value, json};

use crate::TileId;

/// Size of the fixed header at the start of every archive.
pub const HEADER_LEN: usize = 127;

/// The header and the root directory must end within this many bytes.
pub const ROOT_LIMIT: usize = 16_384;

/// The media type of a PMTiles archive.
pub const PMTILES_CONTENT_TYPE: &str = "application/vnd.pmtiles";

const MAGIC: &[u8; 7] = b"PMTiles";
const VERSION: u8 = 3;

/// Entries per leaf directory the writer starts with (doubled until the root fits).
const LEAF_ENTRIES: usize = 4096;

/// How deep the reader follows leaf directories (the writer uses one level;
/// the spec leaves depth open, real archives use one or two).
const MAX_DEPTH: usize = 4;

/// Decompressed directories and metadata larger than this are refused (a
/// guard against gzip bombs in a pack from elsewhere).
const MAX_INFLATED: u64 = 256 << 20;

/// Compression of tiles, directories or metadata, as the header declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Not declared (`0`). Readers must guess; the writer never declares it.
    Unknown,
    /// Stored as is (`1`).
    None,
    /// gzip (`2`).
    Gzip,
    /// Brotli (`3`).
    Brotli,
    /// Zstandard (`4`).
    Zstd,
}

impl Compression {
    /// The header byte.
    pub fn to_byte(self) -> u8 {
        match self {
            Compression::Unknown => 0,
            Compression::None => 1,
            Compression::Gzip => 2,
            Compression::Brotli => 3,
            Compression::Zstd => 4,
        }
    }

    /// The compression a header byte declares, `None` for a value the spec does not define.
    pub fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Compression::Unknown,
            1 => Compression::None,
            2 => Compression::Gzip,
            3 => Compression::Brotli,
            4 => Compression::Zstd,
            _ => return None,
        })
    }
}

/// What the tiles are, as the header declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TileType {
    /// Unknown or other (`0`).
    Unknown,
    /// Mapbox Vector Tiles (`1`).
    Mvt,
    /// PNG images (`2`).
    Png,
    /// JPEG images (`3`).
    Jpeg,
    /// WebP images (`4`).
    Webp,
    /// AVIF images (`5`).
    Avif,
    /// A value this code does not know (a newer spec revision).
    Other(u8),
}

impl TileType {
    /// The header byte.
    pub fn to_byte(self) -> u8 {
        match self {
            TileType::Unknown => 0,
            TileType::Mvt => 1,
            TileType::Png => 2,
            TileType::Jpeg => 3,
            TileType::Webp => 4,
            TileType::Avif => 5,
            TileType::Other(b) => b,
        }
    }

    /// The tile type a header byte declares.
    pub fn from_byte(b: u8) -> Self {
        match b {
            0 => TileType::Unknown,
            1 => TileType::Mvt,
            2 => TileType::Png,
            3 => TileType::Jpeg,
            4 => TileType::Webp,
            5 => TileType::Avif,
            other => TileType::Other(other),
        }
    }
}

/// Why an archive could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// The bytes do not start with a PMTiles v3 header.
    #[error("not a PMTiles v3 archive: {reason}")]
    NotPmtiles {
        /// What is wrong.
        reason: String,
    },
    /// A header field, directory or section is inconsistent.
    #[error("malformed PMTiles archive: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// Valid by the spec but not handled here (Brotli or Zstandard internal compression).
    #[error("unsupported PMTiles archive: {reason}")]
    Unsupported {
        /// What is not handled.
        reason: String,
    },
}

fn malformed(reason: impl Into<String>) -> ArchiveError {
    ArchiveError::Malformed { reason: reason.into() }
}

/// Result alias for reading archives.
pub type ArchiveResult<T> = std::result::Result<T, ArchiveError>;

// ---------------------------------------------------------------------------
// Tile ids

/// Number of tiles at zooms below `z`: `(4^z - 1) / 3`, the first tile id of zoom `z`.
fn first_id(z: u8) -> u64 {
    ((1u128 << (2 * u32::from(z))) / 3) as u64
}

/// The PMTiles tile id of `z/x/y`: the tiles of all lower zooms, plus the
/// position of `(x, y)` on the zoom's Hilbert curve.
///
/// `(0,0,0)` is 0, zoom 1 holds ids 1..=4 (`(1,0,0)`, `(1,0,1)`, `(1,1,1)`,
/// `(1,1,0)`), zoom 2 starts at 5, zoom 3 at 21.
///
/// # Panics
/// When `z > 31` (ids would not fit a `u64`) or `x` or `y` is not below
/// `2^z`. A [`TileId`] always satisfies both: use `tile_id(t.z(), t.x(), t.y())`.
pub fn tile_id(z: u8, x: u32, y: u32) -> u64 {
    assert!(z <= 31, "PMTiles tile ids are defined here up to zoom 31, not {z}");
    let n = 1u64 << z;
    let (mut x, mut y) = (u64::from(x), u64::from(y));
    assert!(x < n && y < n, "tile {z}/{x}/{y} is outside the zoom's 2^{z} x 2^{z} grid");
    let mut d = 0u64;
    let mut s = n >> 1;
    while s > 0 {
        let rx = u64::from(x & s != 0);
        let ry = u64::from(y & s != 0);
        d += s * s * ((3 * rx) ^ ry);
        // Rotate the quadrant so the curve's sub-square starts at the origin.
        if ry == 0 {
            if rx == 1 {
                x = n - 1 - x;
                y = n - 1 - y;
            }
            std::mem::swap(&mut x, &mut y);
        }
        s >>= 1;
    }
    first_id(z) + d
}

/// The `(z, x, y)` of a PMTiles tile id; the inverse of [`tile_id`].
///
/// Defined for every `u64`: ids past zoom 31 decode to zoom 32, which
/// [`tile_id`] does not encode (and [`TileId`] does not allow).
pub fn tile_zxy(id: u64) -> (u8, u32, u32) {
    let mut z = 0u8;
    while z < 32 && id >= first_id(z + 1) {
        z += 1;
    }
    let mut t = id - first_id(z);
    let n = 1u64 << z;
    let (mut x, mut y) = (0u64, 0u64);
    let mut s = 1u64;
    while s < n {
        let rx = 1 & (t >> 1);
        let ry = 1 & (t ^ rx);
        if ry == 0 {
            if rx == 1 {
                x = s - 1 - x;
                y = s - 1 - y;
            }
            std::mem::swap(&mut x, &mut y);
        }
        x += s * rx;
        y += s * ry;
        t >>= 2;
        s <<= 1;
    }
    // x and y are below 2^z ≤ 2^32.
    (z, x as u32, y as u32)
}

// ---------------------------------------------------------------------------
// Header

/// The 127-byte header. Positions are in bytes from the start of the archive;
/// longitudes and latitudes are in units of 10⁻⁷ degree, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Spec version, 3.
    pub version: u8,
    /// Where the root directory starts.
    pub root_offset: u64,
    /// Length of the (compressed) root directory.
    pub root_length: u64,
    /// Where the JSON metadata starts.
    pub metadata_offset: u64,
    /// Length of the (compressed) JSON metadata.
    pub metadata_length: u64,
    /// Where the leaf directories start.
    pub leaf_offset: u64,
    /// Length of all leaf directories together (0 when there are none).
    pub leaf_length: u64,
    /// Where the tile data starts.
    pub data_offset: u64,
    /// Length of the tile data.
    pub data_length: u64,
    /// Number of tiles addressed (run lengths summed); 0 if unknown.
    pub addressed_tiles: u64,
    /// Number of directory entries pointing to tiles; 0 if unknown.
    pub tile_entries: u64,
    /// Number of distinct tile blobs in the data section; 0 if unknown.
    pub tile_contents: u64,
    /// Whether tile data is in tile id order (each blob either follows the
    /// previous one or is a repeat of an earlier one).
    pub clustered: bool,
    /// Compression of directories and metadata.
    pub internal_compression: Compression,
    /// Compression of every tile.
    pub tile_compression: Compression,
    /// What the tiles are.
    pub tile_type: TileType,
    /// Lowest zoom with tiles.
    pub min_zoom: u8,
    /// Highest zoom with tiles.
    pub max_zoom: u8,
    /// Western edge of the data, longitude × 10⁷.
    pub min_lon_e7: i32,
    /// Southern edge, latitude × 10⁷.
    pub min_lat_e7: i32,
    /// Eastern edge, longitude × 10⁷.
    pub max_lon_e7: i32,
    /// Northern edge, latitude × 10⁷.
    pub max_lat_e7: i32,
    /// Zoom a viewer should open at.
    pub center_zoom: u8,
    /// Longitude a viewer should open at, × 10⁷.
    pub center_lon_e7: i32,
    /// Latitude a viewer should open at, × 10⁷.
    pub center_lat_e7: i32,
}

/// Degrees to the header's 10⁻⁷ degree units, clamped to `±limit` (NaN gives 0).
fn e7(deg: f64, limit: f64) -> i32 {
    // |limit| ≤ 180, so the product stays within i32.
    (deg.clamp(-limit, limit) * 1e7).round() as i32
}

fn degrees(e7: i32) -> f64 {
    f64::from(e7) / 1e7
}

impl Header {
    /// The data's bounding box in degrees.
    pub fn bounds(&self) -> BBox {
        BBox {
            min_lon: degrees(self.min_lon_e7),
            min_lat: degrees(self.min_lat_e7),
            max_lon: degrees(self.max_lon_e7),
            max_lat: degrees(self.max_lat_e7),
        }
    }

    /// Where a viewer should open, in degrees.
    pub fn center(&self) -> LonLat {
        LonLat::new(degrees(self.center_lon_e7), degrees(self.center_lat_e7))
    }

    /// The header as stored, little-endian.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..7].copy_from_slice(MAGIC);
        b[7] = self.version;
        let words = [
            self.root_offset,
            self.root_length,
            self.metadata_offset,
            self.metadata_length,
            self.leaf_offset,
            self.leaf_length,
            self.data_offset,
            self.data_length,
            self.addressed_tiles,
            self.tile_entries,
            self.tile_contents,
        ];
        for (i, w) in words.iter().enumerate() {
            b[8 + 8 * i..16 + 8 * i].copy_from_slice(&w.to_le_bytes());
        }
        b[96] = u8::from(self.clustered);
        b[97] = self.internal_compression.to_byte();
        b[98] = self.tile_compression.to_byte();
        b[99] = self.tile_type.to_byte();
        b[100] = self.min_zoom;
        b[101] = self.max_zoom;
        for (i, v) in [self.min_lon_e7, self.min_lat_e7, self.max_lon_e7, self.max_lat_e7].iter().enumerate() {
            b[102 + 4 * i..106 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
        b[118] = self.center_zoom;
        b[119..123].copy_from_slice(&self.center_lon_e7.to_le_bytes());
        b[123..127].copy_from_slice(&self.center_lat_e7.to_le_bytes());
        b
    }

    /// Reads the header at the start of `bytes`.
    ///
    /// # Errors
    /// [`ArchiveError::NotPmtiles`] when `bytes` is shorter than the header, or
    /// does not start with `PMTiles` and version 3; [`ArchiveError::Malformed`]
    /// for an undefined compression value.
    pub fn parse(bytes: &[u8]) -> ArchiveResult<Self> {
        let not = |reason: &str| ArchiveError::NotPmtiles { reason: reason.to_string() };
        let b: &[u8; HEADER_LEN] =
            bytes.get(..HEADER_LEN).and_then(|h| h.try_into().ok()).ok_or_else(|| not("shorter than the header"))?;
        if &b[..7] != MAGIC {
            return Err(not("does not start with \"PMTiles\""));
        }
        if b[7] != VERSION {
            return Err(not(&format!("spec version {} (only 3 is read)", b[7])));
        }
        let u64_at =
            |i: usize| u64::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3], b[i + 4], b[i + 5], b[i + 6], b[i + 7]]);
        let i32_at = |i: usize| i32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let compression = |i: usize, what: &str| {
            Compression::from_byte(b[i]).ok_or_else(|| malformed(format!("{what} compression value {}", b[i])))
        };
        Ok(Header {
            version: b[7],
            root_offset: u64_at(8),
            root_length: u64_at(16),
            metadata_offset: u64_at(24),
            metadata_length: u64_at(32),
            leaf_offset: u64_at(40),
            leaf_length: u64_at(48),
            data_offset: u64_at(56),
            data_length: u64_at(64),
            addressed_tiles: u64_at(72),
            tile_entries: u64_at(80),
            tile_contents: u64_at(88),
            clustered: b[96] == 1,
            internal_compression: compression(97, "internal")?,
            tile_compression: compression(98, "tile")?,
            tile_type: TileType::from_byte(b[99]),
            min_zoom: b[100],
            max_zoom: b[101],
            min_lon_e7: i32_at(102),
            min_lat_e7: i32_at(106),
            max_lon_e7: i32_at(110),
            max_lat_e7: i32_at(114),
            center_zoom: b[118],
            center_lon_e7: i32_at(119),
            center_lat_e7: i32_at(123),
        })
    }
}

// ---------------------------------------------------------------------------
// Directories

/// One directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The first tile id the entry covers (for a leaf pointer: the leaf's first id).
    pub tile_id: u64,
    /// Where the bytes start: in the tile data section for tiles, in the leaf
    /// section for leaf directories.
    pub offset: u64,
    /// Number of bytes, never 0.
    pub length: u32,
    /// How many consecutive tile ids, from `tile_id`, have these bytes; 0
    /// marks a pointer to a leaf directory.
    pub run_length: u32,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Serialises entries as the spec orders them: count, then columns of tile
/// id deltas, run lengths, lengths and offsets (0 = right after the previous
/// entry, otherwise offset + 1). Not compressed.
fn serialize_directory(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 6 + 4);
    put_varint(&mut out, entries.len() as u64);
    let mut last = 0;
    for e in entries {
        put_varint(&mut out, e.tile_id - last);
        last = e.tile_id;
    }
    for e in entries {
        put_varint(&mut out, u64::from(e.run_length));
    }
    for e in entries {
        put_varint(&mut out, u64::from(e.length));
    }
    let mut next = None;
    for e in entries {
        put_varint(&mut out, if next == Some(e.offset) { 0 } else { e.offset + 1 });
        next = Some(e.offset + u64::from(e.length));
    }
    out
}

struct Cursor<'b> {
    bytes: &'b [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn varint(&mut self) -> ArchiveResult<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.bytes.get(self.pos).ok_or_else(|| malformed("directory ends inside a number"))?;
            self.pos += 1;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                break;
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(malformed("directory number does not fit 64 bits"))
    }

    fn u32(&mut self, what: &str) -> ArchiveResult<u32> {
        let v = self.varint()?;
        u32::try_from(v).map_err(|_| malformed(format!("directory {what} {v} does not fit 32 bits")))
    }
}

/// Parses an uncompressed directory, checking what the spec requires: at
/// least one entry, ascending tile ids, nonzero lengths, no trailing bytes.
fn parse_directory(bytes: &[u8]) -> ArchiveResult<Vec<Entry>> {
    let mut c = Cursor { bytes, pos: 0 };
    let n = c.varint()?;
    // Each entry takes at least one byte in each of the four columns.
    if n == 0 || n > (bytes.len() / 4) as u64 {
        return Err(malformed(format!("directory of {} bytes claims {n} entries", bytes.len())));
    }
    let n = n as usize;
    let mut entries = vec![Entry { tile_id: 0, offset: 0, length: 0, run_length: 0 }; n];
    let mut last = 0u64;
    for (i, e) in entries.iter_mut().enumerate() {
        let delta = c.varint()?;
        if i > 0 && delta == 0 {
            return Err(malformed("directory tile ids are not ascending"));
        }
        last = last.checked_add(delta).ok_or_else(|| malformed("directory tile id overflows"))?;
        e.tile_id = last;
    }
    for e in entries.iter_mut() {
        e.run_length = c.u32("run length")?;
        if e.tile_id.checked_add(u64::from(e.run_length)).is_none() {
            return Err(malformed("directory run goes past the last tile id"));
        }
    }
    // Each tile id is addressed once: a run ends at or before the next entry's id.
    for pair in entries.windows(2) {
        let (e, next) = (pair[0], pair[1]);
        if e.tile_id + u64::from(e.run_length) > next.tile_id {
            return Err(malformed(format!(
                "directory run of tile ids {}..{} overlaps the entry at {}",
                e.tile_id,
                e.tile_id + u64::from(e.run_length),
                next.tile_id
            )));
        }
    }
    for e in entries.iter_mut() {
        e.length = c.u32("length")?;
        if e.length == 0 {
            return Err(malformed("directory entry of length 0"));
        }
    }
    let mut next: Option<u64> = None;
    for e in entries.iter_mut() {
        let v = c.varint()?;
        e.offset = match (v, next) {
            (0, Some(next)) => next,
            (0, None) => return Err(malformed("first directory entry has a relative offset")),
            (v, _) => v - 1,
        };
        next = Some(e.offset.checked_add(u64::from(e.length)).ok_or_else(|| malformed("entry offset overflows"))?);
    }
    if c.pos != bytes.len() {
        return Err(malformed(format!("{} bytes after the directory", bytes.len() - c.pos)));
    }
    Ok(entries)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

fn inflate(bytes: &[u8], compression: Compression) -> ArchiveResult<Cow<'_, [u8]>> {
    match compression {
        Compression::None => Ok(Cow::Borrowed(bytes)),
        Compression::Gzip => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(bytes)
                .take(MAX_INFLATED + 1)
                .read_to_end(&mut out)
                .map_err(|e| malformed(format!("gzip: {e}")))?;
            if out.len() as u64 > MAX_INFLATED {
                return Err(malformed(format!("a directory or metadata inflates beyond {MAX_INFLATED} bytes")));
            }
            Ok(Cow::Owned(out))
        }
        other => Err(ArchiveError::Unsupported { reason: format!("internal compression {other:?}") }),
    }
}

// ---------------------------------------------------------------------------
// Metadata

/// The TileJSON `vector_layers` of orchardmap vector tiles: layer `trees`
/// (trees, and clusters of trees at low zoom) and layer `orchards`.
///
/// A tree's database id is the feature id, not a property, so it is not
/// listed under `fields` (styles read it with `["id"]`).
pub fn vector_layers(min_zoom: u8, max_zoom: u8) -> Value {
    json!([
        {
            "id": crate::TREES_LAYER,
            "description": "Trees (feature id = tree id); at low zoom, clusters with counts by health",
            "minzoom": min_zoom,
            "maxzoom": max_zoom,
            "fields": {
                "code": "String", "cultivar": "String", "health": "String", "planted_year": "Number",
                "orchard": "String", "clustered": "Boolean", "point_count": "Number",
                "point_count_abbreviated": "String", "good": "Number", "fair": "Number", "poor": "Number",
                "dead": "Number"
            }
        },
        {
            "id": crate::ORCHARDS_LAYER,
            "description": "Orchard boundaries",
            "minzoom": min_zoom,
            "maxzoom": max_zoom,
            "fields": { "orchard": "String", "name": "String", "planting_area_code": "String" }
        }
    ])
}

/// Metadata for an orchardmap pack of vector tiles: `name`, `description`,
/// `attribution`, `type` (`overlay`), `version` and [`vector_layers`]. Add
/// keys to the returned object as needed before [`PmtilesWriter::finish`].
pub fn orchard_metadata(name: &str, min_zoom: u8, max_zoom: u8) -> Value {
    json!({
        "name": name,
        "description": "Surveyed durian trees and orchard boundaries (orchardmap offline pack)",
        "attribution": "orchardmap",
        "type": "overlay",
        "version": "1.0.0",
        "vector_layers": vector_layers(min_zoom, max_zoom),
    })
}

// ---------------------------------------------------------------------------
// Writer

/// Collects tiles, then writes a PMTiles v3 archive.
///
/// * Tiles may be added in any order; adding a tile again replaces it.
/// * Identical bytes are stored once, however many tiles have them, and runs
///   of consecutive tile ids with the same bytes take one directory entry.
/// * Tile data is written in tile id order (the archive is *clustered*).
/// * Directories and metadata are gzip-compressed.
///
/// Memory: every distinct tile is kept in memory until [`finish`](Self::finish)
/// (the directories, which precede the data, need every length first). For a
/// province pack (a few hundred thousand small vector tiles, mostly repeats of
/// a few empty or near-empty ones) that is tens of megabytes at most; spooling
/// tile data to a temporary file would lift the limit if packs grow.
#[derive(Debug, Clone)]
pub struct PmtilesWriter {
    tile_compression: Compression,
    tile_type: TileType,
    bounds: BBox,
    min_zoom: u8,
    max_zoom: u8,
    center: Option<(LonLat, u8)>,
    /// (tile id, index into `contents`), in the order added.
    tiles: Vec<(u64, u32)>,
    /// Distinct tile bytes.
    contents: Vec<Vec<u8>>,
    /// Hash of tile bytes → index into `contents` (on the rare collision of
    /// different bytes, the newer bytes are stored without an index entry).
    by_hash: HashMap<u64, u32>,
    /// Lowest and highest zoom added.
    zooms: Option<(u8, u8)>,
}

impl PmtilesWriter {
    /// A writer of tiles compressed with `tile_compression` (the bytes given
    /// to [`add_tile`](Self::add_tile) must already be compressed that way),
    /// covering `bounds` at zooms `min_zoom..=max_zoom`.
    ///
    /// Tiles are declared as [`TileType::Mvt`] ([`with_tile_type`](Self::with_tile_type)
    /// changes that); viewers open at the centre of `bounds` at `min_zoom`
    /// ([`with_center`](Self::with_center)).
    pub fn new(tile_compression: Compression, bounds: BBox, min_zoom: u8, max_zoom: u8) -> Self {
        Self {
            tile_compression,
            tile_type: TileType::Mvt,
            bounds,
            min_zoom,
            max_zoom,
            center: None,
            tiles: Vec::new(),
            contents: Vec::new(),
            by_hash: HashMap::new(),
            zooms: None,
        }
    }

    /// Declares what the tiles are (e.g. [`TileType::Png`] for raster packs).
    pub fn with_tile_type(mut self, tile_type: TileType) -> Self {
        self.tile_type = tile_type;
        self
    }

    /// Where and at which zoom a viewer should open the pack.
    pub fn with_center(mut self, center: LonLat, zoom: u8) -> Self {
        self.center = Some((center, zoom));
        self
    }

    /// Adds one tile, replacing any earlier bytes for the same tile.
    ///
    /// An empty `bytes` is not stored (the spec forbids zero-length entries):
    /// the tile is left out of the archive, which map clients draw exactly as
    /// an empty vector tile. With gzip tile compression, empty tiles are
    /// about 20 bytes and are stored (once, however many there are).
    pub fn add_tile(&mut self, tile: TileId, bytes: &[u8]) {
        let z = tile.z();
        self.zooms = Some(self.zooms.map_or((z, z), |(lo, hi)| (lo.min(z), hi.max(z))));
        let id = tile_id(z, tile.x(), tile.y());
        if bytes.is_empty() {
            // Forget earlier bytes for this tile, if any.
            self.tiles.push((id, u32::MAX));
            return;
        }
        let mut hasher = DefaultHasher::new();
        bytes.hash(&mut hasher);
        let hash = hasher.finish();
        let index = match self.by_hash.get(&hash) {
            Some(&i) if self.contents[i as usize] == bytes => i,
            known => {
                let i = self.contents.len() as u32;
                self.contents.push(bytes.to_vec());
                if known.is_none() {
                    self.by_hash.insert(hash, i);
                }
                i
            }
        };
        self.tiles.push((id, index));
    }

    /// Number of tiles added so far (a tile added twice counts twice).
    pub fn len(&self) -> usize {
        self.tiles.len()
    }

    /// Whether no tile has been added.
    pub fn is_empty(&self) -> bool {
        self.tiles.is_empty()
    }

    /// Writes the archive to `out`: header, root directory, `metadata`
    /// (serialised as JSON and gzipped), leaf directories, tile data. Returns
    /// the number of bytes written.
    ///
    /// `metadata` must be a JSON object; for vector tiles it should hold
    /// `vector_layers` (see [`orchard_metadata`]). Tile data goes out in many
    /// small writes: give a buffered writer.
    ///
    /// # Errors
    /// [`io::ErrorKind::InvalidInput`] when no (non-empty) tile was added, a
    /// tile lies outside `min_zoom..=max_zoom`, a tile is 4 GiB or more, or
    /// `metadata` is not an object; otherwise whatever `out` returns.
    pub fn finish(self, metadata: &Value, out: &mut impl Write) -> io::Result<u64> {
        let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, msg);
        if !metadata.is_object() {
            return Err(invalid("PMTiles metadata must be a JSON object".into()));
        }
        if self.min_zoom > self.max_zoom {
            return Err(invalid(format!("min zoom {} is above max zoom {}", self.min_zoom, self.max_zoom)));
        }
        if let Some((lo, hi)) = self.zooms.filter(|&(lo, hi)| lo < self.min_zoom || hi > self.max_zoom) {
            return Err(invalid(format!(
                "tiles at zooms {lo}..={hi} are outside the declared {}..={}",
                self.min_zoom, self.max_zoom
            )));
        }
        if let Some(big) = self.contents.iter().find(|c| u32::try_from(c.len()).is_err()) {
            return Err(invalid(format!("a tile of {} bytes is too large for PMTiles", big.len())));
        }

        // Latest addition of each tile: reverse, then a stable sort keeps the
        // latest first among equal ids, and dedup keeps the first.
        let mut tiles = self.tiles;
        tiles.reverse();
        tiles.sort_by_key(|&(id, _)| id);
        tiles.dedup_by_key(|&mut (id, _)| id);
        tiles.retain(|&(_, c)| c != u32::MAX);
        if tiles.is_empty() {
            return Err(invalid("a PMTiles archive needs at least one non-empty tile".into()));
        }

        // Blobs go out in order of first use, so the data is clustered.
        let mut offsets: Vec<Option<u64>> = vec![None; self.contents.len()];
        let mut order = Vec::new();
        let mut data_length = 0u64;
        let mut entries: Vec<Entry> = Vec::new();
        let mut addressed = 0u64;
        for &(id, c) in &tiles {
            let length = self.contents[c as usize].len() as u32;
            let offset = *offsets[c as usize].get_or_insert_with(|| {
                order.push(c);
                data_length += u64::from(length);
                data_length - u64::from(length)
            });
            addressed += 1;
            // Same blob as the previous tile id: lengthen that entry's run.
            let extends = |last: &&mut Entry| {
                last.offset == offset && last.tile_id + u64::from(last.run_length) == id && last.run_length < u32::MAX
            };
            if let Some(last) = entries.last_mut().filter(extends) {
                last.run_length += 1;
                continue;
            }
            entries.push(Entry { tile_id: id, offset, length, run_length: 1 });
        }

        let (root, leaves) = build_directories(&entries);
        let metadata = gzip(&serde_json::to_vec(metadata).map_err(io::Error::other)?);

        let (center, center_zoom) = self.center.unwrap_or_else(|| {
            let b = &self.bounds;
            (LonLat::new((b.min_lon + b.max_lon) / 2.0, (b.min_lat + b.max_lat) / 2.0), self.min_zoom)
        });
        let root_offset = HEADER_LEN as u64;
        let metadata_offset = root_offset + root.len() as u64;
        let leaf_offset = metadata_offset + metadata.len() as u64;
        let data_offset = leaf_offset + leaves.len() as u64;
        let header = Header {
            version: VERSION,
            root_offset,
            root_length: root.len() as u64,
            metadata_offset,
            metadata_length: metadata.len() as u64,
            leaf_offset,
            leaf_length: leaves.len() as u64,
            data_offset,
            data_length,
            addressed_tiles: addressed,
            tile_entries: entries.len() as u64,
            tile_contents: order.len() as u64,
            clustered: true,
            internal_compression: Compression::Gzip,
            tile_compression: self.tile_compression,
            tile_type: self.tile_type,
            min_zoom: self.min_zoom,
            max_zoom: self.max_zoom,
            min_lon_e7: e7(self.bounds.min_lon, 180.0),
            min_lat_e7: e7(self.bounds.min_lat, 90.0),
            max_lon_e7: e7(self.bounds.max_lon, 180.0),
            max_lat_e7: e7(self.bounds.max_lat, 90.0),
            center_zoom,
            center_lon_e7: e7(center.lon, 180.0),
            center_lat_e7: e7(center.lat, 90.0),
        };
        out.write_all(&header.to_bytes())?;
        out.write_all(&root)?;
        out.write_all(&metadata)?;
        out.write_all(&leaves)?;
        for c in order {
            out.write_all(&self.contents[c as usize])?;
        }
        Ok(data_offset + data_length)
    }
}

/// The compressed root directory and leaf section for `entries`: everything
/// in the root when it fits in [`ROOT_LIMIT`] with the header, otherwise
/// leaves of 4096 entries (doubled until the root of leaf pointers fits).
fn build_directories(entries: &[Entry]) -> (Vec<u8>, Vec<u8>) {
    let limit = ROOT_LIMIT - HEADER_LEN;
    let root = gzip(&serialize_directory(entries));
    if root.len() <= limit {
        return (root, Vec::new());
    }
    let mut per_leaf = LEAF_ENTRIES;
    loop {
        let mut leaves = Vec::new();
        let mut pointers = Vec::new();
        for chunk in entries.chunks(per_leaf) {
            let leaf = gzip(&serialize_directory(chunk));
            pointers.push(Entry {
                tile_id: chunk[0].tile_id,
                offset: leaves.len() as u64,
                length: leaf.len() as u32,
                run_length: 0,
            });
            leaves.extend_from_slice(&leaf);
        }
        let root = gzip(&serialize_directory(&pointers));
        // One pointer per leaf: the root always fits eventually.
        if root.len() <= limit || pointers.len() == 1 {
            return (root, leaves);
        }
        per_leaf *= 2;
    }
}

// ---------------------------------------------------------------------------
// Reader

/// Reads a PMTiles v3 archive held in memory.
///
/// [`new`](Self::new) checks the header and the root directory; leaf
/// directories are read (and checked) when a lookup needs them. Tile bytes
/// are returned as stored, compressed as [`Header::tile_compression`] says.
/// Directories and metadata may be uncompressed or gzipped.
#[derive(Debug, Clone)]
pub struct PmtilesReader<'a> {
    bytes: &'a [u8],
    header: Header,
    root: Vec<Entry>,
}

fn section<'a>(bytes: &'a [u8], offset: u64, length: u64, what: &str) -> ArchiveResult<&'a [u8]> {
    let end = offset.checked_add(length);
    match end.filter(|e| *e <= bytes.len() as u64) {
        Some(end) => Ok(&bytes[offset as usize..end as usize]),
        None => Err(malformed(format!("{what} ({length} bytes at {offset}) lies beyond the {} bytes", bytes.len()))),
    }
}

impl<'a> PmtilesReader<'a> {
    /// Opens the archive `bytes`.
    ///
    /// # Errors
    /// [`ArchiveError::NotPmtiles`] for other data; [`ArchiveError::Malformed`]
    /// when a section lies beyond the end, the root directory ends past the
    /// first 16 KiB, or the root directory is not valid;
    /// [`ArchiveError::Unsupported`] for Brotli or Zstandard internal compression.
    pub fn new(bytes: &'a [u8]) -> ArchiveResult<Self> {
        let header = Header::parse(bytes)?;
        let root_bytes = section(bytes, header.root_offset, header.root_length, "root directory")?;
        if header.root_offset + header.root_length > ROOT_LIMIT as u64 {
            return Err(malformed(format!(
                "root directory ends at byte {}, past the first {ROOT_LIMIT}",
                header.root_offset + header.root_length
            )));
        }
        section(bytes, header.metadata_offset, header.metadata_length, "metadata")?;
        section(bytes, header.leaf_offset, header.leaf_length, "leaf directories")?;
        section(bytes, header.data_offset, header.data_length, "tile data")?;
        let root = parse_directory(&inflate(root_bytes, header.internal_compression)?)?;
        Ok(Self { bytes, header, root })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The root directory's entries.
    pub fn root_entries(&self) -> &[Entry] {
        &self.root
    }

    /// The metadata as JSON text, decompressed.
    ///
    /// # Errors
    /// [`ArchiveError::Malformed`] when it does not decompress or is not UTF-8.
    pub fn metadata(&self) -> ArchiveResult<String> {
        let raw = section(self.bytes, self.header.metadata_offset, self.header.metadata_length, "metadata")?;
        let text = inflate(raw, self.header.internal_compression)?;
        String::from_utf8(text.into_owned()).map_err(|_| malformed("metadata is not UTF-8"))
    }

    /// The metadata, parsed.
    ///
    /// # Errors
    /// As [`metadata`](Self::metadata), and [`ArchiveError::Malformed`] when it is not JSON.
    pub fn metadata_json(&self) -> ArchiveResult<Value> {
        serde_json::from_str(&self.metadata()?).map_err(|e| malformed(format!("metadata is not JSON: {e}")))
    }

    /// The bytes of `tile`, `None` when the archive has no such tile.
    ///
    /// # Errors
    /// [`ArchiveError::Malformed`] when a directory on the way is broken or the
    /// tile lies outside the data section.
    pub fn tile(&self, tile: TileId) -> ArchiveResult<Option<&'a [u8]>> {
        self.tile_by_id(tile_id(tile.z(), tile.x(), tile.y()))
    }

    /// The bytes of the tile with PMTiles id `id` (see [`tile_id`]), `None` when absent.
    ///
    /// # Errors
    /// As [`tile`](Self::tile).
    pub fn tile_by_id(&self, id: u64) -> ArchiveResult<Option<&'a [u8]>> {
        let mut dir: Cow<'_, [Entry]> = Cow::Borrowed(&self.root);
        let mut end = None;
        for _ in 0..=MAX_DEPTH {
            let i = dir.partition_point(|e| e.tile_id <= id);
            let Some(e) = i.checked_sub(1).map(|i| dir[i]) else { return Ok(None) };
            if e.run_length == 0 {
                end = dir.get(i).map(|next| next.tile_id).or(end);
                dir = Cow::Owned(self.leaf(&e, end)?);
            } else if id - e.tile_id < u64::from(e.run_length) {
                return self.data(&e).map(Some);
            } else {
                return Ok(None);
            }
        }
        Err(malformed(format!("leaf directories nested deeper than {MAX_DEPTH}")))
    }

    /// Every addressed tile with its bytes, in tile id order (runs expanded).
    ///
    /// Stops after the first error, which it yields.
    pub fn tiles(&self) -> Tiles<'_, 'a> {
        Tiles { reader: self, stack: vec![(Cow::Borrowed(&self.root[..]), 0, None)], run: None }
    }

    /// The leaf directory `pointer` points to, which must cover only tile ids
    /// from the pointer's to `end` (the next entry's beside or above it), exclusive.
    fn leaf(&self, pointer: &Entry, end: Option<u64>) -> ArchiveResult<Vec<Entry>> {
        let leaves = section(self.bytes, self.header.leaf_offset, self.header.leaf_length, "leaf directories")?;
        let raw = section(leaves, pointer.offset, u64::from(pointer.length), "leaf directory")?;
        let entries = parse_directory(&inflate(raw, self.header.internal_compression)?)?;
        if entries[0].tile_id < pointer.tile_id {
            return Err(malformed(format!("leaf directory starts before its pointer's tile id {}", pointer.tile_id)));
        }
        if let (Some(end), Some(last)) = (end, entries.last()) {
            // A run's last id, or a nested pointer's first id, must come before `end`.
            if last.tile_id + u64::from(last.run_length.max(1)) > end {
                return Err(malformed(format!("leaf directory reaches past tile id {end}, the next entry's")));
            }
        }
        Ok(entries)
    }

    fn data(&self, e: &Entry) -> ArchiveResult<&'a [u8]> {
        let data = section(self.bytes, self.header.data_offset, self.header.data_length, "tile data")?;
        section(data, e.offset, u64::from(e.length), "tile")
    }
}

/// Iterator over the tiles of an archive, from [`PmtilesReader::tiles`].
#[derive(Debug)]
pub struct Tiles<'r, 'a> {
    reader: &'r PmtilesReader<'a>,
    /// Directories being walked, with the next entry's index and the tile id
    /// the directory must end before (see [`PmtilesReader::leaf`]).
    stack: Vec<(Cow<'r, [Entry]>, usize, Option<u64>)>,
    /// The run being expanded: its entry and how many of its tiles are done.
    run: Option<(Entry, u32)>,
}

impl<'a> Iterator for Tiles<'_, 'a> {
    type Item = ArchiveResult<(TileId, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((e, done)) = &mut self.run {
                if *done < e.run_length {
                    let id = e.tile_id + u64::from(*done);
                    *done += 1;
                    let e = *e;
                    let item = self.resolve(id, &e);
                    if item.is_err() {
                        self.stop();
                    }
                    return Some(item);
                }
                self.run = None;
            }
            let (dir, next, end) = self.stack.last_mut()?;
            let Some(&e) = dir.get(*next) else {
                self.stack.pop();
                continue;
            };
            *next += 1;
            if e.run_length > 0 {
                self.run = Some((e, 0));
                continue;
            }
            let end = dir.get(*next).map(|n| n.tile_id).or(*end);
            let leaf = if self.stack.len() > MAX_DEPTH {
                Err(malformed(format!("leaf directories nested deeper than {MAX_DEPTH}")))
            } else {
                self.reader.leaf(&e, end)
            };
            match leaf {
                Ok(entries) => self.stack.push((Cow::Owned(entries), 0, end)),
                Err(err) => {
                    self.stop();
                    return Some(Err(err));
                }
            }
        }
    }
}

impl<'a> Tiles<'_, 'a> {
    fn stop(&mut self) {
        self.stack.clear();
        self.run = None;
    }

    fn resolve(&self, id: u64, e: &Entry) -> ArchiveResult<(TileId, &'a [u8])> {
        let (z, x, y) = tile_zxy(id);
        let tile = TileId::new(u32::from(z), x, y)
            .map_err(|_| malformed(format!("tile id {id} is at zoom {z}, beyond {}", crate::MAX_ZOOM)))?;
        Ok((tile, self.reader.data(e)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An uncompressed archive: header, root directory, leaf directories, tile data.
    fn archive(root: &[Entry], leaves: &[u8], data: &[u8]) -> Vec<u8> {
        let root = serialize_directory(root);
        let len = |b: &[u8]| b.len() as u64;
        let root_offset = HEADER_LEN as u64;
        let leaf_offset = root_offset + len(&root);
        let data_offset = leaf_offset + len(leaves);
        let header = Header {
            version: VERSION,
            root_offset,
            root_length: len(&root),
            metadata_offset: leaf_offset,
            metadata_length: 0,
            leaf_offset,
            leaf_length: len(leaves),
            data_offset,
            data_length: len(data),
            addressed_tiles: 0,
            tile_entries: 0,
            tile_contents: 0,
            clustered: false,
            internal_compression: Compression::None,
            tile_compression: Compression::None,
            tile_type: TileType::Mvt,
            min_zoom: 0,
            max_zoom: 2,
            min_lon_e7: 0,
            min_lat_e7: 0,
            max_lon_e7: 0,
            max_lat_e7: 0,
            center_zoom: 0,
            center_lon_e7: 0,
            center_lat_e7: 0,
        };
        [&header.to_bytes()[..], &root, leaves, data].concat()
    }

    fn entry(tile_id: u64, run_length: u32, offset: u64, length: u32) -> Entry {
        Entry { tile_id, offset, length, run_length }
    }

    /// Found by fuzzing (`fuzz/fuzz_targets/tile.rs`): a run covering tile ids
    /// 0..4 followed by an entry for id 1 was accepted, and then `tiles()` listed
    /// tile 1/0/0 with the run's bytes while `tile(1/0/0)` returned the other
    /// entry's.
    #[test]
    fn overlapping_runs_are_malformed() {
        // The root directory of the fuzzer's input, as it was: ids 0 (run 4), 1 and 3.
        let root = [0x03, 0x00, 0x01, 0x02, 0x04, 0x01, 0x01, 0x99, 0x01, 0x28, 0x02, 0x01, 0x00, 0x00];
        let err = parse_directory(&root).unwrap_err();
        assert!(err.to_string().contains("overlaps the entry at 1"), "{err}");

        let overlapping = archive(&[entry(0, 4, 0, 3), entry(1, 1, 3, 2)], &[], b"abcde");
        assert!(matches!(PmtilesReader::new(&overlapping), Err(ArchiveError::Malformed { .. })));

        // Runs that end where the next entry starts are fine.
        let adjacent = archive(&[entry(0, 1, 0, 3), entry(1, 1, 3, 2)], &[], b"abcde");
        let reader = PmtilesReader::new(&adjacent).unwrap();
        for item in reader.tiles() {
            let (tile, bytes) = item.unwrap();
            assert_eq!(reader.tile(tile).unwrap(), Some(bytes), "{tile}");
        }
        assert_eq!(reader.tiles().count(), 2);
    }

    /// Same class of input: a leaf directory that lists tile ids belonging to
    /// the root entry after its pointer (`tiles()` listed id 5 twice, with
    /// different bytes).
    #[test]
    fn leaf_reaching_past_the_next_entry_is_malformed() {
        let leaf = serialize_directory(&[entry(5, 1, 1, 1)]);
        let pointer = entry(0, 0, 0, leaf.len() as u32);
        let bad = archive(&[pointer, entry(5, 1, 0, 1)], &leaf, b"AB");
        let reader = PmtilesReader::new(&bad).unwrap();
        assert!(reader.tiles().any(|item| item.is_err()));
        assert!(matches!(reader.tile_by_id(1), Err(ArchiveError::Malformed { .. })));

        let leaf = serialize_directory(&[entry(4, 1, 1, 1)]);
        let pointer = entry(0, 0, 0, leaf.len() as u32);
        let good = archive(&[pointer, entry(5, 1, 0, 1)], &leaf, b"AB");
        let reader = PmtilesReader::new(&good).unwrap();
        let tiles: Vec<(TileId, &[u8])> = reader.tiles().map(Result::unwrap).collect();
        assert_eq!(tiles.len(), 2);
        for (tile, bytes) in tiles {
            assert_eq!(reader.tile(tile).unwrap(), Some(bytes), "{tile}");
        }
    }
}
