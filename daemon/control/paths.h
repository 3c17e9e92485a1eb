// Where the daemon listens by default; shared by aersd and aersctl.
#pragma once

#include <string>

namespace aers::control {

/// Where aersd listens: $RUNTIME_DIRECTORY/aersd.sock (systemd), else
/// /run/aers/aersd.sock as root, else $XDG_RUNTIME_DIR/aers/aersd.sock, else
/// /tmp/aers-UID/aersd.sock.
std::string DefaultSocketPath();

/// Where aersctl looks: like DefaultSocketPath(), but a user who is not root
/// talks to the system service's /run/aers/aersd.sock when it exists.
std::string DefaultClientSocketPath();

}  // namespace aers::control
