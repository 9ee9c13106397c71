// The crate through the stand-in, case by case, without the 3-minute suite:
// hardening at the boundary, fiber lifetime, disconnection, a first
// election and a first agreement.
//   boundary_tests <case>
#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "framework.h"
#include "raft_server.h"
#include "rust_raft.h"
#include "test_support.h"

using namespace standin;
using standin::testing::Eventually;

namespace {


struct Cluster {
  Config config;
  Network network;
  std::vector<std::unique_ptr<Reactor>> reactors;
  std::vector<std::unique_ptr<AppNextFn>> apps;
  std::vector<std::unique_ptr<RaftServer>> servers;
  std::mutex mutex;
  std::map<int, std::vector<std::pair<int, int>>> applied;  // server -> (index, value)

  explicit Cluster(int n = 5) {
    config.lab_raft = true;
    for (int i = 0; i < n; i++) config.partitions[0].push_back("s" + std::to_string(i));
    Config::SetGlobal(&config);
    for (int i = 0; i < n; i++) {
      reactors.push_back(std::make_unique<Reactor>("server-" + std::to_string(i)));
      reactors.back()->Start();
      apps.push_back(std::make_unique<AppNextFn>([this, i](int index, std::shared_ptr<Marshallable> cmd) {
        std::lock_guard<std::mutex> lock(mutex);
        applied[i].emplace_back(index, static_cast<LabCommand*>(cmd.get())->value);
        return 0;
      }));
    }
    for (int i = 0; i < n; i++) {
      Frame frame{static_cast<uint32_t>(i), static_cast<siteid_t>(i), 0};
      servers.push_back(std::make_unique<RaftServer>(frame, reactors[i].get(), &network, apps[i].get(), true));
    }
    for (auto& s : servers) s->Setup();
  }
  ~Cluster() {
    servers.clear();
    for (auto& r : reactors) r->Stop();
    Config::SetGlobal(nullptr);
  }
  std::vector<int> Leaders() {
    std::vector<int> leaders;
    for (size_t i = 0; i < servers.size(); i++) {
      if (servers[i]->IsLeader()) leaders.push_back(static_cast<int>(i));
    }
    return leaders;
  }
};

struct CallbackCounter {
  std::atomic<int> calls{0};
  static void Done(void* ctx) { static_cast<CallbackCounter*>(ctx)->calls++; }
};

// What the lab's glue (its twin, src/lib.rs) does with a handle it does not
// know: nothing. These are properties of the glue, not of server.rs, which
// never sees such a call (README, "What only the lab's glue decides").
void UnknownHandleIsNoop() {
  void* bogus = reinterpret_cast<void*>(0xdead0);
  bool leader = true;
  uint64_t term = 99;
  rust_raft_server_get_state(bogus, &leader, &term);
  EXPECT(leader && term == 99);  // not written
  EXPECT(!rust_raft_server_is_leader(bogus));
  rust_raft_server_disconnect(bogus, true);
  EXPECT(!rust_raft_server_is_disconnected(bogus));
  rust_raft_server_delete(bogus);
  // start refuses; the glue does not release the command (it leaks).
  const size_t live = CommandHandles::live();
  uint64_t index = 0;
  EXPECT(!rust_raft_server_start(bogus, CommandHandles::Make(std::make_shared<LabCommand>(1)), &index, &term, 0, 0));
  EXPECT(CommandHandles::live() == live + 1);
  // The RPC handlers never call the reply callback.
  CallbackCounter vote_cb, append_cb;
  ballot_t reply_term = -1;
  bool_t granted = 1;
  rust_raft_server_on_request_vote(bogus, 0, 0, 1, 7, &reply_term, &granted, &CallbackCounter::Done, &vote_cb);
  EXPECT(vote_cb.calls == 0);
  uint64_t ok = 9, fterm = 9, last = 9;
  rust_raft_server_on_append_entries(bogus, 0, 0, 3, 0, 0, 0, nullptr, 3, &ok, &fterm, &last, &CallbackCounter::Done,
                                     &append_cb);
  EXPECT(append_cb.calls == 0);
  EXPECT(rust_raft_server_get_raft_instance(bogus, 7) == nullptr);
  // A deleted handle is as unknown as a bogus one.
  Config config;
  config.lab_raft = true;
  config.partitions[0] = {"s0"};
  Config::SetGlobal(&config);
  Frame frame{0, 0, 0};
  void* srv = rust_raft_server_new(&frame, nullptr, nullptr, nullptr, nullptr, true);
  EXPECT(srv != nullptr);
  rust_raft_server_delete(srv);
  rust_raft_server_delete(srv);
  EXPECT(!rust_raft_server_request_vote(srv));
  Config::SetGlobal(nullptr);
}

// What server.rs does at the boundary: NULL out-pointers the glue passes
// on (it checks get_state's and start's; set_local_append's it dereferences
// itself, so they are never NULL here), a NULL command, and RaftData records
// that are never NULL.
void NullOutPointers() {
  Cluster cluster(1);
  auto& server = cluster.servers[0];
  rust_raft_server_get_state(server->handle(), nullptr, nullptr);
  bool leader = false;
  rust_raft_server_get_state(server->handle(), &leader, nullptr);
  EXPECT(Eventually(5, [&] { return server->IsLeader(); }));  // one server elects itself
  const size_t live = CommandHandles::live();
  EXPECT(rust_raft_server_start(server->handle(), CommandHandles::Make(std::make_shared<LabCommand>(3)), nullptr,
                                nullptr, 0, 0));
  EXPECT(!rust_raft_server_start(server->handle(), nullptr, nullptr, nullptr, 0, 0));
  uint64_t term = 9, index = 9;
  rust_raft_server_set_local_append(server->handle(), nullptr, &term, &index, 0, 0);
  EXPECT(index == 0 && term >= 1);  // no command, no entry
  EXPECT(Eventually(2, [&] {
    std::lock_guard<std::mutex> lock(cluster.mutex);
    return cluster.applied[0].size() == 1;
  }));
  EXPECT(CommandHandles::live() == live + 1);  // the log holds the one entry
  RaftData_C data = rust_raft_server_get_raft_instance(server->handle(), 1);
  EXPECT(data != nullptr && raft_data_get_term(data) >= 1);
  // No entry 2: never NULL, since the real framework copies the pointee
  // without a check; an empty record for that index.
  RaftData_C missing = rust_raft_server_get_raft_instance(server->handle(), 2);
  EXPECT(missing != nullptr && raft_data_get_slot_id(missing) == 2);
  Marshallable_C no_command = raft_data_get_log(missing);  // a handle to no command, as the real one returns
  EXPECT(no_command != nullptr && !CommandHandles::Get(no_command, "test"));
  raft_marshallable_release(no_command);
}

void DeleteStopsFibers() {
  Cluster cluster;
  EXPECT(Eventually(10, [&] { return cluster.Leaders().size() == 1; }));
  // Five election fibers, and four replication fibers once the leader has
  // started them (just after it won).
  EXPECT(Eventually(2, [&] {
    size_t fibers = 0;
    for (auto& r : cluster.reactors) fibers += r->live_coroutines();
    return fibers >= 5 + 4;
  }));
  const Micros begin = NowMicros();
  cluster.servers.clear();  // rust_raft_server_delete on each
  EXPECT(Eventually(2, [&] {
    size_t left = 0;
    for (auto& r : cluster.reactors) left += r->live_coroutines();
    return left == 0;
  }));
  std::fprintf(stderr, "all fibers gone %.0f ms after delete\n", (NowMicros() - begin) / 1e3);
}

void DisconnectMovesProxies() {
  Cluster cluster;
  auto count_proxies = [&](int i) {
    size_t n = 0;
    cluster.reactors[i]->RunAndWait([&] { n = raft_commo_get_rpc_proxy_count(cluster.servers[i]->commo(), 0); });
    return n;
  };
  EXPECT(count_proxies(2) == 5);
  cluster.servers[2]->Disconnect();
  EXPECT(cluster.servers[2]->IsDisconnected());
  EXPECT(Eventually(1, [&] { return count_proxies(2) == 0; }));
  EXPECT(raft_commo_get_backup_proxy_count(0, 2) == 5);
  const uint64_t sent_before = cluster.network.RpcCount(2);
  std::this_thread::sleep_for(std::chrono::milliseconds(3000));
  EXPECT(cluster.network.RpcCount(2) == sent_before);  // nothing leaves while disconnected
  cluster.servers[2]->Reconnect();
  EXPECT(!cluster.servers[2]->IsDisconnected());
  EXPECT(Eventually(1, [&] { return count_proxies(2) == 5; }));
  EXPECT(!raft_commo_has_backup_proxies(0, 2));
}

void SingleLeaderElected() {
  Cluster cluster;
  EXPECT(Eventually(10, [&] { return cluster.Leaders().size() == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
  const auto leaders = cluster.Leaders();
  EXPECT(leaders.size() == 1);
  uint64_t first_term = 0;
  for (size_t i = 0; i < cluster.servers.size(); i++) {
    bool is_leader = false;
    uint64_t term = 0;
    cluster.servers[i]->GetState(&is_leader, &term);
    if (i == 0) first_term = term;
    EXPECT(term == first_term && term >= 1);
  }
}

void StartReplicatesAndApplies() {
  Cluster cluster;
  EXPECT(Eventually(10, [&] { return cluster.Leaders().size() == 1; }));
  const int leader = cluster.Leaders().at(0);
  const int follower = (leader + 1) % 5;
  uint64_t index = 0, term = 0;
  EXPECT(!cluster.servers[follower]->Start(std::make_shared<LabCommand>(5), &index, &term));
  for (int v = 1; v <= 20; v++) {
    EXPECT(cluster.servers[leader]->Start(std::make_shared<LabCommand>(100 + v), &index, &term));
    EXPECT(index == static_cast<uint64_t>(v));
  }
  EXPECT(Eventually(3, [&] {
    std::lock_guard<std::mutex> lock(cluster.mutex);
    for (int i = 0; i < 5; i++) {
      if (cluster.applied[i].size() != 20) return false;
    }
    return true;
  }));
  std::lock_guard<std::mutex> lock(cluster.mutex);
  for (int i = 0; i < 5; i++) {
    for (int k = 0; k < static_cast<int>(cluster.applied[i].size()); k++) {
      EXPECT(cluster.applied[i][k] == std::make_pair(k + 1, 101 + k));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::map<std::string, void (*)()> cases = {
      {"unknown_handle_is_noop", UnknownHandleIsNoop},
      {"null_out_pointers", NullOutPointers},
      {"delete_stops_fibers", DeleteStopsFibers},
      {"disconnect_moves_proxies", DisconnectMovesProxies},
      {"single_leader_elected", SingleLeaderElected},
      {"start_replicates_and_applies", StartReplicatesAndApplies},
  };  return standin::testing::RunCase(argc, argv, cases);
}
