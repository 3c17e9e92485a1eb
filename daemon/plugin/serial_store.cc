#include "plugin/serial_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "plugin/manifest.h"
#include "plugin/secure_open.h"

namespace aers::plugin {
namespace {

std::string FileName(std::string_view plugin) {
  return absl::StrCat(std::string(plugin), ".serial");
}

}  // namespace

absl::StatusOr<int> SerialStore::OpenDir(bool create) const {
  if (dir_.empty()) return absl::FailedPreconditionError("no plugin state directory configured");
  int fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT && create) {
    if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::InternalError(
          absl::StrCat("cannot create state directory ", dir_, ": ", ErrnoText(errno)));
    }
    fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("cannot open state directory ", dir_, ": ", ErrnoText(errno)));
  }
  return fd;
}

absl::StatusOr<std::optional<uint64_t>> SerialStore::Get(std::string_view plugin) const {
  if (!IsValidPluginName(plugin)) return absl::InvalidArgumentError("bad plugin name");
  auto dfd = OpenDir(true);
  if (!dfd.ok()) return dfd.status();
  UniqueFd dir(*dfd);
  const std::string name = FileName(plugin);
  const int fd = ::openat(dir.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<uint64_t>();
    return absl::InternalError(
        absl::StrCat("cannot read ", dir_, "/", name, ": ", ErrnoText(errno)));
  }
  UniqueFd file(fd);
  auto text = ReadSmallFile(file.get(), 64, name);
  if (!text.ok()) return text.status();
  std::string_view t = *text;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.remove_suffix(1);
  uint64_t v = 0;
  if (!absl::SimpleAtoi(absl::string_view(t.data(), t.size()), &v)) {
    // A damaged record must not silently reset rollback protection.
    return absl::DataLossError(
        absl::StrCat(dir_, "/", name, " is damaged ('", std::string(t), "')"));
  }
  return std::optional<uint64_t>(v);
}

absl::Status SerialStore::Put(std::string_view plugin, uint64_t serial) const {
  if (!IsValidPluginName(plugin)) return absl::InvalidArgumentError("bad plugin name");
  auto dfd = OpenDir(true);
  if (!dfd.ok()) return dfd.status();
  UniqueFd dir(*dfd);
  const std::string name = FileName(plugin);
  const std::string tmp = absl::StrCat(".", name, ".tmp.", ::getpid());
  ::unlinkat(dir.get(), tmp.c_str(), 0);
  const int fd =
      ::openat(dir.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return absl::InternalError(
        absl::StrCat("cannot create ", dir_, "/", tmp, ": ", ErrnoText(errno)));
  UniqueFd file(fd);
  const std::string text = absl::StrCat(serial, "\n");
  auto fail = [&](const char* what) {
    const int err = errno;
    ::unlinkat(dir.get(), tmp.c_str(), 0);
    return absl::InternalError(absl::StrCat(what, " ", dir_, "/", tmp, ": ", ErrnoText(err)));
  };
  if (::write(file.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    return fail("write");
  if (::fsync(file.get()) != 0) return fail("fsync");
  file.Reset();
  if (::renameat(dir.get(), tmp.c_str(), dir.get(), name.c_str()) != 0) return fail("rename");
  if (::fsync(dir.get()) != 0) {
    return absl::InternalError(absl::StrCat("fsync ", dir_, ": ", ErrnoText(errno)));
  }
  return absl::OkStatus();
}

}  // namespace aers::plugin
