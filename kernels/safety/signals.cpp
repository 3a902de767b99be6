#include "kernels/safety/signals.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "kernels/safety/children.hpp"
#include "kernels/safety/knob_slots.hpp"
#include "kernels/safety/signal_safe_format.hpp"

namespace rmapbench::safety {

namespace {

std::atomic<int> g_signal{0};
std::atomic<bool> g_interrupted{false};
std::atomic<pid_t> g_handler_pid{0};

const char* sig_text(int sig) {
  switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGHUP: return "SIGHUP";
    default: return "signal";
  }
}

void set_default_and_raise(int sig) {
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
  raise(sig);  // pending until the handler returns (sig is blocked in it), then fatal
}

extern "C" void on_terminating_signal(int sig) {
  int saved_errno = errno;
  pid_t me = getpid();
  if (me != g_handler_pid.load()) {
    // A forked child that inherited the handler: behave as if it had none.
    set_default_and_raise(sig);
    errno = saved_errno;
    return;
  }
  int first_sig = 0;
  bool first = g_signal.compare_exchange_strong(first_sig, sig);
  int restored = restore_live_knob_slots(me);
  kill_run_children(SIGKILL);
  g_interrupted.store(true);
  char msg[160];
  char* p = put_str(msg, "rmapbench: ");
  p = put_str(p, sig_text(sig));
  if (first) {
    p = put_str(p, ": knobs restored (");
    p = put_uint(p, static_cast<unsigned long>(restored));
    p = put_str(p, "), children killed; finishing with partial results (again to quit now)\n");
  } else if (first_sig == sig) {
    p = put_str(p, " again: knobs restored, quitting now\n");
  } else {
    p = put_str(p, ": knobs restored, still finishing\n");
  }
  ssize_t ignored = write(STDERR_FILENO, msg, static_cast<size_t>(p - msg));
  (void)ignored;
  if (!first && first_sig == sig) set_default_and_raise(sig);
  errno = saved_errno;
}

}  // namespace

void install_signal_handlers() {
  g_handler_pid.store(getpid());
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_terminating_signal;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&sa.sa_mask, s);  // handlers never nest
  sa.sa_flags = SA_RESTART;
  for (int s : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction old;
    if (sigaction(s, nullptr, &old) == 0 && !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_IGN)
      continue;  // started under nohup (or similar): keep ignoring it
    sigaction(s, &sa, nullptr);
  }
}

bool interrupted() { return g_interrupted.load(); }
int interrupt_signal() { return g_signal.load(); }

}  // namespace rmapbench::safety
