//! The server's fibers, all on its reactor thread, driving the core:
//! - the election fiber (§5.2): checks the election timer, runs elections,
//!   moves the proxies in and out of the backup when the network
//!   "disconnects", starts the replication fibers when a term's leadership
//!   begins, and applies what nobody else applied;
//! - while this server leads, one replication fiber per follower (§5.3):
//!   sends what the core decides (entries back to back within the window,
//!   commit notices, heartbeats) and feeds each reply, or loss, back.
//!
//! Every fiber checks `Node::is_stopped` after each wait and ends at once,
//! touching no framework handle, when the server has been deleted (and the
//! drop waits for that: `Node::stop_and_wait`). Every
//! interval is drawn afresh (`State::jittered`), so no polling stays in step
//! with the harness's round-number sleeps.

#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::sync::Arc;

use super::framework::{self, AppendArgs, AppendReplyValues, Link, PendingAppend};
use super::logging::event;
use super::node::{as_leader, Node};
use super::protocol::{AppendOutcome, AppendResponse, ElectionOutcome, Micros, NodeId, Role, SentAppend, Term, VoteRequest};

// Poll periods: each sleep is drawn from [period / 2, 3 period / 2).
/// How often an idle leader's replication fiber looks for new entries while
/// entries flow: a `start` on a test thread cannot wake a fiber, so this
/// bounds the delay before a new entry goes out.
const LEADER_POLL_US: Micros = 1_000;
/// The same after `QUIET_AFTER_US` without an entry: each wake-up costs a
/// reactor turn and two context switches, and an idle leader has nothing
/// to pick up.
const QUIET_LEADER_POLL_US: Micros = 10_000;
const QUIET_AFTER_US: Micros = 1_000_000;
/// How often the election fiber looks around (network changes, timer).
const IDLE_POLL_US: Micros = 20_000;
/// How often a candidate checks its vote quorum event.
const VOTE_POLL_US: Micros = 2_000;
/// A sleep of the election fiber this much longer than asked is logged as
/// a stall (topic "timer").
const STALL_NOTE_US: Micros = 250_000;
/// How long a leader waits for an AppendEntries reply before calling it
/// lost. While it waits, the fiber cannot send that follower a heartbeat, so
/// this plus the heartbeat interval (at most 580 ms) must stay below the
/// shortest election timeout (1.2 s); it is still more than twice the
/// slowest round trip of the lab's unreliable network (27 ms stalls at both
/// ends).
const RPC_TIMEOUT_US: Micros = 300_000;

/// Starts the election fiber (on the reactor thread, from `setup`).
pub(crate) fn start(node: &Arc<Node>, link: Link) {
    let (fiber_node, life) = (Arc::clone(node), node.fiber_life());
    let name = format!("election fiber of server {}", node.ids.site_id);
    framework::spawn_fiber(name, move || {
        let _life = life;
        run_election_fiber(&fiber_node, &link)
    });
}

/// §5.2: followers and candidates start an election when the timer runs
/// out. A server whose network is down does not campaign: it could reach no
/// one, and the inflated term would only depose a healthy leader when it
/// returns (the effect the dissertation's Pre-Vote, §9.6, achieves).
fn run_election_fiber(node: &Arc<Node>, link: &Link) {
    while !node.is_stopped() {
        sync_network(node, link);
        start_replication_if_leading(node, link);
        // Replies and AppendEntries apply what they commit; this catches
        // what nobody replied to (a one-server cluster, an `apply_logs`
        // from another thread).
        node.apply_committed();
        let (vote_request, sleep) = {
            let mut state = node.lock();
            let now = state.now();
            let request = if state.disconnected {
                state.core.tick_without_campaign(now);
                None
            } else if std::mem::take(&mut state.election_requested) && !state.core.is_leader() {
                Some(state.core.campaign(now))
            } else {
                state.core.tick(now)
            };
            // Sleep until the timer is due, looking at the network flag at
            // least every IDLE_POLL_US.
            let until_due = if state.core.is_leader() || state.disconnected {
                IDLE_POLL_US
            } else {
                state.core.election_deadline().saturating_sub(now)
            };
            let sleep = until_due.clamp(1_000, state.jittered(IDLE_POLL_US));
            (request, (now, sleep))
        };
        if let Some(request) = vote_request {
            run_election(node, link, request);
            continue;
        }
        let (before, asked) = sleep;
        framework::fiber_sleep(asked);
        if node.is_stopped() {
            return;
        }
        let slept = node.lock().now().saturating_sub(before);
        if slept > asked + STALL_NOTE_US {
            event!(info, "timer", node.who(), "stalled: asked to sleep {} ms, woke after {} ms (not counted toward the election timeout)", asked / 1000, slept / 1000);
        }
    }
}

/// Moves the proxies to match the network flag (abi.md, "Disconnection").
fn sync_network(node: &Node, link: &Link) {
    let want_down = {
        let state = node.lock();
        (state.disconnected != state.proxies_saved).then_some(state.disconnected)
    };
    let Some(down) = want_down else { return };
    let (partition, locale) = (node.ids.partition_id, node.ids.locale_id);
    if down {
        link.save_proxies(partition, locale);
    } else {
        link.restore_proxies(partition, locale);
    }
    let mut state = node.lock();
    state.proxies_saved = down;
    event!(debug, "network", state.who(), "proxies {}", if down { "saved to the backup" } else { "restored" });
}

/// Starts one replication fiber per follower when this server has begun
/// leading a term it has no fibers for yet.
fn start_replication_if_leading(node: &Arc<Node>, link: &Link) {
    let (term, peers) = {
        let mut state = node.lock();
        let term = state.core.term();
        if !state.core.is_leader() || state.replicating_term == term {
            return;
        }
        state.replicating_term = term;
        (term, state.core.peers().collect::<Vec<_>>())
    };
    for peer in peers {
        let (fiber_node, fiber_link, life) = (Arc::clone(node), link.copy(), node.fiber_life());
        let name = format!("replication fiber of server {} to {peer} (term {term})", node.ids.site_id);
        framework::spawn_fiber(name, move || {
            let _life = life;
            run_replication_fiber(&fiber_node, &fiber_link, peer, term)
        });
    }
}

/// Sends RequestVote to all and follows the quorum event until it decides,
/// or the election is over (a leader appeared, a higher term). It keeps
/// ticking the core meanwhile (stall detection needs a tick at least every
/// `stall_threshold`); when the election timer runs out again, the next
/// election starts here.
fn run_election(node: &Node, link: &Link, first: VoteRequest) {
    let mut request = first;
    'elections: loop {
        event!(debug, "election", node.who(), "campaign for term {} (last log {}/t{})", request.term, request.last_log_index, request.last_log_term);
        let quorum = link.broadcast_vote(node.ids.partition_id, request.last_log_index, request.last_log_term, node.ids.site_id, request.term);
        loop {
            let (granted, refused) = (quorum.granted(), quorum.refused());
            let highest_refusing_term = quorum.highest_refusing_term();
            if granted || refused || highest_refusing_term > request.term {
                let outcome = ElectionOutcome { election_term: request.term, won: granted, highest_rejecting_term: highest_refusing_term };
                let mut state = node.lock();
                let now = state.now();
                state.core.handle_election_outcome(now, outcome);
                if state.core.is_leader() {
                    event!(info, "election", state.who(), "won term {}", request.term);
                } else {
                    event!(debug, "election", state.who(), "lost term {} (all refused: {refused}; highest term seen {highest_refusing_term})", request.term);
                }
                return;
            }
            let (next, pause) = {
                let mut state = node.lock();
                if state.disconnected || state.core.role() != Role::Candidate || state.core.term() != request.term {
                    return;
                }
                let now = state.now();
                (state.core.tick(now), state.jittered(VOTE_POLL_US))
            };
            if let Some(again) = next {
                request = again;
                continue 'elections;
            }
            framework::fiber_sleep(pause);
            if node.is_stopped() {
                return;
            }
        }
    }
}

/// An AppendEntries awaiting its reply.
struct InFlight {
    pending: PendingAppend,
    sent: SentAppend,
}

/// §5.3: replication to one follower while this server leads `term`.
fn run_replication_fiber(node: &Node, link: &Link, peer: NodeId, term: Term) {
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let mut last_entry_sent_at: Micros = node.lock().now();
    while !node.is_stopped() && node.is_leader_of(term) {
        // Send everything the core decides now.
        loop {
            let decided = {
                let mut state = node.lock();
                if state.disconnected {
                    None
                } else {
                    let now = state.now();
                    state.core.next_append(now, peer)
                }
            };
            let Some(outgoing) = decided else { break };
            let request = &outgoing.request;
            if request.entry.is_some() {
                last_entry_sent_at = outgoing.sent.sent_at;
            }
            let args = AppendArgs {
                peer,
                partition_id: node.ids.partition_id,
                term: request.term,
                prev_log_index: request.prev_log_index,
                prev_log_term: request.prev_log_term,
                commit_index: request.leader_commit,
                entry_term: request.entry.as_ref().map_or(0, |e| e.term),
            };
            event!(
                trace,
                "append",
                as_leader(node.ids.site_id, request.term),
                "to S{peer}: prev {}/t{} {} commit {}",
                request.prev_log_index,
                request.prev_log_term,
                if request.entry.is_some() { "entry" } else { "heartbeat" },
                request.leader_commit
            );
            let pending = link.send_append(&args, request.entry.as_ref().map(|e| e.command.as_ref()));
            in_flight.push_back(InFlight { pending, sent: outgoing.sent });
        }
        // Then wait: for the oldest reply, or a little, for new entries.
        let Some(oldest) = in_flight.front_mut() else {
            let pause = {
                let mut state = node.lock();
                let quiet = state.now().saturating_sub(last_entry_sent_at) > QUIET_AFTER_US;
                state.jittered(if quiet { QUIET_LEADER_POLL_US } else { LEADER_POLL_US })
            };
            framework::fiber_sleep(pause);
            continue;
        };
        let waited_from = node.lock().now();
        let remaining = (oldest.sent.sent_at + RPC_TIMEOUT_US).saturating_sub(waited_from);
        let mut reply = oldest.pending.wait(remaining);
        if reply.is_none() && !node.is_stopped() {
            // A wait that ran out because the process (or this thread) did
            // not run is no sign of a lost request: the reply may be queued
            // behind the stall. It gets one fresh round-trip window, so that
            // a stall does not look like a loss (a resend, and a probe).
            let slept = node.lock().now().saturating_sub(waited_from);
            if slept > remaining + STALL_NOTE_US {
                event!(debug, "timer", node.who(), "stalled while awaiting S{peer}'s reply ({} ms for {} ms): waiting once more", slept / 1000, remaining / 1000);
                reply = oldest.pending.wait(RPC_TIMEOUT_US);
            }
        }
        if node.is_stopped() {
            return; // `in_flight` keeps what may still be written (PendingAppend)
        }
        let finished = in_flight.pop_front().expect("the front exists");
        let mut state = node.lock();
        // A reply reaching a server that is off the network is not heard.
        let outcome = match reply {
            Some(values) if !state.disconnected => append_outcome(values),
            _ => AppendOutcome::Lost,
        };
        let now = state.now();
        let commit_before = state.core.commit_index();
        state.core.handle_append_response(now, peer, finished.sent, outcome);
        if outcome == AppendOutcome::Lost {
            event!(debug, "append", state.who(), "to S{peer}: request after {} lost; empty probes until it answers", finished.sent.prev_log_index);
        }
        let committed = state.core.commit_index() > commit_before;
        if committed {
            event!(debug, "commit", state.who(), "commit index {}", state.core.commit_index());
        }
        drop(state);
        if committed {
            node.apply_committed();
        }
    }
}

/// Reads a reply. (ok = 0, term = 0) is the framework's answer for a peer
/// off the network: lost, not "your log does not match" (abi.md). A real
/// reply always carries a term >= 1, since any leader's term is.
fn append_outcome(values: AppendReplyValues) -> AppendOutcome {
    if values.ok == 0 && values.term == 0 {
        return AppendOutcome::Lost;
    }
    AppendOutcome::Replied(AppendResponse { term: values.term, success: values.ok != 0, last_log_index: values.last_log_index })
}
