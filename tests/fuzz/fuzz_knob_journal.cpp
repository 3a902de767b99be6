// The knob journal reader and the knob value parser
// (kernels/safety/knob_guard.hpp). The journal is read from a file, so each
// input is written as knobs.journal in a private state directory
// (RMAPBENCH_STATE_DIR) and read back with read_journal(): what `rmapbench
// restore` and every run start do with a journal a crash left behind.
// Properties: no crash or exception, a damaged journal is never an error
// (bad lines are skipped), every entry has an owner pid > 0 and a path.
// Nothing is restored here: restore_journal() would write to the paths the
// input names.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "kernels/safety/knob_file.hpp"
#include "kernels/safety/knob_journal.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace rmapbench;

namespace {

std::string g_state_dir;

void remove_state_dir() {
  std::error_code ec;
  if (!g_state_dir.empty()) std::filesystem::remove_all(g_state_dir, ec);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // tmpfs when there is one: the journal is rewritten for every input.
  std::error_code ec;
  const std::filesystem::path base =
      std::filesystem::is_directory("/dev/shm", ec) && access("/dev/shm", W_OK) == 0 ? "/dev/shm"
                                                                                      : std::filesystem::temp_directory_path();
  std::string tmpl = (base / "rmapbench-fuzz-journal-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) fuzz::broken("mkdtemp failed");
  g_state_dir = tmpl;
  setenv("RMAPBENCH_STATE_DIR", g_state_dir.c_str(), 1);
  atexit(remove_state_dir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string value = safety::parse_knob_value(text);
  if (value.size() > text.size()) fuzz::broken("knob value longer than the file");

  const std::string path = safety::journal_path();
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) fuzz::broken("cannot write " + path);
  if (size > 0 && write(fd, data, size) != static_cast<ssize_t>(size)) fuzz::broken("short write to " + path);
  close(fd);

  auto entries = safety::read_journal();
  if (!entries) fuzz::broken("a damaged journal made read_journal fail: " + entries.status().message());
  for (const auto& e : *entries) {
    if (e.pid <= 0) fuzz::broken("journal entry with pid <= 0");
    if (e.path.empty()) fuzz::broken("journal entry without a path");
  }
  return 0;
}
