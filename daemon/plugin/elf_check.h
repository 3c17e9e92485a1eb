// A small, bounds-checked reader of the parts of an ELF64 shared object that
// decide whether it may be loaded: program headers (PT_GNU_STACK, PT_LOAD,
// PT_DYNAMIC) and the dynamic section (DT_NEEDED, DT_SONAME, DT_RPATH,
// DT_RUNPATH, DT_TEXTREL). It never executes or maps anything: it reads the
// bytes of the sealed image.
//
// Thread: any non-real-time thread (pure function).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace aers::plugin {

struct ElfInfo {
  std::string soname;                ///< DT_SONAME, "" if none
  std::vector<std::string> needed;   ///< DT_NEEDED, in order
  std::vector<std::string> rpath;    ///< DT_RPATH strings (each entry as written)
  std::vector<std::string> runpath;  ///< DT_RUNPATH strings
  bool has_gnu_stack = false;        ///< a PT_GNU_STACK header exists
  bool exec_stack = false;           ///< PT_GNU_STACK has PF_X
  bool textrel = false;              ///< DT_TEXTREL or DF_TEXTREL
  bool has_interp = false;           ///< PT_INTERP (an executable, not a library)
};

/// Parses `image` as an ELF64 little-endian shared object (ET_DYN) for this
/// host's machine. Every offset and size is checked against the image:
/// a truncated or inconsistent file is an error, never a crash.
absl::StatusOr<ElfInfo> ReadElf(std::span<const uint8_t> image);

}  // namespace aers::plugin
