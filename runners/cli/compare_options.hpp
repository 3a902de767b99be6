// The options `compare` and `check` share: how the report is rendered and
// written (--format, --out, --color), how a change is decided (--threshold,
// --alpha, ...: compare::Options) and which noise profile is used. They are
// read here; runners/compare only decides and renders with what they say.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

#include "runners/compare/noise_profile.hpp"
#include "runners/compare/output.hpp"

namespace rmapbench::cli {

class ComparisonOptions {
 public:
  // Declares the options on `app`; their text is checked by apply().
  explicit ComparisonOptions(CLI::App& app);
  ComparisonOptions(const ComparisonOptions&) = delete;
  ComparisonOptions& operator=(const ComparisonOptions&) = delete;

  // After `app` parsed: sets in `request` and `noise` what was given (the
  // rest keeps its value, so several parts of one command line can be
  // applied in turn). Returns the usage error, e.g. "--alpha 1.5: expected a
  // number in (0, 1), e.g. 0.05", or nullopt.
  std::optional<std::string> apply(report::Request& request, noise::Choice& noise) const;

  // The help text of the options, one option a line, indented by two spaces.
  static std::string help();

 private:
  std::vector<std::string> thresholds_;
  std::string alpha_, correction_, min_repetitions_, max_cv_, format_, out_, color_, noise_profile_;
  bool force_ = false, no_noise_profile_ = false;
  CLI::Option *alpha_option_, *correction_option_, *min_repetitions_option_, *max_cv_option_, *format_option_,
      *out_option_, *color_option_, *noise_profile_option_;
};

}  // namespace rmapbench::cli
