// MemoryConnector: an upstream::Connector for unit tests that hands out
// in-memory transports instead of sockets, and keeps the far end of each so
// the test can play the upstream server: read what the proxy sent, answer,
// close, reset. Header-only; owned by the test.
#pragma once

#include <cerrno>
#include <deque>
#include <map>
#include <memory>
#include <string>

#include "net/memory_transport.h"
#include "net/preface_transport.h"
#include "upstream/connector.h"

namespace sluice::testing {

class MemoryConnector final : public upstream::Connector {
 public:
  std::unique_ptr<net::Transport> connect(const net::Address& address,
                                          const std::string& /*dns_name*/, Buffer preface,
                                          int* error) override {
    ++attempts_[address.toString()];
    if (refuse_.count(address.toString()) != 0) {
      *error = ECONNREFUSED;
      return nullptr;
    }
    auto pair = net::MemoryTransport::makePair(capacity_);
    if (hold_handshakes_) pair.first->holdHandshake();
    servers_.push_back(Server{address.toString(), std::move(pair.second), pair.first.get()});
    if (preface.empty()) return std::move(pair.first);
    return std::make_unique<net::PrefaceTransport>(std::move(pair.first), std::move(preface));
  }

  struct Server {
    std::string address;
    std::unique_ptr<net::MemoryTransport> end;  // the test's side
    net::MemoryTransport* proxy_end;            // owned by the proxy's connection
  };

  void refuse(const std::string& address) { refuse_.insert({address, true}); }
  void accept(const std::string& address) { refuse_.erase(address); }
  // New connections wait in their handshake until the test completes it
  // through proxy_end->completeHandshake() (a connect in progress).
  void holdHandshakes(bool hold) { hold_handshakes_ = hold; }
  void setCapacity(size_t bytes) { capacity_ = bytes; }
  size_t connections() const { return servers_.size(); }
  int attempts(const std::string& address) const {
    auto it = attempts_.find(address);
    return it == attempts_.end() ? 0 : it->second;
  }
  Server& server(size_t index) { return servers_[index]; }
  Server& last() { return servers_.back(); }

 private:
  std::deque<Server> servers_;
  std::map<std::string, bool> refuse_;
  std::map<std::string, int> attempts_;
  bool hold_handshakes_ = false;
  size_t capacity_ = 1 << 20;
};

}  // namespace sluice::testing
