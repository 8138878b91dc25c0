// The memory backend: vectors and maps, for tests and for running without a disk. Nothing
// survives the process. Same semantics as the SQLite backend (see backend.h), including
// idempotency after PruneUpdates (the op_id index keeps pruned updates).
#include <algorithm>
#include <map>
#include <unordered_map>

#include "eventlog/internal/backends.h"

namespace quire::eventlog::internal {
namespace {

class MemoryBackend final : public Backend {
 public:
  Status CommitBatch(std::span<const AppendRequest> batch, std::span<AppendResult> results,
                     std::span<Status> statuses) override {
    if (results.size() != batch.size() || statuses.size() != batch.size()) {
      return Status::Internal("CommitBatch: results/statuses size differs from the batch");
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      const AppendRequest& request = batch[i];
      results[i] = AppendResult{};
      statuses[i] = ValidateRequestShape(request);
      if (!statuses[i].ok()) continue;
      auto it = docs_.find(request.document_id);
      if (request.kind == EventKind::kCreated) {
        if (it != docs_.end()) {
          statuses[i] = Status::AlreadyExists("document " + request.document_id + " exists");
          continue;
        }
        it = docs_.emplace(request.document_id, Doc{}).first;
      } else if (it == docs_.end()) {
        statuses[i] = Status::NotFound("document " + request.document_id + " does not exist");
        continue;
      }
      Doc& doc = it->second;
      if (!request.op_id.empty()) {
        auto op = doc.op_seqs.find(request.op_id);
        if (op != doc.op_seqs.end()) {
          results[i] = AppendResult{op->second, true};
          continue;
        }
      }
      if (request.kind == EventKind::kSnapshot && request.version > doc.next_seq - 1) {
        statuses[i] = Status::InvalidArgument("snapshot version " +
                                              std::to_string(request.version) +
                                              " is past the head of " + request.document_id);
        continue;
      }
      Event event = request;
      event.seq = doc.next_seq++;
      if (!event.op_id.empty()) doc.op_seqs.emplace(event.op_id, event.seq);
      Apply(doc.record, event);
      doc.events.push_back(std::move(event));
      results[i] = AppendResult{doc.next_seq - 1, false};
    }
    return Status::Ok();
  }

  Result<std::vector<Event>> ReadEvents(const DocumentId& id, Seq after_seq,
                                        size_t limit) override {
    std::vector<Event> out;
    auto it = docs_.find(id);
    if (it == docs_.end()) return out;
    const auto& events = it->second.events;
    auto first = std::upper_bound(events.begin(), events.end(), after_seq,
                                  [](Seq s, const Event& e) { return s < e.seq; });
    for (; first != events.end() && out.size() < limit; ++first) out.push_back(*first);
    return out;
  }

  Result<std::optional<Event>> ReadLatestSnapshot(const DocumentId& id) override {
    auto it = docs_.find(id);
    if (it == docs_.end()) return std::optional<Event>();
    const auto& events = it->second.events;
    for (auto e = events.rbegin(); e != events.rend(); ++e) {
      if (e->kind == EventKind::kSnapshot) return std::optional<Event>(*e);
    }
    return std::optional<Event>();
  }

  Result<std::vector<DocumentRecord>> ReadCatalog() override {
    std::vector<DocumentRecord> out;
    out.reserve(docs_.size());
    for (const auto& [id, doc] : docs_) out.push_back(doc.record);
    return out;
  }

  Status ForEachEvent(const std::function<Status(const Event&)>& visit) override {
    for (const auto& [id, doc] : docs_) {
      for (const Event& e : doc.events) QUIRE_RETURN_IF_ERROR(visit(e));
    }
    return Status::Ok();
  }

  Status PruneUpdates(const DocumentId& id, Seq up_to_seq) override {
    auto it = docs_.find(id);
    if (it == docs_.end()) return Status::NotFound("document " + id + " does not exist");
    std::erase_if(it->second.events, [up_to_seq](const Event& e) {
      return e.kind == EventKind::kUpdate && e.seq <= up_to_seq;
    });
    return Status::Ok();
  }

  Status Recover() override { return Status::Ok(); }

  std::string Describe() const override { return "memory://"; }

 private:
  struct Doc {
    std::vector<Event> events;  // seq order
    std::unordered_map<OpId, Seq> op_seqs;
    DocumentRecord record;
    Seq next_seq = 1;
  };
  std::map<DocumentId, Doc> docs_;  // ordered: ReadCatalog and ForEachEvent go by id
};

}  // namespace

std::unique_ptr<Backend> NewMemoryBackend() { return std::make_unique<MemoryBackend>(); }

}  // namespace quire::eventlog::internal
