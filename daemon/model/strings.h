// String building without absl::StrCat's limits: this Abseil build's
// absl::string_view is not std::string_view, so StrCat refuses it. Used where
// messages are assembled from std::string_view pieces (config, validation).
#pragma once

#include <cstddef>
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

/// Offset of the first byte of `text` that is not part of well-formed UTF-8
/// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF);
/// std::string_view::npos if all of it is well-formed.
inline size_t FirstInvalidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    size_t tail = 0;                     // continuation bytes that follow
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the first of them
    if (lead >= 0xC2 && lead <= 0xDF) {
      tail = 1;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      tail = 2;
      if (lead == 0xE0) lo = 0xA0;  // overlong
      if (lead == 0xED) hi = 0x9F;  // UTF-16 surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      tail = 3;
      if (lead == 0xF0) lo = 0x90;  // overlong
      if (lead == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return i;  // a continuation byte, an overlong C0/C1 or F5..FF
    }
    if (text.size() - i <= tail) return i;
    for (size_t k = 1; k <= tail; ++k) {
      const auto b = static_cast<unsigned char>(text[i + k]);
      if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return i;
    }
    i += tail + 1;
  }
  return std::string_view::npos;
}

}  // namespace aers::strutil
