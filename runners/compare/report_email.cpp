// The email format: what a kernel developer pastes into a patch posting.
// Plain ASCII, <= 72 columns, rows as the 0-day robot prints them:
//
//      base  %stddev   %change        new  %stddev  metric
//   --------- ------  -------- -  --------- ------  -----------------------
//   fork_storm/fork_exit_wait/vmas:1000
//      2630.1            +4.8% R     2756.3 +-  3%  real_time (us)
#include <fmt/core.h>

#include <cmath>

#include "runners/compare/format.hpp"
#include "runners/compare/report.hpp"

namespace rmapbench::report {

using compare::BenchmarkRow;
using compare::Comparison;
using compare::MetricRow;
using compare::Verdict;

namespace {

constexpr size_t kValueWidth = 9, kSdWidth = 8, kChangeWidth = 8;
// base, sd, 1, change, mark (2), 2, new, sd, 2: the metric name starts at column 49
constexpr size_t kNameColumn = kValueWidth + kSdWidth + 1 + kChangeWidth + 2 + 2 + kValueWidth + kSdWidth + 2;

// Only printable ASCII survives; anything else (a CPU model with (R) in
// UTF-8, a kernel string) is replaced, so the mail stays plain text.
std::string ascii(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\t') {
      out += ' ';
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else if ((c & 0xC0) != 0x80) {
      out += '?';  // one '?' per non-ASCII character
    }
  }
  return out;
}

std::string stddev_cell(const std::optional<stats::Summary>& s) {
  // 0-day convention: the spread is shown only when above 2%.
  if (!s || std::isnan(s->cv) || s->cv * 100 <= 2) return "";
  if (std::isinf(s->cv) || s->cv * 100 >= 999.5) return "+>999%";
  return fmt::format("+-{:>3.0f}%", s->cv * 100);
}

char mark(Verdict v) {
  switch (v) {
    case Verdict::regression: return 'R';
    case Verdict::improvement: return 'I';
    case Verdict::noisy: return '?';
    default: return ' ';
  }
}

void add_wrapped(std::vector<std::string>& out, const std::string& text, const std::string& first,
                 const std::string& rest) {
  for (auto& l : format::wrap(ascii(text), kEmailWidth, first, rest)) out.push_back(l);
}

void add_row(std::vector<std::string>& out, const MetricRow& m) {
  std::string prefix = fmt::format("{:>{}}{:>{}} {:>{}} {}  {:>{}}{:>{}}  ", format::value(m.base ? m.base->median : NAN, kValueWidth),
                                   kValueWidth, stddev_cell(m.base), kSdWidth, format::change(m.change_pct), kChangeWidth,
                                   mark(m.verdict), format::value(m.next ? m.next->median : NAN, kValueWidth), kValueWidth,
                                   stddev_cell(m.next), kSdWidth);
  std::string name = m.metric + (m.info.unit.empty() ? "" : " (" + m.info.unit + ")");
  if (m.info.kind == MetricKind::exact) name += " [exact]";
  // Long metric names continue on the next lines, in the same column.
  add_wrapped(out, name, prefix, std::string(kNameColumn, ' '));
  if (m.verdict == Verdict::noisy) add_wrapped(out, m.reason, "    ? ", "      ");
  if (!m.primary && (m.verdict == Verdict::regression || m.verdict == Verdict::improvement))
    out.push_back("      (diagnostic: shown, does not gate)");
  if (m.verdict == Verdict::no_change && m.tested && !std::isnan(m.detectable_pct))
    out.push_back(std::isinf(m.detectable_pct)     ? "      no change (could not see any: too few repetitions)"
                  : m.detectable_pct > 1000 ? "      no change (could not see any below 10x: too few runs)"
                                            : fmt::format("      no change (could not see < {:.0f}%)", m.detectable_pct));
  // A noisy row's reason (above) already ends with what it could not see.

}

bool shown(const MetricRow& m) {
  return m.metric == "real_time" || m.verdict == Verdict::regression || m.verdict == Verdict::improvement;
}

}  // namespace

std::string render_email(const Comparison& c) {
  std::vector<std::string> out;
  add_wrapped(out, fmt::format("rmapbench compare: {} vs {}", c.base.label, c.next.label), "", "  ");
  out.push_back("");
  add_wrapped(out, fmt::format("{} ({}, {} repetitions{})", c.base.label, c.base.path, c.base.repetitions,
                               c.base.profile.empty() ? "" : ", " + c.base.profile + " profile"),
              "base:   ", "        ");
  add_wrapped(out, fmt::format("{} ({}, {} repetitions{})", c.next.label, c.next.path, c.next.repetitions,
                               c.next.profile.empty() ? "" : ", " + c.next.profile + " profile"),
              "new:    ", "        ");
  if (c.config_differences.empty()) {
    out.push_back("config: no difference in the recorded CONFIG_ options");
  } else {
    bool first = true;
    for (const auto& d : c.config_differences) {
      add_wrapped(out, fmt::format("{}: {} -> {}", d.what, d.base, d.next), first ? "config: " : "        ", "          ");
      first = false;
    }
  }
  add_wrapped(out, c.host, "host:   ", "        ");
  if (c.forced) {
    add_wrapped(out, "compared with --force although the runs differ in:", "WARNING ", "        ");
    for (const auto& d : c.incompatibilities)
      add_wrapped(out, fmt::format("{}: {} vs {}", d.what, d.base, d.next), "        ", "          ");
  }
  add_wrapped(out, c.test_description(true), "test:   ", "        ");
  add_wrapped(out,
              fmt::format("{} regression(s), {} improvement(s), {} no change, {} noisy, {} not compared{}",
                          c.count(Verdict::regression), c.count(Verdict::improvement), c.count(Verdict::no_change),
                          c.count(Verdict::noisy),
                          c.count(Verdict::only_in_base) + c.count(Verdict::only_in_new) + c.count(Verdict::skipped) +
                              c.count(Verdict::error),
                          c.count(Verdict::error) ? fmt::format(", {} FAILED", c.count(Verdict::error)) : ""),
              "result: ", "        ");
  out.push_back("");

  out.push_back(fmt::format("{:>{}}{:>{}} {:>{}}    {:>{}}{:>{}}  {}", "base", kValueWidth, "%stddev", kSdWidth,
                            "%change", kChangeWidth, "new", kValueWidth, "%stddev", kSdWidth, "metric"));
  out.push_back(fmt::format("{}  {} {} -  {}  {}  {}", std::string(kValueWidth, '-'), std::string(kSdWidth - 2, '-'),
                            std::string(kChangeWidth, '-'), std::string(kValueWidth, '-'),
                            std::string(kSdWidth - 2, '-'), std::string(kEmailWidth - kNameColumn, '-')));
  size_t hidden = 0;
  std::vector<const BenchmarkRow*> not_compared;
  for (const BenchmarkRow* b : c.sorted()) {
    if (b->metrics.empty()) {
      not_compared.push_back(b);
      continue;
    }
    add_wrapped(out, b->name, "", "    ");
    for (const auto& m : b->metrics) {
      if (shown(m)) {
        add_row(out, m);
      } else {
        ++hidden;
      }
    }
  }
  if (!not_compared.empty()) {
    out.push_back("");
    out.push_back("Not compared:");
    for (const BenchmarkRow* b : not_compared)
      add_wrapped(out, fmt::format("{}: {}: {}", b->name, compare::verdict_name(b->verdict), b->reason), "  ", "      ");
  }
  out.push_back("");
  std::string legend =
      "Values are medians of the repetitions; +-N% is the stddev in % of the mean, shown when above 2%. "
      "R = regression, I = improvement: significant after correction and beyond the threshold; "
      "? = noisy (too few repetitions or too much spread to decide).";
  if (hidden)
    legend += fmt::format(" {} counter row(s) without a flagged change are not shown (rmapbench compare --format "
                          "text lists all).",
                          hidden);
  add_wrapped(out, legend, "", "");
  for (const auto& n : c.notes) add_wrapped(out, n, "note: ", "      ");
  return format::lines(out);
}

}  // namespace rmapbench::report
