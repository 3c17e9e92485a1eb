// libFuzzer target: the plugin ELF check (daemon/plugin/elf_check.h). ReadElf
// takes the image as bytes (the loader passes the sealed memfd's mapping),
// so the input is used in place: no file, no memfd. A truncated or
// inconsistent image must be an error, never a crash or an out-of-bounds
// read (AddressSanitizer checks every byte read).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "plugin/elf_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using aers::fuzz::Check;
  // An exact-size heap copy: a read one byte past the image is a heap
  // overflow ASan reports (libFuzzer's own buffer is exact-size too; the copy
  // keeps that true whoever calls this).
  const std::vector<uint8_t> image(data, data + size);
  const auto info = aers::plugin::ReadElf(std::span<const uint8_t>(image.data(), image.size()));
  if (!info.ok()) {
    Check(info.status().code() == absl::StatusCode::kInvalidArgument,
          "ReadElf fails with a code other than INVALID_ARGUMENT", info.status().ToString());
    return 0;
  }
  // Dynamic strings come from the image's string table: shorter than the
  // image, and without their terminator.
  Check(info->soname.size() < size, "DT_SONAME longer than the image");
  for (const auto& s : info->needed) {
    Check(s.size() < size && std::memchr(s.data(), '\0', s.size()) == nullptr,
          "DT_NEEDED string runs past its terminator", s);
  }
  Check(!info->exec_stack || info->has_gnu_stack, "exec_stack without PT_GNU_STACK");
  return 0;
}
