#include "projection/history.h"

#include <algorithm>
#include <charconv>
#include <limits>

#include "core/base64.h"
#include "core/codec.h"

namespace quire::projection {

namespace {

using eventlog::Backend;
using eventlog::Event;
using eventlog::EventKind;

constexpr size_t kChunk = 1000;
constexpr std::string_view kCursorPrefix = "h1:";

// Visits the events of `id` with seq in (after, up_to], in chunks; `visit` returns false to stop.
template <typename Visit>
Status ForEachEventOf(Backend& backend, const DocumentId& id, Seq after, Seq up_to, Visit visit) {
  while (after < up_to) {
    auto chunk = backend.ReadEvents(id, after, kChunk);
    if (!chunk.ok()) return chunk.status();
    for (const Event& e : *chunk) {
      if (e.seq > up_to) return Status::Ok();
      if (!visit(e)) return Status::Ok();
    }
    if (chunk->size() < kChunk) return Status::Ok();
    after = chunk->back().seq;
  }
  return Status::Ok();
}

// Pruned updates are the seqs missing from the stream (tombstones are never read). They are
// covered by a snapshot, so none is above the latest snapshot's version.
Result<RetentionInfo> RetentionFrom(Backend& backend, const DocumentId& id,
                                    std::vector<Seq>* snapshot_versions) {
  RetentionInfo info;
  auto latest = backend.ReadLatestSnapshot(id);
  if (!latest.ok()) return latest.status();
  if (!latest->has_value()) return info;
  Seq last_seen = 0;
  std::vector<Seq> versions;
  Status s = ForEachEventOf(backend, id, 0, (*latest)->seq, [&](const Event& e) {
    if (e.seq > last_seen + 1 && e.seq - 1 <= (*latest)->version) info.pruned_through = e.seq - 1;
    last_seen = e.seq;
    if (e.kind == EventKind::kSnapshot) versions.push_back(e.version);
    return true;
  });
  if (!s.ok()) return s;
  if (info.pruned_through > 0) {
    // The oldest rebuildable state is the first snapshot at or above the last gap.
    Seq oldest = std::numeric_limits<Seq>::max();
    for (Seq v : versions) {
      if (v >= info.pruned_through) oldest = std::min(oldest, v);
    }
    info.oldest_state_seq = oldest == std::numeric_limits<Seq>::max() ? (*latest)->version : oldest;
  }
  if (snapshot_versions) *snapshot_versions = std::move(versions);
  return info;
}

}  // namespace

std::string EncodeHistoryCursor(const HistoryCursor& cursor) {
  std::string text = std::string(kCursorPrefix) + (cursor.descending ? "d:" : "a:") +
                     std::to_string(cursor.position);
  return Base64Encode(ByteView(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

std::optional<HistoryCursor> DecodeHistoryCursor(std::string_view text) {
  auto bytes = Base64Decode(text);
  if (!bytes.ok()) return std::nullopt;
  std::string_view s(reinterpret_cast<const char*>(bytes->data()), bytes->size());
  if (!s.starts_with(kCursorPrefix)) return std::nullopt;
  s.remove_prefix(kCursorPrefix.size());
  HistoryCursor cursor;
  if (s.starts_with("a:")) {
    cursor.descending = false;
  } else if (s.starts_with("d:")) {
    cursor.descending = true;
  } else {
    return std::nullopt;
  }
  s.remove_prefix(2);
  if (s.empty() || s.size() > 18) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), cursor.position);
  if (ec != std::errc() || end != s.data() + s.size() || cursor.position < 0) return std::nullopt;
  return cursor;
}

Result<RetentionInfo> ReadRetention(Backend& backend, const DocumentId& id) {
  return RetentionFrom(backend, id, nullptr);
}

Result<HistoryPage> ReadHistoryPage(Backend& backend, const DocumentId& id,
                                    const HistoryCursor& cursor, size_t limit) {
  HistoryPage page;
  auto retention = ReadRetention(backend, id);
  if (!retention.ok()) return retention.status();
  page.retention = *retention;
  if (!cursor.descending) {
    auto events = backend.ReadEvents(id, cursor.position, limit + 1);
    if (!events.ok()) return events.status();
    page.more = events->size() > limit;
    if (page.more) events->resize(limit);
    page.items = std::move(*events);
    return page;
  }
  // Descending: read ascending windows ending below `position`, widening until limit + 1
  // events are found or seq 1 is reached (pruned updates leave holes).
  Seq end = cursor.position;  // exclusive
  if (end <= 1) return page;
  size_t want = limit + 1;
  Seq span = static_cast<Seq>(want);
  std::vector<Event> found;
  while (true) {
    Seq lo = std::max<Seq>(0, end - 1 - span);
    found.clear();
    Status s = ForEachEventOf(backend, id, lo, end - 1, [&](const Event& e) {
      found.push_back(e);
      return true;
    });
    if (!s.ok()) return s;
    if (found.size() >= want || lo == 0) break;
    span = std::min<Seq>(span * 4, std::numeric_limits<Seq>::max() / 8);
  }
  std::reverse(found.begin(), found.end());
  page.more = found.size() > limit;
  if (page.more) found.resize(limit);
  page.items = std::move(found);
  return page;
}

Result<StateAtResult> ReadStateAt(Backend& backend, const DocumentId& id, CrdtKind crdt, Seq at) {
  auto result = ReadStateEventsAt(backend, id, at);
  if (!result.ok() || !result->state.has_value()) return result;
  QUIRE_RETURN_IF_ERROR(FoldStateAt(*result->state, crdt));
  return result;
}

Result<StateAtResult> ReadStateEventsAt(Backend& backend, const DocumentId& id, Seq at) {
  StateAtResult result;
  std::vector<Seq> versions;
  auto retention = RetentionFrom(backend, id, &versions);
  if (!retention.ok()) return retention.status();
  result.retention = *retention;
  if (at < result.retention.oldest_state_seq) return result;

  // The base: the snapshot with the highest version <= at (its event may come after `at`).
  Seq base = 0;
  for (Seq v : versions) {
    if (v <= at) base = std::max(base, v);
  }
  auto latest = backend.ReadLatestSnapshot(id);
  if (!latest.ok()) return latest.status();
  Seq read_to = at;
  if (latest->has_value()) read_to = std::max(read_to, (*latest)->seq);

  StateAt state;
  state.at = at;
  state.snapshot_version = base;
  bool have_base = base == 0;
  Status s = ForEachEventOf(backend, id, 0, read_to, [&](const Event& e) {
    if (e.kind == EventKind::kSnapshot && e.version == base && !have_base) {
      state.snapshot = e.payload;
      have_base = true;
    } else if (e.kind == EventKind::kUpdate && e.seq > base && e.seq <= at) {
      state.updates.push_back(StateUpdate{e.seq, e.op_id, e.actor_id, e.payload});
    }
    return true;
  });
  if (!s.ok()) return s;
  if (!have_base)
    return Status::Corruption("snapshot of version " + std::to_string(base) + " of document " + id +
                              " vanished while reading");
  result.state = std::move(state);
  return result;
}

Status FoldStateAt(StateAt& state, CrdtKind crdt) {
  const Codec& codec = CodecFor(crdt);
  if (!codec.CanFold()) return Status::Ok();
  std::vector<ByteView> updates;
  updates.reserve(state.updates.size());
  for (const StateUpdate& u : state.updates) updates.emplace_back(u.bytes);
  auto folded = codec.Fold(state.snapshot, updates);
  if (!folded.ok()) return folded.status();
  state.snapshot = std::move(*folded);
  if (crdt == CrdtKind::kYjs && state.snapshot.empty()) {
    state.snapshot = Bytes{0, 0};  // the empty Yjs update: no structs, no deletes
  }
  state.snapshot_version = state.at;
  state.updates.clear();
  return Status::Ok();
}

Result<std::vector<Event>> ReadVersions(Backend& backend, const DocumentId& id) {
  std::vector<Event> versions;
  Status s = ForEachEventOf(backend, id, 0, std::numeric_limits<Seq>::max(), [&](const Event& e) {
    if (e.kind == EventKind::kVersion) versions.push_back(e);
    return true;
  });
  if (!s.ok()) return s;
  return versions;
}

Result<std::vector<Event>> ForkEvents(const DocumentId& source_id, const DocumentId& new_id,
                                      CrdtKind crdt, const StateAt& state, const ActorId& actor) {
  std::vector<Event> out;
  Event from;
  from.document_id = new_id;
  from.kind = EventKind::kForkedFrom;
  from.title = source_id;
  from.version = state.at;
  from.actor_id = actor;
  out.push_back(std::move(from));
  // Seqs in the new document: created = 1, forked_from = 2, then these.
  const Codec& codec = CodecFor(crdt);
  if (codec.CanFold()) {
    Event update;
    update.document_id = new_id;
    update.kind = EventKind::kUpdate;
    update.op_id = "fork";
    update.actor_id = actor;
    update.payload = state.snapshot;
    ByteView one[] = {ByteView(update.payload)};
    auto folded = codec.Fold({}, one);
    if (!folded.ok()) return folded.status();
    Event snapshot;
    snapshot.document_id = new_id;
    snapshot.kind = EventKind::kSnapshot;
    snapshot.version = 3;
    snapshot.actor_id = actor;
    snapshot.payload = std::move(*folded);
    out.push_back(std::move(update));
    out.push_back(std::move(snapshot));
    return out;
  }
  if (!state.snapshot.empty()) {
    Event snapshot;
    snapshot.document_id = new_id;
    snapshot.kind = EventKind::kSnapshot;
    snapshot.version = 2;
    snapshot.actor_id = actor;
    snapshot.payload = state.snapshot;
    out.push_back(std::move(snapshot));
  }
  for (const StateUpdate& u : state.updates) {
    Event update;
    update.document_id = new_id;
    update.kind = EventKind::kUpdate;
    update.op_id = "fork-" + std::to_string(u.seq);
    update.actor_id = u.actor_id;
    update.payload = u.bytes;
    out.push_back(std::move(update));
  }
  return out;
}

}  // namespace quire::projection
