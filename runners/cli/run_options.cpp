#include "runners/cli/run_options.hpp"

#include <fmt/core.h>

#include <regex>
#include <stdexcept>

namespace rmapbench::cli {

namespace {

// "--opt=value" or "--opt value"; nullopt when args[i] is another option.
std::optional<std::string> option_value(const std::vector<std::string>& args, size_t& i, const std::string& name) {
  const std::string& a = args[i];
  if (a == name) {
    if (i + 1 >= args.size()) throw std::invalid_argument(name + " needs a value");
    return args[++i];
  }
  if (a.rfind(name + "=", 0) == 0) return a.substr(name.size() + 1);
  return std::nullopt;
}

std::string sanitize(std::string s) {
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
  return s.empty() ? "unknown" : s;
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
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (auto v = option_value(args, i, "--filter")) {
      o.filter = *v;
    } else if (auto v = option_value(args, i, "--profile")) {
      auto p = parse_profile(*v);
      if (!p) throw std::invalid_argument(fmt::format("unknown profile '{}' (quick or full)", *v));
      o.profile = *p;
    } else if (auto v = option_value(args, i, "--repetitions")) {
      auto list = parse_long_list(*v, "--repetitions");
      if (list.size() != 1 || list[0] < 1 || list[0] > 1000)
        throw std::invalid_argument("--repetitions must be one integer from 1 to 1000");
      o.repetitions = static_cast<int>(list[0]);
    } else if (auto v = option_value(args, i, "--variant")) {
      if (v->empty() || sanitize(*v) != *v)
        throw std::invalid_argument("--variant takes letters, digits, '.', '_' and '-' only");
      o.variant = *v;
    } else if (auto v = option_value(args, i, "--out")) {
      if (v->empty()) throw std::invalid_argument("--out needs a file name");
      o.out = *v;
    } else if (auto v = option_value(args, i, "--benchmark_out")) {
      o.out = *v;
    } else if (auto v = option_value(args, i, "--sweep")) {
      const size_t eq = v->find('=');
      if (eq == std::string::npos || eq == 0) throw std::invalid_argument("--sweep takes NAME=V1,V2,...");
      o.sweeps[v->substr(0, eq)] = parse_long_list(v->substr(eq + 1), "--sweep " + v->substr(0, eq));
    } else if (a == "--quiet" || a == "-q") {
      o.quiet = true;
    } else if (a.rfind("--benchmark_", 0) == 0) {
      if (a.rfind("--benchmark_out_format", 0) == 0)
        throw std::invalid_argument("results are always JSON; --benchmark_out_format cannot be changed");
      o.benchmark_flags.push_back(a);
    } else {
      throw std::invalid_argument(fmt::format("unknown option '{}'", a));
    }
  }
  if (o.repetitions == 0) o.repetitions = o.profile == Profile::quick ? 5 : 10;
  return o;
}

bool filter_matches(const std::string& filter, const std::string& name) {
  if (filter.empty()) return true;
  const bool negate = filter[0] == '-';
  const std::regex re(negate ? filter.substr(1) : filter, std::regex::extended);
  return std::regex_search(name, re) != negate;
}

std::string results_file_name(const std::string& dir, const std::string& hostname, const std::string& kernel_release,
                              const std::string& variant, Profile profile, const std::string& utc_stamp) {
  return fmt::format("{}/{}-{}-{}-{}-{}.json", dir, sanitize(hostname.substr(0, hostname.find('.'))),
                     sanitize(kernel_release), sanitize(variant), profile_name(profile), utc_stamp);
}

}  // namespace rmapbench::cli
