// StaticFiles and the web root in front of the API: over a real server with real sockets
// (traversal attempts go through the HTTP parser's percent-decoding), and directly.
#include "io/static_files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "tests/support/http_client.h"
#include "tests/support/test_server.h"

namespace {

using quire::io::HttpRequest;
using quire::io::StaticFiles;
using quire::test::HttpRequestOnce;
using quire::test::TempDir;
using quire::test::TestServer;

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
  REQUIRE(out.good());
}

// <tmp>/secret.txt outside the root, <tmp>/root/ with a page, an asset, a dotfile, a
// subdirectory and symlinks pointing in and out of the root.
struct WebRootFixture {
  TempDir dir;
  std::string root = dir.File("root");
  WebRootFixture() {
    REQUIRE(mkdir(root.c_str(), 0755) == 0);
    REQUIRE(mkdir((root + "/assets").c_str(), 0755) == 0);
    REQUIRE(mkdir((root + "/sub").c_str(), 0755) == 0);
    WriteFile(dir.File("secret.txt"), "SECRET");
    WriteFile(root + "/index.html", "<!doctype html><title>Quire</title>");
    WriteFile(root + "/assets/app-1234.js", "console.log('quire')");
    WriteFile(root + "/style.css", "body{}");
    WriteFile(root + "/.env", "HIDDEN");
    WriteFile(root + "/sub/index.html", "<p>sub</p>");
    REQUIRE(symlink(dir.File("secret.txt").c_str(), (root + "/leak.txt").c_str()) == 0);
    REQUIRE(symlink(dir.path().c_str(), (root + "/up").c_str()) == 0);
    REQUIRE(symlink("style.css", (root + "/alias.css").c_str()) == 0);
  }
};

HttpRequest Get(std::string path) {
  HttpRequest r;
  r.method = "GET";
  r.target = path;
  r.path = std::move(path);
  return r;
}

std::string HeaderOf(const quire::io::HttpResponse& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

TEST_CASE("WebRootServesIndexForSlashWithTypesAndCachingOverHttp", "[static]") {
  WebRootFixture fx;
  quire::Config config = TestServer::MemoryConfig();
  config.web_root = fx.root;
  TestServer server(config);
  REQUIRE(server.Start().ok());

  auto index = HttpRequestOnce(server.port(), "GET", "/");
  REQUIRE(index.has_value());
  CHECK(index->status == 200);
  CHECK(index->body == "<!doctype html><title>Quire</title>");
  CHECK(index->Header("content-type") == "text/html; charset=utf-8");
  CHECK(index->Header("cache-control") == "no-cache");
  CHECK(index->Header("x-content-type-options") == "nosniff");

  auto js = HttpRequestOnce(server.port(), "GET", "/assets/app-1234.js");
  REQUIRE(js.has_value());
  CHECK(js->status == 200);
  CHECK(js->Header("content-type") == "text/javascript; charset=utf-8");
  CHECK(js->Header("cache-control") == "public, max-age=31536000, immutable");

  auto css = HttpRequestOnce(server.port(), "GET", "/style.css");
  REQUIRE(css.has_value());
  CHECK(css->Header("content-type") == "text/css; charset=utf-8");
  CHECK(css->Header("cache-control") == "public, max-age=300");

  auto sub = HttpRequestOnce(server.port(), "GET", "/sub/");
  REQUIRE(sub.has_value());
  CHECK(sub->body == "<p>sub</p>");

  // A revalidation with the ETag gets 304 and no body.
  auto etag = index->Header("etag");
  REQUIRE(etag.has_value());
  auto again = HttpRequestOnce(server.port(), "GET", "/", {}, {{"If-None-Match", *etag}});
  REQUIRE(again.has_value());
  CHECK(again->status == 304);
  CHECK(again->body.empty());

  // The API is still the API; unknown API paths keep their JSON 404.
  auto health = HttpRequestOnce(server.port(), "GET", "/healthz");
  REQUIRE(health.has_value());
  CHECK(health->status == 200);
  CHECK(health->Json()["status"] == "ok");
  auto list = HttpRequestOnce(server.port(), "GET", "/api/v1/documents");
  REQUIRE(list.has_value());
  CHECK(list->status == 200);
  auto missing_api = HttpRequestOnce(server.port(), "GET", "/api/v1/nothing");
  REQUIRE(missing_api.has_value());
  CHECK(missing_api->status == 404);
  CHECK(missing_api->ErrorCode() == "NOT_FOUND");
  // POST to a page path goes to the API router (404 JSON), never writes files.
  auto post = HttpRequestOnce(server.port(), "POST", "/index.html", "{}");
  REQUIRE(post.has_value());
  CHECK(post->status == 404);

  REQUIRE(server.Stop().ok());
}

TEST_CASE("TraversalAttemptsNeverLeaveTheWebRoot", "[static]") {
  WebRootFixture fx;
  quire::Config config = TestServer::MemoryConfig();
  config.web_root = fx.root;
  TestServer server(config);
  REQUIRE(server.Start().ok());

  const char* attempts[] = {
      "/../secret.txt",
      "/..%2fsecret.txt",
      "/%2e%2e/secret.txt",
      "/%2e%2e%2fsecret.txt",
      "/sub/../../secret.txt",
      "/sub/%2e%2e/%2e%2e/secret.txt",
      "/assets/..%2f..%2fsecret.txt",
      "/..\\secret.txt",
      "/%2e%2e%5csecret.txt",
      "/leak.txt",
      "/up/secret.txt",
      "/.env",
      "/%2eenv",
      "//etc/passwd",
      "/sub/./index.html",
      "/index.html%00.js",
      "/%252e%252e/secret.txt",
  };
  for (const char* target : attempts) {
    INFO(target);
    quire::test::HttpClient client(server.port());
    REQUIRE(client.connected());
    auto r = client.Request("GET", target);
    // Either the parser refuses the target (400) or the file server does (404); the secret
    // never comes back.
    if (r.has_value()) {
      CHECK((r->status == 404 || r->status == 400));
      CHECK(r->body.find("SECRET") == std::string::npos);
      CHECK(r->body.find("HIDDEN") == std::string::npos);
      CHECK(r->body.find("root:") == std::string::npos);
    }
  }
  // A symlink that stays inside the root is followed.
  auto alias = HttpRequestOnce(server.port(), "GET", "/alias.css");
  REQUIRE(alias.has_value());
  CHECK(alias->status == 200);
  CHECK(alias->body == "body{}");

  REQUIRE(server.Stop().ok());
}

TEST_CASE("StaticFilesRefusesDotSegmentsBeforeTouchingTheFileSystem", "[static]") {
  WebRootFixture fx;
  auto files = StaticFiles::Open(fx.root);
  REQUIRE(files.ok());
  // request.path is what the HTTP parser produced after percent-decoding.
  for (const char* path : {"/../secret.txt", "/sub/../index.html", "/./index.html", "/sub//x",
                           "/.env", "", "index.html", "/up/secret.txt", "/leak.txt"}) {
    INFO(path);
    auto r = files->Serve(Get(path));
    CHECK(r.status == 404);
    CHECK(r.body.find("SECRET") == std::string::npos);
  }
  CHECK(files->Serve(Get("/sub")).status == 404);  // a directory is not a file
  CHECK(files->Serve(Get("/nope.js")).status == 404);
  CHECK(files->Serve(Get("/index.html")).status == 200);

  HttpRequest put = Get("/index.html");
  put.method = "PUT";
  auto r = files->Serve(put);
  CHECK(r.status == 405);
  CHECK(HeaderOf(r, "Allow") == "GET, HEAD");
}

TEST_CASE("ContentTypesFollowTheExtension", "[static]") {
  using quire::io::ContentTypeForPath;
  CHECK(ContentTypeForPath("/a/index.HTML") == "text/html; charset=utf-8");
  CHECK(ContentTypeForPath("/app.mjs") == "text/javascript; charset=utf-8");
  CHECK(ContentTypeForPath("/app.js.map") == "application/json");
  CHECK(ContentTypeForPath("/logo.svg") == "image/svg+xml");
  CHECK(ContentTypeForPath("/shot.png") == "image/png");
  CHECK(ContentTypeForPath("/font.woff2") == "font/woff2");
  CHECK(ContentTypeForPath("/README") == "application/octet-stream");
  CHECK(ContentTypeForPath("/dir.d/README") == "application/octet-stream");
}

TEST_CASE("AWebRootThatIsNotADirectoryFailsTheStart", "[static]") {
  TempDir dir;
  quire::Config config = TestServer::MemoryConfig();
  config.web_root = dir.File("missing");
  TestServer server(config);
  CHECK_FALSE(server.Start().ok());

  auto direct = StaticFiles::Open(dir.path() + "/missing");
  CHECK_FALSE(direct.ok());
  WriteFile(dir.File("file"), "x");
  CHECK_FALSE(StaticFiles::Open(dir.File("file")).ok());
}

TEST_CASE("NoWebRootLeavesNonApiPathsToTheApiRouter", "[static]") {
  TestServer server(TestServer::MemoryConfig());
  REQUIRE(server.Start().ok());
  auto r = HttpRequestOnce(server.port(), "GET", "/");
  REQUIRE(r.has_value());
  CHECK(r->status == 404);
  CHECK(r->ErrorCode() == "NOT_FOUND");
  REQUIRE(server.Stop().ok());
}

}  // namespace
