// Whole config files: the root of a document, its sections read by
// settings.cc and graph_yaml.cc, then validated as a whole. yaml-cpp's
// exceptions are caught here (and in graph_yaml.cc's callers of this) and
// turned into absl::Status.
//
// The rest of this layer: yaml_read.{h,cc} (one document, typed values with
// positions), diagnostics.{h,cc} (problems with positions, the error text),
// settings.{h,cc} (engine/backend/plugins), graph_parse.h + graph_yaml.cc
// (the graph sections; graph documents), emit.cc (YAML out).
//
// Thread: non-real-time.
#include "config/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <iterator>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "config/diagnostics.h"
#include "config/graph_parse.h"
#include "config/settings.h"
#include "config/yaml_read.h"
#include "model/strings.h"
#include "model/validate.h"

namespace aers::config {

std::optional<BackendType> ParseBackendType(std::string_view name) {
  for (size_t i = 0; i < kBackendTypeNames.size(); ++i) {
    if (kBackendTypeNames[i] == name) return static_cast<BackendType>(i);
  }
  return std::nullopt;
}

std::optional<AlsaFormat> ParseAlsaFormat(std::string_view name) {
  for (size_t i = 0; i < kAlsaFormatNames.size(); ++i) {
    if (kAlsaFormatNames[i] == name) return static_cast<AlsaFormat>(i);
  }
  return std::nullopt;
}

std::string BackendTypeList() {
  std::string out;
  for (const std::string_view n : kBackendTypeNames) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}
namespace {

using internal::GraphReader;
using internal::Located;
using internal::Reader;
using model::IssueCode;
using strutil::Cat;

// The whole document: its root map and every section.
void ParseRoot(Reader& r, GraphReader& g, const YAML::Node& root, Config& out) {
  const Mark start{1, 1};
  if (root.IsNull()) {
    r.Error(IssueCode::kWrongType, start, "",
            "the config is empty; it is a map that starts with 'version: 1' (see docs/config.md)");
    return;
  }
  const auto fields = r.Map(
      root, "", "the config",
      {"version", "engine", "backend", "plugins", "inputs", "outputs", "nodes", "routes"}, start);
  if (!fields) return;
  const Mark root_mark = r.MarkOf(root, start);
  r.Require(*fields, {"version"}, "", "the config", root_mark, "'version: 1' as the first line");
  for (const Reader::Field& f : *fields) {
    const std::string path = f.key;
    if (f.key == "version") {
      if (auto v = r.Integer(f.value, path, "version", f.key_mark)) out.graph.version = *v;
    } else if (f.key == "engine") {
      internal::ParseEngine(r, f.value, path, f.key_mark, out.engine);
    } else if (f.key == "backend") {
      internal::ParseBackend(r, f.value, path, f.key_mark, out.backend);
    } else if (f.key == "plugins") {
      internal::ParsePlugins(r, f.value, path, f.key_mark, out.plugins);
    } else if (f.key == "inputs") {
      g.ParsePorts(f.value, path, f.key_mark, true, out.graph.inputs);
    } else if (f.key == "outputs") {
      g.ParsePorts(f.value, path, f.key_mark, false, out.graph.outputs);
    } else if (f.key == "nodes") {
      g.ParseNodes(f.value, path, f.key_mark, out.graph.nodes);
    } else if (f.key == "routes") {
      g.ParseRoutes(f.value, path, f.key_mark, out.graph.routes);
    }
  }
}

// Only the `plugins:` section of a whole file (ParsePluginSettings).
void ParsePluginsOnly(Reader& r, const YAML::Node& root, PluginSettings& out) {
  // Everything outside `plugins:` is ParseConfig's business; a file that is
  // not a map has no plugins section.
  if (!root.IsMap()) return;
  const Mark start{1, 1};
  const Mark root_mark = r.MarkOf(root, start);
  for (const auto& kv : root) {
    if (!kv.first.IsScalar() || kv.first.Scalar() != "plugins") continue;
    internal::ParsePlugins(r, kv.second, "plugins", r.MarkOf(kv.first, root_mark), out);
    return;  // a repeated key is reported by ParseConfig
  }
}

// The reader's problems plus `issues` (those not following from a reported
// structural problem), as INVALID_ARGUMENT; OK if there are none.
absl::Status Report(Reader& r, const std::vector<model::Issue>& issues, const SourceMap& where,
                    std::string_view filename, std::vector<model::Issue>* out) {
  std::vector<Located> problems = std::move(r.problems());
  for (const model::Issue& issue : issues) {
    if (!r.Tainted(issue.path)) problems.push_back(internal::Locate(issue, where));
  }
  if (problems.empty()) return absl::OkStatus();
  internal::SortByPosition(problems);
  if (out != nullptr) {
    std::vector<model::Issue> found = internal::ToIssues(problems);
    out->insert(out->end(), std::make_move_iterator(found.begin()),
                std::make_move_iterator(found.end()));
  }
  return absl::InvalidArgumentError(internal::FormatLocated(problems, filename));
}

}  // namespace

absl::StatusOr<Config> ParseConfig(std::string_view yaml, std::string_view filename,
                                   const model::KindRegistry& kinds, SourceMap* where,
                                   const model::NamingLimits* names,
                                   std::vector<model::Issue>* issues) {
  SourceMap local_where;
  SourceMap& map = where != nullptr ? *where : local_where;
  map.clear();
  Config config;
  Reader reader(yaml, map);
  GraphReader graph(reader);
  try {
    auto root = internal::LoadDocument(yaml, filename, issues);
    if (!root.ok()) return root.status();
    ParseRoot(reader, graph, *root, config);
  } catch (const YAML::Exception& e) {
    return internal::SyntaxError(e, filename, issues);
  }
  graph.TaintRoutesTouching(config.graph);

  model::ValidationContext context;
  if (names != nullptr) context.names = *names;
  if (context.names.client_name.empty())
    context.names.client_name = config.backend.jack_client_name;
  context.sample_rate_hz = config.engine.sample_rate_hz;
  context.limits = GraphLimitsOf(config.engine);
  std::vector<model::Issue> found = internal::ValidateSettings(config, context.names);
  std::vector<model::Issue> graph_issues = model::ValidateGraph(config.graph, kinds, context);
  found.insert(found.end(), std::make_move_iterator(graph_issues.begin()),
               std::make_move_iterator(graph_issues.end()));
  if (auto st = Report(reader, found, map, filename, issues); !st.ok()) return st;
  return config;
}

absl::StatusOr<PluginSettings> ParsePluginSettings(std::string_view yaml,
                                                   std::string_view filename) {
  SourceMap map;
  PluginSettings settings;
  Reader reader(yaml, map);
  try {
    auto root = internal::LoadDocument(yaml, filename, nullptr);
    if (!root.ok()) return root.status();
    ParsePluginsOnly(reader, *root, settings);
  } catch (const YAML::Exception& e) {
    return internal::SyntaxError(e, filename, nullptr);
  }
  if (auto st = Report(reader, internal::ValidatePlugins(settings), map, filename, nullptr);
      !st.ok()) {
    return st;
  }
  return settings;
}

absl::StatusOr<std::string> ReadConfigText(const std::string& path) {
  const auto fail = [&](int err) {
    const std::string message =
        Cat("cannot read config file '", path, "': ", std::generic_category().message(err));
    switch (err) {
      case ENOENT:
      case ENOTDIR:
        return absl::NotFoundError(message);
      case EACCES:
      case EPERM:
        return absl::PermissionDeniedError(message);
      default:
        return absl::FailedPreconditionError(message);
    }
  };
  // O_NONBLOCK: a FIFO must not hang the caller; only regular files are read.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return fail(errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::FailedPreconditionError(
        Cat("cannot read config file '", path,
            "': ", S_ISDIR(st.st_mode) ? "it is a directory" : "it is not a regular file"));
  }
  constexpr size_t kMaxConfigBytes = size_t{16} << 20;
  std::string text;
  char buf[1 << 14];
  while (true) {
    if (text.size() > kMaxConfigBytes) {
      ::close(fd);
      return absl::FailedPreconditionError(
          Cat("cannot read config file '", path, "': larger than 16 MiB"));
    }
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return fail(err);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

absl::StatusOr<Config> LoadConfigFile(const std::string& path, const model::KindRegistry& kinds,
                                      SourceMap* where, const model::NamingLimits* names) {
  auto text = ReadConfigText(path);
  if (!text.ok()) return text.status();
  return ParseConfig(*text, path, kinds, where, names);
}

}  // namespace aers::config
