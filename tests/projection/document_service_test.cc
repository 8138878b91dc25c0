#include "projection/document_service.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <optional>
#include <set>
#include <string>

#include "core/codec.h"
#include "projection/replay.h"
#include "tests/projection/projection_test_util.h"

namespace quire::projection {
namespace {

using testing::B;
using testing::Concat;
using testing::Harness;

std::string Str(const Bytes& b) { return std::string(b.begin(), b.end()); }

std::vector<std::string> Titles(const ListPage& page) {
  std::vector<std::string> out;
  for (const DocumentRecord& r : page.items) out.push_back(r.title);
  return out;
}

// Opens the SQLite file read-only and replays it.
ReplayReport ReplayFile(const std::string& url) {
  eventlog::BackendOptions options;
  options.read_only = true;
  auto backend = eventlog::OpenBackend(url, options);
  REQUIRE(backend.ok());
  auto report = Replay(**backend);
  REQUIRE(report.ok());
  for (const ReplayViolation& v : report->violations) {
    UNSCOPED_INFO(v.check << " " << v.document_id << " seq " << v.seq << ": " << v.message);
  }
  return std::move(report).value();
}

// Holds the log's compute thread from construction until Release() or destruction (10 s at
// most, so that a regression fails instead of hanging).
class ComputeHold {
 public:
  explicit ComputeHold(Harness& h) {
    auto started = std::make_shared<std::promise<void>>();
    std::future<void> running = started->get_future();
    h.log().Compute<int>(
        [started, released = released_] {
          started->set_value();
          released.wait_for(std::chrono::seconds(10));
          return 0;
        },
        [](int) {});
    running.wait();
  }
  ~ComputeHold() { Release(); }
  ComputeHold(const ComputeHold&) = delete;
  ComputeHold& operator=(const ComputeHold&) = delete;
  void Release() {
    if (done_) return;
    done_ = true;
    release_.set_value();
  }

 private:
  std::promise<void> release_;
  std::shared_future<void> released_ = release_.get_future().share();
  bool done_ = false;
};

TEST_CASE("CatalogListFiltersByTitleCaseInsensitivelyNewestFirstWithPages", "[catalog]") {
  std::string kind = GENERATE("memory", "sqlite");
  Harness h(kind);
  for (std::string title : {"Alpha notes", "beta NOTES", "Gamma", "delta notes", "Epsilon"}) {
    h.Create(title);
    h.clock().AdvanceMs(10);
  }
  // Created at the same instant: ties break by id ascending.
  DocumentRecord z = h.Create("tie", CrdtKind::kAutomerge, "zz-tie");
  DocumentRecord a = h.Create("tie", CrdtKind::kAutomerge, "aa-tie");
  REQUIRE(a.updated_at == z.updated_at);

  ListPage all = h.service().List(ListQuery{"", false, 1, 100});
  CHECK(all.total == 7);
  CHECK(Titles(all) == std::vector<std::string>{"tie", "tie", "Epsilon", "delta notes", "Gamma",
                                                "beta NOTES", "Alpha notes"});
  CHECK(all.items[0].id == "aa-tie");
  CHECK(all.items[1].id == "zz-tie");

  ListPage notes = h.service().List(ListQuery{"NoTeS", false, 1, 2});
  CHECK(notes.total == 3);
  CHECK(Titles(notes) == std::vector<std::string>{"delta notes", "beta NOTES"});
  ListPage notes2 = h.service().List(ListQuery{"notes", false, 2, 2});
  CHECK(notes2.total == 3);
  CHECK(notes2.page == 2);
  CHECK(Titles(notes2) == std::vector<std::string>{"Alpha notes"});
  ListPage past_end = h.service().List(ListQuery{"notes", false, 9, 2});
  CHECK(past_end.total == 3);
  CHECK(past_end.items.empty());

  // Defensive bounds: page_size is clamped to 1..100, page to >= 1.
  ListPage clamped = h.service().List(ListQuery{"", false, 0, 1000});
  CHECK(clamped.page == 1);
  CHECK(clamped.page_size == 100);
  CHECK(clamped.items.size() == 7);

  // Renaming is an edit: the document moves to the front.
  h.clock().AdvanceMs(10);
  std::optional<Result<DocumentRecord>> renamed;
  const DocumentRecord* gamma = nullptr;
  for (const auto& r : all.items) {
    if (r.title == "Gamma") gamma = h.service().Find(r.id);
  }
  REQUIRE(gamma != nullptr);
  h.service().Rename(gamma->id, "Gamma notes", "u", [&](Result<DocumentRecord> r) { renamed = r; });
  h.Drain();
  REQUIRE(renamed.has_value());
  REQUIRE(renamed->ok());
  CHECK((*renamed)->title == "Gamma notes");
  CHECK(Titles(h.service().List(ListQuery{"notes", false, 1, 1})) ==
        std::vector<std::string>{"Gamma notes"});

  // Deleted documents are hidden unless asked for.
  std::optional<Result<DocumentRecord>> deleted;
  h.service().SetDeleted((*renamed)->id, true, "u", [&](Result<DocumentRecord> r) { deleted = r; });
  h.Drain();
  REQUIRE(deleted.has_value());
  REQUIRE(deleted->ok());
  CHECK((*deleted)->deleted());
  CHECK(h.service().List(ListQuery{"notes", false, 1, 20}).total == 3);
  CHECK(h.service().List(ListQuery{"notes", true, 1, 20}).total == 4);
  CHECK(h.service().document_count() == 7);

  // The catalog survives a restart (sqlite) and equals the rebuilt one.
  if (kind == "sqlite") {
    std::vector<DocumentRecord> before = h.service().List(ListQuery{"", true, 1, 100}).items;
    h.Reopen();
    CHECK(h.service().List(ListQuery{"", true, 1, 100}).items == before);
    CHECK(h.service().List(ListQuery{"notes", true, 1, 20}).total == 4);
    h.Close();
    CHECK(ReplayFile(h.url()).clean());
  }
}

TEST_CASE("UpdatesMoveTheirDocumentToTheFrontOfTheListingAndSurviveARestart", "[catalog]") {
  std::string kind = GENERATE("memory", "sqlite");
  Harness h(kind);
  DocumentRecord a = h.Create("a", CrdtKind::kAutomerge, "doc-a");
  h.clock().AdvanceMs(10);
  DocumentRecord b = h.Create("b", CrdtKind::kAutomerge, "doc-b");
  h.clock().AdvanceMs(10);
  DocumentRecord c = h.Create("c", CrdtKind::kAutomerge, "doc-c");
  auto ids = [&] {
    std::vector<std::string> out;
    for (const auto& r : h.service().List(ListQuery{"", false, 1, 100}).items) out.push_back(r.id);
    return out;
  };
  CHECK(ids() == std::vector<std::string>{"doc-c", "doc-b", "doc-a"});
  int acked = 0;
  auto update = [&](const std::string& id, const std::string& op) {
    h.service().AppendUpdate(id, op, "u", B("x"), [&](auto r) {
      REQUIRE(r.ok());
      ++acked;
    });
    h.Drain();
  };
  h.clock().AdvanceMs(10);
  update("doc-a", "1");
  CHECK(ids() == std::vector<std::string>{"doc-a", "doc-c", "doc-b"});
  // Same instant as doc-a's edit: ties break by id, so doc-b sorts after doc-a.
  update("doc-b", "2");
  CHECK(ids() == std::vector<std::string>{"doc-a", "doc-b", "doc-c"});
  update("doc-a", "3");  // same instant again: nothing moves
  CHECK(ids() == std::vector<std::string>{"doc-a", "doc-b", "doc-c"});
  h.clock().AdvanceMs(10);
  update("doc-c", "4");
  CHECK(ids() == std::vector<std::string>{"doc-c", "doc-a", "doc-b"});
  CHECK(acked == 4);
  CHECK(h.service().List(ListQuery{"", false, 1, 100}).total == 3);
  if (kind == "sqlite") {
    h.Reopen();
    CHECK(ids() == std::vector<std::string>{"doc-c", "doc-a", "doc-b"});
  }
}

TEST_CASE("CreateMakesAUuidOrRefusesATakenId", "[commands]") {
  std::string kind = GENERATE("memory", "sqlite");
  Harness h(kind);
  DocumentRecord made = h.Create("made");
  CHECK(made.id.size() == 36);
  CHECK(made.id[14] == '4');
  CHECK(made.owner_id == "owner");
  CHECK(made.head_seq == 1);

  h.Create("mine", CrdtKind::kOpaque, "my-doc");
  std::optional<Result<DocumentRecord>> again;
  h.service().Create(CreateCommand{"my-doc", "again", CrdtKind::kYjs, "x"},
                     [&](Result<DocumentRecord> r) { again = r; });
  CHECK_FALSE(again.has_value());  // never synchronous
  h.Drain();
  REQUIRE(again.has_value());
  CHECK(again->status().code() == StatusCode::kAlreadyExists);
  CHECK(h.service().Find("my-doc")->title == "mine");
  CHECK(h.service().Find("my-doc")->crdt == CrdtKind::kOpaque);
}

TEST_CASE("CommandsOnUnknownOrDeletedDocumentsFailWithoutSynchronousCallbacks", "[commands]") {
  std::string kind = GENERATE("memory", "sqlite");
  Harness h(kind);
  int calls = 0;
  std::optional<Status> update, rename, del, load, snapshot;
  h.service().AppendUpdate("nope", "op", "a", B("x"), [&](auto r) {
    ++calls;
    update = r.status();
  });
  h.service().Rename("nope", "t", "a", [&](auto r) {
    ++calls;
    rename = r.status();
  });
  h.service().SetDeleted("nope", true, "a", [&](auto r) {
    ++calls;
    del = r.status();
  });
  h.service().LoadHead("nope", [&](auto r) {
    ++calls;
    load = r.status();
  });
  h.service().AppendSnapshot("nope", 1, B("s"), "a", [&](auto r) {
    ++calls;
    snapshot = r.status();
  });
  CHECK(calls == 0);
  h.Drain();
  CHECK(calls == 5);
  CHECK(update->code() == StatusCode::kNotFound);
  CHECK(rename->code() == StatusCode::kNotFound);
  CHECK(del->code() == StatusCode::kNotFound);
  CHECK(load->code() == StatusCode::kNotFound);
  CHECK(snapshot->code() == StatusCode::kNotFound);

  DocumentRecord doc = h.Create("d");
  CHECK(h.Update(doc.id, "empty", Bytes{}).status().code() == StatusCode::kInvalidArgument);
  std::optional<Result<DocumentRecord>> first, second;
  h.service().SetDeleted(doc.id, true, "a", [&](auto r) { first = r; });
  h.Drain();
  REQUIRE(first->ok());
  Seq head_after_delete = (*first)->head_seq;
  // Deleting again appends nothing and answers with the record as it is.
  h.service().SetDeleted(doc.id, true, "a", [&](auto r) { second = r; });
  h.Drain();
  REQUIRE(second->ok());
  CHECK((*second)->head_seq == head_after_delete);
  CHECK(h.Update(doc.id, "op-1", B("x")).status().code() == StatusCode::kFailedPrecondition);

  std::optional<Result<DocumentRecord>> restored;
  h.service().SetDeleted(doc.id, false, "a", [&](auto r) { restored = r; });
  h.Drain();
  REQUIRE(restored->ok());
  CHECK_FALSE((*restored)->deleted());
  CHECK((*restored)->head_seq == head_after_delete + 1);
  CHECK(h.Update(doc.id, "op-1", B("x")).ok());
}

TEST_CASE("DuplicateOpIdIsAckedWithOriginalSeqAndNotAppliedTwice", "[commands]") {
  std::string kind = GENERATE("memory", "sqlite");
  Harness h(kind);
  DocumentRecord doc = h.Create("d");
  auto first = h.Update(doc.id, "op-1", B("aa"));
  REQUIRE(first.ok());
  CHECK_FALSE(first->duplicate);
  REQUIRE(h.Load(doc.id).ok());  // cached from now on
  auto again = h.Update(doc.id, "op-1", B("aa"));
  REQUIRE(again.ok());
  CHECK(again->duplicate);
  CHECK(again->seq == first->seq);
  CHECK(h.service().Find(doc.id)->update_count == 1);
  auto head = h.Load(doc.id);
  REQUIRE(head.ok());
  REQUIRE(head->tail.size() == 1);
  CHECK(head->tail[0].seq == first->seq);

  if (kind == "sqlite") {
    h.Reopen();  // idempotency holds across a restart
    auto after = h.Update(doc.id, "op-1", B("aa"));
    REQUIRE(after.ok());
    CHECK(after->duplicate);
    CHECK(after->seq == first->seq);
  }
}

TEST_CASE("HeadStateIsSnapshotPlusTailAndAbsorbsCommittedUpdates", "[head]") {
  std::string kind = GENERATE("memory", "sqlite");
  Harness h(kind);
  DocumentRecord doc = h.Create("d", CrdtKind::kOpaque);
  REQUIRE(h.Update(doc.id, "op-1", B("a")).ok());
  REQUIRE(h.Update(doc.id, "op-2", B("b")).ok());
  REQUIRE(h.Snapshot(doc.id, 3, B("S3")).ok());
  REQUIRE(h.Update(doc.id, "op-3", B("c")).ok());

  auto head = h.Load(doc.id);
  REQUIRE(head.ok());
  CHECK(head->snapshot_version == 3);
  CHECK(Str(*head->snapshot) == "S3");
  REQUIRE(head->tail.size() == 1);
  CHECK(head->tail[0].seq == 5);
  CHECK(head->tail[0].op_id == "op-3");
  CHECK(Str(*head->tail[0].bytes) == "c");
  CHECK(head->head_seq == 5);
  CHECK(head->oldest_retained_seq == 2);
  CHECK(h.service().head_cached(doc.id));

  // A committed update extends the cached tail before its callback runs.
  std::optional<size_t> tail_in_callback;
  h.service().AppendUpdate(doc.id, "op-4", "a", B("d"), [&](auto r) {
    REQUIRE(r.ok());
    h.service().LoadHead(doc.id, [&](Result<HeadState> s) { tail_in_callback = s->tail.size(); });
  });
  h.Drain();
  CHECK(tail_in_callback == 2u);

  // Loads that race with commits neither lose nor duplicate an update: start a load and
  // append in the same loop turn, twice over.
  DocumentRecord other = h.Create("o", CrdtKind::kOpaque);
  std::vector<Result<HeadState>> loads;
  for (int i = 0; i < 3; ++i) {
    h.service().LoadHead(other.id, [&](Result<HeadState> s) { loads.push_back(std::move(s)); });
    h.service().AppendUpdate(other.id, "race-" + std::to_string(i), "a", B("r"),
                             [](auto r) { REQUIRE(r.ok()); });
  }
  h.Drain();
  REQUIRE(loads.size() == 3);
  auto final_head = h.Load(other.id);
  REQUIRE(final_head.ok());
  std::vector<Seq> seqs;
  for (const TailUpdate& t : final_head->tail) seqs.push_back(t.seq);
  CHECK(seqs == std::vector<Seq>{2, 3, 4});
  CHECK(final_head->head_seq == 4);
  for (const auto& l : loads) {
    REQUIRE(l.ok());
    std::set<Seq> unique;
    for (const TailUpdate& t : l->tail) unique.insert(t.seq);
    CHECK(unique.size() == l->tail.size());
  }

  // ReadUpdatesSince answers from the cache and from the log alike.
  auto since = h.Since(doc.id, 4);
  REQUIRE(since.ok());
  REQUIRE(since->size() == 2);
  CHECK((*since)[0].seq == 5);
  auto since_start = h.Since(doc.id, 0);  // before the snapshot: read from the log
  REQUIRE(since_start.ok());
  CHECK(since_start->size() == 4);
}

TEST_CASE("CachedHeadAnswersWithoutWaitingForACommitInProgress", "[head]") {
  std::string kind = GENERATE("memory", "sqlite");
  Harness h(kind);
  DocumentRecord doc = h.Create("t", CrdtKind::kOpaque);
  REQUIRE(h.Update(doc.id, "op-1", B("a")).ok());
  REQUIRE(h.Load(doc.id).ok());  // cached from now on

  // A task holds the storage thread, and an append waits behind it. A join's state and a
  // catch-up from the cache are answered meanwhile, without the held append (its relay
  // follows once it commits).
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  h.service().RunOnStorage<int>(
      [released](eventlog::Backend&) {
        released.wait();
        return 0;
      },
      [](int) {});
  std::optional<Result<eventlog::AppendResult>> held;
  h.service().AppendUpdate(doc.id, "op-2", "a", B("b"),
                           [&](Result<eventlog::AppendResult> r) { held = std::move(r); });
  std::optional<Result<HeadState>> head;
  std::optional<Result<std::vector<TailUpdate>>> since;
  h.service().LoadHead(doc.id, [&](Result<HeadState> s) { head = std::move(s); });
  h.service().ReadUpdatesSince(doc.id, 1,
                               [&](Result<std::vector<TailUpdate>> u) { since = std::move(u); });
  CHECK_FALSE(head.has_value());  // never synchronously
  for (int i = 0; i < 10'000 && !(head && since); ++i) h.RunOnce();
  REQUIRE(head.has_value());
  REQUIRE(head->ok());
  CHECK((*head)->head_seq == 2);  // created at 1, op-1 at 2; op-2 is still held
  REQUIRE(since.has_value());
  REQUIRE(since->ok());
  CHECK((*since)->size() == 1);
  CHECK_FALSE(held.has_value());
  release.set_value();
  h.Drain();
  REQUIRE(held.has_value());
  REQUIRE(held->ok());
  CHECK((*held)->seq == 3);
}

TEST_CASE("HeadCacheEvictsLeastRecentlyUsedUnderAByteBoundButKeepsPinned", "[head]") {
  std::string kind = GENERATE("memory", "sqlite");
  ProjectionOptions options;
  options.head_cache_bytes = 5000;
  Harness h(kind, options);
  std::vector<DocumentId> ids;
  for (int i = 0; i < 40; ++i) {
    DocumentRecord doc = h.Create("doc " + std::to_string(i), CrdtKind::kOpaque);
    REQUIRE(h.Update(doc.id, "op", Bytes(1000, static_cast<uint8_t>('a' + i % 26))).ok());
    ids.push_back(doc.id);
  }
  h.service().Pin(ids[0]);
  for (const DocumentId& id : ids) {
    auto head = h.Load(id);
    REQUIRE(head.ok());
    REQUIRE(head->tail.size() == 1);
    CHECK(head->tail[0].bytes->size() == 1000);
    // Memory does not grow with the number of documents opened.
    CHECK(h.service().stats().cached_bytes <= options.head_cache_bytes);
  }
  auto stats = h.service().stats();
  CHECK(stats.cached_documents <= 4);
  CHECK(stats.evictions >= 36);
  CHECK(h.service().head_cached(ids[0]));  // pinned: never evicted
  CHECK_FALSE(h.service().head_cached(ids[1]));
  CHECK(h.service().head_cached(ids.back()));

  // Least recently used goes first: touch ids[37], then load a cold one.
  REQUIRE(h.Load(ids[37]).ok());
  REQUIRE(h.Load(ids[5]).ok());
  CHECK(h.service().head_cached(ids[37]));
  CHECK(h.service().head_cached(ids[5]));
  CHECK_FALSE(h.service().head_cached(ids[38]));

  // Unpinned, the document becomes evictable again.
  h.service().Unpin(ids[0]);
  for (int i = 10; i < 20; ++i) REQUIRE(h.Load(ids[i]).ok());
  CHECK_FALSE(h.service().head_cached(ids[0]));
  CHECK(h.service().stats().cached_bytes <= options.head_cache_bytes);
}

TEST_CASE("CompactorFoldsAutomergeAfterNUpdates", "[compactor]") {
  std::string kind = GENERATE("memory", "sqlite");
  ProjectionOptions options;
  options.snapshot_every_updates = 3;
  Harness h(kind, options);
  DocumentRecord doc = h.Create("d", CrdtKind::kAutomerge);
  REQUIRE(h.Update(doc.id, "1", B("a")).ok());
  REQUIRE(h.Update(doc.id, "2", B("b")).ok());
  h.Compact();
  CHECK(h.service().stats().snapshots_taken == 0);
  REQUIRE(h.Update(doc.id, "3", B("c")).ok());
  h.Compact();
  CHECK(h.service().stats().snapshots_taken == 1);
  CHECK(h.service().Find(doc.id)->snapshot_version == 4);
  CHECK(h.service().Find(doc.id)->snapshot_bytes == 3);

  auto head = h.Load(doc.id);
  REQUIRE(head.ok());
  CHECK(head->snapshot_version == 4);
  CHECK(*head->snapshot == Concat({"a", "b", "c"}));
  CHECK(head->tail.empty());

  // The next fold starts from the snapshot; the cached head follows it.
  for (std::string op : {"4", "5", "6"}) REQUIRE(h.Update(doc.id, op, B(op)).ok());
  h.Compact();
  CHECK(h.service().stats().snapshots_taken == 2);
  head = h.Load(doc.id);
  REQUIRE(head.ok());
  CHECK(*head->snapshot == Concat({"a", "b", "c", "4", "5", "6"}));
  CHECK(head->snapshot_version == 8);
  CHECK(head->tail.empty());
  h.Compact();  // nothing due
  CHECK(h.service().stats().snapshots_taken == 2);

  if (kind == "sqlite") {
    h.Close();
    ReplayReport report = ReplayFile(h.url());
    CHECK(report.clean());
    CHECK(report.folds_checked == 2);
    CHECK(report.snapshots == 2);
  }
}

TEST_CASE("FoldsRunOnTheComputeThreadAndAppendsDoNotWaitForThem", "[compactor]") {
  std::string kind = GENERATE("memory", "sqlite");
  ProjectionOptions options;
  options.snapshot_every_updates = 3;
  Harness h(kind, options);
  DocumentRecord doc = h.Create("d", CrdtKind::kAutomerge);
  for (std::string op : {"1", "2", "3"}) REQUIRE(h.Update(doc.id, op, B(op)).ok());

  // Hold the log's compute thread, then start the fold and append behind it.
  ComputeHold hold(h);
  h.service().RunCompactor();
  std::optional<Result<eventlog::AppendResult>> ack;
  h.service().AppendUpdate(doc.id, "4", "actor", B("4"),
                           [&](Result<eventlog::AppendResult> r) { ack = std::move(r); });
  while (!ack) h.RunOnceBlocking();  // the held job keeps the loop alive
  REQUIRE(ack->ok());
  CHECK(ack->value().seq == 5);
  // One more round trip through the storage thread: a fold made there would have stored its
  // snapshot by now. The head was read (seqs up to 4); the fold waits for the compute thread.
  bool round_trip = false;
  h.log().Run<int>([](eventlog::Backend&) { return 0; }, [&](int) { round_trip = true; });
  while (!round_trip) h.RunOnceBlocking();
  CHECK(h.service().stats().snapshots_taken == 0);
  CHECK(h.service().Find(doc.id)->snapshot_version == 0);
  hold.Release();
  h.Drain();
  CHECK(h.service().stats().snapshots_taken == 1);
  CHECK(h.service().Find(doc.id)->snapshot_version == 4);
  auto head = h.Load(doc.id);
  REQUIRE(head.ok());
  CHECK(*head->snapshot == Concat({"1", "2", "3"}));
  REQUIRE(head->tail.size() == 1);
  CHECK(head->tail[0].seq == 5);
}

TEST_CASE("CompactorFoldsAfterIntervalByInjectedClock", "[compactor]") {
  std::string kind = GENERATE("memory", "sqlite");
  ProjectionOptions options;
  options.snapshot_every_updates = 1000;
  options.snapshot_interval_ms = 60'000;
  Harness h(kind, options);
  DocumentRecord doc = h.Create("d", CrdtKind::kAutomerge);
  REQUIRE(h.Update(doc.id, "1", B("a")).ok());
  h.clock().AdvanceMs(30'000);
  REQUIRE(h.Update(doc.id, "2", B("b")).ok());
  h.Compact();
  CHECK(h.service().stats().snapshots_taken == 0);
  h.clock().AdvanceMs(29'999);
  h.Compact();
  CHECK(h.service().stats().snapshots_taken == 0);
  h.clock().AdvanceMs(1);  // 60 s after the first unfolded update
  h.Compact();
  CHECK(h.service().stats().snapshots_taken == 1);
  CHECK(h.service().Find(doc.id)->snapshot_version == 3);

  if (kind == "sqlite") {
    // After a restart the unfolded tail is found again and folded once the interval passed.
    REQUIRE(h.Update(doc.id, "3", B("c")).ok());
    h.Reopen();
    h.Compact();
    CHECK(h.service().stats().snapshots_taken == 0);
    h.clock().AdvanceMs(60'000);
    h.Compact();
    CHECK(h.service().stats().snapshots_taken == 1);
    auto head = h.Load(doc.id);
    REQUIRE(head.ok());
    CHECK(*head->snapshot == Concat({"a", "b", "c"}));
    CHECK(head->snapshot_version == 5);
    h.Close();
    CHECK(ReplayFile(h.url()).clean());
  }
}

TEST_CASE("OpaqueDocumentsStoreOnlyClientSnapshots", "[compactor]") {
  std::string kind = GENERATE("memory", "sqlite");
  ProjectionOptions options;
  options.snapshot_every_updates = 1;
  options.snapshot_interval_ms = 1;
  Harness h(kind, options);
  DocumentRecord doc = h.Create("d", CrdtKind::kOpaque);
  for (int i = 0; i < 5; ++i) REQUIRE(h.Update(doc.id, std::to_string(i), B("u")).ok());
  h.clock().AdvanceMs(10);
  h.Compact();
  CHECK(h.service().stats().snapshots_taken == 0);
  CHECK(h.service().Find(doc.id)->snapshot_version == 0);

  CHECK(h.Snapshot(doc.id, 7, B("future")).status().code() == StatusCode::kInvalidArgument);
  REQUIRE(h.Snapshot(doc.id, 4, B("client state")).ok());
  CHECK(h.Snapshot(doc.id, 3, B("older")).status().code() == StatusCode::kInvalidArgument);
  auto head = h.Load(doc.id);
  REQUIRE(head.ok());
  CHECK(head->snapshot_version == 4);
  CHECK(Str(*head->snapshot) == "client state");
  REQUIRE(head->tail.size() == 2);
  CHECK(head->tail[0].seq == 5);

  // The server folds automerge itself and refuses client snapshots for it.
  DocumentRecord am = h.Create("am", CrdtKind::kAutomerge);
  REQUIRE(h.Update(am.id, "1", B("x")).ok());
  CHECK(h.Snapshot(am.id, 2, B("x")).status().code() == StatusCode::kFailedPrecondition);
  if (kind == "sqlite") {
    h.Close();
    CHECK(ReplayFile(h.url()).clean());
  }
}

// A Yjs v1 update inserting `ch` at the end of the root text "t", made by client 1 at `clock`.
Bytes YjsInsert(uint64_t clock, char ch) {
  Bytes u{1, 1, 1, static_cast<uint8_t>(clock)};
  if (clock == 0) {
    u.insert(u.end(), {4, 1, 1, 't'});  // ContentString, parent = root type "t"
  } else {
    u.insert(u.end(), {0x84, 1, static_cast<uint8_t>(clock - 1)});  // origin = (1, clock-1)
  }
  u.insert(u.end(), {1, static_cast<uint8_t>(ch), 0});  // "ch", empty delete set
  return u;
}

TEST_CASE("YjsDocumentsFoldThroughTheYjsCodecAndReplayClean", "[compactor]") {
  const Codec& yjs = CodecFor(CrdtKind::kYjs);
  ProjectionOptions options;
  options.snapshot_every_updates = 4;
  Harness h("sqlite", options);
  DocumentRecord doc = h.Create("y", CrdtKind::kYjs);
  std::vector<Bytes> updates;
  for (uint64_t c = 0; c < 10; ++c) {
    updates.push_back(YjsInsert(c, static_cast<char>('a' + c)));
    REQUIRE(yjs.ValidateUpdate(updates.back()).ok());
    REQUIRE(h.Update(doc.id, "op-" + std::to_string(c), updates.back()).ok());
    h.Compact();
  }
  CHECK(h.Update(doc.id, "bad", B("not yjs")).status().code() == StatusCode::kInvalidArgument);
  auto head = h.Load(doc.id);
  REQUIRE(head.ok());
  if (yjs.CanFold()) {
    CHECK(h.service().stats().snapshots_taken == 2);
    CHECK(head->snapshot_version == 10);
    CHECK(head->tail.size() == 2);
    std::vector<ByteView> views(updates.begin(), updates.end());
    auto all = yjs.Fold({}, views);
    REQUIRE(all.ok());
    std::vector<ByteView> state{*head->snapshot};
    for (const TailUpdate& t : head->tail) state.emplace_back(*t.bytes);
    auto rebuilt = yjs.Fold({}, state);
    REQUIRE(rebuilt.ok());
    CHECK(*rebuilt == *all);  // snapshot + tail is the whole document
  } else {
    CHECK(h.service().stats().snapshots_taken == 0);
    CHECK(head->tail.size() == 10);
  }
  h.Close();
  ReplayReport report = ReplayFile(h.url());
  CHECK(report.clean());
  CHECK(report.folds_checked == (yjs.CanFold() ? 2 : 0));
}

TEST_CASE("RetentionPrunesOnlyUpdatesCoveredByOldSnapshots", "[retention]") {
  std::string kind = GENERATE("memory", "sqlite");
  ProjectionOptions options;
  options.snapshot_every_updates = 3;
  options.retain_updates_ms = 1000;
  Harness h(kind, options);
  DocumentRecord doc = h.Create("d", CrdtKind::kAutomerge);
  for (std::string op : {"1", "2", "3"}) REQUIRE(h.Update(doc.id, op, B(op)).ok());
  h.Compact();  // snapshot covering seq 4
  REQUIRE(h.service().Find(doc.id)->snapshot_version == 4);
  REQUIRE(h.Update(doc.id, "4", B("4")).ok());  // seq 6

  REQUIRE(h.Since(doc.id, 0).ok());  // nothing pruned yet
  h.clock().AdvanceMs(999);
  h.Compact();
  REQUIRE(h.Since(doc.id, 0).ok());
  h.clock().AdvanceMs(1);
  h.Compact();  // the snapshot is 1 s old: updates 2..4 go

  auto gone = h.Since(doc.id, 1);
  CHECK(gone.status().code() == StatusCode::kFailedPrecondition);
  auto kept = h.Since(doc.id, 4);
  REQUIRE(kept.ok());
  REQUIRE(kept->size() == 1);
  CHECK((*kept)[0].seq == 6);
  auto head = h.Load(doc.id);
  REQUIRE(head.ok());
  CHECK(head->oldest_retained_seq == 6);
  CHECK(*head->snapshot == Concat({"1", "2", "3"}));
  // A retried op whose update was pruned is still a duplicate.
  auto retry = h.Update(doc.id, "2", B("2"));
  REQUIRE(retry.ok());
  CHECK(retry->duplicate);
  CHECK(retry->seq == 3);
  CHECK(h.service().Find(doc.id)->update_count == 4);

  if (kind == "sqlite") {
    h.Close();
    ReplayReport report = ReplayFile(h.url());
    CHECK(report.clean());
    CHECK(report.folds_unverifiable == 1);
    CHECK(report.updates == 1);
  }
}

TEST_CASE("FailedCommitIsNeitherAcknowledgedNorAbsorbed", "[commands]") {
  std::string kind = GENERATE("memory", "sqlite");
  Harness h(kind);
  DocumentRecord doc = h.Create("d", CrdtKind::kOpaque);
  REQUIRE(h.Update(doc.id, "op-1", B("a")).ok());
  REQUIRE(h.Load(doc.id).ok());
  h.faults().FailNextCommits(1);
  auto failed = h.Update(doc.id, "op-2", B("b"));
  CHECK(failed.status().code() == StatusCode::kUnavailable);
  CHECK_FALSE(h.service().writable().ok());
  // Sticky: later appends fail too, and nothing reaches the catalog or the head state.
  CHECK(h.Update(doc.id, "op-3", B("c")).status().code() == StatusCode::kUnavailable);
  CHECK(h.service().Find(doc.id)->update_count == 1);
  CHECK(h.service().Find(doc.id)->head_seq == 2);
  auto head = h.Load(doc.id);
  REQUIRE(head.ok());
  CHECK(head->tail.size() == 1);
  CHECK(head->head_seq == 2);

  std::optional<Status> recovered;
  h.log().Recover([&](Status s) { recovered = s; });
  h.Drain();
  REQUIRE(recovered.has_value());
  REQUIRE(recovered->ok());
  CHECK(h.service().writable().ok());
  auto retried = h.Update(doc.id, "op-2", B("b"));
  REQUIRE(retried.ok());
  CHECK_FALSE(retried->duplicate);
  CHECK(retried->seq == 3);
  head = h.Load(doc.id);
  REQUIRE(head.ok());
  CHECK(head->tail.size() == 2);
}

// Counts the head-state reads that reach the backend (storage thread).
class CountingBackend final : public eventlog::Backend {
 public:
  CountingBackend(std::unique_ptr<eventlog::Backend> inner, std::atomic<int>* snapshot_reads)
      : inner_(std::move(inner)), snapshot_reads_(snapshot_reads) {}
  Status CommitBatch(std::span<const eventlog::AppendRequest> batch,
                     std::span<eventlog::AppendResult> results,
                     std::span<Status> statuses) override {
    return inner_->CommitBatch(batch, results, statuses);
  }
  Result<std::vector<eventlog::Event>> ReadEvents(const DocumentId& id, Seq after,
                                                  size_t limit) override {
    return inner_->ReadEvents(id, after, limit);
  }
  Result<std::optional<eventlog::Event>> ReadLatestSnapshot(const DocumentId& id) override {
    snapshot_reads_->fetch_add(1);
    return inner_->ReadLatestSnapshot(id);
  }
  Result<std::vector<DocumentRecord>> ReadCatalog() override { return inner_->ReadCatalog(); }
  Status ForEachEvent(const std::function<Status(const eventlog::Event&)>& visit) override {
    return inner_->ForEachEvent(visit);
  }
  Status PruneUpdates(const DocumentId& id, Seq up_to) override {
    return inner_->PruneUpdates(id, up_to);
  }
  Status Recover() override { return inner_->Recover(); }
  std::string Describe() const override { return inner_->Describe(); }

 private:
  std::unique_ptr<eventlog::Backend> inner_;
  std::atomic<int>* snapshot_reads_;
};

TEST_CASE("ConcurrentLoadsOfOneDocumentShareOneRead", "[head]") {
  std::string kind = GENERATE("memory", "sqlite");
  std::atomic<int> reads{0};
  Harness h(kind, ProjectionOptions{}, [&](std::unique_ptr<eventlog::Backend> inner) {
    return std::make_unique<CountingBackend>(std::move(inner), &reads);
  });
  DocumentRecord doc = h.Create("d", CrdtKind::kOpaque);
  REQUIRE(h.Update(doc.id, "op-1", B("a")).ok());
  int answered = 0;
  for (int i = 0; i < 5; ++i) {
    h.service().LoadHead(doc.id, [&](Result<HeadState> s) {
      REQUIRE(s.ok());
      CHECK(s->tail.size() == 1);
      ++answered;
    });
  }
  h.Drain();
  CHECK(answered == 5);
  CHECK(reads.load() == 1);
  REQUIRE(h.Load(doc.id).ok());  // cached: no read
  CHECK(reads.load() == 1);
}

TEST_CASE("AnOpenDocumentIsFoldedFromItsCachedHeadWithoutReadingTheLog", "[compactor]") {
  std::string kind = GENERATE("memory", "sqlite");
  std::atomic<int> reads{0};
  ProjectionOptions options;
  options.snapshot_every_updates = 3;
  Harness h(kind, options, [&](std::unique_ptr<eventlog::Backend> inner) {
    return std::make_unique<CountingBackend>(std::move(inner), &reads);
  });
  DocumentRecord open = h.Create("open", CrdtKind::kAutomerge);
  DocumentRecord closed = h.Create("closed", CrdtKind::kAutomerge);
  REQUIRE(h.Load(open.id).ok());
  const int reads_before = reads.load();
  for (std::string op : {"1", "2", "3"}) {
    REQUIRE(h.Update(open.id, "open-" + op, B(op)).ok());
    REQUIRE(h.Update(closed.id, "closed-" + op, B(op)).ok());
  }
  h.Compact();
  CHECK(h.service().stats().snapshots_taken == 2);
  // The storage thread read the head of the document nobody had open, and only that one.
  CHECK(reads.load() == reads_before + 1);
  for (const DocumentRecord& doc : {open, closed}) {
    CHECK(h.service().Find(doc.id)->snapshot_version == 4);
    auto head = h.Load(doc.id);
    REQUIRE(head.ok());
    CHECK(*head->snapshot == Concat({"1", "2", "3"}));
    CHECK(head->tail.empty());
  }
  if (kind == "sqlite") {
    h.Close();
    ReplayReport report = ReplayFile(h.url());
    CHECK(report.clean());
    CHECK(report.snapshots == 2);
  }
}

TEST_CASE("AtMostTwoFoldsRunAtOnceAndTheOthersWaitTheirTurn", "[compactor]") {
  std::string kind = GENERATE("memory", "sqlite");
  ProjectionOptions options;
  options.snapshot_every_updates = 3;
  Harness h(kind, options);
  std::vector<DocumentRecord> docs;
  for (int i = 0; i < 5; ++i) {
    docs.push_back(h.Create("d" + std::to_string(i), CrdtKind::kAutomerge));
    if (i % 2 == 0) REQUIRE(h.Load(docs.back().id).ok());  // cached or read: both wait
    for (std::string op : {"1", "2", "3"}) {
      REQUIRE(h.Update(docs.back().id, std::to_string(i) + "-" + op, B(op)).ok());
    }
  }

  ComputeHold hold(h);  // no fold can end
  h.service().RunCompactor();
  CHECK(h.service().stats().folds_running == 2);
  CHECK(h.service().stats().folds_queued == 3);
  h.service().RunCompactor();  // queued documents are not queued twice
  CHECK(h.service().stats().folds_queued == 3);

  hold.Release();
  h.Drain();
  CHECK(h.service().stats().snapshots_taken == 5);
  CHECK(h.service().stats().folds_running == 0);
  CHECK(h.service().stats().folds_queued == 0);
  for (const DocumentRecord& doc : docs) {
    CHECK(h.service().Find(doc.id)->snapshot_version == 4);
    auto head = h.Load(doc.id);
    REQUIRE(head.ok());
    CHECK(*head->snapshot == Concat({"1", "2", "3"}));
  }
}

}  // namespace
}  // namespace quire::projection
