// sd_notify(3) for the service manager: READY, RELOADING, STOPPING, STATUS
// and watchdog pings. Without libsystemd (meson -Dsystemd=disabled) every
// call is a no-op.
//
// Thread: any non-real-time thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

namespace aers::notify {

/// True if built with libsystemd.
bool Available();

/// Sends newline-separated KEY=VALUE assignments ("READY=1\nSTATUS=...") to
/// $NOTIFY_SOCKET. Returns false if nothing was sent (no socket, no support).
bool Send(std::string_view state);

/// How often to send WATCHDOG=1 (half of $WATCHDOG_USEC), or zero when the
/// service manager does not watch us.
std::chrono::microseconds WatchdogPingInterval();

/// CLOCK_MONOTONIC in microseconds (for RELOADING=1's MONOTONIC_USEC=).
uint64_t MonotonicUsec();

}  // namespace aers::notify
