// ServerApp start-up failures and the bound on shutdown time, with real sockets.
#include "cli/server_app.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "tests/support/http_client.h"
#include "tests/support/test_server.h"

namespace quire::cli {
namespace {

using quire::test::HttpClient;
using quire::test::TestServer;

TEST_CASE("StartFailsCleanlyWhenThePortIsTaken", "[server_app]") {
  TestServer first(TestServer::MemoryConfig());
  REQUIRE(first.Start().ok());
  Config c = TestServer::MemoryConfig();
  c.port = first.port();
  Logger logger(LogLevel::kError);
  {
    ServerApp second(c, logger);
    Status s = second.Start();  // releases what it made and closes its loop on failure
    CHECK(s.code() == StatusCode::kIoError);
    CHECK(s.message().find("address already in use") != std::string::npos);
  }
  auto r = quire::test::HttpRequestOnce(first.port(), "GET", "/healthz");
  REQUIRE(r.has_value());
  CHECK(r->status == 200);
  CHECK(first.Stop().ok());
}

TEST_CASE("StartFailsOnAnUnopenableDatabase", "[server_app]") {
  Config c = TestServer::SqliteConfig("/nonexistent-dir/for/quire.db");
  Logger logger(LogLevel::kError);
  ServerApp app(c, logger);
  Status s = app.Start();
  CHECK_FALSE(s.ok());
}

TEST_CASE("ShutdownEndsWithinTheGracePeriodWhenAClientStopsReading", "[server_app][shutdown]") {
  Config c = TestServer::MemoryConfig();
  c.shutdown_grace_s = 1;
  TestServer server(c);
  REQUIRE(server.Start().ok());
  // A small, fixed receive buffer: with autotuning the kernel would take up to 32 MiB, nearly
  // all of the answers, and the test would depend on how far the server got before Stop.
  HttpClient stuck(server.port(), "127.0.0.1", 64 * 1024);
  // Many pipelined requests whose answers (35 MB) the client never reads: the server's
  // write queue cannot drain, so only the grace period can end the connection.
  std::string one = HttpClient::Build("GET", "/api/v1/openapi.json");
  std::string batch;
  for (int i = 0; i < 2000; ++i) batch += one;
  REQUIRE(stuck.SendRaw(batch));
  HttpClient check(server.port());
  REQUIRE(check.Request("GET", "/healthz").has_value());  // the server got this far
  // Wait until the client's buffer is full, then for the server's send buffer to fill.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (stuck.UnreadBytes() < 32 * 1024 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(stuck.UnreadBytes() >= 32 * 1024);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto start = std::chrono::steady_clock::now();
  Status s = server.Stop();
  auto elapsed = std::chrono::steady_clock::now() - start;
  INFO(s.ToString());
  CHECK(s.ok());
  CHECK(elapsed < std::chrono::milliseconds(1000));
  CHECK(elapsed >= std::chrono::milliseconds(400));  // it did wait for the stuck client
}

}  // namespace
}  // namespace quire::cli
