#include "monitor.h"

#include <algorithm>
#include <sstream>

#include "explore.h"
#include "raft_lab_test.h"
#include "reactor.h"
#include "timeline.h"
#include "virtual_time.h"

namespace standin {

namespace {
std::string ServerList(const std::vector<int>& servers) {
  std::ostringstream text;
  for (size_t i = 0; i < servers.size(); i++) text << (i == 0 ? "" : i + 1 == servers.size() ? " and " : ", ") << "S" << servers[i];
  return text.str();
}
}  // namespace

SafetyMonitor::SafetyMonitor(int servers, Micros run_began)
    : servers_(servers),
      run_began_(run_began),
      next_index_(servers, 1),
      last_term_(servers, 0),
      sampled_(servers, false),
      reports_leader_(servers, false),
      connected_(servers, true),
      newer_term_read_(servers) {}

void SafetyMonitor::SetTimeline(Timeline* timeline) {
  std::lock_guard<std::mutex> lock(mutex_);
  timeline_ = timeline;
}

void SafetyMonitor::Record(const char* property, std::vector<int> servers, const std::string& detail) {
  // mutex_ held.
  total_++;
  if (findings_.size() >= kMaxRecorded) return;
  Finding finding;
  finding.property = property;
  finding.detail = detail;
  finding.test = std::max(0, RunningTest());
  finding.seconds = (NowMicros() - run_began_) / 1e6;
  finding.servers = std::move(servers);
  if (Explorer* explorer = Explorer::Get()) finding.explored = explorer->DrawnSoFar();
  if (timeline_ != nullptr) timeline_->Finding(finding.servers.empty() ? -1 : finding.servers.front(), finding.property + ": " + detail);
  LogEvent("check", "finding: %s: %s", property, detail.c_str());
  findings_.push_back(std::move(finding));
}

void SafetyMonitor::ElectedCheck(int server, uint64_t term, const char* evidence) {
  // mutex_ held. Each grant is recorded before its reply is sent (the
  // framework's VoteReply), so every vote the server could have counted
  // is known by the time anything shows it leading.
  if (term == 0) return;
  auto granted = voters_for_.find({server, static_cast<int64_t>(term)});
  const size_t votes = granted == voters_for_.end() ? 0 : granted->second.size();
  const size_t needed = static_cast<size_t>(servers_ / 2);  // others; with its own vote a majority
  if (votes >= needed) return;
  if (!keys_.insert({kElected, std::to_string(server) + "/" + std::to_string(term)}).second) return;
  std::string from;
  if (votes == 0) {
    from = "no other server";
  } else {
    std::vector<int> voters(granted->second.begin(), granted->second.end());
    from = "only " + ServerList(voters);
  }
  Record(kElected, {server},
         "S" + std::to_string(server) + " led term " + std::to_string(term) + " (it " + evidence + ") with votes in it from " +
             from + "; a majority of " + std::to_string(servers_) + " needs " + std::to_string(needed) +
             " besides its own");
}

void SafetyMonitor::LeaderSeen(int server, uint64_t term, const char* evidence) {
  // mutex_ held.
  ElectedCheck(server, term, evidence);
  auto known = leader_of_term_.emplace(term, server);
  if (known.second || known.first->second == server) return;
  const int first = known.first->second;
  const std::string key = std::to_string(term) + "/" + std::to_string(std::min(first, server)) + "/" +
                          std::to_string(std::max(first, server));
  if (!keys_.insert({kElectionSafety, key}).second) return;
  Record(kElectionSafety, {first, server},
         "two leaders in term " + std::to_string(term) + ": S" + std::to_string(first) + " and S" + std::to_string(server) +
             " (S" + std::to_string(server) + " " + evidence + ")");
}

void SafetyMonitor::VoteCast(int voter, int candidate, int64_t term) {
  // mutex_ held.
  if (term > 0) TermSeen(static_cast<uint64_t>(term));
  if (voter != candidate) voters_for_[{candidate, term}].insert(voter);
  auto known = vote_of_.emplace(std::make_pair(voter, term), candidate);
  if (known.second || known.first->second == candidate) return;
  const int first = known.first->second;
  if (!keys_.insert({kOneVote, std::to_string(voter) + "/" + std::to_string(term)}).second) return;
  const std::string who = "S" + std::to_string(voter), in_term = " in term " + std::to_string(term);
  std::string detail;
  if (first == voter) {
    detail = who + " asked for votes" + in_term + " (a vote for itself) and then granted its vote to S" + std::to_string(candidate);
  } else if (candidate == voter) {
    detail = who + " granted its vote" + in_term + " to S" + std::to_string(first) + " and then asked for votes itself";
  } else {
    detail = who + " granted its vote" + in_term + " to S" + std::to_string(first) + " and then to S" + std::to_string(candidate);
  }
  std::vector<int> servers{voter, first == voter ? candidate : first};
  if (first != voter && candidate != voter) servers.push_back(candidate);
  Record(kOneVote, servers, detail);
}

void SafetyMonitor::VoteGranted(int voter, int candidate, int64_t term) {
  std::lock_guard<std::mutex> lock(mutex_);
  VoteCast(voter, candidate, term);
}

void SafetyMonitor::VotesAsked(int candidate, int64_t term) {
  std::lock_guard<std::mutex> lock(mutex_);
  VoteCast(candidate, candidate, term);
}

void SafetyMonitor::EntrySent(int from, const Append& append) {
  // mutex_ held; append.has_entry.
  const uint64_t index = append.prev_log_index + 1;
  // The words of a finding, built only for one.
  auto at = [index] { return "index " + std::to_string(index); };
  auto what = [&append] { return append.has_value ? std::to_string(append.value) : std::string("a non-lab command"); };
  if (append.entry_term > append.term) {
    if (keys_.insert({kLogMatching, "future/" + std::to_string(from) + "/" + std::to_string(append.term)}).second) {
      Record(kLogMatching, {from},
             "S" + std::to_string(from) + ", leader of term " + std::to_string(append.term) + ", sent an entry of term " +
                 std::to_string(append.entry_term) + " at " + at());
    }
    return;
  }
  if (!append.has_value) return;
  // Log Matching: one (index, term), one command.
  auto known = entry_of_.emplace(std::make_pair(index, append.entry_term), Sent{from, append.value, append.term});
  if (!known.second && known.first->second.value != append.value &&
      keys_.insert({kLogMatching, std::to_string(index) + "/" + std::to_string(append.entry_term)}).second) {
    const Sent& first = known.first->second;
    Record(kLogMatching, {first.from, from},
           "two entries at " + at() + " of term " + std::to_string(append.entry_term) + ": S" + std::to_string(first.from) +
               " (term " + std::to_string(first.term) + ") sent " + std::to_string(first.value) + ", S" +
               std::to_string(from) + " (term " + std::to_string(append.term) + ") sent " + what());
  }
  // Leader Append-Only: within its term a leader's entry at an index stays.
  auto mine = leader_entry_.emplace(std::make_tuple(from, append.term, index), std::make_pair(append.entry_term, append.value));
  if (!mine.second && mine.first->second != std::make_pair(append.entry_term, append.value) &&
      keys_.insert({kLeaderAppendOnly, std::to_string(from) + "/" + std::to_string(append.term) + "/" + std::to_string(index)})
          .second) {
    Record(kLeaderAppendOnly, {from},
           "S" + std::to_string(from) + ", leader of term " + std::to_string(append.term) + ", sent " +
               std::to_string(mine.first->second.second) + " (term " + std::to_string(mine.first->second.first) +
               ") at " + at() + " and later " + what() + " (term " + std::to_string(append.entry_term) + ")");
  }
  // Leader Completeness: a command applied at this index was committed in a
  // term no higher than every term used until then; a leader of a higher
  // term has it.
  auto applied = applied_at_index_.find(index);
  if (applied != applied_at_index_.end() && append.term > applied->second.terms_until &&
      applied->second.value != append.value &&
      keys_.insert({kLeaderCompleteness, std::to_string(from) + "/" + std::to_string(append.term) + "/" + std::to_string(index)})
          .second) {
    Record(kLeaderCompleteness, {from, applied->second.server},
           "S" + std::to_string(from) + ", leader of term " + std::to_string(append.term) + ", sent " + what() + " at " + at() +
               ", where S" + std::to_string(applied->second.server) + " had applied " +
               std::to_string(applied->second.value) + " while no term above " +
               std::to_string(applied->second.terms_until) + " existed");
  }
}

void SafetyMonitor::AppendSent(int from, int to, const Append& append) {
  const Micros now = NowMicros();
  std::lock_guard<std::mutex> lock(mutex_);
  TermSeen(append.term);
  LeaderSeen(from, append.term, "sent AppendEntries in it");
  if (append.has_entry) EntrySent(from, append);
  Link& link = links_[{from, to}];
  const bool keepalive = !append.has_entry && append.commit_index <= link.commit_sent;
  link.commit_sent = std::max(link.commit_sent, append.commit_index);
  if (!keepalive) return;
  // The window (now - 1 s, now].
  while (!link.keepalives.empty() && link.keepalives.front() + kHeartbeatWindowUs <= now) link.keepalives.pop_front();
  link.keepalives.push_back(now);
  if (link.keepalives.size() <= static_cast<size_t>(kHeartbeatsPerSecond)) return;
  // One finding per link per test: a heartbeat loop that is too fast is
  // too fast all the time.
  const std::string key = std::to_string(from) + ">" + std::to_string(to) + "@" + std::to_string(RunningTest());
  if (!keys_.insert({kHeartbeatLimit, key}).second) return;
  const double span_ms = (link.keepalives.back() - link.keepalives.front()) / 1e3;
  std::ostringstream detail;
  detail.precision(1);
  detail << std::fixed << "S" << from << " sent S" << to << " " << link.keepalives.size()
         << " empty AppendEntries within " << span_ms << " ms (the handout allows " << kHeartbeatsPerSecond
         << " a second)";
  Record(kHeartbeatLimit, {from, to}, detail.str());
}

void SafetyMonitor::Answered(const Answer& answer) {
  if (!answer.yes || answer.reply_term <= answer.request_term) return;
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string who = "S" + std::to_string(answer.server);
  const std::string key = std::string(answer.is_vote ? "vote/" : "append/") + std::to_string(answer.server) + "/" +
                          std::to_string(answer.request_term) + "/" + std::to_string(answer.reply_term);
  if (!keys_.insert({kStaleRequest, key}).second) return;
  const std::string terms = " of term " + std::to_string(answer.request_term) + " while its own term was " +
                            std::to_string(answer.reply_term) + " (its reply's term)";
  if (answer.is_vote) {
    Record(kStaleRequest, {answer.server, answer.candidate},
           who + " granted its vote to S" + std::to_string(answer.candidate) + "'s RequestVote" + terms);
  } else {
    Record(kStaleRequest, {answer.server}, who + " accepted an AppendEntries" + terms);
  }
}

void SafetyMonitor::ReplyRead(int server, uint64_t request_term, uint64_t term) {
  // Virtual time only: in real time the sampler's next look may come after
  // a host stall of its own, not after the crate's.
  VirtualWorld* world = VirtualWorld::Get();
  if (world == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (server < 0 || server >= servers_ || !sampled_[server]) return;
  TermSeen(term);
  NewerTermRead& read = newer_term_read_[server];
  // A reply to a request of an older term may be dropped before its term
  // is looked at (the request is over); one to a request of the server's
  // current term never is. A server off the network may treat what still
  // reaches it as lost (the lab's disconnect is a partition), so a read
  // while it is off, or one it is taken off after, is not judged.
  if (read.waiting || !connected_[server] || term <= last_term_[server] || request_term != last_term_[server]) return;
  read.waiting = true;
  read.term = term;
  read.own_term = last_term_[server];
  read.since = NowMicros();
  read.frozen_before = world->FrozenMicros();
}

void SafetyMonitor::TermAdoptedLook(Micros now, Micros frozen_now) {
  // mutex_ held; virtual time; right after a round of samples.
  for (int server = 0; server < servers_; server++) {
    NewerTermRead& read = newer_term_read_[server];
    if (!read.waiting) continue;
    if (last_term_[server] >= read.term) {
      read.waiting = false;
      continue;
    }
    const Micros frozen = frozen_now - read.frozen_before;
    const Micros elapsed = now - read.since;
    if (elapsed <= frozen || elapsed - frozen <= kTermAdoptedUs) continue;
    read.waiting = false;
    if (!keys_.insert({kTermAdopted, std::to_string(server) + "/" + std::to_string(read.term)}).second) continue;
    std::ostringstream detail;
    detail.precision(3);
    detail << std::fixed << "S" << server << " read a reply of term " << read.term << " at "
           << (read.since - run_began_) / 1e6 << " s while its term was " << read.own_term << ", and "
           << (elapsed - frozen) / 1e6 << " s later its term is " << last_term_[server];
    Record(kTermAdopted, {server}, detail.str());
  }
}

void SafetyMonitor::Applied(int server, int index, int value) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (server < 0 || server >= servers_) return;
  int& expected = next_index_[server];
  if (index != expected) {
    if (keys_.insert({kApplyOrder, std::to_string(server)}).second) {
      Record(kApplyOrder, {server},
             "S" + std::to_string(server) + " applied index " + std::to_string(index) + " when " +
                 std::to_string(expected) + " was next");
    }
  }
  expected = std::max(expected, index + 1);
  if (index <= 0) return;
  auto known = applied_at_index_.emplace(static_cast<uint64_t>(index), FirstApply{server, value, highest_term_});
  if (known.second || known.first->second.value == value) return;
  if (!keys_.insert({kStateMachineSafety, std::to_string(index)}).second) return;
  const int first = known.first->second.server;
  Record(kStateMachineSafety, {first, server},
         "at index " + std::to_string(index) + " S" + std::to_string(first) + " applied " +
             std::to_string(known.first->second.value) + " and S" + std::to_string(server) + " applied " +
             std::to_string(value));
}

void SafetyMonitor::Sampled(int server, bool is_leader, uint64_t term) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (server < 0 || server >= servers_) return;
  if (sampled_[server] && term < last_term_[server]) {
    if (keys_.insert({kTermDecreased, std::to_string(server) + "/" + std::to_string(last_term_[server])}).second) {
      Record(kTermDecreased, {server},
             "S" + std::to_string(server) + "'s term went from " + std::to_string(last_term_[server]) + " to " +
                 std::to_string(term));
    }
  }
  sampled_[server] = true;
  last_term_[server] = term;
  reports_leader_[server] = is_leader;
  TermSeen(term);
  // A sample taken in real time may tear (is_leader read before a
  // step-down, the term after it): the sampler's race, not the crate's act.
  // So only virtual time's samples (taken while every thread is parked)
  // count as leadership; in real time the AppendEntries sent do.
  if (is_leader && VirtualWorld::Get() != nullptr) LeaderSeen(server, term, "reported itself leader of it");
}

void SafetyMonitor::NetworkChanged(int server, bool down) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (server < 0 || server >= servers_) return;
  connected_[server] = !down;
  leaderless_ = false;  // the handout's 5 s count from the change
  newer_term_read_[server].waiting = false;  // off the network, a reply may count as lost
}

void SafetyMonitor::LeadershipLook() {
  // Virtual time only: in real time the host's own stalls (seconds, on a
  // loaded machine) would count against the submission.
  VirtualWorld* world = VirtualWorld::Get();
  if (world == nullptr) return;
  const Micros now = NowMicros();
  std::lock_guard<std::mutex> lock(mutex_);
  TermAdoptedLook(now, world->FrozenMicros());
  std::vector<int> connected;
  uint64_t highest = 0;
  for (int i = 0; i < servers_; i++) {
    if (!connected_[i] || !sampled_[i]) continue;
    connected.push_back(i);
    highest = std::max(highest, last_term_[i]);
  }
  bool led = false;
  for (int i : connected) led = led || (reports_leader_[i] && last_term_[i] >= highest);
  if (RunningTest() < 1 || 2 * static_cast<int>(connected.size()) <= servers_ || led) {
    leaderless_ = false;
    return;
  }
  if (!leaderless_) {
    leaderless_ = true;
    leaderless_since_ = now;
    frozen_before_ = world->FrozenMicros();
    return;
  }
  const Micros frozen = world->FrozenMicros() - frozen_before_;
  const Micros elapsed = now - leaderless_since_;
  if (elapsed <= frozen || elapsed - frozen <= kLeaderWithinUs) return;
  const Micros running = elapsed - frozen;
  if (!keys_.insert({kLeaderWithin, std::to_string(RunningTest())}).second) return;
  std::ostringstream detail;
  detail.precision(3);
  detail << std::fixed << "no leader among " << ServerList(connected) << " (connected, a majority) for " << running / 1e6
         << " s since " << (leaderless_since_ - run_began_) / 1e6 << " s";
  if (frozen > 0) detail << " (and " << frozen / 1e6 << " s frozen, not counted)";
  detail << "; the handout asks for a new leader within 5 s if a majority can talk";
  Record(kLeaderWithin, connected, detail.str());
}

std::vector<Finding> SafetyMonitor::findings() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return findings_;
}

uint64_t SafetyMonitor::total() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return total_;
}

void SafetyMonitor::Print(FILE* out, const std::string& replay) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const Finding& finding : findings_) {
    std::fprintf(out, "labtest: finding: %s: %s (test %d, at %.3f s; servers %s)\n", finding.property.c_str(),
                 finding.detail.c_str(), finding.test, finding.seconds, ServerList(finding.servers).c_str());
    if (!finding.explored.empty()) std::fprintf(out, "  explore: choices drawn before it: %s\n", finding.explored.c_str());
    if (!replay.empty()) {
      std::string command = replay;
      const size_t at = command.find("{TEST}");
      if (at != std::string::npos) command.replace(at, 6, std::to_string(std::max(1, finding.test)));
      std::fprintf(out, "  replay: %s\n", command.c_str());
    }
  }
  if (total_ > findings_.size()) {
    std::fprintf(out, "labtest: finding: %llu more finding(s) not listed\n",
                 static_cast<unsigned long long>(total_ - findings_.size()));
  }
}

}  // namespace standin
