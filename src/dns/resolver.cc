#include "dns/resolver.h"

#include <ares.h>
#include <netinet/in.h>
#include <poll.h>

#include <algorithm>
#include <mutex>

namespace sluice::dns {
namespace {

std::once_flag library_once;

}  // namespace

class Resolver::SocketWatch final : public event::IoHandler, public event::DeferredDeletable {
 public:
  SocketWatch(Resolver& resolver, int fd) : resolver_(resolver), fd_(fd) {}
  void onReady(uint32_t ready) override {
    if (ready & (event::kReadable | event::kError)) {
      // Edge-triggered: c-ares reads what one call gives it; keep calling
      // while the socket still has data (bounded: DNS traffic is small).
      for (int i = 0; i < 64; ++i) {
        resolver_.process(fd_, ARES_SOCKET_BAD);
        if (resolver_.sockets_.find(fd_) == resolver_.sockets_.end()) return;  // closed by c-ares
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 0) <= 0 || (p.revents & (POLLIN | POLLERR | POLLHUP)) == 0) break;
      }
    }
    if ((ready & event::kWritable) && resolver_.sockets_.count(fd_) != 0) {
      resolver_.process(ARES_SOCKET_BAD, fd_);
    }
  }

 private:
  Resolver& resolver_;
  int fd_;
};

struct Resolver::Lookup {
  Resolver* resolver;
  uint16_t port;
  Callback done;
};

Resolver::Resolver(event::EventLoop& loop)
    : loop_(loop), timer_(loop.timers(), [this] { process(ARES_SOCKET_BAD, ARES_SOCKET_BAD); }) {}

std::unique_ptr<Resolver> Resolver::create(event::EventLoop& loop, const Settings& settings,
                                           std::string* error) {
  std::call_once(library_once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
  std::unique_ptr<Resolver> resolver(new Resolver(loop));
  ares_options options{};
  options.timeout = static_cast<int>(std::max<int64_t>(settings.timeout.count(), 1));
  options.tries = static_cast<int>(settings.attempts);
  options.sock_state_cb = &Resolver::onSocketState;
  options.sock_state_cb_data = resolver.get();
  const int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB;
  int status = ares_init_options(&resolver->channel_, &options, mask);
  if (status != ARES_SUCCESS) {
    *error = std::string("cannot start the DNS resolver: ") + ares_strerror(status);
    resolver->channel_ = nullptr;
    return nullptr;
  }
  if (!settings.servers.empty()) {
    std::string csv;
    for (const net::Address& server : settings.servers) {
      if (!csv.empty()) csv += ',';
      csv += server.toString();
    }
    status = ares_set_servers_ports_csv(resolver->channel_, csv.c_str());
    if (status != ARES_SUCCESS) {
      *error = "resolver.addresses " + csv + ": " + ares_strerror(status);
      return nullptr;
    }
  }
  return resolver;
}

Resolver::~Resolver() {
  destroying_ = true;
  timer_.cancel();
  if (channel_ != nullptr) ares_destroy(channel_);  // calls back with ARES_EDESTRUCTION
  for (auto& [fd, watch] : sockets_)
    loop_.removeFd(fd);
}

void Resolver::resolve(const std::string& name, uint16_t port, Callback done) {
  ares_addrinfo_hints hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  // No RFC 6724 sorting: it connects a UDP socket per address to find the
  // source; sluice sorts the answer itself, and balances over all of it.
  hints.ai_flags = ARES_AI_NOSORT;
  ++pending_;
  auto* lookup = new Lookup{this, port, std::move(done)};
  ares_getaddrinfo(channel_, name.c_str(), nullptr, &hints, &Resolver::onAnswer, lookup);
  rearmTimer();
}

void Resolver::onAnswer(void* arg, int status, int /*timeouts*/, ares_addrinfo* result) {
  std::unique_ptr<Lookup> lookup(static_cast<Lookup*>(arg));
  Resolver& self = *lookup->resolver;
  --self.pending_;
  if (self.destroying_ || status == ARES_EDESTRUCTION) {
    if (result != nullptr) ares_freeaddrinfo(result);
    return;
  }
  Answer answer;
  if (status != ARES_SUCCESS || result == nullptr) {
    answer.error = ares_strerror(status);
  } else {
    answer.ok = true;
    int ttl = -1;
    for (ares_addrinfo_node* node = result->nodes; node != nullptr; node = node->ai_next) {
      if (node->ai_family != AF_INET && node->ai_family != AF_INET6) continue;
      net::Address address = net::Address::fromSockaddr(node->ai_addr, node->ai_addrlen);
      answer.addresses.push_back(address.withPort(lookup->port));
      if (ttl < 0 || node->ai_ttl < ttl) ttl = node->ai_ttl;
    }
    answer.ttl_seconds = ttl > 0 ? static_cast<uint32_t>(ttl) : 0;
    std::sort(
        answer.addresses.begin(), answer.addresses.end(),
        [](const net::Address& a, const net::Address& b) { return a.toString() < b.toString(); });
    answer.addresses.erase(std::unique(answer.addresses.begin(), answer.addresses.end()),
                           answer.addresses.end());
    if (answer.addresses.empty()) {
      answer.ok = false;
      answer.error = "no A or AAAA records";
    }
  }
  if (result != nullptr) ares_freeaddrinfo(result);
  // Not from inside c-ares: the callback may destroy or reuse the resolver.
  self.loop_.defer([done = std::move(lookup->done), answer = std::move(answer)] { done(answer); });
}

void Resolver::onSocketState(void* data, int fd, int readable, int writable) {
  auto& self = *static_cast<Resolver*>(data);
  auto it = self.sockets_.find(fd);
  if (readable == 0 && writable == 0) {
    // c-ares closes the socket right after this call.
    if (it == self.sockets_.end()) return;
    self.loop_.removeFd(fd);
    if (!self.destroying_) self.loop_.deferDelete(std::move(it->second));
    self.sockets_.erase(it);
    return;
  }
  if (it != self.sockets_.end()) return;  // registered for both directions already
  auto watch = std::make_unique<SocketWatch>(self, fd);
  if (self.loop_.addFd(fd, watch.get()) != 0) return;  // c-ares times the query out
  self.sockets_.emplace(fd, std::move(watch));
  // Edge-triggered: anything that arrived before registration has no edge.
  self.loop_.addPending(fd, event::kReadable);
}

void Resolver::process(int read_fd, int write_fd) {
  ares_process_fd(channel_, read_fd, write_fd);
  rearmTimer();
}

void Resolver::rearmTimer() {
  if (destroying_) return;
  timeval max{60, 0};
  timeval tv{};
  if (pending_ == 0 || ares_timeout(channel_, &max, &tv) == nullptr) {
    timer_.cancel();
    return;
  }
  timer_.arm(event::Duration(tv.tv_sec * 1000 + tv.tv_usec / 1000 + 1));
}

}  // namespace sluice::dns
