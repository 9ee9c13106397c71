// The reactor: one event loop per server thread running fibers
// (coroutines), their timers, and a thread-safe inbox through which other
// threads (and the simulated network) hand it work. Modelled on the lab
// framework's rrr::Reactor / Coroutine / Event.
#pragma once

#include <ucontext.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "virtual_time.h"

namespace standin {

// Monotonic clock in microseconds (steady_clock): the reactor's own timers.
Micros NowMicros();
// Wall clock in microseconds since the epoch, as the kernel's coarse clock
// (CLOCK_REALTIME_COARSE) reads it: it moves in ticks (about 4 ms on usual
// kernels). This is what the real framework's raft_time_now returns.
Micros CoarseWallMicros();
// The same wall clock at full resolution (CLOCK_REALTIME).
Micros WallMicros();
// How far the monotonic clock must advance from now until a sleep of `us`
// is over, as the real framework's sleeps end: when either the monotonic
// clock or the coarse wall clock has moved by `us`. The coarse clock lags
// the true time by up to one tick, so the sleep can end up to a tick early.
// Blocks the calling OS thread (used by the harness's own sleeps).
void SleepLikeFramework(Micros us);

// Prints "standin: <message>" and aborts: used for broken thread rules and
// other framework-contract violations, which the real framework would turn
// into silent memory corruption.
[[noreturn]] void Fatal(const std::string& message);

class Reactor;

// A fiber: its own mmap'd stack with a guard page below it.
class Coroutine {
 public:
  static constexpr size_t kStackSize = 512 * 1024;

  Coroutine(Reactor* reactor, std::function<void()> body);
  ~Coroutine();
  Coroutine(const Coroutine&) = delete;
  Coroutine& operator=(const Coroutine&) = delete;

 private:
  friend class Reactor;
  friend class Event;
  friend class HandlerScope;
  static void Entry(void* self);

  Reactor* reactor_;
  std::function<void()> body_;
  std::unique_ptr<GuardedStack> stack_;  // from the reactor's pool, back to it when done
  MachineContext context_;
  bool finished_ = false;
  uint64_t wait_token_ = 0;  // bumped per wait; stale timers find a newer one
  bool timed_out_ = false;
  void* sanitizer_fiber_ = nullptr;  // TSan fiber handle
  // Set while the fiber runs the crate's RPC handler (its name): waiting
  // there aborts the run (abi.md, "Handler context").
  const char* handler_ = nullptr;
};

// Marks the running fiber as inside an RPC handler of the crate for its
// lifetime. In the real framework the handler's arguments live in a frame
// that is gone once the handler's coroutine first yields; the stand-in turns
// such a yield into an abort naming the import.
class HandlerScope {
 public:
  explicit HandlerScope(const char* handler);
  ~HandlerScope();
  HandlerScope(const HandlerScope&) = delete;
  HandlerScope& operator=(const HandlerScope&) = delete;

 private:
  Coroutine* coroutine_;
  const char* previous_;
};

// Something a fiber can wait for. Touched only on its reactor's thread.
class Event {
 public:
  enum Status { INIT = 0, WAIT = 1, READY = 2, DONE = 3, TIMEOUT = 4 };

  explicit Event(Reactor* reactor) : reactor_(reactor) {}
  virtual ~Event() = default;

  // Blocks the calling fiber until the event is ready or `timeout_us`
  // passes; 0 means no timeout. Afterwards the status is DONE (ready; also
  // when it became ready by the time its deadline was checked) or TIMEOUT.
  // Must run in a fiber of the owning reactor.
  void Wait(Micros timeout_us);
  Status status() const { return status_; }
  Reactor* reactor() const { return reactor_; }

 protected:
  // Marks the event READY and wakes the waiter. A TIMEOUT status stays:
  // the real framework leaves it after a late reply (abi.md).
  void MarkReady();
  virtual bool IsReady() const = 0;

 private:
  Reactor* reactor_;
  Status status_ = INIT;
  Coroutine* waiter_ = nullptr;
};

// Ready once Set is called.
class IntEvent : public Event {
 public:
  using Event::Event;
  void Set(int value);
  int value() const { return value_; }

 protected:
  bool IsReady() const override { return set_; }

 private:
  bool set_ = false;
  int value_ = 0;
};

// Ready once `quorum` yes votes or more than `n_total - quorum` no votes
// have arrived (the lab framework's vote quorum event).
class QuorumEvent : public Event {
 public:
  QuorumEvent(Reactor* reactor, int n_total, int quorum)
      : Event(reactor), n_total_(n_total), quorum_(quorum) {}
  void VoteYes();
  void VoteNo(int64_t term);
  bool Yes() const { return yes_ >= quorum_; }
  bool No() const { return no_ > n_total_ - quorum_; }
  int64_t highest_no_term() const { return highest_no_term_; }
  int yes_votes() const { return yes_; }
  int no_votes() const { return no_; }

 protected:
  bool IsReady() const override { return Yes() || No(); }

 private:
  int n_total_;
  int quorum_;
  int yes_ = 0;
  int no_ = 0;
  int64_t highest_no_term_ = 0;
};

class Reactor {
 public:
  // `turn_phase_us` places this reactor's 1 ms turn grid (see RoundToTurn).
  explicit Reactor(std::string name, Micros turn_phase_us = 0);
  ~Reactor();  // stops the thread if running

  void Start();
  // Stops the loop and joins the thread; fibers still waiting are freed
  // without being resumed.
  void Stop();

  // Thread-safe: run `task` on this reactor at (monotonic) time `due`
  // or as soon as possible. Tasks with equal due times run in post order.
  void Post(std::function<void()> task, Micros due = 0);
  // Thread-safe: run `task` on this reactor and wait for it to finish.
  void RunAndWait(std::function<void()> task);

  // The reactor whose thread is calling, or nullptr.
  static Reactor* Current();
  // The fiber running on the calling thread, or nullptr.
  static Coroutine* CurrentCoroutine();

  // Creates a fiber and runs it until its first wait. Reactor thread only.
  void CreateRunCoroutine(std::function<void()> body);
  // Puts the calling fiber to sleep, ending as the real framework's sleep
  // does (see SleepLikeFramework). In a fiber of this reactor only.
  void Sleep(Micros us);

  // The real reactor polls with a 1 ms timeout and checks its timers once
  // per turn, so a timer fires at the first turn after its deadline: the
  // stand-in rounds timer deadlines up to its own 1 ms grid.
  static constexpr Micros kTurnUs = 1000;
  Micros RoundToTurn(Micros t) const;

  // Aborts naming `function` unless called on this reactor's thread (and,
  // with `need_fiber`, inside one of its fibers and not inside an RPC
  // handler: `need_fiber` marks the imports that wait).
  void CheckOnThread(const char* function, bool need_fiber = false) const;

  // Per-server slowness: the loop stalls this long on every turn.
  void SetSlowness(Micros us) { slowness_us_.store(us); }
  // A freeze of this server alone: its loop stops for `us` from its next
  // turn (messages to it queue meanwhile).
  void FreezeFor(Micros us) { freeze_us_.store(us); }
  Micros slowness() const { return slowness_us_.load(); }

  size_t live_coroutines() const { return live_coroutines_.load(); }
  // Timers not yet fired (sleeps and wait timeouts). Reactor thread only.
  size_t pending_timers() const { return timers_.size(); }
  uint64_t turns() const { return turns_.load(); }
  const std::string& name() const { return name_; }

 private:
  friend class Coroutine;
  friend class Event;

  void Loop();
  void Resume(Coroutine* coroutine);
  void SwitchToScheduler();  // from the running fiber back to the loop
  // When a parked fiber's timer is over: the monotonic deadline, or (for
  // sleeps) the coarse wall clock reaching `coarse_deadline`, whichever
  // comes first. 0 = not used.
  struct Deadline {
    Micros mono = 0;
    Micros coarse = 0;
  };
  void AddTimer(Micros check_at, Deadline deadline, Coroutine* coroutine, uint64_t token);
  void MakeReady(Coroutine* coroutine) { ready_.push_back(coroutine); }
  // Parks the running fiber until woken by an event or by `deadline`
  // (mono 0 = no deadline). Returns true if the deadline woke it.
  bool Park(Deadline deadline);

  std::string name_;
  Micros turn_phase_us_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> running_{false};
  std::atomic<Micros> slowness_us_{0};
  std::atomic<Micros> freeze_us_{0};
  VThread* virtual_thread_ = nullptr;  // the loop, in virtual time
  std::atomic<size_t> live_coroutines_{0};
  std::atomic<uint64_t> turns_{0};
  std::thread::id thread_id_;

  // Loop-thread state.
  MachineContext scheduler_context_;
  // Stacks of finished fibers, for the next ones (an mmap, an mprotect and
  // a munmap fewer per fiber; a fiber per RPC handled). Declared before
  // coroutines_ so it outlives them.
  std::vector<std::unique_ptr<GuardedStack>> spare_stacks_;
  Coroutine* running_coroutine_ = nullptr;
  std::deque<Coroutine*> ready_;
  struct Timer {
    Coroutine* coroutine;
    uint64_t token;
    Deadline deadline;
  };
  std::multimap<Micros, Timer> timers_;
  std::map<Coroutine*, std::unique_ptr<Coroutine>> coroutines_;
  void* scheduler_fake_stack_ = nullptr;     // ASan bookkeeping
  void* scheduler_sanitizer_fiber_ = nullptr;  // TSan fiber of the loop

  // Inbox, shared with other threads.
  std::mutex inbox_mutex_;
  std::condition_variable inbox_cv_;
  std::multimap<Micros, std::function<void()>> inbox_;
  bool inbox_changed_ = false;  // a post since the loop computed its wake-up time
};

}  // namespace standin
