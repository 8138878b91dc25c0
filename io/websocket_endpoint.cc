#include "io/websocket_endpoint.h"

#include <uv.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/base64.h"
#include "core/ids.h"
#include "io/internal/ws_timer.h"
#include "io/json_protocol.h"
#include "io/room.h"
#include "io/ws_connection.h"
#include "io/yws_endpoint.h"

namespace quire::io {
namespace {

using internal::WsTimer;
using projection::DocumentService;
using projection::HeadState;
using projection::TailUpdate;

constexpr std::string_view kPathPrefix = "/ws/documents/";

// Presence is published at most once per this interval per member (20 messages/s).
constexpr uint64_t kPresenceIntervalMs = 50;
// A Yjs join takes the cached state of an earlier head when at most this many updates
// followed it (sent after the state); more, and it folds the current head instead.
constexpr size_t kMaxUpdatesAfterCachedState = 64;
// Room on top of the payload limit for the JSON around a base64 payload.
constexpr uint64_t kMessageOverheadBytes = 64 << 10;

uint64_t RandomClientId() {
  static thread_local std::mt19937 rng{std::random_device{}()};
  return std::uniform_int_distribution<uint32_t>{}(rng);
}

int64_t WallClockMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// The protocol error code for a failed append, and whether it is a storage failure.
std::pair<std::string_view, bool> AppendErrorCode(const Status& status, bool document_deleted,
                                                  bool snapshot) {
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
      return {snapshot ? ws::kErrInvalidSnapshot : ws::kErrInvalidUpdate, false};
    case StatusCode::kFailedPrecondition:
      if (document_deleted) return {ws::kErrDocumentDeleted, false};
      return {snapshot ? ws::kErrInvalidSnapshot : ws::kErrInvalidUpdate, false};
    case StatusCode::kNotFound:
      return {ws::kErrNotFound, false};
    case StatusCode::kResourceExhausted:
      return {ws::kErrPayloadTooLarge, false};
    case StatusCode::kUnavailable:
    case StatusCode::kIoError:
    case StatusCode::kCorruption:
      return {ws::kErrStorageUnavailable, true};
    default:
      return {ws::kErrInternal, false};
  }
}

struct JoinParams {
  DocumentId document_id;
  std::string user_id;
  std::string display_name;
  std::optional<Seq> since_seq;
};

// One JSON-protocol client of one document (io/json_protocol.md).
//
// Join phases: kJoining (member of the room; the state is being loaded, relays and direct
// messages are held), kOpen. The socket's own phases (closing, closed) are WsConnection's.
class JsonConnection final : public WsConnection, public RoomMember {
 public:
  JsonConnection(std::shared_ptr<WsHub> hub, Transport& transport, JoinParams params)
      : WsConnection(
            hub, transport,
            WsConnectionOptions{static_cast<uint64_t>(hub->config().max_payload_bytes) * 4 / 3 +
                                    kMessageOverheadBytes,
                                nullptr}),
        document_id_(std::move(params.document_id)),
        since_seq_(params.since_seq),
        presence_timer_(hub_->loop(), &JsonConnection::OnPresenceTimer, this) {
    presence_.color = ws::DefaultColor(params.user_id);
    presence_.user_id = std::move(params.user_id);
    presence_.display_name = std::move(params.display_name);
    presence_.status = "joined";
    SetLogIdentity(document_id_, presence_.user_id);
  }

  ~JsonConnection() override {
    // OnClosing() normally ran; if the server dropped the handler without it, still leave.
    Leave();
  }

  // --- WsConnection ---
  void OnStart() override {
    room_ = JoinRoom(document_id_, this);
    PublishPresence();
    QUIRE_LOG(hub_->logger(), kInfo, "ws_connected")
        .Str("docId", document_id_)
        .Str("userId", user_id())
        .Str("peer", transport_.peer())
        .Int("sinceSeq", since_seq_.value_or(-1));
    if (since_seq_) {
      hub_->docs().ReadUpdatesSince(document_id_, *since_seq_,
                                    [weak = Weak()](Result<std::vector<TailUpdate>> updates) {
                                      if (auto self = weak.lock())
                                        self->OnCatchUpLoaded(std::move(updates));
                                    });
    } else {
      LoadHead();
    }
  }

  void OnClosing() override {
    presence_timer_.Stop();
    Leave();
  }

  void OnRateLimited() override {
    SendDirect(ws::ErrorMessage(
        "RATE_LIMITED", "more than " + std::to_string(hub_->config().max_messages_per_second) +
                            " messages per second; closing"));
  }

  void OnText(std::string_view text) override {
    uint64_t received_ns = uv_hrtime();  // broadcast latency counts parsing too
    ws::ParseResult parsed = ws::ParseClientMessage(text, hub_->config().max_payload_bytes);
    if (!parsed.ok()) {
      const ws::ProtocolError& e = *parsed.error;
      if (e.code == ws::kErrPayloadTooLarge || !e.op_id.empty()) hub_->updates_rejected.Inc();
      QUIRE_LOG(hub_->logger(), kInfo, "ws_bad_message")
          .Str("docId", document_id_)
          .Str("userId", user_id())
          .Str("code", e.code)
          .Str("opId", e.op_id)
          .Str("message", e.message);
      SendDirect(ws::ErrorMessage(e.code, e.message, e.op_id));
      return;
    }
    ws::ClientMessage& m = parsed.message;
    switch (m.type) {
      case ws::ClientType::kPing:
        SendDirect(ws::PongMessage(m.ts_json, WallClockMs()));
        break;
      case ws::ClientType::kJoin: {
        // With access control on, the identity is the token's (a client cannot speak as
        // someone else); the name claim, when present, wins over the client's displayName.
        ws::PresenceInfo before = presence_;
        if (!hub_->access().enabled()) {
          presence_.user_id = m.user_id;
          presence_.display_name = m.display_name;
        } else if (principal().name.empty()) {
          presence_.display_name = m.display_name;
        }
        if (room_ && before.user_id != presence_.user_id) {
          // The others had this connection as `before`: that user is gone (or still here
          // through another connection); the new identity follows as `joined`.
          before.status = "left";
          room_->PresenceUserChanged(
              this, before.user_id,
              std::make_shared<const std::string>(ws::PresenceMessage(before)));
        }
        presence_.status = "joined";
        SetLogIdentity(document_id_, presence_.user_id);
        SchedulePresence();
        break;
      }
      case ws::ClientType::kPresence:
        presence_.cursor = m.cursor;
        if (m.color) presence_.color = *m.color;
        presence_.status = "active";
        SchedulePresence();
        break;
      case ws::ClientType::kUpdate:
        if (!MayWrite(m)) break;
        SubmitUpdate(std::move(m), received_ns);
        break;
      case ws::ClientType::kSnapshot:
        if (!MayWrite(m)) break;
        SubmitSnapshot(std::move(m));
        break;
    }
  }

  void OnBinary(ByteView) override {
    SendDirect(ws::ErrorMessage(ws::kErrBinaryFrame,
                                "binary frames are not supported; send JSON text frames"));
  }

  // --- RoomMember ---
  void DeliverUpdate(Seq seq, const SharedFrame& frame) override {
    if (!open()) return;
    if (join_phase_ == JoinPhase::kJoining) {
      // Not counted against the slow-consumer cap: every relay that arrives here is already in
      // what the join is about to send, and FinishJoin drops it (seq <= last_sent_seq_).
      // Relays run in append callbacks, after the head absorbed the event. LoadHead answers
      // with a state holding every event committed before its callback; ReadUpdatesSince
      // answers from that same head, or reads the log on the storage thread, which commits
      // and completes in submission order, so an append whose relay came first was committed
      // before the read. Counting them closed healthy newcomers that joined while more than
      // HardCap() of appends were in flight. Their memory is bounded by what commits during
      // the load; what is sent after the state goes through Admit as usual.
      Backlog().relays.push_back({seq, frame});
      return;
    }
    if (seq <= last_sent_seq_) return;
    last_sent_seq_ = seq;
    SendText(*frame);
  }

  uint64_t bridged_awareness_client() const override { return awareness_client_; }
  // Built when the room needs it (a binary member is there); between a presence change and
  // its throttled publication this is already the new presence.
  std::string BridgedAwarenessState() const override {
    return ws::AwarenessStateFromPresence(presence_);
  }
  std::string_view presence_user_id() const override { return presence_.user_id; }

  void DeliverPresence(const SharedFrame& frame) override {
    // While joining, presence is skipped: the newcomer gets everyone's current presence when
    // the state has been sent.
    if (join_phase_ != JoinPhase::kOpen) return;
    SendText(*frame, Delivery::kDroppable);
  }

  // A message for this client only (ack, error, pong). Held back while joining so the state
  // comes first.
  void SendDirect(std::string text) {
    if (!open()) return;
    if (join_phase_ == JoinPhase::kJoining) {
      JoinBacklog& b = Backlog();
      b.held_bytes += text.size();
      b.held.push_back(std::move(text));
      if (b.held_bytes > HardCap()) SlowConsumer();
      return;
    }
    SendText(text);
  }

  bool in_room() const { return room_ != nullptr; }

  // Completion of an append this connection submitted (the connection may be closing).
  void Settled(size_t bytes) { AppendSettled(bytes); }

 private:
  enum class JoinPhase { kJoining, kOpen };

  struct PendingRelay {
    Seq seq;
    SharedFrame frame;
  };
  // What arrives while joining, sent after the state (see FinishJoin).
  struct JoinBacklog {
    std::vector<PendingRelay> relays;  // relays (DeliverUpdate)
    std::vector<std::string> held;     // direct messages (SendDirect)
    size_t held_bytes = 0;             // of held (answers to this client's own messages); capped
  };
  JoinBacklog& Backlog() {
    if (backlog_ == nullptr) backlog_ = std::make_unique<JoinBacklog>();
    return *backlog_;
  }

  // The identity (the token's with access control on; see the `join` message).
  const std::string& user_id() const { return presence_.user_id; }

  std::weak_ptr<JsonConnection> Weak() { return SharedAs<JsonConnection>(); }

  // Viewers (the role re-read every second) get FORBIDDEN for `update` and `snapshot`; nothing
  // is appended.
  bool MayWrite(const ws::ClientMessage& m) {
    Role role = RoleOn(document_id_);
    if (role >= Role::kEditor) return true;
    if (m.type == ws::ClientType::kUpdate) hub_->updates_rejected.Inc();
    QUIRE_LOG(hub_->logger(), kInfo, "ws_write_forbidden")
        .Str("docId", document_id_)
        .Str("userId", user_id())
        .Str("opId", m.op_id)
        .Str("role", RoleName(role));
    SendDirect(
        ws::ErrorMessage(ws::kErrForbidden, "your role on this document is read-only", m.op_id));
    return false;
  }

  void LoadHead() {
    hub_->docs().LoadHead(document_id_, [weak = Weak()](Result<HeadState> head) {
      if (auto self = weak.lock()) self->OnHeadLoaded(std::move(head));
    });
  }

  // Part of the initial state: queued whatever the bound (AllowInitialBacklog follows).
  void Emit(std::string_view text) { SendText(text, Delivery::kInitialState); }

  void OnHeadLoaded(Result<HeadState> head) {
    if (!open() || join_phase_ != JoinPhase::kJoining) return;
    auto self = shared_from_this();
    if (!head.ok()) {
      QUIRE_LOG(hub_->logger(), kError, "ws_state_load_failed")
          .Str("docId", document_id_)
          .Str("error", head.status().ToString());
      bool not_found = head.status().code() == StatusCode::kNotFound;
      Emit(ws::ErrorMessage(not_found ? ws::kErrNotFound : ws::kErrStorageUnavailable,
                            "cannot load the document state"));
      BeginClose(kWsCloseInternalError, "cannot load the document state");
      return;
    }
    const HeadState& h = *head;
    // A Yjs document's state is the fold of snapshot and tail, one update a fresh Y.Doc
    // applies at once, covering the head. Other CRDTs get the snapshot and then the tail.
    const eventlog::DocumentRecord* record = hub_->docs().Find(document_id_);
    if (record != nullptr && record->crdt == CrdtKind::kYjs) {
      // Shared with every other join that finds the head where it is now, or a few updates
      // before it: those follow the state as relays would.
      Result<internal::FoldedHeadCache::JsonJoinState> st =
          hub_->folded_heads.JsonStateFrameNear(document_id_, h, kMaxUpdatesAfterCachedState);
      if (st.ok()) {
        Emit(*st->frame);
        for (const TailUpdate& u : h.tail) {
          if (u.seq <= st->covered) continue;
          Emit(ws::RemoteUpdateMessage(u.seq, Base64Encode(*u.bytes), u.actor_id, u.op_id));
        }
        last_sent_seq_ = h.head_seq;
        FinishJoin();
        return;
      }
      // A fold failure would mean stored updates the engine cannot merge: fall back to the
      // unfolded form, which clients can still apply, and say so.
      QUIRE_LOG(hub_->logger(), kError, "ws_state_fold_failed")
          .Str("docId", document_id_)
          .Str("error", st.status().ToString());
    }
    Emit(ws::StateMessage(h.snapshot_version, *h.snapshot, h.head_seq));
    last_sent_seq_ = h.head_seq;
    for (const TailUpdate& u : h.tail) {
      Emit(ws::RemoteUpdateMessage(u.seq, Base64Encode(*u.bytes), u.actor_id, u.op_id));
      last_sent_seq_ = std::max(last_sent_seq_, u.seq);
    }
    FinishJoin();
  }

  void OnCatchUpLoaded(Result<std::vector<TailUpdate>> updates) {
    if (!open() || join_phase_ != JoinPhase::kJoining) return;
    if (!updates.ok()) {
      // FailedPrecondition: some updates after sinceSeq are gone; take the full state.
      QUIRE_LOG(hub_->logger(), kInfo, "ws_catch_up_full_state")
          .Str("docId", document_id_)
          .Int("sinceSeq", *since_seq_)
          .Str("reason", updates.status().ToString());
      LoadHead();
      return;
    }
    auto self = shared_from_this();
    last_sent_seq_ = *since_seq_;
    for (const TailUpdate& u : *updates) {
      if (u.seq <= last_sent_seq_) continue;
      Emit(ws::RemoteUpdateMessage(u.seq, Base64Encode(*u.bytes), u.actor_id, u.op_id));
      last_sent_seq_ = u.seq;
    }
    FinishJoin();
  }

  // The state (or catch-up) is out: send the relays buffered meanwhile that it did not cover,
  // everyone's presence, then what was held back.
  void FinishJoin() {
    join_phase_ = JoinPhase::kOpen;
    std::unique_ptr<JoinBacklog> backlog = std::move(backlog_);
    if (backlog != nullptr) {
      for (const PendingRelay& r : backlog->relays) {
        if (r.seq <= last_sent_seq_) continue;
        Emit(*r.frame);
        last_sent_seq_ = r.seq;
      }
    }
    if (room_) {
      for (const SharedFrame& f : room_->PresenceOf(this)) Emit(*f);
    }
    if (backlog != nullptr) {
      for (const std::string& text : backlog->held) Emit(text);
    }
    // The initial state may exceed the bound by itself; allow it until the queue drains.
    AllowInitialBacklog();
  }

  void SchedulePresence() {
    uint64_t now = uv_now(hub_->loop());
    if (presence_timer_.active()) return;  // the pending publication will carry the latest
    if (now >= last_presence_ms_ + kPresenceIntervalMs) {
      PublishPresence();
    } else {
      presence_timer_.Start(last_presence_ms_ + kPresenceIntervalMs - now);
    }
  }

  void PublishPresence() {
    if (!room_) return;
    last_presence_ms_ = uv_now(hub_->loop());
    room_->BroadcastPresence(this,
                             std::make_shared<const std::string>(ws::PresenceMessage(presence_)));
    // The same presence as an awareness state for the y-websocket / Hocuspocus members.
    if (room_) room_->PublishBridgedAwareness(this);
  }

  static void OnPresenceTimer(void* arg) {
    auto* c = static_cast<JsonConnection*>(arg);
    if (!c->open()) return;
    c->PublishPresence();
  }

  void SubmitUpdate(ws::ClientMessage m, uint64_t received_ns) {
    // With access control on, the actor is the token's sub (user_id()): a client-given actorId
    // is ignored, so nobody can write history in another user's name.
    ActorId actor = m.actor_id.empty() || hub_->access().enabled() ? user_id() : m.actor_id;
    ++room_->pending_appends;
    size_t bytes = m.delta.size();
    AppendStarted(bytes);
    hub_->docs().AppendUpdate(
        document_id_, m.op_id, actor, std::move(m.delta),
        [hub = hub_, room = room_, weak = Weak(), op_id = m.op_id, actor,
         delta_b64 = std::move(m.delta_b64), received_ns, bytes,
         user_id = user_id()](Result<eventlog::AppendResult> result) {
          --room->pending_appends;
          auto sender = weak.lock();
          const RoomMember* from = (sender && sender->in_room()) ? sender.get() : nullptr;
          if (result.ok()) {
            Seq seq = result->seq;
            if (!result->duplicate) {
              auto frame = std::make_shared<const std::string>(
                  ws::RemoteUpdateMessage(seq, delta_b64, actor, op_id));
              room->RelayUpdate(from, seq, frame, nullptr, delta_b64);
              hub->broadcast_latency.Observe(static_cast<double>(uv_hrtime() - received_ns) / 1e9);
              hub->updates_accepted.Inc();
              QUIRE_LOG(hub->logger(), kDebug, "update_committed")
                  .Str("docId", room->document_id())
                  .Str("userId", user_id)
                  .Str("opId", op_id)
                  .Int("seq", seq)
                  .Int("bytes", static_cast<int64_t>(delta_b64.size()) * 3 / 4);
            } else {
              hub->updates_duplicate.Inc();
              QUIRE_LOG(hub->logger(), kInfo, "update_duplicate")
                  .Str("docId", room->document_id())
                  .Str("userId", user_id)
                  .Str("opId", op_id)
                  .Int("seq", seq);
            }
            if (sender) sender->SendDirect(ws::AckMessage(op_id, seq));
          } else {
            const auto* record = hub->docs().Find(room->document_id());
            auto [code, storage] = AppendErrorCode(
                result.status(), record != nullptr && record->deleted(), /*snapshot=*/false);
            hub->updates_rejected.Inc();
            if (storage) hub->storage_errors.Inc();
            LogLine(&hub->logger(), storage ? LogLevel::kError : LogLevel::kInfo, "update_rejected")
                .Str("docId", room->document_id())
                .Str("userId", user_id)
                .Str("opId", op_id)
                .Str("code", code)
                .Str("error", result.status().ToString());
            if (sender)
              sender->SendDirect(ws::ErrorMessage(code, result.status().message(), op_id));
          }
          if (sender) sender->Settled(bytes);
          hub->MaybeReleaseRoom(room);
        });
  }

  void SubmitSnapshot(ws::ClientMessage m) {
    ++room_->pending_appends;
    hub_->docs().AppendSnapshot(
        document_id_, m.version, std::move(m.snapshot), user_id(),
        [hub = hub_, room = room_, weak = Weak(), op_id = m.op_id, version = m.version,
         user_id = user_id()](Result<eventlog::AppendResult> result) {
          --room->pending_appends;
          auto sender = weak.lock();
          if (result.ok()) {
            QUIRE_LOG(hub->logger(), kInfo, "client_snapshot_committed")
                .Str("docId", room->document_id())
                .Str("userId", user_id)
                .Int("version", version)
                .Int("seq", result->seq);
            if (sender) sender->SendDirect(ws::AckMessage(op_id, result->seq));
          } else {
            const auto* record = hub->docs().Find(room->document_id());
            auto [code, storage] = AppendErrorCode(
                result.status(), record != nullptr && record->deleted(), /*snapshot=*/true);
            if (storage) hub->storage_errors.Inc();
            LogLine(&hub->logger(), storage ? LogLevel::kError : LogLevel::kInfo,
                    "client_snapshot_rejected")
                .Str("docId", room->document_id())
                .Str("userId", user_id)
                .Str("code", code)
                .Str("error", result.status().ToString());
            if (sender)
              sender->SendDirect(ws::ErrorMessage(code, result.status().message(), op_id));
          }
          hub->MaybeReleaseRoom(room);
        });
  }

  // Leaves the room; the others get this member's `left` presence.
  void Leave() {
    if (!room_) return;
    auto room = std::move(room_);
    room_.reset();
    presence_.status = "left";
    LeaveRoom(room, this, std::make_shared<const std::string>(ws::PresenceMessage(presence_)));
  }

  DocumentId document_id_;
  std::optional<Seq> since_seq_;  // the `sinceSeq` query parameter, when it applies
  WsTimer presence_timer_;
  JoinPhase join_phase_ = JoinPhase::kJoining;
  std::shared_ptr<Room> room_;  // set while a member
  ws::PresenceInfo presence_;
  uint64_t last_presence_ms_ = 0;
  // This connection's synthetic awareness client id: random, 32 bits like a Y.Doc clientID,
  // fixed for the connection's life.
  uint64_t awareness_client_ = RandomClientId();

  Seq last_sent_seq_ = 0;  // the highest seq this client has (state head or last relay)
  // Made by the first relay or direct message held while joining; freed when the join ends.
  std::unique_ptr<JoinBacklog> backlog_;
};

// /ws/documents/{id}: the JSON protocol.
class JsonEndpoint final : public WsEndpoint {
 public:
  explicit JsonEndpoint(std::shared_ptr<WsHub> hub) : hub_(std::move(hub)) {}

  bool CheckPath(std::string_view path, HttpResponse& reject) override {
    if (!IsValidDocumentId(DocumentId(path.substr(kPathPrefix.size())))) {
      reject = HttpResponse::Error(404, "NOT_FOUND", "no such document");
      return false;
    }
    return true;
  }

  std::shared_ptr<WsConnection> Accept(const WsUpgrade& upgrade, Transport& transport,
                                       HttpResponse& reject) override {
    const HttpRequest& request = upgrade.request;
    DocumentId id(upgrade.path.substr(kPathPrefix.size()));
    const projection::DocumentRecord* record = hub_->docs().Find(id);
    // A caller without a role may not learn that the document exists (nor that it is deleted).
    Role role = record == nullptr ? Role::kNone : hub_->access().RoleFor(upgrade.principal, id);
    if (role == Role::kNone) {
      reject = HttpResponse::Error(404, "NOT_FOUND", "no such document");
      return nullptr;
    }
    if (record->deleted()) {
      reject = HttpResponse::Error(410, "DOCUMENT_DELETED", "the document is deleted");
      return nullptr;
    }
    if (hub_->AtCapacity(id)) {
      reject = HttpResponse::Error(503, "TOO_MANY_DOCUMENTS",
                                   "the server has its maximum of documents open; retry later");
      return nullptr;
    }

    JoinParams params;
    params.document_id = id;
    if (auto user = request.Query("userId")) {
      if (!ws::IsValidUserId(*user)) {
        reject = HttpResponse::Error(400, "INVALID_QUERY", "userId must be 1 to 128 bytes");
        return nullptr;
      }
      params.user_id = std::string(*user);
    } else {
      params.user_id = "anonymous-" + NewUuid().substr(0, 8);
    }
    if (auto name = request.Query("displayName")) {
      if (!ws::IsValidDisplayName(*name)) {
        reject = HttpResponse::Error(400, "INVALID_QUERY", "displayName must be at most 256 bytes");
        return nullptr;
      }
      params.display_name = std::string(*name);
    } else {
      params.display_name = params.user_id;
    }
    if (auto since = request.Query("sinceSeq")) {
      Seq v = -1;
      auto [end, ec] = std::from_chars(since->data(), since->data() + since->size(), v);
      if (ec != std::errc() || end != since->data() + since->size() || v < 0) {
        reject =
            HttpResponse::Error(400, "INVALID_QUERY", "sinceSeq must be a non-negative integer");
        return nullptr;
      }
      // A client ahead of the document (a store that was reset) needs the full state.
      if (v <= record->head_seq) params.since_seq = v;
    }
    if (hub_->access().enabled()) {
      // The token decides who speaks; the query parameters are ignored for identity.
      const Principal& p = upgrade.principal;
      if (!p.user_id.empty()) params.user_id = p.user_id;
      if (!p.name.empty()) {
        params.display_name = p.name;
      } else if (!request.Query("displayName")) {
        params.display_name = params.user_id;
      }
    }
    auto connection = std::make_shared<JsonConnection>(hub_, transport, std::move(params));
    connection->set_principal(upgrade.principal);
    connection->TrackDocument(id, role);
    return connection;
  }

 private:
  std::shared_ptr<WsHub> hub_;
};

}  // namespace

std::unique_ptr<UpgradeHandler> MakeWebSocketEndpoint(uv_loop_s* loop, DocumentService& docs,
                                                      io::Metrics& metrics, const Config& config,
                                                      const Logger& logger,
                                                      WebSocketEndpointOptions options) {
  auto hub = std::make_shared<WsHub>(loop, docs, metrics, config, logger, options.access_control);
  std::vector<WsRoute> routes = std::move(options.routes);
  // The binary protocols share the JSON endpoint's rooms (through the hub), so their members
  // and the JSON members of a document relay to each other.
  routes.push_back(WsRoute{&IsYwsPath, &MakeYwsEndpoint});
  routes.push_back(WsRoute{[](std::string_view path) { return path.starts_with(kPathPrefix); },
                           [](std::shared_ptr<WsHub> h) -> std::unique_ptr<WsEndpoint> {
                             return std::make_unique<JsonEndpoint>(std::move(h));
                           }});
  return MakeWsRouter(std::move(hub), std::move(routes));
}

}  // namespace quire::io
