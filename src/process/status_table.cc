#include "process/status_table.h"

#include <algorithm>
#include <ctime>
#include <vector>

#include "core/json.h"

namespace sluice::process {
namespace {

// Columns padded to their widest cell, two spaces apart; the last column is
// not padded (no trailing blanks).
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void appendTo(std::string& out) const {
    std::vector<size_t> widths(rows_.front().size(), 0);
    for (const auto& row : rows_) {
      for (size_t c = 0; c < row.size() && c < widths.size(); ++c)
        widths[c] = std::max(widths[c], row[c].size());
    }
    for (const auto& row : rows_) {
      std::string line;
      for (size_t c = 0; c < row.size() && c < widths.size(); ++c) {
        line += row[c];
        if (c + 1 < row.size()) line.append(widths[c] - row[c].size() + 2, ' ');
      }
      out += line;
      out += '\n';
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

std::string text(const JsonValue& value, std::string_view absent = "-") {
  switch (value.type) {
    case JsonValue::Type::kString:
      return value.text.empty() ? std::string(absent) : value.text;
    case JsonValue::Type::kNumber:
      return std::to_string(value.integer());
    case JsonValue::Type::kBool:
      return value.boolean ? "yes" : "no";
    default:
      return std::string(absent);
  }
}

std::string utcTime(int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  if (::gmtime_r(&t, &tm) == nullptr) return std::to_string(unix_seconds);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

std::string ejection(const JsonValue& server) {
  if (server["ejected"].type != JsonValue::Type::kBool || !server["ejected"].boolean) return "no";
  const int64_t ms = server["ejected_for_ms"].integer();
  return "yes (" + std::to_string((ms + 999) / 1000) + "s)";
}

}  // namespace

std::optional<std::string> formatStatusTable(std::string_view document, std::string* error) {
  std::optional<JsonValue> parsed = parseJson(document, error);
  if (!parsed) return std::nullopt;
  const JsonValue& status = *parsed;
  if (status.type != JsonValue::Type::kObject ||
      status["version"].type != JsonValue::Type::kString ||
      status["generations"].type != JsonValue::Type::kArray ||
      status["upstreams"].type != JsonValue::Type::kArray) {
    *error = "not a /status document (no version, generations or upstreams)";
    return std::nullopt;
  }
  std::string out;
  const JsonValue& config = status["config"];
  const JsonValue& reloads = status["reloads"];
  out += "version     " + text(status["version"]) + "\n";
  out += "master      pid " + text(status["master_pid"]) + ", started " +
         utcTime(status["start_time"].integer()) + "\n";
  out += "config      " + text(config["path"]) + "\n";
  out += "sha256      " + text(config["sha256"]) + "\n";
  out += "generation  " + text(status["serving_generation"]) + " serving\n";
  out += "reloads     " + text(reloads["succeeded"]) + " succeeded, " + text(reloads["failed"]) +
         " failed" + (reloads["last_successful"].boolean ? "" : " (the last one failed)") + "\n";
  out += "answered    by pid " + text(status["answered_by"]["pid"]) + " (generation " +
         text(status["answered_by"]["generation"]) + ")\n";

  out += '\n';
  Table workers({"GENERATION", "STATE", "CONFIG SHA256", "SLOT", "PID", "WORKER", "CONNECTIONS",
                 "IDLE", "REQUESTS"});
  for (const JsonValue& generation : status["generations"].items) {
    const std::string sha = text(generation["config_sha256"]).substr(0, 12);
    for (const JsonValue& worker : generation["workers"].items) {
      workers.add({text(generation["id"]), text(generation["state"]), sha, text(worker["slot"]),
                   text(worker["pid"]), text(worker["state"]), text(worker["connections"]),
                   text(worker["idle_connections"]), text(worker["requests"])});
    }
  }
  workers.appendTo(out);

  out += '\n';
  Table listeners({"LISTENER", "ADDRESS", "TLS", "PROXY PROTOCOL", "ROUTES"});
  for (const JsonValue& listener : status["listeners"].items) {
    const bool admin = listener["admin"].boolean;
    listeners.add({text(listener["name"]), text(listener["address"]), text(listener["tls"]),
                   text(listener["proxy_protocol"]), admin ? "admin" : text(listener["routes"])});
  }
  listeners.appendTo(out);

  out += '\n';
  Table servers({"UPSTREAM", "SERVER", "DNS NAME", "HEALTH", "EJECTED", "IN-FLIGHT", "POOL IDLE",
                 "POOL ACTIVE"});
  for (const JsonValue& upstream : status["upstreams"].items) {
    for (const JsonValue& server : upstream["servers"].items) {
      std::string dns = text(server["dns_name"]);
      if (server["address"].isNull()) dns += " (" + text(server["dns_state"]) + ")";
      servers.add({text(upstream["name"]), text(server["address"]), dns, text(server["health"]),
                   ejection(server), text(server["in_flight"]), text(server["pool"]["idle"]),
                   text(server["pool"]["active"])});
    }
  }
  servers.appendTo(out);
  return out;
}

}  // namespace sluice::process
