// HttpServer against a real blocking client over 127.0.0.1: framing (Content-Length, chunked,
// arbitrary split points), keep-alive and pipelining, limits, timeouts, the upgrade hand-off and
// graceful shutdown. The handler echoes what it parsed, so every assertion is about the bytes
// the server really read. Every test ends with the loop closed cleanly (uv_loop_close == 0).
#include "io/http_server.h"

#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/http_client.h"

namespace quire::io {
namespace {

using quire::test::HttpClient;
using quire::test::HttpResult;

std::atomic<int> g_slow_started{0};

// Echoes the parsed request as JSON. "/slow?ms=N" answers after N ms (a libuv timer), so
// pipelined answers can be checked for order.
void Echo(uv_loop_s* loop, const HttpRequest& req, HttpResponder respond) {
  nlohmann::json headers = nlohmann::json::object();
  for (const auto& [k, v] : req.headers) headers[k] = v;
  nlohmann::json query = nlohmann::json::object();
  for (const auto& [k, v] : req.query) query[k] = v;
  nlohmann::json j = {{"method", req.method}, {"path", req.path},   {"target", req.target},
                      {"query", query},       {"headers", headers}, {"body", req.body}};
  HttpResponse r = HttpResponse::Json(200, j.dump());
  if (req.path == "/slow") {
    g_slow_started.fetch_add(1);
    int ms = std::atoi(std::string(req.Query("ms").value_or("50")).c_str());
    struct Pending {
      uv_timer_t timer;
      HttpResponder respond;
      HttpResponse response;
    };
    auto* p = new Pending{{}, std::move(respond), std::move(r)};
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    uv_timer_start(
        &p->timer,
        [](uv_timer_t* t) noexcept {
          auto* pending = static_cast<Pending*>(t->data);
          pending->respond(std::move(pending->response));
          uv_close(reinterpret_cast<uv_handle_t*>(t),
                   [](uv_handle_t* h) noexcept { delete static_cast<Pending*>(h->data); });
        },
        static_cast<uint64_t>(ms), 0);
    return;
  }
  respond(std::move(r));
}

// A StreamHandler that echoes bytes back upper-cased and records its lifecycle.
struct StreamLog {
  std::mutex mu;
  std::string received;
  bool shutdown = false;
  bool closed = false;
  int drained = 0;
};

class EchoStream final : public StreamHandler {
 public:
  EchoStream(Transport& t, std::shared_ptr<StreamLog> log) : t_(t), log_(std::move(log)) {}
  void OnData(ByteView data) override {
    std::string s(AsString(data));
    {
      std::lock_guard<std::mutex> lock(log_->mu);
      log_->received += s;
    }
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    t_.Send(s);
  }
  void OnDrained() override {
    std::lock_guard<std::mutex> lock(log_->mu);
    ++log_->drained;
  }
  void OnShutdown() override {
    {
      std::lock_guard<std::mutex> lock(log_->mu);
      log_->shutdown = true;
    }
    t_.Send("BYE");
    t_.Close();
  }
  void OnClosed() override {
    std::lock_guard<std::mutex> lock(log_->mu);
    log_->closed = true;
  }

 private:
  Transport& t_;
  std::shared_ptr<StreamLog> log_;
};

class EchoUpgrade final : public UpgradeHandler {
 public:
  explicit EchoUpgrade(std::shared_ptr<StreamLog> log) : log_(std::move(log)) {}
  std::unique_ptr<StreamHandler> Upgrade(const HttpRequest& request, Transport& transport,
                                         HttpResponse& reject) override {
    if (request.path != "/ws") {
      reject = HttpResponse::Error(404, "NOT_FOUND", "no such endpoint");
      return nullptr;
    }
    transport.Send(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    return std::make_unique<EchoStream>(transport, log_);
  }

 private:
  std::shared_ptr<StreamLog> log_;
};

// An HttpServer on its own loop and thread.
class ServerThread {
 public:
  explicit ServerThread(HttpServerOptions options = {},
                        std::shared_ptr<StreamLog> upgrades = nullptr) {
    std::promise<int> ready;
    auto ready_future = ready.get_future();
    thread_ = std::thread([this, options, upgrades, &ready] {
      uv_loop_init(&loop_);
      uv_async_init(&loop_, &stop_, [](uv_async_t* a) noexcept {
        auto* self = static_cast<ServerThread*>(a->data);
        self->server_->Shutdown([self] {
          self->shutdown_done_ = true;
          uv_close(reinterpret_cast<uv_handle_t*>(&self->stop_), nullptr);
        });
      });
      stop_.data = this;
      server_ = std::make_unique<HttpServer>(
          &loop_, options,
          [this](const HttpRequest& r, HttpResponder respond) {
            Echo(&loop_, r, std::move(respond));
          },
          &metrics_, logger_);
      if (upgrades) server_->SetUpgradeHandler(std::make_unique<EchoUpgrade>(upgrades));
      Status s = server_->Listen("127.0.0.1", 0);
      ready.set_value(s.ok() ? server_->port() : -1);
      uv_run(&loop_, UV_RUN_DEFAULT);
      server_.reset();
      close_rc_ = uv_loop_close(&loop_);
    });
    port_ = ready_future.get();
  }
  ~ServerThread() {
    if (thread_.joinable()) Stop();
  }
  // Graceful shutdown; returns uv_loop_close's result (0 = every handle closed).
  int Stop() {
    uv_async_send(&stop_);
    thread_.join();
    return shutdown_done_ ? close_rc_ : -1;
  }
  int port() const { return port_; }
  // Reads metrics after Stop().
  Metrics& metrics() { return metrics_; }

 private:
  uv_loop_t loop_{};
  uv_async_t stop_{};
  Metrics metrics_;
  Logger logger_{LogLevel::kError};
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  int port_ = 0;
  bool shutdown_done_ = false;
  int close_rc_ = -1;
};

nlohmann::json Body(const std::optional<HttpResult>& r) {
  REQUIRE(r.has_value());
  return r->Json();
}

TEST_CASE("GetRequestIsParsedIntoMethodPathQueryAndHeaders", "[http]") {
  ServerThread server;
  HttpClient c(server.port());
  REQUIRE(c.connected());
  auto r = c.Request("GET", "/a%20b/c?x=1&y=hello+world&z=%2F&flag", "", {{"X-Custom", "  v1  "}});
  REQUIRE(r.has_value());
  CHECK(r->status == 200);
  CHECK(r->Header("content-type") == "application/json");
  auto j = r->Json();
  CHECK(j["method"] == "GET");
  CHECK(j["path"] == "/a b/c");
  CHECK(j["query"]["x"] == "1");
  CHECK(j["query"]["y"] == "hello world");
  CHECK(j["query"]["z"] == "/");
  CHECK(j["query"]["flag"] == "");
  CHECK(j["headers"]["x-custom"] == "v1");
  CHECK(j["headers"]["host"] == "127.0.0.1");
  CHECK(server.Stop() == 0);
}

TEST_CASE("KeepAliveServesManyRequestsOnOneConnection", "[http]") {
  ServerThread server;
  HttpClient c(server.port());
  for (int i = 0; i < 20; ++i) {
    std::string body = "{\"n\":" + std::to_string(i) + "}";
    auto r = c.Request("POST", "/echo", body);
    REQUIRE(r.has_value());
    CHECK(r->status == 200);
    CHECK(r->Header("connection") == "keep-alive");
    CHECK(r->Json()["body"] == body);
  }
  CHECK(server.Stop() == 0);
}

TEST_CASE("PipelinedRequestsAreAnsweredInOrderEvenWhenTheFirstIsSlow", "[http]") {
  ServerThread server;
  HttpClient c(server.port());
  std::string all = HttpClient::Build("GET", "/slow?ms=80") +
                    HttpClient::Build("POST", "/two", "{}") +
                    HttpClient::Build("GET", "/slow?ms=10") + HttpClient::Build("GET", "/four");
  REQUIRE(c.SendRaw(all));
  CHECK(Body(c.ReadResponse())["path"] == "/slow");
  auto second = Body(c.ReadResponse());
  CHECK(second["path"] == "/two");
  CHECK(second["body"] == "{}");
  CHECK(Body(c.ReadResponse())["target"] == "/slow?ms=10");
  CHECK(Body(c.ReadResponse())["path"] == "/four");
  CHECK(server.Stop() == 0);
}

TEST_CASE("ChunkedBodyIsReassembled", "[http]") {
  ServerThread server;
  HttpClient c(server.port());
  std::string req =
      "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: "
      "application/json\r\n\r\n"
      "5\r\n{\"a\":\r\n3;ext=1\r\n123\r\n1\r\n}\r\n0\r\n\r\n";
  REQUIRE(c.SendRaw(req));
  auto j = Body(c.ReadResponse());
  CHECK(j["body"] == "{\"a\":123}");
  // The connection stays usable after a chunked request.
  CHECK(Body(c.Request("GET", "/after"))["path"] == "/after");
  CHECK(server.Stop() == 0);
}

TEST_CASE("RequestSplitAtEveryByteBoundaryIsParsedTheSame", "[http]") {
  ServerThread server;
  HttpClient c(server.port());
  const std::string chunked =
      "POST /split?q=1 HTTP/1.1\r\nHost: x\r\nX-Long-Header-Name: some value here\r\n"
      "Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n2\r\nef\r\n0\r\n\r\n";
  const std::string sized = HttpClient::Build("PUT", "/sized", "0123456789", {{"X-A", "b"}});
  for (const std::string& req : {chunked, sized}) {
    for (size_t cut = 1; cut < req.size(); ++cut) {
      REQUIRE(c.SendRaw(req.substr(0, cut)));
      REQUIRE(c.SendRaw(req.substr(cut)));
      auto r = c.ReadResponse();
      REQUIRE(r.has_value());
      auto j = r->Json();
      INFO("cut at " << cut);
      if (req == chunked) {
        CHECK(j["body"] == "abcdef");
        CHECK(j["headers"]["x-long-header-name"] == "some value here");
        CHECK(j["query"]["q"] == "1");
      } else {
        CHECK(j["body"] == "0123456789");
        CHECK(j["method"] == "PUT");
      }
    }
  }
  CHECK(server.Stop() == 0);
}

TEST_CASE("RequestSentOneByteAtATimeIsParsed", "[http]") {
  ServerThread server;
  HttpClient c(server.port());
  const std::string req = HttpClient::Build("POST", "/bytes?k=v", "{\"title\":\"one byte\"}");
  for (char ch : req) REQUIRE(c.SendRaw(std::string(1, ch)));
  auto j = Body(c.ReadResponse());
  CHECK(j["body"] == "{\"title\":\"one byte\"}");
  CHECK(j["query"]["k"] == "v");
  CHECK(server.Stop() == 0);
}

TEST_CASE("HeaderBlockOverLimitGets431AndClose", "[http]") {
  ServerThread server;  // default limit 16 KiB
  HttpClient c(server.port());
  std::string big(17 << 10, 'a');
  auto r = c.Request("GET", "/", "", {{"X-Big", big}});
  REQUIRE(r.has_value());
  CHECK(r->status == 431);
  CHECK(r->ErrorCode() == "HEADERS_TOO_LARGE");
  CHECK(r->Header("connection") == "close");
  CHECK(c.WaitForClose());
  // Just under the limit is fine.
  HttpClient ok(server.port());
  auto r2 = ok.Request("GET", "/", "", {{"X-Big", std::string(15 << 10, 'a')}});
  REQUIRE(r2.has_value());
  CHECK(r2->status == 200);
  CHECK(server.Stop() == 0);
}

TEST_CASE("BodyOverLimitGets413ByContentLengthAndByChunks", "[http]") {
  HttpServerOptions o;
  o.max_body_bytes = 1000;
  ServerThread server(o);
  {
    HttpClient c(server.port());
    // Announced too large: answered before the body is sent.
    REQUIRE(c.SendRaw("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n"));
    auto r = c.ReadResponse();
    REQUIRE(r.has_value());
    CHECK(r->status == 413);
    CHECK(r->ErrorCode() == "PAYLOAD_TOO_LARGE");
    CHECK(c.WaitForClose());
  }
  {
    HttpClient c(server.port());
    std::string chunk(600, 'x');
    std::string req = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n" +
                      chunk + "\r\n258\r\n" + chunk + "\r\n0\r\n\r\n";
    REQUIRE(c.SendRaw(req));
    auto r = c.ReadResponse();
    REQUIRE(r.has_value());
    CHECK(r->status == 413);
    CHECK(c.WaitForClose());
  }
  {
    HttpClient c(server.port());
    auto r = c.Request("POST", "/", std::string(1000, 'y'));
    REQUIRE(r.has_value());
    CHECK(r->status == 200);
  }
  CHECK(server.Stop() == 0);
}

TEST_CASE("TransferEncodingWithContentLengthGets400AndClose", "[http]") {
  ServerThread server;
  HttpClient c(server.port());
  REQUIRE(c.SendRaw(
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\n"));
  auto r = c.ReadResponse();
  REQUIRE(r.has_value());
  CHECK(r->status == 400);
  CHECK(r->ErrorCode() == "BAD_REQUEST");
  CHECK(c.WaitForClose());
  CHECK(server.Stop() == 0);
}

TEST_CASE("MalformedRequestLineGets400AndClose", "[http]") {
  ServerThread server;
  HttpClient c(server.port());
  REQUIRE(c.SendRaw("GARBAGE\x01 / HTTP/1.1\r\n\r\n"));
  auto r = c.ReadResponse();
  REQUIRE(r.has_value());
  CHECK(r->status == 400);
  CHECK_FALSE(r->ErrorCode().empty());
  CHECK(c.WaitForClose());
  CHECK(server.Stop() == 0);
}

TEST_CASE("ClientThatDoesNotFinishHeadersInTimeIsClosed", "[http]") {
  HttpServerOptions o;
  o.header_timeout_ms = 150;
  ServerThread server(o);
  HttpClient c(server.port());
  REQUIRE(c.SendRaw("GET / HTTP/1.1\r\nHost: x\r\n"));  // never finished
  auto start = std::chrono::steady_clock::now();
  CHECK(c.WaitForClose(3000));
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(100));
  // A client that finishes in time is answered.
  HttpClient fast(server.port());
  auto r = fast.Request("GET", "/ok");
  REQUIRE(r.has_value());
  CHECK(r->status == 200);
  CHECK(server.Stop() == 0);
}

TEST_CASE("ClientThatDoesNotFinishTheBodyInTimeIsClosed", "[http]") {
  HttpServerOptions o;
  o.header_timeout_ms = 150;
  ServerThread server(o);
  // Headers in time, then 3 of the 10 body bytes and nothing more (a slow-body client).
  HttpClient c(server.port());
  REQUIRE(c.SendRaw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"));
  auto start = std::chrono::steady_clock::now();
  CHECK(c.WaitForClose(3000));
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(100));
  // A body that keeps to the deadline, sent in two parts, is answered; so is the next request
  // on the same connection, with a fresh deadline.
  HttpClient ok(server.port());
  REQUIRE(ok.SendRaw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc"));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE(ok.SendRaw("def"));
  auto r = ok.ReadResponse();
  REQUIRE(r.has_value());
  CHECK(r->status == 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto again = ok.Request("GET", "/ok");
  REQUIRE(again.has_value());
  CHECK(again->status == 200);
  CHECK(server.Stop() == 0);
}

TEST_CASE("Http10RequestWithoutKeepAliveIsClosedAfterTheAnswer", "[http]") {
  ServerThread server;
  HttpClient c(server.port());
  REQUIRE(c.SendRaw("GET /old HTTP/1.0\r\n\r\n"));
  auto r = c.ReadResponse();
  REQUIRE(r.has_value());
  CHECK(r->status == 200);
  CHECK(r->Header("connection") == "close");
  CHECK(c.WaitForClose());
  CHECK(server.Stop() == 0);
}

TEST_CASE("HeadAnswerHasHeadersButNoBody", "[http]") {
  ServerThread server;
  HttpClient c(server.port());
  auto r = c.Request("HEAD", "/h");
  REQUIRE(r.has_value());
  CHECK(r->status == 200);
  CHECK(std::stoul(r->Header("content-length").value_or("0")) > 0);
  CHECK(r->body.empty());
  // No stray body bytes: the next answer on the connection parses.
  auto next = c.Request("GET", "/next");
  REQUIRE(next.has_value());
  CHECK(next->Json()["path"] == "/next");
  CHECK(server.Stop() == 0);
}

TEST_CASE("ConnectionCloseRequestIsClosedAfterTheAnswer", "[http]") {
  ServerThread server;
  HttpClient c(server.port());
  auto r = c.Request("GET", "/x", "", {{"Connection", "close"}});
  REQUIRE(r.has_value());
  CHECK(r->Header("connection") == "close");
  CHECK(c.WaitForClose());
  CHECK(server.Stop() == 0);
}

TEST_CASE("ExpectContinueGetsAnInterim100BeforeTheBodyIsSent", "[http]") {
  ServerThread server;
  HttpClient c(server.port());
  REQUIRE(c.SendRaw(
      "POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"));
  const std::string interim = "HTTP/1.1 100 Continue\r\n\r\n";
  CHECK(c.ReadBytes(interim.size()) == interim);
  REQUIRE(c.SendRaw("{}"));
  auto r = c.ReadResponse();
  REQUIRE(r.has_value());
  CHECK(r->status == 200);
  CHECK(r->Json()["body"] == "{}");
  CHECK(server.Stop() == 0);
}

TEST_CASE("UpgradeIsHandedOverWithLeftoverBytes", "[http][upgrade]") {
  auto log = std::make_shared<StreamLog>();
  ServerThread server({}, log);
  HttpClient c(server.port());
  // The upgrade request and the first stream bytes in one write.
  REQUIRE(c.SendRaw(
      "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nhello"));
  auto r = c.ReadResponse();
  REQUIRE(r.has_value());
  CHECK(r->status == 101);
  CHECK(c.ReadBytes(5) == "HELLO");
  REQUIRE(c.SendRaw(" world"));
  CHECK(c.ReadBytes(6) == " WORLD");
  // Server shutdown reaches the stream, which says goodbye and closes.
  auto stopped = std::async(std::launch::async, [&] { return server.Stop(); });
  CHECK(c.ReadBytes(3) == "BYE");
  CHECK(c.WaitForClose());
  CHECK(stopped.get() == 0);
  std::lock_guard<std::mutex> lock(log->mu);
  CHECK(log->received == "hello world");
  CHECK(log->drained >= 1);  // the echoes were written out
  CHECK(log->shutdown);
  CHECK(log->closed);
}

TEST_CASE("UpgradeRejectedByTheHandlerGetsItsAnswer", "[http][upgrade]") {
  auto log = std::make_shared<StreamLog>();
  ServerThread server({}, log);
  HttpClient c(server.port());
  auto r =
      c.Request("GET", "/elsewhere", "", {{"Connection", "Upgrade"}, {"Upgrade", "websocket"}});
  REQUIRE(r.has_value());
  CHECK(r->status == 404);
  CHECK(r->ErrorCode() == "NOT_FOUND");
  CHECK(c.WaitForClose());
  CHECK(server.Stop() == 0);
}

TEST_CASE("UpgradeWithoutAHandlerGets404", "[http][upgrade]") {
  ServerThread server;
  HttpClient c(server.port());
  auto r = c.Request("GET", "/ws", "", {{"Connection", "Upgrade"}, {"Upgrade", "websocket"}});
  REQUIRE(r.has_value());
  CHECK(r->status == 404);
  CHECK(r->ErrorCode() == "NOT_FOUND");
  CHECK(server.Stop() == 0);
}

TEST_CASE("ShutdownAnswersTheRequestInProgressThenCloses", "[http][shutdown]") {
  ServerThread server;
  HttpClient idle(server.port());
  REQUIRE(idle.Request("GET", "/warm").has_value());
  HttpClient busy(server.port());
  const int slow_before = g_slow_started.load();
  REQUIRE(busy.SendRaw(HttpClient::Build("GET", "/slow?ms=200")));
  // Stop only once the handler holds the request.
  while (g_slow_started.load() == slow_before) std::this_thread::yield();
  auto stopped = std::async(std::launch::async, [&] { return server.Stop(); });
  auto r = busy.ReadResponse(3000);
  REQUIRE(r.has_value());
  CHECK(r->status == 200);
  CHECK(r->Header("connection") == "close");
  CHECK(busy.WaitForClose());
  CHECK(idle.WaitForClose());
  CHECK(stopped.get() == 0);
}

TEST_CASE("ResponsesAreCountedByStatusClass", "[http][metrics]") {
  ServerThread server;
  HttpClient c(server.port());
  REQUIRE(c.Request("GET", "/a").has_value());
  REQUIRE(c.Request("GET", "/b").has_value());
  HttpClient bad(server.port());
  REQUIRE(
      bad.SendRaw("POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"));
  REQUIRE(bad.ReadResponse().has_value());
  REQUIRE(server.Stop() == 0);
  std::string text = server.metrics().RenderPrometheus();
  CHECK(text.find("quire_http_responses_2xx_total 2\n") != std::string::npos);
  CHECK(text.find("quire_http_responses_4xx_total 1\n") != std::string::npos);
  CHECK(text.find("quire_http_connections_total 2\n") != std::string::npos);
  CHECK(text.find("quire_http_connections 0\n") != std::string::npos);
}

long RssKiB() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, rss = 0;
  f >> pages >> rss;
  return rss * (::sysconf(_SC_PAGESIZE) / 1024);
}

TEST_CASE("UpgradedConnectionsThatHaveReadHoldNoReadBufferOfTheirOwn", "[http][upgrade][memory]") {
  // Client and server share this process: each connection costs two descriptors.
  rlimit nofile{};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &nofile);
  const int n = static_cast<int>(std::min<rlim_t>(1000, (nofile.rlim_cur - 100) / 2));
  auto log = std::make_shared<StreamLog>();
  ServerThread server({}, log);
  {
    HttpClient warm(server.port());  // the server's first read allocates what is shared
    REQUIRE(warm.SendRaw(
        "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nhi"));
    REQUIRE(warm.ReadResponse().has_value());
    REQUIRE(warm.ReadBytes(2) == std::optional<std::string>("HI"));
  }
  std::vector<std::unique_ptr<HttpClient>> clients;
  clients.reserve(static_cast<size_t>(n));
  long before = RssKiB();
  for (int i = 0; i < n; ++i) {
    auto c = std::make_unique<HttpClient>(server.port());
    REQUIRE(c->connected());
    // Every connection is read from twice: in the HTTP phase and after the upgrade.
    REQUIRE(c->SendRaw(
        "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"));
    auto r = c->ReadResponse();
    REQUIRE(r.has_value());
    REQUIRE(r->status == 101);
    REQUIRE(c->SendRaw("ping"));
    REQUIRE(c->ReadBytes(4) == std::optional<std::string>("PING"));
    clients.push_back(std::move(c));
  }
  long per_connection = (RssKiB() - before) * 1024 / n;
  WARN(n << " upgraded connections that have read: " << per_connection
         << " bytes each (server and client side together)");
  // A per-connection 64 KiB read buffer would show here at once.
  CHECK(per_connection < 8 * 1024);
  clients.clear();
  CHECK(server.Stop() == 0);
}

}  // namespace
}  // namespace quire::io
