// The 18 exports of a Raft that never becomes leader: linked into
// labtest_never_leader to show the suite fails where it must (the
// placeholder server of the testbed issue).
#include "rust_ffi_wrapper.h"

extern "C" {
static int g_dummy_server;
void* rust_raft_server_new(Frame_C, RaftCommo_C, RaftLogs_C, TxScheduler_C, AppNextFn_C, bool) { return &g_dummy_server; }
void rust_raft_server_delete(void*) {}
void rust_raft_server_set_commo(void*, RaftCommo_C) {}
void rust_raft_server_setup(void*) {}
bool rust_raft_server_is_leader(void*) { return false; }
void rust_raft_server_set_is_leader(void*, bool) {}
void rust_raft_server_get_state(void*, bool* is_leader, uint64_t* term) {
  if (is_leader) *is_leader = false;
  if (term) *term = 0;
}
void rust_raft_server_disconnect(void*, bool) {}
void rust_raft_server_reconnect(void*) {}
bool rust_raft_server_is_disconnected(void*) { return false; }
bool rust_raft_server_start(void*, Marshallable_C cmd, uint64_t*, uint64_t*, slotid_t, ballot_t) {
  raft_marshallable_release(cmd);
  return false;
}
bool rust_raft_server_request_vote(void*) { return false; }
void rust_raft_server_on_request_vote(void*, slotid_t, ballot_t, siteid_t, ballot_t can_term, ballot_t* reply_term,
                                      bool_t* vote_granted, raft_callback_t cb, void* cb_ctx) {
  *reply_term = can_term;
  *vote_granted = 0;
  cb(cb_ctx);
}
void rust_raft_server_on_append_entries(void*, slotid_t, ballot_t, uint64_t, uint64_t, uint64_t, uint64_t,
                                        Marshallable_C cmd, uint64_t, uint64_t* ok, uint64_t* term, uint64_t* last,
                                        raft_callback_t cb, void* cb_ctx) {
  if (cmd) raft_marshallable_release(cmd);
  *ok = 0;
  *term = 0;
  *last = 0;
  cb(cb_ctx);
}
void rust_raft_server_apply_logs(void*) {}
void rust_raft_server_set_local_append(void*, Marshallable_C cmd, uint64_t*, uint64_t*, slotid_t, ballot_t) {
  if (cmd) raft_marshallable_release(cmd);
}
void rust_raft_server_remove_cmd(void*, slotid_t) {}
RaftData_C rust_raft_server_get_raft_instance(void*, slotid_t) { return raft_data_new(); }
}
