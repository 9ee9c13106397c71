// The safety monitor's checks, each fed the events the framework reports,
// with and without the violation: a check that cannot fail would pass the
// first half of each case, and one that cries wolf would fail the second.
// (End to end, on a mutant of our crate: tests/monitor_test.py.)
#include <atomic>
#include <string>

#include "monitor.h"
#include "test_support.h"
#include "virtual_time.h"

namespace standin {
// The harness's test number (raft_lab_test.cc in labtest; here the case sets it).
std::atomic<int> g_case_test{0};
int RunningTest() { return g_case_test.load(); }
}  // namespace standin

namespace {

using standin::RunObserver;
using standin::Micros;
using standin::SafetyMonitor;
using standin::g_case_test;

RunObserver::Append Entry(uint64_t term, uint64_t index, uint64_t entry_term, int value, uint64_t commit = 0) {
  RunObserver::Append append;
  append.term = term;
  append.prev_log_index = index - 1;
  append.commit_index = commit;
  append.has_entry = true;
  append.entry_term = entry_term;
  append.has_value = true;
  append.value = value;
  return append;
}

RunObserver::Append Heartbeat(uint64_t term, uint64_t commit) {
  RunObserver::Append append;
  append.term = term;
  append.commit_index = commit;
  return append;
}

// The properties of the findings, in order.
std::string Properties(const SafetyMonitor& monitor) {
  std::string text;
  for (const auto& finding : monitor.findings()) text += (text.empty() ? "" : ", ") + finding.property;
  return text;
}

// The servers the first finding names (none if there is no finding).
std::vector<int> FirstServers(const SafetyMonitor& monitor) {
  const auto findings = monitor.findings();
  return findings.empty() ? std::vector<int>{} : findings.front().servers;
}

// A legal election: `leader` asks for votes in `term` and the next two
// servers grant theirs (with its own, a majority of five).
void Elect(SafetyMonitor& monitor, int leader, uint64_t term) {
  monitor.VotesAsked(leader, static_cast<int64_t>(term));
  monitor.VoteGranted((leader + 1) % 5, leader, static_cast<int64_t>(term));
  monitor.VoteGranted((leader + 2) % 5, leader, static_cast<int64_t>(term));
}

bool Says(const SafetyMonitor& monitor, const std::string& words) {
  for (const auto& finding : monitor.findings()) {
    if (finding.detail.find(words) != std::string::npos) return true;
  }
  return false;
}

void OneVotePerTerm() {
  {  // A legal election: two candidates in one term, each voter votes once.
    SafetyMonitor monitor(5, 0);
    monitor.VotesAsked(1, 2);
    monitor.VotesAsked(3, 2);
    monitor.VoteGranted(0, 1, 2);
    monitor.VoteGranted(2, 1, 2);
    monitor.VoteGranted(4, 3, 2);
    monitor.VotesAsked(1, 2);  // asking again in its own term is no second vote
    monitor.VoteGranted(0, 1, 2);
    monitor.VoteGranted(3, 1, 3);  // a new term, a new vote
    EXPECT(monitor.total() == 0);
  }
  {  // Two grants in one term.
    SafetyMonitor monitor(5, 0);
    monitor.VoteGranted(4, 1, 2);
    monitor.VoteGranted(4, 2, 2);
    EXPECT(Properties(monitor) == SafetyMonitor::kOneVote);
    EXPECT(Says(monitor, "S4 granted its vote in term 2 to S1 and then to S2"));
    EXPECT((FirstServers(monitor) == std::vector<int>{4, 1, 2}));
  }
  {  // A candidate (it asked for votes: a vote for itself) grants another.
    SafetyMonitor monitor(5, 0);
    monitor.VotesAsked(0, 4);
    monitor.VoteGranted(0, 3, 4);
    EXPECT(Properties(monitor) == SafetyMonitor::kOneVote);
    EXPECT(Says(monitor, "S0 asked for votes in term 4 (a vote for itself) and then granted its vote to S3"));
    EXPECT((FirstServers(monitor) == std::vector<int>{0, 3}));
  }
  {  // A voter later asks for votes in the same term.
    SafetyMonitor monitor(5, 0);
    monitor.VoteGranted(2, 1, 5);
    monitor.VotesAsked(2, 5);
    EXPECT(Properties(monitor) == SafetyMonitor::kOneVote);
    EXPECT(Says(monitor, "S2 granted its vote in term 5 to S1 and then asked for votes itself"));
  }
}

void LogMatching() {
  {  // A legal history: leader 1 of term 2 sends entries, leader 3 of
     // term 4 resends 1's entry at index 2 and overwrites index 3 with its
     // own (an uncommitted entry of term 2 replaced by one of term 4).
    SafetyMonitor monitor(5, 0);
    Elect(monitor, 1, 2);
    Elect(monitor, 3, 4);
    monitor.AppendSent(1, 0, Entry(2, 1, 2, 101));
    monitor.AppendSent(1, 0, Entry(2, 2, 2, 102));
    monitor.AppendSent(1, 2, Entry(2, 2, 2, 102));
    monitor.AppendSent(1, 0, Entry(2, 3, 2, 103));
    monitor.AppendSent(3, 0, Entry(4, 2, 2, 102));
    monitor.AppendSent(3, 0, Entry(4, 3, 4, 300));
    monitor.AppendSent(3, 0, Entry(4, 3, 4, 300));  // a retry of the same entry
    EXPECT(monitor.total() == 0);
  }
  {  // Two commands at one (index, term).
    SafetyMonitor monitor(5, 0);
    Elect(monitor, 1, 2);
    Elect(monitor, 3, 4);
    monitor.AppendSent(1, 0, Entry(2, 3, 2, 103));
    monitor.AppendSent(3, 0, Entry(4, 3, 2, 999));
    EXPECT(Properties(monitor) == SafetyMonitor::kLogMatching);
    EXPECT(Says(monitor, "two entries at index 3 of term 2: S1 (term 2) sent 103, S3 (term 4) sent 999"));
  }
  {  // An entry from a term above its leader's.
    SafetyMonitor monitor(5, 0);
    Elect(monitor, 1, 2);
    monitor.AppendSent(1, 0, Entry(2, 1, 3, 101));
    EXPECT(Properties(monitor) == SafetyMonitor::kLogMatching);
    EXPECT(Says(monitor, "S1, leader of term 2, sent an entry of term 3 at index 1"));
  }
}

void LeaderAppendOnly() {
  {  // Within its term a leader changes the entry at index 2: the first
     // was an older term's entry (no Log Matching conflict), the second its own.
    SafetyMonitor monitor(5, 0);
    Elect(monitor, 3, 4);
    monitor.AppendSent(3, 0, Entry(4, 2, 2, 102));
    monitor.AppendSent(3, 1, Entry(4, 2, 4, 400));
    EXPECT(Properties(monitor) == SafetyMonitor::kLeaderAppendOnly);
    EXPECT(Says(monitor, "S3, leader of term 4, sent 102 (term 2) at index 2 and later 400 (term 4)"));
  }
  {  // The same leader in a later term may send another entry there.
    SafetyMonitor monitor(5, 0);
    Elect(monitor, 3, 4);
    Elect(monitor, 3, 6);
    monitor.AppendSent(3, 0, Entry(4, 2, 2, 102));
    monitor.AppendSent(3, 0, Entry(6, 2, 6, 600));
    EXPECT(monitor.total() == 0);
  }
}

void LeaderCompleteness() {
  {  // Applied in a world of terms up to 2; a stale leader of term 2 and a
     // later leader of term 3 that has the command are both fine.
    SafetyMonitor monitor(5, 0);
    Elect(monitor, 1, 2);
    monitor.AppendSent(1, 0, Entry(2, 1, 2, 101));
    monitor.Applied(0, 1, 101);
    monitor.AppendSent(1, 2, Entry(2, 1, 2, 101));
    Elect(monitor, 4, 3);
    monitor.AppendSent(4, 0, Entry(3, 1, 2, 101));
    EXPECT(monitor.total() == 0);
  }
  {  // A leader of a term that did not exist when index 1 was applied
     // sends another command there.
    SafetyMonitor monitor(5, 0);
    Elect(monitor, 1, 2);
    monitor.AppendSent(1, 0, Entry(2, 1, 2, 101));
    monitor.Applied(0, 1, 101);
    Elect(monitor, 4, 3);
    monitor.AppendSent(4, 0, Entry(3, 1, 3, 777));
    EXPECT(Properties(monitor) == SafetyMonitor::kLeaderCompleteness);
    EXPECT(Says(monitor, "S4, leader of term 3, sent 777 at index 1, where S0 had applied 101 while no term above 2 existed"));
  }
  {  // A term that already existed when it was applied is not judged (its
     // leader may have been elected before the commit).
    SafetyMonitor monitor(5, 0);
    Elect(monitor, 1, 2);
    monitor.AppendSent(1, 0, Entry(2, 1, 2, 101));
    Elect(monitor, 4, 3);
    monitor.Applied(0, 1, 101);
    monitor.AppendSent(4, 0, Entry(3, 1, 3, 777));
    EXPECT(monitor.total() == 0);
  }
}

void StateMachineAndOrder() {
  {
    SafetyMonitor monitor(5, 0);
    monitor.Applied(0, 1, 101);
    monitor.Applied(1, 1, 101);
    monitor.Applied(0, 2, 102);
    EXPECT(monitor.total() == 0);
    monitor.Applied(1, 2, 555);
    EXPECT(Properties(monitor) == SafetyMonitor::kStateMachineSafety);
    monitor.Applied(2, 2, 102);
    EXPECT(Properties(monitor) == std::string(SafetyMonitor::kStateMachineSafety) + ", " + SafetyMonitor::kApplyOrder);
  }
}

void TermsAndLeaders() {
  {  // In virtual time (samples taken while every thread is parked).
    standin::VirtualWorld world(5);
    SafetyMonitor monitor(5, world.Now());
    world.Spawn("harness", [&] {
      Elect(monitor, 0, 2);
      monitor.Sampled(0, true, 2);
      monitor.Sampled(0, false, 3);
      monitor.AppendSent(0, 1, Heartbeat(2, 0));  // a stale leader of its old term: no second leader
      EXPECT(monitor.total() == 0);
      // A second leader of term 2, which has no majority either (S1 voted for S0).
      monitor.Sampled(1, true, 2);
      const std::string two_leaders = std::string(SafetyMonitor::kElected) + ", " + SafetyMonitor::kElectionSafety;
      EXPECT(Properties(monitor) == two_leaders);
      monitor.Sampled(0, false, 2);
      EXPECT(Properties(monitor) == two_leaders + ", " + SafetyMonitor::kTermDecreased);
    });
    EXPECT(world.Run());
  }
  {  // In real time a sample may tear (is_leader read before a step-down,
     // the term after it): samples alone show no leader; AppendEntries do;
     // a term going back is still judged.
    SafetyMonitor monitor(5, 0);
    Elect(monitor, 0, 2);
    monitor.Sampled(0, true, 2);
    monitor.Sampled(1, true, 2);
    EXPECT(monitor.total() == 0);
    monitor.AppendSent(0, 1, Heartbeat(2, 0));
    EXPECT(monitor.total() == 0);
    monitor.AppendSent(1, 0, Heartbeat(2, 0));
    EXPECT(Properties(monitor) == std::string(SafetyMonitor::kElected) + ", " + SafetyMonitor::kElectionSafety);
    monitor.Sampled(0, false, 1);
    EXPECT(Properties(monitor) == std::string(SafetyMonitor::kElected) + ", " + SafetyMonitor::kElectionSafety + ", " +
                                      SafetyMonitor::kTermDecreased);
  }
}

void HeartbeatLimit() {
  // Virtual time is not running here: the clock is real, and ten quick
  // keep-alives are within the limit, the eleventh is not; commits and
  // entries do not count.
  SafetyMonitor monitor(5, 0);
  Elect(monitor, 0, 2);
  for (int i = 0; i < 10; i++) monitor.AppendSent(0, 1, Heartbeat(2, 0));
  monitor.AppendSent(0, 1, Heartbeat(2, 1));
  monitor.AppendSent(0, 1, Entry(2, 1, 2, 101, 1));
  monitor.AppendSent(0, 2, Heartbeat(2, 0));
  EXPECT(monitor.total() == 0);
  monitor.AppendSent(0, 1, Heartbeat(2, 1));
  EXPECT(Properties(monitor) == SafetyMonitor::kHeartbeatLimit);
}

// In virtual time: the five servers sampled every 10 ms for `seconds`, S0
// at term `s0_term` (reporting itself leader if `s0_leads`), the others at
// `others_term`, none of them leading.
void SampleTerms(standin::VirtualWorld& world, SafetyMonitor& monitor, double seconds, bool s0_leads,
                 uint64_t s0_term, uint64_t others_term) {
  const Micros until = world.Now() + static_cast<Micros>(seconds * 1e6);
  while (world.Now() < until) {
    monitor.Sampled(0, s0_leads, s0_term);
    for (int i = 1; i < 5; i++) monitor.Sampled(i, false, others_term);
    monitor.LeadershipLook();
    world.SleepUntil(world.Now() + 10000);
  }
}

// S0 reporting itself leader of term `leader_term` (0: nobody leads, and S0
// is at `others_term` too).
void Sample(standin::VirtualWorld& world, SafetyMonitor& monitor, double seconds, uint64_t leader_term,
            uint64_t others_term) {
  SampleTerms(world, monitor, seconds, leader_term > 0, leader_term > 0 ? leader_term : others_term, others_term);
}

void NewLeaderWithin5s() {
  {  // A leader, then 4.9 s without one while a majority can talk: fine;
     // a network change starts the 5 s again; a minority is not judged;
     // whole-process freezes are not counted.
    standin::VirtualWorld world(1);
    SafetyMonitor monitor(5, world.Now());
    g_case_test = 1;
    Elect(monitor, 0, 2);
    world.Spawn("harness", [&] {
      Sample(world, monitor, 1.0, 2, 2);
      monitor.NetworkChanged(0, true);
      Sample(world, monitor, 4.9, 0, 2);
      monitor.NetworkChanged(1, true);
      Sample(world, monitor, 4.9, 0, 3);
      monitor.NetworkChanged(1, false);
      monitor.NetworkChanged(3, true);
      monitor.NetworkChanged(4, true);  // S1 and S2 connected: a minority
      Sample(world, monitor, 8.0, 0, 3);
      monitor.NetworkChanged(3, false);
      monitor.NetworkChanged(4, false);
      Sample(world, monitor, 3.0, 0, 3);
      world.FreezeAll(3000000);
      Sample(world, monitor, 1.5, 0, 3);  // 4.5 s running, 7.5 s in all
      EXPECT(monitor.total() == 0);
      Sample(world, monitor, 1.0, 0, 3);  // past 5 s running
      EXPECT(Properties(monitor) == SafetyMonitor::kLeaderWithin);
      EXPECT(Says(monitor, "no leader among S1, S2, S3 and S4 (connected, a majority) for 5.0"));
      EXPECT(Says(monitor, "(and 3.000 s frozen, not counted)"));
    });
    EXPECT(world.Run());
  }
  {  // A leader of a term others have passed is no leader.
    standin::VirtualWorld world(2);
    SafetyMonitor monitor(5, world.Now());
    g_case_test = 2;
    Elect(monitor, 0, 2);
    world.Spawn("harness", [&] {
      Sample(world, monitor, 5.5, 2, 3);
      EXPECT(Properties(monitor) == SafetyMonitor::kLeaderWithin);
    });
    EXPECT(world.Run());
  }
  {  // Before the first test nothing is judged.
    standin::VirtualWorld world(3);
    SafetyMonitor monitor(5, world.Now());
    g_case_test = 0;
    world.Spawn("harness", [&] { Sample(world, monitor, 8.0, 0, 1); });
    EXPECT(world.Run());
    EXPECT(monitor.total() == 0);
  }
}

void ElectedByMajority() {
  {  // Elected: two others granted their votes in the term it leads; a
     // leader of term 0 (no election happens in it) is not judged.
    SafetyMonitor monitor(5, 0);
    monitor.VotesAsked(2, 7);
    monitor.VoteGranted(0, 2, 7);
    monitor.VoteGranted(4, 2, 7);
    monitor.VoteGranted(1, 3, 7);  // S3's election in the same term: one vote
    monitor.AppendSent(2, 1, Heartbeat(7, 0));
    monitor.Sampled(2, true, 7);
    monitor.Sampled(0, true, 0);
    EXPECT(monitor.total() == 0);
  }
  {  // One vote from another is not a majority of five; votes of another
     // term do not count.
    SafetyMonitor monitor(5, 0);
    monitor.VotesAsked(2, 7);
    monitor.VoteGranted(0, 2, 7);
    monitor.VoteGranted(4, 2, 6);
    monitor.AppendSent(2, 1, Heartbeat(7, 0));
    monitor.AppendSent(2, 3, Heartbeat(7, 0));  // the same leader again: one finding
    EXPECT(Properties(monitor) == SafetyMonitor::kElected);
    EXPECT(Says(monitor, "S2 led term 7 (it sent AppendEntries in it) with votes in it from only S0; a majority of 5 needs 2 "
                         "besides its own"));
    EXPECT((FirstServers(monitor) == std::vector<int>{2}));
  }
  {  // In virtual time, a server that reports itself leader of a term it
     // never asked votes in.
    standin::VirtualWorld world(4);
    SafetyMonitor monitor(5, world.Now());
    world.Spawn("harness", [&] { monitor.Sampled(4, true, 9); });
    EXPECT(world.Run());
    EXPECT(Properties(monitor) == SafetyMonitor::kElected);
    EXPECT(Says(monitor, "S4 led term 9 (it reported itself leader of it) with votes in it from no other server"));
  }
  {  // In real time a sample may tear (is_leader read before a step-down,
     // the term after it): samples alone judge no election there.
    SafetyMonitor monitor(5, 0);
    monitor.Sampled(4, true, 9);
    EXPECT(monitor.total() == 0);
  }
}

RunObserver::Answer Vote(int voter, int candidate, uint64_t request_term, uint64_t reply_term, bool granted) {
  return {voter, true, candidate, request_term, reply_term, granted};
}

RunObserver::Answer AppendReply(int server, uint64_t request_term, uint64_t reply_term, bool success) {
  return {server, false, -1, request_term, reply_term, success};
}

void StaleRequests() {
  {  // Legal replies: yes only in the request's own term; no to older terms.
    SafetyMonitor monitor(5, 0);
    monitor.Answered(Vote(2, 1, 4, 4, true));
    monitor.Answered(Vote(3, 1, 4, 6, false));  // a stale request, refused
    monitor.Answered(Vote(0, 1, 4, 0, true));   // a reply term never written (a hazard, not this rule)
    monitor.Answered(AppendReply(2, 4, 4, true));
    monitor.Answered(AppendReply(3, 4, 5, false));
    EXPECT(monitor.total() == 0);
  }
  {  // A vote granted to a candidate of an older term.
    SafetyMonitor monitor(5, 0);
    monitor.Answered(Vote(3, 1, 4, 5, true));
    monitor.Answered(Vote(3, 1, 4, 5, true));  // the same again: one finding
    EXPECT(Properties(monitor) == SafetyMonitor::kStaleRequest);
    EXPECT(Says(monitor, "S3 granted its vote to S1's RequestVote of term 4 while its own term was 5"));
    EXPECT((FirstServers(monitor) == std::vector<int>{3, 1}));
  }
  {  // An AppendEntries of an older term accepted.
    SafetyMonitor monitor(5, 0);
    monitor.Answered(AppendReply(2, 3, 7, true));
    EXPECT(Properties(monitor) == SafetyMonitor::kStaleRequest);
    EXPECT(Says(monitor, "S2 accepted an AppendEntries of term 3 while its own term was 7"));
    EXPECT((FirstServers(monitor) == std::vector<int>{2}));
  }
}

// S0 at term `own`, the others at 9, nobody reporting itself leader.
void SampleOne(standin::VirtualWorld& world, SafetyMonitor& monitor, double seconds, uint64_t own) {
  SampleTerms(world, monitor, seconds, false, own, 9);
}

void NewerTermAdopted() {
  {  // Read and adopted at once, or within 50 ms; a reply of no newer term,
     // a reply to an older request, whole-process freezes, and a server off
     // the network: no finding.
    standin::VirtualWorld world(1);
    SafetyMonitor monitor(5, world.Now());
    g_case_test = 3;
    Elect(monitor, 0, 2);
    world.Spawn("harness", [&] {
      SampleOne(world, monitor, 0.1, 2);
      monitor.ReplyRead(0, 2, 2);  // not newer
      monitor.ReplyRead(0, 1, 5);  // to a request of term 1: may be dropped unread
      SampleOne(world, monitor, 0.5, 2);
      monitor.ReplyRead(0, 2, 4);
      SampleOne(world, monitor, 0.04, 2);
      SampleOne(world, monitor, 0.5, 4);  // adopted within 50 ms
      monitor.ReplyRead(0, 4, 6);
      world.FreezeAll(2000000);
      SampleOne(world, monitor, 0.04, 4);
      SampleOne(world, monitor, 0.5, 7);  // a later term still adopts it
      monitor.ReplyRead(0, 7, 8);
      monitor.NetworkChanged(0, true);  // taken off the network: it may count the reply as lost
      SampleOne(world, monitor, 0.5, 7);
      monitor.ReplyRead(0, 7, 8);  // read while off
      SampleOne(world, monitor, 0.5, 7);
      monitor.NetworkChanged(0, false);
      SampleOne(world, monitor, 0.5, 7);
      EXPECT(monitor.total() == 0);
    });
    EXPECT(world.Run());
  }
  {  // A server that reads a newer term and keeps its own.
    standin::VirtualWorld world(2);
    SafetyMonitor monitor(5, world.Now());
    g_case_test = 4;
    Elect(monitor, 0, 2);
    world.Spawn("harness", [&] {
      SampleOne(world, monitor, 0.1, 2);
      monitor.ReplyRead(0, 2, 5);
      SampleOne(world, monitor, 0.04, 2);
      EXPECT(monitor.total() == 0);
      SampleOne(world, monitor, 0.5, 2);
      EXPECT(Properties(monitor) == SafetyMonitor::kTermAdopted);
      EXPECT(Says(monitor, "S0 read a reply of term 5 at 0.100 s while its term was 2, and 0.060 s later its term is 2"));
      EXPECT((FirstServers(monitor) == std::vector<int>{0}));
    });
    EXPECT(world.Run());
    EXPECT(monitor.total() == 1);  // once per server and term
  }
  {  // Real time is not judged: the sampler's own stalls would count.
    SafetyMonitor monitor(5, 0);
    g_case_test = 4;
    monitor.Sampled(0, false, 2);
    monitor.ReplyRead(0, 2, 5);
    monitor.Sampled(0, false, 2);
    monitor.LeadershipLook();
    EXPECT(monitor.total() == 0);
  }
}

}  // namespace

int main(int argc, char** argv) {
  return standin::testing::RunCase(argc, argv,
                                   {{"one_vote_per_term", OneVotePerTerm},
                                    {"log_matching", LogMatching},
                                    {"leader_append_only", LeaderAppendOnly},
                                    {"leader_completeness", LeaderCompleteness},
                                    {"state_machine_and_order", StateMachineAndOrder},
                                    {"terms_and_leaders", TermsAndLeaders},
                                    {"heartbeat_limit", HeartbeatLimit},
                                    {"new_leader_within_5s", NewLeaderWithin5s},
                                    {"elected_by_majority", ElectedByMajority},
                                    {"stale_requests", StaleRequests},
                                    {"newer_term_adopted", NewerTermAdopted}});
}
