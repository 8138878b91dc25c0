// libFuzzer target: HTTP request handling end to end, in process. The input is what one client
// sends on one connection. The server is the real one, assembled by cli::ServerApp exactly as
// `quire serve` assembles it (io::HttpServer connection code with llhttp, the REST router and
// handlers of API v1, the history routes, /healthz /readyz /metrics, OpenAPI, CORS, the
// WebSocket upgrade) over memory storage; the client is a libuv TCP connection on the same loop
// to 127.0.0.1. Every input runs to completion: the loop turns until the server has answered,
// closed the connection and released it.
//
// Input: byte 0 picks the client's behaviour (bits 0-1: how many pieces the rest is written in,
// each piece in its own loop iteration so the server parses across reads; bit 2: reset the
// connection right after writing instead of reading the answers). The rest is the byte stream.
//
// Invariants, besides no crash, no sanitizer report and no leak:
//   - every input completes (the connection is released) within kDeadlineMs;
//   - what the server sends parses as a sequence of HTTP/1.1 responses (up to a 101, after
//     which WebSocket frames follow) that ends at a message boundary;
//   - no answer is a 500 (storage is memory and never fails here, so a 500 is a handler bug);
//   - every application/json body is valid JSON.
// HEAD answers carry no body the response parser could frame, so the answer check is skipped
// for inputs that contain a HEAD request.
//
// Server state persists across inputs (documents made by one input are seen by the next), as it
// does for a real server; the server is shut down gracefully and started afresh every
// kRestartEvery inputs, which bounds memory and checks that shutdown completes (ServerApp::Run
// returns OK only when every handle closed and uv_loop_close succeeded).
#include <llhttp.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/server_app.h"
#include "core/base64.h"
#include "core/config.h"
#include "core/log.h"

namespace {

using quire::Bytes;
using quire::Status;

constexpr int kRestartEvery = 4000;
constexpr int64_t kDeadlineMs = 5000;
constexpr size_t kMaxAnswerBytes = 64 << 20;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "http_server_fuzzer: %s\n", what.c_str());
  std::abort();
}

quire::Config FuzzConfig() {
  quire::Config c;
  c.host = "127.0.0.1";
  c.port = 0;
  c.database_url = "memory://";
  c.log_level = quire::LogLevel::kError;
  c.allowed_origins = {"https://app.example"};
  c.max_body_bytes = 8 << 10;
  c.max_header_bytes = 2 << 10;
  return c;
}

// The server and its loop; recreated every kRestartEvery inputs.
struct Server {
  quire::Logger logger{quire::LogLevel::kError};
  std::unique_ptr<quire::cli::ServerApp> app;
  int inputs = 0;
};

uv_loop_t* Loop(Server& s) { return s.app->loop(); }

int64_t OpenConnections(Server& s) {
  return s.app->metrics().gauge("quire_http_connections", "").value();
}
int64_t AcceptedConnections(Server& s) {
  return s.app->metrics().counter("quire_http_connections_total", "").value();
}

// Runs the loop until `done()` or the deadline.
template <typename Done>
void RunUntil(Server& s, Done done, const char* what) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kDeadlineMs);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) Fail(std::string("timed out: ") + what);
    uv_run(Loop(s), UV_RUN_ONCE);
  }
}

// Documents the seed corpus names, so that the history, state, version and fork routes reach
// real data: "y" (Yjs, three updates typing "Hel"), "m" (automerge, opaque bytes, a named
// version), "gone" (deleted).
void SeedDocuments(Server& s) {
  auto& docs = s.app->documents();
  int pending = 0;
  auto create = [&](const char* id, quire::CrdtKind kind) {
    quire::projection::CreateCommand cmd;
    cmd.id = id;
    cmd.title = std::string("seed ") + id;
    cmd.crdt = kind;
    ++pending;
    docs.Create(std::move(cmd), [&](quire::Result<quire::projection::DocumentRecord> r) {
      if (!r.ok()) Fail("seed create: " + r.status().ToString());
      --pending;
    });
  };
  auto append = [&](const char* id, const char* op, Bytes bytes) {
    ++pending;
    docs.AppendUpdate(id, op, "seed", std::move(bytes),
                      [&](quire::Result<quire::eventlog::AppendResult> r) {
                        if (!r.ok()) Fail("seed append: " + r.status().ToString());
                        --pending;
                      });
  };
  create("y", quire::CrdtKind::kYjs);
  create("m", quire::CrdtKind::kAutomerge);
  create("gone", quire::CrdtKind::kOpaque);
  RunUntil(
      s, [&] { return pending == 0; }, "seed create");
  int op = 0;
  for (const char* b64 : {"AQEBAAQBAXQBSAA=", "AQEBAYQBAAFlAA==", "AQEBAoQBAQFsAA=="}) {
    auto bytes = quire::Base64Decode(b64);
    if (!bytes.ok()) Fail("seed base64");
    append("y", ("y" + std::to_string(op++)).c_str(), *bytes);
    RunUntil(
        s, [&] { return pending == 0; }, "seed append");
  }
  for (const char* u : {"one", "two"}) {
    append("m", u, Bytes(u, u + 3));
    RunUntil(
        s, [&] { return pending == 0; }, "seed append");
  }
  ++pending;
  docs.SetDeleted("gone", true, "seed", [&](quire::Result<quire::projection::DocumentRecord> r) {
    if (!r.ok()) Fail("seed delete: " + r.status().ToString());
    --pending;
  });
  RunUntil(
      s, [&] { return pending == 0; }, "seed delete");
}

void StopServer(Server& s) {
  s.app->RequestShutdown();
  Status st = s.app->Run();
  if (!st.ok()) Fail("shutdown: " + st.ToString());
  s.app.reset();
}

void StartServer(Server& s) {
  quire::cli::ServerAppOptions o;
  o.compactor_interval_ms = 1000;
  s.app = std::make_unique<quire::cli::ServerApp>(FuzzConfig(), s.logger, std::move(o));
  Status st = s.app->Start();
  if (!st.ok()) Fail("start: " + st.ToString());
  SeedDocuments(s);
  s.inputs = 0;
}

Server& TheServer() {
  static Server* server = [] {
    auto* s = new Server;
    StartServer(*s);
    std::atexit([] {
      // Graceful stop at the end of a run, so LSan sees the server's memory released.
      StopServer(TheServer());
    });
    return s;
  }();
  return *server;
}

// --- The client: one connection on the server's loop ---

struct Client {
  uv_tcp_t tcp{};
  uv_connect_t connect{};
  uv_idle_t feeder{};  // writes one piece per loop iteration
  uv_shutdown_t shutdown{};
  std::vector<std::string> pieces;
  size_t next_piece = 0;
  bool reset_after_write = false;
  bool connected = false;
  int handles_open = 0;
  std::string answer;
  bool failed_connect = false;
};

struct WriteReq {
  uv_write_t req{};
  std::string data;
};

void OnClosed(uv_handle_t* h) noexcept { --static_cast<Client*>(h->data)->handles_open; }

void CloseClient(Client* c, bool reset) {
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&c->tcp))) return;
  uv_idle_stop(&c->feeder);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->feeder), OnClosed);
  if (reset) {
    uv_tcp_close_reset(&c->tcp, OnClosed);
  } else {
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), OnClosed);
  }
}

void OnWrite(uv_write_t* req, int) noexcept { delete reinterpret_cast<WriteReq*>(req); }

void OnAlloc(uv_handle_t*, size_t, uv_buf_t* buf) noexcept {
  static char chunk[64 << 10];
  *buf = uv_buf_init(chunk, sizeof chunk);
}

void OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept {
  auto* c = static_cast<Client*>(s->data);
  if (n > 0) {
    c->answer.append(buf->base, static_cast<size_t>(n));
    if (c->answer.size() > kMaxAnswerBytes) Fail("the answer grows without bound");
    return;
  }
  if (n < 0) CloseClient(c, false);  // EOF (or the server reset): the answer is complete
}

void OnShutdown(uv_shutdown_t*, int) noexcept {}

void Feed(uv_idle_t* idle) noexcept {
  auto* c = static_cast<Client*>(idle->data);
  if (c->next_piece < c->pieces.size()) {
    auto* w = new WriteReq;
    w->data = std::move(c->pieces[c->next_piece++]);
    uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c->tcp), &b, 1, OnWrite) != 0) {
      delete w;
      CloseClient(c, false);
    }
    return;
  }
  uv_idle_stop(idle);
  if (c->reset_after_write) {
    CloseClient(c, true);
    return;
  }
  // The request stream ends here: the server sees EOF after the last byte.
  if (uv_shutdown(&c->shutdown, reinterpret_cast<uv_stream_t*>(&c->tcp), OnShutdown) != 0) {
    CloseClient(c, false);
  }
}

void OnConnect(uv_connect_t* req, int status) noexcept {
  auto* c = static_cast<Client*>(req->data);
  if (status != 0) {
    c->failed_connect = true;
    CloseClient(c, false);
    return;
  }
  c->connected = true;
  // Pieces go out as written (Nagle would hold each small piece for the server's delayed ACK).
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), OnAlloc, OnRead);
  uv_idle_start(&c->feeder, Feed);
}

// --- Checks on the request and answer streams ---

struct RequestScan {
  bool has_head = false;
};

int OnRequestHeaders(llhttp_t* p) noexcept {
  if (p->method == HTTP_HEAD) static_cast<RequestScan*>(p->data)->has_head = true;
  return 0;
}

// True when the input contains a HEAD request the server's parser would see.
bool ContainsHead(std::string_view stream) {
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  settings.on_headers_complete = OnRequestHeaders;
  llhttp_t parser;
  llhttp_init(&parser, HTTP_REQUEST, &settings);
  RequestScan scan;
  parser.data = &scan;
  (void)llhttp_execute(&parser, stream.data(), stream.size());
  return scan.has_head;
}

struct AnswerScan {
  int status = 0;
  bool json = false;
  bool upgraded = false;
  std::string content_type_value;
  bool in_content_type = false;
  std::string body;
  int answers = 0;
};

AnswerScan* A(llhttp_t* p) { return static_cast<AnswerScan*>(p->data); }

int OnAnswerBegin(llhttp_t* p) noexcept {
  A(p)->json = false;
  A(p)->body.clear();
  A(p)->content_type_value.clear();
  return 0;
}
int OnAnswerField(llhttp_t* p, const char* at, size_t n) noexcept {
  std::string f(at, n);
  for (char& ch : f) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  A(p)->in_content_type = f == "content-type";
  return 0;
}
int OnAnswerValue(llhttp_t* p, const char* at, size_t n) noexcept {
  if (A(p)->in_content_type) A(p)->content_type_value.append(at, n);
  return 0;
}
int OnAnswerHeaders(llhttp_t* p) noexcept {
  AnswerScan* a = A(p);
  a->status = p->status_code;
  a->json = a->content_type_value.rfind("application/json", 0) == 0;
  if (a->status == 500) Fail("a request was answered 500");
  if (a->status == 101) a->upgraded = true;
  return 0;
}
int OnAnswerBody(llhttp_t* p, const char* at, size_t n) noexcept {
  A(p)->body.append(at, n);
  return 0;
}
int OnAnswerComplete(llhttp_t* p) noexcept {
  AnswerScan* a = A(p);
  ++a->answers;
  if (a->json && !nlohmann::json::accept(a->body)) {
    Fail("status " + std::to_string(a->status) + " with a body that is not JSON: " + a->body);
  }
  return a->upgraded ? HPE_PAUSED : 0;
}

void CheckAnswer(const std::string& answer) {
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  settings.on_message_begin = OnAnswerBegin;
  settings.on_header_field = OnAnswerField;
  settings.on_header_value = OnAnswerValue;
  settings.on_headers_complete = OnAnswerHeaders;
  settings.on_body = OnAnswerBody;
  settings.on_message_complete = OnAnswerComplete;
  llhttp_t parser;
  llhttp_init(&parser, HTTP_RESPONSE, &settings);
  AnswerScan scan;
  parser.data = &scan;
  llhttp_errno_t err = llhttp_execute(&parser, answer.data(), answer.size());
  if (scan.upgraded) return;  // WebSocket frames follow the 101
  if (err == HPE_OK) err = llhttp_finish(&parser);
  if (err != HPE_OK) {
    Fail(std::string("the answer stream is not HTTP/1.1 (") + llhttp_errno_name(err) + ": " +
         (parser.reason != nullptr ? parser.reason : "") + ") after " +
         std::to_string(scan.answers) + " answers:\n" + answer.substr(0, 2000));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Server& server = TheServer();
  if (++server.inputs > kRestartEvery) {
    StopServer(server);
    StartServer(server);
  }
  uint8_t mode = data[0];
  std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);

  Client c;
  c.reset_after_write = (mode & 4) != 0;
  size_t pieces = 1 + (mode & 3);
  // Split points from the stream's length, so a given input always splits the same way.
  for (size_t i = 0, at = 0; i < pieces; ++i) {
    size_t end = i + 1 == pieces ? stream.size() : stream.size() * (i + 1) / pieces;
    if (end > at) c.pieces.emplace_back(stream.substr(at, end - at));
    at = std::max(at, end);
  }

  uv_loop_t* loop = Loop(server);
  int64_t accepted_before = AcceptedConnections(server);
  uv_tcp_init(loop, &c.tcp);
  uv_idle_init(loop, &c.feeder);
  c.tcp.data = c.connect.data = c.feeder.data = c.shutdown.data = &c;
  c.handles_open = 2;
  sockaddr_in addr{};
  uv_ip4_addr("127.0.0.1", server.app->port(), &addr);
  if (uv_tcp_connect(&c.connect, &c.tcp, reinterpret_cast<const sockaddr*>(&addr), OnConnect) !=
      0) {
    Fail("connect");
  }
  RunUntil(
      server,
      [&] {
        return c.handles_open == 0 && AcceptedConnections(server) > accepted_before &&
               OpenConnections(server) == 0;
      },
      "the connection was not released");
  if (c.failed_connect) Fail("could not connect to the server");
  if (!c.reset_after_write && !ContainsHead(stream)) CheckAnswer(c.answer);
  return 0;
}
