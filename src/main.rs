//! The `orchardmap` command: serve the map and API, import surveys.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

mod ingest;

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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP service: loads every tree into memory and follows the database for changes.
    Serve {
        /// SQLite file path or postgres:// URL.
        #[arg(long, env = "DATABASE_URL", default_value = "orchardmap.db")]
        db: String,
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: SocketAddr,
        /// Import the bundled sample (about 10,000 trees in Đắk Lắk) first when the database has no trees.
        #[arg(long)]
        demo: bool,
    },
    /// Import a survey file: a trees CSV (lat, lon, accuracy_m, cultivar, planted_year, health,
    /// orchard, surveyed_at) or an orchards GeoJSON FeatureCollection of polygons.
    ///
    /// Exit codes: 0 all rows imported (warnings allowed), 2 some rows rejected (the others were
    /// imported), 1 nothing imported (unreadable file, missing column, unknown orchard, database error).
    Import {
        /// The file to import (.csv or .geojson/.json).
        file: PathBuf,
        /// SQLite file path or postgres:// URL.
        #[arg(long, env = "DATABASE_URL", default_value = "orchardmap.db")]
        db: String,
        /// Who made the survey (recorded with the trees).
        #[arg(long, default_value = "unknown")]
        surveyor: String,
        /// Check and report without writing anything.
        #[arg(long)]
        dry_run: bool,
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    use std::io::IsTerminal;
    // Colours only on a terminal: logs piped to files or journald stay greppable.
    let ansi = std::io::stderr().is_terminal();
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

async fn serve(db: String, bind: SocketAddr, demo: bool) -> anyhow::Result<()> {
    let store = store::open(&db).await?;
    if demo && store.count_trees().await? == 0 {
        let report = ingest::import_sample(store.as_ref()).await.context("importing the bundled sample")?;
        tracing::info!(orchards = report.orchards, trees = report.imported, "imported the bundled sample");
    }
    let started = std::time::Instant::now();
    let app = api::Application::build(store, api::Config { bind, ..api::Config::default() }).await?;
    let addr = app.local_addr()?;
    tracing::info!(trees = app.tree_count(), elapsed_ms = started.elapsed().as_millis() as u64, "trees loaded");
    // The e2e tests read this line to learn the port.
    println!("orchardmap serving {} trees from {db} on http://{addr}/", app.tree_count());
    app.run_until(shutdown_signal()).await?;
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { db, bind, demo } => serve(db, bind, demo).await.map(|()| ExitCode::SUCCESS),
        Command::Import { file, db, surveyor, dry_run } => {
            let outcome = ingest::import_file(&file, &db, &surveyor, dry_run).await?;
            Ok(if outcome.rejected > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
