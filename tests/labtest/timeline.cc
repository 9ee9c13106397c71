#include "timeline.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

namespace standin {

namespace {

std::string Escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string Seconds(Micros us) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f s", us / 1e6);
  return text;
}

// Pixels per second of run time, and the lanes' geometry.
constexpr double kPixelsPerSecond = 24;
constexpr int kLeft = 70, kTop = 30, kTestLane = 46, kCommitLane = 22, kLane = 58, kGap = 8;

}  // namespace

Timeline::Timeline(int servers) : servers_(servers), begin_(NowMicros()) {}

void Timeline::Add(Event event) {
  std::lock_guard<std::mutex> lock(mutex_);
  events_.push_back(std::move(event));
}

void Timeline::Role(int server, bool leader, uint64_t term) {
  Add(Event{NowMicros(), server, Event::ROLE, term, leader ? 2u : 0u, false, ""});
}
void Timeline::Network(int server, bool down) {
  Add(Event{NowMicros(), server, down ? Event::DOWN : Event::UP, 0, 0, false, ""});
}
void Timeline::Slowness(int server, Micros us) { Add(Event{NowMicros(), server, Event::SLOW, us, 0, false, ""}); }
void Timeline::Applied(int server, uint64_t index, int value) {
  Add(Event{NowMicros(), server, Event::APPLY, index, static_cast<uint64_t>(value), false, ""});
}
void Timeline::TestBegin(int test, const std::string& name) {
  Add(Event{NowMicros(), -1, Event::TEST_BEGIN, static_cast<uint64_t>(test), 0, false, name});
}
void Timeline::TestEnd(int test, bool passed, const std::string& message, uint64_t rpcs) {
  Add(Event{NowMicros(), -1, Event::TEST_END, static_cast<uint64_t>(test), rpcs, passed, message});
}

void Timeline::Finding(int server, const std::string& text) {
  Add(Event{NowMicros(), server, Event::FINDING, 0, 0, false, text});
}

bool Timeline::Write(const std::string& path, std::string* error) {
  std::vector<Event> events;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    events = events_;
  }
  std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) { return a.at < b.at; });
  const Micros end = events.empty() ? begin_ + 1000000 : std::max(events.back().at, begin_ + 1000000);
  auto x = [&](Micros at) { return kLeft + (at - begin_) / 1e6 * kPixelsPerSecond; };
  const double width = x(end) + 40;
  auto lane_top = [&](int server) { return kTop + kTestLane + kCommitLane + kGap + server * (kLane + kGap); };
  const double height = lane_top(servers_) + 30;

  // Which terms had a leader, and from when: a server in a term nobody
  // led (yet) is shown as campaigning (the ABI reports only is_leader and
  // the term, not the candidate role).
  std::map<uint64_t, Micros> led_from;
  for (const Event& e : events) {
    if (e.kind == Event::ROLE && e.b == 2 && !led_from.count(e.a)) led_from[e.a] = e.at;
  }

  std::ostringstream svg;
  std::ostringstream elections;  // drawn last, over the lanes
  int next_id = 0;
  auto item = [&](const std::string& cls, const std::string& shape, const std::string& info) {
    const int id = next_id++;
    svg << "<g class=\"" << cls << "\" data-id=\"" << id << "\"><title>" << Escape(info) << "</title>" << shape << "</g>\n";
  };

  // Time axis: a tick every 5 s.
  for (Micros t = 0; begin_ + t <= end; t += 5000000) {
    svg << "<line class=\"tick\" x1=\"" << x(begin_ + t) << "\" y1=\"" << kTop - 6 << "\" x2=\"" << x(begin_ + t)
        << "\" y2=\"" << height - 20 << "\"/><text class=\"axis\" x=\"" << x(begin_ + t) + 2 << "\" y=\"" << kTop - 10
        << "\">" << t / 1000000 << " s</text>\n";
  }

  // Tests.
  std::map<uint64_t, Micros> test_begin;
  for (const Event& e : events) {
    if (e.kind == Event::TEST_BEGIN) {
      test_begin[e.a] = e.at;
    } else if (e.kind == Event::TEST_END) {
      const Micros from = test_begin.count(e.a) ? test_begin[e.a] : begin_;
      std::ostringstream shape;
      shape << "<rect x=\"" << x(from) << "\" y=\"" << kTop << "\" width=\"" << std::max(2.0, x(e.at) - x(from))
            << "\" height=\"" << kTestLane - 6 << "\"/><text x=\"" << x(from) + 3 << "\" y=\"" << kTop + 16
            << "\">TEST " << e.a << "</text><text x=\"" << x(from) + 3 << "\" y=\"" << kTop + 32 << "\">"
            << e.b << " RPCs</text>";
      item(std::string("test ") + (e.flag ? "passed" : "failed"), shape.str(),
           "TEST " + std::to_string(e.a) + " " + (e.flag ? "passed" : "FAILED: " + e.text) + " (" +
               Seconds(e.at - from) + ", " + std::to_string(e.b) + " RPCs)");
    }
  }

  // Lanes: role and term segments, network and slowness periods, applies.
  std::map<uint64_t, int> appliers;  // index -> how many applied it
  for (int s = 0; s < servers_; s++) {
    const double top = lane_top(s);
    svg << "<g class=\"lane\" data-server=\"" << s << "\"><rect class=\"lane-bg\" x=\"" << kLeft << "\" y=\"" << top
        << "\" width=\"" << width - kLeft - 20 << "\" height=\"" << kLane << "\"/><text class=\"lane-name\" x=\"8\" y=\""
        << top + kLane / 2 + 5 << "\">S" << s << "</text></g>\n";
    // Role segments.
    Micros seg_from = begin_;
    uint64_t term = 0;
    int role = 0;
    auto close_segment = [&](Micros until) {
      if (until <= seg_from) return;
      std::string cls = role == 2 ? "leader" : "follower";
      if (role != 2 && term > 0 && (!led_from.count(term) || led_from[term] > until)) cls = "candidate";
      std::ostringstream shape;
      shape << "<rect x=\"" << x(seg_from) << "\" y=\"" << top + 4 << "\" width=\"" << std::max(1.0, x(until) - x(seg_from))
            << "\" height=\"" << kLane / 2 - 6 << "\"/>";
      if (x(until) - x(seg_from) > 22) shape << "<text x=\"" << x(seg_from) + 2 << "\" y=\"" << top + 19 << "\">T" << term << "</text>";
      item("role " + cls, shape.str(),
           "S" + std::to_string(s) + " " + cls + " in term " + std::to_string(term) + " from " +
               Seconds(seg_from - begin_) + " to " + Seconds(until - begin_));
    };
    Micros down_from = 0, slow_from = 0, slowness = 0;
    bool down = false;
    for (const Event& e : events) {
      if (e.server != s) continue;
      switch (e.kind) {
        case Event::ROLE:
          if (e.a != term || static_cast<int>(e.b) != role) {
            close_segment(e.at);
            if (e.b == 2 && role != 2) {
              std::ostringstream shape;
              shape << "<path d=\"M" << x(e.at) << " " << top + 2 << " l5 8 l-5 8 l-5 -8 z\"/>";
              elections << "<g class=\"election\" data-server=\"" << s << "\" data-term=\"" << e.a << "\" data-id=\"" << next_id++
                  << "\"><title>S" << s << " elected leader of term " << e.a << " at " << Seconds(e.at - begin_)
                  << "</title>" << shape.str() << "</g>\n";
            }
            seg_from = e.at;
            term = e.a;
            role = static_cast<int>(e.b);
          }
          break;
        case Event::DOWN:
          if (!down) down_from = e.at;
          down = true;
          break;
        case Event::UP:
          if (down) {
            std::ostringstream shape;
            shape << "<rect x=\"" << x(down_from) << "\" y=\"" << top + kLane / 2 << "\" width=\""
                  << std::max(1.0, x(e.at) - x(down_from)) << "\" height=\"" << kLane / 4 - 2 << "\"/>";
            item("down", shape.str(), "S" + std::to_string(s) + " disconnected from " + Seconds(down_from - begin_) + " to " +
                                          Seconds(e.at - begin_));
          }
          down = false;
          break;
        case Event::SLOW:
          if (slowness > 0 && e.at > slow_from) {
            std::ostringstream shape;
            shape << "<rect x=\"" << x(slow_from) << "\" y=\"" << top + kLane * 3 / 4 << "\" width=\""
                  << std::max(1.0, x(e.at) - x(slow_from)) << "\" height=\"" << std::max(1.0, slowness / 27000.0 * (kLane / 4 - 4))
                  << "\"/>";
            item("slow", shape.str(), "S" + std::to_string(s) + " slowed " + std::to_string(slowness / 1000) + " ms per loop turn");
          }
          slow_from = e.at;
          slowness = e.a;
          break;
        case Event::APPLY: {
          std::ostringstream shape;
          shape << "<line x1=\"" << x(e.at) << "\" y1=\"" << top + kLane - 6 << "\" x2=\"" << x(e.at) << "\" y2=\""
                << top + kLane - 1 << "\"/>";
          item("apply", shape.str(), "S" + std::to_string(s) + " applied index " + std::to_string(e.a) + " (command " +
                                         std::to_string(e.b) + ") at " + Seconds(e.at - begin_));
          break;
        }
        default:
          break;
      }
    }
    close_segment(end);
    if (down) {
      std::ostringstream shape;
      shape << "<rect x=\"" << x(down_from) << "\" y=\"" << top + kLane / 2 << "\" width=\"" << std::max(1.0, x(end) - x(down_from))
            << "\" height=\"" << kLane / 4 - 2 << "\"/>";
      item("down", shape.str(), "S" + std::to_string(s) + " disconnected from " + Seconds(down_from - begin_));
    }
  }
  // Commits: when a majority had applied an index.
  for (const Event& e : events) {
    if (e.kind != Event::APPLY) continue;
    if (++appliers[e.a] != servers_ / 2 + 1) continue;
    const double top = kTop + kTestLane;
    std::ostringstream shape;
    shape << "<line x1=\"" << x(e.at) << "\" y1=\"" << top << "\" x2=\"" << x(e.at) << "\" y2=\"" << top + kCommitLane - 4 << "\"/>";
    item("commit", shape.str(), "index " + std::to_string(e.a) + " committed (applied by a majority) at " + Seconds(e.at - begin_));
  }

  // Findings of the safety monitor: a red mark from the tests' lane down
  // through the lane of the server it names.
  for (const Event& e : events) {
    if (e.kind != Event::FINDING) continue;
    const double bottom = e.server >= 0 ? lane_top(e.server) + kLane : kTop + kTestLane;
    std::ostringstream shape;
    shape << "<line x1=\"" << x(e.at) << "\" y1=\"" << kTop << "\" x2=\"" << x(e.at) << "\" y2=\"" << bottom
          << "\"/><path d=\"M" << x(e.at) << " " << kTop << " l6 -10 l-12 0 z\"/>";
    elections << "<g class=\"finding\" data-id=\"" << next_id++ << "\"><title>FINDING at " << Seconds(e.at - begin_) << ": "
              << Escape(e.text) << "</title>" << shape.str() << "</g>\n";
  }

  std::ofstream out(path);
  if (!out) {
    *error = "cannot write the timeline to '" + path + "'";
    return false;
  }
  out << R"(<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>rust_raft lab run: timeline</title>
<style>
body { font-family: sans-serif; margin: 12px; background: #fafafa; color: #222; }
#legend span { display: inline-block; margin-right: 14px; font-size: 13px; }
#legend i { display: inline-block; width: 14px; height: 10px; margin-right: 4px; vertical-align: middle; }
#scroll { overflow-x: auto; border: 1px solid #ccc; background: white; }
svg text { font-size: 11px; pointer-events: none; }
.axis { fill: #777; } .tick { stroke: #eee; }
.lane-bg { fill: #f6f6f6; } .lane-name { font-size: 14px; font-weight: bold; }
.role.leader rect { fill: #4caf50; } .role.follower rect { fill: #b0bec5; } .role.candidate rect { fill: #ff9800; }
.role text { fill: #fff; }
.down rect { fill: #e53935; opacity: 0.8; } .slow rect { fill: #fdd835; }
.apply line { stroke: #3949ab; stroke-width: 1; } .commit line { stroke: #6a1b9a; stroke-width: 1.5; }
.election path { fill: #1b5e20; stroke: white; }
.finding line { stroke: #d50000; stroke-width: 2; stroke-dasharray: 4 2; } .finding path { fill: #d50000; }
.test.passed rect { fill: #c8e6c9; stroke: #2e7d32; } .test.failed rect { fill: #ffcdd2; stroke: #c62828; }
g[data-id] { cursor: pointer; } g.selected * { stroke: black !important; stroke-width: 2; }
#details { margin-top: 8px; min-height: 1.5em; font-family: monospace; }
</style></head><body>
<h2>rust_raft: timeline of a lab run</h2>
<div id="legend"><span><i style="background:#4caf50"></i>leader</span><span><i style="background:#b0bec5"></i>follower</span>
<span><i style="background:#ff9800"></i>campaigning (a term nobody leads yet)</span><span><i style="background:#e53935"></i>disconnected</span>
<span><i style="background:#fdd835"></i>slowed</span><span><i style="background:#3949ab"></i>entry applied</span>
<span><i style="background:#6a1b9a"></i>entry committed</span><span>&#9670; elected leader</span><span style="color:#d50000">&#9660; finding of the safety monitor</span>
<span>hover for details, click to pin them below</span></div>
<div id="scroll"><svg xmlns="http://www.w3.org/2000/svg" width=")"
      << width << "\" height=\"" << height << "\">\n<text x=\"8\" y=\"" << kTop + 24 << "\">tests</text><text x=\"8\" y=\""
      << kTop + kTestLane + 14 << "\">commits</text>\n"
      << svg.str() << elections.str() << R"(</svg></div>
<div id="details">click an element for its details</div>
<script>
document.querySelectorAll('g[data-id]').forEach(function (g) {
  g.addEventListener('click', function () {
    document.querySelectorAll('g.selected').forEach(function (s) { s.classList.remove('selected'); });
    g.classList.add('selected');
    var title = g.querySelector('title');
    document.getElementById('details').textContent = title ? title.textContent : '';
  });
});
</script>
</body></html>
)";
  return static_cast<bool>(out);
}

}  // namespace standin
