// Access control on the WebSocket protocols end to end: the real server with an HS256 secret,
// tokens minted with OpenSSL, roles granted and revoked through the REST permissions API
// (permission events), clients on the JSON protocol and y-websocket. (The enforcement itself is
// tested with a scripted AccessControl in websocket_access_test.cc and
// hocuspocus_access_test.cc; this proves the configured pieces fit together.)
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "core/base64.h"
#include "core/yjs/hocuspocus.h"
#include "core/yjs/protocol.h"
#include "tests/support/http_client.h"
#include "tests/support/jwt_mint.h"
#include "tests/support/test_server.h"
#include "tests/support/ws_client.h"
#include "tests/support/ws_harness.h"

namespace quire::test {
namespace {

using nlohmann::json;

constexpr const char* kSecret = "ws-auth-secret-0123456789abcdef";

int64_t NowS() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Token(const std::string& sub, json extra = json::object()) {
  extra["sub"] = sub;
  if (!extra.contains("exp")) extra["exp"] = NowS() + 3600;
  return MintHs256(kSecret, extra);
}

HttpResult Call(const TestServer& server, std::string_view method, const std::string& target,
                const std::string& token, std::string_view body = {}) {
  auto r =
      HttpRequestOnce(server.port(), method, target, body, {{"Authorization", "Bearer " + token}});
  REQUIRE(r.has_value());
  return *r;
}

Bytes B(std::initializer_list<int> v) {
  Bytes out;
  for (int x : v) out.push_back(static_cast<uint8_t>(x));
  return out;
}
// The insertion "x" by Yjs client 1 into the root text "t", and "y" after it by client 2.
const Bytes kInsertX = B({1, 1, 1, 0, 4, 1, 1, 't', 1, 'x', 0});
const Bytes kInsertY = B({1, 1, 2, 0, 0x84, 1, 0, 1, 'y', 0});
std::string Str(const Bytes& b) { return std::string(b.begin(), b.end()); }

// A server with access control on (`clock_skew_s` of tolerance on exp and nbf) and a Yjs
// document "doc" owned by "owner", "ed" editor, "vw" viewer.
struct Fixture {
  explicit Fixture(int64_t clock_skew_s = 0) {
    Config config = TestServer::MemoryConfig();
    config.auth_secret = kSecret;
    config.auth_clock_skew_s = clock_skew_s;
    server = std::make_unique<TestServer>(config);
    REQUIRE(server->Start().ok());
    REQUIRE(Call(*server, "POST", "/api/v1/documents", Token("owner"),
                 R"({"id":"doc","title":"Doc","crdt":"yjs"})")
                .status == 201);
    REQUIRE(Call(*server, "PUT", "/api/v1/documents/doc/permissions/ed", Token("owner"),
                 R"({"role":"editor"})")
                .status == 200);
    REQUIRE(Call(*server, "PUT", "/api/v1/documents/doc/permissions/vw", Token("owner"),
                 R"({"role":"viewer"})")
                .status == 200);
  }
  ~Fixture() { CHECK(server->Stop().ok()); }

  // The JSON protocol with the token in the Authorization header, after its `state`.
  std::unique_ptr<WsClient> Json(const std::string& token, const std::string& query = "") {
    WsConnectOptions options;
    options.extra_headers.push_back("Authorization: Bearer " + token);
    auto c = WsClient::Connect(server->port(), "/ws/documents/doc" + query, options);
    REQUIRE(c.ok());
    REQUIRE((*c)->NextOfType("state").ok());
    return std::move(*c);
  }
  // y-websocket with the token as a query parameter (WebsocketProvider's `params`).
  std::unique_ptr<WsClient> Yws(const std::string& token) {
    auto c = WsClient::Connect(server->port(), "/yjs/doc?token=" + token);
    REQUIRE(c.ok());
    return std::move(*c);
  }
  // A Hocuspocus socket with "doc" authenticated by `token` (Authenticated `scope`).
  std::unique_ptr<WsClient> Hocuspocus(const std::string& token,
                                       std::string_view scope = yjs::hocuspocus::kScopeReadWrite) {
    auto c = WsClient::Connect(server->port(), "/hocuspocus");
    REQUIRE(c.ok());
    REQUIRE((*c)->SendBinary(yjs::hocuspocus::EncodeAuthToken("doc", token)).ok());
    auto m = (*c)->Next();
    REQUIRE(m.ok());
    REQUIRE(m->data == Str(yjs::hocuspocus::EncodeAuthenticated("doc", scope)));
    return std::move(*c);
  }
  Seq HeadSeq() {
    return Call(*server, "GET", "/api/v1/documents/doc", Token("owner")).Json()["seq"].get<Seq>();
  }

  std::unique_ptr<TestServer> server;
};

int64_t ElapsedMs(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               since)
      .count();
}

// The close code of `c`, reading past anything else that arrives first.
uint16_t CloseCode(WsClient& c, int timeout_ms) {
  auto m = c.Next(timeout_ms);
  while (m.ok() && m->kind != WsMessage::Kind::kClose) m = c.Next(timeout_ms);
  return m.ok() ? m->close_code : 0;
}

TEST_CASE("UpgradesNeedAValidTokenAndARole", "[auth][ws]") {
  Fixture f;
  for (std::string path : {"/ws/documents/doc", "/yjs/doc"}) {
    INFO(path);
    WsHandshake hs;
    CHECK_FALSE(WsClient::Connect(f.server->port(), path, {}, &hs).ok());
    CHECK(hs.status == 401);
    CHECK_FALSE(
        WsClient::Connect(f.server->port(), path + "?token=" + Token("vw") + "x", {}, &hs).ok());
    CHECK(hs.status == 401);
    CHECK_FALSE(WsClient::Connect(f.server->port(),
                                  path + "?token=" + test::MintUnsigned({{"sub", "owner"}}), {},
                                  &hs)
                    .ok());
    CHECK(hs.status == 401);
    CHECK_FALSE(
        WsClient::Connect(f.server->port(), path + "?token=" + Token("stranger"), {}, &hs).ok());
    CHECK(hs.status == 404);
    // A share link carried by the token is enough.
    CHECK(WsClient::Connect(f.server->port(),
                            path + "?token=" + Token("guest", {{"docs", {{"doc", "viewer"}}}}))
              .ok());
    // The auth-scheme is matched without regard to case (RFC 7235).
    WsConnectOptions lower_case;
    lower_case.extra_headers.push_back("Authorization: bearer " + Token("vw"));
    CHECK(WsClient::Connect(f.server->port(), path, lower_case).ok());
  }
}

TEST_CASE("JsonViewerReadsButCannotWriteAndSpeaksAsItsSub", "[auth][ws]") {
  Fixture f;
  auto editor = f.Json(Token("ed"));
  auto viewer = f.Json(Token("vw", {{"name", "Vera"}}), "?userId=mallory&displayName=Mallory");
  auto presence = editor->NextOfType("presence");
  REQUIRE(presence.ok());
  CHECK((*presence)["userId"] == "vw");
  CHECK((*presence)["displayName"] == "Vera");

  Seq head = f.HeadSeq();
  REQUIRE(viewer->SendJson(UpdateMessage("vw-1", Str(kInsertX), "vw")).ok());
  auto err = viewer->NextOfType("error");
  REQUIRE(err.ok());
  CHECK((*err)["code"] == "FORBIDDEN");
  CHECK(f.HeadSeq() == head);

  REQUIRE(editor->SendJson(UpdateMessage("ed-1", Str(kInsertX), "ed")).ok());
  auto ack = editor->NextOfType("ack");
  REQUIRE(ack.ok());
  CHECK((*ack)["seq"] == head + 1);
  auto relay = viewer->NextOfType("remote_update");
  REQUIRE(relay.ok());
  CHECK((*relay)["deltaB64"] == Base64Encode(kInsertX));
}

TEST_CASE("YwsViewerUpdatesNeverReachOthersNorTheLog", "[auth][ws]") {
  Fixture f;
  auto editor = f.Json(Token("ed"));
  auto viewer = f.Yws(Token("vw"));
  Seq head = f.HeadSeq();
  REQUIRE(viewer->SendBinary(yjs::EncodeSyncUpdate(kInsertX)).ok());
  REQUIRE(viewer->SendBinary(yjs::EncodeSyncStep2(kInsertX)).ok());
  // Nothing reaches the editor (presence of the viewer would be JSON presence, not updates).
  bool relayed = false;
  for (auto m = editor->Next(400); m.ok(); m = editor->Next(400)) {
    relayed = relayed || m->data.find("remote_update") != std::string::npos;
  }
  CHECK_FALSE(relayed);
  CHECK(f.HeadSeq() == head);
  HttpResult history =
      Call(*f.server, "GET", "/api/v1/documents/doc/history?limit=100", Token("owner"));
  json events = history.Json();
  for (const json& e : events["items"]) CHECK(e["kind"] != "update");
  // The editor's update does reach the y-websocket viewer.
  REQUIRE(editor->SendJson(UpdateMessage("ed-1", Str(kInsertY), "ed")).ok());
  REQUIRE(editor->NextOfType("ack").ok());
  bool got = false;
  for (int i = 0; i < 6 && !got; ++i) {
    auto m = viewer->Next(2000);
    REQUIRE(m.ok());
    got = m->data == Str(yjs::EncodeSyncUpdate(kInsertY));
  }
  CHECK(got);
}

TEST_CASE("RevokingAGrantClosesOpenConnectionsWithinASecond", "[auth][ws]") {
  Fixture f;
  auto json_viewer = f.Json(Token("vw"));
  auto yws_viewer = f.Yws(Token("vw"));
  auto editor = f.Json(Token("ed"));
  auto start = std::chrono::steady_clock::now();
  REQUIRE(
      Call(*f.server, "DELETE", "/api/v1/documents/doc/permissions/vw", Token("owner")).status ==
      204);
  CHECK(CloseCode(*json_viewer, 3000) == 4403);
  CHECK(CloseCode(*yws_viewer, 3000) == 4403);
  CHECK(ElapsedMs(start) <= 1500);
  // The editor, untouched, still writes.
  REQUIRE(editor->SendJson(UpdateMessage("ed-1", Str(kInsertX), "ed")).ok());
  CHECK(editor->NextOfType("ack").ok());
}

TEST_CASE("TokenExpiryClosesOpenConnectionsWith4401", "[auth][ws]") {
  Fixture f;
  // exp is in whole seconds: this token lives 1 to 2 more seconds.
  std::string short_lived = Token("ed", {{"exp", NowS() + 2}});
  auto start = std::chrono::steady_clock::now();
  auto json_client = f.Json(short_lived);
  auto yws_client = f.Yws(short_lived);
  CHECK(CloseCode(*json_client, 4000) == 4401);
  CHECK(CloseCode(*yws_client, 4000) == 4401);
  CHECK(ElapsedMs(start) >= 900);
  WsHandshake hs;
  CHECK_FALSE(WsClient::Connect(f.server->port(), "/yjs/doc?token=" + short_lived, {}, &hs).ok());
  CHECK(hs.status == 401);
}

TEST_CASE("TheActorOfAnUpdateIsTheTokensSubWhateverActorIdTheClientSends", "[auth][ws]") {
  Fixture f;
  auto viewer = f.Json(Token("vw"));
  auto editor = f.Json(Token("ed"));
  REQUIRE(editor->SendJson(UpdateMessage("ed-1", Str(kInsertX), "mallory")).ok());
  auto ack = editor->NextOfType("ack");
  REQUIRE(ack.ok());
  auto relay = viewer->NextOfType("remote_update");
  REQUIRE(relay.ok());
  CHECK((*relay)["actorId"] == "ed");
  json history =
      Call(*f.server, "GET", "/api/v1/documents/doc/history?order=desc&limit=1", Token("owner"))
          .Json();
  REQUIRE(history["items"].size() == 1);
  CHECK(history["items"][0]["seq"] == (*ack)["seq"]);
  CHECK(history["items"][0]["actorId"] == "ed");
  // A newcomer's catch-up (no `state` with sinceSeq) names the same actor.
  auto late =
      WsClient::Connect(f.server->port(), "/ws/documents/doc?sinceSeq=0&token=" + Token("vw"));
  REQUIRE(late.ok());
  auto replay = (*late)->NextOfType("remote_update");
  REQUIRE(replay.ok());
  CHECK((*replay)["actorId"] == "ed");
}

TEST_CASE("BinaryClientsPresenceShowsTheTokensSubAndNameNotTheirAwarenessState", "[auth][ws]") {
  Fixture f;
  auto watcher = f.Json(Token("owner"));
  auto awareness = [](uint64_t client, const std::string& state) {
    std::vector<yjs::AwarenessEntry> entries = {{client, 1, state}};
    return yjs::EncodeAwarenessUpdate(entries);
  };
  // y-websocket, a token with a name claim: the claim wins over the state's name.
  auto yws = f.Yws(Token("ed", {{"name", "Eddie"}}));
  REQUIRE(yws
              ->SendBinary(yjs::EncodeAwarenessMessage(
                  awareness(4242, R"({"user":{"id":"owner","name":"Mallory","color":"#123456"}})")))
              .ok());
  auto p = watcher->NextOfType("presence");
  REQUIRE(p.ok());
  CHECK((*p)["userId"] == "ed");
  CHECK((*p)["displayName"] == "Eddie");
  CHECK((*p)["color"] == "#123456");
  CHECK((*p)["status"] == "joined");
  // Hocuspocus, a token without a name claim: the user id is still the sub; the name is the
  // client's, as for a JSON client without the claim.
  auto hp_viewer = f.Hocuspocus(Token("vw"), yjs::hocuspocus::kScopeReadOnly);
  REQUIRE(hp_viewer
              ->SendBinary(yjs::hocuspocus::EncodeAwareness(
                  "doc", awareness(5151, R"({"user":{"name":"Vera V."}})")))
              .ok());
  p = watcher->NextOfType("presence");
  REQUIRE(p.ok());
  CHECK((*p)["userId"] == "vw");
  CHECK((*p)["displayName"] == "Vera V.");
  // A JSON newcomer gets both among the members present.
  auto late = f.Json(Token("owner"));
  std::map<std::string, std::string> names;
  for (int i = 0; i < 3; ++i) {  // the watcher's own presence is among them
    auto q = late->NextOfType("presence");
    REQUIRE(q.ok());
    if ((*q)["userId"] == "owner") continue;
    names[(*q)["userId"].get<std::string>()] = (*q)["displayName"].get<std::string>();
  }
  CHECK(names == std::map<std::string, std::string>{{"ed", "Eddie"}, {"vw", "Vera V."}});
  // Leaving is announced under the sub too.
  REQUIRE(yws->Close().ok());
  p = watcher->NextOfType("presence");
  while (p.ok() && (*p)["status"] != "left") p = watcher->NextOfType("presence");
  REQUIRE(p.ok());
  CHECK((*p)["userId"] == "ed");
}

// Reads `c` until `until_ms` (wall clock); false when the server closed it before.
bool OpenUntil(WsClient& c, int64_t until_ms) {
  for (int64_t left = until_ms - WallMs(); left > 0; left = until_ms - WallMs()) {
    auto m = c.Next(static_cast<int>(left));
    if (m.ok() && m->kind == WsMessage::Kind::kClose) return false;
    if (!m.ok() && c.eof()) return false;
  }
  return true;
}

TEST_CASE("OpenSocketsOfATokenWithinTheClockSkewCloseAtExpPlusSkew", "[auth][ws]") {
  Fixture f(/*clock_skew_s=*/4);
  // Expired a second ago, within the 4 s of skew: accepted, and valid until exp + 4 s, which
  // is 2 to 3 s from now (exp is in whole seconds).
  int64_t exp = NowS() - 1;
  std::string token = Token("ed", {{"exp", exp}});
  int64_t deadline_ms = (exp + 4) * 1000;
  auto json_client = f.Json(token);
  auto yws = f.Yws(token);
  auto hocuspocus = f.Hocuspocus(token);
  // Nobody is closed before the deadline...
  CHECK(OpenUntil(*json_client, deadline_ms - 300));
  CHECK(OpenUntil(*yws, deadline_ms - 200));
  CHECK(OpenUntil(*hocuspocus, deadline_ms - 100));
  // ...and everyone with 4401 soon after it (Hocuspocus checks once a second).
  CHECK(CloseCode(*json_client, 3000) == 4401);
  CHECK(CloseCode(*yws, 3000) == 4401);
  CHECK(CloseCode(*hocuspocus, 3000) == 4401);
  CHECK(WallMs() >= deadline_ms);
  CHECK(WallMs() - deadline_ms <= 1500);
  // Past exp + skew the token is refused.
  WsHandshake hs;
  CHECK_FALSE(WsClient::Connect(f.server->port(), "/yjs/doc?token=" + token, {}, &hs).ok());
  CHECK(hs.status == 401);
}

}  // namespace
}  // namespace quire::test
