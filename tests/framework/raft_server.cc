#include "raft_server.h"

#include <unordered_set>

#include "hazards.h"
#include "rust_raft.h"  // the generated export header: must agree with rust_ffi_wrapper.h

namespace standin {

namespace {

// Reply contexts: the crate writes the fields, then calls the callback
// exactly once, which sends the reply and frees the context. The real
// bridge's callback deletes its context after sending, so a second call is
// a double free there (Fatal here), and a field the crate never writes is
// uninitialized heap memory there (rrr's generated stubs `new` the reply
// fields without initializing them). The stand-in fills each field with a
// marker no crate writes, and replies 0 for a field still holding it, with
// a hazard.
constexpr uint64_t kUnsetWord = 0x5EED5EED5EED5EEDull;
constexpr bool_t kUnsetFlag = 0x5A;

std::mutex& LiveRepliesMutex() {
  static std::mutex mutex;
  return mutex;
}
std::unordered_set<void*>& LiveReplies() {
  static std::unordered_set<void*> live;
  return live;
}
void Track(void* ctx) {
  std::lock_guard<std::mutex> lock(LiveRepliesMutex());
  LiveReplies().insert(ctx);
}
void Untrack(void* ctx, const char* handler) {
  std::lock_guard<std::mutex> lock(LiveRepliesMutex());
  if (LiveReplies().erase(ctx) == 0) {
    Fatal(std::string("the reply callback of ") + handler +
          " was called twice (the real callback deletes its context: a double free)");
  }
}
// A reply field the crate never wrote still holds the marker: its name
// goes into `unset`, and 0 is what is sent.
template <typename T>
T Written(T value, T marker, const char* field, std::string* unset) {
  if (value != marker) return value;
  *unset += (unset->empty() ? "" : ", ") + std::string(field);
  return 0;
}
// Only a reply sent while its handler has neither waited nor returned is
// told to the monitor as an Answer (Figure 2's first receiver rule is
// checked on it): one sent after a wait the real framework allows (a
// hazard) may carry a term that moved meanwhile.
struct Answering {
  explicit Answering(void* ctx) { SetAnsweringReply(ctx); }
  ~Answering() { SetAnsweringReply(nullptr); }
  Answering(const Answering&) = delete;
  Answering& operator=(const Answering&) = delete;
};
void ReportAnswer(void* raw, const RunObserver::Answer& answer) {
  if (AnsweringReply() != raw) return;
  if (RunObserver* observer = CurrentRunObserver()) observer->Answered(answer);
}

void ReportUnset(const char* handler, const std::string& unset, int server) {
  if (!unset.empty()) RecordHazard(std::string(handler) + " replied without writing " + unset, rule::kReplyUnset, server);
}

struct VoteReplyContext {
  int server = -1;
  int candidate = -1;
  ballot_t candidate_term = 0;
  ballot_t term = static_cast<ballot_t>(kUnsetWord);
  bool_t granted = kUnsetFlag;
  std::function<void(ballot_t, bool_t)> send;
  static void Done(void* raw) {
    const char* handler = "rust_raft_server_on_request_vote";
    Untrack(raw, handler);
    auto* ctx = static_cast<VoteReplyContext*>(raw);
    std::string unset;
    const ballot_t term = Written<ballot_t>(ctx->term, static_cast<ballot_t>(kUnsetWord), "reply_term", &unset);
    const bool_t granted = Written<bool_t>(ctx->granted, kUnsetFlag, "vote_granted", &unset);
    ReportUnset(handler, unset, ctx->server);
    if (granted != 0) {
      if (RunObserver* observer = CurrentRunObserver()) observer->VoteGranted(ctx->server, ctx->candidate, ctx->candidate_term);
    }
    ReportAnswer(raw, {ctx->server, true, ctx->candidate, static_cast<uint64_t>(ctx->candidate_term),
                       static_cast<uint64_t>(term), granted != 0});
    ctx->send(term, granted);
    delete ctx;
  }
};

struct AppendReplyContext {
  int server = -1;
  uint64_t request_term = 0;
  uint64_t ok = kUnsetWord, term = kUnsetWord, last_log_index = kUnsetWord;
  std::function<void(RaftService::AppendResult)> send;
  static void Done(void* raw) {
    const char* handler = "rust_raft_server_on_append_entries";
    Untrack(raw, handler);
    auto* ctx = static_cast<AppendReplyContext*>(raw);
    std::string unset;
    const RaftService::AppendResult result{Written(ctx->ok, kUnsetWord, "followerAppendOK", &unset),
                                           Written(ctx->term, kUnsetWord, "followerCurrentTerm", &unset),
                                           Written(ctx->last_log_index, kUnsetWord, "followerLastLogIndex", &unset)};
    ReportUnset(handler, unset, ctx->server);
    ReportAnswer(raw, {ctx->server, false, -1, ctx->request_term, result.term, result.ok != 0});
    ctx->send(result);
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

void RaftServer::SetupAt(Micros due) {
  // As the real ServerWorker: a job on the server's poll thread, which the
  // reactor runs in a coroutine of its own (so setup may wait there).
  reactor_->Post([this] {
    reactor_->CreateRunCoroutine([this] {
      rust_raft_server_set_commo(handle_, &commo_);
      rust_raft_server_setup(handle_);
      setup_done_ = true;
    });
  }, due);
}

void RaftServer::Setup() {
  SetupAt(0);
  while (!setup_done_.load()) {
    if (VirtualWorld* world = VirtualWorld::Get()) {
      world->SleepUntil(NowMicros() + 1000);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
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
  ctx->server = frame_.site_id;
  ctx->candidate = candidate;
  ctx->candidate_term = term;
  ctx->send = std::move(reply);
  Track(ctx);
  HandlerScope scope("rust_raft_server_on_request_vote");
  Answering answering(ctx);
  rust_raft_server_on_request_vote(handle_, last_log_index, last_log_term, candidate, term, &ctx->term,
                                   &ctx->granted, &VoteReplyContext::Done, ctx);
}

void RaftServer::OnAppendEntries(const AppendArgs& args, std::function<void(AppendResult)> reply) {
  auto* ctx = new AppendReplyContext;
  ctx->server = frame_.site_id;
  ctx->request_term = args.term;
  ctx->send = std::move(reply);
  Track(ctx);
  Marshallable_C cmd = args.entry ? CommandHandles::Make(args.entry) : nullptr;
  HandlerScope scope("rust_raft_server_on_append_entries");
  Answering answering(ctx);
  rust_raft_server_on_append_entries(handle_, 0, 0, args.term, args.prev_log_index, args.prev_log_term,
                                     args.commit_index, cmd, args.entry_term, &ctx->ok, &ctx->term,
                                     &ctx->last_log_index, &AppendReplyContext::Done, ctx);
}

}  // namespace standin
