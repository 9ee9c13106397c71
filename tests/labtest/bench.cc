// labtest --bench: latency, throughput, catch-up and churn of the crate on
// the stand-in, in real time or (with --virtual) in virtual time. Every
// scenario builds a fresh five-server cluster from the run's seed.
#include "bench.h"


#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "raft_test_config.h"

namespace standin {

namespace {
// The benchmark measures this project's crate under the older framework's
// model, whose slowness stalls a slowed server (the catch-up and churn
// scenarios need it; in the 2026 framework slowness has no effect).
HarnessOptions BenchHarness() {
  HarnessOptions options;
  options.older_framework = true;
  return options;
}
}  // namespace

namespace {

// A short sleep of the benchmark's own threads (not the framework's coarse
// one: these are measuring).
void Pause(Micros us) {
  if (VirtualWorld* world = VirtualWorld::Get()) {
    world->SleepUntil(world->Now() + us);
  } else {
    std::this_thread::sleep_for(std::chrono::microseconds(us));
  }
}

// What a scenario cost: wall time, CPU time, RPCs.
class Meter {
 public:
  explicit Meter(RaftTestConfig* cluster)
      : cluster_(cluster), wall_(NowMicros()), cpu_(ProcessCpuSeconds()), rpcs_(cluster->RpcTotal()) {}
  double seconds() const { return (NowMicros() - wall_) / 1e6; }
  uint64_t rpcs() const { return cluster_->RpcTotal() - rpcs_; }
  // CPU share of wall time, in percent; meaningless in virtual time.
  std::string cpu_share() const {
    if (VirtualWorld::On()) return "-";
    char text[32];
    std::snprintf(text, sizeof text, "%.1f%%", 100 * (ProcessCpuSeconds() - cpu_) / std::max(seconds(), 1e-9));
    return text;
  }

 private:
  RaftTestConfig* cluster_;
  Micros wall_;
  double cpu_;
  uint64_t rpcs_;
};

int WaitForLeader(RaftTestConfig* cluster) {
  for (int i = 0; i < 200; i++) {
    const int leader = cluster->CurrentLeader();
    if (leader >= 0) return leader;
    Pause(50000);
  }
  return -1;
}

// Waits until `index` is applied on all five (false after `timeout_us`).
bool WaitApplied(RaftTestConfig* cluster, uint64_t index, Micros timeout_us) {
  return cluster->WaitAppliedEverywhere(index, timeout_us);
}

Micros Percentile(std::vector<Micros> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, static_cast<size_t>(p * values.size()))];
}

// One command at a time: Start on the leader until applied on all five.
void Latency(const Config& config, uint64_t seed) {
  RaftTestConfig cluster(config, seed, BenchHarness());
  const int leader = WaitForLeader(&cluster);
  if (leader < 0) {
    std::printf("latency: no leader\n");
    return;
  }
  Pause(1000000);
  Meter meter(&cluster);
  std::vector<Micros> latencies;
  for (int i = 0; i < 300; i++) {
    uint64_t index = 0, term = 0;
    const Micros begin = NowMicros();
    if (!cluster.Start(leader, 100000 + i, &index, &term)) break;
    if (!WaitApplied(&cluster, index, 5000000)) break;
    Micros last = 0;
    for (int s = 0; s < NSERVERS; s++) last = std::max(last, cluster.AppliedAt(s, index));
    latencies.push_back(last - begin);
    Pause(2000 + i % 7 * 300);  // a quiet cluster: one command in flight at a time
  }
  std::printf("%-44s p50 %5.2f ms  p90 %5.2f ms  p99 %5.2f ms  max %5.2f ms   %4.2f RPCs/entry  cpu %s\n",
              ("latency, 1 command at a time (" + std::to_string(latencies.size()) + ")").c_str(),
              Percentile(latencies, 0.5) / 1e3, Percentile(latencies, 0.9) / 1e3, Percentile(latencies, 0.99) / 1e3,
              Percentile(latencies, 1.0) / 1e3, latencies.empty() ? 0.0 : double(meter.rpcs()) / latencies.size(),
              meter.cpu_share().c_str());
}

// K closed-loop clients, each waiting for its command to be applied on all
// five before the next, for three seconds.
void Throughput(const Config& config, uint64_t seed, int clients) {
  RaftTestConfig cluster(config, seed, BenchHarness());
  const int leader = WaitForLeader(&cluster);
  if (leader < 0) {
    std::printf("throughput: no leader\n");
    return;
  }
  Pause(1000000);
  std::atomic<uint64_t> done{0};
  std::atomic<bool> stop{false};
  const uint64_t applied_before = cluster.AppliedCount(leader);
  Meter meter(&cluster);
  std::vector<Thread> threads;
  for (int c = 0; c < clients; c++) {
    threads.emplace_back("client-" + std::to_string(c), [&, c] {
      for (int i = 0; !stop.load(); i++) {
        uint64_t index = 0, term = 0;
        if (!cluster.Start(leader, c * 100000 + i, &index, &term)) return;
        if (!WaitApplied(&cluster, index, 5000000)) return;
        done++;
      }
    });
  }
  Pause(3000000);
  stop = true;
  for (auto& thread : threads) thread.join();
  const double seconds = meter.seconds();
  const uint64_t entries = cluster.AppliedCount(leader) - applied_before;
  std::printf("%-44s %7.0f entries/s (%lu in %.1f s)           %4.2f RPCs/entry  cpu %s\n",
              ("throughput, " + std::to_string(clients) + " client thread(s)").c_str(), done.load() / seconds,
              (unsigned long)done.load(), seconds, entries ? double(meter.rpcs()) / entries : 0.0, meter.cpu_share().c_str());
}

// A follower `behind` entries behind catches up while every reactor stalls
// `slowness_ms` per loop turn.
void CatchUp(const Config& config, uint64_t seed, uint64_t behind, int slowness_ms) {
  RaftTestConfig cluster(config, seed, BenchHarness());
  const int leader = WaitForLeader(&cluster);
  if (leader < 0) {
    std::printf("catch-up: no leader\n");
    return;
  }
  const int follower = (leader + 1) % NSERVERS;
  cluster.Disconnect(follower);
  uint64_t last = 0;
  for (uint64_t i = 0; i < behind; i++) {
    uint64_t term = 0;
    if (!cluster.Start(leader, static_cast<int>(i), &last, &term)) {
      std::printf("catch-up: the leader changed\n");
      cluster.Reconnect(follower);
      return;
    }
    if (i % 100 == 99) Pause(20000);
  }
  const Micros deadline = NowMicros() + 60000000;
  for (int s = 0; s < NSERVERS; s++) {
    while (s != follower && cluster.AppliedCount(s) < last && NowMicros() < deadline) Pause(10000);
  }
  for (int s = 0; s < NSERVERS; s++) cluster.SetSlowness(s, slowness_ms * 1000);
  Meter meter(&cluster);
  const uint64_t had = cluster.AppliedCount(follower);
  cluster.Reconnect(follower);
  while (cluster.AppliedCount(follower) < last && NowMicros() < deadline) Pause(1000);
  const double seconds = meter.seconds();
  const uint64_t caught = cluster.AppliedCount(follower) - had;
  for (int s = 0; s < NSERVERS; s++) cluster.SetSlowness(s, 0);
  std::printf("%-44s %7.0f entries/s (%lu in %.2f s)          %4.2f RPCs/entry  cpu %s\n",
              ("catch-up, " + std::to_string(behind) + " behind, slowness " + std::to_string(slowness_ms) + " ms").c_str(),
              caught / seconds, (unsigned long)caught, seconds, caught ? double(meter.rpcs()) / caught : 0.0,
              meter.cpu_share().c_str());
}

// Three clients Start on whoever leads while a fourth thread disconnects
// (at most two at a time), reconnects and slows servers (0-26 ms), with the
// unreliable network on, for `seconds`. Returns the longest stretch with no
// new commit anywhere, in us.
Micros Churn(const Config& config, uint64_t seed, int seconds, uint64_t* committed, uint64_t* rpcs, std::string* cpu) {
  // RAFT_BENCH_TRACE=1: what the chaos thread does, leader changes and
  // commit progress, with times, to explain a long gap.
  const bool trace = std::getenv("RAFT_BENCH_TRACE") != nullptr;
  RaftTestConfig cluster(config, seed, BenchHarness());
  WaitForLeader(&cluster);
  std::atomic<bool> stop{false};
  std::vector<Thread> threads;
  for (int c = 0; c < 3; c++) {
    threads.emplace_back("client-" + std::to_string(c), [&, c] {
      for (int i = 0; !stop.load(); i++) {
        for (int s = 0; s < NSERVERS; s++) {
          if (cluster.IsServerDisconnected(s)) continue;
          uint64_t index = 0, term = 0;
          if (cluster.Start(s, c * 1000000 + i, &index, &term)) break;
        }
        Pause(10000);
      }
    });
  }
  threads.emplace_back("chaos", [&] {
    std::mt19937_64 random(seed * 31 + 7);
    std::vector<int> down;
    while (!stop.load()) {
      Pause(200000 + random() % 800000);
      if (stop.load()) break;
      const int server = static_cast<int>(random() % NSERVERS);
      const auto it = std::find(down.begin(), down.end(), server);
      if (it != down.end()) {
        cluster.Reconnect(server);
        down.erase(it);
        if (trace) std::fprintf(stderr, "  %9.3f s chaos: reconnect %d\n", NowMicros() / 1e6, server);
      } else if (down.size() < 2) {
        cluster.Disconnect(server);
        down.push_back(server);
        if (trace) std::fprintf(stderr, "  %9.3f s chaos: disconnect %d\n", NowMicros() / 1e6, server);
      }
      const int slowed = static_cast<int>(random() % NSERVERS);
      const Micros slowness = (random() % 27) * 1000;
      cluster.SetSlowness(slowed, slowness);
      if (trace) std::fprintf(stderr, "  %9.3f s chaos: slowness of %d = %lu ms\n", NowMicros() / 1e6, slowed, (unsigned long)(slowness / 1000));
    }
    for (int server : down) cluster.Reconnect(server);
  });
  cluster.SetUnreliable(true);
  Meter meter(&cluster);
  const Micros begin = NowMicros(), end = begin + seconds * 1000000ull;
  Micros last_progress = begin, longest = 0;
  uint64_t most = 0;
  const uint64_t start_most = [&] {
    uint64_t m = 0;
    for (int s = 0; s < NSERVERS; s++) m = std::max(m, cluster.AppliedCount(s));
    return m;
  }();
  most = start_most;
  int last_leader = -2;
  while (NowMicros() < end) {
    Pause(5000);
    uint64_t now_most = 0;
    for (int s = 0; s < NSERVERS; s++) now_most = std::max(now_most, cluster.AppliedCount(s));
    const Micros now = NowMicros();
    if (trace) {
      const int leader = cluster.CurrentLeader();
      if (leader != last_leader) std::fprintf(stderr, "  %9.3f s leader (highest term, connected): %d\n", now / 1e6, leader);
      last_leader = leader;
      if (now_most > most && now - last_progress > 500000) {
        std::fprintf(stderr, "  %9.3f s commit moves again after %.2f s (index %lu)\n", now / 1e6, (now - last_progress) / 1e6,
                    (unsigned long)now_most);
      }
    }
    if (now_most > most) {
      longest = std::max(longest, now - last_progress);
      last_progress = now;
      most = now_most;
    }
  }
  longest = std::max(longest, NowMicros() - last_progress);
  cluster.SetUnreliable(false);
  stop = true;
  for (auto& thread : threads) thread.join();
  *committed = most - start_most;
  *rpcs = meter.rpcs();
  *cpu = meter.cpu_share();
  for (int s = 0; s < NSERVERS; s++) cluster.SetSlowness(s, 0);
  Pause(300000);  // the network thread restores the servers
  return longest;
}

}  // namespace

int RunBench(const Config& config, uint64_t seed, int churn_seeds) {
  std::printf("labtest --bench: seed %lu, %s\n", (unsigned long)seed,
              VirtualWorld::On() ? "virtual time" : "real time");
  Latency(config, seed);
  for (int clients : {1, 8, 32}) Throughput(config, seed + clients, clients);
  for (int slowness : {0, 13, 26}) CatchUp(config, seed + 100 + slowness, 2000, slowness);
  std::vector<Micros> gaps;
  uint64_t committed = 0, rpcs = 0;
  std::string cpu;
  for (int k = 0; k < churn_seeds; k++) {
    uint64_t c = 0, r = 0;
    gaps.push_back(Churn(config, seed + 1000 + k, 20, &c, &r, &cpu));
    committed += c;
    rpcs += r;
  }
  std::string list;
  for (Micros gap : gaps) list += (list.empty() ? "" : " ") + std::to_string(gap / 1000);
  std::printf("%-44s %5.2f s longest (seeds %lu-%lu: %s ms)  %4.2f RPCs/entry  cpu %s\n",
              ("churn, 20 s x " + std::to_string(churn_seeds) + ": commit gap").c_str(),
              Percentile(gaps, 1.0) / 1e6, (unsigned long)(seed + 1000), (unsigned long)(seed + 999 + churn_seeds),
              list.c_str(), committed ? double(rpcs) / committed : 0.0, cpu.c_str());
  std::fflush(stdout);
  return 0;
}

}  // namespace standin
