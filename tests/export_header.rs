#![cfg(feature = "export-header")]
//! The committed export header must be what cbindgen generates from the
//! current code: the C++ build compiles against the committed copy.

#[test]
fn committed_export_header_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/rust_raft.h");
    let committed = std::fs::read_to_string(path).expect("include/rust_raft.h is readable");
    assert!(
        committed == rust_raft::GENERATED_EXPORT_HEADER,
        "include/rust_raft.h is stale: run scripts/regen-header and commit the result"
    );
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
    let header = rust_raft::GENERATED_EXPORT_HEADER;
    for name in exports {
        assert!(header.contains(&format!("{name}(")), "{name} missing from the export header");
    }
    let declared = header.matches(" rust_raft_server_").count() + header.matches("*rust_raft_server_").count();
    assert_eq!(declared, exports.len(), "the header declares exports outside the contract");
}
