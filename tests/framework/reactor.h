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

// Prints "standin: <message>" and aborts: where the real framework itself
// crashes or aborts (README, "Where the grade could differ from the real
// framework"), and for the stand-in's own broken invariants.
[[noreturn]] void Fatal(const std::string& message);

// A non-blocking import on objects of `owner` (a server's reactor): on
// owner's own loop thread it is what the contract asks; from any other
// thread the real framework runs it without a lock, so the stand-in runs
// it too (under locks of its own) and records a hazard naming `function`.
void CheckImportThread(const class Reactor* owner, const char* function);

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
  // A fresh value per wait, unique in the process (NewWaitToken): a stale
  // timer or a late wake-up posted from another thread finds a newer one.
  uint64_t wait_token_ = 0;
  bool timed_out_ = false;
  void* sanitizer_fiber_ = nullptr;  // TSan fiber handle
  // Set while the fiber runs the crate's RPC handler (its name): a wait
  // there is a hazard (abi.md, "Handler context").
  const char* handler_ = nullptr;
};

// Marks the running fiber as inside an RPC handler of the crate for its
// lifetime. The contract forbids waiting there (abi.md, "Handler context");
// the real framework resumes such a handler later (each request runs in a
// coroutine of its own and its arguments live until the reply), so the
// stand-in does the same and records a hazard (labtest --strict aborts).
class HandlerScope {
 public:
  explicit HandlerScope(const char* handler);
  ~HandlerScope();
  HandlerScope(const HandlerScope&) = delete;
  HandlerScope& operator=(const HandlerScope&) = delete;
  // The handler the running fiber is in, or nullptr.
  static const char* Current();

 private:
  Coroutine* coroutine_;
  const char* previous_;
};

// Something a fiber can wait for. The server whose commo made it delivers
// its replies on its own reactor (Set, VoteYes, VoteNo run there); the
// waiter may be a fiber of any reactor, or the lab's test thread itself
// (as in the real framework, where Wait parks whatever coroutine calls it
// on the calling thread's own reactor). Its state is guarded, because
// those are different threads.
class Event {
 public:
  enum Status { INIT = 0, WAIT = 1, READY = 2, DONE = 3, TIMEOUT = 4 };

  explicit Event(Reactor* reactor) : reactor_(reactor) {}
  virtual ~Event() = default;

  // Blocks the calling fiber (or, on the lab's test thread outside any
  // fiber, the test itself while its reactor runs) until the event is
  // ready or `timeout_us` passes; 0 means no timeout. Afterwards the status
  // is DONE (ready; also when it became ready by the time its deadline was
  // checked) or TIMEOUT. Where the caller may wait at all is decided by the
  // import (ffi_imports.cc).
  void Wait(Micros timeout_us);
  Status status() const;
  Reactor* reactor() const { return reactor_; }

 protected:
  // Marks the event READY and wakes the waiter on its own reactor. A
  // TIMEOUT status stays: the real framework leaves it after a late reply
  // (abi.md). Call with mutex_ held.
  void MarkReadyLocked();
  virtual bool IsReadyLocked() const = 0;
  mutable std::mutex mutex_;

 private:
  Reactor* reactor_;
  Status status_ = INIT;
  // The waiter: a fiber of `waiter_reactor_` (with the token of its wait),
  // or none while the test thread itself waits on `waiter_reactor_`.
  Coroutine* waiter_ = nullptr;
  Reactor* waiter_reactor_ = nullptr;
  uint64_t waiter_token_ = 0;
};

// Ready once Set is called.
class IntEvent : public Event {
 public:
  using Event::Event;
  void Set(int value);
  int value() const;
  // An AppendEntries reply's event: the server it answers, its request's
  // term and the reply's, noted before Set (for RunObserver::ReplyRead).
  void NoteReply(int server, uint64_t request_term, uint64_t reply_term);
  // The noted reply, the first time it is asked for once the event is ready
  // (false: none, not ready, or already told).
  bool TakeReplyRead(int* server, uint64_t* request_term, uint64_t* reply_term);

 protected:
  bool IsReadyLocked() const override { return set_; }

 private:
  bool set_ = false;
  int value_ = 0;
  int reply_server_ = -1;
  uint64_t request_term_ = 0, reply_term_ = 0;
  bool reply_told_ = false;
};

// Ready once `quorum` yes votes or more than `n_total - quorum` no votes
// have arrived (the lab framework's vote quorum event).
class QuorumEvent : public Event {
 public:
  QuorumEvent(Reactor* reactor, int n_total, int quorum, int owner = -1, uint64_t term = 0)
      : Event(reactor), n_total_(n_total), quorum_(quorum), owner_(owner), term_(term) {}
  // The candidate whose election this is (-1: not known), and its term.
  int owner() const { return owner_; }
  uint64_t term() const { return term_; }
  void VoteYes();
  void VoteNo(int64_t term);
  bool Yes() const;
  bool No() const;
  int64_t highest_no_term() const;
  int yes_votes() const;
  int no_votes() const;

 protected:
  bool IsReadyLocked() const override { return yes_ >= quorum_ || no_ > n_total_ - quorum_; }

 private:
  int n_total_;
  int quorum_;
  const int owner_ = -1;
  const uint64_t term_ = 0;
  int yes_ = 0;
  int no_ = 0;
  int64_t highest_no_term_ = 0;
};

// A fresh wait token, unique in the process.
uint64_t NewWaitToken();

class Reactor {
 public:
  // A server's reactor: its own loop thread (Start). `turn_phase_us`
  // places this reactor's 1 ms turn grid (see RoundToTurn).
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

  // The server reactor whose loop thread is calling, or nullptr.
  static Reactor* Current();
  // The reactor of the calling thread as the real framework sees it: the
  // server's, or else the thread's own, made on first use as the real
  // Reactor::GetReactor makes one for any thread (an "adopted" reactor: no
  // loop of its own; it runs when the thread creates a fiber, and the lab's
  // test thread also runs it while the test sleeps or waits). It goes when
  // the thread ends.
  static Reactor* ForThisThread();
  // The same, but nullptr rather than making one.
  static Reactor* HereIfAny();
  // Ends the calling thread's adopted reactor now, as the thread's end would.
  static void EndThisThreadsReactor();
  // The fiber running on the calling thread, or nullptr.
  static Coroutine* CurrentCoroutine();

  bool adopted() const { return adopted_; }
  Coroutine* running_coroutine() const { return running_coroutine_; }

  // Creates a fiber and runs it until its first wait. On its own thread
  // only. On an adopted reactor it then runs one pass (RunPass), as the
  // real CreateRun ends with a loop over what became ready.
  void CreateRunCoroutine(std::function<void()> body);
  // Puts the calling fiber to sleep, ending as the real framework's sleep
  // does (see SleepLikeFramework). In a fiber of this reactor only.
  void Sleep(Micros us);

  // Adopted reactors, on their thread: run what is due and ready until
  // nothing more is (one real Reactor::Loop(false)).
  void RunPass();
  // Adopted reactors, on their thread and outside any fiber: run this
  // reactor (passes, blocking in between) until `done()` or the monotonic
  // `deadline` (0: none). True if done() held.
  bool DriveUntil(Micros deadline, const std::function<bool()>& done);
  // Fibers of this reactor that have not finished.
  size_t live_coroutines() const { return live_coroutines_.load(); }

  // From any thread: resume `fiber` of this reactor if it is still in the
  // wait that `token` names (a wake-up by an event of another reactor).
  void WakeWaiter(Coroutine* fiber, uint64_t token);
  // From any thread: the thread driving this adopted reactor looks again.
  void Nudge();

  // The real reactor polls with a 1 ms timeout and checks its timers once
  // per turn, so a timer fires at the first turn after its deadline: the
  // stand-in rounds timer deadlines up to its own 1 ms grid.
  static constexpr Micros kTurnUs = 1000;
  Micros RoundToTurn(Micros t) const;

  // Per-server slowness: the loop stalls this long on every turn (the
  // older framework's behaviour; labtest --older-framework).
  void SetSlowness(Micros us) { slowness_us_.store(us); }
  // A freeze of this server alone: its loop stops for `us` from its next
  // turn (messages to it queue meanwhile).
  void FreezeFor(Micros us) { freeze_us_.store(us); }
  Micros slowness() const { return slowness_us_.load(); }

  // Timers not yet fired (sleeps and wait timeouts). Reactor thread only.
  size_t pending_timers() const { return timers_.size(); }
  uint64_t turns() const { return turns_.load(); }
  const std::string& name() const { return name_; }
  // The server this reactor belongs to (-1: none, or an adopted reactor).
  int server() const { return server_; }
  void set_server(int server) { server_ = server; }

 private:
  friend class Coroutine;
  friend class Event;
  struct AdoptedTag {};
  Reactor(std::string name, AdoptedTag);

  void Loop();
  // One turn: due inbox tasks, expired timers, ready fibers. True if it
  // ran anything.
  bool Turn();
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
  // Parks the running fiber, whose wait token is already `token`, until
  // woken or `deadline` (mono 0 = no deadline). True if the deadline woke it.
  bool ParkWithToken(Deadline deadline, uint64_t token);
  // Blocks the driving thread until new work may be there or `wake`.
  void BlockUntil(Micros wake);

  std::string name_;
  Micros turn_phase_us_;
  bool adopted_ = false;
  int server_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> running_{false};
  std::atomic<Micros> slowness_us_{0};
  std::atomic<Micros> freeze_us_{0};
  VThread* virtual_thread_ = nullptr;  // the loop (or, adopted, the owner), in virtual time
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
  bool driving_ = false;        // adopted: its thread is blocked in DriveUntil
  int nested_runs_ = 0;         // fibers Resume runs at once (CreateRunCoroutine from a fiber)
};

}  // namespace standin
