// Number and text formatting shared by every human-readable output
// (compare reports, `rmapbench report`). No statistics here.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace rmapbench::format {

// A measured value in at most `width` characters, ~5 significant digits:
// 2630.1, 130.50, 1000 (integral values without decimals), 1.23e+07.
// NaN -> "-", inf -> "inf".
std::string value(double v, size_t width = 9);
// A relative change in percent: "+4.8%", "-0.3%", "0.0%", "+inf%", "n/a".
std::string change(double pct);
// A fraction as a whole percentage: 0.0123 -> "1%"; NaN -> "-".
std::string percent(double fraction, int decimals = 0);
// A p-value: "0.0003", "1.2e-06", "1".
std::string p_value(double p);

// Greedy word wrap: words longer than a line are split after one of "/_:-.,="
// (else hard), never dropped. Every returned line, prefix included, fits in
// `width` columns (when the prefixes leave room).
std::vector<std::string> wrap(std::string_view text, size_t width, std::string_view first_prefix = "",
                              std::string_view rest_prefix = "");
// Joins lines with '\n' and a trailing '\n'.
std::string lines(const std::vector<std::string>& l);

// Pads to `width` display columns (ANSI escapes excluded), left or right.
std::string pad_left(std::string_view s, size_t width);   // right-aligned
std::string pad_right(std::string_view s, size_t width);  // left-aligned
size_t display_width(std::string_view s);

// ANSI colour around text (only call when colouring is wanted).
enum class Color { red, green, yellow, bold_red };
std::string colorize(std::string_view s, Color c);

// XML attribute/text escaping.
std::string xml_escape(std::string_view s);

}  // namespace rmapbench::format
