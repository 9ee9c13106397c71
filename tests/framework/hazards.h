// Hazards: things a submission does that the real framework runs anyway
// (unsynchronised, by luck, slower) but that the contract forbids. The
// stand-in does what the real one does, takes whatever lock it needs itself
// to stay defined, and records each such act here, so that a grade can
// report it beside the verdict without failing the run for it. Where the
// real framework crashes or aborts, the stand-in calls Fatal instead (see
// README, "Where the grade could differ from the real framework").
//
// A hazard is keyed by (call, thread, rule); each key keeps a count, the
// tests it was seen in, and where it was first seen (test, time, server).
// labtest prints one line per key at the end of a run:
//   labtest: hazard: CALL from THREAD, N times in tests A-B, first in test T at S s on server K (RULE)
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace standin {

// The rules a hazard cites (abi.md sections).
namespace rule {
extern const char* const kThreads;         // a framework import off the server's reactor thread
extern const char* const kHandlerWait;     // a wait inside an RPC handler
extern const char* const kForeignThread;   // a fiber created on a thread no server drives
extern const char* const kTestThreadWait;  // a wait on the lab's test thread outside any fiber
extern const char* const kTwoWaiters;      // a second fiber waits on an event that already has one
extern const char* const kRandomOverflow;  // raft_random_rand with a range wider than int
extern const char* const kReplyUnset;      // a reply sent with a field the crate never wrote
extern const char* const kOtherServer;     // an import on one server's objects from another server's reactor
extern const char* const kLeakedCommands;  // command handles the crate never released
extern const char* const kAbandonedFibers; // fibers still waiting when their thread's reactor went away
}  // namespace rule

// What the calling thread is, for hazard lines: "server-2's reactor", "the
// test thread", "a helper thread of test 7", "the unreliable-network
// thread"; a thread the stand-in never named is "a thread the submission
// started". Per OS thread in real time, per virtual thread in virtual time.
void SetThreadRole(const std::string& role);
// The role of the harness's safety monitor (monitor.h): what a crate does
// while the monitor asks it for its state is not the crate's doing, so no
// hazard is recorded for it.
extern const char* const kMonitorRole;
std::string ThreadRole();
bool OnTestThread();

// The test running now (0 before the first, -1 after the suite), set by the
// suite; hazards record it.
void SetHazardTest(int test);
int HazardTest();

// Strictness: with `threads`, the thread rules abort (Fatal) as the
// stand-in did before hazards; with `all`, every hazard does (labtest
// --strict-threads / --strict: for testing this project's own crate).
void SetStrictness(bool threads, bool all);
bool StrictThreads();

// Records one occurrence (or aborts, when strict). `server` is the server
// whose object was touched, or -1.
void RecordHazard(const std::string& call, const char* rule, int server = -1);
// Records `count` occurrences at once (end-of-run findings such as leaks).
void RecordHazardCount(const std::string& call, const char* rule, uint64_t count, const std::string& thread);

struct HazardLine {
  std::string call, thread, rule;
  uint64_t count = 0;
  int first_test = 0, last_test = 0;  // 0: before the tests, -1: after them
  double first_seconds = 0;           // seconds since the run began
  int first_server = -1;
};
// The hazards since the last reset, in the order first seen.
std::vector<HazardLine> Hazards();
// Forgets them and restarts the run clock (a fresh run).
void ResetHazards();
// One `labtest: hazard: ...` line each; nothing when there are none.
void PrintHazards(FILE* out);
std::string FormatHazard(const HazardLine& line);

}  // namespace standin
