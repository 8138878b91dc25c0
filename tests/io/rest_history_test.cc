// History and time travel over REST, end to end: a real ServerApp (TestServer) on 127.0.0.1,
// real HTTP requests, both storage modes. Updates are appended through the server's own
// DocumentService on its loop (the path the WebSocket endpoints use).
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/base64.h"
#include "tests/support/http_client.h"
#include "tests/support/test_server.h"

namespace quire::test {
namespace {

using nlohmann::json;

struct Env {
  explicit Env(const std::string& mode, Config c = {}) {
    Config base = mode == "sqlite" ? TestServer::SqliteConfig(dir.File("quire.db"))
                                   : TestServer::MemoryConfig();
    base.snapshot_every_updates = c.snapshot_every_updates;
    base.retain_updates_days = c.retain_updates_days;
    server = std::make_unique<TestServer>(base);
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
                  const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    auto r = HttpRequestOnce(server->port(), method, target, body, headers, "application/json");
    REQUIRE(r.has_value());
    return *r;
  }
  json Get(const std::string& target) {
    HttpResult r = Call("GET", target);
    INFO(target << " -> " << r.body);
    REQUIRE(r.status == 200);
    return r.Json();
  }
  std::string Create(const std::string& crdt) {
    HttpResult r = Call("POST", "/api/v1/documents", R"({"title":"doc","crdt":")" + crdt + "\"}");
    INFO(r.body);
    REQUIRE(r.status == 201);
    return r.Json()["id"].get<std::string>();
  }
  // Appends one update through the server's DocumentService; returns its seq.
  Seq Append(const std::string& id, const std::string& op_id, const std::string& bytes) {
    std::promise<Result<eventlog::AppendResult>> done;
    server->RunOnLoop([&](cli::ServerApp& app) {
      app.documents().AppendUpdate(
          id, op_id, "tester", Bytes(bytes.begin(), bytes.end()),
          [&done](Result<eventlog::AppendResult> r) { done.set_value(std::move(r)); });
    });
    auto r = done.get_future().get();
    REQUIRE(r.ok());
    return r->seq;
  }
  void RunCompactor() {
    server->RunOnLoop([](cli::ServerApp& app) { app.documents().RunCompactor(); });
  }

  TempDir dir;
  std::unique_ptr<TestServer> server;
};

std::string Path(const std::string& id, const std::string& rest) {
  return "/api/v1/documents/" + id + "/" + rest;
}

std::string DecodeB64(const json& v) {
  auto bytes = Base64Decode(v.get<std::string>());
  REQUIRE(bytes.ok());
  return std::string(bytes->begin(), bytes->end());
}

void CheckFieldError(const HttpResult& r, const std::string& field) {
  INFO(r.body);
  CHECK(r.status == 400);
  CHECK(r.Json()["error"]["code"] == "VALIDATION_FAILED");
  CHECK(r.Json()["error"]["field"] == field);
}

// Pages through history (asc or desc) from `cursor` until has_more is false.
std::vector<Seq> Page(Env& env, const std::string& id, bool desc, size_t limit,
                      std::string& cursor) {
  std::vector<Seq> seqs;
  for (int guard = 0; guard < 1000; ++guard) {
    std::string target = Path(id, "history?limit=" + std::to_string(limit)) +
                         (desc ? "&order=desc" : "") + (cursor.empty() ? "" : "&cursor=" + cursor);
    json page = env.Get(target);
    CHECK(page["items"].size() <= limit);
    for (const json& item : page["items"]) seqs.push_back(item["seq"].get<Seq>());
    cursor = page["next_cursor"].is_null() ? "" : page["next_cursor"].get<std::string>();
    if (!page["has_more"].get<bool>()) break;
  }
  return seqs;
}

}  // namespace

TEST_CASE("HistoryPagesMissAndRepeatNothingUnderConcurrentAppends", "[rest][history]") {
  for (std::string mode : {"memory", "sqlite"}) {
    SECTION(mode) {
      Env env(mode);
      std::string id = env.Create("automerge");
      for (int i = 0; i < 20; ++i) env.Append(id, "pre" + std::to_string(i), "u");
      std::atomic<bool> appending{true};
      std::thread writer([&] {
        for (int i = 0; i < 80; ++i) env.Append(id, "live" + std::to_string(i), "v");
        appending = false;
      });
      // Ascending: page while the writer appends, then continue from the last cursor.
      std::string asc_cursor;
      std::vector<Seq> asc = Page(env, id, false, 7, asc_cursor);
      // Descending from the head as it is now: every older event, newest first.
      std::string desc_cursor;
      std::vector<Seq> desc = Page(env, id, true, 9, desc_cursor);
      writer.join();
      REQUIRE_FALSE(appending.load());
      std::vector<Seq> rest = Page(env, id, false, 7, asc_cursor);
      asc.insert(asc.end(), rest.begin(), rest.end());

      REQUIRE(asc.size() == 101);  // created + 100 updates
      for (size_t i = 0; i < asc.size(); ++i) CHECK(asc[i] == static_cast<Seq>(i + 1));
      REQUIRE_FALSE(desc.empty());
      CHECK(desc.back() == 1);
      for (size_t i = 1; i < desc.size(); ++i) CHECK(desc[i] == desc[i - 1] - 1);
      CHECK(desc_cursor.empty());
    }
  }
}

TEST_CASE("StateAtEverySeqIsTheConcatenatedPrefixForAutomerge", "[rest][history]") {
  Env env("sqlite");
  std::string id = env.Create("automerge");
  std::string expected[8];
  expected[1] = "";
  for (int i = 2; i <= 7; ++i) {
    std::string u(1, static_cast<char>('a' + i));
    CHECK(env.Append(id, "op" + std::to_string(i), u) == i);
    expected[i] = expected[i - 1] + u;
  }
  for (int at = 1; at <= 7; ++at) {
    json s = env.Get(Path(id, "state?at=" + std::to_string(at)));
    CHECK(s["version"] == at);
    CHECK(DecodeB64(s["snapshotB64"]) == expected[at]);
    CHECK_FALSE(s.contains("updates"));
    HttpResult raw = env.Call("GET", Path(id, "state?at=" + std::to_string(at)), {},
                              {{"Accept", "application/octet-stream"}});
    REQUIRE(raw.status == 200);
    CHECK(raw.body == expected[at]);
    CHECK(raw.Header("x-quire-version") == std::to_string(at));
  }
  // Without `at`: the head.
  CHECK(DecodeB64(env.Get(Path(id, "state"))["snapshotB64"]) == expected[7]);
  CheckFieldError(env.Call("GET", Path(id, "state?at=8")), "at");
  CheckFieldError(env.Call("GET", Path(id, "state?at=0")), "at");
  CheckFieldError(env.Call("GET", Path(id, "state?at=x1")), "at");
  CHECK(env.Call("GET", Path("nope", "state")).status == 404);
}

TEST_CASE("StateAtIsFoldedOnTheComputeThreadWhileAppendsGoOn", "[rest][history]") {
  Env env("sqlite");
  std::string id = env.Create("automerge");
  env.Append(id, "op2", "a");
  env.Append(id, "op3", "b");
  // Hold the server's compute thread.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> holding;
  env.server->RunOnLoop([&](cli::ServerApp& app) {
    app.documents().RunCompute<int>(
        [released, &holding] {
          holding.set_value();
          released.wait();
          return 0;
        },
        [](int) {});
  });
  holding.get_future().wait();
  const int port = env.server->port();
  const std::string target = Path(id, "state?at=3");
  auto state = std::async(std::launch::async, [port, target] {
    return HttpRequestOnce(port, "GET", target, {}, {}, "application/json");
  });
  // Released on every way out, before `state` waits for its answer and the server stops (a
  // failed REQUIRE below would otherwise leave both waiting on the held compute thread).
  struct Release {
    std::promise<void>& promise;
    bool done = false;
    void Now() {
      if (!done) promise.set_value();
      done = true;
    }
    ~Release() { Now(); }
  } release_compute{release};
  // The events are read on the storage thread, which takes appends meanwhile; the fold waits
  // for the compute thread, and so does the answer.
  CHECK(env.Append(id, "op4", "c") == 4);
  CHECK(state.wait_for(std::chrono::milliseconds(300)) == std::future_status::timeout);
  release_compute.Now();
  std::optional<HttpResult> r = state.get();
  REQUIRE(r.has_value());
  INFO(r->body);
  REQUIRE(r->status == 200);
  CHECK(r->Json()["version"] == 3);
  CHECK(DecodeB64(r->Json()["snapshotB64"]) == "ab");
}

TEST_CASE("OpaqueStateIsTheNearestSnapshotPlusTheUpdatesAfterIt", "[rest][history]") {
  Env env("memory");
  std::string id = env.Create("opaque");
  env.Append(id, "o1", "A");  // 2
  env.Append(id, "o2", "B");  // 3
  std::promise<Result<eventlog::AppendResult>> snap;
  env.server->RunOnLoop([&](cli::ServerApp& app) {
    app.documents().AppendSnapshot(id, 3, Bytes{'S'}, "client",
                                   [&](Result<eventlog::AppendResult> r) { snap.set_value(r); });
  });
  REQUIRE(snap.get_future().get().ok());  // seq 4, covers 3
  env.Append(id, "o3", "C");              // 5

  json at5 = env.Get(Path(id, "state?at=5"));
  CHECK(DecodeB64(at5["snapshotB64"]) == "S");
  CHECK(at5["snapshotVersion"] == 3);
  REQUIRE(at5["updates"].size() == 1);
  CHECK(at5["updates"][0]["seq"] == 5);
  CHECK(DecodeB64(at5["updates"][0]["updateB64"]) == "C");

  json at2 = env.Get(Path(id, "state?at=2"));
  CHECK(DecodeB64(at2["snapshotB64"]).empty());
  CHECK(at2["snapshotVersion"] == 0);
  REQUIRE(at2["updates"].size() == 1);
  CHECK(DecodeB64(at2["updates"][0]["updateB64"]) == "A");

  // Raw bytes only when the state is one snapshot.
  CHECK(env.Call("GET", Path(id, "state?at=5"), {}, {{"Accept", "application/octet-stream"}})
            .status == 406);
  HttpResult raw4 =
      env.Call("GET", Path(id, "state?at=4"), {}, {{"Accept", "application/octet-stream"}});
  CHECK(raw4.status == 200);
  CHECK(raw4.body == "S");
}

TEST_CASE("NamedVersionsAreEventsListedInOrder", "[rest][history]") {
  for (std::string mode : {"memory", "sqlite"}) {
    SECTION(mode) {
      Env env(mode);
      std::string id = env.Create("automerge");
      env.Append(id, "a", "x");
      HttpResult v1 = env.Call("POST", Path(id, "versions"), R"({"name":"  first draft "})",
                               {{"X-User-Id", "ann"}});
      INFO(v1.body);
      REQUIRE(v1.status == 201);
      CHECK(v1.Json()["seq"] == 3);
      CHECK(v1.Json()["name"] == "first draft");
      env.Append(id, "b", "y");
      REQUIRE(env.Call("POST", Path(id, "versions"), R"({"name":"second"})").status == 201);

      json list = env.Get(Path(id, "versions"));
      REQUIRE(list["items"].size() == 2);
      CHECK(list["items"][0]["seq"] == 3);
      CHECK(list["items"][0]["name"] == "first draft");
      CHECK(list["items"][0]["actorId"] == "ann");
      CHECK(list["items"][1]["seq"] == 5);
      CHECK(list["items"][1]["name"] == "second");
      // The version is an event in the history, and the state at it is the content then.
      json hist = env.Get(Path(id, "history"));
      CHECK(hist["items"][2]["kind"] == "version");
      CHECK(hist["items"][2]["name"] == "first draft");
      CHECK(DecodeB64(env.Get(Path(id, "state?at=3"))["snapshotB64"]) == "x");
      // The catalog head moved; updated_at did not change meaning (not an edit).
      CHECK(env.Get("/api/v1/documents/" + id)["seq"] == 5);

      CheckFieldError(env.Call("POST", Path(id, "versions"), "{}"), "name");
      CheckFieldError(env.Call("POST", Path(id, "versions"), R"({"name":"   "})"), "name");
      CheckFieldError(env.Call("POST", Path(id, "versions"), R"({"name":7})"), "name");
      CheckFieldError(env.Call("POST", Path(id, "versions"), R"({"name":"a","x":1})"), "x");
      CHECK(env.Call("POST", Path(id, "versions"), "{").status == 400);
      CHECK(env.Call("DELETE", Path(id, "versions")).status == 405);
      CHECK(env.Call("POST", Path("missing", "versions"), R"({"name":"a"})").status == 404);
    }
  }
}

TEST_CASE("ForkCreatesADocumentWhoseFirstSnapshotIsTheStateAtSeq", "[rest][history]") {
  for (std::string mode : {"memory", "sqlite"}) {
    SECTION(mode) {
      Env env(mode);
      std::string id = env.Create("automerge");
      env.Append(id, "1", "ab");  // 2
      env.Append(id, "2", "cd");  // 3
      env.Append(id, "3", "ef");  // 4
      HttpResult f = env.Call("POST", Path(id, "fork"), R"({"at":3,"title":"restored"})");
      INFO(f.body);
      REQUIRE(f.status == 201);
      std::string fork_id = f.Json()["id"].get<std::string>();
      CHECK(fork_id != id);
      CHECK(f.Json()["title"] == "restored");
      CHECK(f.Json()["forked_from"]["id"] == id);
      CHECK(f.Json()["forked_from"]["at"] == 3);

      json fork_doc = env.Get("/api/v1/documents/" + fork_id);
      CHECK(fork_doc["crdt"] == "automerge");
      CHECK(fork_doc["snapshot_version"] == 3);
      CHECK(DecodeB64(env.Get(Path(fork_id, "state"))["snapshotB64"]) == "abcd");

      json fork_hist = env.Get(Path(fork_id, "history"));
      REQUIRE(fork_hist["items"].size() == 4);
      CHECK(fork_hist["items"][0]["kind"] == "created");
      CHECK(fork_hist["items"][1]["kind"] == "forked_from");
      CHECK(fork_hist["items"][1]["documentId"] == id);
      CHECK(fork_hist["items"][1]["at"] == 3);
      CHECK(fork_hist["items"][2]["kind"] == "update");
      CHECK(fork_hist["items"][3]["kind"] == "snapshot");

      json src_hist = env.Get(Path(id, "history?order=desc&limit=1"));
      CHECK(src_hist["items"][0]["kind"] == "forked_to");
      CHECK(src_hist["items"][0]["documentId"] == fork_id);
      // The source is unchanged in content.
      CHECK(DecodeB64(env.Get(Path(id, "state"))["snapshotB64"]) == "abcdef");

      // Default `at` is the head; default title names the source.
      HttpResult g = env.Call("POST", Path(id, "fork"), "{}");
      REQUIRE(g.status == 201);
      CHECK(g.Json()["title"] == "doc (fork)");
      CHECK(DecodeB64(env.Get(Path(g.Json()["id"].get<std::string>(), "state"))["snapshotB64"]) ==
            "abcdef");

      CheckFieldError(env.Call("POST", Path(id, "fork"), R"({"at":99})"), "at");
      CheckFieldError(env.Call("POST", Path(id, "fork"), R"({"at":0})"), "at");
      CheckFieldError(env.Call("POST", Path(id, "fork"), R"({"at":"3"})"), "at");
      CheckFieldError(env.Call("POST", Path(id, "fork"), R"({"title":""})"), "title");
      CHECK(env.Call("GET", Path(id, "fork")).status == 405);
    }
  }
}

TEST_CASE("PrunedStateAnswers410WithTheOldestAvailableSeq", "[rest][history]") {
  for (std::string mode : {"memory", "sqlite"}) {
    SECTION(mode) {
      Config c;
      c.snapshot_every_updates = 3;
      c.retain_updates_days = 0;  // prune covered updates as soon as the compactor runs
      Env env(mode, c);
      std::string id = env.Create("automerge");
      for (int i = 0; i < 4; ++i) env.Append(id, "p" + std::to_string(i), std::string(1, 'a' + i));
      // Fold, then prune (each is asynchronous; bounded polling).
      json hist;
      for (int i = 0; i < 200; ++i) {
        env.RunCompactor();
        hist = env.Get(Path(id, "history?limit=500"));
        if (hist["retention"]["pruned_through"].get<Seq>() > 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      INFO(hist.dump());
      REQUIRE(hist["retention"]["pruned_through"].get<Seq>() > 0);
      Seq oldest = hist["retention"]["oldest_state_seq"].get<Seq>();
      Seq pruned = hist["retention"]["pruned_through"].get<Seq>();
      CHECK(oldest >= pruned);
      for (const json& item : hist["items"]) {
        if (item["kind"] == "update") CHECK(item["seq"].get<Seq>() > pruned);
      }
      HttpResult gone = env.Call("GET", Path(id, "state?at=2"));
      INFO(gone.body);
      CHECK(gone.status == 410);
      CHECK(gone.Json()["error"]["code"] == "NOT_RETAINED");
      CHECK(gone.Json()["error"]["oldest_available_seq"] == oldest);
      json ok = env.Get(Path(id, "state?at=" + std::to_string(oldest)));
      std::string all = "abcd";
      CHECK(DecodeB64(ok["snapshotB64"]) == all.substr(0, static_cast<size_t>(oldest - 1)));
      CHECK(DecodeB64(env.Get(Path(id, "state"))["snapshotB64"]) == all);
      CHECK(env.Call("POST", Path(id, "fork"), R"({"at":2})").status == 410);
    }
  }
}

TEST_CASE("HistoryRejectsInvalidQueriesNamingTheField", "[rest][history]") {
  Env env("memory");
  std::string id = env.Create("yjs");
  CheckFieldError(env.Call("GET", Path(id, "history?cursor=%21%21notbase64")), "cursor");
  CheckFieldError(env.Call("GET", Path(id, "history?cursor=aGVsbG8=")), "cursor");  // "hello"
  CheckFieldError(env.Call("GET", Path(id, "history?limit=0")), "limit");
  CheckFieldError(env.Call("GET", Path(id, "history?limit=501")), "limit");
  CheckFieldError(env.Call("GET", Path(id, "history?limit=ten")), "limit");
  CheckFieldError(env.Call("GET", Path(id, "history?order=sideways")), "order");
  // A cursor made for one order is refused for the other.
  json first = env.Get(Path(id, "history?limit=1"));
  std::string asc_cursor = first["next_cursor"].get<std::string>();
  CheckFieldError(env.Call("GET", Path(id, "history?order=desc&cursor=" + asc_cursor)), "cursor");
  CHECK(env.Get(Path(id, "history?limit=500"))["items"].size() == 1);
  CHECK(env.Call("GET", Path("unknown", "history")).status == 404);
  CHECK(env.Call("POST", Path(id, "history")).status == 405);
}

}  // namespace quire::test
