// A submission that hands in the lab's skeleton as it comes: every TODO is
// still a TODO. Written here from ../shared/skeleton.md's description of
// the skeleton (its fields, helpers and method signatures), to test the
// grading tool and the install script. Expected grade: fails test 1 (no
// server ever becomes leader).

use crate::wrappers::*;
use log::info;
use std::collections::HashMap;
use std::ffi::c_void;
use std::time::Instant;

use rand::Rng;

/// A raw pointer that may cross into a coroutine.
pub struct SendPtr(pub *mut c_void);
unsafe impl Send for SendPtr {}

impl SendPtr {
    pub fn get(&self) -> *mut c_void {
        self.0
    }
}

const NO_ONE: siteid_t = siteid_t::MAX;
const HEARTBEAT_US: u64 = 100_000;

extern "C" fn run_boxed_closure(context: *mut c_void) {
    let closure = unsafe { Box::from_raw(context as *mut Box<dyn FnOnce() + Send>) };
    closure();
}

/// Runs `closure` as a new coroutine on the current reactor.
pub fn spawn_coroutine<F: FnOnce() + Send + 'static>(closure: F) {
    let boxed: Box<Box<dyn FnOnce() + Send>> = Box::new(Box::new(closure));
    unsafe { crate::ffi::raft_coroutine_create_run(run_boxed_closure, Box::into_raw(boxed) as *mut c_void) }
}

fn random_between(low: u64, high: u64) -> u64 {
    rand::thread_rng().gen_range(low..high)
}

fn micros_since_start() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

pub struct RaftServer {
    pub commo: Commo,
    pub logs: LogStore,
    pub app: AppCallback,
    pub loc_id: u32,
    pub site_id: siteid_t,
    pub partition_id: parid_t,
    pub stop: bool,
    pub looping: bool,
    pub disconnected: bool,
    pub current_term: u64,
    pub last_log_index: u64,
    pub commit_index: u64,
    pub is_leader: bool,
    pub voted_for: siteid_t,
    pub next_index: HashMap<siteid_t, u64>,
    pub last_heard: u64,
}

impl RaftServer {
    pub fn new(
        frame: crate::ffi::Frame_C,
        commo: crate::ffi::RaftCommo_C,
        raft_logs: crate::ffi::RaftLogs_C,
        _tx_sched: crate::ffi::TxScheduler_C,
        app_next: crate::ffi::AppNextFn_C,
        is_test_mode: bool,
    ) -> Self {
        let (loc_id, site_id, partition_id) = unsafe {
            (
                crate::ffi::raft_frame_get_locale_id(frame),
                crate::ffi::raft_frame_get_site_id(frame),
                crate::ffi::raft_frame_get_partition_id(frame),
            )
        };
        RaftServer {
            commo: Commo::from_raw(commo),
            logs: LogStore::from_raw(raft_logs),
            app: AppCallback::from_raw(app_next),
            loc_id,
            site_id,
            partition_id,
            stop: false,
            looping: false,
            disconnected: false,
            current_term: 0,
            last_log_index: 0,
            commit_index: 0,
            is_leader: !is_test_mode && loc_id == 0,
            voted_for: NO_ONE,
            next_index: HashMap::new(),
            last_heard: micros_since_start(),
        }
    }

    pub fn is_leader(&self) -> bool {
        self.is_leader
    }

    pub fn get_state(&self) -> (bool, u64) {
        (self.is_leader, self.current_term)
    }

    pub fn set_is_leader(&mut self, is_leader: bool) {
        self.is_leader = is_leader;
    }

    pub fn disconnect(&mut self, disconnect: bool) {
        self.disconnected = disconnect;
        info!("site {} disconnected={}", self.site_id, disconnect);
    }

    pub fn reconnect(&mut self) {
        self.disconnect(false);
        self.last_heard = micros_since_start();
    }

    pub fn is_disconnected(&self) -> bool {
        self.disconnected
    }

    pub fn setup(&mut self, _handle: ServerHandle) {
        // TODO: start the election timer and the heartbeat loop, e.g. with
        // spawn_coroutine, timing out after random_between(4, 7) heartbeats.
        let _ = (random_between(4 * HEARTBEAT_US, 7 * HEARTBEAT_US), self.voted_for, self.partition_id);
    }

    pub fn request_vote(&mut self) -> bool {
        // TODO: a new term, a vote for self, broadcast_vote, lead on a quorum.
        false
    }

    pub fn on_request_vote(
        &mut self,
        _lst_log_idx: slotid_t,
        _lst_log_term: ballot_t,
        _can_id: siteid_t,
        _can_term: ballot_t,
        reply: VoteReply,
    ) {
        // TODO: the term and log checks of Figure 2.
        reply.set_term(self.current_term as ballot_t);
        reply.set_vote_granted(false);
    }

    #[allow(clippy::too_many_arguments)]
    pub fn on_append_entries(
        &mut self,
        _slot_id: slotid_t,
        _ballot: ballot_t,
        _leader_current_term: u64,
        _leader_prev_log_index: u64,
        _leader_prev_log_term: u64,
        _leader_commit_index: u64,
        _cmd: Command,
        _leader_next_log_term: u64,
        reply: AppendEntriesReply,
    ) {
        // TODO: heartbeats, the consistency check, appending, committing.
        reply.reject(self.current_term, self.last_log_index);
    }

    pub fn start(&mut self, _cmd: Command, index: &mut u64, term: &mut u64, _slot_id: slotid_t, _ballot: ballot_t) -> bool {
        // TODO: append to the log when leading.
        *index = 0;
        *term = 0;
        false
    }

    pub fn set_local_append(&mut self, _cmd: Command, term: &mut u64, index: &mut u64, _slot_id: slotid_t, _ballot: ballot_t) {
        *index = self.last_log_index;
        *term = self.current_term;
    }

    pub fn apply_logs(&mut self) {
        // TODO: hand committed entries to self.app in order.
        let _ = (self.commit_index, &self.next_index, self.last_heard);
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
        self.stop = true;
        let _ = (&self.app, self.loc_id, self.looping);
    }
}
