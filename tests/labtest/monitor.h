// The safety monitor: Figure 2's guarantees checked on every run, from
// what the framework sees, beside the suite's verdict (never instead of it).
//
// What it is told (RunObserver, and the harness):
//   - every vote a server grants: the VoteReply it fills (voter, candidate, term);
//   - every AppendEntries a server sends (from, to, term, commit, empty or not);
//   - every command applied through the apply callback (server, index, value);
//   - each server's (is_leader, term) from the exports, sampled at every
//     quiescent step of virtual time, every 2 ms in real time.
// What it checks:
//   - Election Safety: at most one leader per term (two servers claiming to
//     lead one term, or two servers sending AppendEntries in one term);
//   - one vote per server per term (votes for two candidates in one term);
//   - State Machine Safety: no two servers apply different commands at one index;
//   - apply order: each server applies 1, 2, 3, ... once each, no gap;
//   - a server's term never decreases;
//   - the handout's heartbeat limit: at most ten keep-alive AppendEntries
//     (empty, carrying no newer commit index than the link last carried)
//     from one leader to one follower within any one second.
// A finding is printed as
//   labtest: finding: PROPERTY: DETAIL (test T, at S s)
// at the end of the run, with the command that replays it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "framework.h"

namespace standin {

class Timeline;

struct Finding {
  std::string property;  // "Election Safety", "one vote per term", ...
  std::string detail;
  int test = 0;          // the test running when it was seen (0: before the first)
  double seconds = 0;    // since the run began
  std::vector<int> servers;
  std::string explored;  // in an explored run: the choices drawn before it
};

class SafetyMonitor : public RunObserver {
 public:
  static constexpr const char* kElectionSafety = "Election Safety";
  static constexpr const char* kOneVote = "one vote per term";
  static constexpr const char* kStateMachineSafety = "State Machine Safety";
  static constexpr const char* kApplyOrder = "apply order";
  static constexpr const char* kTermDecreased = "term never decreases";
  static constexpr const char* kHeartbeatLimit = "heartbeat limit";
  static constexpr int kHeartbeatsPerSecond = 10;
  static constexpr Micros kHeartbeatWindowUs = 1000000;
  // A run stops recording after this many findings (the count goes on).
  static constexpr size_t kMaxRecorded = 50;

  SafetyMonitor(int servers, Micros run_began);

  // RunObserver (the framework: any thread).
  void VoteGranted(int voter, int candidate, int64_t term) override;
  void AppendSent(int from, int to, uint64_t term, uint64_t commit_index, bool has_entry) override;
  // The harness.
  void Applied(int server, int index, int value);
  void Sampled(int server, bool is_leader, uint64_t term);

  // Marks each new finding on a timeline page too.
  void SetTimeline(Timeline* timeline);

  std::vector<Finding> findings() const;
  uint64_t total() const;
  // Prints one line per finding (and how many more), each followed by
  // `replay` with the finding's test substituted for {TEST}; nothing when
  // there are none.
  void Print(FILE* out, const std::string& replay) const;

 private:
  void Record(const char* property, std::vector<int> servers, const std::string& detail);
  // Election Safety from one source of evidence: `server` leads `term`.
  void LeaderSeen(int server, uint64_t term, const char* evidence);

  const int servers_;
  const Micros run_began_;
  mutable std::mutex mutex_;
  std::vector<Finding> findings_;
  uint64_t total_ = 0;
  std::set<std::pair<std::string, std::string>> keys_;  // (property, key) already reported
  Timeline* timeline_ = nullptr;

  std::map<uint64_t, int> leader_of_term_;                 // term -> the first server seen leading it
  std::map<std::pair<int, int64_t>, int> vote_of_;         // (voter, term) -> candidate
  std::map<int, std::pair<int, int>> applied_at_index_;    // index -> (first server, value)
  std::vector<int> next_index_;                            // per server: the index it must apply next
  std::vector<uint64_t> last_term_;                        // per server: its last sampled term
  std::vector<bool> sampled_;                              // per server: sampled at least once
  struct Link {
    std::deque<Micros> keepalives;  // send times within the last window
    uint64_t commit_sent = 0;       // the highest commit index this link carried
  };
  std::map<std::pair<int, int>, Link> links_;
};

}  // namespace standin
