// Round-trip latency of control RPCs over aersd's Unix socket, and sustained
// edit rate. Driven by tests/bench/control_bench.sh (which starts jackd and
// aersd and runs the jack_connect baseline in the same run).
//
//   control_bench --socket PATH [--calls N] [--seconds S] [--pid AERSD_PID]
//                 [--disk DIR] [--unary-only]
//
// With --disk (a directory on the file system of aersd's state file), the
// phases an edit waits on the disk in also time the disk alone, spaced as
// the edits are: a 4 KiB pwrite + fdatasync into a preallocated file, as
// a journal record is written. A durable edit cannot return sooner than
// that plus a read's round trip; on a VM the flush takes longer the longer
// the disk was idle before it.
//
// With --unary-only, only the GetStatus and SetParameter round trips (and
// the disk) are measured (SETPARAM_P50_US= printed at once): control_bench.sh
// runs that against floor_server.
//
// With --pid, the sustained phases also print the CPU time aersd and this
// client spent per edit (user + system, /proc/PID/stat and getrusage): on
// a machine of two cores both share them.
//
// Expects the graph of control_bench.sh: nodes "trim" (gain) and "spare"
// (gain) with route src -> spare absent.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "control.grpc.pb.h"
#include "disk_floor.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Summary {
  double p50_us, p99_us, max_us, mean_us;
};

Summary Summarize(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (double v : us) sum += v;
  auto at = [&](double q) {
    return us[std::min(us.size() - 1, static_cast<size_t>(q * us.size()))];
  };
  return {at(0.50), at(0.99), us.back(), sum / static_cast<double>(us.size())};
}

void Print(const char* what, const Summary& s, size_t n) {
  std::printf("%-28s n=%zu  p50 %8.1f us  p99 %8.1f us  max %8.1f us  mean %8.1f us\n", what, n,
              s.p50_us, s.p99_us, s.max_us, s.mean_us);
}

using aers::bench::DiskFloor;

// CPU seconds (user + system) of process `pid` so far; 0 if unknown.
double ProcessCpuSeconds(int pid) {
  if (pid <= 0) return 0;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  const auto close = text.rfind(')');  // the name may hold spaces
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string f;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14 || i == 15) ticks += std::atof(f.c_str());  // utime, stime
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double OwnCpuSeconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

// Context switches (voluntary + involuntary) of all threads of process
// `pid` so far; 0 if unknown. Each is a thread going to sleep or being
// preempted: a hand-over between threads costs one or two.
// Context switches of each of aersd's threads (voluntary and not), by
// thread id: a phase counts the change of each thread that is there at its
// end (from 0 for a thread started meanwhile). A thread that ended during the
// phase (gRPC's pollers come and go) takes its count with it: such threads
// are reported, never subtracted.
std::map<long, long> ProcessContextSwitches(int pid) {
  std::map<long, long> by_thread;
  if (pid <= 0) return by_thread;
  std::error_code ec;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(task.path() / "status");
    std::string line;
    long total = 0;
    bool read = false;
    while (std::getline(in, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0 ||
          line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) {
        total += std::atol(line.c_str() + line.find(':') + 1);
        read = true;
      }
    }
    if (read) by_thread[std::atol(task.path().filename().c_str())] = total;
  }
  return by_thread;
}

// CPU spent by aersd and by this client during a phase of `edits` calls,
// and aersd's context switches (its audio thread's own, one or two a
// period, included).
class CpuMeter {
 public:
  explicit CpuMeter(int pid)
      : pid_(pid),
        daemon0_(ProcessCpuSeconds(pid)),
        own0_(OwnCpuSeconds()),
        switches0_(ProcessContextSwitches(pid)) {}
  void Print(const char* what, long edits) const {
    if (pid_ <= 0 || edits <= 0) return;
    const double d = ProcessCpuSeconds(pid_) - daemon0_;
    const double o = OwnCpuSeconds() - own0_;
    const auto n = static_cast<double>(edits);
    long switches = 0;
    int ended = 0;
    const auto now = ProcessContextSwitches(pid_);
    for (const auto& [tid, count] : now) {
      auto before = switches0_.find(tid);
      switches += count - (before == switches0_.end() ? 0 : before->second);
    }
    for (const auto& [tid, count] : switches0_) ended += now.count(tid) == 0 ? 1 : 0;
    std::printf(
        "  %s CPU per call: aersd %.0f us, this client %.0f us; aersd context switches per "
        "call: %.1f%s\n",
        what, d * 1e6 / n, o * 1e6 / n, static_cast<double>(switches) / n,
        ended == 0 ? ""
                   : (" (not counted: those of " + std::to_string(ended) +
                      " threads that ended during the phase)")
                         .c_str());
  }

 private:
  int pid_;
  double daemon0_, own0_;
  std::map<long, long> switches0_;
};

bool Check(const grpc::Status& st, const char* what) {
  if (st.ok()) return true;
  std::fprintf(stderr, "control_bench: %s failed: %s\n", what, st.error_message().c_str());
  return false;
}

// Connect (or disconnect) the route src -> `to` with the Connect and
// Disconnect calls.
grpc::Status ToggleRoute(aers::v1::Control::Stub& stub, bool connect, const std::string& to,
                         grpc::ClientContext* ctx, aers::v1::EditResponse* resp) {
  if (connect) {
    aers::v1::ConnectRequest req;
    req.set_from("src");
    req.set_to(to);
    return stub.Connect(ctx, req, resp);
  }
  aers::v1::DisconnectRequest req;
  req.set_from("src");
  req.set_to(to);
  return stub.Disconnect(ctx, req, resp);
}

// What the audio side counted so far (GetStatus): the server's xruns and
// aersd's own periods over budget.
struct AudioCounts {
  uint64_t xruns = 0;
  uint64_t periods = 0;
  uint64_t over_budget = 0;
};

bool ReadAudioCounts(aers::v1::Control::Stub& stub, AudioCounts* out) {
  aers::v1::GetStatusRequest req;
  aers::v1::Status st;
  grpc::ClientContext ctx;
  if (!Check(stub.GetStatus(&ctx, req, &st), "GetStatus (audio counts)")) return false;
  *out = {st.xruns(), st.dsp_time().periods(), st.dsp_time().over_budget()};
  return true;
}

// One line comparing a phase's counts with those of an idle phase of the
// same length: xruns the server counts with no edits at all are the host's
// (scheduling of the vCPUs), not the edits'; a period whose DSP ran over
// its length is aersd's own.
void PrintAudioCounts(const char* what, const AudioCounts& before, const AudioCounts& after) {
  std::printf(
      "  %s: xruns (jackd's count) %llu; aersd's periods over the period's length %llu of %llu\n",
      what, static_cast<unsigned long long>(after.xruns - before.xruns),
      static_cast<unsigned long long>(after.over_budget - before.over_budget),
      static_cast<unsigned long long>(after.periods - before.periods));
}

}  // namespace

int main(int argc, char** argv) {
  std::string socket;
  int calls = 10000;
  double seconds = 10.0;
  int pid = 0;
  std::string disk_dir;
  bool unary_only = false;
  for (int i = 1; i < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--unary-only") {
      unary_only = true;
      --i;  // no value
      continue;
    }
    if (i + 1 >= argc) break;
    if (a == "--socket") socket = argv[i + 1];
    if (a == "--calls") calls = std::atoi(argv[i + 1]);
    if (a == "--seconds") seconds = std::atof(argv[i + 1]);
    if (a == "--pid") pid = std::atoi(argv[i + 1]);
    if (a == "--disk") disk_dir = argv[i + 1];
  }
  if (socket.empty()) {
    std::fprintf(stderr,
                 "usage: control_bench --socket PATH [--calls N] [--seconds S] [--pid PID] "
                 "[--disk DIR] [--unary-only]\n");
    return 2;
  }
  DiskFloor disk(disk_dir);
  auto channel = grpc::CreateChannel("unix:" + socket, grpc::InsecureChannelCredentials());
  auto stub = aers::v1::Control::NewStub(channel);

  // The floor: a read round trip (GetStatus) over the same channel.
  std::vector<double> read_us;
  const CpuMeter read_cpu(pid);
  for (int i = 0; i < calls; ++i) {
    aers::v1::GetStatusRequest req;
    aers::v1::Status resp;
    grpc::ClientContext ctx;
    const auto t0 = Clock::now();
    if (!Check(stub->GetStatus(&ctx, req, &resp), "GetStatus")) return 1;
    read_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  Print("GetStatus (read, the floor)", Summarize(read_us), read_us.size());
  read_cpu.Print("GetStatus:", calls);

  // SetParameter round trips.
  std::vector<double> set_us;
  set_us.reserve(static_cast<size_t>(calls));
  const CpuMeter set_cpu(pid);
  for (int i = 0; i < calls; ++i) {
    aers::v1::SetParameterRequest req;
    req.set_node("trim");
    req.set_param("gain_db");
    req.mutable_value()->set_number(-(i % 12));
    aers::v1::EditResponse resp;
    grpc::ClientContext ctx;
    const auto t0 = Clock::now();
    if (!Check(stub->SetParameter(&ctx, req, &resp), "SetParameter")) return 1;
    set_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  Print("SetParameter", Summarize(set_us), set_us.size());
  set_cpu.Print("SetParameter:", calls);
  std::printf(
      "  SetParameter p50 / GetStatus p50: %.2fx (the edit's own cost: journal write and "
      "fdatasync)\n",
      Summarize(set_us).p50_us / Summarize(read_us).p50_us);
  if (disk.on()) {
    std::vector<double> flush_us;
    for (int i = 0; i < std::min(calls, 1000); ++i) flush_us.push_back(disk.Flush());
    Print("disk flush, back to back", Summarize(flush_us), flush_us.size());
    std::printf(
        "  SetParameter p50 - GetStatus p50 - disk flush p50: %.1f us (a difference of medians: "
        "about what aersd adds to the two floors)\n",
        Summarize(set_us).p50_us - Summarize(read_us).p50_us - Summarize(flush_us).p50_us);
  }
  std::printf("READ_P50_US=%.1f\n", Summarize(read_us).p50_us);
  if (unary_only) {
    std::printf("SETPARAM_P50_US=%.1f\n", Summarize(set_us).p50_us);
    return 0;
  }

  // The same from 20 clients at once, each on its own channel (connection):
  // their edits share the journal's flushes (group commit).
  {
    constexpr int kClients = 20;
    const int per_client = std::max(1, calls / kClients);
    std::vector<double> all;
    std::mutex all_mu;
    std::atomic<bool> failed{false};
    std::vector<std::thread> threads;
    const auto t0 = Clock::now();
    for (int c = 0; c < kClients; ++c) {
      threads.emplace_back([&, c] {
        grpc::ChannelArguments args;
        args.SetInt("grpc.channel_id", c);  // a connection of its own
        auto ch =
            grpc::CreateCustomChannel("unix:" + socket, grpc::InsecureChannelCredentials(), args);
        auto st = aers::v1::Control::NewStub(ch);
        std::vector<double> mine;
        for (int i = 0; i < per_client && !failed; ++i) {
          aers::v1::SetParameterRequest req;
          req.set_node("trim");
          req.set_param("gain_db");
          req.mutable_value()->set_number(-((i + c) % 12));
          aers::v1::EditResponse resp;
          grpc::ClientContext ctx;
          const auto s0 = Clock::now();
          if (!Check(st->SetParameter(&ctx, req, &resp), "SetParameter (20 clients)")) {
            failed = true;
            return;
          }
          mine.push_back(std::chrono::duration<double, std::micro>(Clock::now() - s0).count());
        }
        std::lock_guard lock(all_mu);
        all.insert(all.end(), mine.begin(), mine.end());
      });
    }
    for (auto& t : threads) t.join();
    if (failed) return 1;
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    Print("SetParameter, 20 clients", Summarize(all), all.size());
    std::printf("  20 clients: %.0f durable edits/s\n", static_cast<double>(all.size()) / secs);
  }

  // A stream of parameter values at 1,000 per second (StreamParameters),
  // while a second connection polls the revision: the time from sending a
  // value to the graph showing it (the audio takes it at its next period).
  {
    constexpr int kValues = 3000;
    const int64_t base = [&] {
      aers::v1::GetStatusRequest req;
      aers::v1::Status st;
      grpc::ClientContext ctx;
      stub->GetStatus(&ctx, req, &st);
      return static_cast<int64_t>(st.revision());
    }();
    std::vector<Clock::time_point> sent(kValues), seen(kValues);
    std::atomic<int> sent_count{0};
    std::atomic<bool> done{false};
    std::thread poller([&] {
      auto ch = grpc::CreateChannel("unix:" + socket, grpc::InsecureChannelCredentials());
      auto st = aers::v1::Control::NewStub(ch);
      int next = 0;
      while (next < kValues && !done) {
        aers::v1::GetStatusRequest req;
        aers::v1::Status s;
        grpc::ClientContext ctx;
        if (!st->GetStatus(&ctx, req, &s).ok()) continue;
        const auto now = Clock::now();
        const int64_t applied = static_cast<int64_t>(s.revision()) - base;
        while (next < kValues && next < applied && next < sent_count.load()) seen[next++] = now;
      }
    });
    grpc::ClientContext ctx;
    aers::v1::StreamParametersResponse resp;
    auto writer = stub->StreamParameters(&ctx, &resp);
    const auto start = Clock::now();
    for (int i = 0; i < kValues; ++i) {
      std::this_thread::sleep_until(start + std::chrono::microseconds(1000 * i));
      aers::v1::StreamParametersRequest req;
      req.set_node("trim");
      req.set_param("gain_db");
      req.mutable_value()->set_number(-(i % 12) - 0.5);
      sent[i] = Clock::now();
      sent_count = i + 1;
      if (!writer->Write(req)) break;
    }
    writer->WritesDone();
    if (!Check(writer->Finish(), "StreamParameters")) {
      done = true;
      poller.join();
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    done = true;
    poller.join();
    std::vector<double> lat;
    for (int i = 0; i < kValues; ++i) {
      if (seen[i] != Clock::time_point{}) {
        lat.push_back(std::chrono::duration<double, std::micro>(seen[i] - sent[i]).count());
      }
    }
    if (lat.empty()) {
      std::fprintf(stderr, "control_bench: no streamed value was seen applied\n");
      return 1;
    }
    Print("stream value -> applied", Summarize(lat), lat.size());
    std::printf("  stream: %llu values applied in order, revision %llu\n",
                static_cast<unsigned long long>(resp.values()),
                static_cast<unsigned long long>(resp.revision()));
    std::printf("STREAM_P99_US=%.1f\n", Summarize(lat).p99_us);
  }

  // Connect / Disconnect round trips (each is a new plan with a crossfade).
  std::vector<double> conn_us, disc_us;
  const int route_calls = calls / 2;
  for (int i = 0; i < route_calls; ++i) {
    aers::v1::EditResponse resp;
    for (const bool connect : {true, false}) {
      grpc::ClientContext ctx;
      const auto t0 = Clock::now();
      if (!Check(ToggleRoute(*stub, connect, "spare", &ctx, &resp),
                 connect ? "Connect" : "Disconnect")) {
        return 1;
      }
      (connect ? conn_us : disc_us)
          .push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
  }
  Print("Connect", Summarize(conn_us), conn_us.size());
  // The same with no crossfade running: 20 ms between edits (a 5 ms fade
  // has settled), so the call measures the edit itself. After 20 ms idle
  // every call pays for waking the daemon's threads (and, on a VM, its
  // vCPU): a read and a SetParameter after the same pause are the floors.
  std::vector<double> calm_us, idle_read_us, idle_set_us;
  for (int i = 0; i < std::min(route_calls, 400); ++i) {
    {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      aers::v1::GetStatusRequest req;
      aers::v1::Status resp;
      grpc::ClientContext ctx;
      const auto t0 = Clock::now();
      if (!Check(stub->GetStatus(&ctx, req, &resp), "GetStatus (after 20 ms idle)")) return 1;
      idle_read_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      aers::v1::SetParameterRequest req;
      req.set_node("trim");
      req.set_param("gain_db");
      req.mutable_value()->set_number(-(i % 12));
      aers::v1::EditResponse resp;
      grpc::ClientContext ctx;
      const auto t0 = Clock::now();
      if (!Check(stub->SetParameter(&ctx, req, &resp), "SetParameter (after 20 ms idle)")) {
        return 1;
      }
      idle_set_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    aers::v1::EditResponse resp;
    grpc::ClientContext ctx;
    const bool connect = i % 2 == 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const auto t0 = Clock::now();
    const grpc::Status st = ToggleRoute(*stub, connect, "spare", &ctx, &resp);
    if (!Check(st, "Connect/Disconnect (no fade running)")) return 1;
    calm_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  // The same again with the daemon kept busy by reads while the fade
  // settles (10 ms of GetStatus calls before each edit): the edit's own
  // cost, without the wake-up.
  // Reads for 10 ms; false if one failed.
  const auto keep_busy = [&] {
    const auto until = Clock::now() + std::chrono::milliseconds(10);
    while (Clock::now() < until) {
      aers::v1::GetStatusRequest req;
      aers::v1::Status resp;
      grpc::ClientContext ctx;
      if (!Check(stub->GetStatus(&ctx, req, &resp), "GetStatus")) return false;
    }
    return true;
  };
  std::vector<double> warm_us;
  for (int i = 0; i < std::min(route_calls, 400); ++i) {
    if (!keep_busy()) return 1;
    aers::v1::EditResponse resp;
    grpc::ClientContext ctx;
    const auto t0 = Clock::now();
    const grpc::Status st = ToggleRoute(*stub, i % 2 == 0, "spare", &ctx, &resp);
    if (!Check(st, "Connect/Disconnect (no fade running, daemon busy)")) return 1;
    warm_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  // The disk alone, spaced as the edits above are (after them, so that
  // they do not find the disk freshly woken).
  std::vector<double> idle_flush_us, busy_flush_us;
  for (int i = 0; disk.on() && i < std::min(route_calls, 400) / 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    idle_flush_us.push_back(disk.Flush());
  }
  for (int i = 0; disk.on() && i < std::min(route_calls, 400) / 2; ++i) {
    if (!keep_busy()) return 1;
    busy_flush_us.push_back(disk.Flush());
  }
  Print("GetStatus after 20 ms idle", Summarize(idle_read_us), idle_read_us.size());
  if (disk.on())
    Print("disk flush after 20 ms idle", Summarize(idle_flush_us), idle_flush_us.size());
  Print("SetParameter after 20 ms idle", Summarize(idle_set_us), idle_set_us.size());
  Print("route edit, no fade running", Summarize(calm_us), calm_us.size());
  std::printf("  route edit p50 / SetParameter after 20 ms idle p50: %.2fx\n",
              Summarize(calm_us).p50_us / Summarize(idle_set_us).p50_us);
  Print("route edit, no fade, kept busy", Summarize(warm_us), warm_us.size());
  if (disk.on()) {
    Print("disk flush, kept busy", Summarize(busy_flush_us), busy_flush_us.size());
    std::printf(
        "  route edit p50 - disk flush p50, kept busy: %.1f us; after 20 ms idle: %.1f us (a "
        "difference of medians: about the edit without the disk)\n",
        Summarize(warm_us).p50_us - Summarize(busy_flush_us).p50_us,
        Summarize(calm_us).p50_us - Summarize(idle_flush_us).p50_us);
  }
  std::printf("ROUTE_EDIT_BUSY_P50_US=%.1f\n", Summarize(warm_us).p50_us);
  Print("Disconnect", Summarize(disc_us), disc_us.size());
  std::vector<double> pair = conn_us;
  for (size_t i = 0; i < pair.size(); ++i) pair[i] += disc_us[i];
  Print("Connect+Disconnect pair", Summarize(pair), pair.size());

  // The baseline of "xruns caused": the same length as the two sustained
  // phases below, with no edits (aersd and the server running alone).
  AudioCounts idle0, idle1, edits0, edits1;
  if (!ReadAudioCounts(*stub, &idle0)) return 1;
  std::this_thread::sleep_for(std::chrono::duration<double>(2 * seconds));
  if (!ReadAudioCounts(*stub, &idle1)) return 1;

  // Sustained edits per second: alternating route edits and parameter sets.
  if (!ReadAudioCounts(*stub, &edits0)) return 1;
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  long edits = 0;
  const CpuMeter one_cpu(pid);
  const auto t0 = Clock::now();
  while (Clock::now() < end) {
    aers::v1::EditResponse resp;
    grpc::ClientContext ctx;
    if (edits % 2 == 0) {
      aers::v1::SetParameterRequest req;
      req.set_node("trim");
      req.set_param("gain_db");
      req.mutable_value()->set_number(-(edits % 7));
      if (!Check(stub->SetParameter(&ctx, req, &resp), "SetParameter")) return 1;
    } else {
      aers::v1::EditRequest req;
      auto* op = req.add_ops();
      if (edits % 4 == 1) {
        op->mutable_connect()->set_from("src");
        op->mutable_connect()->set_to("spare");
      } else {
        op->mutable_disconnect()->set_from("src");
        op->mutable_disconnect()->set_to("spare");
      }
      if (!Check(stub->Edit(&ctx, req, &resp), "Edit")) return 1;
    }
    ++edits;
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("sustained: %ld edits in %.1f s = %.0f edits/s (half parameter, half route)\n", edits,
              elapsed, static_cast<double>(edits) / elapsed);
  one_cpu.Print("one client:", edits);

  // The same from 20 clients at once for the same time, each on its own
  // connection, toggling a route of its own (src -> laneN) between parameter
  // sets: route edits during a fade are parked and coalesced, and the
  // clients share the journal's flushes.
  {
    constexpr int kClients = 20;
    std::atomic<long> total{0};
    std::atomic<bool> failed{false};
    std::vector<std::thread> threads;
    const CpuMeter mixed_cpu(pid);
    const auto m0 = Clock::now();
    const auto mend = m0 + std::chrono::duration<double>(seconds);
    for (int c = 0; c < kClients; ++c) {
      threads.emplace_back([&, c] {
        grpc::ChannelArguments args;
        args.SetInt("grpc.channel_id", 100 + c);  // a connection of its own
        auto ch =
            grpc::CreateCustomChannel("unix:" + socket, grpc::InsecureChannelCredentials(), args);
        auto st = aers::v1::Control::NewStub(ch);
        const std::string lane = "lane" + std::to_string(c);
        long n = 0;
        while (Clock::now() < mend && !failed) {
          aers::v1::EditResponse resp;
          grpc::ClientContext ctx;
          grpc::Status status;
          if (n % 2 == 0) {
            aers::v1::SetParameterRequest req;
            req.set_node(lane);
            req.set_param("gain_db");
            req.mutable_value()->set_number(-40.0 - static_cast<double>(n % 7));
            status = st->SetParameter(&ctx, req, &resp);
          } else {
            aers::v1::EditRequest req;
            auto* op = req.add_ops();
            if (n % 4 == 1) {
              op->mutable_connect()->set_from("src");
              op->mutable_connect()->set_to(lane);
            } else {
              op->mutable_disconnect()->set_from("src");
              op->mutable_disconnect()->set_to(lane);
            }
            status = st->Edit(&ctx, req, &resp);
          }
          if (!Check(status, "mixed edit (20 clients)")) {
            failed = true;
            return;
          }
          ++n;
        }
        total += n;
      });
    }
    for (auto& t : threads) t.join();
    if (failed) return 1;
    const double secs = std::chrono::duration<double>(Clock::now() - m0).count();
    std::printf(
        "sustained, 20 clients: %ld edits in %.1f s = %.0f edits/s (half parameter, half route)\n",
        total.load(), secs, static_cast<double>(total.load()) / secs);
    mixed_cpu.Print("20 clients:", total.load());
    std::printf("MIXED20_PER_S=%.0f\n", static_cast<double>(total.load()) / secs);
  }
  if (!ReadAudioCounts(*stub, &edits1)) return 1;
  std::printf("audio during the sustained edits, against as long without edits just before:\n");
  PrintAudioCounts("no edits", idle0, idle1);
  PrintAudioCounts("sustained edits", edits0, edits1);
  std::printf("OVER_BUDGET_DURING_EDITS=%llu\n",
              static_cast<unsigned long long>(edits1.over_budget - edits0.over_budget));
  std::printf("SETPARAM_P50_US=%.1f\nPAIR_P50_US=%.1f\n", Summarize(set_us).p50_us,
              Summarize(pair).p50_us);
  return 0;
}
