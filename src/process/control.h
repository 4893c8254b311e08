// The `sluice -s reload|stop|quit` client: finds the running master through
// the pid file, signals it and waits for the outcome. Free function used by
// main; prints what happened and returns the process exit code.
#pragma once

#include <string>

namespace sluice::process {

// `action` is reload, stop or quit; `config_path` is the file passed with -c.
int runControlCommand(const std::string& action, const std::string& config_path);

// `sluice health`: GET `path` on the config's admin listener; exit 0 on a
// 200 within 2 s, else 1. For container HEALTHCHECKs without curl.
int runHealthCommand(const std::string& config_path, const std::string& path);

// `sluice status`: GET /status on the config's admin listener (retried for
// a few seconds while an older generation's worker answers 503 during a
// reload) and print it as tables, or the raw JSON with `json`; exit 0, or 1
// with a message (no admin listener, cannot connect, not a 200).
int runStatusCommand(const std::string& config_path, bool json);

}  // namespace sluice::process
