// The C++ server adapter: owns one crate server through the exports and
// serves its RPCs (the real framework's RaftServer in Rust mode).
#pragma once

#include <atomic>
#include <memory>

#include "framework.h"

namespace standin {

class RaftServer : public RaftService {
 public:
  // Runs the crate's constructor (any thread). `app_next` must outlive it.
  RaftServer(Frame frame, Reactor* reactor, Network* network, AppNextFn* app_next, bool is_test_mode);
  ~RaftServer() override;  // rust_raft_server_delete

  // Setup(): at monotonic time `due`, on the reactor thread and in a fiber
  // of its own (as the real ServerWorker's job), set_commo then setup;
  // setup_done() once setup returned.
  void SetupAt(Micros due);
  bool setup_done() const { return setup_done_.load(); }
  // SetupAt(now), then wait until setup returned.
  void Setup();

  // Start from a test thread: wraps the command in a handle the crate owns.
  bool Start(std::shared_ptr<Marshallable> command, uint64_t* index, uint64_t* term);
  void GetState(bool* is_leader, uint64_t* term);
  bool IsLeader();
  void Disconnect();
  void Reconnect();
  bool IsDisconnected() override;

  void OnRequestVote(slotid_t last_log_index, ballot_t last_log_term, siteid_t candidate, ballot_t term,
                     std::function<void(ballot_t, bool_t)> reply) override;
  void OnAppendEntries(const AppendArgs& args, std::function<void(AppendResult)> reply) override;

  void* handle() const { return handle_; }
  RaftCommo* commo() { return &commo_; }
  RaftLogs* logs() { return &logs_; }
  Reactor* reactor() const { return reactor_; }

 private:
  Frame frame_;
  Reactor* reactor_;
  RaftCommo commo_;
  RaftLogs logs_;
  void* handle_ = nullptr;
  std::atomic<bool> setup_done_{false};
};

}  // namespace standin
