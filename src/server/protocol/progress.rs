//! What a leader knows about one follower (Figure 2, "Volatile state on
//! leaders": `nextIndex[]`, `matchIndex[]`) plus the pacing state that keeps
//! replication pipelined yet cheap in RPCs.
//!
//! The leader decides *what* to send (`RaftCore::next_append`); this type
//! owns how that changes the follower's record, so every state change goes
//! through one of its `record_*` methods and keeps the invariants below.
//!
//! Invariants:
//! - `match_index < next_index` (Figure 2: everything below `next_index`
//!   that is not known to match is still to be proven by a success);
//! - `match_index` never decreases within a term;
//! - `in_flight` is the number of requests sent and not yet given an
//!   outcome (a reply or `Lost`);
//! - in `Unresponsive` mode no entry goes out: only empty AppendEntries.

use super::log::Index;
use super::{Micros, SentAppend};

/// How the leader talks to a follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicationMode {
    /// The follower has not answered in this term, or its last request was
    /// lost. Only empty AppendEntries (probes) go to it, one at a time and
    /// paced, until it answers. A request that is delivered late (after a
    /// partition changed) can then carry no entry into a log that the
    /// partition was meant to keep it from (labtest.md, test 11).
    Unresponsive,
    /// The follower answers, but where its log matches is unknown: one
    /// request at a time, and `next_index` moves only on replies (§5.3
    /// "decrements nextIndex and retries").
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
    /// `matchIndex`).
    pub match_index: Index,
    pub mode: ReplicationMode,
    /// Requests sent and neither answered nor given up on.
    pub in_flight: usize,
    /// Bumped whenever `next_index` is reset; a rejection or loss from an
    /// older epoch no longer steers `next_index`.
    pub epoch: u64,
    /// When this follower is next owed a heartbeat (§5.2); every request
    /// pushes it back by a freshly drawn interval.
    pub heartbeat_due_at: Micros,
    /// The commit index this follower can already know: the highest
    /// `min(leaderCommit, last index of the request)` sent to it.
    pub commit_sent: Index,
    /// After a lost request, nothing is sent before this time, so an
    /// unreachable follower is not flooded (each attempt is a counted RPC).
    pub paused_until: Micros,
    /// Requests lost in a row (of the current epoch); any reply resets it.
    /// The pause after a loss doubles with it: a follower cut off for a
    /// moment (a flapping network) is probed again soon, one cut off for
    /// long about once per heartbeat interval.
    pub losses_in_a_row: u32,
    /// When the follower last answered a request of this term (success or
    /// rejection): the leader's evidence that a quorum still follows it (§6).
    pub last_heard_at: Option<Micros>,
}

impl Progress {
    /// The state right after an election (Figure 2: nextIndex initialized to
    /// leader last log index + 1, matchIndex to 0). The follower has not
    /// answered in this term yet; the first request, an empty one, goes out
    /// at once.
    pub fn new(leader_last_index: Index) -> Self {
        Self {
            next_index: leader_last_index + 1,
            match_index: 0,
            mode: ReplicationMode::Unresponsive,
            in_flight: 0,
            epoch: 0,
            heartbeat_due_at: 0,
            commit_sent: 0,
            paused_until: 0,
            losses_in_a_row: 0,
            last_heard_at: None,
        }
    }

    /// How many requests may be outstanding in the current mode.
    pub fn window(&self, max_in_flight: usize) -> usize {
        match self.mode {
            ReplicationMode::Unresponsive | ReplicationMode::Probe => 1,
            ReplicationMode::Replicate => max_in_flight.max(1),
        }
    }

    /// May the next request carry the entry at `next_index`?
    pub fn may_send_entry(&self, leader_last_index: Index, max_in_flight: usize) -> bool {
        self.mode != ReplicationMode::Unresponsive
            && self.next_index <= leader_last_index
            && self.in_flight < self.window(max_in_flight)
    }

    /// An unresponsive follower is owed its next probe once nothing is in
    /// flight to it (and, the caller checks, its pause is over).
    pub fn probe_due(&self) -> bool {
        self.mode == ReplicationMode::Unresponsive && self.in_flight == 0
    }

    /// A request went out. `heartbeat_interval` is the interval drawn for
    /// this follower's next heartbeat; `commit` the leader's commit index.
    pub fn record_sent(&mut self, now: Micros, sent: &SentAppend, commit: Index, heartbeat_interval: Micros) {
        if sent.carries_entry && self.mode == ReplicationMode::Replicate {
            self.next_index += 1; // stream the next one without waiting
        }
        self.in_flight += 1;
        self.heartbeat_due_at = now + heartbeat_interval;
        self.commit_sent = self.commit_sent.max(commit.min(sent.last_index()));
    }

    /// No answer in time, or the framework's "lost" answer. If this request
    /// is the newest word on the follower, the follower may have missed it
    /// and everything after it: go back to empty probes from it (not from
    /// `match_index + 1`: a new leader's `match_index` is 0, and the whole
    /// log would go out again), the first one at `resume_at`.
    /// `full_pause` is the longest pause; the first loss in a row pauses an
    /// eighth of it, each further one twice as long as the last.
    pub fn record_lost(&mut self, sent: &SentAppend, full_pause: Micros) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if sent.epoch == self.epoch {
            let retry_from = (sent.prev_log_index + 1).min(self.next_index);
            self.reset(retry_from, ReplicationMode::Unresponsive);
            self.paused_until = sent.sent_at + (full_pause >> (3 - self.losses_in_a_row.min(3)));
            self.losses_in_a_row += 1;
        }
        // It may not know what that request told it about the commit index.
        self.commit_sent = self.commit_sent.min(self.match_index);
    }

    /// A success proves the follower's log matches through the request's
    /// last index (Figure 2, Leaders: update nextIndex and matchIndex).
    /// Returns true if `match_index` moved.
    pub fn record_success(&mut self, sent: &SentAppend) -> bool {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.losses_in_a_row = 0;
        let index = sent.last_index();
        let moved = index > self.match_index;
        if moved {
            self.match_index = index;
        }
        if self.next_index <= self.match_index {
            self.next_index = self.match_index + 1;
        }
        if sent.epoch == self.epoch {
            self.mode = ReplicationMode::Replicate;
        }
        moved
    }

    /// A rejection for log inconsistency (Figure 2, Leaders: "decrement
    /// nextIndex and retry"), by as much as the follower's hint allows: its
    /// last index that may still match. A hint at or past the request's own
    /// position (only a confused follower sends one) moves nothing forward.
    pub fn record_rejection(&mut self, sent: &SentAppend, hint: Index) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.losses_in_a_row = 0;
        if sent.epoch == self.epoch {
            let next = hint.saturating_add(1).min(sent.prev_log_index);
            self.reset(next, ReplicationMode::Probe);
        }
    }

    /// A reply that says nothing about the log (a newer term, or a term
    /// this leader no longer leads): the request is over.
    pub fn record_ignored(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Forget where the follower's log ends and start again from
    /// `next_index` (never below `match_index + 1`) in `mode`.
    fn reset(&mut self, next_index: Index, mode: ReplicationMode) {
        self.next_index = next_index.max(self.match_index + 1);
        self.mode = mode;
        self.epoch += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(prev: Index, entry: bool, epoch: u64) -> SentAppend {
        SentAppend { term: 1, prev_log_index: prev, carries_entry: entry, epoch, sent_at: 0 }
    }

    #[test]
    fn a_new_follower_gets_no_entry_until_it_answers() {
        let mut pr = Progress::new(5);
        assert!(!pr.may_send_entry(5, 8));
        assert!(pr.probe_due());
        let probe = sent(5, false, 0);
        pr.record_sent(0, &probe, 0, 100);
        assert!(!pr.probe_due());
        assert!(pr.record_success(&probe));
        assert_eq!(pr.mode, ReplicationMode::Replicate);
        assert_eq!((pr.match_index, pr.next_index), (5, 6));
    }

    #[test]
    fn a_loss_stops_entries_and_pauses_probes() {
        let mut pr = Progress::new(3);
        let probe = sent(3, false, 0);
        pr.record_sent(0, &probe, 0, 100);
        pr.record_success(&probe);
        let entry = sent(3, true, pr.epoch);
        pr.record_sent(10, &entry, 3, 100);
        assert_eq!(pr.next_index, 5);
        pr.record_lost(&entry, 800);
        assert_eq!(pr.mode, ReplicationMode::Unresponsive);
        assert_eq!(pr.next_index, 4, "probe again from the lost request");
        assert!(!pr.may_send_entry(9, 8));
        assert!(pr.probe_due());
        assert_eq!(pr.paused_until, 100, "an eighth of the full pause after the first loss");
        // Lost again and again: the pause doubles up to the full one.
        let mut pauses = Vec::new();
        for at in [200, 1_000, 2_000, 3_000] {
            let probe = sent(3, false, pr.epoch);
            let probe = SentAppend { sent_at: at, ..probe };
            pr.record_sent(at, &probe, 3, 100);
            pr.record_lost(&probe, 800);
            pauses.push(pr.paused_until - at);
        }
        assert_eq!(pauses, vec![200, 400, 800, 800]);
        assert!(pr.match_index < pr.next_index);
    }

    #[test]
    fn a_rejection_moves_back_by_the_hint_but_never_below_match() {
        let mut pr = Progress::new(10);
        let probe = sent(10, false, 0);
        pr.record_sent(0, &probe, 0, 100);
        pr.record_rejection(&probe, 4);
        assert_eq!((pr.mode, pr.next_index), (ReplicationMode::Probe, 5));
        let retry = sent(4, true, pr.epoch);
        pr.record_sent(1, &retry, 0, 100);
        pr.record_success(&retry);
        assert_eq!(pr.match_index, 5);
        // A stale rejection (older epoch) changes nothing but the count.
        pr.record_sent(2, &sent(5, true, pr.epoch), 0, 100);
        pr.record_rejection(&sent(1, true, 0), 0);
        assert_eq!(pr.match_index, 5);
        assert!(pr.next_index > pr.match_index);
    }
}
