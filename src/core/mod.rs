//! The Raft protocol as a pure state machine: Figure 2 of the extended Raft
//! paper ("In Search of an Understandable Consensus Algorithm", Ongaro and
//! Ousterhout), with no FFI, clock, threads or hidden randomness.
//!
//! Inputs are events, each carrying the current time in microseconds:
//! an election timer check (`tick`), an RPC that arrived
//! (`handle_request_vote`, `handle_append_entries`), a reply that arrived
//! (`handle_vote_response`, `handle_election_outcome`,
//! `handle_append_response`) and a client command (`propose`). Outputs are
//! decisions: a vote request to broadcast, the next AppendEntries for a
//! follower (`next_append`), replies, and committed entries to apply
//! (`take_committed`). The only random input, the election timeout, comes
//! from a generator seeded by the caller.
//!
//! The lab's ABI carries at most one entry per AppendEntries, so requests
//! here carry an `Option<Entry>`.

pub mod log;
pub mod progress;
pub mod quorum;

use std::collections::{BTreeMap, BTreeSet};

pub use self::log::{Entry, Index, RaftLog, Term};
pub use self::progress::{Progress, ReplicationMode};

/// Microseconds on whatever monotonic clock the driver uses.
pub type Micros = u64;
/// A server's id (the lab's site id).
pub type NodeId = u16;

/// Timing and pacing parameters. All durations in microseconds.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub id: NodeId,
    /// Every member of the cluster, this server included.
    pub members: Vec<NodeId>,
    /// Election timeouts are drawn uniformly from `[min, max)` (§5.2).
    pub election_timeout_min: Micros,
    pub election_timeout_max: Micros,
    /// An idle follower hears from the leader at least this often (§5.2).
    pub heartbeat_interval: Micros,
    /// After a request to a follower is lost, wait this long before the next.
    pub unreachable_backoff: Micros,
    /// Requests outstanding per follower once its log is known to match.
    pub max_in_flight: usize,
    /// Seed of the election-timeout generator.
    pub seed: u64,
}

impl CoreConfig {
    /// The settings the lab build uses; see README "Timing".
    pub fn lab_defaults(id: NodeId, members: Vec<NodeId>, seed: u64) -> Self {
        Self {
            id,
            members,
            // The suite allows seconds for an election (labtest.md: 10 polls
            // of 500 ms) but counts every RPC, so timeouts are long and
            // heartbeats sparse; a follower still misses two heartbeats in a
            // row before it campaigns.
            election_timeout_min: 1_200_000,
            election_timeout_max: 2_400_000,
            heartbeat_interval: 500_000,
            // A peer off the network answers at once; probing it more often
            // than a heartbeat would cost more than a heartbeat does.
            unreachable_backoff: 500_000,
            max_in_flight: 8,
            seed,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Follower,
    Candidate,
    Leader,
}

/// RequestVote arguments (Figure 2). The candidate's id is the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoteRequest {
    pub term: Term,
    pub candidate_id: NodeId,
    pub last_log_index: Index,
    pub last_log_term: Term,
}

/// RequestVote results (Figure 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoteResponse {
    pub term: Term,
    pub vote_granted: bool,
}

/// What the lab framework's vote quorum event reports about an election: it
/// does the counting, so the server feeds the core the verdict rather than
/// the single votes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElectionOutcome {
    /// The term the election was started in.
    pub election_term: Term,
    /// A majority (with the candidate's own vote) granted.
    pub won: bool,
    /// The highest term any rejecting voter reported (0 if none).
    pub highest_rejecting_term: Term,
}

/// AppendEntries arguments (Figure 2), with at most one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendRequest<C> {
    pub term: Term,
    pub prev_log_index: Index,
    pub prev_log_term: Term,
    /// The entry at `prev_log_index + 1`, or `None` for a heartbeat.
    pub entry: Option<Entry<C>>,
    pub leader_commit: Index,
}

/// AppendEntries results (Figure 2) plus the index hint of §5.3's last
/// paragraph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResponse {
    pub term: Term,
    pub success: bool,
    /// On success: the last index the request proved to match.
    /// On failure: the highest index at which the logs may still match (the
    /// follower's last index if it is too short, else the index before the
    /// first entry of the conflicting term), so the leader skips a whole term
    /// of wrong entries per round trip instead of one entry.
    pub last_log_index: Index,
}

/// What became of an AppendEntries the leader sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    Replied(AppendResponse),
    /// No answer in time, or the framework's "lost" answer for a peer that is
    /// off the network. Says nothing about the follower's log.
    Lost,
}

/// What the leader remembers of a request it sent, to judge the reply.
///
/// The driver gives each request an outcome with `handle_append_response`:
/// its reply, or `Lost`. Safety holds whenever that happens, even never;
/// liveness needs it within the shortest election timeout, since requests
/// in flight hold the follower's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentAppend {
    pub term: Term,
    pub prev_log_index: Index,
    pub carries_entry: bool,
    pub epoch: u64,
    pub sent_at: Micros,
}

impl SentAppend {
    /// The last index this request covers.
    pub fn last_index(&self) -> Index {
        self.prev_log_index + self.carries_entry as Index
    }
}

/// A request the leader decided to send, and what to remember of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingAppend<C> {
    pub request: AppendRequest<C>,
    pub sent: SentAppend,
}

/// splitmix64: a tiny, well-mixed generator, so the core needs no crate and
/// stays reproducible from its seed.
#[derive(Debug, Clone)]
struct TimeoutRng(u64);

impl TimeoutRng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn in_range(&mut self, min: Micros, max: Micros) -> Micros {
        if max <= min {
            return min;
        }
        min + self.next_u64() % (max - min)
    }
}

/// One Raft server's protocol state.
#[derive(Debug, Clone)]
pub struct RaftCore<C> {
    config: CoreConfig,
    // Figure 2, persistent state (kept in memory: the lab has no disk).
    current_term: Term,
    voted_for: Option<NodeId>,
    log: RaftLog<C>,
    // Figure 2, volatile state.
    role: Role,
    /// Leaders only: one entry per other member.
    progress: BTreeMap<NodeId, Progress>,
    /// Candidates only: who granted and who refused in this term.
    votes_granted: BTreeSet<NodeId>,
    votes_rejected: BTreeSet<NodeId>,
    election_deadline: Micros,
    rng: TimeoutRng,
}

impl<C: Clone> RaftCore<C> {
    /// A follower in term 0 with an empty log (§5.2: servers start as followers).
    pub fn new(config: CoreConfig, now: Micros) -> Self {
        assert!(config.members.contains(&config.id), "members must include this server");
        let rng = TimeoutRng(config.seed);
        let mut core = Self {
            config,
            current_term: 0,
            voted_for: None,
            log: RaftLog::default(),
            role: Role::Follower,
            progress: BTreeMap::new(),
            votes_granted: BTreeSet::new(),
            votes_rejected: BTreeSet::new(),
            election_deadline: 0,
            rng,
        };
        core.reset_election_timer(now);
        core
    }

    // ----- Queries -------------------------------------------------------

    pub fn id(&self) -> NodeId {
        self.config.id
    }
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }
    pub fn term(&self) -> Term {
        self.current_term
    }
    pub fn voted_for(&self) -> Option<NodeId> {
        self.voted_for
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }
    pub fn log(&self) -> &RaftLog<C> {
        &self.log
    }
    pub fn commit_index(&self) -> Index {
        self.log.commit_index()
    }
    pub fn last_index(&self) -> Index {
        self.log.last_index()
    }
    pub fn election_deadline(&self) -> Micros {
        self.election_deadline
    }
    pub fn progress(&self, peer: NodeId) -> Option<&Progress> {
        self.progress.get(&peer)
    }
    /// The other members, in id order.
    pub fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        let me = self.config.id;
        self.config.members.iter().copied().filter(move |&m| m != me)
    }

    // ----- Role changes ----------------------------------------------------

    /// Restart the election timer with a fresh random timeout (§5.2).
    pub fn reset_election_timer(&mut self, now: Micros) {
        let timeout =
            self.rng.in_range(self.config.election_timeout_min, self.config.election_timeout_max);
        self.election_deadline = now + timeout;
    }

    /// Figure 2, All Servers: "If RPC request or response contains term
    /// T > currentTerm: set currentTerm = T, convert to follower". A new term
    /// starts with no vote cast in it.
    fn become_follower(&mut self, now: Micros, term: Term) {
        debug_assert!(term >= self.current_term);
        if term > self.current_term {
            self.current_term = term;
            self.voted_for = None;
        }
        if self.role != Role::Follower {
            self.role = Role::Follower;
            self.progress.clear();
            self.votes_granted.clear();
            self.votes_rejected.clear();
            self.reset_election_timer(now);
        }
    }

    /// Figure 2, Candidates: increment currentTerm, vote for self, reset the
    /// election timer, send RequestVote to all other servers (§5.2).
    fn become_candidate(&mut self, now: Micros) -> VoteRequest {
        self.current_term += 1;
        self.role = Role::Candidate;
        self.voted_for = Some(self.config.id);
        self.progress.clear();
        self.votes_granted = BTreeSet::from([self.config.id]);
        self.votes_rejected.clear();
        self.reset_election_timer(now);
        VoteRequest {
            term: self.current_term,
            candidate_id: self.config.id,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
        }
    }

    /// Figure 2, Leaders: reinitialize nextIndex/matchIndex; the first
    /// heartbeats go out at once because no request was sent yet.
    fn become_leader(&mut self) {
        debug_assert_eq!(self.role, Role::Candidate);
        self.role = Role::Leader;
        self.votes_granted.clear();
        self.votes_rejected.clear();
        let last = self.log.last_index();
        self.progress = self.peers().map(|p| (p, Progress::new(last))).collect();
        self.maybe_commit(); // a one-server cluster commits alone
    }

    /// Leadership granted from outside (the framework's non-test mode):
    /// a new term in which this server votes for itself and leads.
    pub fn force_leadership(&mut self, now: Micros) {
        if self.role != Role::Leader {
            self.become_candidate(now);
            self.become_leader();
        }
    }

    /// Leadership withdrawn from outside: step down, keep the term.
    pub fn force_step_down(&mut self, now: Micros) {
        let term = self.current_term;
        self.become_follower(now, term);
    }

    // ----- Leader election (§5.2) -------------------------------------------

    /// Figure 2, Followers and Candidates: "If election timeout elapses ...
    /// convert to candidate" (a candidate starts a new election). Returns the
    /// vote request to broadcast, if an election started.
    pub fn tick(&mut self, now: Micros) -> Option<VoteRequest> {
        if self.role == Role::Leader || now < self.election_deadline {
            return None;
        }
        Some(self.campaign(now))
    }

    /// Start an election now, whatever the timer says.
    pub fn campaign(&mut self, now: Micros) -> VoteRequest {
        let request = self.become_candidate(now);
        if self.votes_granted.len() >= quorum::majority(self.config.members.len()) {
            self.become_leader(); // a one-server cluster
        }
        request
    }

    /// Figure 2, RequestVote receiver.
    pub fn handle_request_vote(&mut self, now: Micros, request: &VoteRequest) -> VoteResponse {
        // Rule 1: reply false if term < currentTerm.
        if request.term < self.current_term {
            return VoteResponse { term: self.current_term, vote_granted: false };
        }
        if request.term > self.current_term {
            self.become_follower(now, request.term);
        }
        // Rule 2: votedFor is null or candidateId, and the candidate's log is
        // at least as up-to-date as the receiver's (§5.4.1).
        let can_vote = self.voted_for.is_none() || self.voted_for == Some(request.candidate_id);
        let granted =
            can_vote && self.log.is_up_to_date(request.last_log_index, request.last_log_term);
        if granted {
            self.voted_for = Some(request.candidate_id);
            // Followers: the timer restarts when granting a vote.
            self.reset_election_timer(now);
        }
        VoteResponse { term: self.current_term, vote_granted: granted }
    }

    /// One voter's reply (used when the driver sees single votes).
    pub fn handle_vote_response(&mut self, now: Micros, from: NodeId, response: VoteResponse) {
        if response.term > self.current_term {
            self.become_follower(now, response.term);
            return;
        }
        // A reply for an election that is over is ignored.
        if self.role != Role::Candidate || response.term != self.current_term {
            return;
        }
        if response.vote_granted {
            self.votes_granted.insert(from);
        } else {
            self.votes_rejected.insert(from);
        }
        // Candidates: "If votes received from majority of servers: become leader".
        if self.votes_granted.len() >= quorum::majority(self.config.members.len()) {
            self.become_leader();
        }
    }

    /// The verdict of a vote quorum event (used by the lab server).
    pub fn handle_election_outcome(&mut self, now: Micros, outcome: ElectionOutcome) {
        if outcome.highest_rejecting_term > self.current_term {
            self.become_follower(now, outcome.highest_rejecting_term);
            return;
        }
        if self.role == Role::Candidate && self.current_term == outcome.election_term && outcome.won
        {
            self.become_leader();
        }
    }

    // ----- Log replication (§5.3) ------------------------------------------

    /// A client command: a leader appends it to its own log (Figure 2,
    /// Leaders: "If command received from client: append entry to local
    /// log"). Returns its index and term, or `None` if not leader.
    pub fn propose(&mut self, command: C) -> Option<(Index, Term)> {
        if self.role != Role::Leader {
            return None;
        }
        let index = self.log.append(Entry { term: self.current_term, command });
        self.maybe_commit(); // a one-server cluster commits alone
        Some((index, self.current_term))
    }

    /// Append without the leader check (the framework's `set_local_append`).
    pub fn append_local(&mut self, command: C) -> (Index, Term) {
        let index = self.log.append(Entry { term: self.current_term, command });
        (index, self.current_term)
    }

    /// What the leader should send to `peer` now, if anything: the next entry
    /// while the follower lags and the window allows, else a commit notice
    /// when the follower has entries it does not yet know are committed, else
    /// a heartbeat when the follower has heard nothing for a heartbeat
    /// interval (§5.2). Records the request as in flight.
    pub fn next_append(&mut self, now: Micros, peer: NodeId) -> Option<OutgoingAppend<C>> {
        if self.role != Role::Leader {
            return None;
        }
        let commit = self.log.commit_index();
        let last = self.log.last_index();
        let heartbeat_interval = self.config.heartbeat_interval;
        let max_in_flight = self.config.max_in_flight;
        let pr = self.progress.get_mut(&peer)?;
        if now < pr.paused_until {
            return None;
        }
        let has_entry_to_send = pr.next_index <= last && pr.in_flight < pr.window(max_in_flight);
        let idle = pr.in_flight == 0;
        let commit_news = pr.match_index.min(commit) > pr.commit_sent;
        // A heartbeat goes out when due even with the window full: requests
        // whose fate is not yet known must not silence the leader (§5.2).
        let heartbeat_due = pr.last_sent_at.is_none_or(|t| now >= t + heartbeat_interval);
        if !(has_entry_to_send || heartbeat_due || (idle && commit_news)) {
            return None;
        }
        let prev_log_index = pr.next_index - 1;
        let prev_log_term = self.log.term_at(prev_log_index).expect("next_index <= last + 1");
        let entry = if has_entry_to_send { self.log.entry(pr.next_index).cloned() } else { None };
        let carries_entry = entry.is_some();
        let sent = SentAppend {
            term: self.current_term,
            prev_log_index,
            carries_entry,
            epoch: pr.epoch,
            sent_at: now,
        };
        if carries_entry && pr.mode == ReplicationMode::Replicate {
            pr.next_index += 1; // stream the next one without waiting
        }
        pr.in_flight += 1;
        pr.last_sent_at = Some(now);
        pr.commit_sent = pr.commit_sent.max(commit.min(sent.last_index()));
        let request = AppendRequest {
            term: self.current_term,
            prev_log_index,
            prev_log_term,
            entry,
            leader_commit: commit,
        };
        Some(OutgoingAppend { request, sent })
    }

    /// Figure 2, AppendEntries receiver, for at most one entry.
    pub fn handle_append_entries(&mut self, now: Micros, request: AppendRequest<C>) -> AppendResponse {
        // Rule 1: reply false if term < currentTerm.
        if request.term < self.current_term {
            return self.reject_append(self.log.last_index());
        }
        // A current leader exists: candidates step down (§5.2), everyone
        // adopts a higher term, and the election timer restarts.
        self.become_follower(now, request.term);
        self.reset_election_timer(now);

        // Rule 2: reply false if the log has no entry at prevLogIndex whose
        // term matches prevLogTerm (§5.3).
        match self.log.term_at(request.prev_log_index) {
            None => return self.reject_append(self.log.last_index()),
            Some(term) if term != request.prev_log_term => {
                // Skip the whole conflicting term in one round trip (§5.3,
                // last paragraph); entries up to the commit index match.
                let first = self.log.first_index_of_term_at(request.prev_log_index);
                let hint = (first - 1).max(self.log.commit_index());
                return self.reject_append(hint.min(request.prev_log_index - 1));
            }
            Some(_) => {}
        }

        // Rules 3 and 4: delete a conflicting entry and all that follow it;
        // append the entry if it is new. An entry already present with the
        // same term is left alone, so a stale or duplicated request never
        // truncates entries that a later request appended.
        let mut last_new_index = request.prev_log_index;
        if let Some(entry) = request.entry {
            let index = request.prev_log_index + 1;
            match self.log.term_at(index) {
                Some(term) if term == entry.term => {}
                Some(_) => {
                    if !self.log.truncate_from(index) {
                        // Only a leader violating Leader Completeness could
                        // ask this; refuse rather than lose a committed entry.
                        ::log::error!(
                            "server {}: refusing to overwrite committed index {index}",
                            self.config.id
                        );
                        return self.reject_append(self.log.commit_index());
                    }
                    self.log.append(entry);
                }
                None => {
                    self.log.append(entry);
                }
            }
            last_new_index = index;
        }

        // Rule 5: if leaderCommit > commitIndex, set commitIndex =
        // min(leaderCommit, index of last new entry).
        if request.leader_commit > self.log.commit_index() {
            self.log.commit_to(request.leader_commit.min(last_new_index));
        }
        AppendResponse { term: self.current_term, success: true, last_log_index: last_new_index }
    }

    fn reject_append(&self, hint: Index) -> AppendResponse {
        AppendResponse { term: self.current_term, success: false, last_log_index: hint }
    }

    /// The leader learns what became of a request it sent to `peer`.
    pub fn handle_append_response(
        &mut self,
        now: Micros,
        peer: NodeId,
        sent: SentAppend,
        outcome: AppendOutcome,
    ) {
        if let AppendOutcome::Replied(reply) = outcome {
            if reply.term > self.current_term {
                self.become_follower(now, reply.term);
                return;
            }
        }
        // A reply to a request from an older term, or arriving after this
        // server stopped leading, is ignored.
        if self.role != Role::Leader || sent.term != self.current_term {
            return;
        }
        let backoff = self.config.unreachable_backoff;
        let Some(pr) = self.progress.get_mut(&peer) else { return };
        pr.in_flight = pr.in_flight.saturating_sub(1);
        let current_epoch = sent.epoch == pr.epoch;
        match outcome {
            AppendOutcome::Lost => {
                // The follower may have missed this request and the ones
                // after it: probe again from this one (not from matchIndex +
                // 1: a new leader's matchIndex is 0, and the whole log would
                // go out again). The pause counts from the send, so a peer
                // that answers "lost" at once is probed once per backoff,
                // and a request that timed out is retried at once.
                if current_epoch {
                    let retry_from = (sent.prev_log_index + 1).min(pr.next_index);
                    pr.reset_to_probe(retry_from);
                    pr.paused_until = sent.sent_at + backoff;
                }
                pr.commit_sent = pr.commit_sent.min(pr.match_index);
            }
            AppendOutcome::Replied(reply) if reply.success => {
                // Figure 2, Leaders: update nextIndex and matchIndex.
                pr.record_match(sent.last_index());
                if current_epoch && pr.mode == ReplicationMode::Probe {
                    pr.mode = ReplicationMode::Replicate;
                }
                self.maybe_commit();
            }
            AppendOutcome::Replied(reply) => {
                // Figure 2, Leaders: "If AppendEntries fails because of log
                // inconsistency: decrement nextIndex and retry", by as much as
                // the follower's hint allows.
                if current_epoch && reply.term == self.current_term {
                    let next = (reply.last_log_index + 1).min(sent.prev_log_index);
                    pr.reset_to_probe(next);
                }
            }
        }
    }

    /// Figure 2, Leaders: "If there exists an N such that N > commitIndex, a
    /// majority of matchIndex[i] >= N, and log[N].term == currentTerm: set
    /// commitIndex = N" (§5.3, §5.4). Entries of earlier terms are committed
    /// only indirectly, never by counting replicas (§5.4.2, Figure 8).
    fn maybe_commit(&mut self) -> bool {
        if self.role != Role::Leader {
            return false;
        }
        let mut matches: Vec<Index> = self.progress.values().map(|p| p.match_index).collect();
        matches.push(self.log.last_index());
        let n = quorum::quorum_index(&matches);
        if n > self.log.commit_index() && self.log.term_at(n) == Some(self.current_term) {
            self.log.commit_to(n);
            return true;
        }
        false
    }

    // ----- Applying (Figure 2, All Servers) ---------------------------------

    /// Committed entries not yet applied, in order; each is returned once.
    pub fn take_committed(&mut self) -> Vec<(Index, C)> {
        self.log.take_committed()
    }
}

#[cfg(test)]
mod tests;
