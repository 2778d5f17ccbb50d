//! `orchardmap user add|list|revoke`: accounts and their API tokens.

use anyhow::{Context, bail};
use clap::Subcommand;
use geo_core::{OrchardId, Role};

/// Account management.
#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create an account and print its API token (shown this once; only its hash is stored).
    Add {
        /// Display name, unique.
        #[arg(long)]
        name: String,
        /// admin, volunteer or farmer.
        #[arg(long)]
        role: String,
        /// Orchard assigned to the account (repeatable; farmers need at least one).
        #[arg(long = "orchard", value_name = "ID")]
        orchards: Vec<String>,
    },
    /// List accounts (never their tokens).
    List,
    /// Revoke an account's token: it stops working at once, on every server.
    Revoke {
        /// The account's name.
        name: String,
    },
}

/// Runs one account command against the database at `db`.
pub async fn run(db: &str, command: UserCommand) -> anyhow::Result<()> {
    let store = store::open(db).await.with_context(|| format!("cannot open database {db}"))?;
    match command {
        UserCommand::Add { name, role, orchards } => {
            let role: Role = role.parse().map_err(|e: geo_core::Error| anyhow::anyhow!("--role: {e}"))?;
            let orchards = orchards
                .iter()
                .map(|o| OrchardId::new(o.as_str()).map_err(|e| anyhow::anyhow!("--orchard: {e}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            if role == Role::Farmer && orchards.is_empty() {
                bail!("--orchard: a farmer account needs at least one orchard");
            }
            let (token, hash) = api::auth::new_token();
            let user = store.create_user(name.trim(), role, &orchards, &hash).await?;
            eprintln!("created {} account {:?} (id {})", user.role, user.name, user.id);
            eprintln!("its API token follows; it is shown only now. Send it as: Authorization: Bearer <token>");
            println!("{token}");
        }
        UserCommand::List => {
            let users = store.users().await?;
            println!("{:>4}  {:<24} {:<10} {:<8} {:<20} ORCHARDS", "ID", "NAME", "ROLE", "STATUS", "CREATED");
            for u in users {
                let status = if u.is_active() { "active" } else { "revoked" };
                let orchards = u.orchards.iter().map(|o| o.as_str()).collect::<Vec<_>>().join(",");
                println!(
                    "{:>4}  {:<24} {:<10} {:<8} {:<20} {}",
                    u.id.0,
                    u.name,
                    u.role.as_str(),
                    status,
                    u.created_at.format("%Y-%m-%d %H:%M"),
                    orchards
                );
            }
        }
        UserCommand::Revoke { name } => match store.revoke_user(&name).await? {
            Some(u) => eprintln!("revoked account {:?} (id {})", u.name, u.id),
            None => bail!("no account named {name:?} (see `orchardmap user list`)"),
        },
    }
    Ok(())
}
