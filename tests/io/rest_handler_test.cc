// RestApi called directly (no sockets) over a real AsyncLog + DocumentService on a memory
// backend: readiness during shutdown, and answers that need no HTTP framing. The loop is
// closed cleanly at the end of every test.
#include <uv.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <optional>

#include "eventlog/async_log.h"
#include "eventlog/backend.h"
#include "io/rest_api.h"

namespace quire::io {
namespace {

class Fixture {
 public:
  explicit Fixture(bool* shutting_down) {
    REQUIRE(uv_loop_init(&loop_) == 0);
    auto backend = eventlog::OpenBackend("memory://", {});
    REQUIRE(backend.ok());
    log_ = std::make_unique<eventlog::AsyncLog>(&loop_, std::move(backend).value());
    docs_ = std::make_unique<projection::DocumentService>(*log_, SystemClock::Instance(),
                                                          projection::ProjectionOptions{}, logger_);
    std::optional<Status> started;
    docs_->Start([&](Status s) { started = std::move(s); });
    while (!started.has_value() && uv_run(&loop_, UV_RUN_ONCE) != 0) {
    }
    REQUIRE(started.has_value());
    REQUIRE(started->ok());
    rest_ = std::make_unique<RestApi>(*docs_, metrics_, config_, logger_,
                                      RestApiHooks{[shutting_down] { return *shutting_down; }, {}});
  }
  ~Fixture() {
    bool closed = false;
    log_->Close([&] { closed = true; });
    while (!closed && uv_run(&loop_, UV_RUN_ONCE) != 0) {
    }
    rest_.reset();
    docs_.reset();
    log_.reset();
    uv_run(&loop_, UV_RUN_NOWAIT);
    CHECK(uv_loop_close(&loop_) == 0);
  }

  // Handles `request` and runs the loop until it is answered.
  HttpResponse Call(HttpRequest request) {
    std::optional<HttpResponse> answer;
    rest_->Handle(request, [&](HttpResponse r) { answer = std::move(r); });
    while (!answer.has_value() && uv_run(&loop_, UV_RUN_ONCE) != 0) {
    }
    REQUIRE(answer.has_value());
    return *answer;
  }

 private:
  uv_loop_t loop_{};
  Logger logger_{LogLevel::kError};
  Config config_;
  Metrics metrics_;
  std::unique_ptr<eventlog::AsyncLog> log_;
  std::unique_ptr<projection::DocumentService> docs_;
  std::unique_ptr<RestApi> rest_;
};

HttpRequest Get(std::string path) {
  HttpRequest r;
  r.method = "GET";
  r.target = path;
  r.path = std::move(path);
  return r;
}

TEST_CASE("ReadyzIs503OnceShutdownStarted", "[rest][ops]") {
  bool shutting_down = false;
  Fixture f(&shutting_down);
  CHECK(f.Call(Get("/readyz")).status == 200);
  shutting_down = true;
  HttpResponse r = f.Call(Get("/readyz"));
  CHECK(r.status == 503);
  CHECK(nlohmann::json::parse(r.body)["error"]["code"] == "SHUTTING_DOWN");
  CHECK(f.Call(Get("/healthz")).status == 200);  // still alive
}

TEST_CASE("CreateThroughTheHandlerIsCommittedBeforeItIsAnswered", "[rest]") {
  bool shutting_down = false;
  Fixture f(&shutting_down);
  HttpRequest post;
  post.method = "POST";
  post.path = post.target = "/api/v1/documents";
  post.headers = {{"content-type", "application/json"}};
  post.body = R"({"title":"direct","id":"d1"})";
  HttpResponse created = f.Call(post);
  REQUIRE(created.status == 201);
  HttpResponse got = f.Call(Get("/api/v1/documents/d1"));
  CHECK(got.status == 200);
  CHECK(nlohmann::json::parse(got.body)["seq"] == 1);
}

}  // namespace
}  // namespace quire::io
