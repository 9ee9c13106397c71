#include "reactor.h"

#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define STANDIN_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define STANDIN_TSAN 1
#endif

namespace standin {

namespace {
thread_local Reactor* tl_reactor = nullptr;

#if STANDIN_ASAN
// The loop thread's own stack, learned when the first fiber starts.
thread_local const void* tl_scheduler_stack_bottom = nullptr;
thread_local size_t tl_scheduler_stack_size = 0;
#endif
}  // namespace

Micros NowMicros() {
  if (VirtualWorld* world = VirtualWorld::Get()) return world->Now();
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

namespace {
Micros ReadClock(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<Micros>(ts.tv_sec) * 1000000 + static_cast<Micros>(ts.tv_nsec) / 1000;
}

// The monotonic time at which a sleep of `us` starting now first needs a
// look, and the deadlines that end it.
struct SleepPlan {
  Micros check_at;
  Micros mono_deadline;
  Micros coarse_deadline;
};
SleepPlan PlanSleep(Micros us) {
  const Micros mono = NowMicros();
  const Micros fine = WallMicros();
  const Micros coarse = CoarseWallMicros();
  if (VirtualWorld* world = VirtualWorld::Get()) {
    // The virtual coarse clock's next ticks are known exactly.
    const Micros ends = std::min(mono + us, world->WhenCoarseReaches(coarse + us));
    return SleepPlan{ends, mono + us, coarse + us};
  }
  // The coarse clock lags the true time by up to a tick, so it reaches
  // coarse + us as early as (fine - coarse) before mono + us.
  const Micros lag = fine > coarse ? fine - coarse : 0;
  const Micros earliest = mono + (us > lag ? us - lag : 0);
  return SleepPlan{earliest, mono + us, coarse + us};
}
}  // namespace

Micros CoarseWallMicros() {
  if (VirtualWorld* world = VirtualWorld::Get()) return world->CoarseWall();
  return ReadClock(CLOCK_REALTIME_COARSE);
}
Micros WallMicros() {
  if (VirtualWorld* world = VirtualWorld::Get()) return world->Wall();
  return ReadClock(CLOCK_REALTIME);
}

void SleepLikeFramework(Micros us) {
  const SleepPlan plan = PlanSleep(us);
  if (VirtualWorld* world = VirtualWorld::Get()) {
    // An OS thread wakes a little after its sleep ends (timer slack, the
    // scheduler, the 250 us polls below): up to 300 us, drawn.
    world->SleepUntil(std::min(plan.mono_deadline, world->WhenCoarseReaches(plan.coarse_deadline)) + world->Jitter(300));
    return;
  }
  Micros now = NowMicros();
  if (plan.check_at > now) std::this_thread::sleep_for(std::chrono::microseconds(plan.check_at - now));
  while (NowMicros() < plan.mono_deadline && CoarseWallMicros() < plan.coarse_deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(250));
  }
}

void Fatal(const std::string& message) {
  std::fprintf(stderr, "standin: %s\n", message.c_str());
  std::fflush(stderr);
  std::abort();
}

// ----- Coroutine ------------------------------------------------------------

Coroutine::Coroutine(Reactor* reactor, std::function<void()> body) : reactor_(reactor), body_(std::move(body)) {
  if (!reactor_->spare_stacks_.empty()) {
    stack_ = std::move(reactor_->spare_stacks_.back());
    reactor_->spare_stacks_.pop_back();
  } else {
    stack_ = std::make_unique<GuardedStack>(kStackSize);
  }
  context_.Make(*stack_, &Coroutine::Entry, this);
#if STANDIN_TSAN
  sanitizer_fiber_ = __tsan_create_fiber(0);
#endif
}

Coroutine::~Coroutine() {
#if STANDIN_TSAN
  if (sanitizer_fiber_ != nullptr) __tsan_destroy_fiber(sanitizer_fiber_);
#endif
#if !STANDIN_ASAN && !STANDIN_TSAN
  // (Not under the sanitizers: a finished fiber's frames never return, so
  // their shadow state would stay behind on a reused stack.)
  constexpr size_t kKeep = 64;
  if (reactor_->spare_stacks_.size() < kKeep) reactor_->spare_stacks_.push_back(std::move(stack_));
#endif
}

void Coroutine::Entry(void* raw) {
  auto* self = static_cast<Coroutine*>(raw);
#if STANDIN_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &tl_scheduler_stack_bottom, &tl_scheduler_stack_size);
#endif
  try {
    self->body_();
  } catch (const std::exception& e) {
    Fatal(std::string("exception escaped a fiber: ") + e.what());
  } catch (...) {
    Fatal("exception escaped a fiber");
  }
  self->finished_ = true;
  self->reactor_->SwitchToScheduler();
  Fatal("a finished fiber was resumed");
}

// ----- Events -----------------------------------------------------------------

void Event::Wait(Micros timeout_us) {
  reactor_->CheckOnThread("Event::Wait", /*need_fiber=*/true);
  if (IsReady()) {
    status_ = DONE;
    return;
  }
  if (waiter_ != nullptr) Fatal("two fibers wait on one event");
  status_ = WAIT;
  waiter_ = Reactor::CurrentCoroutine();
  Reactor::Deadline deadline;
  if (timeout_us > 0) deadline.mono = NowMicros() + timeout_us;  // 0: no timeout at all
  reactor_->Park(deadline);
  waiter_ = nullptr;
  // Ready when the deadline was checked counts as done, as in the real
  // reactor, which moves READY to DONE before resuming the fiber.
  status_ = IsReady() ? DONE : TIMEOUT;
}

void Event::MarkReady() {
  if (status_ == TIMEOUT) return;  // stays TIMEOUT; the value is still set
  status_ = READY;
  if (waiter_ != nullptr) {
    Coroutine* waiter = waiter_;
    waiter_ = nullptr;
    waiter->wait_token_++;  // its timeout timer is now stale
    waiter->timed_out_ = false;
    reactor_->MakeReady(waiter);
  }
}

void IntEvent::Set(int value) {
  reactor()->CheckOnThread("IntEvent::Set");
  value_ = value;
  set_ = true;
  MarkReady();
}

void QuorumEvent::VoteYes() {
  reactor()->CheckOnThread("QuorumEvent::VoteYes");
  yes_++;
  if (IsReady()) MarkReady();
}

void QuorumEvent::VoteNo(int64_t term) {
  reactor()->CheckOnThread("QuorumEvent::VoteNo");
  no_++;
  if (term > highest_no_term_) highest_no_term_ = term;
  if (IsReady()) MarkReady();
}

// ----- Reactor ------------------------------------------------------------------

HandlerScope::HandlerScope(const char* handler) : coroutine_(Reactor::CurrentCoroutine()), previous_(nullptr) {
  if (coroutine_ != nullptr) {
    previous_ = coroutine_->handler_;
    coroutine_->handler_ = handler;
  }
}

HandlerScope::~HandlerScope() {
  if (coroutine_ != nullptr) coroutine_->handler_ = previous_;
}

Reactor::Reactor(std::string name, Micros turn_phase_us)
    : name_(std::move(name)), turn_phase_us_(turn_phase_us % kTurnUs) {}

Micros Reactor::RoundToTurn(Micros t) const {
  // The first grid point (phase + k * kTurnUs) at or after t.
  const Micros shifted = t + kTurnUs - turn_phase_us_;
  const Micros rounded = (shifted + kTurnUs - 1) / kTurnUs * kTurnUs;
  return rounded + turn_phase_us_ - kTurnUs;
}

Reactor::~Reactor() { Stop(); }

void Reactor::Start() {
  if (running_.exchange(true)) return;
  stop_ = false;
  if (VirtualWorld* world = VirtualWorld::Get()) {
    virtual_thread_ = world->Spawn(name_, [this] { Loop(); }, 256 * 1024);
    virtual_thread_->set_reactor(this);
    return;
  }
  std::promise<void> started;
  auto ready = started.get_future();
  thread_ = std::thread([this, &started] {
    tl_reactor = this;
    thread_id_ = std::this_thread::get_id();
    started.set_value();
    Loop();
    tl_reactor = nullptr;
  });
  ready.wait();
}

void Reactor::Stop() {
  if (!running_.load()) return;
  {
    std::lock_guard<std::mutex> lock(inbox_mutex_);
    stop_ = true;
  }
  if (virtual_thread_ != nullptr) {
    VirtualWorld* world = VirtualWorld::Get();
    if (world == nullptr || world->Current() == nullptr) Fatal("a virtual reactor stopped outside its world");
    world->Wake(virtual_thread_);
    world->Join(virtual_thread_);
    virtual_thread_ = nullptr;
  }
  inbox_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  running_ = false;
  // Fibers still parked are dropped without being resumed.
  timers_.clear();
  ready_.clear();
  coroutines_.clear();
  live_coroutines_ = 0;
  std::lock_guard<std::mutex> lock(inbox_mutex_);
  inbox_.clear();
}

void Reactor::Post(std::function<void()> task, Micros due) {
  {
    std::lock_guard<std::mutex> lock(inbox_mutex_);
    inbox_.emplace(due, std::move(task));
    inbox_changed_ = true;
  }
  if (virtual_thread_ != nullptr) {
    VirtualWorld::Get()->Wake(virtual_thread_);
    return;
  }
  inbox_cv_.notify_one();
}

void Reactor::RunAndWait(std::function<void()> task) {
  if (Current() == this) {
    task();
    return;
  }
  if (VirtualWorld* world = VirtualWorld::Get()) {
    VThread* caller = world->Current();
    if (caller == nullptr) Fatal("RunAndWait outside a virtual thread");
    bool done = false;
    Post([&task, &done, world, caller] {
      task();
      done = true;
      world->Wake(caller);
    });
    while (!done) world->Park(0, "RunAndWait");
    return;
  }
  std::promise<void> done;
  auto finished = done.get_future();
  Post([&task, &done] {
    task();
    done.set_value();
  });
  finished.wait();
}

Reactor* Reactor::Current() {
  if (VirtualWorld* world = VirtualWorld::Get()) {
    VThread* thread = world->Current();
    return thread != nullptr ? thread->reactor() : nullptr;
  }
  return tl_reactor;
}

Coroutine* Reactor::CurrentCoroutine() {
  Reactor* reactor = Current();
  return reactor != nullptr ? reactor->running_coroutine_ : nullptr;
}

void Reactor::CheckOnThread(const char* function, bool need_fiber) const {
  if (Current() != this) {
    Fatal(std::string(function) + " called off its reactor thread (reactor '" + name_ +
          "'); the real framework has no locks here");
  }
  if (need_fiber && running_coroutine_ == nullptr) {
    Fatal(std::string(function) + " must run inside a fiber (reactor '" + name_ + "')");
  }
  if (need_fiber && running_coroutine_->handler_ != nullptr) {
    Fatal(std::string(function) + " called inside the RPC handler " + running_coroutine_->handler_ +
          " (reactor '" + name_ + "'): in the real framework the handler's arguments are gone once it "
          "yields; never wait, sleep or yield in a handler (abi.md, \"Handler context\")");
  }
}

void Reactor::CreateRunCoroutine(std::function<void()> body) {
  CheckOnThread("CreateRunCoroutine");
  auto coroutine = std::make_unique<Coroutine>(this, std::move(body));
  Coroutine* raw = coroutine.get();
  coroutines_.emplace(raw, std::move(coroutine));
  live_coroutines_++;
  if (running_coroutine_ == nullptr) {
    Resume(raw);
  } else {
    // Created from inside a fiber: run the new one first, then come back.
    // (Nested switching is avoided by queueing the creator behind it.)
    ready_.push_front(running_coroutine_);
    Coroutine* creator = running_coroutine_;
    creator->wait_token_++;
    ready_.push_front(raw);
    SwitchToScheduler();
  }
}

void Reactor::Sleep(Micros us) {
  CheckOnThread("Sleep", /*need_fiber=*/true);
  const SleepPlan plan = PlanSleep(us);
  Coroutine* self = running_coroutine_;
  const uint64_t token = ++self->wait_token_;
  self->timed_out_ = false;
  AddTimer(plan.check_at, Deadline{plan.mono_deadline, plan.coarse_deadline}, self, token);
  SwitchToScheduler();
}

bool Reactor::Park(Deadline deadline) {
  Coroutine* self = running_coroutine_;
  const uint64_t token = ++self->wait_token_;
  self->timed_out_ = false;
  if (deadline.mono != 0) AddTimer(deadline.mono, deadline, self, token);
  SwitchToScheduler();
  return self->timed_out_;
}

void Reactor::AddTimer(Micros check_at, Deadline deadline, Coroutine* coroutine, uint64_t token) {
  timers_.emplace(RoundToTurn(check_at), Timer{coroutine, token, deadline});
}

void Reactor::SwitchToScheduler() {
  Coroutine* self = running_coroutine_;
#if STANDIN_TSAN
  __tsan_switch_to_fiber(scheduler_sanitizer_fiber_, 0);
#endif
#if STANDIN_ASAN
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(self->finished_ ? nullptr : &fake_stack, tl_scheduler_stack_bottom,
                                 tl_scheduler_stack_size);
#endif
  MachineContext::Switch(&self->context_, &scheduler_context_);
#if STANDIN_ASAN
  __sanitizer_finish_switch_fiber(fake_stack, &tl_scheduler_stack_bottom, &tl_scheduler_stack_size);
#endif
}

void Reactor::Resume(Coroutine* coroutine) {
  running_coroutine_ = coroutine;
#if STANDIN_TSAN
  __tsan_switch_to_fiber(coroutine->sanitizer_fiber_, 0);
#endif
#if STANDIN_ASAN
  __sanitizer_start_switch_fiber(&scheduler_fake_stack_, coroutine->stack_->base(), coroutine->stack_->size());
#endif
  MachineContext::Switch(&scheduler_context_, &coroutine->context_);
#if STANDIN_ASAN
  __sanitizer_finish_switch_fiber(scheduler_fake_stack_, nullptr, nullptr);
#endif
  running_coroutine_ = nullptr;
  if (coroutine->finished_) {
    // Its stale timers (from waits an event ended early) go with it.
    for (auto it = timers_.begin(); it != timers_.end();) {
      it = it->second.coroutine == coroutine ? timers_.erase(it) : std::next(it);
    }
    coroutines_.erase(coroutine);
    live_coroutines_--;
  }
}

void Reactor::Loop() {
#if STANDIN_TSAN
  scheduler_sanitizer_fiber_ = __tsan_get_current_fiber();
#endif
  std::vector<std::function<void()>> tasks;
  while (!stop_.load()) {
    turns_++;
    // Slowness as the real framework does it: the loop stalls every turn,
    // so everything this server does runs late.
    const Micros slowness = slowness_us_.load() + freeze_us_.exchange(0);
    if (slowness > 0) {
      if (VirtualWorld* world = VirtualWorld::Get()) {
        world->SleepUntil(NowMicros() + slowness);
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(slowness));
      }
    }

    // 1. Work handed over by other threads and the network, when due.
    Micros now = NowMicros();
    {
      std::lock_guard<std::mutex> lock(inbox_mutex_);
      while (!inbox_.empty() && inbox_.begin()->first <= now) {
        tasks.push_back(std::move(inbox_.begin()->second));
        inbox_.erase(inbox_.begin());
      }
    }
    for (auto& task : tasks) task();
    tasks.clear();

    // 2. Timers that expired: sleeps and wait timeouts. A sleep whose
    // coarse deadline may pass before its monotonic one is looked at every
    // turn from the earliest moment it could, until one of them passes.
    now = NowMicros();
    while (!timers_.empty() && timers_.begin()->first <= now) {
      Timer timer = timers_.begin()->second;
      timers_.erase(timers_.begin());
      if (timer.coroutine->wait_token_ != timer.token) continue;  // stale
      const bool over = now >= timer.deadline.mono ||
                        (timer.deadline.coarse != 0 && CoarseWallMicros() >= timer.deadline.coarse);
      if (!over) {
        timers_.emplace(RoundToTurn(now + 1), timer);
        continue;
      }
      timer.coroutine->wait_token_++;
      timer.coroutine->timed_out_ = true;
      ready_.push_back(timer.coroutine);
    }

    // 3. Fibers that can run.
    while (!ready_.empty()) {
      Coroutine* next = ready_.front();
      ready_.pop_front();
      Resume(next);
    }

    // 4. Sleep until the next timer or inbox item, or new work.
    // A post wakes the loop even when its task is due later, so the
    // deadline is recomputed with it.
    std::unique_lock<std::mutex> lock(inbox_mutex_);
    if (!ready_.empty()) continue;
    Micros wake = timers_.empty() ? NowMicros() + 100000 : timers_.begin()->first;
    if (!inbox_.empty() && inbox_.begin()->first < wake) wake = inbox_.begin()->first;
    if (virtual_thread_ != nullptr) {
      // One OS thread: nothing can post while we decide, so a post after
      // this point finds us parked and wakes us.
      const bool changed = inbox_changed_;
      inbox_changed_ = false;
      lock.unlock();
      if (!changed && !stop_.load()) VirtualWorld::Get()->Park(wake, "its next timer or message");
      continue;
    }
    const auto deadline = std::chrono::steady_clock::time_point(std::chrono::microseconds(wake));
    inbox_changed_ = false;
    inbox_cv_.wait_until(lock, deadline, [&] { return stop_.load() || inbox_changed_; });
  }
}

}  // namespace standin
