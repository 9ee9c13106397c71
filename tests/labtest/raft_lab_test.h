// RaftLabTest: the lab's 11 tests, in order (../shared/labtest.md).
#pragma once

#include <set>
#include <string>

#include "raft_test_config.h"

namespace standin {

// The test running now (0 before the first), for messages written from
// outside the suite (the virtual-time watchdog, the deadlock report).
int RunningTest();

struct LabOptions {
  bool summary = false;             // -s: a line per test (seconds, peers, RPCs, commands)
  bool correct_test11 = false;  // --correct-test11: test 11's final reconnect with the modulo the real suite lacks
  bool ran_test1 = true;            // test 9 checks test 1's election RPCs only if test 1 ran
  bool quiet = false;               // only failures (labtest --virtual -r N without -s)
};

class RaftLabTest {
 public:
  static constexpr int kNumTests = 11;

  // The harness's own windows (DoAgreement's commit window) tolerate a
  // host stall shorter than this; a failing test that overlapped a longer
  // one says so.
  static constexpr Micros kToleratedStallUs = 2000000;

  RaftLabTest(RaftTestConfig* config, LabOptions options, const HostStallMonitor* monitor = nullptr);
  // Runs the selected tests (all if empty) in order; prints the lab's
  // output; stops at the first failure. True if all passed.
  bool Run(const std::set<int>& selected);
  static const char* Name(int test);
  uint64_t total_rpcs() const { return total_rpcs_; }
  int failed_test() const { return failed_test_; }  // 0 if none failed
  int current_test() const { return current_test_; }  // the test running (or last run)
  // Test 11's leader1 and leader2 in its last try ({-1, -1} if it got no
  // second leader).
  std::pair<int, int> test11_leaders() const { return test11_leaders_; }
  const std::string& failure() const { return failure_; }

 private:
  void Preamble();
  bool RunOne(int test);
  uint64_t AllRpcs();  // RPCs of all servers since the last reset; resets

  // The suite's shared checks (labtest.md); each records the real message.
  bool NoneCommitted(uint64_t index);             // exactly 0 servers
  bool NCommittedIs(uint64_t index, int expected);  // exactly `expected`
  bool StartOk(bool ok);
  bool AgreeAt(int cmd, int n);  // DoAgreement without retry, at the running index
  bool Agree(int cmd, int n);    // DoAgreement with retry; the running index follows
  bool ReElected(int new_leader, int old_leader);
  bool WaitOk(int result, uint64_t index, int n);  // no Wait error of any kind

  bool TestInitialElection();
  bool TestReElection();
  bool TestBasicAgreement();
  bool TestFailAgree();
  bool TestFailNoAgree();
  bool TestRejoin();
  bool TestConcurrentStarts();
  bool TestBackup();
  bool TestRpcCount();
  bool TestUnreliableAgree();
  bool TestFigure8();

  RaftTestConfig* config_;
  LabOptions options_;
  const HostStallMonitor* monitor_;
  uint64_t index_ = 1;
  int64_t init_rpcs_ = 0;
  uint64_t total_rpcs_ = 0;
  int failed_test_ = 0;
  int current_test_ = 0;
  std::pair<int, int> test11_leaders_{-1, -1};
  std::string failure_;
};

}  // namespace standin
