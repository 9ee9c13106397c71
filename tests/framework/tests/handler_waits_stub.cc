// The 18 exports of a deliberately bad Raft whose RequestVote handler
// sleeps before it replies: linked into labtest_handler_waits to show the
// stand-in aborts, naming the import, where the real framework would read
// the handler's arguments from a frame that is already gone (abi.md,
// "Handler context").
#include <cstdint>

#include "rust_ffi_wrapper.h"

namespace {
struct StubServer {
  siteid_t site = 0;
  RaftCommo_C commo = nullptr;
};
StubServer g_servers[16];

void Campaign(void* raw) {
  auto* server = static_cast<StubServer*>(raw);
  VoteQuorumEvent_C votes = raft_commo_broadcast_vote(server->commo, 0, 0, 0, server->site, 1);
  raft_vote_quorum_event_wait(votes);
}
}  // namespace

extern "C" {
void* rust_raft_server_new(Frame_C frame, RaftCommo_C, RaftLogs_C, TxScheduler_C, AppNextFn_C, bool) {
  const siteid_t site = raft_frame_get_site_id(frame);
  g_servers[site % 16].site = site;
  return &g_servers[site % 16];
}
void rust_raft_server_delete(void*) {}
void rust_raft_server_set_commo(void* srv, RaftCommo_C commo) { static_cast<StubServer*>(srv)->commo = commo; }
void rust_raft_server_setup(void* srv) {
  if (static_cast<StubServer*>(srv)->site == 0) raft_coroutine_create_run(&Campaign, srv);
}
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
  raft_coroutine_sleep(1000);  // the defect: waiting inside the handler
  *reply_term = can_term;
  *vote_granted = 1;
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
