//! The server's shared state: the protocol core and what the server keeps
//! beside it, behind ONE lock, shared (`Arc<Node>`) by the lab's glue
//! (which calls from test threads and the reactor thread at once, through
//! `&mut`, with no lock of its own) and the server's fibers.
//!
//! Locking rule: the lock is held only for a step of the core; never across
//! a fiber wait, an RPC send, or a call into C++ that can call back (the
//! apply callback). Take the guard in a `let` of its own (`let x =
//! self.lock().step(..);`): a guard made in the scrutinee of `while let`,
//! `if let` or `match` lives until the end of that whole block.
//!
//! The network flag lives under the same lock as the steps it guards: a
//! request is acted on only if the server was connected at that step, so
//! once `disconnect` returns no request is acted on, and `reconnect` gives
//! the election timer its grace in the same step that clears the flag (so
//! no election fiber can campaign in between).

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::ThreadId;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::framework::{self, Applier, FrameIds, OwnedCommand};
use super::logging::{event, Who};
use super::protocol::{
    AppendRequest, AppendResponse, CoreConfig, Entry, Index, Micros, MonotonicClock, NodeId, RaftCore, Role, Term,
    VoteRequest, VoteResponse,
};

/// A command as the core holds it: shared, released when the last copy goes.
pub(crate) type Cmd = Arc<OwnedCommand>;

/// What sits behind the server's lock.
pub(crate) struct State {
    pub(crate) core: RaftCore<Cmd>,
    /// The framework's wall clock, made monotonic (protocol::clock).
    clock: MonotonicClock,
    /// What the framework asked: is this server off the network?
    pub(crate) disconnected: bool,
    /// Whether this server's proxies are in the backup now (the election
    /// fiber moves them, on the reactor thread).
    pub(crate) proxies_saved: bool,
    /// `request_vote` or `set_is_leader(true)` asked for an election.
    pub(crate) election_requested: bool,
    /// The term whose replication fibers run (0: none yet).
    pub(crate) replicating_term: Term,
    /// Draws the fibers' poll sleeps (see `jittered`).
    jitter: StdRng,
}

impl State {
    /// The protocol's time now.
    pub(crate) fn now(&mut self) -> Micros {
        self.clock.read(framework::wall_clock_us())
    }

    /// A sleep drawn from [period / 2, 3 period / 2): on average `period`,
    /// but never in step with anything periodic outside (the harness
    /// sleeps round numbers; the framework's clock moves in coarse ticks).
    pub(crate) fn jittered(&mut self, period: Micros) -> Micros {
        self.jitter.gen_range(period / 2..period + period / 2)
    }

    pub(crate) fn who(&self) -> Who {
        Who { id: self.core.id(), term: self.core.term(), role: self.core.role() }
    }
}

pub(crate) struct Node {
    pub(crate) ids: FrameIds,
    state: Mutex<State>,
    applier: Option<Applier>,
    /// Someone is handing entries to the state machine.
    applying: AtomicBool,
    /// The server was deleted: fibers end at their next wake-up, touching
    /// no framework handle.
    stopped: AtomicBool,
    /// Fibers started and not yet ended (see `FiberLife`).
    live_fibers: AtomicUsize,
    /// The reactor thread that runs this server's fibers (set by `setup`).
    reactor_thread: OnceLock<ThreadId>,
}

impl Node {
    pub(crate) fn new(ids: FrameIds, members: Vec<NodeId>, applier: Option<Applier>) -> Self {
        let config = CoreConfig::lab_defaults(ids.site_id, members, framework::random_seed());
        let mut clock = MonotonicClock::default();
        let now = clock.read(framework::wall_clock_us());
        let state = State {
            core: RaftCore::new(config, now),
            clock,
            disconnected: false,
            proxies_saved: false,
            election_requested: false,
            replicating_term: 0,
            jitter: StdRng::seed_from_u64(framework::random_seed()),
        };
        Node {
            ids,
            state: Mutex::new(state),
            applier,
            applying: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            live_fibers: AtomicUsize::new(0),
            reactor_thread: OnceLock::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock (contained at the boundary) cannot
        // leave the core half-updated in a way later steps could not take.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Who this server is now, for a log line. Takes the lock: never call it
    /// while holding a guard (use `State::who` then).
    pub(crate) fn who(&self) -> Who {
        self.lock().who()
    }

    // ----- Lifetime and threads ------------------------------------------------------

    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Counts a fiber as alive until the returned value is dropped (at the
    /// end of its body, however it ends).
    pub(crate) fn fiber_life(self: &Arc<Self>) -> FiberLife {
        self.live_fibers.fetch_add(1, Ordering::SeqCst);
        FiberLife(Arc::clone(self))
    }

    /// Stops the fibers and, called from another thread than theirs, waits
    /// until every one has ended (or `patience_us` passed): the framework
    /// frees the communicator, events and proxies right after the server is
    /// deleted, so no fiber may be in a call on them then. Each ends at its
    /// next wake-up (at most an RPC timeout away). The wait sleeps rather
    /// than blocks (std::thread::sleep, which virtual time turns into
    /// virtual time), so the fibers' thread can run meanwhile. On the
    /// fibers' own thread none of them is running: nothing to wait for.
    /// True if every fiber ended.
    pub(crate) fn stop_and_wait(&self, patience_us: u64) -> bool {
        self.stop();
        if self.on_reactor_thread() {
            return true;
        }
        let mut waited = 0;
        while self.live_fibers.load(Ordering::SeqCst) > 0 {
            if waited >= patience_us {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_micros(1_000));
            waited += 1_000;
        }
        true
    }
    /// Records the calling thread as this server's reactor thread; false if
    /// one was recorded already (a second `setup`).
    pub(crate) fn claim_reactor_thread(&self) -> bool {
        self.reactor_thread.set(std::thread::current().id()).is_ok()
    }

    fn on_reactor_thread(&self) -> bool {
        self.reactor_thread.get() == Some(&std::thread::current().id())
    }

    // ----- Queries ------------------------------------------------------------------------

    pub(crate) fn state(&self) -> (bool, Term) {
        let state = self.lock();
        (state.core.is_leader(), state.core.term())
    }

    pub(crate) fn is_leader_of(&self, term: Term) -> bool {
        let state = self.lock();
        state.core.is_leader() && state.core.term() == term
    }

    pub(crate) fn is_disconnected(&self) -> bool {
        self.lock().disconnected
    }

    /// Term, previous entry's term and command of log entry `index`.
    pub(crate) fn entry(&self, index: Index) -> Option<(Term, Term, Cmd)> {
        let state = self.lock();
        let entry = state.core.log().entry(index)?;
        let prev_term = state.core.log().term_at(index - 1).unwrap_or(0);
        Some((entry.term, prev_term, Arc::clone(&entry.command)))
    }

    // ----- Commands from the framework ------------------------------------------------------

    /// Figure 2, Leaders: "If command received from client: append entry to
    /// local log". The replication fibers pick it up (a test thread cannot
    /// wake a fiber). None if not leader (the command is released).
    pub(crate) fn start(&self, command: Cmd) -> Option<(Index, Term)> {
        self.lock().core.propose(command)
    }

    /// `set_is_leader(true)` or `request_vote`: an election at the election
    /// fiber's next look (within about 20 ms), never leadership by decree.
    pub(crate) fn request_election(&self) -> bool {
        let mut state = self.lock();
        if state.core.is_leader() || state.disconnected {
            return false;
        }
        state.election_requested = true;
        true
    }

    /// `set_is_leader(false)`: step down, keeping the term.
    pub(crate) fn step_down(&self) {
        let mut state = self.lock();
        let now = state.now();
        state.core.step_down(now);
    }

    /// The network goes down (true) or comes back (false). Only the flag
    /// changes here (called from test threads); the election fiber moves the
    /// proxies on the reactor thread (abi.md, "Disconnection").
    pub(crate) fn disconnect(&self, disconnected: bool) {
        let mut state = self.lock();
        let changed = state.disconnected != disconnected;
        state.disconnected = disconnected;
        if changed {
            event!(debug, "network", state.who(), "network {}", if disconnected { "down" } else { "up" });
        }
    }

    /// Back on the network, and the election timer restarts with a grace
    /// before any campaign, in one step: an election fiber cannot see the
    /// server connected with its old deadline.
    pub(crate) fn reconnect(&self) {
        let mut state = self.lock();
        let now = state.now();
        state.core.restart_election_timer_after_reconnect(now);
        let changed = state.disconnected;
        state.disconnected = false;
        if changed {
            event!(debug, "network", state.who(), "network up");
        }
    }

    // ----- RPC handlers (reactor thread) -----------------------------------------------------

    /// Figure 2, RequestVote receiver; None if this server is off the
    /// network (it must not act on a request that reached it anyway).
    pub(crate) fn handle_request_vote(&self, request: &VoteRequest) -> Option<VoteResponse> {
        let mut state = self.lock();
        if state.disconnected {
            return None;
        }
        let now = state.now();
        let response = state.core.handle_request_vote(now, request);
        event!(
            debug,
            "vote",
            state.who(),
            "{} S{} for term {} (its log {}/t{}; mine {}/t{}, voted for {})",
            if response.vote_granted { "grant" } else { "refuse" },
            request.candidate_id,
            request.term,
            request.last_log_index,
            request.last_log_term,
            state.core.last_index(),
            state.core.log().last_term(),
            state.core.voted_for().map_or("no one".to_string(), |v| format!("S{v}"))
        );
        Some(response)
    }

    /// Figure 2, AppendEntries receiver; None if off the network.
    pub(crate) fn handle_append_entries(&self, request: AppendRequest<Cmd>) -> Option<AppendResponse> {
        let carried = request.entry.is_some();
        let mut state = self.lock();
        if state.disconnected {
            return None;
        }
        let now = state.now();
        let commit_before = state.core.commit_index();
        let response = state.core.handle_append_entries(now, request);
        event!(
            trace,
            "append",
            state.who(),
            "{} {}: term {} (last index {})",
            if carried { "entry" } else { "heartbeat" },
            if response.success { "accepted" } else { "rejected" },
            response.term,
            response.last_log_index
        );
        if state.core.commit_index() > commit_before {
            event!(debug, "commit", state.who(), "commit index {} (from the leader)", state.core.commit_index());
        }
        Some(response)
    }

    // ----- Applying ------------------------------------------------------------------------------

    /// Hands every committed, unapplied entry to the state machine, in
    /// order, each exactly once, without holding the lock during the
    /// callback, and only on the reactor thread (the framework's callback
    /// belongs there; from any other thread this leaves the work to the
    /// election fiber, which applies within about 20 ms). One caller applies
    /// at a time; a caller that finds another at work leaves it the rest.
    pub(crate) fn apply_committed(&self) {
        let Some(applier) = &self.applier else { return };
        if !self.on_reactor_thread() {
            return;
        }
        loop {
            if self.applying.swap(true, Ordering::SeqCst) {
                return;
            }
            loop {
                let batch = self.lock().core.take_committed();
                let (Some(first), Some(last)) = (batch.first().map(|e| e.0), batch.last().map(|e| e.0)) else {
                    break;
                };
                for (index, command) in &batch {
                    applier.apply(*index, command);
                }
                event!(debug, "apply", self.who(), "applied {first}..={last}");
            }
            self.applying.store(false, Ordering::SeqCst);
            // Entries committed between the last look and the release above
            // would otherwise wait for the next caller.
            let state = self.lock();
            if state.core.log().applied_index() == state.core.commit_index() {
                return;
            }
        }
    }
}

/// A fiber's place in `Node::live_fibers`, given back when dropped.
pub(crate) struct FiberLife(Arc<Node>);

impl Drop for FiberLife {
    fn drop(&mut self) {
        self.0.live_fibers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A leader of `term`, as its replication fiber logs itself without taking the lock.
pub(crate) fn as_leader(id: NodeId, term: Term) -> Who {
    Who { id, term, role: Role::Leader }
}

/// Wraps a command the framework handed over as the core's entry.
pub(crate) fn entry_of(term: Term, command: Option<OwnedCommand>) -> Option<Entry<Cmd>> {
    command.map(|command| Entry { term, command: Arc::new(command) })
}
