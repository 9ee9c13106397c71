#include "raft_lab_test.h"

#include "hazards.h"


#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <set>
#include <thread>

namespace standin {

namespace {
std::string Format(const char* format, ...) {
  char buffer[256];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buffer, sizeof buffer, format, args);
  va_end(args);
  return buffer;
}
}  // namespace

// A failed check: record the message (the real suite's text) and leave the
// test.
#define FAIL_TEST(...)                  \
  do {                                  \
    config_->Fail(Format(__VA_ARGS__)); \
    return false;                       \
  } while (0)
#define CHECK(cond, ...)          \
  do {                            \
    if (!(cond)) FAIL_TEST(__VA_ARGS__); \
  } while (0)
// A helper that already recorded its own message failed.
#define CHECK_HELPER(ok)     \
  do {                       \
    if (!(ok)) return false; \
  } while (0)

namespace {
std::atomic<int> g_running_test{0};
}  // namespace

int RunningTest() { return g_running_test.load(); }

RaftLabTest::RaftLabTest(RaftTestConfig* config, LabOptions options, const HostStallMonitor* monitor)
    : config_(config), options_(options), monitor_(monitor) {}

const char* RaftLabTest::Name(int test) {
  static const char* const kNames[] = {"",
                                       "Initial election",
                                       "Re-election after network failure",
                                       "Basic agreement",
                                       "Agreement despite follower disconnection",
                                       "No agreement if too many followers disconnect",
                                       "Rejoin of disconnected leader",
                                       "Concurrently started agreements",
                                       "Leader backs up quickly over incorrect follower logs",
                                       "RPC counts aren't too high",
                                       "Unreliable agreement (takes a few minutes)",
                                       "Figure 8"};
  return (test >= 1 && test <= kNumTests) ? kNames[test] : "?";
}

bool RaftLabTest::Run(const std::set<int>& selected) {
  // "Total RPC count" counts from here: the raft run, not server start.
  const uint64_t rpcs_at_start = config_->RpcTotal();
  for (int test = 1; test <= kNumTests; test++) {
    if (!selected.empty() && selected.count(test) == 0) continue;
    current_test_ = test;
    g_running_test = test;
    SetHazardTest(test);
    if (!options_.quiet) std::fprintf(stderr, "TEST %d: %s\n", test, Name(test));
    Preamble();
    const Micros begin = NowMicros();
    const double cpu_before = ProcessCpuSeconds();
    const uint64_t rpcs_before = config_->RpcTotal();
    const uint64_t committed_before = config_->MaxCommitted();
    const Network& net = config_->network();
    const uint64_t votes_before = net.delivered_votes(), appends_before = net.delivered_appends(),
                   empty_before = net.delivered_empty_appends();
    config_->ClearFailure();
    if (Timeline* timeline = config_->timeline()) timeline->TestBegin(test, Name(test));
    LogEvent("test", "TEST %d: %s", test, Name(test));
    const bool passed = RunOne(test);
    LogEvent("test", "TEST %d %s", test, passed ? "passed" : "failed");
    if (Timeline* timeline = config_->timeline()) {
      timeline->TestEnd(test, passed, config_->failure(), config_->RpcTotal() - rpcs_before);
    }
    const Micros stall = monitor_ != nullptr ? monitor_->LongestBetween(begin, NowMicros()) : 0;
    if (!passed) {
      std::string message = config_->failure().empty() ? "unknown failure" : config_->failure();
      failed_test_ = test;
      failure_ = message;
      if (options_.quiet) std::fprintf(stderr, "TEST %d: %s\n", test, Name(test));
      std::fprintf(stderr, "TEST %d Failed: %s\n", test, message.c_str());
      std::fprintf(stderr, "TESTS FAILED\n");
      SetHazardTest(-1);
      if (stall > kToleratedStallUs) {
        // Not part of the real suite's output: a note for whoever reads a
        // failure (and for CI, which retries such a run once).
        std::fprintf(stderr, "labtest: test %d overlapped a host stall of %.1f s (the harness's windows tolerate %.0f s)\n",
                     test, stall / 1e6, kToleratedStallUs / 1e6);
      }
      return false;
    }
    if (!options_.quiet) std::fprintf(stderr, "TEST %d Passed\n", test);
    if (options_.summary && VirtualWorld::On()) {
      // Only what a seed determines: virtual seconds, no CPU or host figures.
      std::fprintf(stderr, "  ... Passed -- %6.1fs  %d peers  %5lu RPCs  %4lu cmds  (virtual time; delivered: %lu votes, %lu entries, %lu empty)\n",
                   (NowMicros() - begin) / 1e6, NSERVERS, (unsigned long)(config_->RpcTotal() - rpcs_before),
                   (unsigned long)(config_->MaxCommitted() - committed_before),
                   (unsigned long)(net.delivered_votes() - votes_before),
                   (unsigned long)(net.delivered_appends() - appends_before),
                   (unsigned long)(net.delivered_empty_appends() - empty_before));
    } else if (options_.summary) {
      std::fprintf(stderr, "  ... Passed -- %6.1fs  %d peers  %5lu RPCs  %4lu cmds  (cpu %.2fs; delivered: %lu votes, %lu entries, %lu empty; longest host stall %lu ms)\n",
                   (NowMicros() - begin) / 1e6, NSERVERS, (unsigned long)(config_->RpcTotal() - rpcs_before),
                   (unsigned long)(config_->MaxCommitted() - committed_before), ProcessCpuSeconds() - cpu_before,
                   (unsigned long)(net.delivered_votes() - votes_before),
                   (unsigned long)(net.delivered_appends() - appends_before),
                   (unsigned long)(net.delivered_empty_appends() - empty_before), (unsigned long)(stall / 1000));
    }
  }
  total_rpcs_ = config_->RpcTotal() - rpcs_at_start;
  SetHazardTest(-1);
  if (!options_.quiet) {
    std::fprintf(stderr, "ALL TESTS PASSED\n");
    std::fprintf(stderr, "Total RPC count: %lu\n", (unsigned long)total_rpcs_);
  }
  return true;
}

// The real suite asserts (an abort, not a failure message) that every test
// starts with all servers connected and a reliable network.
void RaftLabTest::Preamble() {
  if (config_->NDisconnected() != 0 || config_->IsUnreliable()) {
    HarnessAssert("a test starts with a server still disconnected or the network unreliable (the real suite's assertion)");
  }
}

bool RaftLabTest::RunOne(int test) {
  switch (test) {
    case 1: return TestInitialElection();
    case 2: return TestReElection();
    case 3: return TestBasicAgreement();
    case 4: return TestFailAgree();
    case 5: return TestFailNoAgree();
    case 6: return TestRejoin();
    case 7: return TestConcurrentStarts();
    case 8: return TestBackup();
    case 9: return TestRpcCount();
    case 10: return TestUnreliableAgree();
    case 11: return TestFigure8();
  }
  return false;
}

uint64_t RaftLabTest::AllRpcs() {
  uint64_t total = 0;
  for (int i = 0; i < NSERVERS; i++) total += config_->RpcCount(i);
  return total;
}

// ----- Shared checks (labtest.md, "The tests") -------------------------------------------

bool RaftLabTest::NoneCommitted(uint64_t index) {
  const int n = config_->NCommitted(index);
  CHECK(n == 0, "%d servers unexpectedly committed index %ld", n, (long)index);
  return true;
}

bool RaftLabTest::NCommittedIs(uint64_t index, int expected) {
  const int n = config_->NCommitted(index);
  CHECK(n == expected, "%d servers committed index %ld (%d expected)", n, (long)index, expected);
  return true;
}

bool RaftLabTest::StartOk(bool ok) {
  CHECK(ok, "unexpected leader change during Start()");
  return true;
}

bool RaftLabTest::AgreeAt(int cmd, int n) {
  const uint64_t got = config_->DoAgreement(cmd, n, false);
  CHECK(got > 0, "failed to reach agreement for command %d among %d servers, expected commit index>0, got %ld", cmd, n,
        (long)got);
  CHECK(got == index_, "agreement index incorrect. got %ld, expected %ld", (long)got, (long)index_);
  index_++;
  return true;
}

bool RaftLabTest::Agree(int cmd, int n) {
  const uint64_t got = config_->DoAgreement(cmd, n, true);
  CHECK(got > 0, "failed to reach agreement for command %d among %d servers", cmd, n);
  index_ = got + 1;
  return true;
}

bool RaftLabTest::ReElected(int new_leader, int old_leader) {
  CHECK(new_leader != old_leader, "no reelection despite leader being disconnected");
  return true;
}

bool RaftLabTest::WaitOk(int result, uint64_t index, int n) {
  CHECK(result != -3, "committed values differ for index %ld", (long)index);
  CHECK(result != -1, "waited too long for %d server(s) to commit index %ld", n, (long)index);
  CHECK(result != -2, "term moved on before index %ld committed by %d server(s)", (long)index, n);
  return true;
}

// ----- The tests ----------------------------------------------------------------------------

// 1
bool RaftLabTest::TestInitialElection() {
  const int leader = config_->OneLeader();
  CHECK_HELPER(leader >= 0);
  init_rpcs_ = static_cast<int64_t>(AllRpcs());
  const int64_t term = config_->OneTerm();
  CHECK(term != -1, "servers disagree on term number");
  TestSleep(ELECTIONTIMEOUT);
  CHECK(config_->OneTerm() == term, "unexpected term change");
  CHECK_HELPER(config_->OneLeader(leader) >= 0);
  return true;
}

// 2
bool RaftLabTest::TestReElection() {
  const int leader = config_->OneLeader();
  CHECK_HELPER(leader >= 0);
  config_->Disconnect(leader);
  TestSleep(ELECTIONTIMEOUT);
  const int new_leader = config_->OneLeader();
  CHECK_HELPER(new_leader >= 0);
  CHECK_HELPER(ReElected(new_leader, leader));
  config_->Reconnect(leader);
  TestSleep(ELECTIONTIMEOUT);
  CHECK_HELPER(config_->OneLeader(new_leader) >= 0);
  const int n1 = (new_leader + 1) % NSERVERS, n2 = (new_leader + 2) % NSERVERS;
  config_->Disconnect(n1);
  config_->Disconnect(n2);
  config_->Disconnect(new_leader);
  CHECK_HELPER(config_->NoLeader());
  config_->Reconnect(n2);
  TestSleep(ELECTIONTIMEOUT);
  CHECK_HELPER(config_->OneLeader() >= 0);
  config_->Reconnect(n1);
  config_->Reconnect(new_leader);
  TestSleep(ELECTIONTIMEOUT);
  CHECK_HELPER(config_->OneLeader() >= 0);
  return true;
}

// 3
bool RaftLabTest::TestBasicAgreement() {
  for (int i = 0; i < 3; i++) {
    CHECK_HELPER(NoneCommitted(index_));
    CHECK_HELPER(AgreeAt(static_cast<int>(index_) + 300, NSERVERS));
  }
  return true;
}

// 4
bool RaftLabTest::TestFailAgree() {
  const int leader = config_->OneLeader();
  CHECK_HELPER(leader >= 0);
  const int f1 = (leader + 1) % NSERVERS, f2 = (leader + 2) % NSERVERS;
  config_->Disconnect(f1);
  config_->Disconnect(f2);
  CHECK_HELPER(AgreeAt(401, NSERVERS - 2));
  CHECK_HELPER(AgreeAt(402, NSERVERS - 2));
  TestSleep(ELECTIONTIMEOUT);
  CHECK_HELPER(AgreeAt(403, NSERVERS - 2));
  CHECK_HELPER(AgreeAt(404, NSERVERS - 2));
  config_->Reconnect(f1);
  config_->Reconnect(f2);
  TestSleep(ELECTIONTIMEOUT);
  CHECK_HELPER(Agree(405, NSERVERS));
  CHECK_HELPER(Agree(406, NSERVERS));
  return true;
}

// 5
bool RaftLabTest::TestFailNoAgree() {
  const int leader = config_->OneLeader();
  CHECK_HELPER(leader >= 0);
  for (int k = 1; k <= 3; k++) config_->Disconnect((leader + k) % NSERVERS);
  uint64_t index = 0, term = 0;
  CHECK_HELPER(StartOk(config_->Start(leader, 501, &index, &term)));
  const uint64_t expected = index_++;
  CHECK(index == expected && term > 0,
        "Start() returned unexpected index (%ld, expected %ld) and/or term (%ld, expected >0)", (long)index,
        (long)expected, (long)term);
  TestSleep(ELECTIONTIMEOUT);
  CHECK_HELPER(NoneCommitted(index));
  for (int k = 1; k <= 3; k++) config_->Reconnect((leader + k) % NSERVERS);
  TestSleep(ELECTIONTIMEOUT);
  CHECK_HELPER(Agree(502, NSERVERS));
  return true;
}

// 6
bool RaftLabTest::TestRejoin() {
  CHECK_HELPER(AgreeAt(601, NSERVERS));
  const int leader1 = config_->OneLeader();
  CHECK_HELPER(leader1 >= 0);
  config_->Disconnect(leader1);
  TestSleep(ELECTIONTIMEOUT);
  for (int cmd = 602; cmd <= 604; cmd++) {
    uint64_t index = 0, term = 0;
    CHECK_HELPER(StartOk(config_->Start(leader1, cmd, &index, &term)));
  }
  CHECK_HELPER(Agree(605, NSERVERS - 1));
  CHECK_HELPER(Agree(606, NSERVERS - 1));
  const int leader2 = config_->OneLeader();
  CHECK_HELPER(leader2 >= 0);
  CHECK_HELPER(ReElected(leader2, leader1));
  config_->Disconnect(leader2);
  config_->Reconnect(leader1);
  TestSleep(ELECTIONTIMEOUT);
  const int leader3 = config_->OneLeader();
  CHECK_HELPER(leader3 >= 0);
  CHECK_HELPER(ReElected(leader3, leader2));
  CHECK_HELPER(Agree(607, NSERVERS - 1));
  CHECK_HELPER(Agree(608, NSERVERS - 1));
  config_->Reconnect(leader2);
  CHECK_HELPER(Agree(609, NSERVERS));
  return true;
}

// 7
bool RaftLabTest::TestConcurrentStarts() {
  bool success = false;
  for (int attempt = 0; attempt < 5 && !success; attempt++) {
    if (attempt > 0) TestSleep(3000000);
    const int leader = config_->OneLeader();
    CHECK_HELPER(leader >= 0);
    uint64_t first_index = 0, term = 0;
    if (!config_->Start(leader, 701, &first_index, &term)) continue;
    struct Result {
      bool ok = false;
      uint64_t index = 0, term = 0;
    };
    std::vector<Result> results(5);
    std::vector<Thread> threads;
    for (int i = 0; i < 5; i++) {
      threads.emplace_back("start-" + std::to_string(i), [this, leader, i, &results] {
        SetThreadRole("a helper thread of test 7");
        results[i].ok = config_->Start(leader, 701 + i, &results[i].index, &results[i].term);
      });
    }
    for (auto& thread : threads) thread.join();
    if (config_->TermMovedOn(term)) continue;
    std::vector<uint64_t> kept;  // accepted in the same term
    for (const Result& r : results) {
      if (r.ok && r.term == term) kept.push_back(r.index);
    }
    std::set<int> values;
    bool retry = false;
    for (uint64_t index : kept) {
      const int value = config_->Wait(index, NSERVERS, term);
      CHECK(value != -3, "committed values differ for index %ld", (long)index);
      if (value < 0) {
        retry = true;
        break;
      }
      values.insert(value);
    }
    if (retry) continue;
    for (int i = 0; i < 5; i++) CHECK(values.count(701 + i) > 0, "cmd %d missing", 701 + i);
    success = true;
  }
  CHECK(success, "too many term changes and/or delayed responses");
  index_ += 6;
  return true;
}

// 8
bool RaftLabTest::TestBackup() {
  const int leader1 = config_->OneLeader();
  CHECK_HELPER(leader1 >= 0);
  for (int k = 2; k <= 4; k++) config_->Disconnect((leader1 + k) % NSERVERS);
  for (int i = 0; i < 50; i++) {
    uint64_t index = 0, term = 0;
    CHECK_HELPER(StartOk(config_->Start(leader1, 800 + i, &index, &term)));
  }
  TestSleep(ELECTIONTIMEOUT);
  config_->Disconnect((leader1 + 1) % NSERVERS);
  config_->Disconnect(leader1);
  for (int k = 2; k <= 4; k++) config_->Reconnect((leader1 + k) % NSERVERS);
  TestSleep(ELECTIONTIMEOUT);
  for (int i = 1; i <= 50; i++) CHECK_HELPER(AgreeAt(800 + i, NSERVERS - 2));
  config_->Reconnect((leader1 + 1) % NSERVERS);
  config_->Reconnect(leader1);
  TestSleep(ELECTIONTIMEOUT);
  const int leader2 = config_->OneLeader();
  CHECK_HELPER(leader2 >= 0);
  uint64_t index = 0, term = 0;
  CHECK_HELPER(StartOk(config_->Start(leader2, 851, &index, &term)));
  TestSleep(2 * ELECTIONTIMEOUT);
  CHECK_HELPER(NCommittedIs(index, NSERVERS));
  index_ = index + 1;
  return true;
}

// 9
bool RaftLabTest::TestRpcCount() {
  AllRpcs();  // reset the counters
  constexpr int64_t kMaxElectionRpcs = 12 * NSERVERS;
  if (options_.ran_test1) {
    CHECK(init_rpcs_ > 1 && init_rpcs_ <= kMaxElectionRpcs, "too many or too few RPCs (%ld) to elect initial leader (max %ld)",
          (long)init_rpcs_, (long)kMaxElectionRpcs);
  }
  constexpr int kIters = 10;
  bool success = false;
  uint64_t start_index = 0;
  for (int attempt = 0; attempt < 5 && !success; attempt++) {
    if (attempt > 0) TestSleep(3000000);
    const int leader = config_->OneLeader();
    CHECK_HELPER(leader >= 0);
    AllRpcs();
    uint64_t term = 0;
    if (!config_->Start(leader, 900, &start_index, &term)) continue;
    bool retry = false;
    for (int i = 1; i <= kIters && !retry; i++) {
      uint64_t index = 0, term1 = 0;
      if (!config_->Start(leader, 900 + i, &index, &term1) || term1 != term) {
        retry = true;
        break;
      }
      CHECK(index == start_index + i, "Start() failed");
    }
    for (int i = 1; i <= kIters && !retry; i++) {
      const uint64_t index = start_index + i;
      const int value = config_->Wait(index, NSERVERS, term);
      CHECK(value != -3, "committed values differ for index %ld", (long)index);
      if (value < 0) {
        retry = true;
        break;
      }
      CHECK(value == 900 + i, "wrong value %d committed for index %ld: expected %d", value, (long)index, 900 + i);
    }
    if (retry || config_->TermMovedOn(term)) continue;
    const uint64_t used = AllRpcs();
    CHECK(used <= COMMITRPCS(kIters), "too many RPCs (%ld) for %d entries", (long)used, kIters);
    if (options_.summary) std::fprintf(stderr, "  ... agreement of %d entries used %lu RPCs\n", kIters + 1, (unsigned long)used);
    success = true;
  }
  CHECK(success, "term changed too often");
  AllRpcs();
  TestSleep(1000000);
  const uint64_t idle = AllRpcs();
  CHECK(idle <= 3 * 20, "too many RPCs (%ld) for 1 second of idleness", (long)idle);
  index_ = start_index + kIters + 1;
  return true;
}

// 10
bool RaftLabTest::TestUnreliableAgree() {
  config_->SetUnreliable(true);
  // A helper's 0 is noticed at the next iteration, as in the real suite;
  // its threads are joined here before failing (the real one leaves them).
  std::atomic<bool> helper_failed{false};
  bool failed = false;
  std::vector<Thread> threads;
  for (int iter = 1; iter < 50; iter++) {
    for (int j = 0; j < 4; j++) {
      threads.emplace_back("agree-" + std::to_string(iter) + "-" + std::to_string(j), [this, iter, &helper_failed] {
        SetThreadRole("a helper thread of test 10");
        if (config_->DoAgreement(1000 + iter, 1, true) == 0) helper_failed = true;
      });
    }
    if (helper_failed.load()) {
      failed = true;
      break;
    }
    if (config_->DoAgreement(1000 + iter, 1, true) == 0) {
      failed = true;
      break;
    }
    for (auto& thread : threads) thread.join();
    threads.clear();
  }
  for (auto& thread : threads) thread.join();
  config_->SetUnreliable(false);
  CHECK(!failed && !helper_failed.load(), "Failed to reach agreement");
  index_ += 250;
  CHECK_HELPER(Agree(1060, NSERVERS));
  return true;
}

// 11
bool RaftLabTest::TestFigure8() {
  auto mod = [](int x) { return ((x % NSERVERS) + NSERVERS) % NSERVERS; };
  bool success = false;
  for (int attempt = 0; attempt < 10 && !success; attempt++) {
    const int leader1 = config_->OneLeader();
    CHECK_HELPER(leader1 >= 0);
    uint64_t index0 = 0, term0 = 0;
    if (!config_->Start(leader1, 1100, &index0, &term0)) continue;
    CHECK_HELPER(WaitOk(config_->Wait(index0, NSERVERS, term0), index0, NSERVERS));
    for (int k = 1; k <= 3; k++) config_->Disconnect(mod(leader1 + k));
    uint64_t i1 = 0, t1 = 0;
    if (!config_->Start(leader1, 1101, &i1, &t1)) {
      for (int k = 1; k <= 3; k++) config_->Reconnect(mod(leader1 + k));
      continue;
    }
    TestSleep(ELECTIONTIMEOUT);
    CHECK_HELPER(NoneCommitted(i1));
    config_->Disconnect(mod(leader1 + 4));
    config_->Disconnect(leader1);
    for (int k = 1; k <= 3; k++) config_->Reconnect(mod(leader1 + k));
    const int leader2 = config_->OneLeader();
    CHECK_HELPER(leader2 >= 0);
    test11_leaders_ = {leader1, leader2};
    config_->Reconnect(mod(leader1 + 4));
    config_->Reconnect(leader1);
    TestSleep(ELECTIONTIMEOUT);
    CHECK_HELPER(config_->OneLeader(leader2) >= 0);
    for (int i = 0; i < NSERVERS; i++) {
      if (i != leader2) config_->Disconnect(i);
    }
    uint64_t i2 = 0, t2 = 0;
    if (!config_->Start(leader2, 1102, &i2, &t2)) {
      for (int i = 0; i < NSERVERS; i++) {
        if (i != leader2) config_->Reconnect(i);
      }
      continue;
    }
    CHECK(i2 == i1, "Start() returned index %ld (%ld expected)", (long)i2, (long)i1);
    CHECK(t2 > t1, "Start() returned term %ld (%ld expected)", (long)t2, (long)t1);
    TestSleep(ELECTIONTIMEOUT);
    CHECK_HELPER(NoneCommitted(i1));
    config_->Disconnect(leader2);
    const int one_more = leader2 == mod(leader1 + 1) ? mod(leader1 + 2) : mod(leader1 + 1);
    config_->Reconnect(leader1);
    config_->Reconnect(mod(leader1 + 4));
    config_->Reconnect(one_more);
    const int leader3 = config_->OneLeader();
    CHECK_HELPER(leader3 >= 0);
    if (leader3 != leader1 && leader3 != mod(leader1 + 4)) continue;  // as the real suite does (labtest.md defect 2)
    TestSleep(ELECTIONTIMEOUT);
    CHECK_HELPER(NoneCommitted(i1));
    const uint64_t index = config_->DoAgreement(1103, 3, false);
    CHECK(index > i1, "failed to reach agreement");
    CHECK_HELPER(NCommittedIs(i1, 3));
    CHECK(config_->CommittedValue(leader3, i1) == 1101, "value 1101 is not committed at index %ld when it should be",
          (long)i1);
    // Reconnect the rest. The real suite picks them with `leader2 ==
    // leader1 + 1` (no modulo) and aborts on reconnecting a connected
    // server when leader1 == 4 and leader2 == 0 (labtest.md defect 1);
    // --correct-test11 uses the modulo.
    const int remembered_one_more =
        options_.correct_test11 ? one_more : (leader2 == leader1 + 1 ? mod(leader1 + 2) : mod(leader1 + 1));
    if (remembered_one_more != one_more) {
      // Said before the abort, so whoever reads the log (and scripts/grade)
      // can tell the suite's fault from the Raft's.
      std::fprintf(stderr, "labtest: test 11's final reconnect hits the real suite's own defect (labtest.md, defect 1): "
                           "leader1 = %d, leader2 = %d; it reconnects server %d, which is connected\n",
                   leader1, leader2, one_more);
    }
    for (int k = 1; k <= 3; k++) {
      const int server = mod(leader1 + k);
      if (server == leader2 || server == remembered_one_more) continue;
      config_->Reconnect(server);
    }
    config_->Reconnect(leader2);
    success = true;
  }
  CHECK(success, "Failed to test figure 8");
  return true;
}

}  // namespace standin
