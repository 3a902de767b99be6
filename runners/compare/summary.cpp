#include "runners/compare/summary.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "runners/compare/baseline.hpp"
#include "runners/compare/format.hpp"
#include "runners/compare/stats.hpp"
#include "kernels/process/subprocess.hpp"
#include "runners/results/atomic_file.hpp"

namespace rmapbench::report {

namespace {

std::string file_header(const results::ResultsFile& f) {
  std::string out = fmt::format("{}\n  kernel:  {}{}\n", f.path, f.label(),
                                f.get("arch").empty() ? "" : " (" + f.get("arch") + ")");
  if (auto fp = baseline::fingerprint(f.context)) out += fmt::format("  host:    {}, host-id {}\n", fp->describe(), fp->id());
  std::string complete = f.get("rmapbench.complete") == "false" ? ", INTERRUPTED (partial results)" : "";
  out += fmt::format("  run:     {}{} repetitions, {}{}{}\n",
                     f.get("rmapbench.profile").empty() ? "" : "profile " + f.get("rmapbench.profile") + ", ",
                     f.repetitions(), f.get("date", "date unknown"),
                     f.get("rmapbench.version").empty() ? "" : ", rmapbench " + f.get("rmapbench.version"), complete);
  return out;
}

std::string table(const std::vector<std::vector<std::string>>& rows, const std::vector<bool>& right) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size(), 0);
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], format::display_width(r[i]));
  }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      bool r_align = i < right.size() && right[i];
      line += (i ? "  " : "") + (r_align ? format::pad_left(r[i], width[i]) : format::pad_right(r[i], width[i]));
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string status_cell(const results::Benchmark* b) {
  if (!b) return "absent";
  if (b->error_message) return "FAILED";
  if (b->skip_message) return "skipped";
  return "";
}

}  // namespace

std::string render_summary(const std::vector<results::ResultsFile>& files) {
  std::string out;
  if (files.empty()) return out;
  for (size_t i = 0; i < files.size(); ++i)
    out += (files.size() > 1 ? fmt::format("[{}] ", i + 1) : "") + file_header(files[i]);
  for (const auto& f : files)
    for (const auto& n : f.notes) out += format::lines(format::wrap(n, 100, "note: ", "      "));
  out += "\n";

  std::vector<std::string> names;
  for (const auto& f : files)
    for (const auto& b : f.benchmarks)
      if (std::find(names.begin(), names.end(), b.name) == names.end()) names.push_back(b.name);

  std::vector<std::vector<std::string>> rows;
  std::vector<bool> right;
  if (files.size() == 1) {
    rows.push_back({"benchmark", "metric", "median", "unit", "±cv", "MAD", "min", "max", "n"});
    right = {false, false, true, false, true, true, true, true, true};
  } else {
    rows.push_back({"benchmark", "metric", "unit"});
    right = {false, false, false};
    for (size_t i = 0; i < files.size(); ++i) {
      rows[0].push_back(fmt::format("[{}] {}", i + 1, files[i].label()));
      rows[0].push_back("±cv");
      right.push_back(true);
      right.push_back(true);
    }
  }
  std::vector<std::string> problems;
  for (const auto& name : names) {
    std::vector<const results::Benchmark*> per_file;
    std::vector<std::string> metrics;
    for (size_t i = 0; i < files.size(); ++i) {
      const results::Benchmark* b = files[i].find(name);
      per_file.push_back(b);
      if (b && b->ran())
        for (const auto& m : b->metric_names())
          if (std::find(metrics.begin(), metrics.end(), m) == metrics.end()) metrics.push_back(m);
      std::string prefix = files.size() > 1 ? fmt::format("[{}] ", i + 1) : "";
      if (b && b->error_message) problems.push_back(prefix + name + ": FAILED: " + *b->error_message);
      if (b && b->skip_message) problems.push_back(prefix + name + ": " + *b->skip_message);
    }
    if (metrics.empty()) continue;
    bool first = true;
    for (const auto& m : metrics) {
      std::vector<std::string> row = {first ? name : "", m};
      first = false;
      const results::Benchmark* ref = nullptr;
      for (size_t i = 0; i < files.size(); ++i)
        if (per_file[i] && per_file[i]->ran()) {
          ref = per_file[i];
          row.push_back(files[i].metric_info(*ref, m).unit);
          break;
        }
      if (files.size() == 1) {
        auto s = stats::summarize(ref->samples(m));
        std::string unit = row.back();
        row.pop_back();
        rows.push_back({row[0], row[1], format::value(s.median, 12), unit, format::percent(s.cv, 1),
                        format::value(s.mad, 12), format::value(s.min, 12), format::value(s.max, 12),
                        std::to_string(s.n)});
        continue;
      }
      double first_median = NAN;
      for (size_t i = 0; i < files.size(); ++i) {
        const results::Benchmark* b = per_file[i];
        std::vector<double> v = b && b->ran() ? b->samples(m) : std::vector<double>{};
        if (v.empty()) {
          row.push_back(b && !b->ran() ? status_cell(b) : (b ? "-" : "absent"));
          row.push_back("");
          continue;
        }
        auto s = stats::summarize(v);
        std::string cell = format::value(s.median, 12);
        if (std::isnan(first_median)) {
          first_median = s.median;
        } else if (first_median != 0) {
          cell += " (" + format::change((s.median / first_median - 1) * 100) + ")";
        }
        row.push_back(cell);
        row.push_back(format::percent(s.cv, 1));
      }
      rows.push_back(row);
    }
  }
  out += table(rows, right);
  if (!problems.empty()) out += "\n";
  for (const auto& p : problems) out += p + "\n";
  return out;
}

std::vector<SweepComponent> sweep_components(const std::string& name) {
  std::vector<SweepComponent> out;
  size_t index = 0, pos = 0;
  while (pos <= name.size()) {
    size_t slash = name.find('/', pos);
    if (slash == std::string::npos) slash = name.size();
    std::string comp = name.substr(pos, slash - pos);
    auto colon = comp.find(':');
    if (colon != std::string::npos && colon > 0 && colon + 1 < comp.size()) {
      try {
        size_t used = 0;
        double v = std::stod(comp.substr(colon + 1), &used);
        if (used == comp.size() - colon - 1) out.push_back({index, comp.substr(0, colon), v});
      } catch (...) {
      }
    }
    ++index;
    pos = slash + 1;
  }
  return out;
}

namespace {

double to_ns(const std::string& unit) {
  if (unit == "s") return 1e9;
  if (unit == "ms") return 1e6;
  if (unit == "us") return 1e3;
  return 1;
}

std::string family_of(const std::string& name, size_t index) {
  std::string out;
  size_t i = 0, pos = 0;
  while (pos <= name.size()) {
    size_t slash = name.find('/', pos);
    if (slash == std::string::npos) slash = name.size();
    std::string comp = name.substr(pos, slash - pos);
    if (i == index) comp = comp.substr(0, comp.find(':')) + ":*";
    out += (i ? "/" : "") + comp;
    ++i;
    pos = slash + 1;
  }
  return out;
}

std::string stem_of(const std::string& family, const std::string& param) {
  std::string s;
  std::string without_param;
  for (size_t pos = 0; pos <= family.size();) {
    size_t slash = family.find('/', pos);
    if (slash == std::string::npos) slash = family.size();
    std::string comp = family.substr(pos, slash - pos);
    if (!comp.ends_with(":*")) without_param += (without_param.empty() ? "" : "/") + comp;
    pos = slash + 1;
  }
  for (char c : without_param + "-vs-" + param) {
    s += (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.') ? c : '-';
  }
  std::string squeezed;
  for (char c : s)
    if (!(c == '-' && !squeezed.empty() && squeezed.back() == '-')) squeezed += c;
  // One path component, well below NAME_MAX with its extensions and the
  // temporary-file decoration.
  return results::bounded_name(squeezed, 100);
}

// Everything the gnuplot script says that came from a results file (titles,
// series labels, the family in comments) goes through this allow-list:
// letters, digits, space and . _ : + , = ( ) / @ % ~ - ; anything else (quotes,
// backslash, backtick, $, newline, other controls) becomes '?', and the text
// is cut at 120 bytes. Inside gnuplot's single quotes, what is left cannot end
// the string, start a command or substitute one.
std::string base_name(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string plot_label(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (out.size() >= 120) {
      out += "...";
      break;
    }
    const bool allowed = std::isalnum(static_cast<unsigned char>(c)) || std::strchr(" ._:+,=()/@%~-", c) != nullptr;
    out += allowed && c != '\0' ? c : '?';
  }
  return out;
}

// gnuplot single-quoted string: a quote is written twice.
std::string gp_quote(const std::string& s) {
  std::string out = "'";
  for (char c : plot_label(s)) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

}  // namespace

std::vector<ScalingPlot> scaling_plots(const std::vector<results::ResultsFile>& files) {
  std::map<std::string, ScalingPlot> plots;  // by family
  std::vector<std::string> order;
  std::map<std::string, int> label_uses;
  for (const auto& f : files) ++label_uses[f.label()];
  for (const auto& f : files) {
    std::string label = f.label();
    if (label_uses[label] > 1) label += " [" + std::filesystem::path(f.path).filename().string() + "]";
    for (const auto& b : f.benchmarks) {
      if (!b.ran() || b.repetitions.empty()) continue;
      for (const auto& c : sweep_components(b.name)) {
        std::string family = family_of(b.name, c.index);
        auto [it, fresh] = plots.try_emplace(family);
        ScalingPlot& p = it->second;
        if (fresh) {
          order.push_back(family);
          p.family = family;
          p.parameter = c.key;
          p.unit = b.time_unit;
          p.stem = stem_of(family, c.key);
        }
        auto s = std::find_if(p.series.begin(), p.series.end(), [&](const PlotSeries& x) { return x.label == label; });
        if (s == p.series.end()) {
          p.series.push_back({label, {}});
          s = p.series.end() - 1;
        }
        std::vector<double> v = b.samples("real_time");
        double scale = to_ns(b.time_unit) / to_ns(p.unit);
        for (auto& x : v) x *= scale;
        double med = stats::median(v), spread = 1.4826 * stats::mad(v);
        s->points.push_back({c.value, med, med - spread, med + spread});
      }
    }
  }
  std::vector<ScalingPlot> out;
  for (const auto& family : order) {
    ScalingPlot& p = plots[family];
    bool curve = false;
    for (auto& s : p.series) {
      std::sort(s.points.begin(), s.points.end(), [](const PlotPoint& a, const PlotPoint& b) { return a.x < b.x; });
      std::set<double> xs;
      for (const auto& pt : s.points) xs.insert(pt.x);
      curve = curve || xs.size() >= 2;
    }
    if (curve) out.push_back(std::move(p));
  }
  return out;
}

std::string gnuplot_data(const ScalingPlot& p) {
  std::string out = fmt::format("# {}: real_time median ({}) vs {}; columns: {} median low high "
                                "(low/high = median -+ 1.4826*MAD)\n",
                                plot_label(p.family), plot_label(p.unit), plot_label(p.parameter), plot_label(p.parameter));
  for (size_t i = 0; i < p.series.size(); ++i) {
    out += fmt::format("{}# series {}: {}\n", i ? "\n\n" : "", i, plot_label(p.series[i].label));
    for (const auto& pt : p.series[i].points)
      out += fmt::format("{:g} {:.6g} {:.6g} {:.6g}\n", pt.x, pt.median, pt.low, pt.high);
  }
  return out;
}

std::string gnuplot_script(const ScalingPlot& p, const std::string& data, const std::string& png, const std::string& svg) {
  double lo = INFINITY, hi = 0;
  for (const auto& s : p.series)
    for (const auto& pt : s.points) lo = std::min(lo, pt.x), hi = std::max(hi, pt.x);
  std::string plot = "plot ";
  for (size_t i = 0; i < p.series.size(); ++i)
    plot += fmt::format("{}{} index {} using 1:2:3:4 with yerrorlines title {}", i ? ", \\\n     " : "",
                        i ? "''" : gp_quote(data), i, gp_quote(p.series[i].label));
  std::string body = fmt::format(
      "set title {} noenhanced\n"
      "set xlabel {} noenhanced\n"
      "set ylabel {} noenhanced\n"
      "set key top left noenhanced\n"
      "set grid\n"
      "set yrange [0:*]\n"
      "{}"
      "{}\n",
      gp_quote(p.family), gp_quote(p.parameter), gp_quote("real_time, median (" + p.unit + ")"),
      lo > 0 && hi / lo >= 50 ? "set logscale x\n" : "", plot);
  return fmt::format(
      "# {} - written by rmapbench report --plot; re-run with: gnuplot {}.gp\n"
      "set terminal pngcairo size 1000,650 noenhanced\n"
      "set output {}\n"
      "{}"
      "set terminal svg size 1000,650 dynamic noenhanced\n"
      "set output {}\n"
      "replot\n"
      "unset output\n",
      plot_label(p.family), p.stem, gp_quote(png), body, gp_quote(svg));
}

Result<std::vector<std::string>> draw_plots(const std::vector<ScalingPlot>& plots, const std::string& dir_arg) {
  auto gnuplot = proc::find_on_path("gnuplot");
  if (!gnuplot)
    return Status::error("gnuplot not found on PATH; install it (apt-get install gnuplot-nox) or run without --plot",
                         ENOENT);
  std::error_code ec;
  std::filesystem::create_directories(dir_arg, ec);
  if (ec) return Status::error(fmt::format("cannot create plot directory {}: {}", dir_arg, ec.message()));
  const std::string dir = std::filesystem::absolute(dir_arg).string();
  std::vector<std::string> written;
  for (const auto& p : plots) {
    const std::string base = dir + "/" + p.stem;
    if (Status s = results::write_file_atomic(base + ".dat", gnuplot_data(p)); s.failed()) return s;
    if (Status s = results::write_file_atomic(base + ".gp", gnuplot_script(p, p.stem + ".dat", p.stem + ".png", p.stem + ".svg"));
        s.failed())
      return s;
    // Draw into temporaries, publish both images only when gnuplot succeeded.
    auto png = results::TempFile::create(base + ".png");
    if (!png) return png.status();
    auto svg = results::TempFile::create(base + ".svg");
    if (!svg) return svg.status();
    auto script = results::TempFile::create(base + ".run.gp");
    if (!script) return script.status();
    if (Status s = script->write(gnuplot_script(p, p.stem + ".dat", base_name(png->path()), base_name(svg->path()))); s.failed()) return s;
    proc::Spawn spawn;
    spawn.argv = {*gnuplot, script->path()};
    spawn.cwd = dir;
    spawn.capture_stderr = true;
    auto outcome = proc::run(spawn);
    if (!outcome) return outcome.status();
    if (outcome->exit_code != 0)
      return Status::error(fmt::format("gnuplot failed on {}.gp (exit {}): {}", base, outcome->exit_code, outcome->err));
    if (Status s = png->commit(); s.failed()) return s;
    if (Status s = svg->commit(); s.failed()) return s;
    written.push_back(base + ".png");
    written.push_back(base + ".svg");
  }
  return written;
}

}  // namespace rmapbench::report
