// Access control over the REST API, end to end: a real server with auth on, real tokens minted
// with OpenSSL, every role against every document route, the permissions API and its events,
// and every kind of bad token answered 401.
#include <catch2/catch.hpp>
#include <fstream>
#include <set>

#include "io/access.h"
#include "tests/support/http_client.h"
#include "tests/support/jwt_mint.h"
#include "tests/support/test_server.h"

namespace quire::io {
namespace {

using nlohmann::json;
using test::HttpRequestOnce;
using test::HttpResult;
using test::JwtKeyPair;
using test::MintHs256;
using test::TestServer;

constexpr const char* kSecret = "rest-auth-secret-0123456789abcdef";
constexpr TimestampMs kStartMs = 1'800'000'000'000;

std::string Token(const std::string& sub, json extra = json::object(),
                  TimestampMs now_ms = kStartMs) {
  extra["sub"] = sub;
  if (!extra.contains("exp")) extra["exp"] = now_ms / 1000 + 3600;
  return MintHs256(kSecret, extra);
}

// One request with a bearer token ("" sends none).
HttpResult Call(const TestServer& server, std::string_view method, const std::string& target,
                const std::string& token, std::string_view body = {}) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
  auto r = HttpRequestOnce(server.port(), method, target, body, headers);
  REQUIRE(r.has_value());
  return *r;
}

Config AuthConfig() {
  Config c = TestServer::MemoryConfig();
  c.auth_secret = kSecret;
  return c;
}

// A document owned by "owner" with grants: "ed" editor, "vw" viewer.
std::string MakeSharedDocument(const TestServer& server, const std::string& id) {
  std::string owner = Token("owner");
  HttpResult created = Call(server, "POST", "/api/v1/documents", owner,
                            json{{"id", id}, {"title", "Doc " + id}}.dump());
  REQUIRE(created.status == 201);
  REQUIRE(created.Json()["owner_id"] == "owner");
  REQUIRE(Call(server, "PUT", "/api/v1/documents/" + id + "/permissions/ed", owner,
               R"({"role":"editor"})")
              .status == 200);
  REQUIRE(Call(server, "PUT", "/api/v1/documents/" + id + "/permissions/vw", owner,
               R"({"role":"viewer"})")
              .status == 200);
  return id;
}

struct RouteCase {
  const char* name;
  const char* method;
  const char* sub;  // after /api/v1/documents/{id}
  const char* body;
  Role needs;
  int ok_status;
};

const RouteCase kRoutes[] = {
    {"get", "GET", "", "", Role::kViewer, 200},
    {"rename", "PATCH", "", R"({"title":"Renamed"})", Role::kEditor, 200},
    {"soft-delete", "PATCH", "", R"({"deleted":true})", Role::kOwner, 200},
    {"delete", "DELETE", "", "", Role::kOwner, 204},
    {"history", "GET", "/history", "", Role::kViewer, 200},
    {"state", "GET", "/state", "", Role::kViewer, 200},
    {"versions", "GET", "/versions", "", Role::kViewer, 200},
    {"name-version", "POST", "/versions", R"({"name":"v1"})", Role::kEditor, 201},
    {"fork", "POST", "/fork", "{}", Role::kEditor, 201},
    {"permissions", "GET", "/permissions", "", Role::kOwner, 200},
    {"one grant", "GET", "/permissions/ed", "", Role::kOwner, 200},
    {"grant", "PUT", "/permissions/zed", R"({"role":"viewer"})", Role::kOwner, 200},
    {"revoke", "DELETE", "/permissions/vw", "", Role::kOwner, 204},
};

struct CallerCase {
  const char* name;
  Role role;
  std::function<std::string(const std::string& doc)> token;
};

TEST_CASE("EveryRoleAgainstEveryDocumentRoute", "[auth][rest]") {
  TestServer server(AuthConfig());
  REQUIRE(server.Start().ok());
  const CallerCase callers[] = {
      {"owner", Role::kOwner, [](const std::string&) { return Token("owner"); }},
      {"editor grant", Role::kEditor, [](const std::string&) { return Token("ed"); }},
      {"viewer grant", Role::kViewer, [](const std::string&) { return Token("vw"); }},
      {"share-link editor", Role::kEditor,
       [](const std::string& doc) {
         return Token("link", {{"docs", {{doc, "editor"}}}});
       }},
      {"share-link viewer", Role::kViewer,
       [](const std::string& doc) {
         return Token("link", {{"docs", {{doc, "viewer"}}}});
       }},
      {"share link of another document", Role::kNone,
       [](const std::string&) {
         return Token("link", {{"docs", {{"other", "editor"}}}});
       }},
      {"stranger", Role::kNone, [](const std::string&) { return Token("stranger"); }},
  };
  int n = 0;
  for (const RouteCase& route : kRoutes) {
    for (const CallerCase& caller : callers) {
      std::string doc = MakeSharedDocument(server, "doc" + std::to_string(n++));
      HttpResult r = Call(server, route.method, "/api/v1/documents/" + doc + route.sub,
                          caller.token(doc), route.body);
      int expected = caller.role >= route.needs   ? route.ok_status
                     : caller.role == Role::kNone ? 404
                                                  : 403;
      INFO(route.name << " as " << caller.name << ": " << r.status << " " << r.body);
      CHECK(r.status == expected);
      if (expected == 403) CHECK(r.ErrorCode() == "FORBIDDEN");
      if (expected == 404) CHECK(r.ErrorCode() == "NOT_FOUND");
      // And nobody gets in without a token.
      HttpResult anonymous =
          Call(server, route.method, "/api/v1/documents/" + doc + route.sub, "", route.body);
      CHECK(anonymous.status == 401);
    }
  }
  REQUIRE(server.Stop().ok());
}

TEST_CASE("ListShowsOnlyWhatTheCallerMaySeeAndCreatorIsOwner", "[auth][rest]") {
  TestServer server(AuthConfig());
  REQUIRE(server.Start().ok());
  MakeSharedDocument(server, "shared");
  // X-User-Id is ignored when access control is on: the token's sub owns what it creates.
  auto mine = HttpRequestOnce(
      server.port(), "POST", "/api/v1/documents", R"({"id":"alices","title":"Alice's"})",
      {{"Authorization", "Bearer " + Token("alice")}, {"X-User-Id", "mallory"}});
  REQUIRE(mine.has_value());
  REQUIRE(mine->status == 201);
  CHECK(mine->Json()["owner_id"] == "alice");

  auto ids = [&](const std::string& token) {
    HttpResult r = Call(server, "GET", "/api/v1/documents", token);
    REQUIRE(r.status == 200);
    std::set<std::string> out;
    json body = r.Json();
    for (const json& item : body["items"]) out.insert(item["id"].get<std::string>());
    CHECK(body["total"] == out.size());
    return out;
  };
  CHECK(ids(Token("owner")) == std::set<std::string>{"shared"});
  CHECK(ids(Token("vw")) == std::set<std::string>{"shared"});
  CHECK(ids(Token("alice")) == std::set<std::string>{"alices"});
  CHECK(ids(Token("stranger")).empty());
  CHECK(ids(Token("link", {{"docs", {{"alices", "viewer"}}}})) == std::set<std::string>{"alices"});
  CHECK(Call(server, "GET", "/api/v1/documents", "").status == 401);
  // Creating a taken id is still a conflict (the id space is shared).
  CHECK(Call(server, "POST", "/api/v1/documents", Token("bob"), R"({"id":"alices","title":"x"})")
            .status == 409);
  // Operations endpoints stay open.
  CHECK(Call(server, "GET", "/healthz", "").status == 200);
  CHECK(Call(server, "GET", "/api/v1/openapi.json", "").status == 200);
  REQUIRE(server.Stop().ok());
}

TEST_CASE("PermissionChangesAreEventsAndTakeEffectAtOnce", "[auth][rest]") {
  test::TempDir dir;
  Config config = TestServer::SqliteConfig(dir.File("auth.db"));
  config.auth_secret = kSecret;
  TestServer authed(config);
  REQUIRE(authed.Start().ok());
  MakeSharedDocument(authed, "d");
  std::string owner = Token("owner");
  const std::string base = "/api/v1/documents/d";

  HttpResult list = Call(authed, "GET", base + "/permissions", owner);
  REQUIRE(list.status == 200);
  CHECK(list.Json()["owner"] == "owner");
  CHECK(list.Json()["items"] ==
        json::parse(R"([{"userId":"ed","role":"editor"},{"userId":"vw","role":"viewer"}])"));

  // Validation errors name the field.
  HttpResult bad = Call(authed, "PUT", base + "/permissions/x", owner, R"({"role":"owner"})");
  CHECK(bad.status == 400);
  CHECK(bad.Json()["error"]["field"] == "role");
  CHECK(Call(authed, "PUT", base + "/permissions/x", owner, R"({})").Json()["error"]["field"] ==
        "role");
  CHECK(Call(authed, "PUT", base + "/permissions/x", owner, R"({"role":"viewer","x":1})")
            .Json()["error"]["field"] == "x");
  CHECK(Call(authed, "PUT", base + "/permissions/owner", owner, R"({"role":"viewer"})")
            .Json()["error"]["field"] == "userId");
  CHECK(Call(authed, "PUT", base + "/permissions/x", owner, "not json").status == 400);
  CHECK(Call(authed, "POST", base + "/permissions/x", owner, "{}").status == 405);

  // Upgrade, then revoke: the viewer's next request already sees it.
  CHECK(Call(authed, "PATCH", base, Token("vw"), R"({"title":"by vw"})").status == 403);
  HttpResult up = Call(authed, "PUT", base + "/permissions/vw", owner, R"({"role":"editor"})");
  REQUIRE(up.status == 200);
  CHECK(up.Json()["role"] == "editor");
  CHECK(Call(authed, "PATCH", base, Token("vw"), R"({"title":"by vw"})").status == 200);
  // Repeating the same grant appends nothing.
  Seq head = Call(authed, "GET", base, owner).Json()["seq"].get<Seq>();
  CHECK(Call(authed, "PUT", base + "/permissions/vw", owner, R"({"role":"editor"})").status == 200);
  CHECK(Call(authed, "GET", base, owner).Json()["seq"] == head);
  CHECK(Call(authed, "DELETE", base + "/permissions/vw", owner).status == 204);
  CHECK(Call(authed, "GET", base, Token("vw")).status == 404);
  CHECK(Call(authed, "DELETE", base + "/permissions/vw", owner).status == 204);  // idempotent
  CHECK(Call(authed, "GET", base, owner).Json()["seq"] == head + 1);

  // Every change is in the log, with who made it.
  HttpResult history = Call(authed, "GET", base + "/history?limit=100", owner);
  REQUIRE(history.status == 200);
  std::vector<std::string> changes;
  json events = history.Json();  // kept alive for the loop
  for (const json& e : events["items"]) {
    if (e["kind"] != "permission") continue;
    CHECK(e["actorId"] == "owner");
    changes.push_back(e["userId"].get<std::string>() + "=" + e["role"].get<std::string>());
  }
  CHECK(changes == std::vector<std::string>{"ed=editor", "vw=viewer", "vw=editor", "vw=none"});

  // The grants come back from the log after a restart.
  REQUIRE(authed.Restart().ok());
  CHECK(Call(authed, "PATCH", base, Token("ed"), R"({"title":"after restart"})").status == 200);
  CHECK(Call(authed, "GET", base, Token("vw")).status == 404);
  CHECK(Call(authed, "GET", base + "/permissions", owner).Json()["items"] ==
        json::parse(R"([{"userId":"ed","role":"editor"}])"));
  REQUIRE(authed.Stop().ok());
}

TEST_CASE("OwnerReadsOneUsersRoleAndAUserWithoutAGrantIs404", "[auth][rest]") {
  TestServer server(AuthConfig());
  REQUIRE(server.Start().ok());
  MakeSharedDocument(server, "d");
  const std::string base = "/api/v1/documents/d/permissions/";
  std::string owner = Token("owner");
  HttpResult ed = Call(server, "GET", base + "ed", owner);
  REQUIRE(ed.status == 200);
  CHECK(ed.Json() == json{{"userId", "ed"}, {"role", "editor"}});
  CHECK(Call(server, "GET", base + "vw", owner).Json() ==
        json{{"userId", "vw"}, {"role", "viewer"}});
  CHECK(Call(server, "GET", base + "owner", owner).Json() ==
        json{{"userId", "owner"}, {"role", "owner"}});
  HttpResult nobody = Call(server, "GET", base + "nobody", owner);
  CHECK(nobody.status == 404);
  CHECK(nobody.ErrorCode() == "NOT_FOUND");
  // A revoked grant is gone; a new one shows at once.
  REQUIRE(Call(server, "DELETE", base + "vw", owner).status == 204);
  CHECK(Call(server, "GET", base + "vw", owner).status == 404);
  REQUIRE(Call(server, "PUT", base + "zed", owner, R"({"role":"editor"})").status == 200);
  CHECK(Call(server, "GET", base + "zed", owner).Json()["role"] == "editor");
  // Only the owner may ask; the route lists its methods.
  CHECK(Call(server, "GET", base + "ed", Token("ed")).status == 403);
  CHECK(Call(server, "GET", base + "ed", "").status == 401);
  HttpResult post = Call(server, "POST", base + "ed", owner, "{}");
  CHECK(post.status == 405);
  CHECK(post.Header("allow") == "GET, HEAD, PUT, DELETE");
  REQUIRE(server.Stop().ok());
}

TEST_CASE("BearerSchemeIsMatchedWithoutRegardToCase", "[auth][rest]") {
  TestServer server(AuthConfig());
  REQUIRE(server.Start().ok());
  MakeSharedDocument(server, "d");
  std::string token = Token("vw");
  for (std::string scheme : {"Bearer ", "bearer ", "BEARER ", "bEaReR ", "Bearer   "}) {
    INFO("'" << scheme << "'");
    auto r = HttpRequestOnce(server.port(), "GET", "/api/v1/documents/d", {},
                             {{"Authorization", scheme + token}});
    REQUIRE(r.has_value());
    CHECK(r->status == 200);
  }
  for (std::string value :
       {"Bearer" + token, "Basic " + token, "Bearerx " + token, std::string("Bearer ")}) {
    INFO("'" << value << "'");
    auto r = HttpRequestOnce(server.port(), "GET", "/api/v1/documents/d", {},
                             {{"Authorization", value}});
    REQUIRE(r.has_value());
    CHECK(r->status == 401);
  }
  REQUIRE(server.Stop().ok());
}

TEST_CASE("BadTokensAreAnsweredUnauthenticated", "[auth][rest]") {
  ManualClock clock(kStartMs);
  Config config = AuthConfig();
  config.auth_audience = "quire";
  config.auth_issuer = "https://id.example";
  config.auth_clock_skew_s = 30;
  test::TestServerOptions options;
  options.clock = &clock;
  TestServer server(config, options);
  REQUIRE(server.Start().ok());
  json good = {{"aud", "quire"}, {"iss", "https://id.example"}};
  std::string owner = Token("owner", good);
  REQUIRE(Call(server, "POST", "/api/v1/documents", owner, R"({"id":"d","title":"D"})").status ==
          201);
  auto status = [&](const std::string& token) {
    HttpResult r = Call(server, "GET", "/api/v1/documents/d", token);
    if (r.status == 401) {
      CHECK(r.ErrorCode() == "UNAUTHENTICATED");
      CHECK(r.Header("www-authenticate").value_or("").starts_with("Bearer"));
    }
    return r.status;
  };
  CHECK(status(owner) == 200);
  CHECK(status("") == 401);
  CHECK(status("garbage") == 401);
  json expired = good;
  expired["exp"] = kStartMs / 1000 - 60;
  CHECK(status(Token("owner", expired)) == 401);
  json early = good;
  early["nbf"] = kStartMs / 1000 + 120;
  CHECK(status(Token("owner", early)) == 401);
  // Tampered payload: another sub under the owner's signature.
  std::string tampered = owner;
  size_t d1 = tampered.find('.'), d2 = tampered.find('.', d1 + 1);
  json forged = good;
  forged["sub"] = "owner2";
  tampered.replace(d1 + 1, d2 - d1 - 1, test::Base64UrlEncodeForTest(forged.dump()));
  CHECK(status(tampered) == 401);
  std::string bad_sig = owner;
  bad_sig.back() = bad_sig.back() == 'A' ? 'B' : 'A';
  CHECK(status(bad_sig) == 401);
  CHECK(status(Token("owner", {{"aud", "other"}, {"iss", "https://id.example"}})) == 401);
  CHECK(status(Token("owner", {{"aud", "quire"}, {"iss", "https://evil.example"}})) == 401);
  json none_claims = good;
  none_claims["sub"] = "owner";
  CHECK(status(test::MintUnsigned(none_claims)) == 401);
  JwtKeyPair rsa(JwtKeyPair::Kind::kRsa);
  CHECK(status(rsa.Mint(none_claims)) == 401);
  // The token query parameter works too (browser WebSockets use it; REST accepts it alike).
  auto by_query = HttpRequestOnce(server.port(), "GET", "/api/v1/documents/d?token=" + owner);
  REQUIRE(by_query.has_value());
  CHECK(by_query->status == 200);
  // The injected clock moves past exp (+ skew): the same token stops working.
  clock.AdvanceMs(3600'000 + 31'000);
  CHECK(status(owner) == 401);
  REQUIRE(server.Stop().ok());
}

TEST_CASE("PublicKeyServersAcceptOnlyTheirAlgorithm", "[auth][rest]") {
  test::TempDir dir;
  for (auto kind : {JwtKeyPair::Kind::kRsa, JwtKeyPair::Kind::kEcP256}) {
    JwtKeyPair key(kind);
    std::string pem_path = dir.File(std::string(key.alg()) + ".pem");
    std::ofstream(pem_path) << key.PublicKeyPem();
    Config config = TestServer::MemoryConfig();
    config.auth_public_key_file = pem_path;
    TestServer server(config);
    REQUIRE(server.Start().ok());
    INFO(key.alg());
    json claims = {{"sub", "alice"}};
    CHECK(Call(server, "POST", "/api/v1/documents", key.Mint(claims), R"({"id":"d","title":"D"})")
              .status == 201);
    CHECK(Call(server, "GET", "/api/v1/documents/d", key.Mint(claims)).status == 200);
    // HS/RS confusion: HMAC keyed with the public key the server trusts.
    CHECK(Call(server, "GET", "/api/v1/documents/d",
               MintHs256(key.PublicKeyPem(), claims, {{"alg", "HS256"}}))
              .status == 401);
    CHECK(Call(server, "GET", "/api/v1/documents/d", test::MintUnsigned(claims)).status == 401);
    JwtKeyPair other(kind);
    CHECK(Call(server, "GET", "/api/v1/documents/d", other.Mint(claims)).status == 401);
    REQUIRE(server.Stop().ok());
  }
}

TEST_CASE("WithAccessControlOffAnyoneMayManagePermissions", "[auth][rest]") {
  TestServer server(TestServer::MemoryConfig());
  REQUIRE(server.Start().ok());
  REQUIRE(Call(server, "POST", "/api/v1/documents", "", R"({"id":"d","title":"D"})").status == 201);
  CHECK(Call(server, "PUT", "/api/v1/documents/d/permissions/bob", "", R"({"role":"viewer"})")
            .status == 200);
  CHECK(Call(server, "GET", "/api/v1/documents/d/permissions", "").Json()["items"].size() == 1);
  CHECK(Call(server, "GET", "/api/v1/documents/nope/permissions", "").status == 404);
  CHECK(Call(server, "DELETE", "/api/v1/documents/d", "").status == 204);
  REQUIRE(server.Stop().ok());
}

}  // namespace
}  // namespace quire::io
