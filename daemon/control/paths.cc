#include "control/paths.h"

#include <unistd.h>

#include <cstdlib>

namespace aers::control {

std::string DefaultSocketPath() {
  if (const char* d = std::getenv("RUNTIME_DIRECTORY"); d && *d) {
    const std::string dir(d);
    return dir.substr(0, dir.find(':')) + "/aersd.sock";
  }
  if (::geteuid() == 0) return "/run/aers/aersd.sock";
  // A user talking to the system service (member of group aers).
  if (::access("/run/aers/aersd.sock", F_OK) == 0) return "/run/aers/aersd.sock";
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x) {
    return std::string(x) + "/aers/aersd.sock";
  }
  return "/tmp/aers-" + std::to_string(::geteuid()) + "/aersd.sock";
}

}  // namespace aers::control
