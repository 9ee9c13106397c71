// labtest --explore: wider schedules, still within what the real framework
// can do (README, "Exploring schedules"), so that a correct crate never
// fails or raises a finding for them. In an explored run, on top of the
// suite's own seeded choices:
//   m<N>  a message (request or reply) is held back 1 - 50 ms more than the
//         link's usual latency (5% of messages); each link stays FIFO;
//   f<N>  when a server's reactor has two or more fibers ready in one turn,
//         another of them runs first (10% of such turns);
//   s<N>  one server's reactor stops for 5 - 100 ms (every 2 - 8 s, 70%);
//   p<N>  the whole process stops for 0.1 - 2 s (every 2 - 8 s, 30%), as a
//         loaded host stops it; the timers due meanwhile fire when it ends.
// Every such choice is numbered by its kind and order (m1, m2, ..., f1, ...)
// and drawn from the explore seed's own generators, so an explored run is
// an exact replay of its seed; `--explore-only LIST` applies only the
// choices LIST names (all others are drawn the same way but not applied):
// what scripts/shrink narrows a failing run's choices down with.
#pragma once

#include <cstdint>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "virtual_time.h"

namespace standin {

class Explorer {
 public:
  static constexpr double kDelayShare = 0.05;
  static constexpr Micros kMinDelayUs = 1000, kMaxDelayUs = 50000;
  static constexpr double kReorderShare = 0.10;
  static constexpr Micros kMinStallGapUs = 2000000, kMaxStallGapUs = 8000000;
  static constexpr double kServerStallShare = 0.7;
  static constexpr Micros kMinServerStallUs = 5000, kMaxServerStallUs = 100000;
  static constexpr Micros kMinProcessStallUs = 100000, kMaxProcessStallUs = 2000000;

  // `only`: nullptr applies every choice; otherwise just those named.
  Explorer(uint64_t seed, const std::set<std::string>* only);

  // The explorer of this run, or nullptr (labtest sets it).
  static Explorer* Get();
  static void Set(Explorer* explorer);

  // Network: extra delay for one message on link from -> to (0: none).
  Micros ExtraDelay(int from, int to);
  // A server's reactor with `ready` >= 2 fibers ready in one turn: the
  // position of the one to run first (0: the usual order).
  size_t FirstReady(int server, size_t ready);
  // The stall thread: when the next stall begins (a gap from now) and what
  // it is. `server` -1 is a whole-process stall. `apply` false: drawn but
  // not applied (--explore-only).
  struct Stall {
    Micros gap = 0;
    int server = -1;
    Micros length = 0;
    bool apply = false;
  };
  Stall NextStall(int servers);

  // The choices applied so far, in the order made ("m3", "f1", ...).
  std::vector<std::string> applied() const;
  // How many were drawn (applied or not).
  uint64_t drawn() const;
  // Every choice drawn so far, as ranges ("m1-12,f1-340,s1-2"): what can
  // have led to something seen now (scripts/shrink starts from these).
  std::string DrawnSoFar() const;

  // Parses "m3,f1-4 s2" (commas or spaces, ranges of one kind; "none" for
  // no choice at all).
  static bool ParseList(const std::string& text, std::set<std::string>* out, std::string* error);
  // The same set written compactly, per kind in order with ranges:
  // "m1-3,m7,f2,s1" ("none" when empty). ParseList reads it back.
  static std::string FormatList(const std::vector<std::string>& ids);

 private:
  // Numbers one choice of `kind` and says whether to apply it. mutex_ held.
  bool Decide(char kind);

  mutable std::mutex mutex_;
  std::mt19937_64 messages_, fibers_, stalls_;
  bool restricted_ = false;
  std::set<std::string> only_;
  uint64_t counters_[4] = {0, 0, 0, 0};  // m, f, s, p
  uint64_t drawn_ = 0;
  std::vector<std::string> applied_;
};

}  // namespace standin
