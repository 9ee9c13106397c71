// labtest: runs the Raft lab suite against the crate.
//   labtest -f config/raft_lab_test.yml [-t 3,5-7] [-r N] [-s] [--seed N] [--real-test11-defect]
#include <cstdio>
#include <cstdlib>
#include <random>
#include <set>
#include <string>

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
               "  --real-test11-defect  test 11's final reconnect exactly as the real suite (can abort)\n"
               "  --wrap-random-overflow  raft_random_rand with a range wider than int wraps as the real\n"
               "                        formula does in practice, instead of aborting (to run old crates)\n");
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

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  std::set<int> tests;
  unsigned long long repeat = 1, seed = 0;
  bool seed_given = false;
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
    } else if (arg == "--real-test11-defect") {
      options.real_test11_defect = true;
    } else if (arg == "--wrap-random-overflow") {
      standin::SetRandomOverflowWraps(true);
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
  options.ran_test1 = tests.empty() || tests.count(1) > 0;
  if (!seed_given) seed = std::random_device{}();

  const standin::HostStallMonitor host_monitor;
  for (unsigned long long run = 0; run < repeat; run++) {
    const uint64_t run_seed = seed + run;
    standin::SeedFrameworkRandom(run_seed);
    if (options.summary || repeat > 1) std::fprintf(stderr, "labtest: run %llu, seed %llu\n", run + 1, (unsigned long long)run_seed);
    standin::RaftTestConfig cluster(config, run_seed);
    standin::SleepMicros(300000);  // the real harness lets the servers settle after setup
    standin::RaftLabTest suite(&cluster, options, &host_monitor);
    if (!suite.Run(tests)) return 1;
  }
  return 0;
}
