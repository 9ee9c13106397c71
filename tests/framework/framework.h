// The stand-in of the lab framework's C++ side: commands (Marshallable),
// RaftData and the log map, frames, the config, the communicator (commo)
// with its proxy lists, and the simulated RPC network. Names follow the
// real framework's concepts.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "reactor.h"
#include "rust_ffi_wrapper.h"

namespace standin {

// ----- Commands -----------------------------------------------------------------

// A command the state machine understands.
struct Marshallable {
  explicit Marshallable(int kind) : kind(kind) {}
  virtual ~Marshallable() = default;
  virtual std::shared_ptr<Marshallable> Clone() const = 0;
  int kind;
};

// The lab's command: an int payload.
struct LabCommand : Marshallable {
  static constexpr int kKind = 1001;
  explicit LabCommand(int value) : Marshallable(kKind), value(value) {}
  std::shared_ptr<Marshallable> Clone() const override { return std::make_shared<LabCommand>(value); }
  int value;
};

// Marshallable_C handles are heap-allocated shared_ptr<Marshallable>*, as in
// the real framework. Every handle is tracked, so a release of an unknown or
// already released handle aborts instead of corrupting memory.
class CommandHandles {
 public:
  static Marshallable_C Make(std::shared_ptr<Marshallable> command);
  static std::shared_ptr<Marshallable>& Get(Marshallable_C handle, const char* function);
  static void Release(Marshallable_C handle, const char* function);
  static size_t live();
};

// ----- RaftData and the log map ----------------------------------------------------

struct RaftData {
  ballot_t term = 0;  // the real framework's RaftData keeps terms as ballots
  ballot_t prev_term = 0;
  slotid_t slot_id = 0;
  ballot_t ballot = 0;
  std::shared_ptr<Marshallable> log;
};

// One server's log map. The contract gives it to the reactor thread (the
// real map has no lock); the stand-in guards it, and a use from another
// thread is a hazard.
class RaftLogs {
 public:
  explicit RaftLogs(Reactor* reactor) : reactor_(reactor) {}
  // The entry at `slot`, made empty if missing (raft_logs_get_instance).
  std::shared_ptr<RaftData> Instance(slotid_t slot, const char* function);
  void Set(slotid_t slot, std::shared_ptr<RaftData> data, const char* function);
  void Erase(slotid_t slot, const char* function);
  size_t size() const;

 private:
  Reactor* reactor_;
  mutable std::mutex mutex_;
  std::map<slotid_t, std::shared_ptr<RaftData>> map_;
};

// ----- Identity and config -----------------------------------------------------------

struct Frame {
  uint32_t locale_id;
  siteid_t site_id;
  parid_t partition_id;
};

// The cluster as config/raft_lab_test.yml describes it.
struct Config {
  bool lab_raft = false;
  // partition id -> site names, in site-id order
  std::map<parid_t, std::vector<std::string>> partitions;

  // Loads and validates a config file; on error returns false and sets
  // `error` to a one-line description naming the problem.
  static bool Load(const std::string& path, Config* out, std::string* error);
  int PartitionSize(parid_t partition) const;

  // The config the imports report (raft_config_get_config).
  static void SetGlobal(const Config* config);
  static const Config* Global();
};

// ----- The network -----------------------------------------------------------------------

// What a server's RPC service calls on the receiving side (implemented by
// the server adapter on top of the crate's exports).
class RaftService {
 public:
  virtual ~RaftService() = default;
  virtual bool IsDisconnected() = 0;
  // Called in a fresh fiber on the receiver's reactor; `reply` must be
  // called exactly once (on the same reactor).
  virtual void OnRequestVote(slotid_t last_log_index, ballot_t last_log_term, siteid_t candidate,
                             ballot_t term, std::function<void(ballot_t, bool_t)> reply) = 0;
  struct AppendArgs {
    uint64_t term, prev_log_index, prev_log_term, commit_index, entry_term;
    std::shared_ptr<Marshallable> entry;  // null for a heartbeat
  };
  struct AppendResult {
    uint64_t ok, term, last_log_index;
  };
  virtual void OnAppendEntries(const AppendArgs& args, std::function<void(AppendResult)> reply) = 0;
};

class RaftCommo;

// The simulated network joining the servers of one run: it delivers
// requests to the receiver's reactor and replies to the sender's. Each
// message gets its own one-way latency, drawn from [min, max] (loopback TCP
// in the real framework takes roughly 0.1 to 1 ms, varying with load), while
// each directed link stays FIFO. The receiver's disconnected flag is checked
// when a request arrives, not when it was sent. RPCs are counted per sender.
class Network {
 public:
  static constexpr Micros kMinLatencyUs = 100;
  static constexpr Micros kMaxLatencyUs = 1000;
  explicit Network(uint64_t seed = 1, Micros min_latency_us = kMinLatencyUs, Micros max_latency_us = kMaxLatencyUs)
      : min_latency_us_(min_latency_us), max_latency_us_(std::max(min_latency_us, max_latency_us)), random_(seed) {}

  void Register(siteid_t site, Reactor* reactor, RaftService* service);
  // After this, requests to `site` are dropped on arrival. Call it on the
  // site's reactor thread, so no delivery is half-way through.
  void Unregister(siteid_t site);
  Reactor* ReactorOf(siteid_t site) const;

  // Counted on the sender when sent.
  void SendVote(siteid_t from, siteid_t to, slotid_t last_log_index, ballot_t last_log_term,
                ballot_t term, std::shared_ptr<QuorumEvent> event);
  void SendAppend(siteid_t from, siteid_t to, RaftService::AppendArgs args,
                  std::shared_ptr<IntEvent> event, uint64_t* ret_status, uint64_t* ret_term,
                  uint64_t* ret_last_log_index);

  uint64_t RpcCount(siteid_t site) const;
  uint64_t RpcTotal() const;
  Micros min_latency() const { return min_latency_us_; }
  Micros max_latency() const { return max_latency_us_; }

  // Kinds of RPC delivered, for the stand-in's own tests.
  uint64_t delivered_votes() const { return delivered_votes_.load(); }
  uint64_t delivered_appends() const { return delivered_appends_.load(); }
  uint64_t delivered_empty_appends() const { return delivered_empty_appends_.load(); }

 private:
  // When a message sent now on link from->to is due, keeping the link FIFO.
  Micros DueTime(siteid_t from, siteid_t to);
  void CountSent(siteid_t from);

  struct Node {
    Reactor* reactor;
    RaftService* service;
  };
  // The service registered for `site` now, or nullptr.
  RaftService* ServiceOf(siteid_t site) const;
  // Both ends of a link, if both sites are registered.
  bool Endpoints(siteid_t from, siteid_t to, Node* sender, Node* receiver) const;
  Micros min_latency_us_;
  Micros max_latency_us_;
  std::mt19937_64 random_;  // latencies; guarded by mutex_
  mutable std::mutex mutex_;
  std::map<siteid_t, Node> nodes_;
  std::map<std::pair<siteid_t, siteid_t>, Micros> last_due_;
  std::map<siteid_t, std::unique_ptr<std::atomic<uint64_t>>> sent_;
  std::atomic<uint64_t> delivered_votes_{0};
  std::atomic<uint64_t> delivered_appends_{0};
  std::atomic<uint64_t> delivered_empty_appends_{0};
};

// An outgoing connection to one site.
struct RpcProxy {
  siteid_t site_id;
};

// One server's communicator: its proxy lists per partition (its own site
// included) and the sending side of the RPCs. The contract gives it to the
// reactor thread (no lock in the real one); the stand-in keeps every proxy
// list, and the process-wide backup, under one lock of its own, so that a
// submission that moves proxies from another thread (a hazard) cannot
// corrupt the stand-in.
class RaftCommo {
 public:
  RaftCommo(Network* network, Reactor* reactor, siteid_t self);

  // With ProxiesMutex() held.
  std::vector<RpcProxy>& ProxiesLocked(parid_t partition) { return proxies_[partition]; }
  std::vector<RpcProxy> ProxiesCopy(parid_t partition);
  bool HasProxy(parid_t partition, siteid_t site);
  Reactor* reactor() const { return reactor_; }
  Network* network() const { return network_; }
  siteid_t self() const { return self_; }

  // The process-wide backup of saved proxy lists, keyed by (partition,
  // locale); with ProxiesMutex() held.
  static std::map<std::pair<parid_t, uint32_t>, std::vector<RpcProxy>>& BackupLocked();
  static std::mutex& ProxiesMutex();

 private:
  Network* network_;
  Reactor* reactor_;
  siteid_t self_;
  std::map<parid_t, std::vector<RpcProxy>> proxies_;
};

// The state machine's entry point as the crate sees it (AppNextFn_C points
// to one of these).
using AppNextFn = std::function<int(int index, std::shared_ptr<Marshallable> command)>;

// The stand-in's own events in the crate's log format (README, "Logs"):
//   [TIMESTAMP INFO  standin::TOPIC] TIME -- -- - TOPIC MESSAGE
// printed on stderr when RUST_LOG enables the target standin::TOPIC at
// info (env_logger's syntax: RUST_LOG=standin=info, or a bare level).
// Topics: test, network, check.
bool StandinLogOn(const char* topic);
void LogEvent(const char* topic, const char* format, ...) __attribute__((format(printf, 2, 3)));

// What a run's observer (the harness's safety monitor) is told, from the
// framework's side of the contract, trusting nothing the crate says
// except what it puts in its replies and requests: every vote it grants
// (the VoteReply it fills), every vote it asks for (a broadcast, which the
// quorum event counts with the candidate's own vote) and every
// AppendEntries a server sends.
class RunObserver {
 public:
  // What one AppendEntries carries, as sent.
  struct Append {
    uint64_t term = 0, prev_log_index = 0, commit_index = 0;
    bool has_entry = false;
    uint64_t entry_term = 0;  // the entry's own term (when has_entry)
    bool has_value = false;   // the entry is a lab command
    int value = 0;            // its value (when has_value)
  };
  // A reply a server sent from inside its handler, before the handler
  // waited or returned (so its term is the server's term while it decided):
  // the request's term, the reply's, and whether it said yes.
  struct Answer {
    int server = -1;
    bool is_vote = false;  // RequestVote (else AppendEntries)
    int candidate = -1;    // a RequestVote's candidate
    uint64_t request_term = 0, reply_term = 0;
    bool yes = false;      // voteGranted / success
  };
  virtual ~RunObserver() = default;
  virtual void VoteGranted(int voter, int candidate, int64_t term) = 0;
  virtual void VotesAsked(int candidate, int64_t term) = 0;
  virtual void AppendSent(int from, int to, const Append& append) = 0;
  virtual void Answered(const Answer& answer) = 0;
  // `server` read a reply carrying `reply_term` to a request of its own
  // of `request_term`: its wait for an AppendEntries reply returned with
  // the reply there (or it read the event's status as ready), or it asked
  // its vote quorum event of that term for the highest refusing term. A
  // reply that came after the wait gave up is never read.
  virtual void ReplyRead(int server, uint64_t request_term, uint64_t reply_term) {
    (void)server, (void)request_term, (void)reply_term;
  }
};
// The reply context of the crate's RPC handler running on this thread,
// while that handler has neither waited nor returned (raft_server.cc sets
// it around the call), else nullptr: a reply sent then was decided in the
// request's moment, at the server's term of that moment.
void SetAnsweringReply(void* ctx);
void* AnsweringReply();
// The crate waits inside an RPC handler on this thread (CheckBlocking): a
// reply it sends later may carry a term that moved meanwhile.
void HandlerWaited();
// The observer of this run, or nullptr (set by the harness).
void SetRunObserver(RunObserver* observer);
RunObserver* CurrentRunObserver();

// Seeds raft_random_rand / raft_random_rand_double.
void SeedFrameworkRandom(uint64_t seed);
// raft_random_rand with a range wider than int: abort (default), or wrap
// as the real formula does in practice (labtest --wrap-random-overflow).
void SetRandomOverflowWraps(bool wraps);
bool RandomOverflowWraps();
// Event and RaftData handles handed out so far: the framework keeps them
// until exit (the real one never frees them; the contract has no release).
size_t KeptHandles();

}  // namespace standin
