// sluice: command-line entry point. Parses flags, loads and validates the
// config, then hands over to the master process (or signals a running one).
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/log.h"
#include "process/control.h"
#include "process/master.h"
#include "upstream/dns_updater.h"

namespace {

constexpr const char* kDefaultConfigPath = "/etc/sluice/sluice.yaml";

// A streaming body grows a connection's buffers to a few hundred KiB and
// frees them when the response ends. glibc then hands the freed top of the
// heap back with brk() and faults it in again for the next response: 126
// page faults and one or two brk calls per proxied 1 MiB response,
// measured. Keep freed memory instead (a worker's heap stays at its
// high-water mark, as nginx's and HAProxy's pools do), and take every
// block under 4 MiB from the heap: a fixed mmap threshold also stops glibc
// from moving it with each large free. Set before the workers fork.
void keepFreedHeapMemory() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

void printUsage(FILE* out) {
  std::fprintf(
      out,
      "Usage: sluice [-c FILE] [-t | -s reload|stop|quit] [-v] [-h]\n"
      "       sluice health [-c FILE] [--path PATH]\n"
      "       sluice status [-c FILE] [--json]\n"
      "\n"
      "An HTTP reverse proxy and load balancer.\n"
      "\n"
      "Options:\n"
      "  -c, --config FILE   configuration file (default %s)\n"
      "  -t, --test          validate the configuration, print the outcome, exit 0 or 1\n"
      "  -s SIGNAL           tell the running master (found through pid_file):\n"
      "                        reload  re-read the config; waits until it serves or fails\n"
      "                        quit    drain in-flight requests, then exit\n"
      "                        stop    exit at once\n"
      "  -v, --version       print the version and exit\n"
      "  -h, --help          print this help and exit\n"
      "\n"
      "Subcommands (they read only admin.address from the config):\n"
      "  health              GET /healthz (or --path) on the admin listener; exit 0 on a 200\n"
      "  status              GET /status on the admin listener and print it as tables:\n"
      "                      version, config checksum, generations and workers,\n"
      "                      listeners, upstream servers (health, ejection, in flight,\n"
      "                      pool); --json prints the document as it came\n"
      "\n"
      "Signals to the master: SIGHUP reloads, SIGTERM/SIGQUIT drain and exit,\n"
      "SIGINT exits at once, SIGUSR1 reopens logs. See docs/operations.md.\n",
      kDefaultConfigPath);
}

struct Options {
  std::string config_path = kDefaultConfigPath;
  bool test_only = false;
  std::string signal;   // -s
  bool health = false;  // the `health` subcommand
  std::string health_path = "/healthz";
  bool status = false;       // the `status` subcommand
  bool status_json = false;  // status --json
};

// Returns -1 to continue, or an exit code.
int parseArgs(int argc, char** argv, Options* options) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-c" || arg == "--config") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "sluice: %s needs a file name\n", arg.c_str());
        return 2;
      }
      options->config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      options->config_path = arg.substr(9);
    } else if (arg == "-s" || arg == "--signal") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "sluice: -s needs reload, stop or quit\n");
        return 2;
      }
      options->signal = argv[++i];
    } else if (arg == "health" && i == 1) {
      options->health = true;
    } else if (arg == "status" && i == 1) {
      options->status = true;
    } else if (arg == "--json" && options->status) {
      options->status_json = true;
    } else if (arg == "--path" && options->health) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "sluice: --path needs a path\n");
        return 2;
      }
      options->health_path = argv[++i];
    } else if (arg == "-t" || arg == "--test") {
      options->test_only = true;
    } else if (arg == "-v" || arg == "--version") {
      std::printf("sluice %s\n", SLUICE_VERSION);
      return 0;
    } else if (arg == "-h" || arg == "--help") {
      printUsage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "sluice: unknown option %s\n\n", arg.c_str());
      printUsage(stderr);
      return 2;
    }
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sluice;
  Options options;
  if (int code = parseArgs(argc, argv, &options); code >= 0) return code;
  if (options.health) return process::runHealthCommand(options.config_path, options.health_path);
  if (options.status) return process::runStatusCommand(options.config_path, options.status_json);
  if (!options.signal.empty()) {
    return process::runControlCommand(options.signal, options.config_path);
  }

  config::LoadResult loaded = config::loadConfigFile(options.config_path);
  for (const std::string& warning : loaded.warnings)
    std::fprintf(stderr, "%s\n", warning.c_str());
  if (!loaded.ok()) {
    for (const std::string& error : loaded.errors)
      std::fprintf(stderr, "%s\n", error.c_str());
    std::fprintf(stderr, "sluice: configuration file %s test failed\n",
                 options.config_path.c_str());
    return 1;
  }
  if (options.test_only) {
    for (const std::string& warning : upstream::checkServerNames(*loaded.config))
      std::fprintf(stderr, "%s\n", warning.c_str());
    std::printf("sluice: configuration file %s test is successful\n", options.config_path.c_str());
    return 0;
  }
  const config::Config& config = *loaded.config;

  log::Level level = log::Level::kInfo;
  log::parseLevel(config.log.level, &level);
  log::setLevel(level);
  log::setFormat(config.log.error_format);
  std::string error;
  if (!log::setTarget(config.log.error, &error)) {
    std::fprintf(stderr, "sluice: %s\n", error.c_str());
    return 1;
  }

  keepFreedHeapMemory();
  process::Master master(options.config_path, loaded.config);
  int code = master.run();
  return code;
}
