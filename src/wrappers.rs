// TWIN OF THE LAB'S GLUE -- not part of what is handed in.
//
// The lab's `wrappers.rs` ("DO NOT MODIFY - This is infrastructure code"),
// re-created here from ../shared/skeleton.md with the same items, names,
// signatures and behaviour, so that `src/server.rs` meets exactly the API it
// has in the lab's tree. What a server must know about it:
// - `Command` is a Copy view of a handle and owns nothing: nothing here ever
//   releases a command;
// - `AppendEntriesFuture` owns the box its reply is written into and frees
//   it when dropped, even if the reply may still arrive;
// - `VoteReply` / `AppendEntriesReply` send on `send()` or, if never sent,
//   when dropped; their setters write through the framework's pointers
//   without a NULL check;
// - `LogStore::get` makes a new `RaftData_C` handle on every call (never
//   freed), and `LogEntry::command` a new command handle on every call;
// - `ServerHandle::with` dereferences a raw pointer that nothing keeps
//   alive.

#![allow(dead_code)]

use std::ffi::c_void;

use crate::ffi;
use crate::server::RaftServer;

pub use crate::ffi::{ballot_t, bool_t, parid_t, siteid_t, slotid_t};

// ----- Command -------------------------------------------------------------------

/// A command handle from the framework, or none (a heartbeat carries none).
/// Copying it copies the pointer, not the command.
#[derive(Clone, Copy)]
pub struct Command {
    raw: ffi::Marshallable_C,
}

impl Command {
    pub(crate) fn from_raw(raw: ffi::Marshallable_C) -> Self {
        Command { raw }
    }

    pub(crate) fn as_raw(&self) -> ffi::Marshallable_C {
        self.raw
    }

    /// The empty command.
    pub fn null() -> Self {
        Command { raw: std::ptr::null_mut() }
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_null()
    }

    /// The command's kind tag; 0 for the empty command.
    pub fn kind(&self) -> i32 {
        if self.is_empty() {
            0
        } else {
            unsafe { ffi::raft_marshallable_get_kind(self.raw) }
        }
    }
}

// ----- The C++ log map ---------------------------------------------------------------

/// One record of the C++ log map. Setters take `&self`: they write into the
/// C++ object behind the pointer.
pub struct LogEntry {
    raw: ffi::RaftData_C,
}

impl LogEntry {
    pub(crate) fn from_raw(raw: ffi::RaftData_C) -> Self {
        LogEntry { raw }
    }

    pub(crate) fn as_raw(&self) -> ffi::RaftData_C {
        self.raw
    }

    pub fn term(&self) -> ballot_t {
        unsafe { ffi::raft_data_get_term(self.raw) }
    }

    pub fn set_term(&self, term: ballot_t) {
        unsafe { ffi::raft_data_set_term(self.raw, term) }
    }

    pub fn prev_term(&self) -> ballot_t {
        unsafe { ffi::raft_data_get_prev_term(self.raw) }
    }

    pub fn set_prev_term(&self, prev_term: ballot_t) {
        unsafe { ffi::raft_data_set_prev_term(self.raw, prev_term) }
    }

    pub fn slot_id(&self) -> slotid_t {
        unsafe { ffi::raft_data_get_slot_id(self.raw) }
    }

    pub fn set_slot_id(&self, slot_id: slotid_t) {
        unsafe { ffi::raft_data_set_slot_id(self.raw, slot_id) }
    }

    pub fn ballot(&self) -> ballot_t {
        unsafe { ffi::raft_data_get_ballot(self.raw) }
    }

    pub fn set_ballot(&self, ballot: ballot_t) {
        unsafe { ffi::raft_data_set_ballot(self.raw, ballot) }
    }

    /// A new handle to the record's command, on every call.
    pub fn command(&self) -> Command {
        Command::from_raw(unsafe { ffi::raft_data_get_log(self.raw) })
    }

    /// Stores a copy of `command` (the caller keeps its handle).
    pub fn set_command(&self, command: Command) {
        unsafe { ffi::raft_data_set_log(self.raw, command.as_raw()) }
    }
}

/// The server's C++ log map.
pub struct LogStore {
    raw: ffi::RaftLogs_C,
}

unsafe impl Send for LogStore {}

impl LogStore {
    pub(crate) fn from_raw(raw: ffi::RaftLogs_C) -> Self {
        LogStore { raw }
    }

    /// The record at `slot_id`, created empty if missing; a new handle on
    /// every call.
    pub fn get(&self, slot_id: slotid_t) -> LogEntry {
        LogEntry::from_raw(unsafe { ffi::raft_logs_get_instance(self.raw, slot_id) })
    }

    pub fn erase(&self, slot_id: slotid_t) {
        unsafe { ffi::raft_logs_erase(self.raw, slot_id) }
    }
}

// ----- RPCs out --------------------------------------------------------------------------

/// How a wait on an RPC's event ended.
pub enum EventOutcome {
    /// The event was set: the reply values can be read.
    Ok,
    /// The wait timed out (the event's status is TIMEOUT).
    Timeout,
}

/// Where the framework writes an AppendEntries reply.
struct AppendReplySlots {
    status: u64,
    term: u64,
    last_log_index: u64,
}

/// An AppendEntries in flight. It owns its reply slots: dropping it frees
/// them, whether or not the reply has arrived.
pub struct AppendEntriesFuture {
    event: ffi::IntEvent_C,
    reply: Box<AppendReplySlots>,
}

impl AppendEntriesFuture {
    /// Blocks the calling fiber until the reply or `timeout_micros` (0: no
    /// timeout at all).
    pub fn wait(&self, timeout_micros: u64) -> EventOutcome {
        let status = unsafe {
            ffi::raft_int_event_wait(self.event, timeout_micros);
            ffi::raft_int_event_get_status(self.event)
        };
        if status == 4 {
            EventOutcome::Timeout
        } else {
            EventOutcome::Ok
        }
    }

    pub fn reply_status(&self) -> u64 {
        self.reply.status
    }

    pub fn reply_term(&self) -> u64 {
        self.reply.term
    }

    pub fn reply_last_log_index(&self) -> u64 {
        self.reply.last_log_index
    }
}

/// A vote broadcast's quorum event. The counts are read at once (they can
/// be polled); `wait` blocks until a yes or no quorum, or 1 s.
pub struct VoteResult {
    event: ffi::VoteQuorumEvent_C,
}

impl VoteResult {
    pub fn wait(&self) {
        unsafe { ffi::raft_vote_quorum_event_wait(self.event) }
    }

    pub fn yes_count(&self) -> i32 {
        unsafe { ffi::raft_vote_quorum_event_yes(self.event) }
    }

    pub fn no_count(&self) -> i32 {
        unsafe { ffi::raft_vote_quorum_event_no(self.event) }
    }

    pub fn term(&self) -> ballot_t {
        unsafe { ffi::raft_vote_quorum_event_get_term(self.event) }
    }
}

/// The server's communicator.
pub struct Commo {
    raw: ffi::RaftCommo_C,
}

unsafe impl Send for Commo {}

impl Commo {
    pub(crate) fn from_raw(raw: ffi::RaftCommo_C) -> Self {
        Commo { raw }
    }

    pub(crate) fn update_raw(&mut self, raw: ffi::RaftCommo_C) {
        self.raw = raw;
    }

    pub(crate) fn as_raw(&self) -> ffi::RaftCommo_C {
        self.raw
    }

    pub fn is_null(&self) -> bool {
        self.raw.is_null()
    }

    /// Sends one AppendEntries to `site_id`; `cmd` is borrowed (the
    /// framework copies it), the empty command makes a heartbeat.
    #[allow(clippy::too_many_arguments)]
    pub fn send_append_entries(
        &self,
        site_id: siteid_t,
        par_id: parid_t,
        slot_id: slotid_t,
        ballot: ballot_t,
        is_leader: bool,
        current_term: u64,
        prev_log_index: u64,
        prev_log_term: u64,
        commit_index: u64,
        cmd: Command,
        cmd_log_term: u64,
    ) -> AppendEntriesFuture {
        let mut reply = Box::new(AppendReplySlots { status: 0, term: 0, last_log_index: 0 });
        let event = unsafe {
            ffi::raft_commo_send_append_entries(
                self.raw,
                site_id,
                par_id,
                slot_id,
                ballot,
                is_leader as bool_t,
                current_term,
                prev_log_index,
                prev_log_term,
                commit_index,
                cmd.as_raw(),
                cmd_log_term,
                &mut reply.status,
                &mut reply.term,
                &mut reply.last_log_index,
            )
        };
        AppendEntriesFuture { event, reply }
    }

    /// Sends RequestVote to every other member of the partition.
    pub fn broadcast_vote(
        &self,
        par_id: parid_t,
        last_log_idx: slotid_t,
        last_log_term: ballot_t,
        self_id: siteid_t,
        current_term: ballot_t,
    ) -> VoteResult {
        let event = unsafe {
            ffi::raft_commo_broadcast_vote(self.raw, par_id, last_log_idx, last_log_term, self_id, current_term)
        };
        VoteResult { event }
    }

    /// The site ids of the partition's proxy list (this server's own included).
    pub fn get_peer_site_ids(&self, par_id: parid_t) -> Vec<siteid_t> {
        unsafe {
            let proxies = ffi::raft_commo_get_rpc_par_proxies(self.raw, par_id);
            if proxies.is_null() {
                return Vec::new();
            }
            let count = ffi::raft_rpc_proxies_size(proxies);
            let mut ids = vec![0 as siteid_t; count];
            ffi::raft_rpc_proxies_get_site_ids(proxies, ids.as_mut_ptr(), count);
            ids
        }
    }

    pub(crate) fn proxy_count(&self, par_id: parid_t) -> usize {
        unsafe { ffi::raft_commo_get_rpc_proxy_count(self.raw, par_id) }
    }

    pub(crate) fn save_proxies(&self, par_id: parid_t, loc_id: u32) {
        unsafe { ffi::raft_commo_save_rpc_proxies(self.raw, par_id, loc_id) }
    }

    pub(crate) fn restore_proxies(&self, par_id: parid_t, loc_id: u32) {
        unsafe { ffi::raft_commo_restore_rpc_proxies(self.raw, par_id, loc_id) }
    }
}

pub(crate) fn has_backup_proxies(par_id: parid_t, loc_id: u32) -> bool {
    unsafe { ffi::raft_commo_has_backup_proxies(par_id, loc_id) }
}

pub(crate) fn get_backup_proxy_count(par_id: parid_t, loc_id: u32) -> usize {
    unsafe { ffi::raft_commo_get_backup_proxy_count(par_id, loc_id) }
}

// ----- The state machine and the configuration ---------------------------------------

/// The framework's apply callback.
pub struct AppCallback {
    raw: ffi::AppNextFn_C,
}

unsafe impl Send for AppCallback {}

impl AppCallback {
    pub(crate) fn from_raw(raw: ffi::AppNextFn_C) -> Self {
        AppCallback { raw }
    }

    /// Hands a committed command to the state machine (`cmd` is borrowed).
    pub fn apply(&self, index: i32, cmd: Command) -> i32 {
        unsafe { ffi::raft_app_next_call(self.raw, index, cmd.as_raw()) }
    }
}

/// The cluster configuration.
pub struct Config {
    raw: ffi::Config_C,
}

impl Config {
    pub fn get() -> Self {
        Config { raw: unsafe { ffi::raft_config_get_config() } }
    }

    pub fn partition_size(&self, par_id: parid_t) -> usize {
        unsafe { ffi::raft_config_get_partition_size(self.raw, par_id) as usize }
    }
}

// ----- RPCs in: the replies ------------------------------------------------------------

/// The reply to one RequestVote. Sent by `send()`, or when dropped unsent.
pub struct VoteReply {
    reply_term: *mut ballot_t,
    vote_granted: *mut bool_t,
    callback: unsafe extern "C" fn(*mut c_void),
    callback_context: *mut c_void,
    sent: bool,
}

unsafe impl Send for VoteReply {}

impl VoteReply {
    pub(crate) fn new(
        reply_term: *mut ballot_t,
        vote_granted: *mut bool_t,
        callback: unsafe extern "C" fn(*mut c_void),
        callback_context: *mut c_void,
    ) -> Self {
        VoteReply { reply_term, vote_granted, callback, callback_context, sent: false }
    }

    pub fn set_term(&self, term: ballot_t) {
        unsafe { *self.reply_term = term }
    }

    pub fn set_vote_granted(&self, granted: bool) {
        unsafe { *self.vote_granted = granted as bool_t }
    }

    pub fn send(mut self) {
        self.fire();
    }

    fn fire(&mut self) {
        if !self.sent {
            self.sent = true;
            unsafe { (self.callback)(self.callback_context) }
        }
    }
}

impl Drop for VoteReply {
    fn drop(&mut self) {
        self.fire();
    }
}

/// The reply to one AppendEntries. Sent by `send()`, or when dropped unsent.
pub struct AppendEntriesReply {
    ok: *mut u64,
    term: *mut u64,
    last_log_index: *mut u64,
    callback: unsafe extern "C" fn(*mut c_void),
    callback_context: *mut c_void,
    sent: bool,
}

unsafe impl Send for AppendEntriesReply {}

impl AppendEntriesReply {
    pub(crate) fn new(
        ok: *mut u64,
        term: *mut u64,
        last_log_index: *mut u64,
        callback: unsafe extern "C" fn(*mut c_void),
        callback_context: *mut c_void,
    ) -> Self {
        AppendEntriesReply { ok, term, last_log_index, callback, callback_context, sent: false }
    }

    pub fn set_ok(&self, ok: bool) {
        unsafe { *self.ok = ok as u64 }
    }

    pub fn set_term(&self, term: u64) {
        unsafe { *self.term = term }
    }

    pub fn set_last_log_index(&self, last_log_index: u64) {
        unsafe { *self.last_log_index = last_log_index }
    }

    pub fn accept(&self, current_term: u64, last_log_index: u64) {
        self.set_ok(true);
        self.set_term(current_term);
        self.set_last_log_index(last_log_index);
    }

    pub fn reject(&self, current_term: u64, last_log_index: u64) {
        self.set_ok(false);
        self.set_term(current_term);
        self.set_last_log_index(last_log_index);
    }

    pub fn send(mut self) {
        self.fire();
    }

    fn fire(&mut self) {
        if !self.sent {
            self.sent = true;
            unsafe { (self.callback)(self.callback_context) }
        }
    }
}

impl Drop for AppendEntriesReply {
    fn drop(&mut self) {
        self.fire();
    }
}

// ----- The server, from a fiber ---------------------------------------------------------

/// The server as a fiber sees it: a raw pointer that nothing keeps alive.
#[derive(Clone, Copy)]
pub struct ServerHandle {
    server: *mut RaftServer,
}

unsafe impl Send for ServerHandle {}

impl ServerHandle {
    pub(crate) fn new(server: *mut RaftServer) -> Self {
        ServerHandle { server }
    }

    /// Runs `f` on the server behind the pointer.
    pub fn with<F, R>(&self, f: F) -> R
    where
        F: FnOnce(&mut RaftServer) -> R,
    {
        unsafe { f(&mut *self.server) }
    }
}

/// Puts the calling fiber to sleep.
pub fn coroutine_sleep(microseconds: u64) {
    unsafe { ffi::raft_coroutine_sleep(microseconds) }
}
