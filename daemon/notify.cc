#include "notify.h"

#include <ctime>
#include <string>

#if defined(AERS_HAVE_SYSTEMD)
#include <systemd/sd-daemon.h>
#endif

namespace aers::notify {

bool Available() {
#if defined(AERS_HAVE_SYSTEMD)
  return true;
#else
  return false;
#endif
}

bool Send(std::string_view state) {
#if defined(AERS_HAVE_SYSTEMD)
  return sd_notify(0, std::string(state).c_str()) > 0;
#else
  (void)state;
  return false;
#endif
}

std::chrono::microseconds WatchdogPingInterval() {
#if defined(AERS_HAVE_SYSTEMD)
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    return std::chrono::microseconds(usec / 2);
  }
#endif
  return std::chrono::microseconds(0);
}

uint64_t MonotonicUsec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000ull +
         static_cast<uint64_t>(ts.tv_nsec) / 1000ull;
}

}  // namespace aers::notify
