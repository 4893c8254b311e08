#include "observe/metrics_text.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice::observe {
namespace {

TEST(MetricsText, LabelValuesAreEscaped) {
  std::string out;
  MetricsWriter::appendLabelValue(out, "a\\b\"c\nd");
  EXPECT_EQ(out, "a\\\\b\\\"c\\nd");
  std::string line;
  MetricsWriter m(line, MetricsFormat::kPrometheus);
  m.family("x", MetricsWriter::Type::kGauge, "h");
  m.gauge({{"path", "/\"q\"\n"}, {"b", ""}}, int64_t{-3});
  EXPECT_EQ(line, "# HELP x h\n# TYPE x gauge\nx{path=\"/\\\"q\\\"\\n\",b=\"\"} -3\n");
}

TEST(MetricsText, CounterNamesPerFormat) {
  std::string prom;
  MetricsWriter p(prom, MetricsFormat::kPrometheus);
  p.family("sluice_r", MetricsWriter::Type::kCounter, "Requests.");
  p.counter({{"code", "2xx"}}, uint64_t{7});
  p.finish();
  EXPECT_EQ(prom,
            "# HELP sluice_r_total Requests.\n# TYPE sluice_r_total counter\n"
            "sluice_r_total{code=\"2xx\"} 7\n");

  std::string om;
  MetricsWriter o(om, MetricsFormat::kOpenMetrics);
  o.family("sluice_r", MetricsWriter::Type::kCounter, "Requests.");
  o.counter({{"code", "2xx"}}, uint64_t{7});
  o.finish();
  EXPECT_EQ(om,
            "# HELP sluice_r Requests.\n# TYPE sluice_r counter\n"
            "sluice_r_total{code=\"2xx\"} 7\n# EOF\n");
}

TEST(MetricsText, HelpEscaping) {
  std::string prom;
  MetricsWriter p(prom, MetricsFormat::kPrometheus);
  p.family("g", MetricsWriter::Type::kGauge, "a\\b\n\"c\"");
  EXPECT_EQ(prom, "# HELP g a\\\\b\\n\"c\"\n# TYPE g gauge\n");
  std::string om;
  MetricsWriter o(om, MetricsFormat::kOpenMetrics);
  o.family("g", MetricsWriter::Type::kGauge, "a\\b\n\"c\"");
  EXPECT_EQ(om, "# HELP g a\\\\b\\n\\\"c\\\"\n# TYPE g gauge\n");
}

TEST(MetricsText, HistogramBucketsAreCumulative) {
  Histogram histogram;
  histogram.observe(50);        // ≤ 100 µs
  histogram.observe(100);       // ≤ 100 µs (bounds are inclusive: le)
  histogram.observe(101);       // ≤ 250 µs
  histogram.observe(2000000);   // ≤ 2.5 s
  histogram.observe(61000000);  // +Inf
  uint64_t words[kHistogramBounds + 2];
  for (size_t i = 0; i <= kHistogramBounds; ++i)
    words[i] = histogram.buckets[i].load();
  words[kHistogramBounds + 1] = histogram.sum_us.load();
  EXPECT_EQ(words[0], 2u);
  EXPECT_EQ(words[1], 1u);
  EXPECT_EQ(words[13], 1u);
  EXPECT_EQ(words[kHistogramBounds], 1u);

  std::string out;
  MetricsWriter m(out, MetricsFormat::kPrometheus);
  m.family("d_seconds", MetricsWriter::Type::kHistogram, "D.");
  m.histogram({{"route", "0"}}, words, words[kHistogramBounds + 1]);
  EXPECT_NE(out.find("# TYPE d_seconds histogram\n"), std::string::npos);
  EXPECT_NE(out.find("d_seconds_bucket{route=\"0\",le=\"0.0001\"} 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("d_seconds_bucket{route=\"0\",le=\"0.00025\"} 3\n"), std::string::npos);
  EXPECT_NE(out.find("d_seconds_bucket{route=\"0\",le=\"1.0\"} 3\n"), std::string::npos);
  EXPECT_NE(out.find("d_seconds_bucket{route=\"0\",le=\"2.5\"} 4\n"), std::string::npos);
  EXPECT_NE(out.find("d_seconds_bucket{route=\"0\",le=\"60.0\"} 4\n"), std::string::npos);
  EXPECT_NE(out.find("d_seconds_bucket{route=\"0\",le=\"+Inf\"} 5\n"), std::string::npos);
  EXPECT_NE(out.find("d_seconds_count{route=\"0\"} 5\n"), std::string::npos);
  EXPECT_NE(out.find("d_seconds_sum{route=\"0\"} 63.000251\n"), std::string::npos) << out;
  // Buckets in increasing `le`, each at least the one before.
  size_t buckets = 0;
  uint64_t previous = 0;
  for (size_t at = out.find("_bucket{"); at != std::string::npos;
       at = out.find("_bucket{", at + 1)) {
    const size_t value = out.find("} ", at) + 2;
    const uint64_t count = std::stoull(out.substr(value, out.find('\n', value) - value));
    EXPECT_GE(count, previous);
    previous = count;
    ++buckets;
  }
  EXPECT_EQ(buckets, kHistogramBounds + 1);
}

TEST(MetricsText, HistogramWithoutLabels) {
  uint64_t words[kHistogramBounds + 1] = {};
  std::string out;
  MetricsWriter m(out, MetricsFormat::kOpenMetrics);
  m.family("e_seconds", MetricsWriter::Type::kHistogram, "E.");
  m.histogram({}, words, 0);
  m.finish();
  EXPECT_NE(out.find("e_seconds_bucket{le=\"+Inf\"} 0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("e_seconds_count 0\ne_seconds_sum 0\n# EOF\n"), std::string::npos) << out;
}

TEST(MetricsText, GaugesAndDoubles) {
  std::string out;
  MetricsWriter m(out, MetricsFormat::kPrometheus);
  m.family("t_seconds", MetricsWriter::Type::kGauge, "T.");
  m.gauge({}, 1796345855.957);
  m.family("c_seconds", MetricsWriter::Type::kCounter, "C.");
  m.counter({}, 0.25);
  EXPECT_NE(out.find("t_seconds 1796345855.957\n"), std::string::npos) << out;
  EXPECT_NE(out.find("c_seconds_total 0.25\n"), std::string::npos) << out;
}

TEST(MetricsText, FormatNegotiation) {
  EXPECT_EQ(metricsFormatFor(""), MetricsFormat::kPrometheus);
  EXPECT_EQ(metricsFormatFor("text/plain;version=0.0.4"), MetricsFormat::kPrometheus);
  // What Prometheus 2.x sends.
  EXPECT_EQ(metricsFormatFor("application/openmetrics-text;version=1.0.0,application/"
                             "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,"
                             "*/*;q=0.1"),
            MetricsFormat::kOpenMetrics);
  EXPECT_EQ(metricsContentType(MetricsFormat::kPrometheus),
            "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(metricsContentType(MetricsFormat::kOpenMetrics),
            "application/openmetrics-text; version=1.0.0; charset=utf-8");
}

}  // namespace
}  // namespace sluice::observe
