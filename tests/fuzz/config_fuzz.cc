// libFuzzer target: the config loader on arbitrary text. It must never throw
// or crash, and every error must name the file.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  sluice::config::LoadResult result = sluice::config::loadConfigText(text, "fuzz.yaml");
  if (!result.ok() && result.errors.empty()) std::abort();
  for (const std::string& error : result.errors) {
    if (error.rfind("fuzz.yaml", 0) != 0) std::abort();
  }
  return 0;
}
