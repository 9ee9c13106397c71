//! A deterministic simulator for the pure protocol core: N servers on a
//! virtual clock, a network that delays, drops, duplicates and reorders
//! messages and can be partitioned, clients proposing to whoever claims to
//! lead, and Raft's safety properties checked after every step. Everything
//! random comes from one seed, so a failing run replays exactly.

#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;

use rand::rngs::StdRng;
use rand::{Rng as _, RngCore, SeedableRng};

/// The protocol core, compiled into this test straight from its source (it
/// is a private module of the crate, as the lab's `lib.rs` declares
/// `mod server;`).
#[path = "../../src/server/protocol/mod.rs"]
pub mod protocol;

use protocol::{
    AppendOutcome, AppendRequest, AppendResponse, CoreConfig, ElectionRank, Entry, Index, Interval, Micros, NodeId,
    RaftCore, Role, SentAppend, Term, VoteRequest, VoteResponse,
};

pub const MS: Micros = 1_000;

/// A log as (term, command) pairs, index 1 first: what the checks compare.
pub type LogView = Vec<(Term, u64)>;

/// The simulator's generator: `rand`'s seedable StdRng, so a run replays
/// exactly from its seed (for the locked version of `rand`).
#[derive(Debug, Clone)]
pub struct Rng(StdRng);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(StdRng::seed_from_u64(seed))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            self.0.gen_range(lo..hi)
        }
    }
    /// True with probability `p` (0..=1).
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.0.gen_bool(p.min(1.0))
    }
}

/// How hostile the network is while faults are on.
#[derive(Debug, Clone)]
pub struct FaultMix {
    pub drop: f64,
    pub duplicate: f64,
    pub min_delay: Micros,
    pub max_delay: Micros,
    /// Chance per 100 ms of virtual time that the partition changes.
    pub repartition: f64,
    /// Chance per 100 ms that a client proposes.
    pub propose: f64,
    /// Keep each directed link FIFO (as the lab's network is).
    pub fifo: bool,
    /// Share of messages that straggle: delayed by up to 2 s more, so
    /// replies can outlive elections.
    pub straggle: f64,
    /// Chance per 100 ms that one server, or all of them at once, freeze
    /// (their process stops) for up to 6 s.
    pub freeze: f64,
}

impl FaultMix {
    pub fn calm() -> Self {
        FaultMix { drop: 0.0, duplicate: 0.0, min_delay: MS, max_delay: 3 * MS, repartition: 0.0, propose: 0.5, fifo: true, straggle: 0.0, freeze: 0.0 }
    }
    /// A mix drawn from the seed: from gentle to hostile.
    pub fn random(rng: &mut Rng) -> Self {
        let hostility = rng.range(0, 4);
        FaultMix {
            drop: [0.0, 0.02, 0.1, 0.25][hostility as usize],
            duplicate: [0.0, 0.02, 0.05, 0.1][rng.range(0, 4) as usize],
            min_delay: MS,
            max_delay: [3, 20, 60, 150][rng.range(0, 4) as usize] * MS,
            repartition: [0.0, 0.05, 0.15, 0.3][rng.range(0, 4) as usize],
            propose: [0.3, 0.6, 1.0][rng.range(0, 3) as usize],
            fifo: rng.chance(0.25),
            straggle: [0.0, 0.0, 0.01, 0.05][rng.range(0, 4) as usize],
            freeze: [0.0, 0.0, 0.01, 0.04][rng.range(0, 4) as usize],
        }
    }
}

#[derive(Debug, Clone)]
enum Payload {
    Vote(VoteRequest),
    VoteReply(VoteResponse),
    Append { rpc: u64, request: AppendRequest<u64>, sent: SentAppend },
    AppendReply { rpc: u64, reply: AppendResponse },
    /// The sender gives up on an AppendEntries (its RPC timeout).
    AppendTimeout { rpc: u64 },
}

#[derive(Debug, Clone)]
struct Message {
    from: NodeId,
    to: NodeId,
    payload: Payload,
}

/// Who can reach whom.
#[derive(Debug, Clone)]
pub struct Links {
    n: usize,
    blocked: Vec<bool>, // [from * n + to]
}

impl Links {
    fn new(n: usize) -> Self {
        Links { n, blocked: vec![false; n * n] }
    }
    pub fn can_send(&self, from: NodeId, to: NodeId) -> bool {
        !self.blocked[from as usize * self.n + to as usize]
    }
    pub fn heal(&mut self) {
        self.blocked.iter_mut().for_each(|b| *b = false);
    }
    pub fn cut(&mut self, from: NodeId, to: NodeId) {
        self.blocked[from as usize * self.n + to as usize] = true;
    }
    /// The lab's disconnect: nothing in, nothing out.
    pub fn isolate(&mut self, node: NodeId) {
        for other in 0..self.n as NodeId {
            if other != node {
                self.cut(node, other);
                self.cut(other, node);
            }
        }
    }
    pub fn rejoin(&mut self, node: NodeId) {
        for other in 0..self.n as NodeId {
            self.blocked[node as usize * self.n + other as usize] = false;
            self.blocked[other as usize * self.n + node as usize] = false;
        }
    }
    /// Splits the nodes into two groups that cannot talk.
    pub fn split(&mut self, group_a: &[NodeId]) {
        for a in 0..self.n as NodeId {
            for b in 0..self.n as NodeId {
                if group_a.contains(&a) != group_a.contains(&b) {
                    self.cut(a, b);
                }
            }
        }
    }
}

/// A violated property, with where it happened.
#[derive(Debug, Clone)]
pub struct Violation {
    pub property: &'static str,
    pub detail: String,
}

/// The simulated cluster.
pub struct Sim {
    pub seed: u64,
    pub now: Micros,
    pub nodes: Vec<RaftCore<u64>>,
    pub links: Links,
    pub faults: FaultMix,
    pub faults_on: bool,
    rng: Rng,
    queue: BinaryHeap<Reverse<(Micros, u64)>>,
    messages: HashMap<u64, Message>,
    /// Queued ticks: seq -> node.
    ticks: HashMap<u64, NodeId>,
    next_seq: u64,
    outstanding_rpcs: HashSet<u64>,
    /// Sender-side record of AppendEntries in flight: rpc -> (leader, peer, sent).
    rpc_meta: HashMap<u64, (NodeId, NodeId, SentAppend)>,
    next_command: u64,
    pub rpc_count: u64,
    /// AppendEntries a follower rejected (each is a round trip spent backing up).
    pub rejected_appends: u64,
    /// Latest delivery time per directed link, for FIFO links.
    link_clock: HashMap<(NodeId, NodeId), Micros>,
    /// Links whose messages are held back (in flight for as long as the
    /// scenario wants), and what they hold.
    held_links: HashSet<(NodeId, NodeId)>,
    held: Vec<Message>,
    /// A frozen node runs nothing before this time: its ticks, the messages
    /// it receives and its RPC timeouts wait, in order, and all fall due at
    /// once when it resumes (its timers first, the harshest order).
    frozen_until: Vec<Micros>,
    pub freezes: u64,
    // ----- what the checker remembers -----
    leaders_by_term: BTreeMap<Term, NodeId>,
    votes_by_term: Vec<BTreeMap<Term, NodeId>>,
    last_term: Vec<Term>,
    last_commit: Vec<Index>,
    leader_log_snapshot: Vec<Option<(Term, LogView)>>,
    /// index -> (entry term, command, term of the leader that committed it)
    committed: BTreeMap<Index, (Term, u64, Term)>,
    /// index -> command, as first applied by anyone
    applied: BTreeMap<Index, u64>,
    applied_count: Vec<Index>,
    /// Commands a leader accepted: command -> (leader, term, index).
    pub accepted: BTreeMap<u64, (NodeId, Term, Index)>,
    pub trace: VecDeque<String>,
    pub steps: u64,
    /// How long a sender waits for an AppendEntries reply before it reports
    /// the request lost to its core.
    pub rpc_timeout: Micros,
    /// How many events the trace keeps (RAFT_SIM_TRACE, default 40).
    pub trace_len: usize,
}

pub const TICK: Micros = 10 * MS;
/// Below the minimum election timeout, so a lost request never silences a
/// leader long enough to depose it.
pub const RPC_TIMEOUT: Micros = 100 * MS;
const TRACE_LEN: usize = 40;

pub fn sim_config(id: NodeId, n: usize, seed: u64) -> CoreConfig {
    CoreConfig {
        id,
        members: (0..n as NodeId).collect(),
        election_timeout: Interval::new(150 * MS, 300 * MS),
        heartbeat_interval: Interval::new(40 * MS, 50 * MS),
        unreachable_backoff: Interval::new(35 * MS, 50 * MS),
        max_in_flight: 4,
        // A node ticks every TICK while it runs.
        stall_threshold: 5 * TICK,
        // Half the seeds rank their servers' election timeouts as the lab
        // server does (ElectionRank::lab), half draw them plainly.
        election_rank: if seed % 2 == 1 { ElectionRank::lab(id, n) } else { ElectionRank::NONE },
        seed: seed.wrapping_mul(31).wrapping_add(id as u64),
    }
}

impl Sim {
    pub fn new(n: usize, seed: u64, faults: FaultMix) -> Self {
        let nodes = (0..n).map(|id| RaftCore::new(sim_config(id as NodeId, n, seed), 0)).collect();
        let mut sim = Sim {
            seed,
            now: 0,
            nodes,
            links: Links::new(n),
            faults,
            faults_on: true,
            rng: Rng::new(seed),
            queue: BinaryHeap::new(),
            messages: HashMap::new(),
            ticks: HashMap::new(),
            next_seq: 0,
            outstanding_rpcs: HashSet::new(),
            rpc_meta: HashMap::new(),
            next_command: 1,
            rpc_count: 0,
            rejected_appends: 0,
            link_clock: HashMap::new(),
            held_links: HashSet::new(),
            held: Vec::new(),
            frozen_until: vec![0; n],
            freezes: 0,
            leaders_by_term: BTreeMap::new(),
            votes_by_term: vec![BTreeMap::new(); n],
            last_term: vec![0; n],
            last_commit: vec![0; n],
            leader_log_snapshot: vec![None; n],
            committed: BTreeMap::new(),
            applied: BTreeMap::new(),
            applied_count: vec![0; n],
            accepted: BTreeMap::new(),
            trace: VecDeque::new(),
            steps: 0,
            rpc_timeout: RPC_TIMEOUT,
            trace_len: std::env::var("RAFT_SIM_TRACE").ok().and_then(|v| v.parse().ok()).unwrap_or(TRACE_LEN),
        };
        // Ticks are messages a node sends itself.
        for id in 0..n as NodeId {
            let at = sim.rng.range(0, TICK);
            sim.schedule_tick(id, at);
        }
        sim
    }

    fn note(&mut self, line: String) {
        if self.trace.len() >= self.trace_len {
            self.trace.pop_front();
        }
        self.trace.push_back(format!("{:>9.3}ms {line}", self.now as f64 / 1e3));
    }

    fn push(&mut self, at: Micros, message: Option<Message>) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push(Reverse((at, seq)));
        if let Some(m) = message {
            self.messages.insert(seq, m);
        }
        seq
    }

    fn schedule_tick(&mut self, id: NodeId, at: Micros) {
        // A tick is a message from a node to itself with no payload entry.
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push(Reverse((at, seq)));
        self.ticks.insert(seq, id);
    }

    /// Sends over the network, subject to links and faults.
    fn send(&mut self, from: NodeId, to: NodeId, payload: Payload) {
        if matches!(payload, Payload::Vote(_) | Payload::Append { .. }) {
            self.rpc_count += 1;
        }
        if !self.links.can_send(from, to) {
            return;
        }
        if self.held_links.contains(&(from, to)) {
            self.held.push(Message { from, to, payload });
            return;
        }
        let (drop, dup, lo, hi, fifo, straggle) = if self.faults_on {
            let f = &self.faults;
            (f.drop, f.duplicate, f.min_delay, f.max_delay, f.fifo, f.straggle)
        } else {
            (0.0, 0.0, MS, 3 * MS, true, 0.0)
        };
        if self.rng.chance(drop) {
            return;
        }
        let copies = if self.rng.chance(dup) { 2 } else { 1 };
        for _ in 0..copies {
            let mut at = self.now + self.rng.range(lo, hi);
            if self.rng.chance(straggle) {
                at += self.rng.range(0, 2_000 * MS);
            }
            if fifo {
                let clock = self.link_clock.entry((from, to)).or_insert(0);
                at = at.max(*clock);
                *clock = at;
            }
            self.push(at, Some(Message { from, to, payload: payload.clone() }));
        }
    }

    pub fn propose_to(&mut self, id: NodeId) -> Option<(u64, Index, Term)> {
        let command = self.next_command;
        self.next_command += 1;
        let (index, term) = self.nodes[id as usize].propose(command)?;
        self.accepted.insert(command, (id, term, index));
        self.note(format!("n{id} accepts command {command} at index {index} term {term}"));
        Some((command, index, term))
    }

    /// Holds back every message sent on from -> to from now on.
    pub fn hold(&mut self, from: NodeId, to: NodeId) {
        self.held_links.insert((from, to));
    }

    /// Delivers what from -> to held back (1 ms from now), and stops holding.
    pub fn release(&mut self, from: NodeId, to: NodeId) {
        self.held_links.remove(&(from, to));
        let (release, keep): (Vec<Message>, Vec<Message>) =
            std::mem::take(&mut self.held).into_iter().partition(|m| m.from == from && m.to == to);
        self.held = keep;
        self.note(format!("release {} held messages n{from} -> n{to}", release.len()));
        for m in release {
            self.push(self.now + MS, Some(m));
        }
    }

    /// Stops node `id` (its whole process) for `for_us` of virtual time.
    pub fn freeze(&mut self, id: NodeId, for_us: Micros) {
        let until = self.now + for_us;
        let frozen = &mut self.frozen_until[id as usize];
        *frozen = (*frozen).max(until);
        self.freezes += 1;
        self.note(format!("freeze n{id} for {} ms", for_us / MS));
    }

    fn is_frozen(&self, id: NodeId) -> bool {
        self.now < self.frozen_until[id as usize]
    }

    /// Makes `id` start an election now, as if its timer fired.
    pub fn campaign(&mut self, id: NodeId) {
        let request = self.nodes[id as usize].campaign(self.now);
        self.note(format!("n{id} campaigns for term {}", request.term));
        for peer in self.peer_ids(id) {
            self.send(id, peer, Payload::Vote(request));
        }
    }

    /// The leader with the highest term, if any claims to lead.
    pub fn leader(&self) -> Option<NodeId> {
        self.nodes.iter().filter(|n| n.is_leader()).max_by_key(|n| n.term()).map(|n| n.id())
    }

    /// Lets a node act on the time: its election timer, and as leader, what
    /// to send each follower.
    fn tick_node(&mut self, id: NodeId) {
        let now = self.now;
        if let Some(request) = self.nodes[id as usize].tick(now) {
            self.note(format!("n{id} starts election for term {}", request.term));
            for peer in self.peer_ids(id) {
                self.send(id, peer, Payload::Vote(request));
            }
        }
        self.pump_appends(id);
        self.schedule_tick(id, now + TICK);
    }

    fn peer_ids(&self, id: NodeId) -> Vec<NodeId> {
        (0..self.nodes.len() as NodeId).filter(|&p| p != id).collect()
    }

    fn pump_appends(&mut self, id: NodeId) {
        for peer in self.peer_ids(id) {
            while let Some(out) = self.nodes[id as usize].next_append(self.now, peer) {
                let rpc = self.push(self.now + self.rpc_timeout, None);
                self.messages.insert(rpc, Message { from: id, to: id, payload: Payload::AppendTimeout { rpc } });
                self.outstanding_rpcs.insert(rpc);
                self.rpc_meta.insert(rpc, (id, peer, out.sent));
                self.send(id, peer, Payload::Append { rpc, request: out.request, sent: out.sent });
            }
        }
    }

    /// Runs one event (a message delivery, a timeout or a tick), then checks
    /// every property. Returns false if nothing is left to run.
    pub fn step(&mut self) -> Result<bool, Violation> {
        let Some(Reverse((at, seq))) = self.queue.pop() else { return Ok(false) };
        self.now = self.now.max(at);
        // What happens to a frozen node waits until it resumes.
        let target = match self.ticks.get(&seq) {
            Some(&id) => Some((id, true)),
            None => self.messages.get(&seq).map(|m| (m.to, false)),
        };
        if let Some((id, is_tick)) = target {
            if self.is_frozen(id) {
                let resume = self.frozen_until[id as usize] + if is_tick { 0 } else { 1 };
                if is_tick {
                    self.ticks.remove(&seq);
                    self.schedule_tick(id, resume);
                } else {
                    let message = self.messages.remove(&seq).expect("looked up above");
                    self.push(resume, Some(message));
                }
                return Ok(true);
            }
        }
        self.steps += 1;
        let touched = if let Some(id) = self.ticks.remove(&seq) {
            self.maybe_fault();
            self.tick_node(id);
            id
        } else {
            let message = self.messages.remove(&seq).expect("every queued seq is a tick or a message");
            self.deliver(message)
        };
        self.apply(touched)?;
        self.check(touched)?;
        Ok(true)
    }

    fn deliver(&mut self, m: Message) -> NodeId {
        let now = self.now;
        match m.payload {
            Payload::Vote(request) => {
                let reply = self.nodes[m.to as usize].handle_request_vote(now, &request);
                self.send(m.to, m.from, Payload::VoteReply(reply));
                m.to
            }
            Payload::VoteReply(reply) => {
                let was_leader = self.nodes[m.to as usize].is_leader();
                self.nodes[m.to as usize].handle_vote_response(now, m.from, reply);
                if !was_leader && self.nodes[m.to as usize].is_leader() {
                    let term = self.nodes[m.to as usize].term();
                    self.note(format!("n{} becomes leader of term {term}", m.to));
                    self.pump_appends(m.to);
                }
                m.to
            }
            Payload::Append { rpc, request, .. } => {
                let summary = format!(
                    "n{} -> n{} append t{} prev ({}, t{}) {} commit {}",
                    m.from,
                    m.to,
                    request.term,
                    request.prev_log_index,
                    request.prev_log_term,
                    request.entry.as_ref().map_or("heartbeat".to_string(), |e| format!("entry t{} c{}", e.term, e.command)),
                    request.leader_commit
                );
                let reply = self.nodes[m.to as usize].handle_append_entries(now, request);
                self.rejected_appends += u64::from(!reply.success);
                self.note(format!("{summary} => {}", if reply.success { "ok" } else { "rejected" }));
                self.send(m.to, m.from, Payload::AppendReply { rpc, reply });
                m.to
            }
            Payload::AppendReply { rpc, reply } => self.conclude_rpc(rpc, AppendOutcome::Replied(reply)).unwrap_or(m.to),
            Payload::AppendTimeout { rpc } => self.conclude_rpc(rpc, AppendOutcome::Lost).unwrap_or(m.to),
        }
    }

    /// Gives an AppendEntries its outcome, once: the first of its reply and
    /// its timeout. Returns the leader that sent it, if it was still pending.
    fn conclude_rpc(&mut self, rpc: u64, outcome: AppendOutcome) -> Option<NodeId> {
        if !self.outstanding_rpcs.remove(&rpc) {
            return None;
        }
        let (leader, peer, sent) = self.rpc_meta.remove(&rpc).expect("meta of an outstanding rpc");
        self.nodes[leader as usize].handle_append_response(self.now, peer, sent, outcome);
        self.pump_appends(leader);
        Some(leader)
    }

    /// Partitions change and clients propose, when faults are on.
    fn maybe_fault(&mut self) {
        // Roughly per 100 ms of virtual time: ticks come every 10 ms per node.
        let per_tick = 1.0 / (10.0 * self.nodes.len() as f64);
        if self.faults_on && self.rng.chance(self.faults.repartition * per_tick) {
            let n = self.nodes.len() as NodeId;
            self.links.heal();
            match self.rng.range(0, 5) {
                0 => {}
                1 => {
                    let node = self.rng.range(0, n as u64) as NodeId;
                    self.links.isolate(node);
                    self.note(format!("isolate n{node}"));
                }
                2 => {
                    let size = self.rng.range(1, n as u64 / 2 + 1);
                    let group: Vec<NodeId> = (0..size).map(|_| self.rng.range(0, n as u64) as NodeId).collect();
                    self.links.split(&group);
                    self.note(format!("split {group:?} from the rest"));
                }
                3 => {
                    let (a, b) = (self.rng.range(0, n as u64) as NodeId, self.rng.range(0, n as u64) as NodeId);
                    if a != b {
                        self.links.cut(a, b);
                        self.note(format!("one-way cut n{a} -> n{b}"));
                    }
                }
                _ => {
                    // Isolate the current leader, the lab's favourite.
                    if let Some(leader) = self.leader() {
                        self.links.isolate(leader);
                        self.note(format!("isolate leader n{leader}"));
                    }
                }
            }
        }
        if self.faults_on && self.rng.chance(self.faults.freeze * per_tick) {
            let for_us = self.rng.range(50 * MS, 6_000 * MS);
            if self.rng.chance(0.5) {
                for id in 0..self.nodes.len() as NodeId {
                    self.freeze(id, for_us);
                }
            } else {
                let id = self.rng.range(0, self.nodes.len() as u64) as NodeId;
                self.freeze(id, for_us);
            }
        }
        if self.rng.chance(self.faults.propose * per_tick) {
            let claimants: Vec<NodeId> = self.nodes.iter().filter(|n| n.is_leader()).map(|n| n.id()).collect();
            if !claimants.is_empty() {
                let pick = claimants[self.rng.range(0, claimants.len() as u64) as usize];
                self.propose_to(pick);
            }
        }
    }

    /// Hands node `id`'s newly committed entries to its state machine and
    /// checks State Machine Safety: each index once, in order, and the same
    /// command at an index on every server.
    fn apply(&mut self, id: NodeId) -> Result<(), Violation> {
        for (index, command) in self.nodes[id as usize].take_committed() {
            let expected = self.applied_count[id as usize] + 1;
            if index != expected {
                return Err(violation("State Machine Safety", format!("n{id} applied index {index}, expected {expected}")));
            }
            self.applied_count[id as usize] = index;
            match self.applied.get(&index) {
                Some(&other) if other != command => {
                    return Err(violation(
                        "State Machine Safety",
                        format!("n{id} applied command {command} at index {index}, another server applied {other}"),
                    ));
                }
                Some(_) => {}
                None => {
                    self.applied.insert(index, command);
                }
            }
        }
        Ok(())
    }

    /// Stops faults and heals the network. Calls still pending fail within
    /// the normal RPC timeout, as over connections that were reset: the core
    /// needs outcomes within an election timeout to make progress.
    pub fn heal(&mut self) {
        self.faults_on = false;
        self.links.heal();
        self.rpc_timeout = self.rpc_timeout.min(RPC_TIMEOUT);
        // New connections: nothing queues behind a straggler of the old
        // ones (which still arrive, late, whenever they were due).
        self.link_clock.clear();
        let pending: Vec<u64> = self.outstanding_rpcs.iter().copied().collect();
        for rpc in pending {
            let at = self.now + self.rpc_timeout;
            let seq = self.push(at, None);
            self.messages.insert(seq, Message { from: 0, to: 0, payload: Payload::AppendTimeout { rpc } });
        }
        self.note("faults off, network healed".into());
    }

    /// Runs until virtual time `until`.
    pub fn run_until(&mut self, until: Micros) -> Result<(), Violation> {
        while let Some(Reverse((at, _))) = self.queue.peek() {
            if *at > until {
                break;
            }
            self.step()?;
        }
        self.now = self.now.max(until);
        Ok(())
    }

    /// Runs until `done` holds or `deadline` passes; true if it held.
    pub fn run_until_cond(&mut self, deadline: Micros, mut done: impl FnMut(&Sim) -> bool) -> Result<bool, Violation> {
        while !done(self) {
            match self.queue.peek() {
                Some(Reverse((at, _))) if *at <= deadline => {
                    self.step()?;
                }
                _ => return Ok(done(self)),
            }
        }
        Ok(true)
    }

    pub fn report(&self, violation: &Violation) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "seed {} ({} nodes): {} violated after {} steps at {:.3} ms: {}",
            self.seed,
            self.nodes.len(),
            violation.property,
            self.steps,
            self.now as f64 / 1e3,
            violation.detail
        );
        let _ = writeln!(out, "replay: RAFT_SIM_SEED={} cargo test --release --test simulation", self.seed);
        let _ = writeln!(out, "last events:");
        for line in &self.trace {
            let _ = writeln!(out, "  {line}");
        }
        for n in &self.nodes {
            let terms: Vec<Term> = n.log().entries().iter().map(|e| e.term).collect();
            let _ = writeln!(
                out,
                "  n{}: {:?} term {} commit {} log terms {:?}",
                n.id(),
                n.role(),
                n.term(),
                n.commit_index(),
                terms
            );
        }
        out
    }
}

fn violation(property: &'static str, detail: String) -> Violation {
    Violation { property, detail }
}

fn log_of(node: &RaftCore<u64>) -> LogView {
    node.log().entries().iter().map(|e: &Entry<u64>| (e.term, e.command)).collect()
}

impl Sim {
    /// Every property, after a step that touched node `id`. Properties over
    /// all servers are checked against the touched one (only its state
    /// changed).
    fn check(&mut self, id: NodeId) -> Result<(), Violation> {
        let i = id as usize;
        let node = &self.nodes[i];
        let term = node.term();
        let commit = node.commit_index();
        let last = node.last_index();
        let applied = node.log().applied_index();

        // Current term and commit index never decrease.
        if term < self.last_term[i] {
            return Err(violation("monotonic term", format!("n{id} term went from {} to {term}", self.last_term[i])));
        }
        if commit < self.last_commit[i] {
            return Err(violation("monotonic commit", format!("n{id} commit went from {} to {commit}", self.last_commit[i])));
        }
        self.last_term[i] = term;
        self.last_commit[i] = commit;

        // applied <= commit <= last index.
        if !(applied <= commit && commit <= last) {
            return Err(violation("log cursors", format!("n{id} applied {applied} commit {commit} last {last}")));
        }

        // At most one vote granted per term.
        if let Some(voted) = node.voted_for() {
            match self.votes_by_term[i].get(&term) {
                Some(&earlier) if earlier != voted => {
                    return Err(violation("one vote per term", format!("n{id} voted for n{earlier} and n{voted} in term {term}")));
                }
                _ => {
                    self.votes_by_term[i].insert(term, voted);
                }
            }
        }

        let log = log_of(node);
        if node.role() == Role::Leader {
            // Election Safety: at most one leader per term, over all history.
            match self.leaders_by_term.get(&term) {
                Some(&other) if other != id => {
                    return Err(violation("Election Safety", format!("n{other} and n{id} both led term {term}")));
                }
                _ => {
                    self.leaders_by_term.insert(term, id);
                }
            }
            // Leader Append-Only: a leader never overwrites or deletes entries.
            if let Some((snap_term, snapshot)) = &self.leader_log_snapshot[i] {
                if *snap_term == term && (log.len() < snapshot.len() || log[..snapshot.len()] != snapshot[..]) {
                    return Err(violation("Leader Append-Only", format!("n{id} changed its log while leading term {term}")));
                }
            }
            // Leader Completeness: entries committed in earlier terms are here.
            for (&index, &(entry_term, command, commit_term)) in &self.committed {
                if commit_term < term && log.get(index as usize - 1) != Some(&(entry_term, command)) {
                    return Err(violation(
                        "Leader Completeness",
                        format!("leader n{id} of term {term} lacks index {index} (t{entry_term} c{command}) committed in term {commit_term}"),
                    ));
                }
            }
            self.leader_log_snapshot[i] = Some((term, log.clone()));
        } else {
            self.leader_log_snapshot[i] = None;
        }

        // Record newly committed entries, and check they agree with what
        // was committed before.
        for index in 1..=commit {
            let (entry_term, command) = log[index as usize - 1];
            match self.committed.get(&index) {
                Some(&(t, c, _)) if (t, c) != (entry_term, command) => {
                    return Err(violation(
                        "committed entries agree",
                        format!("n{id} committed (t{entry_term} c{command}) at {index}, earlier (t{t} c{c})"),
                    ));
                }
                Some(_) => {}
                None => {
                    self.committed.insert(index, (entry_term, command, term));
                }
            }
        }

        // Log Matching: if two logs hold an entry with the same index and
        // term, they are identical up to it. The highest such index decides.
        for (j, other) in self.nodes.iter().enumerate() {
            if j == i {
                continue;
            }
            let other_log = log_of(other);
            let common = log.len().min(other_log.len());
            if let Some(k) = (0..common).rev().find(|&k| log[k].0 == other_log[k].0) {
                if log[..=k] != other_log[..=k] {
                    return Err(violation(
                        "Log Matching",
                        format!("n{id} and n{j} agree on the term at index {} but differ before it", k + 1),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Liveness: with faults off, a stable leader within `within`; then
    /// `proposals` new commands to it, all applied on every server within
    /// `within` if that leader survives. A leader that is deposed (a late
    /// message of the faulty phase can still start an election) gives way to
    /// another attempt, up to three.
    pub fn check_liveness(&mut self, within: Micros, proposals: usize) -> Result<(), Violation> {
        self.heal();
        for _attempt in 0..3 {
            let deadline = self.now + within;
            let stable = |s: &Sim| s.leader().is_some_and(|l| s.is_stable_leader(l));
            if !self.run_until_cond(deadline, stable)? {
                return Err(violation("liveness", format!("no stable leader within {} ms of healing", within / MS)));
            }
            let leader = self.leader().expect("a leader was found");
            let term = self.nodes[leader as usize].term();
            let mut wanted = Vec::new();
            for _ in 0..proposals {
                if let Some((command, index, _)) = self.propose_to(leader) {
                    wanted.push((command, index));
                }
            }
            let target = wanted.iter().map(|&(_, index)| index).max().unwrap_or(0);
            let deadline = self.now + within;
            let done = |s: &Sim| s.applied_count.iter().all(|&a| a >= target);
            let all_applied = self.run_until_cond(deadline, done)?;
            let survived = self.nodes[leader as usize].is_leader() && self.nodes[leader as usize].term() == term;
            if !survived {
                self.note(format!("leader n{leader} of term {term} was deposed during the liveness phase"));
                continue;
            }
            if !all_applied {
                return Err(violation(
                    "liveness",
                    format!("index {target} not applied everywhere within {} ms: applied {:?}", within / MS, self.applied_count),
                ));
            }
            for (command, index) in wanted {
                if self.applied.get(&index) != Some(&command) {
                    return Err(violation("liveness", format!("command {command} accepted at {index} by surviving leader n{leader} was not applied")));
                }
            }
            return Ok(());
        }
        Err(violation("liveness", "the leader was deposed three times after healing".into()))
    }

    /// The leader every server follows, if there is one.
    pub fn stable_leader(&self) -> Option<NodeId> {
        self.leader().filter(|&l| self.is_stable_leader(l))
    }

    /// A leader whose term every server has reached, the others following it.
    fn is_stable_leader(&self, leader: NodeId) -> bool {
        let term = self.nodes[leader as usize].term();
        self.nodes.iter().all(|n| n.term() == term && (n.id() == leader || n.role() == Role::Follower))
    }

    pub fn applied_count(&self, id: NodeId) -> Index {
        self.applied_count[id as usize]
    }
}
