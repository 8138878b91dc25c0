// io/internal/batch_send: several sockets' writes in one io_uring submission, on real TCP
// connections over 127.0.0.1.
#include "io/internal/batch_send.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <memory>
#include <string>
#include <vector>

namespace quire::io::internal {
namespace {

// A connected TCP pair on 127.0.0.1: `out` (non-blocking, written by the sender) and `in`.
struct Pair {
  int out = -1;
  int in = -1;
  Pair() {
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    REQUIRE(listen(listener, 1) == 0);
    out = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(connect(out, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    in = accept(listener, nullptr, nullptr);
    REQUIRE(in >= 0);
    close(listener);
    REQUIRE(fcntl(out, F_SETFL, fcntl(out, F_GETFL) | O_NONBLOCK) == 0);
  }
  ~Pair() {
    if (out >= 0) close(out);
    if (in >= 0) close(in);
  }
  Pair(const Pair&) = delete;
  Pair& operator=(const Pair&) = delete;

  // Reads exactly `n` bytes from `in` (waiting at most 5 s for each chunk).
  std::string Read(size_t n) {
    std::string got;
    char buf[65536];
    while (got.size() < n) {
      pollfd p{in, POLLIN, 0};
      if (poll(&p, 1, 5000) != 1) break;
      ssize_t r = read(in, buf, std::min(sizeof buf, n - got.size()));
      if (r <= 0) break;
      got.append(buf, static_cast<size_t>(r));
    }
    return got;
  }
};

iovec Iov(const std::string& s) { return iovec{const_cast<char*>(s.data()), s.size()}; }

// The ring, or null when this kernel does not allow io_uring (the server then writes one
// connection at a time; the server tests cover that path with io_uring off).
std::unique_ptr<BatchSender> OpenOrWarn(unsigned depth) {
  auto sender = BatchSender::Open(depth);
  if (!sender.ok()) {
    CHECK(sender.status().code() == StatusCode::kUnavailable);
    WARN("io_uring is not available here: " << sender.status().ToString());
    return nullptr;
  }
  return std::move(*sender);
}

TEST_CASE("BatchSenderWritesEverySocketsBuffersInOrder", "[batch_send]") {
  // Depth 2 and five sockets: three submissions in one call.
  auto sender = OpenOrWarn(2);
  if (sender == nullptr) return;
  constexpr int kSockets = 5;
  std::vector<std::unique_ptr<Pair>> pairs;
  std::vector<std::string> heads, tails;
  std::vector<std::vector<iovec>> iovs(kSockets);
  std::vector<BatchSender::Send> sends;
  for (int i = 0; i < kSockets; ++i) {
    pairs.push_back(std::make_unique<Pair>());
    heads.push_back("head of " + std::to_string(i) + ";");
    tails.push_back(std::string(1000 + i, static_cast<char>('a' + i)));
  }
  for (int i = 0; i < kSockets; ++i) {
    iovs[i] = {Iov(heads[i]), Iov(tails[i])};
    sends.push_back({pairs[i]->out, iovs[i].data(), iovs[i].size()});
  }
  std::vector<int> results(kSockets, 0);
  sender->SendAll(sends, results);
  for (int i = 0; i < kSockets; ++i) {
    const size_t size = heads[i].size() + tails[i].size();
    CHECK(results[i] == static_cast<int>(size));
    CHECK(pairs[i]->Read(size) == heads[i] + tails[i]);
  }
  CHECK_FALSE(sender->broken());
}

TEST_CASE("BatchSenderNeverWaitsForAFullSocket", "[batch_send]") {
  auto sender = OpenOrWarn(8);
  if (sender == nullptr) return;
  Pair full, fine;
  int small = 16 << 10;
  REQUIRE(setsockopt(full.out, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
  const std::string big(4 << 20, 'x');  // far beyond what the unread socket can hold
  const std::string hello = "hello";
  iovec big_iov = Iov(big), hello_iov = Iov(hello);
  std::vector<BatchSender::Send> sends = {{full.out, &big_iov, 1}, {fine.out, &hello_iov, 1}};
  std::vector<int> results(2, 0);
  sender->SendAll(sends, results);
  // Part of it, as a non-blocking writev would; the other socket is not held up.
  CHECK(results[0] > 0);
  CHECK(results[0] < static_cast<int>(big.size()));
  CHECK(results[1] == static_cast<int>(hello.size()));
  CHECK(fine.Read(hello.size()) == hello);
  // Write on from where it stopped until the socket is full: EAGAIN at once, not a wait.
  size_t written = static_cast<size_t>(std::max(results[0], 0));
  sends.resize(1);
  results.resize(1);
  for (int i = 0; i < 1000 && results[0] != -EAGAIN; ++i) {
    big_iov = {const_cast<char*>(big.data()) + written, big.size() - written};
    sender->SendAll(sends, results);
    if (results[0] > 0) written += static_cast<size_t>(results[0]);
  }
  CHECK(results[0] == -EAGAIN);
  REQUIRE(written < big.size());
  // What was taken arrives whole.
  CHECK(full.Read(written) == big.substr(0, written));
}

TEST_CASE("BatchSenderReportsFailedSocketsAndWritesTheOthers", "[batch_send]") {
  auto sender = OpenOrWarn(8);
  if (sender == nullptr) return;
  Pair gone, fine;
  close(gone.in);  // the peer went away: its kernel answers the next segment with a reset
  gone.in = -1;
  const std::string data = "data";
  iovec iov = Iov(data);
  int bad_fd = open("/dev/null", O_RDONLY);
  REQUIRE(bad_fd >= 0);
  close(bad_fd);  // a descriptor number that is no longer open
  std::vector<BatchSender::Send> sends = {
      {gone.out, &iov, 1}, {bad_fd, &iov, 1}, {fine.out, &iov, 1}};
  std::vector<int> results(3, 0);
  // The first write to the gone peer may still be taken (the reset comes back after it); a
  // later one fails with EPIPE or ECONNRESET, and MSG_NOSIGNAL means no SIGPIPE kills the test.
  int gone_result = 0;
  for (int i = 0; i < 50 && gone_result >= 0; ++i) {
    sender->SendAll(sends, results);
    gone_result = results[0];
    CHECK(results[1] == -EBADF);
    CHECK(results[2] == static_cast<int>(data.size()));
    CHECK(fine.Read(data.size()) == data);
    if (gone_result >= 0) usleep(2000);
  }
  CHECK((gone_result == -EPIPE || gone_result == -ECONNRESET));
  CHECK_FALSE(sender->broken());
}

}  // namespace
}  // namespace quire::io::internal
