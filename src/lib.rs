// TWIN OF THE LAB'S GLUE -- not part of what is handed in.
//
// The lab's `lib.rs` (../shared/skeleton.md, "lib.rs: how the exports reach
// RaftServer"), re-created here so that `src/server.rs` is built, tested and
// measured exactly as the lab's tree calls it:
// - a process-wide registry maps a counter (from 1, cast to a pointer) to a
//   raw `*mut RaftServer`;
// - `rust_raft_server_new` sets up `env_logger` once (level Info) and boxes
//   a `RaftServer::new(...)`;
// - every other export looks the pointer up under the registry lock,
//   RELEASES the lock, and calls the server through `&mut *ptr` -- from test
//   threads and the reactor thread at once, with no per-server lock;
// - `rust_raft_server_setup` is the exception: it holds the registry lock
//   while `setup` runs (and with it the first run of any fiber created there);
// - `rust_raft_server_delete` writes `stop` and `looping`, sleeps 200 ms on
//   the calling thread, unregisters and drops the box;
// - an unknown handle is a no-op (false/0; the RPC handlers then never call
//   the reply callback; `get_raft_instance` returns NULL).
// None of this catches a panic: one that leaves a server method aborts the
// process (an `extern "C"` function cannot unwind).

mod ffi;
mod server;
pub mod wrappers;

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use lazy_static::lazy_static;
use log::info;

use crate::ffi::*;
use crate::server::RaftServer;
use crate::wrappers::{AppendEntriesReply, Command, ServerHandle, VoteReply};

/// A registry entry. The raw pointer crosses threads: the registry is a
/// process-wide static.
struct ServerPtr(*mut RaftServer);

unsafe impl Send for ServerPtr {}

lazy_static! {
    static ref REGISTRY: Mutex<HashMap<usize, ServerPtr>> = Mutex::new(HashMap::new());
    static ref LOGGER: () = {
        let _ = env_logger::builder().filter_level(log::LevelFilter::Info).try_init();
    };
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// The server behind `handle`, looked up under the registry lock (released
/// on return).
fn lookup(handle: *mut c_void) -> Option<*mut RaftServer> {
    REGISTRY.lock().unwrap().get(&(handle as usize)).map(|entry| entry.0)
}

#[no_mangle]
pub extern "C" fn rust_raft_server_new(
    frame: Frame_C,
    commo: RaftCommo_C,
    raft_logs: RaftLogs_C,
    tx_sched: TxScheduler_C,
    app_next: AppNextFn_C,
    is_test_mode: bool,
) -> *mut c_void {
    lazy_static::initialize(&LOGGER);
    let server = Box::into_raw(Box::new(RaftServer::new(frame, commo, raft_logs, tx_sched, app_next, is_test_mode)));
    let id = NEXT_ID.fetch_add(1, Ordering::SeqCst);
    REGISTRY.lock().unwrap().insert(id, ServerPtr(server));
    id as *mut c_void
}

#[no_mangle]
pub extern "C" fn rust_raft_server_delete(server: *mut c_void) {
    let Some(ptr) = lookup(server) else { return };
    unsafe {
        (*ptr).stop = true;
        (*ptr).looping = false;
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    REGISTRY.lock().unwrap().remove(&(server as usize));
    unsafe { drop(Box::from_raw(ptr)) };
}

#[no_mangle]
pub extern "C" fn rust_raft_server_setup(server: *mut c_void) {
    let registry = REGISTRY.lock().unwrap();
    if let Some(entry) = registry.get(&(server as usize)) {
        let ptr = entry.0;
        unsafe {
            info!("[lib.rs] rust_raft_server_setup called for server ID {} (site_id: {})", server as usize, (*ptr).site_id);
            (*ptr).setup(ServerHandle::new(ptr));
        }
    }
}

#[no_mangle]
pub extern "C" fn rust_raft_server_is_leader(server: *mut c_void) -> bool {
    match lookup(server) {
        Some(ptr) => unsafe { (*ptr).is_leader() },
        None => false,
    }
}

#[no_mangle]
pub extern "C" fn rust_raft_server_set_is_leader(server: *mut c_void, is_leader: bool) {
    if let Some(ptr) = lookup(server) {
        unsafe { (*ptr).set_is_leader(is_leader) }
    }
}

#[no_mangle]
#[allow(clippy::not_unsafe_ptr_arg_deref)] // twin only: lets clippy run on server.rs
pub extern "C" fn rust_raft_server_get_state(server: *mut c_void, is_leader: *mut bool, term: *mut u64) {
    if let Some(ptr) = lookup(server) {
        unsafe {
            let (leader, current_term) = (*ptr).get_state();
            if !is_leader.is_null() {
                *is_leader = leader;
            }
            if !term.is_null() {
                *term = current_term;
            }
        }
    }
}

#[no_mangle]
pub extern "C" fn rust_raft_server_disconnect(server: *mut c_void, disconnect: bool) {
    if let Some(ptr) = lookup(server) {
        unsafe { (*ptr).disconnect(disconnect) }
    }
}

#[no_mangle]
pub extern "C" fn rust_raft_server_reconnect(server: *mut c_void) {
    if let Some(ptr) = lookup(server) {
        unsafe { (*ptr).reconnect() }
    }
}

#[no_mangle]
pub extern "C" fn rust_raft_server_is_disconnected(server: *mut c_void) -> bool {
    match lookup(server) {
        Some(ptr) => unsafe { (*ptr).is_disconnected() },
        None => false,
    }
}

#[no_mangle]
#[allow(clippy::not_unsafe_ptr_arg_deref)] // twin only: lets clippy run on server.rs
pub extern "C" fn rust_raft_server_start(
    server: *mut c_void,
    cmd: Marshallable_C,
    index: *mut u64,
    term: *mut u64,
    slot_id: slotid_t,
    ballot: ballot_t,
) -> bool {
    let Some(ptr) = lookup(server) else { return false };
    info!("appended to local log");
    let (mut new_index, mut new_term) = (0u64, 0u64);
    unsafe {
        let accepted = (*ptr).start(Command::from_raw(cmd), &mut new_index, &mut new_term, slot_id, ballot);
        if !index.is_null() {
            *index = new_index;
        }
        if !term.is_null() {
            *term = new_term;
        }
        accepted
    }
}

#[no_mangle]
pub extern "C" fn rust_raft_server_request_vote(server: *mut c_void) -> bool {
    match lookup(server) {
        Some(ptr) => unsafe { (*ptr).request_vote() },
        None => false,
    }
}

#[no_mangle]
pub extern "C" fn rust_raft_server_on_request_vote(
    server: *mut c_void,
    lst_log_idx: slotid_t,
    lst_log_term: ballot_t,
    can_id: siteid_t,
    can_term: ballot_t,
    reply_term: *mut ballot_t,
    vote_granted: *mut bool_t,
    callback: unsafe extern "C" fn(*mut c_void),
    callback_context: *mut c_void,
) {
    if let Some(ptr) = lookup(server) {
        let reply = VoteReply::new(reply_term, vote_granted, callback, callback_context);
        unsafe { (*ptr).on_request_vote(lst_log_idx, lst_log_term, can_id, can_term, reply) }
    }
}

#[no_mangle]
pub extern "C" fn rust_raft_server_on_append_entries(
    server: *mut c_void,
    slot_id: slotid_t,
    ballot: ballot_t,
    leader_current_term: u64,
    leader_prev_log_index: u64,
    leader_prev_log_term: u64,
    leader_commit_index: u64,
    cmd: Marshallable_C,
    leader_next_log_term: u64,
    follower_append_ok: *mut u64,
    follower_current_term: *mut u64,
    follower_last_log_index: *mut u64,
    callback: unsafe extern "C" fn(*mut c_void),
    callback_context: *mut c_void,
) {
    if let Some(ptr) = lookup(server) {
        let reply = AppendEntriesReply::new(
            follower_append_ok,
            follower_current_term,
            follower_last_log_index,
            callback,
            callback_context,
        );
        unsafe {
            (*ptr).on_append_entries(
                slot_id,
                ballot,
                leader_current_term,
                leader_prev_log_index,
                leader_prev_log_term,
                leader_commit_index,
                Command::from_raw(cmd),
                leader_next_log_term,
                reply,
            )
        }
    }
}

#[no_mangle]
pub extern "C" fn rust_raft_server_apply_logs(server: *mut c_void) {
    if let Some(ptr) = lookup(server) {
        unsafe { (*ptr).apply_logs() }
    }
}

#[no_mangle]
#[allow(clippy::not_unsafe_ptr_arg_deref)] // twin only: lets clippy run on server.rs
pub extern "C" fn rust_raft_server_set_local_append(
    server: *mut c_void,
    cmd: Marshallable_C,
    term: *mut u64,
    index: *mut u64,
    slot_id: slotid_t,
    ballot: ballot_t,
) {
    if let Some(ptr) = lookup(server) {
        // As in the lab: `term` and `index` are dereferenced unchecked.
        unsafe { (*ptr).set_local_append(Command::from_raw(cmd), &mut *term, &mut *index, slot_id, ballot) }
    }
}

#[no_mangle]
pub extern "C" fn rust_raft_server_remove_cmd(server: *mut c_void, slot: slotid_t) {
    if let Some(ptr) = lookup(server) {
        unsafe { (*ptr).remove_cmd(slot) }
    }
}

#[no_mangle]
pub extern "C" fn rust_raft_server_get_raft_instance(server: *mut c_void, id: slotid_t) -> RaftData_C {
    match lookup(server) {
        Some(ptr) => unsafe { (*ptr).get_raft_instance(id) },
        None => std::ptr::null_mut(),
    }
}

#[no_mangle]
pub extern "C" fn rust_raft_server_set_commo(server: *mut c_void, commo: RaftCommo_C) {
    if let Some(ptr) = lookup(server) {
        unsafe {
            (*ptr).commo.update_raw(commo);
            info!("[lib.rs] Updated commo pointer for site {}", (*ptr).site_id);
        }
    }
}
