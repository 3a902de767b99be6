// Report formats: email width and ASCII, long names, JUnit well-formedness,
// JSON round trip, text ordering and colour.
#include <gtest/gtest.h>

#include <cctype>

#include <cmath>
#include <cstring>
#include <sstream>
#include <tuple>

#include "results_fixture.hpp"
#include "runners/compare/format.hpp"
#include "runners/compare/report.hpp"

using namespace rmapbench;
using compare::Verdict;
using rmapbench::testing::around;
using rmapbench::testing::fixture_path;
using rmapbench::testing::host_context;
using rmapbench::testing::load_fixture;
using rmapbench::testing::make_results;

namespace {

compare::Comparison run(const results::ResultsFile& a, const results::ResultsFile& b, bool force = false) {
  compare::Options o;
  o.force = force;
  o.sweep_fits = false;  // these tests pin the fixture's rows; the sweep fits are tested in test_compare.cpp
  auto c = compare::compare(a, b, o);
  if (!c) throw std::runtime_error(c.status().message());
  return *c;
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

void expect_mail_safe(const std::string& mail) {
  ASSERT_FALSE(mail.empty());
  int n = 0;
  for (const auto& l : split_lines(mail)) {
    ++n;
    EXPECT_LE(l.size(), report::kEmailWidth) << "line " << n << " is " << l.size() << " columns: [" << l << "]";
    for (unsigned char ch : l) EXPECT_TRUE(ch >= 0x20 && ch < 0x7f) << "line " << n << " has byte " << int(ch);
  }
}

// A small well-formedness checker: balanced, properly nested tags, quoted
// attributes, no raw '<' or stray '&' in text or attribute values.
std::string xml_problem(const std::string& x) {
  std::vector<std::string> stack;
  size_t i = 0;
  auto entity_ok = [&](size_t at) {
    for (const char* e : {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"})
      if (x.compare(at, std::strlen(e), e) == 0) return true;
    return false;
  };
  if (x.rfind("<?xml", 0) == 0) i = x.find("?>") + 2;
  bool root_seen = false;
  while (i < x.size()) {
    if (x[i] == '&') {
      if (!entity_ok(i)) return "stray & at " + std::to_string(i);
      ++i;
    } else if (x[i] != '<') {
      if (stack.empty() && !std::isspace(static_cast<unsigned char>(x[i]))) return "text outside the root";
      ++i;
    } else {
      size_t end = i + 1;
      char quote = 0;
      for (; end < x.size(); ++end) {
        if (quote) {
          if (x[end] == quote) quote = 0;
          else if (x[end] == '<') return "raw < in an attribute";
          else if (x[end] == '&' && !entity_ok(end)) return "stray & in an attribute";
        } else if (x[end] == '"' || x[end] == '\'') {
          quote = x[end];
        } else if (x[end] == '>') {
          break;
        }
      }
      if (end >= x.size()) return "unterminated tag";
      std::string tag = x.substr(i + 1, end - i - 1);
      if (tag.empty()) return "empty tag";
      if (tag[0] == '/') {
        if (stack.empty() || stack.back() != tag.substr(1)) return "mismatched </" + tag.substr(1) + ">";
        stack.pop_back();
      } else {
        bool self_closing = tag.back() == '/';
        std::string name = tag.substr(0, tag.find_first_of(" /"));
        if (stack.empty()) {
          if (root_seen) return "second root element";
          root_seen = true;
        }
        if (!self_closing) stack.push_back(name);
      }
      i = end + 1;
    }
  }
  if (!stack.empty()) return "unclosed <" + stack.back() + ">";
  return root_seen ? "" : "no root element";
}

}  // namespace

TEST(EmailFormat, FixturesFitSeventyTwoColumnsInAscii) {
  for (const auto& [a, b, force] : std::vector<std::tuple<const char*, const char*, bool>>{
           {"base.json", "aa.json", false},
           {"base.json", "shift5.json", false},
           {"base.json", "noisy.json", false},
           {"base.json", "other_host.json", true},
           {"plain_gbench.json", "plain_gbench.json", false}}) {
    SCOPED_TRACE(std::string(a) + " vs " + b);
    std::string mail = report::render_email(run(load_fixture(a), load_fixture(b), force));
    expect_mail_safe(mail);
  }
}

TEST(EmailFormat, ZeroDayRowsWithMarksAndSpreadOnlyAboveTwoPercent) {
  std::string mail = report::render_email(run(load_fixture("base.json"), load_fixture("shift5.json")));
  EXPECT_NE(mail.find("%stddev  %change"), std::string::npos) << mail;
  EXPECT_NE(mail.find("config: CONFIG_ANON_VMA_LAZY: not set -> y"), std::string::npos) << mail;
  EXPECT_NE(mail.find("6.1.0-13-amd64 stock"), std::string::npos);
  EXPECT_NE(mail.find("6.1.0-13-amd64 anon_vma_lazy"), std::string::npos);
  EXPECT_NE(mail.find("host:   x86_64, Intel(R) Xeon(R)"), std::string::npos);
  // Wrapped at 72 columns next to the fixtures' paths, so where a line
  // breaks depends on where the tree is checked out: words are matched
  // across line breaks.
  std::string words;
  for (char c : mail)
    if (!(std::isspace(static_cast<unsigned char>(c)) && !words.empty() && words.back() == ' '))
      words += std::isspace(static_cast<unsigned char>(c)) ? ' ' : c;
  EXPECT_NE(words.find("10 repetitions"), std::string::npos) << mail;
  EXPECT_NE(mail.find("Mann-Whitney U"), std::string::npos);
  EXPECT_NE(mail.find("Benjamini-Hochberg"), std::string::npos);
  // The regression row: R mark, no +- (stddev ~1%), and it comes first.
  auto lines = split_lines(mail);
  size_t reg = 0;
  for (size_t i = 0; i < lines.size(); ++i)
    if (lines[i].find(" R ") != std::string::npos && lines[i].find("real_time") != std::string::npos) reg = i;
  ASSERT_GT(reg, 0u) << mail;
  EXPECT_EQ(lines[reg - 1], "fork_storm/fork_exit_wait/vmas:1000");
  EXPECT_EQ(lines[reg].find("+-"), std::string::npos) << lines[reg];
  size_t first_bench = mail.find("fork_storm/fork_exit_wait/vmas:");
  EXPECT_EQ(mail.find("vmas:1000"), first_bench + std::string("fork_storm/fork_exit_wait/").size())
      << "regressions first";
  // Noisy data shows its spread and the reason.
  std::string noisy = report::render_email(run(load_fixture("base.json"), load_fixture("noisy.json")));
  EXPECT_NE(noisy.find("+- "), std::string::npos) << noisy;
  EXPECT_NE(noisy.find("3 repetitions < 5 (new)"), std::string::npos) << noisy;
}

TEST(EmailFormat, LongNamesAreWrappedNeverCut) {
  auto ctx = host_context();
  ctx["cpu_model"] = "Vendor\xc2\xae Extremely Long Processor Model Name With Many Words @ 9.99GHz";  // non-ASCII (R)
  const std::string long_bench =
      "thp_split/deferred_split_after_subrange_madv_dontneed_in_every_sharer/sharers:64/thp_size_kb:2048/"
      "folio_kind:anonymous_shared_with_ksm";
  const std::string long_metric = "anon_vma_chain_objects_allocated_per_live_child_per_vma";
  auto a = make_results("a.json", ctx, {{long_bench, around(300, 0.01), {{long_metric, around(2, 0.3)}}, ""}});
  auto b = make_results("b.json", ctx, {{long_bench, around(330, 0.01, 10, 1), {{long_metric, around(4, 0.3, 10, 1)}}, ""}});
  std::string mail = report::render_email(run(a, b));
  expect_mail_safe(mail);
  // Every character of the names survives: joining the wrapped pieces gives them back.
  std::string joined;
  for (const auto& l : split_lines(mail)) {
    size_t start = l.find_first_not_of(' ');
    if (start != std::string::npos) joined += l.substr(start);
  }
  EXPECT_NE(joined.find(long_bench), std::string::npos) << mail;
  EXPECT_NE(joined.find(long_metric), std::string::npos) << mail;
  EXPECT_NE(mail.find("Vendor? Extremely"), std::string::npos) << "non-ASCII replaced, not dropped: " << mail;
}

TEST(Wrap, KeepsEveryCharacter) {
  std::string text = "alpha beta/gamma_delta:epsilon " + std::string(100, 'z') + " end";
  auto lines = format::wrap(text, 20, "> ", "  ");
  std::string joined;
  for (const auto& l : lines) {
    EXPECT_LE(l.size(), 20u) << l;
    joined += l.substr(2);
  }
  std::string no_spaces;
  for (char c : text)
    if (c != ' ') no_spaces += c;
  std::string joined_no_spaces;
  for (char c : joined)
    if (c != ' ') joined_no_spaces += c;
  EXPECT_EQ(joined_no_spaces, no_spaces);
  EXPECT_EQ(format::wrap("", 10).size(), 1u);
}

TEST(JunitFormat, WellFormedWithAFailurePerRegression) {
  auto ctx = host_context();
  auto a = make_results("a.json", ctx,
                        {{"w/x<&\"y'>:1", around(100, 0.01), {}, ""}, {"w/ok", around(10, 0.01), {}, ""},
                         {"w/skip", {}, {}, "skipped: needs <2> NUMA & more"}, {"w/broken", around(10, 0.01), {}, ""}});
  auto b = make_results("b.json", ctx,
                        {{"w/x<&\"y'>:1", around(120, 0.01, 10, 1), {}, ""}, {"w/ok", around(10, 0.01, 10, 1), {}, ""},
                         {"w/skip", {}, {}, "skipped: needs <2> NUMA & more"}, {"w/broken", {}, {}, "error: lost <rmap>"}});
  auto c = run(a, b);
  std::string xml = report::render_junit(c);
  EXPECT_EQ(xml_problem(xml), "") << xml;
  EXPECT_NE(xml.find("tests=\"4\" failures=\"2\""), std::string::npos) << xml;
  EXPECT_NE(xml.find("<failure type=\"regression\""), std::string::npos);
  EXPECT_NE(xml.find("<failure type=\"error\""), std::string::npos);
  EXPECT_NE(xml.find("<skipped message=\"skipped: needs &lt;2&gt; NUMA &amp; more\"/>"), std::string::npos) << xml;
  EXPECT_NE(xml.find("name=\"w/x&lt;&amp;&quot;y&apos;&gt;:1\""), std::string::npos) << xml;
  size_t testcases = 0;
  for (size_t p = xml.find("<testcase "); p != std::string::npos; p = xml.find("<testcase ", p + 1)) ++testcases;
  EXPECT_EQ(testcases, 4u);
  // The fixtures too.
  EXPECT_EQ(xml_problem(report::render_junit(run(load_fixture("base.json"), load_fixture("shift5.json")))), "");
  EXPECT_NE(xml_problem("<a><b></a></b>"), "");  // the checker itself catches bad nesting
}

TEST(JsonFormat, RoundTripsEveryNumber) {
  auto c = run(load_fixture("base.json"), load_fixture("shift5.json"));
  auto j = nlohmann::json::parse(report::render_json(c));
  EXPECT_EQ(j["regressed"], true);
  EXPECT_EQ(j["comparisons"], c.comparisons);
  EXPECT_EQ(j["counts"]["regression"], c.count(Verdict::regression));
  EXPECT_EQ(j["options"]["threshold_pct"], c.options.threshold_pct);
  EXPECT_EQ(j["options"]["seed"].get<uint64_t>(), c.options.seed);
  EXPECT_EQ(j["base"]["kernel_release"], "6.1.0-13-amd64");
  EXPECT_EQ(j["new"]["variant"], "anon_vma_lazy");
  ASSERT_EQ(j["benchmarks"].size(), c.benchmarks.size());
  auto same = [](const nlohmann::json& v, double d) {
    if (!std::isfinite(d)) return v.is_null();
    return v.is_number() && v.get<double>() == d;  // bit-exact: the JSON carries full precision
  };
  size_t checked = 0;
  for (size_t i = 0; i < c.benchmarks.size(); ++i) {
    const auto& b = c.benchmarks[i];
    const auto& jb = j["benchmarks"][i];
    EXPECT_EQ(jb["name"], b.name);
    EXPECT_EQ(jb["verdict"], compare::verdict_name(b.verdict));
    ASSERT_EQ(jb["metrics"].size(), b.metrics.size());
    for (size_t k = 0; k < b.metrics.size(); ++k) {
      const auto& m = b.metrics[k];
      const auto& jm = jb["metrics"][k];
      SCOPED_TRACE(b.name + " " + m.metric);
      EXPECT_EQ(jm["metric"], m.metric);
      EXPECT_TRUE(same(jm["ratio"], m.ratio));
      EXPECT_TRUE(same(jm["change_pct"], m.change_pct));
      EXPECT_TRUE(same(jm["ci95_ratio"][0], m.ci.low));
      EXPECT_TRUE(same(jm["ci95_ratio"][1], m.ci.high));
      EXPECT_TRUE(same(jm["p_adjusted"], m.p_adjusted));
      EXPECT_TRUE(same(jm["threshold_pct"], m.threshold_pct));
      EXPECT_EQ(jm["significant"], m.significant);
      EXPECT_EQ(jm["verdict"], compare::verdict_name(m.verdict));
      for (const auto& [side, s, samples] : {std::tuple{"base", &m.base, &m.base_samples}, {"new", &m.next, &m.next_samples}}) {
        ASSERT_TRUE(s->has_value());
        const auto& js = jm[side];
        EXPECT_EQ(js["n"], (*s)->n);
        EXPECT_TRUE(same(js["median"], (*s)->median));
        EXPECT_TRUE(same(js["mad"], (*s)->mad));
        EXPECT_TRUE(same(js["mean"], (*s)->mean));
        EXPECT_TRUE(same(js["stddev"], (*s)->stddev));
        EXPECT_TRUE(same(js["cv"], (*s)->cv));
        EXPECT_TRUE(same(js["robust_cv"], (*s)->robust_cv));
        EXPECT_TRUE(same(js["min"], (*s)->min));
        EXPECT_TRUE(same(js["max"], (*s)->max));
        ASSERT_EQ(js["samples"].size(), samples->size());
        for (size_t q = 0; q < samples->size(); ++q) EXPECT_TRUE(same(js["samples"][q], (*samples)[q]));
      }
      if (m.u) {
        EXPECT_TRUE(same(jm["u_test"]["u"], m.u->u));
        EXPECT_TRUE(same(jm["u_test"]["p"], m.u->p_two_sided));
        EXPECT_EQ(jm["u_test"]["exact"], m.u->exact);
      } else {
        EXPECT_TRUE(jm["u_test"].is_null());
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 12u);
}

TEST(TextFormat, RegressionsFirstAndColourOnlyWhenAsked) {
  auto c = run(load_fixture("base.json"), load_fixture("shift5.json"));
  std::string plain = report::render_text(c, false);
  EXPECT_EQ(plain.find('\033'), std::string::npos);
  size_t header = plain.find("\nverdict") + 1;  // the table header (a path may hold "verdict")
  ASSERT_NE(header, 0u);
  size_t first_row = plain.find('\n', header) + 1;
  EXPECT_EQ(plain.compare(first_row, 10, "regression"), 0) << plain.substr(first_row, 80);
  std::string colored = report::render_text(c, true);
  EXPECT_NE(colored.find("\033[31mregression"), std::string::npos);
  // Aligned: every table row has the metric column at the same offset.
  auto lines = split_lines(plain.substr(header));
  size_t col = lines[0].find("metric");
  for (size_t i = 1; i < lines.size() && !lines[i].empty(); ++i)
    if (lines[i].find("real_time") != std::string::npos) {
      EXPECT_EQ(lines[i].find("real_time"), col) << lines[i];
    }
}

TEST(MarkdownFormat, HasTheTableAndTheVerdicts) {
  auto c = run(load_fixture("base.json"), load_fixture("shift5.json"));
  std::string md = report::render_markdown(c);
  EXPECT_NE(md.find("| verdict | benchmark | metric |"), std::string::npos);
  EXPECT_NE(md.find("| **regression** | fork\\_storm/fork\\_exit\\_wait/vmas:1000 | real\\_time |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("CONFIG\\_ANON\\_VMA\\_LAZY"), std::string::npos);
}

TEST(Formats, ParseAndValues) {
  EXPECT_EQ(report::parse_format("email"), report::Format::email);
  EXPECT_FALSE(report::parse_format("html"));
  EXPECT_EQ(format::value(2630.123), "2630.1");
  EXPECT_EQ(format::value(1000), "1000");
  EXPECT_EQ(format::value(1.23456), "1.2346");
  EXPECT_EQ(format::value(NAN), "-");
  EXPECT_LE(format::value(123456789.5, 9).size(), 9u);
  EXPECT_EQ(format::change(4.75), "+4.8%");
  EXPECT_EQ(format::change(-0.01), "0.0%");
  EXPECT_EQ(format::change(INFINITY), "+inf%");
  EXPECT_EQ(format::p_value(0.00012), "0.0001");
  EXPECT_EQ(format::p_value(0.00001), "1.0e-05");
  EXPECT_EQ(format::xml_escape("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
}
