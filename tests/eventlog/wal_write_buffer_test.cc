// The SQLite backend's writer gathers its WAL frame writes (eventlog/internal/wal_write_buffer.h):
// a commit reaches the file in few writes, and whole, before another connection can read it.
#include "eventlog/internal/wal_write_buffer.h"

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "eventlog/backend.h"
#include "tests/eventlog/eventlog_test_util.h"

namespace quire::eventlog {
namespace {

using testing::Created;
using testing::TempDir;
using testing::Update;

int64_t QueryInt(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK);
  const int rc = sqlite3_step(stmt);
  INFO(sql << ": " << sqlite3_errmsg(db));
  REQUIRE(rc == SQLITE_ROW);
  const int64_t value = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  return value;
}

// Appends `batch` (committed, or staged as the server does) and requires every event stored.
void Store(Backend& backend, const std::vector<Event>& batch, bool staged) {
  std::vector<AppendResult> results(batch.size());
  std::vector<Status> statuses(batch.size(), Status::Ok());
  const Status s = staged ? backend.StageBatch(batch, results, statuses)
                          : backend.CommitBatch(batch, results, statuses);
  INFO(s.ToString());
  REQUIRE(s.ok());
  for (const Status& status : statuses) REQUIRE(status.ok());
}

TEST_CASE("ACommitsWalFramesReachTheFileInFewWritesBeforeAnotherConnectionReadsThem", "[sqlite]") {
  TempDir dir;
  auto opened = OpenBackend(dir.SqliteUrl(), BackendOptions{});
  REQUIRE(opened.ok());
  Backend& backend = **opened;
  constexpr int kDocs = 200;
  std::vector<Event> batch;
  for (int d = 0; d < kDocs; ++d) batch.push_back(Created("d" + std::to_string(d)));
  Store(backend, batch, /*staged=*/false);

  // A reader on a connection of its own (the default VFS), open across every commit. Each
  // commit must be readable whole as soon as it returns: its frames are in the WAL file.
  sqlite3* reader = nullptr;
  REQUIRE(sqlite3_open_v2((dir.path() + "/log.db").c_str(), &reader, SQLITE_OPEN_READONLY,
                          nullptr) == SQLITE_OK);
  const std::string payload(300, 'x');
  for (int round = 0; round < 10; ++round) {
    batch.clear();
    for (int i = 0; i < 2000; ++i) {
      batch.push_back(Update("d" + std::to_string(i % kDocs),
                             "r" + std::to_string(round) + "-" + std::to_string(i), payload));
    }
    // As the server stores: staged (durable in the redo journal), then SQLite's commit at
    // synchronous=NORMAL, which makes no xSync that would write the buffer out anyway.
    Store(backend, batch, /*staged=*/true);
    const internal::WalWriteBufferStats before = internal::GetWalWriteBufferStats();
    REQUIRE(backend.CommitStaged().ok());
    const internal::WalWriteBufferStats after = internal::GetWalWriteBufferStats();
    const int64_t requested = after.requested - before.requested;
    const int64_t written = after.written - before.written;
    INFO("round " << round << ": " << requested << " WAL writes asked for, " << written << " made");
    // SQLite's two writes per frame, and at least a frame per 4 KiB page of payload.
    CHECK(requested >= 2 * (2000 * 300 / 4096));
    CHECK(written * 20 <= requested);

    CHECK(QueryInt(reader, "SELECT count(*) FROM events WHERE kind = 5") == 2000 * (round + 1));
    CHECK(QueryInt(reader, "SELECT sum(length(payload)) FROM events WHERE kind = 5") ==
          int64_t{2000} * 300 * (round + 1));
    CHECK(QueryInt(reader, "SELECT max(seq) FROM events") == 1 + 10 * (round + 1));
  }
  sqlite3_stmt* check = nullptr;
  REQUIRE(sqlite3_prepare_v2(reader, "PRAGMA integrity_check", -1, &check, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(check) == SQLITE_ROW);
  CHECK(std::string(reinterpret_cast<const char*>(sqlite3_column_text(check, 0))) == "ok");
  sqlite3_finalize(check);
  sqlite3_close_v2(reader);
}

// A commit that by itself writes more pages than the writer's inline-checkpoint threshold
// (4,000) is copied into the database by the background checkpointer: the writer does not
// copy its own commit while appends wait. The writer's checkpoint would read every frame
// through this VFS; the background one reads with the default VFS.
TEST_CASE("TheWriterLeavesCopyingALargeCommitToTheBackgroundCheckpointer", "[sqlite]") {
  TempDir dir;
  auto opened = OpenBackend(dir.SqliteUrl(), BackendOptions{});
  REQUIRE(opened.ok());
  Backend& backend = **opened;
  std::vector<Event> batch = {Created("big")};
  Store(backend, batch, /*staged=*/false);
  // 5,000 updates of 3,500 bytes: a page each, ~17 MiB of WAL in one commit.
  const std::string payload(3500, 'p');
  for (int b = 0; b < 10; ++b) {
    batch.clear();
    for (int i = 0; i < 500; ++i) {
      batch.push_back(Update("big", "op-" + std::to_string(b * 500 + i), payload));
    }
    Store(backend, batch, /*staged=*/true);
  }
  const internal::WalWriteBufferStats before = internal::GetWalWriteBufferStats();
  REQUIRE(backend.CommitStaged().ok());
  const internal::WalWriteBufferStats after = internal::GetWalWriteBufferStats();
  INFO((after.requested - before.requested)
       << " WAL writes, " << (after.read - before.read) << " WAL reads by the writer");
  CHECK(after.requested - before.requested >= 2 * 5000);
  CHECK(after.read - before.read < 100);

  // The background checkpointer copies it: the database file grows to hold it.
  const std::string db = dir.path() + "/log.db";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::filesystem::file_size(db) < uintmax_t{5000} * 3500 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(std::filesystem::file_size(db) >= uintmax_t{5000} * 3500);
  auto events = backend.ReadEvents("big", 0, SIZE_MAX);
  REQUIRE(events.ok());
  CHECK(events->size() == 5001);
}

}  // namespace
}  // namespace quire::eventlog
