// Formatting usable inside a signal handler or a freshly forked child: no
// allocation, no locale, no stdio.
#pragma once

namespace rmapbench::safety {

// Writes v in decimal at p; returns the end.
inline char* put_uint(char* p, unsigned long long v) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) *p++ = tmp[--n];
  return p;
}

// Copies the NUL-terminated s to p (without the NUL); returns the end.
inline char* put_str(char* p, const char* s) {
  while (*s) *p++ = *s++;
  return p;
}

}  // namespace rmapbench::safety
