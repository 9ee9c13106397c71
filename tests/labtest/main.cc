// labtest: runs the Raft lab suite against the crate.
//   labtest -f config/raft_lab_test.yml [-t 3,5-7] [-r N] [-s] [--seed N] [--correct-test11]
//           [--virtual [--freeze MS] [--freeze-one MS]]
#include <algorithm>
#include <atomic>
#include <thread>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <vector>
#include <set>
#include <string>

#include "bench.h"
#include "explore.h"
#include "hazards.h"
#include "monitor.h"
#include "raft_lab_test.h"

namespace {

void Usage(FILE* out) {
  std::fprintf(out,
               "usage: labtest -f CONFIG [options]\n"
               "  -f CONFIG             the lab config (config/raft_lab_test.yml)\n"
               "  -t LIST               run only these tests, e.g. 3,5-7 (default: all 11)\n"
               "  -r N                  repeat the run N times, each on a fresh cluster\n"
               "  -s                    print a summary line per test\n"
               "  --seed N              seed of the unreliable network (default: random, printed with -s)\n"
               "  --correct-test11      test 11's final reconnect with the modulo the real suite lacks\n"
               "                        (by default it is the real suite's, which aborts when leader1 = 4\n"
               "                        and leader2 = 0)\n"
               "  --wrap-random-overflow  raft_random_rand with a range wider than int wraps (the default now)\n"
               "                        without recording a hazard\n"
               "  --strict-threads      a framework import off its thread aborts instead of being a hazard\n"
               "  --strict              every hazard aborts (for testing this project's own crate)\n"
               "  --older-framework     the older framework: DoAgreement's 2 s window, slowness stalls the\n"
               "                        slowed server's loop (the 2026 one: 5 s, slowness has no effect)\n"
               "  --launch-together     set all five servers up at once instead of as the real launch does\n"
               "  --virtual             run in virtual time on one OS thread: deterministic by seed;\n"
               "                        prints each run's trace hash; -r N runs seeds N.. and summarizes\n"
               "  --freeze MS           (virtual) freeze the whole process for MS ms every 10-20 s (seeded)\n"
               "  --freeze-one MS       (virtual) freeze one server's reactor for MS ms every 10-20 s\n"
               "  --explore             (virtual) wider schedules within what the real framework can do: messages\n"
               "                        held back up to 50 ms, another ready fiber first, one server stopped up\n"
               "                        to 100 ms, the whole process up to 2 s (numbered choices, printed)\n"
               "  --explore-only LIST   (with --explore) apply only these choices, e.g. m3,f1,p2 ('none': no choice)\n"
               "  --watchdog S          (virtual) end a run that makes no progress for S s of wall time (default 10)\n"
               "  --bench [--churn-seeds N]  the benchmark table instead of the suite (real or --virtual time)\n"
               "  --timeline FILE.html  write a timeline page of the run (one run: not with -r)\n"
               "  --no-monitor          no safety monitor (by default every run is watched for Election Safety,\n"
               "                        one vote per term, State Machine Safety, apply order, terms never\n"
               "                        decreasing, newer terms adopted, the heartbeat limit and more (README);\n"
               "                        findings are printed as\n"
               "                        'labtest: finding: ...' beside the verdict and never change it)\n");
}

bool ParseTests(const std::string& list, std::set<int>* out) {
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    std::string item = list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t dash = item.find('-');
    try {
      size_t used = 0;
      int from = std::stoi(item, &used);
      int to = from;
      if (dash != std::string::npos) {
        to = std::stoi(item.substr(dash + 1), &used);
        used += dash + 1;
      }
      if (used != item.size() || from < 1 || to > standin::RaftLabTest::kNumTests || from > to) return false;
      for (int t = from; t <= to; t++) out->insert(t);
    } catch (...) {
      return false;
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return !out->empty();
}

bool ParseNumber(const char* text, unsigned long long* out) {
  char* end = nullptr;
  errno = 0;
  *out = std::strtoull(text, &end, 10);
  return errno == 0 && end != text && *end == '\0';
}

// This process's resident set size now (VmRSS), in KiB.
unsigned long ResidentKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoul(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

// The end of one run: what the crate left behind, then every hazard.
void ReportRun(size_t commands_before) {
  const size_t commands_now = standin::CommandHandles::live();
  if (commands_now > commands_before) {
    std::fprintf(stderr, "labtest: note: %zu command handle(s) the crate was given were never released (a memory leak "
                         "in the real framework, nothing worse)\n", commands_now - commands_before);
  }
  standin::PrintHazards(stderr);
}

bool WriteTimeline(standin::Timeline* timeline, const std::string& path) {
  std::string error;
  if (!timeline->Write(path, &error)) {
    std::fprintf(stderr, "labtest: %s\n", error.c_str());
    return false;
  }
  std::fprintf(stderr, "labtest: timeline written to %s\n", path.c_str());
  return true;
}

// Every thread of the stand-in as a virtual thread of one scheduler, one
// run per seed. Returns the exit status.
int RunVirtual(const standin::Config& config, const std::set<int>& tests, standin::LabOptions options,
               const standin::HarnessOptions& harness, unsigned long long first_seed, unsigned long long runs, unsigned long long freeze_ms,
               unsigned long long freeze_one_ms, const std::string& timeline_path, const std::string& run_args,
               unsigned long long watchdog_seconds, bool monitor_on, bool explore,
               const std::set<std::string>* explore_only) {
  options.quiet = runs > 1 && !options.summary;
  struct FindingRun {
    unsigned long long seed;
    standin::Finding first;
    uint64_t total;
  };
  std::vector<FindingRun> finding_runs;
  struct Failure {
    unsigned long long seed;
    int test;
    std::string message;
  };
  std::vector<Failure> failures;
  std::vector<uint64_t> rpc_totals;
  const auto wall_begin = std::chrono::steady_clock::now();
  double slowest_run = 0;
  std::map<std::pair<int, int>, int> test11_leaders;  // (leader1, leader2) -> runs
  unsigned long long runs_with_hazards = 0;
  for (unsigned long long run = 0; run < runs; run++) {
    const unsigned long long run_seed = first_seed + run;
    const auto run_begin = std::chrono::steady_clock::now();
    standin::VirtualWorld world(run_seed);
    standin::SeedFrameworkRandom(run_seed);
    standin::ResetHazards();
    standin::SetHazardTest(0);
    const size_t commands_before = standin::CommandHandles::live();
    if (options.summary) std::fprintf(stderr, "labtest: virtual run %llu, seed %llu\n", run + 1, run_seed);
    int failed_test = 0;
    std::string failure;
    uint64_t total_rpcs = 0;
    bool suite_done = false;
    standin::Timeline timeline(standin::NSERVERS);
    standin::SafetyMonitor monitor(standin::NSERVERS, world.Now());
    std::unique_ptr<standin::Explorer> explorer;
    std::string explored_before_failure;
    if (explore) {
      explorer = std::make_unique<standin::Explorer>(run_seed, explore_only);
      standin::Explorer::Set(explorer.get());
    }
    if (!timeline_path.empty()) monitor.SetTimeline(&timeline);
    if (monitor_on) standin::SetRunObserver(&monitor);
    world.Spawn("test", [&] {
      standin::SetThreadRole("the test thread");
      standin::RaftTestConfig cluster(config, run_seed, harness);
      if (!timeline_path.empty()) cluster.SetTimeline(&timeline);
      if (monitor_on) cluster.SetMonitor(&monitor);
      // Freezes at seeded moments, until the suite is over.
      standin::Thread freezer;
      if (freeze_ms > 0 || freeze_one_ms > 0) {
        freezer = standin::Thread("freezer", [&] {
          std::mt19937_64 random(run_seed ^ 0xF4EE2E);
          standin::VirtualWorld* w = standin::VirtualWorld::Get();
          while (!suite_done) {
            w->SleepUntil(w->Now() + 10000000 + random() % 10000000);
            if (suite_done) break;
            if (freeze_ms > 0) w->FreezeAll(freeze_ms * 1000);
            if (freeze_one_ms > 0) cluster.FreezeServer(static_cast<int>(random() % standin::NSERVERS), freeze_one_ms * 1000);
          }
        });
      }
      // Explored runs: stalls of one server or the whole process (explore.h).
      standin::Thread staller;
      if (explorer) {
        staller = standin::Thread("explorer-stalls", [&] {
          standin::VirtualWorld* w = standin::VirtualWorld::Get();
          while (!suite_done) {
            const standin::Explorer::Stall stall = explorer->NextStall(standin::NSERVERS);
            w->SleepUntil(w->Now() + stall.gap);
            if (suite_done) break;
            if (!stall.apply) continue;
            if (stall.server < 0) {
              w->FreezeAll(stall.length);
            } else {
              cluster.FreezeServer(stall.server, stall.length);
            }
          }
        });
      }
      standin::RaftLabTest suite(&cluster, options);
      try {
        if (!suite.Run(tests)) {
          failed_test = suite.failed_test() != 0 ? suite.failed_test() : -1;
          failure = suite.failure();
        }
      } catch (const standin::HarnessAborted& abort) {
        // The real framework aborts the process here; this run is over.
        failed_test = suite.current_test();
        failure = "aborted: " + abort.message;
        if (!options.quiet || runs == 1) std::fprintf(stderr, "standin: %s (the real framework aborts here)\n", abort.message.c_str());
      }
      standin::SetHazardTest(-1);
      if (failed_test != 0 && explorer) explored_before_failure = explorer->DrawnSoFar();
      if (suite.test11_leaders().second >= 0) test11_leaders[suite.test11_leaders()]++;
      total_rpcs = suite.total_rpcs();
      suite_done = true;
      freezer.join();  // it may sleep up to 20 s of virtual time more: no matter
      staller.join();
    }, 4 << 20);
    // One OS thread runs everything: a crate that blocks it outside the
    // scheduler (a lock held across a wait, taken again by another virtual
    // thread) would hang the run. A watchdog names the thread instead.
    // (It waits on a condition the end of the run signals: a plain 200 ms
    // sleep would add up to 200 ms of wall time to every run.)
    std::mutex watchdog_mutex;
    std::condition_variable watchdog_wake;
    bool world_done = false;
    std::thread watchdog([&] {
      uint64_t last = world.switches();
      int still = 0;
      std::unique_lock<std::mutex> lock(watchdog_mutex);
      while (!watchdog_wake.wait_for(lock, std::chrono::milliseconds(200), [&] { return world_done; })) {
        const uint64_t now = world.switches();
        still = now == last ? still + 1 : 0;
        last = now;
        if (still >= static_cast<int>(watchdog_seconds * 5)) {
          std::fprintf(stderr, "labtest --virtual: no progress for %llu s of wall time in test %d: virtual thread '%s' is "
                               "blocked or spinning outside the scheduler (a lock held across a wait, or a busy loop)\n",
                       watchdog_seconds, standin::RunningTest(), world.running_name());
          std::fflush(stderr);
          std::abort();
        }
      }
    });
    const bool finished = world.Run();
    {
      std::lock_guard<std::mutex> lock(watchdog_mutex);
      world_done = true;
    }
    watchdog_wake.notify_one();
    watchdog.join();
    standin::SetRunObserver(nullptr);
    standin::Explorer::Set(nullptr);
    if (!timeline_path.empty() && !WriteTimeline(&timeline, timeline_path)) return 2;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_begin).count();
    if (!finished) {
      failed_test = failed_test != 0 ? failed_test : standin::RunningTest();
      failure = "deadlock (see above)";
      std::fprintf(stderr, "labtest --virtual: the deadlock came in test %d\n", failed_test);
    }
    // Only what the seed determines, so two runs of a seed print the same bytes.
    std::fprintf(stderr, "virtual run seed %llu: trace hash %016llx (%s, %.1f s of virtual time)\n", run_seed,
                 (unsigned long long)world.trace_hash(), failed_test == 0 ? "passed" : "FAILED", world.Now() / 1e6);
    // (A crate that started OS threads was reported when it started the first.)
    const std::string replay = "labtest -f CONFIG --virtual --seed " + std::to_string(run_seed) + " -t 1-{TEST}" + run_args;
    if (!options.quiet || runs == 1) {
      ReportRun(commands_before);
      monitor.Print(stderr, replay);
      if (explorer) {
        const std::vector<std::string> applied = explorer->applied();
        std::fprintf(stderr, "labtest: explore: %zu of %llu choices applied: %s\n", applied.size(),
                     (unsigned long long)explorer->drawn(), standin::Explorer::FormatList(applied).c_str());
        if (!explored_before_failure.empty()) {
          std::fprintf(stderr, "labtest: explore: choices drawn before the failure: %s\n", explored_before_failure.c_str());
        }
      }
    } else if (!standin::Hazards().empty()) {
      runs_with_hazards++;
    }
    if (monitor.total() > 0) finding_runs.push_back(FindingRun{run_seed, monitor.findings().front(), monitor.total()});
    slowest_run = std::max(slowest_run, seconds);
    if (failed_test != 0) {
      failures.push_back(Failure{run_seed, failed_test, failure});
      if (!finished) break;  // a deadlocked world cannot be torn down cleanly
    } else {
      rpc_totals.push_back(total_rpcs);
    }
  }
  if (runs > 1) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_begin).count();
    std::fprintf(stderr, "\nlabtest --virtual: %llu of %llu runs passed (seeds %llu-%llu) in %.1f s of wall time (slowest run %.2f s)\n",
                 runs - failures.size(), runs, first_seed, first_seed + runs - 1, seconds, slowest_run);
    if (!rpc_totals.empty()) {
      std::sort(rpc_totals.begin(), rpc_totals.end());
      std::fprintf(stderr, "Total RPC count: median %lu (min %lu, max %lu)\n", (unsigned long)rpc_totals[rpc_totals.size() / 2],
                   (unsigned long)rpc_totals.front(), (unsigned long)rpc_totals.back());
    }
    std::map<int, std::vector<const Failure*>> by_test;
    for (const Failure& f : failures) by_test[f.test].push_back(&f);
    for (const auto& entry : by_test) {
      std::fprintf(stderr, "  test %d: %zu failure(s)\n", entry.first, entry.second.size());
      for (const Failure* f : entry.second) {
        // Tests 1..K replay the run exactly: it stopped at K's failure.
        std::fprintf(stderr, "    seed %llu: %s\n      replay: labtest -f CONFIG --virtual --seed %llu -t 1-%d%s\n", f->seed,
                     f->message.c_str(), f->seed, f->test, run_args.c_str());
      }
    }
    if (monitor_on) {
      std::fprintf(stderr, "findings: %zu of %llu runs raised findings of the safety monitor\n", finding_runs.size(), runs);
      for (const FindingRun& run : finding_runs) {
        std::fprintf(stderr, "  seed %llu: %llu finding(s), first: %s: %s (test %d)\n      replay: labtest -f CONFIG --virtual --seed %llu -t 1-%d%s\n",
                     run.seed, (unsigned long long)run.total, run.first.property.c_str(), run.first.detail.c_str(),
                     run.first.test, run.seed, std::max(1, run.first.test), run_args.c_str());
      }
    }
    if (runs_with_hazards > 0) {
      std::fprintf(stderr, "hazards: %llu run(s) recorded hazards (run a seed alone to see them)\n", runs_with_hazards);
    }
    std::fprintf(stderr, "memory: %lu event and RaftData handles kept by the framework (never freed, as in the real "
                         "framework); resident size now %lu KiB\n", (unsigned long)standin::KeptHandles(),
                 (unsigned long)ResidentKiB());
    if (!test11_leaders.empty()) {
      // Who led test 11's last try, and who was elected next among the
      // three servers it reconnected (labtest.md, test 11).
      std::fprintf(stderr, "test 11 (leader1, leader2) over the runs that got there:");
      for (const auto& entry : test11_leaders) {
        std::fprintf(stderr, " (%d,%d) %d", entry.first.first, entry.first.second, entry.second);
      }
      std::fprintf(stderr, "\n");
    }
  }
  return failures.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  std::set<int> tests;
  unsigned long long repeat = 1, seed = 0, freeze_ms = 0, freeze_one_ms = 0, watchdog_seconds = 10;
  bool seed_given = false, virtual_time = false, bench = false, strict_threads = false, strict_all = false;
  bool monitor_on = true, explore = false;
  bool explore_restricted = false;
  std::set<std::string> explore_only;
  std::string explore_only_text;
  standin::HarnessOptions harness;
  unsigned long long churn_seeds = 0;
  std::string timeline_path;
  standin::LabOptions options;
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i];
    auto value = [&](const char* flag) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "labtest: %s needs a value\n", flag);
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "-f") {
      config_path = value("-f");
    } else if (arg == "-t") {
      const char* list = value("-t");
      if (!ParseTests(list, &tests)) {
        std::fprintf(stderr, "labtest: bad test list '%s' (expected numbers 1-11 like 3,5-7)\n", list);
        return 2;
      }
    } else if (arg == "-r") {
      const char* n = value("-r");
      if (!ParseNumber(n, &repeat) || repeat == 0) {
        std::fprintf(stderr, "labtest: bad repeat count '%s'\n", n);
        return 2;
      }
    } else if (arg == "-s") {
      options.summary = true;
    } else if (arg == "--seed") {
      const char* n = value("--seed");
      if (!ParseNumber(n, &seed)) {
        std::fprintf(stderr, "labtest: bad seed '%s'\n", n);
        return 2;
      }
      seed_given = true;
    } else if (arg == "--correct-test11") {
      options.correct_test11 = true;
    } else if (arg == "--virtual") {
      virtual_time = true;
    } else if (arg == "--timeline") {
      timeline_path = value("--timeline");
    } else if (arg == "--bench") {
      bench = true;
    } else if (arg == "--churn-seeds") {
      const char* n = value("--churn-seeds");
      if (!ParseNumber(n, &churn_seeds)) {
        std::fprintf(stderr, "labtest: bad --churn-seeds '%s'\n", n);
        return 2;
      }
    } else if (arg == "--freeze" || arg == "--freeze-one") {
      const char* n = value(arg.c_str());
      if (!ParseNumber(n, arg == "--freeze" ? &freeze_ms : &freeze_one_ms)) {
        std::fprintf(stderr, "labtest: bad %s value '%s' (milliseconds)\n", arg.c_str(), n);
        return 2;
      }
    } else if (arg == "--watchdog") {
      const char* n = value("--watchdog");
      if (!ParseNumber(n, &watchdog_seconds) || watchdog_seconds == 0) {
        std::fprintf(stderr, "labtest: bad --watchdog value '%s' (seconds, at least 1)\n", n);
        return 2;
      }
    } else if (arg == "--wrap-random-overflow") {
      standin::SetRandomOverflowWraps(true);
    } else if (arg == "--strict-threads") {
      strict_threads = true;
    } else if (arg == "--strict") {
      strict_all = true;
    } else if (arg == "--older-framework") {
      harness.older_framework = true;
    } else if (arg == "--explore") {
      explore = true;
    } else if (arg == "--explore-only") {
      explore_only_text = value("--explore-only");
      std::string parse_error;
      if (!standin::Explorer::ParseList(explore_only_text, &explore_only, &parse_error)) {
        std::fprintf(stderr, "labtest: bad --explore-only list: %s\n", parse_error.c_str());
        return 2;
      }
      explore_restricted = true;
    } else if (arg == "--no-monitor") {
      monitor_on = false;
    } else if (arg == "--launch-together") {
      harness.spread_launch = false;
    } else if (arg == "-h" || arg == "--help") {
      Usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "labtest: unknown argument '%s'\n", arg.c_str());
      Usage(stderr);
      return 2;
    }
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "labtest: no config given (use -f config/raft_lab_test.yml)\n");
    return 2;
  }
  standin::Config config;
  std::string error;
  if (!standin::Config::Load(config_path, &config, &error)) {
    std::fprintf(stderr, "labtest: %s\n", error.c_str());
    return 2;
  }
  if (config.PartitionSize(0) != standin::NSERVERS) {
    std::fprintf(stderr, "labtest: config '%s' has %d servers in partition 0; the Raft lab needs %d\n",
                 config_path.c_str(), config.PartitionSize(0), standin::NSERVERS);
    return 2;
  }
  standin::Config::SetGlobal(&config);
  standin::SetStrictness(strict_threads, strict_all);
  options.ran_test1 = tests.empty() || tests.count(1) > 0;
  if (!seed_given) seed = std::random_device{}();

  if (!timeline_path.empty()) {
    if (repeat != 1 || bench) {
      std::fprintf(stderr, "labtest: --timeline draws one run: not with -r or --bench\n");
      return 2;
    }
    std::ofstream probe(timeline_path);
    if (!probe) {
      std::fprintf(stderr, "labtest: cannot write the timeline to '%s'\n", timeline_path.c_str());
      return 2;
    }
  }
  if ((explore || explore_restricted) && !virtual_time) {
    std::fprintf(stderr, "labtest: --explore needs --virtual (its choices are exact only in virtual time)\n");
    return 2;
  }
  if (explore_restricted && !explore) {
    std::fprintf(stderr, "labtest: --explore-only needs --explore\n");
    return 2;
  }
  if ((freeze_ms > 0 || freeze_one_ms > 0) && !virtual_time) {
    std::fprintf(stderr, "labtest: --freeze and --freeze-one need --virtual (in real time, use scripts/stress --freeze)\n");
    return 2;
  }
  if (bench) {
    const int seeds = churn_seeds > 0 ? static_cast<int>(churn_seeds) : (virtual_time ? 10 : 3);
    standin::SeedFrameworkRandom(seed);
    if (!virtual_time) return standin::RunBench(config, seed, seeds);
    standin::VirtualWorld world(seed);
    int status = 0;
    world.Spawn("bench", [&] { status = standin::RunBench(config, seed, seeds); }, 4 << 20);
    return world.Run() ? status : 3;
  }
  if (virtual_time) {
    // What a replay command must repeat besides the seed and the tests.
    std::string run_args;
    if (freeze_ms > 0) run_args += " --freeze " + std::to_string(freeze_ms);
    if (freeze_one_ms > 0) run_args += " --freeze-one " + std::to_string(freeze_one_ms);
    if (options.correct_test11) run_args += " --correct-test11";
    if (standin::RandomOverflowWraps()) run_args += " --wrap-random-overflow";
    if (strict_all) run_args += " --strict";
    if (strict_threads) run_args += " --strict-threads";
    if (harness.older_framework) run_args += " --older-framework";
    if (!harness.spread_launch) run_args += " --launch-together";
    if (!monitor_on) run_args += " --no-monitor";
    if (explore) run_args += " --explore";
    if (explore_restricted) {
      run_args += " --explore-only " +
                  standin::Explorer::FormatList(std::vector<std::string>(explore_only.begin(), explore_only.end()));
    }
    return RunVirtual(config, tests, options, harness, seed, repeat, freeze_ms, freeze_one_ms, timeline_path, run_args,
                      watchdog_seconds, monitor_on, explore, explore_restricted ? &explore_only : nullptr);
  }

  const standin::HostStallMonitor host_monitor;
  standin::SetThreadRole("the test thread");
  for (unsigned long long run = 0; run < repeat; run++) {
    const uint64_t run_seed = seed + run;
    standin::SeedFrameworkRandom(run_seed);
    standin::ResetHazards();
    standin::SetHazardTest(0);
    const size_t commands_before = standin::CommandHandles::live();
    if (options.summary || repeat > 1) std::fprintf(stderr, "labtest: run %llu, seed %llu\n", run + 1, (unsigned long long)run_seed);
    standin::Timeline timeline(standin::NSERVERS);
    standin::SafetyMonitor monitor(standin::NSERVERS, standin::NowMicros());
    if (!timeline_path.empty()) monitor.SetTimeline(&timeline);
    if (monitor_on) standin::SetRunObserver(&monitor);
    bool passed = false;
    {
      standin::RaftTestConfig cluster(config, run_seed, harness);
      if (!timeline_path.empty()) cluster.SetTimeline(&timeline);
      if (monitor_on) cluster.SetMonitor(&monitor);
      standin::RaftLabTest suite(&cluster, options, &host_monitor);
      passed = suite.Run(tests);
    }
    standin::SetRunObserver(nullptr);
    standin::Reactor::EndThisThreadsReactor();  // as the real test thread's at exit
    ReportRun(commands_before);
    monitor.Print(stderr, "labtest -f CONFIG --seed " + std::to_string(run_seed) + " -t 1-{TEST} (real time: the same "
                          "seed, not the same schedule)");
    if (!timeline_path.empty() && !WriteTimeline(&timeline, timeline_path)) return 2;
    if (!passed) return 1;
  }
  return 0;
}
