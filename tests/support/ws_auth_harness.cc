#include "tests/support/ws_auth_harness.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <future>

#include "io/websocket_endpoint.h"

namespace quire::test {

int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::optional<io::Principal> FakeAccessControl::Authenticate(std::string_view token,
                                                             std::string* why) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tokens_.find(std::string(token));
  if (it == tokens_.end()) {
    if (why != nullptr) *why = "unknown token";
    return std::nullopt;
  }
  if (it->second.expires_at != 0 && NowMs() >= it->second.expires_at) {
    if (why != nullptr) *why = "token expired";
    return std::nullopt;
  }
  return it->second;
}

io::Role FakeAccessControl::RoleFor(const io::Principal& principal, const DocumentId& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = roles_.find({principal.user_id, id});
  return it == roles_.end() ? io::Role::kNone : it->second;
}

void FakeAccessControl::AddToken(const std::string& token, io::Principal principal) {
  std::lock_guard<std::mutex> lock(mu_);
  tokens_[token] = std::move(principal);
}

void FakeAccessControl::SetRole(const std::string& user_id, const DocumentId& id, io::Role role) {
  std::lock_guard<std::mutex> lock(mu_);
  roles_[{user_id, id}] = role;
}

WsAuthHarness::WsAuthHarness(const std::function<void(Config&)>& tweak)
    : base_(StorageMode::kMemory, tweak), logger_(LogLevel::kWarn) {
  base_.server().RunOnLoop([this](cli::ServerApp& app) {
    http_ = std::make_unique<io::HttpServer>(
        app.loop(), io::HttpServerOptions{},
        [](const io::HttpRequest&, io::HttpResponder respond) {
          respond(io::HttpResponse::Error(404, "NOT_FOUND", "WebSocket endpoints only"));
        },
        &app.metrics(), logger_);
    io::WebSocketEndpointOptions options;
    options.access_control = &access_;
    http_->SetUpgradeHandler(io::MakeWebSocketEndpoint(app.loop(), app.documents(), app.metrics(),
                                                       app.config(), logger_, std::move(options)));
    if (http_->Listen("127.0.0.1", 0).ok()) ws_port_ = http_->port();
  });
  REQUIRE(ws_port_ != 0);
}

WsAuthHarness::~WsAuthHarness() {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> shut = done->get_future();
  base_.server().RunOnLoop(
      [this, done](cli::ServerApp&) { http_->Shutdown([done] { done->set_value(); }); });
  // Upgraded streams get close 1001 and the server closes them; bounded in case a test left a
  // client that never answers (the TestServer's own shutdown aborts what remains).
  if (shut.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    base_.server().RunOnLoop([this](cli::ServerApp&) { http_->AbortAll(); });
    shut.wait();
  }
  base_.server().RunOnLoop([this](cli::ServerApp&) { http_.reset(); });
}

Result<std::unique_ptr<WsClient>> WsAuthHarness::Connect(const std::string& target,
                                                         const std::string& token,
                                                         WsHandshake* handshake) {
  WsConnectOptions options;
  if (!token.empty()) options.extra_headers.push_back("Authorization: Bearer " + token);
  return WsClient::Connect(ws_port_, target, options, handshake);
}

}  // namespace quire::test
