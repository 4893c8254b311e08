// ListenerSet: the master's listening sockets, keyed by canonical address.
// Across reloads an address that stays keeps the very same fd (never closed
// or rebound: rebinding loses the connections queued on the old socket);
// added addresses are bound, removed ones closed. Owned by the master.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "config/config.h"

namespace sluice::process {

class ListenerSet {
 public:
  ListenerSet() = default;
  ~ListenerSet();
  ListenerSet(const ListenerSet&) = delete;
  ListenerSet& operator=(const ListenerSet&) = delete;

  // Makes the set match the config's listeners plus its admin listener:
  // reuses fds for addresses already bound, binds the new ones. On success
  // closes the fds no longer named and fills `fds` in that order (admin
  // last). On failure (a bind error) nothing changes: fds bound by this call
  // are closed, and *error says why.
  bool reconcile(const config::Config& config, std::vector<int>* fds, std::string* error);
  void closeAll();
  std::vector<int> allFds() const;

 private:
  struct Entry {
    int fd;
    config::Listener listener;  // address and name, for unlinking unix sockets
  };
  std::map<std::string, Entry> by_address_;
};

}  // namespace sluice::process
