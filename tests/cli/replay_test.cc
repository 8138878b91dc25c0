// `quire replay` end to end: a real SQLite file written through the DocumentService, then
// the real `quire` executable (and cli::Replay in-process) over it, clean and tampered.
#include <sqlite3.h>
#include <stdio.h>
#include <sys/wait.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "cli/commands.h"
#include "tests/projection/projection_test_util.h"

namespace quire::cli {
namespace {

using projection::ProjectionOptions;
using projection::testing::B;
using projection::testing::Harness;
using projection::testing::TempDir;

struct Run {
  int exit_code = -1;
  std::string out;
};

// Runs build/quire with `args` (shell-quoted by the caller), capturing stdout.
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

nlohmann::json ReplayJson(const std::string& url, int expected_exit) {
  Run run = RunQuire("replay --database-url '" + url + "' --json");
  INFO(run.out);
  REQUIRE(run.exit_code == expected_exit);
  return nlohmann::json::parse(run.out);
}

void Exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* error = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  std::string message = error ? error : "";
  sqlite3_free(error);
  sqlite3_close(db);
  INFO(sql << ": " << message);
  REQUIRE(rc == SQLITE_OK);
}

std::vector<std::string> QueryStrings(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
  std::vector<std::string> out;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(stmt, 0);
    out.emplace_back(text ? reinterpret_cast<const char*>(text) : "");
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

// The tampering below speaks the schema of eventlog/SCHEMA.md: events reference their
// document either by `document_id` (text) or by `doc` (= documents.key).
struct EventsSchema {
  std::string doc_column;  // in events
  std::string doc_value;   // the expression over `documents` giving that column's value
  std::string Where(const std::string& id) const {
    return doc_column == "doc" ? "doc = (SELECT key FROM documents WHERE id = '" + id + "')"
                               : "document_id = '" + id + "'";
  }
};
EventsSchema Schema(const std::string& path) {
  auto columns = QueryStrings(path, "SELECT name FROM pragma_table_info('events')");
  bool has_doc = std::find(columns.begin(), columns.end(), "doc") != columns.end();
  return has_doc ? EventsSchema{"doc", "key"} : EventsSchema{"document_id", "id"};
}
// Drops the unique indexes that would refuse the tampering.
std::string DropEventIndexes(const std::string& path) {
  std::string sql;
  for (const std::string& name :
       QueryStrings(path,
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' "
                    "AND sql IS NOT NULL")) {
    sql += "DROP INDEX " + name + ";";
  }
  return sql;
}

// A log with every kind of event: folded automerge, opaque with a client snapshot, renames,
// deletes and restores, duplicates, and pruned updates.
struct WrittenLog {
  std::string url;
  DocumentId automerge;
  DocumentId opaque;
};

WrittenLog WriteLog(Harness& h) {
  WrittenLog log{h.url(), "", ""};
  log.automerge = h.Create("automerge doc", CrdtKind::kAutomerge, "am-doc").id;
  log.opaque = h.Create("opaque doc", CrdtKind::kOpaque).id;
  for (int i = 0; i < 12; ++i) {
    REQUIRE(
        h.Update(log.automerge, "am-" + std::to_string(i), B("chunk" + std::to_string(i))).ok());
    REQUIRE(h.Update(log.opaque, "op-" + std::to_string(i), B("o")).ok());
    h.Compact();
  }
  REQUIRE(h.Update(log.automerge, "am-3", B("chunk3")).value().duplicate);
  REQUIRE(h.Snapshot(log.opaque, 7, B("client snapshot")).ok());
  std::optional<Result<projection::DocumentRecord>> r;
  h.service().Rename(log.opaque, "renamed", "u", [&](auto x) { r = x; });
  h.service().SetDeleted(log.automerge, true, "u", [&](auto x) { r = x; });
  h.service().SetDeleted(log.automerge, false, "u", [&](auto x) { r = x; });
  h.Drain();
  REQUIRE(r->ok());
  h.clock().AdvanceMs(10'000);
  h.Compact();  // retention: prunes what the old snapshots cover
  h.Close();
  return log;
}

ProjectionOptions Cadence() {
  ProjectionOptions options;
  options.snapshot_every_updates = 5;
  options.retain_updates_ms = 5'000;
  return options;
}

TEST_CASE("ReplayIsCleanOnALogWrittenThroughTheService", "[replay]") {
  Harness h("sqlite", Cadence());
  WrittenLog log = WriteLog(h);
  CHECK(Replay({"--database-url", log.url}) == 0);

  nlohmann::json report = ReplayJson(log.url, 0);
  CHECK(report["clean"] == true);
  CHECK(report["documents"] == 2);
  CHECK(report["snapshots"] == 3);  // two folds of automerge, one client snapshot
  CHECK(report["folds_checked"].get<int>() + report["folds_unverifiable"].get<int>() == 2);
  CHECK(report["violations"].empty());
  CHECK(report["updates"].get<int>() < 24);  // some were pruned

  // One document only.
  nlohmann::json one = nlohmann::json::parse(
      RunQuire("replay --database-url '" + log.url + "' --json --document am-doc").out);
  CHECK(one["documents"] == 1);
  CHECK(one["clean"] == true);
  CHECK(RunQuire("replay --database-url '" + log.url + "'").out.find("clean") != std::string::npos);

  // The fold checks give the same report on the reading thread and on helpers.
  auto without_timings = [](nlohmann::json r) {
    for (const char* k : {"elapsed_ms", "scan_ms", "head_check_ms"}) r.erase(k);
    return r;
  };
  for (int threads : {0, 1, 3}) {
    INFO("--fold-threads " << threads);
    Run run = RunQuire("replay --database-url '" + log.url + "' --json --fold-threads " +
                       std::to_string(threads));
    REQUIRE(run.exit_code == 0);
    CHECK(without_timings(nlohmann::json::parse(run.out)) == without_timings(report));
  }
  CHECK(Replay({"--database-url", log.url, "--fold-threads=0"}) == 0);
  for (const char* bad : {"-1", "65", "two", ""}) {
    CHECK(Replay({"--database-url", log.url, "--fold-threads", bad}) == 2);
  }
}

TEST_CASE("ReplayDetectsTamperingDoneDirectlyInTheSqliteFile", "[replay]") {
  TempDir dir;
  ProjectionOptions options = Cadence();
  options.retain_updates_ms = -1;  // every snapshot's prefix stays checkable
  Harness h("sqlite", options);
  WrittenLog log = WriteLog(h);
  std::string path = log.url.substr(std::string("sqlite:///").size());
  std::string copy = dir.File("copy.db");

  auto tampered = [&](const std::string& sql) {
    std::filesystem::copy_file(path, copy, std::filesystem::copy_options::overwrite_existing);
    Exec(copy, sql);
    nlohmann::json report = ReplayJson("sqlite:///" + copy, 1);
    CHECK(report["clean"] == false);
    std::set<std::string> checks;
    for (const auto& v : report["violations"]) checks.insert(v["check"].get<std::string>());
    return checks;
  };

  SECTION("catalog row") {
    auto checks = tampered("UPDATE documents SET title = 'forged' WHERE id = 'am-doc'");
    CHECK(checks == std::set<std::string>{"catalog_mismatch"});
    CHECK(Replay({"--database-url", "sqlite:///" + copy}) == 1);
  }
  SECTION("duplicate op_id") {
    std::filesystem::copy_file(path, copy);
    EventsSchema schema = Schema(copy);
    auto checks = tampered(
        DropEventIndexes(copy) + "INSERT INTO events (" + schema.doc_column +
        ", seq, kind, op_id, actor_id, payload, version, created_at) SELECT " + schema.doc_value +
        ", head_seq + 1, 5, 'am-11', 'x', x'01', 0, updated_at FROM documents WHERE id = "
        "'am-doc';"
        "UPDATE documents SET head_seq = head_seq + 1, update_count = update_count + 1, "
        "update_bytes = update_bytes + 1 WHERE id = 'am-doc';");
    CHECK(checks == std::set<std::string>{"duplicate_op_id"});
  }
  SECTION("snapshot bytes") {
    std::filesystem::copy_file(path, copy);
    EventsSchema schema = Schema(copy);
    auto checks =
        tampered("UPDATE events SET payload = x'00' WHERE kind = 6 AND " + schema.Where("am-doc") +
                 " AND seq = (SELECT MAX(seq) FROM events WHERE kind = 6 AND " +
                 schema.Where("am-doc") + ")");
    CHECK(checks.count("snapshot_fold") == 1);
    CHECK(checks.count("catalog_mismatch") == 1);  // snapshot_bytes no longer matches
  }
  SECTION("seq reuse") {
    std::filesystem::copy_file(path, copy);
    EventsSchema schema = Schema(copy);
    auto checks = tampered(
        DropEventIndexes(copy) + "UPDATE events SET seq = seq - 1 WHERE " + schema.Where("am-doc") +
        " AND seq = (SELECT MAX(seq) FROM events WHERE " + schema.Where("am-doc") + ")");
    CHECK(checks.count("seq_order") == 1);
  }
}

TEST_CASE("ReplayExitsTwoWhenTheInputIsUnreadable", "[replay]") {
  TempDir dir;
  CHECK(Replay({"--database-url", "sqlite:///" + dir.File("missing.db")}) == 2);
  CHECK_FALSE(std::filesystem::exists(dir.File("missing.db")));  // read-only: not created

  std::ofstream(dir.File("text.db")) << "this is not a database\n";
  CHECK(Replay({"--database-url", "sqlite:///" + dir.File("text.db")}) == 2);

  Exec(dir.File("other.db"), "CREATE TABLE unrelated (x INTEGER)");
  CHECK(Replay({"--database-url", "sqlite:///" + dir.File("other.db")}) == 2);
  Run run = RunQuire("replay --database-url 'sqlite:///" + dir.File("other.db") + "' --json");
  CHECK(run.exit_code == 2);
  CHECK(nlohmann::json::parse(run.out).contains("error"));

  CHECK(Replay({"--database-url", "postgres://nowhere"}) == 2);
  CHECK(Replay({"--bogus"}) == 2);
  CHECK(Replay({"--help"}) == 0);
  CHECK(RunQuire("replay --help").out.find("--database-url") != std::string::npos);
}

}  // namespace
}  // namespace quire::cli
