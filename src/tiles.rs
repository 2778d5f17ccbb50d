//! `orchardmap tiles pack`: an offline pack of an area (PMTiles v3 of the
//! vector tiles, rendered as the server renders them) for places without
//! signal. Written beside its final name (`FILE.partial`) and renamed when
//! complete.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use geo_core::BBox;

/// `orchardmap tiles ...`.
#[derive(Subcommand, Debug, Clone)]
pub enum TilesCommand {
    /// Write every vector tile of an area and zoom range to one PMTiles file.
    #[command(after_help = "Example:\n  \
        orchardmap tiles pack --bbox 108.0,12.6,108.2,12.8 --minzoom 10 --maxzoom 18 --out eatieu.pmtiles")]
    Pack(PackArgs),
}

/// What `orchardmap tiles pack` was asked for.
#[derive(Args, Debug, Clone)]
pub struct PackArgs {
    /// SQLite file path or postgres:// URL.
    #[arg(long, env = "DATABASE_URL", default_value = "orchardmap.db")]
    pub db: String,
    /// The area: minLon,minLat,maxLon,maxLat.
    #[arg(long, value_parser = parse_bbox, allow_hyphen_values = true)]
    pub bbox: BBox,
    /// Lowest zoom in the pack.
    #[arg(long, default_value_t = 10)]
    pub minzoom: u8,
    /// Highest zoom in the pack (at most 20).
    #[arg(long, default_value_t = 18)]
    pub maxzoom: u8,
    /// The file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

fn parse_bbox(raw: &str) -> Result<BBox, String> {
    raw.parse::<BBox>().map_err(|e| e.to_string())
}

/// Runs a `tiles` command.
pub async fn run(command: TilesCommand) -> anyhow::Result<()> {
    let TilesCommand::Pack(args) = command;
    // Checked before loading the trees: a refused area fails at once.
    api::pack::tile_count(&args.bbox, args.minzoom, args.maxzoom).map_err(|e| anyhow::anyhow!("--{e}"))?;
    let store = store::open(&args.db).await.with_context(|| format!("opening {}", args.db))?;
    let cache = api::TreeCache::load(store.as_ref()).await.context("loading the trees")?;
    let partial = args.out.with_extension("pmtiles.partial");
    let out = args.out.clone();
    let summary = tokio::task::spawn_blocking(move || -> anyhow::Result<api::pack::PackSummary> {
        let file = std::fs::File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
        let mut writer = std::io::BufWriter::new(file);
        let summary = api::pack::write_pack(&cache, args.bbox, args.minzoom, args.maxzoom, &mut writer)
            .map_err(|e| anyhow::anyhow!("{e}"));
        let summary = match summary.and_then(|s| {
            std::io::Write::flush(&mut writer)?;
            Ok(s)
        }) {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        };
        std::fs::rename(&partial, &out).with_context(|| format!("renaming to {}", out.display()))?;
        Ok(summary)
    })
    .await??;
    eprintln!(
        "wrote {}: {} tiles with trees or orchards of {} in the area, {} bytes",
        args.out.display(),
        summary.tiles_written,
        summary.tiles_addressed,
        summary.bytes
    );
    Ok(())
}
