#include "runners/cli/compare_options.hpp"

#include <cmath>

#include "runners/cli/command_line.hpp"

namespace rmapbench::cli {

namespace {

// A number, optionally with a '%' after it.
bool parse_number(const std::string& text, double& out) {
  std::string s = text;
  if (!s.empty() && s.back() == '%') s.pop_back();
  try {
    size_t used = 0;
    out = std::stod(s, &used);
    return used == s.size() && std::isfinite(out);
  } catch (...) {
    return false;
  }
}

std::optional<std::string> apply_threshold(const std::string& value, compare::Options& o) {
  double v = 0;
  if (auto e = value.find('='); e != std::string::npos) {
    std::string metric = value.substr(0, e);
    if (metric.empty() || !parse_number(value.substr(e + 1), v) || v < 0)
      return "--threshold " + value + ": expected NAME=PERCENT, e.g. fork_us=5";
    o.metric_threshold_pct[metric] = v;
  } else {
    if (!parse_number(value, v) || v < 0) return "--threshold " + value + ": expected a percentage >= 0, e.g. 2";
    o.threshold_pct = v;
  }
  return std::nullopt;
}

}  // namespace

ComparisonOptions::ComparisonOptions(CLI::App& app) {
  repeatable(app.add_option("--threshold", thresholds_));
  alpha_option_ = app.add_option("--alpha", alpha_);
  correction_option_ = app.add_option("--correction", correction_);
  min_repetitions_option_ = app.add_option("--min-repetitions", min_repetitions_);
  max_cv_option_ = app.add_option("--max-cv", max_cv_);
  app.add_flag("--force", force_);
  format_option_ = app.add_option("--format", format_);
  out_option_ = app.add_option("-o,--out", out_);
  color_option_ = app.add_option("--color", color_);
  noise_profile_option_ = app.add_option("--noise-profile", noise_profile_);
  app.add_flag("--no-noise-profile", no_noise_profile_);
}

std::optional<std::string> ComparisonOptions::apply(report::Request& request, noise::Choice& noise) const {
  compare::Options& o = request.options;
  for (const std::string& t : thresholds_)
    if (auto err = apply_threshold(t, o)) return err;
  double v = 0;
  if (given(alpha_option_)) {
    if (!parse_number(alpha_, v) || v <= 0 || v >= 1) return "--alpha " + alpha_ + ": expected a number in (0, 1), e.g. 0.05";
    o.alpha = v;
  }
  if (given(correction_option_)) {
    if (correction_ == "bh" || correction_ == "benjamini-hochberg")
      o.correction = compare::Correction::benjamini_hochberg;
    else if (correction_ == "holm")
      o.correction = compare::Correction::holm;
    else
      return "--correction " + correction_ + ": expected bh or holm";
  }
  if (given(min_repetitions_option_)) {
    if (!parse_number(min_repetitions_, v) || v < 1 || v != std::floor(v))
      return "--min-repetitions " + min_repetitions_ + ": expected an integer >= 1";
    o.min_repetitions = static_cast<int>(v);
  }
  if (given(max_cv_option_)) {
    if (!parse_number(max_cv_, v) || v <= 0) return "--max-cv " + max_cv_ + ": expected a percentage > 0";
    o.max_cv_pct = v;
  }
  if (force_) o.force = true;
  if (given(format_option_)) {
    auto f = report::parse_format(format_);
    if (!f) return "--format " + format_ + ": expected text, email, markdown, json or junit";
    request.format = *f;
  }
  if (given(out_option_)) {
    if (out_.empty()) return std::string("--out needs a file name");
    request.out = out_;
  }
  if (given(color_option_)) {
    if (color_ == "auto")
      request.color = report::ColorMode::auto_detect;
    else if (color_ == "always")
      request.color = report::ColorMode::always;
    else if (color_ == "never")
      request.color = report::ColorMode::never;
    else
      return "--color " + color_ + ": expected auto, always or never";
  }
  if (given(noise_profile_option_)) {
    if (noise_profile_.empty()) return std::string("--noise-profile needs a file");
    noise.path = noise_profile_;
  }
  if (no_noise_profile_) noise.none = true;
  return std::nullopt;
}

std::string ComparisonOptions::help() {
  return "  --format F           text (default; aligned, coloured on a terminal,\n"
         "                       regressions first), email (plain ASCII, <= 72 columns,\n"
         "                       0-day robot style rows, for a patch posting),\n"
         "                       markdown, json (every number), junit (CI)\n"
         "  --out FILE           write the report to FILE (atomically; a device or FIFO\n"
         "                       is written to in place; - is stdout) instead of stdout\n"
         "  --color WHEN         auto (default), always or never (text format only)\n"
         "  --threshold P        practical threshold in percent (default 2): a change is\n"
         "                       flagged only when significant AND larger than P\n"
         "  --threshold NAME=P   threshold for one metric (repeatable), e.g. fork_us=5;\n"
         "                       for exact metrics the default is 0 (any difference)\n"
         "  --alpha A            significance level after correction (default 0.05)\n"
         "  --correction bh|holm multiple-comparison correction over every test in the\n"
         "                       report: Benjamini-Hochberg (default) or Holm-Bonferroni\n"
         "  --min-repetitions N  fewer repetitions on either side: noisy (default 5)\n"
         "  --max-cv P           robust CV above P percent on either side: noisy\n"
         "                       unless the change is significant and larger (default 10)\n"
         "  --force              compare even across arch, hosts, emulation or THP/KSM\n"
         "                       settings; the report header lists what differed\n"
         "  --noise-profile FILE the host's noise profile (rmapbench calibrate); default:\n"
         "                       baselines/<arch>/<host-id>/noise.profile of BASE's host\n"
         "                       when it exists\n"
         "  --no-noise-profile   use none\n";
}

}  // namespace rmapbench::cli
