// `quire replay --until SEQ` and replay over a log with history events: a real server on a
// SQLite file records updates, a named version and a fork; then the real `quire` binary reads
// the file.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <future>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/http_client.h"
#include "tests/support/test_server.h"

namespace quire::test {
namespace {

struct Run {
  int exit_code = -1;
  std::string out;
};

Run RunQuire(const std::string& args) {
  std::string command = std::string(QUIRE_BINARY_DIR) + "/quire " + args + " 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  Run run;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) run.out.append(buf, n);
  int status = pclose(pipe);
  REQUIRE(WIFEXITED(status));
  run.exit_code = WEXITSTATUS(status);
  return run;
}

}  // namespace

TEST_CASE("ReplayUntilPrintsTheStateSummaryAtThatSeqAndForksReplayClean", "[cli][history]") {
  TempDir dir;
  std::string db = dir.File("quire.db");
  std::string id;
  std::string fork_id;
  {
    TestServer server(TestServer::SqliteConfig(db));
    REQUIRE(server.Start().ok());
    auto call = [&](std::string_view method, const std::string& target, std::string_view body) {
      auto r = HttpRequestOnce(server.port(), method, target, body, {}, "application/json");
      REQUIRE(r.has_value());
      return *r;
    };
    HttpResult created =
        call("POST", "/api/v1/documents", R"({"title":"first","crdt":"automerge"})");
    REQUIRE(created.status == 201);
    id = created.Json()["id"].get<std::string>();
    for (std::string u : {"ab", "cd", "ef"}) {
      std::promise<Result<eventlog::AppendResult>> done;
      server.RunOnLoop([&](cli::ServerApp& app) {
        app.documents().AppendUpdate(id, "op-" + u, "w", Bytes(u.begin(), u.end()),
                                     [&](Result<eventlog::AppendResult> r) { done.set_value(r); });
      });
      REQUIRE(done.get_future().get().ok());
    }  // seqs 2, 3, 4
    REQUIRE(call("PATCH", "/api/v1/documents/" + id, R"({"title":"second"})").status == 200);  // 5
    REQUIRE(call("POST", "/api/v1/documents/" + id + "/versions", R"({"name":"v"})").status == 201);
    HttpResult fork = call("POST", "/api/v1/documents/" + id + "/fork", R"({"at":3})");
    REQUIRE(fork.status == 201);
    fork_id = fork.Json()["id"].get<std::string>();
    REQUIRE(server.Stop().ok());
  }
  std::string url = "'sqlite:///" + db + "'";

  // The whole log, history events and the fork included, replays clean.
  Run all = RunQuire("replay --database-url " + url + " --json");
  INFO(all.out);
  CHECK(all.exit_code == 0);

  Run at3 = RunQuire("replay --database-url " + url + " --document " + id + " --until 3 --json");
  INFO(at3.out);
  REQUIRE(at3.exit_code == 0);
  auto j = nlohmann::json::parse(at3.out);
  CHECK(j["until"] == 3);
  CHECK(j["seq"] == 3);
  CHECK(j["title"] == "first");
  CHECK(j["update_count"] == 2);
  CHECK(j["state_bytes"] == 4);  // "abcd"
  CHECK(j["later_events"] == true);

  Run at5 = RunQuire("replay --database-url " + url + " --document " + id + " --until 5");
  INFO(at5.out);
  CHECK(at5.exit_code == 0);
  CHECK(at5.out.find("title \"second\"") != std::string::npos);
  CHECK(at5.out.find("state 6 bytes") != std::string::npos);

  Run fork_state =
      RunQuire("replay --database-url " + url + " --document " + fork_id + " --until 4 --json");
  INFO(fork_state.out);
  REQUIRE(fork_state.exit_code == 0);
  CHECK(nlohmann::json::parse(fork_state.out)["state_bytes"] == 4);

  CHECK(RunQuire("replay --database-url " + url + " --until 3").exit_code == 2);
  CHECK(RunQuire("replay --database-url " + url + " --document " + id + " --until x").exit_code ==
        2);
  CHECK(RunQuire("replay --database-url " + url + " --document nope --until 1").exit_code != 0);
}

}  // namespace quire::test
