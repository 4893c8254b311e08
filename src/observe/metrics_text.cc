#include "observe/metrics_text.h"

#include <charconv>
#include <cmath>

namespace sluice::observe {
namespace {

// The `le` of each bound of kHistogramBoundsUs, in seconds, then +Inf.
constexpr std::string_view kBucketLe[] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25",   "0.5",     "1.0",    "2.5",   "5.0",    "10.0",  "30.0", "60.0",  "+Inf"};
static_assert(std::size(kBucketLe) == kHistogramBounds + 1);

template <typename Int>
void appendInt(std::string& out, Int value) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  (void)ec;  // 24 bytes hold any 64-bit integer
  out.append(digits, end);
}

}  // namespace

MetricsFormat metricsFormatFor(std::string_view accept) {
  return accept.find("application/openmetrics-text") != std::string_view::npos
             ? MetricsFormat::kOpenMetrics
             : MetricsFormat::kPrometheus;
}

std::string_view metricsContentType(MetricsFormat format) {
  return format == MetricsFormat::kOpenMetrics
             ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
             : "text/plain; version=0.0.4; charset=utf-8";
}

void MetricsWriter::appendLabelValue(std::string& out, std::string_view value) {
  // Runs without a character to escape are appended whole (label values are
  // mostly names and addresses: one append each).
  size_t start = 0;
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c != '\\' && c != '"' && c != '\n') continue;
    out.append(value.data() + start, i - start);
    out += c == '\n' ? "\\n" : c == '"' ? "\\\"" : "\\\\";
    start = i + 1;
  }
  out.append(value.data() + start, value.size() - start);
}

void MetricsWriter::appendLabels(std::string& out, MetricLabels labels) {
  bool first = true;
  for (const MetricLabel& label : labels) {
    if (!first) out += ',';
    first = false;
    out.append(label.name);
    out.append("=\"", 2);
    appendLabelValue(out, label.value);
    out += '"';
  }
}

void MetricsWriter::family(std::string_view name, Type type, std::string_view help) {
  name_.assign(name);
  type_ = type;
  const bool total_in_name = type == Type::kCounter && format_ == MetricsFormat::kPrometheus;
  out_ += "# HELP ";
  out_ += name;
  if (total_in_name) out_ += "_total";
  out_ += ' ';
  for (const char c : help) {
    if (c == '\\') {
      out_ += "\\\\";
    } else if (c == '\n') {
      out_ += "\\n";
    } else if (c == '"' && format_ == MetricsFormat::kOpenMetrics) {
      out_ += "\\\"";
    } else {
      out_ += c;
    }
  }
  out_ += "\n# TYPE ";
  out_ += name;
  if (total_in_name) out_ += "_total";
  out_ += type == Type::kCounter ? " counter\n"
          : type == Type::kGauge ? " gauge\n"
                                 : " histogram\n";
}

void MetricsWriter::beginSample(std::string_view suffix, MetricLabels labels) {
  out_.append(name_);
  out_.append(suffix);
  if (labels.size() != 0) {
    out_ += '{';
    appendLabels(out_, labels);
    out_ += '}';
  }
  out_ += ' ';
}

void MetricsWriter::appendDouble(double value) {
  if (std::isnan(value)) {
    out_ += "NaN";
    return;
  }
  if (std::isinf(value)) {
    out_ += value > 0 ? "+Inf" : "-Inf";
    return;
  }
  char digits[32];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  (void)ec;  // the shortest round-trip form of a double fits in 32 bytes
  out_.append(digits, end);
}

void MetricsWriter::counter(MetricLabels labels, uint64_t value) {
  beginSample("_total", labels);
  appendInt(out_, value);
  out_ += '\n';
}

void MetricsWriter::counter(MetricLabels labels, double value) {
  beginSample("_total", labels);
  appendDouble(value);
  out_ += '\n';
}

void MetricsWriter::gauge(MetricLabels labels, int64_t value) {
  beginSample({}, labels);
  appendInt(out_, value);
  out_ += '\n';
}

void MetricsWriter::gauge(MetricLabels labels, double value) {
  beginSample({}, labels);
  appendDouble(value);
  out_ += '\n';
}

void MetricsWriter::histogram(MetricLabels labels, const uint64_t* buckets, uint64_t sum_us) {
  // The labels are escaped once for the 21 samples.
  labels_.clear();
  appendLabels(labels_, labels);
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= kHistogramBounds; ++i) {
    cumulative += buckets[i];
    out_.append(name_);
    out_.append("_bucket{", 8);
    if (!labels_.empty()) {
      out_.append(labels_);
      out_ += ',';
    }
    out_.append("le=\"", 4);
    out_.append(kBucketLe[i]);
    out_.append("\"} ", 3);
    appendInt(out_, cumulative);
    out_ += '\n';
  }
  beginSample("_count", labels);
  appendInt(out_, cumulative);
  out_ += '\n';
  beginSample("_sum", labels);
  appendDouble(static_cast<double>(sum_us) / 1e6);
  out_ += '\n';
}

void MetricsWriter::finish() {
  if (format_ == MetricsFormat::kOpenMetrics) out_ += "# EOF\n";
}

}  // namespace sluice::observe
