#include "http/framing.h"

namespace sluice::http {

void appendChunk(std::string_view data, Buffer& out) {
  if (data.empty()) return;
  static constexpr char kHex[] = "0123456789abcdef";
  char size[18];
  size_t i = sizeof size;
  size[--i] = '\n';
  size[--i] = '\r';
  uint64_t n = data.size();
  do {
    size[--i] = kHex[n & 0xf];
    n >>= 4;
  } while (n != 0);
  out.append(size + i, sizeof size - i);
  out.append(data);
  out.append("\r\n", 2);
}

void appendLastChunk(const std::vector<Header>& trailers, bool (*keep)(std::string_view name),
                     Buffer& out) {
  out.append("0\r\n", 3);
  for (const Header& field : trailers) {
    if (keep != nullptr && !keep(field.name)) continue;
    if (hasControlChar(field.value)) continue;  // the parsers refuse it; never split a line
    out.append(field.name);
    out.append(": ", 2);
    out.append(field.value);
    out.append("\r\n", 2);
  }
  out.append("\r\n", 2);
}

void appendDecimal(uint64_t n, Buffer& out) {
  char digits[20];
  size_t i = sizeof digits;
  do {
    digits[--i] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n != 0);
  out.append(digits + i, sizeof digits - i);
}

}  // namespace sluice::http
