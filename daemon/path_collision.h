// Files of one run that must not be one file: the daemon's config, state,
// journal, stats, audit log and socket; a render's config, input and
// output. One written over another loses it (the state written over the
// config, a render's output over its input).
//
// Its own object file: the `aersd` command links it for render without
// the daemon's wiring (and so without JACK or gRPC).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace aers::daemon {

/// Each a (flag, path) pair; "" path: not used. Returns "" when all differ,
/// else a message naming the first two that are the same file. Existing
/// files compare by device and inode (hard links, "./x" and "x",
/// symbolic links), the others by their absolute, normalised path.
std::string PathCollision(const std::vector<std::pair<std::string, std::string>>& files);

}  // namespace aers::daemon
