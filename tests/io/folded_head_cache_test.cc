// FoldedHeadCache with real Yjs updates: one fold per document and head seq, the forms the
// endpoints send made from it and equal to what a fresh fold gives, a moved head folded again,
// and the byte bound kept (least recently used out; a state above the bound not kept).
#include "io/internal/folded_head_cache.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "core/yjs/update.h"
#include "io/json_protocol.h"
#include "io/metrics.h"
#include "tests/support/yjs_test_updates.h"

namespace quire::io::internal {
namespace {

using projection::HeadState;
using projection::TailUpdate;

// A head of `n` updates by one client, each appending `chunk` characters (no snapshot).
HeadState HeadOf(int n, size_t chunk, uint64_t client = 7) {
  HeadState h;
  h.snapshot = std::make_shared<const Bytes>();
  uint64_t clock = 0;
  for (int i = 0; i < n; ++i) {
    std::string text(chunk, static_cast<char>('a' + i % 26));
    Bytes u = i == 0 ? test::YjsRootInsert(client, 0, text)
                     : test::YjsInsertAfter(client, clock, client, clock - 1, text);
    clock += chunk;
    h.tail.push_back(TailUpdate{i + 1, "op" + std::to_string(i), "a",
                                std::make_shared<const Bytes>(std::move(u))});
  }
  h.head_seq = n;
  return h;
}

TEST_CASE("FoldedHeadCacheFoldsOncePerHeadAndItsFormsMatchAFreshFold", "[io][join]") {
  Metrics metrics;
  Counter& hits = metrics.counter("hits", "");
  Counter& misses = metrics.counter("misses", "");
  FoldedHeadCache cache(1 << 20, &hits, &misses);
  HeadState h = HeadOf(5, 100);
  Result<Bytes> fresh = projection::FoldHeadState(h, CrdtKind::kYjs);
  REQUIRE(fresh.ok());

  auto state = cache.State("doc", h);
  REQUIRE(state.ok());
  CHECK(**state == *fresh);
  CHECK(misses.value() == 1);

  // Every form from the one fold: the same shared bytes, the JSON frame, the state vector.
  auto again = cache.State("doc", h);
  REQUIRE(again.ok());
  CHECK(again->get() == state->get());
  auto frame = cache.JsonStateFrame("doc", h);
  REQUIRE(frame.ok());
  CHECK(**frame == ws::StateMessage(5, *fresh, 5));
  auto sv = cache.StateVector("doc", h);
  REQUIRE(sv.ok());
  CHECK(**sv == *yjs::StateVectorFromUpdate(*fresh));
  CHECK((*cache.JsonStateFrame("doc", h)).get() == frame->get());
  CHECK(misses.value() == 1);
  CHECK(hits.value() == 4);
  CHECK(cache.entries() == 1);
  CHECK(cache.bytes() >= fresh->size() + (*frame)->size() + (*sv)->size());

  // The head moved: folded again, and the old entry replaced (not kept beside it).
  HeadState moved = HeadOf(6, 100);
  auto next = cache.JsonStateFrame("doc", moved);
  REQUIRE(next.ok());
  CHECK(**next == ws::StateMessage(6, *projection::FoldHeadState(moved, CrdtKind::kYjs), 6));
  CHECK(misses.value() == 2);
  CHECK(cache.entries() == 1);
  // What a caller holds stays valid after its entry is gone.
  CHECK(**frame == ws::StateMessage(5, *fresh, 5));
}

TEST_CASE("FoldedHeadCacheGivesAJsonJoinAnEarlierStateWhileTheTailCoversWhatFollows",
          "[io][join]") {
  Metrics metrics;
  Counter& hits = metrics.counter("hits", "");
  Counter& misses = metrics.counter("misses", "");
  FoldedHeadCache cache(1 << 20, &hits, &misses);
  HeadState h = HeadOf(10, 10);
  // HeadOf(n) is the first n updates of HeadOf(10).
  auto frame5 = cache.JsonStateFrameNear("doc", HeadOf(5, 10), 3);
  REQUIRE(frame5.ok());
  CHECK(frame5->covered == 5);
  CHECK(misses.value() == 1);

  // Three updates later, within the bound of 3: the state at 5, without folding.
  auto near = cache.JsonStateFrameNear("doc", HeadOf(8, 10), 3);
  REQUIRE(near.ok());
  CHECK(near->covered == 5);
  CHECK(near->frame.get() == frame5->frame.get());
  CHECK(hits.value() == 1);

  // Five updates later, beyond the bound: the head is folded (and replaces the entry).
  auto fresh = cache.JsonStateFrameNear("doc", h, 3);
  REQUIRE(fresh.ok());
  CHECK(fresh->covered == 10);
  Result<Bytes> fold = projection::FoldHeadState(h, CrdtKind::kYjs);
  REQUIRE(fold.ok());
  CHECK(*fresh->frame == ws::StateMessage(10, *fold, 10));
  CHECK(misses.value() == 2);

  // A snapshot taken after the cached head: the updates between are no longer in the tail,
  // so the next join folds even one update later.
  HeadState compacted = HeadOf(12, 10);
  Result<Bytes> snap = projection::FoldHeadState(HeadOf(11, 10), CrdtKind::kYjs);
  REQUIRE(snap.ok());
  compacted.snapshot = std::make_shared<const Bytes>(*snap);
  compacted.snapshot_version = 11;
  compacted.tail.erase(compacted.tail.begin(), compacted.tail.begin() + 11);
  auto after_snapshot = cache.JsonStateFrameNear("doc", compacted, 3);
  REQUIRE(after_snapshot.ok());
  CHECK(after_snapshot->covered == 12);
  CHECK(misses.value() == 3);
}

TEST_CASE("FoldedHeadCacheFoldsAgainWhenTheUpdatesAfterTheCachedHeadAreLarge", "[io][join]") {
  FoldedHeadCache cache(4 << 20, nullptr, nullptr);
  // A join while the document held 20 KB, then two updates of 20 KB each: 40 KB behind is
  // more than a quarter of the cached state and more than 16 KiB, so the head is folded.
  REQUIRE(cache.JsonStateFrameNear("doc", HeadOf(1, 20000), 64).ok());
  HeadState grown = HeadOf(3, 20000);
  auto fresh = cache.JsonStateFrameNear("doc", grown, 64);
  REQUIRE(fresh.ok());
  CHECK(fresh->covered == 3);
  Result<Bytes> fold = projection::FoldHeadState(grown, CrdtKind::kYjs);
  REQUIRE(fold.ok());
  CHECK(*fresh->frame == ws::StateMessage(3, *fold, 3));
  // The next join at that head shares the frame.
  int64_t misses = cache.misses();
  auto again = cache.JsonStateFrameNear("doc", grown, 64);
  REQUIRE(again.ok());
  CHECK(again->frame.get() == fresh->frame.get());
  CHECK(cache.misses() == misses);

  // 100 KB cached and 20 KB behind (a fifth): the cached state, then the two as relays.
  FoldedHeadCache big(4 << 20, nullptr, nullptr);
  REQUIRE(big.JsonStateFrameNear("doc", HeadOf(10, 10000), 64).ok());
  auto near = big.JsonStateFrameNear("doc", HeadOf(12, 10000), 64);
  REQUIRE(near.ok());
  CHECK(near->covered == 10);
}

TEST_CASE("FoldedHeadCacheServesAnEmptyDocumentAsTheEmptyUpdate", "[io][join]") {
  FoldedHeadCache cache(1 << 20, nullptr, nullptr);
  HeadState empty;
  empty.snapshot = std::make_shared<const Bytes>();
  auto state = cache.State("new", empty);
  REQUIRE(state.ok());
  CHECK(**state == Bytes{0, 0});
  auto sv = cache.StateVector("new", empty);
  REQUIRE(sv.ok());
  CHECK(**sv == *yjs::StateVectorFromUpdate(Bytes{0, 0}));
  auto frame = cache.JsonStateFrame("new", empty);
  REQUIRE(frame.ok());
  CHECK(**frame == ws::StateMessage(0, Bytes{}, 0));
}

TEST_CASE("FoldedHeadCacheKeepsItsByteBound", "[io][join]") {
  // Each document's fold is ~10 KB and its frame ~13.5 KB: two documents' forms fit in 64 KiB,
  // three do not.
  FoldedHeadCache cache(64 << 10, nullptr, nullptr);
  HeadState h = HeadOf(10, 1000);
  for (const char* id : {"a", "b", "c"}) {
    REQUIRE(cache.JsonStateFrame(id, h).ok());
    CHECK(cache.bytes() <= size_t{64 << 10});
  }
  CHECK(cache.entries() == 2);
  // "a" was least recently used: folded again; "c" is still there.
  int64_t misses = cache.misses();
  REQUIRE(cache.State("c", h).ok());
  CHECK(cache.misses() == misses);
  REQUIRE(cache.State("a", h).ok());
  CHECK(cache.misses() == misses + 1);

  // A state larger than the whole bound is folded and returned, but not kept.
  FoldedHeadCache small(4 << 10, nullptr, nullptr);
  auto frame = small.JsonStateFrame("big", h);
  REQUIRE(frame.ok());
  CHECK((*frame)->size() > size_t{4 << 10});
  CHECK(small.entries() == 0);
  CHECK(small.bytes() == 0);
}

TEST_CASE("FoldedHeadCacheReportsAFoldThatFails", "[io][join]") {
  FoldedHeadCache cache(1 << 20, nullptr, nullptr);
  HeadState bad = HeadOf(2, 10);
  bad.tail.push_back(TailUpdate{3, "op", "a", std::make_shared<const Bytes>(Bytes{0xff, 0x01})});
  bad.head_seq = 3;
  CHECK_FALSE(cache.State("bad", bad).ok());
  CHECK_FALSE(cache.JsonStateFrame("bad", bad).ok());
  CHECK_FALSE(cache.StateVector("bad", bad).ok());
  CHECK(cache.entries() == 0);
}

}  // namespace
}  // namespace quire::io::internal
