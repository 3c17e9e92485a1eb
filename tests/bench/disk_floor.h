// A journal-like flush for the control-plane benchmarks: 4 KiB written over
// room allocated beforehand (zeros, flushed once, as the journal grows), then
// fdatasync. Used by control_bench (the disk alone, spaced as the edits are)
// and floor_server (a server whose edit is that flush and nothing else).
//
// Thread: one caller at a time. Errors: the path and errno on stderr, then
// exit(1) (a benchmark with no disk to measure has nothing to say).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace aers::bench {

class DiskFloor {
 public:
  /// `dir`: a directory on the file system of aersd's state file ("" = off).
  /// Creates DIR/NAME (removed again by the destructor).
  explicit DiskFloor(const std::string& dir, const std::string& name = "control_bench.flush") {
    if (dir.empty()) return;
    path_ = dir + "/" + name;
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd_ < 0) Fail();
    // Allocated room, like the journal's zero-filled steps: a record then
    // overwrites blocks the file already has, and its flush writes data only.
    const std::vector<char> zeros(kRoom, 0);
    if (::pwrite(fd_, zeros.data(), zeros.size(), 0) != static_cast<ssize_t>(zeros.size()) ||
        ::fsync(fd_) != 0) {
      Fail();
    }
    block_.assign(4096, 'j');
  }
  ~DiskFloor() {
    if (fd_ >= 0) {
      ::close(fd_);
      ::unlink(path_.c_str());
    }
  }
  DiskFloor(const DiskFloor&) = delete;
  DiskFloor& operator=(const DiskFloor&) = delete;

  bool on() const { return fd_ >= 0; }
  /// One 4 KiB record written and made durable; its time in microseconds.
  double Flush() {
    const auto t0 = std::chrono::steady_clock::now();
    const off_t at = static_cast<off_t>((next_++ * block_.size()) % kRoom);
    if (::pwrite(fd_, block_.data(), block_.size(), at) != static_cast<ssize_t>(block_.size()) ||
        ::fdatasync(fd_) != 0) {
      Fail();
    }
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  }

 private:
  [[noreturn]] void Fail() {
    std::perror(path_.c_str());
    if (!path_.empty()) ::unlink(path_.c_str());
    std::exit(1);
  }
  static constexpr size_t kRoom = size_t{1} << 20;
  std::string path_;
  int fd_ = -1;
  size_t next_ = 0;
  std::string block_;
};

}  // namespace aers::bench
