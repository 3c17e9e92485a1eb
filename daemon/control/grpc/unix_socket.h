// The Unix-socket listener's file system side: the socket's directory, its
// PATH.lock (one daemon per socket path), and taking over a stale socket
// without ever removing a live daemon's.
//
// Thread: non-real-time (start-up and shutdown of the control server).
#pragma once

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace aers::control {

/// The socket's directory: created 0750 if missing; if it exists it must be
/// a real directory (not a symlink) owned by us or root and not writable by
/// others, so nobody else can swap the socket for something of theirs.
absl::Status PrepareSocketDir(const std::string& dir);

/// Takes PATH.lock (flock, non-blocking) and returns its descriptor, held
/// for the daemon's lifetime; FAILED_PRECONDITION naming the path when
/// another daemon holds it.
absl::StatusOr<int> LockSocketPath(const std::string& path);

/// Makes `path` free for a new socket: absent is fine; a stale socket
/// (nothing answers) is removed; anything else, or a socket a live daemon
/// answers on, is an error naming the path.
absl::Status ClaimSocketPath(const std::string& path);

/// A socket this daemon created, identified so that shutdown removes only
/// that file (not one another daemon put at the same path since).
struct OwnedSocket {
  std::string path;
  dev_t dev = 0;
  ino_t ino = 0;
};

}  // namespace aers::control
