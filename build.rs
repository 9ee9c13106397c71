//! Generates the header of the crate's exports with cbindgen into OUT_DIR.
//! The committed copy is include/rust_raft.h; a test fails when it is stale
//! (scripts/regen-header refreshes it).
#[cfg(feature = "export-header")]
use std::path::PathBuf;

#[cfg(not(feature = "export-header"))]
fn main() {}

#[cfg(feature = "export-header")]
fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("rust_raft.h");
    println!("cargo:rerun-if-changed=src/lib.rs");
    println!("cargo:rerun-if-changed=src/ffi.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable");
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the export header");
    bindings.write_to_file(&out);
}
