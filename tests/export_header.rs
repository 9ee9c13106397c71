//! The export header: `include/rust_raft.h` must be what cbindgen makes of
//! the exports in `src/lib.rs` now (the C++ stand-in compiles against the
//! committed copy together with the contract header, so a signature that
//! drifts from the contract fails to compile there). `scripts/regen-header`
//! rewrites it.

fn generated_header() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(format!("{dir}/cbindgen.toml")).expect("cbindgen.toml is readable");
    let bindings = cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen reads src/lib.rs");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("the header is UTF-8")
}

#[test]
fn committed_export_header_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/rust_raft.h");
    let committed = std::fs::read_to_string(path).expect("include/rust_raft.h is readable");
    let generated = generated_header();
    if std::env::var_os("RAFT_REGEN_HEADER").is_some() {
        std::fs::write(path, &generated).expect("include/rust_raft.h is writable");
        return;
    }
    assert!(committed == generated, "include/rust_raft.h is stale: run scripts/regen-header and commit the result");
}

#[test]
fn export_header_declares_all_eighteen_exports() {
    let exports = [
        "rust_raft_server_new", "rust_raft_server_delete", "rust_raft_server_set_commo",
        "rust_raft_server_setup", "rust_raft_server_is_leader", "rust_raft_server_set_is_leader",
        "rust_raft_server_get_state", "rust_raft_server_disconnect", "rust_raft_server_reconnect",
        "rust_raft_server_is_disconnected", "rust_raft_server_start", "rust_raft_server_request_vote",
        "rust_raft_server_on_request_vote", "rust_raft_server_on_append_entries",
        "rust_raft_server_apply_logs", "rust_raft_server_set_local_append",
        "rust_raft_server_remove_cmd", "rust_raft_server_get_raft_instance",
    ];
    let header = generated_header();
    for name in exports {
        assert!(header.contains(&format!("{name}(")), "{name} missing from the export header");
    }
    let declared = header.matches(" rust_raft_server_").count() + header.matches("*rust_raft_server_").count();
    assert_eq!(declared, exports.len(), "the header declares exports outside the contract");
}
