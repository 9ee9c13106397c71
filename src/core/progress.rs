//! What a leader knows about one follower (Figure 2, "Volatile state on
//! leaders": `nextIndex[]`, `matchIndex[]`) plus the pacing state that keeps
//! replication pipelined yet cheap in RPCs.

use super::log::Index;
use super::Micros;

/// How the leader talks to a follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicationMode {
    /// Where the follower's log matches is unknown: one request at a time,
    /// and `next_index` moves only on replies (§5.3 "decrements nextIndex and
    /// retries").
    Probe,
    /// The follower's log is known to match up to `match_index`: entries are
    /// streamed back to back, up to the in-flight window, and `next_index`
    /// advances as they are sent.
    Replicate,
}

#[derive(Debug, Clone)]
pub struct Progress {
    /// Index of the next entry to send (Figure 2 `nextIndex`).
    pub next_index: Index,
    /// Highest index known to be replicated on the follower (Figure 2
    /// `matchIndex`). Invariant: `match_index < next_index`.
    pub match_index: Index,
    pub mode: ReplicationMode,
    /// Requests sent and neither answered nor given up on.
    pub in_flight: usize,
    /// Bumped whenever `next_index` is reset; a rejection or loss from an
    /// older epoch no longer steers `next_index`.
    pub epoch: u64,
    /// When the last request (of any kind) went to this follower.
    pub last_sent_at: Option<Micros>,
    /// The commit index this follower can already know: the highest
    /// `min(leaderCommit, last index of the request)` sent to it.
    pub commit_sent: Index,
    /// After a lost request, nothing is sent before this time, so an
    /// unreachable follower is not flooded (each attempt is a counted RPC).
    pub paused_until: Micros,
}

impl Progress {
    /// The state right after an election (Figure 2: nextIndex initialized to
    /// leader last log index + 1, matchIndex to 0).
    pub fn new(leader_last_index: Index) -> Self {
        Self {
            next_index: leader_last_index + 1,
            match_index: 0,
            mode: ReplicationMode::Probe,
            in_flight: 0,
            epoch: 0,
            last_sent_at: None,
            commit_sent: 0,
            paused_until: 0,
        }
    }

    /// How many requests may be outstanding in the current mode.
    pub fn window(&self, max_in_flight: usize) -> usize {
        match self.mode {
            ReplicationMode::Probe => 1,
            ReplicationMode::Replicate => max_in_flight.max(1),
        }
    }

    /// Forget where the follower's log ends and probe again from `next_index`.
    pub fn reset_to_probe(&mut self, next_index: Index) {
        self.next_index = next_index.max(self.match_index + 1);
        self.mode = ReplicationMode::Probe;
        self.epoch += 1;
    }

    /// A success proves the follower's log matches through `index`.
    pub fn record_match(&mut self, index: Index) {
        if index > self.match_index {
            self.match_index = index;
        }
        if self.next_index <= self.match_index {
            self.next_index = self.match_index + 1;
        }
    }
}
