#include "io/yws_endpoint.h"

#include <uv.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "core/base64.h"
#include "core/ids.h"
#include "core/yjs/protocol.h"
#include "core/yjs/update.h"
#include "io/json_protocol.h"

namespace quire::io {
namespace {

using projection::HeadState;

constexpr std::string_view kPathPrefix = "/yjs/";

// An update that changes nothing: no structs, empty delete set (what a client with nothing
// new sends as its step 2).
bool IsEmptyUpdate(ByteView update) {
  return update.size() == 2 && update[0] == 0 && update[1] == 0;
}

// State of the y-websocket endpoint shared by its connections.
struct YwsCore {
  explicit YwsCore(Metrics& metrics)
      : yws_connections(
            metrics.gauge("quire_yws_connections", "Open y-websocket (/yjs) connections")),
        documents_created(metrics.counter("quire_yws_documents_created_total",
                                          "Documents created by a y-websocket connect")) {}

  Gauge& yws_connections;
  Counter& documents_created;
};

// One y-websocket client of one document.
//
// Protocol phases: kStarting (creating/checking the document), kJoining (room member; the head
// state is loading; relays and the client's messages are held), kOpen. The socket's closing
// and closed phases are WsConnection's.
class YwsConnection final : public WsConnection, public RoomMember {
 public:
  YwsConnection(std::shared_ptr<WsHub> hub, std::shared_ptr<YwsCore> core, Transport& transport,
                DocumentId id)
      : WsConnection(
            hub, transport,
            WsConnectionOptions{static_cast<uint64_t>(hub->config().max_payload_bytes) + 1024,
                                &core->yws_connections}),
        core_(std::move(core)),
        id_(std::move(id)),
        actor_("yjs-" + NewUuid().substr(0, 8)) {
    SetLogIdentity(id_, actor_);
  }

  ~YwsConnection() override { Leave(); }

  // --- WsConnection ---
  void OnStart() override {
    // With access control on, the token's user is the author of this connection's updates.
    if (!principal().user_id.empty()) {
      actor_ = principal().user_id;
      SetLogIdentity(id_, actor_);
    }
    QUIRE_LOG(hub_->logger(), kInfo, "yws_connected")
        .Str("docId", id_)
        .Str("actor", actor_)
        .Str("peer", transport_.peer());
    const projection::DocumentRecord* record = hub_->docs().Find(id_);
    if (record == nullptr) {
      if (!hub_->config().auto_create_documents) {
        Deny("no such document");
        return;
      }
      projection::CreateCommand create;
      create.id = id_;
      create.title = id_;
      create.crdt = CrdtKind::kYjs;
      create.owner = principal().user_id.empty() ? actor_ : principal().user_id;
      hub_->docs().Create(std::move(create), [weak = Weak()](Result<projection::DocumentRecord> r) {
        if (auto self = weak.lock()) self->OnCreated(std::move(r));
      });
      return;
    }
    CheckAndJoin();
  }

  void OnClosing() override { Leave(); }

  void OnText(std::string_view) override {
    Fail(kWsCloseInvalidData, "y-websocket messages are binary");
  }

  void OnBinary(ByteView data) override {
    if (yphase_ != YPhase::kOpen) {
      held_bytes_ += data.size();
      held_in_.emplace_back(data.begin(), data.end());
      if (held_bytes_ > HardCap()) SlowConsumer();
      return;
    }
    HandleMessage(data);
  }

  // --- RoomMember ---
  void DeliverUpdate(Seq, const SharedFrame&) override {}
  void DeliverPresence(const SharedFrame&) override {}
  bool wants_update_bytes() const override { return true; }
  void DeliverUpdateBytes(Seq seq, const SharedBytes& update) override {
    if (!open()) return;
    if (yphase_ == YPhase::kJoining) {
      // Not counted against the slow-consumer cap: LoadHead answers with a state that holds
      // every event committed before its callback, so each relay that arrives here is already
      // in the state about to be sent and is dropped then (seq <= head_seq_). Counting them
      // closed healthy newcomers that joined while more than HardCap() of appends were in
      // flight. Their memory is bounded by what commits during the load (which the head's
      // tail holds anyway); what is sent after the state goes through Admit as usual.
      pending_relays_.emplace_back(seq, update);
      return;
    }
    if (yphase_ != YPhase::kOpen || seq <= head_seq_) return;
    SendBinary(yjs::EncodeSyncUpdate(*update));
  }

  // Awareness of this document (from any member, this one included); may be dropped. While
  // joining it is skipped: the newcomer gets every state once the state was sent.
  void DeliverAwareness(const SharedBytes& update) override {
    if (!open() || yphase_ != YPhase::kOpen) return;
    SendBinary(yjs::EncodeAwarenessMessage(*update), Delivery::kDroppable);
  }

  bool in_room() const { return room_ != nullptr; }
  void Settled(size_t bytes) { AppendSettled(bytes); }

  // Closes after a failure the client cannot fix by repeating itself.
  void Fail(uint16_t code, std::string_view reason) {
    QUIRE_LOG(hub_->logger(), kInfo, "yws_bad_message")
        .Str("docId", id_)
        .Str("actor", actor_)
        .Int("code", code)
        .Str("reason", reason);
    BeginClose(code, reason);
  }

 private:
  enum class YPhase { kStarting, kJoining, kOpen };

  std::weak_ptr<YwsConnection> Weak() { return SharedAs<YwsConnection>(); }

  void OnCreated(Result<projection::DocumentRecord> r) {
    if (!open() || yphase_ != YPhase::kStarting) return;
    if (r.ok()) {
      core_->documents_created.Inc();
      QUIRE_LOG(hub_->logger(), kInfo, "yws_document_created").Str("docId", id_);
    } else if (r.status().code() != StatusCode::kAlreadyExists) {
      // Another connection may have created it meanwhile; anything else is a real failure.
      QUIRE_LOG(hub_->logger(), kError, "yws_create_failed")
          .Str("docId", id_)
          .Str("error", r.status().ToString());
      BeginClose(kWsCloseInternalError, "cannot create the document");
      return;
    }
    CheckAndJoin();
  }

  void CheckAndJoin() {
    const projection::DocumentRecord* record = hub_->docs().Find(id_);
    if (record == nullptr) return Deny("no such document");
    if (record->deleted()) return Deny("the document is deleted");
    if (record->crdt != CrdtKind::kYjs) return Deny("not a Yjs document");
    Role role = hub_->access().RoleFor(principal(), id_);
    if (role == Role::kNone) return Deny("permission denied");
    // The upgrade checked the capacity, but a document created on connect is opened only now:
    // connects to other new documents may have taken the last slots meanwhile.
    if (hub_->AtCapacity(id_)) {
      QUIRE_LOG(hub_->logger(), kInfo, "yws_too_many_documents").Str("docId", id_);
      BeginClose(kWsCloseTryAgainLater, "too many documents open, retry later");
      return;
    }
    TrackDocument(id_, role);
    yphase_ = YPhase::kJoining;
    room_ = JoinRoom(id_, this);
    hub_->docs().LoadHead(id_, [weak = Weak()](Result<HeadState> head) {
      if (auto self = weak.lock()) self->OnHeadLoaded(std::move(head));
    });
  }

  void Deny(std::string_view reason) {
    QUIRE_LOG(hub_->logger(), kInfo, "yws_denied").Str("docId", id_).Str("reason", reason);
    SendBinary(yjs::EncodeAuthPermissionDenied(reason));
    BeginClose(kWsClosePolicyViolation, reason);
  }

  void OnHeadLoaded(Result<HeadState> head) {
    if (!open() || yphase_ != YPhase::kJoining) return;
    auto self = shared_from_this();
    // The fold and its state vector are shared with other joins at the same head.
    Result<std::shared_ptr<const Bytes>> sv =
        head.ok() ? hub_->folded_heads.StateVector(id_, *head)
                  : Result<std::shared_ptr<const Bytes>>(head.status());
    if (!sv.ok()) {
      QUIRE_LOG(hub_->logger(), kError, "yws_state_load_failed")
          .Str("docId", id_)
          .Str("error", sv.status().ToString());
      BeginClose(kWsCloseInternalError, "cannot load the document state");
      return;
    }
    head_seq_ = head->head_seq;
    yphase_ = YPhase::kOpen;
    SendBinary(yjs::EncodeSyncStep1(**sv));
    if (room_ && room_->awareness_count() > 0) {
      SendBinary(yjs::EncodeAwarenessMessage(room_->AwarenessUpdate()));
    }
    for (const auto& [seq, bytes] : pending_relays_) {
      if (seq > head_seq_) SendBinary(yjs::EncodeSyncUpdate(*bytes));
    }
    pending_relays_.clear();
    auto held = std::move(held_in_);
    held_in_.clear();
    held_bytes_ = 0;
    for (const Bytes& m : held) {
      if (!open()) break;
      HandleMessage(m);
    }
  }

  void HandleMessage(ByteView data) {
    auto decoded = yjs::DecodeMessage(data);
    if (!decoded.ok()) return Fail(kWsCloseInvalidData, "malformed message");
    const yjs::Message& m = *decoded;
    switch (m.type) {
      case yjs::MessageType::kSync:
        if (m.sync_type == yjs::SyncType::kStep1) return AnswerStep1(m.payload);
        if (IsEmptyUpdate(m.payload)) return;
        // y-protocols' read-only semantics: a viewer's step 2 and updates are ignored.
        if (RoleOn(id_) < Role::kEditor) {
          QUIRE_LOG(hub_->logger(), kDebug, "yws_write_dropped")
              .Str("docId", id_)
              .Str("actor", actor_)
              .Str("role", RoleName(RoleOn(id_)));
          return;
        }
        return SubmitUpdate(Bytes(m.payload.begin(), m.payload.end()));
      case yjs::MessageType::kAwareness:
        // Relayed to every binary member (this one too, as y-websocket's own server does) and
        // bridged to JSON members as presence.
        if (!room_ || !room_->ApplyAwareness(this, m.payload)) {
          return Fail(kWsCloseInvalidData, "malformed awareness update");
        }
        return;
      case yjs::MessageType::kQueryAwareness:
        if (room_) {
          SendBinary(yjs::EncodeAwarenessMessage(room_->AwarenessUpdate()), Delivery::kDroppable);
        }
        return;
      case yjs::MessageType::kAuth:
        return;  // clients have nothing to say here
    }
  }

  void AnswerStep1(ByteView state_vector) {
    if (!yjs::DecodeStateVector(state_vector).ok()) {
      return Fail(kWsCloseInvalidData, "malformed state vector");
    }
    hub_->docs().LoadHead(
        id_, [weak = Weak(),
              sv = Bytes(state_vector.begin(), state_vector.end())](Result<HeadState> head) {
          auto self = weak.lock();
          if (!self || !self->open() || self->yphase_ != YPhase::kOpen) return;
          Result<std::shared_ptr<const Bytes>> state =
              head.ok() ? self->hub_->folded_heads.State(self->id_, *head)
                        : Result<std::shared_ptr<const Bytes>>(head.status());
          Result<Bytes> diff =
              state.ok() ? yjs::DiffUpdate(**state, ByteView(sv)) : Result<Bytes>(state.status());
          if (!diff.ok()) {
            QUIRE_LOG(self->hub_->logger(), kError, "yws_step2_failed")
                .Str("docId", self->id_)
                .Str("error", diff.status().ToString());
            self->BeginClose(kWsCloseInternalError, "cannot compute the state");
            return;
          }
          self->SendBinary(yjs::EncodeSyncStep2(*diff));
        });
  }

  void SubmitUpdate(Bytes update) {
    if (static_cast<int64_t>(update.size()) > hub_->config().max_payload_bytes) {
      hub_->updates_rejected.Inc();
      return Fail(kWsCloseTooBig, "update too large");
    }
    ++room_->pending_appends;
    size_t bytes = update.size();
    AppendStarted(bytes);
    auto shared = std::make_shared<const Bytes>(update);
    // Time-ordered, so that a document's ids follow each other in the (document, op_id) index:
    // with random ones a SQLite commit wrote ~1.5x the pages (README, "afternoon").
    OpId op_id = "yws-" + NewTimeOrderedUuid();
    hub_->docs().AppendUpdate(
        id_, op_id, actor_, std::move(update),
        [hub = hub_, room = room_, weak = Weak(), shared, op_id, bytes,
         actor = actor_](Result<eventlog::AppendResult> result) {
          --room->pending_appends;
          auto sender = weak.lock();
          const RoomMember* from = (sender && sender->in_room()) ? sender.get() : nullptr;
          if (result.ok()) {
            if (!result->duplicate) {
              auto frame = std::make_shared<const std::string>(
                  ws::RemoteUpdateMessage(result->seq, Base64Encode(*shared), actor, op_id));
              room->RelayUpdate(from, result->seq, frame, shared);
              hub->updates_accepted.Inc();
              QUIRE_LOG(hub->logger(), kDebug, "update_committed")
                  .Str("docId", room->document_id())
                  .Str("actor", actor)
                  .Str("opId", op_id)
                  .Int("seq", result->seq)
                  .Int("bytes", static_cast<int64_t>(shared->size()));
            }
          } else {
            hub->updates_rejected.Inc();
            bool storage = IsStorageFailure(result.status());
            if (storage) hub->storage_errors.Inc();
            LogLine(&hub->logger(), storage ? LogLevel::kError : LogLevel::kInfo, "update_rejected")
                .Str("docId", room->document_id())
                .Str("actor", actor)
                .Str("opId", op_id)
                .Str("error", result.status().ToString());
            // The client keeps its edits: after a storage failure it reconnects and its
            // step 2 carries them again. An invalid update cannot be repaired by resending.
            if (sender) {
              sender->BeginClose(storage ? kWsCloseTryAgainLater : kWsCloseInvalidData,
                                 storage ? "storage unavailable" : "update refused");
            }
          }
          if (sender) sender->Settled(bytes);
          hub->MaybeReleaseRoom(room);
        });
  }

  // Leaves the room; the room removes the awareness states this connection owned and tells
  // the others.
  void Leave() {
    if (!room_) return;
    auto room = std::move(room_);
    room_.reset();
    LeaveRoom(room, this, nullptr);
  }

  std::shared_ptr<YwsCore> core_;
  DocumentId id_;
  ActorId actor_;

  YPhase yphase_ = YPhase::kStarting;
  std::shared_ptr<Room> room_;
  Seq head_seq_ = 0;  // the seq the initial state covered
  std::vector<std::pair<Seq, SharedBytes>> pending_relays_;
  std::vector<Bytes> held_in_;  // client messages received before the state was sent
  size_t held_bytes_ = 0;
};

class YwsEndpoint final : public WsEndpoint {
 public:
  explicit YwsEndpoint(std::shared_ptr<WsHub> hub)
      : hub_(std::move(hub)), core_(std::make_shared<YwsCore>(hub_->metrics())) {}

  bool CheckPath(std::string_view path, HttpResponse& reject) override {
    if (!IsValidDocumentId(DocumentId(path.substr(kPathPrefix.size())))) {
      reject = HttpResponse::Error(404, "NOT_FOUND", "document ids match [A-Za-z0-9._-]{1,128}");
      return false;
    }
    return true;
  }

  std::shared_ptr<WsConnection> Accept(const WsUpgrade& upgrade, Transport& transport,
                                       HttpResponse& reject) override {
    DocumentId id(upgrade.path.substr(kPathPrefix.size()));
    // An existing document the caller has no role on is answered as unknown (404). A missing
    // one is created on connect (with the caller as its owner) when auto-create is on.
    const projection::DocumentRecord* record = hub_->docs().Find(id);
    if (record != nullptr && hub_->access().RoleFor(upgrade.principal, id) == Role::kNone) {
      reject = HttpResponse::Error(404, "NOT_FOUND", "no such document");
      return nullptr;
    }
    if (hub_->AtCapacity(id)) {
      reject = HttpResponse::Error(503, "TOO_MANY_DOCUMENTS",
                                   "the server has its maximum of documents open; retry later");
      return nullptr;
    }
    auto connection = std::make_shared<YwsConnection>(hub_, core_, transport, std::move(id));
    connection->set_principal(upgrade.principal);
    return connection;
  }

 private:
  std::shared_ptr<WsHub> hub_;
  std::shared_ptr<YwsCore> core_;
};

}  // namespace

bool IsYwsPath(std::string_view path) { return path.starts_with(kPathPrefix); }

std::unique_ptr<WsEndpoint> MakeYwsEndpoint(std::shared_ptr<WsHub> hub) {
  return std::make_unique<YwsEndpoint>(std::move(hub));
}

}  // namespace quire::io
