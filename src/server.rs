//! The RaftServer the exports call: it shares one `RaftCore` between the
//! server's reactor thread (fibers, RPC handlers) and the test threads
//! (`start`, `get_state`, `disconnect`, ...), and carries out the core's
//! decisions through the wrappers.
//!
//! Locking rule: the core sits behind one mutex that is held only for a core
//! step; it is never held across a fiber wait, an RPC send, or a call into
//! C++ that can call back (the apply callback). Take the guard in a `let`
//! statement of its own (`let x = self.core().step(..);`): a guard made in
//! the scrutinee of `while let`, `if let` or `match` lives until the end of
//! that whole block.
//!
//! Timing rule: every interval here is drawn afresh (`RaftServer::jittered`),
//! so no polling stays in step with the harness's round-number sleeps.
//!
//! Fibers, all on the reactor thread:
//! - the election fiber (§5.2): checks the election timer, runs elections,
//!   and moves the proxies in and out of the backup when the network
//!   "disconnects";
//! - while this server leads, one replication fiber per follower (§5.3):
//!   streams entries, commit notices and heartbeats as the core decides, and
//!   feeds replies back. The election fiber starts them when a term's
//!   leadership begins; they end with it.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::core::{
    AppendOutcome, AppendRequest, AppendResponse, CoreConfig, ElectionOutcome, Entry, Index,
    Micros, NodeId, RaftCore, Role, SentAppend, Term, VoteRequest,
};
use crate::event;
use crate::logging::Who;
use crate::wrappers::{
    self, AppNext, AppendArgs, AppendReply, AppendReplyValues, Command, Commo, FrameIds,
    PendingAppend, RaftLogs, VoteReply,
};

// Poll periods: each sleep is drawn from [period / 2, 3 * period / 2).
/// How often an idle leader's replication fiber looks for new entries while
/// entries are flowing: a `start` on a test thread cannot wake a fiber, so
/// this bounds the delay before a new entry is sent.
const LEADER_POLL_US: Micros = 1_000;
/// The same after `QUIET_AFTER_US` without an entry: each wake-up costs a
/// reactor turn and two context switches, and an idle leader has nothing to
/// pick up.
const QUIET_LEADER_POLL_US: Micros = 10_000;
const QUIET_AFTER_US: Micros = 1_000_000;
/// How often the election fiber looks around (network changes, timer).
const IDLE_POLL_US: Micros = 20_000;
/// How often a candidate checks its vote quorum event.
const VOTE_POLL_US: Micros = 2_000;
/// A sleep of the election fiber this much longer than asked is logged as a
/// stall (topic "timer").
const STALL_NOTE_US: Micros = 250_000;
/// How long a leader waits for an AppendEntries reply before calling it
/// lost. While it waits, the fiber cannot send that follower a heartbeat, so
/// this plus the heartbeat interval (800 ms) must stay below the shortest
/// election timeout (1.2 s); it is still more than twice the slowest round
/// trip of the lab's unreliable network (27 ms stalls at both ends).
const RPC_TIMEOUT_US: Micros = 300_000;

/// What `new` receives from the framework.
pub struct ServerParts {
    pub ids: FrameIds,
    pub logs: Option<RaftLogs>,
    pub app_next: Option<AppNext>,
    pub is_test_mode: bool,
}

pub struct RaftServer {
    ids: FrameIds,
    core: Mutex<RaftCore<Command>>,
    commo: Mutex<Option<Commo>>,
    logs: Option<RaftLogs>,
    app_next: Option<AppNext>,
    is_test_mode: bool,
    /// What the framework asked: is the network down?
    disconnected: AtomicBool,
    /// Whether our proxies are in the backup right now (reactor thread only).
    proxies_saved: AtomicBool,
    /// `request_vote` asked for an election.
    election_requested: AtomicBool,
    fibers_started: AtomicBool,
    /// The term whose replication fibers are running (election fiber only).
    replicating_term: AtomicU64,
    stopped: AtomicBool,
    /// Someone is handing entries to the state machine.
    applying: AtomicBool,
    /// Draws the poll sleeps (see `jittered`); seeded from the framework's
    /// generator, so a seeded run of the framework repeats exactly.
    poll_jitter: Mutex<StdRng>,
}

impl RaftServer {
    pub fn new(parts: ServerParts) -> Self {
        let size = wrappers::partition_size(parts.ids.partition_id).unwrap_or(1);
        let members: Vec<NodeId> = (0..size as NodeId).collect();
        let members = if members.contains(&parts.ids.site_id) {
            members
        } else {
            vec![parts.ids.site_id]
        };
        let config = CoreConfig::lab_defaults(parts.ids.site_id, members, wrappers::random_seed());
        RaftServer {
            ids: parts.ids,
            core: Mutex::new(RaftCore::new(config, wrappers::now_us())),
            commo: Mutex::new(None),
            logs: parts.logs,
            app_next: parts.app_next,
            is_test_mode: parts.is_test_mode,
            disconnected: AtomicBool::new(false),
            proxies_saved: AtomicBool::new(false),
            election_requested: AtomicBool::new(false),
            fibers_started: AtomicBool::new(false),
            replicating_term: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            applying: AtomicBool::new(false),
            poll_jitter: Mutex::new(StdRng::seed_from_u64(wrappers::random_seed())),
        }
    }

    fn core(&self) -> MutexGuard<'_, RaftCore<Command>> {
        // A panic while holding the lock cannot leave the core half-updated
        // in a way later steps could not handle; keep serving.
        self.core.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Who this server is now, for a log line. Takes the core lock: never
    /// call it while holding a core guard (use `who_in` then).
    fn who(&self) -> Who {
        let core = self.core();
        self.who_in(&core)
    }

    fn who_in(&self, core: &RaftCore<Command>) -> Who {
        Who { id: self.ids.site_id, term: core.term(), role: core.role() }
    }

    /// A sleep drawn from [period / 2, 3 * period / 2): on average `period`,
    /// but never in step with anything periodic outside (the harness sleeps
    /// round numbers, and the framework's clock moves in coarse ticks).
    fn jittered(&self, period: Micros) -> Micros {
        let mut rng = self.poll_jitter.lock().unwrap_or_else(|p| p.into_inner());
        rng.random_range(period / 2..period + period / 2)
    }

    fn commo(&self) -> Option<Commo> {
        *self.commo.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_commo(&self, commo: Option<Commo>) {
        *self.commo.lock().unwrap_or_else(|p| p.into_inner()) = commo;
    }

    // ----- Queries ----------------------------------------------------------

    pub fn is_leader(&self) -> bool {
        self.core().is_leader()
    }

    pub fn state(&self) -> (bool, Term) {
        let core = self.core();
        (core.is_leader(), core.term())
    }

    fn is_leader_of(&self, term: Term) -> bool {
        let core = self.core();
        core.is_leader() && core.term() == term
    }

    pub fn is_disconnected(&self) -> bool {
        self.disconnected.load(Ordering::SeqCst)
    }

    // ----- Commands from the framework -------------------------------------------

    /// Figure 2, Leaders: append a client command; replication fibers pick
    /// it up within `LEADER_POLL_US`.
    pub fn start(&self, command: Command) -> Option<(Index, Term)> {
        self.core().propose(command)
    }

    pub fn append_local(&self, command: Command) -> (Index, Term) {
        self.core().append_local(command)
    }

    pub fn set_is_leader(&self, is_leader: bool) {
        let now = wrappers::now_us();
        let mut core = self.core();
        if is_leader {
            core.force_leadership(now);
        } else {
            core.force_step_down(now);
        }
    }

    pub fn request_election(&self) {
        self.election_requested.store(true, Ordering::SeqCst);
    }

    /// The network goes down (true) or comes back (false). Called from test
    /// threads: only the flag changes here; the election fiber moves the
    /// proxies on the reactor thread (abi.md, "Disconnection").
    pub fn set_disconnected(&self, disconnected: bool) {
        let was = self.disconnected.swap(disconnected, Ordering::SeqCst);
        if was != disconnected {
            event!(info, "network", self.who(), "network {}", if disconnected { "down" } else { "up" });
        }
    }

    /// Back on the network: the election timer restarts with a grace before
    /// any campaign (`RaftCore::restart_election_timer_after_reconnect`).
    pub fn reconnect(&self) {
        self.set_disconnected(false);
        self.core().restart_election_timer_after_reconnect(wrappers::now_us());
    }

    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Term and command of log entry `index`, for `get_raft_instance`.
    pub fn entry(&self, index: Index) -> Option<(Entry<Command>, Term)> {
        let core = self.core();
        let entry = core.log().entry(index)?.clone();
        let prev_term = core.log().term_at(index - 1).unwrap_or(0);
        Some((entry, prev_term))
    }

    pub fn erase_framework_log_entry(&self, slot: u64) {
        if let Some(logs) = self.logs {
            logs.erase(slot);
        }
    }

    // ----- RPC handlers (reactor thread) --------------------------------------------

    /// Figure 2, RequestVote receiver. A server off the network does not act
    /// on requests that reach it anyway (the flag flipped mid-flight).
    pub fn on_request_vote(&self, request: VoteRequest, reply: VoteReply) {
        if self.is_disconnected() {
            reply.send(request.term, false);
            return;
        }
        let (response, voted_for, last_index, last_term) = {
            let mut core = self.core();
            let response = core.handle_request_vote(wrappers::now_us(), &request);
            (response, core.voted_for(), core.last_index(), core.log().last_term())
        };
        event!(
            debug,
            "vote",
            self.who(),
            "{} S{} for term {} (its log {}/t{}; mine {last_index}/t{last_term}, voted for {})",
            if response.vote_granted { "grant" } else { "refuse" },
            request.candidate_id,
            request.term,
            request.last_log_index,
            request.last_log_term,
            voted_for.map_or("no one".to_string(), |v| format!("S{v}"))
        );
        reply.send(response.term, response.vote_granted);
    }

    /// Figure 2, AppendEntries receiver.
    pub fn on_append_entries(&self, request: AppendRequest<Command>, reply: AppendReply) {
        if self.is_disconnected() {
            reply.send(AppendReplyValues::default()); // the "lost" answer
            return;
        }
        let carried = request.entry.is_some();
        let (response, commit_before, commit_after, who) = {
            let mut core = self.core();
            let before = core.commit_index();
            let response = core.handle_append_entries(wrappers::now_us(), request);
            (response, before, core.commit_index(), self.who_in(&core))
        };
        event!(
            trace,
            "append",
            who,
            "{} {}: {} (last index {})",
            if carried { "entry" } else { "heartbeat" },
            if response.success { "accepted" } else { "rejected" },
            response.term,
            response.last_log_index
        );
        if commit_after > commit_before {
            event!(debug, "commit", who, "commit index {commit_after} (from the leader)");
        }
        reply.send(AppendReplyValues {
            ok: response.success as u64,
            term: response.term,
            last_log_index: response.last_log_index,
        });
        self.apply_committed();
    }

    // ----- Applying --------------------------------------------------------------

    /// Hands every committed, unapplied entry to the state machine, in order,
    /// each exactly once, without holding the core lock during the callback.
    /// One caller applies at a time; a caller that finds another at work
    /// leaves the new entries to it.
    pub fn apply_committed(&self) {
        let Some(app_next) = self.app_next else { return };
        loop {
            if self.applying.swap(true, Ordering::SeqCst) {
                return;
            }
            loop {
                let batch = self.core().take_committed();
                if batch.is_empty() {
                    break;
                }
                for (index, command) in &batch {
                    app_next.apply(*index, command);
                }
                if let (Some((first, _)), Some((last, _))) = (batch.first(), batch.last()) {
                    event!(debug, "apply", self.who(), "applied {first}..={last}");
                }
            }
            self.applying.store(false, Ordering::SeqCst);
            // Entries committed between our last look and the release above
            // would otherwise wait for the next caller.
            let core = self.core();
            if core.log().applied_index() == core.commit_index() {
                return;
            }
        }
    }

    // ----- Fibers (reactor thread) --------------------------------------------

    /// Starts the fibers, once. Called on the reactor thread by `setup`.
    pub fn setup(self: &Arc<Self>) {
        if self.fibers_started.swap(true, Ordering::SeqCst) {
            event!(warn, "api", self.who(), "setup called twice; ignored");
            return;
        }
        let Some(commo) = self.commo() else {
            event!(error, "api", self.who(), "setup without a commo; not starting");
            return;
        };
        let sites: Vec<NodeId> = commo
            .partition_site_ids(self.ids.partition_id)
            .into_iter()
            .filter(|&s| s != self.ids.site_id)
            .collect();
        let peers: Vec<NodeId> = self.core().peers().collect();
        let mut sorted_sites = sites.clone();
        sorted_sites.sort_unstable();
        if !sites.is_empty() && sorted_sites != peers {
            event!(error, "api", self.who(), "proxies list peers {sites:?}, the config implies {peers:?}");
        }
        if !self.is_test_mode && self.ids.locale_id == 0 {
            self.core().force_leadership(wrappers::now_us());
        }
        let server = Arc::clone(self);
        let name = format!("election fiber of server {}", self.ids.site_id);
        wrappers::spawn_fiber(name, move || server.run_election_fiber(commo));
    }

    /// Starts one replication fiber per follower when this server has begun
    /// leading a term it has no fibers for yet.
    fn start_replication_if_leading(self: &Arc<Self>, commo: Commo) {
        let (is_leader, term, peers) = {
            let core = self.core();
            (core.is_leader(), core.term(), core.peers().collect::<Vec<_>>())
        };
        if !is_leader || self.replicating_term.load(Ordering::SeqCst) == term {
            return;
        }
        self.replicating_term.store(term, Ordering::SeqCst);
        for peer in peers {
            let server = Arc::clone(self);
            let name = format!("replication fiber of server {} to {peer} (term {term})", self.ids.site_id);
            wrappers::spawn_fiber(name, move || server.run_replication_fiber(commo, peer, term));
        }
    }

    /// Moves the proxies to match the disconnect flag (abi.md, "Disconnection").
    fn sync_network(&self, commo: Commo) {
        let want_down = self.is_disconnected();
        if want_down != self.proxies_saved.load(Ordering::SeqCst) {
            if want_down {
                commo.save_proxies(self.ids.partition_id, self.ids.locale_id);
            } else {
                commo.restore_proxies(self.ids.partition_id, self.ids.locale_id);
            }
            event!(debug, "network", self.who(), "proxies {}", if want_down { "saved to the backup" } else { "restored" });
            self.proxies_saved.store(want_down, Ordering::SeqCst);
        }
    }

    /// §5.2: followers and candidates start an election when the timer runs
    /// out. A server whose network is down does not campaign: it could reach
    /// no one, and the inflated term would only depose a healthy leader when
    /// it returns (the effect the dissertation's Pre-Vote, §9.6, achieves).
    fn run_election_fiber(self: Arc<Self>, commo: Commo) {
        while !self.is_stopped() {
            self.sync_network(commo);
            self.start_replication_if_leading(commo);
            // Replies and AppendEntries apply what they commit; this catches
            // what nobody replied to (a one-server cluster).
            self.apply_committed();
            let now = wrappers::now_us();
            let vote_request = {
                let mut core = self.core();
                if self.is_disconnected() {
                    core.tick_without_campaign(now);
                    None
                } else if self.election_requested.swap(false, Ordering::SeqCst) && !core.is_leader() {
                    Some(core.campaign(now))
                } else {
                    core.tick(now)
                }
            };
            if let Some(request) = vote_request {
                self.run_election(commo, request);
                continue;
            }
            // Sleep until the election timer is due, checking the network
            // flag at least every IDLE_POLL_US.
            let until_due = {
                let core = self.core();
                if core.is_leader() || self.is_disconnected() {
                    IDLE_POLL_US
                } else {
                    core.election_deadline().saturating_sub(now)
                }
            };
            let asked = until_due.clamp(1_000, self.jittered(IDLE_POLL_US));
            wrappers::fiber_sleep(asked);
            let slept = wrappers::now_us().saturating_sub(now);
            if slept > asked + STALL_NOTE_US {
                event!(info, "timer", self.who(), "stalled: asked to sleep {} ms, woke after {} ms (not counted toward the election timeout)", asked / 1000, slept / 1000);
            }
        }
    }

    /// Sends RequestVote to all and follows the quorum event until it
    /// decides, or the election is over (a leader appeared, a higher term).
    /// It keeps ticking the core meanwhile (stall detection needs a tick at
    /// least every `stall_threshold`); when the election timer runs out
    /// again, the next election starts here.
    fn run_election(&self, commo: Commo, first: VoteRequest) {
        let mut request = first;
        'elections: loop {
            event!(debug, "election", self.who(), "campaign for term {} (last log {}/t{})", request.term, request.last_log_index, request.last_log_term);
            let quorum = commo.broadcast_vote(
                self.ids.partition_id,
                request.last_log_index,
                request.last_log_term,
                self.ids.site_id,
                request.term,
            );
            loop {
                let (granted, refused) = (quorum.granted(), quorum.refused());
                let highest_refusing_term = quorum.highest_refusing_term();
                if granted || refused || highest_refusing_term > request.term {
                    let outcome = ElectionOutcome {
                        election_term: request.term,
                        won: granted,
                        highest_rejecting_term: highest_refusing_term,
                    };
                    let (won, who) = {
                        let mut core = self.core();
                        core.handle_election_outcome(wrappers::now_us(), outcome);
                        (core.is_leader(), self.who_in(&core))
                    };
                    if won {
                        event!(info, "election", who, "won term {}", request.term);
                    } else {
                        event!(debug, "election", who, "lost term {} (all refused: {refused}; highest term seen {highest_refusing_term})", request.term);
                    }
                    return;
                }
                if self.is_stopped() || self.is_disconnected() {
                    return;
                }
                let next = {
                    let mut core = self.core();
                    if core.role() != Role::Candidate || core.term() != request.term {
                        return;
                    }
                    core.tick(wrappers::now_us())
                };
                if let Some(again) = next {
                    request = again;
                    continue 'elections;
                }
                wrappers::fiber_sleep(self.jittered(VOTE_POLL_US));
            }
        }
    }

    /// §5.3: replication to one follower while this server leads `term`.
    /// Sends what the core decides (entries back to back within the window,
    /// commit notices, heartbeats), waits for the oldest reply, and feeds
    /// each outcome to the core.
    fn run_replication_fiber(self: Arc<Self>, commo: Commo, peer: NodeId, term: Term) {
        let mut in_flight: VecDeque<InFlight> = VecDeque::new();
        let mut last_entry_sent_at: Micros = wrappers::now_us();
        while !self.is_stopped() && self.is_leader_of(term) {
            while !self.is_disconnected() {
                let decided = self.core().next_append(wrappers::now_us(), peer);
                let Some(outgoing) = decided else { break };
                let request = &outgoing.request;
                if request.entry.is_some() {
                    last_entry_sent_at = outgoing.sent.sent_at;
                }
                let args = AppendArgs {
                    site_id: peer,
                    partition_id: self.ids.partition_id,
                    current_term: request.term,
                    prev_log_index: request.prev_log_index,
                    prev_log_term: request.prev_log_term,
                    commit_index: request.leader_commit,
                    entry_term: request.entry.as_ref().map_or(0, |e| e.term),
                };
                event!(
                    trace,
                    "append",
                    Who { id: self.ids.site_id, term: request.term, role: Role::Leader },
                    "to S{peer}: prev {}/t{} {} commit {}",
                    request.prev_log_index,
                    request.prev_log_term,
                    if request.entry.is_some() { "entry" } else { "heartbeat" },
                    request.leader_commit
                );
                let pending = commo.send_append(&args, request.entry.as_ref().map(|e| &e.command));
                in_flight.push_back(InFlight { pending, sent: outgoing.sent });
            }
            let Some(oldest) = in_flight.front_mut() else {
                let quiet = wrappers::now_us().saturating_sub(last_entry_sent_at) > QUIET_AFTER_US;
                wrappers::fiber_sleep(self.jittered(if quiet { QUIET_LEADER_POLL_US } else { LEADER_POLL_US }));
                continue;
            };
            let remaining = (oldest.sent.sent_at + RPC_TIMEOUT_US).saturating_sub(wrappers::now_us());
            let reply = oldest.pending.wait(remaining);
            let finished = in_flight.pop_front().expect("front exists");
            // A reply reaching a server that is off the network is not heard.
            let outcome = match reply {
                Some(values) if !self.is_disconnected() => append_outcome(values),
                _ => AppendOutcome::Lost,
            };
            let (commit_before, commit_after, who) = {
                let mut core = self.core();
                let before = core.commit_index();
                core.handle_append_response(wrappers::now_us(), peer, finished.sent, outcome);
                (before, core.commit_index(), self.who_in(&core))
            };
            if outcome == AppendOutcome::Lost {
                event!(debug, "append", who, "to S{peer}: request after {} lost; empty probes until it answers", finished.sent.prev_log_index);
            }
            if commit_after > commit_before {
                event!(debug, "commit", who, "commit index {commit_after}");
            }
            self.apply_committed();
        }
    }
}



/// An AppendEntries awaiting its reply.
struct InFlight {
    pending: PendingAppend,
    sent: SentAppend,
}

/// Reads a reply. (ok = 0, term = 0) is the framework's answer for a peer off
/// the network: lost, not "your log does not match" (abi.md). A real reply
/// always carries a term >= 1, since any leader's term is.
fn append_outcome(values: AppendReplyValues) -> AppendOutcome {
    if values.ok == 0 && values.term == 0 {
        return AppendOutcome::Lost;
    }
    AppendOutcome::Replied(AppendResponse {
        term: values.term,
        success: values.ok != 0,
        last_log_index: values.last_log_index,
    })
}
