// The README's workload and sweep tables are checked against what the
// binary says about itself (`rmapbench list --json`): a workload or a sweep
// added without its row, or values changed without the table, fail here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "run_rmapbench.hpp"

using json = nlohmann::json;
using namespace rmapbench::testing;

namespace {

// The cells of the table rows that follow `header` (a line starting with
// it) up to the first line that is not a row.
std::vector<std::vector<std::string>> table_rows(const std::string& markdown, const std::string& header) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(markdown);
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    if (!inside) {
      inside = line.starts_with(header);
      continue;
    }
    if (!line.starts_with("|")) break;
    if (line.starts_with("|---")) continue;
    std::vector<std::string> cells;
    size_t start = 1;
    for (size_t bar = line.find('|', start); bar != std::string::npos; bar = line.find('|', start)) {
      std::string cell = line.substr(start, bar - start);
      cell.erase(0, cell.find_first_not_of(' '));
      cell.erase(cell.find_last_not_of(' ') + 1);
      cells.push_back(cell);
      start = bar + 1;
    }
    rows.push_back(cells);
  }
  return rows;
}

std::string unquoted(const std::string& cell) {
  return cell.size() >= 2 && cell.front() == '`' && cell.back() == '`' ? cell.substr(1, cell.size() - 2) : cell;
}

// "1, 64, 1000" -> "[1,64,1000]"; a cell in words (a host-dependent value) -> "".
std::string values_of(const std::string& cell) {
  if (cell.empty() || !std::all_of(cell.begin(), cell.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) || c == ',' || c == ' ';
      }))
    return "";
  json values = json::array();
  std::istringstream in(cell);
  for (std::string item; std::getline(in, item, ',');) values.push_back(std::stol(item));
  return values.dump();
}

// What differs between the README and `list --json`, one line each.
std::vector<std::string> readme_differences(const std::string& readme, const json& workloads) {
  std::vector<std::string> problems;
  std::set<std::string> listed, in_table;
  for (const json& w : workloads) listed.insert(w.at("name").get<std::string>());
  for (const auto& row : table_rows(readme, "| workload | kernel path |")) in_table.insert(unquoted(row.at(0)));
  for (const auto& name : listed)
    if (!in_table.count(name)) problems.push_back("workload " + name + " has no row in the README's workload table");
  for (const auto& name : in_table)
    if (!listed.count(name)) problems.push_back("the README's workload table has " + name + ", which list --json lacks");

  // Sweeps: rows are matched by workload and parameter, then values (rows
  // in words are host-dependent: their values are not compared).
  auto sweep_rows = table_rows(readme, "| workload | parameter | quick | full |");
  std::vector<bool> matched(sweep_rows.size(), false);
  for (const json& w : workloads) {
    for (const json& s : w.at("sweep")) {
      const std::string name = w.at("name"), param = s.at("param");
      const std::string quick = s.at("quick").dump(), full = s.at("full").dump();
      auto fits = [&](size_t i, bool exact) {
        const auto& r = sweep_rows[i];
        if (matched[i] || r.size() < 4 || unquoted(r[0]) != name || unquoted(r[1]) != param) return false;
        const std::string q = values_of(r[2]), f = values_of(r[3]);
        return exact ? q == quick && f == full : q.empty() || f.empty();
      };
      bool found = false;
      for (bool exact : {true, false})
        for (size_t i = 0; i < sweep_rows.size() && !found; ++i)
          if (fits(i, exact)) found = matched[i] = true;
      if (!found)
        problems.push_back("sweep " + name + " " + param + " (quick " + quick + ", full " + full +
                           ") has no matching row in the README's sweep table");
    }
  }
  for (size_t i = 0; i < sweep_rows.size(); ++i)
    if (!matched[i]) problems.push_back("the README's sweep table has a row no workload declares: " + sweep_rows[i].at(0) +
                                        " " + sweep_rows[i].at(1));
  return problems;
}

json list_json() {
  Outcome o = run_rmapbench({"list", "--json"});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  return json::parse(o.out);
}

}  // namespace

TEST(Readme, TablesMatchListJson) {
  const std::string readme = read_file(std::string(RMAPBENCH_SOURCE_DIR) + "/README.md");
  const json workloads = list_json();
  ASSERT_FALSE(workloads.empty());
  for (const auto& problem : readme_differences(readme, workloads)) ADD_FAILURE() << problem;
}

// The check above can fail: a workload added without its rows, or a sweep
// whose values changed, is reported.
TEST(Readme, CheckFindsAWorkloadWithoutRowsAndChangedValues) {
  const std::string readme = read_file(std::string(RMAPBENCH_SOURCE_DIR) + "/README.md");
  json workloads = list_json();
  ASSERT_TRUE(readme_differences(readme, workloads).empty());

  json added = workloads;
  const json sweep = {{"param", "vmas"}, {"quick", json::array({1})}, {"full", json::array({1, 2})}};
  added.push_back({{"name", "fork_example"}, {"sweep", json::array({sweep})}});
  const auto problems = readme_differences(readme, added);
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_NE(problems[0].find("workload fork_example has no row"), std::string::npos) << problems[0];
  EXPECT_NE(problems[1].find("sweep fork_example vmas"), std::string::npos) << problems[1];

  json changed = workloads;
  for (json& w : changed)
    if (w.at("name") == "fork_storm") w.at("sweep").at(0).at("full").push_back(65536);
  const auto changed_problems = readme_differences(readme, changed);
  ASSERT_EQ(changed_problems.size(), 2u);
  EXPECT_NE(changed_problems[0].find("sweep fork_storm vmas"), std::string::npos) << changed_problems[0];
  EXPECT_NE(changed_problems[1].find("row no workload declares: `fork_storm` `vmas`"), std::string::npos)
      << changed_problems[1];
}
