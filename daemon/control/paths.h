// Where the daemon listens by default; shared by aersd and aersctl.
#pragma once

#include <string>

namespace aers::control {

/// $RUNTIME_DIRECTORY/aersd.sock (systemd), else /run/aers/aersd.sock as
/// root or when that socket exists (the system service), else
/// $XDG_RUNTIME_DIR/aers/aersd.sock, else /tmp/aers-UID/aersd.sock.
std::string DefaultSocketPath();

}  // namespace aers::control
