// A route's header edits (`request_headers`, `response_headers`: set, add,
// remove) applied while a head is re-serialized, with ${variables} in values
// expanded for the request at hand. Stateless functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "buffer/buffer.h"
#include "config/config.h"

namespace sluice::proxy {

// What ${client_ip}, ${client_port}, ${scheme}, ${host} and ${request_id}
// stand for in one request.
struct RuleContext {
  std::string_view client_ip;
  uint16_t client_port = 0;
  std::string_view scheme = "http";
  std::string_view host;
  std::string_view request_id;
};

// Appends `text` with its ${variables} replaced (the loader allowed only
// known ones; an unknown one is kept as written).
void expandTemplate(std::string_view text, const RuleContext& context, std::string* out);

// The header from the message is dropped: removed, or replaced by a `set`.
bool replacedOrRemoved(const config::HeaderRules& rules, std::string_view name);

// Appends the `set` and `add` headers, expanded, as header lines.
void appendRuleHeaders(const config::HeaderRules& rules, const RuleContext& context,
                       std::string* out);
void appendRuleHeaders(const config::HeaderRules& rules, const RuleContext& context, Buffer& out);

// The value a `set` rule gives `name` (e.g. Host), expanded; false if none.
bool setValue(const config::HeaderRules& rules, std::string_view name, const RuleContext& context,
              std::string* value);

}  // namespace sluice::proxy
