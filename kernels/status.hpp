// Error values shared by every layer: helpers report failures, they never
// exit the process, so a failing workload cannot take the run down with it.
#pragma once

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

namespace rmapbench {

class Status {
 public:
  // What a failure means to a benchmark: the kernel or an oracle went wrong
  // (error), the host cannot run it (skip: a missing feature, a refused
  // knob), or the kernel declined a best-effort operation that another
  // attempt may get (declined: a folio it would not split this time).
  enum class Kind { error, skip, declined };

  Status() = default;  // success
  static Status ok() { return {}; }
  static Status skip(std::string reason) { return Status(std::move(reason), 0, Kind::skip); }
  static Status declined(std::string message) { return Status(std::move(message), 0, Kind::declined); }
  // A failed system call: `what` says what we tried, errno is captured now.
  static Status from_errno(std::string what, int err = errno) {
    return Status(std::move(what) + ": " + std::strerror(err), err);
  }
  static Status error(std::string message, int err = 0) { return Status(std::move(message), err); }

  explicit operator bool() const { return !failed_; }
  bool failed() const { return failed_; }
  int err() const { return err_; }  // errno of the failure, 0 if none
  Kind kind() const { return kind_; }
  bool skipped() const { return failed_ && kind_ == Kind::skip; }
  const std::string& message() const { return message_; }

  // Prefixes context while the error travels up ("fork storm setup: mmap: ENOMEM").
  Status context(const std::string& where) const {
    if (!failed_) return *this;
    return Status(where + ": " + message_, err_, kind_);
  }

 private:
  Status(std::string message, int err, Kind kind = Kind::error)
      : failed_(true), err_(err), kind_(kind), message_(std::move(message)) {}
  bool failed_ = false;
  int err_ = 0;
  Kind kind_ = Kind::error;
  std::string message_;
};

// A value or the Status explaining why there is none.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT
  explicit operator bool() const { return value_.has_value(); }
  bool failed() const { return !value_.has_value(); }
  T& value() { return *value_; }
  const T& value() const { return *value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  const Status& status() const { return status_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace rmapbench
