// What the stand-in's C++ test programs share: EXPECT, polling, and a main
// that runs one named case (ctest registers each case separately).
#pragma once

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "reactor.h"

namespace standin::testing {

inline int g_failures = 0;

#define EXPECT(cond)                                                                       \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "%s:%d: expectation failed: %s\n", __FILE__, __LINE__, #cond); \
      standin::testing::g_failures++;                                                      \
    }                                                                                      \
  } while (0)

// Polls `done` every 10 ms for up to `seconds`.
inline bool Eventually(double seconds, const std::function<bool()>& done) {
  const Micros deadline = NowMicros() + static_cast<Micros>(seconds * 1e6);
  while (NowMicros() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

// Runs the case named by argv[1]; exit 0 if all its expectations held.
inline int RunCase(int argc, char** argv, const std::map<std::string, void (*)()>& cases) {
  if (argc != 2 || cases.count(argv[1]) == 0) {
    std::fprintf(stderr, "usage: %s <case>; cases:", argv[0]);
    for (const auto& c : cases) std::fprintf(stderr, " %s", c.first.c_str());
    std::fprintf(stderr, "\n");
    return 2;
  }
  cases.at(argv[1])();
  if (g_failures > 0) {
    std::fprintf(stderr, "%s: %d expectation(s) failed\n", argv[1], g_failures);
    return 1;
  }
  std::fprintf(stderr, "%s: ok\n", argv[1]);
  return 0;
}

}  // namespace standin::testing
