// FoldedHeadCache: the folded head state of recently joined Yjs documents, and the forms the
// endpoints send it in, shared by every join that finds the document's head where it was.
//
// A join into a Yjs document folds its snapshot and tail into one update (projection::
// FoldHeadState) and then encodes it: the JSON endpoint as a base64 `state` frame, y-websocket
// and Hocuspocus as the state vector of sync step 1 (and the state itself for step 2). For a
// 200 KB document that is ~0.5 ms of folding and ~0.4 ms of encoding on the loop thread per
// join, paid again by every member of a class or a meeting opening the same document. An entry
// is keyed by document id and made for one head seq: an appended event moves the head and the
// next join folds again (the stale entry is replaced), except that a JSON join may take the
// entry of a recent earlier head plus the updates after it (JsonStateFrameNear). The folded
// state at a head seq
// never changes (compaction folds the same events into a snapshot), so a hit serves the same
// document a fresh fold would.
//
// Bounded by bytes (every form counted), least recently used first out; a state larger than the
// bound is folded and sent but not kept. Loop thread only.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>

#include "core/status.h"
#include "core/types.h"
#include "io/metrics.h"
#include "projection/document_service.h"

namespace quire::io::internal {

class FoldedHeadCache {
 public:
  // `hits` and `misses` (may be null) count lookups.
  FoldedHeadCache(size_t max_bytes, Counter* hits, Counter* misses)
      : max_bytes_(max_bytes), hit_counter_(hits), miss_counter_(misses) {}
  FoldedHeadCache(const FoldedHeadCache&) = delete;
  FoldedHeadCache& operator=(const FoldedHeadCache&) = delete;

  // The fold of `head` as one Yjs update (FoldHeadState; the empty update {0, 0} for a
  // document without content).
  Result<std::shared_ptr<const Bytes>> State(const DocumentId& id,
                                             const projection::HeadState& head);
  // The JSON protocol's `state` frame of that fold (version = headSeq = head.head_seq).
  Result<std::shared_ptr<const std::string>> JsonStateFrame(const DocumentId& id,
                                                            const projection::HeadState& head);
  // What a JSON join at `head` sends first, and the seq it covers. While a document is being
  // edited its head moves between joins, so a join may take the cached frame of an earlier
  // head V instead of folding again, when the tail still holds every update after V (no
  // snapshot since), there are at most `max_behind` of them, and they are small next to the
  // state at V (at most a quarter of it, or 16 KiB): the caller then sends those as
  // `remote_update`s (seq > covered), encoding them again for every join. Otherwise this is
  // JsonStateFrame(id, head), folded once and then shared by the joins at that head: a
  // document whose content came in a few large updates after an early join (S4's 200 KB
  // documents, first joined when empty) is folded once, not base64-encoded per join.
  struct JsonJoinState {
    std::shared_ptr<const std::string> frame;
    Seq covered = 0;
  };
  Result<JsonJoinState> JsonStateFrameNear(const DocumentId& id, const projection::HeadState& head,
                                           size_t max_behind);
  // The Yjs state vector of that fold.
  Result<std::shared_ptr<const Bytes>> StateVector(const DocumentId& id,
                                                   const projection::HeadState& head);

  size_t bytes() const { return bytes_; }
  size_t entries() const { return map_.size(); }
  int64_t hits() const { return hits_; }
  int64_t misses() const { return misses_; }

 private:
  struct Entry {
    DocumentId id;
    Seq head_seq = 0;
    std::shared_ptr<const Bytes> state;
    std::shared_ptr<const std::string> json_frame;
    std::shared_ptr<const Bytes> state_vector;
    size_t bytes = 0;
    bool cached = true;  // false once evicted: a caller may still hold it
  };
  using Lru = std::list<std::shared_ptr<Entry>>;

  // JsonStateFrameNear: the most bytes of updates after a cached head that a join sends as
  // relays, as a share of that head's state, and the least such bound.
  static constexpr size_t kNearBytesDivisor = 4;
  static constexpr size_t kNearBytesFloor = 16 << 10;

  // The entry of `id` at head.head_seq, folded now on a miss and made most recently used;
  // null with the fold's error in `status` when the fold failed. The caller's reference stays
  // valid when the entry is evicted meanwhile (a state larger than the bound is evicted at
  // once).
  std::shared_ptr<Entry> Lookup(const DocumentId& id, const projection::HeadState& head,
                                Status& status);
  // Counts `delta` more bytes for `e` (when still cached) and evicts least recently used
  // entries beyond the bound.
  void Account(Entry& e, size_t delta);
  void Evict(Lru::iterator it);

  size_t max_bytes_;
  Counter* hit_counter_;
  Counter* miss_counter_;
  size_t bytes_ = 0;
  int64_t hits_ = 0;
  int64_t misses_ = 0;
  Lru lru_;  // most recently used first
  std::unordered_map<DocumentId, Lru::iterator> map_;
};

}  // namespace quire::io::internal
