// Many sockets' writes in one system call, through an io_uring ring (liburing).
//
// The HTTP server gathers each connection's output during a loop iteration and writes it once
// per connection (io/http_server.cc). A relay to N members is N writes; each is a system call
// of its own, and on this project's benchmark machines (virtual machines, ~1 us per system
// call) that entry and exit was a large part of a write's cost. BatchSender hands all of them
// to the kernel in one io_uring_enter: each is a non-blocking sendmsg (MSG_DONTWAIT), so a
// socket that cannot take everything completes at once with what it took (or -EAGAIN), as a
// direct write would, instead of waiting. Nothing is left in flight between calls.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "core/status.h"

namespace quire::io::internal {

class BatchSender {
 public:
  // One socket's write: `iovcnt` buffers from `iov` (at most kMaxIov are sent; a larger write
  // completes partially, like writev). The buffers must stay valid during SendAll().
  struct Send {
    int fd = -1;
    const iovec* iov = nullptr;
    size_t iovcnt = 0;
  };
  // Result of a Send that was never handed to the kernel (SendAll failed before submitting
  // it): the caller writes that socket some other way.
  static constexpr int kNotSent = -1'000'000;
  static constexpr size_t kMaxIov = 1024;

  // A ring for up to `depth` writes per submission; an error when the kernel refuses io_uring
  // (too old: before 5.6, or without sendmsg; disabled by sysctl; or blocked by a seccomp filter,
  // as in some containers).
  static Result<std::unique_ptr<BatchSender>> Open(unsigned depth);
  ~BatchSender();
  BatchSender(const BatchSender&) = delete;
  BatchSender& operator=(const BatchSender&) = delete;

  // Writes every send (MSG_DONTWAIT | MSG_NOSIGNAL) and waits until all have completed, which
  // they do without blocking. results[i] is what sends[i] got: bytes written, -errno (-EAGAIN
  // when the socket's buffer was full, -EPIPE or -ECONNRESET for a gone peer; -EIO when the
  // ring failed after submitting it, so whether it was written is unknown), or kNotSent. Any
  // number of sends; they are submitted `depth` at a time. results.size() == sends.size().
  // After the ring fails once, every later send is kNotSent (see broken()).
  void SendAll(std::span<const Send> sends, std::span<int> results);
  bool broken() const;

 private:
  struct Ring;
  explicit BatchSender(std::unique_ptr<Ring> ring);
  std::unique_ptr<Ring> ring_;
};

}  // namespace quire::io::internal
