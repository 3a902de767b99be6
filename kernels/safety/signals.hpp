// SIGINT/SIGTERM/SIGHUP: what a run does when it is told to stop.
#pragma once

namespace rmapbench::safety {

// Installs SIGINT/SIGTERM/SIGHUP handlers that restore every live guard's
// knob (async-signal-safe), kill our process group's children, then let the
// caller finish writing partial results. Idempotent.
void install_signal_handlers();

// Set by the handlers; long loops poll it to stop early.
bool interrupted();
int interrupt_signal();

}  // namespace rmapbench::safety
