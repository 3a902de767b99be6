#include "runners/results/results.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace rmapbench::results {

namespace {

using nlohmann::json;

// Depth beyond which a results file is refused (a Google Benchmark file is 4
// deep; rmapbench.metrics 2). Deeper input is a crafted file: printing it
// recursively would exhaust the stack.
constexpr int kMaxJsonDepth = 64;

struct TooDeep {};

// Parses JSON with the nesting depth bounded: the parser itself is iterative,
// but dump() and the destructor of a deep value recurse.
json parse_bounded(std::string_view text) {
  json::parser_callback_t limit = [](int depth, json::parse_event_t, json&) {
    if (depth > kMaxJsonDepth) throw TooDeep{};
    return true;
  };
  return json::parse(text.begin(), text.end(), limit);
}

// Fields Google Benchmark writes itself; every other numeric field of an
// entry is a user counter.
const std::set<std::string>& builtin_fields() {
  static const std::set<std::string> f = {
      "name",          "family_index",   "per_family_instance_index", "run_name",      "run_type",
      "repetitions",   "repetition_index", "threads",                 "iterations",    "real_time",
      "cpu_time",      "time_unit",      "error_occurred",            "error_message", "aggregate_name",
      "aggregate_unit", "big_o",         "rms",                       "complexity_n",  "label",
      "skipped",       "skip_message", "run_index"};
  return f;
}

// A field of the wrong type or range: parse_results() turns it into an error
// naming the file (json::value() would throw a type_error, and a cast of an
// out-of-range double to int is undefined).
struct Malformed {
  std::string what;
};

std::string text_field(const json& e, const char* key, const std::string& dflt, const std::string& where) {
  auto it = e.find(key);
  if (it == e.end() || it->is_null()) return dflt;
  if (!it->is_string()) throw Malformed{where + ": \"" + key + "\" is not a string"};
  return printable_text(it->get<std::string>());
}

double number_field(const json& e, const char* key, double dflt, const std::string& where) {
  auto it = e.find(key);
  if (it == e.end() || it->is_null()) return dflt;
  if (!it->is_number()) throw Malformed{where + ": \"" + key + "\" is not a number"};
  return it->get<double>();
}

int int_field(const json& e, const char* key, int dflt, const std::string& where) {
  double v = number_field(e, key, dflt, where);
  if (v != std::floor(v) || v < 0 || v > 1e9) throw Malformed{where + ": \"" + key + "\" is not a small whole number"};
  return static_cast<int>(v);
}

bool bool_field(const json& e, const char* key, bool dflt, const std::string& where) {
  auto it = e.find(key);
  if (it == e.end() || it->is_null()) return dflt;
  if (!it->is_boolean()) throw Malformed{where + ": \"" + key + "\" is not true or false"};
  return it->get<bool>();
}

bool known_time_unit(const std::string& u) { return u == "ns" || u == "us" || u == "ms" || u == "s"; }

std::string context_text(const json& v) { return printable_text(v.is_string() ? v.get<std::string>() : v.dump()); }

std::string top_level_keys(const json& doc) {
  if (!doc.is_object()) return std::string("a JSON ") + doc.type_name() + ", not an object";
  std::string keys;
  int shown = 0;
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (shown == 6) {
      keys += ", ...";
      break;
    }
    keys += (shown++ ? ", " : "") + fmt::format("\"{}\"", printable_text(it.key()));
  }
  return keys.empty() ? "an empty object" : "top-level keys " + keys;
}

Status parse_metrics_table(const std::string& path, const std::string& text, std::map<std::string, MetricInfo>& out) {
  json table;
  try {
    table = parse_bounded(text);
  } catch (const TooDeep&) {
    return Status::error(fmt::format("{}: context key rmapbench.metrics nests deeper than {} levels", path, kMaxJsonDepth));
  } catch (const json::exception& e) {
    return Status::error(fmt::format("{}: context key rmapbench.metrics is not valid JSON: {}", path, e.what()));
  }
  if (!table.is_object())
    return Status::error(fmt::format("{}: context key rmapbench.metrics must be a JSON object, found a {}", path,
                                     table.type_name()));
  for (auto it = table.begin(); it != table.end(); ++it) {
    const json& m = it.value();
    if (!m.is_object())
      return Status::error(fmt::format("{}: rmapbench.metrics entry '{}' is not an object", path, printable_text(it.key())));
    MetricInfo info;
    info.declared = true;
    const std::string where = "rmapbench.metrics entry '" + printable_text(it.key()) + "'";
    info.unit = text_field(m, "unit", "", where);
    info.help = text_field(m, "help", "", where);
    std::string better = text_field(m, "better", "lower", where);
    if (better == "lower") {
      info.better = Better::lower;
    } else if (better == "higher") {
      info.better = Better::higher;
    } else {
      return Status::error(fmt::format(
          "{}: rmapbench.metrics entry '{}' has unknown direction '{}' (expected lower or higher)", path,
          printable_text(it.key()), better));
    }
    std::string kind = text_field(m, "kind", "statistical", where);
    if (kind == "statistical") {
      info.kind = MetricKind::statistical;
    } else if (kind == "exact") {
      info.kind = MetricKind::exact;
    } else {
      return Status::error(fmt::format(
          "{}: rmapbench.metrics entry '{}' has unknown kind '{}' (expected statistical or exact)", path, printable_text(it.key()),
          kind));
    }
    std::string role = text_field(m, "role", "", where);
    if (role.empty()) {
      info.role = it.key() == "real_time" || info.unit == "objects" ? MetricRole::primary : MetricRole::diagnostic;
    } else if (role == "primary" || role == "diagnostic") {
      info.role = role == "primary" ? MetricRole::primary : MetricRole::diagnostic;
    } else {
      return Status::error(fmt::format(
          "{}: rmapbench.metrics entry '{}' has unknown role '{}' (expected primary or diagnostic)", path, printable_text(it.key()),
          printable_text(role)));
    }
    out[printable_text(it.key())] = info;
  }
  return Status::ok();
}

struct Pending {
  Benchmark bench;
  std::map<std::pair<int, int>, size_t> seen_index;  // (run_index, repetition_index) -> entry number
  std::vector<std::pair<std::string, const json*>> aggregates;  // aggregate_name -> entry
  std::set<int> skipped_runs;  // run_index of the entries that say "skipped: ..."
};

}  // namespace

std::string benchmark_key(std::string_view run_name) {
  auto decoration = [](std::string_view c) {
    auto starts = [&](std::string_view p) { return c.substr(0, p.size()) == p; };
    return c == "manual_time" || c == "real_time" || c == "process_time" || starts("min_time:") ||
           starts("min_warmup_time:") || starts("repeats:") || starts("iterations:");
  };
  std::string out;
  size_t pos = 0;
  bool first = true;
  while (pos <= run_name.size()) {
    size_t slash = run_name.find('/', pos);
    if (slash == std::string_view::npos) slash = run_name.size();
    std::string_view comp = run_name.substr(pos, slash - pos);
    if (first || !decoration(comp)) {
      if (!first) out += '/';
      out += comp;
    }
    first = false;
    pos = slash + 1;
  }
  return out;
}

std::vector<std::string> Benchmark::metric_names() const {
  std::set<std::string> counters;
  for (const auto& r : repetitions)
    for (const auto& [k, v] : r.counters) counters.insert(k);
  std::vector<std::string> names;
  if (!repetitions.empty()) names.push_back("real_time");
  names.insert(names.end(), counters.begin(), counters.end());
  return names;
}

std::vector<double> Benchmark::samples(const std::string& metric) const {
  std::vector<double> v;
  for (const auto& r : repetitions) {
    if (metric == "real_time") {
      v.push_back(r.real_time);
    } else if (auto it = r.counters.find(metric); it != r.counters.end()) {
      v.push_back(it->second);
    }
  }
  return v;
}

std::vector<int> Benchmark::sample_runs(const std::string& metric) const {
  std::vector<int> v;
  for (const auto& r : repetitions)
    if (metric == "real_time" || r.counters.count(metric)) v.push_back(r.run);
  return v;
}

int ResultsFile::runs() const {
  std::set<int> seen;
  for (const auto& b : benchmarks)
    for (const auto& r : b.repetitions) seen.insert(r.run);
  return std::max<int>(1, static_cast<int>(seen.size()));
}

ResultsFile combine_runs(std::vector<ResultsFile> files) {
  if (files.empty()) return {};
  ResultsFile out = std::move(files.front());
  int next_run = 0;
  for (const auto& b : out.benchmarks)
    for (const auto& r : b.repetitions) next_run = std::max(next_run, r.run + 1);
  for (size_t f = 1; f < files.size(); ++f) {
    ResultsFile& more = files[f];
    out.path += " + " + more.path;
    out.notes.insert(out.notes.end(), more.notes.begin(), more.notes.end());
    for (const auto& [k, v] : more.metrics) out.metrics.emplace(k, v);
    int top = next_run;
    for (auto& b : more.benchmarks) {
      for (auto& r : b.repetitions) {
        r.run += next_run;
        top = std::max(top, r.run + 1);
      }
      Benchmark* mine = nullptr;
      for (auto& o : out.benchmarks)
        if (o.name == b.name) mine = &o;
      if (!mine) {
        out.benchmarks.push_back(std::move(b));
        continue;
      }
      if (!mine->error_message && b.error_message) mine->error_message = b.error_message;
      if (!mine->skip_message && b.skip_message) mine->skip_message = b.skip_message;
      mine->from_aggregates = mine->from_aggregates || b.from_aggregates;
      for (auto& r : b.repetitions) mine->repetitions.push_back(std::move(r));
    }
    next_run = top;
  }
  if (files.size() > 1) out.context["rmapbench.runs"] = std::to_string(out.runs());
  return out;
}


namespace {

// "vmas:1000" -> {"vmas", 1000}; nullopt when not key:number.
std::optional<std::pair<std::string, double>> numeric_component(const std::string& c) {
  auto colon = c.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= c.size()) return std::nullopt;
  const std::string v = c.substr(colon + 1);
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || *end || !std::isfinite(x)) return std::nullopt;
  return std::pair{c.substr(0, colon), x};
}

std::vector<std::string> split_name(const std::string& name) {
  std::vector<std::string> parts;
  size_t pos = 0;
  for (;;) {
    auto slash = name.find('/', pos);
    parts.push_back(name.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos));
    if (slash == std::string::npos) break;
    pos = slash + 1;
  }
  return parts;
}

}  // namespace

void add_sweep_fits(ResultsFile& f) {
  struct Point {
    const Benchmark* b;
    double x;
  };
  std::map<std::pair<std::string, std::string>, std::vector<Point>> families;  // (name with key:*, key)
  for (const auto& b : f.benchmarks) {
    if (!b.ran() || b.from_aggregates) continue;
    auto parts = split_name(b.name);
    for (size_t j = 0; j < parts.size(); ++j) {
      auto kv = numeric_component(parts[j]);
      if (!kv) continue;
      std::string key;
      for (size_t k = 0; k < parts.size(); ++k) key += (k ? "/" : "") + (k == j ? kv->first + ":*" : parts[k]);
      families[{key, kv->first}].push_back({&b, kv->second});
    }
  }
  std::vector<Benchmark> fits;
  for (const auto& [id, points] : families) {
    const auto& [family, key] = id;
    std::set<double> xs;
    for (const auto& p : points) xs.insert(p.x);
    if (xs.size() < 3 || xs.size() != points.size()) continue;
    // One fit per (run, repetition): the sizes ran interleaved, so repetition
    // i of every size is about contemporaneous.
    std::map<std::pair<int, int>, std::vector<std::pair<double, double>>> by_rep;
    for (const auto& p : points)
      for (const auto& r : p.b->repetitions) by_rep[{r.run, r.index}].push_back({p.x, r.real_time});
    Benchmark slope, fixed;
    slope.name = slope.raw_name = family + "/per_" + key;
    fixed.name = fixed.raw_name = family + "/fixed";
    slope.time_unit = fixed.time_unit = points.front().b->time_unit;
    for (const auto& [rep, xy] : by_rep) {
      if (xy.size() != points.size()) continue;
      double mx = 0, my = 0;
      for (const auto& [x, y] : xy) mx += x, my += y;
      mx /= static_cast<double>(xy.size());
      my /= static_cast<double>(xy.size());
      double sxy = 0, sxx = 0;
      for (const auto& [x, y] : xy) sxy += (x - mx) * (y - my), sxx += (x - mx) * (x - mx);
      if (sxx <= 0) continue;
      Repetition s, c;
      s.run = c.run = rep.first;
      s.index = c.index = rep.second;
      s.iterations = c.iterations = 1;
      s.real_time = sxy / sxx;
      c.real_time = my - s.real_time * mx;
      slope.repetitions.push_back(s);
      fixed.repetitions.push_back(c);
    }
    if (slope.repetitions.empty()) continue;
    fits.push_back(std::move(slope));
    fits.push_back(std::move(fixed));
  }
  for (auto& b : fits) f.benchmarks.push_back(std::move(b));
}

const Benchmark* ResultsFile::find(const std::string& name) const {
  for (const auto& b : benchmarks)
    if (b.name == name) return &b;
  return nullptr;
}

std::string ResultsFile::get(const std::string& key, const std::string& fallback) const {
  auto it = context.find(key);
  return it == context.end() ? fallback : it->second;
}

MetricInfo ResultsFile::metric_info(const Benchmark& b, const std::string& metric) const {
  MetricInfo info;
  if (auto it = metrics.find(metric); it != metrics.end()) {
    info = it->second;
  } else if (metric == "bytes_per_second" || metric == "items_per_second") {
    // Google Benchmark's own rate counters: throughput, higher is better.
    info.better = Better::higher;
    info.unit = metric == "bytes_per_second" ? "B/s" : "items/s";
  } else if (!metrics.empty() && metric != "real_time") {
    info.role = MetricRole::diagnostic;  // a counter the file's table does not declare
  }
  if (metric == "real_time") info.unit = b.time_unit;
  return info;
}

std::string ResultsFile::label() const {
  std::string release = get("kernel_release"), variant = get("variant");
  if (release.empty() && variant.empty()) {
    auto slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
  }
  if (variant.empty()) return release;
  if (release.empty()) return variant;
  return release + " " + variant;
}

int ResultsFile::repetitions() const {
  std::string r = get("rmapbench.repetitions");
  if (!r.empty()) {
    try {
      return std::stoi(r);
    } catch (...) {
    }
  }
  std::map<int, int> counts;
  for (const auto& b : benchmarks)
    if (b.ran()) ++counts[b.from_aggregates ? b.aggregate_of : static_cast<int>(b.repetitions.size())];
  int best = 0, best_count = 0;
  for (const auto& [n, c] : counts)
    if (c > best_count) best = n, best_count = c;
  return best;
}

std::string printable_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out += (c < 0x20 || c == 0x7f) ? (c == '\t' ? ' ' : '?') : static_cast<char>(c);
      ++i;
      continue;
    }
    // A well-formed UTF-8 sequence (no overlong form, no surrogate, <= U+10FFFF)
    // that is not a C1 control (U+0080..U+009F: 8-bit terminal escapes) or a
    // noncharacter XML forbids (U+FFFE, U+FFFF) is kept; anything else is '?'.
    size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
    uint32_t cp = len == 4 ? c & 0x07 : len == 3 ? c & 0x0f : c & 0x1f;
    bool ok = len >= 2 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      ok = (cc & 0xc0) == 0x80;
      cp = (cp << 6) | (cc & 0x3f);
    }
    const uint32_t min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
    ok = ok && cp >= min && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff) && !(cp >= 0x80 && cp <= 0x9f) &&
         cp != 0xfffe && cp != 0xffff;
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += '?';
      ++i;
    }
  }
  return out;
}

Result<std::string> read_text_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return Status::from_errno(path + ": cannot open");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Status s = Status::from_errno(path + ": cannot open");
    ::close(fd);
    return s;
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return Status::error(path + ": is a directory, not a results file", EISDIR);
  }
  auto too_big = [&] {
    return Status::error(fmt::format("{}: larger than {} MiB; results files are a few MB, so this is not one (the "
                                     "limit of every input rmapbench reads)",
                                     path, kMaxInputBytes >> 20),
                         EFBIG);
  };
  if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > kMaxInputBytes) {
    ::close(fd);
    return too_big();
  }
  // Devices and pipes have no size: read at most one byte past the limit.
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status s = Status::from_errno(path + ": read failed");
      ::close(fd);
      return s;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxInputBytes) {
      ::close(fd);
      return too_big();
    }
  }
  ::close(fd);
  return text;
}

Result<ResultsFile> load_results(const std::string& path) {
  auto text = read_text_file(path);
  if (!text) return text.status();
  return parse_results(*text, path);
}

namespace {
// The run's host reference section (cli/cmd_run.cpp writes it; see
// results/README.md) as one more benchmark, kHostReferenceBenchmark, so that
// compare, baselines and noise profiles treat it like any other.
Result<Benchmark> host_reference_benchmark(const json& section) {
  const std::string where = "\"host_reference\"";
  if (!section.is_object() || !section.contains("samples") || !section["samples"].is_array())
    return Status::error(where + " is not an object with a \"samples\" array");
  Benchmark b;
  b.name = b.raw_name = kHostReferenceBenchmark;
  b.time_unit = "us";
  std::map<int, int> per_run;
  for (size_t i = 0; i < section["samples"].size(); ++i) {
    const json& e = section["samples"][i];
    const std::string at = fmt::format("{}.samples[{}]", where, i);
    if (!e.is_object() || !e.contains("us") || !e["us"].is_number() || !(e["us"].get<double>() > 0) ||
        !std::isfinite(e["us"].get<double>()))
      return Status::error(at + " has no positive \"us\"");
    Repetition r;
    r.run = 0;
    if (e.contains("run_index")) {
      if (!e["run_index"].is_number_integer() || e["run_index"].get<int64_t>() < 0 ||
          e["run_index"].get<int64_t>() > 1000000)
        return Status::error(at + ": \"run_index\" is not a small non-negative integer");
      r.run = static_cast<int>(e["run_index"].get<int64_t>());
    }
    r.index = per_run[r.run]++;
    r.iterations = 1;
    r.real_time = e["us"].get<double>();
    if (e.contains(kStealMetric)) {
      if (!e[kStealMetric].is_number()) return Status::error(at + ": \"" + kStealMetric + "\" is not a number");
      r.counters[kStealMetric] = e[kStealMetric].get<double>();
    }
    b.repetitions.push_back(std::move(r));
  }
  return b;
}

Result<ResultsFile> parse_unchecked(std::string_view text, const std::string& path) {
  auto fail = [&](const std::string& what) { return Status::error(path + ": " + what); };
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos)
    return fail(text.empty() ? "empty file (0 bytes), not a results file" : "contains only white space, not a results file");

  json doc;
  try {
    doc = parse_bounded(text);
  } catch (const TooDeep&) {
    return fail(fmt::format("JSON nested deeper than {} levels: not a results file (a crafted one?)", kMaxJsonDepth));
  } catch (const json::parse_error& e) {
    if (std::string_view(e.what()).find("unexpected end of input") != std::string_view::npos)
      return fail(fmt::format("truncated JSON: the text ends after {} bytes in the middle of a value "
                              "(an interrupted write?)",
                              text.size()));
    return fail(fmt::format("not valid JSON (corrupt?) at byte {}: {}", e.byte, e.what()));
  }

  if (!doc.is_object() || !doc.contains("context") || !doc["context"].is_object() || !doc.contains("benchmarks") ||
      !doc["benchmarks"].is_array())
    return fail(fmt::format(
        "not a Google Benchmark results file (a file from another tool?): expected a \"context\" object and a "
        "\"benchmarks\" array at the top level, found {}",
        top_level_keys(doc)));

  ResultsFile rf;
  rf.path = path;
  for (auto it = doc["context"].begin(); it != doc["context"].end(); ++it) rf.context[printable_text(it.key())] = context_text(it.value());

  if (auto it = rf.context.find("rmapbench.schema_version"); it != rf.context.end()) {
    rf.has_rmapbench_context = true;
    if (it->second != std::to_string(kSchemaVersion))
      return fail(fmt::format("unknown rmapbench.schema_version '{}' (this rmapbench reads version {}; "
                              "a newer rmapbench wrote it?)",
                              it->second, kSchemaVersion));
    if (auto m = rf.context.find("rmapbench.metrics"); m != rf.context.end()) {
      // Written as JSON text by the suite; accept an inline object too.
      const json& raw = doc["context"]["rmapbench.metrics"];
      Status s = parse_metrics_table(path, raw.is_string() ? raw.get<std::string>() : raw.dump(), rf.metrics);
      if (s.failed()) return s;
    } else {
      rf.notes.push_back(path + ": no rmapbench.metrics table; every metric compared as lower-is-better, statistical");
    }
    if (rf.get("rmapbench.complete") == "false")
      rf.notes.push_back(path + ": the run was interrupted (rmapbench.complete is false); results are partial");
  } else {
    rf.notes.push_back(path +
                       ": plain Google Benchmark file without rmapbench context: metrics compared as "
                       "lower-is-better and statistical (bytes/items_per_second higher-is-better); host "
                       "compatibility cannot be checked");
  }

  const json& entries = doc["benchmarks"];
  if (entries.empty()) return fail("no benchmark entries (zero repetitions): nothing was measured");

  std::map<std::string, Pending> pending;
  std::vector<std::string> order;
  for (size_t i = 0; i < entries.size(); ++i) {
    const json& e = entries[i];
    std::string where = fmt::format("benchmarks[{}]", i);
    if (!e.is_object()) return fail(where + " is not an object");
    if (!e.contains("name") || !e["name"].is_string()) return fail(where + " has no \"name\"");
    std::string raw_name = text_field(e, "run_name", printable_text(e["name"].get<std::string>()), where);
    if (!e.contains("run_name") && e.contains("aggregate_name")) {
      // Old files without run_name: strip the "_mean" style suffix.
      std::string suffix = "_" + text_field(e, "aggregate_name", "", where);
      if (raw_name.size() > suffix.size() && raw_name.ends_with(suffix)) raw_name.resize(raw_name.size() - suffix.size());
    }
    where += fmt::format(" ('{}')", printable_text(e["name"].get<std::string>()));
    std::string key = benchmark_key(raw_name);
    bool aggregate = text_field(e, "run_type", e.contains("aggregate_name") ? "aggregate" : "iteration", where) == "aggregate";

    if (e.contains("repetitions")) {
      if (!e["repetitions"].is_number()) return fail(where + ": \"repetitions\" is not a number");
      if (e["repetitions"].get<double>() < 0)
        return fail(fmt::format("benchmark '{}' has a negative repetition count (\"repetitions\": {})", key,
                                e["repetitions"].dump()));
      if (e["repetitions"].get<double>() == 0)
        return fail(fmt::format("benchmark '{}' has zero repetitions (\"repetitions\": {})", key, e["repetitions"].dump()));
    }
    std::string unit = text_field(e, "time_unit", "", where);
    if (!known_time_unit(unit))
      return fail(where + (unit.empty() ? ": no \"time_unit\"" : ": unknown time_unit '" + unit + "'"));

    auto [pit, inserted] = pending.try_emplace(key);
    Pending& p = pit->second;
    if (inserted) {
      order.push_back(key);
      p.bench.name = key;
      p.bench.raw_name = raw_name;
      p.bench.time_unit = unit;
    } else if (p.bench.time_unit != unit) {
      return fail(fmt::format("benchmark '{}' mixes time units within the file ('{}' and '{}')", key,
                              p.bench.time_unit, unit));
    }
    p.bench.threads = int_field(e, "threads", 1, where);

    if (aggregate) {
      p.aggregates.emplace_back(text_field(e, "aggregate_name", "", where), &e);
      continue;
    }

    std::string message = text_field(e, "error_message", "", where);
    bool error_flag = bool_field(e, "error_occurred", false, where);
    if (!message.empty() || error_flag) {
      if (message.starts_with(kSkipPrefix)) {
        p.bench.skip_message = message;
        p.skipped_runs.insert(int_field(e, "run_index", 0, where));
      } else if (message.starts_with(kErrorPrefix) || error_flag) {
        p.bench.error_message = message.empty() ? "error: (no message)" : message;
      } else {
        p.bench.skip_message = message;  // Google Benchmark >= 1.8: SkipWithMessage
      }
      continue;
    }

    Repetition rep;
    rep.index = int_field(e, "repetition_index", static_cast<int>(p.bench.repetitions.size()), where);
    rep.run = int_field(e, "run_index", 0, where);
    if (rep.run < 0) return fail(where + ": negative run_index");
    if (auto [sit, fresh] = p.seen_index.emplace(std::pair{rep.run, rep.index}, i); !fresh)
      return fail(fmt::format("duplicate benchmark '{}' {}repetition_index {} (benchmarks[{}] and benchmarks[{}])", key,
                              rep.run ? fmt::format("run_index {} ", rep.run) : "", rep.index, sit->second, i));
    if (!e.contains("real_time") || !e["real_time"].is_number()) return fail(where + ": no numeric \"real_time\"");
    rep.real_time = e["real_time"].get<double>();
    rep.iterations = number_field(e, "iterations", 0.0, where);
    for (auto it = e.begin(); it != e.end(); ++it)
      if (it.value().is_number() && !builtin_fields().count(it.key())) rep.counters[printable_text(it.key())] = it.value().get<double>();
    p.bench.repetitions.push_back(std::move(rep));
  }

  for (const auto& key : order) {
    Pending& p = pending[key];
    Benchmark& b = p.bench;
    std::sort(b.repetitions.begin(), b.repetitions.end(),
              [](const Repetition& a, const Repetition& c) { return std::pair{a.run, a.index} < std::pair{c.run, c.index}; });
    if (b.repetitions.empty() && !b.skip_message && !b.error_message) {
      const json* pick = nullptr;
      for (const char* want : {"median", "mean"})
        for (const auto& [name, e] : p.aggregates)
          if (!pick && name == want) pick = e;
      if (!pick) return fail(fmt::format("benchmark '{}' has zero repetitions (no per-repetition entries and no "
                                         "median or mean aggregate)",
                                         key));
      Repetition rep;
      rep.real_time = number_field(*pick, "real_time", 0.0, "benchmark '" + key + "'");
      for (auto it = pick->begin(); it != pick->end(); ++it)
        if (it.value().is_number() && !builtin_fields().count(it.key())) rep.counters[printable_text(it.key())] = it.value().get<double>();
      b.repetitions.push_back(std::move(rep));
      b.from_aggregates = true;
      b.aggregate_of = int_field(*pick, "repetitions", 0, "benchmark '" + key + "'");
      rf.notes.push_back(fmt::format("{}: '{}' has only aggregates; its {} is used as a single sample", path, key,
                                     text_field(*pick, "aggregate_name", "median", "benchmark '" + key + "'")));
    }
    // A benchmark the host let run in some of a result's runs and not in
    // others (a knob KSM refused for a while, say) is compared on the runs
    // that measured it, rather than turning into "only in base" in every
    // comparison. A failure is never treated so: one failed repetition fails
    // the benchmark.
    if (b.skip_message && !b.error_message && !b.repetitions.empty()) {
      std::set<int> measured;
      for (const auto& r : b.repetitions) measured.insert(r.run);
      rf.notes.push_back(fmt::format("{}: '{}' was skipped in {} run(s) and measured in {}; compared on those ({})", path,
                                     key, p.skipped_runs.size(), measured.size(), *b.skip_message));
      b.skip_message.reset();
    }
    if (b.ran()) {
      for (const auto& m : b.metric_names())
        if (m != "real_time" && rf.has_rmapbench_context && !rf.metrics.empty() && !rf.metrics.count(m))
          rf.notes.push_back(fmt::format("{}: counter '{}' is not in rmapbench.metrics; compared as lower-is-better, "
                                         "statistical",
                                         path, m));
    }
    rf.benchmarks.push_back(std::move(b));
  }
  if (doc.contains("host_reference")) {
    auto reference = host_reference_benchmark(doc["host_reference"]);
    if (!reference) return fail(reference.status().message());
    if (reference->ran()) rf.benchmarks.push_back(std::move(*reference));
  }
  // One note per undeclared counter is enough.
  std::sort(rf.notes.begin(), rf.notes.end());
  rf.notes.erase(std::unique(rf.notes.begin(), rf.notes.end()), rf.notes.end());
  return rf;
}
}  // namespace

Result<ResultsFile> parse_results(std::string_view text, const std::string& path) {
  try {
    return parse_unchecked(text, path);
  } catch (const Malformed& m) {
    return Status::error(path + ": " + m.what);
  } catch (const nlohmann::json::exception& e) {
    return Status::error(path + ": malformed results file: " + e.what());
  }
}

Status check_time_units(const ResultsFile& base, const ResultsFile& next) {
  for (const auto& b : base.benchmarks) {
    const Benchmark* n = next.find(b.name);
    if (!n || !b.ran() || !n->ran()) continue;
    if (b.time_unit != n->time_unit)
      return Status::error(fmt::format("{} vs {}: benchmark '{}' is in '{}' in the first file and in '{}' in the second "
                                       "(mismatched time units; re-run one of them with the same unit)",
                                       base.path, next.path, b.name, b.time_unit, n->time_unit));
  }
  return Status::ok();
}

}  // namespace rmapbench::results
