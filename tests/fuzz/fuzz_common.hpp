// Shared by the libFuzzer targets: a crash that names the broken promise.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

namespace rmapbench::fuzz {

// A property the code under test promises was broken: print it and abort,
// which libFuzzer reports as a crash (with the input saved as the reproducer).
[[noreturn]] inline void broken(const std::string& what) {
  std::fprintf(stderr, "\nfuzz property broken: %s\n", what.c_str());
  std::abort();
}

}  // namespace rmapbench::fuzz
