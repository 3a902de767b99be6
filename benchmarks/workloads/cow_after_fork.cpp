// COW after fork: write faults on anonymous pages shared by S+1 processes.
// The writer (the parent, or one of the children) takes a fault per page,
// copies it (wp_page_copy) and leaves the other sharers' mappings alone.
#include <fmt/core.h>

#include <memory>

#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/budget.hpp"
#include "benchmarks/mm/op_counters.hpp"
#include "benchmarks/mm/processes.hpp"
#include "benchmarks/harness/registry.hpp"
#include "benchmarks/harness/run.hpp"

namespace rmapbench {
namespace {

constexpr long kPages = 256;  // 1 MiB with 4 KiB pages
constexpr uint8_t kMarker = 0xA5;

// The timed operation: one write per page, each a COW fault. Returns ns.
int64_t write_pages(mm::AnonLayout& layout) {
  const size_t ps = mm::page_size();
  char* base = layout.vma_start(0);
  const int64_t start = mm::monotonic_ns();
  for (long p = 0; p < kPages; ++p) base[static_cast<size_t>(p) * ps] = static_cast<char>(kMarker);
  return mm::monotonic_ns() - start;
}

// The same with the per-operation counters on (they are opened after the
// sharers were forked, so no fork copies them and the timing is unaffected).
struct CountedWrite {
  int64_t ns = 0;
  mm::OpCounts counts;
  std::vector<std::string> absent;
};
Result<CountedWrite> write_every_page(mm::AnonLayout& layout) {
  CountedWrite w;
  auto c = mm::count_per_op(1, [&] {
    w.ns = write_pages(layout);
    return Status::ok();
  }, &w.absent);
  if (!c) return c.status();
  w.counts = *c;
  return w;
}

// The writer sees its marker at byte 0 and the copied original everywhere
// else (COW copied the page right); a sharer sees only the original.
Status check_view(const mm::AnonLayout& layout, bool writer, const char* who) {
  const size_t ps = mm::page_size();
  const char* base = layout.vma_start(0);
  for (long p = 0; p < kPages; ++p) {
    const char* page = base + static_cast<size_t>(p) * ps;
    for (size_t off = 0; off < ps; ++off) {
      const uint8_t expect = (writer && off == 0) ? kMarker : mm::pattern_byte(layout.seed(), 0, p, off);
      if (static_cast<uint8_t>(page[off]) != expect)
        return Status::error(fmt::format("{}: page {} byte {} is 0x{:02x}, expected 0x{:02x} ({})", who, p, off,
                                         static_cast<uint8_t>(page[off]), expect,
                                         writer ? "COW copy wrong" : "another process's write leaked in"));
    }
  }
  return Status::ok();
}

// The writer is the parent: it writes, then checks its own view.
Result<CountedWrite> write_in_parent(mm::AnonLayout& layout) {
  auto w = write_every_page(layout);
  if (!w) return w;
  if (Status s = check_view(layout, true, "parent (writer)"); s.failed()) return s;
  return w;
}

// The writer is a child (one of the sharers): it writes and checks its view,
// the parent then checks it still sees the original.
Result<CountedWrite> write_in_child(mm::AnonLayout& layout) {
  mm::AnonLayout* shared = &layout;
  auto agent = mm::Agent::spawn(1, {}, [shared](const mm::AgentRequest&) {
    auto w = write_every_page(*shared);
    if (!w) return mm::reply_error(w.status().message());
    if (Status s = check_view(*shared, true, "child (writer)"); s.failed()) return mm::reply_error(s.message());
    mm::AgentReply r = mm::reply_ok({double(w->ns), w->counts.page_faults, w->counts.context_switches,
                                     w->counts.cpu_migrations, w->counts.sys_us});
    std::snprintf(r.message, sizeof r.message, "%s", w->absent.empty() ? "" : w->absent.front().c_str());
    return r;
  });
  if (!agent) return agent.status();
  auto r = agent->call({1, 0});
  if (!r) return r.status();
  CountedWrite w;
  w.ns = static_cast<int64_t>(r->values[0]);
  w.counts = {r->values[1], r->values[2], r->values[3], r->values[4]};
  if (r->message[0]) w.absent.push_back(r->message);
  if (Status s = check_view(layout, false, "parent"); s.failed()) return s;
  return w;
}

struct Variant {
  const char* name;
  Result<CountedWrite> (*write)(mm::AnonLayout& layout);
  bool writer_is_a_sharer;  // with a child writer, one of the S sharers writes
};

const Variant kVariants[] = {
    {"parent_write", write_in_parent, false},
    {"child_write", write_in_child, true},
};

void run(benchmark::State& state, const Variant& v, const long& sharers) {
  harness::Run run(state);
  // The writer is one of the sharers (or the parent, with S children).
  if (sharers < 1) return run.stop(Status::skip("needs sharers >= 1"));
  if (!mm::within_budget(state, {mm::grows_with("sharers", sharers), mm::fixed(1), mm::fixed(2 * kPages)}))
    return;
  const bool corrupt = mm::test_corruption_requested("cow_after_fork");
  const bool timed = run.time([&]() -> Result<int64_t> {
    auto layout = mm::AnonLayout::create(1, kPages, static_cast<uint32_t>(run.iterations() + 3));
    if (!layout) return layout.status();
    // Children that only share.
    auto group = mm::ChildGroup::spawn(v.writer_is_a_sharer ? sharers - 1 : sharers, {},
                                       [&layout, corrupt](long i) -> Status {
                                         if (corrupt && i == 0) layout->corrupt_one_byte_for_test(0, 3);
                                         return check_view(*layout, false, "sharer");
                                       });
    if (!group) return group.status();
    auto written = v.write(*layout);
    if (!written) return written.status();
    if (Status s = group->release(); s.failed()) return s;
    run.add_counts(written->counts, written->absent);
    return written->ns;
  }, kPages);
  if (!timed) return;
  run.report_counts(kPages);  // per page, like the timing
  state.counters["sharers"] = static_cast<double>(sharers);
  run.finish();
}

void register_cow(Registrar& r) {
  const std::vector<long> sharers = r.sweep("sharers", {1, 8, 64}, {1, 2, 4, 8, 16, 32, 64});
  auto points = [&](const Variant&) {
    std::vector<std::pair<std::string, long>> out;
    for (long s : sharers) out.emplace_back(fmt::format("/sharers:{}", s), s);
    return out;
  };
  add_variants(r, kVariants, points, run, r.profile() == Profile::quick ? 10 : 40);
}

}  // namespace

RMAPBENCH_WORKLOAD(cow_after_fork,
                   {.name = "cow_after_fork",
                    .kernel_path = "do_wp_page -> wp_page_copy on anonymous folios mapped by S+1 processes",
                    .description = "A parent faults 256 pages, forks S children that keep them; then the parent, or "
                                   "one of the children, writes one byte per page. Timed: the write loop, reported "
                                   "per page (one COW fault each).",
                    .oracle = "the writer sees its byte plus the copied original; every other sharer still sees only "
                              "the original.",
                    .parameters = "sharers: S children sharing the pages (quick 1,8,64; full 1..64)",
                    .needs = {},
                    .register_benchmarks = register_cow});

}  // namespace rmapbench
