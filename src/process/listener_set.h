// ListenerSet: the master's listening sockets, keyed by canonical address.
// Across reloads an address that stays keeps the very same fd (never closed
// or rebound: rebinding loses the connections queued on the old socket);
// added addresses are bound, removed ones closed. A reload is two-phase:
// prepare() binds what the new config adds and closes nothing; once the new
// generation serves, commit() closes what it dropped; if it fails to start,
// rollback() closes what prepare() bound — the set is then exactly as before
// and the serving generation (and any worker respawned into it) keeps valid
// fds. Owned by the master.
//
// A TCP listener with `reuse_port` (the default, where the kernel balances:
// Linux, FreeBSD) has one socket per worker slot in one SO_REUSEPORT group:
// the kernel spreads new connections across the slots by a hash of the
// connection, so no worker takes them all by being the quicker to wake. The
// master holds every slot's socket, so a slot's queue survives its worker
// (a respawn, or the next generation's worker of that slot, accepts what
// queued meanwhile). Other listeners (unix, `reuse_port: false`, admin) are
// one socket that every worker accepts from.
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

  // What each worker slot listens on: (*fds_by_slot)[slot] holds one fd per
  // config listener, in config order, then the admin listener's.
  using SlotFds = std::vector<std::vector<int>>;

  // Makes the set match the config's listeners plus its admin listener, for
  // `slots` workers: reuses fds for addresses already bound, binds the new
  // ones (and slot sockets for slots added). On success closes the fds no
  // longer named and fills `fds_by_slot`. On failure (a bind error) nothing
  // changes: fds bound by this call are closed, and *error says why.
  bool reconcile(const config::Config& config, uint32_t slots, SlotFds* fds_by_slot,
                 std::string* error);

  // Phase one of a reload: `fds_by_slot` as reconcile() gives them, but only
  // what is new is bound and nothing is closed until commit(). One prepared
  // change at a time. False (nothing changed, *error says why) on a bind error.
  bool prepare(const config::Config& config, uint32_t slots, SlotFds* fds_by_slot,
               std::string* error);
  // The prepared config now serves: close the fds it no longer names.
  void commit();
  // The prepared config did not start: close what prepare() bound.
  void rollback();
  bool hasPrepared() const { return prepared_; }

  void closeAll();
  std::vector<int> allFds() const;

 private:
  struct Entry {
    // One fd (shared by all slots), or one per slot (an SO_REUSEPORT group).
    std::vector<int> fds;
    bool per_slot = false;
    config::Listener listener;  // address and name, for unlinking unix sockets
  };
  // Closes the fds of `from` that `keep` (if any) does not hold; without
  // `keep` the address is gone (logged as `why` unless null).
  static void closeDropped(const Entry& from, const Entry* keep, const char* why);
  std::map<std::string, Entry> by_address_;
  // Between prepare() and commit()/rollback(): the next set.
  bool prepared_ = false;
  std::map<std::string, Entry> next_;
};

}  // namespace sluice::process
