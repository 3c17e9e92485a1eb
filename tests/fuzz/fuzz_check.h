// What the fuzz targets share: a check that turns a broken invariant into a
// crash libFuzzer reports (and saves the input for).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace aers::fuzz {

/// Prints `what` (and `detail`) and aborts: libFuzzer records the input as a
/// crash. For properties the API documents, never for refused input.
[[noreturn]] inline void Fail(std::string_view what, std::string_view detail = {}) {
  std::fprintf(stderr, "fuzz invariant broken: %.*s\n%.*s\n", static_cast<int>(what.size()),
               what.data(), static_cast<int>(detail.size()), detail.data());
  std::abort();
}

inline void Check(bool ok, std::string_view what, std::string_view detail = {}) {
  if (!ok) Fail(what, detail);
}

}  // namespace aers::fuzz
