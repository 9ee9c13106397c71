// Virtual time: the whole stand-in (every reactor, the test thread, the
// tests' helper threads and the unreliable-network thread) on ONE OS thread,
// as "virtual threads" of one deterministic scheduler, with a clock that
// jumps to the next due event when nothing can run.
//
// Off by default: the real-time stand-in uses OS threads and real clocks.
// `labtest --virtual` turns it on before anything else starts.
#pragma once

#include <ucontext.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <cstdint>
#include <initializer_list>
#include <deque>
#include <functional>
#include <map>
#include <random>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace standin {

using Micros = uint64_t;
class Reactor;

// A stack for a context of its own (a fiber or a virtual thread): mmap'd,
// with a guard page below it, so an overflow faults loudly instead of
// corrupting a neighbour.
class GuardedStack {
 public:
  explicit GuardedStack(size_t size);
  ~GuardedStack();
  GuardedStack(const GuardedStack&) = delete;
  GuardedStack& operator=(const GuardedStack&) = delete;
  void* base() const { return base_; }  // the lowest usable address
  size_t size() const { return size_; }

 private:
  void* mapping_ = nullptr;
  size_t mapping_size_ = 0;
  void* base_ = nullptr;
  size_t size_ = 0;
};

// A machine context to switch to and from. On x86-64 (and without the
// sanitizers, which understand only the ucontext switch) it is a saved
// stack pointer and a switch of a few instructions; elsewhere a
// ucontext_t and swapcontext, which also saves and restores the signal mask
// with two system calls per switch (over half of a virtual run's time).
class MachineContext {
 public:
  // Prepares a fresh context on `stack` that calls entry(arg) when first
  // switched to; entry must never return.
  void Make(const GuardedStack& stack, void (*entry)(void*), void* arg);
  // Saves the running context into `from` and continues in `to`.
  static void Switch(MachineContext* from, MachineContext* to);

 private:
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  void* stack_pointer_ = nullptr;
#else
  ucontext_t context_{};
  static void Start(uint32_t lo_entry, uint32_t hi_entry, uint32_t lo_arg, uint32_t hi_arg);
#endif
};

// One virtual thread: a fiber of the scheduler with its own stack.
class VThread {
 public:
  const std::string& name() const { return name_; }
  bool finished() const { return finished_; }
  // The reactor whose loop this thread runs (Reactor::Current in virtual time).
  Reactor* reactor() const { return reactor_; }
  void set_reactor(Reactor* reactor) { reactor_ = reactor; }
  // What the thread is, for hazard lines (hazards.h).
  const std::string& role() const { return role_; }
  void set_role(std::string role) { role_ = std::move(role); }
  // The reactor a non-reactor thread made by using a framework import that
  // needs one (Reactor::ForThisThread); it goes when the thread ends.
  std::shared_ptr<Reactor>& adopted_reactor() { return adopted_reactor_; }

 private:
  friend class VirtualWorld;
  VThread(std::string name, std::function<void()> body, size_t stack_size);
  ~VThread();
  static void Entry(void* self);

  std::string name_;
  std::function<void()> body_;
  std::unique_ptr<GuardedStack> stack_;
  MachineContext context_;
  bool finished_ = false;
  bool parked_ = false;
  bool timed_out_ = false;
  uint64_t wait_token_ = 0;
  const char* waiting_for_ = "";
  Reactor* reactor_ = nullptr;  // the reactor whose loop this thread runs
  std::string role_;
  std::shared_ptr<Reactor> adopted_reactor_;
  std::vector<VThread*> joiners_;
};

class VirtualWorld {
  friend class VThread;

 public:
  // The world of this process, or nullptr in real time.
  static VirtualWorld* Get() { return instance_; }
  static bool On() { return instance_ != nullptr; }

  // `seed` places the coarse clock's tick phase and the epoch.
  explicit VirtualWorld(uint64_t seed);
  ~VirtualWorld();

  // Runs every virtual thread until all have finished. Returns false (after
  // printing which threads wait for what) on a deadlock: every thread
  // blocked and nothing due.
  bool Run();

  // Clocks: monotonic microseconds since the world began, plus a fixed
  // epoch for the wall clock; the coarse wall clock moves in kTickUs ticks.
  static constexpr Micros kTickUs = 4000;
  Micros Now() const { return now_; }
  Micros Wall() const { return epoch_ + now_; }
  Micros CoarseWall() const { return Wall() / kTickUs * kTickUs; }
  // The first virtual time at which the coarse wall clock reads >= `coarse`.
  Micros WhenCoarseReaches(Micros coarse) const;

  // Threads. Spawn may be called from the main OS thread before Run, or
  // from any virtual thread.
  VThread* Spawn(std::string name, std::function<void()> body, size_t stack_size = 1 << 20);
  void Join(VThread* thread);  // from a virtual thread; frees it
  // The running virtual thread; nullptr off the world's OS thread (a thread
  // the crate started runs in real time beside the world).
  VThread* Current() const { return OnWorldThread() ? current_ : nullptr; }

  // Blocks the calling virtual thread until Wake or `deadline` (0: none).
  // Returns true if the deadline woke it.
  bool Park(Micros deadline, const char* waiting_for);
  void SleepUntil(Micros deadline) { Park(deadline, "sleep"); }
  // Makes a parked thread runnable (a no-op for one that is not parked).
  // From another OS thread (a thread the crate started), the wake-up is
  // queued and the scheduler takes it at its next step.
  void Wake(VThread* thread);

  // A whole-process freeze: nothing runs for `us`; every timer that falls
  // due meanwhile fires at once, in order, when it ends (like SIGSTOP and
  // SIGCONT). Called from a virtual thread, which resumes after it.
  void FreezeAll(Micros us);
  // The virtual time whole-process freezes have taken so far (of one
  // under way, what has passed of it).
  Micros FrozenMicros() const { return frozen_total_ - (frozen_until_ > now_ ? frozen_until_ - now_ : 0); }

  // A seeded draw in [0, max]: wake-up latencies of OS threads, and the
  // order of threads that fall due at the same instant, are choices the
  // seed makes.
  Micros Jitter(Micros max);

  // The process's own clocks, sleeps and OS randomness as the crate's libc
  // calls see them in virtual time (virtual_libc.cc): true on the OS thread
  // that runs the world, while it runs.
  bool OnWorldThread() const;
  // A clock read by the running thread. A thread that reads the clock over
  // and over without ever yielding is spinning on it (`while
  // Instant::now() < t {}`): after kSpinReads reads in one turn, each
  // further read advances virtual time by 1 us, as a busy loop burns time.
  void NoteClockRead();
  static constexpr uint64_t kSpinReads = 1000;
  // Fills `buffer` from the run's own generator (seeded from the seed,
  // apart from the schedule's): what getrandom returns in virtual time.
  void FillOsRandom(void* buffer, size_t length);

  // An OS thread started from inside the world (virtual_libc's
  // pthread_create): it runs in real time, so the run is no exact replay.
  // The first one is reported at once on stderr, as the run's note (a
  // thread like that often aborts the run before its end).
  void NoteForeignThread();

  // The run's observer (the harness's safety monitor): `look` runs on a
  // virtual thread of its own that the scheduler switches to directly at
  // every quiescent step (every other thread waits and virtual time is
  // about to move), if any thread ran since its last look. It draws no
  // random number, sets no timer and is never in the run queue, so a run's
  // schedule is the same with or without it. ClearObserver: never again
  // (before what `look` reads goes away).
  void SetObserver(std::function<void()> look);
  void ClearObserver() { observer_cleared_ = true; }
  // From virtual_libc's futex wait: if the observer is about to block the
  // one OS thread on a lock that a waiting virtual thread holds, it yields
  // to the scheduler instead and tries again at the next quiescent step.
  // False (block as usual) for any other caller.
  bool ObserverYieldsInsteadOfBlocking();
  // Quiescent steps at which the observer looked.
  uint64_t observer_looks() const { return observer_looks_; }

  // Mixes `value` into the run's trace hash.
  void Trace(uint64_t value);
  uint64_t trace_hash() const { return trace_hash_; }
  uint64_t switches() const { return switches_.load(std::memory_order_relaxed); }
  // The running thread's name, for a watchdog on another OS thread.
  const char* running_name() const { return running_name_.load(); }

 private:
  bool RunThreads();
  // Lets the observer look, if it should (see SetObserver).
  void LetObserverLook();
  void SwitchToScheduler();
  void Free(VThread* thread);

  static VirtualWorld* instance_;
  Micros now_ = 0;
  Micros epoch_;
  MachineContext scheduler_context_;
  VThread* current_ = nullptr;
  std::deque<VThread*> runnable_;
  // (due time, sequence) -> (thread, token): equal times fire in the order
  // they were set.
  std::map<std::pair<Micros, uint64_t>, std::pair<VThread*, uint64_t>> timers_;
  uint64_t sequence_ = 0;
  std::mt19937_64 random_;
  std::mt19937_64 os_random_;
  uint64_t clock_reads_this_turn_ = 0;
  std::thread::id world_thread_{};
  std::vector<VThread*> threads_;  // not yet joined (finished or not)
  uint64_t trace_hash_ = 1469598103934665603ull;
  std::atomic<uint64_t> switches_{0};
  std::atomic<const char*> running_name_{"scheduler"};
  Micros frozen_until_ = 0;
  Micros frozen_total_ = 0;
  std::atomic<int> foreign_threads_{0};
  std::mutex foreign_mutex_;
  std::vector<VThread*> foreign_wakes_;
  VThread* observer_ = nullptr;  // not in threads_: the run ends without it
  std::function<void()> observer_look_;
  bool observer_cleared_ = false;
  uint64_t observer_seen_switches_ = ~0ull;
  uint64_t observer_looks_ = 0;
};

// Mixes values into the trace hash of a virtual run (no-op in real time).
inline void TraceEvent(std::initializer_list<uint64_t> values) {
  if (VirtualWorld* world = VirtualWorld::Get()) {
    for (uint64_t value : values) world->Trace(value);
  }
}

// A mutex for the harness's own threads that may be held across a call into
// the crate (which may wait): in real time a std::mutex; in virtual time a
// waiter parks its virtual thread instead of blocking the one OS thread
// that runs them all. Lockable, for std::lock_guard.
class HarnessMutex {
 public:
  void lock();
  void unlock();

 private:
  std::mutex os_mutex_;
  bool held_ = false;  // virtual time
  std::deque<VThread*> waiters_;
};

// A condition the harness's threads wait on, in real or virtual time. The
// caller holds `mutex` around Wait (released while waiting) and NotifyAll.
class HarnessSignal {
 public:
  void Wait(HarnessMutex& mutex, const std::function<bool()>& ready);
  void NotifyAll();

 private:
  std::condition_variable_any os_cv_;
  std::vector<VThread*> waiters_;  // virtual time
};

// A thread of the harness: an OS thread in real time, a virtual thread in
// virtual time.
class Thread {
 public:
  Thread() = default;
  Thread(std::string name, std::function<void()> body);
  Thread(Thread&& other) noexcept;
  Thread& operator=(Thread&& other) noexcept;
  ~Thread();  // joins if still joinable
  bool joinable() const { return os_thread_.joinable() || virtual_thread_ != nullptr; }
  void join();

 private:
  std::thread os_thread_;
  VThread* virtual_thread_ = nullptr;
};

}  // namespace standin
