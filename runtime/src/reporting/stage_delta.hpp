// stage_delta.hpp — turns cumulative stage totals (what processes keep) into the per-interval
// stage entries a metrics report carries (what the collector adds up).
//
//   StageDelta delta;
//   auto current = provider();                  // cumulative, since the process started
//   auto stages = delta.Compute(current);       // what changed since the last Commit
//   ... send; once accepted: delta.Commit(std::move(current));
//
// A total that went backwards (a provider restarted its counters) counts as fresh. Interval
// min/max are exact when the cumulative min/max moved in the interval; otherwise they are
// taken from the lowest/highest histogram bucket that changed, clamped to the cumulative
// bounds (or are the cumulative bounds when there is no histogram).
// Thread-safety: none; one owner thread.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "courier/reporting.hpp"
#include "report_codec.hpp"

namespace courier::detail {

class StageDelta {
 public:
  // Returns: the entries of `current` that changed (count or errors) since the last
  // Commit, as interval stages; unchanged stages are left out.
  std::vector<StageInterval> Compute(const std::vector<StageTotals>& current) const;
  // Makes `current` the baseline of the next Compute.
  void Commit(std::vector<StageTotals> current);

 private:
  std::map<std::pair<std::string, std::string>, StageTotals> baseline_;
};

}  // namespace courier::detail
