// What one edit costs the state journal (BENCHMARKS.md, "The journal"),
// each figure beside its baseline from the same run:
//
//   * encoding the graph: the journal's JSON (config::EmitGraphJson,
//     nlohmann/json; also with the cache of unchanged nodes the journal
//     keeps) against the state file's YAML (config::EmitGraphYaml,
//     yaml-cpp), for the graph of tests/bench/control_bench.sh (23 nodes);
//   * making a record durable: StateStore::Append + Sync (a record written
//     into the journal's zero-filled room, then fdatasync) against the
//     same bytes appended to a growing file, then fdatasync (the journal's
//     I/O before the room: each flush also wrote the file's new size).
//
//   journal_bench [--dir DIR] [--records N]
//
// DIR: where the files go (default: the current directory; use the file
// system the state file lives on). Plain program: no Google Benchmark.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "config/graph_yaml.h"
#include "model/graph.h"
#include "state/state_store.h"

namespace {

using Clock = std::chrono::steady_clock;

// The graph of control_bench.sh: a tone, two gains and 20 lanes.
aers::model::GraphSpec BenchGraph() {
  using aers::model::NodeSpec;
  aers::model::GraphSpec g;
  g.outputs = {{"out", 1, {}}};
  g.nodes.push_back(NodeSpec{"src", "tone", 1, {{"freq_hz", 440.0}, {"level_db", -12.0}}, ""});
  g.nodes.push_back(NodeSpec{"trim", "gain", 1, {}, ""});
  g.nodes.push_back(NodeSpec{"spare", "gain", 1, {{"gain_db", -12.0}}, ""});
  for (int i = 0; i < 20; ++i) {
    g.nodes.push_back(NodeSpec{"lane" + std::to_string(i), "gain", 1, {{"gain_db", -40.0}}, ""});
  }
  g.routes = {{{"src", ""}, {"trim", ""}}, {{"trim", ""}, {"out", ""}}};
  return g;
}

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

template <typename F>
double MeanMicros(int n, F f) {
  const auto t0 = Clock::now();
  size_t sink = 0;
  for (int i = 0; i < n; ++i) sink += f(i);
  const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / n;
  if (sink == 0) std::printf("(nothing encoded)\n");
  return us;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = ".";
  int records = 400;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--dir") dir = argv[i + 1];
    if (a == "--records") records = std::max(10, std::atoi(argv[i + 1]));
  }
  aers::model::GraphSpec graph = BenchGraph();
  const auto edit = [&](int i) {
    graph.nodes[1].params["gain_db"] = -static_cast<double>(i % 12);
    return graph;
  };

  std::printf("== encoding the graph (%zu nodes)\n", graph.nodes.size());
  const int n = 2000;
  const double yaml_us =
      MeanMicros(n, [&](int i) { return aers::config::EmitGraphYaml(edit(i)).size(); });
  const double json_us =
      MeanMicros(n, [&](int i) { return aers::config::EmitGraphJson(edit(i))->size(); });
  std::printf("YAML (yaml-cpp, the state file)   %7.1f us  %zu bytes\n", yaml_us,
              aers::config::EmitGraphYaml(graph).size());
  std::printf("JSON (nlohmann, the journal)      %7.1f us  %zu bytes\n", json_us,
              aers::config::EmitGraphJson(graph)->size());
  std::printf("  YAML / JSON: %.1fx\n", yaml_us / json_us);
  // What the journal does: one node changed per record, the text of the
  // others kept (config::GraphJsonCache). Each figure includes the copy of
  // the graph that edit() makes.
  aers::config::GraphJsonCache cache;
  const double cached_us =
      MeanMicros(n, [&](int i) { return aers::config::EmitGraphJson(edit(i), &cache)->size(); });
  std::printf("JSON, unchanged nodes kept (cache)  %7.1f us\n", cached_us);
  std::printf("  JSON / JSON with the cache: %.1fx\n", json_us / cached_us);

  std::printf("== making one record durable (%d records, in %s)\n", records, dir.c_str());
  const std::filesystem::path base =
      std::filesystem::path(dir) / ("journal-bench-" + std::to_string(::getpid()));
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base);
  std::vector<double> store_us, grow_us, room_us;
  {
    aers::state::StateStore store((base / "graph.yaml").string());
    for (int i = 0; i < records; ++i) {
      const auto g = edit(i);
      const auto t0 = Clock::now();
      auto ticket = store.Append(g, static_cast<uint64_t>(i + 1));
      if (!ticket.ok() || !store.Sync(*ticket).ok()) {
        std::fprintf(stderr, "journal_bench: %s\n", std::string(ticket.status().message()).c_str());
        return 1;
      }
      store_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
  }
  // The I/O alone: as many bytes as a record (the JSON and about 160 bytes
  // of header lines), appended to a file that grows (the journal before its
  // room), or written over zero-filled room (the journal now).
  const std::string record(aers::config::EmitGraphJson(graph)->size() + 160, 'x');
  for (const bool grow : {true, false}) {
    const std::string path = (base / (grow ? "growing" : "room")).string();
    const int fd =
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (grow ? O_APPEND : 0), 0600);
    if (fd < 0) {
      std::perror(path.c_str());
      return 1;
    }
    const std::string zeros(record.size() * static_cast<size_t>(records), '\0');
    if (!grow && (::pwrite(fd, zeros.data(), zeros.size(), 0) < 0 || ::fdatasync(fd) != 0)) {
      std::perror(path.c_str());
      return 1;
    }
    for (int i = 0; i < records; ++i) {
      const auto t0 = Clock::now();
      const ssize_t w =
          grow ? ::write(fd, record.data(), record.size())
               : ::pwrite(fd, record.data(), record.size(), static_cast<off_t>(i * record.size()));
      if (w != static_cast<ssize_t>(record.size()) || ::fdatasync(fd) != 0) {
        std::perror(path.c_str());
        return 1;
      }
      (grow ? grow_us : room_us)
          .push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    ::close(fd);
  }
  std::filesystem::remove_all(base);
  const double store_p50 = Percentile(store_us, 0.5), grow_p50 = Percentile(grow_us, 0.5),
               room_p50 = Percentile(room_us, 0.5);
  std::printf("write + fdatasync, a growing file (before)  p50 %6.0f us  p90 %6.0f us\n", grow_p50,
              Percentile(grow_us, 0.9));
  std::printf("write + fdatasync, into zero-filled room    p50 %6.0f us  p90 %6.0f us\n", room_p50,
              Percentile(room_us, 0.9));
  std::printf("StateStore Append + Sync (the whole record) p50 %6.0f us  p90 %6.0f us\n", store_p50,
              Percentile(store_us, 0.9));
  std::printf("  growing / room: %.2fx (what the room saves each flush)\n", grow_p50 / room_p50);
  std::printf("  StateStore / room: %.2fx (encoding, hash and checks over the bare I/O)\n",
              store_p50 / room_p50);
  return 0;
}
