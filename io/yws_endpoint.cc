#include "io/yws_endpoint.h"

#include <uv.h>

#include <algorithm>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/base64.h"
#include "core/ids.h"
#include "core/yjs/protocol.h"
#include "core/yjs/update.h"
#include "io/internal/ws_sha1.h"
#include "io/json_protocol.h"
#include "io/websocket_session.h"

namespace quire::io {
namespace {

using projection::DocumentService;
using projection::HeadState;

constexpr std::string_view kPathPrefix = "/yjs/";

constexpr uint16_t kCloseGoingAway = 1001;
constexpr uint16_t kCloseNormal = 1000;
constexpr uint16_t kCloseInvalidData = 1007;
constexpr uint16_t kClosePolicyViolation = 1008;
constexpr uint16_t kCloseInternalError = 1011;
constexpr uint16_t kCloseTryAgainLater = 1013;

// As on the JSON endpoint: a sender with this many appends in flight is not read until half
// of them completed.
constexpr int kMaxInflightAppends = 64;

// A libuv timer owned by a C++ object; the handle is freed in its close callback, so the owner
// may be destroyed at any time, even from inside the callback.
class Timer {
 public:
  using Fn = void (*)(void* arg);
  Timer(uv_loop_t* loop, Fn fn, void* arg) : fn_(fn), arg_(arg), handle_(new uv_timer_t) {
    uv_timer_init(loop, handle_);
    handle_->data = this;
  }
  ~Timer() {
    handle_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(handle_), &Timer::OnClose);
  }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  void Start(uint64_t timeout_ms, uint64_t repeat_ms = 0) {
    uv_timer_start(handle_, &Timer::OnFire, timeout_ms, repeat_ms);
  }
  void Stop() { uv_timer_stop(handle_); }

 private:
  static void OnFire(uv_timer_t* handle) noexcept {
    auto* self = static_cast<Timer*>(handle->data);
    if (self != nullptr) self->fn_(self->arg_);
  }
  static void OnClose(uv_handle_t* handle) noexcept {
    delete reinterpret_cast<uv_timer_t*>(handle);
  }
  Fn fn_;
  void* arg_;
  uv_timer_t* handle_;
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool ContainsTokenIgnoreCase(std::string_view list, std::string_view token) {
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    if (comma == std::string_view::npos) comma = list.size();
    std::string_view item = list.substr(pos, comma - pos);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (EqualsIgnoreCase(item, token)) return true;
    pos = comma + 1;
  }
  return false;
}

std::string ToFrame(const Bytes& b) { return std::string(b.begin(), b.end()); }

// An update that changes nothing: no structs, empty delete set (what a client with nothing
// new sends as its step 2).
bool IsEmptyUpdate(ByteView update) {
  return update.size() == 2 && update[0] == 0 && update[1] == 0;
}

class YwsConnection;

// The awareness of one document as the y-websocket members announced it.
struct AwarenessDoc {
  struct State {
    uint64_t clock = 0;
    std::string json;
    const YwsConnection* owner = nullptr;
  };
  std::vector<YwsConnection*> members;  // join order
  std::map<uint64_t, State> states;     // by awareness client id

  Bytes EncodeAll() const {
    std::vector<yjs::AwarenessEntry> entries;
    for (const auto& [client, s] : states) entries.push_back({client, s.clock, s.json});
    return yjs::EncodeAwarenessMessage(yjs::EncodeAwarenessUpdate(entries));
  }
};

struct YwsCore {
  YwsCore(uv_loop_t* loop_in, DocumentService& docs_in, Metrics& metrics, const Config& config_in,
          const Logger& logger_in, RoomHooks hooks_in)
      : loop(loop_in),
        docs(docs_in),
        config(config_in),
        logger(logger_in),
        hooks(std::move(hooks_in)),
        connections(metrics.gauge("quire_websocket_connections", "Open WebSocket connections")),
        yws_connections(
            metrics.gauge("quire_yws_connections", "Open y-websocket (/yjs) connections")),
        updates_accepted(
            metrics.counter("quire_updates_accepted_total", "CRDT updates committed and relayed")),
        updates_rejected(metrics.counter(
            "quire_updates_rejected_total",
            "CRDT updates refused (invalid, too large, deleted document, storage failure)")),
        bytes_in(metrics.counter("quire_websocket_received_bytes_total",
                                 "Bytes received on WebSocket connections")),
        bytes_out(metrics.counter("quire_websocket_sent_bytes_total",
                                  "Bytes queued for sending on WebSocket connections")),
        presence_dropped(metrics.counter("quire_presence_dropped_total",
                                         "Presence messages dropped for peers behind")),
        slow_consumer_closes(
            metrics.counter("quire_slow_consumer_closes_total",
                            "WebSocket peers closed with 1013 for falling behind")),
        storage_errors(
            metrics.counter("quire_storage_errors_total", "Appends that failed in storage")),
        read_pauses(metrics.counter("quire_websocket_read_pauses_total",
                                    "Times a sender was not read while its appends committed")),
        documents_created(metrics.counter("quire_yws_documents_created_total",
                                          "Documents created by a y-websocket connect")) {}

  uv_loop_t* loop;
  DocumentService& docs;
  const Config& config;
  const Logger& logger;
  RoomHooks hooks;
  std::unordered_map<DocumentId, AwarenessDoc> awareness;

  Gauge& connections;
  Gauge& yws_connections;
  Counter& updates_accepted;
  Counter& updates_rejected;
  Counter& bytes_in;
  Counter& bytes_out;
  Counter& presence_dropped;
  Counter& slow_consumer_closes;
  Counter& storage_errors;
  Counter& read_pauses;
  Counter& documents_created;
};

// One y-websocket client of one document. Owned by a shared_ptr held by its StreamHandler;
// asynchronous completions hold weak references.
//
// Phases: kStarting (creating/checking the document), kJoining (room member; the head state
// is loading; relays and the client's messages are held), kOpen, kClosing (close frame out,
// out of the room), kClosed (transport gone).
class YwsConnection final : public std::enable_shared_from_this<YwsConnection>,
                            public WebSocketSession::Delegate,
                            public RoomMember {
 public:
  YwsConnection(std::shared_ptr<YwsCore> core, Transport& transport, DocumentId id)
      : core_(std::move(core)),
        transport_(transport),
        id_(std::move(id)),
        actor_("yjs-" + NewUuid().substr(0, 8)),
        session_(transport, *this, static_cast<uint64_t>(core_->config.max_payload_bytes) + 1024),
        ping_timer_(core_->loop, &YwsConnection::OnPingTimer, this),
        idle_timer_(core_->loop, &YwsConnection::OnIdleTimer, this),
        close_timer_(core_->loop, &YwsConnection::OnCloseTimer, this),
        rate_close_timer_(core_->loop, &YwsConnection::OnRateCloseTimer, this) {
    core_->connections.Add(1);
    core_->yws_connections.Add(1);
  }

  ~YwsConnection() override {
    Leave();
    core_->connections.Add(-1);
    core_->yws_connections.Add(-1);
  }

  void Start() {
    last_rx_ms_ = uv_now(core_->loop);
    uint64_t ping_ms =
        static_cast<uint64_t>(std::max<int64_t>(core_->config.ping_interval_s, 1)) * 1000;
    ping_timer_.Start(ping_ms, ping_ms);
    idle_timer_.Start(IdleMs());
    QUIRE_LOG(core_->logger, kInfo, "yws_connected")
        .Str("docId", id_)
        .Str("actor", actor_)
        .Str("peer", transport_.peer());
    const projection::DocumentRecord* record = core_->docs.Find(id_);
    if (record == nullptr) {
      if (!core_->config.auto_create_documents) {
        Deny("no such document");
        return;
      }
      projection::CreateCommand create;
      create.id = id_;
      create.title = id_;
      create.crdt = CrdtKind::kYjs;
      create.owner = actor_;
      core_->docs.Create(std::move(create),
                         [weak = weak_from_this()](Result<projection::DocumentRecord> r) {
                           if (auto self = weak.lock()) self->OnCreated(std::move(r));
                         });
      return;
    }
    CheckAndJoin();
  }

  // --- StreamHandler ---
  void OnData(ByteView data) {
    if (phase_ >= Phase::kClosing) return;
    auto self = shared_from_this();
    last_rx_ms_ = uv_now(core_->loop);
    core_->bytes_in.Inc(static_cast<int64_t>(data.size()));
    session_.Feed(data);
    SyncBytesOut();
    if (session_.close_sent() && phase_ < Phase::kClosing) EnterClosing();
  }
  void OnShutdown() { BeginClose(kCloseGoingAway, "server shutting down"); }
  void OnClosed() {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kClosed;
    ping_timer_.Stop();
    idle_timer_.Stop();
    close_timer_.Stop();
    rate_close_timer_.Stop();
    Leave();
    QUIRE_LOG(core_->logger, kInfo, "yws_closed")
        .Str("docId", id_)
        .Str("actor", actor_)
        .Int("bytesIn", static_cast<int64_t>(session_.bytes_in()))
        .Int("bytesOut", static_cast<int64_t>(session_.bytes_out()));
  }

  // --- WebSocketSession::Delegate ---
  void OnTextMessage(std::string_view) override {
    if (phase_ >= Phase::kClosing) return;
    Fail(kCloseInvalidData, "y-websocket messages are binary");
  }

  void OnBinaryMessage(ByteView data) override {
    if (phase_ >= Phase::kClosing || !WithinRateLimit()) return;
    if (phase_ != Phase::kOpen) {
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
    if (phase_ == Phase::kJoining) {
      held_bytes_ += update->size();
      pending_relays_.emplace_back(seq, update);
      if (held_bytes_ > HardCap()) SlowConsumer();
      return;
    }
    if (phase_ != Phase::kOpen || seq <= head_seq_) return;
    SendMessage(yjs::EncodeSyncUpdate(*update), /*droppable=*/false);
  }

  // Awareness of this document (from any member, this one included); may be dropped.
  void DeliverAwareness(const SharedFrame& frame) {
    if (phase_ != Phase::kOpen) return;
    if (session_.queued_bytes() > static_cast<size_t>(core_->config.send_queue_bytes) / 2) {
      core_->presence_dropped.Inc();
      return;
    }
    session_.SendBinary(AsBytes(*frame));
    SyncBytesOut();
  }

  void AppendSettled() {
    --inflight_;
    if (paused_ && inflight_ <= kMaxInflightAppends / 2 && phase_ < Phase::kClosing) {
      paused_ = false;
      transport_.ResumeReading();
    }
  }

  bool in_room() const { return phase_ == Phase::kJoining || phase_ == Phase::kOpen; }

  // Closes after a failure the client cannot fix by repeating itself.
  void Fail(uint16_t code, std::string_view reason) {
    QUIRE_LOG(core_->logger, kInfo, "yws_bad_message")
        .Str("docId", id_)
        .Str("actor", actor_)
        .Int("code", code)
        .Str("reason", reason);
    BeginClose(code, reason);
  }

 private:
  enum class Phase { kStarting, kJoining, kOpen, kClosing, kClosed };

  uint64_t IdleMs() const {
    return static_cast<uint64_t>(std::max<int64_t>(core_->config.idle_timeout_s, 1)) * 1000;
  }
  size_t HardCap() const { return 2 * static_cast<size_t>(core_->config.send_queue_bytes); }

  void OnCreated(Result<projection::DocumentRecord> r) {
    if (phase_ != Phase::kStarting) return;
    if (r.ok()) {
      core_->documents_created.Inc();
      QUIRE_LOG(core_->logger, kInfo, "yws_document_created").Str("docId", id_);
    } else if (r.status().code() != StatusCode::kAlreadyExists) {
      // Another connection may have created it meanwhile; anything else is a real failure.
      QUIRE_LOG(core_->logger, kError, "yws_create_failed")
          .Str("docId", id_)
          .Str("error", r.status().ToString());
      BeginClose(kCloseInternalError, "cannot create the document");
      return;
    }
    CheckAndJoin();
  }

  void CheckAndJoin() {
    const projection::DocumentRecord* record = core_->docs.Find(id_);
    if (record == nullptr) return Deny("no such document");
    if (record->deleted()) return Deny("the document is deleted");
    if (record->crdt != CrdtKind::kYjs) return Deny("not a Yjs document");
    phase_ = Phase::kJoining;
    room_ = core_->hooks.acquire(id_);
    room_->Join(this);
    core_->awareness[id_].members.push_back(this);
    core_->docs.LoadHead(id_, [weak = weak_from_this()](Result<HeadState> head) {
      if (auto self = weak.lock()) self->OnHeadLoaded(std::move(head));
    });
  }

  void Deny(std::string_view reason) {
    QUIRE_LOG(core_->logger, kInfo, "yws_denied").Str("docId", id_).Str("reason", reason);
    session_.SendBinary(yjs::EncodeAuthPermissionDenied(reason));
    BeginClose(kClosePolicyViolation, reason);
  }

  // The head state folded into one update, or the failure.
  // The head state as one Yjs update (an empty update for a new document).
  static Result<Bytes> FoldHead(const HeadState& h) {
    Result<Bytes> folded = projection::FoldHeadState(h, CrdtKind::kYjs);
    if (folded.ok() && folded->empty()) return Bytes{0, 0};
    return folded;
  }

  void OnHeadLoaded(Result<HeadState> head) {
    if (phase_ != Phase::kJoining) return;
    auto self = shared_from_this();
    Result<Bytes> state = head.ok() ? FoldHead(*head) : Result<Bytes>(head.status());
    Result<Bytes> sv =
        state.ok() ? yjs::StateVectorFromUpdate(*state) : Result<Bytes>(state.status());
    if (!sv.ok()) {
      QUIRE_LOG(core_->logger, kError, "yws_state_load_failed")
          .Str("docId", id_)
          .Str("error", sv.status().ToString());
      BeginClose(kCloseInternalError, "cannot load the document state");
      return;
    }
    head_seq_ = head->head_seq;
    phase_ = Phase::kOpen;
    SendMessage(yjs::EncodeSyncStep1(*sv), false);
    const AwarenessDoc& aw = core_->awareness[id_];
    if (!aw.states.empty()) SendMessage(aw.EncodeAll(), false);
    for (const auto& [seq, bytes] : pending_relays_) {
      if (seq > head_seq_) SendMessage(yjs::EncodeSyncUpdate(*bytes), false);
    }
    pending_relays_.clear();
    auto held = std::move(held_in_);
    held_in_.clear();
    held_bytes_ = 0;
    for (const Bytes& m : held) {
      if (phase_ != Phase::kOpen) break;
      HandleMessage(m);
    }
  }

  void HandleMessage(ByteView data) {
    auto decoded = yjs::DecodeMessage(data);
    if (!decoded.ok()) return Fail(kCloseInvalidData, "malformed message");
    const yjs::Message& m = *decoded;
    switch (m.type) {
      case yjs::MessageType::kSync:
        if (m.sync_type == yjs::SyncType::kStep1) return AnswerStep1(m.payload);
        if (IsEmptyUpdate(m.payload)) return;
        return SubmitUpdate(Bytes(m.payload.begin(), m.payload.end()));
      case yjs::MessageType::kAwareness:
        return ApplyAwareness(data, m.payload);
      case yjs::MessageType::kQueryAwareness:
        return SendMessage(core_->awareness[id_].EncodeAll(), true);
      case yjs::MessageType::kAuth:
        return;  // clients have nothing to say here
    }
  }

  void AnswerStep1(ByteView state_vector) {
    if (!yjs::DecodeStateVector(state_vector).ok()) {
      return Fail(kCloseInvalidData, "malformed state vector");
    }
    core_->docs.LoadHead(
        id_, [weak = weak_from_this(),
              sv = Bytes(state_vector.begin(), state_vector.end())](Result<HeadState> head) {
          auto self = weak.lock();
          if (!self || self->phase_ != Phase::kOpen) return;
          Result<Bytes> state = head.ok() ? FoldHead(*head) : Result<Bytes>(head.status());
          Result<Bytes> diff =
              state.ok() ? yjs::DiffUpdate(*state, ByteView(sv)) : Result<Bytes>(state.status());
          if (!diff.ok()) {
            QUIRE_LOG(self->core_->logger, kError, "yws_step2_failed")
                .Str("docId", self->id_)
                .Str("error", diff.status().ToString());
            self->BeginClose(kCloseInternalError, "cannot compute the state");
            return;
          }
          self->SendMessage(yjs::EncodeSyncStep2(*diff), false);
        });
  }

  void ApplyAwareness(ByteView frame, ByteView update) {
    auto entries = yjs::DecodeAwarenessUpdate(update);
    if (!entries.ok()) return Fail(kCloseInvalidData, "malformed awareness update");
    AwarenessDoc& aw = core_->awareness[id_];
    for (const yjs::AwarenessEntry& e : *entries) {
      if (e.state_json == "null") {
        aw.states.erase(e.client);
        std::erase(announced_, e.client);
      } else {
        // y-websocket providers echo every awareness change they see, others' included, with
        // the clock they saw: only a higher clock makes the sender the owner of a client id
        // (the one whose close removes it).
        auto it = aw.states.find(e.client);
        if (it != aw.states.end() && it->second.clock >= e.clock) continue;
        aw.states[e.client] = AwarenessDoc::State{e.clock, std::string(e.state_json), this};
        if (std::find(announced_.begin(), announced_.end(), e.client) == announced_.end()) {
          announced_.push_back(e.client);
        }
      }
    }
    auto shared = std::make_shared<const std::string>(AsString(frame));
    auto members = aw.members;
    for (YwsConnection* c : members) c->DeliverAwareness(shared);
  }

  void SubmitUpdate(Bytes update) {
    if (static_cast<int64_t>(update.size()) > core_->config.max_payload_bytes) {
      core_->updates_rejected.Inc();
      return Fail(1009, "update too large");
    }
    ++room_->pending_appends;
    if (++inflight_ >= kMaxInflightAppends && !paused_) {
      paused_ = true;
      core_->read_pauses.Inc();
      transport_.PauseReading();
    }
    auto shared = std::make_shared<const Bytes>(update);
    OpId op_id = "yws-" + NewUuid();
    core_->docs.AppendUpdate(
        id_, op_id, actor_, std::move(update),
        [core = core_, room = room_, weak = weak_from_this(), shared, op_id,
         actor = actor_](Result<eventlog::AppendResult> result) {
          --room->pending_appends;
          auto sender = weak.lock();
          const RoomMember* from = (sender && sender->in_room()) ? sender.get() : nullptr;
          if (result.ok()) {
            if (!result->duplicate) {
              auto frame = std::make_shared<const std::string>(
                  ws::RemoteUpdateMessage(result->seq, Base64Encode(*shared), actor, op_id));
              room->RelayUpdate(from, result->seq, frame, shared);
              core->updates_accepted.Inc();
              QUIRE_LOG(core->logger, kDebug, "update_committed")
                  .Str("docId", room->document_id())
                  .Str("actor", actor)
                  .Str("opId", op_id)
                  .Int("seq", result->seq)
                  .Int("bytes", static_cast<int64_t>(shared->size()));
            }
          } else {
            core->updates_rejected.Inc();
            StatusCode code = result.status().code();
            bool storage = code == StatusCode::kUnavailable || code == StatusCode::kIoError ||
                           code == StatusCode::kCorruption;
            if (storage) core->storage_errors.Inc();
            LogLine(&core->logger, storage ? LogLevel::kError : LogLevel::kInfo, "update_rejected")
                .Str("docId", room->document_id())
                .Str("actor", actor)
                .Str("opId", op_id)
                .Str("error", result.status().ToString());
            // The client keeps its edits: after a storage failure it reconnects and its
            // step 2 carries them again. An invalid update cannot be repaired by resending.
            if (sender) {
              sender->BeginClose(storage ? kCloseTryAgainLater : kCloseInvalidData,
                                 storage ? "storage unavailable" : "update refused");
            }
          }
          if (sender) sender->AppendSettled();
          core->hooks.release(room);
        });
  }

  // Sends a binary message. A droppable one is skipped when the queue is half full; any
  // message beyond twice the send-queue bound closes the connection (slow consumer).
  void SendMessage(const Bytes& message, bool droppable) {
    if (phase_ != Phase::kOpen) return;
    size_t queued = session_.queued_bytes();
    if (droppable && queued > static_cast<size_t>(core_->config.send_queue_bytes) / 2) {
      core_->presence_dropped.Inc();
      return;
    }
    if (queued > 0 && queued + message.size() > HardCap()) return SlowConsumer();
    session_.SendBinary(message);
    SyncBytesOut();
  }

  void SlowConsumer() {
    if (phase_ >= Phase::kClosing) return;
    core_->slow_consumer_closes.Inc();
    QUIRE_LOG(core_->logger, kWarn, "ws_slow_consumer")
        .Str("docId", id_)
        .Str("actor", actor_)
        .Int("queuedBytes", static_cast<int64_t>(session_.queued_bytes()));
    BeginClose(kCloseTryAgainLater, "slow consumer");
  }

  bool WithinRateLimit() {
    if (rate_limited_) return false;
    const double rate =
        static_cast<double>(std::max<int64_t>(core_->config.max_messages_per_second, 1));
    uint64_t now = uv_now(core_->loop);
    if (!rate_started_) {
      rate_started_ = true;
      rate_tokens_ = 2 * rate;
    } else {
      rate_tokens_ = std::min(
          2 * rate, rate_tokens_ + static_cast<double>(now - rate_last_ms_) * rate / 1000.0);
    }
    rate_last_ms_ = now;
    if (rate_tokens_ >= 1) {
      rate_tokens_ -= 1;
      return true;
    }
    QUIRE_LOG(core_->logger, kWarn, "ws_rate_limited")
        .Str("docId", id_)
        .Str("actor", actor_)
        .Int("limit", core_->config.max_messages_per_second);
    rate_limited_ = true;
    rate_close_timer_.Start(0);
    return false;
  }

  void SyncBytesOut() {
    uint64_t out = session_.bytes_out();
    core_->bytes_out.Inc(static_cast<int64_t>(out - reported_out_));
    reported_out_ = out;
  }

  void BeginClose(uint16_t code, std::string_view reason) {
    if (phase_ >= Phase::kClosing) return;
    session_.StartClose(code, reason);
    SyncBytesOut();
    EnterClosing();
  }

  void EnterClosing() {
    if (phase_ >= Phase::kClosing) return;
    phase_ = Phase::kClosing;
    ping_timer_.Stop();
    idle_timer_.Stop();
    Leave();
    close_stage_ = 0;
    close_timer_.Start(0);
  }

  // Leaves the room and the awareness of the document; the others learn that the awareness
  // client ids this connection announced are gone.
  void Leave() {
    if (room_) {
      auto room = std::move(room_);
      room_.reset();
      room->Leave(this, nullptr);
      core_->hooks.release(room);
    }
    auto it = core_->awareness.find(id_);
    if (it == core_->awareness.end()) return;
    AwarenessDoc& aw = it->second;
    std::erase(aw.members, this);
    std::vector<yjs::AwarenessEntry> removed;
    for (uint64_t client : announced_) {
      auto s = aw.states.find(client);
      if (s == aw.states.end() || s->second.owner != this) continue;
      removed.push_back({client, s->second.clock + 1, "null"});
      aw.states.erase(s);
    }
    announced_.clear();
    if (!removed.empty() && !aw.members.empty()) {
      auto frame = std::make_shared<const std::string>(
          ToFrame(yjs::EncodeAwarenessMessage(yjs::EncodeAwarenessUpdate(removed))));
      auto members = aw.members;
      for (YwsConnection* c : members) c->DeliverAwareness(frame);
    }
    if (aw.members.empty()) core_->awareness.erase(it);
  }

  static void OnPingTimer(void* arg) {
    auto* c = static_cast<YwsConnection*>(arg);
    if (c->phase_ >= Phase::kClosing) return;
    c->session_.SendPing();
    c->SyncBytesOut();
  }

  static void OnIdleTimer(void* arg) {
    auto* c = static_cast<YwsConnection*>(arg);
    if (c->phase_ >= Phase::kClosing) return;
    auto self = c->shared_from_this();
    uint64_t silent = uv_now(c->core_->loop) - c->last_rx_ms_;
    if (silent >= c->IdleMs()) {
      QUIRE_LOG(c->core_->logger, kInfo, "ws_idle_timeout").Str("docId", c->id_);
      c->BeginClose(kCloseNormal, "idle timeout");
      return;
    }
    c->idle_timer_.Start(c->IdleMs() - silent);
  }

  static void OnRateCloseTimer(void* arg) {
    static_cast<YwsConnection*>(arg)->BeginClose(kClosePolicyViolation, "message rate limit");
  }

  static void OnCloseTimer(void* arg) {
    auto* c = static_cast<YwsConnection*>(arg);
    if (c->phase_ == Phase::kClosed) return;
    auto self = c->shared_from_this();
    if (c->close_stage_ == 0) {
      c->close_stage_ = 1;
      c->close_timer_.Start(c->IdleMs());
      if (c->paused_) {
        c->paused_ = false;
        c->transport_.ResumeReading();
      }
      c->transport_.Close();
    } else {
      c->transport_.Abort();
    }
  }

  std::shared_ptr<YwsCore> core_;
  Transport& transport_;
  DocumentId id_;
  ActorId actor_;
  WebSocketSession session_;
  Timer ping_timer_;
  Timer idle_timer_;
  Timer close_timer_;
  Timer rate_close_timer_;

  Phase phase_ = Phase::kStarting;
  std::shared_ptr<Room> room_;
  Seq head_seq_ = 0;  // the seq the initial state covered
  std::vector<std::pair<Seq, SharedBytes>> pending_relays_;
  std::vector<Bytes> held_in_;  // client messages received before the state was sent
  size_t held_bytes_ = 0;
  std::vector<uint64_t> announced_;  // awareness client ids this connection set
  uint64_t last_rx_ms_ = 0;
  bool rate_limited_ = false;
  bool rate_started_ = false;
  uint64_t rate_last_ms_ = 0;
  double rate_tokens_ = 0;
  int close_stage_ = 0;
  int inflight_ = 0;
  bool paused_ = false;
  uint64_t reported_out_ = 0;
};

class YwsHandle final : public StreamHandler {
 public:
  explicit YwsHandle(std::shared_ptr<YwsConnection> c) : c_(std::move(c)) {}
  void OnData(ByteView data) override { c_->OnData(data); }
  void OnShutdown() override { c_->OnShutdown(); }
  void OnClosed() override { c_->OnClosed(); }

 private:
  std::shared_ptr<YwsConnection> c_;
};

class YwsEndpoint final : public UpgradeHandler {
 public:
  explicit YwsEndpoint(std::shared_ptr<YwsCore> core) : core_(std::move(core)) {}

  std::unique_ptr<StreamHandler> Upgrade(const HttpRequest& request, Transport& transport,
                                         HttpResponse& reject) override {
    std::string_view path = request.path;
    if (!IsYwsPath(path)) {
      reject = HttpResponse::Error(404, "NOT_FOUND", "no WebSocket endpoint at this path");
      return nullptr;
    }
    DocumentId id(path.substr(kPathPrefix.size()));
    if (!IsValidDocumentId(id)) {
      reject = HttpResponse::Error(404, "NOT_FOUND", "document ids match [A-Za-z0-9._-]{1,128}");
      return nullptr;
    }
    if (request.method != "GET") {
      reject = HttpResponse::Error(405, "METHOD_NOT_ALLOWED", "WebSocket upgrades use GET");
      reject.Header("Allow", "GET");
      return nullptr;
    }
    auto upgrade = request.Header("upgrade");
    auto connection = request.Header("connection");
    if (!upgrade || !EqualsIgnoreCase(*upgrade, "websocket") || !connection ||
        !ContainsTokenIgnoreCase(*connection, "upgrade")) {
      reject = HttpResponse::Error(400, "BAD_UPGRADE", "expected Upgrade: websocket");
      return nullptr;
    }
    auto version = request.Header("sec-websocket-version");
    if (!version || *version != "13") {
      reject = HttpResponse::Error(426, "UNSUPPORTED_VERSION", "Sec-WebSocket-Version must be 13");
      reject.Header("Sec-WebSocket-Version", "13");
      return nullptr;
    }
    auto key = request.Header("sec-websocket-key");
    auto nonce = key ? Base64Decode(*key) : Result<Bytes>(Status::InvalidArgument("missing"));
    if (!nonce.ok() || nonce->size() != 16) {
      reject =
          HttpResponse::Error(400, "BAD_UPGRADE", "Sec-WebSocket-Key must be 16 bytes in base64");
      return nullptr;
    }
    if (core_->hooks.at_capacity(id)) {
      reject = HttpResponse::Error(503, "TOO_MANY_DOCUMENTS",
                                   "the server has its maximum of documents open; retry later");
      return nullptr;
    }
    transport.Send(
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " +
        internal::WebSocketAcceptKey(*key) + "\r\n\r\n");
    auto conn = std::make_shared<YwsConnection>(core_, transport, std::move(id));
    conn->Start();
    return std::make_unique<YwsHandle>(std::move(conn));
  }

 private:
  std::shared_ptr<YwsCore> core_;
};

}  // namespace

bool IsYwsPath(std::string_view path) { return path.starts_with(kPathPrefix); }

std::unique_ptr<UpgradeHandler> MakeYwsEndpoint(uv_loop_s* loop, DocumentService& docs,
                                                Metrics& metrics, const Config& config,
                                                const Logger& logger, RoomHooks rooms) {
  return std::make_unique<YwsEndpoint>(
      std::make_shared<YwsCore>(loop, docs, metrics, config, logger, std::move(rooms)));
}

}  // namespace quire::io
