#include "control/grpc/connection_gate.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <grpcpp/server_builder.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "control/auth.h"

namespace aers::control {

namespace {

size_t OpenDescriptors() {
  size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (const dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    ::closedir(d);
  }
  return n;
}

// The numeric host of a peer address (v4-mapped IPv6 as IPv4).
std::string PeerText(const sockaddr_storage& a) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (a.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&a)->sin_addr, buf, sizeof buf);
  } else if (a.ss_family == AF_INET6) {
    const in6_addr& v6 = reinterpret_cast<const sockaddr_in6*>(&a)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&v6)) {
      inet_ntop(AF_INET, &v6.s6_addr[12], buf, sizeof buf);
    } else {
      inet_ntop(AF_INET6, &v6, buf, sizeof buf);
    }
  }
  return buf;
}

// A Unix peer's source: its uid (SO_PEERCRED).
std::string PeerUid(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return "uid:?";
  return absl::StrCat("uid:", cred.uid);
}

ino_t InodeOf(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? st.st_ino : 0;
}

}  // namespace

ConnectionGate::~ConnectionGate() {
  Stop();
}

absl::Status ConnectionGate::ListenTcp(const std::string& hostport) {
  const auto colon = hostport.rfind(':');
  if (colon == std::string::npos || colon + 1 == hostport.size()) {
    return absl::InvalidArgumentError(absl::StrCat("listener tcp:", hostport, ": no port"));
  }
  std::string host = hostport.substr(0, colon);
  const std::string port = hostport.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (const int rc =
          ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
      rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("listener tcp:", hostport, ": ", ::gai_strerror(rc)));
  }
  std::string error = "no address";
  int fd = -1;
  for (addrinfo* a = res; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      error = std::strerror(errno);
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 128) != 0) {
      error = std::strerror(errno);
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(res);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("control: cannot listen on tcp:", hostport, ": ", error));
  }
  Listener l;
  l.address = "tcp:" + hostport;
  l.fd = fd;
  listeners_.push_back(std::move(l));
  return absl::OkStatus();
}

absl::Status ConnectionGate::ListenUnix(const std::string& path, mode_t mode) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return absl::InvalidArgumentError(
        absl::StrCat("listener unix:", path, ": the path is ", path.empty() ? "empty" : "too long",
                     " (at most ", sizeof addr.sun_path - 1, " bytes)"));
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("control: cannot listen on unix:", path, ": ", std::strerror(errno)));
  }
  // The socket file takes its mode from the umask at bind().
  const mode_t old_umask = ::umask(~mode & 0777);
  const int rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  const int err = errno;
  ::umask(old_umask);
  if (rc != 0 || ::listen(fd, 128) != 0) {
    const int e = rc != 0 ? err : errno;
    ::close(fd);
    return absl::UnavailableError(
        absl::StrCat("control: cannot listen on unix:", path, ": ", std::strerror(e)));
  }
  Listener l;
  l.address = "unix:" + path;
  l.unix_domain = true;
  l.fd = fd;
  listeners_.push_back(std::move(l));
  return absl::OkStatus();
}

void ConnectionGate::Start(
    std::vector<std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor>> acceptors) {
  for (size_t i = 0; i < listeners_.size() && i < acceptors.size(); ++i) {
    listeners_[i].acceptor = std::move(acceptors[i]);
  }
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  thread_ = std::thread([this] { Loop(); });
}

void ConnectionGate::Stop() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
    thread_.join();
  }
  if (wake_fd_ >= 0) {
    ::close(wake_fd_);
    wake_fd_ = -1;
  }
  for (auto& l : listeners_) {
    if (l.fd >= 0) ::close(l.fd);
    l.fd = -1;
  }
}

// Whether one more connection fits: the per-listener count (exact: which
// handed-over descriptors still name the socket they named) and the
// process's descriptor headroom.
std::string ConnectionGate::Admit(Listener& l, const std::string& source) {
  const auto from_source = [&] {
    return static_cast<size_t>(std::count_if(
        l.live.begin(), l.live.end(), [&](const Listener::Live& c) { return c.source == source; }));
  };
  if (l.live.size() >= options_.max_connections || from_source() >= options_.max_per_source) {
    std::erase_if(l.live, [](const Listener::Live& c) {
      return InodeOf(c.fd) != c.ino;  // closed (or the number reused)
    });
  }
  if (l.live.size() >= options_.max_connections) {
    return absl::StrCat(options_.max_connections, " connections on this listener");
  }
  if (from_source() >= options_.max_per_source) {
    return absl::StrCat(options_.max_per_source, " connections from ", source);
  }
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      rl.rlim_cur <= 1u << 20) {
    const size_t limit = static_cast<size_t>(rl.rlim_cur);
    if (limit <= options_.reserve_fds || OpenDescriptors() + options_.reserve_fds >= limit) {
      return absl::StrCat("fewer than ", options_.reserve_fds, " free descriptors (limit ", limit,
                          ")");
    }
  }
  return "";
}

void ConnectionGate::Loop() {
  std::vector<pollfd> fds;
  for (const auto& l : listeners_) fds.push_back({l.fd, POLLIN, 0});
  fds.push_back({wake_fd_, POLLIN, 0});
  auto last_warning = std::chrono::steady_clock::time_point{};
  uint64_t refused_since_warning = 0;
  auto last_accept_warning = std::chrono::steady_clock::time_point{};
  while (true) {
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      // ENOMEM: never give a listener up; try again shortly.
      spdlog::error("control: poll on the listeners failed: {}; retrying", std::strerror(errno));
      ::poll(nullptr, 0, 50);
      continue;
    }
    if (fds.back().revents != 0) return;  // Stop()
    for (size_t i = 0; i < listeners_.size(); ++i) {
      if ((fds[i].revents & POLLIN) == 0) continue;
      Listener& l = listeners_[i];
      while (true) {
        // Non-blocking, as gRPC's own listeners hand connections to its poller.
        sockaddr_storage peer{};
        socklen_t peer_len = sizeof peer;
        const int c = ::accept4(l.fd, reinterpret_cast<sockaddr*>(&peer), &peer_len,
                                SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c < 0) {
          if (errno == EINTR || errno == ECONNABORTED) continue;
          if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            // Out of descriptors or memory: the connection stays in the
            // backlog. Wait a little rather than spin, then try again (the
            // listening socket is still readable).
            const int err = errno;
            const auto now = std::chrono::steady_clock::now();
            if (now - last_accept_warning > std::chrono::seconds(60)) {
              spdlog::warn("control: {}: cannot accept a connection: {}; retrying every 50 ms",
                           l.address, std::strerror(err));
              last_accept_warning = now;
            }
            ::poll(nullptr, 0, 50);
          }
          break;  // EAGAIN: drained
        }
        const std::string source = l.unix_domain ? PeerUid(c) : SourceKey(PeerText(peer));
        if (const std::string full = Admit(l, source); !full.empty()) {
          ::close(c);
          ++refused_;
          ++refused_since_warning;
          const auto now = std::chrono::steady_clock::now();
          if (now - last_warning > std::chrono::seconds(60)) {
            spdlog::warn(
                "control: {}: connection refused: {} ({} refused since the last warning; at "
                "most {} connections per listener, {} per source, {} descriptors kept free)",
                l.address, full, refused_since_warning, options_.max_connections,
                options_.max_per_source, options_.reserve_fds);
            last_warning = now;
            refused_since_warning = 0;
          }
          continue;
        }
        l.live.push_back({c, InodeOf(c), source});
        grpc::experimental::ExternalConnectionAcceptor::NewConnectionParameters p;
        p.listener_fd = l.fd;
        p.fd = c;
        l.acceptor->HandleNewConnection(&p);
      }
    }
  }
}

}  // namespace aers::control
