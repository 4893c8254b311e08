#include "net/preface_transport.h"

namespace sluice::net {

IoResult PrefaceTransport::handshake() {
  if (!inner_done_) {
    IoResult r = inner_->handshake();
    if (!r.isOk()) return r;
    inner_done_ = true;
  }
  while (!preface_.empty()) {
    IoResult r = inner_->write(preface_);
    if (!r.isOk()) return r;
  }
  preface_.releaseIfEmpty();
  return IoResult::ok(0);
}

}  // namespace sluice::net
