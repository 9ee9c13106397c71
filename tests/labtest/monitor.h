// The safety monitor: Figure 2's guarantees checked on every run, from
// what the framework sees, beside the suite's verdict (never instead of it).
//
// What it is told (RunObserver, and the harness):
//   - every vote a server grants: the VoteReply it fills (voter, candidate, term);
//   - every vote a server asks for (a broadcast: candidate, term), which is
//     a vote for itself (the quorum event counts it);
//   - every AppendEntries a server sends (from, to, term, previous index,
//     commit, and its one entry's term and command, if it carries one);
//   - every reply a server sends from inside its handler, before the
//     handler waited or returned: the request's term, the reply's, yes/no;
//   - every AppendEntries reply a server reads (its wait returned with the
//     reply there) and every highest refusing term it reads from its vote
//     quorum event: the request's term and the reply's;
//   - every command applied through the apply callback (server, index, value);
//   - each server's (is_leader, term) from the exports, sampled at every
//     quiescent step of virtual time, every 2 ms in real time (where only
//     the term is judged: is_leader and the term may tear);
//   - each time the harness takes a server off the network or puts it back.
// What it checks:
//   - Election Safety: at most one leader per term (two servers sending
//     AppendEntries in one term, or, in virtual time, claiming to lead it:
//     a real-time sample can tear between is_leader and the term);
//   - one vote per server per term (votes for two candidates in one term,
//     or for another after asking for votes itself);
//   - a leader is elected: a server that leads a term (sends AppendEntries
//     in it, or, in virtual time, reports itself leader of it) was granted
//     votes in that term by enough others to make a majority with its own
//     (Figure 2, Candidates: "if votes received from majority of servers:
//     become leader"; term 0 is left out: no election happens in it);
//   - Log Matching: two entries with one index and one term carry one
//     command, and no entry's term is above the term of the leader sending it;
//   - Leader Append-Only: a leader never sends two different entries for
//     one index within its term;
//   - Leader Completeness: once a command is applied at an index, a leader
//     of any term above every term seen until then sends that command there;
//   - State Machine Safety: no two servers apply different commands at one index;
//   - apply order: each server applies 1, 2, 3, ... once each, no gap;
//   - a server's term never decreases;
//   - Figure 2's first receiver rule ("reply false if term < currentTerm"):
//     no vote granted and no AppendEntries accepted with a reply whose term
//     is above the request's (a stale request; only replies sent before
//     the handler waited are judged, see RunObserver::Answer);
//   - a newer term is adopted (Figure 2, All Servers: "if RPC request or
//     response contains term T > currentTerm: set currentTerm = T"): in
//     virtual time, a server that read a reply carrying a term above its
//     own, to a request of its own current term (a reply to an older
//     request may be dropped unread), reports that term or a later one
//     within 50 ms of running (whole-process freezes left out): a crate
//     acts on a reply in the fiber that read it, before that fiber next
//     waits, so the next sample shows it. Not judged while the harness has
//     the server off the network or takes it off meanwhile: the lab's
//     disconnect is a partition, and what still reaches the server may
//     count as lost;
//   - the handout's new leader within 5 s "if a majority can talk": in
//     virtual time, no 5 s of running (whole-process freezes left out)
//     during a test without a connected server that reports itself leader
//     of a term no connected server is past, while a majority is connected
//     and the network does not change (any change starts the 5 s again);
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
#include <tuple>
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
  static constexpr const char* kLogMatching = "Log Matching";
  static constexpr const char* kLeaderAppendOnly = "Leader Append-Only";
  static constexpr const char* kLeaderCompleteness = "Leader Completeness";
  static constexpr const char* kLeaderWithin = "new leader within 5 s";
  static constexpr const char* kStaleRequest = "reply false if term < currentTerm";
  static constexpr const char* kElected = "leader elected by a majority";
  static constexpr const char* kTermAdopted = "newer term adopted";
  static constexpr Micros kLeaderWithinUs = 5000000;
  static constexpr Micros kTermAdoptedUs = 50000;
  static constexpr int kHeartbeatsPerSecond = 10;
  static constexpr Micros kHeartbeatWindowUs = 1000000;
  // A run stops recording after this many findings (the count goes on).
  static constexpr size_t kMaxRecorded = 50;

  SafetyMonitor(int servers, Micros run_began);

  // RunObserver (the framework: any thread).
  void VoteGranted(int voter, int candidate, int64_t term) override;
  void VotesAsked(int candidate, int64_t term) override;
  void AppendSent(int from, int to, const Append& append) override;
  void Answered(const Answer& answer) override;
  void ReplyRead(int server, uint64_t request_term, uint64_t reply_term) override;
  // The harness.
  void Applied(int server, int index, int value);
  void Sampled(int server, bool is_leader, uint64_t term);
  // After each round of samples: is there a leader the connected servers follow?
  void LeadershipLook();
  // The harness took `server` off the network (down) or put it back.
  void NetworkChanged(int server, bool down);

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
  // `server` leads `term`, by one source of evidence: Election Safety, and
  // whether it was elected (ElectedCheck).
  void LeaderSeen(int server, uint64_t term, const char* evidence);
  // Whether `server` was granted a majority's votes in `term`, which it leads.
  void ElectedCheck(int server, uint64_t term, const char* evidence);
  // One vote per term: `voter` voted for `candidate` in `term`.
  void VoteCast(int voter, int candidate, int64_t term);
  // The entry checks on one AppendEntries that carries an entry.
  void EntrySent(int from, const Append& append);
  void TermSeen(uint64_t term) { highest_term_ = std::max(highest_term_, term); }
  // Within LeadershipLook: has each server that read a newer term adopted it?
  void TermAdoptedLook(Micros now, Micros frozen_now);

  const int servers_;
  const Micros run_began_;
  mutable std::mutex mutex_;
  std::vector<Finding> findings_;
  uint64_t total_ = 0;
  std::set<std::pair<std::string, std::string>> keys_;  // (property, key) already reported
  Timeline* timeline_ = nullptr;

  std::map<uint64_t, int> leader_of_term_;                 // term -> the first server seen leading it
  std::map<std::pair<int, int64_t>, int> vote_of_;         // (voter, term) -> candidate
  std::map<std::pair<int, int64_t>, std::set<int>> voters_for_;  // (candidate, term) -> the others that granted it a vote
  uint64_t highest_term_ = 0;  // the highest term any server used so far
  struct FirstApply {
    int server, value;
    uint64_t terms_until;  // highest_term_ then: the command was committed in a term no higher
  };
  std::map<uint64_t, FirstApply> applied_at_index_;  // index -> its first apply
  struct Sent {
    int from, value;
    uint64_t term;  // the sender's term
  };
  std::map<std::pair<uint64_t, uint64_t>, Sent> entry_of_;  // (index, entry term) -> the first such entry sent
  std::map<std::tuple<int, uint64_t, uint64_t>, std::pair<uint64_t, int>> leader_entry_;  // (leader, term, index) -> (entry term, value)
  std::vector<int> next_index_;                            // per server: the index it must apply next
  std::vector<uint64_t> last_term_;                        // per server: its last sampled term
  std::vector<bool> sampled_;                              // per server: sampled at least once
  std::vector<bool> reports_leader_;                       // per server: its last sample said leader
  std::vector<bool> connected_;                            // per server: on the network (the harness's view)
  bool leaderless_ = false;       // no leader seen since leaderless_since_ (false: one was, or the check is off)
  Micros leaderless_since_ = 0;
  Micros frozen_before_ = 0;      // whole-process freeze time when that began
  struct Link {
    std::deque<Micros> keepalives;  // send times within the last window
    uint64_t commit_sent = 0;       // the highest commit index this link carried
  };
  std::map<std::pair<int, int>, Link> links_;
  // Per server: a reply it read carried a term above its own (ReplyRead),
  // not yet seen in its samples.
  struct NewerTermRead {
    bool waiting = false;
    uint64_t term = 0;       // the reply's term
    uint64_t own_term = 0;   // the server's sampled term then
    Micros since = 0;
    Micros frozen_before = 0;
  };
  std::vector<NewerTermRead> newer_term_read_;
};

}  // namespace standin
