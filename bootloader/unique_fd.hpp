// A file descriptor closed when it goes out of scope, so every early error return in the
// bootloader code closes what it opened.
#pragma once

#include <unistd.h>

namespace bootstate {

class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  // The descriptor, or a negative value when opening failed (errno then says why).
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace bootstate
