#include "process/config_watcher.h"

#include <unistd.h>
#ifdef __linux__
#include <sys/inotify.h>
#endif

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/log.h"

namespace sluice::process {
namespace {

constexpr event::Duration kSettleDelay{250};
constexpr event::Duration kPollInterval{1000};

}  // namespace

ConfigWatcher::ConfigWatcher(event::EventLoop& loop, std::string path,
                             std::function<void()> on_change)
    : loop_(loop),
      path_(std::move(path)),
      on_change_(std::move(on_change)),
      last_fingerprint_(fingerprint(path_)),
      settle_timer_(loop.timers(), [this] { check(); }) {
#ifdef __linux__
  inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  const std::filesystem::path parent = std::filesystem::path(path_).parent_path();
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  // The directory, not the file: a ConfigMap update replaces a symlink in
  // the directory and never writes to the file we opened.
  if (inotify_fd_ >= 0 &&
      ::inotify_add_watch(inotify_fd_, dir.c_str(),
                          IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB |
                              IN_MOVE_SELF | IN_DELETE_SELF) >= 0 &&
      loop_.addFd(inotify_fd_, this) == 0) {
    SLUICE_LOG(kInfo, "watching " + path_ + " for changes (inotify on " + dir + ")");
    watchResolvedDirectory();
    return;
  }
  SLUICE_LOG(kWarn, "inotify unavailable (" + std::string(std::strerror(errno)) + "); checking " +
                        path_ + " once a second instead");
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
  inotify_fd_ = -1;
#endif
  settle_timer_.arm(kPollInterval);
}

ConfigWatcher::~ConfigWatcher() {
  if (inotify_fd_ >= 0) {
    loop_.removeFd(inotify_fd_);
    ::close(inotify_fd_);
  }
}

void ConfigWatcher::onReady(uint32_t) {
#ifdef __linux__
  alignas(inotify_event) char buffer[4096];
  for (;;) {
    ssize_t n = ::read(inotify_fd_, buffer, sizeof buffer);
    if (n <= 0) break;  // EAGAIN: drained (edge-triggered)
  }
#endif
  settle_timer_.arm(kSettleDelay);
}

void ConfigWatcher::watchResolvedDirectory() {
#ifdef __linux__
  std::error_code ec;
  std::filesystem::path real = std::filesystem::canonical(path_, ec);
  if (ec) return;
  std::string dir = real.parent_path().string();
  if (dir == resolved_dir_) return;
  if (resolved_watch_ >= 0) ::inotify_rm_watch(inotify_fd_, resolved_watch_);
  resolved_watch_ = ::inotify_add_watch(inotify_fd_, dir.c_str(),
                                        IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ATTRIB);
  resolved_dir_ = dir;
#endif
}

void ConfigWatcher::check() {
  if (inotify_fd_ >= 0) watchResolvedDirectory();
  uint64_t now = fingerprint(path_);
  // 0: unreadable mid-swap; wait for the next event rather than reload a
  // missing file.
  if (now != 0 && now != last_fingerprint_) {
    last_fingerprint_ = now;
    SLUICE_LOG(kInfo, path_ + " changed; reloading");
    on_change_();
  }
  if (inotify_fd_ < 0) settle_timer_.arm(kPollInterval);
}

uint64_t ConfigWatcher::fingerprint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return 0;
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // FNV-1a: a content fingerprint, not security.
  uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : content)
    hash = (hash ^ c) * 1099511628211ull;
  return hash == 0 ? 1 : hash;
}

}  // namespace sluice::process
