#include "config/config.h"

namespace sluice::config {

const Upstream* Config::findUpstream(const std::string& name) const {
  // Configs hold a handful of upstreams, and a hot path should resolve names
  // once when it builds its tables; a linear scan keeps the struct plain.
  for (const Upstream& upstream : upstreams) {
    if (upstream.name == name) return &upstream;
  }
  return nullptr;
}

}  // namespace sluice::config
