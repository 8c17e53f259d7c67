//! Local hygiene of a whole control plane: everything it writes under its data directory is
//! its own user's only (directories 0700, files 0600), whatever the parent directory's mode,
//! and its options never print the token secret.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ferry_control_plane::server::{Server, ServerOptions};
use ferry_control_plane::store::Store;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-secret";

/// The permission bits of `path`.
fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every directory and file under `dir` (itself included), depth first.
fn walk(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    found.push(dir.to_path_buf());
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, found);
        } else {
            found.push(path);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_writes_only_owner_only_files_and_directories() {
    let parent = tempfile::tempdir().unwrap();
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data_dir = parent.path().join("ferry-control-plane");
    let options = ServerOptions::new(&data_dir, "127.0.0.1:0".parse().unwrap(), SECRET.to_vec());
    let server = Server::bind(options).await.unwrap();
    // Something in the log besides the bootstrap.
    server
        .store()
        .create_configuration(
            "acme",
            "tuned",
            vec![],
            ferry_control_plane::model::Revision {
                revision: 0,
                description: String::new(),
                server_properties: "num.partitions=3\n".into(),
                properties: [("num.partitions".into(), "3".into())].into(),
                created_at_ms: 0,
            },
        )
        .await
        .unwrap();
    server.run(async {}).await;

    let mut found = Vec::new();
    walk(&data_dir, &mut found);
    assert!(found.len() > 2, "{found:?}");
    for path in &found {
        let expected = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(path), expected, "{}", path.display());
    }
}

#[test]
fn server_options_do_not_print_the_token_secret() {
    let options = ServerOptions::new("/tmp/x", "127.0.0.1:0".parse().unwrap(), SECRET.to_vec());
    let shown = format!("{options:?}");
    assert!(!shown.contains("test-secret"), "{shown}");
    // Nor as the bytes a derived Debug would print.
    assert!(
        !shown.contains(&format!("{:?}", &SECRET[..8])[1..20]),
        "{shown}"
    );
    assert!(shown.contains("<redacted>"), "{shown}");
}
