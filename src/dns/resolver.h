// Resolver: asynchronous DNS lookups (A and AAAA) on an event loop, with
// c-ares underneath: its sockets are registered with the loop, its retries
// and timeouts run on a loop timer, so no lookup ever blocks the loop.
// Settings come from `resolver:` (docs/upstreams.md); without servers
// c-ares reads /etc/resolv.conf (nameservers, search, ndots — as container
// runtimes and Kubernetes write it) and /etc/hosts. Owned by whoever
// resolves (the master's DnsUpdater); single-threaded.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "event/event_loop.h"
#include "event/timer.h"
#include "net/address.h"

struct ares_channeldata;
struct ares_addrinfo;

namespace sluice::dns {

struct Answer {
  bool ok = false;
  std::string error;                    // when !ok: what c-ares said
  std::vector<net::Address> addresses;  // with the port asked for, sorted, no duplicates
  uint32_t ttl_seconds = 0;             // the smallest TTL of the records
};

struct Settings {
  std::vector<net::Address> servers;  // empty = /etc/resolv.conf
  event::Duration timeout{2000};      // per try
  uint32_t attempts = 2;
};

class Resolver {
 public:
  using Callback = std::function<void(const Answer&)>;
  // Null with *error set when c-ares cannot start (no resolv.conf and no
  // servers, bad server list).
  static std::unique_ptr<Resolver> create(event::EventLoop& loop, const Settings& settings,
                                          std::string* error);
  // Pending lookups are dropped without calling their callbacks.
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Looks `name` up; `done` runs later on the loop (never from inside this
  // call), exactly once unless the resolver is destroyed first.
  void resolve(const std::string& name, uint16_t port, Callback done);
  size_t pending() const { return pending_; }

 private:
  class SocketWatch;
  struct Lookup;
  Resolver(event::EventLoop& loop);
  static void onSocketState(void* data, int fd, int readable, int writable);
  static void onAnswer(void* arg, int status, int timeouts, ares_addrinfo* result);
  void process(int read_fd, int write_fd);
  void rearmTimer();

  event::EventLoop& loop_;
  ares_channeldata* channel_ = nullptr;
  event::Timer timer_;
  std::unordered_map<int, std::unique_ptr<SocketWatch>> sockets_;
  size_t pending_ = 0;
  bool destroying_ = false;
};

}  // namespace sluice::dns
