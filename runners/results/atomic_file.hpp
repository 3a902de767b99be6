// Every file rmapbench writes goes through here: the content is written to a
// temporary file with a unique name in the destination's own directory,
// fsync'd, then renamed over (or, when overwriting is refused, linked to) the
// final name, and the directory is fsync'd. A reader never sees a
// half-written file under the final name; a failure leaves the old file (if
// any) untouched and no temporary behind.
//
// What a user names with --out follows the output-path rules (README.md,
// "Output files"): only a regular file (or a name that does not exist yet)
// is written atomically; "-" is standard output; a character device or a
// FIFO is written to in place (streamed), never replaced; a symbolic link is
// followed (its target gets the same rules) and a dangling one refused; a
// directory, socket or block device is refused.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "kernels/status.hpp"

namespace rmapbench::results {

enum class Overwrite { replace, refuse };

// Writes `content` to `path` (an OutputFile: the rules above) and commits.
// With Overwrite::refuse anything existing at `path` is an error (checked
// atomically for regular files: RENAME_NOREPLACE / link(2)).
Status write_file_atomic(const std::string& path, std::string_view content, Overwrite mode = Overwrite::replace);

// For content produced by another program (gnuplot): a temporary file next to
// `final_path` that the other program writes, then commit() publishes it.
// Removed on destruction unless committed. Refuses a `final_path` that
// exists and is not a regular file (it would be replaced).
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
  // Every byte, or the error naming errno ("No space left on device").
  Status write(std::string_view content);
  // fsync + close + rename (or link for refuse) + fsync of the directory;
  // each step's failure is reported (and the temporary removed).
  Status commit(Overwrite mode = Overwrite::replace);

 private:
  TempFile(std::string temp, std::string final, int fd) : temp_path_(std::move(temp)), final_path_(std::move(final)), fd_(fd) {}
  std::string temp_path_, final_path_;
  int fd_ = -1;
  bool committed_ = false;
};

// A destination named by the user, decided once by the rules above before
// anything is written (so `run` can refuse it before spending minutes).
class OutputFile {
 public:
  enum class Kind {
    standard_output,  // "-"
    stream,           // character device or FIFO: opened (no O_CREAT/O_TRUNC) at the first write
    atomic,           // regular file or new name: temporary + rename
  };
  // For atomic, creates the uniquely named temporary in the destination's
  // directory (which must exist). Creates nothing otherwise.
  static Result<OutputFile> open(const std::string& path, Overwrite mode = Overwrite::replace);
  // The same decision without creating anything (no temporary): whether
  // open() would refuse `path`. For a check before taking a lock.
  static Status check(const std::string& path, Overwrite mode = Overwrite::replace);
  OutputFile(OutputFile&&) noexcept;
  OutputFile& operator=(OutputFile&&) = delete;
  ~OutputFile();

  Kind kind() const { return kind_; }
  const std::string& path() const { return path_; }      // as given
  const std::string& target() const { return target_; }  // after following a symlink
  // Appends; errors name the path and errno.
  Status write(std::string_view content);
  // atomic: publishes the temporary; stream: close (its error reported);
  // stdout: fflush.
  Status commit();

 private:
  OutputFile() = default;
  static Result<OutputFile> classify(const std::string& path, Overwrite mode);
  Kind kind_ = Kind::standard_output;
  Overwrite mode_ = Overwrite::replace;
  std::string path_, target_;
  std::optional<TempFile> temp_;
  int stream_fd_ = -1;
};

// A name that becomes one path component: at most `max_bytes` (NAME_MAX is
// 255), longer ones cut and given a hash of the whole so two long names do
// not collide: "<first bytes>~<12 hex digits>".
std::string bounded_name(const std::string& name, size_t max_bytes = 200);

}  // namespace rmapbench::results
