//! Writes a small example tile to disk, to check it with other tools, e.g.
//!
//! ```text
//! cargo run -p orchardmap-tiles --example write_tile -- /tmp/tile.mvt
//! ogrinfo -al -oo Z=16 -oo X=52437 -oo Y=30440 /tmp/tile.mvt
//! ```
// A panic in a test, bench or example is a failure report; unwrap is fine here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;

use geo_core::LonLat;
use tiles::{TilePoint, TilePolygon, encode_trees_tile, tile_for};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "tile.mvt".to_string());
    let tile = tile_for(LonLat::new(108.05, 12.68), 16)?;
    let tree = |id: u64, lon: f64, lat: f64, cultivar: &str, health: &'static str, year: Option<i32>| TilePoint {
        id,
        location: LonLat::new(lon, lat),
        code: format!("DUR-{id:04}"),
        cultivar: cultivar.to_string(),
        health: Cow::Borrowed(health),
        planted_year: year,
        orchard: "DL-CMG-EATIEU-007".to_string(),
    };
    let trees = [
        tree(1, 108.0500, 12.6800, "Ri6", "good", Some(2015)),
        tree(2, 108.0501, 12.6800, "Ri6", "fair", Some(2015)),
        tree(3, 108.0502, 12.6801, "Monthong", "dead", None),
    ];
    let ring = |pts: &[(f64, f64)]| pts.iter().map(|&(lon, lat)| LonLat::new(lon, lat)).collect::<Vec<_>>();
    // One orchard wholly inside the tile, with a pond; one running past the
    // tile's east edge (about 108.05054), which is clipped at the buffer.
    let inside = TilePolygon {
        orchard: "DL-CMG-EATIEU-007".to_string(),
        name: "Vườn ông Y Blang Niê".to_string(),
        planting_area_code: Some("VN-DLOR-0123".to_string()),
        exterior: ring(&[(108.0495, 12.6795), (108.0503, 12.6795), (108.0503, 12.6806), (108.0495, 12.6806)]),
        holes: vec![ring(&[(108.0499, 12.6797), (108.0501, 12.6797), (108.0501, 12.6799), (108.0499, 12.6799)])],
    };
    let crossing = TilePolygon {
        orchard: "DL-CMG-EATIEU-008".to_string(),
        name: "Vườn bà H'Nơ".to_string(),
        planting_area_code: None,
        exterior: ring(&[(108.0504, 12.6790), (108.0530, 12.6790), (108.0530, 12.6800), (108.0504, 12.6800)]),
        holes: vec![],
    };
    let bytes = encode_trees_tile(tile, &trees, &[inside, crossing]);
    std::fs::write(&path, &bytes)?;
    println!("wrote {} bytes of tile {tile} to {path}", bytes.len());
    Ok(())
}
