// jack_probe: a real JACK client for the integration tests and benchmarks.
//
//   jack_probe run [--server S] [--name P] [--play SIGNAL [--to PORT]]...
//                  [--record N] [--from PORT]... [--seconds S] [--settle S]
//                  [--raw FILE] [--timeout S]
//       Two clients: "<P>_src" plays one signal per --play on ports out_1..,
//       "<P>_sink" records N ports in_1.. (mono: "out", "in" when there is
//       only one). --to/--from connect them (in order); without them the
//       probe waits until someone else (aersd's auto-connect) connects every
//       port. Once connected and --settle seconds later it records --seconds
//       of audio into FILE (float32, interleaved) and prints one JSON line:
//       {"start_frame":F,"frames":N,"channels":C,"sample_rate_hz":R,
//        "xruns":X,"gaps":G} (xruns reported and frame-clock jumps while
//       recording: a recording with either is not a clean measurement).
//       Signals use JACK's frame clock, so source and recording share one
//       timeline: sine:FREQ_HZ:LEVEL_DBFS, impulse:EVERY_FRAMES (1.0 at every
//       frame time divisible by EVERY_FRAMES), silence.
//   jack_probe ports [--server S]
//       One JSON line per port: name, direction, connections, latency ranges.
//   jack_probe has-client NAME [--server S]
//       Prints {"exists":true|false}: is a client of that name in the graph?
//   jack_probe set-period FRAMES [--server S]
//       Asks the server for a new period size (jack_set_buffer_size).
//   jack_probe load [--server S] [--seconds S]
//       Samples jack_cpu_load() every 100 ms and counts xruns; prints
//       {"cpu_load_mean":..,"cpu_load_max":..,"xruns":..}.
//
// Exit status: 0 on success, 1 on a timeout or JACK error, 2 on bad usage.
#include <jack/jack.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
constexpr double kPi = 3.14159265358979323846;

[[noreturn]] void Usage(const char* msg) {
  std::fprintf(stderr, "jack_probe: %s\n", msg);
  std::exit(2);
}

struct Signal {
  enum class Type { kSilence, kSine, kImpulse } type = Type::kSilence;
  double freq_hz = 0.0;
  double amplitude = 0.0;
  uint64_t every = 0;
};

Signal ParseSignal(const std::string& text) {
  Signal s;
  if (text == "silence") return s;
  if (text.rfind("sine:", 0) == 0) {
    double f = 0, db = 0;
    if (std::sscanf(text.c_str(), "sine:%lf:%lf", &f, &db) != 2) Usage("bad sine signal");
    s.type = Signal::Type::kSine;
    s.freq_hz = f;
    s.amplitude = std::pow(10.0, db / 20.0);
    return s;
  }
  if (text.rfind("impulse:", 0) == 0) {
    unsigned long long every = 0;
    if (std::sscanf(text.c_str(), "impulse:%llu", &every) != 1 || every == 0) {
      Usage("bad impulse signal");
    }
    s.type = Signal::Type::kImpulse;
    s.every = every;
    return s;
  }
  Usage("unknown signal (sine:FREQ:DBFS, impulse:EVERY, silence)");
}

// Opens a client. A server that answers but fails the handshake (jack2 can,
// when a client of the same name has just closed on a loaded machine) is
// asked again a few times; a server that does not answer is not.
jack_client_t* Open(const std::string& name, const std::string& server) {
  jack_status_t status{};
  const auto opts =
      static_cast<jack_options_t>(JackNoStartServer | (server.empty() ? 0 : JackServerName));
  jack_client_t* c = nullptr;
  for (int attempt = 0; attempt < 10 && c == nullptr; ++attempt) {
    if (attempt > 0) {
      if (status & JackServerFailed) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    c = server.empty() ? jack_client_open(name.c_str(), opts, &status)
                       : jack_client_open(name.c_str(), opts, &status, server.c_str());
  }
  if (c == nullptr) {
    std::fprintf(stderr, "jack_probe: cannot open client %s (status 0x%x)\n", name.c_str(),
                 static_cast<unsigned>(status));
  }
  return c;
}

// --- run ---------------------------------------------------------------------

struct Player {
  jack_client_t* client = nullptr;
  std::vector<jack_port_t*> ports;
  std::vector<Signal> signals;
  double rate = 48000.0;
};

struct Recorder {
  jack_client_t* client = nullptr;
  std::vector<jack_port_t*> ports;
  std::vector<float> data;  // interleaved, preallocated
  size_t frames_wanted = 0;
  size_t frames_done = 0;     // audio thread
  std::atomic<int> state{0};  // 0 idle, 1 armed, 2 recording, 3 done
  std::atomic<uint64_t> start_frame{0};
  uint64_t next_frame = 0;    // audio thread: expected frame time of the next period
  std::atomic<int> gaps{0};   // periods whose frame time did not follow on
  std::atomic<int> xruns{0};  // xruns reported while recording
};

int PlayProcess(jack_nframes_t n, void* arg) {
  auto* p = static_cast<Player*>(arg);
  const uint64_t t0 = jack_last_frame_time(p->client);
  for (size_t i = 0; i < p->ports.size(); ++i) {
    auto* out = static_cast<float*>(jack_port_get_buffer(p->ports[i], n));
    const Signal& s = p->signals[i];
    for (jack_nframes_t k = 0; k < n; ++k) {
      const uint64_t t = t0 + k;
      switch (s.type) {
        case Signal::Type::kSilence:
          out[k] = 0.0f;
          break;
        case Signal::Type::kSine: {
          // Phase from the absolute frame time, reduced exactly.
          const double cycles = std::fmod(static_cast<double>(t) * s.freq_hz / p->rate, 1.0);
          out[k] = static_cast<float>(s.amplitude * std::sin(2.0 * kPi * cycles));
          break;
        }
        case Signal::Type::kImpulse:
          out[k] = (t % s.every) == 0 ? 1.0f : 0.0f;
          break;
      }
    }
  }
  return 0;
}

int RecordProcess(jack_nframes_t n, void* arg) {
  auto* r = static_cast<Recorder*>(arg);
  int st = r->state.load(std::memory_order_acquire);
  const uint64_t now = jack_last_frame_time(r->client);
  if (st == 1) {
    r->start_frame.store(now, std::memory_order_relaxed);
    r->frames_done = 0;
    r->next_frame = now;
    r->state.store(2, std::memory_order_release);
    st = 2;
  }
  if (st != 2) return 0;
  // The analysis assumes one continuous timeline: count any jump.
  if (now != r->next_frame) r->gaps.fetch_add(1, std::memory_order_relaxed);
  r->next_frame = now + n;
  const size_t ch = r->ports.size();
  const size_t take = std::min<size_t>(n, r->frames_wanted - r->frames_done);
  for (size_t i = 0; i < ch; ++i) {
    const auto* in = static_cast<const float*>(jack_port_get_buffer(r->ports[i], n));
    for (size_t k = 0; k < take; ++k) r->data[(r->frames_done + k) * ch + i] = in[k];
  }
  r->frames_done += take;
  if (r->frames_done >= r->frames_wanted) r->state.store(3, std::memory_order_release);
  return 0;
}

std::atomic<int> g_xruns{0};
int CountXrun(void*) {
  g_xruns.fetch_add(1);
  return 0;
}

int CountRecordingXrun(void* arg) {
  auto* r = static_cast<Recorder*>(arg);
  if (r->state.load() == 2) r->xruns.fetch_add(1);
  return 0;
}

int Run(int argc, char** argv) {
  std::string server, name = "probe", raw;
  std::vector<std::string> plays, tos, froms;
  int record = 0;
  double seconds = 1.0, settle = 0.2, timeout = 20.0;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    if (a == "--server")
      server = next();
    else if (a == "--name")
      name = next();
    else if (a == "--play")
      plays.push_back(next());
    else if (a == "--to")
      tos.push_back(next());
    else if (a == "--record")
      record = std::atoi(next().c_str());
    else if (a == "--from")
      froms.push_back(next());
    else if (a == "--seconds")
      seconds = std::atof(next().c_str());
    else if (a == "--settle")
      settle = std::atof(next().c_str());
    else if (a == "--raw")
      raw = next();
    else if (a == "--timeout")
      timeout = std::atof(next().c_str());
    else
      Usage(("unknown option " + a).c_str());
  }
  if (record == 0 && !froms.empty()) record = static_cast<int>(froms.size());
  if (!tos.empty() && tos.size() != plays.size()) Usage("give --to for every --play or none");
  if (!froms.empty() && froms.size() != static_cast<size_t>(record)) {
    Usage("give --from for every recorded port or none");
  }
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(timeout));

  Player player;
  Recorder rec;
  if (!plays.empty()) {
    player.client = Open(name + "_src", server);
    if (!player.client) return 1;
    player.rate = jack_get_sample_rate(player.client);
    for (size_t i = 0; i < plays.size(); ++i) {
      player.signals.push_back(ParseSignal(plays[i]));
      const std::string pn = plays.size() == 1 ? "out" : "out_" + std::to_string(i + 1);
      player.ports.push_back(jack_port_register(player.client, pn.c_str(), JACK_DEFAULT_AUDIO_TYPE,
                                                JackPortIsOutput, 0));
    }
    jack_set_process_callback(player.client, PlayProcess, &player);
    if (jack_activate(player.client) != 0) return 1;
  }
  if (record > 0) {
    rec.client = Open(name + "_sink", server);
    if (!rec.client) return 1;
    const double rate = jack_get_sample_rate(rec.client);
    rec.frames_wanted = static_cast<size_t>(std::llround(seconds * rate));
    rec.data.assign(rec.frames_wanted * static_cast<size_t>(record), 0.0f);
    for (int i = 0; i < record; ++i) {
      const std::string pn = record == 1 ? "in" : "in_" + std::to_string(i + 1);
      rec.ports.push_back(
          jack_port_register(rec.client, pn.c_str(), JACK_DEFAULT_AUDIO_TYPE, JackPortIsInput, 0));
    }
    jack_set_process_callback(rec.client, RecordProcess, &rec);
    jack_set_xrun_callback(rec.client, CountRecordingXrun, &rec);
    if (jack_activate(rec.client) != 0) return 1;
  }
  for (size_t i = 0; i < tos.size(); ++i) {
    if (int err = jack_connect(player.client, jack_port_name(player.ports[i]), tos[i].c_str());
        err != 0 && err != EEXIST) {
      std::fprintf(stderr, "jack_probe: cannot connect %s -> %s\n", jack_port_name(player.ports[i]),
                   tos[i].c_str());
      return 1;
    }
  }
  for (size_t i = 0; i < froms.size(); ++i) {
    if (int err = jack_connect(rec.client, froms[i].c_str(), jack_port_name(rec.ports[i]));
        err != 0 && err != EEXIST) {
      std::fprintf(stderr, "jack_probe: cannot connect %s -> %s\n", froms[i].c_str(),
                   jack_port_name(rec.ports[i]));
      return 1;
    }
  }
  // Wait until every port is connected (by us or by aersd's auto-connect).
  auto all_connected = [&] {
    for (auto* p : player.ports) {
      if (jack_port_connected(p) == 0) return false;
    }
    for (auto* p : rec.ports) {
      if (jack_port_connected(p) == 0) return false;
    }
    return true;
  };
  while (!all_connected()) {
    if (Clock::now() > deadline) {
      std::fprintf(stderr, "jack_probe: timed out waiting for connections\n");
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(settle));
  if (record > 0) {
    rec.state.store(1, std::memory_order_release);
    while (rec.state.load(std::memory_order_acquire) != 3) {
      if (Clock::now() > deadline) {
        std::fprintf(stderr, "jack_probe: timed out recording\n");
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  if (rec.client) jack_deactivate(rec.client);
  if (player.client) jack_deactivate(player.client);
  if (!raw.empty() && record > 0) {
    FILE* f = std::fopen(raw.c_str(), "wb");
    if (!f || std::fwrite(rec.data.data(), sizeof(float), rec.data.size(), f) != rec.data.size()) {
      std::fprintf(stderr, "jack_probe: cannot write %s\n", raw.c_str());
      return 1;
    }
    std::fclose(f);
  }
  std::printf(
      "{\"start_frame\":%llu,\"frames\":%zu,\"channels\":%d,\"sample_rate_hz\":%u,"
      "\"xruns\":%d,\"gaps\":%d}\n",
      static_cast<unsigned long long>(rec.start_frame.load()), rec.frames_wanted, record,
      rec.client ? jack_get_sample_rate(rec.client) : 0u, rec.xruns.load(), rec.gaps.load());
  if (rec.client) jack_client_close(rec.client);
  if (player.client) jack_client_close(player.client);
  return 0;
}

// --- ports -------------------------------------------------------------------

std::string Json(const char* s) {
  std::string out = "\"";
  for (; *s; ++s) {
    if (*s == '"' || *s == '\\') out += '\\';
    out += *s;
  }
  return out + "\"";
}

int Ports(int argc, char** argv) {
  std::string server;
  for (int i = 2; i < argc; ++i) {
    if (std::string(argv[i]) == "--server" && i + 1 < argc)
      server = argv[++i];
    else
      Usage("ports: unknown option");
  }
  jack_client_t* c = Open("probe_lsp", server);
  if (!c) return 1;
  const char** names = jack_get_ports(c, nullptr, nullptr, 0);
  for (size_t i = 0; names && names[i]; ++i) {
    jack_port_t* p = jack_port_by_name(c, names[i]);
    if (!p) continue;
    jack_latency_range_t cap{}, play{};
    jack_port_get_latency_range(p, JackCaptureLatency, &cap);
    jack_port_get_latency_range(p, JackPlaybackLatency, &play);
    std::string conns;
    const char** cs = jack_port_get_all_connections(c, p);
    for (size_t k = 0; cs && cs[k]; ++k) conns += (k ? "," : "") + Json(cs[k]);
    if (cs) jack_free(cs);
    std::printf(
        "{\"name\":%s,\"direction\":\"%s\",\"connections\":[%s],\"capture\":[%u,%u],"
        "\"playback\":[%u,%u]}\n",
        Json(names[i]).c_str(), (jack_port_flags(p) & JackPortIsInput) ? "in" : "out",
        conns.c_str(), cap.min, cap.max, play.min, play.max);
  }
  if (names) jack_free(names);
  jack_client_close(c);
  return 0;
}

// --- has-client ----------------------------------------------------------------

int HasClient(int argc, char** argv) {
  std::string server, who;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--server" && i + 1 < argc)
      server = argv[++i];
    else if (who.empty())
      who = a;
    else
      Usage("has-client: unknown option");
  }
  if (who.empty()) Usage("has-client NAME");
  jack_client_t* c = Open("probe_who", server);
  if (!c) return 1;
  char* uuid = jack_get_uuid_for_client_name(c, who.c_str());
  std::printf("{\"exists\":%s}\n", uuid ? "true" : "false");
  if (uuid) jack_free(uuid);
  jack_client_close(c);
  return 0;
}

// --- set-period -----------------------------------------------------------------

int SetPeriod(int argc, char** argv) {
  std::string server;
  long frames = 0;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--server" && i + 1 < argc)
      server = argv[++i];
    else if (frames == 0)
      frames = std::atol(a.c_str());
    else
      Usage("set-period: unknown option");
  }
  if (frames <= 0) Usage("set-period FRAMES");
  jack_client_t* c = Open("probe_period", server);
  if (!c) return 1;
  const int err = jack_set_buffer_size(c, static_cast<jack_nframes_t>(frames));
  std::printf("{\"error\":%d,\"period_frames\":%u}\n", err, jack_get_buffer_size(c));
  jack_client_close(c);
  return err == 0 ? 0 : 1;
}

// --- load --------------------------------------------------------------------

int Load(int argc, char** argv) {
  std::string server;
  double seconds = 10.0;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--server" && i + 1 < argc)
      server = argv[++i];
    else if (a == "--seconds" && i + 1 < argc)
      seconds = std::atof(argv[++i]);
    else
      Usage("load: unknown option");
  }
  jack_client_t* c = Open("probe_load", server);
  if (!c) return 1;
  jack_set_xrun_callback(c, CountXrun, nullptr);
  if (jack_activate(c) != 0) return 1;
  double sum = 0.0, max = 0.0;
  int n = 0;
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(seconds));
  while (Clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const double load = jack_cpu_load(c);
    sum += load;
    max = std::max(max, load);
    ++n;
  }
  std::printf("{\"cpu_load_mean\":%.3f,\"cpu_load_max\":%.3f,\"samples\":%d,\"xruns\":%d}\n",
              n ? sum / n : 0.0, max, n, g_xruns.load());
  jack_client_close(c);
  return 0;
}

void Silent(const char*) {}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) Usage("usage: jack_probe run|ports|has-client|set-period|load [options]");
  if (std::getenv("JACK_PROBE_VERBOSE") == nullptr) {
    jack_set_error_function(Silent);
    jack_set_info_function(Silent);
  }
  const std::string cmd = argv[1];
  if (cmd == "run") return Run(argc, argv);
  if (cmd == "ports") return Ports(argc, argv);
  if (cmd == "load") return Load(argc, argv);
  if (cmd == "has-client") return HasClient(argc, argv);
  if (cmd == "set-period") return SetPeriod(argc, argv);
  Usage("unknown command");
}
