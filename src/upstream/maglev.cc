#include "upstream/maglev.h"

#include <algorithm>

namespace sluice::upstream {

uint64_t MaglevBalancer::hash(std::string_view data, uint64_t seed) {
  uint64_t h = 14695981039346656037ULL ^ (seed * 0x9e3779b97f4a7c15ULL);
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

MaglevBalancer::MaglevBalancer(const std::vector<Host*>& hosts, uint32_t table_size)
    : hosts_(hosts) {
  if (hosts_.empty()) return;
  const uint64_t size = table_size;
  struct Permutation {
    uint64_t offset;
    uint64_t skip;
    uint64_t next = 0;    // how far along its permutation the host is
    uint64_t filled = 0;  // slots it owns
  };
  std::vector<Permutation> perms;
  perms.reserve(hosts_.size());
  uint32_t max_weight = 1;
  for (const Host* host : hosts_) {
    // The address (not the position in the config) names a host, so that
    // removing one server does not reshuffle the others.
    perms.push_back(
        {hash(host->address_text, 1) % size, hash(host->address_text, 2) % (size - 1) + 1});
    max_weight = std::max(max_weight, host->weight);
  }
  constexpr uint32_t kEmpty = UINT32_MAX;
  table_.assign(size, kEmpty);
  uint64_t placed = 0;
  // Weighted Maglev as Envoy does it: in round `round`, host i takes a turn
  // only while filled_i × max_weight < round × weight_i.
  for (uint64_t round = 1; placed < size; ++round) {
    for (size_t i = 0; i < hosts_.size() && placed < size; ++i) {
      Permutation& p = perms[i];
      if (p.filled * max_weight >= round * hosts_[i]->weight) continue;
      uint64_t slot = (p.offset + p.skip * p.next) % size;
      while (table_[slot] != kEmpty) {
        ++p.next;
        slot = (p.offset + p.skip * p.next) % size;
      }
      table_[slot] = static_cast<uint32_t>(i);
      ++p.next;
      ++p.filled;
      ++placed;
    }
  }
}

const Host* MaglevBalancer::owner(std::string_view key) const {
  if (table_.empty()) return nullptr;
  return hosts_[table_[hash(key) % table_.size()]];
}

bool MaglevBalancer::usable(const Host& host, const PickContext& context, bool healthy_only) const {
  if (context.tried != nullptr && context.tried->contains(host.cluster_index)) return false;
  return !healthy_only || host.health == HealthState::kHealthy;
}

Host* MaglevBalancer::pick(const PickContext& context) {
  if (table_.empty()) return nullptr;
  const size_t size = table_.size();
  const size_t start =
      context.hash_key.empty() ? (next_keyless_++ % size) : hash(context.hash_key) % size;
  // Walking on from the key's slot keeps a retry (or a key whose host is
  // out) as stable as the first pick: the same next host every time.
  for (bool healthy_only : {true, false}) {
    // Slots are spread evenly, so a few hosts' worth of steps finds any
    // usable host; the bound only matters if none is.
    for (size_t step = 0; step < size; ++step) {
      Host* host = hosts_[table_[(start + step) % size]];
      if (usable(*host, context, healthy_only)) return host;
      if (step > 64 * hosts_.size()) break;
    }
    for (Host* host : hosts_) {
      if (usable(*host, context, healthy_only)) return host;
    }
  }
  return nullptr;
}

}  // namespace sluice::upstream
