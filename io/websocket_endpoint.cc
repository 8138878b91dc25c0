#include "io/websocket_endpoint.h"

#include <uv.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/base64.h"
#include "core/ids.h"
#include "io/internal/ws_sha1.h"
#include "io/json_protocol.h"
#include "io/room.h"
#include "io/websocket_session.h"
#include "io/yws_endpoint.h"

namespace quire::io {
namespace {

using projection::DocumentService;
using projection::HeadState;
using projection::TailUpdate;

constexpr std::string_view kPathPrefix = "/ws/documents/";

// Close codes (RFC 6455 section 7.4.1 and the IANA registry).
constexpr uint16_t kCloseNormal = 1000;
constexpr uint16_t kCloseGoingAway = 1001;
constexpr uint16_t kClosePolicyViolation = 1008;
constexpr uint16_t kCloseInternalError = 1011;
constexpr uint16_t kCloseTryAgainLater = 1013;

// A sender with this many appends (or a quarter of the send-queue bound in bytes) in flight
// stops being read until half of them completed. This also bounds the burst of relays one
// sender's group commit can put in every peer's queue at once.
constexpr int kMaxInflightAppends = 64;
// A peer whose queue stays above the bound this long is closed with 1013; one that reaches
// twice the bound is closed at once, so a connection never holds more than that.
constexpr uint64_t kSlowConsumerGraceMs = 2000;
// Presence is published at most once per this interval per member (20 messages/s).
constexpr uint64_t kPresenceIntervalMs = 50;
// Room on top of the payload limit for the JSON around a base64 payload.
constexpr uint64_t kMessageOverheadBytes = 64 << 10;

// A libuv timer owned by a C++ object. The handle lives on the heap and is freed in its close
// callback, so the owner may be destroyed at any time, even from inside the callback.
class UvTimer {
 public:
  using Fn = void (*)(void* arg);
  UvTimer(uv_loop_t* loop, Fn fn, void* arg) : fn_(fn), arg_(arg), handle_(new uv_timer_t) {
    uv_timer_init(loop, handle_);
    handle_->data = this;
  }
  ~UvTimer() {
    handle_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(handle_), &UvTimer::OnClose);
  }
  UvTimer(const UvTimer&) = delete;
  UvTimer& operator=(const UvTimer&) = delete;

  void Start(uint64_t timeout_ms, uint64_t repeat_ms = 0) {
    uv_timer_start(handle_, &UvTimer::OnFire, timeout_ms, repeat_ms);
  }
  void Stop() { uv_timer_stop(handle_); }
  bool active() const { return uv_is_active(reinterpret_cast<const uv_handle_t*>(handle_)) != 0; }

 private:
  static void OnFire(uv_timer_t* handle) noexcept {
    auto* self = static_cast<UvTimer*>(handle->data);
    if (self != nullptr) self->fn_(self->arg_);
  }
  static void OnClose(uv_handle_t* handle) noexcept {
    delete reinterpret_cast<uv_timer_t*>(handle);
  }

  Fn fn_;
  void* arg_;
  uv_timer_t* handle_;
};

int64_t WallClockMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

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

// State shared by the endpoint and its connections; kept alive by both, so completions that
// arrive after the endpoint is gone still find their rooms and metrics.
struct EndpointCore {
  EndpointCore(uv_loop_t* loop_in, DocumentService& docs_in, Metrics& metrics,
               const Config& config_in, const Logger& logger_in)
      : loop(loop_in),
        docs(docs_in),
        config(config_in),
        logger(logger_in),
        connections(metrics.gauge("quire_websocket_connections", "Open WebSocket connections")),
        open_rooms(metrics.gauge("quire_websocket_open_documents",
                                 "Documents with at least one WebSocket member")),
        updates_accepted(
            metrics.counter("quire_updates_accepted_total", "CRDT updates committed and relayed")),
        updates_rejected(metrics.counter(
            "quire_updates_rejected_total",
            "CRDT updates refused (invalid, too large, deleted document, storage failure)")),
        updates_duplicate(metrics.counter("quire_updates_duplicate_total",
                                          "Updates whose opId was already committed")),
        bytes_in(metrics.counter("quire_websocket_received_bytes_total",
                                 "Bytes received on WebSocket connections")),
        bytes_out(metrics.counter("quire_websocket_sent_bytes_total",
                                  "Bytes queued for sending on WebSocket connections")),
        broadcast_latency(metrics.histogram(
            "quire_broadcast_latency_seconds",
            "Server-side broadcast latency: update frame received to relays queued",
            Metrics::LatencyBounds())),
        presence_dropped(metrics.counter("quire_presence_dropped_total",
                                         "Presence messages dropped for peers behind")),
        slow_consumer_closes(
            metrics.counter("quire_slow_consumer_closes_total",
                            "WebSocket peers closed with 1013 for falling behind")),
        storage_errors(
            metrics.counter("quire_storage_errors_total", "Appends that failed in storage")),
        read_pauses(metrics.counter("quire_websocket_read_pauses_total",
                                    "Times a sender was not read while its appends committed")) {}

  std::shared_ptr<Room> AcquireRoom(const DocumentId& id) {
    auto& slot = rooms[id];
    if (!slot) {
      slot = std::make_shared<Room>(id);
      docs.Pin(id);
      open_rooms.Set(static_cast<int64_t>(rooms.size()));
    }
    return slot;
  }

  void MaybeReleaseRoom(const std::shared_ptr<Room>& room) {
    if (!room || !room->idle()) return;
    auto it = rooms.find(room->document_id());
    if (it == rooms.end() || it->second != room) return;
    docs.Unpin(room->document_id());
    rooms.erase(it);
    open_rooms.Set(static_cast<int64_t>(rooms.size()));
  }

  uv_loop_t* loop;
  DocumentService& docs;
  const Config& config;
  const Logger& logger;
  std::unordered_map<DocumentId, std::shared_ptr<Room>> rooms;

  Gauge& connections;
  Gauge& open_rooms;
  Counter& updates_accepted;
  Counter& updates_rejected;
  Counter& updates_duplicate;
  Counter& bytes_in;
  Counter& bytes_out;
  Histogram& broadcast_latency;
  Counter& presence_dropped;
  Counter& slow_consumer_closes;
  Counter& storage_errors;
  Counter& read_pauses;
};

struct JoinParams {
  DocumentId document_id;
  std::string user_id;
  std::string display_name;
  std::optional<Seq> since_seq;
};

// One WebSocket client of one document. Owned by a shared_ptr held by its StreamHandler;
// asynchronous completions hold weak references and find it gone after the socket closed.
//
// Phases: kJoining (member of the room; the state is being loaded, relays are buffered),
// kOpen, kClosing (a close frame was queued; out of the room; the transport is being closed),
// kClosed (the transport is gone; nothing may touch it).
class Connection final : public std::enable_shared_from_this<Connection>,
                         public WebSocketSession::Delegate,
                         public RoomMember {
 public:
  Connection(std::shared_ptr<EndpointCore> core, Transport& transport, JoinParams params)
      : core_(std::move(core)),
        transport_(transport),
        params_(std::move(params)),
        session_(
            transport, *this,
            static_cast<uint64_t>(core_->config.max_payload_bytes) * 4 / 3 + kMessageOverheadBytes),
        ping_timer_(core_->loop, &Connection::OnPingTimer, this),
        idle_timer_(core_->loop, &Connection::OnIdleTimer, this),
        presence_timer_(core_->loop, &Connection::OnPresenceTimer, this),
        close_timer_(core_->loop, &Connection::OnCloseTimer, this),
        slow_timer_(core_->loop, &Connection::OnSlowTimer, this),
        rate_close_timer_(core_->loop, &Connection::OnRateCloseTimer, this) {
    presence_.user_id = params_.user_id;
    presence_.display_name = params_.display_name;
    presence_.color = ws::DefaultColor(params_.user_id);
    presence_.status = "joined";
    core_->connections.Add(1);
  }

  ~Connection() override {
    // OnClosed() normally ran; if the server dropped the handler without it, still leave.
    LeaveRoom();
    core_->connections.Add(-1);
  }

  // Joins the room and starts loading the state. Called once, right after the 101 was sent.
  void Start() {
    last_rx_ms_ = uv_now(core_->loop);
    room_ = core_->AcquireRoom(params_.document_id);
    room_->Join(this);
    uint64_t ping_ms =
        static_cast<uint64_t>(std::max<int64_t>(core_->config.ping_interval_s, 1)) * 1000;
    ping_timer_.Start(ping_ms, ping_ms);
    idle_timer_.Start(IdleMs());
    PublishPresence();
    QUIRE_LOG(core_->logger, kInfo, "ws_connected")
        .Str("docId", params_.document_id)
        .Str("userId", params_.user_id)
        .Str("peer", transport_.peer())
        .Int("sinceSeq", params_.since_seq.value_or(-1));
    if (params_.since_seq) {
      core_->docs.ReadUpdatesSince(
          params_.document_id, *params_.since_seq,
          [weak = weak_from_this()](Result<std::vector<TailUpdate>> updates) {
            if (auto self = weak.lock()) self->OnCatchUpLoaded(std::move(updates));
          });
    } else {
      LoadHead();
    }
  }

  // --- StreamHandler, forwarded by ConnectionHandle ---
  void OnData(ByteView data) {
    if (phase_ >= Phase::kClosing) return;  // a close frame is out; nothing more is read
    auto self = shared_from_this();
    last_rx_ms_ = uv_now(core_->loop);
    core_->bytes_in.Inc(static_cast<int64_t>(data.size()));
    session_.Feed(data);
    SyncBytesOut();
    if (session_.close_sent() && phase_ < Phase::kClosing) {
      // wslay answered a close frame or refused the peer's bytes (1002 / 1007 / 1009).
      uint16_t code = session_.close_code_sent();
      LogLine(&core_->logger, session_.close_received() ? LogLevel::kInfo : LogLevel::kWarn,
              "ws_close")
          .Str("docId", params_.document_id)
          .Str("userId", params_.user_id)
          .Int("code", code)
          .Bool("byPeer", session_.close_received());
      EnterClosing();
    }
  }

  void OnDrained() {
    initial_allowance_ = 0;
    over_bound_ = false;
    slow_timer_.Stop();
  }

  void OnShutdown() { BeginClose(kCloseGoingAway, "server shutting down"); }

  void OnClosed() {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kClosed;
    ping_timer_.Stop();
    idle_timer_.Stop();
    presence_timer_.Stop();
    close_timer_.Stop();
    slow_timer_.Stop();
    rate_close_timer_.Stop();
    LeaveRoom();
    QUIRE_LOG(core_->logger, kInfo, "ws_closed")
        .Str("docId", params_.document_id)
        .Str("userId", params_.user_id)
        .Int("bytesIn", static_cast<int64_t>(session_.bytes_in()))
        .Int("bytesOut", static_cast<int64_t>(session_.bytes_out()));
  }

  // --- WebSocketSession::Delegate (called from inside Feed) ---
  void OnTextMessage(std::string_view text) override {
    if (phase_ >= Phase::kClosing || !WithinRateLimit()) return;
    uint64_t received_ns = uv_hrtime();  // broadcast latency counts parsing too
    ws::ParseResult parsed = ws::ParseClientMessage(text, core_->config.max_payload_bytes);
    if (!parsed.ok()) {
      const ws::ProtocolError& e = *parsed.error;
      if (e.code == ws::kErrPayloadTooLarge || !e.op_id.empty()) core_->updates_rejected.Inc();
      QUIRE_LOG(core_->logger, kInfo, "ws_bad_message")
          .Str("docId", params_.document_id)
          .Str("userId", params_.user_id)
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
      case ws::ClientType::kJoin:
        params_.user_id = m.user_id;
        params_.display_name = m.display_name;
        presence_.user_id = m.user_id;
        presence_.display_name = m.display_name;
        presence_.status = "joined";
        SchedulePresence();
        break;
      case ws::ClientType::kPresence:
        presence_.cursor = m.cursor;
        if (m.color) presence_.color = *m.color;
        presence_.status = "active";
        SchedulePresence();
        break;
      case ws::ClientType::kUpdate:
        SubmitUpdate(std::move(m), received_ns);
        break;
      case ws::ClientType::kSnapshot:
        SubmitSnapshot(std::move(m));
        break;
    }
  }

  void OnBinaryMessage(ByteView) override {
    if (phase_ >= Phase::kClosing || !WithinRateLimit()) return;
    SendDirect(ws::ErrorMessage(ws::kErrBinaryFrame,
                                "binary frames are not supported; send JSON text frames"));
  }

  // --- RoomMember ---
  void DeliverUpdate(Seq seq, const SharedFrame& frame) override {
    if (phase_ == Phase::kJoining) {
      held_bytes_ += frame->size();
      pending_relays_.push_back({seq, frame});
      if (held_bytes_ > HardCap()) SlowConsumer();
      return;
    }
    if (phase_ != Phase::kOpen || seq <= last_sent_seq_) return;
    last_sent_seq_ = seq;
    if (!Admit(frame->size())) return;
    Emit(*frame);
  }

  void DeliverPresence(const SharedFrame& frame) override {
    // While joining, presence is skipped: the newcomer gets everyone's current presence when
    // the state has been sent.
    if (phase_ != Phase::kOpen) return;
    if (session_.queued_bytes() > SoftMark()) {
      core_->presence_dropped.Inc();
      return;
    }
    Emit(*frame);
  }

  // Completion of an update this connection submitted (the connection may be closing).
  void AppendSettled(size_t bytes) {
    --inflight_;
    inflight_bytes_ -= bytes;
    if (paused_ && inflight_ <= kMaxInflightAppends / 2 &&
        inflight_bytes_ <= MaxInflightBytes() / 2 && phase_ < Phase::kClosing) {
      paused_ = false;
      transport_.ResumeReading();
    }
  }

  // A message for this client only (ack, error, pong). Held back while joining so the state
  // comes first.
  // Token bucket of config.max_messages_per_second (capacity twice that) on the loop's clock.
  // Over it: an `error` RATE_LIMITED, then close 1008; false means drop the message.
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
        .Str("docId", params_.document_id)
        .Str("userId", params_.user_id)
        .Int("limit", core_->config.max_messages_per_second);
    SendDirect(ws::ErrorMessage(
        "RATE_LIMITED", "more than " + std::to_string(core_->config.max_messages_per_second) +
                            " messages per second; closing"));
    // Close from a fresh stack: inside Feed, wslay would send the close frame ahead of the
    // answers (and this error) still queued as data messages.
    rate_limited_ = true;
    rate_close_timer_.Start(0);
    return false;
  }

  void SendDirect(std::string text) {
    if (phase_ == Phase::kJoining) {
      held_bytes_ += text.size();
      held_.push_back(std::move(text));
      if (held_bytes_ > HardCap()) SlowConsumer();
      return;
    }
    if (phase_ != Phase::kOpen) return;
    if (!Admit(text.size())) return;
    Emit(text);
  }

  bool in_room() const { return phase_ == Phase::kJoining || phase_ == Phase::kOpen; }
  const JoinParams& params() const { return params_; }

 private:
  enum class Phase { kJoining, kOpen, kClosing, kClosed };

  struct PendingRelay {
    Seq seq;
    SharedFrame frame;
  };

  uint64_t IdleMs() const {
    return static_cast<uint64_t>(std::max<int64_t>(core_->config.idle_timeout_s, 1)) * 1000;
  }
  size_t Bound() const {
    return static_cast<size_t>(core_->config.send_queue_bytes) + initial_allowance_;
  }
  size_t HardCap() const { return 2 * Bound(); }
  size_t SoftMark() const { return static_cast<size_t>(core_->config.send_queue_bytes) / 2; }
  size_t MaxInflightBytes() const {
    return std::max<size_t>(static_cast<size_t>(core_->config.send_queue_bytes) / 4, 1);
  }

  // Decides whether a message of `n` bytes that must not be dropped may be queued. A message
  // always fits an empty queue, so one large message cannot lock a reader out. Above the
  // bound the peer gets kSlowConsumerGraceMs to drain below it; at twice the bound, or when
  // the grace ran out, it is closed with 1013 and false is returned.
  bool Admit(size_t n) {
    size_t queued = session_.queued_bytes();
    if (queued == 0) {
      initial_allowance_ = 0;
      return true;
    }
    if (queued + n > HardCap()) {
      SlowConsumer();
      return false;
    }
    if (queued + n > Bound() && !over_bound_) {
      over_bound_ = true;
      slow_timer_.Start(kSlowConsumerGraceMs);
    }
    return true;
  }

  void Emit(std::string_view text) {
    session_.SendText(text);
    SyncBytesOut();
  }

  void SyncBytesOut() {
    uint64_t out = session_.bytes_out();
    core_->bytes_out.Inc(static_cast<int64_t>(out - reported_out_));
    reported_out_ = out;
  }

  void LoadHead() {
    core_->docs.LoadHead(params_.document_id, [weak = weak_from_this()](Result<HeadState> head) {
      if (auto self = weak.lock()) self->OnHeadLoaded(std::move(head));
    });
  }

  void OnHeadLoaded(Result<HeadState> head) {
    if (phase_ != Phase::kJoining) return;
    auto self = shared_from_this();
    if (!head.ok()) {
      QUIRE_LOG(core_->logger, kError, "ws_state_load_failed")
          .Str("docId", params_.document_id)
          .Str("error", head.status().ToString());
      bool not_found = head.status().code() == StatusCode::kNotFound;
      Emit(ws::ErrorMessage(not_found ? ws::kErrNotFound : ws::kErrStorageUnavailable,
                            "cannot load the document state"));
      BeginClose(kCloseInternalError, "cannot load the document state");
      return;
    }
    const HeadState& h = *head;
    // A Yjs document's state is the fold of snapshot and tail, one update a fresh Y.Doc
    // applies at once, covering the head. Other CRDTs get the snapshot and then the tail.
    const eventlog::DocumentRecord* record = core_->docs.Find(params_.document_id);
    if (record != nullptr && record->crdt == CrdtKind::kYjs) {
      Result<Bytes> folded = projection::FoldHeadState(h, CrdtKind::kYjs);
      if (folded.ok()) {
        Emit(ws::StateMessage(h.head_seq, *folded, h.head_seq));
        last_sent_seq_ = h.head_seq;
        FinishJoin();
        return;
      }
      // A fold failure would mean stored updates the engine cannot merge: fall back to the
      // unfolded form, which clients can still apply, and say so.
      QUIRE_LOG(core_->logger, kError, "ws_state_fold_failed")
          .Str("docId", params_.document_id)
          .Str("error", folded.status().ToString());
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
    if (phase_ != Phase::kJoining) return;
    if (!updates.ok()) {
      // FailedPrecondition: some updates after sinceSeq are gone; take the full state.
      QUIRE_LOG(core_->logger, kInfo, "ws_catch_up_full_state")
          .Str("docId", params_.document_id)
          .Int("sinceSeq", *params_.since_seq)
          .Str("reason", updates.status().ToString());
      LoadHead();
      return;
    }
    auto self = shared_from_this();
    last_sent_seq_ = *params_.since_seq;
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
    phase_ = Phase::kOpen;
    for (const PendingRelay& r : pending_relays_) {
      if (r.seq <= last_sent_seq_) continue;
      Emit(*r.frame);
      last_sent_seq_ = r.seq;
    }
    pending_relays_.clear();
    for (const SharedFrame& f : room_->PresenceOf(this)) Emit(*f);
    for (const std::string& text : held_) Emit(text);
    held_.clear();
    held_bytes_ = 0;
    // The initial state may exceed the bound by itself; allow it until the queue drains.
    initial_allowance_ = session_.queued_bytes();
    if (session_.close_sent()) EnterClosing();
  }

  void SchedulePresence() {
    uint64_t now = uv_now(core_->loop);
    if (presence_timer_.active()) return;  // the pending publication will carry the latest
    if (now >= last_presence_ms_ + kPresenceIntervalMs) {
      PublishPresence();
    } else {
      presence_timer_.Start(last_presence_ms_ + kPresenceIntervalMs - now);
    }
  }

  void PublishPresence() {
    if (!in_room() || !room_) return;
    last_presence_ms_ = uv_now(core_->loop);
    room_->BroadcastPresence(this,
                             std::make_shared<const std::string>(ws::PresenceMessage(presence_)));
  }

  void SubmitUpdate(ws::ClientMessage m, uint64_t received_ns) {
    ActorId actor = m.actor_id.empty() ? params_.user_id : m.actor_id;
    ++room_->pending_appends;
    size_t bytes = m.delta.size();
    inflight_bytes_ += bytes;
    if ((++inflight_ >= kMaxInflightAppends || inflight_bytes_ >= MaxInflightBytes()) && !paused_) {
      paused_ = true;
      core_->read_pauses.Inc();
      transport_.PauseReading();
    }
    core_->docs.AppendUpdate(
        params_.document_id, m.op_id, actor, std::move(m.delta),
        [core = core_, room = room_, weak = weak_from_this(), op_id = m.op_id, actor,
         delta_b64 = std::move(m.delta_b64), received_ns, bytes,
         user_id = params_.user_id](Result<eventlog::AppendResult> result) {
          --room->pending_appends;
          auto sender = weak.lock();
          const RoomMember* from = (sender && sender->in_room()) ? sender.get() : nullptr;
          if (result.ok()) {
            Seq seq = result->seq;
            if (!result->duplicate) {
              auto frame = std::make_shared<const std::string>(
                  ws::RemoteUpdateMessage(seq, delta_b64, actor, op_id));
              room->RelayUpdate(from, seq, frame, nullptr, delta_b64);
              core->broadcast_latency.Observe(static_cast<double>(uv_hrtime() - received_ns) / 1e9);
              core->updates_accepted.Inc();
              QUIRE_LOG(core->logger, kDebug, "update_committed")
                  .Str("docId", room->document_id())
                  .Str("userId", user_id)
                  .Str("opId", op_id)
                  .Int("seq", seq)
                  .Int("bytes", static_cast<int64_t>(delta_b64.size()) * 3 / 4);
            } else {
              core->updates_duplicate.Inc();
              QUIRE_LOG(core->logger, kInfo, "update_duplicate")
                  .Str("docId", room->document_id())
                  .Str("userId", user_id)
                  .Str("opId", op_id)
                  .Int("seq", seq);
            }
            if (sender) sender->SendDirect(ws::AckMessage(op_id, seq));
          } else {
            const auto* record = core->docs.Find(room->document_id());
            auto [code, storage] = AppendErrorCode(
                result.status(), record != nullptr && record->deleted(), /*snapshot=*/false);
            core->updates_rejected.Inc();
            if (storage) core->storage_errors.Inc();
            LogLine(&core->logger, storage ? LogLevel::kError : LogLevel::kInfo, "update_rejected")
                .Str("docId", room->document_id())
                .Str("userId", user_id)
                .Str("opId", op_id)
                .Str("code", code)
                .Str("error", result.status().ToString());
            if (sender)
              sender->SendDirect(ws::ErrorMessage(code, result.status().message(), op_id));
          }
          if (sender) sender->AppendSettled(bytes);
          core->MaybeReleaseRoom(room);
        });
  }

  void SubmitSnapshot(ws::ClientMessage m) {
    ++room_->pending_appends;
    core_->docs.AppendSnapshot(
        params_.document_id, m.version, std::move(m.snapshot), params_.user_id,
        [core = core_, room = room_, weak = weak_from_this(), op_id = m.op_id, version = m.version,
         user_id = params_.user_id](Result<eventlog::AppendResult> result) {
          --room->pending_appends;
          auto sender = weak.lock();
          if (result.ok()) {
            QUIRE_LOG(core->logger, kInfo, "client_snapshot_committed")
                .Str("docId", room->document_id())
                .Str("userId", user_id)
                .Int("version", version)
                .Int("seq", result->seq);
            if (sender) sender->SendDirect(ws::AckMessage(op_id, result->seq));
          } else {
            const auto* record = core->docs.Find(room->document_id());
            auto [code, storage] = AppendErrorCode(
                result.status(), record != nullptr && record->deleted(), /*snapshot=*/true);
            if (storage) core->storage_errors.Inc();
            LogLine(&core->logger, storage ? LogLevel::kError : LogLevel::kInfo,
                    "client_snapshot_rejected")
                .Str("docId", room->document_id())
                .Str("userId", user_id)
                .Str("code", code)
                .Str("error", result.status().ToString());
            if (sender)
              sender->SendDirect(ws::ErrorMessage(code, result.status().message(), op_id));
          }
          core->MaybeReleaseRoom(room);
        });
  }

  void SlowConsumer() {
    if (phase_ >= Phase::kClosing) return;
    core_->slow_consumer_closes.Inc();
    QUIRE_LOG(core_->logger, kWarn, "ws_slow_consumer")
        .Str("docId", params_.document_id)
        .Str("userId", params_.user_id)
        .Int("queuedBytes", static_cast<int64_t>(session_.queued_bytes()))
        .Int("bound", static_cast<int64_t>(Bound()));
    BeginClose(kCloseTryAgainLater, "slow consumer");
  }

  // Sends a close frame (after what is queued) and closes the transport.
  void BeginClose(uint16_t code, std::string_view reason) {
    if (phase_ >= Phase::kClosing) return;
    session_.StartClose(code, reason);
    SyncBytesOut();
    EnterClosing();
  }

  // A close frame is out: leave the room now, close the transport from a fresh stack (this
  // may run inside a room's fan-out or inside wslay), abort it if the peer does not drain.
  void EnterClosing() {
    if (phase_ >= Phase::kClosing) return;
    phase_ = Phase::kClosing;
    ping_timer_.Stop();
    idle_timer_.Stop();
    presence_timer_.Stop();
    slow_timer_.Stop();
    LeaveRoom();
    close_stage_ = 0;
    close_timer_.Start(0);
  }

  void LeaveRoom() {
    if (!room_) return;
    auto room = std::move(room_);
    room_.reset();
    presence_.status = "left";
    room->Leave(this, std::make_shared<const std::string>(ws::PresenceMessage(presence_)));
    core_->MaybeReleaseRoom(room);
  }

  static void OnPingTimer(void* arg) {
    auto* c = static_cast<Connection*>(arg);
    if (c->phase_ >= Phase::kClosing) return;
    c->session_.SendPing();
    c->SyncBytesOut();
  }

  static void OnIdleTimer(void* arg) {
    auto* c = static_cast<Connection*>(arg);
    if (c->phase_ >= Phase::kClosing) return;
    auto self = c->shared_from_this();
    uint64_t silent = uv_now(c->core_->loop) - c->last_rx_ms_;
    if (silent >= c->IdleMs()) {
      QUIRE_LOG(c->core_->logger, kInfo, "ws_idle_timeout")
          .Str("docId", c->params_.document_id)
          .Str("userId", c->params_.user_id);
      c->BeginClose(kCloseNormal, "idle timeout");
      return;
    }
    c->idle_timer_.Start(c->IdleMs() - silent);
  }

  static void OnSlowTimer(void* arg) {
    auto* c = static_cast<Connection*>(arg);
    if (c->phase_ >= Phase::kClosing) return;
    if (c->session_.queued_bytes() > c->Bound()) {
      c->SlowConsumer();
    } else {
      c->over_bound_ = false;
    }
  }

  static void OnRateCloseTimer(void* arg) {
    static_cast<Connection*>(arg)->BeginClose(kClosePolicyViolation, "message rate limit");
  }

  static void OnPresenceTimer(void* arg) {
    auto* c = static_cast<Connection*>(arg);
    if (c->phase_ >= Phase::kClosing) return;
    c->PublishPresence();
  }

  static void OnCloseTimer(void* arg) {
    auto* c = static_cast<Connection*>(arg);
    if (c->phase_ == Phase::kClosed) return;
    // The transport may call OnClosed() synchronously and the handler be destroyed; keep this
    // object alive until we return.
    auto self = c->shared_from_this();
    if (c->close_stage_ == 0) {
      c->close_stage_ = 1;
      // The peer may take what is queued (at most twice the bound) and our close frame as long
      // as it would be allowed to stay silent; then the socket is aborted.
      c->close_timer_.Start(c->IdleMs());
      if (c->paused_) {
        c->paused_ = false;
        c->transport_.ResumeReading();  // read the peer's close reply rather than reset
      }
      c->transport_.Close();
    } else {
      c->transport_.Abort();
    }
  }

  std::shared_ptr<EndpointCore> core_;
  Transport& transport_;  // valid until OnClosed()
  JoinParams params_;
  WebSocketSession session_;
  UvTimer ping_timer_;
  UvTimer idle_timer_;
  UvTimer presence_timer_;
  UvTimer close_timer_;
  UvTimer slow_timer_;
  UvTimer rate_close_timer_;

  Phase phase_ = Phase::kJoining;
  std::shared_ptr<Room> room_;  // set while a member
  ws::PresenceInfo presence_;
  uint64_t last_presence_ms_ = 0;
  uint64_t last_rx_ms_ = 0;
  bool rate_limited_ = false;  // over the limit: messages are dropped until the close
  bool rate_started_ = false;  // the bucket starts full at the first message
  uint64_t rate_last_ms_ = 0;
  double rate_tokens_ = 0;
  int close_stage_ = 0;

  Seq last_sent_seq_ = 0;  // the highest seq this client has (state head or last relay)
  std::vector<PendingRelay> pending_relays_;  // relays that arrived while joining
  std::vector<std::string> held_;             // direct messages that arrived while joining
  size_t held_bytes_ = 0;
  size_t initial_allowance_ = 0;  // bytes of the initial state still counted against the bound

  bool over_bound_ = false;  // above the bound; slow_timer_ runs
  int inflight_ = 0;
  size_t inflight_bytes_ = 0;
  bool paused_ = false;
  uint64_t reported_out_ = 0;
};

class ConnectionHandle final : public StreamHandler {
 public:
  explicit ConnectionHandle(std::shared_ptr<Connection> connection)
      : connection_(std::move(connection)) {}
  void OnData(ByteView data) override { connection_->OnData(data); }
  void OnDrained() override { connection_->OnDrained(); }
  void OnShutdown() override { connection_->OnShutdown(); }
  void OnClosed() override { connection_->OnClosed(); }

 private:
  std::shared_ptr<Connection> connection_;
};

class WebSocketEndpoint final : public UpgradeHandler {
 public:
  WebSocketEndpoint(std::shared_ptr<EndpointCore> core, Metrics& metrics)
      : core_(std::move(core)),
        // The binary protocols share this endpoint's rooms, so their members and the JSON
        // members of a document relay to each other.
        yws_(MakeYwsEndpoint(
            core_->loop, core_->docs, metrics, core_->config, core_->logger,
            RoomHooks{
                [core = core_](const DocumentId& id) { return core->AcquireRoom(id); },
                [core = core_](const std::shared_ptr<Room>& room) { core->MaybeReleaseRoom(room); },
                [core = core_](const DocumentId& id) {
                  return core->rooms.count(id) == 0 && static_cast<int64_t>(core->rooms.size()) >=
                                                           core->config.max_open_documents;
                }})) {}

  std::unique_ptr<StreamHandler> Upgrade(const HttpRequest& request, Transport& transport,
                                         HttpResponse& reject) override {
    std::string_view path = request.path;
    if (IsYwsPath(path)) return yws_->Upgrade(request, transport, reject);
    if (path.substr(0, kPathPrefix.size()) != kPathPrefix) {
      reject = HttpResponse::Error(404, "NOT_FOUND", "no WebSocket endpoint at this path");
      return nullptr;
    }
    DocumentId id(path.substr(kPathPrefix.size()));
    if (!IsValidDocumentId(id)) {
      reject = HttpResponse::Error(404, "NOT_FOUND", "no such document");
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
    if (!key) {
      reject = HttpResponse::Error(400, "BAD_UPGRADE", "Sec-WebSocket-Key is missing");
      return nullptr;
    }
    auto nonce = Base64Decode(*key);
    if (!nonce.ok() || nonce->size() != 16) {
      reject =
          HttpResponse::Error(400, "BAD_UPGRADE", "Sec-WebSocket-Key must be 16 bytes in base64");
      return nullptr;
    }

    const projection::DocumentRecord* record = core_->docs.Find(id);
    if (record == nullptr) {
      reject = HttpResponse::Error(404, "NOT_FOUND", "no such document");
      return nullptr;
    }
    if (record->deleted()) {
      reject = HttpResponse::Error(410, "DOCUMENT_DELETED", "the document is deleted");
      return nullptr;
    }

    if (core_->rooms.count(id) == 0 &&
        static_cast<int64_t>(core_->rooms.size()) >= core_->config.max_open_documents) {
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

    std::string response =
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " +
        internal::WebSocketAcceptKey(*key) + "\r\n\r\n";
    transport.Send(std::move(response));

    auto conn = std::make_shared<Connection>(core_, transport, std::move(params));
    conn->Start();
    return std::make_unique<ConnectionHandle>(std::move(conn));
  }

 private:
  std::shared_ptr<EndpointCore> core_;
  std::unique_ptr<UpgradeHandler> yws_;
};

}  // namespace

std::unique_ptr<UpgradeHandler> MakeWebSocketEndpoint(uv_loop_s* loop, DocumentService& docs,
                                                      io::Metrics& metrics, const Config& config,
                                                      const Logger& logger) {
  return std::make_unique<WebSocketEndpoint>(
      std::make_shared<EndpointCore>(loop, docs, metrics, config, logger), metrics);
}

}  // namespace quire::io
