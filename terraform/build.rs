//! Generates the tonic server code for Terraform's plugin protocol (`proto/tfplugin6.proto`)
//! and go-plugin's controller (`proto/plugin.proto`). protoc comes from `protoc-bin-vendored`,
//! as in `proto/build.rs`, so no system protobuf compiler is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/tfplugin6.proto", "proto/plugin.proto"];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .build_client(false)
        .compile_with_config(config, &protos, &["proto"])?;
    Ok(())
}
