#include "process/listener_set.h"

#include <unistd.h>

#include "core/log.h"
#include "net/socket.h"

namespace sluice::process {
namespace {

constexpr int kListenBacklog = 4096;

void closeListener(int fd, const config::Listener& listener) {
  ::close(fd);
  if (listener.address.family() == net::Address::Family::kUnix) {
    ::unlink(listener.address.path().c_str());
  }
}

}  // namespace

ListenerSet::~ListenerSet() {
  closeAll();
}

bool ListenerSet::reconcile(const config::Config& config, std::vector<int>* fds,
                            std::string* error) {
  std::map<std::string, Entry> next;
  std::vector<std::string> bound_now;
  fds->clear();
  std::vector<config::Listener> wanted = config.listeners;
  if (config.admin_address) {
    config::Listener admin;
    admin.name = "admin";
    admin.address = *config.admin_address;
    wanted.push_back(std::move(admin));
  }
  for (const config::Listener& listener : wanted) {
    std::string key = listener.address.toString();
    auto existing = by_address_.find(key);
    int fd;
    if (existing != by_address_.end()) {
      fd = existing->second.fd;
    } else {
      fd = net::listenOn(listener.address, kListenBacklog, error);
      if (fd < 0) {
        *error = "listener " + listener.name + ": " + *error;
        for (const std::string& added : bound_now)
          closeListener(next[added].fd, next[added].listener);
        fds->clear();
        return false;
      }
      bound_now.push_back(key);
      SLUICE_LOG(kInfo,
                 "listening on " + net::localAddress(fd).toString() + " (" + listener.name + ")");
    }
    next[key] = Entry{fd, listener};
    fds->push_back(fd);
  }
  for (auto& [key, entry] : by_address_) {
    if (next.count(key) == 0) {
      SLUICE_LOG(kInfo, "no longer listening on " + key);
      closeListener(entry.fd, entry.listener);
    }
  }
  by_address_ = std::move(next);
  return true;
}

void ListenerSet::closeAll() {
  for (auto& [key, entry] : by_address_)
    closeListener(entry.fd, entry.listener);
  by_address_.clear();
}

std::vector<int> ListenerSet::allFds() const {
  std::vector<int> fds;
  for (const auto& [key, entry] : by_address_)
    fds.push_back(entry.fd);
  return fds;
}

}  // namespace sluice::process
