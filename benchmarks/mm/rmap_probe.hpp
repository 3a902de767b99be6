// The rmap oracle of the VMA-operation workloads: after VMAs mapping PMD
// THPs were moved, split, merged or inherited through a fork of a fork or an
// exited parent, an operation that walks the rmap of every folio runs, and
// every process that maps a folio must see its effect. A process that does
// not is a mapping the walk missed.
//
// What each process maps is described, not discovered: a View lists Pieces,
// runs of pages of a patterned layout at an address. The layout page index
// survives every move, so the same pattern checks a page wherever it went.
//
// The walk, chosen by host (Walk::choose):
//   - >= 2 NUMA nodes: move_pages (MPOL_MF_MOVE_ALL) of each folio to another
//     node, from one of its mappers; every page of every process must then
//     be on that node;
//   - THP with debugfs usable: <debugfs>/split_huge_pages over each folio in
//     one of its mappers;
//   - THP otherwise: the deferred split shrinker: every mapper
//     MADV_DONTNEEDs one page of each folio it maps (drop_addresses), then
//     drop_slab runs the shrinkers.
// A split must show in every process (no page of the pieces in a large folio
// any more, kpageflags), as must a move; the data must be intact in every
// process (each process verifies its own view).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "kernels/status.hpp"

namespace rmapbench::mm::rmap_probe {

// ------------------------------------------------------------ the expected state (pure)

// `pages` pages of layout `seed`, from its page `first_page` on, mapped at
// `start`. Layout page i belongs to folio i / pages_per_folio.
struct Piece {
  uintptr_t start = 0;
  uint32_t seed = 0;
  long first_page = 0;
  long pages = 0;
  bool operator==(const Piece&) const = default;
};

// What one process maps. pid 0: the benchmark process.
struct View {
  std::string who;
  pid_t pid = 0;
  std::vector<Piece> pieces;
};

// A folio of a layout: (seed, folio index).
using FolioId = std::pair<uint32_t, long>;

// Per folio, the indexes (into `views`) of the processes that map any of its
// pages, in view order.
std::map<FolioId, std::vector<size_t>> mappers(const std::vector<View>& views, long pages_per_folio);

// The address of the page of each folio that the process drops (MADV_DONTNEED)
// before the deferred split: the last page of the folio it maps. Ascending.
std::vector<uintptr_t> drop_addresses(const View& view, long pages_per_folio, size_t page_bytes);

// Where a folio is walked from: one process that maps it (the first in view
// order) and the range of the folio's pages it maps, [start, start + pages).
struct WalkTarget {
  FolioId folio;
  size_t view = 0;
  uintptr_t start = 0;
  long pages = 0;
};
// One per folio, in folio order. A folio a process maps in two pieces is
// walked from the first.
std::vector<WalkTarget> walk_targets(const std::vector<View>& views, long pages_per_folio, size_t page_bytes);

// Piece `p` moved by `delta` bytes (mremap) or cut to its first `pages`.
Piece moved(const Piece& p, intptr_t delta);
Piece cut(const Piece& p, long pages);

// ------------------------------------------------------------ the sequences' expected states (pure)

// A layout as faulted: `folios` folios of `pages_per_folio` pages at `start`.
struct Shape {
  uintptr_t start = 0;
  uint32_t seed = 0;
  long folios = 0;
  long pages_per_folio = 0;
  size_t page_bytes = 0;
  size_t folio_bytes() const { return static_cast<size_t>(pages_per_folio) * page_bytes; }
  size_t bytes() const { return static_cast<size_t>(folios) * folio_bytes(); }
};
// Every page of the layout where it was faulted.
std::vector<Piece> whole(const Shape& s);

// mremap of a layout: `move` to `destination`, `grow` to it one folio larger
// (the new folio holds the layout's next pages), `shrink` in place by half a
// folio (its last folio half unmapped).
enum class Remap { move, grow, shrink };
struct Remapped {
  uintptr_t start = 0;  // where the VMA starts after
  size_t bytes = 0;     // its length after
};
Remapped remapped(const Shape& s, Remap how, uintptr_t destination);
// What the remapping process maps after.
std::vector<Piece> after_remap(const Shape& s, Remap how, uintptr_t destination);
// munmap of the last folio and a new anonymous neighbour in its place,
// faulted with layout `neighbour_seed`'s pages of the same indexes.
std::vector<Piece> after_munmap_then_merge(const Shape& s, uint32_t neighbour_seed);
// The middle that mprotect_split_merge makes read-only and back: from half
// a folio in to half a folio before the end (both boundaries inside folios).
std::pair<uintptr_t, size_t> mprotect_middle(const Shape& s);

// The views of a run: ours first ("the benchmark process"), then one per
// pid, each mapping `theirs`, named "<role> <i>".
std::vector<View> views_of(const std::vector<Piece>& ours, const std::vector<Piece>& theirs,
                           const std::vector<pid_t>& pids, const std::string& role);
// fork_of_fork: we map our layout; a child maps ours and its own layout,
// and so do its grandchildren.
std::vector<View> views_of_fork_of_fork(const Shape& ours, const Shape& childs_own, pid_t child,
                                        const std::vector<pid_t>& grandchildren);
// orphaned: we map our layout; the orphans map ours and their exited
// parent's own layout (which nobody else maps any more).
std::vector<View> views_of_orphaned(const Shape& ours, const Shape& parents_own, const std::vector<pid_t>& orphans);

// ------------------------------------------------------------ the data

// Word `w` of layout page `page`: what fill() writes and verify() expects.
uint64_t pattern_word(uint32_t seed, long page, size_t w);
// Writes the pattern of every page of `piece` (each first touch a fault).
void fill(const Piece& piece);
// In the process that maps `view`: every page of every piece holds its
// pattern, pages at `dropped` read as zeros. The first difference is the
// error, naming view.who, the layout page, its address and the byte.
Status verify(const View& view, const std::vector<uintptr_t>& dropped);
// Test hook for the oracle tests: flips one byte of the first page of the view.
void corrupt_one_byte_for_test(const View& view);

// ------------------------------------------------------------ the walk

class Walk {
 public:
  enum class Kind { migration, debugfs_split, deferred_split };
  // The walk this host can do, or the skip reason ("needs transparent huge
  // pages ..." / "needs root ...").
  static Result<Walk> choose();
  Kind kind() const { return kind_; }
  // For the benchmark's label: which walk ran and how.
  std::string note() const;
  // Whether every mapper must drop drop_addresses() of its view before run().
  bool mappers_drop_pages() const { return kind_ == Kind::deferred_split; }

  // The rmap-walking operation over every folio of `views`, then the check
  // that its effect shows in every view. Returns the operation's ns (the
  // first attempt: the shrinker may decline a folio and is run again, up to
  // three times, before a folio still whole in a process is an error; a
  // folio not moved is tried again the same way).
  Result<int64_t> run(const std::vector<View>& views, long pages_per_folio) const;

 private:
  Result<int64_t> split(const std::vector<View>& views, long pages_per_folio) const;
  Result<int64_t> migrate(const std::vector<View>& views, long pages_per_folio) const;
  Kind kind_ = Kind::deferred_split;
  std::string debugfs_path_;
  std::string why_not_debugfs_;
  std::string why_not_migration_;
};

// The first page of `view` whose node is not its folio's target (`target`
// per folio), from the nodes of each piece's pages in order (`nodes[k]` for
// piece k; negative: not present). Pure.
struct Misplaced {
  size_t count = 0;  // pages not on their target
  uintptr_t address = 0;
  uint32_t seed = 0;
  long page = 0;
  int node = 0, target = 0;
};
Misplaced misplaced(const View& view, const std::vector<std::vector<int>>& nodes, const std::map<FolioId, int>& target,
                    long pages_per_folio, size_t page_bytes);

// Which pages of `view` are still in a large folio (kpageflags). Empty when
// none. Needs root.
struct StillLarge {
  uintptr_t address = 0;
  uint32_t seed = 0;
  long page = 0;  // layout page
};
Result<std::vector<StillLarge>> pages_in_large_folios(const View& view);

}  // namespace rmapbench::mm::rmap_probe
