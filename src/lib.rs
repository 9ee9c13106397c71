//! `rust_raft`: Raft (Figure 2 of the extended Raft paper) for the C++ lab
//! framework, linked as a static library through the C ABI of
//! ../shared/abi.md.
//!
//! Layers:
//! - `core`: the protocol as a pure state machine (no FFI, clock, threads);
//! - `server`: the RaftServer, which drives the core from fibers and RPC
//!   handlers;
//! - `wrappers` / `ffi`: safe wrappers over the framework's imports;
//! - this file: the exports, with an opaque-handle registry. An unknown or
//!   deleted handle is a logged no-op; NULL out-pointers are skipped; no
//!   panic crosses into C++.
//!
//! The exports are the C-facing half of the FFI layer: every raw pointer the
//! framework passes is checked and turned into a safe value here.
#![allow(clippy::missing_safety_doc)]
// The exports take raw pointers because the C contract says so; C callers
// cannot see `unsafe`, and each dereference below states what the framework
// guarantees in its SAFETY comment.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod core;
pub mod ffi;
pub mod logging;
pub mod server;
pub mod wrappers;

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::core::{AppendRequest, Entry, VoteRequest};
use crate::ffi::*;
use crate::server::{RaftServer, ServerParts};
use crate::wrappers::{without_unwinding, AppNext, AppendReply, Command, Commo, RaftLogs, VoteReply};

/// The export header cbindgen generates from this file at build time; a test
/// compares it with the committed `include/rust_raft.h`.
#[cfg(feature = "export-header")]
pub const GENERATED_EXPORT_HEADER: &str = include_str!(concat!(env!("OUT_DIR"), "/rust_raft.h"));

// ----- The handle registry ----------------------------------------------------

/// Live servers by handle. The handle C++ holds is a number dressed as a
/// pointer: C++ never dereferences it, and a stale one finds nothing here.
static SERVERS: Mutex<BTreeMap<usize, Arc<RaftServer>>> = Mutex::new(BTreeMap::new());
static NEXT_HANDLE: AtomicUsize = AtomicUsize::new(1);

fn registry() -> std::sync::MutexGuard<'static, BTreeMap<usize, Arc<RaftServer>>> {
    SERVERS.lock().unwrap_or_else(|p| p.into_inner())
}

/// The server behind a handle, or None (logged) if the handle is unknown.
fn lookup(srv: *mut c_void, what: &str) -> Option<Arc<RaftServer>> {
    let server = registry().get(&(srv as usize)).cloned();
    if server.is_none() {
        log::warn!("rust_raft: {what} with unknown server handle {srv:p}; ignored");
    }
    server
}

/// Runs `body` with the server behind `srv`; a no-op returning `fallback`
/// for an unknown handle or a panic.
fn with_server<R: Copy>(srv: *mut c_void, what: &str, fallback: R, body: impl FnOnce(&Arc<RaftServer>) -> R) -> R {
    without_unwinding(what, fallback, || match lookup(srv, what) {
        Some(server) => body(&server),
        None => fallback,
    })
}

/// Writes `value` through an out-pointer unless it is NULL.
///
/// # Safety
/// `out` must be NULL or valid for a write of `T`.
unsafe fn write_out<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: non-NULL and valid per the caller.
        unsafe { out.write(value) }
    }
}

fn term_from_ballot(ballot: ballot_t) -> u64 {
    ballot.max(0) as u64
}

// ----- Exports -------------------------------------------------------------------

/// Creates a server. `commo` is NULL here; it arrives via `set_commo`.
/// Returns NULL if `frame` is NULL.
#[no_mangle]
pub extern "C" fn rust_raft_server_new(
    frame: Frame_C,
    commo: RaftCommo_C,
    raft_logs: RaftLogs_C,
    tx_sched: TxScheduler_C,
    app_next: AppNextFn_C,
    is_test_mode: bool,
) -> *mut c_void {
    logging::init();
    let _ = (commo, tx_sched); // commo arrives via set_commo; the lab has no transactions
    without_unwinding("rust_raft_server_new", std::ptr::null_mut(), || {
        // SAFETY: the framework passes a live frame or NULL.
        let Some(ids) = (unsafe { wrappers::read_frame_ids(frame) }) else {
            log::error!("rust_raft_server_new: NULL frame; no server created");
            return std::ptr::null_mut();
        };
        let server = Arc::new(RaftServer::new(ServerParts {
            ids,
            logs: RaftLogs::new(raft_logs),
            app_next: AppNext::new(app_next),
            is_test_mode,
        }));
        let handle = NEXT_HANDLE.fetch_add(1, Ordering::SeqCst);
        registry().insert(handle, server);
        handle as *mut c_void
    })
}

/// Stops the server's fibers (each exits at its next wake-up) and forgets the
/// handle; later calls with it are logged no-ops.
#[no_mangle]
pub extern "C" fn rust_raft_server_delete(srv: *mut c_void) {
    without_unwinding("rust_raft_server_delete", (), || {
        let removed = registry().remove(&(srv as usize));
        match removed {
            Some(server) => server.stop(),
            None => log::warn!("rust_raft_server_delete: unknown handle {srv:p}; ignored"),
        }
    })
}

#[no_mangle]
pub extern "C" fn rust_raft_server_set_commo(srv: *mut c_void, commo: RaftCommo_C) {
    with_server(srv, "rust_raft_server_set_commo", (), |s| s.set_commo(Commo::new(commo)))
}

/// Starts the election and replication fibers (reactor thread).
#[no_mangle]
pub extern "C" fn rust_raft_server_setup(srv: *mut c_void) {
    with_server(srv, "rust_raft_server_setup", (), |s| s.setup())
}

#[no_mangle]
pub extern "C" fn rust_raft_server_is_leader(srv: *mut c_void) -> bool {
    with_server(srv, "rust_raft_server_is_leader", false, |s| s.is_leader())
}

#[no_mangle]
pub extern "C" fn rust_raft_server_set_is_leader(srv: *mut c_void, is_leader: bool) {
    with_server(srv, "rust_raft_server_set_is_leader", (), |s| s.set_is_leader(is_leader))
}

#[no_mangle]
pub extern "C" fn rust_raft_server_get_state(srv: *mut c_void, is_leader: *mut bool, term: *mut u64) {
    let (leader, current_term) = with_server(srv, "rust_raft_server_get_state", (false, 0), |s| s.state());
    // SAFETY: each pointer is NULL or points to the caller's variable.
    unsafe {
        write_out(is_leader, leader);
        write_out(term, current_term);
    }
}

#[no_mangle]
pub extern "C" fn rust_raft_server_disconnect(srv: *mut c_void, disconnect: bool) {
    with_server(srv, "rust_raft_server_disconnect", (), |s| s.set_disconnected(disconnect))
}

#[no_mangle]
pub extern "C" fn rust_raft_server_reconnect(srv: *mut c_void) {
    with_server(srv, "rust_raft_server_reconnect", (), |s| s.reconnect())
}

#[no_mangle]
pub extern "C" fn rust_raft_server_is_disconnected(srv: *mut c_void) -> bool {
    with_server(srv, "rust_raft_server_is_disconnected", false, |s| s.is_disconnected())
}

/// Appends `cmd` if this server leads. The crate owns `cmd` whatever happens.
#[no_mangle]
pub extern "C" fn rust_raft_server_start(
    srv: *mut c_void,
    cmd: Marshallable_C,
    index: *mut u64,
    term: *mut u64,
    slot_id: slotid_t,
    ballot: ballot_t,
) -> bool {
    let _ = (slot_id, ballot); // pass-through values the lab ignores
    // SAFETY: the framework made `cmd` for this call and hands it over.
    let command = unsafe { Command::from_owned(cmd) };
    let accepted = with_server(srv, "rust_raft_server_start", None, |s| match command {
        Some(command) => s.start(command),
        None => {
            log::warn!("rust_raft_server_start: NULL command; refused");
            None
        }
    });
    let Some((new_index, new_term)) = accepted else { return false };
    // SAFETY: each pointer is NULL or points to the caller's variable.
    unsafe {
        write_out(index, new_index);
        write_out(term, new_term);
    }
    true
}

#[no_mangle]
pub extern "C" fn rust_raft_server_request_vote(srv: *mut c_void) -> bool {
    with_server(srv, "rust_raft_server_request_vote", false, |s| {
        s.request_election();
        true
    })
}

/// RequestVote handler (reactor thread). The callback runs exactly once,
/// even for an unknown handle or a panic.
#[no_mangle]
pub extern "C" fn rust_raft_server_on_request_vote(
    srv: *mut c_void,
    lst_log_idx: slotid_t,
    lst_log_term: ballot_t,
    can_id: siteid_t,
    can_term: ballot_t,
    reply_term: *mut ballot_t,
    vote_granted: *mut bool_t,
    cb: raft_callback_t,
    cb_ctx: *mut c_void,
) {
    // SAFETY: the framework's reply pointers stay valid until `cb` runs, and
    // it expects `cb(cb_ctx)` exactly once: VoteReply guarantees both.
    let reply = unsafe { VoteReply::from_raw(reply_term, vote_granted, cb, cb_ctx, term_from_ballot(can_term)) };
    let request = VoteRequest {
        term: term_from_ballot(can_term),
        candidate_id: can_id,
        last_log_index: lst_log_idx,
        last_log_term: term_from_ballot(lst_log_term),
    };
    // If the body panics or the handle is unknown, `reply` is dropped and
    // answers with a refusal.
    with_server(srv, "rust_raft_server_on_request_vote", (), move |s| s.on_request_vote(request, reply))
}

/// AppendEntries handler (reactor thread), at most one entry. Parameter
/// names follow the contract.
#[no_mangle]
#[allow(non_snake_case)]
pub extern "C" fn rust_raft_server_on_append_entries(
    srv: *mut c_void,
    slot_id: slotid_t,
    ballot: ballot_t,
    leaderCurrentTerm: u64,
    leaderPrevLogIndex: u64,
    leaderPrevLogTerm: u64,
    leaderCommitIndex: u64,
    cmd: Marshallable_C,
    leaderNextLogTerm: u64,
    followerAppendOK: *mut u64,
    followerCurrentTerm: *mut u64,
    followerLastLogIndex: *mut u64,
    cb: raft_callback_t,
    cb_ctx: *mut c_void,
) {
    let _ = (slot_id, ballot); // pass-through values the lab ignores
    // SAFETY: as in on_request_vote; AppendReply answers "lost" if dropped.
    let reply = unsafe {
        AppendReply::from_raw(followerAppendOK, followerCurrentTerm, followerLastLogIndex, cb, cb_ctx)
    };
    // SAFETY: a non-NULL `cmd` was made for this call and is ours.
    let command = unsafe { Command::from_owned(cmd) };
    let request = AppendRequest {
        term: leaderCurrentTerm,
        prev_log_index: leaderPrevLogIndex,
        prev_log_term: leaderPrevLogTerm,
        entry: command.map(|command| Entry { term: leaderNextLogTerm, command }),
        leader_commit: leaderCommitIndex,
    };
    with_server(srv, "rust_raft_server_on_append_entries", (), move |s| s.on_append_entries(request, reply))
}

#[no_mangle]
pub extern "C" fn rust_raft_server_apply_logs(srv: *mut c_void) {
    with_server(srv, "rust_raft_server_apply_logs", (), |s| s.apply_committed())
}

/// Appends `cmd` without the leader check. The crate owns `cmd`.
#[no_mangle]
pub extern "C" fn rust_raft_server_set_local_append(
    srv: *mut c_void,
    cmd: Marshallable_C,
    term: *mut u64,
    index: *mut u64,
    slot_id: slotid_t,
    ballot: ballot_t,
) {
    let _ = (slot_id, ballot); // pass-through values the lab ignores
    // SAFETY: the framework made `cmd` for this call and hands it over.
    let command = unsafe { Command::from_owned(cmd) };
    let appended = with_server(srv, "rust_raft_server_set_local_append", None, |s| {
        command.map(|command| s.append_local(command))
    });
    if let Some((new_index, new_term)) = appended {
        // SAFETY: each pointer is NULL or points to the caller's variable.
        unsafe {
            write_out(term, new_term);
            write_out(index, new_index);
        }
    }
}

#[no_mangle]
pub extern "C" fn rust_raft_server_remove_cmd(srv: *mut c_void, slot: slotid_t) {
    with_server(srv, "rust_raft_server_remove_cmd", (), |s| s.erase_framework_log_entry(slot))
}

/// A new RaftData for log index `id` holding its term and command. Never
/// NULL: the framework copies the pointee without a check, so a missing
/// entry (or an unknown handle) gets an empty record for that index.
#[no_mangle]
pub extern "C" fn rust_raft_server_get_raft_instance(srv: *mut c_void, id: slotid_t) -> RaftData_C {
    let entry = without_unwinding("rust_raft_server_get_raft_instance", None, || {
        lookup(srv, "rust_raft_server_get_raft_instance").and_then(|s| s.entry(id))
    });
    wrappers::new_raft_data(id, entry.as_ref().map(|(entry, prev_term)| (entry.term, *prev_term, &entry.command)))
}
