//! The FFI edge of the server: every use of the framework's raw handles and
//! every `unsafe` of what is handed in is in this module, each with what the
//! framework guarantees (../shared/abi.md) in its SAFETY comment. The rest
//! of the server sees safe types:
//! - `OwnedCommand`: a command handle this server owns, released exactly
//!   once (the lab's `Command` owns nothing);
//! - `Link`: the communicator, for fibers on the reactor thread;
//! - `PendingAppend`: an AppendEntries in flight whose reply slots stay
//!   allocated for as long as the framework may still write them;
//! - `Applier`: the state machine's callback;
//! - `spawn_fiber`, `fiber_sleep`, `wall_clock_us`, `random_seed`,
//!   `frame_ids`, `partition_size`, `new_raft_data`, `contain`.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::ffi;
use crate::wrappers::{
    coroutine_sleep, has_backup_proxies, parid_t, siteid_t, slotid_t, AppCallback, AppendEntriesFuture, Command,
    Commo, EventOutcome, VoteResult,
};

// ----- Panics ------------------------------------------------------------------------

/// The message a panic carried.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Runs `body`; a panic in it is logged and `fallback` returned. The lab's
/// exports call the server from `extern "C"` functions, which abort the
/// process if a panic reaches them.
pub(crate) fn contain<R>(what: &str, fallback: R, body: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            log::error!(target: "raft::api", "panic in {what}: {}", panic_message(payload.as_ref()));
            fallback
        }
    }
}

// ----- Identity, configuration, clock, randomness -------------------------------------------

/// Who a server is (in the lab: site id == locale id, partition 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct FrameIds {
    pub(crate) locale_id: u32,
    pub(crate) site_id: siteid_t,
    pub(crate) partition_id: parid_t,
}

/// The ids of `frame`, or None for a NULL frame.
pub(crate) fn frame_ids(frame: ffi::Frame_C) -> Option<FrameIds> {
    if frame.is_null() {
        return None;
    }
    // SAFETY: `frame` is the live frame the framework passed to
    // `rust_raft_server_new`; the getters only read it, on any thread.
    unsafe {
        Some(FrameIds {
            locale_id: ffi::raft_frame_get_locale_id(frame),
            site_id: ffi::raft_frame_get_site_id(frame),
            partition_id: ffi::raft_frame_get_partition_id(frame),
        })
    }
}

/// The partition's size from the framework's configuration, if it has one.
pub(crate) fn partition_size(partition: parid_t) -> Option<usize> {
    // SAFETY: plain getters, callable from any thread; the configuration
    // pointer is checked for NULL before it is handed back.
    let size = unsafe {
        let config = ffi::raft_config_get_config();
        if config.is_null() {
            return None;
        }
        ffi::raft_config_get_partition_size(config, partition)
    };
    usize::try_from(size).ok().filter(|&n| n > 0)
}

/// The framework's clock: microseconds of a coarse wall clock, which can
/// jump (the protocol reads it through a `MonotonicClock`).
pub(crate) fn wall_clock_us() -> u64 {
    // SAFETY: a plain getter, callable from any thread.
    unsafe { ffi::raft_time_now() }
}

/// A seed from the framework's generator (so a seeded run of the framework
/// repeats exactly): four 16-bit draws. The framework computes
/// `(r % (max - min + 1)) + min` in `int`, so a range as wide as
/// `(0, INT_MAX)` would overflow there.
pub(crate) fn random_seed() -> u64 {
    (0..4).fold(0u64, |seed, _| {
        // SAFETY: a plain getter, callable from any thread; the range's
        // width (65,536) fits in an int.
        let draw = unsafe { ffi::raft_random_rand(0, 0xFFFF) };
        (seed << 16) | (draw as u64 & 0xFFFF)
    })
}

// ----- Commands --------------------------------------------------------------------------

/// A command handle this server owns: the framework made it for one call
/// (`start`, an AppendEntries with an entry, `set_local_append`) and handed
/// it over. Released exactly once, when this is dropped. Shared as
/// `Arc<OwnedCommand>`, so copies in the log, in flight and being applied
/// cost no framework call.
pub(crate) struct OwnedCommand(Command);

// SAFETY: a command handle is a heap-allocated shared pointer; release and
// get_kind are callable from any thread (abi.md, "Which imports may run off
// the reactor thread"), and nothing else is done with it but lending it to
// the framework on the reactor thread (send, apply, set_log copy it).
unsafe impl Send for OwnedCommand {}
// SAFETY: as above: `&OwnedCommand` only lends the handle.
unsafe impl Sync for OwnedCommand {}

impl OwnedCommand {
    /// Takes ownership of a handle made for this call; None for no command.
    pub(crate) fn adopt(command: Command) -> Option<Self> {
        // (`then`, not `then_some`: an eagerly built OwnedCommand would be
        // dropped, releasing the NULL handle.)
        (!command.is_empty()).then(|| OwnedCommand(command))
    }

    /// The handle, lent for one framework call.
    pub(crate) fn command(&self) -> Command {
        self.0
    }
}

impl Drop for OwnedCommand {
    fn drop(&mut self) {
        // SAFETY: this handle is ours (see `adopt`) and is released here,
        // once; release is callable from any thread.
        unsafe { ffi::raft_marshallable_release(self.0.as_raw()) }
    }
}

impl std::fmt::Debug for OwnedCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Command({:p})", self.0.as_raw())
    }
}

/// A new RaftData record for log index `slot`: its (term, previous entry's
/// term, command) when the entry exists, else an empty record with only
/// the slot set. Never NULL; the framework never frees it.
pub(crate) fn new_raft_data(slot: slotid_t, entry: Option<(u64, u64, Command)>) -> ffi::RaftData_C {
    // SAFETY: raft_data_new returns a live record; the setters write into
    // it; set_log copies the command (the lent handle stays ours).
    unsafe {
        let data = ffi::raft_data_new();
        if !data.is_null() {
            ffi::raft_data_set_slot_id(data, slot);
            if let Some((term, prev_term, command)) = entry {
                ffi::raft_data_set_term(data, term as ffi::ballot_t);
                ffi::raft_data_set_prev_term(data, prev_term as ffi::ballot_t);
                ffi::raft_data_set_log(data, command.as_raw());
            }
        }
        data
    }
}

// ----- The state machine -------------------------------------------------------------------

/// The state machine's callback, shared by the server's threads.
pub(crate) struct Applier(AppCallback);

// SAFETY: the callback handle is only an address; the server calls it on
// its reactor thread, one caller at a time (`Node::apply_committed` holds
// its `applying` flag around every call).
unsafe impl Sync for Applier {}

impl Applier {
    pub(crate) fn new(raw: ffi::AppNextFn_C) -> Option<Self> {
        (!raw.is_null()).then(|| Applier(AppCallback::from_raw(raw)))
    }

    /// Hands the committed command at `index` to the state machine (lent).
    pub(crate) fn apply(&self, index: u64, command: &OwnedCommand) {
        self.0.apply(index as i32, command.command());
    }
}

// ----- Fibers --------------------------------------------------------------------------

struct FiberBody {
    name: String,
    body: Box<dyn FnOnce()>,
}

extern "C" fn fiber_entry(context: *mut c_void) {
    // SAFETY: `context` is the Box<FiberBody> that spawn_fiber leaked; the
    // framework hands it to this function exactly once.
    let fiber = unsafe { Box::from_raw(context as *mut FiberBody) };
    let FiberBody { name, body } = *fiber;
    if let Err(payload) = catch_unwind(AssertUnwindSafe(body)) {
        // A server whose fiber died would silently never campaign,
        // replicate or move its proxies again; a clear crash is better for
        // everyone debugging it than a cluster that quietly stops.
        eprintln!("rust_raft: panic in the {name}: {}; aborting (a server without it cannot work)", panic_message(payload.as_ref()));
        std::process::abort();
    }
}

/// Creates a fiber on the calling thread's reactor and runs it until its
/// first wait. Reactor thread only. A panic in `body` aborts the process
/// with a message naming the fiber.
pub(crate) fn spawn_fiber(name: String, body: impl FnOnce() + 'static) {
    let fiber = Box::into_raw(Box::new(FiberBody { name, body: Box::new(body) }));
    // SAFETY: called on the reactor thread (from `setup` or a fiber);
    // `fiber_entry` takes the box back exactly once.
    unsafe { ffi::raft_coroutine_create_run(fiber_entry, fiber as *mut c_void) }
}

/// Puts the calling fiber to sleep for `us` (at least 1).
pub(crate) fn fiber_sleep(us: u64) {
    coroutine_sleep(us.max(1));
}

// ----- The communicator ------------------------------------------------------------------

/// The three values an AppendEntries reply carries.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AppendReplyValues {
    pub(crate) ok: u64,
    pub(crate) term: u64,
    pub(crate) last_log_index: u64,
}

/// One AppendEntries as the framework carries it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AppendArgs {
    pub(crate) peer: siteid_t,
    pub(crate) partition_id: parid_t,
    pub(crate) term: u64,
    pub(crate) prev_log_index: u64,
    pub(crate) prev_log_term: u64,
    pub(crate) commit_index: u64,
    pub(crate) entry_term: u64,
}

/// An AppendEntries in flight. The lab's future frees its reply slots when
/// dropped, while a reply that comes after a timed-out wait is still
/// written into them: so a future whose reply was not seen is never
/// dropped (`mem::forget`: its 24 bytes stay allocated for good).
pub(crate) struct PendingAppend {
    future: Option<AppendEntriesFuture>,
}

impl PendingAppend {
    /// Blocks the calling fiber until the reply or `timeout_us` (at least
    /// 1 us: a timeout of 0 would wait forever). The reply, if it came. After
    /// a timeout the request stays pending: it may be waited for again (the
    /// framework's event then returns at once if the reply came meanwhile),
    /// or dropped.
    pub(crate) fn wait(&mut self, timeout_us: u64) -> Option<AppendReplyValues> {
        let future = self.future.as_ref()?;
        match future.wait(timeout_us.max(1)) {
            EventOutcome::Ok => {
                let future = self.future.take().expect("looked at above");
                Some(AppendReplyValues {
                    ok: future.reply_status(),
                    term: future.reply_term(),
                    last_log_index: future.reply_last_log_index(),
                })
            }
            // The reply may still come and be written: the slots stay (Drop).
            EventOutcome::Timeout => None,
        }
    }
}

impl Drop for PendingAppend {
    fn drop(&mut self) {
        // Never answered (timed out, or the fiber is ending): the reply may
        // still come and be written, so its slots are never freed.
        if let Some(future) = self.future.take() {
            std::mem::forget(future);
        }
    }
}

/// The server's communicator, for its fibers (reactor thread only: the
/// framework's commo has no lock). Each fiber holds its own copy.
pub(crate) struct Link {
    commo: Commo,
}

impl Link {
    /// A link over the communicator `commo` points to (the lab's glue
    /// stores it in the server just before `setup`); None if it is NULL.
    pub(crate) fn new(commo: &Commo) -> Option<Self> {
        (!commo.is_null()).then(|| Link { commo: Commo::from_raw(commo.as_raw()) })
    }

    /// Another link to the same communicator, for another fiber.
    pub(crate) fn copy(&self) -> Self {
        Link { commo: Commo::from_raw(self.commo.as_raw()) }
    }

    /// The partition's members as the proxy list has them (self included).
    pub(crate) fn partition_site_ids(&self, partition: parid_t) -> Vec<siteid_t> {
        self.commo.get_peer_site_ids(partition)
    }

    /// Sends one AppendEntries; `entry` is lent (the framework copies it),
    /// None makes a heartbeat.
    pub(crate) fn send_append(&self, args: &AppendArgs, entry: Option<&OwnedCommand>) -> PendingAppend {
        let command = entry.map_or(Command::null(), OwnedCommand::command);
        let future = self.commo.send_append_entries(
            args.peer,
            args.partition_id,
            0,
            0,
            true,
            args.term,
            args.prev_log_index,
            args.prev_log_term,
            args.commit_index,
            command,
            args.entry_term,
        );
        PendingAppend { future: Some(future) }
    }

    /// Sends RequestVote to every other member.
    pub(crate) fn broadcast_vote(&self, partition: parid_t, last_log_index: u64, last_log_term: u64, self_id: siteid_t, term: u64) -> VoteQuorum {
        VoteQuorum(self.commo.broadcast_vote(
            partition,
            last_log_index,
            last_log_term as ffi::ballot_t,
            self_id,
            term as ffi::ballot_t,
        ))
    }

    /// Moves this server's proxies into the framework's backup (abi.md,
    /// "Disconnection"), unless none are live (a second save would wipe
    /// the backup).
    pub(crate) fn save_proxies(&self, partition: parid_t, locale: u32) {
        if self.commo.proxy_count(partition) > 0 {
            self.commo.save_proxies(partition, locale);
        }
    }

    /// Moves them back, if a backup exists (a restore without one would
    /// leave no proxies at all).
    pub(crate) fn restore_proxies(&self, partition: parid_t, locale: u32) {
        if has_backup_proxies(partition, locale) {
            self.commo.restore_proxies(partition, locale);
        }
    }
}

/// An election's vote quorum event: the framework counts the votes.
pub(crate) struct VoteQuorum(VoteResult);

impl VoteQuorum {
    /// Yes votes reached the quorum.
    pub(crate) fn granted(&self) -> bool {
        self.0.yes_count() != 0
    }
    /// So many refused that the election cannot be won.
    pub(crate) fn refused(&self) -> bool {
        self.0.no_count() != 0
    }
    /// The highest term a refusing voter reported (0 if none).
    pub(crate) fn highest_refusing_term(&self) -> u64 {
        self.0.term().max(0) as u64
    }
}
