//! Each node's certificate: made on this host, signed by the control plane.
//!
//! For every node assigned to the host, the agent keeps `<node dir>/tls/{ca.pem,cert.pem,
//! key.pem}` (dir 0700, files 0600) and the certificate's expiry in `tls/not-after-ms`. When
//! the material is missing, or less than [`RENEW_BEFORE`] of its validity is left, the agent
//! makes a new key and asks `AgentService/IssueNodeCertificate` to sign it; the control plane
//! signs only for a node assigned to this host, with the node's cluster, id and role. The
//! node's key never leaves the host. A renewed certificate is used from the node's next start.
//! Key material is never logged.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry_identity::TlsMaterial;
use tonic::Status;

use crate::assignment::Assignment;
use crate::client::ControlPlane;
use crate::host::NodePaths;
use crate::store::write_atomically;

/// The file (in [`crate::host::TLS_DIR`]) holding the certificate's expiry, ms since the Unix
/// epoch.
pub const NOT_AFTER_FILE: &str = "not-after-ms";
/// A certificate with less than this left is renewed: 30 days, a third of the control plane's
/// node certificate validity, so a node restarted any time in that window gets a fresh one.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Whether the node's material under `tls_dir` must be (re)issued at `now_ms`.
pub fn needs_certificate(tls_dir: &Path, now_ms: i64) -> bool {
    if !tls_dir.join(ferry_identity::CERT_FILE).exists()
        || !tls_dir.join(ferry_identity::KEY_FILE).exists()
    {
        return true;
    }
    let renew_before = i64::try_from(RENEW_BEFORE.as_millis()).unwrap_or(i64::MAX);
    match std::fs::read_to_string(tls_dir.join(NOT_AFTER_FILE))
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
    {
        Some(not_after_ms) => now_ms >= not_after_ms.saturating_sub(renew_before),
        None => true,
    }
}

/// Makes sure `assignment`'s node has current TLS material under the agent's data dir
/// `root`, asking the control plane to sign a new key when it has not.
///
/// # Errors
///
/// The control plane's status (a refusal, or unreachable), or INTERNAL when the material
/// cannot be made or written.
pub async fn ensure(
    control_plane: &mut ControlPlane,
    root: &Path,
    assignment: &Assignment,
) -> Result<(), Status> {
    let paths = NodePaths::new(root, &assignment.key());
    if !needs_certificate(&paths.tls, now_ms()) {
        return Ok(());
    }
    let (key_pem, csr_pem) =
        crate::enroll::new_key_and_csr().map_err(|e| Status::internal(e.to_string()))?;
    let issued = control_plane
        .node_certificate(&assignment.cluster_id, assignment.node_id, csr_pem)
        .await?;
    let material = TlsMaterial::new(issued.ca_pem, issued.cert_pem, key_pem);
    material
        .write(&paths.tls)
        .map_err(|e| Status::internal(format!("writing {}: {e}", paths.tls.display())))?;
    let not_after = paths.tls.join(NOT_AFTER_FILE);
    write_atomically(&not_after, format!("{}\n", issued.not_after_ms).as_bytes())
        .map_err(|e| Status::internal(format!("writing {}: {e}", not_after.display())))?;
    tracing::info!(node = %assignment.key(), "issued the node's certificate");
    Ok(())
}

/// Now, in ms since the Unix epoch.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::TLS_DIR;

    #[test]
    fn missing_or_nearly_expired_material_is_renewed() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join(TLS_DIR);
        assert!(needs_certificate(&tls, 0), "nothing there yet");
        std::fs::create_dir_all(&tls).unwrap();
        for file in [ferry_identity::CERT_FILE, ferry_identity::KEY_FILE] {
            std::fs::write(tls.join(file), "x").unwrap();
        }
        assert!(needs_certificate(&tls, 0), "no expiry recorded");
        let day = 24 * 3600 * 1000;
        std::fs::write(tls.join(NOT_AFTER_FILE), format!("{}", 90 * day)).unwrap();
        assert!(!needs_certificate(&tls, day), "89 days left");
        assert!(needs_certificate(&tls, 61 * day), "29 days left");
    }
}
