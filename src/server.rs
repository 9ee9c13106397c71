//! rust_raft: Raft (Figure 2 of the extended Raft paper, "In Search of an
//! Understandable Consensus Algorithm", Ongaro and Ousterhout) for the
//! lab's Rust mode. THIS FILE IS WHAT IS HANDED IN: the lab's one
//! student-owned file, `src/protocol/rust_raft/server.rs`, on the lab's own
//! `lib.rs`, `ffi.rs` and `wrappers.rs` (../shared/skeleton.md), with only
//! the lab's crates (`log`, `rand` 0.8; the glue sets up `env_logger`).
//! In this project it is `src/server.rs` plus its submodules under
//! `src/server/`; `scripts/bundle-server` inlines them into one file.
//!
//! The layers, from the glue inwards:
//! - this module: `RaftServer`, the type the glue calls (fields and methods
//!   it names), each entry point a thin adapter that contains panics (the
//!   glue's `extern "C"` functions would abort on one) and owns the
//!   framework's command handles;
//! - `node`: the state shared by the glue's threads and the fibers, behind
//!   one lock (the glue calls through `&mut` from several threads at once);
//! - `fibers`: the election fiber and the replication fibers;
//! - `protocol`: Figure 2 as a pure state machine (no FFI, clock, threads),
//!   tested on its own with a virtual clock;
//! - `framework`: the FFI edge, the only `unsafe` code;
//! - `logging`: the log line format.

pub(crate) mod fibers;
pub(crate) mod framework;
pub(crate) mod logging;
pub(crate) mod node;
pub(crate) mod protocol;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use self::framework::{contain, Applier, FrameIds, Link, OwnedCommand};
use self::logging::event;
use self::node::{entry_of, Node};
use self::protocol::{AppendRequest, NodeId, VoteRequest};
use crate::ffi;
use crate::wrappers::{
    ballot_t, siteid_t, slotid_t, AppendEntriesReply, Command, Commo, LogStore, ServerHandle, VoteReply,
};

/// One Raft server, as the lab's glue creates, calls and deletes it.
///
/// The glue reaches it through a raw pointer from the test threads and the
/// reactor thread at once, so everything that changes lives in `node`,
/// behind its lock; the four public fields are the glue's: it writes
/// `commo` (before `setup`) and `stop`/`looping` (in `delete`, 200 ms before
/// the drop), and reads `site_id`.
pub struct RaftServer {
    pub commo: Commo,
    pub stop: bool,
    pub looping: bool,
    pub site_id: siteid_t,
    logs: LogStore,
    is_test_mode: bool,
    node: Arc<Node>,
}

/// A ballot (the framework's signed term) as a term.
fn term_of(ballot: ballot_t) -> u64 {
    ballot.max(0) as u64
}

impl RaftServer {
    pub fn new(
        frame: ffi::Frame_C,
        commo: ffi::RaftCommo_C,
        raft_logs: ffi::RaftLogs_C,
        tx_sched: ffi::TxScheduler_C,
        app_next: ffi::AppNextFn_C,
        is_test_mode: bool,
    ) -> Self {
        let _ = tx_sched; // the lab has no transactions
        let ids = framework::frame_ids(frame).unwrap_or_else(|| {
            log::error!(target: "raft::api", "RaftServer::new: NULL frame; acting as site 0 of partition 0");
            FrameIds::default()
        });
        let size = framework::partition_size(ids.partition_id).unwrap_or(1);
        let members: Vec<NodeId> = if (ids.site_id as usize) < size { (0..size as NodeId).collect() } else { vec![ids.site_id] };
        RaftServer {
            commo: Commo::from_raw(commo),
            stop: false,
            looping: false,
            site_id: ids.site_id,
            logs: LogStore::from_raw(raft_logs),
            is_test_mode,
            node: Arc::new(Node::new(ids, members, Applier::new(app_next))),
        }
    }

    /// Starts the fibers (reactor thread; the glue holds its registry lock
    /// meanwhile). Outside test mode locale 0 is meant to start as leader:
    /// it campaigns at once instead (leadership by decree could give a term
    /// two leaders).
    pub fn setup(&mut self, _handle: ServerHandle) {
        contain("setup", (), || {
            if !self.node.claim_reactor_thread() {
                event!(warn, "api", self.node.who(), "setup called twice; ignored");
                return;
            }
            let Some(link) = Link::new(&self.commo) else {
                event!(error, "api", self.node.who(), "setup without a commo; not starting");
                return;
            };
            let peers: Vec<NodeId> = link
                .partition_site_ids(self.node.ids.partition_id)
                .into_iter()
                .filter(|&s| s != self.site_id)
                .collect();
            let expected: Vec<NodeId> = self.node.lock().core.peers().collect();
            let mut sorted = peers.clone();
            sorted.sort_unstable();
            if !peers.is_empty() && sorted != expected {
                event!(error, "api", self.node.who(), "the proxies list peers {peers:?}; the configuration implies {expected:?}");
            }
            if !self.is_test_mode && self.node.ids.locale_id == 0 {
                event!(info, "api", self.node.who(), "not in test mode: locale 0 campaigns at once");
                self.node.request_election();
            }
            self.looping = true;
            fibers::start(&self.node, link);
        })
    }

    pub fn is_leader(&self) -> bool {
        contain("is_leader", false, || self.node.state().0)
    }

    pub fn get_state(&self) -> (bool, u64) {
        contain("get_state", (false, 0), || self.node.state())
    }

    /// Outside the lab's tests only. `true` runs an election (within about
    /// 20 ms, on the election fiber) rather than declaring leadership: two
    /// servers told to lead at once would otherwise lead one term together.
    /// `false` steps down, keeping the term.
    pub fn set_is_leader(&mut self, is_leader: bool) {
        contain("set_is_leader", (), || {
            if is_leader {
                if self.node.request_election() {
                    event!(info, "api", self.node.who(), "set_is_leader(true): running an election for it");
                }
            } else {
                self.node.step_down();
            }
        })
    }

    pub fn disconnect(&mut self, disconnect: bool) {
        contain("disconnect", (), || self.node.disconnect(disconnect))
    }

    /// As `disconnect(false)`, and the election timer restarts (with a
    /// grace before any campaign; README, "Timing").
    pub fn reconnect(&mut self) {
        contain("reconnect", (), || self.node.reconnect())
    }

    pub fn is_disconnected(&self) -> bool {
        contain("is_disconnected", false, || self.node.is_disconnected())
    }

    /// Figure 2, Leaders: append the command and report its index and term.
    /// The command is this server's whatever happens: kept in the log, or
    /// released when refused.
    pub fn start(&mut self, cmd: Command, index: &mut u64, term: &mut u64, _slot_id: slotid_t, _ballot: ballot_t) -> bool {
        let appended = contain("start", None, || {
            let command = OwnedCommand::adopt(cmd)?;
            self.node.start(Arc::new(command))
        });
        let (new_index, new_term) = appended.unwrap_or((0, 0));
        *index = new_index;
        *term = new_term;
        appended.is_some()
    }

    /// An election now (the framework's coordinator; unused by the lab's
    /// tests). False when leading or off the network.
    pub fn request_vote(&mut self) -> bool {
        contain("request_vote", false, || self.node.request_election())
    }

    /// Figure 2, RequestVote receiver (RPC handler: never waits).
    pub fn on_request_vote(
        &mut self,
        lst_log_idx: slotid_t,
        lst_log_term: ballot_t,
        can_id: siteid_t,
        can_term: ballot_t,
        reply: VoteReply,
    ) {
        // Until decided, the reply is a refusal in the candidate's term
        // (what it also is if this server is off the network).
        reply.set_term(can_term);
        reply.set_vote_granted(false);
        let request = VoteRequest {
            term: term_of(can_term),
            candidate_id: can_id,
            last_log_index: lst_log_idx,
            last_log_term: term_of(lst_log_term),
        };
        if let Some(response) = contain("on_request_vote", None, || self.node.handle_request_vote(&request)) {
            reply.set_term(response.term as ballot_t);
            reply.set_vote_granted(response.vote_granted);
        }
        reply.send();
    }

    /// Figure 2, AppendEntries receiver for at most one entry (RPC handler:
    /// never waits). The entry's command is this server's: kept in the log
    /// or released.
    #[allow(clippy::too_many_arguments)]
    pub fn on_append_entries(
        &mut self,
        _slot_id: slotid_t,
        _ballot: ballot_t,
        leader_current_term: u64,
        leader_prev_log_index: u64,
        leader_prev_log_term: u64,
        leader_commit_index: u64,
        cmd: Command,
        leader_next_log_term: u64,
        reply: AppendEntriesReply,
    ) {
        // Until decided, the "lost" answer (ok = 0, term = 0): it says
        // nothing about the logs (also what a server off the network sends).
        reply.reject(0, 0);
        let request = AppendRequest {
            term: leader_current_term,
            prev_log_index: leader_prev_log_index,
            prev_log_term: leader_prev_log_term,
            entry: entry_of(leader_next_log_term, OwnedCommand::adopt(cmd)),
            leader_commit: leader_commit_index,
        };
        let response = contain("on_append_entries", None, || self.node.handle_append_entries(request));
        if let Some(response) = response {
            if response.success {
                reply.accept(response.term, response.last_log_index);
            } else {
                reply.reject(response.term, response.last_log_index);
            }
        }
        reply.send();
        contain("apply_committed", (), || self.node.apply_committed());
    }

    /// Applies what is committed and not yet applied (on the reactor
    /// thread; called elsewhere, the election fiber does it shortly).
    pub fn apply_logs(&mut self) {
        contain("apply_logs", (), || self.node.apply_committed())
    }

    /// Outside the lab's tests only: append without going through `start`.
    /// Only a leader appends (on any other server an entry of the current
    /// term could collide with the leader's entry at the same index and
    /// term); elsewhere the command is released and index 0 reported.
    pub fn set_local_append(&mut self, cmd: Command, term: &mut u64, index: &mut u64, _slot_id: slotid_t, _ballot: ballot_t) {
        let appended = contain("set_local_append", None, || {
            let command = OwnedCommand::adopt(cmd)?;
            let appended = self.node.start(Arc::new(command));
            if appended.is_none() {
                event!(warn, "api", self.node.who(), "set_local_append on a server that does not lead: refused");
            }
            appended
        });
        *index = appended.map_or(0, |(i, _)| i);
        *term = appended.map_or_else(|| self.node.state().1, |(_, t)| t);
    }

    /// Forgets the C++ log map's entry at `slot` (reactor thread).
    pub fn remove_cmd(&mut self, slot: slotid_t) {
        contain("remove_cmd", (), || self.logs.erase(slot))
    }

    /// A new RaftData record for log index `id`: its term, the previous
    /// entry's term and its command; an empty record (slot set) for an index
    /// the log does not have. Never NULL (the framework copies the pointee
    /// without a check); the framework never frees it.
    pub fn get_raft_instance(&self, id: slotid_t) -> ffi::RaftData_C {
        let entry = contain("get_raft_instance", None, || self.node.entry(id));
        framework::new_raft_data(id, entry.as_ref().map(|(term, prev_term, command)| (*term, *prev_term, command.command())))
    }
}

impl Drop for RaftServer {
    /// The glue drops the server 200 ms after setting `stop` (a plain write
    /// the fibers cannot read without a race), and the framework frees the
    /// communicator right after. So the drop stops the node and waits until
    /// every fiber has ended (each at its next wake-up, touching no
    /// framework handle; they hold the node, not the server).
    fn drop(&mut self) {
        if !self.stop && self.looping {
            log::warn!(target: "raft::api", "server {} dropped without the glue's delete; its fibers stop now", self.site_id);
        }
        if !self.node.stop_and_wait(2_000_000) {
            log::error!(target: "raft::api", "server {}: fibers still running 2 s after the drop (is its reactor stopped?)", self.site_id);
        }
    }
}
