// Small text helpers shared by modules that build user-facing messages.
// Free functions; no state.
#pragma once

#include <string>
#include <string_view>

namespace sluice {

// `text` in double quotes, for error messages: `"127.0.0.1:99999"`.
std::string quote(std::string_view text);

}  // namespace sluice
