//! Safe wrappers over the framework's imports (`ffi.rs`).
//!
//! Ownership and threading rules of ../shared/abi.md are encoded here:
//! - `Command` owns one `Marshallable_C` handle and releases it exactly once;
//! - `VoteReply` / `AppendReply` call the framework's reply callback exactly
//!   once (with the "lost" answer if dropped unsent);
//! - `PendingAppend` owns the reply buffers of an AppendEntries and leaks
//!   them if the reply may still arrive, so a late reply never writes into
//!   freed memory;
//! - the commo, event, fiber and log-map functions belong to the server's
//!   reactor thread: only fiber bodies and RPC handlers call them.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::ffi::{self, *};

/// The message of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".into())
}

/// Runs `body`, turning a panic into a logged error: no panic may unwind
/// into C++.
pub fn without_unwinding<R>(what: &str, fallback: R, body: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            log::error!("rust_raft: panic in {what}: {}", panic_message(payload.as_ref()));
            fallback
        }
    }
}

// ----- Commands ---------------------------------------------------------------

/// One owned handle to a framework command.
#[derive(Debug)]
pub struct Command(Marshallable_C);

// SAFETY: a handle is a heap-allocated shared pointer; retain/release/get_kind
// are documented as callable from any thread (abi.md, "Which imports may run
// off the reactor thread"), and nothing else is done with it here.
unsafe impl Send for Command {}
// SAFETY: as above; `&Command` only allows retain and get_kind.
unsafe impl Sync for Command {}

impl Command {
    /// Takes ownership of a handle the framework made for this call.
    ///
    /// # Safety
    /// `raw` must be NULL or a live `Marshallable_C` handle that nobody else
    /// will release.
    pub unsafe fn from_owned(raw: Marshallable_C) -> Option<Self> {
        (!raw.is_null()).then(|| Command(raw))
    }

    /// The handle, borrowed for the duration of a call.
    pub fn as_raw(&self) -> Marshallable_C {
        self.0
    }

    pub fn kind(&self) -> i32 {
        // SAFETY: self.0 is a live handle we own.
        unsafe { ffi::raft_marshallable_get_kind(self.0) }
    }
}

impl Clone for Command {
    fn clone(&self) -> Self {
        // SAFETY: self.0 is live; retain returns a new handle that we own.
        Command(unsafe { ffi::raft_marshallable_retain(self.0) })
    }
}

impl Drop for Command {
    fn drop(&mut self) {
        // SAFETY: we own this handle and release it exactly once, here.
        unsafe { ffi::raft_marshallable_release(self.0) }
    }
}

// ----- Identity, config, clock --------------------------------------------------

/// Who a server is (abi.md: in the lab site id == locale id, partition 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameIds {
    pub locale_id: u32,
    pub site_id: siteid_t,
    pub partition_id: parid_t,
}

/// Reads the ids of a frame.
///
/// # Safety
/// `frame` must be NULL or a live `Frame_C` handle.
pub unsafe fn read_frame_ids(frame: Frame_C) -> Option<FrameIds> {
    if frame.is_null() {
        return None;
    }
    // SAFETY: frame is live (caller), and the getters are plain reads.
    unsafe {
        Some(FrameIds {
            locale_id: ffi::raft_frame_get_locale_id(frame),
            site_id: ffi::raft_frame_get_site_id(frame),
            partition_id: ffi::raft_frame_get_partition_id(frame),
        })
    }
}

/// The partition's size from the framework's config, if it knows one.
pub fn partition_size(partition: parid_t) -> Option<usize> {
    // SAFETY: plain getters, callable from any thread; the config pointer
    // comes straight from the framework and is only handed back to it.
    let size = unsafe {
        let config = ffi::raft_config_get_config();
        if config.is_null() {
            return None;
        }
        ffi::raft_config_get_partition_size(config, partition)
    };
    usize::try_from(size).ok().filter(|&n| n > 0)
}

/// The framework's monotonic clock, in microseconds.
pub fn now_us() -> u64 {
    // SAFETY: a plain getter, callable from any thread.
    unsafe { ffi::raft_time_now() }
}

/// A seed from the framework's random generator: four draws of 16 bits.
/// (The framework computes `(r % (max - min + 1)) + min` in `int`, so a
/// range as wide as `(0, INT_MAX)` would overflow there.)
pub fn random_seed() -> u64 {
    (0..4).fold(0u64, |seed, _| {
        // SAFETY: a plain getter, callable from any thread; the range's
        // width (65,536) fits in int.
        let draw = unsafe { ffi::raft_random_rand(0, 0xFFFF) };
        (seed << 16) | (draw as u64 & 0xFFFF)
    })
}

// ----- Fibers -------------------------------------------------------------------

struct FiberBody {
    name: String,
    body: Box<dyn FnOnce() + 'static>,
}

unsafe extern "C" fn fiber_trampoline(ctx: *mut c_void) {
    // SAFETY: ctx is the Box<FiberBody> leaked by spawn_fiber, handed to us
    // exactly once by the framework.
    let fiber: Box<FiberBody> = unsafe { Box::from_raw(ctx as *mut FiberBody) };
    let FiberBody { name, body } = *fiber;
    if let Err(payload) = catch_unwind(AssertUnwindSafe(body)) {
        // A server whose fiber died would silently never campaign, replicate
        // or move its proxies again; a clear crash is better for everyone
        // debugging it than a cluster that quietly stops making progress.
        eprintln!(
            "rust_raft: panic in the {name}: {}; aborting (a server without it cannot work)",
            panic_message(payload.as_ref())
        );
        std::process::abort();
    }
}

/// Creates a fiber on the current reactor thread and runs it until its first
/// wait. Reactor thread only. A panic in `body` aborts the process with a
/// message naming the fiber (`name`).
pub fn spawn_fiber(name: String, body: impl FnOnce() + 'static) {
    let boxed = Box::new(FiberBody { name, body: Box::new(body) });
    // SAFETY: the trampoline takes back ownership of ctx exactly once.
    unsafe { ffi::raft_coroutine_create_run(Some(fiber_trampoline), Box::into_raw(boxed) as *mut c_void) }
}

/// Puts the calling fiber to sleep. Inside a fiber only.
pub fn fiber_sleep(us: u64) {
    // SAFETY: called from fiber bodies, on the reactor thread.
    unsafe { ffi::raft_coroutine_sleep(us) }
}

// ----- RPCs we send ----------------------------------------------------------------

/// The arguments of one AppendEntries, as the framework carries them.
#[derive(Debug, Clone, Copy)]
pub struct AppendArgs {
    pub site_id: siteid_t,
    pub partition_id: parid_t,
    pub current_term: u64,
    pub prev_log_index: u64,
    pub prev_log_term: u64,
    pub commit_index: u64,
    pub entry_term: u64,
}

/// The three values an AppendEntries reply carries.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AppendReplyValues {
    pub ok: u64,
    pub term: u64,
    pub last_log_index: u64,
}

/// An AppendEntries in flight: its event and the buffers its reply lands in.
pub struct PendingAppend {
    event: IntEvent_C,
    /// Written by the framework when the reply arrives, maybe after we gave
    /// up waiting; hence leaked unless we saw the reply.
    buffers: *mut AppendReplyValues,
    replied: bool,
}

impl PendingAppend {
    /// Blocks the calling fiber until the reply or `timeout_us`. Returns the
    /// reply if it arrived.
    pub fn wait(&mut self, timeout_us: u64) -> Option<AppendReplyValues> {
        // SAFETY: event is the live handle the framework returned for this
        // RPC; we are in a fiber on the reactor thread.
        let status = unsafe {
            ffi::raft_int_event_wait(self.event, timeout_us.max(1));
            ffi::raft_int_event_get_status(self.event)
        };
        if status == EVENT_STATUS_TIMEOUT {
            return None;
        }
        self.replied = true;
        // SAFETY: the event is set, so the framework has written the buffers
        // and will not touch them again.
        Some(unsafe { *self.buffers })
    }
}

impl Drop for PendingAppend {
    fn drop(&mut self) {
        if self.replied {
            // SAFETY: allocated by Box in send_append; the reply was written
            // already, so nobody else refers to it.
            drop(unsafe { Box::from_raw(self.buffers) });
        }
        // Otherwise the framework may still write the reply: the 24 bytes
        // stay allocated for good (abi.md: "may be never").
    }
}

/// The outcome of an election as the vote quorum event reports it.
pub struct VoteQuorum(VoteQuorumEvent_C);

impl VoteQuorum {
    /// True once yes votes reached the quorum.
    pub fn granted(&self) -> bool {
        // SAFETY: live event handle, reactor thread.
        unsafe { ffi::raft_vote_quorum_event_yes(self.0) != 0 }
    }
    /// True once enough voters refused that the election cannot be won.
    pub fn refused(&self) -> bool {
        // SAFETY: live event handle, reactor thread.
        unsafe { ffi::raft_vote_quorum_event_no(self.0) != 0 }
    }
    /// The highest term a refusing voter reported (0 if none).
    pub fn highest_refusing_term(&self) -> u64 {
        // SAFETY: live event handle, reactor thread.
        let term = unsafe { ffi::raft_vote_quorum_event_get_term(self.0) };
        term.max(0) as u64
    }
}

/// This server's communicator. Reactor thread only.
#[derive(Debug, Clone, Copy)]
pub struct Commo(RaftCommo_C);

// SAFETY: the handle is only an address; every use goes through the methods
// below, which the server calls from fibers on its reactor thread.
unsafe impl Send for Commo {}
// SAFETY: as above.
unsafe impl Sync for Commo {}

impl Commo {
    pub fn new(raw: RaftCommo_C) -> Option<Self> {
        (!raw.is_null()).then_some(Commo(raw))
    }

    /// The site ids of the partition's proxy list (this server's own included).
    pub fn partition_site_ids(&self, partition: parid_t) -> Vec<siteid_t> {
        // SAFETY: live commo handle, reactor thread; the out buffer holds n ids.
        unsafe {
            let proxies = ffi::raft_commo_get_rpc_par_proxies(self.0, partition);
            if proxies.is_null() {
                return Vec::new();
            }
            let n = ffi::raft_rpc_proxies_size(proxies);
            let mut ids = vec![0; n];
            ffi::raft_rpc_proxies_get_site_ids(proxies, ids.as_mut_ptr(), n);
            ids
        }
    }

    /// Sends one AppendEntries (a heartbeat when `entry` is None).
    pub fn send_append(&self, args: &AppendArgs, entry: Option<&Command>) -> PendingAppend {
        let buffers = Box::into_raw(Box::<AppendReplyValues>::default());
        // SAFETY: live commo handle, reactor thread. The command is borrowed
        // (the framework copies it). The three reply pointers point into a
        // heap block that outlives the RPC (see PendingAppend::drop).
        let event = unsafe {
            ffi::raft_commo_send_append_entries(
                self.0,
                args.site_id,
                args.partition_id,
                0,
                0,
                1,
                args.current_term,
                args.prev_log_index,
                args.prev_log_term,
                args.commit_index,
                entry.map_or(std::ptr::null_mut(), Command::as_raw),
                args.entry_term,
                std::ptr::addr_of_mut!((*buffers).ok),
                std::ptr::addr_of_mut!((*buffers).term),
                std::ptr::addr_of_mut!((*buffers).last_log_index),
            )
        };
        PendingAppend { event, buffers, replied: false }
    }

    /// Sends RequestVote to every other member and returns the quorum event.
    pub fn broadcast_vote(
        &self,
        partition: parid_t,
        last_log_index: u64,
        last_log_term: u64,
        self_id: siteid_t,
        term: u64,
    ) -> VoteQuorum {
        // SAFETY: live commo handle, reactor thread.
        VoteQuorum(unsafe {
            ffi::raft_commo_broadcast_vote(
                self.0,
                partition,
                last_log_index,
                last_log_term as ballot_t,
                self_id,
                term as ballot_t,
            )
        })
    }

    /// Moves this server's proxies into the framework's backup (abi.md,
    /// "Disconnection"), unless they are there already.
    pub fn save_proxies(&self, partition: parid_t, locale: u32) {
        // SAFETY: live commo handle, reactor thread.
        unsafe {
            if ffi::raft_commo_get_rpc_proxy_count(self.0, partition) > 0 {
                ffi::raft_commo_save_rpc_proxies(self.0, partition, locale);
            }
        }
    }

    /// Moves them back, if a backup exists.
    pub fn restore_proxies(&self, partition: parid_t, locale: u32) {
        // SAFETY: live commo handle, reactor thread.
        unsafe {
            if ffi::raft_commo_has_backup_proxies(partition, locale) {
                ffi::raft_commo_restore_rpc_proxies(self.0, partition, locale);
            }
        }
    }
}

// ----- RPCs we answer ------------------------------------------------------------

/// The reply slot of one incoming RequestVote: call `send` once; dropping it
/// unsent sends a refusal, so the framework's callback always runs once.
pub struct VoteReply {
    reply_term: *mut ballot_t,
    vote_granted: *mut bool_t,
    callback: raft_callback_t,
    callback_ctx: *mut c_void,
    default_term: u64,
}

impl VoteReply {
    /// # Safety
    /// The pointers are those the framework passed to the handler: the two
    /// reply fields valid (or NULL) until the callback runs, which must run
    /// exactly once.
    pub unsafe fn from_raw(
        reply_term: *mut ballot_t,
        vote_granted: *mut bool_t,
        callback: raft_callback_t,
        callback_ctx: *mut c_void,
        default_term: u64,
    ) -> Self {
        VoteReply { reply_term, vote_granted, callback, callback_ctx, default_term }
    }

    pub fn send(self, term: u64, granted: bool) {
        self.finish(term, granted);
        std::mem::forget(self);
    }

    fn finish(&self, term: u64, granted: bool) {
        // SAFETY: from_raw's contract: fields valid or NULL until the
        // callback, which runs here exactly once (send forgets self, drop
        // runs only when send did not).
        unsafe {
            if !self.reply_term.is_null() {
                *self.reply_term = term as ballot_t;
            }
            if !self.vote_granted.is_null() {
                *self.vote_granted = granted as bool_t;
            }
            if let Some(callback) = self.callback {
                callback(self.callback_ctx);
            }
        }
    }
}

impl Drop for VoteReply {
    fn drop(&mut self) {
        self.finish(self.default_term, false);
    }
}

/// The reply slot of one incoming AppendEntries; same rules as `VoteReply`.
pub struct AppendReply {
    ok: *mut u64,
    term: *mut u64,
    last_log_index: *mut u64,
    callback: raft_callback_t,
    callback_ctx: *mut c_void,
}

impl AppendReply {
    /// # Safety
    /// As `VoteReply::from_raw`.
    pub unsafe fn from_raw(
        ok: *mut u64,
        term: *mut u64,
        last_log_index: *mut u64,
        callback: raft_callback_t,
        callback_ctx: *mut c_void,
    ) -> Self {
        AppendReply { ok, term, last_log_index, callback, callback_ctx }
    }

    pub fn send(self, values: AppendReplyValues) {
        self.finish(values);
        std::mem::forget(self);
    }

    fn finish(&self, values: AppendReplyValues) {
        // SAFETY: as VoteReply::finish.
        unsafe {
            if !self.ok.is_null() {
                *self.ok = values.ok;
            }
            if !self.term.is_null() {
                *self.term = values.term;
            }
            if !self.last_log_index.is_null() {
                *self.last_log_index = values.last_log_index;
            }
            if let Some(callback) = self.callback {
                callback(self.callback_ctx);
            }
        }
    }
}

impl Drop for AppendReply {
    fn drop(&mut self) {
        // The "lost" answer: ok = 0, term = 0 says nothing about logs.
        self.finish(AppendReplyValues::default());
    }
}

// ----- The state machine and the C++ log map ------------------------------------------

/// The framework's apply callback.
#[derive(Debug, Clone, Copy)]
pub struct AppNext(AppNextFn_C);

// SAFETY: an opaque function handle; the server calls it on one thread at a
// time (see RaftServer::apply_committed).
unsafe impl Send for AppNext {}
// SAFETY: as above.
unsafe impl Sync for AppNext {}

impl AppNext {
    pub fn new(raw: AppNextFn_C) -> Option<Self> {
        (!raw.is_null()).then_some(AppNext(raw))
    }

    /// Hands a committed command to the state machine (`cmd` borrowed).
    pub fn apply(&self, index: u64, command: &Command) -> i32 {
        // SAFETY: live function handle; the command handle is live and only
        // borrowed for the call.
        unsafe { ffi::raft_app_next_call(self.0, index as i32, command.as_raw()) }
    }
}

/// The framework's per-server log map.
#[derive(Debug, Clone, Copy)]
pub struct RaftLogs(RaftLogs_C);

// SAFETY: an opaque handle used only through the methods below.
unsafe impl Send for RaftLogs {}
// SAFETY: as above.
unsafe impl Sync for RaftLogs {}

impl RaftLogs {
    pub fn new(raw: RaftLogs_C) -> Option<Self> {
        (!raw.is_null()).then_some(RaftLogs(raw))
    }

    /// Removes the map's entry at `slot`. Reactor thread only.
    pub fn erase(&self, slot: slotid_t) {
        // SAFETY: live log-map handle.
        unsafe { ffi::raft_logs_erase(self.0, slot) }
    }
}

/// A fresh RaftData record for log index `slot`: its (term, previous
/// entry's term, command) if the entry exists, else an empty record with
/// only the slot set. The framework has no release for these: the caller
/// (C++) owns it.
pub fn new_raft_data(slot: slotid_t, entry: Option<(u64, u64, &Command)>) -> RaftData_C {
    // SAFETY: raft_data_new returns a live record; set_log copies the
    // command (we keep ours).
    unsafe {
        let data = ffi::raft_data_new();
        if !data.is_null() {
            ffi::raft_data_set_slot_id(data, slot);
            if let Some((term, prev_term, command)) = entry {
                ffi::raft_data_set_term(data, term);
                ffi::raft_data_set_prev_term(data, prev_term);
                ffi::raft_data_set_log(data, command.as_raw());
            }
        }
        data
    }
}
