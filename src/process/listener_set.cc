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
  if (!prepare(config, fds, error)) return false;
  commit();
  return true;
}

bool ListenerSet::prepare(const config::Config& config, std::vector<int>* fds, std::string* error) {
  if (prepared_) rollback();  // never two at once; the master does not do it
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
  prepared_ = true;
  next_ = std::move(next);
  bound_by_prepare_ = std::move(bound_now);
  return true;
}

void ListenerSet::commit() {
  if (!prepared_) return;
  for (auto& [key, entry] : by_address_) {
    if (next_.count(key) == 0) {
      SLUICE_LOG(kInfo, "no longer listening on " + key);
      closeListener(entry.fd, entry.listener);
    }
  }
  by_address_ = std::move(next_);
  next_.clear();
  bound_by_prepare_.clear();
  prepared_ = false;
}

void ListenerSet::rollback() {
  if (!prepared_) return;
  for (const std::string& key : bound_by_prepare_) {
    const Entry& entry = next_[key];
    SLUICE_LOG(kInfo, "not listening on " + key + " after all (reload failed)");
    closeListener(entry.fd, entry.listener);
  }
  next_.clear();
  bound_by_prepare_.clear();
  prepared_ = false;
}

void ListenerSet::closeAll() {
  rollback();
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
