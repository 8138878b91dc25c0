#include "projection/replay.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "core/codec.h"
#include "core/thread_name.h"
#include "core/yjs/update.h"
#include "eventlog/document_record.h"

namespace quire::projection {

using eventlog::DocumentRecord;
using eventlog::Event;
using eventlog::EventKind;

namespace {

bool SameBytes(ByteView a, ByteView b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

// Yjs snapshots are compared as documents (yjs::SameDocument: state vector, delete set,
// structs), so a snapshot with other block boundaries than the fold still passes. On a
// difference, *why receives ": <what differs>".
bool SameYjsDocument(CrdtKind crdt, ByteView fold, ByteView snapshot, std::string* why) {
  if (crdt != CrdtKind::kYjs) return false;
  std::string difference;
  Result<bool> same = yjs::SameDocument(fold, snapshot, &difference);
  if (!same.ok()) {
    *why = ": " + same.status().ToString();
    return false;
  }
  if (!*same) *why = ": " + difference;
  return *same;
}

// The op_ids of one document, appended in seq order into one character buffer (no
// allocation per op_id, no random access while scanning). Duplicates are found once, at the
// end, by sorting hashes: a hash table probed per event costs a cache miss per event when a
// thousand documents interleave.
class OpIdLog {
 public:
  static constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();

  uint32_t Append(std::string_view op_id, Seq seq) {
    if (size_ % kChunk == 0) chunks_.push_back(std::make_unique_for_overwrite<Entry[]>(kChunk));
    chunks_.back()[size_ % kChunk] =
        Entry{std::hash<std::string_view>{}(op_id), chars_.size(), op_id.size(), seq};
    chars_.append(op_id);
    return static_cast<uint32_t>(size_++);
  }

  std::string_view Get(uint32_t entry) const {
    if (entry == kNone) return {};
    const Entry& e = At(entry);
    return std::string_view(chars_).substr(e.offset, e.size);
  }

  // Every later use of an op_id: (seq of the repeat, seq of the first use, op_id).
  std::vector<std::tuple<Seq, Seq, std::string>> Duplicates() const {
    // (hash, entry) pairs sorted by value: a comparison reads no other memory, unlike sorting
    // entry indexes through the chunks.
    std::vector<std::pair<uint64_t, uint32_t>> order(size_);
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = {At(i).hash, i};
    std::sort(order.begin(), order.end());
    std::vector<std::tuple<Seq, Seq, std::string>> out;
    for (size_t i = 0; i < order.size();) {
      size_t j = i + 1;
      while (j < order.size() && order[j].first == order[i].first) ++j;
      // [i, j) share a hash; compare the strings (in seq order, first use first).
      for (size_t a = i; a < j; ++a) {
        for (size_t b = i; b < a; ++b) {
          if (Get(order[a].second) == Get(order[b].second)) {
            out.emplace_back(At(order[a].second).seq, At(order[b].second).seq,
                             std::string(Get(order[a].second)));
            break;
          }
        }
      }
      i = j;
    }
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  struct Entry {
    uint64_t hash;
    size_t offset;
    size_t size;
    Seq seq;
  };
  // Entries live in fixed chunks: a growing vector would copy them all at each doubling, and
  // its larger buffers come fresh from mmap, a page fault per page touched.
  static constexpr size_t kChunk = 1024;

  const Entry& At(uint32_t entry) const { return chunks_[entry / kChunk][entry % kChunk]; }

  std::vector<std::unique_ptr<Entry[]>> chunks_;
  size_t size_ = 0;
  std::string chars_;
};

// Violations are reported in the order a sequential replay finds them: each check takes a
// ticket when it runs, a snapshot's fold check when the snapshot is observed (its result may
// come later, from another thread).
using Ticket = uint64_t;

// One snapshot to compare with the fold of its prefix. It owns or shares everything it reads,
// so it may run on any thread, and it depends on no other fold: the next fold of the document
// starts from this snapshot's stored bytes whatever this one finds.
struct FoldJob {
  Ticket ticket = 0;
  DocumentId document_id;
  Seq seq = 0;
  CrdtKind crdt = CrdtKind::kYjs;
  std::shared_ptr<const Bytes> base;               // the previous snapshot; null when none
  std::shared_ptr<const Bytes> snapshot;           // this snapshot's payload
  Bytes arena;                                     // holds the prefix's updates
  std::vector<std::pair<size_t, size_t>> updates;  // (offset, size) in `arena`, in seq order
};

// The snapshot_fold violation `job` finds, if any.
std::optional<ReplayViolation> RunFold(const FoldJob& job) {
  std::vector<ByteView> updates;
  updates.reserve(job.updates.size());
  for (const auto& [offset, size] : job.updates)
    updates.emplace_back(job.arena.data() + offset, size);
  const ByteView base = job.base ? ByteView(*job.base) : ByteView();
  const ByteView snapshot(*job.snapshot);
  Result<Bytes> folded = CodecFor(job.crdt).Fold(base, updates);
  if (!folded.ok()) {
    return ReplayViolation{job.document_id, job.seq, "snapshot_fold",
                           "folding the prefix failed: " + folded.status().ToString()};
  }
  if (std::string why;
      !SameBytes(*folded, snapshot) && !SameYjsDocument(job.crdt, *folded, snapshot, &why)) {
    return ReplayViolation{job.document_id, job.seq, "snapshot_fold",
                           "snapshot (" + std::to_string(snapshot.size()) +
                               " bytes) differs from the fold of its prefix (" +
                               std::to_string(folded->size()) + " bytes)" + why};
  }
  return std::nullopt;
}

// Runs fold checks on `threads` worker threads beside the thread that submits them (which
// reads the log), or inline when `threads` is 0. Submit() and Drain() are called from one
// thread; the workers only touch the queue and the results, under mu_.
class FoldPool {
 public:
  explicit FoldPool(int threads) : threads_wanted_(threads) {}
  ~FoldPool() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      queue_.clear();  // unfinished: nobody will read the results
    }
    work_.notify_all();
    for (std::thread& t : threads_) t.join();
  }
  FoldPool(const FoldPool&) = delete;
  FoldPool& operator=(const FoldPool&) = delete;

  void Submit(FoldJob job) {
    if (threads_wanted_ <= 0) {
      Record(job.ticket, RunFold(job));
      return;
    }
    if (threads_.empty()) {
      for (int i = 0; i < threads_wanted_; ++i) threads_.emplace_back([this] { Work(); });
    }
    std::optional<FoldJob> own;
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(job));
      // The workers fell behind: the submitter takes the oldest job itself, which bounds the
      // memory the queued jobs hold.
      if (queue_.size() > kMaxQueued) {
        own = std::move(queue_.front());
        queue_.pop_front();
      }
    }
    work_.notify_one();
    if (own) Record(own->ticket, RunFold(*own));
  }

  // Waits until every submitted job ran (helping with the queue) and returns the violations
  // found, with their tickets, in no particular order.
  std::vector<std::pair<Ticket, ReplayViolation>> Drain() {
    while (true) {
      std::optional<FoldJob> own;
      {
        std::lock_guard lock(mu_);
        if (queue_.empty()) break;
        own = std::move(queue_.front());
        queue_.pop_front();
      }
      Record(own->ticket, RunFold(*own));
    }
    std::unique_lock lock(mu_);
    idle_.wait(lock, [&] { return running_ == 0; });
    return std::move(found_);
  }

 private:
  static constexpr size_t kMaxQueued = 64;

  void Work() {
    NameThisThread("quire-fold");
    std::unique_lock lock(mu_);
    while (true) {
      work_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping
      FoldJob job = std::move(queue_.front());
      queue_.pop_front();
      running_ += 1;
      lock.unlock();
      const Ticket ticket = job.ticket;
      std::optional<ReplayViolation> v = RunFold(job);
      job = FoldJob();  // frees its buffers outside the lock
      lock.lock();
      if (v) found_.emplace_back(ticket, std::move(*v));
      running_ -= 1;
      if (running_ == 0) idle_.notify_all();
    }
  }

  void Record(Ticket ticket, std::optional<ReplayViolation> v) {
    if (!v) return;
    std::lock_guard lock(mu_);
    found_.emplace_back(ticket, std::move(*v));
  }

  const int threads_wanted_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable work_;  // a job was queued, or stop_
  std::condition_variable idle_;  // running_ dropped to 0
  std::deque<FoldJob> queue_;
  size_t running_ = 0;
  bool stop_ = false;
  std::vector<std::pair<Ticket, ReplayViolation>> found_;
};

// One update after the latest snapshot's version: its bytes live in DocState::arena.
struct TailRef {
  Seq seq;
  size_t offset;
  size_t size;
  uint32_t op_id;  // entry in DocState::op_ids
};

struct DocState {
  DocumentRecord record;
  bool created = false;
  Seq last_seq = 0;
  int64_t missing = 0;   // seqs absent from the stream (pruned updates, or worse)
  Seq last_gap_end = 0;  // the largest absent seq so far
  OpIdLog op_ids;
  bool have_snapshot = false;
  Seq snapshot_seq = 0;
  Seq snapshot_version = 0;
  std::shared_ptr<const Bytes> snapshot;  // the latest snapshot's payload; null before it
  Seq max_snapshot_version = 0;
  Bytes arena;                // payloads of `tail`, back to back
  std::vector<TailRef> tail;  // updates with seq > snapshot_version, in seq order
};

std::string RecordToString(const DocumentRecord& r) {
  std::string s = "{title=\"" + r.title + "\" owner=\"" + r.owner_id +
                  "\" crdt=" + std::string(CrdtKindName(r.crdt)) +
                  " created_at=" + std::to_string(r.created_at) +
                  " updated_at=" + std::to_string(r.updated_at) + " deleted_at=" +
                  (r.deleted_at ? std::to_string(*r.deleted_at) : std::string("null")) +
                  " head_seq=" + std::to_string(r.head_seq) +
                  " update_count=" + std::to_string(r.update_count) +
                  " update_bytes=" + std::to_string(r.update_bytes) +
                  " snapshot_version=" + std::to_string(r.snapshot_version) +
                  " snapshot_bytes=" + std::to_string(r.snapshot_bytes) + " grants={";
  for (const auto& [user, role] : r.grants) s += user + "=" + role + ";";
  return s + "}}";
}

}  // namespace

class ReplayChecker::Impl {
 public:
  explicit Impl(ReplayOptions options)
      : options_(std::move(options)), folds_(FoldThreads(options_.fold_threads)) {}

  void Observe(const Event& e) {
    report_.events += 1;
    if (options_.progress && options_.progress_every > 0 &&
        report_.events % options_.progress_every == 0) {
      options_.progress(report_.events);
    }
    // Documents usually arrive in runs: skip the hash lookup for the same document.
    DocState* doc;
    if (last_doc_ != nullptr && *last_id_ == e.document_id) {
      doc = last_doc_;
    } else {
      auto [it, inserted] = docs_.try_emplace(e.document_id);
      doc = &it->second;
      last_doc_ = doc;
      last_id_ = &it->first;
    }

    if (e.seq <= doc->last_seq) {
      Violation(e.document_id, e.seq, "seq_order",
                "seq " + std::to_string(e.seq) + " follows seq " + std::to_string(doc->last_seq));
      return;  // the rest of the fold would be meaningless for this event
    }
    if (e.seq > doc->last_seq + 1) {
      doc->missing += e.seq - doc->last_seq - 1;
      doc->last_gap_end = e.seq - 1;
    }
    doc->last_seq = e.seq;

    if (e.kind == EventKind::kCreated) {
      if (doc->created) {
        Violation(e.document_id, e.seq, "first_event", "a second created event");
      } else if (e.seq != 1) {
        Violation(e.document_id, e.seq, "first_event",
                  "created event has seq " + std::to_string(e.seq) + ", not 1");
      }
      doc->created = true;
    } else if (!doc->created) {
      doc->created = true;  // report once per document
      Violation(
          e.document_id, e.seq, "first_event",
          "the first event is " + std::string(eventlog::EventKindName(e.kind)) + ", not created");
    }

    uint32_t op_id = OpIdLog::kNone;
    if (!e.op_id.empty()) op_id = doc->op_ids.Append(e.op_id, e.seq);

    eventlog::Apply(doc->record, e);

    if (e.kind == EventKind::kUpdate) {
      report_.updates += 1;
      report_.bytes += static_cast<int64_t>(e.payload.size());
      doc->tail.push_back(TailRef{e.seq, doc->arena.size(), e.payload.size(), op_id});
      doc->arena.insert(doc->arena.end(), e.payload.begin(), e.payload.end());
    } else if (e.kind == EventKind::kSnapshot) {
      report_.snapshots += 1;
      report_.bytes += static_cast<int64_t>(e.payload.size());
      ObserveSnapshot(*doc, e);
    } else if (e.kind == EventKind::kVersion && e.title.empty()) {
      Violation(e.document_id, e.seq, "version_event", "a named version without a name");
    } else if ((e.kind == EventKind::kForkedTo || e.kind == EventKind::kForkedFrom) &&
               (e.title.empty() || e.version < 1)) {
      Violation(e.document_id, e.seq, "fork_event",
                std::string(eventlog::EventKindName(e.kind)) +
                    " without the other document or the seq forked at");
    } else if (e.kind == EventKind::kForkedFrom && e.seq != 2) {
      Violation(e.document_id, e.seq, "fork_event",
                "forked_from at seq " + std::to_string(e.seq) + ", not right after created");
    }
  }

  void ObserveSnapshot(DocState& doc, const Event& e) {
    if (e.version >= e.seq || e.version < 0) {
      Violation(e.document_id, e.seq, "snapshot_version",
                "snapshot version " + std::to_string(e.version) + " is not below its own seq " +
                    std::to_string(e.seq));
    }
    if (doc.have_snapshot && e.version < doc.snapshot_version) {
      Violation(e.document_id, e.seq, "snapshot_version",
                "snapshot version " + std::to_string(e.version) +
                    " is below the previous snapshot's " + std::to_string(doc.snapshot_version));
    }
    auto payload = std::make_shared<const Bytes>(e.payload);
    // The updates the snapshot covers leave the tail: the prefix doc.tail[0, covered).
    const size_t covered =
        static_cast<size_t>(std::find_if(doc.tail.begin(), doc.tail.end(),
                                         [&](const TailRef& t) { return t.seq > e.version; }) -
                            doc.tail.begin());
    const size_t kept_from =
        covered == doc.tail.size() ? doc.arena.size() : doc.tail[covered].offset;
    Bytes kept_bytes(doc.arena.begin() + static_cast<ptrdiff_t>(kept_from), doc.arena.end());
    if (CodecFor(doc.record.crdt).CanFold()) {
      Seq base_version = doc.have_snapshot ? doc.snapshot_version : 0;
      if (doc.last_gap_end > base_version) {
        report_.folds_unverifiable += 1;
      } else {
        report_.folds_checked += 1;
        FoldJob job;
        job.ticket = next_ticket_++;
        job.document_id = e.document_id;
        job.seq = e.seq;
        job.crdt = doc.record.crdt;
        job.base = doc.snapshot;
        job.snapshot = payload;
        job.updates.reserve(covered);
        for (size_t i = 0; i < covered; ++i) {
          job.updates.emplace_back(doc.tail[i].offset, doc.tail[i].size);
        }
        job.arena = std::move(doc.arena);  // the kept suffix was copied out above
        folds_.Submit(std::move(job));
      }
    }
    doc.have_snapshot = true;
    doc.snapshot_seq = e.seq;
    doc.snapshot_version = e.version;
    doc.snapshot = std::move(payload);
    doc.max_snapshot_version = std::max(doc.max_snapshot_version, e.version);
    doc.tail.erase(doc.tail.begin(), doc.tail.begin() + static_cast<ptrdiff_t>(covered));
    for (TailRef& t : doc.tail) t.offset -= kept_from;
    doc.arena = std::move(kept_bytes);
  }

  void CheckCatalog(std::span<const DocumentRecord> stored) {
    std::unordered_set<std::string_view> seen;
    for (const DocumentRecord& row : stored) {
      if (options_.document && row.id != *options_.document) continue;
      seen.insert(row.id);
      auto it = docs_.find(row.id);
      if (it == docs_.end()) {
        Violation(row.id, 0, "catalog_extra", "catalog row without events");
        continue;
      }
      const DocState& doc = it->second;
      DocumentRecord expected = doc.record;
      DocumentRecord actual = row;
      if (doc.missing > 0) {
        // Pruned updates still count in the stored row; the stream no longer has them.
        int64_t extra = actual.update_count - expected.update_count;
        if (extra >= 0 && extra <= doc.missing && actual.update_bytes >= expected.update_bytes) {
          expected.update_count = actual.update_count;
          expected.update_bytes = actual.update_bytes;
        }
      }
      if (!(expected == actual)) {
        Violation(row.id, 0, "catalog_mismatch",
                  "stored " + RecordToString(row) + " rebuilt " + RecordToString(doc.record));
      }
    }
    for (const auto& [id, doc] : docs_) {
      if (!seen.contains(id)) Violation(id, 0, "catalog_missing", "no catalog row");
    }
  }

  Status CheckHeadState(eventlog::Backend& backend) {
    // Tails still to compare: one cursor per document.
    struct Cursor {
      const DocumentId* id;
      const DocState* doc;
      Seq after;
      size_t next = 0;
    };
    std::vector<Cursor> cursors;
    for (const auto& [id, doc] : docs_) {
      auto snapshot = backend.ReadLatestSnapshot(id);
      if (!snapshot.ok()) return snapshot.status();
      const std::optional<Event>& s = *snapshot;
      if (s.has_value() != doc.have_snapshot ||
          (s && (s->seq != doc.snapshot_seq || s->version != doc.snapshot_version ||
                 !SameBytes(s->payload, *doc.snapshot)))) {
        Violation(
            id, 0, "head_state",
            "latest snapshot loads as " +
                (s ? "seq " + std::to_string(s->seq) + " version " + std::to_string(s->version) +
                         " (" + std::to_string(s->payload.size()) + " bytes)"
                   : std::string("none")) +
                ", the stream says " +
                (doc.have_snapshot ? "seq " + std::to_string(doc.snapshot_seq) + " version " +
                                         std::to_string(doc.snapshot_version) + " (" +
                                         std::to_string(doc.snapshot->size()) + " bytes)"
                                   : std::string("none")));
        continue;
      }
      cursors.push_back(Cursor{&id, &doc, doc.snapshot_version});
    }
    // The tails as the server loads them (ReadEvents after the snapshot's version), read in
    // rounds of one chunk per document: documents interleave in the log, so the chunks of one
    // round sit in nearby pages and each page is read about once.
    constexpr size_t kChunk = 64;
    while (!cursors.empty()) {
      size_t kept = 0;
      for (size_t c = 0; c < cursors.size(); ++c) {
        Cursor& cur = cursors[c];
        const DocState& doc = *cur.doc;
        auto events = backend.ReadEvents(*cur.id, cur.after, kChunk);
        if (!events.ok()) return events.status();
        bool done = events->size() < kChunk;
        for (const Event& e : *events) {
          cur.after = e.seq;
          if (e.kind != EventKind::kUpdate) continue;
          if (cur.next >= doc.tail.size()) {
            Violation(*cur.id, e.seq, "head_state", "the loaded tail has an extra update");
            done = true;
            break;
          }
          const TailRef& t = doc.tail[cur.next++];
          if (t.seq != e.seq || doc.op_ids.Get(t.op_id) != e.op_id ||
              !SameBytes(e.payload, ByteView(doc.arena.data() + t.offset, t.size))) {
            Violation(*cur.id, e.seq, "head_state",
                      "the loaded tail differs from the stream at seq " + std::to_string(t.seq));
            done = true;
            cur.next = doc.tail.size();  // reported once
            break;
          }
        }
        if (!done) {
          cursors[kept++] = cur;
        } else if (cur.next != doc.tail.size()) {
          Violation(
              *cur.id, doc.tail[cur.next].seq, "head_state",
              "the loaded tail lacks " + std::to_string(doc.tail.size() - cur.next) + " update(s)");
        }
      }
      cursors.resize(kept);
    }
    return Status::Ok();
  }

  ReplayReport Finish() {
    for (auto& [ticket, v] : folds_.Drain()) Keep(ticket, std::move(v));
    // Duplicates sorts every op_id of a document: the documents are shared out among this
    // thread and fold_threads helpers, then reported in the usual order.
    std::vector<const DocState*> order;
    order.reserve(docs_.size());
    for (const auto& [id, doc] : docs_) order.push_back(&doc);
    std::vector<std::vector<std::tuple<Seq, Seq, std::string>>> duplicates(order.size());
    std::atomic<size_t> next{0};
    auto find = [&] {
      for (size_t i; (i = next.fetch_add(1)) < order.size();) {
        duplicates[i] = order[i]->op_ids.Duplicates();
      }
    };
    std::vector<std::thread> helpers;
    for (int t = 0; t < FoldThreads(options_.fold_threads) && order.size() > 1; ++t) {
      helpers.emplace_back(find);
    }
    find();
    for (std::thread& t : helpers) t.join();
    size_t index = 0;
    for (const auto& [id, doc] : docs_) {
      for (const auto& [seq, first_seq, op_id] : duplicates[index++]) {
        Violation(id, seq, "duplicate_op_id",
                  "op_id \"" + op_id + "\" was used before, at seq " + std::to_string(first_seq));
      }
      // Retention may only remove updates that a snapshot covers.
      if (doc.missing > 0 && doc.last_gap_end > doc.max_snapshot_version) {
        Violation(id, doc.last_gap_end, "pruned_uncovered",
                  std::to_string(doc.missing) + " seq(s) missing, up to seq " +
                      std::to_string(doc.last_gap_end) + ", beyond the latest snapshot version " +
                      std::to_string(doc.max_snapshot_version));
      }
    }
    report_.documents = static_cast<int64_t>(docs_.size());
    report_.violations.reserve(kept_.size());
    for (auto& [ticket, v] : kept_) report_.violations.push_back(std::move(v));
    kept_.clear();
    return std::move(report_);
  }

  std::vector<DocumentRecord> Catalog() const {
    std::vector<DocumentRecord> out;
    out.reserve(docs_.size());
    for (const auto& [id, doc] : docs_) out.push_back(doc.record);
    std::sort(out.begin(), out.end(),
              [](const DocumentRecord& a, const DocumentRecord& b) { return a.id < b.id; });
    return out;
  }

 private:
  static int FoldThreads(int wanted) {
    if (wanted >= 0) return wanted;
    return std::thread::hardware_concurrency() > 1 ? 1 : 0;
  }

  void Violation(const DocumentId& id, Seq seq, std::string check, std::string message) {
    Keep(next_ticket_++, ReplayViolation{id, seq, std::move(check), std::move(message)});
  }

  // Counts `v` and keeps it when it is among the max_violations earliest tickets so far.
  void Keep(Ticket ticket, ReplayViolation v) {
    report_.violation_count += 1;
    if (options_.max_violations == 0) return;
    if (kept_.size() >= options_.max_violations) {
      if (ticket > kept_.back().first) return;
      kept_.pop_back();
    }
    auto at = std::upper_bound(kept_.begin(), kept_.end(), ticket,
                               [](Ticket t, const auto& k) { return t < k.first; });
    kept_.emplace(at, ticket, std::move(v));
  }

  ReplayOptions options_;
  ReplayReport report_;
  Ticket next_ticket_ = 0;
  std::vector<std::pair<Ticket, ReplayViolation>> kept_;  // ordered by ticket
  std::unordered_map<DocumentId, DocState> docs_;
  DocState* last_doc_ = nullptr;  // pointers into docs_ stay valid across rehashing
  const DocumentId* last_id_ = nullptr;
  FoldPool folds_;  // last: its threads stop before anything else goes
};

ReplayChecker::ReplayChecker(ReplayOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
ReplayChecker::~ReplayChecker() = default;
void ReplayChecker::Observe(const Event& event) { impl_->Observe(event); }
void ReplayChecker::CheckCatalog(std::span<const DocumentRecord> stored) {
  impl_->CheckCatalog(stored);
}
Status ReplayChecker::CheckHeadState(eventlog::Backend& backend) {
  return impl_->CheckHeadState(backend);
}
ReplayReport ReplayChecker::Finish() { return impl_->Finish(); }
std::vector<DocumentRecord> ReplayChecker::Catalog() const { return impl_->Catalog(); }

Result<ReplayReport> Replay(eventlog::Backend& backend, const ReplayOptions& options) {
  auto start = std::chrono::steady_clock::now();
  ReplayChecker checker(options);
  Status status = backend.ForEachEvent([&](const Event& e) {
    if (!options.document || e.document_id == *options.document) checker.Observe(e);
    return Status::Ok();
  });
  if (!status.ok()) return status;
  auto since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                                t)
        .count();
  };
  int64_t scan_ns = since(start);
  auto catalog = backend.ReadCatalog();
  if (!catalog.ok()) return catalog.status();
  checker.CheckCatalog(*catalog);
  auto head_start = std::chrono::steady_clock::now();
  QUIRE_RETURN_IF_ERROR(checker.CheckHeadState(backend));
  int64_t head_ns = since(head_start);
  ReplayReport report = checker.Finish();
  report.elapsed_ns = since(start);
  report.scan_ns = scan_ns;
  report.head_check_ns = head_ns;
  return report;
}

}  // namespace quire::projection
