// Renders a Comparison. Renderers only format: every number and verdict
// comes from compare::Comparison.
#pragma once

#include <optional>
#include <string>

#include "runners/compare/compare.hpp"

namespace rmapbench::report {

enum class Format { text, email, markdown, json, junit };
std::optional<Format> parse_format(const std::string& name);

// Aligned table, regressions first; ANSI colours only when `color`.
std::string render_text(const compare::Comparison& c, bool color);
// Plain ASCII, every line <= 72 columns, 0-day robot style rows.
std::string render_email(const compare::Comparison& c);
std::string render_markdown(const compare::Comparison& c);
// Every number of the comparison, machine-readable (NaN/inf as null).
std::string render_json(const compare::Comparison& c);
// One testcase per benchmark; a failure per regression or error.
std::string render_junit(const compare::Comparison& c);

std::string render(const compare::Comparison& c, Format f, bool color = false);

inline constexpr size_t kEmailWidth = 72;

}  // namespace rmapbench::report
