#include "proxy/header_rules.h"

#include "http/message.h"

namespace sluice::proxy {

void expandTemplate(std::string_view text, const RuleContext& context, std::string* out) {
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t open = text.find("${", pos);
    if (open == std::string_view::npos) break;
    const size_t close = text.find('}', open);
    if (close == std::string_view::npos) break;
    out->append(text.substr(pos, open - pos));
    const std::string_view name = text.substr(open + 2, close - open - 2);
    if (name == "client_ip") {
      out->append(context.client_ip);
    } else if (name == "client_port") {
      out->append(std::to_string(context.client_port));
    } else if (name == "scheme") {
      out->append(context.scheme);
    } else if (name == "host") {
      out->append(context.host);
    } else if (name == "request_id") {
      out->append(context.request_id);
    } else {
      out->append(text.substr(open, close - open + 1));
    }
    pos = close + 1;
  }
  out->append(text.substr(pos));
}

bool replacedOrRemoved(const config::HeaderRules& rules, std::string_view name) {
  for (const std::string& removed : rules.remove) {
    if (http::equalsIgnoreCase(removed, name)) return true;
  }
  for (const auto& [set_name, value] : rules.set) {
    if (http::equalsIgnoreCase(set_name, name)) return true;
  }
  return false;
}

void appendRuleHeaders(const config::HeaderRules& rules, const RuleContext& context,
                       std::string* out) {
  for (const config::HeaderList* list : {&rules.set, &rules.add}) {
    for (const auto& [name, value] : *list) {
      if (http::equalsIgnoreCase(name, "host")) continue;  // written as the Host line itself
      out->append(name).append(": ");
      expandTemplate(value, context, out);
      out->append("\r\n");
    }
  }
}

void appendRuleHeaders(const config::HeaderRules& rules, const RuleContext& context, Buffer& out) {
  std::string lines;
  appendRuleHeaders(rules, context, &lines);
  out.append(lines);
}

bool setValue(const config::HeaderRules& rules, std::string_view name, const RuleContext& context,
              std::string* value) {
  for (const auto& [set_name, text] : rules.set) {
    if (!http::equalsIgnoreCase(set_name, name)) continue;
    value->clear();
    expandTemplate(text, context, value);
    return true;
  }
  return false;
}

}  // namespace sluice::proxy
