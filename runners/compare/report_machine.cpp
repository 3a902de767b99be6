// Machine-readable renderings for CI: JSON (every number) and JUnit XML.
#include <fmt/core.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "runners/compare/format.hpp"
#include "runners/compare/report.hpp"

namespace rmapbench::report {

using compare::BenchmarkRow;
using compare::Comparison;
using compare::MetricRow;
using compare::Verdict;
using nlohmann::json;

namespace {

// JSON has no NaN or infinity: those become null.
json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json side_json(const std::optional<stats::Summary>& s, const std::vector<double>& samples) {
  if (!s) return nullptr;
  json samples_json = json::array();
  for (double v : samples) samples_json.push_back(num(v));
  return {{"n", s->n},           {"median", num(s->median)}, {"mad", num(s->mad)},
          {"mean", num(s->mean)}, {"stddev", num(s->stddev)}, {"cv", num(s->cv)},
          {"robust_cv", num(s->robust_cv)}, {"min", num(s->min)}, {"max", num(s->max)},
          {"samples", samples_json}};
}

json kernel_json(const compare::KernelInfo& k) {
  return {{"path", k.path},         {"label", k.label},           {"kernel_release", k.release},
          {"variant", k.variant},   {"repetitions", k.repetitions}, {"profile", k.profile}};
}

json differences_json(const std::vector<compare::Difference>& d) {
  json a = json::array();
  for (const auto& x : d) a.push_back({{"what", x.what}, {"base", x.base}, {"new", x.next}});
  return a;
}

json metric_json(const MetricRow& m) {
  json j = {{"metric", m.metric},
            {"unit", m.info.unit},
            {"better", m.info.better == Better::lower ? "lower" : "higher"},
            {"kind", m.info.kind == MetricKind::exact ? "exact" : "statistical"},
            {"role", m.primary ? "primary" : "diagnostic"},
            {"declared", m.info.declared},
            {"base", side_json(m.base, m.base_samples)},
            {"new", side_json(m.next, m.next_samples)},
            {"ratio", num(m.ratio)},
            {"change_pct", num(m.change_pct)},
            {"ci95_ratio", {num(m.ci.low), num(m.ci.high)}},
            {"p_adjusted", num(m.p_adjusted)},
            {"significant", m.significant},
            {"threshold_pct", num(m.threshold_pct)},
            {"verdict", compare::verdict_name(m.verdict)},
            {"reason", m.reason}};
  j["detectable_pct"] = num(m.detectable_pct);
  j["floor_pct"] = num(m.floor_pct);
  j["beyond_host_pct"] = num(m.beyond_host_pct);
  j["p_beyond_host"] = num(m.p_beyond_host);
  if (m.runs_test) {
    const auto& t = *m.runs_test;
    j["run_test"] = {{"runs_base", t.runs_base}, {"runs_new", t.runs_next}, {"log_ratio", num(t.log_ratio)},
                     {"sd_between", num(t.sd_between)}, {"sd_pooled", num(t.sd_pooled)}, {"sd_observed", num(t.sd_observed)}, {"df", num(t.df)},
                     {"t", num(t.t)}, {"p", num(t.p_two_sided)}, {"floor_applied", t.floor_applied}};
  } else {
    j["run_test"] = nullptr;
  }
  if (m.u) {
    j["u_test"] = {{"u", num(m.u->u)},           {"p", num(m.u->p_two_sided)}, {"p_greater", num(m.u->p_greater)},
                   {"p_less", num(m.u->p_less)}, {"exact", m.u->exact},       {"ties", m.u->ties},
                   {"z", num(m.u->z)}};
  } else {
    j["u_test"] = nullptr;
  }
  return j;
}

}  // namespace

std::string render_json(const Comparison& c) {
  json counts = json::object();
  for (Verdict v : {Verdict::regression, Verdict::improvement, Verdict::no_change, Verdict::noisy,
                    Verdict::only_in_base, Verdict::only_in_new, Verdict::skipped, Verdict::error})
    counts[compare::verdict_name(v)] = c.count(v);
  json thresholds = json::object();
  for (const auto& [m, t] : c.options.metric_threshold_pct) thresholds[m] = t;
  json benchmarks = json::array();
  for (const auto& b : c.benchmarks) {
    json metrics = json::array();
    for (const auto& m : b.metrics) metrics.push_back(metric_json(m));
    benchmarks.push_back({{"name", b.name},
                          {"time_unit", b.time_unit},
                          {"verdict", compare::verdict_name(b.verdict)},
                          {"reason", b.reason},
                          {"base_message", b.base_message},
                          {"new_message", b.next_message},
                          {"metrics", metrics}});
  }
  json doc = {
      {"rmapbench_compare", 1},
      {"base", kernel_json(c.base)},
      {"new", kernel_json(c.next)},
      {"host", c.host},
      {"config_differences", differences_json(c.config_differences)},
      {"incompatibilities", differences_json(c.incompatibilities)},
      {"forced", c.forced},
      {"options",
       {{"threshold_pct", c.options.threshold_pct},
        {"metric_threshold_pct", thresholds},
        {"alpha", c.options.alpha},
        {"correction", compare::correction_name(c.options.correction)},
        {"min_repetitions", c.options.min_repetitions},
        {"max_cv_pct", c.options.max_cv_pct},
        {"bootstrap_resamples", c.options.bootstrap_resamples},
        {"seed", c.options.seed}}},
      {"test", c.test_description()},
      {"comparisons", c.comparisons},
      {"host_reference",
       c.host_shift ? nlohmann::json{{"change_pct", num((c.host_shift->ratio - 1) * 100)},
                                     {"se_log", num(c.host_shift->se_log)},
                                     {"p", num(c.host_shift->p)},
                                     {"moved", c.host_shift->moved}}
                    : nlohmann::json(nullptr)},
      {"counts", counts},
      {"regressed", c.regressed()},
      {"notes", c.notes},
      {"benchmarks", benchmarks},
  };
  return doc.dump(2) + "\n";
}

std::string render_junit(const Comparison& c) {
  using format::xml_escape;
  size_t failures = c.count(Verdict::regression) + c.count(Verdict::error);
  size_t skipped = c.count(Verdict::skipped) + c.count(Verdict::only_in_base) + c.count(Verdict::only_in_new);
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format("<testsuites name=\"rmapbench compare\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\">\n",
                     c.benchmarks.size(), failures, skipped);
  out += fmt::format("  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\">\n",
                     xml_escape("rmapbench compare " + c.base.label + " vs " + c.next.label), c.benchmarks.size(),
                     failures, skipped);
  out += "    <properties>\n";
  auto property = [&](const std::string& name, const std::string& value) {
    out += fmt::format("      <property name=\"{}\" value=\"{}\"/>\n", xml_escape(name), xml_escape(value));
  };
  property("base", c.base.path + " (" + c.base.label + ")");
  property("new", c.next.path + " (" + c.next.label + ")");
  property("host", c.host);
  property("test", c.test_description());
  for (const auto& d : c.incompatibilities) property("forced." + d.what, d.base + " vs " + d.next);
  out += "    </properties>\n";
  for (const BenchmarkRow* b : c.sorted()) {
    auto slash = b->name.find('/');
    std::string cls = "rmapbench." + (slash == std::string::npos ? b->name : b->name.substr(0, slash));
    out += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"0\">\n", xml_escape(cls), xml_escape(b->name));
    std::string details;
    for (const auto& m : b->metrics)
      details += fmt::format("{}: {} -> {} {} ({}), {}: {}\n", m.metric, format::value(m.base ? m.base->median : NAN, 12),
                             format::value(m.next ? m.next->median : NAN, 12), m.info.unit, format::change(m.change_pct),
                             compare::verdict_name(m.verdict), m.reason);
    if (b->verdict == Verdict::regression || b->verdict == Verdict::error) {
      out += fmt::format("      <failure type=\"{}\" message=\"{}\">{}</failure>\n", compare::verdict_name(b->verdict),
                         xml_escape(b->reason), xml_escape(details.empty() ? b->reason : details));
    } else if (b->verdict == Verdict::skipped || b->verdict == Verdict::only_in_base ||
               b->verdict == Verdict::only_in_new) {
      out += fmt::format("      <skipped message=\"{}\"/>\n",
                         xml_escape(std::string(compare::verdict_name(b->verdict)) + ": " + b->reason));
    }
    if (!details.empty()) out += fmt::format("      <system-out>{}</system-out>\n", xml_escape(details));
    out += "    </testcase>\n";
  }
  out += "  </testsuite>\n</testsuites>\n";
  return out;
}

}  // namespace rmapbench::report
