#include "process/counter_region.h"

#include <sys/mman.h>

#include <new>

#include "process/shared_state.h"

namespace sluice::process {
namespace {

static_assert(sizeof(observe::WorkerCounters) % observe::kCacheLine == 0);
static_assert(sizeof(observe::RouteCounters) % observe::kCacheLine == 0);
static_assert(sizeof(observe::ServerCounters) % observe::kCacheLine == 0);
static_assert(sizeof(upstream::ServerHealth) % observe::kCacheLine == 0);

template <typename Counters>
void zeroGauges(Counters& counters) {
  for (const observe::CounterField& field : Counters::fields()) {
    if (field.cumulative) continue;
    auto* gauge =
        reinterpret_cast<observe::Gauge*>(reinterpret_cast<char*>(&counters) + field.offset);
    gauge->store(0, std::memory_order_relaxed);
  }
}

}  // namespace

std::unique_ptr<CounterRegion> CounterRegion::create(uint32_t slots, size_t routes,
                                                     size_t servers) {
  const size_t slot_bytes = sizeof(observe::WorkerCounters) +
                            routes * sizeof(observe::RouteCounters) +
                            servers * sizeof(observe::ServerCounters);
  const size_t bytes = slot_bytes * (slots == 0 ? 1 : slots) +
                       servers * sizeof(upstream::ServerHealth) + observe::kCacheLine +
                       servers * sizeof(upstream::ResolvedSlot);
  void* memory = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return nullptr;
  std::unique_ptr<CounterRegion> region(new CounterRegion(memory, bytes, slots, routes, servers));
  // The pages are zero already; construct the atomics in place all the same
  // (their lifetime has to begin somewhere for the C++ object model).
  for (uint32_t slot = 0; slot < slots; ++slot) {
    char* base = region->slotBase(slot);
    new (base) observe::WorkerCounters();
    base += sizeof(observe::WorkerCounters);
    new (base) observe::RouteCounters[routes];
    base += routes * sizeof(observe::RouteCounters);
    new (base) observe::ServerCounters[servers];
  }
  new (region->slotBase(slots)) upstream::ServerHealth[servers];
  char* table = region->slotBase(slots) + servers * sizeof(upstream::ServerHealth);
  new (table) std::atomic<uint64_t>(0);
  new (table + observe::kCacheLine) upstream::ResolvedSlot[servers];
  return region;
}

CounterRegion::CounterRegion(void* memory, size_t bytes, uint32_t slots, size_t routes,
                             size_t servers)
    : memory_(memory),
      bytes_(bytes),
      slot_bytes_(sizeof(observe::WorkerCounters) + routes * sizeof(observe::RouteCounters) +
                  servers * sizeof(observe::ServerCounters)),
      slots_(slots),
      routes_(routes),
      servers_(servers) {}

CounterRegion::~CounterRegion() {
  ::munmap(memory_, bytes_);
}

observe::WorkerCounters& CounterRegion::worker(uint32_t slot) const {
  return *std::launder(reinterpret_cast<observe::WorkerCounters*>(slotBase(slot)));
}

observe::RouteCounters* CounterRegion::routeCounters(uint32_t slot) const {
  return std::launder(
      reinterpret_cast<observe::RouteCounters*>(slotBase(slot) + sizeof(observe::WorkerCounters)));
}

observe::ServerCounters* CounterRegion::serverCounters(uint32_t slot) const {
  return std::launder(reinterpret_cast<observe::ServerCounters*>(
      slotBase(slot) + sizeof(observe::WorkerCounters) + routes_ * sizeof(observe::RouteCounters)));
}

upstream::ServerHealth* CounterRegion::serverHealth() const {
  return std::launder(reinterpret_cast<upstream::ServerHealth*>(slotBase(slots_)));
}

upstream::AddressTable CounterRegion::addressTable() const {
  char* table = slotBase(slots_) + servers_ * sizeof(upstream::ServerHealth);
  return {std::launder(reinterpret_cast<std::atomic<uint64_t>*>(table)),
          std::launder(reinterpret_cast<upstream::ResolvedSlot*>(table + observe::kCacheLine))};
}

int64_t CounterRegion::serverInFlight(size_t index) const {
  int64_t total = 0;
  for (uint32_t slot = 0; slot < slots_; ++slot)
    total += serverCounters(slot)[index].in_flight.load(std::memory_order_relaxed);
  return total;
}

void CounterRegion::resetGauges(uint32_t slot) const {
  zeroGauges(worker(slot));
  for (size_t i = 0; i < routes_; ++i)
    zeroGauges(routeCounters(slot)[i]);
  for (size_t i = 0; i < servers_; ++i)
    zeroGauges(serverCounters(slot)[i]);
}

void CounterRegion::addWorkerTotalsTo(observe::WorkerCounters* totals) const {
  for (const observe::CounterField& field : observe::WorkerCounters::fields()) {
    if (!field.cumulative) continue;
    uint64_t sum = 0;
    for (uint32_t slot = 0; slot < slots_; ++slot) {
      const auto* counter = reinterpret_cast<const observe::Counter*>(
          reinterpret_cast<const char*>(&worker(slot)) + field.offset);
      sum += counter->load(std::memory_order_relaxed);
    }
    auto* total =
        reinterpret_cast<observe::Counter*>(reinterpret_cast<char*>(totals) + field.offset);
    total->fetch_add(sum, std::memory_order_relaxed);
  }
}

void CounterRegion::setLabelSets(std::vector<uint32_t> routes, std::vector<uint32_t> servers) {
  route_sets_ = std::move(routes);
  server_sets_ = std::move(servers);
  route_sets_.resize(routes_, SharedState::kNoLabelSet);
  server_sets_.resize(servers_, SharedState::kNoLabelSet);
}

namespace {

template <typename Counters>
void foldInto(const Counters* per_slot_base, uint32_t set, LabelSet* sets, uint64_t mask) {
  if (set == SharedState::kNoLabelSet) return;
  uint64_t words[LabelSet::kCarriedWords] = {};
  observe::addWords(*per_slot_base, mask, false, words);
  for (size_t i = 0; i < observe::kWordsOf<Counters>; ++i) {
    if (words[i] != 0) sets[set].carried[i].fetch_add(words[i], std::memory_order_relaxed);
  }
}

}  // namespace

void CounterRegion::addKeyedTotalsTo(LabelSet* sets) const {
  const uint64_t route_mask = observe::gaugeMask<observe::RouteCounters>();
  const uint64_t server_mask = observe::gaugeMask<observe::ServerCounters>();
  for (uint32_t slot = 0; slot < slots_; ++slot) {
    for (size_t i = 0; i < routes_ && i < route_sets_.size(); ++i)
      foldInto(&routeCounters(slot)[i], route_sets_[i], sets, route_mask);
    for (size_t i = 0; i < servers_ && i < server_sets_.size(); ++i)
      foldInto(&serverCounters(slot)[i], server_sets_[i], sets, server_mask);
  }
}

}  // namespace sluice::process
