//! Offline packs: every vector tile of an area and a zoom range in one
//! PMTiles v3 archive (gzip-compressed MVT, `vector_layers` in its metadata),
//! rendered by the same code as the live tiles. Used by `orchardmap tiles
//! pack` and `GET /tiles/pack`.

use std::io::Write;

use geo_core::{BBox, LonLat, TreeFilter};
use tiles::TileId;
use tiles::pmtiles::{Compression, PmtilesWriter, orchard_metadata};

use crate::TreeCache;
use crate::routes::tiles::{Format, MAX_TILE_ZOOM, render};

/// Most tiles one pack may address (the writer keeps distinct tiles in memory until it finishes).
pub const MAX_PACK_TILES: u64 = 250_000;

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackSummary {
    /// Tiles in the area and zoom range.
    pub tiles_addressed: u64,
    /// Of those, tiles with something in them (empty ones are left out: clients draw nothing).
    pub tiles_written: u64,
    /// Bytes of the archive.
    pub bytes: u64,
}

/// Why a pack cannot be made, naming the parameter.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// A parameter is out of range; `.0` names it.
    #[error("{0} {1}")]
    Invalid(&'static str, String),
    /// Writing the archive failed.
    #[error("writing the pack: {0}")]
    Io(#[from] std::io::Error),
}

/// The columns and rows of the tiles covering `bbox` at zoom `z`.
fn range(bbox: &BBox, z: u8) -> Result<(u32, u32, u32, u32), PackError> {
    let clamp = |lat: f64| lat.clamp(-tiles::MAX_LATITUDE, tiles::MAX_LATITUDE);
    let nw = tiles::tile_for(LonLat::new(bbox.min_lon, clamp(bbox.max_lat)), z)
        .map_err(|e| PackError::Invalid("bbox", e.to_string()))?;
    let se = tiles::tile_for(LonLat::new(bbox.max_lon, clamp(bbox.min_lat)), z)
        .map_err(|e| PackError::Invalid("bbox", e.to_string()))?;
    Ok((nw.x(), se.x(), nw.y(), se.y()))
}

/// How many tiles cover `bbox` from `min_zoom` to `max_zoom`, checking the
/// zooms and refusing more than [`MAX_PACK_TILES`], naming the figures.
pub fn tile_count(bbox: &BBox, min_zoom: u8, max_zoom: u8) -> Result<u64, PackError> {
    if max_zoom > MAX_TILE_ZOOM {
        return Err(PackError::Invalid("maxzoom", format!("{max_zoom} is outside 0..{MAX_TILE_ZOOM}")));
    }
    if min_zoom > max_zoom {
        return Err(PackError::Invalid("minzoom", format!("{min_zoom} is above maxzoom {max_zoom}")));
    }
    let mut n = 0u64;
    for z in min_zoom..=max_zoom {
        let (x0, x1, y0, y1) = range(bbox, z)?;
        n += u64::from(x1 - x0 + 1) * u64::from(y1 - y0 + 1);
    }
    if n > MAX_PACK_TILES {
        return Err(PackError::Invalid(
            "bbox",
            format!(
                "and zooms {min_zoom}..{max_zoom} cover {n} tiles, more than {MAX_PACK_TILES}: \
                 take a smaller area or a lower maxzoom"
            ),
        ));
    }
    Ok(n)
}

/// Renders every tile covering `bbox` from `min_zoom` to `max_zoom` and
/// writes the archive to `out` (buffered by the caller); refuses what
/// [`tile_count`] refuses.
pub fn write_pack(
    cache: &TreeCache,
    bbox: BBox,
    min_zoom: u8,
    max_zoom: u8,
    out: &mut impl Write,
) -> Result<PackSummary, PackError> {
    let addressed = tile_count(&bbox, min_zoom, max_zoom)?;
    let mut writer = PmtilesWriter::new(Compression::Gzip, bbox, min_zoom, max_zoom)
        .with_center(LonLat::new((bbox.min_lon + bbox.max_lon) / 2.0, (bbox.min_lat + bbox.max_lat) / 2.0), max_zoom);
    let filter = TreeFilter::default();
    let mut written = 0u64;
    for z in min_zoom..=max_zoom {
        let (x0, x1, y0, y1) = range(&bbox, z)?;
        for x in x0..=x1 {
            for y in y0..=y1 {
                let tile = TileId::new(u32::from(z), x, y).map_err(|e| PackError::Invalid("bbox", e.to_string()))?;
                let bytes = render(cache, tile, Format::Mvt, &filter);
                if bytes.is_empty() {
                    continue;
                }
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                gz.write_all(&bytes)?;
                writer.add_tile(tile, &gz.finish()?);
                written += 1;
            }
        }
    }
    if written == 0 {
        return Err(PackError::Invalid("bbox", "holds no tree or orchard at these zooms".into()));
    }
    let metadata = orchard_metadata("orchardmap offline pack", min_zoom, max_zoom);
    let bytes = writer.finish(&metadata, out)?;
    Ok(PackSummary { tiles_addressed: addressed, tiles_written: written, bytes })
}
