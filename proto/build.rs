//! Generates the tonic/prost code for every `.proto` file under `proto/`, and the proto3 JSON
//! mapping (serde `Serialize`/`Deserialize`) for `ferry.controlplane.v1`.
//!
//! protoc comes from the `protoc-bin-vendored` crate so that a fresh machine needs no system
//! protobuf compiler.
//!
//! Besides the Rust code, protoc's `FileDescriptorSet` (with source info, so with the comments)
//! is written to `$OUT_DIR/ferry_descriptor.bin`. It feeds two consumers, so the shapes have
//! one source of truth:
//!
//! - `pbjson-build`, which derives serde for the control-plane messages following the proto3
//!   JSON mapping (lowerCamelCase names, enums by name, 64-bit integers as strings);
//! - the control plane's OpenAPI document (`ferry_control_plane::rest::openapi`), through
//!   `ferry_proto::FILE_DESCRIPTOR_SET` (`src/lib.rs`), which embeds the file.

use std::path::PathBuf;

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
    let descriptor_path = PathBuf::from(std::env::var("OUT_DIR")?).join("ferry_descriptor.bin");
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    config.file_descriptor_set_path(&descriptor_path);
    tonic_prost_build::configure().compile_with_config(config, &protos, &["proto"])?;

    // The JSON mapping, for the control-plane API only (its REST face). Fields are emitted
    // even at their default values, so JSON clients (console, Terraform) see every field;
    // unknown fields are refused, so a misspelt field is an error rather than silently dropped.
    let descriptors = std::fs::read(&descriptor_path)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        .emit_fields()
        .build(&[".ferry.controlplane.v1"])?;
    Ok(())
}
