#include "process/listener_set.h"

#include <unistd.h>

#include <algorithm>

#include "core/log.h"
#include "net/socket.h"

namespace sluice::process {
namespace {

constexpr int kListenBacklog = 4096;

bool holds(const std::vector<int>& fds, int fd) {
  return std::find(fds.begin(), fds.end(), fd) != fds.end();
}

bool wantsSlotSockets(const config::Listener& listener) {
  return listener.reuse_port && net::canBalanceListeners() &&
         listener.address.family() != net::Address::Family::kUnix;
}

}  // namespace

ListenerSet::~ListenerSet() {
  closeAll();
}

void ListenerSet::closeDropped(const Entry& from, const Entry* keep, const char* why) {
  bool closed_any = false;
  for (int fd : from.fds) {
    if (keep && holds(keep->fds, fd)) continue;
    ::close(fd);
    closed_any = true;
  }
  if (keep) return;  // the address stays: only surplus slot sockets went
  if (closed_any && why)
    SLUICE_LOG(kInfo, std::string(why) + " " + from.listener.address.toString());
  if (from.listener.address.family() == net::Address::Family::kUnix) {
    ::unlink(from.listener.address.path().c_str());
  }
}

bool ListenerSet::reconcile(const config::Config& config, uint32_t slots, SlotFds* fds_by_slot,
                            std::string* error) {
  if (!prepare(config, slots, fds_by_slot, error)) return false;
  commit();
  return true;
}

bool ListenerSet::prepare(const config::Config& config, uint32_t slots, SlotFds* fds_by_slot,
                          std::string* error) {
  if (prepared_) rollback();  // never two at once; the master does not do it
  slots = std::max<uint32_t>(slots, 1);
  std::map<std::string, Entry> next;
  fds_by_slot->assign(slots, {});
  std::vector<config::Listener> wanted = config.listeners;
  if (config.admin_address) {
    config::Listener admin;
    admin.name = "admin";
    admin.address = *config.admin_address;
    admin.reuse_port = false;  // one socket: any worker answers the admin API
    wanted.push_back(std::move(admin));
  }
  // On a bind error, undo what this call bound: what `next` holds that the
  // current set does not.
  auto fail = [&](const config::Listener& listener) {
    *error = "listener " + listener.name + ": " + *error;
    for (auto& [key, entry] : next) {
      auto current = by_address_.find(key);
      closeDropped(entry, current == by_address_.end() ? nullptr : &current->second,
                   "not listening on");
    }
    fds_by_slot->clear();
    return false;
  };
  for (const config::Listener& listener : wanted) {
    std::string key = listener.address.toString();
    Entry entry;
    entry.listener = listener;
    auto existing = by_address_.find(key);
    if (existing != by_address_.end()) {
      // An address that stays keeps its sockets, and how they are shared:
      // a shared socket cannot join an SO_REUSEPORT group, nor the reverse,
      // without unbinding (losing what is queued).
      entry.per_slot = existing->second.per_slot;
      entry.fds = existing->second.fds;
      if (entry.per_slot != wantsSlotSockets(listener)) {
        SLUICE_LOG(kWarn, "listener " + listener.name +
                              ": a change of reuse_port takes effect at the next restart");
      }
    } else {
      entry.per_slot = wantsSlotSockets(listener);
    }
    const size_t sockets = entry.per_slot ? slots : 1;
    if (entry.fds.size() > sockets) entry.fds.resize(sockets);  // commit() closes the rest
    while (entry.fds.size() < sockets) {
      const bool first = entry.fds.empty();
      net::ListenSharing sharing = !entry.per_slot ? net::ListenSharing::kExclusive
                                   : first         ? net::ListenSharing::kBalancedFirst
                                                   : net::ListenSharing::kBalancedMember;
      // Port 0: the group's first socket picked a port; the others join it.
      net::Address address = first ? listener.address : net::localAddress(entry.fds.front());
      int fd = net::listenOn(address, kListenBacklog, error, sharing);
      if (fd < 0) {
        next[key] = std::move(entry);
        return fail(listener);
      }
      entry.fds.push_back(fd);
      if (first) {
        SLUICE_LOG(kInfo, "listening on " + net::localAddress(fd).toString() + " (" +
                              listener.name + ")" +
                              (entry.per_slot ? ", one socket per worker" : ""));
      }
    }
    for (uint32_t slot = 0; slot < slots; ++slot)
      (*fds_by_slot)[slot].push_back(entry.fds[entry.per_slot ? slot : 0]);
    next[key] = std::move(entry);
  }
  prepared_ = true;
  next_ = std::move(next);
  return true;
}

void ListenerSet::commit() {
  if (!prepared_) return;
  for (auto& [key, entry] : by_address_) {
    auto kept = next_.find(key);
    closeDropped(entry, kept == next_.end() ? nullptr : &kept->second, "no longer listening on");
  }
  by_address_ = std::move(next_);
  next_.clear();
  prepared_ = false;
}

void ListenerSet::rollback() {
  if (!prepared_) return;
  for (auto& [key, entry] : next_) {
    auto current = by_address_.find(key);
    closeDropped(entry, current == by_address_.end() ? nullptr : &current->second,
                 "not listening after all (reload failed) on");
  }
  next_.clear();
  prepared_ = false;
}

void ListenerSet::closeAll() {
  rollback();
  for (auto& [key, entry] : by_address_)
    closeDropped(entry, nullptr, nullptr);
  by_address_.clear();
}

std::vector<int> ListenerSet::allFds() const {
  std::vector<int> fds;
  for (const auto& [key, entry] : by_address_)
    fds.insert(fds.end(), entry.fds.begin(), entry.fds.end());
  return fds;
}

}  // namespace sluice::process
