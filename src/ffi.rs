//! Raw declarations of the C ABI (../shared/abi.md): the C type names and
//! every function the lab framework provides. Nothing outside this list
//! exists in the real framework, so nothing else may be declared here.
//!
//! Only `wrappers.rs` calls these; every call there carries a SAFETY comment.
#![allow(non_camel_case_types)]

use std::ffi::c_void;

/// A log index.
pub type slotid_t = u64;
/// A term as the framework spells it (signed).
pub type ballot_t = i64;
/// A server (site) id.
pub type siteid_t = u16;
/// A partition id.
pub type parid_t = u32;
/// The RPC boolean.
pub type bool_t = i8;

pub type Frame_C = *mut c_void;
pub type RaftCommo_C = *mut c_void;
pub type Marshallable_C = *mut c_void;
pub type RaftData_C = *mut c_void;
pub type IntEvent_C = *mut c_void;
pub type VoteQuorumEvent_C = *mut c_void;
pub type RaftLogs_C = *mut c_void;
pub type TxScheduler_C = *mut c_void;
pub type AppNextFn_C = *mut c_void;
pub type RpcProxies_C = *mut c_void;
pub type Timer_C = *mut c_void;

pub type raft_callback_t = Option<unsafe extern "C" fn(ctx: *mut c_void)>;
pub type raft_coroutine_callback_t = Option<unsafe extern "C" fn(ctx: *mut c_void)>;

/// `raft_int_event_get_status` value of an event whose wait timed out.
pub const EVENT_STATUS_TIMEOUT: i32 = 4;

extern "C" {
    // --- commo: RPCs -----------------------------------------------------
    pub fn raft_commo_send_append_entries(
        commo: RaftCommo_C,
        site_id: siteid_t,
        par_id: parid_t,
        slot_id: slotid_t,
        ballot: ballot_t,
        is_leader: bool_t,
        current_term: u64,
        prev_log_index: u64,
        prev_log_term: u64,
        commit_index: u64,
        cmd: Marshallable_C,
        cmd_log_term: u64,
        ret_status: *mut u64,
        ret_term: *mut u64,
        ret_last_log_index: *mut u64,
    ) -> IntEvent_C;
    pub fn raft_commo_broadcast_vote(
        commo: RaftCommo_C,
        par_id: parid_t,
        lst_log_idx: slotid_t,
        lst_log_term: ballot_t,
        self_id: siteid_t,
        cur_term: ballot_t,
    ) -> VoteQuorumEvent_C;

    // --- events ------------------------------------------------------------
    pub fn raft_vote_quorum_event_wait(ev: VoteQuorumEvent_C);
    pub fn raft_vote_quorum_event_yes(ev: VoteQuorumEvent_C) -> i32;
    pub fn raft_vote_quorum_event_no(ev: VoteQuorumEvent_C) -> i32;
    pub fn raft_vote_quorum_event_get_term(ev: VoteQuorumEvent_C) -> ballot_t;
    pub fn raft_int_event_wait(ev: IntEvent_C, timeout_us: u64);
    pub fn raft_int_event_get_status(ev: IntEvent_C) -> i32;

    // --- commo: proxies ----------------------------------------------------
    pub fn raft_commo_get_rpc_par_proxies(commo: RaftCommo_C, par_id: parid_t) -> RpcProxies_C;
    pub fn raft_rpc_proxies_size(proxies: RpcProxies_C) -> usize;
    pub fn raft_rpc_proxies_get_site_ids(proxies: RpcProxies_C, out: *mut siteid_t, n: usize);
    pub fn raft_commo_clear_rpc_proxies(commo: RaftCommo_C, par_id: parid_t);
    pub fn raft_commo_get_rpc_proxy_count(commo: RaftCommo_C, par_id: parid_t) -> usize;
    pub fn raft_commo_save_rpc_proxies(commo: RaftCommo_C, par_id: parid_t, loc_id: u32);
    pub fn raft_commo_restore_rpc_proxies(commo: RaftCommo_C, par_id: parid_t, loc_id: u32);
    pub fn raft_commo_has_backup_proxies(par_id: parid_t, loc_id: u32) -> bool;
    pub fn raft_commo_get_backup_proxy_count(par_id: parid_t, loc_id: u32) -> usize;

    // --- config --------------------------------------------------------------
    pub fn raft_config_get_config() -> *mut c_void;
    pub fn raft_config_get_partition_size(config: *mut c_void, par_id: parid_t) -> i32;

    // --- fibers and clocks ----------------------------------------------------
    pub fn raft_coroutine_create_run(cb: raft_coroutine_callback_t, ctx: *mut c_void);
    pub fn raft_coroutine_sleep(us: u64);
    pub fn raft_timer_new() -> Timer_C;
    pub fn raft_timer_delete(timer: Timer_C);
    pub fn raft_timer_start(timer: Timer_C);
    pub fn raft_timer_elapsed(timer: Timer_C) -> f64;
    pub fn raft_time_now() -> u64;
    pub fn raft_random_rand(min: i32, max: i32) -> i32;
    pub fn raft_random_rand_double(min: f64, max: f64) -> f64;

    // --- identity --------------------------------------------------------------
    pub fn raft_frame_get_locale_id(frame: Frame_C) -> u32;
    pub fn raft_frame_get_site_id(frame: Frame_C) -> siteid_t;
    pub fn raft_frame_get_partition_id(frame: Frame_C) -> parid_t;

    // --- RaftData and the C++ log map ---------------------------------------------
    pub fn raft_data_new() -> RaftData_C;
    pub fn raft_data_get_term(data: RaftData_C) -> u64;
    pub fn raft_data_set_term(data: RaftData_C, term: u64);
    pub fn raft_data_get_prev_term(data: RaftData_C) -> u64;
    pub fn raft_data_set_prev_term(data: RaftData_C, prev_term: u64);
    pub fn raft_data_get_slot_id(data: RaftData_C) -> slotid_t;
    pub fn raft_data_set_slot_id(data: RaftData_C, slot_id: slotid_t);
    pub fn raft_data_get_ballot(data: RaftData_C) -> ballot_t;
    pub fn raft_data_set_ballot(data: RaftData_C, ballot: ballot_t);
    pub fn raft_data_get_log(data: RaftData_C) -> Marshallable_C;
    pub fn raft_data_set_log(data: RaftData_C, cmd: Marshallable_C);
    pub fn raft_logs_get_instance(logs: RaftLogs_C, slot: slotid_t) -> RaftData_C;
    pub fn raft_logs_set_instance(logs: RaftLogs_C, slot: slotid_t, data: RaftData_C);
    pub fn raft_logs_erase(logs: RaftLogs_C, slot: slotid_t);

    // --- commands and the state machine -----------------------------------------
    pub fn raft_marshallable_retain(cmd: Marshallable_C) -> Marshallable_C;
    pub fn raft_marshallable_release(cmd: Marshallable_C);
    pub fn raft_marshallable_get_kind(cmd: Marshallable_C) -> i32;
    pub fn raft_app_next_call(app_next: AppNextFn_C, index: i32, cmd: Marshallable_C) -> i32;
    pub fn raft_tx_sched_destroy_tx(sched: TxScheduler_C, txn_id: u64);
}
