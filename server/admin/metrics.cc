#include "server/admin/metrics.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "server/common/string_view_compat.h"

namespace spillway {
namespace {

std::string FormatValue(double value) {
  // Prometheus parses Go float syntax; %g is enough and keeps integers short.
  return absl::StrCat(value);
}

// `name{labels}` or `name{labels,extra}`, omitting empty braces.
std::string Series(std::string_view name, std::string_view labels,
                   std::string_view extra = "") {
  if (labels.empty() && extra.empty()) return std::string(name);
  return absl::StrCat(AbslView(name), "{", AbslView(labels),
                      (!labels.empty() && !extra.empty()) ? "," : "", AbslView(extra), "}");
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)),
      counts_(new std::atomic<uint64_t>[upper_bounds_.size() + 1]) {
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::Observe(double value) {
  const size_t bucket =
      std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) -
      upper_bounds_.begin();
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

std::string Labels(
    std::initializer_list<std::pair<std::string_view, std::string_view>> labels) {
  std::string out;
  for (const auto& [name, value] : labels) {
    if (!out.empty()) out += ',';
    absl::StrAppend(&out, AbslView(name), "=\"");
    for (char c : value) {
      if (c == '\\') {
        out += "\\\\";
      } else if (c == '"') {
        out += "\\\"";
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
    out += '"';
  }
  return out;
}

std::vector<double> DefaultLatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
          0.5,   1,      2.5,   5,    10,    30,   60};
}

MetricsRegistry& MetricsRegistry::Global() {
  static MetricsRegistry* registry = new MetricsRegistry();  // never destroyed
  return *registry;
}

MetricsRegistry::Family& MetricsRegistry::FamilyLocked(std::string_view name,
                                                       std::string_view help,
                                                       Type type) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{type, std::string(help), {}, {}, {}})
             .first;
  }
  return it->second;
}

Counter* MetricsRegistry::GetCounter(std::string_view name, std::string_view help,
                                     std::string_view labels) {
  MutexLock lock(&mu_);
  auto& slot = FamilyLocked(name, help, Type::kCounter).counters[std::string(labels)];
  if (slot == nullptr) slot = std::make_unique<Counter>();
  return slot.get();
}

Gauge* MetricsRegistry::GetGauge(std::string_view name, std::string_view help,
                                 std::string_view labels) {
  MutexLock lock(&mu_);
  auto& slot = FamilyLocked(name, help, Type::kGauge).gauges[std::string(labels)];
  if (slot == nullptr) slot = std::make_unique<Gauge>();
  return slot.get();
}

Histogram* MetricsRegistry::GetHistogram(std::string_view name, std::string_view help,
                                         const std::vector<double>& upper_bounds,
                                         std::string_view labels) {
  MutexLock lock(&mu_);
  auto& slot =
      FamilyLocked(name, help, Type::kHistogram).histograms[std::string(labels)];
  if (slot == nullptr) slot = std::make_unique<Histogram>(upper_bounds);
  return slot.get();
}

std::string MetricsRegistry::Render() const {
  MutexLock lock(&mu_);
  std::string out;
  for (const auto& [name, family] : families_) {
    const char* type = family.type == Type::kCounter ? "counter"
                       : family.type == Type::kGauge ? "gauge"
                                                     : "histogram";
    absl::StrAppend(&out, "# HELP ", name, " ", family.help, "\n# TYPE ", name, " ",
                    type, "\n");
    for (const auto& [labels, counter] : family.counters) {
      absl::StrAppend(&out, Series(name, labels), " ", counter->value(), "\n");
    }
    for (const auto& [labels, gauge] : family.gauges) {
      absl::StrAppend(&out, Series(name, labels), " ", gauge->value(), "\n");
    }
    for (const auto& [labels, histogram] : family.histograms) {
      const std::string bucket_name = absl::StrCat(name, "_bucket");
      uint64_t cumulative = 0;
      const auto& bounds = histogram->upper_bounds();
      for (size_t i = 0; i <= bounds.size(); ++i) {
        cumulative += histogram->bucket_count(i);
        const std::string le = i < bounds.size() ? FormatValue(bounds[i]) : "+Inf";
        absl::StrAppend(&out,
                        Series(bucket_name, labels, absl::StrCat("le=\"", le, "\"")),
                        " ", cumulative, "\n");
      }
      absl::StrAppend(&out, Series(absl::StrCat(name, "_sum"), labels), " ",
                      FormatValue(histogram->sum()), "\n");
      absl::StrAppend(&out, Series(absl::StrCat(name, "_count"), labels), " ",
                      histogram->count(), "\n");
    }
  }
  return out;
}

}  // namespace spillway
