// A plausible student submission with one mistake, written here to test the
// grading tool; otherwise it is tests/submissions/instant_sleep.rs with
// heartbeats every 200 ms instead of 100 (which makes that one fail test 9
// under the real launch, README "The launch"), so that its own mistake shows.
// The mistake: the leader commits any entry stored on a majority, also one
// from an earlier term (Figure 8 of the paper shows why that is unsafe: such
// an entry can still be overwritten). Expected grade: fails test 11.

use crate::wrappers::*;
use rand::Rng;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

extern "C" fn trampoline(ctx: *mut c_void) {
    let f = unsafe { Box::from_raw(ctx as *mut Box<dyn FnOnce()>) };
    f();
}

fn spawn(f: impl FnOnce() + 'static) {
    let boxed: Box<Box<dyn FnOnce()>> = Box::new(Box::new(f));
    unsafe { crate::ffi::raft_coroutine_create_run(trampoline, Box::into_raw(boxed) as *mut c_void) }
}

const HEARTBEAT: Duration = Duration::from_millis(200);
const RPC_TIMEOUT_US: u64 = 100_000;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Role {
    Follower,
    Candidate,
    Leader,
}

struct Entry {
    term: u64,
    cmd: Command,
}

struct State {
    term: u64,
    voted_for: Option<siteid_t>,
    log: Vec<Entry>, // log[0] is a placeholder; the first entry has index 1
    commit: u64,
    applied: u64,
    role: Role,
    last_heard: Instant,
    timeout: Duration,
    next_index: HashMap<siteid_t, u64>,
    match_index: HashMap<siteid_t, u64>,
    commit_sent: HashMap<siteid_t, u64>,
    disconnected: bool,
    proxies_saved: bool,
}

impl State {
    fn last_index(&self) -> u64 {
        (self.log.len() - 1) as u64
    }
    fn last_term(&self) -> u64 {
        self.log.last().map(|e| e.term).unwrap_or(0)
    }
    fn new_timeout() -> Duration {
        Duration::from_millis(rand::thread_rng().gen_range(400..800))
    }
    fn become_follower(&mut self, term: u64) {
        if term > self.term {
            self.term = term;
            self.voted_for = None;
        }
        self.role = Role::Follower;
    }
}

struct App(AppCallback);
unsafe impl Sync for App {}

pub struct RaftServer {
    pub commo: Commo,
    pub stop: bool,
    pub looping: bool,
    pub site_id: siteid_t,
    loc_id: u32,
    par_id: parid_t,
    peers: Vec<siteid_t>,
    logs: LogStore,
    app: Arc<App>,
    state: Arc<Mutex<State>>,
    stopped: Arc<AtomicBool>,
}

impl RaftServer {
    pub fn new(
        frame: crate::ffi::Frame_C,
        commo: crate::ffi::RaftCommo_C,
        raft_logs: crate::ffi::RaftLogs_C,
        _tx_sched: crate::ffi::TxScheduler_C,
        app_next: crate::ffi::AppNextFn_C,
        _is_test_mode: bool,
    ) -> Self {
        let (loc_id, site_id, par_id) = unsafe {
            (
                crate::ffi::raft_frame_get_locale_id(frame),
                crate::ffi::raft_frame_get_site_id(frame),
                crate::ffi::raft_frame_get_partition_id(frame),
            )
        };
        let n = Config::get().partition_size(par_id) as siteid_t;
        let peers: Vec<siteid_t> = (0..n).filter(|&p| p != site_id).collect();
        let state = State {
            term: 0,
            voted_for: None,
            log: vec![Entry { term: 0, cmd: Command::null() }],
            commit: 0,
            applied: 0,
            role: Role::Follower,
            last_heard: Instant::now(),
            timeout: State::new_timeout(),
            next_index: HashMap::new(),
            match_index: HashMap::new(),
            commit_sent: HashMap::new(),
            disconnected: false,
            proxies_saved: false,
        };
        RaftServer {
            commo: Commo::from_raw(commo),
            stop: false,
            looping: false,
            site_id,
            loc_id,
            par_id,
            peers,
            logs: LogStore::from_raw(raft_logs),
            app: Arc::new(App(AppCallback::from_raw(app_next))),
            state: Arc::new(Mutex::new(state)),
            stopped: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn setup(&mut self, _handle: ServerHandle) {
        self.looping = true;
        let commo = Commo::from_raw(self.commo.as_raw());
        let state = self.state.clone();
        let stopped = self.stopped.clone();
        let app = self.app.clone();
        let (me, loc, par, peers) = (self.site_id, self.loc_id, self.par_id, self.peers.clone());
        spawn(move || election_loop(commo, state, stopped, app, me, loc, par, peers));
    }

    pub fn is_leader(&self) -> bool {
        self.state.lock().unwrap().role == Role::Leader
    }

    pub fn get_state(&self) -> (bool, u64) {
        let s = self.state.lock().unwrap();
        (s.role == Role::Leader, s.term)
    }

    pub fn set_is_leader(&mut self, _is_leader: bool) {}

    pub fn disconnect(&mut self, disconnect: bool) {
        self.state.lock().unwrap().disconnected = disconnect;
    }

    pub fn reconnect(&mut self) {
        let mut s = self.state.lock().unwrap();
        s.disconnected = false;
        s.last_heard = Instant::now();
    }

    pub fn is_disconnected(&self) -> bool {
        self.state.lock().unwrap().disconnected
    }

    pub fn start(&mut self, cmd: Command, index: &mut u64, term: &mut u64, _slot: slotid_t, _ballot: ballot_t) -> bool {
        let mut s = self.state.lock().unwrap();
        if s.role != Role::Leader {
            return false;
        }
        let t = s.term;
        s.log.push(Entry { term: t, cmd });
        *index = s.last_index();
        *term = t;
        true
    }

    pub fn request_vote(&mut self) -> bool {
        false
    }

    pub fn on_request_vote(&mut self, last_idx: slotid_t, last_term: ballot_t, cand: siteid_t, cand_term: ballot_t, reply: VoteReply) {
        let mut s = self.state.lock().unwrap();
        let cand_term = cand_term as u64;
        if s.disconnected {
            reply.set_term(cand_term as ballot_t);
            reply.set_vote_granted(false);
            return;
        }
        if cand_term > s.term {
            s.become_follower(cand_term);
        }
        let up_to_date = (last_term as u64, last_idx) >= (s.last_term(), s.last_index());
        let granted = cand_term == s.term && (s.voted_for.is_none() || s.voted_for == Some(cand)) && up_to_date;
        if granted {
            s.voted_for = Some(cand);
            s.last_heard = Instant::now();
        }
        reply.set_term(s.term as ballot_t);
        reply.set_vote_granted(granted);
    }

    #[allow(clippy::too_many_arguments)]
    pub fn on_append_entries(
        &mut self,
        _slot: slotid_t,
        _ballot: ballot_t,
        term: u64,
        prev_index: u64,
        prev_term: u64,
        leader_commit: u64,
        cmd: Command,
        cmd_term: u64,
        reply: AppendEntriesReply,
    ) {
        let mut s = self.state.lock().unwrap();
        if s.disconnected {
            reply.reject(0, 0);
            return;
        }
        if term < s.term {
            let (t, l) = (s.term, s.last_index());
            reply.reject(t, l);
            return;
        }
        s.become_follower(term);
        s.last_heard = Instant::now();
        if prev_index > s.last_index() {
            let (t, l) = (s.term, s.last_index());
            reply.reject(t, l);
            return;
        }
        if s.log[prev_index as usize].term != prev_term {
            // Back up over the whole conflicting term at once.
            let bad = s.log[prev_index as usize].term;
            let mut i = prev_index;
            while i > s.commit + 1 && s.log[(i - 1) as usize].term == bad {
                i -= 1;
            }
            let t = s.term;
            reply.reject(t, i - 1);
            return;
        }
        let mut last_new = prev_index;
        if !cmd.is_empty() {
            let idx = prev_index + 1;
            if idx <= s.last_index() && s.log[idx as usize].term != cmd_term {
                s.log.truncate(idx as usize);
            }
            if idx > s.last_index() {
                s.log.push(Entry { term: cmd_term, cmd });
            }
            last_new = idx;
        }
        if leader_commit > s.commit {
            s.commit = leader_commit.min(last_new);
        }
        let t = s.term;
        reply.accept(t, last_new);
    }

    pub fn apply_logs(&mut self) {}

    pub fn set_local_append(&mut self, _cmd: Command, term: &mut u64, index: &mut u64, _slot: slotid_t, _ballot: ballot_t) {
        let s = self.state.lock().unwrap();
        *term = s.term;
        *index = 0;
    }

    pub fn remove_cmd(&mut self, slot: slotid_t) {
        self.logs.erase(slot);
    }

    pub fn get_raft_instance(&self, id: slotid_t) -> crate::ffi::RaftData_C {
        self.logs.get(id).as_raw()
    }
}

impl Drop for RaftServer {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _ = (self.stop, self.looping);
    }
}

#[allow(clippy::too_many_arguments)]
fn election_loop(
    commo: Commo,
    state: Arc<Mutex<State>>,
    stopped: Arc<AtomicBool>,
    app: Arc<App>,
    me: siteid_t,
    loc: u32,
    par: parid_t,
    peers: Vec<siteid_t>,
) {
    loop {
        coroutine_sleep(10_000);
        if stopped.load(Ordering::SeqCst) {
            return;
        }
        // Move the proxies when the network flag changed.
        let change = {
            let s = state.lock().unwrap();
            (s.disconnected != s.proxies_saved).then_some(s.disconnected)
        };
        if let Some(down) = change {
            if down {
                commo.save_proxies(par, loc);
            } else if has_backup_proxies(par, loc) {
                commo.restore_proxies(par, loc);
            }
            state.lock().unwrap().proxies_saved = down;
        }
        // Apply what is committed.
        loop {
            let next = {
                let mut s = state.lock().unwrap();
                if s.applied < s.commit {
                    s.applied += 1;
                    Some((s.applied, s.log[s.applied as usize].cmd))
                } else {
                    None
                }
            };
            match next {
                Some((i, cmd)) => {
                    app.0.apply(i as i32, cmd);
                }
                None => break,
            }
        }
        // Time for an election?
        let campaign = {
            let mut s = state.lock().unwrap();
            if s.role != Role::Leader && !s.disconnected && s.last_heard.elapsed() > s.timeout {
                s.term += 1;
                s.role = Role::Candidate;
                s.voted_for = Some(me);
                s.last_heard = Instant::now();
                s.timeout = State::new_timeout();
                Some((s.term, s.last_index(), s.last_term()))
            } else {
                None
            }
        };
        let Some((term, last_idx, last_term)) = campaign else { continue };
        let votes = commo.broadcast_vote(par, last_idx, last_term as ballot_t, me, term as ballot_t);
        let began = Instant::now();
        let won = loop {
            coroutine_sleep(2_000);
            if votes.yes_count() > 0 {
                break true;
            }
            if votes.no_count() > 0 || began.elapsed() > Duration::from_millis(300) {
                break false;
            }
        };
        let mut s = state.lock().unwrap();
        if votes.term() as u64 > s.term {
            s.become_follower(votes.term() as u64);
        }
        if won && s.role == Role::Candidate && s.term == term {
            s.role = Role::Leader;
            let next = s.last_index() + 1;
            let peer_ids: Vec<siteid_t> = peers.clone();
            for p in peer_ids {
                s.next_index.insert(p, next);
                s.match_index.insert(p, 0);
                s.commit_sent.insert(p, 0);
            }
            let targets: Vec<siteid_t> = s.next_index.keys().copied().collect();
            drop(s);
            for p in targets {
                let (c, st, sp) = (Commo::from_raw(commo.as_raw()), state.clone(), stopped.clone());
                spawn(move || replicate(c, st, sp, me, par, p, term));
            }
        }
    }
}

fn replicate(commo: Commo, state: Arc<Mutex<State>>, stopped: Arc<AtomicBool>, me: siteid_t, par: parid_t, peer: siteid_t, term: u64) {
    let mut last_sent = Instant::now() - HEARTBEAT;
    let mut quiet_until = Instant::now(); // after a lost RPC, do not flood the peer
    // After a lost RPC, only empty AppendEntries until the peer answers: a
    // retried entry delivered late (after the test moved the partitions)
    // could land in a log it was meant to stay out of.
    let mut probing = true;
    loop {
        if stopped.load(Ordering::SeqCst) {
            return;
        }
        let request = {
            let s = state.lock().unwrap();
            if s.role != Role::Leader || s.term != term {
                return;
            }
            let next = s.next_index[&peer];
            let has_entry = next <= s.last_index() && !probing;
            let commit_news = s.commit > s.commit_sent[&peer] && s.match_index[&peer] >= s.commit;
            let paused = Instant::now() < quiet_until;
            if s.disconnected || (paused && last_sent.elapsed() < HEARTBEAT) || !(has_entry || commit_news || last_sent.elapsed() >= HEARTBEAT) {
                None
            } else {
                let prev = next - 1;
                let entry = if has_entry { Some((s.log[next as usize].cmd, s.log[next as usize].term)) } else { None };
                Some((prev, s.log[prev as usize].term, s.commit, entry))
            }
        };
        let Some((prev, prev_term, commit, entry)) = request else {
            coroutine_sleep(5_000);
            continue;
        };
        let (cmd, cmd_term) = entry.unwrap_or((Command::null(), 0));
        last_sent = Instant::now();
        let future = commo.send_append_entries(peer, par, 0, 0, true, term, prev, prev_term, commit, cmd, cmd_term);
        if let EventOutcome::Timeout = future.wait(RPC_TIMEOUT_US) {
            // A late reply may still be written into the future: keep it.
            std::mem::forget(future);
            std::thread::sleep(Duration::from_millis(2));
            probing = true;
            continue;
        }
        let (ok, reply_term, reply_last) = (future.reply_status(), future.reply_term(), future.reply_last_log_index());
        let mut s = state.lock().unwrap();
        if reply_term > s.term {
            s.become_follower(reply_term);
            s.last_heard = Instant::now();
            return;
        }
        if reply_term == 0 {
            quiet_until = Instant::now() + Duration::from_millis(50); // the peer is off the network
            probing = true;
            continue;
        }
        probing = false;
        if s.role != Role::Leader || s.term != term {
            continue;
        }
        if ok == 1 {
            let matched = prev + entry.is_some() as u64;
            if matched > s.match_index[&peer] {
                s.match_index.insert(peer, matched);
            }
            let next = s.match_index[&peer] + 1;
            s.next_index.insert(peer, next);
            let known = commit.min(matched);
            if known > s.commit_sent[&peer] {
                s.commit_sent.insert(peer, known);
            }
            // Commit what a majority holds, if it is from this term.
            let mut indexes: Vec<u64> = s.match_index.values().copied().collect();
            indexes.push(s.last_index());
            indexes.sort_unstable_by(|a, b| b.cmp(a));
            let n = indexes[indexes.len() / 2];
            if n > s.commit {
                s.commit = n;
            }
        } else {
            let next = s.next_index[&peer];
            s.next_index.insert(peer, (reply_last + 1).min(next - 1).max(1));
        }
        let _ = me;
    }
}
