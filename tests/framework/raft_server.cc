#include "raft_server.h"

#include "rust_raft.h"  // the generated export header: must agree with rust_ffi_wrapper.h

namespace standin {

namespace {

// Reply contexts: the crate writes the fields, then calls the callback
// exactly once, which sends the reply and frees the context.
struct VoteReplyContext {
  ballot_t term = 0;
  bool_t granted = 0;
  std::function<void(ballot_t, bool_t)> send;
  static void Done(void* raw) {
    auto* ctx = static_cast<VoteReplyContext*>(raw);
    ctx->send(ctx->term, ctx->granted);
    delete ctx;
  }
};

struct AppendReplyContext {
  uint64_t ok = 0, term = 0, last_log_index = 0;
  std::function<void(RaftService::AppendResult)> send;
  static void Done(void* raw) {
    auto* ctx = static_cast<AppendReplyContext*>(raw);
    ctx->send(RaftService::AppendResult{ctx->ok, ctx->term, ctx->last_log_index});
    delete ctx;
  }
};

}  // namespace

RaftServer::RaftServer(Frame frame, Reactor* reactor, Network* network, AppNextFn* app_next, bool is_test_mode)
    : frame_(frame), reactor_(reactor), commo_(network, reactor, frame.site_id), logs_(reactor) {
  handle_ = rust_raft_server_new(&frame_, nullptr, &logs_, nullptr, app_next, is_test_mode);
  if (handle_ == nullptr) Fatal("rust_raft_server_new returned NULL");
  network->Register(frame.site_id, reactor, this);
}

RaftServer::~RaftServer() {
  Network* network = commo_.network();
  const siteid_t site = frame_.site_id;
  reactor_->RunAndWait([network, site] { network->Unregister(site); });
  rust_raft_server_delete(handle_);
#if defined(__SANITIZE_THREAD__)
  // TSan sees only the C++ side: the crate's own wait for its fibers to end
  // (Rust atomics) is invisible to it, so what a fiber did on this reactor
  // before it ended would look unordered with the frees below. One empty
  // task on the reactor orders exactly that, and nothing later: a fiber
  // that touched the communicator after this would still be reported.
  reactor_->RunAndWait([] {});
#endif
}

void RaftServer::Setup() {
  reactor_->RunAndWait([this] {
    rust_raft_server_set_commo(handle_, &commo_);
    rust_raft_server_setup(handle_);
  });
}

bool RaftServer::Start(std::shared_ptr<Marshallable> command, uint64_t* index, uint64_t* term) {
  return rust_raft_server_start(handle_, CommandHandles::Make(std::move(command)), index, term, 0, 0);
}

void RaftServer::GetState(bool* is_leader, uint64_t* term) { rust_raft_server_get_state(handle_, is_leader, term); }
bool RaftServer::IsLeader() { return rust_raft_server_is_leader(handle_); }
void RaftServer::Disconnect() { rust_raft_server_disconnect(handle_, true); }
void RaftServer::Reconnect() { rust_raft_server_reconnect(handle_); }
bool RaftServer::IsDisconnected() { return rust_raft_server_is_disconnected(handle_); }

void RaftServer::OnRequestVote(slotid_t last_log_index, ballot_t last_log_term, siteid_t candidate, ballot_t term,
                               std::function<void(ballot_t, bool_t)> reply) {
  auto* ctx = new VoteReplyContext;
  ctx->send = std::move(reply);
  HandlerScope scope("rust_raft_server_on_request_vote");
  rust_raft_server_on_request_vote(handle_, last_log_index, last_log_term, candidate, term, &ctx->term,
                                   &ctx->granted, &VoteReplyContext::Done, ctx);
}

void RaftServer::OnAppendEntries(const AppendArgs& args, std::function<void(AppendResult)> reply) {
  auto* ctx = new AppendReplyContext;
  ctx->send = std::move(reply);
  Marshallable_C cmd = args.entry ? CommandHandles::Make(args.entry) : nullptr;
  HandlerScope scope("rust_raft_server_on_append_entries");
  rust_raft_server_on_append_entries(handle_, 0, 0, args.term, args.prev_log_index, args.prev_log_term,
                                     args.commit_index, cmd, args.entry_term, &ctx->ok, &ctx->term,
                                     &ctx->last_log_index, &AppendReplyContext::Done, ctx);
}

}  // namespace standin
