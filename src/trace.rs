//! Traceability commands: `orchardmap labels`, `orchardmap tags issue`,
//! `orchardmap verify` and `orchardmap keys`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use geo_core::trust::{PublicKeys, Verdict};
use geo_core::{OrchardId, Tree, TreeId};

/// Where keys and links come from.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// SQLite file path or postgres:// URL.
    #[arg(long, env = "DATABASE_URL", default_value = "orchardmap.db")]
    pub db: String,
    /// The signing-key file [default: DB.keys.json beside a SQLite database, else orchardmap-keys.json].
    #[arg(long, env = "ORCHARDMAP_KEYS", value_name = "FILE")]
    pub keys: Option<PathBuf>,
}

impl Common {
    fn key_file(&self) -> PathBuf {
        self.keys.clone().unwrap_or_else(|| api::trace::default_key_file(&self.db))
    }
}

/// `orchardmap labels`.
#[derive(Args, Debug, Clone)]
pub struct LabelArgs {
    #[command(flatten)]
    pub common: Common,
    /// The orchard whose trees get tags (sorted by code).
    #[arg(long)]
    pub orchard: String,
    /// pdf or svg.
    #[arg(long, default_value = "pdf", value_parser = ["pdf", "svg"])]
    pub format: String,
    /// The file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The public base URL printed in the codes, e.g. https://orchardmap.example.vn.
    #[arg(long, env = "ORCHARDMAP_PUBLIC_URL")]
    pub public_url: String,
}

/// `orchardmap tags ...`.
#[derive(Subcommand, Debug, Clone)]
pub enum TagsCommand {
    /// Reserve N unassigned tag codes and print their sheet; scanning one opens "register this tree".
    #[command(after_help = "Example:\n  \
        orchardmap tags issue --count 240 --out tags.pdf --public-url https://orchardmap.example.vn")]
    Issue {
        #[command(flatten)]
        common: Common,
        /// How many tags (1 to 10,000).
        #[arg(long)]
        count: u32,
        /// pdf or svg.
        #[arg(long, default_value = "pdf", value_parser = ["pdf", "svg"])]
        format: String,
        /// The sheet to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The public base URL printed in the codes.
        #[arg(long, env = "ORCHARDMAP_PUBLIC_URL")]
        public_url: String,
        /// Who issues them (recorded).
        #[arg(long, default_value = "cli")]
        by: String,
    },
}

/// `orchardmap keys ...`.
#[derive(Subcommand, Debug, Clone)]
pub enum KeysCommand {
    /// Print the public keys (JWKS), creating the key file if needed.
    Show(Common),
    /// Start signing with a new key; labels signed with the old one still verify. Running servers
    /// pick the new key up within seconds.
    Rotate(Common),
    /// Revoke a key: labels signed with it show "revoked".
    Revoke {
        #[command(flatten)]
        common: Common,
        /// The key id (kid) to revoke.
        kid: String,
    },
}

/// `orchardmap verify`.
#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    /// The scanned URL.
    pub url: String,
    /// A JWKS file (as served at /.well-known/jwks.json) [default: the public keys of the local key file].
    #[arg(long, value_name = "FILE")]
    pub jwks: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
}

fn write_sheet(labels: &[tiles::print::Label], pdf: bool, title: String, out: &PathBuf) -> anyhow::Result<usize> {
    let opts = tiles::print::SheetOptions { kind: tiles::print::LabelKind::TreeTag, ec: None, title: Some(title) };
    let bytes = if pdf {
        tiles::print::sheet_pdf(labels, &opts)?
    } else {
        tiles::print::sheet_svg(labels, &opts)?.into_bytes()
    };
    let partial = out.with_extension("partial");
    std::fs::write(&partial, &bytes).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, out).with_context(|| format!("renaming to {}", out.display()))?;
    Ok(bytes.len())
}

/// `orchardmap labels --orchard ID`.
pub async fn labels(args: LabelArgs) -> anyhow::Result<()> {
    let store = store::open(&args.common.db).await?;
    let trace = api::trace::Trace::from_key_file(&args.common.key_file(), Some(args.public_url.clone()))
        .map_err(anyhow::Error::msg)?;
    let id = OrchardId::new(args.orchard.as_str())?;
    let orchard = store.orchard(&id).await?.with_context(|| format!("no orchard {id}"))?;
    let mut trees: Vec<Tree> = Vec::new();
    let mut after = TreeId(0);
    loop {
        let page = store.trees_after(after, 10_000).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        trees.extend(page.into_iter().filter(|t| t.orchard_id == id));
    }
    if trees.is_empty() {
        bail!("orchard {id} has no trees");
    }
    trees.sort_by_key(|t| t.code);
    let refs: Vec<&Tree> = trees.iter().collect();
    let base = trace.base(&args.public_url);
    let labels = api::trace::tree_labels(&trace, &base, &refs, Some(&orchard));
    let bytes = write_sheet(&labels, args.format == "pdf", format!("{} ({id})", orchard.name), &args.out)?;
    println!("{} tags of orchard {id} written to {} ({bytes} bytes)", labels.len(), args.out.display());
    Ok(())
}

/// `orchardmap tags ...`.
pub async fn tags(command: TagsCommand) -> anyhow::Result<()> {
    let TagsCommand::Issue { common, count, format, out, public_url, by } = command;
    let store = store::open(&common.db).await?;
    let trace =
        api::trace::Trace::from_key_file(&common.key_file(), Some(public_url.clone())).map_err(anyhow::Error::msg)?;
    let batch = store.issue_tags(count, &geo_core::Actor::system(by)).await?;
    let base = trace.base(&public_url);
    let labels = api::trace::tag_labels(&trace, &base, &batch.codes);
    let bytes = write_sheet(&labels, format == "pdf", format!("tags, batch {}", batch.batch), &out)?;
    println!(
        "batch {}: {} tags ({} … {}) written to {} ({bytes} bytes)",
        batch.batch,
        batch.codes.len(),
        batch.codes.first().map(|c| c.as_str()).unwrap_or(""),
        batch.codes.last().map(|c| c.as_str()).unwrap_or(""),
        out.display()
    );
    Ok(())
}

/// `orchardmap keys ...`.
pub fn keys(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Show(common) => {
            let ring = api::trace::load_or_create_keys(&common.key_file()).map_err(anyhow::Error::msg)?;
            println!("{}", serde_json::to_string_pretty(&ring.public().to_jwks())?);
        }
        KeysCommand::Rotate(common) => {
            let path = common.key_file();
            let mut ring = api::trace::load_or_create_keys(&path).map_err(anyhow::Error::msg)?;
            let kid = ring.rotate(api::trace::random_seed(), chrono::Utc::now())?.to_string();
            api::trace::write_keys(&path, &ring).map_err(anyhow::Error::msg)?;
            println!("now signing with key {kid} ({})", path.display());
        }
        KeysCommand::Revoke { common, kid } => {
            let path = common.key_file();
            let mut ring = api::trace::load_or_create_keys(&path).map_err(anyhow::Error::msg)?;
            ring.revoke(&kid, chrono::Utc::now())?;
            api::trace::write_keys(&path, &ring).map_err(anyhow::Error::msg)?;
            println!("key {kid} revoked ({})", path.display());
        }
    }
    Ok(())
}

/// `orchardmap verify URL`: exit 0 genuine, 3 unsigned, 4 tampered, 5 revoked.
pub fn verify(args: VerifyArgs) -> anyhow::Result<std::process::ExitCode> {
    let keys: PublicKeys = match &args.jwks {
        Some(file) => {
            let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
            PublicKeys::from_jwks_str(&text).with_context(|| format!("{}", file.display()))?
        }
        None => {
            let path = args.common.key_file();
            if !path.exists() {
                bail!("no key file {} (give --jwks FILE, e.g. saved from /.well-known/jwks.json)", path.display());
            }
            api::trace::load_or_create_keys(&path).map_err(anyhow::Error::msg)?.public()
        }
    };
    let (link, verdict) = geo_core::trust::verify_url(&args.url, &keys)?;
    let (code, text) = match &verdict {
        Verdict::Genuine { kid } => (0, format!("genuine: signed by key {kid}")),
        Verdict::Unsigned => (3, "unsigned: the URL carries no signature".to_string()),
        Verdict::Tampered => (4, "tampered: the signature does not match this identifier or any key".to_string()),
        Verdict::Revoked { kid } => (5, format!("revoked: signed by key {kid}, which has been revoked")),
    };
    println!("{} {}: {text}", link.path(), link.code_str());
    Ok(std::process::ExitCode::from(code))
}
