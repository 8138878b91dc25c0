// mergeUpdates, diffUpdate and encodeStateVectorFromUpdate (SPEC.md sections 4, 6 and 7).
#include <algorithm>

#include "core/yjs/update.h"
#include "core/yjs/update_internal.h"

namespace quire::yjs {
namespace {

using internal::Arena;
using internal::UpdateReader;
using internal::UpdateWriter;

// One input of a merge: its current struct, Skips excluded.
struct Cursor {
  explicit Cursor(ByteView update) : reader(update) {}
  UpdateReader reader;
  Struct cur;
  bool has_cur = false;
  // Order among cursors whose current structs share (client, clock). See MergeInOrder.
  int64_t tiebreak = 0;
};

// Moves `c` to its next non-Skip struct; at its end, appends its delete set to `dss`.
Status Advance(Cursor& c, std::vector<DeleteSet>& dss) {
  while (c.reader.Next(&c.cur)) {
    if (c.cur.kind != StructKind::kSkip) {
      c.has_cur = true;
      return Status::Ok();
    }
  }
  c.has_cur = false;
  QUIRE_RETURN_IF_ERROR(c.reader.status());
  dss.emplace_back();
  return c.reader.ReadDeleteSet(&dss.back());
}

// True when a's current struct sorts before b's: client descending, clock ascending, then by
// tiebreak.
bool Before(const Cursor* a, const Cursor* b) {
  if (a->cur.id.client != b->cur.id.client) return a->cur.id.client > b->cur.id.client;
  if (a->cur.id.clock != b->cur.id.clock) return a->cur.id.clock < b->cur.id.clock;
  return a->tiebreak < b->tiebreak;
}

// The merge loop of SPEC.md section 6. yjs re-sorts its list of decoders with a stable sort on
// every iteration and only the first decoder ever moves, so among decoders whose current
// structs have equal (client, clock) the one that moved there last comes first, and initially
// the input order decides. A heap keyed by (client, clock, tiebreak) with a fresh, decreasing
// tiebreak for every re-inserted cursor gives the same order in O(log n) per step.
//
// The loop assumes each input lists its client blocks in (client descending, start clock
// ascending) order, as yjs writes them; *out_of_order is set (and the result is meaningless)
// when an input does not.
Result<Bytes> MergeInOrder(std::span<const ByteView> updates, bool* out_of_order) {
  *out_of_order = false;
  std::vector<Cursor> cursors;
  cursors.reserve(updates.size());
  std::vector<DeleteSet> dss;
  dss.reserve(updates.size());
  std::vector<Cursor*> heap;
  heap.reserve(updates.size());
  const auto heap_less = [](const Cursor* a, const Cursor* b) { return Before(b, a); };

  for (size_t i = 0; i < updates.size(); ++i) {
    cursors.emplace_back(updates[i]);
    Cursor& c = cursors.back();
    QUIRE_RETURN_IF_ERROR(Advance(c, dss));
    if (!c.reader.blocks_in_merge_order()) {
      *out_of_order = true;
      return Bytes{};
    }
    if (c.has_cur) {
      c.tiebreak = static_cast<int64_t>(i);
      heap.push_back(&c);
    }
  }
  std::make_heap(heap.begin(), heap.end(), heap_less);

  int64_t next_tiebreak = -1;
  Arena arena;
  UpdateWriter writer;
  size_t input_bytes = 0;
  for (ByteView u : updates) input_bytes += u.size();
  writer.Reserve(input_bytes + 16);  // the usual output size: what the inputs hold, once
  Struct cw;                         // the struct waiting to be written
  bool has_cw = false;

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), heap_less);
    Cursor* d = heap.back();
    heap.pop_back();
    const auto advance = [&]() -> Status {
      QUIRE_RETURN_IF_ERROR(Advance(*d, dss));
      if (!d->reader.blocks_in_merge_order()) *out_of_order = true;
      return Status::Ok();
    };
    const auto reinsert = [&]() {
      if (!d->has_cur) return;
      d->tiebreak = next_tiebreak--;
      heap.push_back(d);
      std::push_heap(heap.begin(), heap.end(), heap_less);
    };

    const uint64_t first = d->cur.id.client;
    if (!has_cw) {
      cw = d->cur;
      has_cw = true;
      QUIRE_RETURN_IF_ERROR(advance());
    } else {
      bool iterated = false;
      // Drop what was already written.
      while (d->has_cur && d->cur.end() <= cw.end() && d->cur.id.client >= cw.id.client) {
        QUIRE_RETURN_IF_ERROR(advance());
        iterated = true;
      }
      if (*out_of_order) return Bytes{};
      if (!d->has_cur || d->cur.id.client != first || (iterated && d->cur.id.clock > cw.end())) {
        reinsert();
        continue;
      }
      Struct c = d->cur;
      if (first != cw.id.client) {
        writer.Emit(cw);
        cw = c;
        QUIRE_RETURN_IF_ERROR(advance());
      } else if (cw.end() < c.id.clock) {
        writer.Emit(cw);
        Struct skip;
        skip.kind = StructKind::kSkip;
        skip.id = {first, cw.end()};
        skip.length = c.id.clock - cw.end();
        cw = skip;
      } else {
        const uint64_t diff = cw.end() - c.id.clock;
        if (diff > 0) {
          auto sliced = internal::SliceStruct(c, diff, &arena);
          if (!sliced.ok()) return sliced.status();
          c = *sliced;
        }
        if (cw.kind == StructKind::kGc && c.kind == StructKind::kGc) {
          cw.length += c.length;
          cw.raw = {};
        } else {
          writer.Emit(cw);
          cw = c;
          QUIRE_RETURN_IF_ERROR(advance());
        }
      }
    }
    while (d->has_cur && d->cur.id.client == first && d->cur.id.clock == cw.end()) {
      writer.Emit(cw);
      cw = d->cur;
      QUIRE_RETURN_IF_ERROR(advance());
    }
    if (*out_of_order) return Bytes{};
    reinsert();
  }
  if (has_cw) writer.Emit(cw);
  return writer.Finish(MergeDeleteSets(dss));
}

// Rewrites `update` with its structs in (client descending, clock ascending) order.
Result<Bytes> NormalizeBlockOrder(ByteView update) {
  auto decoded = DecodeUpdate(update);
  if (!decoded.ok()) return decoded.status();
  std::vector<Struct>& structs = decoded->structs;
  std::stable_sort(structs.begin(), structs.end(), [](const Struct& a, const Struct& b) {
    if (a.id.client != b.id.client) return a.id.client > b.id.client;
    return a.id.clock < b.id.clock;
  });
  UpdateWriter writer;
  for (const Struct& s : structs) writer.Emit(s);
  return writer.Finish(decoded->delete_set);
}

}  // namespace

Result<Bytes> MergeUpdates(std::span<const ByteView> updates) {
  if (updates.empty()) return Bytes{0, 0};
  if (updates.size() == 1) {
    QUIRE_RETURN_IF_ERROR(ValidateUpdate(updates[0]));
    return Bytes(updates[0].begin(), updates[0].end());
  }
  if (updates.size() > kMaxMergeFanIn) {
    // Merge consecutive groups, then the groups' results: memory is one cursor per input of
    // a group instead of one per input (a cursor is ~300 bytes, a keystroke update ~20).
    std::vector<Bytes> groups;
    groups.reserve((updates.size() + kMaxMergeFanIn - 1) / kMaxMergeFanIn);
    for (size_t i = 0; i < updates.size(); i += kMaxMergeFanIn) {
      auto group = MergeUpdates(updates.subspan(i, std::min(kMaxMergeFanIn, updates.size() - i)));
      if (!group.ok()) return group.status();
      groups.push_back(std::move(*group));
    }
    std::vector<ByteView> views(groups.begin(), groups.end());
    return MergeUpdates(views);
  }
  bool out_of_order = false;
  auto merged = MergeInOrder(updates, &out_of_order);
  if (!merged.ok() || !out_of_order) return merged;
  // Some input lists its client blocks in another order (yjs never does; other encoders may).
  // yjs's merge loop would drop structs of such input; sort every input's structs first.
  std::vector<Bytes> normalized;
  normalized.reserve(updates.size());
  std::vector<ByteView> views;
  for (ByteView u : updates) {
    auto n = NormalizeBlockOrder(u);
    if (!n.ok()) return n.status();
    normalized.push_back(std::move(*n));
    views.push_back(normalized.back());
  }
  merged = MergeInOrder(views, &out_of_order);
  if (merged.ok() && out_of_order) return Status::Internal("yjs: normalized input is out of order");
  return merged;
}

Result<Bytes> DiffUpdate(ByteView update, ByteView state_vector) {
  auto sv = DecodeStateVector(state_vector);
  if (!sv.ok()) return sv.status();
  return DiffUpdate(update, *sv);
}

Result<Bytes> DiffUpdate(ByteView update, const StateVector& state_vector) {
  UpdateReader reader(update);
  UpdateWriter writer;
  Arena arena;
  Struct s;
  bool have = reader.Next(&s);
  while (have) {
    if (s.kind == StructKind::kSkip) {
      have = reader.Next(&s);
      continue;
    }
    const uint64_t client = s.id.client;
    auto it = state_vector.find(client);
    const uint64_t svc = it == state_vector.end() ? 0 : it->second;
    if (s.end() > svc) {
      if (svc > s.id.clock) {
        auto sliced = internal::SliceStruct(s, svc - s.id.clock, &arena);
        if (!sliced.ok()) return sliced.status();
        writer.Emit(*sliced);
      } else {
        writer.Emit(s);
      }
      have = reader.Next(&s);
      while (have && s.id.client == client) {
        writer.Emit(s);
        have = reader.Next(&s);
      }
    } else {
      have = reader.Next(&s);
    }
  }
  QUIRE_RETURN_IF_ERROR(reader.status());
  DeleteSet ds;
  QUIRE_RETURN_IF_ERROR(reader.ReadDeleteSet(&ds));
  std::stable_sort(ds.begin(), ds.end(), [](const DeleteSetClient& a, const DeleteSetClient& b) {
    return a.client > b.client;
  });
  return writer.Finish(ds);
}

Result<Bytes> StateVectorFromUpdate(ByteView update) {
  UpdateReader reader(update);
  Bytes pairs;
  uint64_t count = 0;
  bool have_client = false;
  uint64_t cur_client = 0, cur_clock = 0;
  bool stop = false;
  const auto emit = [&] {
    if (have_client && cur_clock != 0) {
      internal::PutVarUint(&pairs, cur_client);
      internal::PutVarUint(&pairs, cur_clock);
      ++count;
    }
  };
  Struct s;
  while (reader.Next(&s)) {
    if (!have_client || s.id.client != cur_client) {
      emit();
      have_client = true;
      cur_client = s.id.client;
      cur_clock = 0;
      stop = s.id.clock != 0;
    }
    if (s.kind == StructKind::kSkip) stop = true;
    if (!stop) cur_clock = s.end();
  }
  emit();
  QUIRE_RETURN_IF_ERROR(reader.status());
  DeleteSet ds;
  QUIRE_RETURN_IF_ERROR(reader.ReadDeleteSet(&ds));
  Bytes out;
  internal::PutVarUint(&out, count);
  internal::PutBytes(&out, pairs);
  return out;
}

}  // namespace quire::yjs
