#include "core/text.h"

namespace sluice {

std::string quote(std::string_view text) {
  // Appended piecewise: GCC 12 -Wrestrict misfires on "\"" + std::string.
  std::string out;
  out.reserve(text.size() + 2);
  out += '"';
  out += text;
  out += '"';
  return out;
}

}  // namespace sluice
