// Files of one run that must not be one file: the daemon's config, state
// file, journal and lock, stats file, audit logs, sockets and their locks,
// token and TLS files; a render's config, input and output. One written
// over another loses it (the state written over the config, a render's
// output over its input, the pid in a lock file over an audit log).
//
// Its own object file: the `aersd` command links it for render without
// the daemon's wiring (and so without JACK or gRPC).
#pragma once

#include <string>
#include <vector>

namespace aers::daemon {

/// One file a run uses: the flag (or config field) that names it, its path
/// ("": not used) and whether the run writes it.
struct PathUse {
  std::string flag;
  std::string path;
  bool written = true;
};

/// "" when no file the run writes is another of its files and no written
/// path ends in '/'; else a message naming the first such pair (or path).
/// Two files only read may be one (a certificate and its key in one PEM
/// file). Existing files compare by device and inode (hard links, "./x"
/// and "x", symbolic links), the others by their absolute, normalised
/// path.
std::string PathCollision(const std::vector<PathUse>& files);

}  // namespace aers::daemon
