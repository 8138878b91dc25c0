// Helpers shared by the eventlog test files (header-only and inline: they are linked together
// into eventlog_tests).
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "eventlog/event.h"

namespace quire::eventlog::testing {

// A fresh directory under /tmp, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/quire-eventlog-XXXXXX";
    char* made = mkdtemp(tmpl);
    path_ = made ? made : "";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // sqlite:////tmp/quire-eventlog-XXXX/<name> (absolute path).
  std::string SqliteUrl(const std::string& name = "log.db") const {
    return "sqlite:///" + path_ + "/" + name;
  }

 private:
  std::string path_;
};

inline Event Created(const DocumentId& id, std::string title = "Title", ActorId owner = "owner",
                     TimestampMs at = 1000) {
  Event e;
  e.document_id = id;
  e.kind = EventKind::kCreated;
  e.title = std::move(title);
  e.actor_id = std::move(owner);
  e.created_at = at;
  return e;
}

inline Event Update(const DocumentId& id, OpId op_id, std::string bytes = "delta",
                    TimestampMs at = 2000, ActorId actor = "actor") {
  Event e;
  e.document_id = id;
  e.kind = EventKind::kUpdate;
  e.op_id = std::move(op_id);
  e.actor_id = std::move(actor);
  e.payload.assign(bytes.begin(), bytes.end());
  e.created_at = at;
  return e;
}

inline Event Simple(const DocumentId& id, EventKind kind, TimestampMs at = 3000) {
  Event e;
  e.document_id = id;
  e.kind = kind;
  e.created_at = at;
  return e;
}

inline Event Snapshot(const DocumentId& id, Seq version, std::string bytes = "snapshot",
                      TimestampMs at = 4000) {
  Event e;
  e.document_id = id;
  e.kind = EventKind::kSnapshot;
  e.version = version;
  e.payload.assign(bytes.begin(), bytes.end());
  e.created_at = at;
  return e;
}

}  // namespace quire::eventlog::testing

#include <sqlite3.h>

#include <map>
#include <set>

#include "eventlog/backend.h"

namespace quire::eventlog::testing {

// The catalog as the fold of every stored event (what `quire replay` rebuilds), keyed by id,
// and checks of the log's invariants: seq strictly increasing per document, op_id unique per
// document. Violations are appended to `problems`.
inline std::map<DocumentId, DocumentRecord> FoldCatalog(Backend& backend,
                                                        std::vector<std::string>& problems) {
  std::map<DocumentId, DocumentRecord> records;
  std::map<DocumentId, std::set<OpId>> ops;
  Status s = backend.ForEachEvent([&](const Event& e) {
    DocumentRecord& r = records[e.document_id];
    if (e.seq <= r.head_seq) {
      problems.push_back(e.document_id + ": seq " + std::to_string(e.seq) + " after " +
                         std::to_string(r.head_seq));
    }
    if (!e.op_id.empty() && !ops[e.document_id].insert(e.op_id).second) {
      problems.push_back(e.document_id + ": op_id " + e.op_id + " stored twice");
    }
    Apply(r, e);
    return Status::Ok();
  });
  if (!s.ok()) problems.push_back("ForEachEvent: " + s.ToString());
  return records;
}

// Through a second connection to the SQLite file at `path`, a trigger that aborts the insert
// of an event whose payload is "poison": a real failure in the middle of a transaction, after
// other rows were written. False if it could not be planted.
inline bool PlantPoisonTrigger(const std::string& path) {
  sqlite3* db = nullptr;
  bool ok = sqlite3_open(path.c_str(), &db) == SQLITE_OK &&
            sqlite3_exec(db,
                         "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.payload = "
                         "CAST('poison' AS BLOB) BEGIN SELECT RAISE(ABORT, 'injected'); END",
                         nullptr, nullptr, nullptr) == SQLITE_OK;
  sqlite3_close(db);
  return ok;
}

inline std::map<DocumentId, DocumentRecord> CatalogById(Backend& backend) {
  std::map<DocumentId, DocumentRecord> out;
  auto catalog = backend.ReadCatalog();
  if (catalog.ok()) {
    for (auto& r : *catalog) out.emplace(r.id, r);
  }
  return out;
}

}  // namespace quire::eventlog::testing
