#include "dashboard_history.hpp"

#include <algorithm>
#include <limits>

#include "reporting/histogram.hpp"

namespace courier::metrics {

detail::SparseBuckets SubtractBuckets(const detail::SparseBuckets& now, const detail::SparseBuckets& before) {
  detail::SparseBuckets out;
  auto old = before.begin();
  for (const auto& [index, count] : now) {
    while (old != before.end() && old->first < index) ++old;
    const std::uint64_t previous = old != before.end() && old->first == index ? old->second : 0;
    if (count > previous) out.emplace_back(index, count - previous);
  }
  return out;
}

void StageHistory::Sample(const std::vector<SeriesView>& series, std::int64_t unix_ms) {
  std::lock_guard lock(mutex_);
  const std::uint64_t tick = ticks_++;
  times_.push_back(unix_ms);
  if (times_.size() > kPoints) times_.pop_front();
  for (const SeriesView& view : series) {
    auto key = std::make_tuple(view.service, view.process, view.stage);
    auto it = series_.find(key);
    if (it == series_.end()) {
      if (series_.size() >= max_series_) continue;
      it = series_.emplace(std::move(key), Series{}).first;
    }
    Series& held = it->second;
    const WindowStats& total = view.windows[kWindowAll];
    Point point;
    point.tick = tick;
    // Totals only grow; a smaller one means nothing arrived (saturation), never a negative second.
    const std::uint64_t count = total.count > held.count ? total.count - held.count : 0;
    const std::uint64_t errors = total.errors > held.errors ? total.errors - held.errors : 0;
    const std::uint64_t sum = total.sum_ns > held.sum_ns ? total.sum_ns - held.sum_ns : 0;
    point.count = static_cast<std::uint32_t>(std::min<std::uint64_t>(count, std::numeric_limits<std::uint32_t>::max()));
    point.errors = static_cast<std::uint32_t>(std::min<std::uint64_t>(errors, std::numeric_limits<std::uint32_t>::max()));
    if (count > 0) {
      point.mean_ns = static_cast<double>(sum) / static_cast<double>(count);
      const detail::SparseBuckets second = SubtractBuckets(total.buckets, held.buckets);
      if (const auto p99 = detail::EstimateQuantile(second, 0.99, 0, std::numeric_limits<std::uint64_t>::max())) {
        point.p99_ns = *p99;
      }
    }
    held.count = total.count;
    held.errors = total.errors;
    held.sum_ns = total.sum_ns;
    held.buckets = total.buckets;
    held.points.push_back(point);
    while (!held.points.empty() && held.points.front().tick + kPoints <= tick) held.points.pop_front();
  }
}

Value StageHistory::ServiceValue(std::string_view service) const {
  std::lock_guard lock(mutex_);
  const std::uint64_t first_tick = ticks_ - times_.size();
  Value times = Value::Array{};
  for (const std::int64_t t : times_) times.Append(Value(t));
  std::vector<SeriesView> order;
  for (const auto& [key, held] : series_) {
    if (std::get<0>(key) == service) order.push_back(SeriesView{std::get<0>(key), std::get<1>(key), std::get<2>(key), {}});
  }
  std::sort(order.begin(), order.end(), SeriesBefore);
  Value rows = Value::Array{};
  for (const SeriesView& view : order) {
    const Series& held = series_.at(std::make_tuple(view.service, view.process, view.stage));
    Value count = Value::Array{};
    Value errors = Value::Array{};
    Value mean = Value::Array{};
    Value p99 = Value::Array{};
    auto point = held.points.begin();
    for (std::uint64_t tick = first_tick; tick < ticks_; ++tick) {
      while (point != held.points.end() && point->tick < tick) ++point;
      if (point == held.points.end() || point->tick != tick) {
        count.Append(Value());
        errors.Append(Value());
        mean.Append(Value());
        p99.Append(Value());
        continue;
      }
      count.Append(Value(static_cast<std::uint64_t>(point->count)));
      errors.Append(Value(static_cast<std::uint64_t>(point->errors)));
      mean.Append(point->mean_ns >= 0 ? Value(point->mean_ns) : Value());
      p99.Append(point->p99_ns >= 0 ? Value(point->p99_ns) : Value());
    }
    rows.Append(Value::Object({{"process", Value(view.process)},
                               {"stage", Value(view.stage)},
                               {"count", std::move(count)},
                               {"errors", std::move(errors)},
                               {"mean_ns", std::move(mean)},
                               {"p99_ns", std::move(p99)}}));
  }
  return Value::Object({{"t", std::move(times)}, {"series", std::move(rows)}});
}

}  // namespace courier::metrics
