//! `orchardmap backup`: a consistent copy of a SQLite deployment while it runs.

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
