//! `ferry control-plane`: run the control plane (see `ferry_control_plane::server`).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use ferry_control_plane::model::ca::SecretPem;
use ferry_control_plane::pki::PeerTls;
use ferry_control_plane::server::{Server, ServerOptions};

/// Bytes of randomness in a generated token secret.
const SECRET_BYTES: usize = 32;
/// The secret file's name in the data directory when `--token-secret-file` is not given.
const SECRET_FILE_DEFAULT: &str = "token-secret";

/// Flags of a control-plane process.
#[derive(Debug, Args)]
pub struct ControlPlaneArgs {
    /// Address of the public API listener (gRPC, REST, console, agent enrollment; port 0
    /// picks a free port).
    #[arg(
        long,
        env = "FERRY_CONTROL_PLANE_LISTEN",
        default_value = "127.0.0.1:7070"
    )]
    pub listen: SocketAddr,
    /// Address of the peer listener: raft between members and the agents' service, mutual
    /// TLS only (default: the API's address, port + 1).
    #[arg(long, env = "FERRY_CONTROL_PLANE_PEER_LISTEN")]
    pub peer_listen: Option<SocketAddr>,
    /// The CA certificate (PEM) of a replicated control plane (`ferry cert ca`); with
    /// --tls-cert and --tls-key. Alone, a control plane makes its own CA in the ca/ directory of its data dir.
    #[arg(long, env = "FERRY_TLS_CA", requires_all = ["tls_cert", "tls_key"])]
    pub tls_ca: Option<PathBuf>,
    /// This member's certificate (`ferry cert issue --control-plane ID`).
    #[arg(long, env = "FERRY_TLS_CERT", requires = "tls_ca")]
    pub tls_cert: Option<PathBuf>,
    /// This member's key.
    #[arg(long, env = "FERRY_TLS_KEY", requires = "tls_ca")]
    pub tls_key: Option<PathBuf>,
    /// Where a control plane alone keeps the CA it makes (default: `ca` in the data
    /// directory). Keep it apart from the data directory to survive the loss of the store.
    #[arg(long, env = "FERRY_CA_DIR", conflicts_with = "tls_ca")]
    pub ca_dir: Option<PathBuf>,
    /// The CA's key, to put the CA into the store so every member can issue host and node
    /// certificates (one member needs it, once).
    #[arg(long, env = "FERRY_TLS_CA_KEY", requires = "tls_ca")]
    pub tls_ca_key: Option<PathBuf>,
    /// Directory for everything the control plane persists.
    #[arg(long, env = "FERRY_DATA_DIR", default_value = "./ferry-control-plane")]
    pub data_dir: PathBuf,
    /// File holding the secret API tokens are signed with (default: `token-secret` in the data
    /// directory). Created with 32 random bytes, hex, mode 0600 when it does not exist.
    #[arg(long, env = "FERRY_TOKEN_SECRET_FILE")]
    pub token_secret_file: Option<PathBuf>,
    /// For a replicated control plane (3 members): every member as ID@HOST:PORT of its
    /// *peer* listener, this one included, the same list on each. Omit to run alone. Every
    /// member needs the same token secret file, and TLS material (--tls-ca ...).
    #[arg(long, env = "FERRY_CONTROL_PLANE_PEERS", value_delimiter = ',')]
    pub peers: Vec<String>,
    /// This member's id among --peers.
    #[arg(long, env = "FERRY_CONTROL_PLANE_ID", default_value_t = 1)]
    pub id: u64,
}

/// Runs `ferry control-plane` until SIGINT or SIGTERM.
pub async fn run(args: ControlPlaneArgs) -> anyhow::Result<()> {
    crate::secret::create_dir_all(&args.data_dir)?;
    let secret_file = args
        .token_secret_file
        .clone()
        .unwrap_or_else(|| args.data_dir.join(SECRET_FILE_DEFAULT));
    let secret = read_or_create_secret(&secret_file)?;
    let mut options = ServerOptions::new(args.data_dir.clone(), args.listen, secret);
    options.peer_listen = match args.peer_listen {
        Some(addr) => addr,
        None => SocketAddr::new(
            args.listen.ip(),
            match args.listen.port() {
                0 => 0,
                port => port
                    .checked_add(1)
                    .context("--listen port 65535 has no next port")?,
            },
        ),
    };
    if let (Some(ca), Some(cert), Some(key)) = (&args.tls_ca, &args.tls_cert, &args.tls_key) {
        let member = ferry_identity::TlsMaterial::load(ca, cert, key)
            .context("loading this member's TLS material")?;
        let ca_key_pem = match &args.tls_ca_key {
            Some(path) => Some(SecretPem::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading the CA key {}", path.display()))?,
            )),
            None => None,
        };
        options.tls = PeerTls::Files { member, ca_key_pem };
    }
    options.ca_dir = args.ca_dir.clone();
    options.raft_id = args.id;
    options.peers = crate::node::parse_voters(&args.peers)?
        .into_iter()
        .map(|(id, addr)| match u64::try_from(id) {
            Ok(raft_id) if raft_id > 0 => Ok((raft_id, addr)),
            _ => anyhow::bail!("--peers: member id {id} must be positive"),
        })
        .collect::<anyhow::Result<_>>()?;
    let shutdown = crate::ShutdownSignal::install()?;
    let server = Server::bind(options).await?;
    // One line on stdout that scripts and tests wait for.
    println!("ferry control-plane peer listener: {}", server.peer_addr());
    println!("ferry control-plane ready: api={}", server.local_addr());
    std::io::stdout().flush()?;
    server.run(shutdown.wait()).await;
    Ok(())
}

/// Reads the token secret from `path`, creating it (random, hex, mode 0600) if it is missing.
pub fn read_or_create_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    if !path.exists() {
        create_secret(path)?;
    }
    read_secret(path)
}

/// Writes a new secret of [`SECRET_BYTES`] random bytes, hex-encoded, readable only by the
/// owner. Refuses to overwrite an existing file.
fn create_secret(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let bytes: [u8; SECRET_BYTES] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating the token secret file {}", path.display()))?;
    writeln!(file, "{hex}")?;
    file.sync_all()?;
    Ok(())
}

/// The token secret in `path`: the file's content without surrounding whitespace.
pub fn read_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    let content = std::fs::read(path)
        .with_context(|| format!("reading the token secret file {}", path.display()))?;
    let secret = content.trim_ascii().to_vec();
    anyhow::ensure!(
        secret.len() >= ferry_control_plane::auth::SECRET_LEN_MIN,
        "the token secret in {} is {} bytes; at least {} are needed",
        path.display(),
        secret.len(),
        ferry_control_plane::auth::SECRET_LEN_MIN
    );
    Ok(secret)
}
