//! `ferry cert`: the certificates of a hand-built cluster (`ferry node` by hand), made with the
//! same library the control plane uses ([`ferry_identity`]).
//!
//! ```text
//! ferry cert ca --dir ./ca                     # ca/ca.pem (public), ca/ca-key.pem (secret)
//! ferry cert issue --ca-dir ./ca --out ./node-1/tls \
//!     --node 1 --cluster-id demo --roles broker,controller [--san 10.0.0.5]...
//! ferry node --node-id 1 ... --tls-ca ./node-1/tls/ca.pem \
//!     --tls-cert ./node-1/tls/cert.pem --tls-key ./node-1/tls/key.pem
//! ```
//!
//! Directories are created 0700 and files 0600. Keep `ca-key.pem` off the nodes: whoever holds
//! it can issue any identity. A node needs only its own directory.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use ferry_identity::{CertificateAuthority, Identity, NodeRoles};

/// Arguments of `ferry cert`.
#[derive(Debug, Args)]
pub struct CertArgs {
    /// What to make.
    #[command(subcommand)]
    command: CertCommand,
}

/// `ferry cert` subcommands.
#[derive(Debug, Subcommand)]
enum CertCommand {
    /// Make a new CA (its certificate and key) in a directory.
    Ca {
        /// Where to write ca.pem and ca-key.pem (created 0700).
        #[arg(long)]
        dir: PathBuf,
        /// The CA's common name.
        #[arg(long, default_value = "Ferry CA")]
        name: String,
        /// Replace a CA already in the directory (every certificate it issued stops working).
        #[arg(long)]
        force: bool,
    },
    /// Issue a certificate and key for one peer, signed by a CA made with `ferry cert ca`.
    Issue {
        /// The CA's directory.
        #[arg(long)]
        ca_dir: PathBuf,
        /// Where to write ca.pem, cert.pem and key.pem (created 0700).
        #[arg(long)]
        out: PathBuf,
        /// Who the certificate is for.
        #[command(flatten)]
        subject: Subject,
        /// An extra DNS name or IP address the peer is known by (repeatable).
        #[arg(long = "san", value_name = "NAME_OR_IP")]
        sans: Vec<String>,
        /// Validity in days.
        #[arg(long, default_value_t = ferry_identity::CERT_VALIDITY_DEFAULT.as_secs() / 86_400)]
        days: u64,
    },
}

/// The identity to issue for: a node, a control-plane member or a host.
#[derive(Debug, Args)]
struct Subject {
    /// A `ferry node` with this node id (give --cluster-id and --roles too).
    #[arg(long, requires = "cluster_id")]
    node: Option<i32>,
    /// A control-plane member with this raft id.
    #[arg(long)]
    control_plane: Option<u64>,
    /// An agent's host with this id.
    #[arg(long)]
    host: Option<String>,
    /// The node's cluster id.
    #[arg(long, requires = "node")]
    cluster_id: Option<String>,
    /// The node's roles (Kafka's process.roles).
    #[arg(long, requires = "node", default_value = "broker,controller")]
    roles: String,
}

impl Subject {
    fn identity(&self) -> anyhow::Result<Identity> {
        Ok(match (self.node, self.control_plane, &self.host) {
            (Some(node_id), None, None) => Identity::Node {
                cluster_id: self
                    .cluster_id
                    .clone()
                    .context("--node needs --cluster-id")?,
                node_id,
                roles: NodeRoles::parse(&self.roles)?,
            },
            (None, Some(member), None) => Identity::ControlPlane { member },
            (None, None, Some(host_id)) => Identity::Host {
                host_id: host_id.clone(),
            },
            _ => anyhow::bail!("give exactly one of --node, --control-plane, --host"),
        })
    }
}

/// Runs `ferry cert`.
pub fn run(args: CertArgs) -> anyhow::Result<()> {
    match args.command {
        CertCommand::Ca { dir, name, force } => {
            anyhow::ensure!(
                force || !dir.join(ferry_identity::CA_KEY_FILE).exists(),
                "{} already holds a CA; --force replaces it (and invalidates what it issued)",
                dir.display()
            );
            let ca = CertificateAuthority::generate(&name)?;
            ca.write_dir(&dir)?;
            println!("CA written to {}", dir.display());
            println!("fingerprint (sha256): {}", ca.fingerprint());
            Ok(())
        }
        CertCommand::Issue {
            ca_dir,
            out,
            subject,
            sans,
            days,
        } => {
            let ca = CertificateAuthority::load_dir(&ca_dir)
                .with_context(|| format!("reading the CA in {}", ca_dir.display()))?;
            let identity = subject.identity()?;
            let validity = Duration::from_secs(days.saturating_mul(86_400));
            let material = ca.issue(&identity, &sans, validity)?;
            material.write(&out)?;
            println!("certificate for {identity} written to {}", out.display());
            Ok(())
        }
    }
}
