#include "benchmarks/mm/fork_oracle.hpp"

#include "benchmarks/mm/processes.hpp"

namespace rmapbench::mm {

Status check_fork_isolation(AnonLayout& layout, const std::string& workload) {
  const uint32_t parent_seed = layout.seed();
  auto child = ChildGroup::spawn(1, [&layout, parent_seed](long) -> Status {
    if (Status s = layout.verify(); s.failed()) return s.context(fork_isolation::kChildLacksParentData);
    layout.rewrite(parent_seed + 1);
    if (Status s = layout.verify(); s.failed()) return s.context(fork_isolation::kChildCopyWrong);
    return Status::ok();
  });
  if (!child) return child.status();
  if (Status s = child->release(); s.failed()) return s;
  // Simulates a kernel that let the child's writes leak into the parent.
  if (test_corruption_requested(workload)) layout.corrupt_one_byte_for_test(0, 0);
  if (Status s = layout.verify(); s.failed()) return s.context(fork_isolation::kParentDataChanged);
  return Status::ok();
}

}  // namespace rmapbench::mm
