#include "plugin/elf_check.h"

#include <elf.h>

#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"

namespace aers::plugin {
namespace {

#if defined(__x86_64__)
constexpr uint16_t kHostMachine = EM_X86_64;
#elif defined(__aarch64__)
constexpr uint16_t kHostMachine = EM_AARCH64;
#elif defined(__riscv)
constexpr uint16_t kHostMachine = EM_RISCV;
#else
#error "unsupported host machine for the plugin ELF check"
#endif

constexpr size_t kMaxPhdrs = 256;
constexpr size_t kMaxDyn = 4096;

// Copies a T out of the image at `off` (unaligned-safe), or nullopt.
template <typename T>
std::optional<T> At(std::span<const uint8_t> img, uint64_t off) {
  if (off > img.size() || img.size() - off < sizeof(T)) return std::nullopt;
  T v;
  std::memcpy(&v, img.data() + off, sizeof(T));
  return v;
}

absl::Status Bad(const std::string& msg) {
  return absl::InvalidArgumentError(absl::StrCat("malformed ELF: ", msg));
}

}  // namespace

absl::StatusOr<ElfInfo> ReadElf(std::span<const uint8_t> img) {
  const auto eh = At<Elf64_Ehdr>(img, 0);
  if (!eh) return Bad("file is shorter than an ELF header");
  if (std::memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0) return Bad("not an ELF file");
  if (eh->e_ident[EI_CLASS] != ELFCLASS64) return Bad("not a 64-bit ELF file");
  if (eh->e_ident[EI_DATA] != ELFDATA2LSB) return Bad("not little-endian");
  if (eh->e_ident[EI_VERSION] != EV_CURRENT) return Bad("unknown ELF version");
  if (eh->e_type != ET_DYN) return Bad("not a shared object (e_type is not ET_DYN)");
  if (eh->e_machine != kHostMachine) {
    return Bad(absl::StrCat("built for machine ", eh->e_machine, ", this host is ", kHostMachine));
  }
  if (eh->e_phentsize != sizeof(Elf64_Phdr)) return Bad("unexpected program header size");
  if (eh->e_phnum == 0 || eh->e_phnum > kMaxPhdrs) return Bad("bad program header count");

  ElfInfo info;
  std::vector<Elf64_Phdr> loads;
  std::optional<Elf64_Phdr> dynamic;
  for (uint64_t i = 0; i < eh->e_phnum; ++i) {
    const auto ph = At<Elf64_Phdr>(img, eh->e_phoff + i * sizeof(Elf64_Phdr));
    if (!ph) return Bad("program header table runs past the end of the file");
    switch (ph->p_type) {
      case PT_LOAD:
        if (ph->p_filesz > ph->p_memsz) return Bad("PT_LOAD with filesz > memsz");
        if (ph->p_offset > img.size() || img.size() - ph->p_offset < ph->p_filesz) {
          return Bad("PT_LOAD runs past the end of the file");
        }
        loads.push_back(*ph);
        break;
      case PT_DYNAMIC:
        if (dynamic) return Bad("more than one PT_DYNAMIC");
        dynamic = *ph;
        break;
      case PT_GNU_STACK:
        info.has_gnu_stack = true;
        info.exec_stack = (ph->p_flags & PF_X) != 0;
        break;
      case PT_INTERP:
        info.has_interp = true;
        break;
      default:
        break;
    }
  }
  if (loads.empty()) return Bad("no PT_LOAD segment");
  if (!dynamic) return Bad("no PT_DYNAMIC segment (not a dynamic shared object)");
  if (dynamic->p_offset > img.size() || img.size() - dynamic->p_offset < dynamic->p_filesz) {
    return Bad("PT_DYNAMIC runs past the end of the file");
  }

  // Virtual address -> file offset through the PT_LOAD segments.
  auto vaddr_to_off = [&](uint64_t vaddr) -> std::optional<uint64_t> {
    for (const auto& l : loads) {
      if (vaddr >= l.p_vaddr && vaddr - l.p_vaddr < l.p_filesz)
        return l.p_offset + (vaddr - l.p_vaddr);
    }
    return std::nullopt;
  };

  std::optional<uint64_t> strtab_vaddr, strsz;
  std::vector<uint64_t> needed_off, rpath_off, runpath_off;
  std::optional<uint64_t> soname_off;
  const uint64_t ndyn = std::min<uint64_t>(dynamic->p_filesz / sizeof(Elf64_Dyn), kMaxDyn);
  for (uint64_t i = 0; i < ndyn; ++i) {
    const auto d = At<Elf64_Dyn>(img, dynamic->p_offset + i * sizeof(Elf64_Dyn));
    if (!d) return Bad("dynamic section runs past the end of the file");
    if (d->d_tag == DT_NULL) break;
    const uint64_t v = d->d_un.d_val;
    switch (d->d_tag) {
      case DT_STRTAB:
        strtab_vaddr = v;
        break;
      case DT_STRSZ:
        strsz = v;
        break;
      case DT_NEEDED:
        needed_off.push_back(v);
        break;
      case DT_SONAME:
        soname_off = v;
        break;
      case DT_RPATH:
        rpath_off.push_back(v);
        break;
      case DT_RUNPATH:
        runpath_off.push_back(v);
        break;
      case DT_TEXTREL:
        info.textrel = true;
        break;
      case DT_FLAGS:
        if (v & DF_TEXTREL) info.textrel = true;
        break;
      default:
        break;
    }
  }
  const bool any_strings =
      !needed_off.empty() || soname_off || !rpath_off.empty() || !runpath_off.empty();
  if (any_strings) {
    if (!strtab_vaddr || !strsz) return Bad("dynamic strings without DT_STRTAB/DT_STRSZ");
    const auto strtab = vaddr_to_off(*strtab_vaddr);
    if (!strtab) return Bad("DT_STRTAB is outside every PT_LOAD segment");
    if (*strtab > img.size() || img.size() - *strtab < *strsz) {
      return Bad("DT_STRTAB runs past the end of the file");
    }
    const char* base = reinterpret_cast<const char*>(img.data() + *strtab);
    auto str = [&](uint64_t off) -> std::optional<std::string> {
      if (off >= *strsz) return std::nullopt;
      const void* nul = std::memchr(base + off, '\0', *strsz - off);
      if (nul == nullptr) return std::nullopt;
      return std::string(base + off, static_cast<const char*>(nul));
    };
    for (uint64_t o : needed_off) {
      auto s = str(o);
      if (!s) return Bad("DT_NEEDED string out of bounds");
      info.needed.push_back(*s);
    }
    for (uint64_t o : rpath_off) {
      auto s = str(o);
      if (!s) return Bad("DT_RPATH string out of bounds");
      info.rpath.push_back(*s);
    }
    for (uint64_t o : runpath_off) {
      auto s = str(o);
      if (!s) return Bad("DT_RUNPATH string out of bounds");
      info.runpath.push_back(*s);
    }
    if (soname_off) {
      auto s = str(*soname_off);
      if (!s) return Bad("DT_SONAME string out of bounds");
      info.soname = *s;
    }
  }
  return info;
}

}  // namespace aers::plugin
