//! `ferry token create`: mint an API token with the control plane's secret, or, with
//! `--role agent --host ID`, a one-time join token with which the agent of host ID enrolls
//! (see `ferry_control_plane::enroll`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use ferry_control_plane::auth::{Principal, Role, TokenIssuer};
use ferry_control_plane::enroll::{JOIN_TOKEN_TTL_MAX, JoinTokens};
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
        /// on the hosts); or agent, for a host agent's one-time join token (with --host and
        /// --ca-cert).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// With `--role agent`: the host the join token enrolls.
        #[arg(long)]
        host: Option<String>,
        /// With `--role agent`: the control plane's CA certificate (`<data dir>/ca/ca.pem` of
        /// a control plane alone), whose fingerprint the agent checks at enrollment.
        #[arg(long, env = "FERRY_CA_CERT")]
        ca_cert: Option<PathBuf>,
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
            host,
            ca_cert,
        } => {
            if role == Role::Agent {
                anyhow::ensure!(
                    tenant.is_none(),
                    "agent tokens act in no tenant: drop --tenant"
                );
                let host = host.context("--host is required for a join token (--role agent)")?;
                let ca_cert = ca_cert.context(
                    "--ca-cert is required for a join token: the control plane's CA certificate",
                )?;
                let ca_pem = std::fs::read_to_string(&ca_cert)
                    .with_context(|| format!("reading {}", ca_cert.display()))?;
                let fingerprint = ferry_agent::enroll::fingerprint(&ca_pem)?;
                let secret = crate::control_plane::read_secret(&token_secret_file)?;
                let tokens = JoinTokens::new(&secret, ISSUER)?;
                let ttl = Duration::from_secs(ttl_hours.saturating_mul(3600));
                anyhow::ensure!(
                    !ttl.is_zero() && ttl <= JOIN_TOKEN_TTL_MAX,
                    "a join token lives from 1 hour to {} hours",
                    JOIN_TOKEN_TTL_MAX.as_secs() / 3600
                );
                println!("{}", tokens.mint(&host, &fingerprint, ttl));
                return Ok(());
            }
            anyhow::ensure!(host.is_none(), "--host is for join tokens (--role agent)");
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
