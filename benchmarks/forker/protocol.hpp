// The lean forker's messages (benchmarks/forker/forker.cpp <-> LeanForker in
// benchmarks/mm/lean_forker.*). One message per SOCK_SEQPACKET datagram:
//
//   <verb> <integer>...[\n<free text>]
//
// The verb and the integers are one line, separated by single spaces; the
// text after the first newline (error messages) is free. Header-only and
// allocation-free: the forker is a static program that links nothing else.
//
//   forker -> benchmark  ready <layout_vmas> <process_vmas>   (after start; -1: /proc/self/maps unreadable)
//   benchmark -> forker  fork <forks> <stamp 0|1>             (+ perf counter fds, SCM_RIGHTS, to read around the forks)
//   forker -> benchmark  forked <forks> <total_ns> <fork_ns> <exit_ns> <sys_ns> <increase per passed fd, -1: unreadable>...
//   benchmark -> forker  bare <forks> <pause_us>              (a bare fork/_exit/waitpid loop; untimed sleep before each fork)
//   forker -> benchmark  forked <forks> <total_ns> 0 0 <sys_ns>
//   benchmark -> forker  check <corrupt_for_test 0|1>         (the fork-isolation oracle)
//   forker -> benchmark  ok
//   forker -> benchmark  error <kind> <errno> <pid> <wait_status>\n<message>
//   benchmark -> forker  quit
#pragma once

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <initializer_list>

namespace rmapbench::forker {

inline constexpr size_t kMaxMessageBytes = 1024;
inline constexpr int kMaxNumbers = 12;
inline constexpr int kMaxPassedFds = 4;
inline constexpr size_t kMaxVerbBytes = 15;

// What an `error` reply's kind says went wrong (the client words it).
enum ErrorKind : long long {
  kErrorOther = 0,         // the text says it all (errno may add its name)
  kErrorForkFailed = 1,    // fork() failed with errno
  kErrorChildFailed = 2,   // a forked child exited or died badly: pid, wait status
};

struct Message {
  char verb[kMaxVerbBytes + 1] = {};
  long long numbers[kMaxNumbers] = {};
  int count = 0;
  char text[kMaxMessageBytes] = {};

  bool is(const char* v) const { return std::strcmp(verb, v) == 0; }
};

inline Message make(const char* verb, std::initializer_list<long long> numbers, const char* text = "") {
  Message m;
  std::snprintf(m.verb, sizeof m.verb, "%s", verb);
  for (long long n : numbers)
    if (m.count < kMaxNumbers) m.numbers[m.count++] = n;
  std::snprintf(m.text, sizeof m.text, "%s", text);
  return m;
}

enum class ParseError { none, empty, too_long, bad_verb, bad_number, too_many_numbers };

inline const char* describe(ParseError e) {
  switch (e) {
    case ParseError::none: return "no error";
    case ParseError::empty: return "empty message";
    case ParseError::too_long: return "message longer than its buffer";
    case ParseError::bad_verb: return "the verb is not 1-15 lowercase letters or '_'";
    case ParseError::bad_number: return "an argument is not a 64-bit decimal integer";
    case ParseError::too_many_numbers: return "more arguments than a message carries";
  }
  return "unknown error";
}

inline ParseError parse(const char* data, size_t len, Message* out) {
  Message m;
  if (len == 0) return ParseError::empty;
  if (len >= kMaxMessageBytes) return ParseError::too_long;
  if (std::memchr(data, '\0', len)) return ParseError::bad_number;
  const char* const end = data + len;
  const char* line_end = static_cast<const char*>(std::memchr(data, '\n', len));
  if (!line_end) line_end = end;
  const char* p = data;
  size_t verb_len = 0;
  while (p < line_end && *p != ' ') {
    const char c = *p++;
    if (!((c >= 'a' && c <= 'z') || c == '_') || verb_len >= kMaxVerbBytes) return ParseError::bad_verb;
    m.verb[verb_len++] = c;
  }
  if (verb_len == 0) return ParseError::bad_verb;
  while (p < line_end) {
    ++p;  // the single space before each number
    if (m.count == kMaxNumbers) return ParseError::too_many_numbers;
    const bool negative = p < line_end && *p == '-';
    if (negative) ++p;
    if (p == line_end || *p < '0' || *p > '9') return ParseError::bad_number;
    unsigned long long magnitude = 0;
    const unsigned long long limit = negative ? 9223372036854775808ull : 9223372036854775807ull;
    while (p < line_end && *p >= '0' && *p <= '9') {
      const unsigned digit = static_cast<unsigned>(*p++ - '0');
      if (magnitude > (limit - digit) / 10) return ParseError::bad_number;
      magnitude = magnitude * 10 + digit;
    }
    if (p < line_end && *p != ' ') return ParseError::bad_number;
    m.numbers[m.count++] = negative ? static_cast<long long>(0ull - magnitude) : static_cast<long long>(magnitude);
  }
  if (line_end < end) {
    const size_t text_len = static_cast<size_t>(end - line_end - 1);
    std::memcpy(m.text, line_end + 1, text_len);
    m.text[text_len] = '\0';
  }
  *out = m;
  return ParseError::none;
}

// Returns the length written into `buf` (not NUL-terminated), or 0 when
// even the verb and numbers do not fit. A text too long for the message is
// cut.
inline size_t format(const Message& m, char* buf, size_t size) {
  char head[kMaxVerbBytes + 1 + kMaxNumbers * 21];  // 21: a space and up to 20 characters per number
  size_t len = static_cast<size_t>(std::snprintf(head, sizeof head, "%s", m.verb));
  for (int i = 0; i < m.count && len < sizeof head; ++i)
    len += static_cast<size_t>(std::snprintf(head + len, sizeof head - len, " %lld", m.numbers[i]));
  const size_t limit = (size < kMaxMessageBytes ? size : kMaxMessageBytes - 1);
  if (len >= sizeof head || len > limit) return 0;
  std::memcpy(buf, head, len);
  const size_t text_len = std::strlen(m.text);
  if (text_len > 0 && len + 1 < limit) {
    buf[len++] = '\n';
    const size_t room = limit - len;
    const size_t n = text_len < room ? text_len : room;
    std::memcpy(buf + len, m.text, n);
    len += n;
  }
  return len;
}

// An `error` reply's parts.
struct ErrorReply {
  long long kind = kErrorOther;
  int err = 0;
  int pid = -1;
  int wait_status = 0;
  const char* text = "";
};

inline bool read_error(const Message& m, ErrorReply* out) {
  if (!m.is("error") || m.count != 4) return false;
  out->kind = m.numbers[0];
  out->err = static_cast<int>(m.numbers[1]);
  out->pid = static_cast<int>(m.numbers[2]);
  out->wait_status = static_cast<int>(m.numbers[3]);
  out->text = m.text;
  return true;
}

}  // namespace rmapbench::forker
