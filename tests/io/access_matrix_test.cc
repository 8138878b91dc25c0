// Access control: every role on every WebSocket protocol, end to end. The real server with an
// HS256 secret and real tokens; for each row of kMatrix a fresh Yjs document owned by "owner"
// (grants: "ed" editor, "vw" viewer; share-link tokens carry their own `docs` grant) and a
// watcher (a second owner connection on the JSON protocol). Each row checks:
//   - the connect outcome: accepted, 404 at the upgrade (JSON, y-websocket) or PermissionDenied
//     (Hocuspocus; Authenticated "readonly" / "read-write" when accepted);
//   - a write: accepted and committed (the head seq moves by one, the history names the
//     token's sub as the actor, the watcher gets it) or refused (JSON: error FORBIDDEN;
//     y-websocket: dropped; Hocuspocus: SyncStatus 0; in all three nothing reaches the log or
//     the watcher);
//   - that the client receives another member's update (the watcher's).
#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

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

namespace hp = yjs::hocuspocus;
using nlohmann::json;

constexpr const char* kSecret = "access-matrix-secret-0123456789abcdef";

enum class Who { kOwner, kEditor, kViewer, kShareEditor, kShareViewer, kNoRole };
enum class Protocol { kJson, kYws, kHocuspocus };
enum class Connect {
  kReadWrite,  // upgraded (Hocuspocus: Authenticated "read-write")
  kReadOnly,   // upgraded (Hocuspocus: Authenticated "readonly")
  kNotFound,   // 404 at the upgrade (JSON, y-websocket)
  kDenied,     // Hocuspocus: Auth PermissionDenied "permission-denied"
};

struct Row {
  Who who;
  Protocol protocol;
  Connect connect;
  bool write_committed;  // else refused: nothing in the log, nothing relayed
};

// The expected outcomes.
constexpr Row kMatrix[] = {
    {Who::kOwner, Protocol::kJson, Connect::kReadWrite, true},
    {Who::kOwner, Protocol::kYws, Connect::kReadWrite, true},
    {Who::kOwner, Protocol::kHocuspocus, Connect::kReadWrite, true},
    {Who::kEditor, Protocol::kJson, Connect::kReadWrite, true},
    {Who::kEditor, Protocol::kYws, Connect::kReadWrite, true},
    {Who::kEditor, Protocol::kHocuspocus, Connect::kReadWrite, true},
    {Who::kViewer, Protocol::kJson, Connect::kReadOnly, false},
    {Who::kViewer, Protocol::kYws, Connect::kReadOnly, false},
    {Who::kViewer, Protocol::kHocuspocus, Connect::kReadOnly, false},
    {Who::kShareEditor, Protocol::kJson, Connect::kReadWrite, true},
    {Who::kShareEditor, Protocol::kYws, Connect::kReadWrite, true},
    {Who::kShareEditor, Protocol::kHocuspocus, Connect::kReadWrite, true},
    {Who::kShareViewer, Protocol::kJson, Connect::kReadOnly, false},
    {Who::kShareViewer, Protocol::kYws, Connect::kReadOnly, false},
    {Who::kShareViewer, Protocol::kHocuspocus, Connect::kReadOnly, false},
    {Who::kNoRole, Protocol::kJson, Connect::kNotFound, false},
    {Who::kNoRole, Protocol::kYws, Connect::kNotFound, false},
    {Who::kNoRole, Protocol::kHocuspocus, Connect::kDenied, false},
};

const char* WhoName(Who who) {
  switch (who) {
    case Who::kOwner:
      return "owner";
    case Who::kEditor:
      return "editor";
    case Who::kViewer:
      return "viewer";
    case Who::kShareEditor:
      return "share-editor";
    case Who::kShareViewer:
      return "share-viewer";
    case Who::kNoRole:
      return "no-role";
  }
  return "?";
}

const char* ProtocolName(Protocol p) {
  switch (p) {
    case Protocol::kJson:
      return "json";
    case Protocol::kYws:
      return "yws";
    case Protocol::kHocuspocus:
      return "hocuspocus";
  }
  return "?";
}

int64_t NowS() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Token(const std::string& sub, json extra = json::object()) {
  extra["sub"] = sub;
  extra["exp"] = NowS() + 3600;
  return MintHs256(kSecret, extra);
}

// The token's sub and the token of `who` on document `doc`.
std::pair<std::string, std::string> SubAndToken(Who who, const std::string& doc) {
  switch (who) {
    case Who::kOwner:
      return {"owner", Token("owner")};
    case Who::kEditor:
      return {"ed", Token("ed")};
    case Who::kViewer:
      return {"vw", Token("vw")};
    case Who::kShareEditor:
      return {"guest-e", Token("guest-e", {{"docs", {{doc, "editor"}}}})};
    case Who::kShareViewer:
      return {"guest-v", Token("guest-v", {{"docs", {{doc, "viewer"}}}})};
    case Who::kNoRole:
      return {"stranger", Token("stranger")};
  }
  return {};
}

Bytes B(std::initializer_list<int> v) {
  Bytes out;
  for (int x : v) out.push_back(static_cast<uint8_t>(x));
  return out;
}
std::string Str(const Bytes& b) { return std::string(b.begin(), b.end()); }
// Independent insertions at the start of root text "t": "x" by Yjs client 1 (the tested
// client's write), "z" by client 3 (the watcher's).
const Bytes kInsertX = B({1, 1, 1, 0, 4, 1, 1, 't', 1, 'x', 0});
const Bytes kInsertZ = B({1, 1, 3, 0, 4, 1, 1, 't', 1, 'z', 0});

class Matrix {
 public:
  Matrix() {
    Config config = TestServer::MemoryConfig();
    config.auth_secret = kSecret;
    config.auth_clock_skew_s = 0;
    server_ = std::make_unique<TestServer>(config);
    REQUIRE(server_->Start().ok());
  }
  ~Matrix() { CHECK(server_->Stop().ok()); }

  int port() const { return server_->port(); }

  HttpResult Call(std::string_view method, const std::string& target, std::string_view body = {}) {
    auto r = HttpRequestOnce(port(), method, target, body,
                             {{"Authorization", "Bearer " + Token("owner")}});
    REQUIRE(r.has_value());
    return *r;
  }

  // A Yjs document owned by "owner" with grants "ed" editor and "vw" viewer.
  void CreateDocument(const std::string& doc) {
    REQUIRE(Call("POST", "/api/v1/documents", json{{"id", doc}, {"title", doc}}.dump()).status ==
            201);
    REQUIRE(Call("PUT", "/api/v1/documents/" + doc + "/permissions/ed", R"({"role":"editor"})")
                .status == 200);
    REQUIRE(Call("PUT", "/api/v1/documents/" + doc + "/permissions/vw", R"({"role":"viewer"})")
                .status == 200);
  }

  Seq HeadSeq(const std::string& doc) {
    HttpResult r = Call("GET", "/api/v1/documents/" + doc);
    REQUIRE(r.status == 200);
    return r.Json()["seq"].get<Seq>();
  }

  // The newest history event of `doc`.
  json LastEvent(const std::string& doc) {
    HttpResult r = Call("GET", "/api/v1/documents/" + doc + "/history?order=desc&limit=1");
    REQUIRE(r.status == 200);
    REQUIRE(r.Json()["items"].size() == 1);
    return r.Json()["items"][0];
  }

 private:
  std::unique_ptr<TestServer> server_;
};

// Reads binary frames until one equals `want` (others skipped: awareness, sync answers).
bool NextBinaryIs(WsClient& c, const Bytes& want, int max_messages = 10) {
  for (int i = 0; i < max_messages; ++i) {
    auto m = c.Next(3000);
    if (!m.ok() || m->kind == WsMessage::Kind::kClose) return false;
    if (m->kind == WsMessage::Kind::kBinary && m->data == Str(want)) return true;
  }
  return false;
}

// True when no remote_update reaches `c` within `ms` (presence and other messages are read
// past).
bool NoRelayWithin(WsClient& c, int ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < deadline) {
    auto m = c.Next(50);
    if (!m.ok()) continue;
    if (m->kind == WsMessage::Kind::kText && m->data.find("remote_update") != std::string::npos) {
      return false;
    }
  }
  return true;
}

TEST_CASE("EveryRoleOnEveryProtocolConnectsWritesAndReadsAsTheMatrixSays", "[auth][ws]") {
  Matrix m;
  for (const Row& row : kMatrix) {
    const std::string doc = std::string("m-") + WhoName(row.who) + "-" + ProtocolName(row.protocol);
    INFO("row: " << WhoName(row.who) << " over " << ProtocolName(row.protocol));
    m.CreateDocument(doc);
    auto [sub, token] = SubAndToken(row.who, doc);

    WsConnectOptions owner_auth;
    owner_auth.extra_headers.push_back("Authorization: Bearer " + Token("owner"));
    auto watcher = WsClient::Connect(m.port(), "/ws/documents/" + doc, owner_auth);
    REQUIRE(watcher.ok());
    REQUIRE((*watcher)->NextOfType("state").ok());

    // --- Connect ---
    std::unique_ptr<WsClient> client;
    if (row.protocol == Protocol::kHocuspocus) {
      auto c = WsClient::Connect(m.port(), "/hocuspocus");
      REQUIRE(c.ok());
      client = std::move(*c);
      REQUIRE(client->SendBinary(hp::EncodeAuthToken(doc, token)).ok());
      auto answer = client->Next();
      REQUIRE(answer.ok());
      Bytes expected;
      switch (row.connect) {
        case Connect::kReadWrite:
          expected = hp::EncodeAuthenticated(doc, hp::kScopeReadWrite);
          break;
        case Connect::kReadOnly:
          expected = hp::EncodeAuthenticated(doc, hp::kScopeReadOnly);
          break;
        default:
          expected = hp::EncodePermissionDenied(doc, "permission-denied");
          break;
      }
      CHECK(answer->data == Str(expected));
    } else {
      std::string target =
          (row.protocol == Protocol::kJson ? "/ws/documents/" : "/yjs/") + doc + "?token=" + token;
      WsHandshake hs;
      auto c = WsClient::Connect(m.port(), target, {}, &hs);
      if (row.connect == Connect::kNotFound) {
        CHECK_FALSE(c.ok());
        CHECK(hs.status == 404);
        CHECK(hs.body.find("NOT_FOUND") != std::string::npos);
      } else {
        REQUIRE(c.ok());
        client = std::move(*c);
        if (row.protocol == Protocol::kJson) {
          REQUIRE(client->NextOfType("state").ok());
        } else {
          auto step1 = client->Next();  // the server's sync step 1
          REQUIRE(step1.ok());
          CHECK(step1->kind == WsMessage::Kind::kBinary);
        }
      }
    }

    // --- Write ---
    Seq head = m.HeadSeq(doc);
    if (client) {
      switch (row.protocol) {
        case Protocol::kJson: {
          // It claims to be someone else: the log names its sub all the same.
          REQUIRE(client->SendJson(UpdateMessage("w-1", Str(kInsertX), "mallory")).ok());
          auto answer = client->NextJson();
          while (answer.ok() && (*answer)["type"] == "presence") answer = client->NextJson();
          REQUIRE(answer.ok());
          if (row.write_committed) {
            CHECK((*answer)["type"] == "ack");
            CHECK((*answer)["seq"] == head + 1);
          } else {
            CHECK((*answer)["type"] == "error");
            CHECK((*answer)["code"] == "FORBIDDEN");
            CHECK((*answer)["opId"] == "w-1");
          }
          break;
        }
        case Protocol::kYws:
          // No answer in y-websocket: the watcher and the log tell.
          REQUIRE(client->SendBinary(yjs::EncodeSyncUpdate(kInsertX)).ok());
          break;
        case Protocol::kHocuspocus:
          REQUIRE(client->SendBinary(hp::EncodeSyncUpdate(doc, kInsertX)).ok());
          if (row.connect != Connect::kDenied) {
            CHECK(NextBinaryIs(*client, hp::EncodeSyncStatus(doc, row.write_committed)));
          }
          break;
      }
    }
    if (row.write_committed) {
      auto relay = (*watcher)->NextOfType("remote_update");
      REQUIRE(relay.ok());
      CHECK((*relay)["deltaB64"] == Base64Encode(kInsertX));
      CHECK((*relay)["actorId"] == sub);
      CHECK(m.HeadSeq(doc) == head + 1);
      json event = m.LastEvent(doc);
      CHECK(event["kind"] == "update");
      CHECK(event["actorId"] == sub);
    } else {
      CHECK(NoRelayWithin(**watcher, 300));
      CHECK(m.HeadSeq(doc) == head);
    }

    // --- Read another member's update ---
    REQUIRE((*watcher)->SendJson(UpdateMessage("watcher-1", Str(kInsertZ))).ok());
    REQUIRE((*watcher)->NextOfType("ack").ok());
    if (client) {
      switch (row.protocol) {
        case Protocol::kJson: {
          auto relay = client->NextOfType("remote_update");
          REQUIRE(relay.ok());
          CHECK((*relay)["opId"] == "watcher-1");
          CHECK((*relay)["actorId"] == "owner");
          break;
        }
        case Protocol::kYws:
          CHECK(NextBinaryIs(*client, yjs::EncodeSyncUpdate(kInsertZ)));
          break;
        case Protocol::kHocuspocus:
          if (row.connect == Connect::kDenied) {
            CHECK(client->QuietFor(200));  // a denied document gets nothing
          } else {
            CHECK(NextBinaryIs(*client, hp::EncodeSyncUpdate(doc, kInsertZ)));
          }
          break;
      }
      auto code = client->Close();
      CHECK(code.ok());
    }
    CHECK((*watcher)->Close().ok());
  }
}

}  // namespace
}  // namespace quire::test
