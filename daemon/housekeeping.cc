#include "housekeeping.h"

#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace aers::daemon {

void Housekeeping::Every(std::string name, Clock::duration period, Task task) {
  tasks_.push_back({std::move(name), period, std::move(task), false, {}});
}

void Housekeeping::RunDue(Clock::time_point now) {
  for (Entry& e : tasks_) {
    if (e.ran && now < e.next) continue;
    e.task(now);
    e.ran = true;
    e.next = now + e.period;
  }
}

void Housekeeping::Run(int signal_fd, std::chrono::milliseconds tick,
                       const SignalHandler& on_signal) {
  bool stopping = false;
  while (!stopping) {
    pollfd pfd{signal_fd, POLLIN, 0};
    const int n = poll(&pfd, 1, static_cast<int>(tick.count()));
    if (n > 0 && (pfd.revents & POLLIN)) {
      signalfd_siginfo si{};
      while (read(signal_fd, &si, sizeof(si)) == static_cast<ssize_t>(sizeof(si))) {
        if (!on_signal(static_cast<int>(si.ssi_signo))) stopping = true;
      }
    }
    RunDue(Clock::now());
  }
}

}  // namespace aers::daemon
