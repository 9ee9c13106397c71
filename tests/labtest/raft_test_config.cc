#include "raft_test_config.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

#include "hazards.h"

namespace standin {

void SleepMicros(uint64_t us) { SleepLikeFramework(us); }

void TestSleep(uint64_t us) {
  Reactor* own = Reactor::HereIfAny();
  if (own == nullptr || !own->adopted() || own->live_coroutines() == 0) {
    SleepMicros(us);
    return;
  }
  own->DriveUntil(NowMicros() + us, [] { return false; });
}

// ----- The launch -------------------------------------------------------------------------

LaunchPlan LaunchPlan::Draw(uint64_t seed, int sites) {
  // Durations are drawn, since nothing of the real machine is known here:
  // a setup thread starts within 0.2 ms of the others, takes 2 - 15 ms
  // (SetupBase, PopTable, SetupService) before its server listens, and a
  // loopback connect takes 0.05 - 0.3 ms; a failed one sleeps 1 s
  // (Communicator::CONNECT_SLEEP_MS) before the next try. Setup runs on the
  // poll thread within 1 ms of being posted.
  std::mt19937_64 random(seed ^ 0x1A07C4ull);
  auto draw = [&](Micros low, Micros high) { return low + random() % (high - low + 1); };
  std::vector<Micros> listening(sites), connected(sites);
  for (int i = 0; i < sites; i++) listening[i] = draw(0, 200) + draw(2000, 15000);
  LaunchPlan plan;
  for (int i = 0; i < sites; i++) {
    Micros now = listening[i];
    for (int j = 0; j < sites; j++) {
      now += draw(50, 300);
      while (now < listening[j]) now += 1000000 + draw(50, 300);
    }
    connected[i] = now;
    plan.setup_at.push_back(now + draw(0, 1000));
  }
  plan.site0_connected = connected[0];
  return plan;
}

LaunchPlan LaunchPlan::Together(int sites) {
  LaunchPlan plan;
  plan.setup_at.assign(sites, 0);
  return plan;
}

std::string LaunchPlan::Describe() const {
  std::ostringstream text;
  text << "setup at";
  for (size_t i = 0; i < setup_at.size(); i++) {
    text << (i ? ", " : " ") << "S" << i << " " << (setup_at[i] / 1000) << " ms";
  }
  return text.str();
}

double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

HostStallMonitor::HostStallMonitor() {
  if (!VirtualWorld::On()) thread_ = std::thread([this] { Run(); });
}

HostStallMonitor::~HostStallMonitor() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void HostStallMonitor::Run() {
  while (!stop_.load()) {
    const Micros before = NowMicros();
    std::this_thread::sleep_for(std::chrono::microseconds(kPeriodUs));
    const Micros slept = NowMicros() - before;
    if (slept > kPeriodUs + 20000) {
      std::lock_guard<std::mutex> lock(mutex_);
      stalls_.push_back(Stall{before + kPeriodUs, slept - kPeriodUs});
    }
  }
}

Micros HostStallMonitor::LongestBetween(Micros begin, Micros end) const {
  std::lock_guard<std::mutex> lock(mutex_);
  Micros longest = 0;
  for (const Stall& stall : stalls_) {
    if (stall.began <= end && stall.began + stall.length >= begin) longest = std::max(longest, stall.length);
  }
  return longest;
}

RaftTestConfig::RaftTestConfig(const Config& config, uint64_t seed, HarnessOptions options)
    : seed_(seed),
      options_(options),
      launch_(options.spread_launch ? LaunchPlan::Draw(seed, NSERVERS) : LaunchPlan::Together(NSERVERS)),
      network_(seed),
      committed_(NSERVERS, std::vector<int>{0}),
      applied_at_(NSERVERS, std::vector<Micros>{0}),
      explicitly_disconnected_(NSERVERS, false),
      rpc_baseline_(NSERVERS, 0),
      network_random_(seed) {
  (void)config;  // Config::Global() was set by the caller; servers read it through the imports
  {
    // A fresh cluster starts with no saved proxies (a failed earlier run in
    // this process may have left some).
    std::lock_guard<std::mutex> lock(RaftCommo::ProxiesMutex());
    RaftCommo::BackupLocked().clear();
  }
  std::mt19937_64 phases(seed ^ 0x5EED);
  for (int i = 0; i < NSERVERS; i++) {
    // Each reactor turns on its own 1 ms grid, as independent threads do.
    reactors_.push_back(std::make_unique<Reactor>("server-" + std::to_string(i), phases() % Reactor::kTurnUs));
    reactors_.back()->set_server(i);
    reactors_.back()->Start();
    app_next_.push_back(std::make_unique<AppNextFn>(
        [this, i](int index, std::shared_ptr<Marshallable> command) {
          ApplyCallback(i, index, command);
          return 0;
        }));
  }
  for (int i = 0; i < NSERVERS; i++) {
    Frame frame{static_cast<uint32_t>(i), static_cast<siteid_t>(i), 0};
    servers_.push_back(
        std::make_unique<RaftServer>(frame, reactors_[i].get(), &network_, app_next_[i].get(), true));
  }
  Launch();
  // The real RaftTestConfig starts its network-control thread when it is
  // built, on the test thread, after the launch.
  network_thread_ = Thread("unreliable-network", [this] {
    SetThreadRole("the unreliable-network thread");
    NetworkControlLoop();
  });
}

void RaftTestConfig::Launch() {
  const Micros began = NowMicros();
  for (int i = 0; i < NSERVERS; i++) servers_[i]->SetupAt(began + launch_.setup_at[i]);
  LogEvent("test", "launch: %s", launch_.Describe().c_str());
  auto all_done = [&] {
    for (auto& server : servers_) {
      if (!server->setup_done()) return false;
    }
    return true;
  };
  // Site 0's thread: its own setup first, then all, each checked every
  // 100 ms, then the settle.
  const Micros first_check = began + launch_.site0_connected;
  if (NowMicros() < first_check) SleepMicros(first_check - NowMicros());
  do {
    SleepMicros(100000);
  } while (!servers_[0]->setup_done());
  while (!all_done()) SleepMicros(100000);
  SleepMicros(300000);  // "Let startup traffic settle before measurements in test 9."
}

RaftTestConfig::~RaftTestConfig() {
  {
    // The real Shutdown: end the network thread, then reconnect every
    // server the test left disconnected.
    std::lock_guard<HarnessMutex> lock(netctl_mutex_);
    finished_ = true;
    netctl_signal_.NotifyAll();
  }
  if (network_thread_.joinable()) network_thread_.join();
  {
    std::lock_guard<HarnessMutex> net(net_mutex_);
    for (int i = 0; i < NSERVERS; i++) {
      if (explicitly_disconnected_[i] && servers_[i]->IsDisconnected()) servers_[i]->Reconnect();
      explicitly_disconnected_[i] = false;
    }
  }
  stop_sampler_ = true;
  if (sampler_.joinable()) sampler_.join();
  stop_monitor_ = true;
  if (VirtualWorld* world = VirtualWorld::Get()) world->ClearObserver();
  if (monitor_sampler_.joinable()) monitor_sampler_.join();
  servers_.clear();  // rust_raft_server_delete: fibers exit at their next wake-up
  for (auto& reactor : reactors_) reactor->Stop();
}

void RaftTestConfig::SetSlowness(int i, Micros us) {
  if (timeline_) timeline_->Slowness(i, options_.older_framework ? us : 0);
  if (options_.older_framework) reactors_[i]->SetSlowness(us);
}

void RaftTestConfig::Fail(const std::string& message) {
  LogEvent("check", "fails: %s", message.c_str());
  if (failure_.empty()) failure_ = message;
}

void RaftTestConfig::ApplyCallback(int server, int index, const std::shared_ptr<Marshallable>& command) {
  if (!command) return;  // as the real learner action: no command, nothing recorded
  auto* lab = dynamic_cast<LabCommand*>(command.get());
  if (SafetyMonitor* monitor = monitor_.load(); monitor != nullptr && lab != nullptr) {
    monitor->Applied(server, index, lab->value);
  }
  std::lock_guard<std::mutex> lock(commit_mutex_);
  auto& list = committed_[server];
  if (lab == nullptr) Fatal("server " + std::to_string(server) + " applied a command of another kind at index " +
                            std::to_string(index) + " (the real harness's verify aborts)");
  if (index != static_cast<int>(list.size())) {
    Fatal("server " + std::to_string(server) + " applied index " + std::to_string(index) + " out of order (expected " +
          std::to_string(list.size()) + "; the real harness's verify aborts)");
  }
  list.push_back(lab->value);
  applied_at_[server].push_back(NowMicros());
  applied_cv_.notify_all();
  if (timeline_) timeline_->Applied(server, static_cast<uint64_t>(index), lab->value);
}

void RaftTestConfig::SetTimeline(Timeline* timeline) {
  timeline_ = timeline;
  sampler_ = Thread("timeline-sampler", [this] {
    std::vector<std::pair<bool, uint64_t>> last(NSERVERS, {false, ~0ull});
    while (!stop_sampler_.load()) {
      for (int i = 0; i < NSERVERS; i++) {
        bool is_leader = false;
        uint64_t term = 0;
        servers_[i]->GetState(&is_leader, &term);
        if (last[i] != std::make_pair(is_leader, term)) {
          last[i] = {is_leader, term};
          timeline_->Role(i, is_leader, term);
        }
      }
      if (VirtualWorld* world = VirtualWorld::Get()) {
        world->SleepUntil(world->Now() + 5000);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
  });
}

void RaftTestConfig::SetMonitor(SafetyMonitor* monitor) {
  monitor_ = monitor;
  if (monitor == nullptr) return;
  if (VirtualWorld* world = VirtualWorld::Get()) {
    world->SetObserver([this] { SampleForMonitor(); });
    return;
  }
  monitor_sampler_ = Thread("safety-monitor", [this] {
    SetThreadRole(kMonitorRole);
    while (!stop_monitor_.load()) {
      SampleForMonitor();
      std::this_thread::sleep_for(std::chrono::microseconds(kRealTimeSampleUs));
    }
  });
}

void RaftTestConfig::SampleForMonitor() {
  SafetyMonitor* monitor = monitor_.load();
  if (monitor == nullptr || stop_monitor_.load()) return;
  for (int i = 0; i < NSERVERS; i++) {
    bool is_leader = false;
    uint64_t term = 0;
    servers_[i]->GetState(&is_leader, &term);
    monitor->Sampled(i, is_leader, term);
  }
  monitor->LeadershipLook();
}

bool RaftTestConfig::WaitAppliedEverywhere(uint64_t index, Micros timeout_us) {
  auto all_applied = [&] {
    for (const auto& list : committed_) {
      if (list.size() <= index) return false;
    }
    return true;
  };
  const Micros deadline = NowMicros() + timeout_us;
  if (VirtualWorld* world = VirtualWorld::Get()) {
    while (true) {
      {
        std::lock_guard<std::mutex> lock(commit_mutex_);
        if (all_applied()) return true;
      }
      if (NowMicros() > deadline) return false;
      world->SleepUntil(NowMicros() + 100);
    }
  }
  std::unique_lock<std::mutex> lock(commit_mutex_);
  return applied_cv_.wait_for(lock, std::chrono::microseconds(timeout_us), all_applied);
}

uint64_t RaftTestConfig::AppliedCount(int i) {
  std::lock_guard<std::mutex> lock(commit_mutex_);
  return committed_[i].size() - 1;
}

Micros RaftTestConfig::AppliedAt(int i, uint64_t index) {
  std::lock_guard<std::mutex> lock(commit_mutex_);
  return index < applied_at_[i].size() ? applied_at_[i][index] : 0;
}

int RaftTestConfig::CurrentLeader() {
  int leader = -1;
  uint64_t best = 0;
  for (int i = 0; i < NSERVERS; i++) {
    if (servers_[i]->IsDisconnected()) continue;
    bool is_leader = false;
    uint64_t term = 0;
    servers_[i]->GetState(&is_leader, &term);
    if (is_leader && term > best) {
      best = term;
      leader = i;
    }
  }
  return leader;
}

// ----- Leaders and terms -------------------------------------------------------------

int RaftTestConfig::OneLeader(int expected) { return WaitOneLeader(true, expected); }

bool RaftTestConfig::NoLeader() { return WaitOneLeader(false, -1) == -1 && failure_.empty(); }

int RaftTestConfig::WaitOneLeader(bool want_leader, int expected) {
  for (int round = 0; round < 10; round++) {
    SleepMicros(ELECTIONTIMEOUT / 10);
    // As the real harness: the highest term seen so far in this round
    // (from 0) decides; a leader of exactly that term is a second leader,
    // a lower term is ignored (so a leader of term 0 always fails).
    int leader = -1;
    uint64_t most_recent_term = 0;
    for (int i = 0; i < NSERVERS; i++) {
      if (servers_[i]->IsDisconnected()) continue;
      bool is_leader = false;
      uint64_t term = 0;
      servers_[i]->GetState(&is_leader, &term);
      if (!is_leader) continue;
      if (term == most_recent_term) {
        char message[128];
        std::snprintf(message, sizeof message, "multiple leaders elected in term %ld", (long)term);
        Fail(message);
        return -1;
      }
      if (term > most_recent_term) {
        most_recent_term = term;
        leader = i;
      }
    }
    if (leader != -1) {
      LogEvent("check", "%s: S%d leads term %lu", want_leader ? "OneLeader" : "NoLeader", leader,
               (unsigned long)most_recent_term);
      SleepMicros(3 * HEARTBEATTIMEOUT);
      if (!want_leader) {
        Fail("leader elected despite lack of quorum");
        return leader;
      }
      if (expected >= 0 && leader != expected) {
        char message[128];
        std::snprintf(message, sizeof message, "unexpected leader change, expecting %d, got %d", expected, leader);
        Fail(message);
        return -1;
      }
      return leader;
    }
  }
  if (want_leader) Fail("waited too long for leader election");
  return -1;
}

int64_t RaftTestConfig::OneTerm() {
  int64_t term = -1;
  for (int i = 0; i < NSERVERS; i++) {
    bool is_leader = false;
    uint64_t t = 0;
    servers_[i]->GetState(&is_leader, &t);
    if (term == -1) {
      term = static_cast<int64_t>(t);
    } else if (term != static_cast<int64_t>(t)) {
      return -1;
    }
  }
  return term;
}

bool RaftTestConfig::TermMovedOn(uint64_t term) {
  for (int i = 0; i < NSERVERS; i++) {
    bool is_leader = false;
    uint64_t t = 0;
    servers_[i]->GetState(&is_leader, &t);
    if (t > term) return true;
  }
  return false;
}

// ----- Agreement -------------------------------------------------------------------

int RaftTestConfig::NCommitted(uint64_t index, int* value) {
  std::lock_guard<std::mutex> lock(commit_mutex_);
  int count = 0;
  int seen = -1;
  for (int i = 0; i < NSERVERS; i++) {
    if (committed_[i].size() > index) {
      const int v = committed_[i][index];
      if (count > 0 && v != seen) return -1;
      seen = v;
      count++;
    }
  }
  if (value != nullptr) *value = seen;
  return count;
}

int RaftTestConfig::CommittedValue(int svr, uint64_t index) {
  std::lock_guard<std::mutex> lock(commit_mutex_);
  return committed_[svr].size() > index ? committed_[svr][index] : -1;
}

uint64_t RaftTestConfig::MaxCommitted() {
  std::lock_guard<std::mutex> lock(commit_mutex_);
  size_t most = 0;
  for (const auto& list : committed_) most = std::max(most, list.size() - 1);
  return most;
}

bool RaftTestConfig::Start(int svr, int cmd, uint64_t* index, uint64_t* term) {
  return servers_[svr]->Start(std::make_shared<LabCommand>(cmd), index, term);
}

int RaftTestConfig::Wait(uint64_t index, int n, uint64_t term) {
  uint64_t sleep_us = 10000;
  for (int poll = 0; poll < 30; poll++) {
    int value = -1;
    const int count = NCommitted(index, &value);
    if (count < 0) return -3;
    if (count >= n) return value;
    SleepMicros(sleep_us);
    if (sleep_us < 1000000) sleep_us *= 2;  // 10, 20, ..., 640 ms, then 1.28 s
    if (TermMovedOn(term)) return -2;
  }
  return -1;
}

uint64_t RaftTestConfig::DoAgreement(int cmd, int n, bool retry) {
  const Micros begin = NowMicros();
  while (NowMicros() - begin < 10000000) {
    SleepMicros(50000);
    uint64_t index = 0;
    for (int i = 0; i < NSERVERS; i++) {
      if (servers_[i]->IsDisconnected()) continue;
      uint64_t idx = 0, term = 0;
      if (Start(i, cmd, &idx, &term)) {
        index = idx;
        break;
      }
    }
    if (index == 0) {
      SleepMicros(50000);
      continue;
    }
    const Micros round = NowMicros();
    const Micros window = options_.older_framework ? kOlderAgreementWindowUs : kAgreementWindowUs;
    while (NowMicros() - round < window) {
      int value = -1;
      const int count = NCommitted(index, &value);
      if (count < 0) break;  // values differ: this round is over
      if (count >= n) {
        if (value == cmd) return index;
        break;
      }
      SleepMicros(20000);
    }
    if (!retry) return 0;
  }
  return 0;
}

// ----- Network control --------------------------------------------------------------

void HarnessAssert(const std::string& message) {
  if (VirtualWorld::On()) throw HarnessAborted{message};
  Fatal(message);
}

void RaftTestConfig::Disconnect(int i) {
  std::lock_guard<HarnessMutex> lock(net_mutex_);
  if (explicitly_disconnected_[i]) HarnessAssert("RaftTestConfig::Disconnect: server " + std::to_string(i) + " is already disconnected");
  if (!servers_[i]->IsDisconnected()) servers_[i]->Disconnect();
  explicitly_disconnected_[i] = true;
  LogEvent("network", "disconnect S%d", i);
  NetworkChanged(i, true);
}

void RaftTestConfig::Reconnect(int i) {
  std::lock_guard<HarnessMutex> lock(net_mutex_);
  if (!explicitly_disconnected_[i]) HarnessAssert("RaftTestConfig::Reconnect: server " + std::to_string(i) + " is not disconnected");
  if (!servers_[i]->IsDisconnected()) {
    HarnessAssert("RaftTestConfig::Reconnect: server " + std::to_string(i) +
          " reports is_disconnected false after an explicit disconnect");
  }
  servers_[i]->Reconnect();
  explicitly_disconnected_[i] = false;
  LogEvent("network", "reconnect S%d", i);
  NetworkChanged(i, false);
}

void RaftTestConfig::NetworkChanged(int i, bool down) {
  if (timeline_) timeline_->Network(i, down);
  if (SafetyMonitor* monitor = monitor_.load()) monitor->NetworkChanged(i, down);
}

bool RaftTestConfig::IsExplicitlyDisconnected(int i) {
  std::lock_guard<HarnessMutex> lock(net_mutex_);
  return explicitly_disconnected_[i];
}

int RaftTestConfig::NDisconnected() {
  std::lock_guard<HarnessMutex> lock(net_mutex_);
  return static_cast<int>(std::count(explicitly_disconnected_.begin(), explicitly_disconnected_.end(), true));
}

void RaftTestConfig::SetUnreliable(bool on) {
  LogEvent("network", "unreliable network %s", on ? "on" : "off");
  std::lock_guard<HarnessMutex> lock(netctl_mutex_);
  unreliable_ = on;
  // Off: returns at once; the thread restores the servers after its
  // current 100 ms sleep (labtest.md, known defect 3).
  if (on) netctl_signal_.NotifyAll();
}

void RaftTestConfig::ReconnectAndSlow(int i, Micros slowness) {
  if (servers_[i]->IsDisconnected()) {
    servers_[i]->Reconnect();
    LogEvent("network", "unreliable: reconnect S%d", i);
    NetworkChanged(i, false);
  }
  // The real slow() begins with verify(!isDisconnected(svr)).
  if (servers_[i]->IsDisconnected()) {
    HarnessAssert("RaftTestConfig::slow: server " + std::to_string(i) +
                  " reports is_disconnected true right after reconnect (the real harness's verify)");
  }
  SetSlowness(i, slowness);
}

void RaftTestConfig::NetworkControlLoop() {
  std::unique_lock<HarnessMutex> lock(netctl_mutex_);
  while (!finished_) {
    if (!unreliable_) {
      {
        std::lock_guard<HarnessMutex> net(net_mutex_);
        for (int i = 0; i < NSERVERS; i++) {
          if (!explicitly_disconnected_[i]) ReconnectAndSlow(i, 0);
        }
      }
      netctl_signal_.Wait(netctl_mutex_, [&] { return unreliable_.load() || finished_; });
      continue;
    }
    {
      std::lock_guard<HarnessMutex> net(net_mutex_);
      for (int i = 0; i < NSERVERS; i++) {
        if (explicitly_disconnected_[i]) continue;
        if (network_random_() % 10 == 0) {
          if (!servers_[i]->IsDisconnected()) {
            servers_[i]->Disconnect();
            LogEvent("network", "unreliable: disconnect S%d", i);
            NetworkChanged(i, true);
          }
        } else {
          ReconnectAndSlow(i, (network_random_() % MAXSLOW) * 1000);
        }
      }
    }
    lock.unlock();
    SleepMicros(100000);
    lock.lock();
  }
  if (unreliable_) {
    unreliable_ = false;
    std::lock_guard<HarnessMutex> net(net_mutex_);
    for (int i = 0; i < NSERVERS; i++) {
      if (!explicitly_disconnected_[i]) ReconnectAndSlow(i, 0);
    }
  }
}

uint64_t RaftTestConfig::RpcCount(int i, bool reset) {
  const uint64_t total = network_.RpcCount(static_cast<siteid_t>(i));
  const uint64_t since = total - rpc_baseline_[i];
  if (reset) rpc_baseline_[i] = total;
  return since;
}

}  // namespace standin
