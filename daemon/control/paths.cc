#include "control/paths.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace aers::control {

namespace {
constexpr char kSystemSocket[] = "/run/aers/aersd.sock";
}  // namespace

std::string DefaultSocketPath() {
  if (const char* d = std::getenv("RUNTIME_DIRECTORY"); d && *d) {
    const std::string dir(d);
    return dir.substr(0, dir.find(':')) + "/aersd.sock";
  }
  if (::geteuid() == 0) return kSystemSocket;
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x) {
    return std::string(x) + "/aers/aersd.sock";
  }
  return "/tmp/aers-" + std::to_string(::geteuid()) + "/aersd.sock";
}

std::string DefaultClientSocketPath() {
  std::error_code ec;
  if (::geteuid() != 0 && std::filesystem::exists(kSystemSocket, ec)) return kSystemSocket;
  return DefaultSocketPath();
}

}  // namespace aers::control
