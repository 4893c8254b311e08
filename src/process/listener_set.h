// ListenerSet: the master's listening sockets, keyed by canonical address.
// Across reloads an address that stays keeps the very same fd (never closed
// or rebound: rebinding loses the connections queued on the old socket);
// added addresses are bound, removed ones closed. A reload is two-phase:
// prepare() binds what the new config adds and closes nothing; once the new
// generation serves, commit() closes what it dropped; if it fails to start,
// rollback() closes what prepare() bound — the set is then exactly as before
// and the serving generation (and any worker respawned into it) keeps valid
// fds. Owned by the master.
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

  // Phase one of a reload: `fds` as reconcile() gives them, but only new
  // addresses are bound and nothing is closed until commit(). One prepared
  // change at a time. False (nothing changed, *error says why) on a bind error.
  bool prepare(const config::Config& config, std::vector<int>* fds, std::string* error);
  // The prepared config now serves: close the fds it no longer names.
  void commit();
  // The prepared config did not start: close what prepare() bound.
  void rollback();
  bool hasPrepared() const { return prepared_; }

  void closeAll();
  std::vector<int> allFds() const;

 private:
  struct Entry {
    int fd;
    config::Listener listener;  // address and name, for unlinking unix sockets
  };
  std::map<std::string, Entry> by_address_;
  // Between prepare() and commit()/rollback(): the next set, and the keys
  // prepare() bound (in `next_` only).
  bool prepared_ = false;
  std::map<std::string, Entry> next_;
  std::vector<std::string> bound_by_prepare_;
};

}  // namespace sluice::process
