#include "projection/document_service.h"

#include <algorithm>
#include <cctype>
#include <deque>
#include <limits>
#include <list>
#include <set>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "core/codec.h"
#include "core/ids.h"

namespace quire::projection {

using eventlog::Backend;
using eventlog::Event;
using eventlog::EventKind;

namespace {

// Bookkeeping bytes charged per cached tail update on top of its payload and strings.
constexpr int64_t kTailOverheadBytes = 64;
// The actor id the compactor writes on the snapshots it makes.
constexpr std::string_view kCompactorActor = "quire-compactor";
constexpr size_t kNoLimit = std::numeric_limits<size_t>::max();
// Folds running at once (see QueueFold). A fold takes ~1 ms from start to appended snapshot,
// so two keep up with a thousand folds a second; S3 (1,000 documents) needs ~30.
constexpr int kFoldsInFlight = 2;

bool ContainsIgnoreCase(std::string_view haystack, std::string_view needle) {
  if (needle.empty()) return true;
  auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                        [](char a, char b) {
                          return std::tolower(static_cast<unsigned char>(a)) ==
                                 std::tolower(static_cast<unsigned char>(b));
                        });
  return it != haystack.end();
}

int64_t TailUpdateBytes(const TailUpdate& t) {
  return static_cast<int64_t>(t.bytes->size() + t.op_id.size() + t.actor_id.size()) +
         kTailOverheadBytes;
}

// A committed event as the head state needs it (payload shared, not copied again).
struct Committed {
  EventKind kind;
  Seq seq;
  Seq version;
  OpId op_id;
  ActorId actor_id;
  std::shared_ptr<const Bytes> payload;
};

// What a load on the storage thread found: `head` is meaningful when `status` is OK.
struct LoadedHead {
  Status status;
  HeadState head;
};

struct FoldOutcome {
  Status status;
  bool nothing_to_fold = false;
  Seq version = 0;
  int64_t folded = 0;
  Bytes snapshot;
};

// What a fold reads: a head's snapshot and its updates' bytes, shared with the head (immutable,
// so the compute thread reads them while the loop keeps its head).
struct FoldInput {
  std::shared_ptr<const Bytes> snapshot;
  std::vector<std::shared_ptr<const Bytes>> updates;
  Seq version = 0;  // the last update's seq
};

FoldInput FoldInputOf(const HeadState& head) {
  FoldInput in;
  in.snapshot = head.snapshot;
  in.updates.reserve(head.tail.size());
  for (const TailUpdate& u : head.tail) in.updates.push_back(u.bytes);
  if (!head.tail.empty()) in.version = head.tail.back().seq;
  return in;
}

// `snapshot` with the updates of `tail` folded in (`bytes_of` gives an element's update).
template <typename Tail, typename BytesOf>
Result<Bytes> FoldTail(const Bytes& snapshot, const Tail& tail, BytesOf bytes_of, CrdtKind kind) {
  if (tail.empty()) return snapshot;
  const Codec& codec = CodecFor(kind);
  if (!codec.CanFold()) return Status::FailedPrecondition("the server does not fold this CRDT");
  std::vector<ByteView> updates;
  updates.reserve(tail.size());
  for (const auto& u : tail) updates.emplace_back(bytes_of(u));
  return codec.Fold(snapshot, updates);
}

// Reads the head state of `id` (storage thread).
LoadedHead ReadHead(Backend& backend, const DocumentId& id) {
  LoadedHead loaded;
  HeadState& out = loaded.head;
  out.snapshot = std::make_shared<const Bytes>();
  auto snapshot = backend.ReadLatestSnapshot(id);
  if (!snapshot.ok()) {
    loaded.status = snapshot.status();
    return loaded;
  }
  if (snapshot->has_value()) {
    out.snapshot_version = (*snapshot)->version;
    out.snapshot = std::make_shared<const Bytes>(std::move((*snapshot)->payload));
    out.head_seq = (*snapshot)->seq;
  }
  auto events = backend.ReadEvents(id, out.snapshot_version, kNoLimit);
  if (!events.ok()) {
    loaded.status = events.status();
    return loaded;
  }
  for (Event& e : *events) {
    out.head_seq = std::max(out.head_seq, e.seq);
    if (e.kind != EventKind::kUpdate) continue;
    out.tail.push_back(TailUpdate{e.seq, std::move(e.op_id), std::move(e.actor_id),
                                  std::make_shared<const Bytes>(std::move(e.payload))});
  }
  if (out.head_seq == 0) {
    loaded.status = Status::NotFound("document " + id + " has no events");
    return loaded;
  }
  // The oldest retained update: updates at or below the snapshot version are only present
  // when retention kept them; look at the start of the stream (bounded), else the tail's first.
  out.oldest_retained_seq = out.tail.empty() ? 0 : out.tail.front().seq;
  if (out.snapshot_version > 0) {
    constexpr size_t kProbe = 64;
    auto head = backend.ReadEvents(id, 0, kProbe);
    if (head.ok()) {
      for (const Event& e : *head) {
        if (e.kind == EventKind::kUpdate) {
          out.oldest_retained_seq = e.seq;
          break;
        }
      }
    }
  }
  return loaded;
}

}  // namespace

class DocumentService::Impl {
 public:
  Impl(eventlog::AsyncLog& log, const Clock& clock, ProjectionOptions options, const Logger& logger)
      : log_(log), clock_(clock), options_(options), logger_(logger) {}

  // ---------------------------------------------------------------- start, catalog

  void Start(std::function<void(Status)> done) {
    Run<Result<std::vector<DocumentRecord>>>(
        [](Backend& b) { return b.ReadCatalog(); },
        [this, done = std::move(done)](Result<std::vector<DocumentRecord>> rows) {
          if (!rows.ok()) return done(rows.status());
          TimestampMs now = clock_.NowMs();
          for (DocumentRecord& r : *rows) {
            Doc& d = docs_[r.id];
            d.record = std::move(r);
            order_.insert(OrderKey(d.record));
            // What is unfolded since the last snapshot is unknown until the head is read:
            // the time cadence picks these documents up (the fold reads the exact tail).
            if (CodecFor(d.record.crdt).CanFold() && d.record.update_count > 0 &&
                d.record.head_seq > d.record.snapshot_version) {
              d.first_unfolded_ms = now;
              dirty_.insert(d.record.id);
            }
            if (d.record.snapshot_version > 0 && options_.retain_updates_ms >= 0) {
              d.prunable.emplace_back(d.record.snapshot_version, now);
            }
          }
          QUIRE_LOG(logger_, kInfo, "catalog_loaded").Int("documents", Int(docs_.size()));
          done(Status::Ok());
        });
  }

  const DocumentRecord* Find(const DocumentId& id) const {
    auto it = docs_.find(id);
    return it == docs_.end() ? nullptr : &it->second.record;
  }

  ListPage List(const ListQuery& q,
                const std::function<bool(const DocumentRecord&)>& visible = nullptr) const {
    ListPage page;
    page.page = std::max<int64_t>(q.page, 1);
    page.page_size = std::clamp<int64_t>(q.page_size, 1, 100);
    // Saturating: a huge page number just yields an empty page.
    int64_t skip = (page.page - 1) > std::numeric_limits<int64_t>::max() / page.page_size
                       ? std::numeric_limits<int64_t>::max()
                       : (page.page - 1) * page.page_size;
    for (const auto& key : order_) {
      const DocumentRecord& r = docs_.at(key.second).record;
      if (!q.include_deleted && r.deleted()) continue;
      if (!ContainsIgnoreCase(r.title, q.query)) continue;
      if (visible && !visible(r)) continue;
      if (page.total >= skip && static_cast<int64_t>(page.items.size()) < page.page_size) {
        page.items.push_back(r);
      }
      page.total += 1;
    }
    return page;
  }

  size_t document_count() const { return docs_.size(); }

  // ---------------------------------------------------------------- commands

  void Create(CreateCommand c, RecordCallback done) {
    if (c.id && !IsValidDocumentId(*c.id)) {
      return Fail(std::move(done), Status::InvalidArgument("invalid document id"));
    }
    DocumentId id = c.id ? *c.id : NewUuid();
    if (docs_.contains(id)) {
      return Fail(std::move(done), Status::AlreadyExists("document " + id + " exists"));
    }
    Event e;
    e.document_id = id;
    e.kind = EventKind::kCreated;
    e.title = std::move(c.title);
    e.crdt = c.crdt;
    e.actor_id = std::move(c.owner);
    AppendForRecord(std::move(e), std::move(done));
  }

  void Rename(const DocumentId& id, std::string title, ActorId actor, RecordCallback done) {
    if (!docs_.contains(id)) return Fail(std::move(done), NotFound(id));
    Event e;
    e.document_id = id;
    e.kind = EventKind::kRenamed;
    e.title = std::move(title);
    e.actor_id = std::move(actor);
    AppendForRecord(std::move(e), std::move(done));
  }

  void SetDeleted(const DocumentId& id, bool deleted, ActorId actor, RecordCallback done) {
    auto it = docs_.find(id);
    if (it == docs_.end()) return Fail(std::move(done), NotFound(id));
    if (it->second.record.deleted() == deleted) {
      // Nothing to append; the answer is the record as it is when the callback runs.
      return Defer([this, id, done = std::move(done)] {
        const DocumentRecord* r = Find(id);
        if (r == nullptr) return done(NotFound(id));
        done(*r);
      });
    }
    Event e;
    e.document_id = id;
    e.kind = deleted ? EventKind::kDeleted : EventKind::kRestored;
    e.actor_id = std::move(actor);
    AppendForRecord(std::move(e), std::move(done));
  }

  void AppendUpdate(const DocumentId& id, OpId op_id, ActorId actor, Bytes bytes,
                    AppendCallback done) {
    auto it = docs_.find(id);
    if (it == docs_.end()) return Fail(std::move(done), NotFound(id));
    const DocumentRecord& r = it->second.record;
    if (r.deleted()) {
      return Fail(std::move(done), Status::FailedPrecondition("document " + id + " is deleted"));
    }
    if (op_id.empty()) return Fail(std::move(done), Status::InvalidArgument("empty opId"));
    Status valid = CodecFor(r.crdt).ValidateUpdate(bytes);
    if (!valid.ok()) return Fail(std::move(done), std::move(valid));
    Event e;
    e.document_id = id;
    e.kind = EventKind::kUpdate;
    e.op_id = std::move(op_id);
    e.actor_id = std::move(actor);
    e.payload = std::move(bytes);
    AppendEvent(std::move(e), std::move(done));
  }

  void AppendSnapshot(const DocumentId& id, Seq version, Bytes bytes, ActorId actor,
                      AppendCallback done) {
    auto it = docs_.find(id);
    if (it == docs_.end()) return Fail(std::move(done), NotFound(id));
    const DocumentRecord& r = it->second.record;
    if (CodecFor(r.crdt).CanFold()) {
      // The server makes these documents' snapshots; `quire replay` checks them byte for
      // byte against the fold of their prefix, which a client snapshot would not match.
      return Fail(std::move(done),
                  Status::FailedPrecondition("the server folds " +
                                             std::string(CrdtKindName(r.crdt)) + " documents"));
    }
    if (bytes.empty()) return Fail(std::move(done), Status::InvalidArgument("empty snapshot"));
    if (version < r.snapshot_version || version > r.head_seq) {
      return Fail(std::move(done),
                  Status::InvalidArgument("snapshot version " + std::to_string(version) +
                                          " outside [" + std::to_string(r.snapshot_version) + ", " +
                                          std::to_string(r.head_seq) + "]"));
    }
    Event e;
    e.document_id = id;
    e.kind = EventKind::kSnapshot;
    e.version = version;
    e.payload = std::move(bytes);
    e.actor_id = std::move(actor);
    AppendEvent(std::move(e), std::move(done));
  }

  // ---------------------------------------------------------------- head state

  void LoadHead(const DocumentId& id, std::function<void(Result<HeadState>)> done) {
    if (!docs_.contains(id)) return Fail(std::move(done), NotFound(id));
    // Answered when the callback runs, so the state includes every event whose command
    // callback ran before. From the cache without waiting for the storage thread: an append
    // still committing reaches the joiner as a relay.
    Soon([this, id, done = std::move(done)]() mutable {
      auto it = docs_.find(id);
      if (it == docs_.end()) return done(NotFound(id));
      Doc& d = it->second;
      if (d.head) {
        Touch(d);
        return done(Snapshot(d));
      }
      d.load_waiters.push_back(std::move(done));
      if (!d.loading) StartLoad(id, d);
    });
  }

  void ReadUpdatesSince(const DocumentId& id, Seq since_seq,
                        std::function<void(Result<std::vector<TailUpdate>>)> done) {
    if (!docs_.contains(id)) return Fail(std::move(done), NotFound(id));
    since_seq = std::max<Seq>(since_seq, 0);
    Soon([this, id, since_seq, done = std::move(done)]() mutable {
      auto it = docs_.find(id);
      if (it == docs_.end()) return done(NotFound(id));
      Doc& d = it->second;
      if (d.head && since_seq >= d.head->snapshot_version) {
        Touch(d);
        std::vector<TailUpdate> out;
        for (const TailUpdate& t : d.head->tail) {
          if (t.seq > since_seq) out.push_back(t);
        }
        return done(std::move(out));
      }
      Seq head_seq = d.record.head_seq;
      Run<Result<std::vector<TailUpdate>>>(
          [id, since_seq, head_seq](Backend& b) -> Result<std::vector<TailUpdate>> {
            auto events = b.ReadEvents(id, since_seq, kNoLimit);
            if (!events.ok()) return events.status();
            std::vector<TailUpdate> out;
            Seq expect = since_seq + 1;
            for (Event& e : *events) {
              // Seqs are contiguous per document; a hole is a pruned update.
              if (e.seq != expect) {
                return Status::FailedPrecondition("updates of " + id + " after seq " +
                                                  std::to_string(since_seq) +
                                                  " are no longer retained");
              }
              expect = e.seq + 1;
              if (e.kind != EventKind::kUpdate) continue;
              out.push_back(TailUpdate{e.seq, std::move(e.op_id), std::move(e.actor_id),
                                       std::make_shared<const Bytes>(std::move(e.payload))});
            }
            if (events->empty() && since_seq < head_seq) {
              return Status::FailedPrecondition("updates of " + id + " after seq " +
                                                std::to_string(since_seq) +
                                                " are no longer retained");
            }
            return out;
          },
          std::move(done));
    });
  }

  // ---------------------------------------------------------------- compaction

  void RunCompactor() {
    TimestampMs now = clock_.NowMs();
    std::vector<DocumentId> due;
    for (const DocumentId& id : dirty_) {
      Doc& d = docs_.at(id);
      if (d.folding) continue;
      // A cadence <= 0 is switched off.
      bool by_count =
          options_.snapshot_every_updates > 0 && d.unfolded >= options_.snapshot_every_updates;
      bool by_time = options_.snapshot_interval_ms > 0 && d.first_unfolded_ms &&
                     now - *d.first_unfolded_ms >= options_.snapshot_interval_ms;
      if (by_count || by_time) due.push_back(id);
    }
    for (const DocumentId& id : due) QueueFold(id);
    PumpFolds();
    if (options_.retain_updates_ms >= 0) RunRetention(now);
  }

  void Pin(const DocumentId& id) {
    auto it = docs_.find(id);
    if (it == docs_.end()) return;
    Doc& d = it->second;
    if (d.pins++ == 0 && d.in_lru) {
      lru_.erase(d.lru_it);
      d.in_lru = false;
    }
  }

  void Unpin(const DocumentId& id) {
    auto it = docs_.find(id);
    if (it == docs_.end() || it->second.pins == 0) return;
    Doc& d = it->second;
    if (--d.pins == 0 && d.head) {
      lru_.push_front(id);
      d.lru_it = lru_.begin();
      d.in_lru = true;
      EnforceBound();
    }
  }

  Status writable() const { return log_.sticky_error(); }

  bool head_cached(const DocumentId& id) const {
    auto it = docs_.find(id);
    return it != docs_.end() && it->second.head != nullptr;
  }

  Stats stats() const {
    Stats s = stats_;
    s.cached_bytes = cached_bytes_;
    s.folds_running = folds_in_flight_;
    s.folds_queued = Int(fold_queue_.size());
    return s;
  }

  void AppendHistoryEvent(Event e, AppendCallback done) {
    if (!docs_.contains(e.document_id)) return Fail(std::move(done), NotFound(e.document_id));
    AppendEvent(std::move(e), std::move(done));
  }

 private:
  struct Doc {
    DocumentRecord record;
    // Head state cache; null when not cached.
    std::unique_ptr<HeadState> head;
    int64_t head_bytes = 0;
    int pins = 0;
    bool in_lru = false;
    std::list<DocumentId>::iterator lru_it;
    // A load in flight: who waits for it, and what committed meanwhile.
    bool loading = false;
    std::vector<std::function<void(Result<HeadState>)>> load_waiters;
    std::vector<Committed> committed_while_loading;
    // Compactor: updates since the last snapshot (an estimate until the head was read).
    int64_t unfolded = 0;
    std::optional<TimestampMs> first_unfolded_ms;
    bool folding = false;
    int64_t unfolded_since_fold_start = 0;
    std::optional<TimestampMs> first_since_fold_start_ms;
    // Retention: snapshot versions and when they were seen, oldest first.
    std::deque<std::pair<Seq, TimestampMs>> prunable;
  };

  // Catalog order: newest updated_at first, ties by id ascending.
  using Key = std::pair<TimestampMs, DocumentId>;
  struct KeyOrder {
    bool operator()(const Key& a, const Key& b) const {
      if (a.first != b.first) return a.first > b.first;
      return a.second < b.second;
    }
  };
  static Key OrderKey(const DocumentRecord& r) { return {r.updated_at, r.id}; }
  static int64_t Int(size_t n) { return static_cast<int64_t>(n); }
  static Status NotFound(const DocumentId& id) {
    return Status::NotFound("document " + id + " does not exist");
  }

  // Runs `work` on the storage thread and `done` on the loop, unless the service is gone.
  template <typename T>
  void Run(std::function<T(Backend&)> work, std::function<void(T)> done) {
    log_.Run<T>(std::move(work), [w = std::weak_ptr<int>(token_), done = std::move(done)](T v) {
      if (!w.expired()) done(std::move(v));
    });
  }

  // Runs `work` on the log's compute thread and `done` on the loop, unless the service is gone.
  template <typename T>
  void Compute(std::function<T()> work, std::function<void(T)> done) {
    log_.Compute<T>(std::move(work), [w = std::weak_ptr<int>(token_), done = std::move(done)](T v) {
      if (!w.expired()) done(std::move(v));
    });
  }

  // Runs `fn` on the loop thread in a later loop iteration, without waiting for the storage
  // thread, unless the service is gone.
  void Soon(std::function<void()> fn) {
    log_.Post([w = std::weak_ptr<int>(token_), fn = std::move(fn)] {
      if (!w.expired()) fn();
    });
  }

  // Runs `fn` on the loop thread later (never synchronously), after every append submitted
  // before it has completed (answers keep their order with acks). Coalesced: one round trip
  // through the log's completion queue delivers everything deferred meanwhile.
  void Defer(std::function<void()> fn) {
    deferred_.push_back(std::move(fn));
    if (defer_scheduled_) return;
    defer_scheduled_ = true;
    Run<int>([](Backend&) { return 0; },
             [this](int) {
               defer_scheduled_ = false;
               std::vector<std::function<void()>> now;
               now.swap(deferred_);
               for (auto& task : now) task();
             });
  }

  template <typename Callback>
  void Fail(Callback done, Status status) {
    Defer([done = std::move(done), status = std::move(status)]() mutable { done(status); });
  }

  void AppendForRecord(Event e, RecordCallback done) {
    AppendCommitted(std::move(e), [this, done = std::move(done)](Result<eventlog::AppendResult> r,
                                                                 const DocumentId& id) {
      if (!r.ok()) return done(r.status());
      const DocumentRecord* rec = Find(id);
      if (rec == nullptr) return done(Status::Internal("committed document " + id + " is gone"));
      done(*rec);
    });
  }

  void AppendEvent(Event e, AppendCallback done) {
    AppendCommitted(std::move(e),
                    [done = std::move(done)](Result<eventlog::AppendResult> r, const DocumentId&) {
                      done(std::move(r));
                    });
  }

  // Every command goes through here: the committed event updates the projections, then
  // `done` runs.
  void AppendCommitted(
      Event e, std::function<void(Result<eventlog::AppendResult>, const DocumentId&)> done) {
    e.created_at = clock_.NowMs();
    log_.Append(std::move(e), [w = std::weak_ptr<int>(token_), this, done = std::move(done)](
                                  Result<eventlog::AppendResult> r, const Event& event) {
      if (w.expired()) return;
      if (r.ok() && !r->duplicate) Absorb(event);
      done(std::move(r), event.document_id);
    });
  }

  // A newly committed event (loop thread, seq order per document).
  void Absorb(const Event& e) {
    auto [it, inserted] = docs_.try_emplace(e.document_id);
    Doc& d = it->second;
    const TimestampMs updated_before = d.record.updated_at;
    eventlog::Apply(d.record, e);
    if (inserted) {
      order_.insert(OrderKey(d.record));
    } else if (d.record.updated_at != updated_before) {
      // Every update moves its document in the catalog order. Re-key the node in place (no
      // allocation, no copy of the id) and hint the front: the newest edit sorts first.
      auto node = order_.extract(Key{updated_before, d.record.id});
      if (node.empty()) {
        order_.insert(OrderKey(d.record));
      } else {
        node.value().first = d.record.updated_at;
        order_.insert(order_.begin(), std::move(node));
      }
    }

    if (e.kind == EventKind::kUpdate && CodecFor(d.record.crdt).CanFold()) {
      TimestampMs now = clock_.NowMs();
      d.unfolded += 1;
      if (!d.first_unfolded_ms) d.first_unfolded_ms = now;
      if (d.folding) {
        d.unfolded_since_fold_start += 1;
        if (!d.first_since_fold_start_ms) d.first_since_fold_start_ms = now;
      }
      dirty_.insert(e.document_id);
    }
    if (e.kind == EventKind::kSnapshot && options_.retain_updates_ms >= 0) {
      d.prunable.emplace_back(e.version, clock_.NowMs());
    }

    if (!d.head && !d.loading) return;
    Committed c{e.kind, e.seq, e.version, e.op_id, e.actor_id, nullptr};
    if (e.kind == EventKind::kUpdate || e.kind == EventKind::kSnapshot) {
      c.payload = std::make_shared<const Bytes>(e.payload);
    }
    if (d.loading) {
      d.committed_while_loading.push_back(std::move(c));
      return;
    }
    ApplyToHead(d, c);
    Touch(d);
    EnforceBound();
  }

  // Applies a committed event to the cached head; events the head already has are skipped.
  void ApplyToHead(Doc& d, const Committed& c) {
    HeadState& h = *d.head;
    if (c.seq <= h.head_seq) return;
    h.head_seq = c.seq;
    int64_t before = d.head_bytes;
    if (c.kind == EventKind::kUpdate) {
      h.tail.push_back(TailUpdate{c.seq, c.op_id, c.actor_id, c.payload});
      d.head_bytes += TailUpdateBytes(h.tail.back());
      if (h.oldest_retained_seq == 0) h.oldest_retained_seq = c.seq;
    } else if (c.kind == EventKind::kSnapshot && c.version >= h.snapshot_version) {
      d.head_bytes -= Int(h.snapshot->size());
      h.snapshot = c.payload;
      h.snapshot_version = c.version;
      d.head_bytes += Int(h.snapshot->size());
      auto keep = std::find_if(h.tail.begin(), h.tail.end(),
                               [&](const TailUpdate& t) { return t.seq > c.version; });
      for (auto t = h.tail.begin(); t != keep; ++t) d.head_bytes -= TailUpdateBytes(*t);
      h.tail.erase(h.tail.begin(), keep);
    }
    cached_bytes_ += d.head_bytes - before;
  }

  HeadState Snapshot(const Doc& d) const { return *d.head; }

  void StartLoad(const DocumentId& id, Doc& d) {
    d.loading = true;
    d.committed_while_loading.clear();
    Run<LoadedHead>([id](Backend& b) { return ReadHead(b, id); },
                    [this, id](LoadedHead loaded) { FinishLoad(id, std::move(loaded)); });
  }

  void FinishLoad(const DocumentId& id, LoadedHead loaded) {
    Doc& d = docs_.at(id);
    d.loading = false;
    auto waiters = std::move(d.load_waiters);
    d.load_waiters.clear();
    auto committed = std::move(d.committed_while_loading);
    d.committed_while_loading.clear();
    if (!loaded.status.ok()) {
      for (auto& w : waiters) w(loaded.status);
      return;
    }
    auto head = std::make_unique<HeadState>(std::move(loaded.head));
    d.head_bytes = Int(head->snapshot->size());
    for (const TailUpdate& t : head->tail) d.head_bytes += TailUpdateBytes(t);
    cached_bytes_ += d.head_bytes;
    d.head = std::move(head);
    stats_.cached_documents += 1;
    // Events committed while the load was in flight: the load may or may not have seen them.
    for (const Committed& c : committed) ApplyToHead(d, c);
    // Now the unfolded count is exact.
    if (CodecFor(d.record.crdt).CanFold() && !d.folding) {
      d.unfolded = Int(d.head->tail.size());
      if (d.unfolded == 0) {
        d.first_unfolded_ms.reset();
        dirty_.erase(id);
      } else {
        if (!d.first_unfolded_ms) d.first_unfolded_ms = clock_.NowMs();
        dirty_.insert(id);
      }
    }
    if (d.pins == 0) {
      lru_.push_front(id);
      d.lru_it = lru_.begin();
      d.in_lru = true;
    }
    // Answer before enforcing the bound: an oversized head is still delivered once.
    HeadState state = *d.head;
    for (size_t i = 0; i < waiters.size(); ++i) {
      waiters[i](i + 1 == waiters.size() ? std::move(state) : state);
    }
    EnforceBound();
  }

  void Touch(Doc& d) {
    if (!d.in_lru) return;
    lru_.splice(lru_.begin(), lru_, d.lru_it);
  }

  void EnforceBound() {
    while (cached_bytes_ > options_.head_cache_bytes && !lru_.empty()) {
      DocumentId victim = std::move(lru_.back());
      lru_.pop_back();
      Doc& d = docs_.at(victim);
      d.in_lru = false;
      cached_bytes_ -= d.head_bytes;
      d.head_bytes = 0;
      d.head.reset();
      stats_.cached_documents -= 1;
      stats_.evictions += 1;
    }
  }

  // Due folds wait in a queue and at most kFoldsInFlight run at once, each until its snapshot
  // is appended. Documents that became due together (S1's 100 documents reach 200 updates in
  // the same second) would otherwise append ~100 snapshots in one batch, and every update
  // appended behind that batch waits for it.
  void QueueFold(const DocumentId& id) {
    Doc& d = docs_.at(id);
    if (!CodecFor(d.record.crdt).CanFold()) {
      dirty_.erase(id);
      return;
    }
    d.folding = true;
    fold_queue_.push_back(id);
  }

  void PumpFolds() {
    if (pumping_folds_) return;  // a fold that ends at once does not recurse
    pumping_folds_ = true;
    while (folds_in_flight_ < kFoldsInFlight && !fold_queue_.empty()) {
      DocumentId id = std::move(fold_queue_.front());
      fold_queue_.pop_front();
      folds_in_flight_ += 1;
      StartFold(id);
    }
    pumping_folds_ = false;
  }

  // Every fold started ends here once, whatever its outcome.
  void EndFold() {
    folds_in_flight_ -= 1;
    PumpFolds();
  }

  void StartFold(const DocumentId& id) {
    Doc& d = docs_.at(id);
    d.unfolded_since_fold_start = 0;
    d.first_since_fold_start_ms.reset();
    // The fold itself runs on the log's compute thread, so that appends never wait behind it
    // (S1 makes ~25 folds a second). An open document's cached head is what the log holds up
    // to its last absorbed event: the fold takes it as it is. Reading it again on the storage
    // thread queued every append behind the reads (S1's durable p99 was 14.6-18.0 ms with
    // them, 7.3-11.0 ms with no folds at all).
    if (d.head) return FoldFrom(id, FoldInputOf(*d.head));
    Run<LoadedHead>([id](Backend& b) { return ReadHead(b, id); },
                    [this, id](LoadedHead loaded) {
                      if (!loaded.status.ok()) {
                        FoldOutcome out;
                        out.status = loaded.status;
                        return FinishFold(id, std::move(out));
                      }
                      FoldFrom(id, FoldInputOf(loaded.head));
                    });
  }

  void FoldFrom(const DocumentId& id, FoldInput in) {
    if (in.updates.empty()) {
      FoldOutcome out;
      out.nothing_to_fold = true;
      return FinishFold(id, std::move(out));
    }
    Compute<FoldOutcome>(
        [crdt = docs_.at(id).record.crdt, in = std::move(in)] { return FoldHead(crdt, in); },
        [this, id](FoldOutcome o) { FinishFold(id, std::move(o)); });
  }

  // Compute thread: the updates folded into the snapshot.
  static FoldOutcome FoldHead(CrdtKind crdt, const FoldInput& in) {
    FoldOutcome out;
    auto folded = FoldTail(
        *in.snapshot, in.updates, [](const auto& u) -> const Bytes& { return *u; }, crdt);
    if (!folded.ok()) {
      out.status = folded.status();
      return out;
    }
    out.snapshot = std::move(folded).value();
    out.version = in.version;
    out.folded = Int(in.updates.size());
    return out;
  }

  void FinishFold(const DocumentId& id, FoldOutcome outcome) {
    Doc& d = docs_.at(id);
    if (!outcome.status.ok()) {
      d.folding = false;
      // Try again at the next cadence rather than at every compactor run.
      d.first_unfolded_ms = clock_.NowMs();
      d.unfolded = 0;
      QUIRE_LOG(logger_, kWarn, "fold_failed")
          .Str("document", id)
          .Str("error", outcome.status.ToString());
      return EndFold();
    }
    if (outcome.nothing_to_fold) {
      d.folding = false;
      ResetUnfolded(id, d);
      return EndFold();
    }
    Event e;
    e.document_id = id;
    e.kind = EventKind::kSnapshot;
    e.version = outcome.version;
    e.payload = std::move(outcome.snapshot);
    e.actor_id = std::string(kCompactorActor);
    int64_t folded = outcome.folded;
    AppendCommitted(std::move(e),
                    [this, id, folded](Result<eventlog::AppendResult> r, const DocumentId&) {
                      Doc& doc = docs_.at(id);
                      doc.folding = false;
                      if (!r.ok()) {
                        QUIRE_LOG(logger_, kWarn, "snapshot_append_failed")
                            .Str("document", id)
                            .Str("error", r.status().ToString());
                        return EndFold();  // the counters kept counting; the next run retries
                      }
                      stats_.snapshots_taken += 1;
                      QUIRE_LOG(logger_, kDebug, "snapshot_taken")
                          .Str("document", id)
                          .Int("seq", r->seq)
                          .Int("updates", folded);
                      ResetUnfolded(id, doc);
                      EndFold();
                    });
  }

  // After a fold: what is unfolded now is what committed since the fold started.
  void ResetUnfolded(const DocumentId& id, Doc& d) {
    if (d.head) {
      d.unfolded = Int(d.head->tail.size());
      d.first_unfolded_ms = d.unfolded > 0 ? (d.first_since_fold_start_ms
                                                  ? d.first_since_fold_start_ms
                                                  : std::optional<TimestampMs>(clock_.NowMs()))
                                           : std::nullopt;
    } else {
      d.unfolded = d.unfolded_since_fold_start;
      d.first_unfolded_ms = d.first_since_fold_start_ms;
    }
    if (d.unfolded == 0) dirty_.erase(id);
  }

  void RunRetention(TimestampMs now) {
    for (auto& [id, d] : docs_) {
      Seq prune_to = 0;
      while (!d.prunable.empty() && now - d.prunable.front().second >= options_.retain_updates_ms) {
        prune_to = std::max(prune_to, d.prunable.front().first);
        d.prunable.pop_front();
      }
      if (prune_to == 0) continue;
      DocumentId doc_id = id;
      Run<Status>([doc_id, prune_to](Backend& b) { return b.PruneUpdates(doc_id, prune_to); },
                  [this, doc_id, prune_to](Status s) {
                    if (!s.ok()) {
                      QUIRE_LOG(logger_, kWarn, "prune_failed")
                          .Str("document", doc_id)
                          .Str("error", s.ToString());
                      return;
                    }
                    Doc& doc = docs_.at(doc_id);
                    if (doc.head && doc.head->oldest_retained_seq <= prune_to) {
                      doc.head->oldest_retained_seq =
                          doc.head->tail.empty() ? 0 : doc.head->tail.front().seq;
                    }
                  });
    }
  }

  eventlog::AsyncLog& log_;
  const Clock& clock_;
  ProjectionOptions options_;
  const Logger& logger_;

  std::unordered_map<DocumentId, Doc> docs_;  // node-based: references stay valid
  std::set<Key, KeyOrder> order_;
  std::unordered_set<DocumentId> dirty_;  // foldable documents with unfolded updates
  std::list<DocumentId> lru_;             // cached, unpinned heads; front = most recent
  int64_t cached_bytes_ = 0;
  Stats stats_;

  std::deque<DocumentId> fold_queue_;  // due, waiting for one of kFoldsInFlight
  int folds_in_flight_ = 0;
  bool pumping_folds_ = false;

  std::vector<std::function<void()>> deferred_;
  bool defer_scheduled_ = false;
  // Completions hold a weak reference: after the service is destroyed they do nothing.
  std::shared_ptr<int> token_ = std::make_shared<int>(0);
};

DocumentService::DocumentService(eventlog::AsyncLog& log, const Clock& clock,
                                 ProjectionOptions options, const Logger& logger)
    : impl_(std::make_unique<Impl>(log, clock, options, logger)), log_(log) {}
DocumentService::~DocumentService() = default;

void DocumentService::Start(std::function<void(Status)> done) { impl_->Start(std::move(done)); }
const DocumentRecord* DocumentService::Find(const DocumentId& id) const { return impl_->Find(id); }
ListPage DocumentService::List(const ListQuery& query) const { return impl_->List(query); }
ListPage DocumentService::List(const ListQuery& query,
                               const std::function<bool(const DocumentRecord&)>& visible) const {
  return impl_->List(query, visible);
}
size_t DocumentService::document_count() const { return impl_->document_count(); }
void DocumentService::Create(CreateCommand command, RecordCallback done) {
  impl_->Create(std::move(command), std::move(done));
}
void DocumentService::Rename(const DocumentId& id, std::string title, ActorId actor,
                             RecordCallback done) {
  impl_->Rename(id, std::move(title), std::move(actor), std::move(done));
}
void DocumentService::SetDeleted(const DocumentId& id, bool deleted, ActorId actor,
                                 RecordCallback done) {
  impl_->SetDeleted(id, deleted, std::move(actor), std::move(done));
}
void DocumentService::AppendUpdate(const DocumentId& id, OpId op_id, ActorId actor, Bytes bytes,
                                   AppendCallback done) {
  impl_->AppendUpdate(id, std::move(op_id), std::move(actor), std::move(bytes), std::move(done));
}
void DocumentService::AppendSnapshot(const DocumentId& id, Seq version, Bytes bytes, ActorId actor,
                                     AppendCallback done) {
  impl_->AppendSnapshot(id, version, std::move(bytes), std::move(actor), std::move(done));
}
void DocumentService::AppendHistoryEvent(eventlog::Event event, AppendCallback done) {
  impl_->AppendHistoryEvent(std::move(event), std::move(done));
}
void DocumentService::LoadHead(const DocumentId& id, std::function<void(Result<HeadState>)> done) {
  impl_->LoadHead(id, std::move(done));
}
void DocumentService::ReadUpdatesSince(const DocumentId& id, Seq since_seq,
                                       std::function<void(Result<std::vector<TailUpdate>>)> done) {
  impl_->ReadUpdatesSince(id, since_seq, std::move(done));
}
void DocumentService::RunCompactor() { impl_->RunCompactor(); }
void DocumentService::Pin(const DocumentId& id) { impl_->Pin(id); }
void DocumentService::Unpin(const DocumentId& id) { impl_->Unpin(id); }
Status DocumentService::writable() const { return impl_->writable(); }
bool DocumentService::head_cached(const DocumentId& id) const { return impl_->head_cached(id); }
DocumentService::Stats DocumentService::stats() const { return impl_->stats(); }

Result<Bytes> FoldHeadState(const HeadState& head, CrdtKind kind) {
  return FoldTail(
      *head.snapshot, head.tail, [](const TailUpdate& u) -> const Bytes& { return *u.bytes; },
      kind);
}

}  // namespace quire::projection
