//! `ferry token create`: mint an API token with the control plane's secret.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use ferry_control_plane::auth::{Principal, Role, TokenIssuer};
use ferry_control_plane::server::{AUDIENCE, ISSUER};

/// Arguments of `ferry token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// What to do.
    #[command(subcommand)]
    command: TokenCommand,
}

/// `ferry token` subcommands.
#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Mint a token and print it on stdout.
    Create {
        /// The tenant every call with the token acts in (not for `--role agent`: agents act in
        /// no tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// The role in that tenant: viewer, operator or admin; service-operator for whoever
        /// runs the Ferry service (an admin of the tenant who also sees every tenant's nodes
        /// on the hosts); or agent, for host agents.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// The token's subject (user or service); defaults to `<role>@<tenant>`, or `agent`.
        #[arg(long)]
        subject: Option<String>,
        /// Hours until the token expires.
        #[arg(long, default_value_t = 24)]
        ttl_hours: u64,
        /// The control plane's token secret file.
        #[arg(long, env = "FERRY_TOKEN_SECRET_FILE")]
        token_secret_file: PathBuf,
    },
}

/// Parses a role name.
fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

/// Runs `ferry token`.
pub fn run(args: TokenArgs) -> anyhow::Result<()> {
    match args.command {
        TokenCommand::Create {
            tenant,
            role,
            subject,
            ttl_hours,
            token_secret_file,
        } => {
            let tenant = match (role.has_tenant(), tenant) {
                (true, Some(tenant)) if !tenant.is_empty() => tenant,
                (true, _) => anyhow::bail!("--tenant is required for the {role} role"),
                (false, None) => String::new(),
                (false, Some(_)) => anyhow::bail!("agent tokens act in no tenant: drop --tenant"),
            };
            anyhow::ensure!(ttl_hours > 0, "--ttl-hours must be positive");
            let secret = crate::control_plane::read_secret(&token_secret_file)?;
            let issuer = TokenIssuer::new(&secret, ISSUER, AUDIENCE)?;
            let principal = Principal {
                subject: subject.unwrap_or_else(|| {
                    if tenant.is_empty() {
                        role.to_string()
                    } else {
                        format!("{role}@{tenant}")
                    }
                }),
                tenant,
                role,
            };
            let ttl = Duration::from_secs(ttl_hours.saturating_mul(3600));
            println!("{}", issuer.mint(&principal, ttl));
            Ok(())
        }
    }
}
