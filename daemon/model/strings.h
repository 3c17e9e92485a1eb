// String building without absl::StrCat's limits: this Abseil build's
// absl::string_view is not std::string_view, so StrCat refuses it. Used where
// messages are assembled from std::string_view pieces (config, validation).
#pragma once

#include <string>
#include <string_view>
#include <type_traits>

namespace aers::strutil {

inline void AppendTo(std::string& out, std::string_view s) {
  out.append(s);
}

template <typename T>
requires std::is_integral_v<T>
void AppendTo(std::string& out, T v) {
  out += std::to_string(v);
}

/// Concatenates strings, string_views, C strings and integers.
template <typename... Args>
std::string Cat(const Args&... args) {
  std::string out;
  (AppendTo(out, args), ...);
  return out;
}

/// Joins a range of string-like items with `separator`.
template <typename Range>
std::string JoinList(const Range& items, std::string_view separator) {
  std::string out;
  bool first = true;
  for (const auto& item : items) {
    if (!first) out.append(separator);
    first = false;
    out.append(std::string_view(item));
  }
  return out;
}

}  // namespace aers::strutil
