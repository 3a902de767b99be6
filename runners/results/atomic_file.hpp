// Every file rmapbench's compare/baseline/report side writes goes through
// here: the content is written to a temporary file in the destination's own
// directory, fsync'd, then renamed over (or, when overwriting is refused,
// linked to) the final name, and the directory is fsync'd. A reader never
// sees a half-written file under the final name; a failure leaves the old
// file (if any) untouched and no temporary behind.
#pragma once

#include <string>
#include <string_view>

#include "benchmarks/mm/status.hpp"

namespace rmapbench::results {

enum class Overwrite { replace, refuse };

// Writes `content` to `path` atomically. With Overwrite::refuse an existing
// `path` is an error (checked atomically: RENAME_NOREPLACE / link(2)).
Status write_file_atomic(const std::string& path, std::string_view content, Overwrite mode = Overwrite::replace);

// For content produced by another program (gnuplot): a temporary file next to
// `final_path` that the other program writes, then commit() publishes it.
// Removed on destruction unless committed.
class TempFile {
 public:
  static Result<TempFile> create(const std::string& final_path);
  TempFile(TempFile&& other) noexcept;
  TempFile& operator=(TempFile&&) = delete;
  TempFile(const TempFile&) = delete;
  ~TempFile();

  const std::string& path() const { return temp_path_; }
  const std::string& final_path() const { return final_path_; }
  int fd() const { return fd_; }
  Status write(std::string_view content);
  // fsync + rename (or link for refuse) + fsync of the directory.
  Status commit(Overwrite mode = Overwrite::replace);

 private:
  TempFile(std::string temp, std::string final, int fd) : temp_path_(std::move(temp)), final_path_(std::move(final)), fd_(fd) {}
  std::string temp_path_, final_path_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace rmapbench::results
