#include "runners/compare/format.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>

namespace rmapbench::format {

std::string value(double v, size_t width) {
  if (std::isnan(v)) return "-";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  double a = std::fabs(v);
  std::string s;
  if (a == std::floor(a) && a < 1e9) {
    s = fmt::format("{:.0f}", v);
  } else if (a >= 0.01 && a < 1e7) {
    int magnitude = static_cast<int>(std::floor(std::log10(a)));
    int decimals = std::clamp(4 - magnitude, 0, 4);
    s = fmt::format("{:.{}f}", v, decimals);
  } else {
    s = fmt::format("{:.3g}", v);
  }
  for (int p = 2; s.size() > width && p >= 0; --p) s = fmt::format("{:.{}g}", v, p + 1);
  return s;
}

std::string change(double pct) {
  if (std::isnan(pct)) return "n/a";
  if (std::isinf(pct)) return pct > 0 ? "+inf%" : "-inf%";
  if (std::fabs(pct) < 0.05) return "0.0%";
  if (std::fabs(pct) >= 1000) return fmt::format("{:+.0f}%", pct);
  return fmt::format("{:+.1f}%", pct);
}

std::string percent(double fraction, int decimals) {
  if (std::isnan(fraction)) return "-";
  if (std::isinf(fraction)) return "inf%";
  return fmt::format("{:.{}f}%", fraction * 100, decimals);
}

std::string p_value(double p) {
  if (std::isnan(p)) return "-";
  if (p >= 0.9995) return "1";
  if (p >= 0.0001) return fmt::format("{:.4f}", p);
  return fmt::format("{:.1e}", p);
}

std::vector<std::string> wrap(std::string_view text, size_t width, std::string_view first_prefix,
                              std::string_view rest_prefix) {
  std::vector<std::string> out;
  std::string line(first_prefix);
  bool line_empty = true;  // no word on the current line yet
  auto flush = [&] {
    out.push_back(line);
    line = std::string(rest_prefix);
    line_empty = true;
  };
  auto place = [&](std::string_view word) {
    while (!word.empty()) {
      size_t room = width > line.size() ? width - line.size() : 0;
      size_t need = word.size() + (line_empty ? 0 : 1);
      if (need <= room) {
        if (!line_empty) line += ' ';
        line += word;
        line_empty = false;
        return;
      }
      if (!line_empty) {
        flush();
        continue;
      }
      // The word alone does not fit on an empty line: split it at a boundary.
      size_t avail = std::max<size_t>(room, 8);
      size_t limit = std::min(avail, word.size()), cut = 0;
      for (size_t i = limit; i >= 1 && cut == 0; --i)
        if (std::string_view("/_:-.,=").find(word[i - 1]) != std::string_view::npos) cut = i;
      if (cut < limit / 3) cut = limit;  // no useful boundary: split hard, keeping every character
      line += word.substr(0, cut);
      line_empty = false;
      word.remove_prefix(cut);
      if (!word.empty()) flush();
    }
  };
  size_t pos = 0;
  while (pos < text.size()) {
    size_t start = text.find_first_not_of(' ', pos);
    if (start == std::string_view::npos) break;
    size_t end = text.find(' ', start);
    if (end == std::string_view::npos) end = text.size();
    place(text.substr(start, end - start));
    pos = end;
  }
  if (!line_empty || out.empty()) out.push_back(line);
  return out;
}

std::string lines(const std::vector<std::string>& l) {
  std::string s;
  for (const auto& x : l) s += x + "\n";
  return s;
}

size_t display_width(std::string_view s) {
  size_t w = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\033') {
      while (i < s.size() && s[i] != 'm') ++i;
      continue;
    }
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) ++w;  // count UTF-8 lead bytes only
  }
  return w;
}

std::string pad_left(std::string_view s, size_t width) {
  size_t w = display_width(s);
  return std::string(w < width ? width - w : 0, ' ') + std::string(s);
}

std::string pad_right(std::string_view s, size_t width) {
  size_t w = display_width(s);
  return std::string(s) + std::string(w < width ? width - w : 0, ' ');
}

std::string colorize(std::string_view s, Color c) {
  const char* code = c == Color::red ? "31" : c == Color::green ? "32" : c == Color::yellow ? "33" : "1;31";
  return fmt::format("\033[{}m{}\033[0m", code, s);
}

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // XML 1.0 forbids most control characters even when escaped.
        if (static_cast<unsigned char>(ch) < 0x20 && ch != '\n' && ch != '\t' && ch != '\r') {
          out += '?';
        } else {
          out += ch;
        }
    }
  }
  return out;
}

}  // namespace rmapbench::format
