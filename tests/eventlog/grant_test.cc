// Permission events (kind 10): the grants they leave in DocumentRecord, on both backends, after
// a restart, and as `quire replay` rebuilds them from the events alone.
#include <catch2/catch.hpp>
#include <map>

#include "eventlog/backend.h"
#include "projection/replay.h"
#include "tests/eventlog/eventlog_test_util.h"

namespace quire::eventlog {
namespace {

using testing::Created;
using testing::TempDir;
using testing::Update;

Event Grant(const DocumentId& id, std::string user, std::string_view role, ActorId actor = "owner",
            TimestampMs at = 5000) {
  Event e;
  e.document_id = id;
  e.kind = EventKind::kPermission;
  e.title = std::move(user);
  e.actor_id = std::move(actor);
  e.payload.assign(role.begin(), role.end());
  e.created_at = at;
  return e;
}

std::vector<Status> CommitAll(Backend& backend, const std::vector<Event>& batch) {
  std::vector<AppendResult> results(batch.size());
  std::vector<Status> statuses(batch.size());
  Status s = backend.CommitBatch(batch, results, statuses);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return statuses;
}

const DocumentRecord& RecordOf(const std::vector<DocumentRecord>& catalog, const DocumentId& id) {
  for (const DocumentRecord& r : catalog) {
    if (r.id == id) return r;
  }
  FAIL("no record for " << id);
  throw std::logic_error("unreachable");
}

using Grants = std::map<std::string, std::string>;

TEST_CASE("PermissionEventsFoldIntoGrantsAndSurviveARestart", "[backend][grants]") {
  TempDir dir;
  std::string kind = GENERATE(as<std::string>{}, "memory", "sqlite");
  std::string url = kind == "memory" ? "memory://" : dir.SqliteUrl();
  INFO(url);
  auto opened = OpenBackend(url, {});
  REQUIRE(opened.ok());
  std::unique_ptr<Backend> backend = std::move(opened).value();

  CommitAll(*backend, {Created("a", "A", "alice", 1000), Created("b", "B", "bob", 1000),
                       Grant("a", "bob", "viewer"), Grant("a", "carol", "editor"),
                       Update("a", "op1", "x", 6000), Grant("b", "alice", "editor"),
                       Grant("a", "bob", "editor"), Grant("a", "carol", "")});
  auto catalog = backend->ReadCatalog();
  REQUIRE(catalog.ok());
  const DocumentRecord& a = RecordOf(*catalog, "a");
  CHECK(a.owner_id == "alice");
  CHECK(a.grants == Grants{{"bob", "editor"}});
  CHECK(a.head_seq == 6);
  CHECK(a.updated_at == 6000);  // grants are not edits; the update is
  CHECK(RecordOf(*catalog, "b").grants == Grants{{"alice", "editor"}});

  // Bad permission events take no seq; the rest of the batch commits.
  auto statuses = CommitAll(*backend, {Grant("a", "", "viewer"), Grant("a", "dave", "owner"),
                                       Grant("a", "erin", "viewer"), Grant("zz", "x", "viewer")});
  CHECK(statuses[0].code() == StatusCode::kInvalidArgument);
  CHECK(statuses[1].code() == StatusCode::kInvalidArgument);
  CHECK(statuses[2].ok());
  CHECK(statuses[3].code() == StatusCode::kNotFound);

  if (url != "memory://") {
    backend.reset();
    auto reopened = OpenBackend(url, {});
    REQUIRE(reopened.ok());
    backend = std::move(reopened).value();
  }
  catalog = backend->ReadCatalog();
  REQUIRE(catalog.ok());
  CHECK(RecordOf(*catalog, "a").grants == Grants{{"bob", "editor"}, {"erin", "viewer"}});
  CHECK(RecordOf(*catalog, "a").head_seq == 7);

  // The events alone rebuild the same records, grants included (what `quire replay` checks).
  auto report = projection::Replay(*backend);
  REQUIRE(report.ok());
  CHECK(report->clean());
  projection::ReplayChecker checker;
  REQUIRE(backend
              ->ForEachEvent([&](const Event& e) {
                checker.Observe(e);
                return Status::Ok();
              })
              .ok());
  auto rebuilt = checker.Catalog();
  CHECK(RecordOf(rebuilt, "a").grants == Grants{{"bob", "editor"}, {"erin", "viewer"}});
  CHECK(RecordOf(rebuilt, "b").grants == Grants{{"alice", "editor"}});
  CHECK(EventKindName(EventKind::kPermission) == "permission");
  CHECK(ParseEventKind("permission") == EventKind::kPermission);
}

}  // namespace
}  // namespace quire::eventlog
