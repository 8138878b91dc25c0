// Access control on the Hocuspocus endpoint: the token of each document's Auth message decides
// (HS256 tokens signed here with OpenSSL, verified by the server's io/jwt.h): the creator is
// read-write, a viewer grant gives "readonly" (its updates are answered SyncStatus 0 and never
// reach the log or the others), a bad token or no role is PermissionDenied while the socket
// keeps serving its other documents.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "core/yjs/hocuspocus.h"
#include "core/yjs/update.h"
#include "io/jwt.h"
#include "tests/support/http_client.h"
#include "tests/support/ws_harness.h"

namespace quire::test {
namespace {

namespace hp = yjs::hocuspocus;

constexpr char kSecret[] = "hocuspocus-test-secret";

std::string Token(const nlohmann::json& claims) {
  std::string header = io::Base64UrlEncode(R"({"alg":"HS256","typ":"JWT"})");
  std::string input = header + "." + io::Base64UrlEncode(claims.dump());
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), kSecret, static_cast<int>(sizeof(kSecret) - 1),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &mac_len);
  return input + "." +
         io::Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(mac), mac_len));
}

Bytes B(std::initializer_list<int> v) {
  Bytes out;
  for (int x : v) out.push_back(static_cast<uint8_t>(x));
  return out;
}

std::unique_ptr<WsClient> ConnectHp(WsHarness& h) {
  auto c = WsClient::Connect(h.port(), "/hocuspocus");
  REQUIRE(c.ok());
  return std::move(*c);
}

Bytes NextBinary(WsClient& c) {
  auto m = c.Next();
  REQUIRE(m.ok());
  REQUIRE(m->kind == WsMessage::Kind::kBinary);
  return Bytes(m->data.begin(), m->data.end());
}

void Send(WsClient& c, const Bytes& frame) { REQUIRE(c.SendBinary(frame).ok()); }

const Bytes kInsertX = B({1, 1, 1, 0, 4, 1, 1, 't', 1, 'x', 0});
const Bytes kInsertY = B({1, 1, 2, 0, 0x84, 1, 0, 1, 'y', 0});

void Configure(Config& c) { c.auth_secret = kSecret; }

// PUT (role) or DELETE (empty role) /api/v1/documents/{doc}/permissions/{user} as `owner`.
int SetGrant(WsHarness& h, const std::string& owner, const std::string& doc,
             const std::string& user, const std::string& role) {
  std::vector<std::pair<std::string, std::string>> auth = {
      {"Authorization", "Bearer " + Token({{"sub", owner}})}};
  std::string target = "/api/v1/documents/" + doc + "/permissions/" + user;
  auto r = role.empty() ? HttpRequestOnce(h.port(), "DELETE", target, {}, auth)
                        : HttpRequestOnce(h.port(), "PUT", target,
                                          nlohmann::json{{"role", role}}.dump(), auth);
  return r ? r->status : 0;
}

}  // namespace

TEST_CASE("TheTokenOfEachDocumentDecidesItsScope") {
  WsHarness h(StorageMode::kMemory, Configure);
  auto alice = ConnectHp(h);
  // Alice creates the document by authenticating: its owner, read-write.
  Send(*alice, hp::EncodeAuthToken("acl", Token({{"sub", "alice"}}), "4.8.0"));
  CHECK(NextBinary(*alice) == hp::EncodeAuthenticated("acl", hp::kScopeReadWrite));
  Send(*alice, hp::EncodeSyncUpdate("acl", kInsertX));
  CHECK(NextBinary(*alice) == hp::EncodeSyncStatus("acl", true));

  // Bob holds a viewer grant in his token: readonly.
  auto bob = ConnectHp(h);
  Send(*bob, hp::EncodeAuthToken("acl", Token({{"sub", "bob"}, {"docs", {{"acl", "viewer"}}}})));
  CHECK(NextBinary(*bob) == hp::EncodeAuthenticated("acl", hp::kScopeReadOnly));
  // He reads the state...
  Send(*bob, hp::EncodeSyncStep1("acl", B({0})));
  NextBinary(*bob);  // the server's step 1
  Bytes step2 = NextBinary(*bob);
  REQUIRE(hp::Decode(step2, hp::Direction::kToClient).ok());
  // ...and his writes are refused: SyncStatus 0, nothing relayed, nothing stored.
  Send(*bob, hp::EncodeSyncUpdate("acl", kInsertY));
  CHECK(NextBinary(*bob) == hp::EncodeSyncStatus("acl", false));
  CHECK(alice->QuietFor(150));
  // A step 2 holding only what the document has is acknowledged (a reconnecting viewer's).
  Send(*bob, hp::EncodeSyncStep2("acl", kInsertX));
  CHECK(NextBinary(*bob) == hp::EncodeSyncStatus("acl", true));
  Send(*bob, hp::EncodeSyncStep2("acl", kInsertY));
  CHECK(NextBinary(*bob) == hp::EncodeSyncStatus("acl", false));
  CHECK(h.Metric("quire_updates_accepted_total") == 1);
}

TEST_CASE("BadTokensAndMissingRolesArePermissionDeniedAndTheSocketKeepsServing") {
  WsHarness h(StorageMode::kMemory, Configure);
  auto alice = ConnectHp(h);
  Send(*alice, hp::EncodeAuthToken("private", Token({{"sub", "alice"}})));
  CHECK(NextBinary(*alice) == hp::EncodeAuthenticated("private", hp::kScopeReadWrite));

  auto carol = ConnectHp(h);
  Send(*carol, hp::EncodeAuthToken("private", "not-a-jwt"));
  Bytes bad_frame = NextBinary(*carol);  // decoded views borrow it
  auto bad = hp::Decode(bad_frame, hp::Direction::kToClient);
  REQUIRE(bad.ok());
  CHECK(bad->auth_type == hp::AuthType::kPermissionDenied);
  CHECK(bad->text.find("not-a-jwt") == std::string_view::npos);  // the token is never echoed
  Send(*carol, hp::EncodeAuthToken("private", Token({{"sub", "carol"}})));
  CHECK(NextBinary(*carol) == hp::EncodePermissionDenied("private", "permission-denied"));
  // Her own document on the same socket is hers.
  Send(*carol, hp::EncodeAuthToken("carols", Token({{"sub", "carol"}})));
  CHECK(NextBinary(*carol) == hp::EncodeAuthenticated("carols", hp::kScopeReadWrite));
  // An expired token is refused like any bad token.
  Send(*carol, hp::EncodeAuthToken("later", Token({{"sub", "carol"}, {"exp", 1000}})));
  Bytes expired_frame = NextBinary(*carol);
  auto expired = hp::Decode(expired_frame, hp::Direction::kToClient);
  REQUIRE(expired.ok());
  CHECK(expired->auth_type == hp::AuthType::kPermissionDenied);
  CHECK(std::string(expired->text) == "token expired");
}

TEST_CASE("GrantChangesReachOpenDocumentsAtOnceForWritesAndWithinASecondOtherwise") {
  WsHarness h(StorageMode::kMemory, Configure);
  auto alice = ConnectHp(h);
  Send(*alice, hp::EncodeAuthToken("shared", Token({{"sub", "alice"}})));
  CHECK(NextBinary(*alice) == hp::EncodeAuthenticated("shared", hp::kScopeReadWrite));
  REQUIRE(SetGrant(h, "alice", "shared", "bob", "editor") == 200);
  auto bob = ConnectHp(h);
  Send(*bob, hp::EncodeAuthToken("shared", Token({{"sub", "bob"}})));
  CHECK(NextBinary(*bob) == hp::EncodeAuthenticated("shared", hp::kScopeReadWrite));
  // Downgraded: the next write already sees it (a new Authenticated with the readonly scope,
  // then the refusal), whether or not the once-a-second re-check ran in between.
  REQUIRE(SetGrant(h, "alice", "shared", "bob", "viewer") == 200);
  Send(*bob, hp::EncodeSyncUpdate("shared", kInsertY));
  CHECK(NextBinary(*bob) == hp::EncodeAuthenticated("shared", hp::kScopeReadOnly));
  CHECK(NextBinary(*bob) == hp::EncodeSyncStatus("shared", false));
  CHECK(alice->QuietFor(100));
  // Revoked: the document is closed for him within the once-a-second re-check (a second and
  // a half with scheduling); the socket stays.
  auto start = std::chrono::steady_clock::now();
  REQUIRE(SetGrant(h, "alice", "shared", "bob", "") == 204);
  auto m = bob->Next(3000);
  REQUIRE(m.ok());
  CHECK(Bytes(m->data.begin(), m->data.end()) == hp::EncodeClose("shared", "Forbidden"));
  CHECK(std::chrono::steady_clock::now() - start <= std::chrono::milliseconds(1500));
  Send(*bob, hp::EncodeAuthToken("bobs", Token({{"sub", "bob"}})));
  CHECK(NextBinary(*bob) == hp::EncodeAuthenticated("bobs", hp::kScopeReadWrite));
}

TEST_CASE("TokenExpiryClosesTheSocketWith4401WithinASecondAndAHalfOfExp") {
  WsHarness h(StorageMode::kMemory, [](Config& c) {
    Configure(c);
    c.auth_clock_skew_s = 0;
  });
  auto wall_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  // exp is in whole seconds: 1 to 2 s from now.
  int64_t exp_ms = (wall_ms() / 1000 + 2) * 1000;
  auto alice = ConnectHp(h);
  Send(*alice, hp::EncodeAuthToken("brief", Token({{"sub", "alice"}, {"exp", exp_ms / 1000}})));
  CHECK(NextBinary(*alice) == hp::EncodeAuthenticated("brief", hp::kScopeReadWrite));
  auto m = alice->Next(4000);
  while (m.ok() && m->kind != WsMessage::Kind::kClose) m = alice->Next(4000);
  int64_t closed_ms = wall_ms();
  REQUIRE(m.ok());
  CHECK(m->close_code == 4401);
  CHECK(m->data == "token expired");
  CHECK(closed_ms >= exp_ms);
  CHECK(closed_ms - exp_ms <= 1500);
}

TEST_CASE("ATokenSentAgainReplacesTheDocumentsPrincipal") {
  WsHarness h(StorageMode::kMemory, Configure);
  auto alice = ConnectHp(h);
  Send(*alice, hp::EncodeAuthToken("renew", Token({{"sub", "alice"}})));
  CHECK(NextBinary(*alice) == hp::EncodeAuthenticated("renew", hp::kScopeReadWrite));
  // A fresh valid token: nothing to say, the document stays open.
  Send(*alice, hp::EncodeAuthToken("renew", Token({{"sub", "alice"}, {"exp", 4102444800}})));
  Send(*alice, hp::EncodeSyncUpdate("renew", kInsertX));
  CHECK(NextBinary(*alice) == hp::EncodeSyncStatus("renew", true));
  // An invalid one closes the document, not the socket.
  Send(*alice, hp::EncodeAuthToken("renew", "garbage"));
  CHECK(NextBinary(*alice) == hp::EncodeClose("renew", "Unauthorized"));
  Send(*alice, hp::EncodeAuthToken("renew", Token({{"sub", "alice"}})));
  CHECK(NextBinary(*alice) == hp::EncodeAuthenticated("renew", hp::kScopeReadWrite));
}

TEST_CASE("ATokenOfAnotherUserSentAgainClosesTheDocument") {
  WsHarness h(StorageMode::kMemory, Configure);
  auto alice = ConnectHp(h);
  Send(*alice, hp::EncodeAuthToken("swap", Token({{"sub", "alice"}})));
  CHECK(NextBinary(*alice) == hp::EncodeAuthenticated("swap", hp::kScopeReadWrite));
  // A valid token of bob on alice's open document: the document's identity cannot change
  // (its updates would be logged as alice's), so it is closed as for an invalid token.
  Send(*alice, hp::EncodeAuthToken("swap", Token({{"sub", "bob"}})));
  CHECK(NextBinary(*alice) == hp::EncodeClose("swap", "Unauthorized"));
  // Opened anew with alice's token, it is alice's again.
  Send(*alice, hp::EncodeAuthToken("swap", Token({{"sub", "alice"}})));
  CHECK(NextBinary(*alice) == hp::EncodeAuthenticated("swap", hp::kScopeReadWrite));
}

}  // namespace quire::test
