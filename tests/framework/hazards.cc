#include "hazards.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <tuple>

#include "reactor.h"

namespace standin {

namespace rule {
const char* const kThreads =
    "a data race in the real framework, which has no lock there: abi.md \"Threads\"";
const char* const kHandlerWait =
    "the real framework resumes the handler's coroutine later and its reply is late: abi.md \"Handler context\"";
const char* const kForeignThread =
    "the real framework runs it on that thread's own reactor, which only later fibers made there drive: "
    "abi.md \"Threads\"";
const char* const kTestThreadWait =
    "the real framework suspends the lab's test coroutine meanwhile: abi.md \"Threads\"";
const char* const kTwoWaiters =
    "the real Event keeps one waiter: the first one is never resumed";
const char* const kRandomOverflow =
    "undefined behaviour in the real framework; its int arithmetic wraps on x86: abi.md raft_random_rand";
const char* const kReplyUnset =
    "the real framework sends uninitialized heap memory in that field: abi.md \"Exports\"";
const char* const kOtherServer =
    "one server's import used from another server's thread shares state between servers: the handout's DO NOT list";
const char* const kLeakedCommands =
    "a memory leak in the real framework: the crate owns every command it is handed (abi.md \"Exports\")";
const char* const kAbandonedFibers =
    "the real framework destroys that thread's reactor when the thread ends; unwinding a suspended coroutine "
    "through the crate's extern \"C\" frames aborts it";
}  // namespace rule

namespace {

thread_local std::string tl_role;
std::atomic<int> g_test{0};
std::atomic<bool> g_strict_threads{false};
std::atomic<bool> g_strict_all{false};

struct Registry {
  std::mutex mutex;
  Micros began = 0;
  std::vector<HazardLine> lines;
  std::map<std::tuple<std::string, std::string, std::string>, size_t> index;
};
Registry& Reg() {
  static Registry registry;
  return registry;
}

void Note(const std::string& call, const std::string& thread, const char* rule, uint64_t count, int server) {
  Registry& reg = Reg();
  const int test = g_test.load();
  std::lock_guard<std::mutex> lock(reg.mutex);
  const auto key = std::make_tuple(call, thread, std::string(rule));
  auto found = reg.index.find(key);
  if (found == reg.index.end()) {
    HazardLine line;
    line.call = call;
    line.thread = thread;
    line.rule = rule;
    line.first_test = line.last_test = test;
    const Micros now = NowMicros();
    line.first_seconds = now > reg.began ? (now - reg.began) / 1e6 : 0;
    line.first_server = server;
    found = reg.index.emplace(key, reg.lines.size()).first;
    reg.lines.push_back(line);
  }
  HazardLine& line = reg.lines[found->second];
  line.count += count;
  // Order: before the tests (0), tests 1..11, after them (-1).
  auto order = [](int t) { return t < 0 ? 1000 : t; };
  if (order(test) > order(line.last_test)) line.last_test = test;
}

}  // namespace

void SetThreadRole(const std::string& role) {
  if (VirtualWorld* world = VirtualWorld::Get()) {
    if (VThread* thread = world->Current()) {
      thread->set_role(role);
      return;
    }
  }
  tl_role = role;
}

std::string ThreadRole() {
  if (VirtualWorld* world = VirtualWorld::Get()) {
    if (VThread* thread = world->Current()) {
      return thread->role().empty() ? "a thread the submission started" : thread->role();
    }
  }
  return tl_role.empty() ? "a thread the submission started" : tl_role;
}

bool OnTestThread() { return ThreadRole() == "the test thread"; }

void SetHazardTest(int test) { g_test = test; }
int HazardTest() { return g_test.load(); }

void SetStrictness(bool threads, bool all) {
  g_strict_threads = threads || all;
  g_strict_all = all;
}

bool StrictThreads() { return g_strict_threads.load(); }

const char* const kMonitorRole = "the safety monitor";

void RecordHazard(const std::string& call, const char* rule, int server) {
  if (ThreadRole() == kMonitorRole) return;
  const bool thread_rule = rule == rule::kThreads || rule == rule::kForeignThread ||
                           rule == rule::kTestThreadWait || rule == rule::kOtherServer;
  if (g_strict_all.load() || (thread_rule && g_strict_threads.load())) {
    Fatal(call + " from " + ThreadRole() + " (" + rule + "); labtest --strict" +
          (g_strict_all.load() ? "" : "-threads") + " makes it an abort");
  }
  Note(call, ThreadRole(), rule, 1, server);
}

void RecordHazardCount(const std::string& call, const char* rule, uint64_t count, const std::string& thread) {
  if (count > 0) Note(call, thread, rule, count, -1);
}

std::vector<HazardLine> Hazards() {
  std::lock_guard<std::mutex> lock(Reg().mutex);
  return Reg().lines;
}

void ResetHazards() {
  Registry& reg = Reg();
  std::lock_guard<std::mutex> lock(reg.mutex);
  reg.lines.clear();
  reg.index.clear();
  reg.began = NowMicros();
}

namespace {
std::string Tests(int first, int last) {
  auto name = [](int t) { return t == 0 ? std::string("before the tests") : t < 0 ? std::string("after the tests")
                                                                                  : "test " + std::to_string(t); };
  if (first == last) return (first > 0 ? "in " : "") + name(first);
  if (first > 0 && last > 0) return "in tests " + std::to_string(first) + "-" + std::to_string(last);
  return "from " + name(first) + " to " + name(last);
}
}  // namespace

std::string FormatHazard(const HazardLine& line) {
  char when[96];
  std::snprintf(when, sizeof when, " at %.3f s", line.first_seconds);
  std::string first = line.first_test > 0 ? "test " + std::to_string(line.first_test)
                                          : (line.first_test == 0 ? std::string("the start-up") : std::string("the shutdown"));
  std::string text = line.call + " from " + line.thread + ", " + std::to_string(line.count) +
                     (line.count == 1 ? " time " : " times ") + Tests(line.first_test, line.last_test) +
                     ", first in " + first + when;
  if (line.first_server >= 0) text += " on server " + std::to_string(line.first_server);
  return text + " (" + line.rule + ")";
}

void PrintHazards(FILE* out) {
  for (const HazardLine& line : Hazards()) std::fprintf(out, "labtest: hazard: %s\n", FormatHazard(line).c_str());
}

}  // namespace standin
