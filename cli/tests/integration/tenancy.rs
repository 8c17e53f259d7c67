//! Tenancy and credentials through the real `ferry` binary: a tenant admin's `ferry host list`
//! shows only its own tenant's nodes while a service operator's shows every node, tokens are
//! taken from a file or the environment, and no command accepts a token on its command line.

use std::time::{Duration, Instant};

use crate::stack;

use stack::Stack;

/// `ferry host list --output json` with `token` in FERRY_TOKEN: the cluster id of every node
/// on every host, and how many hosts were listed.
fn node_clusters(stack: &Stack, token: &str) -> (Vec<String>, usize) {
    let output = stack::ferry()
        .args(["host", "list", "--output", "json", "--api", &stack.api()])
        .env("FERRY_TOKEN", token)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let hosts: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let hosts = hosts.as_array().unwrap();
    let clusters = hosts
        .iter()
        .flat_map(|h| h["nodes"].as_array().cloned().unwrap_or_default())
        .map(|n| n["clusterId"].as_str().unwrap().to_string())
        .collect();
    (clusters, hosts.len())
}

#[test]
fn a_tenant_admin_lists_hosts_without_other_tenants_nodes() {
    let stack = Stack::start(&["a", "b", "c"]);
    let globex = stack.token(&["--tenant", "globex", "--role", "admin"]);
    let operator = stack.token(&["--tenant", "ops", "--role", "service-operator"]);

    // acme's admin creates a cluster; its token comes from a file this time.
    let token_file = stack.dir.path().join("acme.token");
    std::fs::write(&token_file, format!("{}\n", stack.admin_token)).unwrap();
    let created = stack::ferry()
        .args([
            "cluster",
            "create",
            "orders",
            "--output",
            "json",
            "--api",
            &stack.api(),
        ])
        .arg("--token-file")
        .arg(&token_file)
        .env_remove("FERRY_TOKEN")
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let created: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let cluster_id = created["id"].as_str().unwrap().to_string();

    // The reconciler places its six nodes on the hosts.
    let deadline = Instant::now() + Duration::from_secs(60);
    let fleet = loop {
        let (fleet, _) = node_clusters(&stack, &operator);
        if fleet.len() == 6 {
            break fleet;
        }
        assert!(Instant::now() < deadline, "nodes placed: {fleet:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(fleet.iter().all(|c| *c == cluster_id), "{fleet:?}");

    let (seen_by_acme, hosts) = node_clusters(&stack, &stack.admin_token);
    assert_eq!(hosts, 3);
    assert_eq!(seen_by_acme, fleet);
    let (seen_by_globex, hosts) = node_clusters(&stack, &globex);
    assert_eq!(hosts, 3, "every host is listed");
    assert!(seen_by_globex.is_empty(), "{seen_by_globex:?}");
}

#[test]
fn no_command_accepts_a_token_as_an_argument() {
    for args in [
        &[
            "agent",
            "--zone",
            "a",
            "--address",
            "127.0.0.1",
            "--token",
            "stolen",
        ][..],
        &["cluster", "list", "--token", "stolen"],
    ] {
        let output = stack::ferry().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("unexpected argument '--token'"), "{stderr}");
    }
    // Without FERRY_TOKEN or --token-file a client says where a token comes from.
    let output = stack::ferry()
        .args(["cluster", "list", "--api", "http://127.0.0.1:1"])
        .env_remove("FERRY_TOKEN")
        .env_remove("FERRY_TOKEN_FILE")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("FERRY_TOKEN") && stderr.contains("--token-file"),
        "{stderr}"
    );
}
