// Access-control enforcement on the WebSocket endpoints, tested with a scripted AccessControl:
// a real TestServer (open REST on port(), used to create documents) plus a second HttpServer on
// the same loop (ws_port()) whose WebSocket endpoints (MakeWebSocketEndpoint) use
// FakeAccessControl. The end-to-end JWT path is tested with the real server configuration.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "io/access.h"
#include "io/http_server.h"
#include "tests/support/ws_harness.h"

namespace quire::test {

// Tokens and roles set by the test (any thread); read by the server's loop.
class FakeAccessControl final : public io::AccessControl {
 public:
  bool enabled() const override { return true; }
  // Unknown tokens fail ("unknown token"); a principal whose expires_at passed fails too.
  std::optional<io::Principal> Authenticate(std::string_view token,
                                            std::string* why) const override;
  io::Role RoleFor(const io::Principal& principal, const DocumentId& id) const override;

  void AddToken(const std::string& token, io::Principal principal);
  void SetRole(const std::string& user_id, const DocumentId& id, io::Role role);

 private:
  mutable std::mutex mu_;
  std::map<std::string, io::Principal> tokens_;
  std::map<std::pair<std::string, DocumentId>, io::Role> roles_;
};

class WsAuthHarness {
 public:
  explicit WsAuthHarness(const std::function<void(Config&)>& tweak = {});
  ~WsAuthHarness();  // shuts the second server down on the loop, then the TestServer

  WsHarness& base() { return base_; }
  FakeAccessControl& access() { return access_; }
  // The port whose WebSocket endpoints enforce access().
  int ws_port() const { return ws_port_; }
  // A document made through the open REST API.
  std::string CreateDocument(const std::string& crdt = "yjs") { return base_.CreateDocument(crdt); }

  // Upgrades `target` on ws_port() with `Authorization: Bearer <token>` (none when empty).
  Result<std::unique_ptr<WsClient>> Connect(const std::string& target, const std::string& token,
                                            WsHandshake* handshake = nullptr);

 private:
  WsHarness base_;
  FakeAccessControl access_;
  Logger logger_;
  std::unique_ptr<io::HttpServer> http_;  // lives on the loop thread
  int ws_port_ = 0;
};

// Milliseconds since the epoch (Principal::expires_at's clock).
int64_t NowMs();

}  // namespace quire::test
