// One test body per behaviour, run against every backend (memory and a fresh SQLite file),
// plus SQLite-only tests of what only a file can show (restart, read-only, migrations, URLs).
#include "eventlog/backend.h"

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>

#include "tests/eventlog/eventlog_test_util.h"

namespace quire::eventlog {
namespace {

using testing::Created;
using testing::Simple;
using testing::Snapshot;
using testing::TempDir;
using testing::Update;

std::unique_ptr<Backend> MustOpen(const std::string& url, BackendOptions options = {}) {
  auto backend = OpenBackend(url, options);
  INFO(url << ": " << backend.status().ToString());
  REQUIRE(backend.ok());
  return std::move(backend).value();
}

struct Committed {
  std::vector<AppendResult> results;
  std::vector<Status> statuses;
};

Committed Commit(Backend& backend, const std::vector<Event>& batch) {
  Committed c;
  c.results.resize(batch.size());
  c.statuses.resize(batch.size());
  Status s = backend.CommitBatch(batch, c.results, c.statuses);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return c;
}

// Same test body, both backends.
struct Fixture {
  TempDir dir;
  std::string url;
  std::unique_ptr<Backend> backend;
  explicit Fixture(const std::string& kind)
      : url(kind == "memory" ? "memory://" : dir.SqliteUrl()), backend(MustOpen(url)) {}
};

#define EACH_BACKEND()                                        \
  Fixture f(GENERATE(as<std::string>{}, "memory", "sqlite")); \
  INFO(f.url)

void CheckCatalogIsFoldOfEvents(Backend& backend) {
  std::vector<std::string> problems;
  auto folded = testing::FoldCatalog(backend, problems);
  CHECK(problems.empty());
  CHECK(testing::CatalogById(backend) == folded);
}

TEST_CASE("SeqIsStrictlyIncreasingPerDocumentAndNeverReused", "[backend]") {
  EACH_BACKEND();
  std::vector<Event> batch;
  for (int d = 0; d < 3; ++d) batch.push_back(Created("doc" + std::to_string(d)));
  auto c = Commit(*f.backend, batch);
  for (const auto& r : c.results) CHECK(r.seq == 1);
  std::map<std::string, Seq> last;
  for (int round = 0; round < 4; ++round) {
    batch.clear();
    for (int i = 0; i < 30; ++i) {
      batch.push_back(Update("doc" + std::to_string(i % 3),
                             "r" + std::to_string(round) + "-" + std::to_string(i)));
    }
    c = Commit(*f.backend, batch);
    for (size_t i = 0; i < batch.size(); ++i) {
      REQUIRE(c.statuses[i].ok());
      CHECK_FALSE(c.results[i].duplicate);
      Seq& prev = last[batch[i].document_id];
      CHECK(c.results[i].seq == (prev == 0 ? 2 : prev + 1));
      prev = c.results[i].seq;
    }
  }
  // Pruning removes updates but their seqs stay taken.
  REQUIRE(f.backend->PruneUpdates("doc0", last["doc0"]).ok());
  c = Commit(*f.backend, {Update("doc0", "after-prune")});
  CHECK(c.results[0].seq == last["doc0"] + 1);
}

TEST_CASE("EveryEventKindRoundTrips", "[backend]") {
  EACH_BACKEND();
  Event created = Created("doc", "First title", "alice", 1000);
  created.crdt = CrdtKind::kAutomerge;
  created.op_id = "create-op";
  Event renamed = Simple("doc", EventKind::kRenamed, 1100);
  renamed.title = "Second title";
  renamed.actor_id = "bob";
  Event update = Update("doc", "op-1", std::string("\x00\x01\xff binary", 10), 1200, "carol");
  Event empty_update = Update("doc", "op-2", "", 1250);
  Event deleted = Simple("doc", EventKind::kDeleted, 1300);
  Event restored = Simple("doc", EventKind::kRestored, 1400);
  Event snapshot = Snapshot("doc", 4, "snap", 1500);
  snapshot.op_id = "snap-op";
  std::vector<Event> batch{created, renamed, update, empty_update, deleted, restored, snapshot};
  auto c = Commit(*f.backend, batch);
  for (size_t i = 0; i < batch.size(); ++i) {
    REQUIRE(c.statuses[i].ok());
    batch[i].seq = static_cast<Seq>(i + 1);
    CHECK(c.results[i].seq == batch[i].seq);
  }
  auto events = f.backend->ReadEvents("doc", 0, 100);
  REQUIRE(events.ok());
  REQUIRE(events->size() == batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    INFO("event " << i);
    const Event& got = (*events)[i];
    CHECK(got.document_id == batch[i].document_id);
    CHECK(got.seq == batch[i].seq);
    CHECK(got.kind == batch[i].kind);
    CHECK(got.op_id == batch[i].op_id);
    CHECK(got.actor_id == batch[i].actor_id);
    CHECK(got.payload == batch[i].payload);
    CHECK(got.version == batch[i].version);
    CHECK(got.title == batch[i].title);
    if (got.kind == EventKind::kCreated) CHECK(got.crdt == CrdtKind::kAutomerge);
    CHECK(got.created_at == batch[i].created_at);
  }
  auto after = f.backend->ReadEvents("doc", 3, 2);
  REQUIRE(after.ok());
  REQUIRE(after->size() == 2);
  CHECK((*after)[0].seq == 4);
  CHECK((*after)[1].seq == 5);
  auto snap = f.backend->ReadLatestSnapshot("doc");
  REQUIRE(snap.ok());
  REQUIRE(snap->has_value());
  CHECK((*snap)->seq == 7);
  CHECK((*snap)->version == 4);
  auto none = f.backend->ReadLatestSnapshot("unknown");
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
  auto unknown = f.backend->ReadEvents("unknown", 0, 10);
  REQUIRE(unknown.ok());
  CHECK(unknown->empty());

  auto catalog = f.backend->ReadCatalog();
  REQUIRE(catalog.ok());
  REQUIRE(catalog->size() == 1);
  const DocumentRecord& r = (*catalog)[0];
  CHECK(r.id == "doc");
  CHECK(r.title == "Second title");
  CHECK(r.owner_id == "alice");
  CHECK(r.crdt == CrdtKind::kAutomerge);
  CHECK(r.created_at == 1000);
  CHECK(r.updated_at == 1400);  // the snapshot is not an edit
  CHECK_FALSE(r.deleted());
  CHECK(r.head_seq == 7);
  CHECK(r.update_count == 2);
  CHECK(r.update_bytes == 10);
  CHECK(r.snapshot_version == 4);
  CHECK(r.snapshot_bytes == 4);
  CheckCatalogIsFoldOfEvents(*f.backend);
}

TEST_CASE("RejectedRequestsGetTheirStatusWhileTheRestOfTheBatchCommits", "[backend]") {
  EACH_BACKEND();
  Commit(*f.backend, {Created("doc")});
  Event no_op_id = Update("doc", "");
  Event bad_snapshot = Snapshot("doc", 99);
  Event no_document = Update("", "x");
  auto c = Commit(*f.backend,
                  {Created("doc"), Update("ghost", "a"), Simple("ghost", EventKind::kRenamed),
                   no_op_id, bad_snapshot, no_document, Update("doc", "fine")});
  CHECK(c.statuses[0].code() == StatusCode::kAlreadyExists);
  CHECK(c.statuses[1].code() == StatusCode::kNotFound);
  CHECK(c.statuses[2].code() == StatusCode::kNotFound);
  CHECK(c.statuses[3].code() == StatusCode::kInvalidArgument);
  CHECK(c.statuses[4].code() == StatusCode::kInvalidArgument);
  CHECK(c.statuses[5].code() == StatusCode::kInvalidArgument);
  REQUIRE(c.statuses[6].ok());
  CHECK(c.results[6].seq == 2);  // rejected requests took no seq
  auto events = f.backend->ReadEvents("doc", 0, 100);
  REQUIRE(events.ok());
  CHECK(events->size() == 2);
  auto catalog = f.backend->ReadCatalog();
  REQUIRE(catalog.ok());
  CHECK(catalog->size() == 1);  // no row for "ghost"
  // A document created earlier in the same batch exists for the requests after it.
  c = Commit(*f.backend,
             {Update("new", "early"), Created("new"), Update("new", "late"), Created("new")});
  CHECK(c.statuses[0].code() == StatusCode::kNotFound);
  REQUIRE(c.statuses[1].ok());
  CHECK(c.results[1].seq == 1);
  REQUIRE(c.statuses[2].ok());
  CHECK(c.results[2].seq == 2);
  CHECK(c.statuses[3].code() == StatusCode::kAlreadyExists);
}

TEST_CASE("DuplicateOpIdReturnsOriginalSeqWithinAndAcrossBatches", "[backend]") {
  EACH_BACKEND();
  auto c = Commit(*f.backend, {Created("a"), Created("b"), Update("a", "op"), Update("a", "op"),
                               Update("b", "op"), Update("a", "other")});
  CHECK(c.results[2].seq == 2);
  CHECK_FALSE(c.results[2].duplicate);
  CHECK(c.results[3].seq == 2);
  CHECK(c.results[3].duplicate);
  CHECK(c.results[4].seq == 2);  // op_ids are per document
  CHECK_FALSE(c.results[4].duplicate);
  CHECK(c.results[5].seq == 3);
  c = Commit(*f.backend, {Update("a", "op"), Update("a", "new")});
  CHECK(c.results[0].seq == 2);
  CHECK(c.results[0].duplicate);
  CHECK(c.results[1].seq == 4);
  // Idempotency survives pruning the update.
  REQUIRE(f.backend->PruneUpdates("a", 4).ok());
  c = Commit(*f.backend, {Update("a", "op"), Update("a", "new"), Update("a", "newer")});
  CHECK(c.results[0].seq == 2);
  CHECK(c.results[0].duplicate);
  CHECK(c.results[1].seq == 4);
  CHECK(c.results[1].duplicate);
  CHECK(c.results[2].seq == 5);
  auto events = f.backend->ReadEvents("a", 0, 100);
  REQUIRE(events.ok());
  CHECK(events->size() == 2);  // created + "newer"
}

TEST_CASE("CatalogRowsEqualTheFoldOfTheEvents", "[backend]") {
  EACH_BACKEND();
  std::vector<Event> batch;
  for (int d = 0; d < 5; ++d) batch.push_back(Created("d" + std::to_string(d), "t", "o", 10 + d));
  Commit(*f.backend, batch);
  for (int round = 0; round < 5; ++round) {
    batch.clear();
    for (int d = 0; d < 5; ++d) {
      std::string id = "d" + std::to_string(d);
      TimestampMs at = 100 * (round + 1) + d;
      batch.push_back(Update(id, "u" + std::to_string(round), std::string(round + d, 'x'), at));
      if ((round + d) % 3 == 0) {
        Event rename = Simple(id, EventKind::kRenamed, at + 1);
        rename.title = "title " + std::to_string(round);
        batch.push_back(rename);
      }
      if ((round + d) % 4 == 1) batch.push_back(Simple(id, EventKind::kDeleted, at + 2));
      if ((round + d) % 4 == 2) batch.push_back(Simple(id, EventKind::kRestored, at + 3));
      if (round == 3) batch.push_back(Snapshot(id, 2, "s", at + 4));
    }
    Commit(*f.backend, batch);
    CheckCatalogIsFoldOfEvents(*f.backend);
  }
}

TEST_CASE("PruneUpdatesRemovesOnlyCoveredUpdates", "[backend]") {
  EACH_BACKEND();
  Commit(*f.backend, {Created("doc"), Update("doc", "1"), Update("doc", "2"), Snapshot("doc", 3),
                      Update("doc", "3")});
  REQUIRE(f.backend->PruneUpdates("doc", 4).ok());
  auto events = f.backend->ReadEvents("doc", 0, 100);
  REQUIRE(events.ok());
  std::vector<Seq> seqs;
  for (const auto& e : *events) seqs.push_back(e.seq);
  CHECK(seqs == std::vector<Seq>{1, 4, 5});
  CHECK(f.backend->PruneUpdates("ghost", 4).code() == StatusCode::kNotFound);
  // The catalog keeps counting every update ever appended.
  auto catalog = testing::CatalogById(*f.backend);
  CHECK(catalog["doc"].update_count == 3);
}

// ---- SQLite only ----

TEST_CASE("SqliteRestartContinuesSeqsAndKeepsIdempotency", "[sqlite]") {
  TempDir dir;
  {
    auto backend = MustOpen(dir.SqliteUrl());
    Commit(*backend, {Created("doc"), Update("doc", "a"), Update("doc", "b")});
  }
  auto backend = MustOpen(dir.SqliteUrl());
  auto c = Commit(*backend, {Update("doc", "b"), Update("doc", "c"), Created("doc")});
  CHECK(c.results[0].seq == 3);
  CHECK(c.results[0].duplicate);
  CHECK(c.results[1].seq == 4);
  CHECK(c.statuses[2].code() == StatusCode::kAlreadyExists);
  CheckCatalogIsFoldOfEvents(*backend);
}

TEST_CASE("SqliteFailedTransactionStoresNothingAndSeqsResume", "[sqlite][fault]") {
  TempDir dir;
  auto backend = MustOpen(dir.SqliteUrl());
  Commit(*backend, {Created("doc"), Update("doc", "a")});
  REQUIRE(testing::PlantPoisonTrigger(dir.path() + "/log.db"));
  std::vector<Event> batch{Update("doc", "b"), Update("doc", "c", "poison"), Update("doc", "d")};
  std::vector<AppendResult> results(batch.size());
  std::vector<Status> statuses(batch.size());
  Status failed = backend->CommitBatch(batch, results, statuses);
  CHECK_FALSE(failed.ok());
  REQUIRE(backend->Recover().ok());
  auto events = backend->ReadEvents("doc", 0, 100);
  REQUIRE(events.ok());
  CHECK(events->size() == 2);
  auto c = Commit(*backend, {Update("doc", "b"), Update("doc", "d")});
  CHECK(c.results[0].seq == 3);  // the failed batch's seqs were not used
  CHECK_FALSE(c.results[0].duplicate);
  CHECK(c.results[1].seq == 4);
  CheckCatalogIsFoldOfEvents(*backend);
}

TEST_CASE("SqliteReadOnlyOpenReadsAndRefusesWrites", "[sqlite]") {
  TempDir dir;
  {
    auto backend = MustOpen(dir.SqliteUrl());
    Commit(*backend, {Created("doc"), Update("doc", "a")});
  }
  BackendOptions ro;
  ro.read_only = true;
  auto backend = MustOpen(dir.SqliteUrl(), ro);
  CHECK(backend->Describe().find("read-only") != std::string::npos);
  auto events = backend->ReadEvents("doc", 0, 10);
  REQUIRE(events.ok());
  CHECK(events->size() == 2);
  std::vector<Event> batch{Update("doc", "b")};
  std::vector<AppendResult> results(1);
  std::vector<Status> statuses(1);
  CHECK_FALSE(backend->CommitBatch(batch, results, statuses).ok());
  // A missing file is an error, not an empty log.
  CHECK_FALSE(OpenBackend(dir.SqliteUrl("missing.db"), ro).ok());
}

TEST_CASE("SqliteNewerSchemaVersionIsRefused", "[sqlite]") {
  TempDir dir;
  { MustOpen(dir.SqliteUrl()); }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((dir.path() + "/log.db").c_str(), &db) == SQLITE_OK);
  int version = -1;
  sqlite3_exec(
      db, "PRAGMA user_version",
      [](void* out, int, char** values, char**) {
        *static_cast<int*>(out) = std::atoi(values[0]);
        return 0;
      },
      &version, nullptr);
  CHECK(version == 2);
  REQUIRE(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto reopened = OpenBackend(dir.SqliteUrl(), {});
  REQUIRE_FALSE(reopened.ok());
  CHECK(reopened.status().code() == StatusCode::kFailedPrecondition);
}

TEST_CASE("SqliteVersion1FileIsMigratedForward", "[sqlite][migration]") {
  TempDir dir;
  const std::string path = dir.path() + "/v1.db";
  {
    // A log as schema version 1 stored it (document ids as text in `events`).
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    const char* v1 = R"sql(
PRAGMA journal_mode = WAL;
CREATE TABLE events (id INTEGER PRIMARY KEY, document_id TEXT NOT NULL, seq INTEGER NOT NULL,
  kind INTEGER NOT NULL, op_id TEXT, actor_id TEXT NOT NULL DEFAULT '', payload BLOB,
  version INTEGER NOT NULL DEFAULT 0, title TEXT, crdt TEXT, created_at INTEGER NOT NULL);
CREATE UNIQUE INDEX events_document_seq ON events (document_id, seq);
CREATE UNIQUE INDEX events_document_op ON events (document_id, op_id) WHERE op_id IS NOT NULL;
CREATE TABLE documents (id TEXT PRIMARY KEY, title TEXT NOT NULL, owner_id TEXT NOT NULL,
  crdt TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  deleted_at INTEGER, head_seq INTEGER NOT NULL, update_count INTEGER NOT NULL,
  update_bytes INTEGER NOT NULL, snapshot_version INTEGER NOT NULL,
  snapshot_bytes INTEGER NOT NULL);
CREATE VIEW document_updates (id, document_id, seq, op_id, actor_id, delta_blob, created_at) AS
  SELECT id, document_id, seq, op_id, actor_id, payload, created_at FROM events WHERE kind = 5;
CREATE VIEW document_snapshots (document_id, version, snapshot_blob, created_at) AS
  SELECT document_id, version, payload, created_at FROM events WHERE kind = 6;
INSERT INTO events (document_id, seq, kind, op_id, actor_id, payload, title, crdt, created_at)
  VALUES ('b', 1, 1, NULL, 'ann', x'', 'Bee', 'opaque', 10),
         ('a', 1, 1, NULL, 'bob', x'', 'Ay', 'yjs', 11),
         ('b', 2, 5, 'op1', 'ann', x'0102', NULL, NULL, 12),
         ('a', 2, 3, NULL, 'bob', x'', NULL, NULL, 13);
INSERT INTO documents VALUES ('a', 'Ay', 'bob', 'yjs', 11, 13, 13, 2, 0, 0, 0, 0),
                             ('b', 'Bee', 'ann', 'opaque', 10, 12, NULL, 2, 1, 2, 0, 0);
PRAGMA user_version = 1;
)sql";
    char* err = nullptr;
    INFO((err ? err : ""));
    REQUIRE(sqlite3_exec(db, v1, nullptr, nullptr, &err) == SQLITE_OK);
    sqlite3_close(db);
  }
  BackendOptions ro;
  ro.read_only = true;
  CHECK(OpenBackend("sqlite:///" + path, ro).status().code() == StatusCode::kFailedPrecondition);

  auto backend = MustOpen("sqlite:///" + path);
  auto events = backend->ReadEvents("b", 0, 10);
  REQUIRE(events.ok());
  REQUIRE(events->size() == 2);
  CHECK((*events)[0].title == "Bee");
  CHECK((*events)[0].crdt == CrdtKind::kOpaque);
  CHECK((*events)[1].op_id == "op1");
  CHECK((*events)[1].payload == Bytes{1, 2});
  auto catalog = testing::CatalogById(*backend);
  REQUIRE(catalog.size() == 2);
  CHECK(catalog["a"].deleted_at == std::optional<TimestampMs>(13));
  CHECK(catalog["b"].update_bytes == 2);
  CheckCatalogIsFoldOfEvents(*backend);
  auto c = Commit(*backend, {Update("b", "op1"), Update("b", "op2"), Created("a")});
  CHECK(c.results[0].seq == 2);
  CHECK(c.results[0].duplicate);
  CHECK(c.results[1].seq == 3);
  CHECK(c.statuses[2].code() == StatusCode::kAlreadyExists);
}

TEST_CASE("SqliteWalIsCheckpointedInTheBackgroundAndRemovedOnClose", "[sqlite]") {
  TempDir dir;
  const std::string wal = dir.path() + "/log.db-wal";
  BackendOptions normal;
  normal.sync_mode = SyncMode::kNormal;
  uintmax_t largest_wal = 0;
  // The WAL header's checkpoint sequence number (big-endian, bytes 12..15) goes up each time
  // the WAL starts over (https://www.sqlite.org/fileformat2.html#walformat).
  auto wal_restarts = [&]() -> int64_t {
    std::ifstream f(wal, std::ios::binary);
    unsigned char header[16] = {};
    if (!f.read(reinterpret_cast<char*>(header), sizeof(header))) return -1;
    return (int64_t{header[12]} << 24) | (int64_t{header[13]} << 16) | (int64_t{header[14]} << 8) |
           int64_t{header[15]};
  };
  int64_t first_restarts = -1, last_restarts = -1;
  {
    auto backend = MustOpen(dir.SqliteUrl(), normal);
    std::vector<Event> batch;
    for (int d = 0; d < 100; ++d) batch.push_back(Created("d" + std::to_string(d)));
    Commit(*backend, batch);
    // Each commit rewrites the tail pages of 100 documents in two indexes (~200 pages, with
    // 200 commits ~90 MB of WAL if it never started over).
    for (int round = 0; round < 200; ++round) {
      batch.clear();
      for (int i = 0; i < 1000; ++i) {
        batch.push_back(Update("d" + std::to_string(i % 100), std::to_string(round * 1000 + i)));
      }
      Commit(*backend, batch);
      largest_wal = std::max(largest_wal, std::filesystem::file_size(wal));
      last_restarts = wal_restarts();
      if (first_restarts < 0) first_restarts = last_restarts;
    }
    auto events = backend->ReadEvents("d7", 0, SIZE_MAX);
    REQUIRE(events.ok());
    CHECK(events->size() == 2001);
  }
  INFO("largest WAL " << largest_wal << ", WAL restarts " << first_restarts << " -> "
                      << last_restarts);
  // The WAL started over again and again while commits kept coming...
  CHECK(last_restarts - first_restarts >= 3);
  // ... so it stayed well below the ~90 MB of a WAL that never starts over: ~16 MiB on a quiet
  // machine. When the background checkpointer finishes late (52.7 MB was measured with both
  // cores busy, before the hard bound), the writer waits for it at 8000 pages and checkpoints
  // itself, so the WAL never exceeds 8000 frames plus one commit's (~250 here) of 4 KiB + 24 B.
  CHECK(largest_wal < (36u << 20));
  CHECK_FALSE(std::filesystem::exists(wal));  // the last connection checkpointed and removed it
  auto reopened = MustOpen(dir.SqliteUrl());
  auto catalog = testing::CatalogById(*reopened);
  CHECK(catalog["d7"].update_count == 2000);
}

TEST_CASE("SqlitePrdTablesAreViewsOverTheEvents", "[sqlite]") {
  TempDir dir;
  {
    auto backend = MustOpen(dir.SqliteUrl());
    Commit(*backend, {Created("doc", "Hello"), Update("doc", "a", "abc"), Snapshot("doc", 2, "s")});
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((dir.path() + "/log.db").c_str(), &db) == SQLITE_OK);
  std::vector<std::string> rows;
  auto collect = [](void* out, int n, char** values, char**) {
    std::string row;
    for (int i = 0; i < n; ++i) row += std::string(values[i] ? values[i] : "NULL") + "|";
    static_cast<std::vector<std::string>*>(out)->push_back(row);
    return 0;
  };
  REQUIRE(sqlite3_exec(db,
                       "SELECT document_id, seq, op_id, actor_id, delta_blob FROM document_updates",
                       collect, &rows, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "SELECT document_id, version, snapshot_blob FROM document_snapshots",
                       collect, &rows, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "SELECT id, title, owner_id, deleted_at FROM documents", collect, &rows,
                       nullptr) == SQLITE_OK);
  sqlite3_close(db);
  CHECK(rows ==
        std::vector<std::string>{"doc|2|a|actor|abc|", "doc|2|s|", "doc|Hello|owner|NULL|"});
}

TEST_CASE("DatabaseUrlFormsFollowSqlalchemy", "[sqlite]") {
  TempDir dir;
  auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  {
    auto relative = MustOpen("sqlite:///./rel.db");
    CHECK(relative->Describe() ==
          "sqlite:///./rel.db (WAL, synchronous=FULL through a redo journal)");
    auto relative2 = MustOpen("sqlite:///sub.db");
  }
  std::filesystem::current_path(cwd);
  CHECK(std::filesystem::exists(dir.path() + "/rel.db"));
  CHECK(std::filesystem::exists(dir.path() + "/sub.db"));
  BackendOptions normal;
  normal.sync_mode = SyncMode::kNormal;
  auto absolute = MustOpen("sqlite:///" + dir.path() + "/abs.db", normal);  // sqlite:////tmp/...
  CHECK(absolute->Describe() == "sqlite:///" + dir.path() + "/abs.db (WAL, synchronous=NORMAL)");
  CHECK(std::filesystem::exists(dir.path() + "/abs.db-wal"));
  CHECK(MustOpen("memory://")->Describe() == "memory://");
  CHECK(OpenBackend("postgres://x", {}).status().code() == StatusCode::kInvalidArgument);
  CHECK(OpenBackend("sqlite:///", {}).status().code() == StatusCode::kInvalidArgument);
  CHECK(OpenBackend("sqlite://host/x.db", {}).status().code() == StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace quire::eventlog
