#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.h"
#include "observe/access_format.h"

namespace sluice::config {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The smallest valid config; tests append to or replace parts of it.
constexpr const char* kListener = R"(listeners:
  - address: 127.0.0.1:8080
    routes:
      - respond: { status: 200 }
)";

LoadResult load(const std::string& text) {
  return loadConfigText(text, "t.yaml");
}

std::shared_ptr<const Config> loadOk(const std::string& text) {
  LoadResult result = load(text);
  EXPECT_TRUE(result.ok());
  for (const std::string& e : result.errors)
    ADD_FAILURE() << "unexpected error: " << e;
  return result.config;
}

std::vector<std::string> errorsOf(const std::string& text) {
  LoadResult result = load(text);
  EXPECT_FALSE(result.ok()) << "config was accepted:\n" << text;
  EXPECT_FALSE(result.errors.empty());
  return result.errors;
}

// Exactly one error is expected; returns it (or "" after a failure).
std::string errorOf(const std::string& text) {
  std::vector<std::string> errors = errorsOf(text);
  EXPECT_EQ(errors.size(), 1u) << ::testing::PrintToString(errors);
  return errors.empty() ? "" : errors.front();
}

// --- the two examples from the design (exact text, line and column) -------

TEST(LoaderTest, BadPortInUpstreamServer) {
  const std::string text = std::string(kListener) + R"(upstreams:
  app:
    servers:
      - address: 127.0.0.1:9001
      - address: 127.0.0.1:99999
)";
  EXPECT_EQ(errorOf(text),
            "t.yaml:9:18: upstreams.app.servers[1].address: \"127.0.0.1:99999\" is not a valid "
            "port (1-65535)");
}

TEST(LoaderTest, DanglingUpstreamWithSuggestion) {
  const std::string text = R"(listeners:
  - name: web
    address: 127.0.0.1:8080
    routes:
      - match: { path_prefix: /a }
        upstream: app
      - match: { path_prefix: /b }
        respond: { status: 204 }
      - upstream: ap
upstreams:
  app:
    servers:
      - address: 127.0.0.1:9001
)";
  EXPECT_EQ(errorOf(text),
            "t.yaml:9:19: listeners[0].routes[2].upstream: no upstream named \"ap\" (did you mean "
            "\"app\"?)");
}

TEST(LoaderTest, DanglingUpstreamWithoutSuggestion) {
  EXPECT_EQ(errorOf(R"(listeners:
  - address: 127.0.0.1:8080
    routes:
      - upstream: backend
)"),
            "t.yaml:4:19: listeners[0].routes[0].upstream: no upstream named \"backend\"");
}

TEST(LoaderTest, RoutesMayNameUpstreamsDefinedLater) {
  auto config = loadOk(R"(upstreams:
  b:
    servers: [{address: 127.0.0.1:9001}]
listeners:
  - address: 127.0.0.1:8080
    routes:
      - upstream: b
)");
  ASSERT_TRUE(config);
  EXPECT_EQ(config->listeners[0].routes[0].upstream, "b");
  ASSERT_NE(config->findUpstream("b"), nullptr);
  EXPECT_EQ(config->findUpstream("b")->servers.size(), 1u);
}

TEST(LoaderTest, BrokenUpstreamIsStillKnownByName) {
  // One error for the server, none for the route that names the upstream.
  EXPECT_EQ(errorOf(R"(listeners:
  - address: 127.0.0.1:8080
    routes:
      - upstream: app
upstreams:
  app:
    servers:
      - address: "no where:1"
)"),
            "t.yaml:8:18: upstreams.app.servers[0].address: \"no where:1\": \"no where\" is "
            "neither an IP address nor a host name (letters, digits, hyphens, dots)");
}

// --- YAML and file errors -------------------------------------------------

TEST(LoaderTest, YamlSyntaxErrorIsLocated) {
  EXPECT_EQ(errorOf("workers: 1\nlisteners: [\n"),
            "t.yaml:3:1: invalid YAML: end of sequence flow not found");
}

TEST(LoaderTest, UnquotedWildcardGetsAHint) {
  EXPECT_EQ(errorOf(std::string(kListener) + "      - match: { host: *.example.com }\n"),
            "t.yaml:5:24: invalid YAML: the referenced anchor is not defined (a value starting "
            "with * must be quoted, e.g. host: \"*.example.com\")");
}

TEST(LoaderTest, MissingFile) {
  LoadResult result = loadConfigFile("/nonexistent-dir/sluice.yaml");
  EXPECT_FALSE(result.ok());
  EXPECT_THAT(result.errors,
              ElementsAre("/nonexistent-dir/sluice.yaml: cannot read: No such file or directory"));
}

TEST(LoaderTest, DirectoryIsNotAFile) {
  LoadResult result = loadConfigFile("/");
  EXPECT_FALSE(result.ok());
  EXPECT_THAT(result.errors, ElementsAre("/: cannot read: Is a directory"));
}

TEST(LoaderTest, LoadsFromFileWithPathInMessages) {
  const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                     ("sluice-loader-test-" + std::to_string(::getpid()) + ".yaml");
  {
    std::ofstream out(path);
    out << kListener << "workers: lots\n";
  }
  LoadResult result = loadConfigFile(path.string());
  std::filesystem::remove(path);
  EXPECT_THAT(result.errors,
              ElementsAre(path.string() + ":5:10: workers: expected auto or a number 1-1024, got "
                                          "\"lots\""));
}

TEST(LoaderTest, SourcePathIsRecorded) {
  auto config = loadOk(kListener);
  ASSERT_TRUE(config);
  EXPECT_EQ(config->source_path, "t.yaml");
}

TEST(LoaderTest, ChecksumIsTheSha256OfTheBytesLoaded) {
  auto config = loadOk(kListener);
  ASSERT_TRUE(config);
  // printf %s "$kListener" | sha256sum
  EXPECT_EQ(config->sha256, "e6dabb42dd69ea3d3b41d1edbcaa7202d8c9a517a5a536bf57394dd7bcb570b4");
  // One byte more (a trailing comment) is another checksum.
  auto edited = loadOk(std::string(kListener) + "#\n");
  ASSERT_TRUE(edited);
  EXPECT_NE(edited->sha256, config->sha256);
  // From a file: the same bytes, the same checksum.
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("sluice_checksum_" + std::to_string(::getpid()));
  std::ofstream(path) << kListener;
  LoadResult from_file = loadConfigFile(path.string());
  std::filesystem::remove(path);
  ASSERT_TRUE(from_file.ok());
  EXPECT_EQ(from_file.config->sha256, config->sha256);
}

TEST(LoaderTest, OnlyOneDocument) {
  EXPECT_EQ(errorOf(std::string(kListener) + "---\nworkers: 2\n"),
            "t.yaml:5:1: only one YAML document is allowed (remove the second ---)");
}

TEST(LoaderTest, EmptyFileNeedsListeners) {
  EXPECT_EQ(errorOf(""), "t.yaml: listeners: missing: at least one listener is required");
  EXPECT_EQ(errorOf("# nothing\n"),
            "t.yaml: listeners: missing: at least one listener is required");
}

TEST(LoaderTest, TopLevelMustBeAMapping) {
  EXPECT_EQ(errorOf("- a\n- b\n"),
            "t.yaml:1:1: expected a mapping of settings at the top level, got a list");
}

TEST(LoaderTest, EmptyListenerList) {
  EXPECT_EQ(errorOf("listeners: []\n"),
            "t.yaml:1:12: listeners: at least one listener is required");
}

// --- unknown and duplicate keys ----------------------------------------------

TEST(LoaderTest, UnknownTopLevelKeyWithSuggestion) {
  EXPECT_THAT(errorsOf("listner:\n  - address: 127.0.0.1:80\n"),
              ElementsAre("t.yaml:1:1: listner: unknown key (did you mean \"listeners\"?)",
                          "t.yaml:1:1: listeners: missing: at least one listener is required"));
}

TEST(LoaderTest, UnknownKeyWithoutSuggestionListsTheKnownOnes) {
  EXPECT_EQ(errorOf(std::string(kListener) + "log:\n  colour: red\n"),
            "t.yaml:6:3: log.colour: unknown key (expected one of: level, error, error_format, "
            "access, access_format)");
}

TEST(LoaderTest, UnknownKeysAtEveryLevel) {
  const std::string text = R"(listeners:
  - adress: 127.0.0.1:8080
    address: 127.0.0.1:8080
    routes:
      - match: { path: /x }
        respond: { staus: 200 }
      - upstreams: app
        upstream: app
upstreams:
  app:
    server: []
    servers:
      - address: 127.0.0.1:9001
        wieght: 2
    keepalive: { max_idel: 1 }
    timeouts: { conect: 1s }
timeouts: { headers: 1s }
limits: { max_header: 1k }
)";
  EXPECT_THAT(
      errorsOf(text),
      ElementsAre(
          "t.yaml:2:5: listeners[0].adress: unknown key (did you mean \"address\"?)",
          "t.yaml:5:18: listeners[0].routes[0].match.path: unknown key (expected one of: host, "
          "path_prefix, method, headers, query)",
          "t.yaml:6:20: listeners[0].routes[0].respond.staus: unknown key (did you mean "
          "\"status\"?)",
          "t.yaml:7:9: listeners[0].routes[1].upstreams: unknown key (did you mean \"upstream\"?)",
          "t.yaml:11:5: upstreams.app.server: unknown key (did you mean \"servers\"?)",
          "t.yaml:14:9: upstreams.app.servers[0].wieght: unknown key (did you mean \"weight\"?)",
          "t.yaml:15:18: upstreams.app.keepalive.max_idel: unknown key (did you mean "
          "\"max_idle\"?)",
          "t.yaml:16:17: upstreams.app.timeouts.conect: unknown key (did you mean \"connect\"?)",
          "t.yaml:17:13: timeouts.headers: unknown key (did you mean \"header\"?)",
          "t.yaml:18:11: limits.max_header: unknown key (did you mean \"max_headers\"?)"));
}

TEST(LoaderTest, DuplicateKeys) {
  EXPECT_EQ(errorOf(std::string(kListener) + "workers: 1\nworkers: 2\n"),
            "t.yaml:6:1: workers: duplicate key (first set at line 5)");
}

TEST(LoaderTest, DuplicateUpstreamNames) {
  EXPECT_EQ(errorOf(std::string(kListener) + R"(upstreams:
  app:
    servers: [{address: 127.0.0.1:9001}]
  app:
    servers: [{address: 127.0.0.1:9002}]
)"),
            "t.yaml:8:3: upstreams.app: duplicate key (first set at line 6)");
}

// --- types ------------------------------------------------------------------

TEST(LoaderTest, WrongTypes) {
  const std::string text = std::string(kListener) + R"(shutdown_timeout: { seconds: 5 }
log: [info]
trusted_proxies: 127.0.0.1
limits:
  max_headers: [1]
  max_header_bytes: {}
)";
  EXPECT_THAT(errorsOf(text),
              ElementsAre("t.yaml:5:19: shutdown_timeout: expected a duration like 5s or 250ms, "
                          "got a mapping",
                          "t.yaml:6:6: log: expected a mapping, got a list",
                          "t.yaml:7:18: trusted_proxies: expected a list, got \"127.0.0.1\"",
                          "t.yaml:9:16: limits.max_headers: expected a whole number, got a list",
                          "t.yaml:10:21: limits.max_header_bytes: expected a size like 16k or 1m, "
                          "got a mapping"));
}

TEST(LoaderTest, EmptyValueIsReportedAtItsKey) {
  EXPECT_EQ(errorOf(std::string(kListener) + "pid_file:\nworkers: 1\n"),
            "t.yaml:5:1: pid_file: expected a file path, got an empty value");
}

TEST(LoaderTest, BadDurationText) {
  EXPECT_THAT(errorsOf(std::string(kListener) + "timeouts:\n  header: 10\n  body: 1.5s\n  idle: "
                                                "-1s\n  send: 3d\n"),
              ElementsAre("t.yaml:6:11: timeouts.header: \"10\" has no unit (did you mean "
                          "\"10s\"? units: ms, s, m, h)",
                          "t.yaml:7:9: timeouts.body: \"1.5s\" is not a whole number; use a "
                          "smaller unit instead (e.g. 1500ms for 1.5s)",
                          "t.yaml:8:9: timeouts.idle: \"-1s\" is negative; durations are 0 or more",
                          "t.yaml:9:9: timeouts.send: \"3d\" has an unknown unit \"d\" (use ms, s, "
                          "m or h)"));
}

TEST(LoaderTest, TimeoutsMustBePositive) {
  EXPECT_THAT(
      errorsOf(std::string(kListener) + R"(timeouts: { idle: 0s }
upstreams:
  app:
    servers: [{address: 127.0.0.1:9001}]
    keepalive: { idle_timeout: 0 }
    timeouts: { connect: 0ms }
)"),
      ElementsAre("t.yaml:5:19: timeouts.idle: must be greater than 0",
                  "t.yaml:9:32: upstreams.app.keepalive.idle_timeout: must be greater than 0",
                  "t.yaml:10:26: upstreams.app.timeouts.connect: must be greater than 0"));
}

TEST(LoaderTest, ShutdownTimeoutMayBeZero) {
  auto config = loadOk(std::string(kListener) + "shutdown_timeout: 0\n");
  ASSERT_TRUE(config);
  EXPECT_EQ(config->shutdown_timeout, Duration::zero());
}

// --- workers, log, limits --------------------------------------------------

TEST(LoaderTest, Workers) {
  auto config = loadOk(std::string(kListener) + "workers: auto\n");
  ASSERT_TRUE(config);
  EXPECT_EQ(config->workers, 0u);
  config = loadOk(std::string(kListener) + "workers: 1024\n");
  ASSERT_TRUE(config);
  EXPECT_EQ(config->workers, 1024u);
  EXPECT_EQ(errorOf(std::string(kListener) + "workers: 0\n"),
            "t.yaml:5:10: workers: expected auto or a number 1-1024, got \"0\"");
  EXPECT_EQ(errorOf(std::string(kListener) + "workers: 1025\n"),
            "t.yaml:5:10: workers: expected auto or a number 1-1024, got \"1025\"");
  errorOf(std::string(kListener) + "workers: Auto\n");
  errorOf(std::string(kListener) + "workers: -1\n");
}

TEST(LoaderTest, LogSettings) {
  auto config = loadOk(std::string(kListener) + R"(log:
  level: debug
  error: /var/log/sluice/error.log
  access: "off"
  access_format: json
)");
  ASSERT_TRUE(config);
  EXPECT_EQ(config->log.level, "debug");
  EXPECT_EQ(config->log.error, "/var/log/sluice/error.log");
  EXPECT_EQ(config->log.access, "off");
  EXPECT_EQ(config->log.access_format, "json");
}

TEST(LoaderTest, AccessFormatTemplatesAndTheJsonErrorLog) {
  auto config = loadOk(std::string(kListener) + R"(log:
  error_format: json
  access_format: "$request_id $remote_addr $status $upstream_connect_time"
)");
  ASSERT_TRUE(config);
  EXPECT_EQ(config->log.error_format, "json");
  EXPECT_EQ(config->log.access_format, "$request_id $remote_addr $status $upstream_connect_time");
  EXPECT_EQ(errorOf(std::string(kListener) + "log:\n  access_format: \"$status $stauts\"\n"),
            "t.yaml:6:18: log.access_format: unknown field $stauts; fields: " +
                observe::AccessFormat::fieldNames());
  EXPECT_EQ(errorOf(std::string(kListener) + "log:\n  error_format: logfmt\n"),
            "t.yaml:6:17: log.error_format: \"logfmt\" is not one of text, json");
}

TEST(LoaderTest, BadLogSettings) {
  EXPECT_THAT(errorsOf(std::string(kListener) + R"(log:
  level: warning
  access_format: clf
  error: stdout
  access: stderr
)"),
              ElementsAre("t.yaml:6:10: log.level: \"warning\" is not one of error, warn, info, "
                          "debug (did you mean \"warn\"?)",
                          "t.yaml:7:18: log.access_format: \"clf\" is not one of combined, json, "
                          "or a format with $fields (e.g. \"$remote_addr $status $request_time\")",
                          "t.yaml:8:10: log.error: \"stdout\" is not allowed for the error log "
                          "(use stderr or a file path, e.g. /dev/stdout)",
                          "t.yaml:9:11: log.access: \"stderr\" is not allowed for the access log "
                          "(use stdout, off or a file path, e.g. /dev/stderr)"));
}

TEST(LoaderTest, LimitsInRange) {
  auto config = loadOk(std::string(kListener) + R"(limits:
  max_header_bytes: 1k
  max_headers: 10000
  max_body_bytes: 10g
  max_connections: 1
  max_requests_per_connection: 0
)");
  ASSERT_TRUE(config);
  EXPECT_EQ(config->limits.max_header_bytes, 1024u);
  EXPECT_EQ(config->limits.max_headers, 10000u);
  EXPECT_EQ(config->limits.max_body_bytes, 10ull << 30);
  EXPECT_EQ(config->limits.max_connections, 1u);
  EXPECT_EQ(config->limits.max_requests_per_connection, 0u);
  config = loadOk(std::string(kListener) + "limits: { max_header_bytes: 1m }\n");
  ASSERT_TRUE(config);
  EXPECT_EQ(config->limits.max_header_bytes, 1u << 20);
}

TEST(LoaderTest, LimitsOutOfRange) {
  EXPECT_THAT(errorsOf(std::string(kListener) + R"(limits:
  max_header_bytes: 1023
  max_headers: 0
  max_connections: 0
  max_requests_per_connection: 4294967296
)"),
              ElementsAre("t.yaml:6:21: limits.max_header_bytes: \"1023\" is out of range (1k-1m)",
                          "t.yaml:7:16: limits.max_headers: 0 is out of range (1-10000)",
                          "t.yaml:8:20: limits.max_connections: 0 is out of range (1-1000000)",
                          "t.yaml:9:32: limits.max_requests_per_connection: 4294967296 is out of "
                          "range (0-4294967295)"));
  EXPECT_EQ(errorOf(std::string(kListener) + "limits: { max_header_bytes: 2m }\n"),
            "t.yaml:5:29: limits.max_header_bytes: \"2m\" is out of range (1k-1m)");
  EXPECT_EQ(errorOf(std::string(kListener) + "limits: { max_headers: 10001 }\n"),
            "t.yaml:5:24: limits.max_headers: 10001 is out of range (1-10000)");
  EXPECT_EQ(errorOf(std::string(kListener) + "limits: { max_headers: 99999999999999999999999 }\n"),
            "t.yaml:5:24: limits.max_headers: 99999999999999999999999 is out of range (1-10000)");
  EXPECT_EQ(errorOf(std::string(kListener) + "limits: { max_headers: ten }\n"),
            "t.yaml:5:24: limits.max_headers: \"ten\" is not a whole number");
}

// --- trusted proxies ---------------------------------------------------------

TEST(LoaderTest, TrustedProxies) {
  auto config =
      loadOk(std::string(kListener) + "trusted_proxies: [127.0.0.1/32, \"::1\", 10.0.0.0/8]\n");
  ASSERT_TRUE(config);
  ASSERT_EQ(config->trusted_proxies.size(), 3u);
  EXPECT_EQ(config->trusted_proxies[0].toString(), "127.0.0.1/32");
  EXPECT_EQ(config->trusted_proxies[1].toString(), "::1/128");
  EXPECT_EQ(config->trusted_proxies[2].toString(), "10.0.0.0/8");
}

TEST(LoaderTest, BadTrustedProxies) {
  EXPECT_THAT(errorsOf(std::string(kListener) + R"(trusted_proxies:
  - 10.0.0.1/8
  - 10.0.0.0/40
  - [1]
)"),
              ElementsAre("t.yaml:6:5: trusted_proxies[0]: \"10.0.0.1/8\" has bits set after the "
                          "prefix length (did you mean \"10.0.0.0/8\"?)",
                          "t.yaml:7:5: trusted_proxies[1]: \"10.0.0.0/40\" has an invalid prefix "
                          "length (0-32 for IPv4)",
                          "t.yaml:8:5: trusted_proxies[2]: expected an address or CIDR range like "
                          "10.0.0.0/8, got a list"));
}

TEST(LoaderTest, HeaderSettings) {
  auto config = loadOk(std::string(kListener));
  ASSERT_TRUE(config);
  EXPECT_FALSE(config->headers.keep_underscores);
  EXPECT_FALSE(config->headers.keep_untrusted_request_id);
  config = loadOk(std::string(kListener) + "headers: {underscores: keep, request_id: keep}\n");
  ASSERT_TRUE(config);
  EXPECT_TRUE(config->headers.keep_underscores);
  EXPECT_TRUE(config->headers.keep_untrusted_request_id);
  config = loadOk(std::string(kListener) + "headers: {underscores: drop, request_id: generate}\n");
  ASSERT_TRUE(config);
  EXPECT_FALSE(config->headers.keep_underscores);
  EXPECT_FALSE(config->headers.keep_untrusted_request_id);
}

TEST(LoaderTest, BadHeaderSettings) {
  EXPECT_THAT(errorsOf(std::string(kListener) + R"(headers:
  underscores: allow
  request_id: preserve
  request_ids: keep
)"),
              ElementsAre("t.yaml:6:16: headers.underscores: \"allow\" is not one of drop, keep",
                          "t.yaml:7:15: headers.request_id: \"preserve\" is not one of generate, "
                          "keep",
                          "t.yaml:8:3: headers.request_ids: unknown key (did you mean "
                          "\"request_id\"?)"));
  EXPECT_EQ(errorOf(std::string(kListener) + "headers: keep\n"),
            "t.yaml:5:10: headers: expected a mapping, got \"keep\"");
}

TEST(LoaderTest, PathSettings) {
  auto config = loadOk(std::string(kListener));
  ASSERT_TRUE(config);
  EXPECT_FALSE(config->paths.forward_original);
  EXPECT_FALSE(config->paths.keep_escaped_slashes);
  config = loadOk(std::string(kListener) + "paths: {forward: original, escaped_slashes: keep}\n");
  ASSERT_TRUE(config);
  EXPECT_TRUE(config->paths.forward_original);
  EXPECT_TRUE(config->paths.keep_escaped_slashes);
  config =
      loadOk(std::string(kListener) + "paths: {forward: normalized, escaped_slashes: reject}\n");
  ASSERT_TRUE(config);
  EXPECT_FALSE(config->paths.forward_original);
  EXPECT_FALSE(config->paths.keep_escaped_slashes);
  EXPECT_THAT(
      errorsOf(std::string(kListener) + R"(paths:
  forward: raw
  escaped_slashes: decode
  merge_slashes: true
)"),
      ElementsAre("t.yaml:6:12: paths.forward: \"raw\" is not one of normalized, original",
                  "t.yaml:7:20: paths.escaped_slashes: \"decode\" is not one of reject, keep",
                  "t.yaml:8:3: paths.merge_slashes: unknown key (expected one of: forward, "
                  "escaped_slashes)"));
}

// --- listeners ---------------------------------------------------------------

TEST(LoaderTest, ListenerNameDefaultsToAddressText) {
  auto config = loadOk(R"(listeners:
  - address: localhost:8080
    routes: [{respond: {status: 200}}]
  - address: "[::1]:8080"
    routes: [{respond: {status: 200}}]
  - address: unix:/tmp/sluice-test.sock
    routes: [{respond: {status: 200}}]
)");
  ASSERT_TRUE(config);
  ASSERT_EQ(config->listeners.size(), 3u);
  EXPECT_EQ(config->listeners[0].name, "localhost:8080");
  EXPECT_EQ(config->listeners[0].address.toString(), "127.0.0.1:8080");
  EXPECT_EQ(config->listeners[1].name, "[::1]:8080");
  EXPECT_EQ(config->listeners[1].address.family(), net::Address::Family::kIpv6);
  EXPECT_EQ(config->listeners[2].name, "unix:/tmp/sluice-test.sock");
  EXPECT_EQ(config->listeners[2].address.path(), "/tmp/sluice-test.sock");
}

TEST(LoaderTest, BadListenerAddresses) {
  EXPECT_THAT(
      errorsOf(R"(listeners:
  - address: 127.0.0.1:0
    routes: [{respond: {status: 200}}]
  - address: "[::1]"
    routes: [{respond: {status: 200}}]
  - address: "unix:"
    routes: [{respond: {status: 200}}]
  - routes: [{respond: {status: 200}}]
)"),
      ElementsAre("t.yaml:2:14: listeners[0].address: \"127.0.0.1:0\": port 0 is not allowed (use "
                  "a fixed port, 1-65535)",
                  "t.yaml:4:14: listeners[1].address: \"[::1]\" has no port (expected "
                  "[ipv6]:port, e.g. [::1]:8080)",
                  "t.yaml:6:14: listeners[2].address: \"unix:\" has an empty socket path "
                  "(expected unix:/path/to/socket)",
                  "t.yaml:8:5: listeners[3]: missing required key \"address\""));
}

TEST(LoaderTest, UnixPathTooLong) {
  const std::string path = "/" + std::string(107, 'x');
  EXPECT_EQ(errorOf("listeners:\n  - address: unix:" + path +
                    "\n    routes: [{respond: {status: 200}}]\n"),
            "t.yaml:2:14: listeners[0].address: \"unix:" + path +
                "\" is too long: a unix socket path may have at most 107 bytes, this one has 108");
}

TEST(LoaderTest, DuplicateListenerAddresses) {
  EXPECT_EQ(errorOf(R"(listeners:
  - name: a
    address: 127.0.0.1:8080
    routes: [{respond: {status: 200}}]
  - name: b
    address: localhost:8080
    routes: [{respond: {status: 200}}]
)"),
            "t.yaml:6:14: listeners[1].address: 127.0.0.1:8080 is already used by listeners[0]");
}

TEST(LoaderTest, DuplicateListenerNames) {
  EXPECT_EQ(errorOf(R"(listeners:
  - name: web
    address: 127.0.0.1:8080
    routes: [{respond: {status: 200}}]
  - name: web
    address: 127.0.0.1:8081
    routes: [{respond: {status: 200}}]
)"),
            "t.yaml:5:11: listeners[1].name: duplicate listener name \"web\" (also listeners[0])");
}

TEST(LoaderTest, BadListenerName) {
  EXPECT_EQ(errorOf(R"(listeners:
  - name: my web
    address: 127.0.0.1:8080
    routes: [{respond: {status: 200}}]
)"),
            "t.yaml:2:11: listeners[0].name: \"my web\" is not a valid name (no spaces or control "
            "characters)");
}

TEST(LoaderTest, ListenerWithoutRoutes) {
  EXPECT_THAT(errorsOf(R"(listeners:
  - address: 127.0.0.1:8080
  - address: 127.0.0.1:8081
    routes: []
)"),
              ElementsAre("t.yaml:2:5: listeners[0]: listener has no routes",
                          "t.yaml:4:13: listeners[1].routes: listener has no routes"));
}

// --- routes ------------------------------------------------------------------

TEST(LoaderTest, RouteNeedsExactlyOneAction) {
  EXPECT_THAT(errorsOf(R"(listeners:
  - address: 127.0.0.1:8080
    routes:
      - match: { path_prefix: / }
      - upstream: app
        respond: { status: 200 }
upstreams:
  app:
    servers: [{address: 127.0.0.1:9001}]
)"),
              ElementsAre("t.yaml:4:9: listeners[0].routes[0]: a route needs an action: "
                          "\"upstream\", \"respond\" or \"redirect\"",
                          "t.yaml:5:9: listeners[0].routes[1]: a route takes exactly one action, "
                          "but has both \"upstream\" and \"respond\""));
}

TEST(LoaderTest, HostPatternsAreLowerCasedAndChecked) {
  auto config = loadOk(R"(listeners:
  - address: 127.0.0.1:8080
    routes:
      - match: { host: API.Example.com }
        respond: { status: 200 }
      - match: { host: "*.Example.com", path_prefix: /v1/ }
        respond: { status: 200 }
)");
  ASSERT_TRUE(config);
  EXPECT_EQ(config->listeners[0].routes[0].match.host, "api.example.com");
  EXPECT_EQ(config->listeners[0].routes[1].match.host, "*.example.com");
  EXPECT_EQ(config->listeners[0].routes[1].match.path_prefix, "/v1/");

  EXPECT_THAT(errorsOf(R"(listeners:
  - address: 127.0.0.1:8080
    routes:
      - match: { host: "api.*.com" }
        respond: { status: 200 }
      - match: { host: "example.com:8080" }
        respond: { status: 200 }
      - match: { path_prefix: v1/ }
        respond: { status: 200 }
)"),
              ElementsAre("t.yaml:4:24: listeners[0].routes[0].match.host: \"api.*.com\" is not a "
                          "valid host pattern: it may use * only as a leading \"*.\" (e.g. "
                          "*.example.com)",
                          "t.yaml:6:24: listeners[0].routes[1].match.host: \"example.com:8080\" is "
                          "not a valid host pattern: it must not include a port (the port of the "
                          "Host header is ignored)",
                          "t.yaml:8:31: listeners[0].routes[2].match.path_prefix: \"v1/\" must "
                          "start with / (omit path_prefix to match any path)"));
}

TEST(LoaderTest, EmptyMatchMatchesEverything) {
  auto config = loadOk(R"(listeners:
  - address: 127.0.0.1:8080
    routes:
      - match: {}
        respond: { status: 200 }
)");
  ASSERT_TRUE(config);
  EXPECT_EQ(config->listeners[0].routes[0].match.host, "");
  EXPECT_EQ(config->listeners[0].routes[0].match.path_prefix, "");
}

TEST(LoaderTest, RespondStatusRange) {
  const auto route = [](const std::string& respond) {
    return "listeners:\n  - address: 127.0.0.1:8080\n    routes:\n      - respond: " + respond +
           "\n";
  };
  EXPECT_EQ(errorOf(route("{ status: 101 }")),
            "t.yaml:4:28: listeners[0].routes[0].respond.status: status 101 is out of range "
            "(200-599); 1xx is informational and cannot be a final response");
  EXPECT_EQ(errorOf(route("{ status: 600 }")),
            "t.yaml:4:28: listeners[0].routes[0].respond.status: status 600 is out of range "
            "(200-599)");
  EXPECT_EQ(errorOf(route("{ status: 199 }")),
            "t.yaml:4:28: listeners[0].routes[0].respond.status: status 199 is out of range "
            "(200-599); 1xx is informational and cannot be a final response");
  errorOf(route("{ status: ok }"));
  errorOf(route("{ status: 2000 }"));
  errorOf(route("{ status: -200 }"));
  for (const char* ok : {"200", "204", "301", "404", "503", "599"}) {
    auto config = loadOk(route(std::string("{ status: ") + ok + " }"));
    ASSERT_TRUE(config);
    EXPECT_EQ(config->listeners[0].routes[0].respond->status, std::stoi(ok));
  }
}

TEST(LoaderTest, RespondDefaultsToEmpty200) {
  auto config =
      loadOk("listeners:\n  - address: 127.0.0.1:8080\n    routes:\n      - respond: {}\n");
  ASSERT_TRUE(config);
  const Route& route = config->listeners[0].routes[0];
  ASSERT_TRUE(route.respond.has_value());
  EXPECT_EQ(route.respond->status, 200);
  EXPECT_EQ(route.respond->body, "");
  EXPECT_TRUE(route.respond->headers.empty());
  EXPECT_EQ(route.upstream, "");
}

TEST(LoaderTest, NoBodyOn204And304) {
  EXPECT_EQ(errorOf("listeners:\n  - address: 127.0.0.1:8080\n    routes:\n      - respond: { "
                    "status: 204, body: x }\n"),
            "t.yaml:4:39: listeners[0].routes[0].respond.body: a 204 response cannot have a body");
  loadOk(
      "listeners:\n  - address: 127.0.0.1:8080\n    routes:\n      - respond: { status: 304, "
      "body: \"\" }\n");
}

TEST(LoaderTest, RespondHeaders) {
  auto config = loadOk(R"(listeners:
  - address: 127.0.0.1:8080
    routes:
      - respond:
          status: 503
          body: "down\n"
          headers:
            Content-Type: text/plain
            retry-after: 120
            x-empty: ""
)");
  ASSERT_TRUE(config);
  const DirectResponse& r = *config->listeners[0].routes[0].respond;
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "down\n");
  EXPECT_EQ(r.headers,
            (HeaderList{{"Content-Type", "text/plain"}, {"retry-after", "120"}, {"x-empty", ""}}));
}

TEST(LoaderTest, BadRespondHeaders) {
  EXPECT_THAT(errorsOf(R"(listeners:
  - address: 127.0.0.1:8080
    routes:
      - respond:
          headers:
            "bad name": x
            x-injected: "a\r\nset-cookie: evil=1"
            Content-Length: 5
            x-a: 1
            X-A: 2
            x-list: [1, 2]
)"),
              ElementsAre("t.yaml:6:13: listeners[0].routes[0].respond.headers.bad name: \"bad "
                          "name\" is not a valid header name (letters, digits and "
                          "!#$%&'*+-.^_`|~ only; no spaces or colons)",
                          "t.yaml:7:25: listeners[0].routes[0].respond.headers.x-injected: header "
                          "value must not contain CR, LF or NUL",
                          "t.yaml:8:13: listeners[0].routes[0].respond.headers.Content-Length: "
                          "\"Content-Length\" is set by sluice (framing and connection handling); "
                          "remove it",
                          "t.yaml:10:13: listeners[0].routes[0].respond.headers.X-A: duplicate "
                          "header \"X-A\" (same as \"x-a\"; names are case-insensitive)",
                          "t.yaml:11:21: listeners[0].routes[0].respond.headers.x-list: expected a "
                          "header value, got a list"));
}

// --- upstreams ---------------------------------------------------------------

TEST(LoaderTest, UpstreamWithoutServers) {
  EXPECT_THAT(errorsOf(std::string(kListener) + R"(upstreams:
  a:
    retries: 0
  b:
    servers: []
)"),
              ElementsAre("t.yaml:7:5: upstreams.a: upstream has no servers (add a \"servers\" "
                          "list)",
                          "t.yaml:9:14: upstreams.b.servers: upstream has no servers"));
}

TEST(LoaderTest, ServerWeightRange) {
  EXPECT_THAT(errorsOf(std::string(kListener) + R"(upstreams:
  app:
    servers:
      - address: 127.0.0.1:9001
        weight: 0
      - address: 127.0.0.1:9002
        weight: 1001
      - weight: 5
)"),
              ElementsAre("t.yaml:9:17: upstreams.app.servers[0].weight: 0 is out of range "
                          "(1-1000)",
                          "t.yaml:11:17: upstreams.app.servers[1].weight: 1001 is out of range "
                          "(1-1000)",
                          "t.yaml:12:9: upstreams.app.servers[2]: missing required key "
                          "\"address\""));
}

TEST(LoaderTest, ServerPortZeroAndDuplicates) {
  EXPECT_THAT(errorsOf(std::string(kListener) + R"(upstreams:
  app:
    servers:
      - address: 127.0.0.1:0
      - address: 127.0.0.1:9001
      - address: localhost:9001
)"),
              ElementsAre("t.yaml:8:18: upstreams.app.servers[0].address: \"127.0.0.1:0\": port 0 "
                          "is not allowed (use a fixed port, 1-65535)",
                          "t.yaml:10:18: upstreams.app.servers[2].address: 127.0.0.1:9001 is "
                          "listed twice (also upstreams.app.servers[1].address); use weight to "
                          "send it more traffic"));
}

TEST(LoaderTest, ServersMustBeMappings) {
  EXPECT_EQ(errorOf(std::string(kListener) + R"(upstreams:
  app:
    servers:
      - 127.0.0.1:9001
)"),
            "t.yaml:8:9: upstreams.app.servers[0]: expected a mapping, got \"127.0.0.1:9001\"");
}

TEST(LoaderTest, BalanceMethods) {
  const auto with = [](const std::string& balance) {
    return std::string(kListener) + "upstreams:\n  app:\n    balance: " + balance +
           "\n    servers: [{address: 127.0.0.1:9001}]\n";
  };
  auto config = loadOk(with("round_robin"));
  ASSERT_TRUE(config);
  EXPECT_EQ(config->upstreams[0].balance, BalancePolicy::kRoundRobin);
  for (const auto& [name, policy] :
       std::vector<std::pair<std::string, BalancePolicy>>{{"least_conn", BalancePolicy::kLeastConn},
                                                          {"random", BalancePolicy::kRandom},
                                                          {"p2c_ewma", BalancePolicy::kP2cEwma},
                                                          {"hash", BalancePolicy::kHash}}) {
    config = loadOk(with(name));
    ASSERT_TRUE(config) << name;
    EXPECT_EQ(config->upstreams[0].balance, policy) << name;
  }
  EXPECT_EQ(errorOf(with("round_robbin")),
            "t.yaml:7:14: upstreams.app.balance: \"round_robbin\" is not a balance method; "
            "accepted: round_robin, least_conn, random, p2c_ewma, hash (did you mean "
            "\"round_robin\"?)");
  EXPECT_EQ(errorOf(with("fastest")),
            "t.yaml:7:14: upstreams.app.balance: \"fastest\" is not a balance method; accepted: "
            "round_robin, least_conn, random, p2c_ewma, hash");
}

TEST(LoaderTest, HashKeys) {
  const auto with = [](const std::string& key) {
    return std::string(kListener) +
           "upstreams:\n  app:\n    balance: hash\n    hash: { key: " + key +
           " }\n    servers: [{address: 127.0.0.1:9001}]\n";
  };
  auto config = loadOk(with("client_ip"));
  ASSERT_TRUE(config);
  EXPECT_EQ(config->upstreams[0].hash.kind, HashKey::Kind::kClientIp);
  config = loadOk(with("uri"));
  ASSERT_TRUE(config);
  EXPECT_EQ(config->upstreams[0].hash.kind, HashKey::Kind::kUri);
  config = loadOk(with("\"header:X-User\""));
  ASSERT_TRUE(config);
  EXPECT_EQ(config->upstreams[0].hash.kind, HashKey::Kind::kHeader);
  EXPECT_EQ(config->upstreams[0].hash.name, "x-user");
  config = loadOk(with("\"cookie:session\""));
  ASSERT_TRUE(config);
  EXPECT_EQ(config->upstreams[0].hash.kind, HashKey::Kind::kCookie);
  EXPECT_EQ(config->upstreams[0].hash.name, "session");
  EXPECT_EQ(errorOf(with("path")),
            "t.yaml:8:18: upstreams.app.hash.key: expected client_ip, header:NAME, cookie:NAME "
            "or uri, got \"path\"");
  EXPECT_EQ(errorOf(with("\"cookie:\"")),
            "t.yaml:8:18: upstreams.app.hash.key: expected client_ip, header:NAME, cookie:NAME "
            "or uri, got \"cookie:\"");
}

TEST(LoaderTest, UpstreamRanges) {
  EXPECT_THAT(errorsOf(std::string(kListener) + R"(upstreams:
  app:
    servers: [{address: 127.0.0.1:9001}]
    retries: 11
    keepalive: { max_idle: 10001 }
)"),
              ElementsAre("t.yaml:8:14: upstreams.app.retries: 11 is out of range (0-10)",
                          "t.yaml:9:28: upstreams.app.keepalive.max_idle: 10001 is out of range "
                          "(0-10000)"));
}

TEST(LoaderTest, BadUpstreamName) {
  EXPECT_EQ(errorOf(std::string(kListener) + R"(upstreams:
  "my app":
    servers: [{address: 127.0.0.1:9001}]
)"),
            "t.yaml:6:3: upstreams.my app: \"my app\" is not a valid upstream name (letters, "
            "digits, '_', '-' and '.' only)");
}

TEST(LoaderTest, UnixUpstreamServer) {
  auto config = loadOk(std::string(kListener) + R"(upstreams:
  app:
    servers: [{address: "unix:/run/app.sock"}]
)");
  ASSERT_TRUE(config);
  EXPECT_EQ(config->upstreams[0].servers[0].address.family(), net::Address::Family::kUnix);
}

// --- many errors at once -------------------------------------------------------

TEST(LoaderTest, CollectsAllErrorsInFileOrder) {
  // upstreams come first in the file, so their errors come first, and the
  // dangling reference (resolved last) is still sorted into place.
  const std::string text = R"(upstreams:
  app:
    servers:
      - address: 127.0.0.1:70000
workers: none
listeners:
  - address: 127.0.0.1:8080
    routes:
      - upstream: api
      - respond: { status: 99 }
log: { level: loud }
)";
  std::vector<std::string> errors = errorsOf(text);
  ASSERT_EQ(errors.size(), 5u) << ::testing::PrintToString(errors);
  EXPECT_THAT(errors[0], HasSubstr("t.yaml:4:18: upstreams.app.servers[0].address:"));
  EXPECT_THAT(errors[1], HasSubstr("t.yaml:5:10: workers:"));
  EXPECT_THAT(errors[2], HasSubstr("t.yaml:9:19: listeners[0].routes[0].upstream: no upstream"));
  EXPECT_THAT(errors[3], HasSubstr("t.yaml:10:28: listeners[0].routes[1].respond.status:"));
  EXPECT_THAT(errors[4], HasSubstr("t.yaml:11:15: log.level:"));
}

// --- defaults and a full config -------------------------------------------------

TEST(LoaderTest, DefaultsMatchTheStructs) {
  auto config = loadOk(kListener);
  ASSERT_TRUE(config);
  const Config defaults;
  EXPECT_EQ(config->workers, 0u);
  EXPECT_EQ(config->pid_file, "");
  EXPECT_EQ(config->shutdown_timeout, seconds(30));
  EXPECT_EQ(config->log.level, "info");
  EXPECT_EQ(config->log.error, "stderr");
  EXPECT_EQ(config->log.access, "stdout");
  EXPECT_EQ(config->log.access_format, "combined");
  EXPECT_EQ(config->timeouts.header, seconds(10));
  EXPECT_EQ(config->timeouts.body, seconds(30));
  EXPECT_EQ(config->timeouts.idle, seconds(60));
  EXPECT_EQ(config->timeouts.send, seconds(30));
  EXPECT_EQ(config->limits.max_header_bytes, 16u * 1024);
  EXPECT_EQ(config->limits.max_headers, 100u);
  EXPECT_EQ(config->limits.max_body_bytes, 0u);
  EXPECT_EQ(config->limits.max_connections, 10000u);
  EXPECT_EQ(config->limits.max_requests_per_connection, 1000u);
  EXPECT_TRUE(config->trusted_proxies.empty());
  EXPECT_TRUE(config->upstreams.empty());
  EXPECT_EQ(config->workers, defaults.workers);
  EXPECT_EQ(config->shutdown_timeout, defaults.shutdown_timeout);
  ASSERT_EQ(config->listeners.size(), 1u);
  EXPECT_EQ(config->listeners[0].name, "127.0.0.1:8080");
}

TEST(LoaderTest, UpstreamDefaults) {
  auto config = loadOk(std::string(kListener) +
                       "upstreams:\n  app:\n    servers: [{address: 127.0.0.1:9001}]\n");
  ASSERT_TRUE(config);
  const Upstream& u = config->upstreams.at(0);
  EXPECT_EQ(u.name, "app");
  EXPECT_EQ(u.balance, BalancePolicy::kRoundRobin);
  EXPECT_EQ(u.servers.at(0).weight, 1u);
  EXPECT_EQ(u.retries, 1u);
  EXPECT_EQ(u.keepalive.max_idle, 32u);
  EXPECT_EQ(u.keepalive.idle_timeout, seconds(20));
  EXPECT_EQ(u.timeouts.connect, seconds(2));
  EXPECT_EQ(u.timeouts.response, seconds(30));
  EXPECT_EQ(u.timeouts.send, seconds(30));
}

TEST(LoaderTest, FullConfigRoundTrips) {
  auto config = loadOk(R"(workers: 4
pid_file: /run/sluice.pid
shutdown_timeout: 2m
log:
  level: warn
  error: /var/log/sluice/error.log
  access: /var/log/sluice/access.log
  access_format: json
timeouts:
  header: 5s
  body: 250ms
  idle: 1h
  send: 15s
limits:
  max_header_bytes: 32k
  max_headers: 50
  max_body_bytes: 1m
  max_connections: 500
  max_requests_per_connection: 10
trusted_proxies: [127.0.0.1/32, "::1/128"]
listeners:
  - name: web
    address: "[::]:8080"
    routes:
      - match: { host: "api.example.com", path_prefix: /v1/ }
        upstream: api
      - match: { host: "*.example.com" }
        upstream: app
      - match: { path_prefix: /healthz }
        respond: { status: 200, body: "ok\n", headers: { content-type: text/plain } }
      - upstream: app
  - address: unix:/run/sluice.sock
    routes:
      - upstream: app
upstreams:
  app:
    balance: round_robin
    servers:
      - address: 127.0.0.1:9001
        weight: 3
      - address: 127.0.0.1:9002
    retries: 2
    keepalive:
      max_idle: 0
      idle_timeout: 5s
    timeouts:
      connect: 500ms
      response: 1m
      send: 10s
  api:
    servers:
      - address: "[::1]:9100"
)");
  ASSERT_TRUE(config);
  const Config& c = *config;
  EXPECT_EQ(c.workers, 4u);
  EXPECT_EQ(c.pid_file, "/run/sluice.pid");
  EXPECT_EQ(c.shutdown_timeout, seconds(120));
  EXPECT_EQ(c.log.level, "warn");
  EXPECT_EQ(c.log.error, "/var/log/sluice/error.log");
  EXPECT_EQ(c.log.access, "/var/log/sluice/access.log");
  EXPECT_EQ(c.log.access_format, "json");
  EXPECT_EQ(c.timeouts.header, seconds(5));
  EXPECT_EQ(c.timeouts.body, milliseconds(250));
  EXPECT_EQ(c.timeouts.idle, seconds(3600));
  EXPECT_EQ(c.timeouts.send, seconds(15));
  EXPECT_EQ(c.limits.max_header_bytes, 32u * 1024);
  EXPECT_EQ(c.limits.max_headers, 50u);
  EXPECT_EQ(c.limits.max_body_bytes, 1u << 20);
  EXPECT_EQ(c.limits.max_connections, 500u);
  EXPECT_EQ(c.limits.max_requests_per_connection, 10u);
  ASSERT_EQ(c.trusted_proxies.size(), 2u);
  EXPECT_EQ(c.trusted_proxies[1].toString(), "::1/128");

  ASSERT_EQ(c.listeners.size(), 2u);
  const Listener& web = c.listeners[0];
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.address.toString(), "[::]:8080");
  ASSERT_EQ(web.routes.size(), 4u);
  EXPECT_EQ(web.routes[0].match.host, "api.example.com");
  EXPECT_EQ(web.routes[0].match.path_prefix, "/v1/");
  EXPECT_EQ(web.routes[0].upstream, "api");
  EXPECT_FALSE(web.routes[0].respond.has_value());
  EXPECT_EQ(web.routes[1].match.host, "*.example.com");
  EXPECT_EQ(web.routes[1].match.path_prefix, "");
  EXPECT_EQ(web.routes[2].upstream, "");
  ASSERT_TRUE(web.routes[2].respond.has_value());
  EXPECT_EQ(web.routes[2].respond->status, 200);
  EXPECT_EQ(web.routes[2].respond->body, "ok\n");
  EXPECT_EQ(web.routes[2].respond->headers, (HeaderList{{"content-type", "text/plain"}}));
  EXPECT_EQ(web.routes[3].match.host, "");
  EXPECT_EQ(web.routes[3].upstream, "app");
  EXPECT_EQ(c.listeners[1].name, "unix:/run/sluice.sock");

  ASSERT_EQ(c.upstreams.size(), 2u);  // file order
  const Upstream& app = c.upstreams[0];
  EXPECT_EQ(app.name, "app");
  ASSERT_EQ(app.servers.size(), 2u);
  EXPECT_EQ(app.servers[0].address.toString(), "127.0.0.1:9001");
  EXPECT_EQ(app.servers[0].weight, 3u);
  EXPECT_EQ(app.servers[1].weight, 1u);
  EXPECT_EQ(app.retries, 2u);
  EXPECT_EQ(app.keepalive.max_idle, 0u);
  EXPECT_EQ(app.keepalive.idle_timeout, seconds(5));
  EXPECT_EQ(app.timeouts.connect, milliseconds(500));
  EXPECT_EQ(app.timeouts.response, seconds(60));
  EXPECT_EQ(app.timeouts.send, seconds(10));
  EXPECT_EQ(c.upstreams[1].name, "api");
  EXPECT_EQ(c.upstreams[1].servers[0].address.toString(), "[::1]:9100");
  EXPECT_EQ(c.findUpstream("api"), &c.upstreams[1]);
  EXPECT_EQ(c.findUpstream("nope"), nullptr);
}

TEST(LoaderTest, NeverThrowsOnOddInput) {
  // Anchors, aliases, tags, complex keys and binary junk: errors, no exceptions.
  const char* inputs[] = {
      "a: &x 1\nb: *x\n",
      "? [a, b]\n: c\n",
      "listeners: !!str foo\n",
      "\x01\x02\x03",
      "listeners:\n  - &l {address: 127.0.0.1:1, routes: [{respond: {}}]}\n  - *l\n",
      "{",
      "\"unterminated",
      "listeners: [[[[[[[[]]]]]]]]\n",
  };
  for (const char* input : inputs) {
    LoadResult result;
    EXPECT_NO_THROW(result = load(input)) << input;
    EXPECT_FALSE(result.ok()) << input;
  }
}

}  // namespace
}  // namespace sluice::config

namespace sluice::config {
namespace {

// --- admin, drain_delay, watch_config ---------------------------------------

TEST(LoaderTest, AdminDrainDelayAndWatchConfig) {
  auto config = loadOk(std::string(kListener) +
                       "admin: { address: 127.0.0.1:9901 }\n"
                       "drain_delay: 5s\n"
                       "watch_config: true\n");
  ASSERT_TRUE(config);
  ASSERT_TRUE(config->admin_address.has_value());
  EXPECT_EQ(config->admin_address->toString(), "127.0.0.1:9901");
  EXPECT_EQ(config->drain_delay, seconds(5));
  EXPECT_TRUE(config->watch_config);
}

TEST(LoaderTest, AdminDefaultsToNone) {
  auto config = loadOk(kListener);
  ASSERT_TRUE(config);
  EXPECT_FALSE(config->admin_address.has_value());
  EXPECT_EQ(config->drain_delay, milliseconds(0));
  EXPECT_FALSE(config->watch_config);
}

TEST(LoaderTest, AdminMayNotShareAListenerAddress) {
  EXPECT_EQ(errorOf(std::string(kListener) + "admin: { address: 127.0.0.1:8080 }\n"),
            "t.yaml:5:19: admin.address: 127.0.0.1:8080 is already used by listeners[0]");
}

TEST(LoaderTest, AdminNeedsAnAddress) {
  std::vector<std::string> errors = errorsOf(std::string(kListener) + "admin: { port: 1 }\n");
  EXPECT_THAT(errors, ElementsAre("t.yaml:5:8: admin: missing required key \"address\"",
                                  HasSubstr("t.yaml:5:10: admin.port: unknown key")));
}

TEST(LoaderTest, WatchConfigMustBeABoolean) {
  EXPECT_EQ(errorOf(std::string(kListener) + "watch_config: yes\n"),
            "t.yaml:5:15: watch_config: expected true or false, got \"yes\"");
}

}  // namespace
}  // namespace sluice::config

namespace sluice::config {
namespace {

// yaml-cpp 0.7's LoadAll loops forever allocating on a stray comma (issue
// #1040); the loader must answer at once with a located error instead.
TEST(LoaderTest, StrayCommaIsAnErrorNotAHang) {
  std::vector<std::string> errors = errorsOf(std::string(kListener) + "      ,  x: { c: d }\n");
  EXPECT_THAT(errors, ::testing::Contains(HasSubstr("t.yaml:5:7: invalid YAML")));
}

}  // namespace
}  // namespace sluice::config

namespace sluice::config {
namespace {

TEST(LoaderProxyProtocol, ListenerAndUpstreamKeys) {
  auto config = loadConfigText(R"(trusted_proxies: [10.0.0.0/8]
listeners:
  - address: 127.0.0.1:8080
    proxy_protocol: true
    routes:
      - upstream: app
upstreams:
  app:
    send_proxy_protocol: v2
    servers: [{ address: 127.0.0.1:9000 }]
)",
                               "t.yaml");
  ASSERT_TRUE(config.ok()) << config.errors.front();
  EXPECT_TRUE(config.config->listeners[0].proxy_protocol);
  EXPECT_EQ(config.config->upstreams[0].send_proxy_protocol, SendProxyProtocol::kV2);
}

TEST(LoaderProxyProtocol, ListenerWithoutTrustedProxiesIsRefusedWhereItSaysSo) {
  LoadResult result = loadConfigText(R"(listeners:
  - address: 127.0.0.1:8080
    proxy_protocol: true
    routes:
      - respond: { status: 200 }
)",
                                     "t.yaml");
  ASSERT_FALSE(result.ok());
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_EQ(result.errors[0],
            "t.yaml:3:21: listeners[0].proxy_protocol: needs trusted_proxies: the load "
            "balancers allowed to send PROXY headers (e.g. trusted_proxies: [10.0.0.0/8])");
}

TEST(LoaderProxyProtocol, UnknownVersionIsRefused) {
  LoadResult result = loadConfigText(R"(listeners:
  - address: 127.0.0.1:8080
    routes:
      - upstream: app
upstreams:
  app:
    send_proxy_protocol: v3
    servers: [{ address: 127.0.0.1:9000 }]
)",
                                     "t.yaml");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.errors[0],
            "t.yaml:7:26: upstreams.app.send_proxy_protocol: \"v3\" is not one of v1, v2 (did you "
            "mean \"v1\"?)");
}

}  // namespace
}  // namespace sluice::config

namespace sluice::config {
namespace {

TEST(LoaderRouteFeatures, EveryKeyIsRead) {
  LoadResult result = loadConfigText(R"(headers: { forwarded: add }
listeners:
  - address: 127.0.0.1:8080
    routes:
      - match:
          path_prefix: /api/
          method: [GET, POST]
          headers: { X-Canary: "1", Authorization: { present: true } }
          query: { v: "2", debug: { present: true } }
        upstream: app
        rewrite_prefix: /internal/
        request_headers:
          set: { X-Client: "${client_ip}", Host: internal }
          add: { Via: "1.1 sluice" }
          remove: [X-Debug]
        response_headers: { remove: [Server] }
        max_body_bytes: 10m
        timeouts: { body: 5s, response: 2m }
      - match: { method: DELETE }
        upstream: app
        strip_prefix: /old
upstreams:
  app:
    servers: [{ address: 127.0.0.1:9000 }]
)",
                                     "t.yaml");
  ASSERT_TRUE(result.ok()) << result.errors.front();
  const Route& r = result.config->listeners[0].routes[0];
  EXPECT_EQ(r.match.methods, (std::vector<std::string>{"GET", "POST"}));
  ASSERT_EQ(r.match.headers.size(), 2u);
  EXPECT_EQ(r.match.headers[0].name, "x-canary");
  EXPECT_EQ(r.match.headers[0].value, "1");
  EXPECT_FALSE(r.match.headers[1].value.has_value());
  ASSERT_EQ(r.match.query.size(), 2u);
  EXPECT_EQ(*r.rewrite_prefix, "/internal/");
  EXPECT_EQ(r.request_headers.set.size(), 2u);
  EXPECT_EQ(r.request_headers.remove, std::vector<std::string>{"x-debug"});
  EXPECT_EQ(r.response_headers.remove, std::vector<std::string>{"server"});
  EXPECT_EQ(*r.max_body_bytes, 10u << 20);
  EXPECT_EQ(*r.timeouts.response, std::chrono::minutes(2));
  EXPECT_EQ(result.config->listeners[0].routes[1].strip_prefix, "/old");
  EXPECT_TRUE(result.config->headers.rfc7239_forwarded);
}

std::string routeError(const std::string& route_lines) {
  LoadResult result =
      loadConfigText("listeners:\n  - address: 127.0.0.1:8080\n    routes:\n" + route_lines +
                         "upstreams:\n  app:\n    servers: [{ address: "
                         "127.0.0.1:9000 }]\n",
                     "t.yaml");
  EXPECT_FALSE(result.ok());
  return result.errors.empty() ? "" : result.errors.front();
}

TEST(LoaderRouteFeatures, MistakesArePointedAt) {
  EXPECT_EQ(
      routeError("      - upstream: app\n        strip_prefix: /a\n        rewrite_prefix: /b\n"),
      "t.yaml:6:25: listeners[0].routes[0].rewrite_prefix: a route takes \"strip_prefix\" or "
      "\"rewrite_prefix\", not both");
  EXPECT_EQ(routeError("      - upstream: app\n        rewrite_prefix: /b\n"),
            "t.yaml:5:25: listeners[0].routes[0].rewrite_prefix: \"rewrite_prefix\" replaces "
            "match.path_prefix, which this route does not set");
  EXPECT_EQ(
      routeError("      - upstream: app\n        request_headers: { set: { X: \"${nope}\" } }\n"),
      "t.yaml:5:33: listeners[0].routes[0].request_headers.set: \"X\": unknown variable "
      "${nope} (known: client_ip, client_port, scheme, host, request_id)");
  EXPECT_EQ(routeError("      - match: { method: get }\n        upstream: app\n"),
            "t.yaml:4:26: listeners[0].routes[0].match.method: \"get\": methods are "
            "case-sensitive (did you mean \"GET\"?)");
  EXPECT_EQ(
      routeError("      - match: { headers: { X: { present: false } } }\n        upstream: app\n"),
      "t.yaml:4:32: listeners[0].routes[0].match.headers.X: expected a value to match "
      "exactly, or { present: true }");
  EXPECT_EQ(routeError("      - upstream: app\n        request_headers: { remove: [Host] }\n"),
            "t.yaml:5:37: listeners[0].routes[0].request_headers.remove[0]: \"Host\" is managed "
            "by sluice and cannot be removed");
}

}  // namespace
}  // namespace sluice::config

namespace sluice::config {
namespace {

// TLS keys that can be judged without certificate files (the files
// themselves are checked end to end in tests/integration/tls_test.cc).
TEST(LoaderTest, TlsSettingsAreCheckedAndLocated) {
  const auto with = [](const std::string& tls) {
    return "listeners:\n  - address: 127.0.0.1:8443\n    tls:\n" + tls +
           "    routes:\n      - respond: { status: 200 }\n";
  };
  EXPECT_EQ(errorOf(with("      protocols: [TLSv1.3]\n")),
            "t.yaml:4:7: listeners[0].tls: missing required key \"certificates\"");
  const std::vector<std::string> errors =
      errorsOf(with("      certificates: []\n"
                    "      protocols: [TLSv1.1]\n"
                    "      alpn: [h2]\n"
                    "      client_auth: {mode: sometimes}\n"
                    "      handshake_timeout: 0s\n"
                    "      session_tickets: maybe\n"
                    "      sesion_cache: 1m\n"));
  EXPECT_THAT(
      errors,
      ElementsAre(
          "t.yaml:4:21: listeners[0].tls.certificates: expected at least one certificate",
          "t.yaml:5:19: listeners[0].tls.protocols[0]: \"TLSv1.1\" is not offered; "
          "accepted: TLSv1.2, TLSv1.3 (older versions are broken)",
          "t.yaml:6:14: listeners[0].tls.alpn[0]: \"h2\" cannot be offered: sluice "
          "speaks http/1.1 and http/1.0",
          "t.yaml:7:27: listeners[0].tls.client_auth.mode: expected off, optional or "
          "required, got \"sometimes\"",
          "t.yaml:8:26: listeners[0].tls.handshake_timeout: must be greater than 0",
          "t.yaml:9:24: listeners[0].tls.session_tickets: expected true or false, got \"maybe\"",
          "t.yaml:10:7: listeners[0].tls.sesion_cache: unknown key (did you mean "
          "\"session_cache\"?)"));
  EXPECT_THAT(errorsOf(with("      certificates: [{cert: /nonexistent.crt, key: /x.key, ocsp: "
                            "/x.ocsp}]\n")),
              // The OCSP file is checked once the pair loads (tls_test.cc).
              ElementsAre(HasSubstr("cannot read certificate /nonexistent.crt")));
  EXPECT_THAT(errorsOf(with("      certificates: [{key: /x.key}]\n")),
              ElementsAre(HasSubstr("missing required key \"cert\"")));
}

}  // namespace
}  // namespace sluice::config

namespace sluice::config {
namespace {

TEST(LoaderTest, RedirectRoutes) {
  const auto with = [](const std::string& route) {
    return "listeners:\n  - address: 127.0.0.1:8080\n    routes:\n      - " + route + "\n";
  };
  auto config =
      loadOk(with("redirect: {scheme: https, status: 301, host: Example.COM, port: 8443}"));
  ASSERT_TRUE(config);
  const Redirect& r = *config->listeners[0].routes[0].redirect;
  EXPECT_EQ(r.scheme, "https");
  EXPECT_EQ(r.status, 301);
  EXPECT_EQ(r.host, "example.com");
  EXPECT_EQ(r.port, 8443);
  config = loadOk(with("redirect: {scheme: https}"));
  ASSERT_TRUE(config);
  EXPECT_EQ(config->listeners[0].routes[0].redirect->status, 308);  // keeps the method
  EXPECT_EQ(errorOf(with("redirect: {scheme: ftp}")),
            "t.yaml:4:28: listeners[0].routes[0].redirect.scheme: expected http or https, got "
            "\"ftp\"");
  EXPECT_EQ(errorOf(with("redirect: {status: 304}")),
            "t.yaml:4:28: listeners[0].routes[0].redirect.status: expected a redirect status: "
            "301, 302, 303, 307 or 308");
  EXPECT_EQ(errorOf(with("{redirect: {scheme: https}, respond: {status: 200}}")),
            "t.yaml:4:9: listeners[0].routes[0]: a route takes exactly one action, but has "
            "both \"respond\" and \"redirect\"");
}

}  // namespace
}  // namespace sluice::config

namespace sluice::config {
namespace {

TEST(LoaderTest, PassiveHealth) {
  const auto with = [](const std::string& passive) {
    return std::string(kListener) + "upstreams:\n  app:\n    passive: " + passive +
           "\n    servers: [{address: 127.0.0.1:9001}]\n";
  };
  auto config = loadOk(std::string(kListener) +
                       "upstreams:\n  app:\n    servers: [{address: 127.0.0.1:9001}]\n");
  ASSERT_TRUE(config);
  EXPECT_EQ(config->upstreams[0].passive.failures, 5u);  // on by default
  EXPECT_EQ(config->upstreams[0].passive.ejection, std::chrono::seconds(30));
  EXPECT_EQ(config->upstreams[0].passive.max_ejected_percent, 50u);
  config = loadOk(with("{failures: 2, ejection: 5s, max_ejected: 30%}"));
  ASSERT_TRUE(config);
  EXPECT_EQ(config->upstreams[0].passive.failures, 2u);
  EXPECT_EQ(config->upstreams[0].passive.ejection, std::chrono::seconds(5));
  EXPECT_EQ(config->upstreams[0].passive.max_ejected_percent, 30u);
  config = loadOk(with("off"));
  ASSERT_TRUE(config);
  EXPECT_EQ(config->upstreams[0].passive.failures, 0u);
  EXPECT_EQ(errorOf(with("{max_ejected: 150%}")),
            "t.yaml:7:28: upstreams.app.passive.max_ejected: expected a percentage 0%-100%, got "
            "\"150%\"");
}

}  // namespace
}  // namespace sluice::config

namespace sluice::config {
namespace {

TEST(LoaderTest, RetrySettings) {
  const auto with = [](const std::string& lines) {
    return std::string(kListener) + "upstreams:\n  app:\n" + lines +
           "    servers: [{address: 127.0.0.1:9001}]\n";
  };
  auto config = loadOk(with(""));
  ASSERT_TRUE(config);
  const Upstream& d = config->upstreams[0];
  EXPECT_TRUE(d.retry_on.connect_failure);  // today's behaviour by default
  EXPECT_FALSE(d.retry_on.reset);
  EXPECT_FALSE(d.per_try_timeout.has_value());
  EXPECT_TRUE(d.retry_budget.enabled);
  EXPECT_EQ(d.retry_budget.ratio_percent, 20u);
  EXPECT_EQ(d.retry_budget.min_per_second, 3u);
  config =
      loadOk(with("    retry_on: [reset, timeout, 502, 503]\n    per_try_timeout: 2s\n"
                  "    retry_budget: {ratio: 10%, min_per_second: 1}\n"));
  ASSERT_TRUE(config);
  const Upstream& u = config->upstreams[0];
  EXPECT_FALSE(u.retry_on.connect_failure);  // the list replaces the default
  EXPECT_TRUE(u.retry_on.reset);
  EXPECT_TRUE(u.retry_on.timeout);
  EXPECT_THAT(u.retry_on.statuses, ElementsAre(502, 503));
  EXPECT_EQ(u.per_try_timeout, std::chrono::seconds(2));
  EXPECT_EQ(u.retry_budget.ratio_percent, 10u);
  config = loadOk(with("    retry_budget: off\n"));
  ASSERT_TRUE(config);
  EXPECT_FALSE(config->upstreams[0].retry_budget.enabled);
  EXPECT_EQ(errorOf(with("    retry_on: [404]\n")),
            "t.yaml:7:16: upstreams.app.retry_on[0]: expected connect_failure, reset, timeout or "
            "a 5xx status, got \"404\"");
}

TEST(LoaderTest, ServerNamesTakeSlotsAndResolverSettings) {
  auto config = loadOk(std::string(kListener) + R"(resolver:
  addresses: [127.0.0.1:5353, "[::1]:53"]
  timeout: 500ms
  attempts: 3
  min_interval: 2s
  max_interval: 30s
upstreams:
  app:
    servers:
      - address: 127.0.0.1:9001
      - address: App.Default.svc.cluster.local:8080
        weight: 2
      - address: other.internal:81
        max_addresses: 4
  second:
    servers:
      - address: 127.0.0.1:9002
)");
  ASSERT_TRUE(config);
  const auto& servers = config->upstreams[0].servers;
  ASSERT_EQ(servers.size(), 3u);
  EXPECT_FALSE(servers[0].resolved());
  EXPECT_EQ(servers[0].slots, 1u);
  EXPECT_EQ(servers[1].name, "app.default.svc.cluster.local");  // lower-cased
  EXPECT_EQ(servers[1].port, 8080);
  EXPECT_EQ(servers[1].weight, 2u);
  EXPECT_EQ(servers[1].index, 1u);
  EXPECT_EQ(servers[1].slots, 16u);  // the default max_addresses
  EXPECT_EQ(servers[2].index, 17u);
  EXPECT_EQ(servers[2].slots, 4u);
  EXPECT_EQ(config->upstreams[1].servers[0].index, 21u);
  EXPECT_EQ(config->serverCount(), 22u);
  EXPECT_TRUE(config->upstreams[0].hasResolvedServers());
  EXPECT_FALSE(config->upstreams[1].hasResolvedServers());
  const Resolver& r = config->resolver;
  ASSERT_EQ(r.addresses.size(), 2u);
  EXPECT_EQ(r.addresses[0].toString(), "127.0.0.1:5353");
  EXPECT_EQ(r.addresses[1].toString(), "[::1]:53");
  EXPECT_EQ(r.timeout, milliseconds(500));
  EXPECT_EQ(r.attempts, 3u);
  EXPECT_EQ(r.min_interval, seconds(2));
  EXPECT_EQ(r.max_interval, seconds(30));
}

TEST(LoaderTest, ServerNameMistakesAreLocated) {
  const auto with = [](const std::string& server) {
    return std::string(kListener) + "upstreams:\n  app:\n    servers:\n" + server;
  };
  EXPECT_EQ(errorOf(with("      - address: app.internal\n")),
            "t.yaml:8:18: upstreams.app.servers[0].address: \"app.internal\": a host name needs "
            "a port 1-65535, like app.internal:8080");
  EXPECT_EQ(errorOf(with("      - address: app.internal:0\n")),
            "t.yaml:8:18: upstreams.app.servers[0].address: \"app.internal:0\": a host name "
            "needs a port 1-65535, like app.internal:8080");
  EXPECT_EQ(errorOf(with("      - address: 127.0.0.1:9001\n        max_addresses: 3\n")),
            "t.yaml:9:24: upstreams.app.servers[0].max_addresses: max_addresses applies only to "
            "a DNS name");
  EXPECT_EQ(errorOf(with("      - address: a.internal:80\n      - address: A.internal:80\n")),
            "t.yaml:9:18: upstreams.app.servers[1].address: a.internal:80 is listed twice (also "
            "upstreams.app.servers[0].address); use weight to send it more traffic");
  EXPECT_EQ(
      errorOf(std::string(kListener) + "resolver:\n  min_interval: 10s\n  max_interval: 1s\n"),
      "t.yaml:6:3: resolver: min_interval is longer than max_interval");
}

TEST(LoaderTest, RetryNonIdempotentIsARouteOption) {
  auto config = loadOk(R"(listeners:
  - address: 127.0.0.1:8080
    routes:
      - upstream: app
        retry_non_idempotent: true
      - upstream: app
upstreams:
  app:
    servers:
      - address: 127.0.0.1:9001
)");
  ASSERT_TRUE(config);
  EXPECT_TRUE(config->listeners[0].routes[0].retry_non_idempotent);
  EXPECT_FALSE(config->listeners[0].routes[1].retry_non_idempotent);  // the default
}

TEST(LoaderTest, HealthCheckAndAllDown) {
  const auto with = [](const std::string& extra) {
    return std::string(kListener) +
           "upstreams:\n  app:\n    servers:\n      - address: 127.0.0.1:9001\n" + extra;
  };
  auto config = loadOk(with(""));
  ASSERT_TRUE(config);
  EXPECT_FALSE(config->upstreams[0].health_check.enabled);
  EXPECT_EQ(config->upstreams[0].all_down, AllDown::kTryAll);
  config = loadOk(
      with("    health_check: { path: /ready, interval: 2s, timeout: 500ms, healthy: 1, "
           "unhealthy: 2, expect: [200, 204-299], host: app.local }\n    all_down: refuse\n"));
  ASSERT_TRUE(config);
  const HealthCheck& h = config->upstreams[0].health_check;
  EXPECT_TRUE(h.enabled);
  EXPECT_EQ(h.path, "/ready");
  EXPECT_EQ(h.interval, seconds(2));
  EXPECT_EQ(h.timeout, milliseconds(500));
  EXPECT_EQ(h.healthy, 1u);
  EXPECT_EQ(h.unhealthy, 2u);
  ASSERT_EQ(h.expect.size(), 2u);
  EXPECT_EQ(h.expect[1], (std::pair<int, int>{204, 299}));
  EXPECT_EQ(h.host, "app.local");
  EXPECT_EQ(config->upstreams[0].all_down, AllDown::kRefuse);
  config = loadOk(with("    health_check: {}\n"));
  ASSERT_TRUE(config);
  EXPECT_TRUE(config->upstreams[0].health_check.enabled);  // defaults: /healthz every 5s
  EXPECT_EQ(config->upstreams[0].health_check.path, "/healthz");
  EXPECT_EQ(errorOf(with("    health_check: { expect: [200-99] }\n")),
            "t.yaml:9:30: upstreams.app.health_check.expect[0]: expected a status 100-599 or a "
            "range like 200-399, got \"200-99\"");
  EXPECT_EQ(errorOf(with("    health_check: { interval: 1s, timeout: 2s }\n")),
            "t.yaml:9:19: upstreams.app.health_check: timeout is longer than interval");
  EXPECT_EQ(errorOf(with("    all_down: panic\n")),
            "t.yaml:9:15: upstreams.app.all_down: \"panic\" is not one of try_all, refuse");
}

}  // namespace
}  // namespace sluice::config
