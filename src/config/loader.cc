// Turns sluice.yaml into a Config. Walks the yaml-cpp node tree by hand
// (instead of node["key"] look-ups) so that unknown and duplicate keys are
// seen, and every problem is reported with the mark of the node at fault.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <functional>
#include <map>
#include <sstream>

#include <openssl/evp.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include "config/config.h"
#include "config/units.h"
#include "config/validate.h"
#include "observe/access_format.h"
#include "tls/certificate.h"

namespace sluice::config {
namespace {

// Lower-case hex SHA-256 of `bytes` ("" if OpenSSL fails, which it does not
// for an in-memory digest short of running out of memory).
std::string sha256Hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr) != 1)
    return "";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0xF];
  }
  return hex;
}

// A config file this big is a mistake (a log, a core dump), and reading it
// whole would be too.
constexpr size_t kMaxFileBytes = 16 * 1024 * 1024;

// Bounds past which a value is almost surely a typo rather than a choice;
// docs/configuration.md lists them.
constexpr uint32_t kMaxWorkers = 1024;
constexpr uint64_t kMinHeaderBytes = 1024;
constexpr uint64_t kMaxHeaderBytes = 1024 * 1024;
constexpr uint64_t kMaxHeaders = 10000;
constexpr uint64_t kMaxConnections = 1000000;
constexpr uint64_t kMaxWeight = 1000;
// A DNS name's servers: one counter/health slot each, reserved up front.
constexpr uint32_t kDefaultAddressesPerName = 16;
constexpr uint64_t kMaxAddressesPerName = 256;
constexpr uint64_t kMaxRetries = 10;
constexpr uint64_t kMaxIdlePerServer = 10000;

std::string join(const std::string& path, std::string_view key) {
  if (path.empty()) return std::string(key);
  return path + "." + std::string(key);
}

std::string indexed(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

// "got ..." text for a node of the wrong type.
std::string describeNode(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return "an empty value";
    case YAML::NodeType::Scalar:
      return quote(node.Scalar());
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
  }
  return "something else";
}

std::string listOf(std::initializer_list<std::string_view> words) {
  std::string out;
  for (std::string_view w : words) {
    if (!out.empty()) out += ", ";
    out += w;
  }
  return out;
}

// One YAML value being read: the node, its dotted path, and where to point
// when the node itself has no useful mark (yaml-cpp places an empty value's
// mark at the start of the next line, so we point at its key instead).
struct Field {
  YAML::Node node;
  std::string path;
  YAML::Mark fallback = YAML::Mark::null_mark();

  YAML::Mark mark() const {
    if (!node.IsDefined() || node.IsNull() || node.Mark().is_null()) return fallback;
    return node.Mark();
  }
};

struct Problem {
  int line;  // 0-based, INT_MAX when unknown (sorts last)
  int column;
  std::string text;
};

struct UpstreamRef {
  std::string name;
  YAML::Mark mark;
  std::string path;
};

class Loader {
 public:
  explicit Loader(std::string display_name) : file_(std::move(display_name)) {}

  LoadResult load(const std::string& text) {
    LoadResult result;
    auto config = std::make_shared<Config>();
    config->source_path = file_;
    config->sha256 = sha256Hex(text);
    try {
      parseDocument(text, config.get());
    } catch (const YAML::Exception& e) {
      report(e.mark, "", std::string("invalid YAML: ") + e.msg);
    } catch (const std::exception& e) {
      // Not expected: every node is type-checked before it is read. Still
      // a located-ish message beats an escaping exception.
      report(YAML::Mark::null_mark(), "", std::string("internal error while loading: ") + e.what());
    }
    std::stable_sort(problems_.begin(), problems_.end(), [](const Problem& a, const Problem& b) {
      return a.line != b.line ? a.line < b.line : a.column < b.column;
    });
    for (Problem& p : problems_)
      result.errors.push_back(std::move(p.text));
    if (result.errors.empty()) result.config = std::move(config);
    result.warnings = std::move(warnings_);
    return result;
  }

 private:
  // --- reporting -----------------------------------------------------------

  void report(const YAML::Mark& mark, const std::string& path, const std::string& message) {
    std::string text = file_ + ":";
    Problem p{INT_MAX, INT_MAX, {}};
    if (!mark.is_null()) {
      p.line = mark.line;
      p.column = mark.column;
      text += std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1) + ":";
    }
    text += " ";
    if (!path.empty()) text += path + ": ";
    text += message;
    p.text = std::move(text);
    problems_.push_back(std::move(p));
  }

  void report(const Field& f, const std::string& message) { report(f.mark(), f.path, message); }

  // Allowed but probably wrong: LoadResult::warnings, same format.
  void warn(const Field& f, const std::string& message) {
    warnings_.push_back(where(f) + "warning: " + message);
  }

  // `file:line:col: path: ` of a field, for messages made later.
  std::string where(const Field& f) const {
    std::string text = file_ + ":";
    const YAML::Mark mark = f.mark();
    if (!mark.is_null()) {
      text += std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1) + ":";
    }
    return text + " " + (f.path.empty() ? "" : f.path + ": ");
  }

  // --- structure -----------------------------------------------------------

  bool expectMap(const Field& f) {
    if (f.node.IsMap()) return true;
    report(f, "expected a mapping, got " + describeNode(f.node));
    return false;
  }

  bool expectList(const Field& f) {
    if (f.node.IsSequence()) return true;
    report(f, "expected a list, got " + describeNode(f.node));
    return false;
  }

  // Calls `handle` for each entry of a mapping whose key is a plain scalar
  // seen for the first time. yaml-cpp keeps duplicate keys (a lookup
  // returns the first), so they are caught here.
  void forEachEntry(const Field& map,
                    const std::function<void(const std::string& key, const Field& value)>& handle) {
    std::map<std::string, YAML::Mark> seen;
    for (auto it = map.node.begin(); it != map.node.end(); ++it) {
      // Copies: `it->first` lives in a temporary proxy returned by ->.
      const YAML::Node key = it->first;
      const YAML::Node value = it->second;
      if (!key.IsScalar()) {
        report(key.Mark(), map.path, "keys must be plain names, got " + describeNode(key));
        continue;
      }
      const std::string& name = key.Scalar();
      const std::string path = join(map.path, name);
      auto [pos, inserted] = seen.emplace(name, key.Mark());
      if (!inserted) {
        report(key.Mark(), path,
               "duplicate key (first set at line " + std::to_string(pos->second.line + 1) + ")");
        continue;
      }
      handle(name, Field{value, path, key.Mark()});
    }
  }

  // forEachEntry restricted to `known` keys; others are reported with a
  // suggestion when one is close.
  void walkMap(const Field& map, std::initializer_list<std::string_view> known,
               const std::function<void(const std::string& key, const Field& value)>& handle) {
    forEachEntry(map, [&](const std::string& key, const Field& value) {
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        std::string message = "unknown key";
        const std::string hint = closestMatch(key, known);
        if (!hint.empty())
          message += " (did you mean " + quote(hint) + "?)";
        else
          message += " (expected one of: " + listOf(known) + ")";
        report(value.fallback, value.path, message);
        return;
      }
      handle(key, value);
    });
  }

  // --- scalars -------------------------------------------------------------

  // The scalar text, or nullopt after reporting `expected <what>, got ...`.
  std::optional<std::string> scalar(const Field& f, std::string_view what) {
    if (f.node.IsScalar()) return f.node.Scalar();
    report(f, "expected " + std::string(what) + ", got " + describeNode(f.node));
    return std::nullopt;
  }

  // A non-empty string.
  bool readText(const Field& f, std::string_view what, std::string* out) {
    auto text = scalar(f, what);
    if (!text) return false;
    if (text->empty()) {
      report(f, "expected " + std::string(what) + ", got an empty value");
      return false;
    }
    *out = std::move(*text);
    return true;
  }

  bool readDuration(const Field& f, bool allow_zero, Duration* out) {
    auto text = scalar(f, "a duration like 5s or 250ms");
    if (!text) return false;
    std::string error;
    Duration value;
    if (!parseDuration(*text, &value, &error)) {
      report(f, error);
      return false;
    }
    if (!allow_zero && value == Duration::zero()) {
      report(f, "must be greater than 0");
      return false;
    }
    *out = value;
    return true;
  }

  bool readSize(const Field& f, uint64_t min, uint64_t max, uint64_t* out) {
    auto text = scalar(f, "a size like 16k or 1m");
    if (!text) return false;
    std::string error;
    uint64_t value = 0;
    if (!parseSize(*text, &value, &error)) {
      report(f, error);
      return false;
    }
    if (value < min || value > max) {
      report(f,
             quote(*text) + " is out of range (" + formatSize(min) + "-" + formatSize(max) + ")");
      return false;
    }
    *out = value;
    return true;
  }

  bool readNumber(const Field& f, uint64_t min, uint64_t max, uint64_t* out) {
    auto text = scalar(f, "a whole number");
    if (!text) return false;
    std::string error;
    uint64_t value = 0;
    if (!parseUnsigned(*text, UINT64_MAX, &value, &error)) {
      const bool digits_only =
          std::all_of(text->begin(), text->end(), [](char c) { return c >= '0' && c <= '9'; });
      // Digits that overflow are simply out of range; anything else says why.
      if (!digits_only || text->empty()) {
        report(f, error);
        return false;
      }
      value = UINT64_MAX;
    }
    if (value < min || value > max) {
      report(f,
             *text + " is out of range (" + std::to_string(min) + "-" + std::to_string(max) + ")");
      return false;
    }
    *out = value;
    return true;
  }

  template <typename T>
  bool readNumberAs(const Field& f, uint64_t min, uint64_t max, T* out) {
    uint64_t value = 0;
    if (!readNumber(f, min, max, &value)) return false;
    *out = static_cast<T>(value);
    return true;
  }

  bool readChoice(const Field& f, std::initializer_list<std::string_view> choices,
                  std::string* out) {
    auto text = scalar(f, "one of " + listOf(choices));
    if (!text) return false;
    if (std::find(choices.begin(), choices.end(), *text) != choices.end()) {
      *out = std::move(*text);
      return true;
    }
    std::string message = quote(*text) + " is not one of " + listOf(choices);
    const std::string hint = closestMatch(*text, choices);
    if (!hint.empty()) message += " (did you mean " + quote(hint) + "?)";
    report(f, message);
    return false;
  }

  bool readAddress(const Field& f, net::Address* out) {
    auto text = scalar(f, "an address like 127.0.0.1:8080, [::1]:8080 or unix:/path");
    if (!text) return false;
    std::string error;
    auto address = net::Address::parse(*text, &error);
    if (!address) {
      report(f, error);
      return false;
    }
    if (address->family() != net::Address::Family::kUnix && address->port() == 0) {
      report(f, quote(*text) + ": port 0 is not allowed (use a fixed port, 1-65535)");
      return false;
    }
    *out = *address;
    return true;
  }

  // --- document ------------------------------------------------------------

  // YAML::LoadAll in yaml-cpp 0.7/0.8 can loop forever, allocating until
  // the machine runs out of memory, on some malformed input such as a stray
  // "," (yaml-cpp issues #1040, PR #1319, fixed only after 0.8). We need the
  // first document, and only to know whether a second one exists: never
  // ask the parser for more than two.
  static std::string_view lineAt(const std::string& text, const YAML::Mark& mark) {
    if (mark.is_null() || mark.pos < 0 || static_cast<size_t>(mark.pos) > text.size()) return {};
    size_t start = text.rfind('\n', mark.pos == 0 ? 0 : static_cast<size_t>(mark.pos) - 1);
    start = start == std::string::npos ? 0 : start + 1;
    size_t end = text.find('\n', start);
    return std::string_view(text).substr(start, end == std::string::npos ? end : end - start);
  }

  std::vector<YAML::Node> loadAtMostTwoDocuments(const std::string& text) {
    std::vector<YAML::Node> docs;
    YAML::Node first = YAML::Load(text);  // one HandleNextDocument: no loop
    if (!first.IsDefined()) return docs;
    docs.push_back(first);
    // Is there a second document? Walk the stream without building nodes,
    // asking for at most two documents.
    struct DocumentCounter final : YAML::EventHandler {
      YAML::Mark second_start = YAML::Mark::null_mark();
      int started = 0;
      void OnDocumentStart(const YAML::Mark& mark) override {
        if (++started == 2) second_start = mark;
      }
      void OnDocumentEnd() override {}
      void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
      void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
      void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                    const std::string&) override {}
      void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                           YAML::EmitterStyle::value) override {}
      void OnSequenceEnd() override {}
      void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                      YAML::EmitterStyle::value) override {}
      void OnMapEnd() override {}
    } counter;
    std::istringstream input(text);
    YAML::Parser parser(input);
    for (int i = 0; i < 2 && parser.HandleNextDocument(counter); ++i) {
    }
    if (counter.started >= 2) {
      // Only its position is used (for the error message).
      YAML::Node second;
      docs.push_back(second);
      second_document_mark_ = counter.second_start;
    }
    return docs;
  }

  void parseDocument(const std::string& text, Config* config) {
    std::vector<YAML::Node> docs;
    try {
      docs = loadAtMostTwoDocuments(text);
    } catch (const YAML::ParserException& e) {
      std::string message = "invalid YAML: " + e.msg;
      // The usual cause: an unquoted host wildcard is read as an alias.
      if (e.msg == YAML::ErrorMsg::UNKNOWN_ANCHOR) {
        message += " (a value starting with * must be quoted, e.g. host: \"*.example.com\")";
      }
      report(e.mark, "", message);
      return;
    }
    if (docs.size() > 1) {
      // yaml-cpp also "starts a document" at text it cannot place (a stray
      // ","): only a real "---" gets the multi-document message.
      std::string_view line = lineAt(text, second_document_mark_);
      size_t first = line.find_first_not_of(" \t");
      if (first != std::string_view::npos && line.substr(first).starts_with("---")) {
        report(second_document_mark_, "",
               "only one YAML document is allowed (remove the second ---)");
      } else {
        report(second_document_mark_, "",
               "invalid YAML: unexpected text here (a stray character?)");
      }
    }
    YAML::Node root = docs.empty() ? YAML::Node() : docs.front();
    const Field top{root, "", YAML::Mark::null_mark()};
    bool has_listeners = false;
    if (root.IsDefined() && !root.IsNull()) {
      if (!root.IsMap()) {
        report(top, "expected a mapping of settings at the top level, got " + describeNode(root));
        return;
      }
      walkMap(top,
              {"workers", "pid_file", "shutdown_timeout", "drain_delay", "watch_config", "admin",
               "log", "timeouts", "limits", "trusted_proxies", "headers", "paths", "listeners",
               "upstreams", "resolver"},
              [&](const std::string& key, const Field& value) {
                if (key == "workers") {
                  parseWorkers(value, config);
                } else if (key == "pid_file") {
                  readText(value, "a file path", &config->pid_file);
                } else if (key == "shutdown_timeout") {
                  // 0 is meaningful here: stop without draining.
                  readDuration(value, /*allow_zero=*/true, &config->shutdown_timeout);
                } else if (key == "drain_delay") {
                  readDuration(value, /*allow_zero=*/true, &config->drain_delay);
                } else if (key == "watch_config") {
                  readBool(value, &config->watch_config);
                } else if (key == "admin") {
                  parseAdmin(value, config);
                } else if (key == "log") {
                  parseLog(value, &config->log);
                } else if (key == "timeouts") {
                  parseClientTimeouts(value, &config->timeouts);
                } else if (key == "limits") {
                  parseLimits(value, &config->limits);
                } else if (key == "trusted_proxies") {
                  parseTrustedProxies(value, &config->trusted_proxies);
                } else if (key == "headers") {
                  parseHeaderSettings(value, &config->headers);
                } else if (key == "paths") {
                  parsePathSettings(value, &config->paths);
                } else if (key == "listeners") {
                  has_listeners = true;
                  parseListeners(value, &config->listeners);
                } else if (key == "upstreams") {
                  parseUpstreams(value, &config->upstreams);
                } else if (key == "resolver") {
                  parseResolver(value, &config->resolver);
                }
              });
    }
    if (!has_listeners) {
      report(root.Mark().is_null() ? YAML::Mark::null_mark() : root.Mark(), "listeners",
             "missing: at least one listener is required");
    }
    checkUpstreamRefs();
    checkAdminAddress(config);
    checkProxyProtocolTrust(config);
    numberRoutesAndServers(config);
  }

  static void numberRoutesAndServers(Config* config) {
    uint32_t route = 0;
    for (Listener& listener : config->listeners) {
      for (Route& r : listener.routes)
        r.index = route++;
    }
    uint32_t server = 0;
    for (Upstream& upstream : config->upstreams) {
      for (UpstreamServer& s : upstream.servers) {
        s.index = server;
        server += s.slots;
      }
    }
  }

  void parseAdmin(const Field& f, Config* config) {
    if (!expectMap(f)) return;
    bool has_address = false;
    walkMap(f, {"address"}, [&](const std::string&, const Field& value) {
      has_address = true;
      net::Address address;
      if (readAddress(value, &address)) {
        config->admin_address = address;
        admin_field_ = value;
      }
    });
    if (!has_address) report(f, "missing required key \"address\"");
  }

  // PROXY headers are believed only from trusted_proxies: without any, no
  // connection to such a listener could ever be accepted.
  void checkProxyProtocolTrust(const Config* config) {
    if (!config->trusted_proxies.empty()) return;
    for (const Field& field : proxy_protocol_fields_) {
      report(field,
             "needs trusted_proxies: the load balancers allowed to send PROXY headers "
             "(e.g. trusted_proxies: [10.0.0.0/8])");
    }
  }

  // The admin listener is a listener of its own: it may not share an address.
  void checkAdminAddress(const Config* config) {
    if (!config->admin_address) return;
    for (size_t i = 0; i < config->listeners.size(); ++i) {
      if (config->listeners[i].address == *config->admin_address) {
        report(admin_field_, config->admin_address->toString() + " is already used by " +
                                 indexed("listeners", i));
      }
    }
  }

  bool readBool(const Field& f, bool* out) {
    auto text = scalar(f, "true or false");
    if (!text) return false;
    if (*text == "true") {
      *out = true;
      return true;
    }
    if (*text == "false") {
      *out = false;
      return true;
    }
    report(f, "expected true or false, got " + quote(*text));
    return false;
  }

  void parseWorkers(const Field& f, Config* config) {
    auto text = scalar(f, "auto or a number of workers");
    if (!text) return;
    if (*text == "auto") {
      config->workers = 0;
      return;
    }
    uint64_t n = 0;
    if (!parseUnsigned(*text, kMaxWorkers, &n, nullptr) || n == 0) {
      report(f, "expected auto or a number 1-" + std::to_string(kMaxWorkers) + ", got " +
                    quote(*text));
      return;
    }
    config->workers = static_cast<uint32_t>(n);
  }

  void parseLog(const Field& f, LogConfig* log) {
    if (!expectMap(f)) return;
    walkMap(
        f, {"level", "error", "error_format", "access", "access_format"},
        [&](const std::string& key, const Field& value) {
          if (key == "level") {
            readChoice(value, {"error", "warn", "info", "debug"}, &log->level);
          } else if (key == "error") {
            std::string target;
            if (!readText(value, "stderr or a file path", &target)) return;
            if (target == "stdout" || target == "off") {
              report(value, quote(target) +
                                " is not allowed for the error log (use stderr or a file "
                                "path, e.g. /dev/stdout)");
              return;
            }
            log->error = target;
          } else if (key == "access") {
            std::string target;
            if (!readText(value, "stdout, off or a file path", &target)) return;
            if (target == "stderr") {
              report(value,
                     "\"stderr\" is not allowed for the access log (use stdout, off "
                     "or a file path, e.g. /dev/stderr)");
              return;
            }
            log->access = target;
          } else if (key == "access_format") {
            std::string format;
            if (!readText(value, "combined, json or a format with $fields", &format)) return;
            observe::AccessFormat parsed;
            std::string error;
            if (format.find('$') == std::string::npos && format != "combined" && format != "json") {
              report(value, quote(format) +
                                " is not one of combined, json, or a format with $fields "
                                "(e.g. \"$remote_addr $status $request_time\")");
              return;
            }
            if (!observe::AccessFormat::parse(format, &parsed, &error)) {
              report(value, error);
              return;
            }
            log->access_format = format;
          } else if (key == "error_format") {
            readChoice(value, {"text", "json"}, &log->error_format);
          }
        });
  }

  void parseClientTimeouts(const Field& f, ClientTimeouts* t) {
    if (!expectMap(f)) return;
    walkMap(f, {"header", "body", "idle", "send", "linger", "linger_total", "tunnel_idle"},
            [&](const std::string& key, const Field& value) {
              Duration* target = key == "header"         ? &t->header
                                 : key == "body"         ? &t->body
                                 : key == "idle"         ? &t->idle
                                 : key == "send"         ? &t->send
                                 : key == "linger"       ? &t->linger
                                 : key == "linger_total" ? &t->linger_total
                                                         : &t->tunnel_idle;
              readDuration(value, /*allow_zero=*/false, target);
            });
  }

  void parseLimits(const Field& f, Limits* limits) {
    if (!expectMap(f)) return;
    walkMap(f,
            {"max_header_bytes", "max_headers", "max_body_bytes", "max_connections",
             "max_requests_per_connection", "connections_per_client"},
            [&](const std::string& key, const Field& value) {
              if (key == "max_header_bytes") {
                readSize(value, kMinHeaderBytes, kMaxHeaderBytes, &limits->max_header_bytes);
              } else if (key == "max_headers") {
                readNumberAs(value, 1, kMaxHeaders, &limits->max_headers);
              } else if (key == "max_body_bytes") {
                readSize(value, 0, UINT64_MAX, &limits->max_body_bytes);
              } else if (key == "max_connections") {
                readNumberAs(value, 1, kMaxConnections, &limits->max_connections);
              } else if (key == "max_requests_per_connection") {
                readNumberAs(value, 0, UINT32_MAX, &limits->max_requests_per_connection);
              } else if (key == "connections_per_client") {
                readNumberAs(value, 0, kMaxConnections, &limits->connections_per_client);
              }
            });
  }

  void parseTrustedProxies(const Field& f, std::vector<net::CidrRange>* out) {
    if (!expectList(f)) return;
    for (size_t i = 0; i < f.node.size(); ++i) {
      const Field item{f.node[i], indexed(f.path, i), f.mark()};
      auto text = scalar(item, "an address or CIDR range like 10.0.0.0/8");
      if (!text) continue;
      std::string error;
      auto range = net::CidrRange::parse(*text, &error);
      if (!range) {
        report(item, error);
        continue;
      }
      out->push_back(*range);
    }
  }

  void parseHeaderSettings(const Field& f, HeaderSettings* headers) {
    if (!expectMap(f)) return;
    walkMap(f, {"underscores", "request_id", "forwarded"},
            [&](const std::string& key, const Field& value) {
              std::string choice;
              if (key == "forwarded") {
                if (readChoice(value, {"none", "add"}, &choice))
                  headers->rfc7239_forwarded = choice == "add";
              } else if (key == "underscores") {
                if (readChoice(value, {"drop", "keep"}, &choice)) {
                  headers->keep_underscores = choice == "keep";
                }
              } else if (key == "request_id") {
                if (readChoice(value, {"generate", "keep"}, &choice)) {
                  headers->keep_untrusted_request_id = choice == "keep";
                }
              }
            });
  }

  void parsePathSettings(const Field& f, PathSettings* paths) {
    if (!expectMap(f)) return;
    walkMap(f, {"forward", "escaped_slashes"}, [&](const std::string& key, const Field& value) {
      std::string choice;
      if (key == "forward") {
        if (readChoice(value, {"normalized", "original"}, &choice)) {
          paths->forward_original = choice == "original";
        }
      } else if (key == "escaped_slashes") {
        if (readChoice(value, {"reject", "keep"}, &choice)) {
          paths->keep_escaped_slashes = choice == "keep";
        }
      }
    });
  }

  // --- listeners -----------------------------------------------------------

  void parseListeners(const Field& f, std::vector<Listener>* out) {
    if (!expectList(f)) return;
    if (f.node.size() == 0) {
      report(f, "at least one listener is required");
      return;
    }
    std::map<std::string, std::string> address_owner;  // canonical address -> listener path
    std::map<std::string, std::string> name_owner;     // name -> listener path
    for (size_t i = 0; i < f.node.size(); ++i) {
      const Field item{f.node[i], indexed(f.path, i), f.mark()};
      if (!expectMap(item)) continue;
      Listener listener;
      bool has_address = false;
      bool address_ok = false;
      bool has_name = false;
      bool has_routes = false;
      Field address_field;
      Field name_field;
      std::string address_text;
      Field tls_field;
      std::vector<std::string> tls_names;  // every certificate's names
      walkMap(item, {"name", "address", "proxy_protocol", "reuse_port", "tls", "routes"},
              [&](const std::string& key, const Field& value) {
                if (key == "name") {
                  has_name = true;
                  name_field = value;
                  if (readText(value, "a listener name", &listener.name)) {
                    if (!validListenerName(listener.name)) {
                      report(value, quote(listener.name) +
                                        " is not a valid name (no spaces or control characters)");
                    }
                  }
                } else if (key == "address") {
                  has_address = true;
                  address_field = value;
                  address_ok = readAddress(value, &listener.address);
                  if (address_ok) address_text = value.node.Scalar();
                } else if (key == "proxy_protocol") {
                  if (readBool(value, &listener.proxy_protocol) && listener.proxy_protocol) {
                    proxy_protocol_fields_.push_back(value);
                  }
                } else if (key == "reuse_port") {
                  readBool(value, &listener.reuse_port);
                } else if (key == "tls") {
                  listener.tls.emplace();
                  parseTls(value, &*listener.tls, &tls_names);
                  tls_field = value;
                } else if (key == "routes") {
                  has_routes = true;
                  parseRoutes(value, &listener.routes);
                }
              });
      if (listener.tls && !tls_names.empty())
        checkRouteHostsCovered(tls_field, listener, tls_names);
      if (!has_address) report(item, "missing required key \"address\"");
      if (!has_routes) report(item, "listener has no routes");
      if (address_ok) {
        const std::string canonical = listener.address.toString();
        auto [pos, inserted] = address_owner.emplace(canonical, item.path);
        if (!inserted) {
          report(address_field, canonical + " is already used by " + pos->second);
        }
        if (!has_name) listener.name = address_text;
      }
      if (!listener.name.empty()) {
        auto [pos, inserted] = name_owner.emplace(listener.name, item.path);
        // A defaulted name repeats only when the address does, which is
        // reported above already.
        if (!inserted && has_name) {
          report(name_field,
                 "duplicate listener name " + quote(listener.name) + " (also " + pos->second + ")");
        }
      }
      out->push_back(std::move(listener));
    }
  }

  // `tls:` of a listener (docs/tls.md). Every certificate is read now, so
  // that a missing file, a key that does not match or an expired
  // certificate is reported at its key (and a reload refused) rather than
  // found by a worker.
  void parseTls(const Field& f, tls::ServerSettings* settings, std::vector<std::string>* names) {
    if (!expectMap(f)) return;
    bool has_certificates = false;
    walkMap(f,
            {"certificates", "protocols", "ciphers", "alpn", "session_tickets", "session_cache",
             "client_auth", "handshake_timeout"},
            [&](const std::string& key, const Field& value) {
              if (key == "certificates") {
                has_certificates = true;
                parseCertificates(value, settings, names);
              } else if (key == "protocols") {
                parseTlsProtocols(value, settings);
              } else if (key == "ciphers") {
                readText(value, "an OpenSSL cipher list", &settings->ciphers);
              } else if (key == "alpn") {
                settings->alpn.clear();
                if (!expectList(value)) return;
                for (size_t i = 0; i < value.node.size(); ++i) {
                  const Field item{value.node[i], indexed(value.path, i), value.mark()};
                  std::string protocol;
                  if (!readText(item, "an ALPN protocol name", &protocol)) continue;
                  if (protocol != "http/1.1" && protocol != "http/1.0") {
                    report(item, quote(protocol) +
                                     " cannot be offered: sluice speaks http/1.1 and http/1.0");
                    continue;
                  }
                  settings->alpn.push_back(protocol);
                }
              } else if (key == "session_tickets") {
                readBool(value, &settings->session_tickets);
              } else if (key == "session_cache") {
                if (value.node.IsScalar() && value.node.Scalar() == "off") {
                  settings->session_cache_bytes = 0;
                } else {
                  readSize(value, 0, uint64_t{1} << 30, &settings->session_cache_bytes);
                }
              } else if (key == "client_auth") {
                parseClientAuth(value, settings);
              } else if (key == "handshake_timeout") {
                readDuration(value, /*allow_zero=*/false, &settings->handshake_timeout);
              }
            });
    if (!has_certificates) report(f, "missing required key \"certificates\"");
  }

  void parseCertificates(const Field& f, tls::ServerSettings* settings,
                         std::vector<std::string>* names) {
    if (!expectList(f)) return;
    if (f.node.size() == 0) {
      report(f, "expected at least one certificate");
      return;
    }
    for (size_t i = 0; i < f.node.size(); ++i) {
      const Field item{f.node[i], indexed(f.path, i), f.mark()};
      if (!expectMap(item)) continue;
      tls::CertificateFiles files;
      Field cert_field, ocsp_field;
      bool has_cert = false, has_key = false;
      walkMap(item, {"cert", "key", "ocsp"}, [&](const std::string& key, const Field& value) {
        if (key == "cert") {
          has_cert = readText(value, "a certificate file (PEM)", &files.cert);
          cert_field = value;
        } else if (key == "key") {
          has_key = readText(value, "a private key file (PEM)", &files.key);
        } else if (key == "ocsp") {
          readText(value, "an OCSP response file (DER)", &files.ocsp);
          ocsp_field = value;
        }
      });
      if (!item.node["cert"]) report(item, "missing required key \"cert\"");
      if (!item.node["key"]) report(item, "missing required key \"key\"");
      if (!has_cert || !has_key) continue;
      tls::CertificateFacts facts;
      std::string error;
      if (!tls::inspectCertificate(files, &facts, &error)) {
        report(cert_field, error);
        continue;
      }
      if (facts.expired) {
        warn(cert_field, "certificate " + files.cert + " expired (" + facts.not_after +
                             "); clients will refuse it");
      }
      if (!files.ocsp.empty()) {
        std::string der, warning;
        if (!tls::loadOcspResponse(files, &der, &error, &warning)) {
          report(ocsp_field, error);
          continue;
        }
        if (!warning.empty()) warn(ocsp_field, warning);
      }
      names->insert(names->end(), facts.names.begin(), facts.names.end());
      settings->certificates.push_back(std::move(files));
    }
  }

  void parseTlsProtocols(const Field& f, tls::ServerSettings* settings) {
    if (!expectList(f)) return;
    uint16_t low = 0xffff, high = 0;
    for (size_t i = 0; i < f.node.size(); ++i) {
      const Field item{f.node[i], indexed(f.path, i), f.mark()};
      auto text = scalar(item, "TLSv1.2 or TLSv1.3");
      if (!text) continue;
      uint16_t version = 0;
      if (*text == "TLSv1.2") {
        version = 0x0303;
      } else if (*text == "TLSv1.3") {
        version = 0x0304;
      } else {
        report(item, quote(*text) + " is not offered; accepted: TLSv1.2, TLSv1.3 (older " +
                         "versions are broken)");
        continue;
      }
      low = std::min(low, version);
      high = std::max(high, version);
    }
    if (high == 0) {
      if (f.node.size() == 0) report(f, "expected at least one protocol");
      return;
    }
    settings->min_version = low;
    settings->max_version = high;
  }

  void parseClientAuth(const Field& f, tls::ServerSettings* settings) {
    if (!expectMap(f)) return;
    Field ca_field;
    walkMap(f, {"mode", "ca", "verify_depth"}, [&](const std::string& key, const Field& value) {
      if (key == "mode") {
        auto text = scalar(value, "off, optional or required");
        if (!text) return;
        if (*text == "off") {
          settings->client_auth = tls::ClientAuth::kOff;
        } else if (*text == "optional") {
          settings->client_auth = tls::ClientAuth::kOptional;
        } else if (*text == "required") {
          settings->client_auth = tls::ClientAuth::kRequired;
        } else {
          report(value, "expected off, optional or required, got " + quote(*text));
        }
      } else if (key == "ca") {
        ca_field = value;
        readText(value, "a CA bundle file (PEM)", &settings->client_ca);
      } else if (key == "verify_depth") {
        readNumberAs(value, 1, 10, &settings->verify_depth);
      }
    });
    if (settings->client_auth == tls::ClientAuth::kOff) return;
    if (settings->client_ca.empty()) {
      report(f, "client_auth needs \"ca\": the CAs that client certificates must chain to");
      return;
    }
    std::string error;
    if (!tls::inspectCaBundle(settings->client_ca, &error)) report(ca_field, error);
  }

  // A route that matches a host no certificate covers would only ever be
  // reached with a certificate the client rejects.
  void checkRouteHostsCovered(const Field& tls_field, const Listener& listener,
                              const std::vector<std::string>& names) {
    for (const Route& route : listener.routes) {
      const std::string& host = route.match.host;
      if (host.empty()) continue;
      bool covered = false;
      for (const std::string& name : names) {
        // "*.example.com" routes need a wildcard certificate of the same.
        if (name == host || (host[0] != '*' && tls::nameMatches(name, host))) covered = true;
      }
      if (!covered) {
        report(tls_field, "no certificate of this listener is valid for " + quote(host) +
                              ", which a route matches (certificate names: " + joinNames(names) +
                              ")");
      }
    }
  }

  static std::string joinNames(const std::vector<std::string>& names) {
    std::string out;
    for (const std::string& name : names)
      out += (out.empty() ? "" : ", ") + name;
    return out;
  }

  void parseRoutes(const Field& f, std::vector<Route>* out) {
    if (!expectList(f)) return;
    if (f.node.size() == 0) {
      report(f, "listener has no routes");
      return;
    }
    for (size_t i = 0; i < f.node.size(); ++i) {
      const Field item{f.node[i], indexed(f.path, i), f.mark()};
      if (!expectMap(item)) continue;
      Route route;
      bool has_upstream = false;
      bool has_respond = false;
      bool has_redirect = false;
      std::vector<Field> rewrite_fields;  // strip_prefix / rewrite_prefix, where written
      walkMap(
          item,
          {"match", "upstream", "respond", "redirect", "client_cert_header", "ignore_client_abort",
           "retry_non_idempotent", "upgrade", "strip_prefix", "rewrite_prefix", "request_headers",
           "response_headers", "max_body_bytes", "timeouts", "rate_limit"},
          [&](const std::string& key, const Field& value) {
            if (key == "match") {
              parseMatch(value, &route.match);
            } else if (key == "upstream") {
              has_upstream = true;
              if (readText(value, "an upstream name", &route.upstream)) {
                upstream_refs_.push_back({route.upstream, value.mark(), value.path});
              }
            } else if (key == "client_cert_header") {
              std::string name, error;
              if (!readText(value, "a header name", &name)) return;
              if (!validHeaderName(name, &error)) {
                report(value, error);
                return;
              }
              route.client_cert_header = toLower(name);
            } else if (key == "redirect") {
              has_redirect = true;
              route.redirect.emplace();
              parseRedirect(value, &*route.redirect);
            } else if (key == "respond") {
              has_respond = true;
              route.respond.emplace();
              parseRespond(value, &*route.respond);
            } else if (key == "ignore_client_abort") {
              readBool(value, &route.ignore_client_abort);
            } else if (key == "retry_non_idempotent") {
              readBool(value, &route.retry_non_idempotent);
            } else if (key == "upgrade") {
              parseUpgrade(value, &route.upgrade);
            } else if (key == "strip_prefix") {
              auto text = scalar(value, "a path prefix starting with /");
              std::string error;
              if (text && !validPathPrefix(*text, &error)) report(value, error);
              if (text && error.empty()) route.strip_prefix = *text;
              rewrite_fields.push_back(value);
            } else if (key == "rewrite_prefix") {
              auto text = scalar(value, "a path prefix starting with /");
              std::string error;
              if (text && !validPathPrefix(*text, &error)) report(value, error);
              if (text && error.empty()) route.rewrite_prefix = *text;
              rewrite_fields.push_back(value);
            } else if (key == "request_headers") {
              parseHeaderRules(value, /*response=*/false, &route.request_headers);
            } else if (key == "response_headers") {
              parseHeaderRules(value, /*response=*/true, &route.response_headers);
            } else if (key == "max_body_bytes") {
              uint64_t bytes = 0;
              if (readSize(value, 0, UINT64_MAX, &bytes)) route.max_body_bytes = bytes;
            } else if (key == "timeouts") {
              parseRouteTimeouts(value, &route.timeouts);
            } else if (key == "rate_limit") {
              route.rate_limit.emplace();
              if (!parseRateLimit(value, &*route.rate_limit)) route.rate_limit.reset();
            }
          });
      if (rewrite_fields.size() > 1) {
        report(rewrite_fields[1], "a route takes \"strip_prefix\" or \"rewrite_prefix\", not both");
      } else if (!rewrite_fields.empty() && (has_respond || has_redirect)) {
        report(rewrite_fields[0], "path rewrites apply to routes with an \"upstream\"");
      } else if (route.rewrite_prefix && route.match.path_prefix.empty()) {
        report(rewrite_fields[0],
               "\"rewrite_prefix\" replaces match.path_prefix, which this route does not set");
      }
      if (!route.upgrade.empty() && has_respond) {
        report(item, "\"upgrade\" applies to routes with an \"upstream\", not \"respond\"");
      }
      const int actions = int{has_upstream} + int{has_respond} + int{has_redirect};
      if (actions > 1) {
        std::string which;
        for (const auto& [present, name] :
             {std::pair{has_upstream, "\"upstream\""}, std::pair{has_respond, "\"respond\""},
              std::pair{has_redirect, "\"redirect\""}}) {
          if (present) which += (which.empty() ? "" : " and ") + std::string(name);
        }
        report(item, std::string("a route takes exactly one action, but has ") +
                         (actions == 2 ? "both " : "") + which);
      } else if (actions == 0) {
        report(item, "a route needs an action: \"upstream\", \"respond\" or \"redirect\"");
      }
      out->push_back(std::move(route));
    }
  }

  // `upgrade: [websocket]`: protocol tokens a request may switch to.
  void parseUpgrade(const Field& f, std::vector<std::string>* out) {
    if (!expectList(f)) return;
    for (size_t i = 0; i < f.node.size(); ++i) {
      const Field item{f.node[i], indexed(f.path, i), f.mark()};
      std::string token;
      if (!readText(item, "a protocol name such as websocket", &token)) continue;
      // RFC 9110 §7.8: protocol names are tokens (case-insensitive).
      std::string error;
      if (!validHeaderName(token, &error)) {
        report(item, quote(token) + " is not a protocol name (a token such as websocket)");
        continue;
      }
      if (toLower(token) == "h2c") {
        // An h2c upgrade through a proxy hands the client a raw HTTP/2
        // connection to the upstream, past every route and rule (the
        // "h2c smuggling" attack).
        report(item, "\"h2c\" cannot be allowed: an upgraded h2c connection would bypass routing");
        continue;
      }
      out->push_back(toLower(token));
    }
  }

  void parseMatch(const Field& f, RouteMatch* match) {
    if (!expectMap(f)) return;
    walkMap(f, {"host", "path_prefix", "method", "headers", "query"},
            [&](const std::string& key, const Field& value) {
              if (key == "method") {
                parseMethods(value, &match->methods);
              } else if (key == "headers") {
                parseFieldMatches(value, /*header_names=*/true, &match->headers);
              } else if (key == "query") {
                parseFieldMatches(value, /*header_names=*/false, &match->query);
              } else if (key == "host") {
                auto text = scalar(value, "a host name or \"*.\" wildcard");
                if (!text) return;
                std::string error;
                if (!normalizeHostPattern(*text, &match->host, &error)) report(value, error);
              } else if (key == "path_prefix") {
                auto text = scalar(value, "a path prefix starting with /");
                if (!text) return;
                std::string error;
                if (!validPathPrefix(*text, &error)) {
                  report(value, error);
                  return;
                }
                match->path_prefix = *text;
              }
            });
  }

  // `method: GET` or `method: [GET, POST]`.
  void parseMethods(const Field& f, std::vector<std::string>* out) {
    auto one = [&](const Field& item) {
      std::string method;
      if (!readText(item, "an HTTP method such as GET", &method)) return;
      std::string error;
      if (!validHeaderName(method, &error)) {  // RFC 9110 §9.1: a method is a token
        report(item, quote(method) + " is not a method (a token such as GET)");
        return;
      }
      for (char c : method) {
        if (c >= 'a' && c <= 'z') {
          // Methods are case-sensitive and the standard ones upper-case: a
          // lower-case one would never match what clients send.
          report(item, quote(method) + ": methods are case-sensitive (did you mean " +
                           quote(toUpper(method)) + "?)");
          return;
        }
      }
      out->push_back(method);
    };
    if (f.node.IsSequence()) {
      for (size_t i = 0; i < f.node.size(); ++i)
        one(Field{f.node[i], indexed(f.path, i), f.mark()});
      return;
    }
    one(f);
  }

  // `{ name: "exact value", other: { present: true } }`.
  void parseFieldMatches(const Field& f, bool header_names, std::vector<FieldMatch>* out) {
    if (!expectMap(f)) return;
    forEachEntry(f, [&](const std::string& name, const Field& value) {
      std::string error;
      if (header_names && !validHeaderName(name, &error)) {
        report(value.fallback, value.path, error);
        return;
      }
      if (!header_names && name.empty()) {
        report(value.fallback, value.path, "expected a query parameter name");
        return;
      }
      FieldMatch match;
      match.name = header_names ? toLower(name) : name;
      if (value.node.IsMap()) {
        bool present = false;
        walkMap(value, {"present"},
                [&](const std::string&, const Field& flag) { readBool(flag, &present); });
        if (!present) {
          report(value, "expected a value to match exactly, or { present: true }");
          return;
        }
      } else {
        auto text = scalar(value, "a value to match exactly, or { present: true }");
        if (!text) return;
        if (header_names && !validHeaderValue(*text, &error)) {
          report(value, error);
          return;
        }
        match.value = std::move(*text);
      }
      out->push_back(std::move(match));
    });
  }

  // `{ set: {Name: value}, add: {Name: value}, remove: [Name] }`; values
  // may name ${client_ip}, ${client_port}, ${scheme}, ${host}, ${request_id}.
  void parseHeaderRules(const Field& f, bool response, HeaderRules* rules) {
    if (!expectMap(f)) return;
    walkMap(f, {"set", "add", "remove"}, [&](const std::string& key, const Field& value) {
      if (key == "remove") {
        if (!expectList(value)) return;
        for (size_t i = 0; i < value.node.size(); ++i) {
          const Field item{value.node[i], indexed(value.path, i), value.mark()};
          std::string name;
          if (!readText(item, "a header name", &name)) continue;
          std::string error;
          if (!validHeaderName(name, &error)) {
            report(item, error);
            continue;
          }
          if (!checkEditableHeader(item, name, response)) continue;
          rules->remove.push_back(toLower(name));
        }
        return;
      }
      HeaderList* target = key == "set" ? &rules->set : &rules->add;
      parseHeaders(value, target);
      for (const auto& [name, text] : *target) {
        std::string error;
        if (!validTemplate(text, &error)) report(value, quote(name) + ": " + error);
        (void)response;
      }
    });
  }

  // Framing and hop-by-hop headers are sluice's to write; a rule may not
  // touch them (parseHeaders refuses them for set/add already).
  bool checkEditableHeader(const Field& f, const std::string& name, bool response) {
    (void)response;
    const std::string lower = toLower(name);
    if (lower == "content-length" || lower == "transfer-encoding" || lower == "connection" ||
        lower == "host") {
      report(f, quote(name) + " is managed by sluice and cannot be removed");
      return false;
    }
    return true;
  }

  // ${name} placeholders in header values: only the known variables.
  static bool validTemplate(std::string_view text, std::string* error) {
    static constexpr std::string_view kVariables[] = {"client_ip", "client_port", "scheme", "host",
                                                      "request_id"};
    size_t pos = 0;
    while ((pos = text.find("${", pos)) != std::string_view::npos) {
      const size_t end = text.find('}', pos);
      if (end == std::string_view::npos) {
        *error = "unclosed ${ in the value";
        return false;
      }
      const std::string_view name = text.substr(pos + 2, end - pos - 2);
      if (std::find(std::begin(kVariables), std::end(kVariables), name) == std::end(kVariables)) {
        *error = "unknown variable ${" + std::string(name) +
                 "} (known: client_ip, client_port, scheme, host, request_id)";
        return false;
      }
      pos = end + 1;
    }
    return true;
  }

  // `{ requests: 100, per: 1s, burst: 50, key: client_ip | header:NAME }`.
  bool parseRateLimit(const Field& f, RateLimit* limit) {
    if (!expectMap(f)) return false;
    bool has_requests = false;
    bool ok = true;
    walkMap(
        f, {"requests", "per", "burst", "key"}, [&](const std::string& key, const Field& value) {
          if (key == "requests") {
            has_requests = true;
            ok &= readNumberAs(value, 1, 1000000, &limit->requests);
          } else if (key == "per") {
            ok &= readDuration(value, /*allow_zero=*/false, &limit->per);
          } else if (key == "burst") {
            ok &= readNumberAs(value, 1, 1000000, &limit->burst);
          } else if (key == "key") {
            auto text = scalar(value, "client_ip or header:NAME");
            if (!text) {
              ok = false;
              return;
            }
            std::string error;
            if (*text == "client_ip") {
              limit->header.clear();
            } else if (text->starts_with("header:") && validHeaderName(text->substr(7), &error)) {
              limit->header = toLower(text->substr(7));
            } else {
              report(value, "expected client_ip or header:NAME, got " + quote(*text));
              ok = false;
            }
          }
        });
    if (!has_requests) {
      report(f, "missing required key \"requests\"");
      return false;
    }
    if (limit->burst == 0) limit->burst = limit->requests;
    return ok;
  }

  void parseRouteTimeouts(const Field& f, RouteTimeouts* t) {
    if (!expectMap(f)) return;
    walkMap(f, {"body", "response"}, [&](const std::string& key, const Field& value) {
      Duration d{0};
      if (!readDuration(value, /*allow_zero=*/false, &d)) return;
      (key == "body" ? t->body : t->response) = d;
    });
  }

  // `redirect: { scheme: https, status: 308, host: …, port: … }`.
  void parseRedirect(const Field& f, Redirect* redirect) {
    if (!expectMap(f)) return;
    walkMap(f, {"scheme", "status", "host", "port"},
            [&](const std::string& key, const Field& value) {
              if (key == "scheme") {
                auto text = scalar(value, "http or https");
                if (!text) return;
                if (*text != "http" && *text != "https") {
                  report(value, "expected http or https, got " + quote(*text));
                  return;
                }
                redirect->scheme = *text;
              } else if (key == "status") {
                uint64_t status = 0;
                if (!readNumber(value, 301, 308, &status)) return;
                if (status == 304 || status == 305 || status == 306) {
                  report(value, "expected a redirect status: 301, 302, 303, 307 or 308");
                  return;
                }
                redirect->status = static_cast<int>(status);
              } else if (key == "host") {
                std::string host;
                if (!readText(value, "a host name", &host)) return;
                if (host.find_first_of("/?#@ ") != std::string::npos) {
                  report(value, quote(host) + " is not a host name");
                  return;
                }
                redirect->host = toLower(host);
              } else if (key == "port") {
                uint16_t port = 0;
                if (readNumberAs(value, 1, 65535, &port)) redirect->port = port;
              }
            });
  }

  void parseRespond(const Field& f, DirectResponse* respond) {
    if (!expectMap(f)) return;
    bool status_ok = true;
    bool has_body = false;
    Field body_field;
    walkMap(f, {"status", "body", "headers"}, [&](const std::string& key, const Field& value) {
      if (key == "status") {
        auto text = scalar(value, "an HTTP status code 200-599");
        if (!text) {
          status_ok = false;
          return;
        }
        uint64_t status = 0;
        if (!parseUnsigned(*text, 999, &status, nullptr)) {
          report(value, "expected an HTTP status code 200-599, got " + quote(*text));
          status_ok = false;
          return;
        }
        if (status < 200 || status > 599) {
          std::string message = "status " + *text + " is out of range (200-599)";
          if (status >= 100 && status < 200) {
            message += "; 1xx is informational and cannot be a final response";
          }
          report(value, message);
          status_ok = false;
          return;
        }
        respond->status = static_cast<int>(status);
      } else if (key == "body") {
        // An explicit empty string is a valid (empty) body.
        auto text = scalar(value, "the body text");
        if (!text) return;
        has_body = !text->empty();
        body_field = value;
        respond->body = std::move(*text);
      } else if (key == "headers") {
        parseHeaders(value, &respond->headers);
      }
    });
    // RFC 9110 6.4.1: 204 and 304 responses never carry content.
    if (status_ok && has_body && (respond->status == 204 || respond->status == 304)) {
      report(body_field, "a " + std::to_string(respond->status) + " response cannot have a body");
    }
  }

  void parseHeaders(const Field& f, HeaderList* headers) {
    if (!expectMap(f)) return;
    std::map<std::string, std::string> lower_seen;
    forEachEntry(f, [&](const std::string& name, const Field& value) {
      std::string error;
      if (!validHeaderName(name, &error)) {
        report(value.fallback, value.path, error);
        return;
      }
      const std::string lower = toLower(name);
      if (lower == "content-length" || lower == "transfer-encoding" || lower == "connection") {
        report(value.fallback, value.path,
               quote(name) + " is set by sluice (framing and connection handling); remove it");
        return;
      }
      auto [pos, inserted] = lower_seen.emplace(lower, name);
      if (!inserted) {
        report(value.fallback, value.path,
               "duplicate header " + quote(name) + " (same as " + quote(pos->second) +
                   "; names are case-insensitive)");
        return;
      }
      auto text = scalar(value, "a header value");
      if (!text) return;
      if (!validHeaderValue(*text, &error)) {
        report(value, error);
        return;
      }
      headers->emplace_back(name, std::move(*text));
    });
  }

  // --- upstreams -----------------------------------------------------------

  void parseUpstreams(const Field& f, std::vector<Upstream>* out) {
    if (!expectMap(f)) return;
    forEachEntry(f, [&](const std::string& name, const Field& value) {
      // Known even when its body has errors, so routes naming it do not
      // pile a second, misleading error on top.
      upstream_names_.push_back(name);
      std::string error;
      if (!validUpstreamName(name, &error)) report(value.fallback, value.path, error);
      Upstream upstream;
      upstream.name = name;
      parseUpstream(value, &upstream);
      out->push_back(std::move(upstream));
    });
  }

  void parseUpstream(const Field& f, Upstream* upstream) {
    if (!expectMap(f)) return;
    bool has_servers = false;
    walkMap(f,
            {"balance", "hash", "servers", "retries", "keepalive", "timeouts",
             "send_proxy_protocol", "passive", "retry_on", "per_try_timeout", "retry_budget", "tls",
             "health_check", "all_down"},
            [&](const std::string& key, const Field& value) {
              if (key == "balance") {
                parseBalance(value, &upstream->balance);
              } else if (key == "hash") {
                parseHashKey(value, &upstream->hash);
              } else if (key == "servers") {
                has_servers = true;
                parseServers(value, &upstream->servers);
              } else if (key == "retries") {
                readNumberAs(value, 0, kMaxRetries, &upstream->retries);
              } else if (key == "keepalive") {
                parseKeepalive(value, &upstream->keepalive);
              } else if (key == "passive") {
                parsePassive(value, &upstream->passive);
              } else if (key == "health_check") {
                parseHealthCheck(value, &upstream->health_check);
              } else if (key == "all_down") {
                std::string choice;
                if (!readChoice(value, {"try_all", "refuse"}, &choice)) return;
                upstream->all_down = choice == "refuse" ? AllDown::kRefuse : AllDown::kTryAll;
              } else if (key == "retry_on") {
                parseRetryOn(value, &upstream->retry_on);
              } else if (key == "per_try_timeout") {
                Duration d{};
                if (readDuration(value, /*allow_zero=*/false, &d)) upstream->per_try_timeout = d;
              } else if (key == "retry_budget") {
                parseRetryBudget(value, &upstream->retry_budget);
              } else if (key == "tls") {
                upstream->tls.emplace();
                parseUpstreamTls(value, &*upstream->tls);
              } else if (key == "timeouts") {
                parseUpstreamTimeouts(value, &upstream->timeouts);
              } else if (key == "send_proxy_protocol") {
                std::string version;
                if (!readChoice(value, {"v1", "v2"}, &version)) return;
                upstream->send_proxy_protocol =
                    version == "v1" ? SendProxyProtocol::kV1 : SendProxyProtocol::kV2;
              }
            });
    if (!has_servers) report(f, "upstream has no servers (add a \"servers\" list)");
  }

  void parseBalance(const Field& f, BalancePolicy* out) {
    static constexpr std::pair<std::string_view, BalancePolicy> kPolicies[] = {
        {"round_robin", BalancePolicy::kRoundRobin},
        {"least_conn", BalancePolicy::kLeastConn},
        {"random", BalancePolicy::kRandom},
        {"p2c_ewma", BalancePolicy::kP2cEwma},
        {"hash", BalancePolicy::kHash}};
    auto text = scalar(f, "a balance method (round_robin, least_conn, random, p2c_ewma, hash)");
    if (!text) return;
    for (const auto& [name, policy] : kPolicies) {
      if (*text == name) {
        *out = policy;
        return;
      }
    }
    std::string message = quote(*text) +
                          " is not a balance method; accepted: round_robin, least_conn, random, "
                          "p2c_ewma, hash";
    const std::string hint =
        closestMatch(*text, {"round_robin", "least_conn", "random", "p2c_ewma", "hash"});
    if (!hint.empty()) message += " (did you mean " + quote(hint) + "?)";
    report(f, message);
  }

  // `hash: { key: client_ip | header:NAME | cookie:NAME | uri }`.
  void parseHashKey(const Field& f, HashKey* key) {
    if (!expectMap(f)) return;
    walkMap(f, {"key"}, [&](const std::string&, const Field& value) {
      auto text = scalar(value, "client_ip, header:NAME, cookie:NAME or uri");
      if (!text) return;
      std::string error;
      if (*text == "client_ip") {
        key->kind = HashKey::Kind::kClientIp;
      } else if (*text == "uri") {
        key->kind = HashKey::Kind::kUri;
      } else if (text->starts_with("header:") && validHeaderName(text->substr(7), &error)) {
        key->kind = HashKey::Kind::kHeader;
        key->name = toLower(text->substr(7));
      } else if (text->starts_with("cookie:") && text->size() > 7 &&
                 validHeaderName(text->substr(7), &error)) {
        key->kind = HashKey::Kind::kCookie;
        key->name = text->substr(7);
      } else {
        report(value, "expected client_ip, header:NAME, cookie:NAME or uri, got " + quote(*text));
      }
    });
  }

  void parseServers(const Field& f, std::vector<UpstreamServer>* out) {
    if (!expectList(f)) return;
    if (f.node.size() == 0) {
      report(f, "upstream has no servers");
      return;
    }
    std::map<std::string, std::string> seen;  // canonical address -> path
    for (size_t i = 0; i < f.node.size(); ++i) {
      const Field item{f.node[i], indexed(f.path, i), f.mark()};
      if (!expectMap(item)) continue;
      UpstreamServer server;
      bool has_address = false;
      Field max_addresses_field;
      walkMap(item, {"address", "weight", "max_addresses"},
              [&](const std::string& key, const Field& value) {
                if (key == "address") {
                  has_address = true;
                  if (!readServerAddress(value, &server)) return;
                  server.where = where(value);
                  const std::string canonical =
                      server.resolved() ? server.name + ":" + std::to_string(server.port)
                                        : server.address.toString();
                  auto [pos, inserted] = seen.emplace(canonical, value.path);
                  if (!inserted) {
                    report(value, canonical + " is listed twice (also " + pos->second +
                                      "); use weight to send it more traffic");
                  }
                } else if (key == "weight") {
                  readNumberAs(value, 1, kMaxWeight, &server.weight);
                } else if (key == "max_addresses") {
                  max_addresses_field = value;
                  readNumberAs(value, 1, kMaxAddressesPerName, &server.slots);
                }
              });
      if (!has_address) report(item, "missing required key \"address\"");
      if (server.resolved() && max_addresses_field.path.empty()) {
        server.slots = kDefaultAddressesPerName;
      } else if (!server.resolved() && !max_addresses_field.path.empty()) {
        report(max_addresses_field, "max_addresses applies only to a DNS name");
      }
      out->push_back(std::move(server));
    }
  }

  // A server address: numeric (`10.0.0.1:8080`, `[::1]:8080`, `unix:/path`)
  // or a DNS name with a port (`app.default.svc.cluster.local:8080`),
  // resolved later by the master (docs/upstreams.md).
  bool readServerAddress(const Field& f, UpstreamServer* server) {
    auto text = scalar(f,
                       "an address like 10.0.0.1:8080, [::1]:8080, app.internal:8080 or "
                       "unix:/path");
    if (!text) return false;
    std::string error;
    if (auto address = net::Address::parse(*text, &error)) {
      if (address->family() != net::Address::Family::kUnix && address->port() == 0) {
        report(f, quote(*text) + ": port 0 is not allowed (use a fixed port, 1-65535)");
        return false;
      }
      server->address = *address;
      return true;
    }
    const size_t colon = text->rfind(':');
    const std::string host = colon == std::string::npos ? *text : text->substr(0, colon);
    if (!validDnsName(host)) {
      // Looks like an IP (digits, colons): the parser's own message is the
      // precise one; otherwise say what a name may contain.
      const bool ip_like = host.find_first_not_of("0123456789.:[]") == std::string::npos;
      report(f, ip_like ? error
                        : quote(*text) + ": " + quote(host) +
                              " is neither an IP address nor a host name (letters, digits, "
                              "hyphens, dots)");
      return false;
    }
    uint64_t port = 0;
    if (colon == std::string::npos ||
        !parseUnsigned(std::string_view(*text).substr(colon + 1), 65535, &port, nullptr) ||
        port == 0) {
      report(f, quote(*text) + ": a host name needs a port 1-65535, like " + host + ":8080");
      return false;
    }
    server->name = toLower(host);
    server->port = static_cast<uint16_t>(port);
    return true;
  }

  // Letters, digits and hyphens in dot-separated labels of 1-63 characters,
  // 253 in all, not all digits (that is a malformed IPv4 address).
  static bool validDnsName(const std::string& name) {
    if (name.empty() || name.size() > 253) return false;
    size_t label = 0;
    bool all_digits = true;
    for (size_t i = 0; i < name.size(); ++i) {
      const char c = name[i];
      if (c == '.') {
        if (label == 0 || name[i - 1] == '-') return false;
        label = 0;
        continue;
      }
      const bool alnum = std::isalnum(static_cast<unsigned char>(c)) != 0;
      if (!alnum && !(c == '-' && label > 0) && c != '_') return false;
      if (!std::isdigit(static_cast<unsigned char>(c))) all_digits = false;
      if (++label > 63) return false;
    }
    return !all_digits && name.back() != '-';
  }

  // `resolver: { addresses, timeout, attempts, min_interval, max_interval }`.
  void parseResolver(const Field& f, Resolver* resolver) {
    if (!expectMap(f)) return;
    walkMap(f, {"addresses", "timeout", "attempts", "min_interval", "max_interval"},
            [&](const std::string& key, const Field& value) {
              if (key == "addresses") {
                if (!expectList(value)) return;
                for (size_t i = 0; i < value.node.size(); ++i) {
                  const Field item{value.node[i], indexed(value.path, i), value.mark()};
                  net::Address address;
                  if (!readAddress(item, &address)) continue;
                  if (address.family() == net::Address::Family::kUnix) {
                    report(item, "a DNS server needs an IP address and port, like 127.0.0.1:53");
                    continue;
                  }
                  resolver->addresses.push_back(address);
                }
              } else if (key == "timeout") {
                readDuration(value, /*allow_zero=*/false, &resolver->timeout);
              } else if (key == "attempts") {
                readNumberAs(value, 1, 10, &resolver->attempts);
              } else if (key == "min_interval") {
                readDuration(value, /*allow_zero=*/false, &resolver->min_interval);
              } else if (key == "max_interval") {
                readDuration(value, /*allow_zero=*/false, &resolver->max_interval);
              }
            });
    if (resolver->min_interval > resolver->max_interval) {
      report(f, "min_interval is longer than max_interval");
    }
  }

  // `health_check: { path, interval, timeout, healthy, unhealthy, expect, host }`
  // (or `off`).
  void parseHealthCheck(const Field& f, HealthCheck* check) {
    if (f.node.IsScalar() && f.node.Scalar() == "off") {
      check->enabled = false;
      return;
    }
    if (!expectMap(f)) return;
    check->enabled = true;
    walkMap(f, {"path", "interval", "timeout", "healthy", "unhealthy", "expect", "host"},
            [&](const std::string& key, const Field& value) {
              if (key == "path") {
                if (!readText(value, "a path like /healthz", &check->path)) return;
                if (check->path.empty() || check->path[0] != '/' ||
                    check->path.find_first_of(" \r\n\t") != std::string::npos) {
                  report(value, "expected a path starting with / and without spaces, got " +
                                    quote(check->path));
                }
              } else if (key == "interval") {
                readDuration(value, /*allow_zero=*/false, &check->interval);
              } else if (key == "timeout") {
                readDuration(value, /*allow_zero=*/false, &check->timeout);
              } else if (key == "healthy") {
                readNumberAs(value, 1, 100, &check->healthy);
              } else if (key == "unhealthy") {
                readNumberAs(value, 1, 100, &check->unhealthy);
              } else if (key == "host") {
                if (!readText(value, "a host name", &check->host)) return;
                if (check->host.find_first_of(" \r\n\t") != std::string::npos) {
                  report(value, "a Host header value cannot contain spaces");
                }
              } else if (key == "expect") {
                parseStatusRanges(value, &check->expect);
              }
            });
    if (check->timeout > check->interval) report(f, "timeout is longer than interval");
  }

  // `[200-399]`, `[200, 204]`: statuses or inclusive ranges, 100-599.
  void parseStatusRanges(const Field& f, std::vector<std::pair<int, int>>* out) {
    if (!expectList(f)) return;
    out->clear();
    for (size_t i = 0; i < f.node.size(); ++i) {
      const Field item{f.node[i], indexed(f.path, i), f.mark()};
      auto text = scalar(item, "a status like 200 or a range like 200-399");
      if (!text) continue;
      const size_t dash = text->find('-');
      uint64_t low = 0, high = 0;
      const bool ok =
          dash == std::string::npos
              ? parseUnsigned(*text, 599, &low, nullptr) && (high = low, true)
              : parseUnsigned(std::string_view(*text).substr(0, dash), 599, &low, nullptr) &&
                    parseUnsigned(std::string_view(*text).substr(dash + 1), 599, &high, nullptr);
      if (!ok || low < 100 || high < low) {
        report(item, "expected a status 100-599 or a range like 200-399, got " + quote(*text));
        continue;
      }
      out->emplace_back(static_cast<int>(low), static_cast<int>(high));
    }
    if (f.node.size() == 0) report(f, "expect needs at least one status or range");
  }

  // `upstreams.NAME.tls: { verify, ca, server_name, cert, key }`.
  void parseUpstreamTls(const Field& f, tls::ClientSettings* settings) {
    if (!expectMap(f)) return;
    Field ca_field, cert_field;
    walkMap(f, {"verify", "ca", "server_name", "cert", "key"},
            [&](const std::string& key, const Field& value) {
              if (key == "verify") {
                readBool(value, &settings->verify);
              } else if (key == "ca") {
                ca_field = value;
                readText(value, "a CA bundle file (PEM)", &settings->ca);
              } else if (key == "server_name") {
                readText(value, "a host name", &settings->server_name);
              } else if (key == "cert") {
                cert_field = value;
                readText(value, "a certificate file (PEM)", &settings->client_certificate.cert);
              } else if (key == "key") {
                readText(value, "a private key file (PEM)", &settings->client_certificate.key);
              }
            });
    std::string error;
    if (!settings->ca.empty() && !tls::inspectCaBundle(settings->ca, &error))
      report(ca_field, error);
    const tls::CertificateFiles& client = settings->client_certificate;
    if (client.cert.empty() != client.key.empty()) {
      report(f, "a client certificate needs both \"cert\" and \"key\"");
    } else if (!client.cert.empty()) {
      tls::CertificateFacts facts;
      if (!tls::inspectCertificate(client, &facts, &error)) report(cert_field, error);
    }
    if (!settings->verify) {
      warn(f,
           "verify: false — the servers' certificates are not checked; anyone on the path "
           "can read and change the traffic");
    }
  }

  // `retry_on: [connect_failure, reset, timeout, 502, 503, 504]`.
  void parseRetryOn(const Field& f, RetryOn* retry_on) {
    if (!expectList(f)) return;
    *retry_on = RetryOn();
    retry_on->connect_failure = false;
    for (size_t i = 0; i < f.node.size(); ++i) {
      const Field item{f.node[i], indexed(f.path, i), f.mark()};
      auto text = scalar(item, "connect_failure, reset, timeout or a 5xx status");
      if (!text) continue;
      uint64_t status = 0;
      if (*text == "connect_failure") {
        retry_on->connect_failure = true;
      } else if (*text == "reset") {
        retry_on->reset = true;
      } else if (*text == "timeout") {
        retry_on->timeout = true;
      } else if (parseUnsigned(*text, 599, &status, nullptr) && status >= 500) {
        retry_on->statuses.push_back(static_cast<int>(status));
      } else {
        report(item,
               "expected connect_failure, reset, timeout or a 5xx status, got " + quote(*text));
      }
    }
  }

  // `retry_budget: { ratio: 20%, min_per_second: 3 }` or `off`.
  void parseRetryBudget(const Field& f, RetryBudget* budget) {
    if (f.node.IsScalar() && f.node.Scalar() == "off") {
      budget->enabled = false;
      return;
    }
    if (!expectMap(f)) return;
    walkMap(f, {"ratio", "min_per_second"}, [&](const std::string& key, const Field& value) {
      if (key == "ratio") {
        readPercent(value, &budget->ratio_percent);
      } else if (key == "min_per_second") {
        readNumberAs(value, 0, 100000, &budget->min_per_second);
      }
    });
  }

  bool readPercent(const Field& f, uint32_t* out) {
    auto text = scalar(f, "a percentage like 50%");
    if (!text) return false;
    uint64_t percent = 0;
    if (text->size() < 2 || text->back() != '%' ||
        !parseUnsigned(text->substr(0, text->size() - 1), 100, &percent, nullptr)) {
      report(f, "expected a percentage 0%-100%, got " + quote(*text));
      return false;
    }
    *out = static_cast<uint32_t>(percent);
    return true;
  }

  // `passive: { failures: 5, ejection: 30s, max_ejected: 50% }` or `off`.
  void parsePassive(const Field& f, PassiveHealth* passive) {
    if (f.node.IsScalar() && f.node.Scalar() == "off") {
      passive->failures = 0;
      return;
    }
    if (!expectMap(f)) return;
    walkMap(f, {"failures", "ejection", "max_ejected"},
            [&](const std::string& key, const Field& value) {
              if (key == "failures") {
                readNumberAs(value, 0, 1000, &passive->failures);
              } else if (key == "ejection") {
                readDuration(value, /*allow_zero=*/false, &passive->ejection);
              } else if (key == "max_ejected") {
                auto text = scalar(value, "a percentage like 50%");
                if (!text) return;
                uint64_t percent = 0;
                if (text->size() < 2 || text->back() != '%' ||
                    !parseUnsigned(text->substr(0, text->size() - 1), 100, &percent, nullptr)) {
                  report(value, "expected a percentage 0%-100%, got " + quote(*text));
                  return;
                }
                passive->max_ejected_percent = static_cast<uint32_t>(percent);
              }
            });
  }

  void parseKeepalive(const Field& f, Keepalive* keepalive) {
    if (!expectMap(f)) return;
    walkMap(f, {"max_idle", "idle_timeout"}, [&](const std::string& key, const Field& value) {
      if (key == "max_idle") {
        readNumberAs(value, 0, kMaxIdlePerServer, &keepalive->max_idle);
      } else if (key == "idle_timeout") {
        readDuration(value, /*allow_zero=*/false, &keepalive->idle_timeout);
      }
    });
  }

  void parseUpstreamTimeouts(const Field& f, UpstreamTimeouts* t) {
    if (!expectMap(f)) return;
    walkMap(f, {"connect", "response", "send"}, [&](const std::string& key, const Field& value) {
      Duration* target = key == "connect"    ? &t->connect
                         : key == "response" ? &t->response
                                             : &t->send;
      readDuration(value, /*allow_zero=*/false, target);
    });
  }

  // Routes may name upstreams defined later in the file, so names are
  // resolved once everything has been read.
  void checkUpstreamRefs() {
    for (const UpstreamRef& ref : upstream_refs_) {
      if (std::find(upstream_names_.begin(), upstream_names_.end(), ref.name) !=
          upstream_names_.end()) {
        continue;
      }
      std::string message = "no upstream named " + quote(ref.name);
      const std::string hint = closestMatchIn(ref.name, upstream_names_);
      if (!hint.empty()) message += " (did you mean " + quote(hint) + "?)";
      report(ref.mark, ref.path, message);
    }
  }

  std::string file_;
  std::vector<Problem> problems_;
  std::vector<UpstreamRef> upstream_refs_;
  std::vector<std::string> upstream_names_;
  Field admin_field_;                         // where admin.address was written, for conflicts
  std::vector<Field> proxy_protocol_fields_;  // listeners with proxy_protocol: true
  std::vector<std::string> warnings_;
  YAML::Mark second_document_mark_ = YAML::Mark::null_mark();
};

}  // namespace

std::optional<net::Address> peekAdminAddress(const std::string& path) {
  try {
    YAML::Node root = YAML::LoadFile(path);
    if (!root.IsMap() || !root["admin"] || !root["admin"].IsMap()) return std::nullopt;
    YAML::Node address = root["admin"]["address"];
    if (!address || !address.IsScalar()) return std::nullopt;
    std::string error;
    return net::Address::parse(address.Scalar(), &error);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

LoadResult loadConfigText(const std::string& text, const std::string& display_name) {
  try {
    return Loader(display_name).load(text);
  } catch (const std::exception& e) {
    // Only allocation failure can get here.
    LoadResult result;
    result.errors.push_back(display_name + ": cannot load: " + e.what());
    return result;
  }
}

LoadResult loadConfigFile(const std::string& path) {
  LoadResult result;
  auto fail = [&](const std::string& message) {
    result.errors.push_back(path + ": cannot read: " + message);
    return result;
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(std::strerror(errno));
  std::string text;
  char buf[64 * 1024];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int saved = errno;
      ::close(fd);
      return fail(std::strerror(saved));
    }
    if (n == 0) break;
    if (text.size() + static_cast<size_t>(n) > kMaxFileBytes) {
      ::close(fd);
      return fail("larger than 16 MiB; is this the right file?");
    }
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return loadConfigText(text, path);
}

}  // namespace sluice::config
