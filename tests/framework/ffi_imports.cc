// The framework side of the C ABI: every import of ../shared/abi.md. Each
// one does what the real bridge (src/protocol/raft/rust_ffi_wrapper.cc)
// does. Where the real framework crashes or aborts (a NULL handle, a wait
// outside any coroutine off the reactor thread, a range max < min, ...),
// the stand-in calls Fatal with a message saying what the real one does;
// where it runs the call anyway without a lock (the thread rules of
// abi.md), the stand-in runs it too, under locks of its own, and records a
// hazard (hazards.h). README, "Where the grade could differ from the real
// framework", lists every such site.
#include <sys/time.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <random>

#include "framework.h"
#include "hazards.h"
#include "rust_ffi_wrapper.h"

using standin::CommandHandles;
using standin::Config;
using standin::Fatal;
using standin::Frame;
using standin::HandlerScope;
using standin::RecordHazard;
using standin::RunObserver;
using standin::CurrentRunObserver;
using standin::IntEvent;
using standin::Marshallable;
using standin::QuorumEvent;
using standin::RaftCommo;
using standin::RaftData;
using standin::RaftLogs;
using standin::Reactor;
using standin::RpcProxy;

namespace {

// The real bridge dereferences every handle unchecked: NULL is a crash.
template <typename T>
T* Checked(void* handle, const char* function) {
  if (handle == nullptr) Fatal(std::string(function) + ": NULL handle (the real framework dereferences it: SIGSEGV)");
  return static_cast<T*>(handle);
}

// Event and RaftData handles are heap-allocated shared_ptrs, as in the real
// framework, which never frees them; the stand-in keeps them until exit so
// a late reply or a stale handle never meets freed memory.
std::atomic<size_t> g_kept_handles{0};

template <typename T>
void* KeepHandle(std::shared_ptr<T> object) {
  static std::mutex mutex;
  static std::deque<std::shared_ptr<void>> kept;
  auto* handle = new std::shared_ptr<T>(std::move(object));
  std::lock_guard<std::mutex> lock(mutex);
  kept.emplace_back(handle, [](void* p) { delete static_cast<std::shared_ptr<T>*>(p); });
  g_kept_handles++;
  return handle;
}

template <typename T>
std::shared_ptr<T>& FromHandle(void* handle, const char* function) {
  return *Checked<std::shared_ptr<T>>(handle, function);
}

// A blocking import (an event wait, a sleep). The real Event::Wait parks
// whatever coroutine runs on the calling thread, on that thread's reactor:
// a fiber of any reactor may wait, and so may the lab's test thread, whose
// test runs in a coroutine of its own; anywhere else (a test helper, the
// network thread, a thread the crate started) it fails verify(sp_coro) and
// aborts. Waiting inside an RPC handler, or on another server's event, is
// a hazard.
void CheckBlocking(const char* function, const Reactor* owner) {
  Reactor* here = Reactor::HereIfAny();
  if (Reactor::CurrentCoroutine() != nullptr) {
    if (const char* handler = HandlerScope::Current()) {
      standin::HandlerWaited();
      RecordHazard(std::string(function) + " inside the RPC handler " + handler, standin::rule::kHandlerWait,
                   here->server());
    }
    if (owner != nullptr && owner != here) standin::CheckImportThread(owner, function);
    return;
  }
  if (here != nullptr && !here->adopted()) {
    Fatal(std::string(function) + " on " + here->name() + "'s loop outside any fiber (a stand-in bug: crate code "
          "always runs in a fiber there)");
  }
  if (standin::OnTestThread()) {
    RecordHazard(function, standin::rule::kTestThreadWait, owner != nullptr ? owner->server() : -1);
    return;
  }
  Fatal(std::string(function) + " outside any coroutine on " + standin::ThreadRole() +
        ": the real framework's Event::Wait fails verify(sp_coro) there and aborts");
}

// raft_random_rand's state: per thread, as the real framework's rand_r
// state is. The real one seeds it from the cycle counter; the stand-in seeds
// it from the run's seed and the order in which threads first draw, so a run
// can be repeated more closely.
std::atomic<uint64_t> g_random_seed{20261126};
std::atomic<uint64_t> g_random_generation{1};
std::atomic<uint64_t> g_random_threads{0};
struct ThreadRandom {
  uint64_t generation = 0;
  unsigned state = 0;
};
thread_local ThreadRandom tl_random;
// --wrap-random-overflow: instead of aborting, do what the real formula
// does on x86 with wrapping int arithmetic (to run an old crate that asked
// for such a range).
std::atomic<bool> g_random_overflow_wraps{false};

unsigned& ThreadRandomState() {
  const uint64_t generation = g_random_generation.load();
  if (tl_random.generation != generation) {
    tl_random.generation = generation;
    uint64_t z = g_random_seed.load() + 0x9E3779B97F4A7C15ull * (g_random_threads.fetch_add(1) + 1);
    z = (z ^ (z >> 31)) * 0xBF58476D1CE4E5B9ull;
    tl_random.state = static_cast<unsigned>(z ^ (z >> 29));
  }
  return tl_random.state;
}

// The crate now holds an AppendEntries reply (its wait returned with it, or
// it saw the event ready): the monitor learns the reply's term, once.
void TellReplyRead(IntEvent& event) {
  int server = -1;
  uint64_t request_term = 0, reply_term = 0;
  if (!event.TakeReplyRead(&server, &request_term, &reply_term)) return;
  if (RunObserver* observer = CurrentRunObserver()) observer->ReplyRead(server, request_term, reply_term);
}

}  // namespace

namespace standin {
void SetRandomOverflowWraps(bool wraps) { g_random_overflow_wraps = wraps; }
bool RandomOverflowWraps() { return g_random_overflow_wraps; }
size_t KeptHandles() { return g_kept_handles.load(); }

void SeedFrameworkRandom(uint64_t seed) {
  g_random_seed = seed;
  g_random_threads = 0;
  g_random_generation++;
}
}  // namespace standin

extern "C" {

// ----- commo: RPCs ------------------------------------------------------------------

IntEvent_C raft_commo_send_append_entries(RaftCommo_C commo_c, siteid_t site_id, parid_t par_id,
                                          slotid_t, ballot_t, bool_t, uint64_t current_term,
                                          uint64_t prev_log_index, uint64_t prev_log_term,
                                          uint64_t commit_index, Marshallable_C cmd,
                                          uint64_t cmd_log_term, uint64_t* ret_status,
                                          uint64_t* ret_term, uint64_t* ret_last_log_index) {
  const char* fn = "raft_commo_send_append_entries";
  auto* commo = Checked<RaftCommo>(commo_c, fn);
  standin::CheckImportThread(commo->reactor(), fn);
  if (ret_status == nullptr || ret_term == nullptr || ret_last_log_index == nullptr) {
    Fatal(std::string(fn) + ": NULL reply buffer (the real framework writes the reply through it: SIGSEGV)");
  }
  auto event = std::make_shared<IntEvent>(commo->reactor());
  IntEvent_C handle = KeepHandle(event);
  if (!commo->HasProxy(par_id, site_id)) return handle;  // disconnected: nothing sent, never ready
  standin::RaftService::AppendArgs args{current_term, prev_log_index, prev_log_term, commit_index,
                                        cmd_log_term, nullptr};
  if (cmd != nullptr) args.entry = CommandHandles::Get(cmd, fn)->Clone();  // the framework copies
  commo->network()->SendAppend(commo->self(), site_id, std::move(args), event, ret_status, ret_term,
                               ret_last_log_index);
  return handle;
}

VoteQuorumEvent_C raft_commo_broadcast_vote(RaftCommo_C commo_c, parid_t par_id,
                                            slotid_t lst_log_idx, ballot_t lst_log_term,
                                            siteid_t self_id, ballot_t cur_term) {
  const char* fn = "raft_commo_broadcast_vote";
  auto* commo = Checked<RaftCommo>(commo_c, fn);
  standin::CheckImportThread(commo->reactor(), fn);
  const std::vector<RpcProxy> proxies = commo->ProxiesCopy(par_id);
  const Config* config = Config::Global();
  const int n_total = config != nullptr ? config->PartitionSize(par_id) : static_cast<int>(proxies.size());
  auto event = std::make_shared<QuorumEvent>(commo->reactor(), n_total, n_total / 2, static_cast<int>(commo->self()),
                                            static_cast<uint64_t>(cur_term));
  VoteQuorumEvent_C handle = KeepHandle(event);
  // Asking is voting for oneself: the quorum event counts the candidate's
  // own vote. The sender is the commo's server, whatever self_id says.
  if (RunObserver* observer = CurrentRunObserver()) observer->VotesAsked(commo->self(), cur_term);
  for (const RpcProxy& proxy : proxies) {
    if (proxy.site_id == self_id) continue;
    commo->network()->SendVote(commo->self(), proxy.site_id, lst_log_idx, lst_log_term, cur_term, event);
  }
  return handle;
}

// ----- events --------------------------------------------------------------------------

void raft_vote_quorum_event_wait(VoteQuorumEvent_C ev) {
  const char* fn = "raft_vote_quorum_event_wait";
  auto& event = FromHandle<QuorumEvent>(ev, fn);
  CheckBlocking(fn, event->reactor());
  event->Wait(1000000);
}

int raft_vote_quorum_event_yes(VoteQuorumEvent_C ev) {
  auto& event = FromHandle<QuorumEvent>(ev, "raft_vote_quorum_event_yes");
  standin::CheckImportThread(event->reactor(), "raft_vote_quorum_event_yes");
  return event->Yes() ? 1 : 0;
}

int raft_vote_quorum_event_no(VoteQuorumEvent_C ev) {
  auto& event = FromHandle<QuorumEvent>(ev, "raft_vote_quorum_event_no");
  standin::CheckImportThread(event->reactor(), "raft_vote_quorum_event_no");
  return event->No() ? 1 : 0;
}

ballot_t raft_vote_quorum_event_get_term(VoteQuorumEvent_C ev) {
  auto& event = FromHandle<QuorumEvent>(ev, "raft_vote_quorum_event_get_term");
  standin::CheckImportThread(event->reactor(), "raft_vote_quorum_event_get_term");
  const int64_t term = event->highest_no_term();
  if (RunObserver* observer = CurrentRunObserver(); observer != nullptr && term > 0 && event->owner() >= 0) {
    observer->ReplyRead(event->owner(), event->term(), static_cast<uint64_t>(term));
  }
  return term;
}

void raft_int_event_wait(IntEvent_C ev, uint64_t timeout_us) {
  const char* fn = "raft_int_event_wait";
  auto& event = FromHandle<IntEvent>(ev, fn);
  CheckBlocking(fn, event->reactor());
  event->Wait(timeout_us);
  if (event->status() == IntEvent::DONE) TellReplyRead(*event);
}

int raft_int_event_get_status(IntEvent_C ev) {
  auto& event = FromHandle<IntEvent>(ev, "raft_int_event_get_status");
  standin::CheckImportThread(event->reactor(), "raft_int_event_get_status");
  const int status = event->status();
  if (status == IntEvent::READY || status == IntEvent::DONE) TellReplyRead(*event);
  return status;
}

// ----- commo: proxies --------------------------------------------------------------------

// The proxy lists and the process-wide backup are read and written under
// the stand-in's one proxies lock (RaftCommo::ProxiesMutex), wherever the
// call comes from; the real framework has no lock at all (the thread rule
// of abi.md), so a call off the reactor thread is a hazard there.

RpcProxies_C raft_commo_get_rpc_par_proxies(RaftCommo_C commo_c, parid_t par_id) {
  const char* fn = "raft_commo_get_rpc_par_proxies";
  auto* commo = Checked<RaftCommo>(commo_c, fn);
  standin::CheckImportThread(commo->reactor(), fn);
  std::lock_guard<std::mutex> lock(RaftCommo::ProxiesMutex());
  return &commo->ProxiesLocked(par_id);
}

size_t raft_rpc_proxies_size(RpcProxies_C proxies) {
  auto* list = Checked<std::vector<RpcProxy>>(proxies, "raft_rpc_proxies_size");
  std::lock_guard<std::mutex> lock(RaftCommo::ProxiesMutex());
  return list->size();
}

void raft_rpc_proxies_get_site_ids(RpcProxies_C proxies, siteid_t* out, size_t n) {
  auto* list = Checked<std::vector<RpcProxy>>(proxies, "raft_rpc_proxies_get_site_ids");
  if (out == nullptr && n > 0) Fatal("raft_rpc_proxies_get_site_ids: NULL output buffer (the real framework writes through it: SIGSEGV)");
  std::lock_guard<std::mutex> lock(RaftCommo::ProxiesMutex());
  for (size_t i = 0; i < n && i < list->size(); i++) out[i] = (*list)[i].site_id;
}

void raft_commo_clear_rpc_proxies(RaftCommo_C commo_c, parid_t par_id) {
  const char* fn = "raft_commo_clear_rpc_proxies";
  auto* commo = Checked<RaftCommo>(commo_c, fn);
  standin::CheckImportThread(commo->reactor(), fn);
  std::lock_guard<std::mutex> lock(RaftCommo::ProxiesMutex());
  commo->ProxiesLocked(par_id).clear();
}

size_t raft_commo_get_rpc_proxy_count(RaftCommo_C commo_c, parid_t par_id) {
  const char* fn = "raft_commo_get_rpc_proxy_count";
  auto* commo = Checked<RaftCommo>(commo_c, fn);
  standin::CheckImportThread(commo->reactor(), fn);
  std::lock_guard<std::mutex> lock(RaftCommo::ProxiesMutex());
  return commo->ProxiesLocked(par_id).size();
}

void raft_commo_save_rpc_proxies(RaftCommo_C commo_c, parid_t par_id, uint32_t loc_id) {
  const char* fn = "raft_commo_save_rpc_proxies";
  auto* commo = Checked<RaftCommo>(commo_c, fn);
  standin::CheckImportThread(commo->reactor(), fn);
  // As the real one: clear the backup entry, copy the live list into it,
  // clear the live list. A second save (no live proxies) wipes the backup.
  std::lock_guard<std::mutex> lock(RaftCommo::ProxiesMutex());
  auto& proxies = commo->ProxiesLocked(par_id);
  auto& backup = RaftCommo::BackupLocked()[{par_id, loc_id}];
  backup.clear();
  backup = proxies;
  proxies.clear();
}

void raft_commo_restore_rpc_proxies(RaftCommo_C commo_c, parid_t par_id, uint32_t loc_id) {
  const char* fn = "raft_commo_restore_rpc_proxies";
  auto* commo = Checked<RaftCommo>(commo_c, fn);
  standin::CheckImportThread(commo->reactor(), fn);
  // As the real one: clear the live list, copy the backup in, clear the
  // backup. With no backup the server is left with no proxies.
  std::lock_guard<std::mutex> lock(RaftCommo::ProxiesMutex());
  auto& proxies = commo->ProxiesLocked(par_id);
  proxies.clear();
  auto it = RaftCommo::BackupLocked().find({par_id, loc_id});
  if (it == RaftCommo::BackupLocked().end()) return;
  proxies = it->second;
  RaftCommo::BackupLocked().erase(it);
}

bool raft_commo_has_backup_proxies(parid_t par_id, uint32_t loc_id) {
  std::lock_guard<std::mutex> lock(RaftCommo::ProxiesMutex());
  auto it = RaftCommo::BackupLocked().find({par_id, loc_id});
  return it != RaftCommo::BackupLocked().end() && !it->second.empty();
}

size_t raft_commo_get_backup_proxy_count(parid_t par_id, uint32_t loc_id) {
  std::lock_guard<std::mutex> lock(RaftCommo::ProxiesMutex());
  auto it = RaftCommo::BackupLocked().find({par_id, loc_id});
  return it == RaftCommo::BackupLocked().end() ? 0 : it->second.size();
}

// ----- config --------------------------------------------------------------------------------

void* raft_config_get_config(void) { return const_cast<Config*>(Config::Global()); }

int raft_config_get_partition_size(void* config, parid_t par_id) {
  return Checked<Config>(config, "raft_config_get_partition_size")->PartitionSize(par_id);
}

// ----- fibers and clocks ----------------------------------------------------------------------

// Coroutine::CreateRun on the calling thread's reactor: a server's, or the
// thread's own (the real GetReactor makes one for any thread), where the
// fiber runs until its first wait and then only when that thread runs its
// reactor again (README, "Fibers off the reactor threads").
void raft_coroutine_create_run(raft_coroutine_callback_t cb, void* ctx) {
  if (cb == nullptr) Fatal("raft_coroutine_create_run: NULL callback (the real framework calls it: SIGSEGV)");
  Reactor* reactor = Reactor::ForThisThread();
  if (reactor->adopted()) RecordHazard("raft_coroutine_create_run", standin::rule::kForeignThread);
  reactor->CreateRunCoroutine([cb, ctx] { cb(ctx); });
}

void raft_coroutine_sleep(uint64_t us) {
  CheckBlocking("raft_coroutine_sleep", nullptr);
  Reactor* reactor = Reactor::ForThisThread();
  if (reactor->running_coroutine() != nullptr) {
    reactor->Sleep(us);
  } else {
    // The lab's test thread: its test coroutine sleeps, its reactor runs.
    reactor->DriveUntil(standin::NowMicros() + us, [] { return false; });
  }
}

// A wall-clock stopwatch (gettimeofday in the real framework); a timer
// never started has no start time, and reading it aborts.
struct Stopwatch {
  bool started = false;
  timeval start{};
};

Timer_C raft_timer_new(void) { return new Stopwatch; }

void raft_timer_delete(Timer_C timer) { delete Checked<Stopwatch>(timer, "raft_timer_delete"); }

void raft_timer_start(Timer_C timer) {
  auto* watch = Checked<Stopwatch>(timer, "raft_timer_start");
  gettimeofday(&watch->start, nullptr);
  watch->started = true;
}

double raft_timer_elapsed(Timer_C timer) {
  auto* watch = Checked<Stopwatch>(timer, "raft_timer_elapsed");
  if (!watch->started) Fatal("raft_timer_elapsed: the timer was never started (the real Timer::elapsed fails verify and aborts)");
  timeval now{};
  gettimeofday(&now, nullptr);
  return (now.tv_sec - watch->start.tv_sec) + (now.tv_usec - watch->start.tv_usec) / 1e6;
}

// Microseconds since the epoch from the coarse wall clock, as the real
// framework's CLOCK_REALTIME_COARSE: it moves in ticks of about 4 ms.
uint64_t raft_time_now(void) {
  const uint64_t now = standin::CoarseWallMicros();
  standin::TraceEvent({5, now});
  return now;
}

// The real formula: (r % (max - min + 1)) + min in int, r from rand_r in
// [0, RAND_MAX]. A width that overflows int is undefined behaviour there;
// its compiled code wraps as x86 does, which the stand-in reproduces (a
// hazard; labtest --strict aborts), except where the wrapped width is 0
// (the full int range): a division by zero, SIGFPE in the real one.
int raft_random_rand(int min, int max) {
  if (max < min) {
    Fatal("raft_random_rand(" + std::to_string(min) + ", " + std::to_string(max) + "): max < min (the real RandomGenerator::rand fails verify and aborts)");
  }
  const int64_t width = static_cast<int64_t>(max) - static_cast<int64_t>(min) + 1;
  if (width > INT32_MAX) {
    const int32_t wrapped_width = static_cast<int32_t>(static_cast<uint32_t>(width));
    if (wrapped_width == 0) {
      Fatal("raft_random_rand(" + std::to_string(min) + ", " + std::to_string(max) +
            "): max - min + 1 wraps to 0 in int: the real framework divides by zero (SIGFPE)");
    }
    if (!g_random_overflow_wraps.load()) {
      RecordHazard("raft_random_rand(" + std::to_string(min) + ", " + std::to_string(max) + ")", standin::rule::kRandomOverflow);
    }
    const int64_t r = rand_r(&ThreadRandomState());
    const int result = static_cast<int>(static_cast<int32_t>(static_cast<uint32_t>(r % wrapped_width) + static_cast<uint32_t>(min)));
    standin::TraceEvent({6, static_cast<uint64_t>(static_cast<int64_t>(result))});
    return result;
  }
  const int r = rand_r(&ThreadRandomState());
  const int result = r % static_cast<int>(width) + min;
  standin::TraceEvent({6, static_cast<uint64_t>(static_cast<int64_t>(result))});
  return result;
}

double raft_random_rand_double(double min, double max) {
  if (max < min) {
    Fatal("raft_random_rand_double(" + std::to_string(min) + ", " + std::to_string(max) + "): max < min (the real framework aborts)");
  }
  if (max == min) return min;
  const int r = rand_r(&ThreadRandomState());
  return min + (max - min) * (static_cast<double>(r) / RAND_MAX);
}

// ----- identity -----------------------------------------------------------------------------------

uint32_t raft_frame_get_locale_id(Frame_C frame) { return Checked<Frame>(frame, "raft_frame_get_locale_id")->locale_id; }
siteid_t raft_frame_get_site_id(Frame_C frame) { return Checked<Frame>(frame, "raft_frame_get_site_id")->site_id; }
parid_t raft_frame_get_partition_id(Frame_C frame) {
  return Checked<Frame>(frame, "raft_frame_get_partition_id")->partition_id;
}

// ----- RaftData and the log map ----------------------------------------------------------------------

RaftData_C raft_data_new(void) { return KeepHandle(std::make_shared<RaftData>()); }

#define STANDIN_RAFT_DATA_FIELD(type, field)                                             \
  type raft_data_get_##field(RaftData_C data) {                                          \
    return FromHandle<RaftData>(data, "raft_data_get_" #field)->field;                   \
  }                                                                                      \
  void raft_data_set_##field(RaftData_C data, type value) {                              \
    FromHandle<RaftData>(data, "raft_data_set_" #field)->field = value;                  \
  }
STANDIN_RAFT_DATA_FIELD(ballot_t, term)
STANDIN_RAFT_DATA_FIELD(ballot_t, prev_term)
STANDIN_RAFT_DATA_FIELD(slotid_t, slot_id)
STANDIN_RAFT_DATA_FIELD(ballot_t, ballot)
#undef STANDIN_RAFT_DATA_FIELD

// As the real one: a new handle even when the record holds no command (a
// handle to an empty shared_ptr, which the app callback skips).
Marshallable_C raft_data_get_log(RaftData_C data) {
  auto& record = FromHandle<RaftData>(data, "raft_data_get_log");
  return CommandHandles::Make(record->log);
}

void raft_data_set_log(RaftData_C data, Marshallable_C cmd) {
  auto& record = FromHandle<RaftData>(data, "raft_data_set_log");
  if (cmd == nullptr) Fatal("raft_data_set_log: NULL command handle (the real framework dereferences it: SIGSEGV)");
  auto& command = CommandHandles::Get(cmd, "raft_data_set_log");
  record->log = command ? command->Clone() : nullptr;
}

RaftData_C raft_logs_get_instance(RaftLogs_C logs, slotid_t slot) {
  const char* fn = "raft_logs_get_instance";
  return KeepHandle(Checked<RaftLogs>(logs, fn)->Instance(slot, fn));
}

void raft_logs_set_instance(RaftLogs_C logs, slotid_t slot, RaftData_C data) {
  const char* fn = "raft_logs_set_instance";
  auto& record = FromHandle<RaftData>(data, fn);
  Checked<RaftLogs>(logs, fn)->Set(slot, record, fn);  // the same record, as the real one stores it
}

void raft_logs_erase(RaftLogs_C logs, slotid_t slot) {
  const char* fn = "raft_logs_erase";
  Checked<RaftLogs>(logs, fn)->Erase(slot, fn);
}

// ----- commands and the state machine ---------------------------------------------------------------------

Marshallable_C raft_marshallable_retain(Marshallable_C cmd) {
  return CommandHandles::Make(CommandHandles::Get(cmd, "raft_marshallable_retain"));
}

void raft_marshallable_release(Marshallable_C cmd) { CommandHandles::Release(cmd, "raft_marshallable_release"); }

int raft_marshallable_get_kind(Marshallable_C cmd) {
  auto& command = CommandHandles::Get(cmd, "raft_marshallable_get_kind");
  if (!command) Fatal("raft_marshallable_get_kind on a handle to no command (the real framework dereferences it: SIGSEGV)");
  return command->kind;
}

int raft_app_next_call(AppNextFn_C app_next, int index, Marshallable_C cmd) {
  auto* fn = Checked<standin::AppNextFn>(app_next, "raft_app_next_call");
  if (cmd == nullptr) Fatal("raft_app_next_call: NULL command handle (the real framework dereferences it: SIGSEGV)");
  return (*fn)(index, CommandHandles::Get(cmd, "raft_app_next_call"));
}

void raft_tx_sched_destroy_tx(TxScheduler_C, uint64_t) {}

}  // extern "C"
