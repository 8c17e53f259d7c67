//! Writes every target's seed corpus to `fuzz/corpus/<target>/seed-<name>` (replacing the old
//! seeds, keeping other files) and runs each seed through its harness once, so a seed that
//! crashes is caught here.
//!
//! Usage: `cargo run --release --example seeds [CORPUS_DIR]` (default: `corpus` next to this
//! package's manifest); `scripts/fuzz.sh seeds` runs it.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    let seeds = ferry_fuzz::seeds::all();
    let mut targets: Vec<&str> = seeds.iter().map(|s| s.target).collect();
    targets.dedup();
    for target in &targets {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let is_seed = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seed-"));
            if is_seed {
                std::fs::remove_file(path)?;
            }
        }
    }
    for seed in &seeds {
        run(seed.target, &seed.bytes);
        let path = root.join(seed.target).join(format!("seed-{}", seed.name));
        std::fs::write(path, &seed.bytes)?;
    }
    for target in targets {
        let count = seeds.iter().filter(|s| s.target == target).count();
        println!("{target}: {count} seeds");
    }
    Ok(())
}

/// Runs one input through `target`'s harness.
fn run(target: &str, data: &[u8]) {
    match target {
        "kafka_request" => ferry_fuzz::kafka::kafka_request(data),
        "record_batch" => ferry_fuzz::kafka::record_batch(data),
        "raft_message" => ferry_fuzz::raft::raft_message(data),
        "store_command" => ferry_fuzz::store::store_command(data),
        "controller_command" => ferry_fuzz::controller::controller_command(data),
        "rest_request" => ferry_fuzz::rest::rest_request(data),
        "grpc_message" => ferry_fuzz::grpc::grpc_message(data),
        "group_record" => ferry_fuzz::group::group_record(data),
        other => panic!("no harness for target {other}"),
    }
}
