// Resource limits against the real server: maximum connections (total and per client address),
// maximum open documents, and thousands of connections with bounded memory. Refusals are a
// clear HTTP 503 with a JSON error before the close.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
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

void ExpectRefused(int fd) {
  REQUIRE(fd >= 0);
  std::string answer = ReadUntilClose(fd);
  INFO(answer);
  CHECK(answer.rfind("HTTP/1.1 503 ", 0) == 0);
  CHECK(answer.find("\"code\":\"TOO_MANY_CONNECTIONS\"") != std::string::npos);
  CHECK(answer.find("Connection: close") != std::string::npos);
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

TEST_CASE("ThousandsOfConnectionsKeepMemoryBoundedAndTheExcessIsRefused", "[limits][scale]") {
  // Client and server share this process: each connection costs two descriptors.
  rlimit nofile{};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &nofile);
  const int target = static_cast<int>(std::min<rlim_t>(10'000, (nofile.rlim_cur - 300) / 2));
  const int limit = target - 50;  // the last 50 are over the limit
  WARN("opening " << target << " connections, limit " << limit);
  WsHarness h(StorageMode::kMemory, [&](Config& c) {
    c.max_connections = limit;
    c.header_timeout_s = 60;  // idle connections must outlive the test's setup
  });
  ExpectServing(h.port());
  long rss_before = RssKiB();
  auto start = std::chrono::steady_clock::now();
  std::vector<int> held;
  held.reserve(static_cast<size_t>(limit));
  for (int i = 0; i < limit; ++i) {
    int fd = ConnectFrom(h.port());
    REQUIRE(fd >= 0);
    held.push_back(fd);
    if (i % 1000 == 999) REQUIRE(WaitMetric(h, "quire_http_connections", i + 1, 10'000));
  }
  REQUIRE(WaitMetric(h, "quire_http_connections", limit, 10'000));
  long rss_full = RssKiB();
  for (int i = 0; i < target - limit; ++i) ExpectRefused(ConnectFrom(h.port()));
  CHECK(h.Metric("quire_http_connections_refused_total") == target - limit);
  auto elapsed = std::chrono::steady_clock::now() - start;
  long per_connection = (rss_full - rss_before) * 1024 / limit;
  WARN("rss " << rss_before << " KiB -> " << rss_full << " KiB with " << limit << " connections ("
              << per_connection << " bytes each), "
              << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms");
  // Bounded: the server's part of an idle connection (plus the client's socket here) is small.
  CHECK(per_connection < 16 * 1024);
  // The server still answers at its limit minus one.
  ::close(held.back());
  held.pop_back();
  REQUIRE(WaitMetric(h, "quire_http_connections", limit - 1, 10'000));
  ExpectServing(h.port());
  for (int fd : held) ::close(fd);
  REQUIRE(WaitMetric(h, "quire_http_connections", 0, 20'000));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(60));
}

}  // namespace
}  // namespace quire::test
