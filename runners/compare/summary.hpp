// `rmapbench report`: a readable summary of one or more results files, and
// scaling curves (latency vs a sweep parameter, one line per kernel).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "kernels/status.hpp"
#include "runners/results/results.hpp"

namespace rmapbench::report {

// One file: median, CV, MAD, min, max, n per metric, then skips and failures.
// Several: one column per file, each after the first as "value (+x.x%)"
// against the first (mmtests compare-kernels style), no statistics.
std::string render_summary(const std::vector<results::ResultsFile>& files);

// --- Scaling plots -----------------------------------------------------------
// "fork_storm/fork_exit_wait/vmas:1000" -> {{"vmas", 1000}} : the `key:value`
// components of a benchmark name whose value is a number, with their index.
struct SweepComponent {
  size_t index = 0;
  std::string key;
  double value = 0;
};
std::vector<SweepComponent> sweep_components(const std::string& benchmark_name);

struct PlotPoint {
  double x = 0, median = 0, low = 0, high = 0;  // low/high: median -+ 1.4826 * MAD
};
struct PlotSeries {
  std::string label;  // kernel_release + variant (+ file name when two files share it)
  std::vector<PlotPoint> points;  // sorted by x
};
struct ScalingPlot {
  std::string family;     // "fork_storm/fork_exit_wait/vmas:*"
  std::string parameter;  // "vmas"
  std::string unit;       // time unit of the y axis
  std::string stem;       // file name without extension: "fork_storm-fork_exit_wait-vmas"
  std::vector<PlotSeries> series;
};
// Every family of benchmarks that differ in one numeric `key:value` component
// with at least two values in some file; real_time medians, converted to the
// first file's time unit.
std::vector<ScalingPlot> scaling_plots(const std::vector<results::ResultsFile>& files);

std::string gnuplot_data(const ScalingPlot& p);
// The script draws `data` into `png` and `svg` (paths as gnuplot should see them).
std::string gnuplot_script(const ScalingPlot& p, const std::string& data, const std::string& png, const std::string& svg);

// Writes <stem>.dat, <stem>.gp (re-runnable: cd DIR && gnuplot <stem>.gp),
// <stem>.png and <stem>.svg into dir for each plot (each file atomically);
// gnuplot must be on PATH. Returns the image files written.
Result<std::vector<std::string>> draw_plots(const std::vector<ScalingPlot>& plots, const std::string& dir);

}  // namespace rmapbench::report
