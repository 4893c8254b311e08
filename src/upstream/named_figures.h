// NamedFigures: cumulative figures the master keeps for the whole process
// about one named thing — a DNS name it resolves, an upstream it health
// checks — in SharedState (never per generation: one lookup or probe serves
// every generation, and must be counted once). Written by the master only
// (relaxed atomics), read by the workers' /metrics.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace sluice::upstream {

struct NamedFigures {
  static constexpr size_t kMaxName = 256;  // NUL included; DNS names are at most 253
  char name[kMaxName] = {};
  std::atomic<uint64_t> values[4] = {};
  std::string_view nameView() const { return name; }
};

// The figures for `name`, or null when the table is full (then not counted).
using FiguresFor = std::function<NamedFigures*(const std::string& name)>;

// DnsUpdater's words in NamedFigures::values.
enum DnsFigure : size_t { kDnsLookups, kDnsFailures, kDnsChanges, kDnsAddresses /* a level */ };
// HealthChecker's, per upstream.
enum HealthFigure : size_t { kProbes, kProbeFailures, kOutages, kRecoveries };

}  // namespace sluice::upstream
