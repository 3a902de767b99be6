#include "runners/cli/run_options.hpp"

#include "runners/cli/command_line.hpp"

#include <fmt/core.h>

#include <regex.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <regex>
#include <stdexcept>

namespace rmapbench::cli {

namespace {

std::string sanitize(std::string s) {
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
  return s.empty() ? "unknown" : s;
}

// One component of a results file name: sanitized, and cut (with a hash of
// the whole) so the name stays well below NAME_MAX.
std::string name_part(const std::string& s, size_t max_bytes) {
  std::string out = sanitize(s);
  if (out.size() <= max_bytes) return out;
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64
  for (unsigned char c : out) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return out.substr(0, max_bytes - 9) + fmt::format("_{:08x}", h & 0xffffffffULL);
}

}  // namespace

std::vector<long> parse_long_list(const std::string& text, const std::string& what) {
  std::vector<long> values;
  size_t pos = 0;
  while (true) {
    const size_t comma = text.find(',', pos);
    const std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t used = 0;
    long v = -1;
    try {
      v = std::stol(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || v < 0)
      throw std::invalid_argument(fmt::format("{}: '{}' is not a non-negative integer", what, item));
    values.push_back(v);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return values;
}

RunOptions parse_run_options(const std::vector<std::string>& args) {
  RunOptions o;
  CLI::App app;
  use_command_conventions(app);
  std::string profile, repetitions, runs;
  std::vector<std::string> sweeps;
  app.add_option("--filter", o.filter);
  CLI::Option* profile_option = app.add_option("--profile", profile);
  CLI::Option* repetitions_option = app.add_option("--repetitions", repetitions);
  CLI::Option* variant_option = app.add_option("--variant", o.variant);
  // --benchmark_out is Google Benchmark's name for it; the file is ours to write.
  CLI::Option* out_option = app.add_option("--out,--benchmark_out", o.out);
  repeatable(app.add_option("--sweep", sweeps));
  app.add_flag("-q,--quiet", o.quiet);
  app.add_flag("--keep-aslr", o.keep_aslr);
  app.add_flag("--allow-destructive", o.allow_destructive);
  CLI::Option* runs_option = app.add_option("--runs", runs);

  for (const std::string& extra : parse_arguments(app, args, Extras::keep)) {
    if (!extra.starts_with("--benchmark_")) throw std::invalid_argument(fmt::format("unknown option '{}'", extra));
    if (extra.starts_with("--benchmark_out_format"))
      throw std::invalid_argument("results are always JSON; --benchmark_out_format cannot be changed");
    o.benchmark_flags.push_back(extra);
  }
  if (given(profile_option)) {
    auto p = parse_profile(profile);
    if (!p) throw std::invalid_argument(fmt::format("unknown profile '{}' (quick or full)", profile));
    o.profile = *p;
  }
  if (given(repetitions_option)) {
    auto list = parse_long_list(repetitions, "--repetitions");
    if (list.size() != 1 || list[0] < 1 || list[0] > 1000)
      throw std::invalid_argument("--repetitions must be one integer from 1 to 1000");
    o.repetitions = static_cast<int>(list[0]);
  }
  if (given(variant_option)) {
    if (o.variant.empty() || sanitize(o.variant) != o.variant)
      throw std::invalid_argument("--variant takes letters, digits, '.', '_' and '-' only");
    if (o.variant.size() > kMaxVariantLength)
      throw std::invalid_argument(fmt::format("--variant is {} characters long; at most {} (it becomes part of file names)",
                                              o.variant.size(), kMaxVariantLength));
  }
  if (given(out_option) && o.out.empty()) throw std::invalid_argument("--out needs a file name");
  for (const std::string& sweep : sweeps) {
    const size_t eq = sweep.find('=');
    if (eq == std::string::npos || eq == 0) throw std::invalid_argument("--sweep takes NAME=V1,V2,...");
    o.sweeps[sweep.substr(0, eq)] = parse_long_list(sweep.substr(eq + 1), "--sweep " + sweep.substr(0, eq));
  }
  if (given(runs_option)) {
    auto list = parse_long_list(runs, "--runs");
    if (list.size() != 1 || list[0] < 1 || list[0] > 100) throw std::invalid_argument("--runs must be one integer from 1 to 100");
    o.runs = static_cast<int>(list[0]);
  }
  // Quick: 6 separate runs of 3 repetitions each (2-3 minutes on a quiet
  // 2-CPU host). The run is the unit of replication: one run per side cannot
  // tell a change from the host's drift between runs (on the development host
  // two A/A runs differed by 10-100%), so the quick profile compares run
  // medians. With 3 runs per side (4 degrees of freedom) the t quantile at
  // alpha/84 (the quick family) is about 9, and fork_exit_wait/vmas:1000
  // could not see < 30-37%: a +30% kernel slowdown went unflagged. 6 runs
  // (10 degrees of freedom, t about 5, and a smaller standard error) bring
  // that to about 15%. Full: one run of 10 (add --runs K for results you post).
  if (o.repetitions == 0) o.repetitions = o.profile == Profile::quick ? 3 : 10;
  if (o.runs == 0) o.runs = o.profile == Profile::quick ? 6 : 1;
  return o;
}

namespace {

// POSIX guarantees repetition counts up to 255 (_POSIX2_RE_DUP_MAX).
constexpr long kMaxRepeatCount = 255;
// glibc's regcomp copies a repeated atom once per count ("a{3}" is "aaa",
// "a+" is "aa*"), so nested repetitions multiply the automaton, and its
// matcher's time grows with it: "((a{255}){255}){255}" takes gigabytes.
// Patterns whose expanded size exceeds this are refused; a filter over
// benchmark names never comes near it.
constexpr double kMaxExpandedSize = 4096;

// A bad --filter: std::regex_error (what callers catch) with regerror's words.
class FilterError : public std::regex_error {
 public:
  FilterError(std::regex_constants::error_type code, std::string message)
      : std::regex_error(code), message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

// Refuses what glibc cannot match in bounded time and memory: an expanded
// size beyond kMaxExpandedSize (estimated: atoms count 1, a group the sum of
// its atoms, alternatives add, '+' doubles, "{m,n}" multiplies by the larger
// count), counts beyond RE_DUP_MAX as POSIX guarantees it, and
// back-references (a glibc extension to ERE; they backtrack).
void check_pattern(const std::string& re) {
  struct Group {
    double done = 0;  // atoms before the last one
    double last = 0;  // the last atom (what a quantifier applies to)
  };
  std::vector<Group> groups(1);
  auto check_size = [&] {
    for (const Group& g : groups)
      if (g.done + g.last > kMaxExpandedSize)
        throw FilterError(std::regex_constants::error_complexity,
                          fmt::format("repetitions expand it beyond {} states", kMaxExpandedSize));
  };
  auto atom = [&](double size) {
    groups.back().done += groups.back().last;
    groups.back().last = size;
  };
  bool after_quantifier = false;
  for (size_t i = 0; i < re.size(); ++i) {
    const char c = re[i];
    // POSIX leaves adjacent repetition operators ("a+*") undefined; glibc
    // nests them, each '+' doubling what came before.
    const bool quantifier = c == '*' || c == '+' || c == '?' || c == '{';
    if (quantifier && after_quantifier)
      throw FilterError(std::regex_constants::error_badrepeat,
                        "adjacent repetition operators (such as \"+*\") are not supported");
    after_quantifier = quantifier;
    if (c == '\\') {
      if (i + 1 < re.size() && re[i + 1] >= '1' && re[i + 1] <= '9')
        throw FilterError(std::regex_constants::error_backref, "back-references are not supported");
      ++i;
      atom(1);
    } else if (c == '[') {  // a bracket expression is one atom; ']' first is literal
      size_t j = i + 1;
      if (j < re.size() && re[j] == '^') ++j;
      if (j < re.size() && re[j] == ']') ++j;
      while (j < re.size() && re[j] != ']') j += re[j] == '[' && j + 1 < re.size() && std::strchr(":.=", re[j + 1]) ? 2 : 1;
      i = std::min(j, re.size());
      atom(1);
    } else if (c == '(') {
      groups.emplace_back();
    } else if (c == ')' && groups.size() > 1) {
      const Group g = groups.back();
      groups.pop_back();
      atom(g.done + g.last);
    } else if (c == '|') {
      atom(0);
    } else if (c == '+') {
      groups.back().last *= 2;
    } else if (c == '{') {
      long larger = 1;
      size_t j = i + 1;
      while (j < re.size() && (std::isdigit(static_cast<unsigned char>(re[j])) || re[j] == ',')) {
        size_t end = j;
        while (end < re.size() && std::isdigit(static_cast<unsigned char>(re[end]))) ++end;
        const long count = end - j > 4 ? LONG_MAX : end > j ? std::stol(re.substr(j, end - j)) : 0;
        if (count > kMaxRepeatCount)
          throw FilterError(std::regex_constants::error_badbrace,
                            fmt::format("repetition counts above {} are not supported", kMaxRepeatCount));
        larger = std::max(larger, count + (end < re.size() && re[end] == ',' ? 1 : 0));
        j = end < re.size() && re[end] == ',' ? end + 1 : end;
      }
      groups.back().last *= static_cast<double>(larger);
      i = j < re.size() && re[j] == '}' ? j : i;
    } else if (c != '*' && c != '?') {
      atom(1);
    }
    check_size();
  }
  // Unclosed groups are regcomp's error to report; their size still counts.
  while (groups.size() > 1) {
    const Group g = groups.back();
    groups.pop_back();
    atom(g.done + g.last);
  }
  check_size();
}

}  // namespace

// POSIX regcomp/regexec (glibc): unlike std::regex, which backtracks and
// hangs on a filter like '(.*)*x', it matches in bounded time.
bool filter_matches(const std::string& filter, const std::string& name) {
  if (filter.empty()) return true;
  const bool negate = filter[0] == '-';
  const std::string pattern = negate ? filter.substr(1) : filter;
  check_pattern(pattern);
  regex_t re;
  if (int rc = regcomp(&re, pattern.c_str(), REG_EXTENDED | REG_NOSUB); rc != 0) {
    char message[256];
    regerror(rc, &re, message, sizeof message);
    throw FilterError(std::regex_constants::error_collate, message);
  }
  const bool found = regexec(&re, name.c_str(), 0, nullptr, 0) == 0;
  regfree(&re);
  return found != negate;
}

std::string results_file_name(const std::string& dir, const std::string& hostname, const std::string& kernel_release,
                              const std::string& variant, Profile profile, const std::string& utc_stamp) {
  return fmt::format("{}/{}-{}-{}-{}-{}.json", dir, name_part(hostname.substr(0, hostname.find('.')), 64),
                     name_part(kernel_release, 64), name_part(variant, 64), profile_name(profile), utc_stamp);
}

}  // namespace rmapbench::cli
