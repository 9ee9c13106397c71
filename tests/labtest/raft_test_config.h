// RaftTestConfig: the lab harness around five servers (../shared/labtest.md,
// "Harness helpers").
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "framework.h"
#include "raft_server.h"
#include "timeline.h"

namespace standin {

constexpr int NSERVERS = 5;
constexpr uint64_t ELECTIONTIMEOUT = 5000000;  // us
constexpr uint64_t HEARTBEATTIMEOUT = 100000;  // us, used only for the harness's waits
constexpr int MAXSLOW = 27;                    // ms
constexpr uint64_t COMMITRPCS(uint64_t n) { return (n + 1) * NSERVERS; }

// The harness's sleeps end as the framework's do (SleepLikeFramework): up to
// one coarse clock tick early.
void SleepMicros(uint64_t us);
// CPU seconds (user + system) of this process so far.
double ProcessCpuSeconds();
// DoAgreement's commit window (labtest.md: 2 s in one upstream layout, 5 s
// in the other; the stricter).
constexpr uint64_t kAgreementWindowUs = 2000000;

// A failed assertion of the real harness (Disconnect/Reconnect's checks,
// each test's preamble): the real framework aborts the process. In real
// time the stand-in aborts too (HarnessAssert prints "standin: MESSAGE");
// in virtual time it throws this, so a run of many seeds records the abort
// as that seed's failure and goes on with the next seed.
struct HarnessAborted {
  std::string message;
};
[[noreturn]] void HarnessAssert(const std::string& message);

// Measures the host: a thread that sleeps 10 ms at a time and records how
// late it wakes. A late wake-up means the whole process (or the machine)
// did not run: a stall, which no Raft can tell from silence.
class HostStallMonitor {
 public:
  static constexpr Micros kPeriodUs = 10000;
  HostStallMonitor();
  ~HostStallMonitor();
  // The longest stall (us) that overlapped [begin, end] (monotonic times).
  Micros LongestBetween(Micros begin, Micros end) const;

 private:
  struct Stall {
    Micros began, length;
  };
  void Run();
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<Stall> stalls_;  // only those longer than 20 ms
  std::thread thread_;  // none in virtual time, where the host cannot stall
};

class RaftTestConfig {
 public:
  // Builds five servers on their own reactors and runs Setup on each.
  RaftTestConfig(const Config& config, uint64_t seed);
  ~RaftTestConfig();  // stops the network thread, deletes servers, stops reactors

  // The first failure message of the running test (helpers set it).
  void Fail(const std::string& message);
  const std::string& failure() const { return failure_; }
  void ClearFailure() { failure_.clear(); }

  int OneLeader(int expected = -1);
  bool NoLeader();
  // Both are this one polling loop: 10 rounds of 500 ms; the leader found
  // (or -1 after a failure or 10 empty rounds).
  int WaitOneLeader(bool want_leader, int expected);
  int64_t OneTerm();
  bool TermMovedOn(uint64_t term);
  // How many servers committed `index` (-1 if values differ); the value in `value`.
  int NCommitted(uint64_t index, int* value = nullptr);
  // The value server `svr` committed at `index`, or -1.
  int CommittedValue(int svr, uint64_t index);
  // Max over servers of how many entries each has applied.
  uint64_t MaxCommitted();
  bool Start(int svr, int cmd, uint64_t* index, uint64_t* term);
  int Wait(uint64_t index, int n, uint64_t term);
  uint64_t DoAgreement(int cmd, int n, bool retry);

  void Disconnect(int i);
  void Reconnect(int i);
  bool IsExplicitlyDisconnected(int i);
  int NDisconnected();
  bool IsServerDisconnected(int i) { return servers_[i]->IsDisconnected(); }
  // Stops server i's reactor alone for `us` (labtest --virtual --freeze-one).
  void FreezeServer(int i, Micros us) { reactors_[i]->FreezeFor(us); }
  void SetSlowness(int i, Micros us) { reactors_[i]->SetSlowness(us); }

  // Records the run for a timeline page (labtest --timeline): network and
  // slowness changes, applies, and each server's role and term, sampled
  // every 5 ms by a thread of its own until the cluster is destroyed.
  void SetTimeline(Timeline* timeline);
  Timeline* timeline() const { return timeline_; }

  // For the benchmark: how many entries server i has applied, and when it
  // applied `index` (monotonic us; 0 if not yet).
  uint64_t AppliedCount(int i);
  Micros AppliedAt(int i, uint64_t index);
  // Blocks until all five applied `index` (false after `timeout_us`). In
  // real time it sleeps on a condition the apply callback signals, so the
  // benchmark's own waiting costs no CPU to speak of.
  bool WaitAppliedEverywhere(uint64_t index, Micros timeout_us);
  // The server that claims to lead with the highest term, or -1; no waiting.
  int CurrentLeader();

  // On: a network-control thread acts at once and then every 100 ms. Off:
  // only clears the flag and returns; the thread notices after its current
  // sleep, then reconnects and unslows every server not explicitly
  // disconnected.
  void SetUnreliable(bool on);
  bool IsUnreliable() const { return unreliable_.load(); }

  uint64_t RpcCount(int i, bool reset = true);
  uint64_t RpcTotal() const { return network_.RpcTotal(); }
  const Network& network() const { return network_; }
  uint64_t seed() const { return seed_; }

 private:
  void ApplyCallback(int server, int index, const std::shared_ptr<Marshallable>& command);
  void UnreliableLoop();
  void JoinNetworkThread();

  uint64_t seed_;
  Network network_;
  std::vector<std::unique_ptr<Reactor>> reactors_;
  std::vector<std::unique_ptr<AppNextFn>> app_next_;
  std::vector<std::unique_ptr<RaftServer>> servers_;

  std::mutex commit_mutex_;
  std::condition_variable applied_cv_;
  std::vector<std::vector<int>> committed_;  // [server][index], index 0 a placeholder
  std::vector<std::vector<Micros>> applied_at_;  // [server][index], as committed_

  std::mutex net_mutex_;
  std::vector<bool> explicitly_disconnected_;
  std::vector<uint64_t> rpc_baseline_;
  std::atomic<bool> unreliable_{false};
  Thread network_thread_;
  std::mt19937_64 network_random_;

  std::string failure_;
  Timeline* timeline_ = nullptr;
  std::atomic<bool> stop_sampler_{false};
  Thread sampler_;
};

}  // namespace standin
