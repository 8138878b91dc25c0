#include "io/internal/folded_head_cache.h"

#include <algorithm>
#include <iterator>

#include "core/yjs/update.h"
#include "io/json_protocol.h"

namespace quire::io::internal {
namespace {

// An update that changes nothing: no structs, empty delete set.
const std::shared_ptr<const Bytes>& EmptyUpdate() {
  static const auto* empty = new std::shared_ptr<const Bytes>(std::make_shared<const Bytes>(2, 0));
  return *empty;
}

}  // namespace

std::shared_ptr<FoldedHeadCache::Entry> FoldedHeadCache::Lookup(const DocumentId& id,
                                                                const projection::HeadState& head,
                                                                Status& status) {
  auto it = map_.find(id);
  if (it != map_.end() && (*it->second)->head_seq == head.head_seq) {
    hits_ += 1;
    if (hit_counter_ != nullptr) hit_counter_->Inc();
    lru_.splice(lru_.begin(), lru_, it->second);
    return *it->second;
  }
  misses_ += 1;
  if (miss_counter_ != nullptr) miss_counter_->Inc();
  Result<Bytes> folded = projection::FoldHeadState(head, CrdtKind::kYjs);
  if (!folded.ok()) {
    status = folded.status();
    return nullptr;
  }
  if (it != map_.end()) {  // the head moved: the old fold is stale
    Evict(it->second);
  }
  auto e = std::make_shared<Entry>();
  e->id = id;
  e->head_seq = head.head_seq;
  e->state = std::make_shared<const Bytes>(std::move(*folded));
  lru_.push_front(e);
  map_[id] = lru_.begin();
  Account(*e, e->state->size() + id.size() + sizeof(Entry));
  return e;
}

void FoldedHeadCache::Evict(Lru::iterator it) {
  Entry& e = **it;
  e.cached = false;
  bytes_ -= e.bytes;
  map_.erase(e.id);
  lru_.erase(it);
}

void FoldedHeadCache::Account(Entry& e, size_t delta) {
  if (!e.cached) return;
  e.bytes += delta;
  bytes_ += delta;
  while (bytes_ > max_bytes_ && !lru_.empty()) Evict(std::prev(lru_.end()));
}

Result<std::shared_ptr<const Bytes>> FoldedHeadCache::State(const DocumentId& id,
                                                            const projection::HeadState& head) {
  Status status;
  std::shared_ptr<Entry> e = Lookup(id, head, status);
  if (e == nullptr) return status;
  std::shared_ptr<const Bytes> state = e->state->empty() ? EmptyUpdate() : e->state;
  return state;
}

Result<std::shared_ptr<const std::string>> FoldedHeadCache::JsonStateFrame(
    const DocumentId& id, const projection::HeadState& head) {
  Status status;
  std::shared_ptr<Entry> e = Lookup(id, head, status);
  if (e == nullptr) return status;
  if (e->json_frame != nullptr) return e->json_frame;
  auto frame = std::make_shared<const std::string>(
      ws::StateMessage(head.head_seq, *e->state, head.head_seq));
  e->json_frame = frame;
  Account(*e, frame->size());
  return frame;
}

Result<FoldedHeadCache::JsonJoinState> FoldedHeadCache::JsonStateFrameNear(
    const DocumentId& id, const projection::HeadState& head, size_t max_behind) {
  auto it = map_.find(id);
  if (it != map_.end()) {
    const Entry& e = **it->second;
    // The tail holds every update after the snapshot, so every update after an earlier head
    // that is not older than the snapshot.
    if (e.json_frame != nullptr && e.head_seq < head.head_seq &&
        e.head_seq >= head.snapshot_version) {
      size_t behind = 0;
      size_t bytes_behind = 0;
      for (auto t = head.tail.rbegin(); t != head.tail.rend() && t->seq > e.head_seq; ++t) {
        ++behind;
        bytes_behind += t->bytes->size();
      }
      if (behind <= max_behind &&
          bytes_behind <= std::max(kNearBytesFloor, e.state->size() / kNearBytesDivisor)) {
        hits_ += 1;
        if (hit_counter_ != nullptr) hit_counter_->Inc();
        lru_.splice(lru_.begin(), lru_, it->second);
        return JsonJoinState{e.json_frame, e.head_seq};
      }
    }
  }
  auto frame = JsonStateFrame(id, head);
  if (!frame.ok()) return frame.status();
  return JsonJoinState{std::move(*frame), head.head_seq};
}

Result<std::shared_ptr<const Bytes>> FoldedHeadCache::StateVector(
    const DocumentId& id, const projection::HeadState& head) {
  Status status;
  std::shared_ptr<Entry> e = Lookup(id, head, status);
  if (e == nullptr) return status;
  if (e->state_vector != nullptr) return e->state_vector;
  Result<Bytes> sv = yjs::StateVectorFromUpdate(e->state->empty() ? *EmptyUpdate() : *e->state);
  if (!sv.ok()) return sv.status();
  auto shared = std::make_shared<const Bytes>(std::move(*sv));
  e->state_vector = shared;
  Account(*e, shared->size());
  return shared;
}

}  // namespace quire::io::internal
