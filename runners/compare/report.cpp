// Text (terminal) and markdown renderings, and the format dispatch.
#include "runners/compare/report.hpp"

#include <fmt/core.h>

#include <cmath>

#include "runners/compare/format.hpp"

namespace rmapbench::report {

using compare::BenchmarkRow;
using compare::Comparison;
using compare::MetricRow;
using compare::Verdict;

std::optional<Format> parse_format(const std::string& name) {
  if (name == "text") return Format::text;
  if (name == "email") return Format::email;
  if (name == "markdown" || name == "md") return Format::markdown;
  if (name == "json") return Format::json;
  if (name == "junit") return Format::junit;
  return std::nullopt;
}

std::string render(const Comparison& c, Format f, bool color) {
  switch (f) {
    case Format::text: return render_text(c, color);
    case Format::email: return render_email(c);
    case Format::markdown: return render_markdown(c);
    case Format::json: return render_json(c);
    case Format::junit: return render_junit(c);
  }
  return {};
}

namespace {

std::string value_with_unit(const std::optional<stats::Summary>& s, const std::string& unit) {
  if (!s) return "-";
  return format::value(s->median, 12) + (unit.empty() ? "" : " " + unit);
}

std::string ci_text(const MetricRow& m) {
  if (std::isnan(m.ci.low)) return "-";
  return fmt::format("[{:.3f}, {:.3f}]", m.ci.low, m.ci.high);
}

std::string spread(const std::optional<stats::Summary>& s) {
  return s ? "±" + format::percent(s->cv, 1) : "";
}

std::string summary_line(const Comparison& c) {
  return fmt::format("{} regression(s), {} improvement(s), {} no change, {} noisy, {} only in base, {} only in new, "
                     "{} skipped, {} failed",
                     c.count(Verdict::regression), c.count(Verdict::improvement), c.count(Verdict::no_change),
                     c.count(Verdict::noisy), c.count(Verdict::only_in_base), c.count(Verdict::only_in_new),
                     c.count(Verdict::skipped), c.count(Verdict::error));
}

}  // namespace

std::string render_text(const Comparison& c, bool color) {
  std::string out;
  out += fmt::format("base: {}  ({}, {} repetitions)\n", c.base.label, c.base.path, c.base.repetitions);
  out += fmt::format("new:  {}  ({}, {} repetitions)\n", c.next.label, c.next.path, c.next.repetitions);
  for (const auto& d : c.config_differences) out += fmt::format("config: {}: {} -> {}\n", d.what, d.base, d.next);
  out += "host: " + c.host + "\n";
  if (c.forced) {
    out += "WARNING: compared with --force although the runs differ in:\n";
    for (const auto& d : c.incompatibilities) out += fmt::format("  {}: {} vs {}\n", d.what, d.base, d.next);
  }
  out += format::lines(format::wrap(c.test_description(), 100, "test: ", "      "));
  out += "result: " + summary_line(c) + "\n\n";

  std::vector<std::vector<std::string>> rows;
  std::vector<Verdict> row_verdicts;
  rows.push_back({"verdict", "benchmark", "metric", "base", "±cv", "new", "±cv", "change", "95% CI of ratio",
                  "p (adj.)", "why"});
  row_verdicts.push_back(Verdict::no_change);
  for (const BenchmarkRow* b : c.sorted()) {
    if (b->metrics.empty()) {
      rows.push_back({compare::verdict_name(b->verdict), b->name, "", "", "", "", "", "", "", "", b->reason});
      row_verdicts.push_back(b->verdict);
      continue;
    }
    bool first = true;
    for (const auto& m : b->metrics) {
      rows.push_back({compare::verdict_name(m.verdict), first ? b->name : "", m.metric,
                      value_with_unit(m.base, m.info.unit), spread(m.base), value_with_unit(m.next, m.info.unit),
                      spread(m.next), format::change(m.change_pct), ci_text(m), format::p_value(m.p_adjusted),
                      m.reason});
      row_verdicts.push_back(m.verdict);
      first = false;
    }
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], format::display_width(r[i]));
  const std::vector<bool> right = {false, false, false, true, true, true, true, true, false, true, false};
  for (size_t k = 0; k < rows.size(); ++k) {
    std::string line;
    for (size_t i = 0; i < rows[k].size(); ++i) {
      std::string cell = i + 1 == rows[k].size() ? rows[k][i]
                         : right[i]              ? format::pad_left(rows[k][i], width[i])
                                                 : format::pad_right(rows[k][i], width[i]);
      if (color && k > 0 && (i == 0 || i == 7)) {
        switch (row_verdicts[k]) {
          case Verdict::regression: cell = format::colorize(cell, format::Color::red); break;
          case Verdict::error: cell = format::colorize(cell, format::Color::bold_red); break;
          case Verdict::improvement: cell = format::colorize(cell, format::Color::green); break;
          case Verdict::noisy: cell = format::colorize(cell, format::Color::yellow); break;
          default: break;
        }
      }
      line += (i ? "  " : "") + cell;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  if (!c.notes.empty()) out += "\n";
  for (const auto& n : c.notes) out += format::lines(format::wrap(n, 100, "note: ", "      "));
  return out;
}

namespace {
std::string md(std::string_view s) {
  std::string out;
  for (char ch : s) {
    // The backslash itself too: a name ending in one would escape the escape.
    if (ch == '\\' || ch == '|' || ch == '*' || ch == '_' || ch == '`' || ch == '<' || ch == '>' || ch == '[' ||
        ch == ']' || ch == '&')
      out += '\\';
    out += ch == '\n' || ch == '\r' ? ' ' : ch;
  }
  return out;
}
}  // namespace

std::string render_markdown(const Comparison& c) {
  std::string out = fmt::format("## rmapbench compare: {} vs {}\n\n", md(c.base.label), md(c.next.label));
  out += "| | base | new |\n|---|---|---|\n";
  out += fmt::format("| kernel | {} | {} |\n", md(c.base.label), md(c.next.label));
  out += fmt::format("| file | {} | {} |\n", md(c.base.path), md(c.next.path));
  out += fmt::format("| repetitions | {} | {} |\n", c.base.repetitions, c.next.repetitions);
  for (const auto& d : c.config_differences) out += fmt::format("| {} | {} | {} |\n", md(d.what), md(d.base), md(d.next));
  out += "\n**Host:** " + md(c.host) + "\n\n";
  if (c.forced) {
    out += "**Warning:** compared with `--force` although the runs differ in:\n\n";
    for (const auto& d : c.incompatibilities) out += fmt::format("- {}: {} vs {}\n", md(d.what), md(d.base), md(d.next));
    out += "\n";
  }
  out += "**Test:** " + md(c.test_description()) + "\n\n";
  out += "**Result:** " + summary_line(c) + "\n\n";
  out += "| verdict | benchmark | metric | base | ±cv | new | ±cv | change | 95% CI of ratio | p (adj.) | why |\n";
  out += "|---|---|---|--:|--:|--:|--:|--:|---|--:|---|\n";
  for (const BenchmarkRow* b : c.sorted()) {
    if (b->metrics.empty()) {
      out += fmt::format("| {} | {} | | | | | | | | | {} |\n", compare::verdict_name(b->verdict), md(b->name), md(b->reason));
      continue;
    }
    for (const auto& m : b->metrics) {
      std::string verdict = compare::verdict_name(m.verdict);
      if (m.verdict == Verdict::regression || m.verdict == Verdict::improvement) verdict = "**" + verdict + "**";
      out += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", verdict, md(b->name),
                         md(m.metric), md(value_with_unit(m.base, m.info.unit)), spread(m.base),
                         md(value_with_unit(m.next, m.info.unit)), spread(m.next), format::change(m.change_pct),
                         ci_text(m), format::p_value(m.p_adjusted), md(m.reason));
    }
  }
  if (!c.notes.empty()) out += "\n";
  for (const auto& n : c.notes) out += "- " + md(n) + "\n";
  return out;
}

}  // namespace rmapbench::report
