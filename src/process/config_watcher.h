// ConfigWatcher: notices that the config file changed and asks for a reload
// (`watch_config: true`). On Linux it watches the file's directory with
// inotify, which also sees the symlink swap Kubernetes does when a mounted
// ConfigMap is updated; elsewhere it checks once a second. A change means
// different content, so touching the file or an unrelated file in the same
// directory does not reload. Owned by the master; lives on its loop.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "event/event_loop.h"
#include "event/timer.h"

namespace sluice::process {

class ConfigWatcher final : public event::IoHandler {
 public:
  ConfigWatcher(event::EventLoop& loop, std::string path, std::function<void()> on_change);
  ~ConfigWatcher();
  ConfigWatcher(const ConfigWatcher&) = delete;
  ConfigWatcher& operator=(const ConfigWatcher&) = delete;

  void onReady(uint32_t ready_bits) override;

 private:
  void check();
  // Also watch the directory of the file the path resolves to, which
  // changes when a symlink in the path is swapped.
  void watchResolvedDirectory();
  static uint64_t fingerprint(const std::string& path);

  event::EventLoop& loop_;
  std::string path_;
  std::function<void()> on_change_;
  int inotify_fd_ = -1;
  int resolved_watch_ = -1;
  std::string resolved_dir_;
  uint64_t last_fingerprint_ = 0;
  // Editors and kubelet write in several steps: act once things settle.
  event::Timer settle_timer_;
};

}  // namespace sluice::process
