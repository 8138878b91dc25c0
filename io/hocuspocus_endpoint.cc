#include "io/hocuspocus_endpoint.h"

#include <uv.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/base64.h"
#include "core/ids.h"
#include "core/yjs/hocuspocus.h"
#include "core/yjs/protocol.h"
#include "core/yjs/update.h"
#include "io/internal/ws_timer.h"
#include "io/json_protocol.h"

namespace quire::io {
namespace {

namespace hp = yjs::hocuspocus;
using internal::FoldedHeadCache;
using projection::HeadState;

constexpr std::string_view kPath = "/hocuspocus";

// Messages held for one document before it is open (the provider sends its step 1 and
// awareness right after its token, before the answer): at most this many, and at most the
// connection's HardCap() in bytes over all documents.
constexpr size_t kMaxHeldMessages = 1000;
// Documents of one connection that are not open (awaiting authentication, being created, or
// denied and remembered so that what the provider still sends for them is dropped).
constexpr size_t kMaxUnopenedDocuments = 100;
// Roles and token expiry are re-checked this often while access control is on.
constexpr uint64_t kRoleCheckMs = 1000;

// An update that changes nothing: no structs, empty delete set.
bool IsEmptyUpdate(ByteView update) {
  return update.size() == 2 && update[0] == 0 && update[1] == 0;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class HpConnection;

// One document of one connection (one address). Owned by its connection's map through a
// shared_ptr; asynchronous completions hold weak references and check `ended` (set when the
// document session is over: the object may outlive it). A Room member while open.
struct HpSession final : public RoomMember {
  enum class Phase {
    kPending,      // no token yet: messages are held
    kAuthorizing,  // token accepted, the document is being created: messages are held
    kDenied,       // permission denied: messages are dropped until a new token
    kOpen,         // authenticated and a member of the document's Room
  };

  HpSession(HpConnection* c, std::string a, DocumentId d)
      : conn(c), address(std::move(a)), id(std::move(d)) {}

  // --- RoomMember ---
  void DeliverUpdate(Seq, const SharedFrame&) override {}
  void DeliverPresence(const SharedFrame&) override {}
  bool wants_update_bytes() const override { return true; }
  void DeliverUpdateBytes(Seq seq, const SharedBytes& update) override;
  void DeliverAwareness(const SharedBytes& update) override;

  HpConnection* conn;   // the owner; valid while !ended
  std::string address;  // as the provider sent it; every reply carries it
  DocumentId id;
  Phase phase = Phase::kPending;
  bool ended = false;
  Principal principal;
  Role role = Role::kNone;
  ActorId actor;
  std::shared_ptr<Room> room;  // while open
  std::vector<Bytes> held;
  // Answers to sync messages (the step 1 answer, SyncStatus) in the order the messages
  // arrived, as @hocuspocus/server sends them: nullopt while one is being computed. A vector,
  // not a std::deque: libstdc++'s deque allocates 576 bytes even when empty, a third of what an
  // idle session costs (S5).
  std::vector<std::optional<std::vector<Bytes>>> replies;
  uint64_t replies_base = 0;  // the ticket of replies.front()

  bool readonly() const { return role == Role::kViewer; }
};

// State of the endpoint shared by its connections.
struct HpCore {
  explicit HpCore(Metrics& metrics)
      : connections(metrics.gauge("quire_hocuspocus_connections",
                                  "Open Hocuspocus (/hocuspocus) connections")),
        documents(metrics.gauge("quire_hocuspocus_documents",
                                "Documents open on Hocuspocus connections (one per address)")),
        documents_created(metrics.counter("quire_hocuspocus_documents_created_total",
                                          "Documents created by a Hocuspocus authentication")),
        denied(metrics.counter("quire_hocuspocus_denied_total",
                               "Hocuspocus document authentications answered PermissionDenied")) {}

  Gauge& connections;
  Gauge& documents;
  Counter& documents_created;
  Counter& denied;
};

// One Hocuspocus socket: any number of document sessions.
class HpConnection final : public WsConnection {
 public:
  HpConnection(std::shared_ptr<WsHub> hub, std::shared_ptr<HpCore> core, Transport& transport)
      : WsConnection(
            hub, transport,
            WsConnectionOptions{static_cast<uint64_t>(hub->config().max_payload_bytes) + 1024,
                                &core->connections}),
        core_(std::move(core)),
        actor_("hp-" + NewUuid().substr(0, 8)),
        role_timer_(hub->loop(), &HpConnection::OnRoleTimer, this) {
    SetLogIdentity("", actor_);
  }

  ~HpConnection() override { EndAll(); }

  // --- WsConnection ---
  void OnStart() override {
    QUIRE_LOG(hub_->logger(), kInfo, "hocuspocus_connected")
        .Str("actor", actor_)
        .Str("peer", transport_.peer());
    if (hub_->access().enabled()) role_timer_.Start(kRoleCheckMs, kRoleCheckMs);
  }

  void OnClosing() override {
    role_timer_.Stop();
    EndAll();
  }

  void OnText(std::string_view) override {
    Fail(kWsCloseInvalidData, "Hocuspocus messages are binary", "text frame");
  }

  void OnBinary(ByteView data) override { HandleFrame(data); }

  // A committed update of `s`'s document from another member.
  void Relay(HpSession& s, const Bytes& update) {
    if (s.ended || s.phase != HpSession::Phase::kOpen || !open()) return;
    SendBinary(hp::EncodeSyncUpdate(s.address, update));
  }

  // Awareness of `s`'s document (its address is put in front); may be dropped.
  void SendAwareness(HpSession& s, ByteView awareness_update) {
    if (s.ended || s.phase != HpSession::Phase::kOpen || !open()) return;
    SendBinary(hp::EncodeAwareness(s.address, awareness_update), Delivery::kDroppable);
  }

 private:
  using Phase = HpSession::Phase;

  std::weak_ptr<HpConnection> Weak() { return SharedAs<HpConnection>(); }

  // Closes after a failure the client cannot fix by repeating itself.
  void Fail(uint16_t code, std::string_view reason, std::string_view detail) {
    QUIRE_LOG(hub_->logger(), kInfo, "hocuspocus_bad_message")
        .Str("actor", actor_)
        .Int("code", code)
        .Str("reason", reason)
        .Str("detail", detail);
    BeginClose(code, reason);
  }

  void HandleFrame(ByteView frame) {
    auto decoded = hp::Decode(frame, hp::Direction::kToServer);
    if (!decoded.ok()) {
      return Fail(kWsCloseInvalidData, "malformed Hocuspocus message", decoded.status().message());
    }
    const hp::Message& m = *decoded;
    if (m.type == hp::Type::kPing) {
      SendBinary(hp::EncodePong());
      return;
    }
    if (m.type == hp::Type::kPong) return;
    std::shared_ptr<HpSession> s = Find(m.address, m.document);
    if (!s) {
      if (!IsValidDocumentId(m.document)) {
        // Nothing is kept for a name that can never be a document.
        if (m.type == hp::Type::kAuth) {
          core_->denied.Inc();
          SendBinary(
              hp::EncodePermissionDenied(m.address, "document names match [A-Za-z0-9._-]{1,128}"));
        }
        return;
      }
      if (UnopenedCount() >= kMaxUnopenedDocuments) {
        return Fail(kWsClosePolicyViolation, "too many documents awaiting authentication",
                    m.document);
      }
      s = std::make_shared<HpSession>(this, std::string(m.address), DocumentId(m.document));
      s->actor = actor_;
      sessions_.emplace(s->address, s);
    }
    switch (s->phase) {
      case Phase::kPending:
        if (m.type == hp::Type::kAuth && m.auth_type == hp::AuthType::kToken) {
          return Authorize(s, m.token);
        }
        return Hold(*s, frame);
      case Phase::kAuthorizing:
        return Hold(*s, frame);
      case Phase::kDenied:
        if (m.type == hp::Type::kAuth && m.auth_type == hp::AuthType::kToken) {
          s->phase = Phase::kPending;
          return Authorize(s, m.token);
        }
        return;  // what a denied provider still sends (its edits, awareness) is dropped
      case Phase::kOpen:
        return Dispatch(s, m);
    }
  }

  // The session of `address`, else (as @hocuspocus/server) of the plain document name.
  std::shared_ptr<HpSession> Find(std::string_view address, std::string_view document) {
    auto it = sessions_.find(address);
    if (it == sessions_.end() && address.size() != document.size()) it = sessions_.find(document);
    return it == sessions_.end() ? nullptr : it->second;
  }

  size_t UnopenedCount() const {
    size_t n = 0;
    for (const auto& [address, s] : sessions_) n += s->phase != Phase::kOpen ? 1 : 0;
    return n;
  }

  void Hold(HpSession& s, ByteView frame) {
    held_bytes_ += frame.size();
    s.held.emplace_back(frame.begin(), frame.end());
    if (s.held.size() > kMaxHeldMessages || held_bytes_ > HardCap()) {
      Fail(kWsClosePolicyViolation, "too many messages before authentication", s.id);
    }
  }

  void DropHeld(HpSession& s) {
    for (const Bytes& b : s.held) held_bytes_ -= b.size();
    s.held.clear();
  }

  // --- Authentication ---

  void Authorize(const std::shared_ptr<HpSession>& s, std::string_view token) {
    std::string why;
    std::optional<Principal> principal = hub_->access().Authenticate(token, &why);
    if (!principal) return Deny(*s, why.empty() ? "invalid token" : why);
    s->principal = std::move(*principal);
    if (!s->principal.user_id.empty()) s->actor = s->principal.user_id;
    s->phase = Phase::kAuthorizing;
    if (hub_->docs().Find(s->id) != nullptr) return Admit(s);
    if (!hub_->config().auto_create_documents) return Deny(*s, "document not found");
    projection::CreateCommand create;
    create.id = s->id;
    create.title = s->id;
    create.crdt = CrdtKind::kYjs;
    create.owner = s->actor;
    hub_->docs().Create(std::move(create), [weak = Weak(), ws = std::weak_ptr<HpSession>(s)](
                                               Result<projection::DocumentRecord> r) {
      auto self = weak.lock();
      auto session = ws.lock();
      if (!self || !session || session->ended || !self->open() ||
          session->phase != Phase::kAuthorizing) {
        return;
      }
      self->OnCreated(session, std::move(r));
    });
  }

  void OnCreated(const std::shared_ptr<HpSession>& s, Result<projection::DocumentRecord> r) {
    if (r.ok()) {
      core_->documents_created.Inc();
      QUIRE_LOG(hub_->logger(), kInfo, "hocuspocus_document_created").Str("docId", s->id);
    } else if (r.status().code() != StatusCode::kAlreadyExists) {
      // Another connection may have created it meanwhile; anything else is a real failure.
      QUIRE_LOG(hub_->logger(), kError, "hocuspocus_create_failed")
          .Str("docId", s->id)
          .Str("error", r.status().ToString());
      return Deny(*s, "cannot create the document");
    }
    Admit(s);
  }

  // The document exists: decide the role and open the session.
  void Admit(const std::shared_ptr<HpSession>& s) {
    const projection::DocumentRecord* record = hub_->docs().Find(s->id);
    if (record == nullptr) return Deny(*s, "document not found");
    if (record->deleted()) return Deny(*s, "document deleted");
    if (record->crdt != CrdtKind::kYjs) return Deny(*s, "not a Yjs document");
    Role role = hub_->access().RoleFor(s->principal, s->id);
    if (role == Role::kNone) return Deny(*s, "permission-denied");
    if (hub_->AtCapacity(s->id)) return Deny(*s, "too many documents open, retry later");
    s->role = role;
    SendBinary(hp::EncodeAuthenticated(s->address,
                                       s->readonly() ? hp::kScopeReadOnly : hp::kScopeReadWrite));
    s->phase = Phase::kOpen;
    s->room = JoinRoom(s->id, s.get(), s->principal);
    core_->documents.Add(1);
    QUIRE_LOG(hub_->logger(), kInfo, "hocuspocus_document_open")
        .Str("docId", s->id)
        .Str("actor", s->actor)
        .Str("role", RoleName(role));
    // As @hocuspocus/server: the current awareness on joining (the provider sends its step 1
    // itself and gets the server's step 1 with the answer). The room's awareness is every
    // protocol's: y-websocket clients' states and JSON members' presence are in it.
    if (s->room->awareness_count() > 0) SendAwareness(*s, s->room->AwarenessUpdate());
    auto held = std::move(s->held);
    for (const Bytes& b : held) held_bytes_ -= b.size();
    s->held.clear();
    for (const Bytes& frame : held) {
      if (s->ended || !open()) break;
      auto m = hp::Decode(frame, hp::Direction::kToServer);
      if (m.ok()) Dispatch(s, *m);  // every held frame decoded once already
    }
  }

  void Deny(HpSession& s, std::string_view reason) {
    core_->denied.Inc();
    QUIRE_LOG(hub_->logger(), kInfo, "hocuspocus_denied")
        .Str("docId", s.id)
        .Str("actor", s.actor)
        .Str("reason", reason);
    DropHeld(s);
    s.phase = Phase::kDenied;
    SendBinary(hp::EncodePermissionDenied(s.address, reason));
  }

  // --- Messages of an open document ---

  void Dispatch(const std::shared_ptr<HpSession>& s, const hp::Message& m) {
    switch (m.type) {
      case hp::Type::kSync:
      case hp::Type::kSyncReply:
        if (m.sync_type == yjs::SyncType::kStep1) return AnswerStep1(s, m.payload);
        return SubmitUpdate(s, m.sync_type, m.payload);
      case hp::Type::kAwareness:
        // Applied by clock in the room (a higher clock wins and makes this session the owner,
        // whose end removes the state) and echoed to every binary member, this one included.
        if (!s->room->ApplyAwareness(s.get(), m.payload)) {
          Fail(kWsCloseInvalidData, "malformed awareness update", s->id);
        }
        return;
      case hp::Type::kQueryAwareness:
        return SendAwareness(*s, s->room->AwarenessUpdate());
      case hp::Type::kAuth:
        if (m.auth_type == hp::AuthType::kToken) return Refresh(s, m.token);
        return;  // the other auth types are the server's
      case hp::Type::kStateless:
        // @hocuspocus/server hands these to its onStateless hook and sends nothing by default.
        QUIRE_LOG(hub_->logger(), kDebug, "hocuspocus_stateless")
            .Str("docId", s->id)
            .Int("bytes", static_cast<int64_t>(m.text.size()));
        return;
      case hp::Type::kBroadcastStateless:
        return CloseDocument(s, "BroadcastStateless is server-internal");
      case hp::Type::kClose:
        return CloseDocument(s, "provider_initiated");
      case hp::Type::kSyncStatus:
      case hp::Type::kPing:
      case hp::Type::kPong:
      case hp::Type::kUnknown:
        return;  // nothing for a server to do (a newer provider's type, as Hocuspocus: ignored)
    }
  }

  // A token sent again on an open document (a refreshed token): re-authenticate. The
  // document's identity is fixed when it opens (the room, the actor of its updates): a token of
  // another user closes the document as an invalid one does.
  void Refresh(const std::shared_ptr<HpSession>& s, std::string_view token) {
    std::string why;
    std::optional<Principal> principal = hub_->access().Authenticate(token, &why);
    if (!principal || principal->user_id != s->principal.user_id) {
      return CloseDocument(s, "Unauthorized");
    }
    s->principal = std::move(*principal);
    RecheckRole(s);
  }

  void AnswerStep1(const std::shared_ptr<HpSession>& s, ByteView state_vector) {
    if (!yjs::DecodeStateVector(state_vector).ok()) {
      return Fail(kWsCloseInvalidData, "malformed state vector", s->id);
    }
    uint64_t ticket = NewReply(*s);
    hub_->docs().LoadHead(
        s->id, [weak = Weak(), ws = std::weak_ptr<HpSession>(s), ticket,
                sv = Bytes(state_vector.begin(), state_vector.end())](Result<HeadState> head) {
          auto self = weak.lock();
          auto session = ws.lock();
          if (!self || !session || session->ended || !self->open()) return;
          // The fold and its state vector are shared with other joins at the same head.
          using Shared = Result<std::shared_ptr<const Bytes>>;
          FoldedHeadCache& folds = self->hub_->folded_heads;
          Shared state = head.ok() ? folds.State(session->id, *head) : Shared(head.status());
          Shared ours = state.ok() ? folds.StateVector(session->id, *head) : state;
          Result<Bytes> diff =
              ours.ok() ? yjs::DiffUpdate(**state, ByteView(sv)) : Result<Bytes>(ours.status());
          if (!diff.ok()) {
            QUIRE_LOG(self->hub_->logger(), kError, "hocuspocus_step2_failed")
                .Str("docId", session->id)
                .Str("error", diff.status().ToString());
            self->BeginClose(kWsCloseInternalError, "cannot compute the state");
            return;
          }
          // @hocuspocus/server's order: its step 1 (the provider answers with its step 2),
          // then the step 2.
          std::vector<Bytes> frames;
          frames.push_back(hp::EncodeSyncStep1(session->address, **ours));
          frames.push_back(hp::EncodeSyncStep2(session->address, *diff));
          self->SettleReply(*session, ticket, std::move(frames));
        });
  }

  // A ticket for the answer to the sync message that just arrived.
  static uint64_t NewReply(HpSession& s) {
    s.replies.emplace_back();
    return s.replies_base + s.replies.size() - 1;
  }

  // Settles ticket `ticket` with `frames` and sends every answer now due, in arrival order.
  // Few answers ever wait (the connection's message rate bounds them): the ones sent leave the
  // front of the vector at once.
  void SettleReply(HpSession& s, uint64_t ticket, std::vector<Bytes> frames) {
    if (s.ended || ticket < s.replies_base || ticket - s.replies_base >= s.replies.size()) return;
    s.replies[ticket - s.replies_base] = std::move(frames);
    size_t due = 0;
    while (due < s.replies.size() && s.replies[due].has_value()) {
      std::vector<Bytes> answer = std::move(*s.replies[due]);
      ++due;
      for (const Bytes& f : answer) {
        if (open()) SendBinary(f);
      }
    }
    s.replies.erase(s.replies.begin(), s.replies.begin() + static_cast<std::ptrdiff_t>(due));
    s.replies_base += due;
  }

  void SettleAck(HpSession& s, uint64_t ticket, bool applied) {
    std::vector<Bytes> frames;
    frames.push_back(hp::EncodeSyncStatus(s.address, applied));
    SettleReply(s, ticket, std::move(frames));
  }

  void SubmitUpdate(const std::shared_ptr<HpSession>& s, yjs::SyncType type, ByteView payload) {
    if (static_cast<int64_t>(payload.size()) > hub_->config().max_payload_bytes) {
      hub_->updates_rejected.Inc();
      return Fail(kWsCloseTooBig, "update too large", s->id);
    }
    // A role change takes effect at once for writes, not only at the next periodic check.
    if (hub_->access().enabled()) {
      RecheckRole(s);
      if (s->ended) return;
    }
    uint64_t ticket = NewReply(*s);
    if (s->readonly()) return AnswerReadonly(s, type, payload, ticket);
    if (IsEmptyUpdate(payload)) return SettleAck(*s, ticket, true);
    std::shared_ptr<Room> room = s->room;
    ++room->pending_appends;
    size_t bytes = payload.size();
    AppendStarted(bytes);
    auto shared = std::make_shared<const Bytes>(payload.begin(), payload.end());
    OpId op_id = "hp-" + NewTimeOrderedUuid();  // time-ordered: see yws_endpoint.cc
    hub_->docs().AppendUpdate(
        s->id, op_id, s->actor, Bytes(*shared),
        [hub = hub_, room, weak = Weak(), ws = std::weak_ptr<HpSession>(s), shared, op_id, bytes,
         ticket, actor = s->actor](Result<eventlog::AppendResult> result) {
          --room->pending_appends;
          auto sender = weak.lock();
          auto session = ws.lock();
          bool member = sender && session && !session->ended && session->room == room;
          if (result.ok()) {
            if (!result->duplicate) {
              auto frame = std::make_shared<const std::string>(
                  ws::RemoteUpdateMessage(result->seq, Base64Encode(*shared), actor, op_id));
              room->RelayUpdate(member ? session.get() : nullptr, result->seq, frame, shared);
              hub->updates_accepted.Inc();
              QUIRE_LOG(hub->logger(), kDebug, "update_committed")
                  .Str("docId", room->document_id())
                  .Str("actor", actor)
                  .Str("opId", op_id)
                  .Int("seq", result->seq)
                  .Int("bytes", static_cast<int64_t>(shared->size()));
            }
            if (member) sender->SettleAck(*session, ticket, true);
          } else {
            hub->updates_rejected.Inc();
            bool storage = IsStorageFailure(result.status());
            if (storage) hub->storage_errors.Inc();
            LogLine(&hub->logger(), storage ? LogLevel::kError : LogLevel::kInfo, "update_rejected")
                .Str("docId", room->document_id())
                .Str("actor", actor)
                .Str("opId", op_id)
                .Str("error", result.status().ToString());
            // The provider keeps its edits: after a storage failure it reconnects and its
            // step 2 carries them again. An invalid update cannot be repaired by resending.
            if (sender) {
              sender->BeginClose(storage ? kWsCloseTryAgainLater : kWsCloseInvalidData,
                                 storage ? "storage unavailable" : "update refused");
            }
          }
          if (sender) sender->AppendSettled(bytes);
          hub->MaybeReleaseRoom(room);
        });
  }

  // A viewer's update is not appended. Hocuspocus answers SyncStatus 0, except for a step 2
  // that holds nothing the document lacks (what every reconnecting viewer sends): 1.
  void AnswerReadonly(const std::shared_ptr<HpSession>& s, yjs::SyncType type, ByteView payload,
                      uint64_t ticket) {
    if (type == yjs::SyncType::kUpdate) return SettleAck(*s, ticket, false);
    if (IsEmptyUpdate(payload)) return SettleAck(*s, ticket, true);
    hub_->docs().LoadHead(
        s->id, [weak = Weak(), ws = std::weak_ptr<HpSession>(s),
                update = Bytes(payload.begin(), payload.end()), ticket](Result<HeadState> head) {
          auto self = weak.lock();
          auto session = ws.lock();
          if (!self || !session || session->ended) return;
          bool contained = false;
          Result<std::shared_ptr<const Bytes>> state =
              head.ok() ? self->hub_->folded_heads.State(session->id, *head)
                        : Result<std::shared_ptr<const Bytes>>(head.status());
          if (state.ok()) {
            ByteView parts[] = {**state, update};
            Result<Bytes> merged = yjs::MergeUpdates(parts);
            Result<bool> same =
                merged.ok() ? yjs::SameDocument(*merged, **state) : Result<bool>(merged.status());
            contained = same.ok() && *same;
          }
          self->SettleAck(*session, ticket, contained);
        });
  }

  // --- Ending document sessions ---

  // Tells the provider its document is closed and ends the session.
  void CloseDocument(const std::shared_ptr<HpSession>& s, std::string_view reason) {
    QUIRE_LOG(hub_->logger(), kInfo, "hocuspocus_document_closed")
        .Str("docId", s->id)
        .Str("actor", s->actor)
        .Str("reason", reason);
    if (open()) SendBinary(hp::EncodeClose(s->address, reason));
    End(*s);
    sessions_.erase(s->address);
  }

  // Leaves the room (which removes the awareness states the session owned, for everyone);
  // the object stays valid for whoever holds it.
  void End(HpSession& s) {
    if (s.ended) return;
    s.ended = true;
    DropHeld(s);
    if (s.room) {
      auto room = std::move(s.room);
      s.room.reset();
      core_->documents.Add(-1);
      LeaveRoom(room, &s, nullptr);
    }
  }

  void EndAll() {
    auto sessions = std::move(sessions_);
    sessions_.clear();
    for (auto& [address, s] : sessions) End(*s);
  }

  // --- Access re-checks ---

  void RecheckRole(const std::shared_ptr<HpSession>& s) {
    const projection::DocumentRecord* record = hub_->docs().Find(s->id);
    if (record == nullptr || record->deleted()) return CloseDocument(s, "document deleted");
    Role role = hub_->access().RoleFor(s->principal, s->id);
    if (role == Role::kNone) return CloseDocument(s, "Forbidden");
    bool was_readonly = s->readonly();
    s->role = role;
    if (s->readonly() != was_readonly) {
      SendBinary(hp::EncodeAuthenticated(s->address,
                                         s->readonly() ? hp::kScopeReadOnly : hp::kScopeReadWrite));
    }
  }

  static void OnRoleTimer(void* arg) {
    auto* c = static_cast<HpConnection*>(arg);
    if (!c->open()) return;
    auto self = c->shared_from_this();
    int64_t now = NowMs();
    std::vector<std::shared_ptr<HpSession>> open_sessions;
    for (const auto& [address, s] : c->sessions_) {
      if (s->phase == Phase::kOpen) open_sessions.push_back(s);
    }
    for (const auto& s : open_sessions) {
      if (!c->open()) return;
      if (s->ended) continue;
      TimestampMs expires_at = c->hub_->access().ExpiresAt(s->principal);
      if (expires_at != 0 && now >= expires_at) {
        c->BeginClose(kWsCloseUnauthenticated, "token expired");
        return;
      }
      c->RecheckRole(s);
    }
  }

  std::shared_ptr<HpCore> core_;
  ActorId actor_;
  internal::WsTimer role_timer_;
  std::map<std::string, std::shared_ptr<HpSession>, std::less<>> sessions_;  // by address
  size_t held_bytes_ = 0;  // over every session's `held`
};

void HpSession::DeliverUpdateBytes(Seq, const SharedBytes& update) {
  if (!ended) conn->Relay(*this, *update);
}

void HpSession::DeliverAwareness(const SharedBytes& update) {
  if (!ended) conn->SendAwareness(*this, *update);
}

class HpEndpoint final : public WsEndpoint {
 public:
  explicit HpEndpoint(std::shared_ptr<WsHub> hub)
      : hub_(std::move(hub)), core_(std::make_shared<HpCore>(hub_->metrics())) {}

  bool authenticates_in_protocol() const override { return true; }

  std::shared_ptr<WsConnection> Accept(const WsUpgrade& upgrade, Transport& transport,
                                       HttpResponse&) override {
    auto connection = std::make_shared<HpConnection>(hub_, core_, transport);
    connection->set_principal(upgrade.principal);
    return connection;
  }

 private:
  std::shared_ptr<WsHub> hub_;
  std::shared_ptr<HpCore> core_;
};

}  // namespace

bool IsHocuspocusPath(std::string_view path) {
  return path == kPath || (path.starts_with(kPath) && path[kPath.size()] == '/');
}

std::unique_ptr<WsEndpoint> MakeHocuspocusEndpoint(std::shared_ptr<WsHub> hub) {
  return std::make_unique<HpEndpoint>(std::move(hub));
}

WsRoute HocuspocusRoute() {
  return WsRoute{&IsHocuspocusPath,
                 [](std::shared_ptr<WsHub> hub) { return MakeHocuspocusEndpoint(std::move(hub)); }};
}

}  // namespace quire::io
