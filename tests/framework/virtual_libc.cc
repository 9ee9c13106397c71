// Virtual time for the process's own clocks, sleeps and OS randomness.
//
// Code inside the crate may read the system clock (std::time::Instant,
// SystemTime), sleep with std::thread::sleep, and seed generators from the
// OS (rand's thread_rng, std's HashMap keys); the lab's own glue sleeps
// 200 ms in rust_raft_server_delete. In virtual time those calls must see
// virtual time, or a run would stall on real sleeps and no replay would be
// exact. This file defines the libc functions they reach; linked into the
// labtest executable, its definitions take the place of libc's for the
// crate (a static library linked into the same executable), and `getrandom`
// is also exported for the lookup Rust's standard library makes at run time.
//
// Only calls on the OS thread that runs the virtual world, while it runs,
// are virtual; every other call (real time, the watchdog thread, before and
// after a run) goes to libc's own function. Not covered: a thread that
// spins without reading any clock (it never yields; the watchdog names it),
// and OS threads the crate starts itself (they run in real time).
#include <dlfcn.h>
#include <pthread.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdint>

#include "virtual_time.h"

namespace {

using standin::Micros;
using standin::VirtualWorld;

// The world, if this call is one to virtualize.
VirtualWorld* VirtualHere() {
  VirtualWorld* world = VirtualWorld::Get();
  return world != nullptr && world->OnWorldThread() ? world : nullptr;
}

// libc's own definition of `name` (the next one after this executable's).
template <typename Fn>
Fn Real(const char* name) {
  void* symbol = dlsym(RTLD_NEXT, name);
  if (symbol == nullptr) {
    // Cannot happen with glibc; fail loudly rather than recurse.
    static const char message[] = "standin: virtual_libc: libc function not found\n";
    (void)!write(2, message, sizeof message - 1);
    _exit(134);
  }
  return reinterpret_cast<Fn>(symbol);
}

timespec ToTimespec(Micros us) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(us / 1000000);
  ts.tv_nsec = static_cast<long>(us % 1000000) * 1000;
  return ts;
}

Micros FromTimespec(const timespec& ts) {
  if (ts.tv_sec < 0) return 0;
  return static_cast<Micros>(ts.tv_sec) * 1000000 + static_cast<Micros>(ts.tv_nsec + 999) / 1000;
}

// The virtual reading of `clock`, or false for clocks that stay real (the
// CPU-time clocks).
bool VirtualClock(VirtualWorld* world, clockid_t clock, Micros* out) {
  switch (clock) {
    case CLOCK_REALTIME:
    case CLOCK_REALTIME_ALARM:
      *out = world->Wall();
      return true;
    case CLOCK_REALTIME_COARSE:
      *out = world->CoarseWall();
      return true;
    case CLOCK_MONOTONIC:
    case CLOCK_MONOTONIC_RAW:
    case CLOCK_BOOTTIME:
    case CLOCK_BOOTTIME_ALARM:
      *out = world->Now();
      return true;
    case CLOCK_MONOTONIC_COARSE:
      *out = world->Now() / VirtualWorld::kTickUs * VirtualWorld::kTickUs;
      return true;
    default:
      return false;
  }
}

// A sleep of `us` by the calling virtual thread (outside a virtual thread,
// no time passes: there is nothing to wait for).
void VirtualSleep(VirtualWorld* world, Micros us) {
  if (world->Current() != nullptr && us > 0) world->SleepUntil(world->Now() + us);
}

}  // namespace

extern "C" {

int clock_gettime(clockid_t clock, struct timespec* ts) {
  static const auto real = Real<int (*)(clockid_t, struct timespec*)>("clock_gettime");
  if (VirtualWorld* world = VirtualHere()) {
    Micros now = 0;
    if (VirtualClock(world, clock, &now)) {
      world->NoteClockRead();
      *ts = ToTimespec(now);
      return 0;
    }
  }
  return real(clock, ts);
}

int gettimeofday(struct timeval* tv, void* tz) {
  static const auto real = Real<int (*)(struct timeval*, void*)>("gettimeofday");
  if (VirtualWorld* world = VirtualHere()) {
    world->NoteClockRead();
    const Micros now = world->Wall();
    tv->tv_sec = static_cast<time_t>(now / 1000000);
    tv->tv_usec = static_cast<suseconds_t>(now % 1000000);
    return 0;
  }
  return real(tv, tz);
}

time_t time(time_t* out) {
  static const auto real = Real<time_t (*)(time_t*)>("time");
  if (VirtualWorld* world = VirtualHere()) {
    world->NoteClockRead();
    const time_t now = static_cast<time_t>(world->Wall() / 1000000);
    if (out != nullptr) *out = now;
    return now;
  }
  return real(out);
}

int nanosleep(const struct timespec* request, struct timespec* remaining) {
  static const auto real = Real<int (*)(const struct timespec*, struct timespec*)>("nanosleep");
  if (VirtualWorld* world = VirtualHere()) {
    if (request == nullptr || request->tv_nsec < 0 || request->tv_nsec >= 1000000000) {
      errno = EINVAL;
      return -1;
    }
    VirtualSleep(world, FromTimespec(*request));
    if (remaining != nullptr) *remaining = timespec{};
    return 0;
  }
  return real(request, remaining);
}

int clock_nanosleep(clockid_t clock, int flags, const struct timespec* request, struct timespec* remaining) {
  static const auto real = Real<int (*)(clockid_t, int, const struct timespec*, struct timespec*)>("clock_nanosleep");
  if (VirtualWorld* world = VirtualHere()) {
    Micros now = 0;
    if (request == nullptr || !VirtualClock(world, clock, &now)) return EINVAL;
    const Micros wanted = FromTimespec(*request);
    VirtualSleep(world, (flags & TIMER_ABSTIME) != 0 ? (wanted > now ? wanted - now : 0) : wanted);
    if (remaining != nullptr && (flags & TIMER_ABSTIME) == 0) *remaining = timespec{};
    return 0;
  }
  return real(clock, flags, request, remaining);
}

int usleep(useconds_t us) {
  static const auto real = Real<int (*)(useconds_t)>("usleep");
  if (VirtualWorld* world = VirtualHere()) {
    VirtualSleep(world, us);
    return 0;
  }
  return real(us);
}

unsigned int sleep(unsigned int seconds) {
  static const auto real = Real<unsigned int (*)(unsigned int)>("sleep");
  if (VirtualWorld* world = VirtualHere()) {
    VirtualSleep(world, static_cast<Micros>(seconds) * 1000000);
    return 0;
  }
  return real(seconds);
}

ssize_t getrandom(void* buffer, size_t length, unsigned int flags) {
  static const auto real = Real<ssize_t (*)(void*, size_t, unsigned int)>("getrandom");
  if (VirtualWorld* world = VirtualHere()) {
    world->FillOsRandom(buffer, length);
    return static_cast<ssize_t>(length);
  }
  return real(buffer, length, flags);
}

// The `getrandom` crate (behind rand's OsRng and thread_rng) calls the
// getrandom system call through syscall(2); everything else passes through
// with its arguments (syscall takes at most six, read as glibc's does).
long syscall(long number, ...) {
  static const auto real = Real<long (*)(long, ...)>("syscall");
  va_list args;
  va_start(args, number);
  long a[6];
  for (long& value : a) value = va_arg(args, long);
  va_end(args);
  if (number == SYS_futex) {
    // The harness's observer must never block the OS thread that runs
    // every virtual thread: a crate lock it waits for is held by a virtual
    // thread that is itself waiting (README, "The safety monitor").
    const long op = a[1] & FUTEX_CMD_MASK;
    if ((op == FUTEX_WAIT || op == FUTEX_WAIT_BITSET) && VirtualHere() != nullptr &&
        VirtualHere()->ObserverYieldsInsteadOfBlocking()) {
      return 0;  // a spurious wake-up: the lock's own loop looks again
    }
  }
  if (number == SYS_getrandom) {
    if (VirtualWorld* world = VirtualHere()) {
      world->FillOsRandom(reinterpret_cast<void*>(a[0]), static_cast<size_t>(a[1]));
      return a[1];
    }
  }
  return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

// OS threads the crate starts run in real time beside the virtual world:
// the thread is started as usual, and the world counts it, so the run can
// say that it is not an exact replay.
int pthread_create(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*), void* arg) {
  static const auto real = Real<int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*)>("pthread_create");
  if (VirtualWorld* world = VirtualHere()) world->NoteForeignThread();
  return real(thread, attr, start, arg);
}

}  // extern "C"
