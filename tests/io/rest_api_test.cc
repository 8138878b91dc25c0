// REST API v1 and the operations endpoints, end to end: a real ServerApp (TestServer) on
// 127.0.0.1 with real HTTP requests, in both storage modes. Every test stops the server
// gracefully and requires the clean shutdown (uv_loop_close == 0) that Stop() reports.
#include <catch2/catch.hpp>
#include <memory>
#include <set>
#include <string>

#include "core/clock.h"
#include "tests/support/http_client.h"
#include "tests/support/test_server.h"

namespace quire::test {
namespace {

using nlohmann::json;

// One server per storage mode: "memory" or "sqlite" (a fresh file in a temp dir).
struct Env {
  explicit Env(const std::string& mode, TestServerOptions options = {}) {
    Config c = mode == "sqlite" ? TestServer::SqliteConfig(dir.File("quire.db"))
                                : TestServer::MemoryConfig();
    c.allowed_origins = {"https://app.example.com"};
    server = std::make_unique<TestServer>(c, options);
    Status s = server->Start();
    INFO(s.ToString());
    REQUIRE(s.ok());
  }
  ~Env() {
    if (server->running()) {
      Status s = server->Stop();
      CHECK(s.ok());
    }
  }
  HttpResult Call(std::string_view method, std::string_view target, std::string_view body = {},
                  const std::vector<std::pair<std::string, std::string>>& headers = {},
                  std::string_view content_type = "application/json") {
    auto r = HttpRequestOnce(server->port(), method, target, body, headers, content_type);
    REQUIRE(r.has_value());
    return *r;
  }
  json Create(const std::string& body) {
    HttpResult r = Call("POST", "/api/v1/documents", body);
    INFO(r.body);
    REQUIRE(r.status == 201);
    return r.Json();
  }

  TempDir dir;
  std::unique_ptr<TestServer> server;
};

void CheckFieldError(const HttpResult& r, const std::string& field) {
  INFO(r.body);
  CHECK(r.status == 400);
  json j = r.Json();
  CHECK(j["error"]["code"] == "VALIDATION_FAILED");
  CHECK(j["error"]["field"] == field);
  CHECK(j["error"]["message"].get<std::string>().find(field) != std::string::npos);
}

bool IsIsoUtc(const json& v) {
  if (!v.is_string()) return false;
  std::string s = v.get<std::string>();
  return s.size() == 24 && s[4] == '-' && s[10] == 'T' && s.back() == 'Z';
}

TEST_CASE("DocumentCrudRoundTrip", "[rest]") {
  std::string mode = GENERATE(as<std::string>{}, "memory", "sqlite");
  INFO("storage " << mode);
  Env env(mode);

  json created = env.Create(R"({"title":"  Design notes  ","crdt":"automerge"})");
  std::string id = created["id"];
  CHECK(id.size() == 36);  // server-made UUID
  CHECK(created["title"] == "Design notes");
  CHECK(created["crdt"] == "automerge");
  CHECK(IsIsoUtc(created["created_at"]));
  CHECK(IsIsoUtc(created["updated_at"]));
  CHECK(created["deleted_at"].is_null());

  HttpResult got = env.Call("GET", "/api/v1/documents/" + id);
  REQUIRE(got.status == 200);
  json g = got.Json();
  CHECK(g["id"] == id);
  CHECK(g["title"] == "Design notes");
  CHECK(g["seq"] == 1);  // the created event
  CHECK(g["update_count"] == 0);
  CHECK(g["update_bytes"] == 0);
  CHECK(g["snapshot_bytes"] == 0);

  HttpResult patched = env.Call("PATCH", "/api/v1/documents/" + id, R"({"title":"Renamed"})");
  REQUIRE(patched.status == 200);
  CHECK(patched.Json()["title"] == "Renamed");
  CHECK(patched.Json()["seq"] == 2);

  HttpResult deleted = env.Call("DELETE", "/api/v1/documents/" + id);
  CHECK(deleted.status == 204);
  CHECK(deleted.body.empty());
  CHECK(env.Call("DELETE", "/api/v1/documents/" + id).status == 204);  // harmless repeat

  json after = env.Call("GET", "/api/v1/documents/" + id).Json();
  CHECK(IsIsoUtc(after["deleted_at"]));
  CHECK(after["deleted"] == true);
  CHECK(after["seq"] == 3);  // the repeat appended nothing

  HttpResult restored = env.Call("PATCH", "/api/v1/documents/" + id, R"({"deleted":false})");
  REQUIRE(restored.status == 200);
  CHECK(restored.Json()["deleted_at"].is_null());

  HttpResult both =
      env.Call("PATCH", "/api/v1/documents/" + id, R"({"title":"Final","deleted":true})");
  REQUIRE(both.status == 200);
  CHECK(both.Json()["title"] == "Final");
  CHECK(IsIsoUtc(both.Json()["deleted_at"]));
}

TEST_CASE("CreateWithClientIdAndTakenIdGets409", "[rest]") {
  std::string mode = GENERATE(as<std::string>{}, "memory", "sqlite");
  Env env(mode);
  json c = env.Create(R"({"title":"Mine","id":"team.notes_2024-v1"})");
  CHECK(c["id"] == "team.notes_2024-v1");
  CHECK(c["crdt"] == "yjs");
  HttpResult again =
      env.Call("POST", "/api/v1/documents", R"({"title":"Other","id":"team.notes_2024-v1"})");
  CHECK(again.status == 409);
  CHECK(again.ErrorCode() == "ALREADY_EXISTS");
  HttpResult located = env.Call("POST", "/api/v1/documents", R"({"title":"L","id":"loc"})");
  CHECK(located.Header("location") == "/api/v1/documents/loc");
}

TEST_CASE("ValidationErrorsNameTheField", "[rest]") {
  Env env("memory");
  const std::string docs = "/api/v1/documents";
  CheckFieldError(env.Call("POST", docs, R"({})"), "title");
  CheckFieldError(env.Call("POST", docs, R"({"title":"   "})"), "title");
  CheckFieldError(env.Call("POST", docs, R"({"title":42})"), "title");
  CheckFieldError(env.Call("POST", docs, json{{"title", std::string(257, 'a')}}.dump()), "title");
  CheckFieldError(env.Call("POST", docs, R"({"title":"x","crdt":"sharedb"})"), "crdt");
  CheckFieldError(env.Call("POST", docs, R"({"title":"x","id":"has space"})"), "id");
  CheckFieldError(
      env.Call("POST", docs, json{{"title", "x"}, {"id", std::string(129, 'a')}}.dump()), "id");
  CheckFieldError(env.Call("POST", docs, R"({"title":"x","colour":"red"})"), "colour");

  // 256 characters counted as code points, not bytes: 256 x "é" (512 bytes) is fine.
  std::string e256;
  for (int i = 0; i < 256; ++i) e256 += "\xC3\xA9";
  HttpResult ok = env.Call("POST", docs, json{{"title", "  " + e256 + "  "}}.dump());
  CHECK(ok.status == 201);
  CheckFieldError(env.Call("POST", docs, json{{"title", e256 + "\xC3\xA9"}}.dump()), "title");

  // Invalid UTF-8 inside the JSON string is refused.
  HttpResult bad_utf8 = env.Call("POST", docs, std::string("{\"title\":\"a\xFF\xFE\"}"));
  CHECK(bad_utf8.status == 400);

  HttpResult malformed = env.Call("POST", docs, R"({"title":)");
  CHECK(malformed.status == 400);
  CHECK(malformed.ErrorCode() == "INVALID_JSON");
  HttpResult not_object = env.Call("POST", docs, R"(["title"])");
  CHECK(not_object.status == 400);
  CHECK(not_object.ErrorCode() == "INVALID_JSON");

  std::string id = env.Create(R"({"title":"p"})")["id"];
  CheckFieldError(env.Call("PATCH", docs + "/" + id, R"({"deleted":"yes"})"), "deleted");
  CheckFieldError(env.Call("PATCH", docs + "/" + id, R"({"title":""})"), "title");
  CheckFieldError(env.Call("PATCH", docs + "/" + id, R"({"owner":"x"})"), "owner");

  CheckFieldError(env.Call("GET", docs + "?page=0"), "page");
  CheckFieldError(env.Call("GET", docs + "?page=abc"), "page");
  CheckFieldError(env.Call("GET", docs + "?page_size=0"), "page_size");
  CheckFieldError(env.Call("GET", docs + "?page_size=101"), "page_size");
  CheckFieldError(env.Call("GET", docs + "?include_deleted=maybe"), "include_deleted");
}

TEST_CASE("NonJsonBodyGets415", "[rest]") {
  Env env("memory");
  HttpResult r =
      env.Call("POST", "/api/v1/documents", "title=x", {}, "application/x-www-form-urlencoded");
  CHECK(r.status == 415);
  CHECK(r.ErrorCode() == "UNSUPPORTED_MEDIA_TYPE");
  HttpResult none = env.Call("POST", "/api/v1/documents", R"({"title":"x"})", {}, "");
  CHECK(none.status == 415);
  HttpResult with_charset = env.Call("POST", "/api/v1/documents", R"({"title":"x"})", {},
                                     "application/json; charset=utf-8");
  CHECK(with_charset.status == 201);
}

TEST_CASE("UnknownPathGets404AndWrongMethodGets405WithAllow", "[rest]") {
  Env env("memory");
  HttpResult missing = env.Call("GET", "/api/v2/nothing");
  CHECK(missing.status == 404);
  CHECK(missing.ErrorCode() == "NOT_FOUND");
  HttpResult unknown_doc = env.Call("GET", "/api/v1/documents/does-not-exist");
  CHECK(unknown_doc.status == 404);
  CHECK(unknown_doc.ErrorCode() == "NOT_FOUND");
  CHECK(env.Call("PATCH", "/api/v1/documents/nope", R"({"title":"x"})").status == 404);
  CHECK(env.Call("DELETE", "/api/v1/documents/nope").status == 404);

  HttpResult put = env.Call("PUT", "/api/v1/documents", "{}");
  CHECK(put.status == 405);
  CHECK(put.ErrorCode() == "METHOD_NOT_ALLOWED");
  CHECK(put.Header("allow") == "GET, HEAD, POST");
  HttpResult post_one = env.Call("POST", "/api/v1/documents/x", "{}");
  CHECK(post_one.status == 405);
  CHECK(post_one.Header("allow") == "GET, HEAD, PATCH, DELETE");
  CHECK(env.Call("DELETE", "/healthz").Header("allow") == "GET, HEAD");
}

TEST_CASE("HeadAnswersEveryGetRouteWithItsHeadersAndNoBody", "[rest]") {
  Env env("memory");
  json doc = env.Create(R"({"title":"Head"})");
  const std::string one = "/api/v1/documents/" + doc["id"].get<std::string>();
  for (const std::string& target :
       {one, std::string("/api/v1/documents?page_size=5"), std::string("/healthz"),
        std::string("/metrics"), one + "/history", std::string("/api/v1/documents/missing")}) {
    INFO(target);
    HttpResult get = env.Call("GET", target);
    HttpResult head = env.Call("HEAD", target);
    CHECK(head.status == get.status);
    CHECK(head.body.empty());
    CHECK(head.Header("content-type") == get.Header("content-type"));
    if (target != "/metrics") {  // the metrics count the GET itself
      CHECK(head.Header("content-length") == std::to_string(get.body.size()));
    }
  }
  CHECK(env.Call("OPTIONS", one).Header("allow") == "GET, HEAD, PATCH, DELETE, OPTIONS");
  HttpResult fork = env.Call("HEAD", one + "/fork");  // a POST-only route
  CHECK(fork.status == 405);
  CHECK(fork.Header("allow") == "POST");
}

TEST_CASE("ListPaginatesFiltersAndOrdersByUpdatedAtNewestFirst", "[rest]") {
  std::string mode = GENERATE(as<std::string>{}, "memory", "sqlite");
  ManualClock clock;  // distinct updated_at per change, so the order is the change order
  TestServerOptions o;
  o.clock = &clock;
  Env env(mode, o);
  std::vector<std::string> ids;
  for (int i = 0; i < 25; ++i) {
    clock.AdvanceMs(1000);
    std::string title = (i % 5 == 0 ? "Alpha report " : "beta memo ") + std::to_string(i);
    ids.push_back(
        env.Create(json{{"title", title}, {"id", "doc-" + std::to_string(i)}}.dump())["id"]);
  }
  // Touch doc-3 last: it becomes the newest.
  clock.AdvanceMs(1000);
  REQUIRE(
      env.Call("PATCH", "/api/v1/documents/doc-3", json{{"title", "beta memo 3 (edited)"}}.dump())
          .status == 200);
  REQUIRE(env.Call("DELETE", "/api/v1/documents/doc-7").status == 204);

  json p1 = env.Call("GET", "/api/v1/documents").Json();
  CHECK(p1["page"] == 1);
  CHECK(p1["page_size"] == 20);
  CHECK(p1["total"] == 24);  // deleted excluded by default
  REQUIRE(p1["items"].size() == 20);
  CHECK(p1["items"][0]["id"] == "doc-3");
  CHECK(p1["items"][1]["id"] == "doc-24");
  for (size_t i = 1; i < p1["items"].size(); ++i) {
    CHECK(p1["items"][i - 1]["updated_at"].get<std::string>() >
          p1["items"][i]["updated_at"].get<std::string>());
  }

  json p2 = env.Call("GET", "/api/v1/documents?page=2&page_size=20").Json();
  CHECK(p2["items"].size() == 4);
  std::set<std::string> seen;
  for (const auto& d : p1["items"]) seen.insert(d["id"]);
  for (const auto& d : p2["items"]) seen.insert(d["id"]);
  CHECK(seen.size() == 24);
  CHECK(seen.count("doc-7") == 0);

  json with_deleted =
      env.Call("GET", "/api/v1/documents?include_deleted=true&page_size=100").Json();
  CHECK(with_deleted["total"] == 25);
  CHECK(with_deleted["items"].size() == 25);

  json alpha = env.Call("GET", "/api/v1/documents?query=ALPHA&page_size=2").Json();
  CHECK(alpha["total"] == 5);
  CHECK(alpha["items"].size() == 2);
  for (const auto& d : alpha["items"]) CHECK(d["title"].get<std::string>().find("Alpha") == 0);

  json spaced = env.Call("GET", "/api/v1/documents?query=memo+3+%28edited%29").Json();
  CHECK(spaced["total"] == 1);

  json beyond = env.Call("GET", "/api/v1/documents?page=9").Json();
  CHECK(beyond["items"].empty());
  CHECK(beyond["total"] == 24);
}

TEST_CASE("CorsPreflightAndHeadersFollowAllowedOrigins", "[rest][cors]") {
  Env env("memory");
  HttpResult pre = env.Call("OPTIONS", "/api/v1/documents", "",
                            {{"Origin", "https://app.example.com"},
                             {"Access-Control-Request-Method", "POST"},
                             {"Access-Control-Request-Headers", "content-type"}});
  CHECK(pre.status == 204);
  CHECK(pre.Header("access-control-allow-origin") == "https://app.example.com");
  CHECK(pre.Header("access-control-allow-methods").value_or("").find("PATCH") != std::string::npos);
  CHECK(pre.Header("access-control-allow-headers") == "content-type");
  // PUT .../permissions/{userId} with a bearer token, from a page on another origin.
  HttpResult put = env.Call("OPTIONS", "/api/v1/documents/d/permissions/bob", "",
                            {{"Origin", "https://app.example.com"},
                             {"Access-Control-Request-Method", "PUT"}});
  CHECK(put.status == 204);
  CHECK(put.Header("access-control-allow-methods").value_or("").find("PUT") != std::string::npos);
  CHECK(put.Header("access-control-allow-headers").value_or("").find("Authorization") !=
        std::string::npos);

  HttpResult denied =
      env.Call("OPTIONS", "/api/v1/documents", "",
               {{"Origin", "https://evil.example"}, {"Access-Control-Request-Method", "POST"}});
  CHECK(denied.status == 403);
  CHECK_FALSE(denied.Header("access-control-allow-origin").has_value());

  HttpResult get =
      env.Call("GET", "/api/v1/documents", "", {{"Origin", "https://app.example.com"}});
  CHECK(get.Header("access-control-allow-origin") == "https://app.example.com");
  CHECK(get.Header("vary") == "Origin");
  HttpResult other = env.Call("GET", "/api/v1/documents", "", {{"Origin", "https://evil.example"}});
  CHECK_FALSE(other.Header("access-control-allow-origin").has_value());
  // Errors carry CORS headers too, so the browser shows the real answer.
  HttpResult err = env.Call("GET", "/nope", "", {{"Origin", "https://app.example.com"}});
  CHECK(err.status == 404);
  CHECK(err.Header("access-control-allow-origin") == "https://app.example.com");
}

TEST_CASE("OperationsEndpointsAnswer", "[rest][ops]") {
  std::string mode = GENERATE(as<std::string>{}, "memory", "sqlite");
  Env env(mode);
  HttpResult health = env.Call("GET", "/healthz");
  CHECK(health.status == 200);
  CHECK(health.Json()["status"] == "ok");
  HttpResult ready = env.Call("GET", "/readyz");
  CHECK(ready.status == 200);
  CHECK(ready.Json()["status"] == "ready");

  env.Create(R"({"title":"counted"})");
  HttpResult metrics = env.Call("GET", "/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.Header("content-type").value_or("").find("text/plain") == 0);
  const std::string& m = metrics.body;
  for (const char* name :
       {"quire_http_connections ", "quire_http_requests_total ", "quire_http_responses_2xx_total ",
        "quire_open_documents ", "quire_commit_batch_size_bucket{le=\"1\"} ",
        "quire_commit_latency_seconds_count ", "quire_storage_commit_seconds_count ",
        // memory:// and synchronous=NORMAL (the test servers' SQLite) have no fsync of their own
        "quire_journal_fsync_seconds_count 0\n", "quire_snapshots_taken_total ",
        "quire_compactor_folds_running 0", "quire_compactor_folds_queued 0",
        "quire_storage_failed_commits_total 0", "quire_documents 1"}) {
    INFO(name);
    CHECK(m.find(name) != std::string::npos);
  }
  // The create was one committed batch of one append.
  CHECK(m.find("quire_commit_batch_size_count 1\n") != std::string::npos);
}

TEST_CASE("ReadyzIs503AndWritesFailWhileStorageIsFailing", "[rest][ops][faults]") {
  std::string mode = GENERATE(as<std::string>{}, "memory", "sqlite");
  TestServerOptions o;
  o.fault_injection = true;
  Env env(mode, o);
  std::string id = env.Create(R"({"title":"before"})")["id"];
  REQUIRE(env.server->faults() != nullptr);
  env.server->faults()->FailAllCommits(true);

  HttpResult write = env.Call("POST", "/api/v1/documents", R"({"title":"during"})");
  CHECK(write.status == 503);
  CHECK(write.ErrorCode() == "STORAGE_UNAVAILABLE");
  HttpResult ready = env.Call("GET", "/readyz");
  CHECK(ready.status == 503);
  CHECK(ready.ErrorCode() == "STORAGE_UNAVAILABLE");
  // Reads keep working.
  CHECK(env.Call("GET", "/api/v1/documents/" + id).status == 200);
  CHECK(env.Call("GET", "/healthz").status == 200);
  HttpResult metrics = env.Call("GET", "/metrics");
  CHECK(metrics.body.find("quire_storage_failed_commits_total 0\n") == std::string::npos);
  CHECK(metrics.body.find("quire_storage_writable 0\n") != std::string::npos);
  // The failed create left nothing behind.
  CHECK(env.Call("GET", "/api/v1/documents").Json()["total"] == 1);
  env.server->faults()->FailAllCommits(false);
}

TEST_CASE("OpenApiDescribesEveryRoute", "[rest]") {
  Env env("memory");
  HttpResult r = env.Call("GET", "/api/v1/openapi.json");
  REQUIRE(r.status == 200);
  json j = r.Json();
  CHECK(j["openapi"].get<std::string>().rfind("3.", 0) == 0);
  const json& paths = j["paths"];
  CHECK(paths["/api/v1/documents"].contains("get"));
  CHECK(paths["/api/v1/documents"].contains("post"));
  CHECK(paths["/api/v1/documents/{id}"].contains("get"));
  CHECK(paths["/api/v1/documents/{id}"].contains("patch"));
  CHECK(paths["/api/v1/documents/{id}"].contains("delete"));
  for (const char* p :
       {"/api/v1/openapi.json", "/healthz", "/readyz", "/metrics", "/ws/documents/{id}"}) {
    INFO(p);
    CHECK(paths.contains(p));
  }
  CHECK(j["components"]["schemas"]["Document"]["properties"].contains("deleted_at"));
}

TEST_CASE("SqliteRestartKeepsDocumentsAndMemoryStartsFresh", "[rest][restart]") {
  std::string mode = GENERATE(as<std::string>{}, "memory", "sqlite");
  Env env(mode);
  env.Create(R"({"title":"kept","id":"keep-me"})");
  REQUIRE(
      env.Call("PATCH", "/api/v1/documents/keep-me", R"({"title":"kept and renamed"})").status ==
      200);
  REQUIRE(env.Call("DELETE", "/api/v1/documents/keep-me").status == 204);
  Status s = env.server->Restart();
  INFO(s.ToString());
  REQUIRE(s.ok());
  HttpResult r = env.Call("GET", "/api/v1/documents/keep-me");
  if (mode == "sqlite") {
    REQUIRE(r.status == 200);
    CHECK(r.Json()["title"] == "kept and renamed");
    CHECK(IsIsoUtc(r.Json()["deleted_at"]));
    CHECK(r.Json()["seq"] == 3);
    // The id stays taken.
    CHECK(env.Call("POST", "/api/v1/documents", R"({"title":"x","id":"keep-me"})").status == 409);
  } else {
    CHECK(r.status == 404);
  }
}

TEST_CASE("KeepAliveAndPipelinedRestRequestsAreAnsweredInOrder", "[rest]") {
  Env env("memory");
  HttpClient c(env.server->port());
  std::string batch;
  for (int i = 0; i < 5; ++i) {
    batch += HttpClient::Build(
        "POST", "/api/v1/documents",
        json{{"title", "p" + std::to_string(i)}, {"id", "p" + std::to_string(i)}}.dump());
  }
  batch += HttpClient::Build("GET", "/api/v1/documents?page_size=100");
  REQUIRE(c.SendRaw(batch));
  for (int i = 0; i < 5; ++i) {
    auto r = c.ReadResponse();
    REQUIRE(r.has_value());
    CHECK(r->status == 201);
    CHECK(r->Json()["id"] == "p" + std::to_string(i));
  }
  auto list = c.ReadResponse();
  REQUIRE(list.has_value());
  CHECK(list->Json()["total"] == 5);
}

TEST_CASE("ShutdownWithOpenConnectionsIsClean", "[rest][shutdown]") {
  Env env("sqlite");
  HttpClient idle(env.server->port());
  REQUIRE(idle.Request("GET", "/healthz").has_value());
  HttpClient partial(env.server->port());
  REQUIRE(partial.SendRaw("GET /api/v1/doc"));  // never finished
  Status s = env.server->Stop();
  INFO(s.ToString());
  CHECK(s.ok());
  CHECK(idle.WaitForClose(1000));
  CHECK(partial.WaitForClose(1000));
}

}  // namespace
}  // namespace quire::test
