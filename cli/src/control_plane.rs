//! `ferry control-plane`: run the control plane (see `ferry_control_plane::server`).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use ferry_control_plane::server::{Server, ServerOptions};

/// Bytes of randomness in a generated token secret.
const SECRET_BYTES: usize = 32;
/// The secret file's name in the data directory when `--token-secret-file` is not given.
const SECRET_FILE_DEFAULT: &str = "token-secret";

/// Flags of a control-plane process.
#[derive(Debug, Args)]
pub struct ControlPlaneArgs {
    /// Address of the API listener (gRPC; port 0 picks a free port).
    #[arg(
        long,
        env = "FERRY_CONTROL_PLANE_LISTEN",
        default_value = "127.0.0.1:7070"
    )]
    pub listen: SocketAddr,
    /// Directory for everything the control plane persists.
    #[arg(long, env = "FERRY_DATA_DIR", default_value = "./ferry-control-plane")]
    pub data_dir: PathBuf,
    /// File holding the secret API tokens are signed with (default: `token-secret` in the data
    /// directory). Created with 32 random bytes, hex, mode 0600 when it does not exist.
    #[arg(long, env = "FERRY_TOKEN_SECRET_FILE")]
    pub token_secret_file: Option<PathBuf>,
    /// For a replicated control plane (3 members): every member as ID@HOST:PORT, this one
    /// included, the same list on each. Omit to run alone. Every member needs the same token
    /// secret file.
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
    options.raft_id = args.id;
    options.peers = crate::node::parse_voters(&args.peers)?
        .into_iter()
        .map(|(id, addr)| match u64::try_from(id) {
            Ok(raft_id) if raft_id > 0 => Ok((raft_id, addr)),
            _ => anyhow::bail!("--peers: member id {id} must be positive"),
        })
        .collect::<anyhow::Result<_>>()?;
    let server = Server::bind(options).await?;
    // One line on stdout that scripts and tests wait for.
    println!("ferry control-plane ready: api={}", server.local_addr());
    std::io::stdout().flush()?;
    server.run(crate::shutdown_signal()).await;
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
