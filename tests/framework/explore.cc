#include "explore.h"

#include <atomic>
#include <algorithm>
#include <cctype>
#include <map>

namespace standin {

namespace {
std::atomic<Explorer*> g_explorer{nullptr};

int KindSlot(char kind) {
  switch (kind) {
    case 'm': return 0;
    case 'f': return 1;
    case 's': return 2;
    default: return 3;  // 'p'
  }
}
}  // namespace

Explorer::Explorer(uint64_t seed, const std::set<std::string>* only)
    : messages_(seed ^ 0xE1A0D3ull), fibers_(seed ^ 0xF1BE25ull), stalls_(seed ^ 0x57A115ull) {
  if (only != nullptr) {
    restricted_ = true;
    only_ = *only;
  }
}

Explorer* Explorer::Get() { return g_explorer.load(); }
void Explorer::Set(Explorer* explorer) { g_explorer = explorer; }

bool Explorer::Decide(char kind) {
  const std::string id = kind + std::to_string(++counters_[KindSlot(kind)]);
  drawn_++;
  const bool apply = !restricted_ || only_.count(id) > 0;
  if (apply) applied_.push_back(id);
  return apply;
}

Micros Explorer::ExtraDelay(int from, int to) {
  (void)from;
  (void)to;
  std::lock_guard<std::mutex> lock(mutex_);
  // Two draws for every message, whether it is delayed or not, so that the
  // stream stays aligned with the messages.
  const double roll = std::uniform_real_distribution<double>(0, 1)(messages_);
  const Micros delay = std::uniform_int_distribution<Micros>(kMinDelayUs, kMaxDelayUs)(messages_);
  if (roll >= kDelayShare) return 0;
  return Decide('m') ? delay : 0;
}

size_t Explorer::FirstReady(int server, size_t ready) {
  (void)server;
  std::lock_guard<std::mutex> lock(mutex_);
  const double roll = std::uniform_real_distribution<double>(0, 1)(fibers_);
  const size_t pick = 1 + static_cast<size_t>(fibers_() % (ready - 1));
  if (roll >= kReorderShare) return 0;
  return Decide('f') ? pick : 0;
}

Explorer::Stall Explorer::NextStall(int servers) {
  std::lock_guard<std::mutex> lock(mutex_);
  Stall stall;
  stall.gap = std::uniform_int_distribution<Micros>(kMinStallGapUs, kMaxStallGapUs)(stalls_);
  const bool one_server = std::uniform_real_distribution<double>(0, 1)(stalls_) < kServerStallShare;
  const int server = static_cast<int>(stalls_() % static_cast<uint64_t>(servers));
  const Micros server_length = std::uniform_int_distribution<Micros>(kMinServerStallUs, kMaxServerStallUs)(stalls_);
  const Micros process_length = std::uniform_int_distribution<Micros>(kMinProcessStallUs, kMaxProcessStallUs)(stalls_);
  stall.server = one_server ? server : -1;
  stall.length = one_server ? server_length : process_length;
  stall.apply = Decide(one_server ? 's' : 'p');
  return stall;
}

std::vector<std::string> Explorer::applied() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return applied_;
}

uint64_t Explorer::drawn() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return drawn_;
}

namespace {
// "f12" -> ('f', 12); false if it is not a choice id.
bool SplitId(const std::string& item, char* kind, uint64_t* number) {
  if (item.size() < 2) return false;
  *kind = item[0];
  if (*kind != 'm' && *kind != 'f' && *kind != 's' && *kind != 'p') return false;
  if (item[1] == '0') return false;
  *number = 0;
  for (size_t i = 1; i < item.size(); i++) {
    if (!std::isdigit(static_cast<unsigned char>(item[i])) || i > 12) return false;
    *number = *number * 10 + static_cast<uint64_t>(item[i] - '0');
  }
  return true;
}
}  // namespace

std::string Explorer::DrawnSoFar() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string text;
  const char kinds[] = {'m', 'f', 's', 'p'};
  for (int i = 0; i < 4; i++) {
    if (counters_[i] == 0) continue;
    text += (text.empty() ? "" : ",") + std::string(1, kinds[i]) + "1";
    if (counters_[i] > 1) text += "-" + std::to_string(counters_[i]);
  }
  return text.empty() ? "none" : text;
}

bool Explorer::ParseList(const std::string& text, std::set<std::string>* out, std::string* error) {
  out->clear();
  std::string item;
  auto take = [&]() -> bool {
    if (item.empty() || item == "none") {
      item.clear();
      return true;
    }
    const size_t dash = item.find('-');
    char kind = 0, last_kind = 0;
    uint64_t first = 0, last = 0;
    const bool ok = dash == std::string::npos
                        ? SplitId(item, &kind, &first)
                        : SplitId(item.substr(0, dash), &kind, &first) &&
                              (SplitId(item.substr(dash + 1), &last_kind, &last) ||
                               SplitId(std::string(1, kind) + item.substr(dash + 1), &last_kind, &last)) &&
                              last_kind == kind && last >= first && last - first < 10000000;
    if (!ok) {
      *error = "'" + item + "' is not a choice (m<N>, f<N>, s<N> or p<N> with N from 1, or a range such as f3-9)";
      return false;
    }
    if (dash == std::string::npos) last = first;
    for (uint64_t n = first; n <= last; n++) out->insert(kind + std::to_string(n));
    item.clear();
    return true;
  };
  for (char c : text) {
    if (c == ',' || std::isspace(static_cast<unsigned char>(c))) {
      if (!take()) return false;
    } else {
      item += c;
    }
  }
  return take();
}

std::string Explorer::FormatList(const std::vector<std::string>& ids) {
  std::map<char, std::vector<uint64_t>> by_kind;
  for (const std::string& id : ids) {
    char kind = 0;
    uint64_t number = 0;
    if (SplitId(id, &kind, &number)) by_kind[kind].push_back(number);
  }
  std::string text;
  for (char kind : {'m', 'f', 's', 'p'}) {
    auto found = by_kind.find(kind);
    if (found == by_kind.end()) continue;
    std::vector<uint64_t>& numbers = found->second;
    std::sort(numbers.begin(), numbers.end());
    numbers.erase(std::unique(numbers.begin(), numbers.end()), numbers.end());
    for (size_t i = 0; i < numbers.size();) {
      size_t j = i;
      while (j + 1 < numbers.size() && numbers[j + 1] == numbers[j] + 1) j++;
      text += (text.empty() ? "" : ",") + std::string(1, kind) + std::to_string(numbers[i]);
      if (j > i) text += "-" + std::to_string(numbers[j]);
      i = j + 1;
    }
  }
  return text.empty() ? "none" : text;
}

}  // namespace standin
