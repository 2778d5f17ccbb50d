//! The `orchardmap` command: serve the map and API, import surveys.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

mod backup;
mod export;
mod ingest;
mod logging;
mod tiles;
mod trace;
mod users;

/// Durian orchards mapped tree by tree: survey import, spatial API, map tiles.
#[derive(Parser, Debug)]
#[command(
    name = "orchardmap",
    version,
    about,
    after_help = "Examples:\n  \
    orchardmap serve --demo                       # sample data on http://127.0.0.1:8080\n  \
    orchardmap import data/orchards.geojson       # orchards first\n  \
    orchardmap import data/trees.csv --db my.db   # then their trees\n  \
    orchardmap serve --db postgres://postgres@127.0.0.1/orchardmap --bind 0.0.0.0:8080"
)]
struct Cli {
    /// Log format on stderr: text, or json (one object per line, for log collectors).
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the size of the import variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP service: loads every tree into memory and follows the database for changes.
    Serve(ServeArgs),
    /// A4 sheets of QR tags for an orchard's trees (signed links, tree code, cultivar, orchard).
    #[command(after_help = "Example:\n  \
    orchardmap labels --orchard DL-CK-EATIEU-001 --format pdf --out tags.pdf --public-url https://orchardmap.example.vn")]
    Labels(trace::LabelArgs),
    /// Pre-printed tags: reserve codes before the trees are registered.
    #[command(subcommand)]
    Tags(trace::TagsCommand),
    /// The keys that sign labels: show, rotate, revoke.
    #[command(subcommand)]
    Keys(trace::KeysCommand),
    /// Check a scanned label URL offline: genuine (exit 0), unsigned (3), tampered (4) or revoked (5).
    #[command(after_help = "Examples:\n  \
    orchardmap verify 'https://orchardmap.example.vn/t/K7DW3QX?8030=...' --jwks jwks.json\n  \
    orchardmap verify 'http://127.0.0.1:8080/l/LK7DW3QX?8030=...' --db orchardmap.db")]
    Verify(trace::VerifyArgs),
    /// A consistent copy of a SQLite database while the server runs (PostgreSQL: use pg_dump).
    #[command(after_help = "Example:\n  orchardmap backup --db orchardmap.db --out backups/orchardmap-2026-11-29.db")]
    Backup(backup::BackupArgs),
    /// Copy a SQLite deployment to PostgreSQL (every table, then counts and checksums compared; safe to
    /// run again).
    #[command(
        after_help = "Example:\n  orchardmap migrate --from orchardmap.db --to postgres://postgres@127.0.0.1/orchardmap"
    )]
    Migrate(backup::MigrateArgs),
    /// Export trees to GeoJSON, CSV, KML or GeoPackage (streamed; filters as in the API).
    Export(export::ExportArgs),
    /// Map tiles: offline packs.
    #[command(subcommand)]
    Tiles(tiles::TilesCommand),
    /// Manage accounts and their API tokens.
    #[command(after_help = "Examples:\n  \
    orchardmap user add --name \"Lan\" --role volunteer\n  \
    orchardmap user add --name \"Ông Tám\" --role farmer --orchard DL-CK-EATIEU-001\n  \
    orchardmap user list\n  \
    orchardmap user revoke Lan")]
    User {
        /// SQLite file path or postgres:// URL.
        #[arg(long, env = "DATABASE_URL", default_value = "orchardmap.db", global = true)]
        db: String,
        #[command(subcommand)]
        command: users::UserCommand,
    },
    /// Import a survey file: trees from CSV (plain, KoboToolbox or ODK Central exports), GeoJSON,
    /// newline-delimited GeoJSON, GPX waypoints or KML placemarks; or orchard boundaries from a
    /// GeoJSON FeatureCollection of polygons.
    ///
    /// The whole file is one transaction: every accepted row or nothing. Rows close to a stored
    /// tree (or to an earlier row) are reported as probable duplicates; rows naming a tree id or
    /// tag code update that tree. Importing the same file again does nothing.
    ///
    /// Exit codes: 0 imported (warnings and duplicates allowed), 2 some rows rejected (the others
    /// were imported, the rejected ones written to a reject file), 1 nothing imported (unreadable
    /// file, bad option, database error).
    #[command(after_help = "Examples:\n  \
    orchardmap import kobo-export.csv --surveyor \"Nguyễn Văn A\"\n  \
    orchardmap import survey.csv --crs EPSG:9218 --map x=Toa_do_X --map y=Toa_do_Y --dry-run\n  \
    orchardmap import waypoints.gpx --orchard DL-CK-EATIEU-001 --report report.json")]
    Import {
        /// The file to import.
        file: PathBuf,
        /// SQLite file path or postgres:// URL.
        #[arg(long, env = "DATABASE_URL", default_value = "orchardmap.db")]
        db: String,
        /// csv, geojson, geojsonseq, gpx, kml, or orchards (boundaries); detected when absent.
        #[arg(long)]
        format: Option<String>,
        /// Coordinate system of x/y columns: EPSG:NNNN (VN-2000 zones, UTM 48N/49N, 3857 built in)
        /// or a PROJ string.
        #[arg(long)]
        crs: Option<String>,
        /// The file's latitude and longitude columns are swapped: swap them back.
        #[arg(long)]
        swap_xy: bool,
        /// Map a field to a column or property, e.g. --map "lat=Vĩ độ" (repeatable).
        #[arg(long = "map", value_name = "FIELD=COLUMN")]
        map: Vec<String>,
        /// Accept only points in this box (default: Vietnam).
        #[arg(long, value_name = "MINLON,MINLAT,MAXLON,MAXLAT")]
        region: Option<String>,
        /// GPS accuracy (metres) above which a row gets a warning [default: 10].
        #[arg(long, value_name = "M")]
        accuracy_warn_m: Option<String>,
        /// GPS accuracy (metres) above which a row is rejected [default: 25].
        #[arg(long, value_name = "M")]
        accuracy_reject_m: Option<String>,
        /// A new row this close to a tree is a probable duplicate [default: 2].
        #[arg(long, value_name = "M")]
        same_tree_radius_m: Option<String>,
        /// A new row this close to a tree gets a "nearby tree" warning [default: 4].
        #[arg(long, value_name = "M")]
        nearby_radius_m: Option<String>,
        /// Insert probable duplicates anyway.
        #[arg(long)]
        allow_near: bool,
        /// Show the column mapping, a preview and the report; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Who made the survey (recorded with it).
        #[arg(long, default_value = "unknown")]
        surveyor: String,
        /// The device used (phone model, GPS unit).
        #[arg(long)]
        device: Option<String>,
        /// Orchard for rows that name none (otherwise found from the orchard boundaries).
        #[arg(long)]
        orchard: Option<String>,
        /// Write the full report as JSON to this file.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Where to write rejected rows [default: NAME.rejected.EXT beside the input].
        #[arg(long, value_name = "FILE")]
        rejects: Option<PathBuf>,
    },
}

/// Completes on SIGTERM or SIGINT (Ctrl-C). The handlers are installed at once, when this is
/// called, so a signal that comes before the future is first polled is not lost (nor kills
/// the process the default way).
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let streams = {
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    };
    async move {
        #[cfg(unix)]
        let name = match streams {
            (Ok(mut term), Ok(mut int)) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            },
            _ => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        };
        #[cfg(not(unix))]
        let name = {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        };
        tracing::info!(signal = name, "shutting down");
    }
}

/// What `orchardmap serve` was asked for.
#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// SQLite file path or postgres:// URL.
    #[arg(long, env = "DATABASE_URL", default_value = "orchardmap.db")]
    db: String,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Import the bundled sample (about 10,000 trees in Đắk Lắk) first when the database has no trees.
    #[arg(long)]
    demo: bool,
    /// Folder for tree photos [default: NAME-photos beside a SQLite database; none for PostgreSQL,
    /// which then refuses photo uploads].
    #[arg(long, env = "ORCHARDMAP_PHOTOS", value_name = "DIR")]
    photos: Option<PathBuf>,
    /// Largest photo upload in bytes.
    #[arg(long, default_value_t = api::DEFAULT_MAX_PHOTO_BYTES, value_name = "BYTES")]
    max_photo_bytes: usize,
    /// Requests per minute each client may make without a token, on average (0: no limit; map
    /// tiles and the map page's files are not counted).
    #[arg(long, env = "ORCHARDMAP_RATE_LIMIT", default_value_t = 600, value_name = "N")]
    rate_limit: u32,
    /// Requests such a client may make at once before the average applies.
    #[arg(long, default_value_t = 120, value_name = "N")]
    rate_burst: u32,
    /// Failed authentications (bad, unknown or revoked tokens) each client may make per minute
    /// before it is answered 429 (0: no limit; for API robustness testing only).
    #[arg(long, env = "ORCHARDMAP_AUTH_FAILURE_LIMIT", default_value_t = 10, value_name = "N")]
    auth_failure_limit: u32,
    /// Memory for rendered map tiles, in MiB (least recently used tiles leave first).
    #[arg(long, default_value_t = 256, value_name = "MIB")]
    tile_cache_mb: usize,
    /// Basemap of the map page: a raster tile URL template with {z}, {x}, {y}, or `none` (offline)
    /// [default: OpenStreetMap's standard tiles].
    #[arg(long, env = "ORCHARDMAP_BASEMAP", value_name = "URL|none")]
    basemap: Option<String>,
    /// The public base URL printed in QR codes, e.g. https://orchardmap.example.vn [default: the
    /// address each request came to].
    #[arg(long, env = "ORCHARDMAP_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// The signing-key file [default: DB.keys.json beside a SQLite database, else
    /// orchardmap-keys.json; created on first run].
    #[arg(long, env = "ORCHARDMAP_KEYS", value_name = "FILE")]
    keys: Option<PathBuf>,
    /// The `dist` folder of the maplibre-gl npm package, served to the map page [default:
    /// node_modules/maplibre-gl/dist when installed; otherwise the page loads MapLibre from a CDN].
    #[arg(long, env = "ORCHARDMAP_ASSETS", value_name = "DIR")]
    assets: Option<PathBuf>,
    /// On SIGTERM or SIGINT: stop accepting connections, give the requests in flight this many
    /// seconds to finish, then cut short those left (a running import is rolled back) and exit.
    #[arg(long, env = "ORCHARDMAP_SHUTDOWN_TIMEOUT", default_value_t = 30, value_name = "SECS")]
    shutdown_timeout: u64,
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let ServeArgs {
        db,
        bind,
        demo,
        photos,
        max_photo_bytes,
        rate_limit,
        rate_burst,
        auth_failure_limit,
        tile_cache_mb,
        basemap,
        public_url,
        keys,
        assets,
        shutdown_timeout,
    } = args;
    let mut map = api::MapSettings { assets, ..api::MapSettings::default() };
    if let Some(url) = basemap {
        map.basemap = (!url.eq_ignore_ascii_case("none") && !url.is_empty()).then_some(url);
    }
    // Installed before anything slow: a signal during start-up (the sample import, loading the
    // trees) stops the server there; an import of the sample is then rolled back.
    let mut signal = Box::pin(shutdown_signal());
    let starting = async {
        let store = store::open(&db).await?;
        if demo && store.count_trees().await? == 0 {
            let report = ingest::import_sample(store.clone()).await.context("importing the bundled sample")?;
            tracing::info!(orchards = report.orchards, trees = report.imported, "imported the bundled sample");
        }
        let started = std::time::Instant::now();
        let photo_dir =
            photos.or_else(|| store::photos::PhotoStore::beside_database(&db).map(|p| p.root().to_path_buf()));
        let hygiene = api::Hygiene {
            rate_per_minute: rate_limit,
            rate_burst,
            auth_failures_per_minute: auth_failure_limit,
            ..api::Hygiene::default()
        };
        let tile_cache_bytes = tile_cache_mb.saturating_mul(1024 * 1024);
        let key_file = Some(keys.unwrap_or_else(|| api::trace::default_key_file(&db)));
        let config = api::Config {
            bind,
            photo_dir,
            max_photo_bytes,
            map,
            hygiene,
            tile_cache_bytes,
            key_file,
            public_url,
            shutdown_timeout: std::time::Duration::from_secs(shutdown_timeout),
            ..api::Config::default()
        };
        let app = api::Application::build(store, config).await?;
        tracing::info!(trees = app.tree_count(), elapsed_ms = started.elapsed().as_millis() as u64, "trees loaded");
        anyhow::Ok(app)
    };
    let app = tokio::select! {
        app = starting => app?,
        () = &mut signal => {
            tracing::info!("stopped while starting, before serving");
            return Ok(());
        }
    };
    let addr = app.local_addr()?;
    // The e2e tests read this line to learn the port.
    println!("orchardmap serving {} trees from {db} on http://{addr}/", app.tree_count());
    app.run_until(signal).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve(args).await.map(|()| ExitCode::SUCCESS),
        Command::Labels(args) => trace::labels(args).await.map(|()| ExitCode::SUCCESS),
        Command::Tags(command) => trace::tags(command).await.map(|()| ExitCode::SUCCESS),
        Command::Keys(command) => trace::keys(command).map(|()| ExitCode::SUCCESS),
        Command::Verify(args) => trace::verify(args),
        Command::Backup(args) => backup::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Migrate(args) => backup::migrate(args).await.map(|()| ExitCode::SUCCESS),
        Command::Export(args) => export::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Tiles(command) => tiles::run(command).await.map(|()| ExitCode::SUCCESS),
        Command::User { db, command } => users::run(&db, command).await.map(|()| ExitCode::SUCCESS),
        Command::Import {
            file,
            db,
            format,
            crs,
            swap_xy,
            map,
            region,
            accuracy_warn_m,
            accuracy_reject_m,
            same_tree_radius_m,
            nearby_radius_m,
            allow_near,
            dry_run,
            surveyor,
            device,
            orchard,
            report,
            rejects,
        } => {
            let orchards = format.as_deref().is_some_and(|f| f.eq_ignore_ascii_case("orchards"));
            let mut options: Vec<(&'static str, String)> = vec![("surveyor", surveyor)];
            let optional = [
                ("format", format.filter(|_| !orchards)),
                ("crs", crs),
                ("region", region),
                ("accuracy_warn_m", accuracy_warn_m),
                ("accuracy_reject_m", accuracy_reject_m),
                ("same_tree_radius_m", same_tree_radius_m),
                ("nearby_radius_m", nearby_radius_m),
                ("device", device),
                ("orchard", orchard),
            ];
            options.extend(optional.into_iter().filter_map(|(n, v)| v.map(|v| (n, v))));
            options.extend(map.into_iter().map(|m| ("map", m)));
            for (name, on) in [("swap_xy", swap_xy), ("allow_near", allow_near), ("dry_run", dry_run)] {
                if on {
                    options.push((name, "true".into()));
                }
            }
            let job = ingest::ImportJob { file, db, options, orchards, report, rejects };
            let outcome = ingest::import_file(job).await?;
            Ok(if outcome.rejected > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init_logging(cli.log_format == "json");
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let serving = matches!(cli.command, Command::Serve(_));
    let code = match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    };
    if serving {
        // Dropping the runtime would wait for every blocking task without limit. After `serve`
        // some may remain (an export or import cut short stops at its next batch): stop waiting
        // soon, and drop the connections still sending a body (Application::run_until).
        runtime.shutdown_timeout(SERVE_EXIT_WAIT);
    }
    code
}

/// Longest wait for the runtime's tasks once `serve` has stopped.
const SERVE_EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
