// MetricsWriter: renders metric families in the Prometheus text exposition
// format 0.0.4 or OpenMetrics 1.0.0 into one caller-owned string (appends
// only: a scrape costs the string's growth, no allocation per series).
// Knows the two formats' differences: a counter family is `x_total` in
// TYPE/HELP for Prometheus and `x` for OpenMetrics (its samples are `x_total`
// in both), HELP escaping, and OpenMetrics' closing `# EOF`.
// A value type used on one worker's loop for one scrape.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "observe/counters.h"

namespace sluice::observe {

enum class MetricsFormat : uint8_t { kPrometheus, kOpenMetrics };

// OpenMetrics when the Accept header names application/openmetrics-text
// (what Prometheus sends first), else the Prometheus text format.
MetricsFormat metricsFormatFor(std::string_view accept);
std::string_view metricsContentType(MetricsFormat format);

struct MetricLabel {
  std::string_view name;   // [a-zA-Z_][a-zA-Z0-9_]*, never escaped
  std::string_view value;  // any bytes; escaped
};
using MetricLabels = std::initializer_list<MetricLabel>;

class MetricsWriter {
 public:
  enum class Type : uint8_t { kCounter, kGauge, kHistogram };

  MetricsWriter(std::string& out, MetricsFormat format) : out_(out), format_(format) {}

  // Starts a family. `name` is without `_total` for counters (the writer
  // adds it where the format wants it) and without `_bucket` etc. for
  // histograms.
  void family(std::string_view name, Type type, std::string_view help);
  // One sample of the current family.
  void counter(MetricLabels labels, uint64_t value);
  void counter(MetricLabels labels, double value);
  void gauge(MetricLabels labels, int64_t value);
  void gauge(MetricLabels labels, double value);
  // A Histogram's `_bucket` (cumulative, `le` in seconds), `_count` and
  // `_sum` (seconds) samples: `buckets` are kHistogramBounds + 1 per-bucket
  // counts as in observe::Histogram (the last is +Inf), `sum_us` their sum
  // in microseconds.
  void histogram(MetricLabels labels, const uint64_t* buckets, uint64_t sum_us);
  // Ends the exposition (OpenMetrics: `# EOF`).
  void finish();

  // Label value / HELP escaping (exposed for tests).
  static void appendLabelValue(std::string& out, std::string_view value);

 private:
  static void appendLabels(std::string& out, MetricLabels labels);
  void beginSample(std::string_view suffix, MetricLabels labels);
  void appendDouble(double value);

  std::string& out_;
  MetricsFormat format_;
  std::string name_;    // the current family
  std::string labels_;  // a histogram's escaped labels
  Type type_ = Type::kGauge;
};

}  // namespace sluice::observe
