// Resource limits against the real server: maximum connections (total and per client address),
// maximum open documents, and 10,000 connections (the clients in a child process) with bounded
// memory. Refusals are a clear HTTP 503 with a JSON error before the close.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/http_client.h"
#include "tests/support/ws_harness.h"

namespace quire::test {
namespace {

// A connected TCP socket from `source` (a 127.0.0.0/8 address) to 127.0.0.1:port; -1 on failure.
int ConnectFrom(int port, const char* source = nullptr) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  if (source != nullptr) {
    sockaddr_in s{};
    s.sin_family = AF_INET;
    ::inet_pton(AF_INET, source, &s.sin_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&s), sizeof s) != 0) {
      ::close(fd);
      return -1;
    }
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads what the server sends on `fd` until it closes (or `timeout_ms`).
std::string ReadUntilClose(int fd, int timeout_ms = 3000) {
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// The refusal of a connection beyond a limit: 503 with a JSON error, then the close.
bool IsRefusal(const std::string& answer) {
  return answer.rfind("HTTP/1.1 503 ", 0) == 0 &&
         answer.find("\"code\":\"TOO_MANY_CONNECTIONS\"") != std::string::npos &&
         answer.find("Connection: close") != std::string::npos;
}

void ExpectRefused(int fd) {
  REQUIRE(fd >= 0);
  std::string answer = ReadUntilClose(fd);
  ::close(fd);
  INFO(answer);
  CHECK(IsRefusal(answer));
}

bool WaitMetric(WsHarness& h, const std::string& name, int64_t value, int timeout_ms = 5000) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    if (h.Metric(name) == value) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return h.Metric(name) == value;
}

void ExpectServing(int port) {
  auto r = HttpRequestOnce(port, "GET", "/healthz");
  REQUIRE(r.has_value());
  CHECK(r->status == 200);
}

TEST_CASE("ConnectionsBeyondTheTotalLimitGet503JsonThenClose", "[limits]") {
  WsHarness h(StorageMode::kMemory, [](Config& c) { c.max_connections = 20; });
  std::vector<int> held;
  for (int i = 0; i < 20; ++i) {
    int fd = ConnectFrom(h.port());
    REQUIRE(fd >= 0);
    held.push_back(fd);
  }
  REQUIRE(WaitMetric(h, "quire_http_connections", 20));
  ExpectRefused(ConnectFrom(h.port()));
  CHECK(h.Metric("quire_http_connections_refused_total") >= 1);
  // Room again once one closes.
  ::close(held.back());
  held.pop_back();
  REQUIRE(WaitMetric(h, "quire_http_connections", 19));
  ExpectServing(h.port());
  for (int fd : held) ::close(fd);
}

TEST_CASE("ConnectionsBeyondThePerAddressLimitGet503WhileOtherAddressesAreServed", "[limits]") {
  WsHarness h(StorageMode::kMemory, [](Config& c) { c.max_connections_per_ip = 3; });
  std::vector<int> held;
  for (int i = 0; i < 3; ++i) {
    int fd = ConnectFrom(h.port(), "127.0.0.2");
    REQUIRE(fd >= 0);
    held.push_back(fd);
  }
  REQUIRE(WaitMetric(h, "quire_http_connections", 3));
  ExpectRefused(ConnectFrom(h.port(), "127.0.0.2"));
  // Another client address is not affected.
  ExpectServing(h.port());
  for (int fd : held) ::close(fd);
  REQUIRE(WaitMetric(h, "quire_http_connections", 0));
  int again = ConnectFrom(h.port(), "127.0.0.2");
  REQUIRE(again >= 0);
  HttpClient probe(h.port());
  REQUIRE(probe.connected());
  ::close(again);
}

TEST_CASE("DocumentsBeyondTheOpenLimitAreRefusedWith503", "[limits]") {
  WsHarness h(StorageMode::kMemory, [](Config& c) { c.max_open_documents = 2; });
  std::string a = h.CreateDocument(), b = h.CreateDocument(), c = h.CreateDocument();
  auto ca = h.JoinWithState(a, "u1");
  auto cb = h.JoinWithState(b, "u2");
  WsHandshake hs;
  CHECK_FALSE(WsClient::Connect(h.port(), "/ws/documents/" + c + "?userId=u3", {}, &hs).ok());
  CHECK(hs.status == 503);
  CHECK(hs.body.find("TOO_MANY_DOCUMENTS") != std::string::npos);
  // An already open document still takes members.
  auto ca2 = h.JoinWithState(a, "u4");
  // Closing the last member of b makes room for c.
  REQUIRE(cb->Close().ok());
  cb.reset();
  REQUIRE(WaitMetric(h, "quire_websocket_open_documents", 1));
  auto cc = h.JoinWithState(c, "u3");
  CHECK(h.Metric("quire_websocket_open_documents") == 2);
}

long RssKiB() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, rss = 0;
  f >> pages >> rss;
  return rss * (::sysconf(_SC_PAGESIZE) / 1024);
}

// RLIMIT_NOFILE raised for one test and restored afterwards.
class RaisedNofileLimit {
 public:
  // Raises the soft limit to `wanted`, and the hard limit with it when that is permitted
  // (CAP_SYS_RESOURCE, up to fs.nr_open). Otherwise the soft limit goes up to the hard one, as
  // far as any process may.
  explicit RaisedNofileLimit(rlim_t wanted) {
    ::getrlimit(RLIMIT_NOFILE, &original_);
    rlimit raised{wanted, std::max(wanted, original_.rlim_max)};
    if (original_.rlim_max == RLIM_INFINITY) raised.rlim_max = RLIM_INFINITY;
    if (original_.rlim_cur >= wanted || ::setrlimit(RLIMIT_NOFILE, &raised) != 0) {
      raised = original_;
      raised.rlim_cur = std::max(original_.rlim_cur, std::min(wanted, original_.rlim_max));
      ::setrlimit(RLIMIT_NOFILE, &raised);
    }
    ::getrlimit(RLIMIT_NOFILE, &current_);
  }
  ~RaisedNofileLimit() { ::setrlimit(RLIMIT_NOFILE, &original_); }
  RaisedNofileLimit(const RaisedNofileLimit&) = delete;
  RaisedNofileLimit& operator=(const RaisedNofileLimit&) = delete;

  rlim_t soft() const { return current_.rlim_cur; }

 private:
  rlimit original_{};
  rlimit current_{};
};

// The client side of the scale test in a child process, so that its sockets count against the
// child's RLIMIT_NOFILE and not the server's: each process needs one descriptor per connection
// (with both in one process, a 20,000 hard limit, common in containers without
// CAP_SYS_RESOURCE, stops short of 10,000). Forked before the server's thread exists, so the
// child is single-threaded; it obeys commands over a socketpair and never touches Catch2.
class ClientProcess {
 public:
  ClientProcess() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(sv[0]);
      Serve(sv[1]);
      ::_exit(0);
    }
    ::close(sv[1]);
    fd_ = pid_ > 0 ? sv[0] : -1;
    if (pid_ < 0) ::close(sv[0]);
  }
  ~ClientProcess() {
    if (pid_ <= 0) return;
    Call({kExit, 0, 0});
    ::close(fd_);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  ClientProcess(const ClientProcess&) = delete;
  ClientProcess& operator=(const ClientProcess&) = delete;

  bool running() const { return fd_ >= 0; }
  // Opens `n` more idle connections to 127.0.0.1:port; returns how many connected.
  int Open(int port, int n) { return Call({kOpen, port, n}).count; }
  // Connects `n` times, each expecting the 503 TOO_MANY_CONNECTIONS refusal then the close;
  // returns how many got exactly that (`first_bad`: the first other answer).
  int Refused(int port, int n, std::string* first_bad) {
    Reply r = Call({kRefused, port, n});
    *first_bad = r.detail;
    return r.count;
  }
  // Closes `n` of the held connections (all when n < 0); returns how many are still held.
  int Close(int n) { return Call({kClose, 0, n}).count; }
  // The child's soft RLIMIT_NOFILE.
  int DescriptorLimit() { return Call({kLimit, 0, 0}).count; }

 private:
  enum Op : int { kOpen, kRefused, kClose, kLimit, kExit };
  struct Command {
    int op;
    int port;
    int n;
  };
  struct Reply {
    int count = -1;
    char detail[256] = {};
  };

  Reply Call(Command c) {
    Reply r;
    if (fd_ < 0 || ::write(fd_, &c, sizeof c) != static_cast<ssize_t>(sizeof c)) return r;
    // The child answers within its own bounded waits (connect, ReadUntilClose's 3 s each).
    size_t got = 0;
    while (got < sizeof r) {
      ssize_t n = ::read(fd_, reinterpret_cast<char*>(&r) + got, sizeof r - got);
      if (n <= 0) return Reply{};
      got += static_cast<size_t>(n);
    }
    return r;
  }

  static void Serve(int control) {
    std::vector<int> held;
    Command c;
    while (::read(control, &c, sizeof c) == static_cast<ssize_t>(sizeof c)) {
      Reply r;
      r.count = 0;
      switch (c.op) {
        case kOpen:
          for (int i = 0; i < c.n; ++i) {
            int fd = ConnectFrom(c.port);
            if (fd < 0) break;
            held.push_back(fd);
            ++r.count;
          }
          break;
        case kRefused:
          for (int i = 0; i < c.n; ++i) {
            int fd = ConnectFrom(c.port);
            std::string answer = fd >= 0 ? ReadUntilClose(fd) : "(connect failed)";
            if (fd >= 0) ::close(fd);
            if (IsRefusal(answer)) {
              ++r.count;
            } else if (r.detail[0] == '\0') {
              answer.copy(r.detail, sizeof r.detail - 1);
            }
          }
          break;
        case kClose:
          while (!held.empty() && (c.n < 0 || c.n-- > 0)) {
            ::close(held.back());
            held.pop_back();
          }
          r.count = static_cast<int>(held.size());
          break;
        case kLimit: {
          rlimit l{};
          ::getrlimit(RLIMIT_NOFILE, &l);
          r.count = static_cast<int>(std::min<rlim_t>(l.rlim_cur, 1 << 30));
          break;
        }
        case kExit:
          for (int fd : held) ::close(fd);
          (void)!::write(control, &r, sizeof r);
          return;
      }
      if (::write(control, &r, sizeof r) != static_cast<ssize_t>(sizeof r)) return;
    }
  }

  pid_t pid_ = -1;
  int fd_ = -1;
};

TEST_CASE("ThousandsOfConnectionsKeepMemoryBoundedAndTheExcessIsRefused", "[limits][scale]") {
  constexpr int kConnections = 10'000;  // held at the limit
  constexpr int kExcess = 50;           // then refused beyond it
  // Each process (server here, clients in the child) holds one descriptor per connection, plus
  // its own (300 to spare).
  RaisedNofileLimit nofile(kConnections + kExcess + 300);
  ClientProcess clients;  // forked now, before the server's thread, with the raised limit
  REQUIRE(clients.running());
  // Where the limit could not be raised far enough: the most the machine allows.
  const rlim_t descriptors = std::min<rlim_t>(nofile.soft(), clients.DescriptorLimit());
  const int target = static_cast<int>(
      std::min<rlim_t>(kConnections + kExcess, std::max<rlim_t>(descriptors, 400) - 300));
  const int limit = target - kExcess;
  WARN("RLIMIT_NOFILE " << descriptors << ": opening " << target << " connections, limit "
                        << limit);
  WsHarness h(StorageMode::kMemory, [&](Config& c) {
    c.max_connections = limit;
    c.header_timeout_s = 60;  // idle connections must outlive the test's setup
  });
  ExpectServing(h.port());
  long rss_before = RssKiB();
  auto start = std::chrono::steady_clock::now();
  for (int opened = 0; opened < limit;) {
    int batch = std::min(1000, limit - opened);
    REQUIRE(clients.Open(h.port(), batch) == batch);
    opened += batch;
    REQUIRE(WaitMetric(h, "quire_http_connections", opened, 10'000));
  }
  long rss_full = RssKiB();
  std::string first_bad;
  CHECK(clients.Refused(h.port(), target - limit, &first_bad) == target - limit);
  INFO(first_bad);
  CHECK(first_bad.empty());
  CHECK(h.Metric("quire_http_connections_refused_total") == target - limit);
  auto elapsed = std::chrono::steady_clock::now() - start;
  // The server's own memory now: the client sockets live in the child.
  long per_connection = (rss_full - rss_before) * 1024 / limit;
  WARN("server rss " << rss_before << " KiB -> " << rss_full << " KiB with " << limit
                     << " connections (" << per_connection << " bytes each), "
                     << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()
                     << " ms");
  // Bounded: the server's part of an idle connection is small.
  CHECK(per_connection < 16 * 1024);
  // The server still answers at its limit minus one.
  CHECK(clients.Close(1) == limit - 1);
  REQUIRE(WaitMetric(h, "quire_http_connections", limit - 1, 10'000));
  ExpectServing(h.port());
  CHECK(clients.Close(-1) == 0);
  REQUIRE(WaitMetric(h, "quire_http_connections", 0, 20'000));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(60));
}

}  // namespace
}  // namespace quire::test
