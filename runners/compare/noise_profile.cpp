#include "runners/compare/noise_profile.hpp"

#include <fmt/core.h>

#include <cmath>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "runners/compare/baseline.hpp"
#include "runners/compare/stats.hpp"

namespace rmapbench::noise {

Result<Profile> from_runs(const results::ResultsFile& f) {
  Profile p;
  auto loc = baseline::locate(f);
  if (!loc) return loc.status();
  p.arch = loc->arch;
  p.host_id = loc->host_id;
  p.kernel_release = loc->kernel_release;
  p.profile = f.get("rmapbench.profile");
  p.runs = f.runs();
  p.repetitions = f.repetitions();
  std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  p.created = stamp;
  if (p.runs < 2) return Status::error(f.path + ": a noise profile needs at least 2 separate runs (rmapbench run --runs K)");
  for (const auto& b : f.benchmarks) {
    if (!b.ran() || b.from_aggregates) continue;
    for (const auto& m : b.metric_names()) {
      if (f.metric_info(b, m).kind == MetricKind::exact) continue;
      auto med = stats::run_medians(b.samples(m), b.sample_runs(m));
      if (med.size() < 2) continue;
      std::vector<double> logs;
      for (double v : med)
        if (v > 0 && std::isfinite(v)) logs.push_back(std::log(v));
      if (logs.size() != med.size()) continue;
      Entry e;
      e.sd_log = stats::stddev(logs);
      e.runs = static_cast<int>(logs.size());
      e.median = stats::median(med);
      p.benchmarks[b.name][m] = e;
    }
  }
  return p;
}

std::string to_json(const Profile& p) {
  nlohmann::ordered_json j;
  j["rmapbench.noise_profile"] = 1;
  j["arch"] = p.arch;
  j["host_id"] = p.host_id;
  j["kernel_release"] = p.kernel_release;
  j["profile"] = p.profile;
  j["runs"] = p.runs;
  j["repetitions"] = p.repetitions;
  j["created"] = p.created;
  j["help"] = "per benchmark and metric: sd_log = standard deviation of log(run median) over `runs` separate A/A "
              "runs (rmapbench calibrate); compare/check use it as a floor under the between-run spread";
  auto& bs = j["benchmarks"] = nlohmann::ordered_json::object();
  for (const auto& [name, metrics] : p.benchmarks)
    for (const auto& [m, e] : metrics) bs[name][m] = {{"sd_log", e.sd_log}, {"runs", e.runs}, {"median", e.median}};
  return j.dump(2) + "\n";
}

Result<Profile> parse(const std::string& text, const std::string& path) {
  try {
    auto j = nlohmann::json::parse(text);
    if (!j.is_object() || !j.contains("rmapbench.noise_profile"))
      return Status::error(path + ": not an rmapbench noise profile");
    Profile p;
    p.arch = j.value("arch", "");
    p.host_id = j.value("host_id", "");
    p.kernel_release = j.value("kernel_release", "");
    p.profile = j.value("profile", "");
    p.runs = j.value("runs", 0);
    p.repetitions = j.value("repetitions", 0);
    p.created = j.value("created", "");
    for (auto& [name, metrics] : j.at("benchmarks").items())
      for (auto& [m, e] : metrics.items()) {
        Entry x;
        x.sd_log = e.at("sd_log").get<double>();
        x.runs = e.at("runs").get<int>();
        x.median = e.value("median", 0.0);
        if (!(x.sd_log >= 0) || !std::isfinite(x.sd_log) || x.runs < 0 || x.runs > 100000)
          return Status::error(fmt::format("{}: bad entry {} / {}", path, name, m));
        p.benchmarks[name][m] = x;
      }
    return p;
  } catch (const std::exception& e) {
    return Status::error(fmt::format("{}: malformed noise profile: {}", path, e.what()));
  }
}

Result<Profile> load(const std::string& path) {
  auto text = results::read_text_file(path);
  if (!text) return text.status();
  return parse(*text, path);
}

Result<std::string> path_for(const std::string& dir, const results::ResultsFile& f) {
  auto fp = baseline::fingerprint(f.context);
  if (!fp) return fp.status();
  std::string arch = f.get("arch");
  if (arch.empty()) return Status::error(f.path + ": no arch in its context");
  return dir + "/" + baseline::sanitize(arch) + "/" + fp->id() + "/noise.profile";
}

void apply(const Profile& p, compare::Options& options, const std::string& source) {
  for (const auto& [name, metrics] : p.benchmarks)
    for (const auto& [m, e] : metrics) options.noise[compare::noise_key(name, m)] = {e.sd_log, e.runs};
  options.noise_source = fmt::format("{}, {} runs x {} repetitions, {} profile, {}", source, p.runs, p.repetitions,
                                     p.profile.empty() ? "?" : p.profile, p.created);
}

Status attach(const Choice& c, const results::ResultsFile& base, compare::Options& options) {
  if (c.none) return Status::ok();
  std::string path = c.path;
  if (path.empty()) {
    auto p = path_for(baseline::default_dir(), base);
    if (!p) return Status::ok();
    std::error_code ec;
    if (!std::filesystem::exists(*p, ec)) return Status::ok();
    path = *p;
  }
  auto p = load(path);
  if (!p) return p.status();
  auto fp = baseline::fingerprint(base.context);
  if (fp && !p->host_id.empty() && fp->id() != p->host_id && !options.force)
    return Status::error(fmt::format("{} is the noise profile of host {}, but {} is from host {} (--force uses it "
                                     "anyway)",
                                     path, p->host_id, base.path, fp->id()));
  apply(*p, options, path);
  return Status::ok();
}

Result<results::ResultsFile> load_side(const std::vector<std::string>& paths, bool force) {
  std::vector<results::ResultsFile> files;
  for (const auto& path : paths) {
    auto r = results::load_results(path);
    if (!r) return r.status();
    files.push_back(std::move(*r));
  }
  if (files.empty()) return Status::error("no results file");
  for (size_t i = 1; i < files.size() && !force; ++i) {
    auto d = compare::incompatibilities(files[0], files[i]);
    if (!d.empty()) {
      std::string msg = fmt::format("refusing to pool {} with {} on one side: they differ in", files[0].path, files[i].path);
      for (const auto& x : d) msg += fmt::format("\n  {}: {} vs {}", x.what, x.base, x.next);
      return Status::error(msg + "\n--force pools them anyway.");
    }
    if (files[0].get("kernel_release") != files[i].get("kernel_release") ||
        files[0].get("variant") != files[i].get("variant"))
      return Status::error(fmt::format("refusing to pool {} ({}) with {} ({}) on one side: another kernel (--force "
                                       "pools them anyway)",
                                       files[0].path, files[0].label(), files[i].path, files[i].label()));
  }
  return results::combine_runs(std::move(files));
}

}  // namespace rmapbench::noise
