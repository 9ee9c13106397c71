#include "monitor.h"

#include <algorithm>
#include <sstream>

#include "explore.h"
#include "raft_lab_test.h"
#include "reactor.h"
#include "timeline.h"

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
      sampled_(servers, false) {}

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

void SafetyMonitor::LeaderSeen(int server, uint64_t term, const char* evidence) {
  // mutex_ held.
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

void SafetyMonitor::VoteGranted(int voter, int candidate, int64_t term) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto known = vote_of_.emplace(std::make_pair(voter, term), candidate);
  if (known.second || known.first->second == candidate) return;
  const int first = known.first->second;
  if (!keys_.insert({kOneVote, std::to_string(voter) + "/" + std::to_string(term)}).second) return;
  Record(kOneVote, {voter, first, candidate},
         "S" + std::to_string(voter) + " granted its vote in term " + std::to_string(term) + " to S" +
             std::to_string(first) + " and then to S" + std::to_string(candidate));
}

void SafetyMonitor::AppendSent(int from, int to, uint64_t term, uint64_t commit_index, bool has_entry) {
  const Micros now = NowMicros();
  std::lock_guard<std::mutex> lock(mutex_);
  LeaderSeen(from, term, "sent AppendEntries in it");
  Link& link = links_[{from, to}];
  const bool keepalive = !has_entry && commit_index <= link.commit_sent;
  link.commit_sent = std::max(link.commit_sent, commit_index);
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
  auto known = applied_at_index_.emplace(index, std::make_pair(server, value));
  if (known.second || known.first->second.second == value) return;
  if (!keys_.insert({kStateMachineSafety, std::to_string(index)}).second) return;
  const int first = known.first->second.first;
  Record(kStateMachineSafety, {first, server},
         "at index " + std::to_string(index) + " S" + std::to_string(first) + " applied " +
             std::to_string(known.first->second.second) + " and S" + std::to_string(server) + " applied " +
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
  if (is_leader) LeaderSeen(server, term, "reported itself leader of it");
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
