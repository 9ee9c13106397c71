#include "virtual_time.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <cstdlib>

namespace standin {

namespace {
[[noreturn]] void VirtualFatal(const std::string& message) {
  std::fprintf(stderr, "standin (virtual time): %s\n", message.c_str());
  std::fflush(stderr);
  std::abort();
}
}  // namespace

VirtualWorld* VirtualWorld::instance_ = nullptr;

// ----- GuardedStack ----------------------------------------------------------------

GuardedStack::GuardedStack(size_t size) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  mapping_size_ = size + page;
  mapping_ = mmap(nullptr, mapping_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapping_ == MAP_FAILED) VirtualFatal("cannot map a fiber stack");
  // Guard page at the low end: the stack grows down into it and faults.
  if (mprotect(mapping_, page, PROT_NONE) != 0) VirtualFatal("cannot protect a fiber stack's guard page");
  base_ = static_cast<char*>(mapping_) + page;
  size_ = size;
}

GuardedStack::~GuardedStack() {
  if (mapping_ != nullptr) munmap(mapping_, mapping_size_);
}

// ----- MachineContext -------------------------------------------------------------

#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)

// standin_switch_context(void** save, void* load): pushes the registers the
// System V ABI asks a callee to keep (rbp, rbx, r12-r15) and the x87 and SSE
// control words, saves the stack pointer in *save, loads `load`, and pops
// the same from there. A fresh context's stack is laid out (Make) as if it
// had been switched away from just before standin_context_start, which
// calls entry(arg) with r12 = arg and r13 = entry.
asm(R"(
  .text
  .globl standin_switch_context
  .type standin_switch_context, @function
standin_switch_context:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $16, %rsp
  stmxcsr 8(%rsp)
  fnstcw (%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  fldcw (%rsp)
  ldmxcsr 8(%rsp)
  addq $16, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size standin_switch_context, .-standin_switch_context

  .globl standin_context_start
  .type standin_context_start, @function
standin_context_start:
  movq %r12, %rdi
  callq *%r13
  ud2
  .size standin_context_start, .-standin_context_start
)");

extern "C" void standin_switch_context(void** save, void* load);
extern "C" void standin_context_start();

void MachineContext::Make(const GuardedStack& stack, void (*entry)(void*), void* arg) {
  // From the top (16-byte aligned): the return address into
  // standin_context_start at top - 8, then rbp, rbx, r12, r13, r14, r15 and
  // 16 bytes of control words, so the stack pointer is top - 72.
  auto top = (reinterpret_cast<uintptr_t>(stack.base()) + stack.size()) & ~static_cast<uintptr_t>(15);
  auto* slot = reinterpret_cast<uint64_t*>(top);
  *--slot = reinterpret_cast<uint64_t>(&standin_context_start);
  *--slot = 0;                                   // rbp
  *--slot = 0;                                   // rbx
  *--slot = reinterpret_cast<uint64_t>(arg);     // r12
  *--slot = reinterpret_cast<uint64_t>(entry);   // r13
  *--slot = 0;                                   // r14
  *--slot = 0;                                   // r15
  *--slot = 0x1F80;                              // MXCSR (at +8): the default
  *--slot = 0x037F;                              // x87 control word (at +0): the default
  stack_pointer_ = slot;
}

void MachineContext::Switch(MachineContext* from, MachineContext* to) {
  standin_switch_context(&from->stack_pointer_, to->stack_pointer_);
}

#else

void MachineContext::Make(const GuardedStack& stack, void (*entry)(void*), void* arg) {
  if (getcontext(&context_) != 0) VirtualFatal("getcontext failed");
  context_.uc_stack.ss_sp = stack.base();
  context_.uc_stack.ss_size = stack.size();
  context_.uc_link = nullptr;
  const auto e = reinterpret_cast<uintptr_t>(entry), a = reinterpret_cast<uintptr_t>(arg);
  makecontext(&context_, reinterpret_cast<void (*)()>(&MachineContext::Start), 4, static_cast<uint32_t>(e),
              static_cast<uint32_t>(e >> 32), static_cast<uint32_t>(a), static_cast<uint32_t>(a >> 32));
}

void MachineContext::Start(uint32_t lo_entry, uint32_t hi_entry, uint32_t lo_arg, uint32_t hi_arg) {
  auto entry = reinterpret_cast<void (*)(void*)>((static_cast<uintptr_t>(hi_entry) << 32) | lo_entry);
  entry(reinterpret_cast<void*>((static_cast<uintptr_t>(hi_arg) << 32) | lo_arg));
}

void MachineContext::Switch(MachineContext* from, MachineContext* to) { swapcontext(&from->context_, &to->context_); }

#endif

// ----- VThread -------------------------------------------------------------------

VThread::VThread(std::string name, std::function<void()> body, size_t stack_size)
    : name_(std::move(name)), body_(std::move(body)), stack_(std::make_unique<GuardedStack>(stack_size)) {
  context_.Make(*stack_, &VThread::Entry, this);
}

VThread::~VThread() = default;

void VThread::Entry(void* raw) {
  auto* self = static_cast<VThread*>(raw);
  self->body_();
  self->body_ = nullptr;
  // The thread ends: so does the reactor it made, if any (as a real
  // thread's thread_local reactor does).
  self->adopted_reactor_.reset();
  self->finished_ = true;
  VirtualWorld* world = VirtualWorld::Get();
  for (VThread* joiner : self->joiners_) world->Wake(joiner);
  self->joiners_.clear();
  world->SwitchToScheduler();
  VirtualFatal("a finished virtual thread was resumed");
}

// ----- VirtualWorld ----------------------------------------------------------------

VirtualWorld::VirtualWorld(uint64_t seed) : random_(seed ^ 0x7157A11), os_random_(seed ^ 0x05EED05) {
  if (instance_ != nullptr) VirtualFatal("two virtual worlds at once");
  // A wall clock in 2026 with the seed's phase against the coarse ticks.
  epoch_ = 1780000000ull * 1000000 + (seed * 7919) % kTickUs;
  now_ = 1000000;  // 1 s in: no timer is ever at 0
  instance_ = this;
}

VirtualWorld::~VirtualWorld() {
  for (VThread* thread : threads_) delete thread;
  // The observer may be parked half-way through a look (waiting for a lock
  // of a thread that is gone): its stack goes without being unwound.
  delete observer_;
  instance_ = nullptr;
}

Micros VirtualWorld::WhenCoarseReaches(Micros coarse) const {
  // CoarseWall(t) = floor((epoch + t) / tick) * tick >= coarse  <=>  epoch + t >= ceil(coarse / tick) * tick.
  const Micros target_wall = (coarse + kTickUs - 1) / kTickUs * kTickUs;
  return target_wall > epoch_ ? std::max(now_, target_wall - epoch_) : now_;
}

VThread* VirtualWorld::Spawn(std::string name, std::function<void()> body, size_t stack_size) {
  auto* thread = new VThread(std::move(name), std::move(body), stack_size);
  threads_.push_back(thread);
  runnable_.push_back(thread);
  return thread;
}

void VirtualWorld::Join(VThread* thread) {
  if (current_ == nullptr) VirtualFatal("Join called outside a virtual thread");
  if (thread == current_) VirtualFatal("a virtual thread joins itself");
  while (!thread->finished_) {
    thread->joiners_.push_back(current_);
    Park(0, "join");
  }
  Free(thread);
}

void VirtualWorld::SetObserver(std::function<void()> look) {
  if (observer_ != nullptr) VirtualFatal("two observers in one virtual world");
  observer_look_ = std::move(look);
  observer_ = new VThread("observer", [this] {
    while (true) {
      observer_look_();
      observer_looks_++;
      SwitchToScheduler();
    }
  }, 1 << 20);
  observer_->set_role("the safety monitor");
}

bool VirtualWorld::ObserverYieldsInsteadOfBlocking() {
  if (observer_ == nullptr || current_ != observer_ || !OnWorldThread()) return false;
  SwitchToScheduler();  // resumed at a later quiescent step, to try again
  return true;
}

void VirtualWorld::LetObserverLook() {
  if (observer_ == nullptr || observer_cleared_) return;
  const uint64_t switches = switches_.load(std::memory_order_relaxed);
  if (switches == observer_seen_switches_) return;  // nothing ran since its last look
  observer_seen_switches_ = switches;
  // Its clock reads must not count toward a spinning thread's.
  const uint64_t clock_reads = clock_reads_this_turn_;
  clock_reads_this_turn_ = 0;
  current_ = observer_;
  running_name_ = observer_->name_.c_str();
  MachineContext::Switch(&scheduler_context_, &observer_->context_);
  running_name_ = "scheduler";
  current_ = nullptr;
  clock_reads_this_turn_ = clock_reads;
}

void VirtualWorld::Free(VThread* thread) {
  threads_.erase(std::remove(threads_.begin(), threads_.end(), thread), threads_.end());
  delete thread;
}

bool VirtualWorld::Park(Micros deadline, const char* waiting_for) {
  VThread* self = current_;
  if (self == nullptr) VirtualFatal(std::string("Park (") + waiting_for + ") called outside a virtual thread");
  const uint64_t token = ++self->wait_token_;
  self->parked_ = true;
  self->timed_out_ = false;
  self->waiting_for_ = waiting_for;
  if (deadline != 0) timers_.emplace(std::make_pair(std::max(deadline, now_), sequence_++), std::make_pair(self, token));
  SwitchToScheduler();
  return self->timed_out_;
}

void VirtualWorld::Wake(VThread* thread) {
  if (!OnWorldThread()) {
    std::lock_guard<std::mutex> lock(foreign_mutex_);
    foreign_wakes_.push_back(thread);
    return;
  }
  if (thread == nullptr || !thread->parked_) return;
  thread->parked_ = false;
  thread->wait_token_++;  // its timer, if any, is now stale
  runnable_.push_back(thread);
}

void VirtualWorld::NoteForeignThread() {
  if (foreign_threads_++ > 0) return;
  std::fprintf(stderr, "labtest --virtual: note: the crate started 1 OS thread (pthread_create); it runs in real time "
                       "beside the virtual world, so this run is not an exact replay: grade such a crate in real time\n");
}

void VirtualWorld::FreezeAll(Micros us) {
  // Nothing runs until then; timers due meanwhile fire in order after it.
  frozen_until_ = now_ + us;
  frozen_total_ += us;
  Park(frozen_until_, "freeze");
}

Micros VirtualWorld::Jitter(Micros max) { return max == 0 ? 0 : random_() % (max + 1); }

bool VirtualWorld::OnWorldThread() const { return world_thread_ == std::this_thread::get_id(); }

void VirtualWorld::NoteClockRead() {
  if (++clock_reads_this_turn_ > kSpinReads) now_ += 1;
}

void VirtualWorld::FillOsRandom(void* buffer, size_t length) {
  auto* bytes = static_cast<unsigned char*>(buffer);
  for (size_t i = 0; i < length; i += 8) {
    const uint64_t word = os_random_();
    std::memcpy(bytes + i, &word, std::min<size_t>(8, length - i));
  }
}

void VirtualWorld::Trace(uint64_t value) {
  for (int i = 0; i < 8; i++) {
    trace_hash_ ^= (value >> (8 * i)) & 0xff;
    trace_hash_ *= 1099511628211ull;
  }
}

void VirtualWorld::SwitchToScheduler() {
  VThread* self = current_;
  MachineContext::Switch(&self->context_, &scheduler_context_);
}

bool VirtualWorld::Run() {
  world_thread_ = std::this_thread::get_id();
  const bool finished = RunThreads();
  world_thread_ = std::thread::id{};
  return finished;
}

bool VirtualWorld::RunThreads() {
  while (true) {
    {
      std::vector<VThread*> woken;
      {
        std::lock_guard<std::mutex> lock(foreign_mutex_);
        woken.swap(foreign_wakes_);
      }
      for (VThread* thread : woken) Wake(thread);
    }
    if (!runnable_.empty()) {
      VThread* next = runnable_.front();
      runnable_.pop_front();
      current_ = next;
      clock_reads_this_turn_ = 0;
      switches_.fetch_add(1, std::memory_order_relaxed);
      running_name_ = next->name_.c_str();
      MachineContext::Switch(&scheduler_context_, &next->context_);
      running_name_ = "scheduler";
      current_ = nullptr;
      continue;
    }
    // Nothing can run: the observer looks, then time jumps to the next due
    // timer.
    LetObserverLook();
    if (!runnable_.empty()) continue;  // its look woke something (a crate's get_state with side effects)
    while (!timers_.empty()) {
      auto first = timers_.begin();
      VThread* thread = first->second.first;
      const uint64_t token = first->second.second;
      const Micros due = first->first.first;
      timers_.erase(first);
      if (thread->wait_token_ != token || !thread->parked_) continue;  // stale
      // During a whole-process freeze nothing runs: what fell due fires
      // when it ends.
      now_ = std::max({now_, due, frozen_until_});
      thread->parked_ = false;
      thread->timed_out_ = true;
      thread->wait_token_++;
      std::vector<VThread*> batch{thread};
      // Everything due at the same time becomes runnable together, in an
      // order the seed chooses (real threads race there).
      while (!timers_.empty() && timers_.begin()->first.first <= now_) {
        auto same = timers_.begin();
        VThread* other = same->second.first;
        const uint64_t other_token = same->second.second;
        timers_.erase(same);
        if (other->wait_token_ != other_token || !other->parked_) continue;
        other->parked_ = false;
        other->timed_out_ = true;
        other->wait_token_++;
        batch.push_back(other);
      }
      std::shuffle(batch.begin(), batch.end(), random_);
      runnable_.insert(runnable_.end(), batch.begin(), batch.end());
      break;
    }
    if (!runnable_.empty()) continue;
    bool alive = false;
    for (VThread* thread : threads_) alive |= !thread->finished_;
    if (!alive) return true;
    std::fprintf(stderr, "labtest --virtual: deadlock at virtual time %.6f s: every thread is blocked and nothing is due\n",
                 now_ / 1e6);
    for (VThread* thread : threads_) {
      if (!thread->finished_) std::fprintf(stderr, "  %s: waiting for %s\n", thread->name_.c_str(), thread->waiting_for_);
    }
    return false;
  }
}

// ----- Harness mutex and signal ---------------------------------------------------------

void HarnessMutex::lock() {
  VirtualWorld* world = VirtualWorld::Get();
  if (world == nullptr || world->Current() == nullptr) {
    os_mutex_.lock();
    return;
  }
  while (held_) {
    waiters_.push_back(world->Current());
    world->Park(0, "a harness lock");
  }
  held_ = true;
}

void HarnessMutex::unlock() {
  VirtualWorld* world = VirtualWorld::Get();
  if (world == nullptr || world->Current() == nullptr) {
    os_mutex_.unlock();
    return;
  }
  held_ = false;
  if (!waiters_.empty()) {
    VThread* next = waiters_.front();
    waiters_.pop_front();
    world->Wake(next);
  }
}

void HarnessSignal::Wait(HarnessMutex& mutex, const std::function<bool()>& ready) {
  VirtualWorld* world = VirtualWorld::Get();
  if (world == nullptr || world->Current() == nullptr) {
    os_cv_.wait(mutex, ready);
    return;
  }
  while (!ready()) {
    waiters_.push_back(world->Current());
    mutex.unlock();
    world->Park(0, "a harness signal");
    mutex.lock();
  }
}

void HarnessSignal::NotifyAll() {
  VirtualWorld* world = VirtualWorld::Get();
  if (world == nullptr || world->Current() == nullptr) {
    os_cv_.notify_all();
    return;
  }
  for (VThread* waiter : waiters_) world->Wake(waiter);
  waiters_.clear();
}

// ----- Thread ------------------------------------------------------------------------

Thread::Thread(std::string name, std::function<void()> body) {
  if (VirtualWorld::On()) {
    virtual_thread_ = VirtualWorld::Get()->Spawn(std::move(name), std::move(body));
  } else {
    os_thread_ = std::thread(std::move(body));
  }
}

Thread::Thread(Thread&& other) noexcept
    : os_thread_(std::move(other.os_thread_)), virtual_thread_(other.virtual_thread_) {
  other.virtual_thread_ = nullptr;
}

Thread& Thread::operator=(Thread&& other) noexcept {
  if (this != &other) {
    if (joinable()) join();
    os_thread_ = std::move(other.os_thread_);
    virtual_thread_ = other.virtual_thread_;
    other.virtual_thread_ = nullptr;
  }
  return *this;
}

Thread::~Thread() {
  if (joinable()) join();
}

void Thread::join() {
  if (virtual_thread_ != nullptr) {
    VirtualWorld::Get()->Join(virtual_thread_);
    virtual_thread_ = nullptr;
  } else if (os_thread_.joinable()) {
    os_thread_.join();
  }
}

}  // namespace standin
