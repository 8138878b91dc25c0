// Bad input against the real server (ServerApp on 127.0.0.1, real sockets): every case gets its
// exact expected answer, and after every case a different client is still served.
//
// The cases are data: the tables below ARE the list of cases with their expected answers.
//
// HTTP (fresh connection per case; `{doc}` is an existing document's id)
// | case                                  | expected answer                                      |
// |---------------------------------------|------------------------------------------------------|
// | see HttpCases(): name, raw bytes, status, error.code, whether the server closes           |
// | slow headers (never finished)         | closed after header_timeout_s, no answer             |
// | 1000 pipelined requests in one write  | 1000 answers 200, in order                           |
// | good request pipelined after a bad one| 400, close; the second is never answered             |
// | thousands of GETs pipelined in one    | no longer read once 1 MiB of answers waits; that     |
// |   write, then more, never reading     |   queue stays <= 1 MiB + one answer; others served;  |
// |                                       |   everything freed when the client goes              |
//
// WebSocket (joined client; raw frames)
// | see WsFrameCases(): name, raw frames, expected close code (or error message kept open)   |
// | abrupt disconnect at each handshake stage (TCP only, partial request, request unread,   |
// |   after 101 half a frame, RST while joined) | no answer owed; gauge back to 0; others served |
//
// JSON protocol (joined client; one text message)
// | see JsonCases(): name, message, expected `error` code (connection stays open)            |
// | 10,000 messages in one burst          | `error` RATE_LIMITED, then close 1008                |
//
// Yjs update bytes (document with crdt "yjs")
// | see YjsCases(): name, delta bytes (hex), expected INVALID_UPDATE or ack                  |
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "core/base64.h"
#include "tests/support/http_client.h"
#include "tests/support/ws_harness.h"

namespace quire::test {
namespace {

using nlohmann::json;

std::string Replace(std::string s, std::string_view from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) {
    s.replace(p, from.size(), to);
  }
  return s;
}

// --- HTTP ---

struct HttpCase {
  const char* name;
  std::string request;  // raw bytes; {doc} is replaced by an existing document id
  int status;           // expected status
  const char* code;     // expected error.code ("" = a non-error answer)
  bool closes;          // the server closes after answering
};

std::string Chunked(const std::string& chunks) {
  return "POST /api/v1/documents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Transfer-Encoding: chunked\r\n\r\n" +
         chunks;
}
std::string Post(const std::string& body, const std::string& type = "application/json") {
  return "POST /api/v1/documents HTTP/1.1\r\nHost: x\r\nContent-Type: " + type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}
std::string Get(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n";
}

std::vector<HttpCase> HttpCases() {
  std::string many_headers = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 3000; ++i) many_headers += "X-H" + std::to_string(i) + ": v\r\n";
  many_headers += "\r\n";
  return {
      // Malformed request lines.
      {"control byte in the method", "GARBAGE\x01 / HTTP/1.1\r\n\r\n", 400, "BAD_REQUEST", true},
      {"unknown HTTP version", "GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", 400, "BAD_REQUEST",
       true},
      {"no target", "GET\r\n\r\n", 400, "BAD_REQUEST", true},
      // llhttp 8.1 (non-strict build) takes this as HTTP/0.9: answered, then closed.
      {"HTTP/0.9 request line", "GET /healthz\r\n\r\n", 200, "", true},
      {"NUL in the target", std::string("GET /heal\0thz HTTP/1.1\r\nHost: x\r\n\r\n", 36), 400,
       "BAD_REQUEST", true},
      {"space inside the target", "GET /health z HTTP/1.1\r\nHost: x\r\n\r\n", 400, "BAD_REQUEST",
       true},
      // Methods.
      {"lowercase method", "get /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "BAD_REQUEST", true},
      {"invented method", "FROB /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "BAD_REQUEST", true},
      {"known method a route does not allow", "PUT /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 405,
       "METHOD_NOT_ALLOWED", false},
      {"WebDAV method on the collection", "PROPFIND /api/v1/documents HTTP/1.1\r\nHost: x\r\n\r\n",
       405, "METHOD_NOT_ALLOWED", false},
      {"DELETE on the collection", "DELETE /api/v1/documents HTTP/1.1\r\nHost: x\r\n\r\n", 405,
       "METHOD_NOT_ALLOWED", false},
      // Headers.
      {"header line without a colon", "GET /healthz HTTP/1.1\r\nHost x\r\n\r\n", 400, "BAD_REQUEST",
       true},
      {"control character in a header name", "GET /healthz HTTP/1.1\r\nBad\x01Name: x\r\n\r\n", 400,
       "BAD_REQUEST", true},
      // llhttp 8.1 non-strict: a space inside a header name is accepted (the header is ignored).
      {"space in a header name", "GET /healthz HTTP/1.1\r\nBad Name: x\r\n\r\n", 200, "", false},
      {"header block over 16 KiB",
       Get("/healthz").substr(0, 25) + "X-Big: " + std::string(17 << 10, 'a') + "\r\n\r\n", 431,
       "HEADERS_TOO_LARGE", true},
      {"3000 small headers", many_headers, 431, "HEADERS_TOO_LARGE", true},
      // Bodies and framing.
      {"Content-Length over the body limit",
       "POST /api/v1/documents HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", 413,
       "PAYLOAD_TOO_LARGE", true},
      {"negative Content-Length",
       "POST /api/v1/documents HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400,
       "BAD_REQUEST", true},
      {"non-numeric Content-Length",
       "POST /api/v1/documents HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400,
       "BAD_REQUEST", true},
      {"two different Content-Lengths",
       "POST /api/v1/documents HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: "
       "3\r\n\r\n{}x",
       400, "BAD_REQUEST", true},
      {"Content-Length and Transfer-Encoding",
       "POST /api/v1/documents HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: "
       "chunked\r\n\r\n0\r\n\r\n",
       400, "BAD_REQUEST", true},
      {"Transfer-Encoding not ending in chunked",
       "POST /api/v1/documents HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400,
       "BAD_REQUEST", true},
      {"chunk size not hex", Chunked("zz\r\n{}\r\n0\r\n\r\n"), 400, "BAD_REQUEST", true},
      {"chunk size overflowing 64 bits", Chunked("fffffffffffffffffffff\r\n{}\r\n0\r\n\r\n"), 400,
       "BAD_REQUEST", true},
      // llhttp 8.1 non-strict skips the two bytes after chunk data without checking they are
      // CRLF: the body is "{}" and the handler refuses it for its content.
      {"chunk data followed by junk instead of CRLF", Chunked("2\r\n{}XX0\r\n\r\n"), 400,
       "VALIDATION_FAILED", false},
      {"chunk extension with a control byte", Chunked("2;a\x01=b\r\n{}\r\n0\r\n\r\n"), 400,
       "BAD_REQUEST", true},
      {"chunks over the body limit",
       Chunked("100000\r\n" + std::string(0x100000, ' ') + "\r\n1\r\n \r\n0\r\n\r\n"), 413,
       "PAYLOAD_TOO_LARGE", true},
      {"valid chunked create", Chunked("4\r\n{\"ti\r\n9\r\ntle\":\"t\"}\r\n0\r\n\r\n"), 201, "",
       false},
      {"JSON body not JSON", Post("{\"title\":"), 400, "INVALID_JSON", false},
      {"JSON body an array", Post("[1,2]"), 400, "INVALID_JSON", false},
      {"JSON body of the wrong media type", Post("{}", "text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE",
       false},
      {"JSON body nested 100000 deep (unclosed)", Post(std::string(100000, '[')), 400,
       "INVALID_JSON", false},
      {"JSON body nested 10000 deep (closed)",
       Post("{\"title\":" + std::string(10000, '[') + std::string(10000, ']') + "}"), 400,
       "VALIDATION_FAILED", false},
      {"title of the wrong type", Post(R"({"title":123})"), 400, "VALIDATION_FAILED", false},
      {"huge number as title", Post(R"({"title":1e400})"), 400, "INVALID_JSON", false},
      {"unknown field", Post(R"({"title":"t","bogus":1})"), 400, "VALIDATION_FAILED", false},
      // Ids and URLs.
      {"percent-encoded dot-dot id", Get("/api/v1/documents/%2e%2e"), 404, "NOT_FOUND", false},
      {"percent-encoded slash in the id", Get("/api/v1/documents/{doc}%2Fx"), 404, "NOT_FOUND",
       false},
      {"percent-encoded NUL after the id", Get("/api/v1/documents/{doc}%00"), 404, "NOT_FOUND",
       false},
      {"double-encoded id", Get("/api/v1/documents/%252e%252e"), 404, "NOT_FOUND", false},
      {"invalid percent escape", Get("/api/v1/documents/%zz"), 404, "NOT_FOUND", false},
      {"truncated percent escape", Get("/api/v1/documents/%4"), 404, "NOT_FOUND", false},
      {"id of 10 KiB", Get("/api/v1/documents/" + std::string(10 << 10, 'a')), 404, "NOT_FOUND",
       false},
      {"URL of 20 KiB (over the header limit)", Get("/healthz?x=" + std::string(20 << 10, 'a')),
       431, "HEADERS_TOO_LARGE", true},
      // Found by http_server_fuzzer: client bytes quoted in an error message made the body
      // invalid UTF-8, hence not JSON; they are now U+FFFD (ErrorCode() parses the body).
      {"CORS preflight from an origin that is not UTF-8",
       "OPTIONS /api/v1/documents HTTP/1.1\r\nHost: x\r\nOrigin: https://a\xa3p.example\r\n"
       "Access-Control-Request-Method: POST\r\n\r\n",
       403, "CORS_ORIGIN_NOT_ALLOWED", false},
      {"path decoding to bytes that are not UTF-8", Get("/%ff%c3%28/x"), 404, "NOT_FOUND", false},
      {"limit query parameter out of range",
       Get("/api/v1/documents?page_size=99999999999999999999"), 400, "VALIDATION_FAILED", false},
      {"WebSocket upgrade with a bad key",
       "GET /ws/documents/{doc} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
       "Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n",
       400, "BAD_UPGRADE", true},
      {"WebSocket upgrade with a control character in userId",
       "GET /ws/documents/{doc}?userId=a%01b HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
       "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "
       "dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
       400, "INVALID_QUERY", true},
  };
}

// The server answers a plain request from a new connection.
void ExpectServing(int port) {
  auto r = HttpRequestOnce(port, "GET", "/healthz");
  REQUIRE(r.has_value());
  CHECK(r->status == 200);
}

TEST_CASE("EveryBadHttpRequestGetsItsExactAnswerAndOthersAreStillServed", "[badinput][http]") {
  WsHarness h;
  std::string doc = h.CreateDocument();
  auto cases = HttpCases();
  for (const HttpCase& c : cases) {
    INFO("case: " << c.name);
    HttpClient client(h.port());
    REQUIRE(client.connected());
    REQUIRE(client.SendRaw(Replace(c.request, "{doc}", doc)));
    auto r = client.ReadResponse(5000);
    REQUIRE(r.has_value());
    INFO("body: " << r->body.substr(0, 300));
    CHECK(r->status == c.status);
    CHECK(r->ErrorCode() == c.code);
    if (c.closes) {
      CHECK(r->Header("connection") == "close");
      CHECK(client.WaitForClose(3000));
    } else {
      // Keep-alive: the same connection answers the next request.
      REQUIRE(client.SendRaw(Get("/healthz")));
      auto next = client.ReadResponse(5000);
      REQUIRE(next.has_value());
      CHECK(next->status == 200);
    }
    ExpectServing(h.port());
  }
  CHECK(cases.size() >= 40);
}

TEST_CASE("SlowHeadersAreClosedWithoutAnswerAfterTheHeaderTimeout", "[badinput][http]") {
  WsHarness h(StorageMode::kMemory, [](Config& c) { c.header_timeout_s = 1; });
  HttpClient slow(h.port());
  REQUIRE(slow.SendRaw("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
  auto start = std::chrono::steady_clock::now();
  // Trickle a byte of a header every 300 ms: the timeout counts from accept, not from the
  // last byte, so trickling does not keep the connection alive.
  bool closed = false;
  for (int i = 0; i < 10 && !closed; ++i) {
    ExpectServing(h.port());
    if (!slow.SendRaw("X")) break;
    closed = slow.WaitForClose(300);
  }
  if (!closed) closed = slow.WaitForClose(2000);
  CHECK(closed);
  auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(elapsed >= std::chrono::milliseconds(800));
  CHECK(elapsed < std::chrono::milliseconds(2500));
  ExpectServing(h.port());
}

TEST_CASE("ThousandPipelinedRequestsAreAllAnsweredInOrder", "[badinput][http]") {
  WsHarness h;
  HttpClient c(h.port());
  std::string burst;
  for (int i = 0; i < 1000; ++i) {
    burst += (i % 2 == 0) ? Get("/healthz") : Get("/api/v1/documents/nope-" + std::to_string(i));
  }
  REQUIRE(c.SendRaw(burst));
  for (int i = 0; i < 1000; ++i) {
    auto r = c.ReadResponse(5000);
    REQUIRE(r.has_value());
    CHECK(r->status == ((i % 2 == 0) ? 200 : 404));
  }
  ExpectServing(h.port());
}

TEST_CASE("RequestPipelinedAfterAMalformedOneIsNeverAnswered", "[badinput][http]") {
  WsHarness h;
  HttpClient c(h.port());
  REQUIRE(c.SendRaw("GET /healthz HTTP/1.1\r\nHost x\r\n\r\n" + Get("/healthz")));
  auto r = c.ReadResponse();
  REQUIRE(r.has_value());
  CHECK(r->status == 400);
  CHECK_FALSE(c.ReadResponse(500).has_value());
  ExpectServing(h.port());
}

// --- WebSocket frames ---

// One client frame built by hand.
std::string Frame(uint8_t first_byte, std::string_view payload, bool masked = true,
                  std::optional<uint64_t> announced = std::nullopt) {
  std::string f;
  f.push_back(static_cast<char>(first_byte));
  uint8_t mask_bit = masked ? 0x80 : 0;
  uint64_t n = announced.value_or(payload.size());
  if (n < 126) {
    f.push_back(static_cast<char>(mask_bit | n));
  } else if (n < 65536) {
    f.push_back(static_cast<char>(mask_bit | 126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n & 0xff));
  } else {
    f.push_back(static_cast<char>(mask_bit | 127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  }
  const char key[4] = {0x11, 0x22, 0x33, 0x44};
  if (masked) f.append(key, 4);
  for (size_t i = 0; i < payload.size(); ++i) {
    f.push_back(masked ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i]);
  }
  return f;
}
constexpr uint8_t kFin = 0x80;
std::string CloseBody(uint16_t code, std::string_view reason = "") {
  std::string b;
  b.push_back(static_cast<char>(code >> 8));
  b.push_back(static_cast<char>(code & 0xff));
  b.append(reason);
  return b;
}

struct WsFrameCase {
  const char* name;
  std::string bytes;
  uint16_t close_code;     // expected close code from the server (0: a close without a code)
  const char* error_code;  // nullptr: closed; otherwise stays open and gets this `error`
};

std::vector<WsFrameCase> WsFrameCases() {
  const std::string ping = R"({"type":"ping"})";
  return {
      {"unmasked client frame", Frame(kFin | 0x1, ping, false), 1002, nullptr},
      {"RSV1 set (no extension negotiated)", Frame(kFin | 0x40 | 0x1, ping), 1002, nullptr},
      {"RSV2 set", Frame(kFin | 0x20 | 0x1, ping), 1002, nullptr},
      {"RSV3 set", Frame(kFin | 0x10 | 0x1, ping), 1002, nullptr},
      {"reserved data opcode 0x3", Frame(kFin | 0x3, "x"), 1002, nullptr},
      {"reserved control opcode 0xB", Frame(kFin | 0xB, "x"), 1002, nullptr},
      // The header and the first 16 bytes of the payload are enough: the rest never comes.
      {"frame announcing 2 MiB (over the message limit)",
       Frame(kFin | 0x1, std::string(16, ' '), true, 2u << 20), 1009, nullptr},
      {"fragments adding up to over the limit",
       Frame(0x1, std::string(1 << 20, ' ')) + Frame(0x0, std::string(1 << 20, ' ')), 1009,
       nullptr},
      // wslay's frame layer rejects these two before its event layer sees a frame and answers
      // with a close frame without a status code (reported as 0), then the connection ends.
      {"fragmented ping", Frame(0x9, "a") + Frame(kFin | 0x0, "b"), 0, nullptr},
      {"control frame over 125 bytes", Frame(kFin | 0x9, std::string(126, 'p')), 0, nullptr},
      {"invalid UTF-8 in a text frame", Frame(kFin | 0x1, "{\"type\":\"\xc3\x28\"}"), 1007,
       nullptr},
      {"UTF-8 sequence split across fragments, invalid",
       Frame(0x1, "{\"type\":\"\xe2\x82") + Frame(kFin | 0x0, "\x28\"}"), 1007, nullptr},
      {"overlong UTF-8 encoding", Frame(kFin | 0x1, "\"\xc0\xaf\""), 1007, nullptr},
      {"continuation without a start", Frame(kFin | 0x0, ping), 1002, nullptr},
      {"new text frame inside a fragmented message", Frame(0x1, "{") + Frame(kFin | 0x1, "{}"),
       1002, nullptr},
      {"close in the middle of a fragmented message",
       Frame(0x1, "{\"type\":") + Frame(kFin | 0x8, CloseBody(1000)), 1000, nullptr},
      {"close with a reserved code (1005)", Frame(kFin | 0x8, CloseBody(1005)), 1002, nullptr},
      {"close with code 999", Frame(kFin | 0x8, CloseBody(999)), 1002, nullptr},
      {"close with a one-byte body", Frame(kFin | 0x8, "\x03"), 0, nullptr},
      {"close reason not UTF-8", Frame(kFin | 0x8, CloseBody(1000, "\xff\xfe")), 1007, nullptr},
      {"binary frame", Frame(kFin | 0x2, "\x01\x02"), 0, "BINARY_NOT_SUPPORTED"},
      {"empty text frame", Frame(kFin | 0x1, ""), 0, "INVALID_JSON"},
  };
}

// Reads what `c` receives for `ms`: nothing of it may be a remote_update.
void ExpectNoRelay(WsClient& c, int ms = 100) {
  for (;;) {
    auto m = c.Next(ms);
    if (!m.ok()) break;
    if (m->kind != WsMessage::Kind::kText) continue;
    CHECK(json::parse(m->data, nullptr, false)["type"] != "remote_update");
  }
}

// A new client joins, pings and gets its pong: the server still serves others.
void ExpectWsServing(WsHarness& h, const std::string& doc) {
  auto c = h.JoinWithState(doc, "witness");
  REQUIRE(c->SendJson({{"type", "ping"}, {"ts", 5}}).ok());
  auto pong = c->NextOfType("pong");
  REQUIRE(pong.ok());
  CHECK((*pong)["ts"] == 5);
  CHECK(c->Close().ok());
}

TEST_CASE("EveryBadWebSocketFrameGetsItsExactCloseCode", "[badinput][ws]") {
  WsHarness h;
  std::string doc = h.CreateDocument();
  for (const WsFrameCase& c : WsFrameCases()) {
    INFO("case: " << c.name);
    auto a = h.JoinWithState(doc, "alice");
    REQUIRE(a->SendRaw(c.bytes).ok());
    if (c.error_code == nullptr || c.close_code != 0) {
      auto code = a->WaitClosed(5000);
      REQUIRE(code.ok());
      CHECK(*code == c.close_code);
    } else {
      auto err = a->NextOfType("error");
      REQUIRE(err.ok());
      CHECK((*err)["code"] == c.error_code);
      // Still open: a ping is answered on the same connection.
      REQUIRE(a->SendJson({{"type", "ping"}, {"ts", 1}}).ok());
      CHECK(a->NextOfType("pong").ok());
    }
    ExpectWsServing(h, doc);
  }
}

int RawConnect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  return fd;
}
void SendAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    REQUIRE(n > 0);
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}
// Closes with RST instead of FIN.
void Reset(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

// The server's cap on the answers a connection may have queued (io/http_server.cc
// kMaxQueuedAnswers). It is checked before a request is parsed, so one answer may go past it:
// the slack is far more than a /healthz answer.
constexpr int64_t kAnswerCap = 1 << 20;
constexpr int64_t kOneAnswerSlack = 64 << 10;

// The value of `name` in a Prometheus text page; -1 when absent.
int64_t PrometheusValue(const std::string& page, const std::string& name) {
  size_t pos = page.find("\n" + name + " ");
  if (pos == std::string::npos) return -1;
  return static_cast<int64_t>(std::stod(page.substr(pos + name.size() + 2)));
}

TEST_CASE("PipeliningClientThatNeverReadsIsNoLongerReadOnceItsAnswersReachTheCap",
          "[badinput][http]") {
  WsHarness h;
  // A small fixed receive window: the kernel holds few answers for the client, so the
  // server's own queue is what fills up.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  int window = 16 << 10;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &window, sizeof window);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(h.port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);

  std::string thousand;
  for (int i = 0; i < 1000; ++i) thousand += Get("/healthz");
  // 5000 GETs in one write, then the client keeps writing and never reads.
  SendAll(fd, thousand + thousand + thousand + thousand + thousand);
  REQUIRE(::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) == 0);
  // Beyond the kernel's buffers on both sides (a few MiB) only a server that kept reading
  // takes more: 64 MiB of requests would be over a million answers.
  constexpr int64_t kWriteLimit = 64 << 20;
  int64_t written = 5000 * static_cast<int64_t>(Get("/healthz").size());
  size_t offset = 0;  // into `thousand`: writes may stop inside a request
  // Writes what the socket takes within `ms`; returns the bytes written.
  auto write_for = [&](int ms) {
    int64_t n_total = 0;
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < end && written < kWriteLimit) {
      ssize_t n = ::send(fd, thousand.data() + offset, thousand.size() - offset, MSG_NOSIGNAL);
      if (n > 0) {
        offset = (offset + static_cast<size_t>(n)) % thousand.size();
        written += n;
        n_total += n;
        continue;
      }
      REQUIRE((n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)));
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, 50);
    }
    return n_total;
  };
  // Until a full second passes in which the client could write nothing and the server parsed
  // no request (bounded: a server that keeps reading reaches kWriteLimit first).
  auto start = std::chrono::steady_clock::now();
  int64_t parsed = h.Metric("quire_http_requests_total");
  for (;;) {
    int64_t wrote = write_for(1000);
    int64_t now_parsed = h.Metric("quire_http_requests_total");
    if ((wrote == 0 && now_parsed == parsed) || written >= kWriteLimit ||
        std::chrono::steady_clock::now() - start > std::chrono::seconds(60)) {
      break;
    }
    parsed = now_parsed;
  }
  INFO("client wrote " << written << " bytes, server parsed " << parsed << " requests");
  CHECK(written < kWriteLimit);  // the server stopped reading
  CHECK(parsed < written / static_cast<int64_t>(Get("/healthz").size()));

  // Meanwhile other clients are served, and none of the flood is parsed any more.
  auto metrics = HttpRequestOnce(h.port(), "GET", "/metrics");
  REQUIRE(metrics.has_value());
  REQUIRE(metrics->status == 200);
  ExpectServing(h.port());
  ExpectServing(h.port());
  CHECK(h.Metric("quire_http_requests_total") == parsed + 3);
  // Bounded server memory: the answers waiting for the client stay at the cap.
  int64_t queued = PrometheusValue(metrics->body, "quire_send_queue_bytes");
  WARN("never-reading pipeliner: " << written << " bytes written, " << parsed
                                   << " requests parsed, " << queued << " answer bytes queued");
  CHECK(queued >= 0);
  CHECK(queued <= kAnswerCap + kOneAnswerSlack);

  // Once it goes, so does everything it held.
  Reset(fd);
  for (int i = 0; i < 250 && h.Metric("quire_http_connections") != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(h.Metric("quire_http_connections") == 0);
  auto after = HttpRequestOnce(h.port(), "GET", "/metrics");
  REQUIRE(after.has_value());
  CHECK(PrometheusValue(after->body, "quire_send_queue_bytes") == 0);
}

TEST_CASE("AbruptDisconnectsAtEveryHandshakeStageLeaveNothingBehind", "[badinput][ws]") {
  WsHarness h;
  std::string doc = h.CreateDocument();
  const std::string upgrade = "GET /ws/documents/" + doc +
                              "?userId=u HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
  struct Stage {
    const char* name;
    size_t request_bytes;  // how much of the upgrade request is sent
    std::string after;     // bytes sent after the request (frames)
    bool rst;
  };
  const std::vector<Stage> stages = {
      {"TCP connect only, FIN", 0, "", false},
      {"TCP connect only, RST", 0, "", true},
      {"half the request line", 10, "", false},
      {"headers without the final CRLF", upgrade.size() - 2, "", true},
      {"full request, 101 never read, FIN", upgrade.size(), "", false},
      {"full request, 101 never read, RST", upgrade.size(), "", true},
      {"after 101, half a frame header", upgrade.size(), std::string("\x81", 1), false},
      {"after 101, half a frame payload", upgrade.size(),
       Frame(kFin | 0x1, R"({"type":"ping"})").substr(0, 9), true},
      {"after 101, mid fragmented message", upgrade.size(), Frame(0x1, "{\"type\""), true},
  };
  for (const Stage& s : stages) {
    INFO("stage: " << s.name);
    int fd = RawConnect(h.port());
    if (s.request_bytes > 0) SendAll(fd, std::string_view(upgrade).substr(0, s.request_bytes));
    if (!s.after.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let the 101 happen first
      SendAll(fd, s.after);
    }
    if (s.rst)
      Reset(fd);
    else
      ::close(fd);
    ExpectWsServing(h, doc);
  }
  // Every one of those connections is gone (polled: the server learns of each close on its loop).
  for (int i = 0; i < 100 && h.Metric("quire_http_connections") != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(h.Metric("quire_websocket_connections") == 0);
  CHECK(h.Metric("quire_websocket_open_documents") == 0);
  CHECK(h.Metric("quire_http_connections") == 0);
}

// --- JSON protocol ---

struct JsonCase {
  const char* name;
  std::string message;
  const char* error_code;
};

std::vector<JsonCase> JsonCases() {
  return {
      {"not JSON", "hello", "INVALID_JSON"},
      {"truncated JSON", R"({"type":"ping")", "INVALID_JSON"},
      {"JSON array", "[1,2]", "INVALID_MESSAGE"},
      {"JSON string", R"("ping")", "INVALID_MESSAGE"},
      {"object without type", "{}", "INVALID_MESSAGE"},
      {"type of the wrong type", R"({"type":5})", "INVALID_MESSAGE"},
      {"unknown type", R"({"type":"bogus"})", "UNKNOWN_TYPE"},
      {"type differing in case", R"({"type":"PING"})", "UNKNOWN_TYPE"},
      // The error quotes the type cut at 64 bytes; the cut must not split the "é" (the
      // client's UTF-8 check would fail the connection). Found by json_protocol_fuzzer.
      {"unknown type with a multi-byte character at the cut",
       R"({"type":")" + std::string(63, 'a') + "\xc3\xa9" + R"("})", "UNKNOWN_TYPE"},
      {"nested 100000 deep, unclosed", std::string(100000, '['), "INVALID_JSON"},
      {"nested 10000 deep in ping.ts",
       R"({"type":"ping","ts":)" + std::string(10000, '[') + std::string(10000, ']') + "}",
       "INVALID_MESSAGE"},
      {"number beyond double range", R"({"type":"ping","ts":1e400})", "INVALID_JSON"},
      {"ping ts a string", R"({"type":"ping","ts":"now"})", "INVALID_MESSAGE"},
      {"update without opId", R"({"type":"update","deltaB64":"AA=="})", "INVALID_MESSAGE"},
      {"update opId a number", R"({"type":"update","opId":7,"deltaB64":"AA=="})",
       "INVALID_MESSAGE"},
      {"update opId over 128 bytes",
       R"({"type":"update","opId":")" + std::string(129, 'o') + R"(","deltaB64":"AA=="})",
       "INVALID_MESSAGE"},
      {"update without deltaB64", R"({"type":"update","opId":"o1"})", "INVALID_MESSAGE"},
      {"update deltaB64 not base64", R"({"type":"update","opId":"o1","deltaB64":"@@@@"})",
       "INVALID_MESSAGE"},
      {"update deltaB64 without padding", R"({"type":"update","opId":"o1","deltaB64":"AAA"})",
       "INVALID_MESSAGE"},
      {"update deltaB64 url-safe alphabet", R"({"type":"update","opId":"o1","deltaB64":"-_-_"})",
       "INVALID_MESSAGE"},
      {"update baseVersion beyond int64",
       R"({"type":"update","opId":"o1","deltaB64":"AA==","baseVersion":18446744073709551616})",
       "INVALID_MESSAGE"},
      {"update baseVersion negative",
       R"({"type":"update","opId":"o1","deltaB64":"AA==","baseVersion":-1})", "INVALID_MESSAGE"},
      {"update decoded over the payload limit",
       R"({"type":"update","opId":"big","deltaB64":")" +
           Base64Encode(AsBytes(std::string((1 << 20) + 1, 'x'))) + R"("})",
       "PAYLOAD_TOO_LARGE"},
      {"presence cursor of strings", R"({"type":"presence","cursor":{"from":"a","to":"b"}})",
       "INVALID_MESSAGE"},
      {"presence cursor negative", R"({"type":"presence","cursor":{"from":-1,"to":2}})",
       "INVALID_MESSAGE"},
      {"join with an empty userId", R"({"type":"join","userId":""})", "INVALID_MESSAGE"},
      {"snapshot beyond the head",
       R"({"type":"snapshot","version":1000000,"snapshotB64":"AA==","opId":"s1"})",
       "INVALID_SNAPSHOT"},
      {"snapshot without snapshotB64", R"({"type":"snapshot","version":0})", "INVALID_MESSAGE"},
  };
}

TEST_CASE("EveryBadJsonMessageGetsItsExactErrorAndTheConnectionStaysOpen", "[badinput][json]") {
  WsHarness h;
  std::string doc = h.CreateDocument();
  auto a = h.JoinWithState(doc, "alice");
  auto b = h.JoinWithState(doc, "bob");
  for (const JsonCase& c : JsonCases()) {
    INFO("case: " << c.name);
    REQUIRE(a->SendText(c.message).ok());
    auto err = a->NextOfType("error");
    REQUIRE(err.ok());
    CHECK((*err)["code"] == c.error_code);
    // Same connection still answers, and nothing was relayed to the other member.
    REQUIRE(a->SendJson({{"type", "ping"}, {"ts", 3}}).ok());
    auto pong = a->NextOfType("pong");
    REQUIRE(pong.ok());
    CHECK((*pong)["ts"] == 3);
  }
  ExpectNoRelay(*b);
  ExpectWsServing(h, doc);
  // A good update still goes through after all of that.
  REQUIRE(a->SendJson(UpdateMessage("good", "bytes")).ok());
  CHECK(a->NextOfType("ack").ok());
  auto relay = b->NextOfType("remote_update");
  REQUIRE(relay.ok());
  CHECK((*relay)["opId"] == "good");
}

TEST_CASE("TenThousandMessagesInABurstAreRateLimitedWithAnErrorThenClose", "[badinput][json]") {
  WsHarness h(StorageMode::kMemory, [](Config& c) { c.max_messages_per_second = 1000; });
  std::string doc = h.CreateDocument();
  auto a = h.JoinWithState(doc, "flood");
  std::string burst;
  for (int i = 0; i < 10000; ++i) burst += Frame(kFin | 0x1, R"({"type":"ping","ts":1})");
  Status sent = a->SendRaw(burst, 10000);  // the server may close before it read everything
  int pongs = 0;
  std::optional<json> error;
  uint16_t close_code = 0;
  for (;;) {
    auto m = a->Next(5000);
    if (!m.ok()) break;
    if (m->kind == WsMessage::Kind::kClose) {
      close_code = m->close_code;
      break;
    }
    json j = json::parse(m->data, nullptr, false);
    if (j["type"] == "pong") ++pongs;
    if (j["type"] == "error") error = j;
  }
  INFO("pongs " << pongs << " close " << close_code << " sent " << sent.ToString());
  REQUIRE(error.has_value());
  CHECK((*error)["code"] == "RATE_LIMITED");
  CHECK(close_code == 1008);
  // The burst allowance (twice the rate) was answered, and far from all 10,000.
  CHECK(pongs >= 1000);
  CHECK(pongs <= 2100);
  ExpectWsServing(h, doc);
}

TEST_CASE("AClientWithinTheRateLimitIsNeverLimited", "[badinput][json]") {
  WsHarness h(StorageMode::kMemory, [](Config& c) { c.max_messages_per_second = 200; });
  std::string doc = h.CreateDocument();
  auto a = h.JoinWithState(doc, "steady");
  // 300 messages over ~1.5 s: 200/s sustained, within the limit.
  for (int i = 0; i < 300; ++i) {
    REQUIRE(a->SendJson({{"type", "ping"}, {"ts", i}}).ok());
    auto pong = a->NextOfType("pong");
    REQUIRE(pong.ok());
    if (i % 10 == 9) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// --- Yjs update bytes ---

struct YjsCase {
  const char* name;
  std::string delta_b64;
  const char* error_code;  // "" = acknowledged
};

std::vector<YjsCase> YjsCases() {
  auto b64 = [](std::string raw) { return Base64Encode(AsBytes(raw)); };
  // "AQEBAAQBAXQBSAA=": client 1 inserts "H" into text "t" (tests/data/yjs/vectors.json).
  return {
      {"empty update", "", "INVALID_UPDATE"},
      {"one zero byte (no structs) and no delete set", "AA==", "INVALID_UPDATE"},
      {"garbage", b64("\xde\xad\xbe\xef\x01\x02\x03"), "INVALID_UPDATE"},
      {"truncated valid update", b64(std::string("\x01\x01\x01\x00\x04\x01", 6)), "INVALID_UPDATE"},
      {"varint that never ends", b64(std::string(20, '\xff')), "INVALID_UPDATE"},
      {"client count of 2^32", b64("\x80\x80\x80\x80\x10"), "INVALID_UPDATE"},
      {"struct count claiming a billion", b64(std::string("\x01\x80\x94\xeb\xdc\x03\x01\x00", 8)),
       "INVALID_UPDATE"},
      {"trailing bytes after a valid update",
       b64(std::string("\x01\x01\x01\x00\x04\x01\x01\x74\x01\x48\x00\x07\x07", 13)),
       "INVALID_UPDATE"},
      {"valid update", "AQEBAAQBAXQBSAA=", ""},
      {"the same update again (duplicate content, new opId)", "AQEBAAQBAXQBSAA=", ""},
  };
}

TEST_CASE("YjsUpdateBytesAreValidatedAndBadOnesNeverRelayed", "[badinput][yjs]") {
  WsHarness h;
  std::string doc = h.CreateDocument("yjs");
  auto a = h.JoinWithState(doc, "alice");
  auto b = h.JoinWithState(doc, "bob");
  int n = 0;
  for (const YjsCase& c : YjsCases()) {
    INFO("case: " << c.name);
    std::string op = "y" + std::to_string(n++);
    REQUIRE(a->SendJson({{"type", "update"}, {"opId", op}, {"deltaB64", c.delta_b64}}).ok());
    auto answer = a->NextJson();
    while (answer.ok() && (*answer)["type"] != "ack" && (*answer)["type"] != "error") {
      answer = a->NextJson();
    }
    REQUIRE(answer.ok());
    if (std::string(c.error_code).empty()) {
      CHECK((*answer)["type"] == "ack");
      auto relay = b->NextOfType("remote_update");
      REQUIRE(relay.ok());
      CHECK((*relay)["opId"] == op);
    } else {
      CHECK((*answer)["type"] == "error");
      CHECK((*answer)["code"] == c.error_code);
      CHECK((*answer)["opId"] == op);
      ExpectNoRelay(*b, 50);
    }
  }
  ExpectWsServing(h, doc);
}

}  // namespace
}  // namespace quire::test
