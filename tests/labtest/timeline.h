// labtest --timeline FILE.html: what a run did, as one self-contained page.
// A lane per server over time shows its role and term, disconnected and
// slowed periods, elections won and entries applied; a lane above shows the
// tests (pass/fail, RPCs) and when each entry was committed (applied by a
// majority). Hovering an element shows its details (SVG titles); clicking
// one shows them in a panel. No external scripts or fonts.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "framework.h"

namespace standin {

class Timeline {
 public:
  explicit Timeline(int servers);

  // Events, from any thread; times are the monotonic clock (us).
  void Role(int server, bool leader, uint64_t term);
  void Network(int server, bool down);
  void Slowness(int server, Micros us);
  void Applied(int server, uint64_t index, int value);
  void TestBegin(int test, const std::string& name);
  void TestEnd(int test, bool passed, const std::string& message, uint64_t rpcs);
  // A finding of the safety monitor (monitor.h), on `server`'s lane (-1: the tests' lane).
  void Finding(int server, const std::string& text);

  // Writes the page; false (with `error` set) if the file cannot be written.
  bool Write(const std::string& path, std::string* error);

 private:
  struct Event {
    Micros at;
    int server;  // -1: the cluster
    enum Kind { ROLE, DOWN, UP, SLOW, APPLY, TEST_BEGIN, TEST_END, FINDING } kind;
    uint64_t a = 0, b = 0;  // ROLE: term, role (0 F, 1 C, 2 L); SLOW: us; APPLY: index, value; TEST_*: test, rpcs
    bool flag = false;      // TEST_END: passed
    std::string text;       // TEST_*: name or message; FINDING: what
  };
  void Add(Event event);

  int servers_;
  Micros begin_;
  std::mutex mutex_;
  std::vector<Event> events_;
};

}  // namespace standin
