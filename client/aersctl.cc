// aersctl: the command-line client of aersd's control API.
//
// Exit status: 0 success; 1 other error; 2 usage; 3 invalid argument;
// 4 not found; 5 conflict (revision changed, already exists); 6 refused by
// the graph (e.g. a cycle); 7 daemon unavailable (not running, timeout);
// 8 authentication/permission/lock-out. A request over the daemon's size limit
// is 3 (invalid argument), too many open streams 7.
//
// `aersctl plugin hash|keygen|sign|verify` work offline on plugin
// directories and keys (daemon/plugin/tool.h, the same functions as the
// standalone aers-plugin); they never contact the daemon. Their status: 0 ok;
// 1 refused by the gate (hash or signature mismatch, unsafe owner/mode, ...)
// or other error; 2 usage; 3 invalid manifest or key file; 4 not found;
// 5 a key file already exists (keygen without --force).
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "control.grpc.pb.h"
#include "control/paths.h"
#include "control/utf8.h"
#include "health.grpc.pb.h"
#include "plugin/manifest.h"
#include "plugin/secure_open.h"
#include "plugin/tool.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitInvalid = 3;
constexpr int kExitNotFound = 4;
constexpr int kExitConflict = 5;
constexpr int kExitRefused = 6;
constexpr int kExitUnavailable = 7;
constexpr int kExitAuth = 8;

const char kUsage[] = R"(usage: aersctl [GLOBAL OPTIONS] COMMAND [ARGS]

Commands:
  status                         backend, rate, period, DSP load, xruns, uptime
  graph [--json|--yaml|--dot]    the live graph (--dot: Graphviz)
  kinds                          node kinds with their parameters and ranges
  add NAME KIND [--channels N] [--preset URI] [--param NAME=VALUE]...
  rm NAME                        remove a node and its routes
  connect FROM TO                FROM/TO: node or node.port
  disconnect FROM TO
  set NODE PARAM VALUE           VALUE: number, true/false, word, or [n, n, ...]
  set --stream [NODE [PARAM]]    live values from stdin, one per line ("NODE PARAM VALUE",
                                 leaving out the fields given), applied as they come;
                                 saved within 100 ms and when stdin ends
  apply FILE [--dry-run]         replace the graph with a config file; prints the diff
  reset                          back to the daemon's config file graph
  watch [--count N]              print events as they happen
  top [--once] [--rate HZ]       live meters (peak, RMS, true peak, EBU R128 loudness)
                                 and DSP load, refreshed in place
  loudness-reset [NODE...]       restart the integrated loudness, loudness range and
                                 true peak of meter NODEs (default: every meter)
  health                         SERVING / NOT_SERVING (exit 0 only when serving)
  plugins                        loaded plugins: version, hash, signer, node kinds

Plugin commands (offline: files only, no daemon needed):
  plugin hash DIR [--write] [--algorithm sha256|blake2b]
                                 hash what DIR/manifest.yaml pins (module, or LV2 bundle
                                 tree); --write puts it into the manifest (sign again)
  plugin keygen -p PUB -s SEC [--force]
                                 new minisign key pair (SEC unencrypted, mode 0600)
  plugin sign DIR -s SEC [--trusted-comment TEXT] [--legacy]
                                 write DIR/manifest.yaml.minisig (--legacy: not prehashed)
  plugin verify DIR -p PUB       every check of the daemon's plugin gate short of loading

Global options:
  --socket PATH          Unix socket of aersd (default: the daemon's runtime socket)
  --target ADDR          any gRPC target instead (e.g. localhost:7000)
  --token-file FILE      bearer token for TCP targets (the first line that is not
                         empty or a '#' comment; a daemon token-file line
                         "ROLE TOKEN [NAME]" works as is)
  --tls-ca FILE          TLS for --target: CA (PEM) that signed the daemon's certificate
  --tls-cert FILE        client certificate (PEM) for mutual TLS (with --tls-key)
  --tls-key FILE         client private key (PEM) for mutual TLS
  --timeout SECONDS      per-call deadline (default 5)
  --expect-revision N    fail with a conflict unless the graph is at revision N
  --json                 machine-readable output
  -h, --help             this text
  --                     the rest are arguments (a file named -x.yaml)

Plugin options (only with `plugin`):
  -p FILE                minisign public key
  -s FILE                minisign secret key
  --write                hash: rewrite hash.value (and hash.algorithm) in manifest.yaml
  --algorithm ALG        hash: sha256 or blake2b (default: the manifest's)
  --force                keygen: overwrite existing key files
  --trusted-comment TEXT sign: the signature's trusted comment
  --legacy               sign: a legacy (non-prehashed) minisign signature

Exit status: 0 ok, 1 error, 2 usage, 3 invalid argument, 4 not found,
5 conflict, 6 refused by the graph, 7 daemon unavailable, 8 auth.
`plugin`: 0 ok, 1 refused by the plugin gate or other error, 2 usage,
3 invalid manifest/key, 4 not found, 5 key file exists.
)";

struct Options {
  std::string socket;
  std::string target;
  std::string token_file;
  std::string tls_ca, tls_cert, tls_key;
  double timeout_s = 5.0;
  std::optional<uint64_t> expect_revision;
  bool json = false;
  bool yaml = false;
  bool dot = false;
  bool dry_run = false;
  bool stream = false;  // set --stream
  bool once = false;
  int count = -1;
  int channels = 1;
  std::string preset;
  double rate_hz = 10.0;
  std::vector<std::string> params;
  // `plugin` options.
  std::string public_key;
  std::string secret_key;
  bool write = false;
  std::string algorithm;
  bool force = false;
  std::optional<std::string> trusted_comment;
  bool legacy = false;
  std::vector<std::string> plugin_flags;  // which of them were given, as written
  std::vector<std::string> args;          // command and its positional arguments
};

bool LooksLikeNumber(const std::string& s) {
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return !s.empty() && end && *end == '\0';
}

// A small parser: flags may appear anywhere; a word starting with '-' that
// is a number (set g gain_db -6) is a positional argument.
std::optional<Options> ParseArgs(int argc, char** argv, std::string* error) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    bool has_value = false;
    if (a.rfind("--", 0) == 0 && a.find('=') != std::string::npos) {
      value = a.substr(a.find('=') + 1);
      a = a.substr(0, a.find('='));
      has_value = true;
    }
    auto need = [&](const char* name) -> std::optional<std::string> {
      if (has_value) return value;
      if (i + 1 >= argc) {
        *error = std::string(name) + " needs a value";
        return std::nullopt;
      }
      return std::string(argv[++i]);
    };
    // A file or socket given as "" is a mistake, never the default path.
    auto path = [&](const char* name) -> std::optional<std::string> {
      auto v = need(name);
      if (v && v->empty()) {
        *error = std::string(name) + ": empty path";
        return std::nullopt;
      }
      return v;
    };
    auto number = [&](const char* name, double* out) {
      auto v = need(name);
      if (!v) return false;
      if (!LooksLikeNumber(*v)) {
        *error = std::string(name) + ": '" + *v + "' is not a number";
        return false;
      }
      *out = std::strtod(v->c_str(), nullptr);
      return true;
    };
    if (a == "-h" || a == "--help") {
      o.args = {"help"};
      return o;
    } else if (a == "--socket") {
      auto v = path("--socket");
      if (!v) return std::nullopt;
      o.socket = *v;
    } else if (a == "--target") {
      auto v = need("--target");
      if (!v) return std::nullopt;
      o.target = *v;
    } else if (a == "--token-file") {
      auto v = path("--token-file");
      if (!v) return std::nullopt;
      o.token_file = *v;
    } else if (a == "--tls-ca" || a == "--tls-cert" || a == "--tls-key") {
      auto v = path(a.c_str());
      if (!v) return std::nullopt;
      (a == "--tls-ca" ? o.tls_ca : a == "--tls-cert" ? o.tls_cert : o.tls_key) = *v;
    } else if (a == "--timeout") {
      if (!number("--timeout", &o.timeout_s)) return std::nullopt;
      if (!(o.timeout_s > 0 && o.timeout_s <= 86400)) {
        *error = "--timeout: seconds from more than 0 to 86400";
        return std::nullopt;
      }
    } else if (a == "--expect-revision") {
      auto v = need("--expect-revision");
      if (!v) return std::nullopt;
      // A revision is an unsigned 64-bit count: no sign, no fraction, no
      // wrap-around.
      uint64_t rev = 0;
      const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), rev);
      if (v->empty() || ec != std::errc() || end != v->data() + v->size()) {
        *error = "--expect-revision: '" + *v + "' is not a revision (0 to 18446744073709551615)";
        return std::nullopt;
      }
      o.expect_revision = rev;
    } else if (a == "--preset") {
      auto v = need("--preset");
      if (!v) return std::nullopt;
      o.preset = *v;
    } else if (a == "--channels") {
      double d = 0;
      if (!number("--channels", &d)) return std::nullopt;
      o.channels = static_cast<int>(d);
    } else if (a == "--param") {
      auto v = need("--param");
      if (!v) return std::nullopt;
      o.params.push_back(*v);
    } else if (a == "--rate") {
      if (!number("--rate", &o.rate_hz)) return std::nullopt;
    } else if (a == "--count") {
      double d = 0;
      if (!number("--count", &d)) return std::nullopt;
      o.count = static_cast<int>(d);
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--yaml") {
      o.yaml = true;
    } else if (a == "--dot") {
      o.dot = true;
    } else if (a == "--dry-run") {
      o.dry_run = true;
    } else if (a == "--stream") {
      o.stream = true;
    } else if (a == "--once") {
      o.once = true;
    } else if (a == "-p" || a == "-s") {
      auto v = need(a.c_str());
      if (!v) return std::nullopt;
      (a == "-p" ? o.public_key : o.secret_key) = *v;
      o.plugin_flags.push_back(a);
    } else if (a == "--algorithm") {
      auto v = need("--algorithm");
      if (!v) return std::nullopt;
      if (*v != "sha256" && *v != "blake2b") {
        *error = "--algorithm: '" + *v + "' is not sha256 or blake2b";
        return std::nullopt;
      }
      o.algorithm = *v;
      o.plugin_flags.push_back(a);
    } else if (a == "--trusted-comment") {
      auto v = need("--trusted-comment");
      if (!v) return std::nullopt;
      o.trusted_comment = *v;
      o.plugin_flags.push_back(a);
    } else if (a == "--write" || a == "--force" || a == "--legacy") {
      (a == "--write" ? o.write : a == "--force" ? o.force : o.legacy) = true;
      o.plugin_flags.push_back(a);
    } else if (std::string_view(argv[i]) == "--") {
      // The rest are arguments, even those that start with '-'.
      for (++i; i < argc; ++i) o.args.push_back(argv[i]);
    } else if (a.size() > 1 && a[0] == '-' && !LooksLikeNumber(a)) {
      *error = "unknown option " + a;
      return std::nullopt;
    } else {
      o.args.push_back(argv[i]);
    }
  }
  return o;
}

int ExitFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return kExitOk;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      return kExitInvalid;
    case grpc::StatusCode::NOT_FOUND:
      return kExitNotFound;
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::ALREADY_EXISTS:
      return kExitConflict;
    case grpc::StatusCode::FAILED_PRECONDITION:
      return kExitRefused;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return kExitUnavailable;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return kExitAuth;
    default:
      return kExitError;
  }
}

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "invalid argument";
    case grpc::StatusCode::NOT_FOUND:
      return "not found";
    case grpc::StatusCode::ABORTED:
      return "conflict";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "already exists";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "refused";
    case grpc::StatusCode::UNAVAILABLE:
      return "unavailable";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "timed out";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "not authenticated";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "permission denied";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "refused (limit reached)";
    default:
      return "error";
  }
}

// Why the daemon refused a call, from its trailing metadata
// (aers-error-reason): "locked-out", "unauthenticated", "permission",
// "invalid-request", "stream-limit"; "" when it did not say (a size limit
// enforced by gRPC itself, a transport error).
std::string Reason(const grpc::ClientContext& ctx) {
  const auto& md = ctx.GetServerTrailingMetadata();
  const auto it = md.find("aers-error-reason");
  return it == md.end() ? "" : std::string(it->second.data(), it->second.size());
}

// Files aersctl reads (TLS material, token files, graphs to apply) are
// regular files of bounded size: a directory, FIFO or device is refused
// naming it, never read until memory or patience runs out.
constexpr size_t kMaxCredentialBytes = size_t{1} << 20;
constexpr size_t kMaxGraphFileBytes = size_t{16} << 20;

std::string ReadFileOrEmpty(const std::string& flag, const std::string& path, std::string* error) {
  auto text = aers::plugin::ReadRegularFile(path, kMaxCredentialBytes);
  if (!text.ok()) {
    if (error->empty()) *error = absl::StrCat(flag, " ", text.status().message());
    return "";
  }
  return *std::move(text);
}

// gRPC reads "unix:PATH" as a URI: '%', '#', '?' and ',' in PATH would be
// taken as an escape, a fragment, a query or a list of addresses.
// Percent-encoded, every byte of the path reaches connect() as it is.
std::string UnixTarget(const std::string& path) {
  std::string out = "unix:";
  for (const unsigned char c : path) {
    if (std::isalnum(c) != 0 || c == '/' || c == '.' || c == '_' || c == '-' || c == '~') {
      out += static_cast<char>(c);
    } else {
      absl::StrAppend(&out, absl::StrFormat("%%%02X", c));
    }
  }
  return out;
}

// sockaddr_un::sun_path holds 108 bytes with the terminating NUL.
constexpr size_t kMaxUnixPathBytes = 107;

class Client {
 public:
  explicit Client(const Options& o) : o_(o) {
    const std::string socket =
        o.socket.empty() ? aers::control::DefaultClientSocketPath() : o.socket;
    if (o.target.empty() && socket.find(',') != std::string::npos) {
      error_ = absl::StrCat("--socket ", socket,
                            ": gRPC cannot connect to a path with a comma (it reads a list of "
                            "addresses)");
    } else if (o.target.empty() && socket.size() > kMaxUnixPathBytes) {
      error_ =
          absl::StrCat("--socket ", socket, ": ", socket.size(),
                       " bytes, longer than a Unix socket path can be (", kMaxUnixPathBytes, ")");
    }
    target_ = !o.target.empty() ? o.target : UnixTarget(socket);
    shown_target_ = !o.target.empty() ? o.target : "unix:" + socket;  // as given, for messages
    std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
    if (!o.tls_ca.empty() || !o.tls_cert.empty() || !o.tls_key.empty()) {
      grpc::SslCredentialsOptions ssl;
      if (!o.tls_ca.empty()) ssl.pem_root_certs = ReadFileOrEmpty("--tls-ca", o.tls_ca, &error_);
      if (!o.tls_cert.empty()) {
        ssl.pem_cert_chain = ReadFileOrEmpty("--tls-cert", o.tls_cert, &error_);
      }
      if (!o.tls_key.empty()) {
        ssl.pem_private_key = ReadFileOrEmpty("--tls-key", o.tls_key, &error_);
      }
      if (o.tls_cert.empty() != o.tls_key.empty()) {
        error_ = "--tls-cert and --tls-key go together";
      }
      // PEM text, checked here: gRPC would only fail to connect.
      const auto pem = [&](const char* flag, const std::string& path, const std::string& text,
                           const char* what) {
        if (error_.empty() && !path.empty() && text.find("-----BEGIN ") == std::string::npos) {
          error_ = absl::StrCat(flag, " ", path, ": no PEM ", what, " in it");
        }
      };
      pem("--tls-ca", o.tls_ca, ssl.pem_root_certs, "certificate");
      pem("--tls-cert", o.tls_cert, ssl.pem_cert_chain, "certificate");
      pem("--tls-key", o.tls_key, ssl.pem_private_key, "private key");
      creds = grpc::SslCredentials(ssl);
    }
    // Not with a setup error: the call is never made, and gRPC would log
    // its own complaint about the target first.
    if (error_.empty()) {
      channel_ = grpc::CreateChannel(target_, creds);
      stub_ = aers::v1::Control::NewStub(channel_);
    }
    if (!o.token_file.empty()) {
      std::string error;
      std::istringstream in(ReadFileOrEmpty("--token-file", o.token_file, &error));
      if (!error.empty() && error_.empty()) error_ = error;
      // The first line that is not empty or a comment; its last word is
      // the token unless the line is a daemon token-file line.
      for (std::string line; error.empty() && std::getline(in, line);) {
        std::istringstream words(line);
        std::vector<std::string> w{std::istream_iterator<std::string>(words), {}};
        if (w.empty() || w[0][0] == '#') continue;
        token_ = (w.size() >= 2 && (w[0] == "viewer" || w[0] == "operator")) ? w[1] : w[0];
        break;
      }
      if (error.empty() && token_.empty()) error_ = "no token in " + o.token_file;
    }
  }

  /// A problem with the client's own options or files ("" if none).
  const std::string& setup_error() const { return error_; }

  void Prepare(grpc::ClientContext* ctx, bool stream = false) const {
    if (!stream) {
      ctx->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(o_.timeout_s * 1000)));
    }
    if (!token_.empty()) ctx->AddMetadata("authorization", "Bearer " + token_);
  }

  int Fail(const grpc::Status& st, const grpc::ClientContext& ctx) const {
    std::string msg = st.error_message();
    const std::string reason = Reason(ctx);
    const char* what = CodeName(st.error_code());
    int code = ExitFor(st.error_code());
    if (st.error_code() == grpc::StatusCode::UNAVAILABLE && !reason.empty()) {
      what = "refused";
    } else if (st.error_code() == grpc::StatusCode::UNAVAILABLE) {
      msg = "cannot reach aersd at " + shown_target_ + " (is it running?): " + msg;
    }
    if (st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      if (reason == "locked-out") {
        what = "locked out";
      } else if (reason == "stream-limit") {
        what = "too many streams";
        code = kExitUnavailable;
      } else {
        // gRPC's own limits (message size): the request, not the caller.
        what = "request too large";
        code = kExitInvalid;
      }
    }
    std::fprintf(stderr, "aersctl: %s: %s\n", what, msg.c_str());
    return code;
  }

  aers::v1::Control::Stub& stub() { return *stub_; }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }
  const Options& options() const { return o_; }

 private:
  const Options& o_;
  std::string target_;
  std::string shown_target_;
  std::string token_;
  std::string error_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<aers::v1::Control::Stub> stub_;
};

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opts;
  opts.always_print_primitive_fields = true;
  opts.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, opts);
  return out;
}

std::string FormatValue(const aers::v1::ParamValue& v) {
  std::ostringstream s;
  switch (v.value_case()) {
    case aers::v1::ParamValue::kFlag:
      return v.flag() ? "true" : "false";
    case aers::v1::ParamValue::kChoice:
      return v.choice();
    case aers::v1::ParamValue::kList: {
      s << "[";
      for (int i = 0; i < v.list().values_size(); ++i) s << (i ? ", " : "") << v.list().values(i);
      s << "]";
      return s.str();
    }
    default:
      s << v.number();
      return s.str();
  }
}

std::optional<aers::v1::ParamValue> ParseValue(const std::string& text, std::string* error) {
  aers::v1::ParamValue v;
  if (text == "true" || text == "false") {
    v.set_flag(text == "true");
  } else if (LooksLikeNumber(text)) {
    v.set_number(std::strtod(text.c_str(), nullptr));
  } else if (!text.empty() && text.front() == '[' && text.back() == ']') {
    auto* list = v.mutable_list();
    std::stringstream ss(text.substr(1, text.size() - 2));
    std::string item;
    while (std::getline(ss, item, ',')) {
      const auto b = item.find_first_not_of(" \t");
      const auto e = item.find_last_not_of(" \t");
      if (b == std::string::npos) continue;
      item = item.substr(b, e - b + 1);
      if (!LooksLikeNumber(item)) {
        *error = "list element '" + item + "' is not a number";
        return std::nullopt;
      }
      list->add_values(std::strtod(item.c_str(), nullptr));
    }
  } else if (text.empty()) {
    *error = "empty value";
    return std::nullopt;
  } else {
    v.set_choice(text);
  }
  return v;
}

int PrintEdit(const Options& o, const aers::v1::EditResponse& r) {
  if (o.json) {
    std::cout << ToJson(r) << "\n";
    return kExitOk;
  }
  for (const auto& c : r.changes()) std::cout << c << "\n";
  if (r.applied()) {
    std::cout << "revision " << r.revision() << "\n";
  } else {
    std::cout << (r.changes().empty() ? "no changes" : "dry run: nothing applied") << " (revision "
              << r.revision() << ")\n";
  }
  return kExitOk;
}

template <typename Req>
void SetExpected(const Options& o, Req* req) {
  if (o.expect_revision) req->set_expected_revision(*o.expect_revision);
}

int Usage(const std::string& why) {
  std::fprintf(stderr, "aersctl: %s\n(see aersctl --help)\n", why.c_str());
  return kExitUsage;
}

// Signal points with non-finite, clipped or state-reset counts, one line each
// (nothing when every count is zero).
void PrintSignals(std::ostream& out,
                  const google::protobuf::RepeatedPtrField<aers::v1::SignalCounts>& signals) {
  bool header = false;
  for (const auto& sig : signals) {
    if (sig.nonfinite() == 0 && sig.clipped() == 0 && sig.state_resets() == 0) continue;
    if (!header) {
      out << "SIGNAL               WHERE      NON-FINITE      CLIPPED  STATE RESETS\n";
      header = true;
    }
    char line[200];
    std::snprintf(line, sizeof line, "%-20s %-7s %13llu %12llu %13llu\n", sig.name().c_str(),
                  sig.where().c_str(), static_cast<unsigned long long>(sig.nonfinite()),
                  static_cast<unsigned long long>(sig.clipped()),
                  static_cast<unsigned long long>(sig.state_resets()));
    out << line;
  }
}

int CmdStatus(Client& c) {
  grpc::ClientContext ctx;
  c.Prepare(&ctx);
  aers::v1::Status s;
  auto st = c.stub().GetStatus(&ctx, aers::v1::GetStatusRequest(), &s);
  if (!st.ok()) return c.Fail(st, ctx);
  if (c.options().json) {
    std::cout << ToJson(s) << "\n";
    return kExitOk;
  }
  std::printf("aersd %s  backend %s (%s)\n", s.version().c_str(), s.backend().c_str(),
              s.audio_running() ? "running" : "not running");
  std::printf("rate %.0f Hz  period %u frames  DSP load %.1f%%  xruns %llu\n", s.sample_rate_hz(),
              s.period_frames(), s.dsp_load() * 100.0, static_cast<unsigned long long>(s.xruns()));
  std::printf(
      "DSP time per period: mean %.1f us  p99 %.1f us  max %.1f us  over the period %llu of %llu\n",
      s.dsp_time().mean_us(), s.dsp_time().p99_us(), s.dsp_time().max_us(),
      static_cast<unsigned long long>(s.dsp_time().over_budget()),
      static_cast<unsigned long long>(s.dsp_time().periods()));
  std::printf("graph revision %llu, %u nodes  uptime %.0f s  state %s\n",
              static_cast<unsigned long long>(s.revision()), s.nodes(), s.uptime_s(),
              s.state_file().c_str());
  std::printf("periods %llu  silent %llu  deferred plan swaps %llu\n",
              static_cast<unsigned long long>(s.cycles()),
              static_cast<unsigned long long>(s.silent_cycles()),
              static_cast<unsigned long long>(s.deferred_swaps()));
  if (!s.backend_detail().empty()) std::printf("backend: %s\n", s.backend_detail().c_str());
  if (s.has_alsa()) {
    const auto& a = s.alsa();
    std::printf(
        "alsa: playback %s  capture %s  format %s  %u periods (%u frames)  delay %lld frames"
        "  clipped %llu\n",
        a.playback().empty() ? "-" : a.playback().c_str(),
        a.capture().empty() ? "-" : a.capture().c_str(), a.format().c_str(), a.periods(),
        a.buffer_frames(), static_cast<long long>(a.delay_frames()),
        static_cast<unsigned long long>(a.clipped_samples()));
  }
  if (s.has_wake_jitter()) {
    std::printf("period start jitter: mean %.1f us  p99 %.1f us  max %.1f us\n",
                s.wake_jitter().mean_us(), s.wake_jitter().p99_us(), s.wake_jitter().max_us());
  }
  if (s.backend_restarts() > 0) {
    std::printf("backend restarts %llu\n", static_cast<unsigned long long>(s.backend_restarts()));
  }
  if (s.latency_size() > 0) {
    std::printf("latency (frames):");
    for (const auto& l : s.latency()) std::printf("  %s %u", l.output().c_str(), l.frames());
    std::printf("\n");
  }
  if (s.state_diverged()) {
    std::printf("WARNING: the state file no longer matches the running graph (see the log)\n");
  }
  PrintSignals(std::cout, s.signals());
  return kExitOk;
}

int CmdGraph(Client& c) {
  grpc::ClientContext ctx;
  c.Prepare(&ctx);
  aers::v1::GetGraphResponse g;
  auto st = c.stub().GetGraph(&ctx, aers::v1::GetGraphRequest(), &g);
  if (!st.ok()) return c.Fail(st, ctx);
  const Options& o = c.options();
  if (o.json) {
    std::cout << ToJson(g) << "\n";
  } else if (o.yaml) {
    std::cout << g.yaml();
  } else if (o.dot) {
    std::cout << "digraph aers {\n  rankdir=LR;\n";
    for (const auto& p : g.graph().inputs()) {
      std::cout << "  \"" << p.name() << "\" [shape=invhouse, label=\"" << p.name() << "\\n"
                << p.channels() << " ch in\"];\n";
    }
    for (const auto& n : g.graph().nodes()) {
      std::cout << "  \"" << n.name() << "\" [shape=box, label=\"" << n.name() << "\\n"
                << n.kind() << "\"];\n";
    }
    for (const auto& p : g.graph().outputs()) {
      std::cout << "  \"" << p.name() << "\" [shape=house, label=\"" << p.name() << "\\n"
                << p.channels() << " ch out\"];\n";
    }
    for (const auto& r : g.graph().routes()) {
      auto node = [](const std::string& e) { return e.substr(0, e.find('.')); };
      auto port = [](const std::string& e) {
        return e.find('.') == std::string::npos ? std::string() : e.substr(e.find('.') + 1);
      };
      std::cout << "  \"" << node(r.from()) << "\" -> \"" << node(r.to()) << "\"";
      if (!port(r.from()).empty() || !port(r.to()).empty()) {
        std::cout << " [label=\"" << port(r.from()) << (port(r.to()).empty() ? "" : "→")
                  << port(r.to()) << "\"]";
      }
      std::cout << ";\n";
    }
    std::cout << "}\n";
  } else {
    std::cout << "revision " << g.revision() << "\n";
    for (const auto& p : g.graph().inputs()) {
      std::cout << "input  " << p.name() << " (" << p.channels() << " ch)\n";
    }
    for (const auto& p : g.graph().outputs()) {
      std::cout << "output " << p.name() << " (" << p.channels() << " ch)\n";
    }
    for (const auto& n : g.graph().nodes()) {
      std::cout << "node   " << n.name() << " (" << n.kind() << ", " << n.channels() << " ch";
      if (!n.preset().empty()) std::cout << ", preset " << n.preset();
      std::cout << ")";
      std::map<std::string, std::string> sorted;
      for (const auto& [k, v] : n.params()) sorted[k] = FormatValue(v);
      for (const auto& [k, v] : sorted) std::cout << " " << k << "=" << v;
      std::cout << "\n";
    }
    for (const auto& r : g.graph().routes()) {
      std::cout << "route  " << r.from() << " -> " << r.to() << "\n";
    }
  }
  return kExitOk;
}

int CmdKinds(Client& c) {
  grpc::ClientContext ctx;
  c.Prepare(&ctx);
  aers::v1::ListKindsResponse r;
  auto st = c.stub().ListKinds(&ctx, aers::v1::ListKindsRequest(), &r);
  if (!st.ok()) return c.Fail(st, ctx);
  if (c.options().json) {
    std::cout << ToJson(r) << "\n";
    return kExitOk;
  }
  for (const auto& k : r.kinds()) {
    std::cout << k.name() << ": " << k.description() << "\n";
    for (const auto& p : k.params()) {
      std::cout << "  " << p.name() << " (" << p.type();
      if (p.type() == "enum") {
        std::cout << ":";
        for (const auto& ch : p.choices()) std::cout << " " << ch;
      } else if (p.type() != "bool") {
        std::cout << " " << p.min() << ".." << p.max();
        if (!p.unit().empty()) std::cout << " " << p.unit();
      }
      std::cout << ", default " << FormatValue(p.default_value()) << (p.live() ? "" : ", rebuilds")
                << ") " << p.help() << "\n";
    }
    for (const auto& p : k.presets()) {
      std::cout << "  preset " << p.uri();
      if (!p.label().empty()) std::cout << " (" << p.label() << ")";
      std::cout << "\n";
    }
  }
  return kExitOk;
}

int CmdAdd(Client& c) {
  const Options& o = c.options();
  if (o.args.size() != 3)
    return Usage("add NAME KIND [--channels N] [--preset URI] [--param NAME=VALUE]...");
  aers::v1::AddNodeRequest req;
  req.mutable_node()->set_name(o.args[1]);
  req.mutable_node()->set_kind(o.args[2]);
  req.mutable_node()->set_channels(o.channels);
  req.mutable_node()->set_preset(o.preset);
  for (const auto& p : o.params) {
    const auto eq = p.find('=');
    if (eq == std::string::npos) return Usage("--param " + p + ": expected NAME=VALUE");
    std::string err;
    auto v = ParseValue(p.substr(eq + 1), &err);
    if (!v) return Usage("--param " + p + ": " + err);
    (*req.mutable_node()->mutable_params())[p.substr(0, eq)] = *v;
  }
  SetExpected(o, &req);
  grpc::ClientContext ctx;
  c.Prepare(&ctx);
  aers::v1::EditResponse r;
  auto st = c.stub().AddNode(&ctx, req, &r);
  return st.ok() ? PrintEdit(o, r) : c.Fail(st, ctx);
}

int CmdRm(Client& c) {
  const Options& o = c.options();
  if (o.args.size() != 2) return Usage("rm NAME");
  aers::v1::RemoveNodeRequest req;
  req.set_name(o.args[1]);
  SetExpected(o, &req);
  grpc::ClientContext ctx;
  c.Prepare(&ctx);
  aers::v1::EditResponse r;
  auto st = c.stub().RemoveNode(&ctx, req, &r);
  return st.ok() ? PrintEdit(o, r) : c.Fail(st, ctx);
}

int CmdConnect(Client& c, bool connect) {
  const Options& o = c.options();
  if (o.args.size() != 3)
    return Usage(std::string(connect ? "connect" : "disconnect") + " FROM TO");
  grpc::ClientContext ctx;
  c.Prepare(&ctx);
  aers::v1::EditResponse r;
  grpc::Status st;
  if (connect) {
    aers::v1::ConnectRequest req;
    req.set_from(o.args[1]);
    req.set_to(o.args[2]);
    SetExpected(o, &req);
    st = c.stub().Connect(&ctx, req, &r);
  } else {
    aers::v1::DisconnectRequest req;
    req.set_from(o.args[1]);
    req.set_to(o.args[2]);
    SetExpected(o, &req);
    st = c.stub().Disconnect(&ctx, req, &r);
  }
  return st.ok() ? PrintEdit(o, r) : c.Fail(st, ctx);
}

// set --stream [NODE [PARAM]]: one value per line of stdin ("NODE PARAM
// VALUE", the fields given as arguments left out), sent as they are read
// over one StreamParameters call. Blank lines and '#' comments are skipped.
int CmdSetStream(Client& c) {
  const Options& o = c.options();
  if (o.args.size() > 3) return Usage("set --stream [NODE [PARAM]] < LINES");
  if (o.expect_revision) {
    return Usage(
        "set --stream: --expect-revision does not apply to a stream (each value moves "
        "the revision)");
  }
  const std::vector<std::string> fixed(o.args.begin() + 1, o.args.end());
  grpc::ClientContext ctx;
  c.Prepare(&ctx, /*stream=*/true);
  aers::v1::StreamParametersResponse r;
  auto writer = c.stub().StreamParameters(&ctx, &r);
  std::string line;
  int line_no = 0;
  int bad = 0;
  std::string bad_text;
  std::vector<int> line_of_value;  // stdin line of each value sent
  while (std::getline(std::cin, line)) {
    ++line_no;
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    // protobuf refuses other strings: refused here, naming the line.
    if (!aers::control::IsValidUtf8(line)) {
      bad = line_no;
      bad_text = "not valid UTF-8";
      break;
    }
    // The fields not given as arguments, then the value (the rest of the line).
    std::vector<std::string> f = fixed;
    size_t pos = first;
    while (f.size() < 2) {
      const auto end = line.find_first_of(" \t", pos);
      if (end == std::string::npos) break;
      f.push_back(line.substr(pos, end - pos));
      pos = line.find_first_not_of(" \t", end);
      if (pos == std::string::npos) break;
    }
    std::string value = f.size() == 2 && pos != std::string::npos ? line.substr(pos) : "";
    while (!value.empty() && (value.back() == '\r' || value.back() == ' ')) value.pop_back();
    std::string err;
    auto v = value.empty() ? std::nullopt : ParseValue(value, &err);
    if (f.size() != 2 || !v) {
      bad = line_no;
      bad_text = f.size() != 2 || value.empty()
                     ? "expected " + std::string(fixed.empty()       ? "NODE PARAM VALUE"
                                                 : fixed.size() == 1 ? "PARAM VALUE"
                                                                     : "VALUE")
                     : err;
      break;
    }
    aers::v1::StreamParametersRequest req;
    req.set_node(f[0]);
    req.set_param(f[1]);
    *req.mutable_value() = *v;
    line_of_value.push_back(line_no);
    if (!writer->Write(req)) break;  // the daemon ended the stream: its status says why
  }
  writer->WritesDone();
  const grpc::Status st = writer->Finish();
  if (bad != 0) {
    std::fprintf(stderr,
                 "aersctl: set --stream: stdin:%d: %s (the values before it were applied)\n", bad,
                 bad_text.c_str());
    return kExitInvalid;
  }
  if (!st.ok()) {
    // values[N] in the daemon's words is stdin line L in the user's.
    std::string msg = st.error_message();
    if (const auto at = msg.find("values["); at != std::string::npos) {
      const size_t n = std::strtoull(msg.c_str() + at + 7, nullptr, 10);
      if (n < line_of_value.size()) {
        msg = "stdin:" + std::to_string(line_of_value[n]) + ": " + msg;
      }
    }
    return c.Fail(grpc::Status(st.error_code(), msg), ctx);
  }
  if (r.values() != line_of_value.size()) {
    // A value the daemon could not read ends its stream early.
    std::fprintf(stderr,
                 "aersctl: set --stream: the daemon applied %llu of the %zu values sent (it "
                 "stopped reading at stdin:%d)\n",
                 static_cast<unsigned long long>(r.values()), line_of_value.size(),
                 r.values() < line_of_value.size() ? line_of_value[r.values()] : line_no);
    return kExitInvalid;
  }
  if (o.json) {
    std::printf("{\"values\": %llu, \"revision\": %llu}\n",
                static_cast<unsigned long long>(r.values()),
                static_cast<unsigned long long>(r.revision()));
  } else {
    std::printf("streamed %llu values; revision %llu\n",
                static_cast<unsigned long long>(r.values()),
                static_cast<unsigned long long>(r.revision()));
  }
  return kExitOk;
}

int CmdSet(Client& c) {
  const Options& o = c.options();
  if (o.stream) return CmdSetStream(c);
  if (o.args.size() != 4) return Usage("set NODE PARAM VALUE");
  std::string err;
  auto v = ParseValue(o.args[3], &err);
  if (!v) return Usage("set: " + err);
  aers::v1::SetParameterRequest req;
  req.set_node(o.args[1]);
  req.set_param(o.args[2]);
  *req.mutable_value() = *v;
  SetExpected(o, &req);
  grpc::ClientContext ctx;
  c.Prepare(&ctx);
  aers::v1::EditResponse r;
  auto st = c.stub().SetParameter(&ctx, req, &r);
  return st.ok() ? PrintEdit(o, r) : c.Fail(st, ctx);
}

int CmdApply(Client& c) {
  const Options& o = c.options();
  if (o.args.size() != 2) return Usage("apply FILE [--dry-run]");
  auto text = aers::plugin::ReadRegularFile(o.args[1], kMaxGraphFileBytes);
  if (!text.ok()) {
    std::fprintf(stderr, "aersctl: %s\n", std::string(text.status().message()).c_str());
    return kExitInvalid;
  }
  aers::v1::ApplyGraphRequest req;
  req.set_yaml(*std::move(text));
  req.set_source_name(o.args[1]);
  req.set_dry_run(o.dry_run);
  SetExpected(o, &req);
  grpc::ClientContext ctx;
  c.Prepare(&ctx);
  aers::v1::EditResponse r;
  auto st = c.stub().ApplyGraph(&ctx, req, &r);
  return st.ok() ? PrintEdit(o, r) : c.Fail(st, ctx);
}

int CmdReset(Client& c) {
  const Options& o = c.options();
  aers::v1::ResetToConfigRequest req;
  SetExpected(o, &req);
  grpc::ClientContext ctx;
  c.Prepare(&ctx);
  aers::v1::EditResponse r;
  auto st = c.stub().ResetToConfig(&ctx, req, &r);
  return st.ok() ? PrintEdit(o, r) : c.Fail(st, ctx);
}

int CmdWatch(Client& c) {
  const Options& o = c.options();
  grpc::ClientContext ctx;
  c.Prepare(&ctx, /*stream=*/true);
  auto reader = c.stub().WatchEvents(&ctx, aers::v1::WatchEventsRequest());
  aers::v1::Event e;
  int seen = 0;
  while ((o.count < 0 || seen < o.count) && reader->Read(&e)) {
    ++seen;
    if (o.json) {
      std::cout << ToJson(e) << std::endl;
      continue;
    }
    if (e.dropped_before()) std::cout << "(" << e.dropped_before() << " events dropped)\n";
    std::cout << "#" << e.seq() << " ";
    switch (e.kind_case()) {
      case aers::v1::Event::kGraphChanged:
        std::cout << "graph changed: revision " << e.graph_changed().revision() << " ("
                  << e.graph_changed().origin() << ")";
        for (const auto& ch : e.graph_changed().changes()) std::cout << "\n    " << ch;
        break;
      case aers::v1::Event::kXrun:
        std::cout << "xrun (total " << e.xrun().total() << ")";
        break;
      case aers::v1::Event::kBackendLost:
        std::cout << "backend lost: " << e.backend_lost().reason();
        break;
      case aers::v1::Event::kBackendRestored:
        std::cout << "backend restored: " << e.backend_restored().backend();
        break;
      case aers::v1::Event::kConfigReloaded:
        std::cout << "config reloaded: "
                  << (e.config_reloaded().ok() ? "ok" : "rejected: " + e.config_reloaded().error());
        break;
      case aers::v1::Event::kStateDiverged:
        std::cout << "state file diverged (running revision "
                  << e.state_diverged().running_revision() << "): " << e.state_diverged().error();
        break;
      default:
        std::cout << "event";
    }
    std::cout << std::endl;
  }
  if (o.count >= 0 && seen >= o.count) {
    ctx.TryCancel();
    return kExitOk;
  }
  auto st = reader->Finish();
  return st.ok() ? kExitOk : c.Fail(st, ctx);
}

std::string Bar(double db, int width) {
  const double frac = std::clamp((db + 60.0) / 60.0, 0.0, 1.0);
  const int n = static_cast<int>(std::lround(frac * width));
  return std::string(static_cast<size_t>(n), '#') +
         std::string(static_cast<size_t>(width - n), '.');
}

// A level in dB, "-inf" at or below -floor (silence, or below the gate).
std::string Level(double db, double floor) {
  if (!std::isfinite(db) || db <= -floor) return "-inf";
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", db);
  return b;
}

int CmdLoudnessReset(Client& c) {
  const Options& o = c.options();
  aers::v1::ResetLoudnessRequest req;
  for (size_t i = 1; i < o.args.size(); ++i) req.add_nodes(o.args[i]);
  grpc::ClientContext ctx;
  c.Prepare(&ctx);
  aers::v1::ResetLoudnessResponse r;
  auto st = c.stub().ResetLoudness(&ctx, req, &r);
  if (!st.ok()) return c.Fail(st, ctx);
  if (o.json) {
    std::cout << ToJson(r) << "\n";
  } else {
    for (const auto& n : r.nodes()) std::cout << "loudness reset: " << n << "\n";
  }
  return kExitOk;
}

int CmdTop(Client& c) {
  const Options& o = c.options();
  grpc::ClientContext ctx;
  c.Prepare(&ctx, /*stream=*/true);
  aers::v1::StreamMetersRequest req;
  req.set_rate_hz(o.rate_hz);
  for (size_t i = 1; i < o.args.size(); ++i) req.add_nodes(o.args[i]);
  auto reader = c.stub().StreamMeters(&ctx, req);
  aers::v1::MeterFrame f;
  const bool tty = ::isatty(STDOUT_FILENO) && !o.once && !o.json;
  while (reader->Read(&f)) {
    if (o.json) {
      std::cout << ToJson(f) << std::endl;
    } else {
      std::ostringstream s;
      if (tty) s << "\x1b[H\x1b[2J";
      char head[160];
      std::snprintf(head, sizeof head, "aersd  DSP load %5.1f%%  xruns %llu\n", f.dsp_load() * 100,
                    static_cast<unsigned long long>(f.xruns()));
      s << head
        << "NODE                 CH   PEAK dBFS   RMS dBFS   TP dBTP  LEVEL                        "
           "   "
           "NON-FINITE  CLIPPED\n";
      for (const auto& m : f.meters()) {
        for (int ch = 0; ch < m.peak_size(); ++ch) {
          const double pk = 20 * std::log10(std::max(1e-9, static_cast<double>(m.peak(ch))));
          const double rms = 20 * std::log10(std::max(1e-9, static_cast<double>(m.rms(ch))));
          const double tp = m.loudness() && ch < m.true_peak_dbtp_size()
                                ? static_cast<double>(m.true_peak_dbtp(ch))
                                : -HUGE_VAL;
          char line[260];
          std::snprintf(line, sizeof line, "%-20s %3d %10.1f %10.1f %9s  %s %11s %8s\n",
                        ch == 0 ? m.node().c_str() : "", ch + 1, std::max(pk, -120.0),
                        std::max(rms, -120.0), m.loudness() ? Level(tp, 120.0).c_str() : "-",
                        Bar(pk, 30).c_str(), ch == 0 ? std::to_string(m.nonfinite()).c_str() : "",
                        ch == 0 ? std::to_string(m.clipped()).c_str() : "");
          s << line;
        }
        // EBU R128, all channels together (meters with loudness: true).
        if (!m.loudness()) continue;
        char r128[200];
        std::snprintf(r128, sizeof r128, "%-20s R128  M %s  S %s  I %s LUFS  LRA %.1f LU\n", "",
                      Level(static_cast<double>(m.momentary_lufs()), 70.0).c_str(),
                      Level(static_cast<double>(m.short_term_lufs()), 70.0).c_str(),
                      Level(static_cast<double>(m.integrated_lufs()), 70.0).c_str(),
                      std::isfinite(m.loudness_range_lu())
                          ? static_cast<double>(m.loudness_range_lu())
                          : 0.0);
        s << r128;
      }
      PrintSignals(s, f.signals());
      std::cout << s.str() << std::flush;
    }
    if (o.once) {
      ctx.TryCancel();
      return kExitOk;
    }
  }
  auto st = reader->Finish();
  return st.ok() ? kExitOk : c.Fail(st, ctx);
}

int CmdHealth(Client& c) {
  auto stub = grpc::health::v1::Health::NewStub(c.channel());
  grpc::ClientContext ctx;
  c.Prepare(&ctx);
  grpc::health::v1::HealthCheckResponse r;
  auto st = stub->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &r);
  if (!st.ok()) return c.Fail(st, ctx);
  const std::string name = grpc::health::v1::HealthCheckResponse::ServingStatus_Name(r.status());
  if (c.options().json) {
    std::cout << ToJson(r) << "\n";  // {"status":"SERVING"}
  } else {
    std::cout << name << "\n";
  }
  return r.status() == grpc::health::v1::HealthCheckResponse::SERVING ? kExitOk : kExitUnavailable;
}

// --- aersctl plugin: offline wrappers over daemon/plugin/tool.h -------------

int PluginExitFor(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return kExitInvalid;
    case absl::StatusCode::kNotFound:
      return kExitNotFound;
    case absl::StatusCode::kAlreadyExists:
      return kExitConflict;
    default:
      return kExitError;
  }
}

const char* PluginCodeName(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return "invalid";
    case absl::StatusCode::kNotFound:
      return "not found";
    case absl::StatusCode::kAlreadyExists:
      return "already exists";
    case absl::StatusCode::kPermissionDenied:
      return "refused";
    default:
      return "error";
  }
}

int PluginFail(const std::string& what, const absl::Status& s) {
  std::string message(s.message());
  // tool.h speaks aers-plugin's options.
  const std::string dash_f = "(use -f to overwrite)";
  if (const auto at = message.find(dash_f); at != std::string::npos) {
    message.replace(at, dash_f.size(), "(use --force to overwrite)");
  }
  std::fprintf(stderr, "aersctl: plugin %s: %s: %s\n", what.c_str(), PluginCodeName(s),
               message.c_str());
  return PluginExitFor(s);
}

// Usage error unless every plugin option given is one `sub` takes.
std::optional<int> CheckPluginFlags(const Options& o, const std::string& sub,
                                    const std::vector<std::string>& allowed,
                                    const std::string& usage) {
  for (const auto& f : o.plugin_flags) {
    if (std::find(allowed.begin(), allowed.end(), f) == allowed.end()) {
      return Usage("plugin " + sub + " takes no " + f + "; usage: aersctl " + usage);
    }
  }
  if (o.json) return Usage("plugin commands have no --json output");
  return std::nullopt;
}

int CmdPlugin(const Options& o) {
  namespace tool = aers::plugin::tool;
  if (o.args.size() < 2) return Usage("plugin needs a command: hash, keygen, sign or verify");
  // The gate logs each refusal through spdlog (for the daemon's journal);
  // here the refusal is this command's own error message, printed once.
  spdlog::set_level(spdlog::level::off);
  const std::string& sub = o.args[1];
  const std::vector<std::string> rest(o.args.begin() + 2, o.args.end());

  if (sub == "hash") {
    const std::string usage = "plugin hash DIR [--write] [--algorithm sha256|blake2b]";
    if (auto bad = CheckPluginFlags(o, sub, {"--write", "--algorithm"}, usage)) return *bad;
    if (rest.size() != 1) return Usage(usage);
    std::optional<aers::plugin::HashAlgorithm> algorithm;
    if (o.algorithm == "sha256") algorithm = aers::plugin::HashAlgorithm::kSha256;
    if (o.algorithm == "blake2b") algorithm = aers::plugin::HashAlgorithm::kBlake2b;
    auto r = tool::Hash(rest[0], algorithm, o.write);
    if (!r.ok()) return PluginFail("hash", r.status());
    const std::string name(aers::plugin::HashAlgorithmName(r->algorithm));
    std::printf("%s:%s  %s\n", name.c_str(), r->hex.c_str(), r->module_path.c_str());
    if (!r->matches) {
      std::fprintf(stderr,
                   "aersctl: plugin hash: mismatch: %s/manifest.yaml says %s (run with --write "
                   "to update it%s)\n",
                   rest[0].c_str(), r->manifest_hex.c_str(),
                   algorithm ? ", which also sets hash.algorithm" : "");
      return kExitError;
    }
    return kExitOk;
  }
  if (sub == "keygen") {
    const std::string usage = "plugin keygen -p PUB -s SEC [--force]";
    if (auto bad = CheckPluginFlags(o, sub, {"-p", "-s", "--force"}, usage)) return *bad;
    if (!rest.empty() || o.public_key.empty() || o.secret_key.empty()) return Usage(usage);
    auto id = tool::KeyGen(o.public_key, o.secret_key, o.force);
    if (!id.ok()) return PluginFail("keygen", id.status());
    std::printf("key %s: public key %s, secret key %s (unencrypted: keep it safe)\n", id->c_str(),
                o.public_key.c_str(), o.secret_key.c_str());
    return kExitOk;
  }
  if (sub == "sign") {
    const std::string usage = "plugin sign DIR -s SEC [--trusted-comment TEXT] [--legacy]";
    if (auto bad = CheckPluginFlags(o, sub, {"-s", "--trusted-comment", "--legacy"}, usage)) {
      return *bad;
    }
    if (rest.size() != 1 || o.secret_key.empty()) return Usage(usage);
    auto path = tool::Sign(rest[0], o.secret_key, o.trusted_comment.value_or(""), o.legacy);
    if (!path.ok()) return PluginFail("sign", path.status());
    std::printf("wrote %s\n", path->c_str());
    return kExitOk;
  }
  if (sub == "verify") {
    const std::string usage = "plugin verify DIR -p PUB";
    if (auto bad = CheckPluginFlags(o, sub, {"-p"}, usage)) return *bad;
    if (rest.size() != 1 || o.public_key.empty()) return Usage(usage);
    auto report = tool::Verify(rest[0], o.public_key);
    if (!report.ok()) return PluginFail("verify", report.status());
    std::fputs(report->c_str(), stdout);
    return kExitOk;
  }
  return Usage("unknown plugin command '" + sub + "'; expected hash, keygen, sign or verify");
}

int CmdPlugins(Client& c) {
  grpc::ClientContext ctx;
  c.Prepare(&ctx);
  aers::v1::ListPluginsResponse r;
  auto st = c.stub().ListPlugins(&ctx, aers::v1::ListPluginsRequest(), &r);
  if (!st.ok()) return c.Fail(st, ctx);
  if (c.options().json) {
    std::cout << ToJson(r) << "\n";
    return kExitOk;
  }
  if (r.plugins().empty()) std::cout << "no plugins loaded\n";
  for (const auto& p : r.plugins()) {
    std::cout << p.name() << " " << p.version() << " (" << p.format() << ", serial " << p.serial()
              << ")\n  " << p.hash_algorithm() << " " << p.hash() << "\n  signer "
              << (p.signer_key_id().empty() ? "(unsigned)" : p.signer_key_id()) << "\n  module "
              << p.module_path() << "\n  kinds";
    for (const auto& k : p.kinds()) std::cout << " " << k;
    std::cout << "\n";
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  // A write past a file size limit fails with EFBIG and is reported (keys,
  // manifests) instead of killing the process half-way.
  ::signal(SIGXFSZ, SIG_IGN);
  std::string error;
  auto opts = ParseArgs(argc, argv, &error);
  if (!opts) return Usage(error);
  if (opts->args.empty()) {
    std::fputs(kUsage, stderr);
    return kExitUsage;
  }
  const std::string cmd = opts->args[0];
  if (cmd == "help") {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  if (cmd == "plugin") return CmdPlugin(*opts);
  if (!opts->plugin_flags.empty()) {
    return Usage(opts->plugin_flags.front() + " is only for 'aersctl plugin'");
  }
  Client client(*opts);
  if (!client.setup_error().empty()) {
    std::fprintf(stderr, "aersctl: %s\n", client.setup_error().c_str());
    return kExitUsage;
  }
  if (cmd == "status") return CmdStatus(client);
  if (cmd == "graph") return CmdGraph(client);
  if (cmd == "kinds") return CmdKinds(client);
  if (cmd == "add") return CmdAdd(client);
  if (cmd == "rm") return CmdRm(client);
  if (cmd == "connect") return CmdConnect(client, true);
  if (cmd == "disconnect") return CmdConnect(client, false);
  if (cmd == "set") return CmdSet(client);
  if (cmd == "apply") return CmdApply(client);
  if (cmd == "reset") return CmdReset(client);
  if (cmd == "watch") return CmdWatch(client);
  if (cmd == "top") return CmdTop(client);
  if (cmd == "loudness-reset") return CmdLoudnessReset(client);
  if (cmd == "health") return CmdHealth(client);
  if (cmd == "plugins") return CmdPlugins(client);
  return Usage("unknown command '" + cmd + "'");
}
