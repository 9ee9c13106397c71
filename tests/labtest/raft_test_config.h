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
#include "monitor.h"
#include "raft_server.h"
#include "timeline.h"

namespace standin {

constexpr int NSERVERS = 5;
constexpr uint64_t ELECTIONTIMEOUT = 5000000;  // us
constexpr uint64_t HEARTBEATTIMEOUT = 100000;  // us, used only for the harness's waits
constexpr int MAXSLOW = 27;                    // ms
constexpr uint64_t COMMITRPCS(uint64_t n) { return (n + 1) * NSERVERS; }

// The harness's sleeps end as the framework's do (SleepLikeFramework): up to
// one coarse clock tick early. (The real helpers use usleep.)
void SleepMicros(uint64_t us);
// The suite's own sleeps between steps (Coroutine::Sleep and wait() in the
// real labtest.cc): the test runs in a coroutine of the test thread's
// reactor there, so while it sleeps that reactor runs the fibers a crate
// made on the test thread, if any (README, "Fibers off the reactor threads").
void TestSleep(uint64_t us);
// CPU seconds (user + system) of this process so far.
double ProcessCpuSeconds();

// What the harness models, besides the suite (labtest.md).
struct HarnessOptions {
  // The older (2023-24) framework instead of the 2026 one that the Rust lab
  // builds: DoAgreement's commit window 2 s instead of 5 s, and a slowed
  // server's loop stalls on every turn (the 2026 poll worker's slow() is an
  // empty stub). Both stricter; for testing this project's own crate.
  bool older_framework = false;
  // Start the five servers as the 2026 launch does (Launch) rather than all
  // at once.
  bool spread_launch = true;
};
// DoAgreement's commit window (labtest.md): 5 s in the src/protocol layout
// that the 2026 Rust lab builds, 2 s in the older src/deptran one.
constexpr uint64_t kAgreementWindowUs = 5000000;
constexpr uint64_t kOlderAgreementWindowUs = 2000000;

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

// When each site of the 2026 framework runs `setup`, and when the test
// starts, measured from the launch (s_main.cc server_launch_worker,
// ServerWorker::SetupCommo, Communicator::ConnectToSite): five setup
// threads start together; each takes a few ms before its RPC server
// listens, then connects to every site of the partition in id order, itself
// included; a connect to a site not listening yet fails and is retried
// after CONNECT_SLEEP_MS (1 s); connected to all, it posts Setup to its
// poll thread. So the site that listened last sets up at once and most
// others about a second later. Site 0's thread then checks every 100 ms
// until every setup is done, sleeps 300 ms, and starts the test thread.
struct LaunchPlan {
  std::vector<Micros> setup_at;  // per site
  Micros site0_connected = 0;    // when site 0's thread starts checking
  static LaunchPlan Draw(uint64_t seed, int sites);
  static LaunchPlan Together(int sites);  // every setup at once (--launch together)
  std::string Describe() const;
};

class RaftTestConfig {
 public:
  // Builds five servers on their own reactors, launches them as the real
  // framework does (LaunchPlan), waits for every setup and the 300 ms
  // settle, then starts the network-control thread.
  RaftTestConfig(const Config& config, uint64_t seed, HarnessOptions options = {});
  ~RaftTestConfig();  // stops the network thread, reconnects, deletes servers, stops reactors

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
  // The harness's slow(): a stub in the 2026 framework; with
  // older_framework, the server's loop stalls `us` on every turn.
  void SetSlowness(int i, Micros us);
  const HarnessOptions& options() const { return options_; }
  const LaunchPlan& launch() const { return launch_; }

  // Records the run for a timeline page (labtest --timeline): network and
  // slowness changes, applies, and each server's role and term, sampled
  // every 5 ms by a thread of its own until the cluster is destroyed.
  void SetTimeline(Timeline* timeline);
  Timeline* timeline() const { return timeline_; }

  // Feeds the safety monitor (monitor.h) the applies and each server's
  // (is_leader, term), sampled at every quiescent step of virtual time (the
  // world's observer) or every 2 ms in real time, from now until the
  // cluster is destroyed. Call after the launch (a crate need not answer
  // get_state before its setup).
  void SetMonitor(SafetyMonitor* monitor);
  static constexpr Micros kRealTimeSampleUs = 2000;

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

  // The network-control thread (one for the whole run, as the real
  // netctlLoop): while unreliable it acts at once and then every 100 ms;
  // SetUnreliable(false) only clears the flag and returns, and the thread
  // notices after its current sleep, then reconnects and unslows every
  // server not explicitly disconnected.
  void SetUnreliable(bool on);
  bool IsUnreliable() const { return unreliable_.load(); }

  uint64_t RpcCount(int i, bool reset = true);
  uint64_t RpcTotal() const { return network_.RpcTotal(); }
  const Network& network() const { return network_; }
  uint64_t seed() const { return seed_; }

 private:
  void ApplyCallback(int server, int index, const std::shared_ptr<Marshallable>& command);
  // Runs the launch plan and waits as site 0's thread does.
  void Launch();
  void NetworkControlLoop();
  // The real harness's reconnect(i, true) and slow(i, ms) pair, with its
  // verify that the server reports itself connected. net_mutex_ held.
  void ReconnectAndSlow(int i, Micros slowness);
  // Server i went off the network (down) or came back: the timeline and
  // the monitor are told.
  void NetworkChanged(int i, bool down);

  uint64_t seed_;
  HarnessOptions options_;
  LaunchPlan launch_;
  Network network_;
  std::vector<std::unique_ptr<Reactor>> reactors_;
  std::vector<std::unique_ptr<AppNextFn>> app_next_;
  std::vector<std::unique_ptr<RaftServer>> servers_;

  std::mutex commit_mutex_;
  std::condition_variable applied_cv_;
  std::vector<std::vector<int>> committed_;  // [server][index], index 0 a placeholder
  std::vector<std::vector<Micros>> applied_at_;  // [server][index], as committed_

  // The lock Disconnect, Reconnect and the network thread share (the real
  // disconnect_mtx_); held across calls into the crate.
  HarnessMutex net_mutex_;
  std::vector<bool> explicitly_disconnected_;
  std::vector<uint64_t> rpc_baseline_;
  std::atomic<bool> unreliable_{false};
  bool finished_ = false;  // under netctl_mutex_
  HarnessMutex netctl_mutex_;
  HarnessSignal netctl_signal_;
  Thread network_thread_;
  std::mt19937_64 network_random_;

  std::string failure_;
  Timeline* timeline_ = nullptr;
  std::atomic<bool> stop_sampler_{false};
  Thread sampler_;
  std::atomic<SafetyMonitor*> monitor_{nullptr};
  std::atomic<bool> stop_monitor_{false};
  Thread monitor_sampler_;  // real time
  // Samples every server once for the monitor.
  void SampleForMonitor();
};

}  // namespace standin
