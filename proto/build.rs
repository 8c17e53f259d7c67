//! Generates the tonic/prost code for every `.proto` file under `proto/`.
//!
//! protoc comes from the `protoc-bin-vendored` crate so that a fresh machine needs no system
//! protobuf compiler.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/ferry/node/v1/node.proto",
        "proto/ferry/controller/v1/controller.proto",
        "proto/ferry/quorum/v1/quorum.proto",
        "proto/ferry/controlplane/v1/controlplane.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure().compile_with_config(config, &protos, &["proto"])?;
    Ok(())
}
