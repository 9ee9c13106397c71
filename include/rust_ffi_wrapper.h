/*
 * rust_ffi_wrapper.h -- the C ABI between the lab framework (C++) and the
 * rust_raft static library, both directions (../shared/abi.md).
 *
 * Written by hand: it is the contract. The exports below are also generated
 * from the Rust code into rust_raft.h; the C++ build includes both headers,
 * so a signature that drifts on either side fails to compile.
 *
 * Ownership in brief: command handles passed to start / set_local_append /
 * on_append_entries belong to the crate; handles returned by
 * raft_data_get_log, raft_marshallable_retain and raft_logs_get_instance
 * belong to the caller. Threading: the commo, event, coroutine and log-map
 * imports run on the server's reactor thread only.
 */
#ifndef RUST_FFI_WRAPPER_H
#define RUST_FFI_WRAPPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint64_t slotid_t;  /* log index */
typedef int64_t ballot_t;   /* term (signed) */
typedef uint16_t siteid_t;  /* server id */
typedef uint32_t parid_t;   /* partition id */
typedef int8_t bool_t;      /* RPC boolean */

typedef void* Frame_C;
typedef void* RaftCommo_C;
typedef void* Marshallable_C;
typedef void* RaftData_C;
typedef void* IntEvent_C;
typedef void* VoteQuorumEvent_C;
typedef void* RaftLogs_C;
typedef void* TxScheduler_C;
typedef void* AppNextFn_C;
typedef void* RpcProxies_C;
typedef void* Timer_C;

typedef void (*raft_callback_t)(void* ctx);
typedef void (*raft_coroutine_callback_t)(void* ctx);

/* ---- Exports: implemented by the crate ---------------------------------- */

void* rust_raft_server_new(Frame_C frame, RaftCommo_C commo, RaftLogs_C raft_logs,
                           TxScheduler_C tx_sched, AppNextFn_C app_next, bool is_test_mode);
void rust_raft_server_delete(void* srv);
void rust_raft_server_set_commo(void* srv, RaftCommo_C commo);
void rust_raft_server_setup(void* srv);
bool rust_raft_server_is_leader(void* srv);
void rust_raft_server_set_is_leader(void* srv, bool is_leader);
void rust_raft_server_get_state(void* srv, bool* is_leader, uint64_t* term);
void rust_raft_server_disconnect(void* srv, bool disconnect);
void rust_raft_server_reconnect(void* srv);
bool rust_raft_server_is_disconnected(void* srv);
bool rust_raft_server_start(void* srv, Marshallable_C cmd, uint64_t* index, uint64_t* term,
                            slotid_t slot_id, ballot_t ballot);
bool rust_raft_server_request_vote(void* srv);
void rust_raft_server_on_request_vote(void* srv, slotid_t lst_log_idx, ballot_t lst_log_term,
                                      siteid_t can_id, ballot_t can_term, ballot_t* reply_term,
                                      bool_t* vote_granted, raft_callback_t cb, void* cb_ctx);
void rust_raft_server_on_append_entries(
    void* srv, slotid_t slot_id, ballot_t ballot, uint64_t leaderCurrentTerm,
    uint64_t leaderPrevLogIndex, uint64_t leaderPrevLogTerm, uint64_t leaderCommitIndex,
    Marshallable_C cmd, uint64_t leaderNextLogTerm, uint64_t* followerAppendOK,
    uint64_t* followerCurrentTerm, uint64_t* followerLastLogIndex, raft_callback_t cb,
    void* cb_ctx);
void rust_raft_server_apply_logs(void* srv);
void rust_raft_server_set_local_append(void* srv, Marshallable_C cmd, uint64_t* term,
                                       uint64_t* index, slotid_t slot_id, ballot_t ballot);
void rust_raft_server_remove_cmd(void* srv, slotid_t slot);
RaftData_C rust_raft_server_get_raft_instance(void* srv, slotid_t id);

/* ---- Imports: implemented by the framework ------------------------------- */

IntEvent_C raft_commo_send_append_entries(
    RaftCommo_C commo, siteid_t site_id, parid_t par_id, slotid_t slot_id, ballot_t ballot,
    bool_t is_leader, uint64_t current_term, uint64_t prev_log_index, uint64_t prev_log_term,
    uint64_t commit_index, Marshallable_C cmd, uint64_t cmd_log_term, uint64_t* ret_status,
    uint64_t* ret_term, uint64_t* ret_last_log_index);
VoteQuorumEvent_C raft_commo_broadcast_vote(RaftCommo_C commo, parid_t par_id,
                                            slotid_t lst_log_idx, ballot_t lst_log_term,
                                            siteid_t self_id, ballot_t cur_term);
void raft_vote_quorum_event_wait(VoteQuorumEvent_C ev);
int raft_vote_quorum_event_yes(VoteQuorumEvent_C ev);
int raft_vote_quorum_event_no(VoteQuorumEvent_C ev);
ballot_t raft_vote_quorum_event_get_term(VoteQuorumEvent_C ev);
void raft_int_event_wait(IntEvent_C ev, uint64_t timeout_us);
int raft_int_event_get_status(IntEvent_C ev);

RpcProxies_C raft_commo_get_rpc_par_proxies(RaftCommo_C commo, parid_t par_id);
size_t raft_rpc_proxies_size(RpcProxies_C proxies);
void raft_rpc_proxies_get_site_ids(RpcProxies_C proxies, siteid_t* out, size_t n);
void raft_commo_clear_rpc_proxies(RaftCommo_C commo, parid_t par_id);
size_t raft_commo_get_rpc_proxy_count(RaftCommo_C commo, parid_t par_id);
void raft_commo_save_rpc_proxies(RaftCommo_C commo, parid_t par_id, uint32_t loc_id);
void raft_commo_restore_rpc_proxies(RaftCommo_C commo, parid_t par_id, uint32_t loc_id);
bool raft_commo_has_backup_proxies(parid_t par_id, uint32_t loc_id);
size_t raft_commo_get_backup_proxy_count(parid_t par_id, uint32_t loc_id);

void* raft_config_get_config(void);
int raft_config_get_partition_size(void* config, parid_t par_id);

void raft_coroutine_create_run(raft_coroutine_callback_t cb, void* ctx);
void raft_coroutine_sleep(uint64_t us);
Timer_C raft_timer_new(void);
void raft_timer_delete(Timer_C timer);
void raft_timer_start(Timer_C timer);
double raft_timer_elapsed(Timer_C timer);
uint64_t raft_time_now(void);
int raft_random_rand(int min, int max);
double raft_random_rand_double(double min, double max);

uint32_t raft_frame_get_locale_id(Frame_C frame);
siteid_t raft_frame_get_site_id(Frame_C frame);
parid_t raft_frame_get_partition_id(Frame_C frame);

RaftData_C raft_data_new(void);
ballot_t raft_data_get_term(RaftData_C data);
void raft_data_set_term(RaftData_C data, ballot_t term);
ballot_t raft_data_get_prev_term(RaftData_C data);
void raft_data_set_prev_term(RaftData_C data, ballot_t prev_term);
slotid_t raft_data_get_slot_id(RaftData_C data);
void raft_data_set_slot_id(RaftData_C data, slotid_t slot_id);
ballot_t raft_data_get_ballot(RaftData_C data);
void raft_data_set_ballot(RaftData_C data, ballot_t ballot);
Marshallable_C raft_data_get_log(RaftData_C data);
void raft_data_set_log(RaftData_C data, Marshallable_C cmd);
RaftData_C raft_logs_get_instance(RaftLogs_C logs, slotid_t slot);
void raft_logs_set_instance(RaftLogs_C logs, slotid_t slot, RaftData_C data);
void raft_logs_erase(RaftLogs_C logs, slotid_t slot);

Marshallable_C raft_marshallable_retain(Marshallable_C cmd);
void raft_marshallable_release(Marshallable_C cmd);
int raft_marshallable_get_kind(Marshallable_C cmd);
int raft_app_next_call(AppNextFn_C app_next, int index, Marshallable_C cmd);
void raft_tx_sched_destroy_tx(TxScheduler_C sched, uint64_t txn_id);

#ifdef __cplusplus
}
#endif

#endif /* RUST_FFI_WRAPPER_H */
