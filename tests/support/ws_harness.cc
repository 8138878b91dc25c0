#include "tests/support/ws_harness.h"

#include <catch2/catch.hpp>
#include <csignal>

#include "core/base64.h"
#include "tests/support/http_client.h"

namespace quire::test {

const char* StorageModeName(StorageMode mode) {
  return mode == StorageMode::kMemory ? "memory" : "sqlite";
}

WsHarness::WsHarness(StorageMode mode, const std::function<void(Config&)>& tweak,
                     TestServerOptions options)
    : mode_(mode) {
  // The server writes with libuv, which does not suppress SIGPIPE; a peer that closed first
  // must not kill the test process. (Production needs the same: see the report to http.)
  std::signal(SIGPIPE, SIG_IGN);
  Config config = mode == StorageMode::kMemory ? TestServer::MemoryConfig()
                                               : TestServer::SqliteConfig(dir_.File("quire.db"));
  // An absolute path needs four slashes (sqlite:////tmp/...); set it here explicitly rather
  // than rely on how SqliteConfig() joins the URL.
  if (mode == StorageMode::kSqlite) config.database_url = "sqlite:///" + dir_.File("quire.db");
  if (tweak) tweak(config);
  server_ = std::make_unique<TestServer>(config, options);
  Status s = server_->Start();
  INFO(s.ToString());
  REQUIRE(s.ok());
}

WsHarness::~WsHarness() {
  if (server_->running()) {
    Status s = server_->Stop();
    CHECK(s.ok());
  }
}

std::string WsHarness::CreateDocument(const std::string& crdt, const std::string& title) {
  nlohmann::json body = {{"title", title}, {"crdt", crdt}};
  auto r = HttpRequestOnce(port(), "POST", "/api/v1/documents", body.dump());
  REQUIRE(r.has_value());
  INFO(r->body);
  REQUIRE(r->status == 201);
  return r->Json()["id"].get<std::string>();
}

bool WsHarness::DeleteDocument(const std::string& id) {
  auto r = HttpRequestOnce(port(), "DELETE", "/api/v1/documents/" + id);
  return r.has_value() && r->status == 204;
}

Result<std::unique_ptr<WsClient>> WsHarness::Join(const std::string& doc, const std::string& user,
                                                  std::optional<int64_t> since_seq,
                                                  const WsConnectOptions& options) {
  std::string target = "/ws/documents/" + doc + "?userId=" + user + "&displayName=" + user;
  if (since_seq) target += "&sinceSeq=" + std::to_string(*since_seq);
  return WsClient::Connect(port(), target, options);
}

std::unique_ptr<WsClient> WsHarness::JoinWithState(const std::string& doc, const std::string& user,
                                                   nlohmann::json* state) {
  auto c = Join(doc, user);
  INFO(c.status().ToString());
  REQUIRE(c.ok());
  auto first = (*c)->NextJson();
  INFO(first.status().ToString());
  REQUIRE(first.ok());
  REQUIRE((*first)["type"] == "state");
  if (state != nullptr) *state = *first;
  return std::move(c).value();
}

int64_t WsHarness::Metric(const std::string& name) {
  int64_t v = 0;
  server_->RunOnLoop([&](cli::ServerApp& app) {
    // Reading through the registry's accessors creates nothing new for registered names.
    io::Metrics& m = app.metrics();
    std::string text = m.RenderPrometheus();
    auto pos = text.find("\n" + name + " ");
    if (pos != std::string::npos) v = std::stoll(text.substr(pos + name.size() + 2));
  });
  return v;
}

int64_t WsHarness::HistogramCount(const std::string& name) { return Metric(name + "_count"); }

nlohmann::json UpdateMessage(const std::string& op_id, const std::string& bytes,
                             const std::string& actor) {
  return {{"type", "update"},
          {"opId", op_id},
          {"actorId", actor},
          {"baseVersion", 0},
          {"deltaB64", Base64Encode(AsBytes(bytes))}};
}

}  // namespace quire::test
