#include "io/internal/batch_send.h"

#include <liburing.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace quire::io::internal {

struct BatchSender::Ring {
  io_uring ring{};
  unsigned depth = 0;
  std::vector<msghdr> headers;  // one per submitted send; read by the kernel during the call
  bool broken = false;          // a submission failed: never enter the ring again
};

Result<std::unique_ptr<BatchSender>> BatchSender::Open(unsigned depth) {
  auto ring = std::make_unique<Ring>();
  depth = std::max(depth, 1u);
  int rc = io_uring_queue_init(depth, &ring->ring, 0);
  if (rc < 0) return Status::Unavailable(std::string("io_uring: ") + std::strerror(-rc));
  // sendmsg came to io_uring in Linux 5.3 and the probe in 5.6: without both, a kernel could
  // fail every write with EINVAL, so it is not used at all.
  io_uring_probe* probe = io_uring_get_probe_ring(&ring->ring);
  const bool sendmsg = probe != nullptr && io_uring_opcode_supported(probe, IORING_OP_SENDMSG);
  if (probe != nullptr) io_uring_free_probe(probe);
  if (!sendmsg) {
    io_uring_queue_exit(&ring->ring);
    return Status::Unavailable("io_uring: this kernel has no IORING_OP_SENDMSG");
  }
  ring->depth = ring->ring.sq.ring_entries;  // the kernel rounds up to a power of two
  ring->headers.resize(ring->depth);
  return std::unique_ptr<BatchSender>(new BatchSender(std::move(ring)));
}

BatchSender::BatchSender(std::unique_ptr<Ring> ring) : ring_(std::move(ring)) {}

BatchSender::~BatchSender() { io_uring_queue_exit(&ring_->ring); }

bool BatchSender::broken() const { return ring_->broken; }

void BatchSender::SendAll(std::span<const Send> sends, std::span<int> results) {
  std::fill(results.begin(), results.end(), kNotSent);
  io_uring* ring = &ring_->ring;
  for (size_t from = 0; from < sends.size() && !ring_->broken; from += ring_->depth) {
    const size_t count = std::min<size_t>(ring_->depth, sends.size() - from);
    for (size_t k = 0; k < count; ++k) {
      const Send& s = sends[from + k];
      msghdr& h = ring_->headers[k];
      h = msghdr{};
      h.msg_iov = const_cast<iovec*>(s.iov);  // sendmsg does not write through it
      h.msg_iovlen = std::min(s.iovcnt, kMaxIov);
      io_uring_sqe* sqe = io_uring_get_sqe(ring);  // never null: the ring is empty
      io_uring_prep_sendmsg(sqe, s.fd, &h, MSG_DONTWAIT | MSG_NOSIGNAL);
      io_uring_sqe_set_data64(sqe, k);
    }
    // Submit until the kernel has taken every entry. Each entry either runs now or fails at
    // once with a completion of its own, so an error of the call itself (no memory, a signal)
    // leaves the rest in the queue: retry a few times, then give the ring up so that those
    // entries are never sent later, after what the caller writes instead.
    size_t submitted = 0;
    for (int tries = 0; submitted < count;) {
      int rc = io_uring_submit(ring);
      if (rc > 0) {
        submitted += static_cast<size_t>(rc);
      } else if (++tries == 8 || (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)) {
        ring_->broken = true;
        break;
      }
    }
    // Collect one completion per submitted entry; MSG_DONTWAIT means none waits for the peer.
    // Until its completion arrives, a submitted write's outcome is unknown: -EIO, so that the
    // caller closes that connection rather than write the same bytes again.
    for (size_t k = 0; k < submitted; ++k) results[from + k] = -EIO;
    for (size_t seen = 0; seen < submitted;) {
      io_uring_cqe* cqe = nullptr;
      int rc = io_uring_wait_cqe(ring, &cqe);
      if (rc == -EINTR) continue;
      if (rc < 0) {  // cannot happen with entries in flight; do not spin if it does
        ring_->broken = true;
        break;
      }
      const uint64_t k = io_uring_cqe_get_data64(cqe);
      if (k < count) results[from + k] = cqe->res;
      io_uring_cqe_seen(ring, cqe);
      ++seen;
    }
  }
}

}  // namespace quire::io::internal
