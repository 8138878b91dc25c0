// The SQLite backend. The stored format is specified in eventlog/SCHEMA.md; keep the two in
// step. One connection, used by one thread at a time (the AsyncLog storage thread).
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "core/thread_name.h"
#include "eventlog/internal/backends.h"
#include "eventlog/internal/redo_journal.h"
#include "eventlog/internal/wal_write_buffer.h"

namespace quire::eventlog::internal {
namespace {

constexpr int kSchemaVersion = 2;
// EventKind values are stored as-is; 0 marks an update removed by PruneUpdates whose row
// stays behind (without its payload) so that its op_id and seq remain taken.
constexpr int kPrunedKind = 0;
// Bound on cached per-document heads; the cache is dropped and refilled lazily beyond it.
constexpr size_t kMaxCachedDocuments = 100'000;
// WAL size (pages) after a commit that wakes the background checkpointer, and how many pages
// of earlier commits the WAL may still hold after a commit before the writer checkpoints
// inline. A checkpoint that runs while commits keep coming never catches up with the last
// frames, and SQLite starts the WAL over only when every frame is copied; the inline
// checkpoint copies the frames the background one left behind, so the WAL stays around
// kInlineCheckpointPages (16 MiB) plus a commit instead of growing without bound. The
// commit's own pages do not count: one 2 s commit of staged batches can write 4,000 pages by
// itself, and the writer then copied its own commit while appends waited (README, S3).
//
// The inline checkpoint cannot run while the background one is still copying (SQLite refuses a
// second checkpointer at once, without waiting), which on a starved machine let the WAL grow
// past 50 MB. At kHardCheckpointPages (32 MiB) left behind the writer waits for the background
// pass to end and then checkpoints: the WAL never holds more than that plus one commit's
// frames.
constexpr int kCheckpointPages = 1000;
constexpr int kInlineCheckpointPages = 4000;
constexpr int kHardCheckpointPages = 8000;

// Migration i takes a database from user_version i to i + 1. Never edit a released entry:
// append a new one and bump kSchemaVersion.
constexpr const char* kMigrations[kSchemaVersion] = {
    // 0 -> 1: the event table, the catalog projection, the PRD's names as views.
    R"sql(
CREATE TABLE events (
  id          INTEGER PRIMARY KEY,
  document_id TEXT    NOT NULL,
  seq         INTEGER NOT NULL,
  kind        INTEGER NOT NULL,
  op_id       TEXT,
  actor_id    TEXT    NOT NULL DEFAULT '',
  payload     BLOB,
  version     INTEGER NOT NULL DEFAULT 0,
  title       TEXT,
  crdt        TEXT,
  created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX events_document_seq ON events (document_id, seq);
CREATE UNIQUE INDEX events_document_op ON events (document_id, op_id) WHERE op_id IS NOT NULL;
CREATE TABLE documents (
  id               TEXT    PRIMARY KEY,
  title            TEXT    NOT NULL,
  owner_id         TEXT    NOT NULL,
  crdt             TEXT    NOT NULL,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  deleted_at       INTEGER,
  head_seq         INTEGER NOT NULL,
  update_count     INTEGER NOT NULL,
  update_bytes     INTEGER NOT NULL,
  snapshot_version INTEGER NOT NULL,
  snapshot_bytes   INTEGER NOT NULL
);
CREATE VIEW document_updates (id, document_id, seq, op_id, actor_id, delta_blob, created_at) AS
  SELECT id, document_id, seq, op_id, actor_id, payload, created_at FROM events WHERE kind = 5;
CREATE VIEW document_snapshots (document_id, version, snapshot_blob, created_at) AS
  SELECT document_id, version, payload, created_at FROM events WHERE kind = 6;
)sql",
    // 1 -> 2: events name their document by an integer key (documents.key) instead of its
    // text id. Index entries shrink and compare as integers: appends with 100 interleaved
    // documents cost ~40% less CPU (benchmarks/append_bench --schema-compare).
    R"sql(
DROP VIEW document_updates;
DROP VIEW document_snapshots;
CREATE TABLE documents_v2 (
  key              INTEGER PRIMARY KEY,
  id               TEXT    NOT NULL UNIQUE,
  title            TEXT    NOT NULL,
  owner_id         TEXT    NOT NULL,
  crdt             TEXT    NOT NULL,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  deleted_at       INTEGER,
  head_seq         INTEGER NOT NULL,
  update_count     INTEGER NOT NULL,
  update_bytes     INTEGER NOT NULL,
  snapshot_version INTEGER NOT NULL,
  snapshot_bytes   INTEGER NOT NULL
);
INSERT INTO documents_v2 (id, title, owner_id, crdt, created_at, updated_at, deleted_at,
                          head_seq, update_count, update_bytes, snapshot_version, snapshot_bytes)
  SELECT id, title, owner_id, crdt, created_at, updated_at, deleted_at, head_seq, update_count,
         update_bytes, snapshot_version, snapshot_bytes FROM documents ORDER BY id;
CREATE TABLE events_v2 (
  id          INTEGER PRIMARY KEY,
  doc         INTEGER NOT NULL,
  seq         INTEGER NOT NULL,
  kind        INTEGER NOT NULL,
  op_id       TEXT,
  actor_id    TEXT    NOT NULL DEFAULT '',
  payload     BLOB,
  version     INTEGER NOT NULL DEFAULT 0,
  title       TEXT,
  crdt        TEXT,
  created_at  INTEGER NOT NULL
);
INSERT INTO events_v2 (id, doc, seq, kind, op_id, actor_id, payload, version, title, crdt,
                       created_at)
  SELECT e.id, d.key, e.seq, e.kind, e.op_id, e.actor_id, e.payload, e.version, e.title, e.crdt,
         e.created_at
  FROM events e JOIN documents_v2 d ON d.id = e.document_id ORDER BY e.id;
DROP TABLE events;
DROP TABLE documents;
ALTER TABLE documents_v2 RENAME TO documents;
ALTER TABLE events_v2 RENAME TO events;
CREATE UNIQUE INDEX events_doc_seq ON events (doc, seq);
CREATE UNIQUE INDEX events_doc_op ON events (doc, op_id) WHERE op_id IS NOT NULL;
CREATE VIEW document_updates (id, document_id, seq, op_id, actor_id, delta_blob, created_at) AS
  SELECT e.id, d.id, e.seq, e.op_id, e.actor_id, e.payload, e.created_at
  FROM events e JOIN documents d ON d.key = e.doc WHERE e.kind = 5;
CREATE VIEW document_snapshots (document_id, version, snapshot_blob, created_at) AS
  SELECT d.id, e.version, e.payload, e.created_at
  FROM events e JOIN documents d ON d.key = e.doc WHERE e.kind = 6;
)sql",
};

// Every column of an event but its document (read as ReadEvent expects them).
constexpr const char* kEventColumns =
    "seq, kind, op_id, actor_id, payload, version, title, crdt, created_at";
constexpr const char* kDocumentColumns =
    "id, title, owner_id, crdt, created_at, updated_at, deleted_at, head_seq, update_count, "
    "update_bytes, snapshot_version, snapshot_bytes, key";

Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  std::string message = std::string(what) + ": " + sqlite3_errstr(rc);
  if (db != nullptr && sqlite3_errcode(db) == rc) message += std::string(" (") + sqlite3_errmsg(db) + ")";
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::Corruption(std::move(message));
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    default:
      return Status::IoError(std::move(message));
  }
}

// A prepared statement, reset after each use.
class Stmt {
 public:
  Stmt() = default;
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Status Prepare(sqlite3* db, const char* sql) {
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
    if (rc != SQLITE_OK) return SqliteError(db, rc, std::string("prepare ") + sql);
    return Status::Ok();
  }
  sqlite3_stmt* get() { return stmt_; }

  void BindText(int i, std::string_view s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
  }
  void BindTextOrNull(int i, std::string_view s) {
    if (s.empty()) {
      sqlite3_bind_null(stmt_, i);
    } else {
      BindText(i, s);
    }
  }
  void BindBlob(int i, const Bytes& b) {
    static const uint8_t kEmpty = 0;
    sqlite3_bind_blob(stmt_, i, b.empty() ? &kEmpty : b.data(), static_cast<int>(b.size()),
                      SQLITE_STATIC);
  }
  void BindInt(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void BindNull(int i) { sqlite3_bind_null(stmt_, i); }

  // SQLITE_ROW or SQLITE_DONE, or an error code.
  int Step() { return sqlite3_step(stmt_); }
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }
  bool IsNull(int col) { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::string Text(int col) {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
  }
  // Assign into existing objects, reusing their capacity (for scans).
  void TextInto(int col, std::string& out) {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    if (p == nullptr) {
      out.clear();
    } else {
      out.assign(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
    }
  }
  void BlobInto(int col, Bytes& out) {
    const void* p = sqlite3_column_blob(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    if (p == nullptr || n <= 0) {
      out.clear();
    } else {
      const uint8_t* b = static_cast<const uint8_t*>(p);
      out.assign(b, b + n);
    }
  }
  Bytes Blob(int col) {
    const void* p = sqlite3_column_blob(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    if (p == nullptr || n <= 0) return {};
    const uint8_t* b = static_cast<const uint8_t*>(p);
    return Bytes(b, b + n);
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// Resets a statement when leaving a scope, so no statement keeps a read transaction open.
class ResetOnExit {
 public:
  explicit ResetOnExit(Stmt& s) : s_(s) {}
  ~ResetOnExit() { s_.Reset(); }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  Stmt& s_;
};

// Copies WAL frames back into the database file on its own thread and connection, so that a
// commit never pays for a checkpoint (with the default wal_autocheckpoint, SQLite runs one
// inside the COMMIT that crosses the threshold; that was the commit latency tail). PASSIVE
// checkpoints never block the writer; once one completes, the writer starts the WAL over.
class Checkpointer {
 public:
  ~Checkpointer() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
    if (db_ != nullptr) sqlite3_close_v2(db_);
  }

  Status Start(const std::string& path, SyncMode sync_mode) {
    int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                             nullptr);
    if (rc != SQLITE_OK) return SqliteError(db_, rc, "open checkpointer connection " + path);
    // A checkpoint syncs according to its own connection's setting.
    sqlite3_exec(db_, sync_mode == SyncMode::kFull ? "PRAGMA synchronous = FULL"
                                                   : "PRAGMA synchronous = NORMAL",
                 nullptr, nullptr, nullptr);
    sqlite3_busy_timeout(db_, 5000);
    thread_ = std::thread([this] { Main(); });
    return Status::Ok();
  }

  // Writer thread. Runs `checkpoint` once no background pass is running, and keeps the next
  // one from starting until it returns.
  template <typename F>
  void RunExclusive(F checkpoint) {
    std::lock_guard pass(pass_mu_);
    checkpoint();
  }

  // Any thread. Coalesces: at most one checkpoint runs, and one more is queued.
  void Request() {
    {
      std::lock_guard lock(mu_);
      requested_ = true;
    }
    cv_.notify_one();
  }

 private:
  void Main() {
    NameThisThread("quire-checkpt");
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return requested_ || stop_; });
      if (stop_) return;
      requested_ = false;
      lock.unlock();
      // A failure (busy, I/O) leaves the frames in the WAL, where they stay valid; the next
      // request retries. Commits do not depend on checkpoints.
      {
        std::lock_guard pass(pass_mu_);
        sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      }
      lock.lock();
    }
  }

  sqlite3* db_ = nullptr;
  std::thread thread_;
  std::mutex pass_mu_;  // held for each background pass (see RunExclusive)
  std::mutex mu_;
  std::condition_variable cv_;
  bool requested_ = false;
  bool stop_ = false;
};

CrdtKind CrdtFromText(const std::string& s) { return ParseCrdtKind(s).value_or(CrdtKind::kYjs); }

class SqliteBackend final : public Backend {
 public:
  SqliteBackend(std::string path, BackendOptions options)
      : path_(std::move(path)), options_(options) {}
  ~SqliteBackend() override {
    // The checkpointer's connection closes first, so that closing the writer (the last
    // connection) checkpoints and removes the WAL. Statements are finalized before their
    // connection closes.
    // Staged batches are durable in the journal either way; committing them, making SQLite
    // durable and starting the journal over spares the next open (and `quire replay`) reading
    // it: up to 16 MiB, ~90 ms of a replay of 1M updates (README, S6). Not after a failure
    // that Recover() did not repair: then the journal holds events SQLite lacks.
    if (db_ != nullptr && stmts_ != nullptr) {
      if (journal_ != nullptr && !needs_recovery_) {
        StartJournalOver().IgnoreError();
      } else {
        CommitStaged().IgnoreError();
      }
    }
    if (db_ != nullptr) sqlite3_wal_hook(db_, nullptr, nullptr);
    checkpointer_.reset();
    stmts_.reset();
    if (db_ != nullptr) sqlite3_close_v2(db_);
  }

  Status Open() {
    int flags = SQLITE_OPEN_NOMUTEX |
                (options_.read_only ? SQLITE_OPEN_READONLY
                                    : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    // The writer's WAL writes go through the gathering VFS (internal/wal_write_buffer.h).
    const char* vfs = options_.read_only ? nullptr : internal::WalWriteBufferVfs();
    int rc = sqlite3_open_v2(path_.c_str(), &db_, flags, vfs);
    if (rc != SQLITE_OK) return SqliteError(db_, rc, "open " + path_);
    sqlite3_extended_result_codes(db_, 1);
    QUIRE_RETURN_IF_ERROR(Exec("PRAGMA busy_timeout = 5000"));
    // With many documents interleaving, every commit touches the tail leaf of each document
    // in both indexes: keep those pages cached instead of re-reading them (measured in
    // benchmarks/append_bench; see SCHEMA.md).
    QUIRE_RETURN_IF_ERROR(Exec("PRAGMA cache_size = -65536"));
    QUIRE_RETURN_IF_ERROR(Exec("PRAGMA mmap_size = 268435456"));
    if (!options_.read_only) {
      auto mode = QueryText("PRAGMA journal_mode = WAL");
      if (!mode.ok()) return mode.status();
      if (*mode != "wal") return Status::IoError("cannot enable WAL on " + path_ + " (" + *mode + ")");
    }
    QUIRE_RETURN_IF_ERROR(Exec(options_.sync_mode == SyncMode::kFull ? "PRAGMA synchronous = FULL"
                                                                     : "PRAGMA synchronous = NORMAL"));
    QUIRE_RETURN_IF_ERROR(Migrate());
    stmts_ = std::make_unique<Statements>();
    QUIRE_RETURN_IF_ERROR(PrepareStatements());
    if (options_.read_only) return ApplyJournalInMemory();
    if (options_.sync_mode == SyncMode::kFull) {
      // The journal carries durability; SQLite's own commits need not wait for the disk.
      auto journal = RedoJournal::Open(JournalPath());
      if (!journal.ok()) return journal.status();
      journal_ = std::move(journal).value();
      QUIRE_RETURN_IF_ERROR(Exec("PRAGMA synchronous = NORMAL"));
      QUIRE_RETURN_IF_ERROR(ReplayJournal());
    }
    checkpointer_ = std::make_unique<Checkpointer>();
    QUIRE_RETURN_IF_ERROR(checkpointer_->Start(path_, options_.sync_mode));
    // Replaces SQLite's automatic checkpoint (which is itself a WAL hook).
    sqlite3_wal_hook(db_, &SqliteBackend::OnWalCommit, this);
    return Status::Ok();
  }

  Status CommitBatch(std::span<const AppendRequest> batch, std::span<AppendResult> results,
                     std::span<Status> statuses) override {
    if (results.size() != batch.size() || statuses.size() != batch.size()) {
      return Status::Internal("CommitBatch: results/statuses size differs from the batch");
    }
    if (options_.read_only) return Status::FailedPrecondition(path_ + " is open read-only");
    QUIRE_RETURN_IF_ERROR(RefuseUntilRecovered());
    // Not journaled: what was staged before is committed first, then this batch in its own
    // synchronous=FULL transaction, so that a failure leaves nothing of it anywhere.
    QUIRE_RETURN_IF_ERROR(CommitStaged());
    if (journal_ != nullptr) QUIRE_RETURN_IF_ERROR(Exec("PRAGMA synchronous = FULL"));
    Status status = StageInTransaction(batch, results, statuses, nullptr);
    if (status.ok()) status = Commit();
    if (!status.ok()) RollBack();
    if (journal_ != nullptr) {
      Status normal = Exec("PRAGMA synchronous = NORMAL");
      if (status.ok()) status = normal;
    }
    return status;
  }

  Status StageBatch(std::span<const AppendRequest> batch, std::span<AppendResult> results,
                    std::span<Status> statuses) override {
    last_sync_ns_ = 0;
    if (journal_ == nullptr) return CommitBatch(batch, results, statuses);
    if (results.size() != batch.size() || statuses.size() != batch.size()) {
      return Status::Internal("StageBatch: results/statuses size differs from the batch");
    }
    QUIRE_RETURN_IF_ERROR(RefuseUntilRecovered());
    if (journal_->used_bytes() >= options_.journal_bytes) {
      QUIRE_RETURN_IF_ERROR(StartJournalOver());
    }
    record_.clear();
    Status status = StageInTransaction(batch, results, statuses, &record_);
    if (status.ok() && !record_.empty()) {
      status = journal_->Append(record_);
      if (status.ok()) last_sync_ns_ = journal_->last_sync_ns();
    }
    if (!status.ok()) RollBack();
    return status;
  }

  Status CommitStaged() override {
    if (sqlite3_get_autocommit(db_) != 0) return Status::Ok();
    Status status = Commit();
    if (!status.ok()) RollBack();
    return status;
  }

  bool has_staged() const override { return sqlite3_get_autocommit(db_) == 0; }
  int64_t last_sync_ns() const override { return last_sync_ns_; }

  Result<std::vector<Event>> ReadEvents(const DocumentId& id, Seq after_seq,
                                        size_t limit) override {
    Stmt& s = stmts_->read_events;
    ResetOnExit reset(s);
    s.BindText(1, id);
    s.BindInt(2, after_seq);
    s.BindInt(3, static_cast<int64_t>(
                     std::min<size_t>(limit, std::numeric_limits<int64_t>::max())));
    std::vector<Event> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) out.push_back(ReadEvent(s, id, 0));
    if (rc != SQLITE_DONE) return SqliteError(db_, rc, "read events");
    return out;
  }

  Result<std::optional<Event>> ReadLatestSnapshot(const DocumentId& id) override {
    Stmt& s = stmts_->read_snapshot;
    ResetOnExit reset(s);
    s.BindText(1, id);
    int rc = s.Step();
    if (rc == SQLITE_ROW) return std::optional<Event>(ReadEvent(s, id, 0));
    if (rc != SQLITE_DONE) return SqliteError(db_, rc, "read snapshot");
    return std::optional<Event>();
  }

  Result<std::vector<DocumentRecord>> ReadCatalog() override {
    Stmt& s = stmts_->read_catalog;
    ResetOnExit reset(s);
    std::vector<DocumentRecord> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) out.push_back(ReadRecord(s));
    if (rc != SQLITE_DONE) return SqliteError(db_, rc, "read catalog");
    QUIRE_RETURN_IF_ERROR(FoldGrants(out));
    return out;
  }

  // DocumentRecord::grants is not a column: fold the permission events (kind 10) into the
  // rows, in commit order (SCHEMA.md). A scan of `events` that reads no payload.
  Status FoldGrants(std::vector<DocumentRecord>& records) {
    Stmt g;
    QUIRE_RETURN_IF_ERROR(g.Prepare(
        db_, "SELECT d.id, e.title, e.payload FROM events e JOIN documents d ON d.key = e.doc "
             "WHERE e.kind = 10 ORDER BY e.id"));
    std::unordered_map<std::string, DocumentRecord*> by_id;
    Event e;
    e.kind = EventKind::kPermission;
    int rc;
    while ((rc = g.Step()) == SQLITE_ROW) {
      if (by_id.empty()) {
        for (DocumentRecord& r : records) by_id.emplace(r.id, &r);
      }
      auto it = by_id.find(g.Text(0));
      if (it == by_id.end()) continue;
      g.TextInto(1, e.title);
      g.BlobInto(2, e.payload);
      Seq head = it->second->head_seq;
      Apply(*it->second, e);
      it->second->head_seq = head;
    }
    if (rc != SQLITE_DONE) return SqliteError(db_, rc, "read grants");
    return Status::Ok();
  }

  Status ForEachEvent(const std::function<Status(const Event&)>& visit) override {
    // Rowid order is commit order, hence seq order within each document; it is a sequential
    // scan of the table (documents interleave).
    Stmt s;
    QUIRE_RETURN_IF_ERROR(s.Prepare(
        db_, ("SELECT " + std::string(kEventColumns) +
              ", doc FROM events WHERE kind <> 0 ORDER BY id")
                 .c_str()));
    // Document keys to ids, read once (the catalog is small next to the events).
    std::unordered_map<int64_t, DocumentId> ids;
    {
      Stmt& d = stmts_->read_catalog;
      ResetOnExit reset(d);
      int rc;
      while ((rc = d.Step()) == SQLITE_ROW) ids.emplace(d.Int(12), d.Text(0));
      if (rc != SQLITE_DONE) return SqliteError(db_, rc, "read document keys");
    }
    // One Event is reused for every row: its strings and payload keep their capacity.
    Event e;
    int64_t last_key = -1;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      const int64_t key = s.Int(9);
      if (key != last_key) {
        auto id = ids.find(key);
        if (id == ids.end()) return Status::Corruption("event of an unknown document key");
        e.document_id = id->second;
        last_key = key;
      }
      ReadEventInto(s, 0, e);
      QUIRE_RETURN_IF_ERROR(visit(e));
    }
    if (rc != SQLITE_DONE) return SqliteError(db_, rc, "scan events");
    return Status::Ok();
  }

  Status PruneUpdates(const DocumentId& id, Seq up_to_seq) override {
    if (options_.read_only) return Status::FailedPrecondition(path_ + " is open read-only");
    int64_t key = 0;
    {
      Stmt& s = stmts_->load_document;
      ResetOnExit reset(s);
      s.BindText(1, id);
      int rc = s.Step();
      if (rc == SQLITE_DONE) return Status::NotFound("document " + id + " does not exist");
      if (rc != SQLITE_ROW) return SqliteError(db_, rc, "prune updates");
      key = s.Int(12);
    }
    Stmt& s = stmts_->prune;
    ResetOnExit reset(s);
    s.BindInt(1, key);
    s.BindInt(2, up_to_seq);
    int rc = s.Step();
    if (rc != SQLITE_DONE) return SqliteError(db_, rc, "prune updates");
    return Status::Ok();
  }

  Status Recover() override {
    if (sqlite3_get_autocommit(db_) == 0) QUIRE_RETURN_IF_ERROR(Exec("ROLLBACK"));
    docs_.clear();
    // Prove the connection can read the heads again.
    auto version = QueryInt("PRAGMA user_version");
    if (!version.ok()) return version.status();
    if (*version != kSchemaVersion) return Status::Corruption("schema version changed under us");
    // Batches acknowledged from the journal but rolled back in SQLite are stored again.
    if (journal_ != nullptr) QUIRE_RETURN_IF_ERROR(ReplayJournal());
    needs_recovery_ = false;
    return Status::Ok();
  }

  std::string Describe() const override {
    std::string out = "sqlite:///" + path_ + " (WAL, synchronous=" +
                      (options_.sync_mode == SyncMode::kFull ? "FULL" : "NORMAL");
    if (journal_ != nullptr) out += " through a redo journal";
    if (options_.read_only) out += ", read-only";
    if (journal_applied_in_memory_) out += ", with the redo journal applied in memory";
    return out + ")";
  }

 private:
  struct Statements {
    Stmt begin, commit, insert_event, find_op, load_document, insert_document, update_document,
        read_events, read_snapshot, read_catalog, prune;
  };

  // The cached head of a document: its catalog row as committed plus this batch's events.
  struct DocState {
    DocumentRecord record;
    int64_t key = 0;        // documents.key, once the row exists
    bool exists = false;    // committed, or created earlier in the current batch
    uint64_t touched = 0;   // batch number that last changed `record`
  };

  // Called by SQLite on the writer's thread after each commit, with the WAL size in pages.
  static int OnWalCommit(void* arg, sqlite3* db, const char*, int pages) noexcept {
    auto* self = static_cast<SqliteBackend*>(arg);
    // The pages this connection wrote to the WAL since the last commit (SQLite's count of
    // dirty pages written, which in WAL mode are WAL frames): this commit's. The rest are
    // earlier commits' frames that were not all copied when this one began, or SQLite would
    // have started the WAL over.
    int written = 0;
    int highwater = 0;
    sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_WRITE, &written, &highwater, /*resetFlg=*/1);
    const int left_behind = pages - written;
    if (left_behind >= kHardCheckpointPages) {
      self->checkpointer_->RunExclusive([db] {
        sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      });
    } else if (left_behind >= kInlineCheckpointPages) {
      sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    } else if (pages >= kCheckpointPages) {
      self->checkpointer_->Request();
    }
    return SQLITE_OK;
  }

  Status Exec(const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string message = std::string(sql).substr(0, 60) + ": " + (err ? err : sqlite3_errstr(rc));
      sqlite3_free(err);
      return SqliteError(nullptr, rc, message);
    }
    return Status::Ok();
  }

  Result<std::string> QueryText(const char* sql) {
    Stmt s;
    QUIRE_RETURN_IF_ERROR(s.Prepare(db_, sql));
    int rc = s.Step();
    if (rc == SQLITE_ROW) return s.Text(0);
    if (rc == SQLITE_DONE) return std::string();
    return SqliteError(db_, rc, sql);
  }

  Result<int64_t> QueryInt(const char* sql) {
    Stmt s;
    QUIRE_RETURN_IF_ERROR(s.Prepare(db_, sql));
    int rc = s.Step();
    if (rc == SQLITE_ROW) return s.Int(0);
    if (rc == SQLITE_DONE) return int64_t{0};
    return SqliteError(db_, rc, sql);
  }

  Status Migrate() {
    auto version = QueryInt("PRAGMA user_version");
    if (!version.ok()) return version.status();
    if (*version > kSchemaVersion) {
      return Status::FailedPrecondition(path_ + " has schema version " +
                                        std::to_string(*version) + ", newer than this build (" +
                                        std::to_string(kSchemaVersion) + ")");
    }
    if (*version == kSchemaVersion) return Status::Ok();
    if (options_.read_only) {
      return Status::FailedPrecondition(path_ + " has schema version " + std::to_string(*version) +
                                        " and needs a migration; open it read-write once");
    }
    for (int64_t v = *version; v < kSchemaVersion; ++v) {
      QUIRE_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
      Status s = Exec(kMigrations[v]);
      if (s.ok()) s = Exec(("PRAGMA user_version = " + std::to_string(v + 1)).c_str());
      if (s.ok()) s = Exec("COMMIT");
      if (!s.ok()) {
        Exec("ROLLBACK").IgnoreError();  // the migration's own error is the one to report
        return s;
      }
    }
    return Status::Ok();
  }

  Status PrepareStatements() {
    Statements& s = *stmts_;
    const std::string cols = kEventColumns;
    QUIRE_RETURN_IF_ERROR(s.begin.Prepare(db_, "BEGIN IMMEDIATE"));
    QUIRE_RETURN_IF_ERROR(s.commit.Prepare(db_, "COMMIT"));
    const std::string doc_cols = kDocumentColumns;
    QUIRE_RETURN_IF_ERROR(s.insert_event.Prepare(
        db_, ("INSERT INTO events (doc, " + cols +
              ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING")
                 .c_str()));
    QUIRE_RETURN_IF_ERROR(
        s.find_op.Prepare(db_, "SELECT seq FROM events WHERE doc = ?1 AND op_id = ?2"));
    QUIRE_RETURN_IF_ERROR(s.load_document.Prepare(
        db_, ("SELECT " + doc_cols + " FROM documents WHERE id = ?1").c_str()));
    // A created document's row is inserted before its first event (which needs the key) and
    // filled in at the end of the batch.
    QUIRE_RETURN_IF_ERROR(s.insert_document.Prepare(
        db_,
        "INSERT INTO documents (id, title, owner_id, crdt, created_at, updated_at, head_seq, "
        "update_count, update_bytes, snapshot_version, snapshot_bytes) "
        "VALUES (?1, '', '', 'yjs', 0, 0, 0, 0, 0, 0, 0)"));
    QUIRE_RETURN_IF_ERROR(s.update_document.Prepare(
        db_,
        "UPDATE documents SET title = ?2, owner_id = ?3, crdt = ?4, created_at = ?5, "
        "updated_at = ?6, deleted_at = ?7, head_seq = ?8, update_count = ?9, update_bytes = ?10, "
        "snapshot_version = ?11, snapshot_bytes = ?12 WHERE key = ?1"));
    QUIRE_RETURN_IF_ERROR(s.read_events.Prepare(
        db_, ("SELECT " + cols +
              " FROM events WHERE doc = (SELECT key FROM documents WHERE id = ?1) AND seq > ?2 "
              "AND kind <> 0 ORDER BY seq LIMIT ?3")
                 .c_str()));
    QUIRE_RETURN_IF_ERROR(s.read_snapshot.Prepare(
        db_, ("SELECT " + cols +
              " FROM events WHERE doc = (SELECT key FROM documents WHERE id = ?1) AND kind = 6 "
              "ORDER BY seq DESC LIMIT 1")
                 .c_str()));
    QUIRE_RETURN_IF_ERROR(s.read_catalog.Prepare(
        db_, ("SELECT " + doc_cols + " FROM documents ORDER BY id").c_str()));
    QUIRE_RETURN_IF_ERROR(s.prune.Prepare(
        db_,
        "UPDATE events SET kind = 0, payload = NULL WHERE doc = ?1 AND kind = 5 AND seq <= ?2"));
    return Status::Ok();
  }

  // Reads kEventColumns starting at column `c` into `e` (all fields but document_id).
  static void ReadEventInto(Stmt& s, int c, Event& e) {
    e.seq = s.Int(c);
    e.kind = static_cast<EventKind>(s.Int(c + 1));
    s.TextInto(c + 2, e.op_id);
    s.TextInto(c + 3, e.actor_id);
    s.BlobInto(c + 4, e.payload);
    e.version = s.Int(c + 5);
    s.TextInto(c + 6, e.title);
    e.crdt = s.IsNull(c + 7) ? CrdtKind::kYjs : CrdtFromText(s.Text(c + 7));
    e.created_at = s.Int(c + 8);
  }
  static Event ReadEvent(Stmt& s, const DocumentId& id, int c) {
    Event e;
    e.document_id = id;
    ReadEventInto(s, c, e);
    return e;
  }

  static DocumentRecord ReadRecord(Stmt& s) {
    DocumentRecord r;
    r.id = s.Text(0);
    r.title = s.Text(1);
    r.owner_id = s.Text(2);
    r.crdt = CrdtFromText(s.Text(3));
    r.created_at = s.Int(4);
    r.updated_at = s.Int(5);
    if (!s.IsNull(6)) r.deleted_at = s.Int(6);
    r.head_seq = s.Int(7);
    r.update_count = s.Int(8);
    r.update_bytes = s.Int(9);
    r.snapshot_version = s.Int(10);
    r.snapshot_bytes = s.Int(11);
    return r;
  }

  // The cached state of `id`, loading its committed catalog row on first use. A document
  // that does not exist yet gets an entry with exists = false.
  Result<DocState*> Lookup(const DocumentId& id) {
    auto it = docs_.find(id);
    if (it != docs_.end()) return &it->second;
    Stmt& s = stmts_->load_document;
    ResetOnExit reset(s);
    s.BindText(1, id);
    int rc = s.Step();
    DocState state;
    if (rc == SQLITE_ROW) {
      state.record = ReadRecord(s);
      state.key = s.Int(12);
      state.exists = true;
    } else if (rc != SQLITE_DONE) {
      return SqliteError(db_, rc, "load document " + id);
    }
    return &docs_.emplace(id, std::move(state)).first->second;
  }

  // The seq already stored for (document, op_id); 0 when there is none.
  Result<Seq> FindOp(int64_t key, const OpId& op_id) {
    Stmt& s = stmts_->find_op;
    ResetOnExit reset(s);
    s.BindInt(1, key);
    s.BindText(2, op_id);
    int rc = s.Step();
    if (rc == SQLITE_ROW) return s.Int(0);
    if (rc != SQLITE_DONE) return SqliteError(db_, rc, "find op_id");
    return Seq{0};
  }

  // Stores the batch inside the open transaction (beginning one when none is open) without
  // committing it. When `record` is given, every stored event is encoded into it for the redo
  // journal. On failure the caller rolls back.
  Status StageInTransaction(std::span<const AppendRequest> batch, std::span<AppendResult> results,
                            std::span<Status> statuses, Bytes* record) {
    if (docs_.size() > kMaxCachedDocuments && sqlite3_get_autocommit(db_) != 0) docs_.clear();
    const uint64_t batch_number = ++batch_number_;
    touched_.clear();
    int rc;
    if (sqlite3_get_autocommit(db_) != 0) {
      Stmt& begin = stmts_->begin;
      rc = begin.Step();
      begin.Reset();
      if (rc != SQLITE_DONE) return SqliteError(db_, rc, "begin");
    }

    for (size_t i = 0; i < batch.size(); ++i) {
      const AppendRequest& request = batch[i];
      results[i] = AppendResult{};
      statuses[i] = ValidateRequestShape(request);
      if (!statuses[i].ok()) continue;
      auto looked_up = Lookup(request.document_id);
      if (!looked_up.ok()) return looked_up.status();
      DocState& doc = **looked_up;
      if (request.kind == EventKind::kCreated) {
        if (doc.exists) {
          statuses[i] = Status::AlreadyExists("document " + request.document_id + " exists");
          continue;
        }
      } else if (!doc.exists) {
        statuses[i] = Status::NotFound("document " + request.document_id + " does not exist");
        continue;
      }
      if (request.kind == EventKind::kSnapshot && request.version > doc.record.head_seq) {
        // Rare: the duplicate check still comes first, as in every backend.
        if (!request.op_id.empty()) {
          auto seq = FindOp(doc.key, request.op_id);
          if (!seq.ok()) return seq.status();
          if (*seq > 0) {
            results[i] = AppendResult{*seq, true};
            continue;
          }
        }
        statuses[i] = Status::InvalidArgument("snapshot version " +
                                              std::to_string(request.version) +
                                              " is past the head of " + request.document_id);
        continue;
      }

      if (!doc.exists) {
        Stmt& insert_doc = stmts_->insert_document;
        insert_doc.BindText(1, request.document_id);
        rc = insert_doc.Step();
        insert_doc.Reset();
        if (rc != SQLITE_DONE) return SqliteError(db_, rc, "insert document " + request.document_id);
        doc.key = sqlite3_last_insert_rowid(db_);
      }
      const Seq seq = doc.record.head_seq + 1;
      Stmt& ins = stmts_->insert_event;
      ins.BindInt(1, doc.key);
      ins.BindInt(2, seq);
      ins.BindInt(3, static_cast<int>(request.kind));
      ins.BindTextOrNull(4, request.op_id);
      ins.BindText(5, request.actor_id);
      ins.BindBlob(6, request.payload);
      ins.BindInt(7, request.version);
      ins.BindTextOrNull(8, request.title);
      if (request.kind == EventKind::kCreated) {
        ins.BindText(9, CrdtKindName(request.crdt));
      } else {
        ins.BindNull(9);
      }
      ins.BindInt(10, request.created_at);
      rc = ins.Step();
      ins.Reset();
      if (rc != SQLITE_DONE) return SqliteError(db_, rc, "insert event");
      if (sqlite3_changes(db_) == 0) {
        // ON CONFLICT DO NOTHING skipped the row: the op_id is taken (a seq conflict would
        // mean the cached head is wrong).
        auto original = request.op_id.empty() ? Result<Seq>(Seq{0})
                                              : FindOp(doc.key, request.op_id);
        if (!original.ok()) return original.status();
        if (*original == 0) {
          return Status::Corruption("seq " + std::to_string(seq) + " of " +
                                    request.document_id + " is already taken");
        }
        results[i] = AppendResult{*original, true};
        continue;
      }
      // Apply reads the event's seq only to set head_seq: fold the request as it is (no copy
      // of its payload) and set the head afterwards.
      Apply(doc.record, request);
      doc.record.head_seq = seq;
      if (record != nullptr) EncodeEvent(request, seq, *record);
      doc.exists = true;
      if (doc.touched != batch_number) {
        doc.touched = batch_number;
        touched_.push_back(&doc);
      }
      results[i] = AppendResult{seq, false};
    }

    for (DocState* doc : touched_) QUIRE_RETURN_IF_ERROR(WriteRecord(doc->key, doc->record));
    return Status::Ok();
  }

  Status Commit() {
    Stmt& commit = stmts_->commit;
    int rc = commit.Step();
    commit.Reset();
    if (rc != SQLITE_DONE) return SqliteError(db_, rc, "commit");
    return Status::Ok();
  }

  // After a failure: nothing staged is stored any more, and the cached heads may be ahead of
  // storage.
  void RollBack() {
    if (sqlite3_get_autocommit(db_) == 0) Exec("ROLLBACK").IgnoreError();  // best effort
    docs_.clear();
    needs_recovery_ = true;
  }

  // After a failed transaction the journal may hold acknowledged events that SQLite lacks, and
  // the next seqs would be taken from SQLite's heads: writes wait for Recover(), which stores
  // those events again (the contract of CommitBatch(), kept here too).
  Status RefuseUntilRecovered() const {
    if (!needs_recovery_) return Status::Ok();
    return Status::FailedPrecondition("a transaction on " + path_ +
                                      " failed; writes resume after Recover()");
  }

  std::string JournalPath() const { return path_ + "-redo"; }

  // Stores again every event of the journal that SQLite does not have (after a crash, or a
  // rolled-back staged transaction), then makes SQLite durable and starts the journal over.
  Status ReplayJournal() {
    std::vector<Event> events;
    Status status = journal_->ForEachRecord([&](std::span<const uint8_t> payload) {
      events.clear();
      QUIRE_RETURN_IF_ERROR(DecodeEvents(payload, events));
      for (const Event& e : events) QUIRE_RETURN_IF_ERROR(StoreJournaled(e));
      return Status::Ok();
    });
    if (status.ok()) status = StartJournalOver();
    if (!status.ok()) RollBack();
    return status;
  }

  // One journaled event: skipped when SQLite has it, stored with its own seq when it is the
  // document's next one. Anything else means the journal and the database disagree.
  Status StoreJournaled(const Event& e) {
    auto doc = Lookup(e.document_id);
    if (!doc.ok()) return doc.status();
    const Seq head = (*doc)->exists ? (*doc)->record.head_seq : 0;
    if (e.seq <= head) return Status::Ok();
    AppendResult result;
    Status status;
    QUIRE_RETURN_IF_ERROR(StageInTransaction({&e, 1}, {&result, 1}, {&status, 1}, nullptr));
    if (e.seq != head + 1 || !status.ok() || result.duplicate || result.seq != e.seq) {
      return Status::Corruption("redo journal: " + std::string(EventKindName(e.kind)) +
                                " event seq " + std::to_string(e.seq) + " of " + e.document_id +
                                " does not follow the stored head " + std::to_string(head) +
                                (status.ok() ? "" : " (" + status.ToString() + ")"));
    }
    return Status::Ok();
  }

  // Commits what is staged, makes SQLite's files durable (its commits run at
  // synchronous=NORMAL) and starts a new journal generation: nothing in the old one is needed.
  Status StartJournalOver() {
    QUIRE_RETURN_IF_ERROR(CommitStaged());
    // Committed frames are in the WAL, or in the database file once checkpointed (a
    // checkpoint syncs the WAL before copying and the database after). Syncing both covers
    // every commit so far.
    for (const std::string& file : {path_ + "-wal", path_}) {
      int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 && errno == ENOENT) continue;
      if (fd < 0) return Status::IoError("open " + file + ": " + std::strerror(errno));
      int rc = ::fsync(fd);
      ::close(fd);
      if (rc != 0) return Status::IoError("fsync " + file + ": " + std::strerror(errno));
    }
    return journal_->Reset();
  }

  // A read-only open cannot store what the journal holds. When the journal has events the file
  // lacks (the server stopped before committing them), the database is copied into memory and
  // they are stored there, so that readers such as `quire replay` see every acknowledged event.
  Status ApplyJournalInMemory() {
    std::vector<Event> journaled;
    std::vector<Event> events;
    bool behind = false;
    Status read = RedoJournal::ReadRecords(JournalPath(), [&](std::span<const uint8_t> payload) {
      events.clear();
      QUIRE_RETURN_IF_ERROR(DecodeEvents(payload, events));
      for (Event& e : events) {
        if (!behind) {
          auto doc = Lookup(e.document_id);
          if (!doc.ok()) return doc.status();
          behind = !(*doc)->exists || e.seq > (*doc)->record.head_seq;
        }
        journaled.push_back(std::move(e));
      }
      return Status::Ok();
    });
    QUIRE_RETURN_IF_ERROR(read);
    if (!behind) return Status::Ok();
    sqlite3* memory = nullptr;
    int rc = sqlite3_open_v2(":memory:", &memory, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                             nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_close_v2(memory);
      return SqliteError(nullptr, rc, "open an in-memory copy of " + path_);
    }
    sqlite3_backup* copy = sqlite3_backup_init(memory, "main", db_, "main");
    rc = copy == nullptr ? sqlite3_errcode(memory) : sqlite3_backup_step(copy, -1);
    if (copy != nullptr) sqlite3_backup_finish(copy);
    stmts_.reset();
    sqlite3_close_v2(db_);
    db_ = memory;
    if (rc != SQLITE_DONE) return SqliteError(db_, rc, "copy " + path_ + " into memory");
    docs_.clear();
    stmts_ = std::make_unique<Statements>();
    QUIRE_RETURN_IF_ERROR(PrepareStatements());
    for (const Event& e : journaled) QUIRE_RETURN_IF_ERROR(StoreJournaled(e));
    QUIRE_RETURN_IF_ERROR(CommitStaged());
    journal_applied_in_memory_ = true;
    return Status::Ok();
  }

  Status WriteRecord(int64_t key, const DocumentRecord& r) {
    Stmt& s = stmts_->update_document;
    ResetOnExit reset(s);
    s.BindInt(1, key);
    s.BindText(2, r.title);
    s.BindText(3, r.owner_id);
    s.BindText(4, CrdtKindName(r.crdt));
    s.BindInt(5, r.created_at);
    s.BindInt(6, r.updated_at);
    if (r.deleted_at) {
      s.BindInt(7, *r.deleted_at);
    } else {
      s.BindNull(7);
    }
    s.BindInt(8, r.head_seq);
    s.BindInt(9, r.update_count);
    s.BindInt(10, r.update_bytes);
    s.BindInt(11, r.snapshot_version);
    s.BindInt(12, r.snapshot_bytes);
    int rc = s.Step();
    if (rc != SQLITE_DONE) return SqliteError(db_, rc, "write catalog row " + r.id);
    return Status::Ok();
  }

  std::string path_;
  BackendOptions options_;
  sqlite3* db_ = nullptr;
  std::unique_ptr<Statements> stmts_;
  std::unique_ptr<Checkpointer> checkpointer_;  // null when read-only
  std::unique_ptr<RedoJournal> journal_;        // null when read-only or synchronous=NORMAL
  Bytes record_;                                // the journal record of the batch being staged
  int64_t last_sync_ns_ = 0;                    // last_sync_ns(): the last StageBatch's fsync
  bool journal_applied_in_memory_ = false;      // read-only: see ApplyJournalInMemory()
  bool needs_recovery_ = false;  // a transaction failed and Recover() has not succeeded since
  std::unordered_map<DocumentId, DocState> docs_;  // node-based: DocState* stay valid
  std::vector<DocState*> touched_;
  uint64_t batch_number_ = 0;
};

}  // namespace

Result<std::unique_ptr<Backend>> OpenSqliteBackend(const std::string& path,
                                                   const BackendOptions& options) {
  auto backend = std::make_unique<SqliteBackend>(path, options);
  QUIRE_RETURN_IF_ERROR(backend->Open());
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace quire::eventlog::internal
