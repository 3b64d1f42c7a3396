// MetricsRegistry: a small Prometheus registry of counters, gauges and histograms,
// rendered as the text exposition format for GET /metrics.
//
// A metric is identified by its family name and a label set, written as Prometheus
// writes it (`protocol="HTTP/1.1",status="200"`; build it with Labels()). Get*()
// creates the metric on first use and returns the same pointer afterwards; hot paths
// should look a metric up once and keep the pointer. Metrics are never removed, so
// the pointers stay valid for the registry's lifetime.
//
// Threading: everything is thread-safe. Updates are lock-free atomics; Get*() and
// Render() take the registry's mutex.
#ifndef SPILLWAY_SERVER_ADMIN_METRICS_H_
#define SPILLWAY_SERVER_ADMIN_METRICS_H_

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "server/common/mutex.h"

namespace spillway {

class Counter {
 public:
  void Increment(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void Add(int64_t delta) { value_.fetch_add(delta, std::memory_order_relaxed); }
  void Set(int64_t value) { value_.store(value, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// Cumulative buckets with fixed upper bounds (+Inf implied).
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double value);

  const std::vector<double>& upper_bounds() const { return upper_bounds_; }
  // Non-cumulative count of bucket `i` (i == upper_bounds().size() is +Inf).
  uint64_t bucket_count(size_t i) const {
    return counts_[i].load(std::memory_order_relaxed);
  }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  const std::vector<double> upper_bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

// `{{"protocol", "HTTP/1.1"}, {"status", "200"}}` -> `protocol="HTTP/1.1",status="200"`,
// with values escaped as the exposition format requires.
std::string Labels(
    std::initializer_list<std::pair<std::string_view, std::string_view>> labels);

// Request durations in seconds: 1 ms .. 60 s.
std::vector<double> DefaultLatencyBuckets();

class MetricsRegistry {
 public:
  // The process's registry, for code that has no other way to reach one.
  static MetricsRegistry& Global();

  Counter* GetCounter(std::string_view name, std::string_view help,
                      std::string_view labels = "");
  Gauge* GetGauge(std::string_view name, std::string_view help,
                  std::string_view labels = "");
  // `upper_bounds` is used when the metric is created, ignored afterwards.
  Histogram* GetHistogram(std::string_view name, std::string_view help,
                          const std::vector<double>& upper_bounds,
                          std::string_view labels = "");

  // The Prometheus text exposition format (version 0.0.4), families sorted by name.
  std::string Render() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    Type type;
    std::string help;
    std::map<std::string, std::unique_ptr<Counter>> counters;
    std::map<std::string, std::unique_ptr<Gauge>> gauges;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
  };

  Family& FamilyLocked(std::string_view name, std::string_view help, Type type)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  std::map<std::string, Family, std::less<>> families_ ABSL_GUARDED_BY(mu_);
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_ADMIN_METRICS_H_
