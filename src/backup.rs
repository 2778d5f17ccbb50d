//! `orchardmap backup` (a consistent copy of a SQLite deployment while it runs) and `orchardmap migrate`
//! (a SQLite deployment copied to PostgreSQL).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;

/// What `orchardmap backup` was asked for.
#[derive(Args, Debug, Clone)]
pub struct BackupArgs {
    /// The SQLite database to copy (the server may be running on it).
    #[arg(long, env = "DATABASE_URL", default_value = "orchardmap.db")]
    pub db: String,
    /// The copy to write (must not exist). The signing keys go beside it as FILE.keys.json.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The signing-key file to copy [default: DB.keys.json].
    #[arg(long, env = "ORCHARDMAP_KEYS", value_name = "FILE")]
    pub keys: Option<PathBuf>,
}

/// Copies the database (one read snapshot: writers go on meanwhile), checks the copy, copies the keys.
pub async fn run(args: BackupArgs) -> anyhow::Result<()> {
    if args.out.exists() {
        bail!("{} exists; choose a new file", args.out.display());
    }
    let store = store::open(&args.db).await?;
    let started = std::time::Instant::now();
    let partial = args.out.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    store.backup(&partial).await.with_context(|| format!("backing up {}", args.db))?;
    // The copy must open and hold what a database holds.
    let copy_location = partial.to_str().context("the output path is not UTF-8")?.to_string();
    let copy = store::open(&copy_location).await.context("opening the copy")?;
    let trees = copy.count_trees().await?;
    let orchards = copy.orchards().await?.len();
    drop(copy);
    std::fs::rename(&partial, &args.out).with_context(|| format!("renaming to {}", args.out.display()))?;
    let key_file = args.keys.clone().unwrap_or_else(|| api::trace::default_key_file(&args.db));
    let mut keys = String::from("no key file");
    if key_file.exists() {
        let to = PathBuf::from(format!("{}.keys.json", args.out.display()));
        std::fs::copy(&key_file, &to).with_context(|| format!("copying {}", key_file.display()))?;
        keys = format!("keys copied to {}", to.display());
    }
    println!(
        "backup of {} written to {} in {:.1} s: {trees} trees, {orchards} orchards; {keys} (photos: copy the \
         photo folder too, e.g. rsync -a; its files never change)",
        args.db,
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What `orchardmap migrate` was asked for.
#[derive(Args, Debug, Clone)]
pub struct MigrateArgs {
    /// The SQLite database to copy.
    #[arg(long, value_name = "FILE.db")]
    pub from: PathBuf,
    /// The PostgreSQL database to copy it into (empty, or already holding exactly this data).
    #[arg(long, value_name = "postgres://...")]
    pub to: String,
    /// The source's signing keys [default: FILE.db.keys.json].
    #[arg(long, value_name = "FILE")]
    pub keys_from: Option<PathBuf>,
    /// Where the PostgreSQL deployment's servers read the keys [default: orchardmap-keys.json].
    #[arg(long, value_name = "FILE")]
    pub keys_to: Option<PathBuf>,
}

/// Copies every table, checks counts and checksums, and copies the signing keys.
pub async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    if !args.to.starts_with("postgres://") && !args.to.starts_with("postgresql://") {
        bail!("--to must be a postgres:// URL, not {:?}", args.to);
    }
    if !args.from.exists() {
        bail!("{} does not exist", args.from.display());
    }
    // Keys first: a mismatch is found before anything is written.
    let from_location = args.from.to_str().context("the --from path is not UTF-8")?;
    let keys_from = args.keys_from.clone().unwrap_or_else(|| api::trace::default_key_file(from_location));
    let keys_to = args.keys_to.clone().unwrap_or_else(|| api::trace::default_key_file(&args.to));
    let keys = if keys_from.exists() {
        let text = std::fs::read_to_string(&keys_from).with_context(|| format!("reading {}", keys_from.display()))?;
        if keys_to.exists() && std::fs::read_to_string(&keys_to)? != text {
            bail!("{} exists with other keys; move it away or name another --keys-to", keys_to.display());
        }
        Some(text)
    } else {
        None
    };
    let started = std::time::Instant::now();
    let report = store::migrate::sqlite_to_postgres(&args.from, &args.to, |t| {
        println!("  {:<16} {:>10} rows  checksum {}", t.table, t.rows, t.checksum);
    })
    .await?;
    let key_note = match keys {
        Some(text) => {
            let ring: geo_core::trust::KeyRing = serde_json::from_str(&text).context("the source key file")?;
            api::trace::write_keys(&keys_to, &ring).map_err(anyhow::Error::msg)?;
            format!("signing keys in {}", keys_to.display())
        }
        None => format!("no key file at {}: the servers will make a new key", keys_from.display()),
    };
    println!(
        "{} {} to {} in {:.1} s: every table's rows and checksums match; {key_note}. Photos are not in the \
         database: copy the photo folder and give the servers --photos.",
        if report.copied { "copied" } else { "already copied (nothing written), checked" },
        args.from.display(),
        store::PostgresStore::redacted(&args.to),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
