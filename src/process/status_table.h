// The admin `/status` document as the tables `sluice status` prints: header
// lines (version, master, config and checksum, reloads), the generations and
// their workers, the listeners, one row per upstream server address. Free
// function; no state.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sluice::process {

// The tables for the JSON `document`, or nullopt with `*error` set when it
// is not JSON or not a /status document.
std::optional<std::string> formatStatusTable(std::string_view document, std::string* error);

}  // namespace sluice::process
