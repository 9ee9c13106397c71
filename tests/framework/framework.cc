#include "framework.h"

#include "explore.h"
#include "hazards.h"

#include <strings.h>

#include <ctime>
#include <map>

#include <yaml-cpp/yaml.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_set>

namespace standin {

// ----- Command handles ------------------------------------------------------------

namespace {
std::mutex& HandlesMutex() {
  static std::mutex mutex;
  return mutex;
}
std::unordered_set<Marshallable_C>& LiveHandles() {
  static std::unordered_set<Marshallable_C> live;
  return live;
}
}  // namespace

Marshallable_C CommandHandles::Make(std::shared_ptr<Marshallable> command) {
  auto* handle = new std::shared_ptr<Marshallable>(std::move(command));
  std::lock_guard<std::mutex> lock(HandlesMutex());
  LiveHandles().insert(handle);
  return handle;
}

std::shared_ptr<Marshallable>& CommandHandles::Get(Marshallable_C handle, const char* function) {
  {
    std::lock_guard<std::mutex> lock(HandlesMutex());
    if (LiveHandles().count(handle) == 0) {
      Fatal(std::string(function) + ": unknown or released command handle");
    }
  }
  return *static_cast<std::shared_ptr<Marshallable>*>(handle);
}

void CommandHandles::Release(Marshallable_C handle, const char* function) {
  {
    std::lock_guard<std::mutex> lock(HandlesMutex());
    if (LiveHandles().erase(handle) == 0) {
      Fatal(std::string(function) + ": command handle released twice or never made");
    }
  }
  delete static_cast<std::shared_ptr<Marshallable>*>(handle);
}

size_t CommandHandles::live() {
  std::lock_guard<std::mutex> lock(HandlesMutex());
  return LiveHandles().size();
}

// ----- The stand-in's log lines -----------------------------------------------------------

namespace {

// RUST_LOG as env_logger reads it, for the stand-in's own targets: a list of
// `name=level` or bare `level` directives; the longest name that is a
// prefix of the target decides (a bare level has the empty name).
int LogLevelNumber(const std::string& level) {
  static const char* const names[] = {"off", "error", "warn", "info", "debug", "trace"};
  for (int i = 0; i < 6; i++) {
    if (strcasecmp(level.c_str(), names[i]) == 0) return i;
  }
  return -1;
}

int RustLogLevelFor(const std::string& target) {
  const char* spec = std::getenv("RUST_LOG");
  if (spec == nullptr) return 0;
  int level = 0;
  size_t best = 0;
  bool found = false;
  std::stringstream stream(spec);
  std::string directive;
  while (std::getline(stream, directive, ',')) {
    std::string name, value;
    const size_t eq = directive.find('=');
    if (eq == std::string::npos) {
      if (LogLevelNumber(directive) >= 0) {
        value = directive;  // a bare level
      } else {
        name = directive;  // a bare name: everything from it
        value = "trace";
      }
    } else {
      name = directive.substr(0, eq);
      value = directive.substr(eq + 1);
    }
    const int number = LogLevelNumber(value);
    if (number < 0 || target.compare(0, name.size(), name) != 0) continue;
    if (!found || name.size() >= best) {
      found = true;
      best = name.size();
      level = number;
    }
  }
  return level;
}

}  // namespace

bool StandinLogOn(const char* topic) {
  // Read once per topic (the environment does not change during a run).
  static std::mutex mutex;
  static std::map<std::string, bool> on;
  std::lock_guard<std::mutex> lock(mutex);
  auto found = on.find(topic);
  if (found == on.end()) found = on.emplace(topic, RustLogLevelFor(std::string("standin::") + topic) >= 3).first;
  return found->second;
}

void LogEvent(const char* topic, const char* format, ...) {
  if (!StandinLogOn(topic)) return;
  char message[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(message, sizeof message, format, args);
  va_end(args);
  // env_logger's default prefix, then the crate's fields (README, "Logs").
  const Micros wall = WallMicros();
  const time_t seconds = static_cast<time_t>(wall / 1000000);
  tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &utc);
  const Micros now = CoarseWallMicros();
  std::fprintf(stderr, "[%s INFO  standin::%s] %4lu.%03lu --  --   -   %-8s %s\n", stamp, topic,
               (unsigned long)(now / 1000000 % 10000), (unsigned long)(now / 1000 % 1000), topic, message);
}

// ----- Log map ---------------------------------------------------------------------

std::shared_ptr<RaftData> RaftLogs::Instance(slotid_t slot, const char* function) {
  CheckImportThread(reactor_, function);
  std::lock_guard<std::mutex> lock(mutex_);
  auto& data = map_[slot];
  if (!data) data = std::make_shared<RaftData>();
  return data;
}

void RaftLogs::Set(slotid_t slot, std::shared_ptr<RaftData> data, const char* function) {
  CheckImportThread(reactor_, function);
  std::lock_guard<std::mutex> lock(mutex_);
  map_[slot] = std::move(data);
}

void RaftLogs::Erase(slotid_t slot, const char* function) {
  CheckImportThread(reactor_, function);
  std::lock_guard<std::mutex> lock(mutex_);
  map_.erase(slot);
}

size_t RaftLogs::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return map_.size();
}

// ----- Config ----------------------------------------------------------------------

namespace {
const Config* g_config = nullptr;
}

void Config::SetGlobal(const Config* config) { g_config = config; }
const Config* Config::Global() { return g_config; }

int Config::PartitionSize(parid_t partition) const {
  auto it = partitions.find(partition);
  return it == partitions.end() ? 0 : static_cast<int>(it->second.size());
}

bool Config::Load(const std::string& path, Config* out, std::string* error) {
  std::ifstream probe(path);
  if (!probe.good()) {
    *error = "cannot open config file '" + path + "'";
    return false;
  }
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    *error = "malformed YAML in '" + path + "': " + e.what();
    return false;
  }
  try {
    if (!root.IsMap()) {
      *error = "config '" + path + "' is not a YAML mapping";
      return false;
    }
    Config config;
    const YAML::Node lab = root["lab"];
    config.lab_raft = lab && lab.IsMap() && lab["raft"] && lab["raft"].as<bool>();
    if (!config.lab_raft) {
      *error = "config '" + path + "' does not enable the Raft lab (expected 'lab: raft: true')";
      return false;
    }
    const YAML::Node servers = root["site"] ? root["site"]["server"] : YAML::Node();
    if (!servers || !servers.IsSequence() || servers.size() == 0) {
      *error = "config '" + path + "' has no 'site: server:' list of partitions";
      return false;
    }
    for (size_t p = 0; p < servers.size(); p++) {
      if (!servers[p].IsSequence() || servers[p].size() == 0) {
        *error = "config '" + path + "': site.server[" + std::to_string(p) +
                 "] must be a non-empty list of site names";
        return false;
      }
      auto& sites = config.partitions[static_cast<parid_t>(p)];
      for (const auto& site : servers[p]) sites.push_back(site.as<std::string>());
    }
    *out = std::move(config);
    return true;
  } catch (const YAML::Exception& e) {
    *error = "config '" + path + "' has a field of the wrong type: " + e.what();
    return false;
  }
}

// ----- The run's observer ---------------------------------------------------------------

namespace {
std::atomic<RunObserver*> g_observer{nullptr};
}
void SetRunObserver(RunObserver* observer) { g_observer = observer; }
RunObserver* CurrentRunObserver() { return g_observer.load(); }

namespace {
thread_local void* tl_answering_reply = nullptr;
}  // namespace
void SetAnsweringReply(void* ctx) { tl_answering_reply = ctx; }
void* AnsweringReply() { return tl_answering_reply; }
void HandlerWaited() { tl_answering_reply = nullptr; }

// ----- Network -----------------------------------------------------------------------

void Network::Register(siteid_t site, Reactor* reactor, RaftService* service) {
  std::lock_guard<std::mutex> lock(mutex_);
  nodes_[site] = Node{reactor, service};
  if (!sent_.count(site)) sent_[site] = std::make_unique<std::atomic<uint64_t>>(0);
}

void Network::Unregister(siteid_t site) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = nodes_.find(site);
  if (it != nodes_.end()) it->second.service = nullptr;
}

RaftService* Network::ServiceOf(siteid_t site) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = nodes_.find(site);
  return it == nodes_.end() ? nullptr : it->second.service;
}

Reactor* Network::ReactorOf(siteid_t site) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = nodes_.find(site);
  return it == nodes_.end() ? nullptr : it->second.reactor;
}

Micros Network::DueTime(siteid_t from, siteid_t to) {
  std::lock_guard<std::mutex> lock(mutex_);
  Micros latency = std::uniform_int_distribution<Micros>(min_latency_us_, max_latency_us_)(random_);
  if (Explorer* explorer = Explorer::Get()) latency += explorer->ExtraDelay(from, to);  // labtest --explore
  Micros due = NowMicros() + latency;
  Micros& last = last_due_[{from, to}];
  if (due < last) due = last;  // FIFO on each directed link
  last = due;
  return due;
}

void Network::CountSent(siteid_t from) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& counter = sent_[from];
  if (!counter) counter = std::make_unique<std::atomic<uint64_t>>(0);
  counter->fetch_add(1);
}

uint64_t Network::RpcCount(siteid_t site) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = sent_.find(site);
  return it == sent_.end() ? 0 : it->second->load();
}

uint64_t Network::RpcTotal() const {
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t total = 0;
  for (const auto& entry : sent_) total += entry.second->load();
  return total;
}

bool Network::Endpoints(siteid_t from, siteid_t to, Node* sender, Node* receiver) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto s = nodes_.find(from), r = nodes_.find(to);
  if (s == nodes_.end() || r == nodes_.end()) return false;
  *sender = s->second;
  *receiver = r->second;
  return true;
}

void Network::SendVote(siteid_t from, siteid_t to, slotid_t last_log_index, ballot_t last_log_term,
                       ballot_t term, std::shared_ptr<QuorumEvent> event) {
  CountSent(from);
  Node receiver, sender;
  if (!Endpoints(from, to, &sender, &receiver)) return;
  Network* network = this;
  auto deliver_reply = [network, from, to, sender, event](ballot_t reply_term, bool_t granted) {
    sender.reactor->Post(
        [event, reply_term, granted, from, to] {
          TraceEvent({2, to, from, static_cast<uint64_t>(reply_term), static_cast<uint64_t>(granted), NowMicros()});
          if (granted) {
            event->VoteYes();
          } else {
            event->VoteNo(reply_term);
          }
        },
        network->DueTime(to, from));
  };
  receiver.reactor->Post(
      [network, receiver, from, to, last_log_index, last_log_term, term, deliver_reply] {
        network->delivered_votes_++;
        TraceEvent({1, from, to, static_cast<uint64_t>(term), last_log_index, NowMicros()});
        RaftService* service = network->ServiceOf(to);
        if (service == nullptr) return;  // the server is gone
        // The RPC service answers for a server that is off the network
        // without calling it (abi.md, "Disconnection").
        if (service->IsDisconnected()) {
          deliver_reply(term, 0);
          return;
        }
        receiver.reactor->CreateRunCoroutine([=] {
          service->OnRequestVote(last_log_index, last_log_term, from, term, deliver_reply);
        });
      },
      DueTime(from, to));
}

void Network::SendAppend(siteid_t from, siteid_t to, RaftService::AppendArgs args,
                         std::shared_ptr<IntEvent> event, uint64_t* ret_status, uint64_t* ret_term,
                         uint64_t* ret_last_log_index) {
  CountSent(from);
  if (RunObserver* observer = CurrentRunObserver()) {
    RunObserver::Append sent;
    sent.term = args.term;
    sent.prev_log_index = args.prev_log_index;
    sent.commit_index = args.commit_index;
    sent.has_entry = args.entry != nullptr;
    sent.entry_term = args.entry_term;
    if (auto* lab = dynamic_cast<const LabCommand*>(args.entry.get()); lab != nullptr) {
      sent.has_value = true;
      sent.value = lab->value;
    }
    observer->AppendSent(from, to, sent);
  }
  Node receiver, sender;
  if (!Endpoints(from, to, &sender, &receiver)) return;
  Network* network = this;
  const uint64_t request_term = args.term;
  auto deliver_reply = [network, from, to, sender, event, ret_status, ret_term, ret_last_log_index,
                        request_term](RaftService::AppendResult result) {
    sender.reactor->Post(
        [event, result, ret_status, ret_term, ret_last_log_index, from, to, request_term] {
          TraceEvent({4, to, from, result.ok, result.term, result.last_log_index, NowMicros()});
          // Written even if the sender stopped waiting: the buffers are the
          // crate's to keep valid (abi.md).
          *ret_status = result.ok;
          *ret_term = result.term;
          *ret_last_log_index = result.last_log_index;
          event->NoteReply(static_cast<int>(from), request_term, result.term);
          event->Set(1);
        },
        network->DueTime(to, from));
  };
  receiver.reactor->Post(
      [network, receiver, from, to, args, deliver_reply] {
        TraceEvent({3, from, to, args.term, args.prev_log_index, args.prev_log_term, args.commit_index,
                    args.entry ? 1u : 0u, NowMicros()});
        if (args.entry) {
          network->delivered_appends_++;
        } else {
          network->delivered_empty_appends_++;  // EmptyAppendEntries
        }
        RaftService* service = network->ServiceOf(to);
        if (service == nullptr) return;  // the server is gone
        if (service->IsDisconnected()) {
          deliver_reply(RaftService::AppendResult{0, 0, 0});
          return;
        }
        receiver.reactor->CreateRunCoroutine(
            [service, args, deliver_reply] { service->OnAppendEntries(args, deliver_reply); });
      },
      DueTime(from, to));
}

// ----- Commo ---------------------------------------------------------------------------

RaftCommo::RaftCommo(Network* network, Reactor* reactor, siteid_t self)
    : network_(network), reactor_(reactor), self_(self) {
  const Config* config = Config::Global();
  if (config != nullptr) {
    for (const auto& partition : config->partitions) {
      auto& list = proxies_[partition.first];
      for (size_t site = 0; site < partition.second.size(); site++) {
        list.push_back(RpcProxy{static_cast<siteid_t>(site)});
      }
    }
  }
}

std::vector<RpcProxy> RaftCommo::ProxiesCopy(parid_t partition) {
  std::lock_guard<std::mutex> lock(ProxiesMutex());
  return proxies_[partition];
}

bool RaftCommo::HasProxy(parid_t partition, siteid_t site) {
  std::lock_guard<std::mutex> lock(ProxiesMutex());
  for (const RpcProxy& proxy : proxies_[partition]) {
    if (proxy.site_id == site) return true;
  }
  return false;
}

std::map<std::pair<parid_t, uint32_t>, std::vector<RpcProxy>>& RaftCommo::BackupLocked() {
  static std::map<std::pair<parid_t, uint32_t>, std::vector<RpcProxy>> backup;
  return backup;
}

std::mutex& RaftCommo::ProxiesMutex() {
  static std::mutex mutex;
  return mutex;
}

}  // namespace standin
