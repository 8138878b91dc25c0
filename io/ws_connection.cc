#include "io/ws_connection.h"

#include <uv.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <utility>

#include "core/base64.h"
#include "io/internal/ws_sha1.h"
#include "io/internal/ws_timer.h"

namespace quire::io {
namespace {

using internal::WsTimer;

// A sender with this many appends (or a quarter of the send-queue bound in bytes) in flight
// stops being read until half of them completed. This also bounds the burst of relays one
// sender's group commit can put in every peer's queue at once.
constexpr int kMaxInflightAppends = 64;
// A peer whose queue stays above the bound this long is closed with 1013; one that reaches
// twice the bound is closed at once, so a connection never holds more than that.
constexpr uint64_t kSlowConsumerGraceMs = 2000;
// Roles of open connections are re-read this often while access control is on.
constexpr uint64_t kAccessCheckMs = 1000;

// AccessControl::ExpiresAt is wall-clock time (a JWT's exp plus the clock skew).
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

// Checks the RFC 6455 handshake fields. On success returns true and sets `*key`.
bool ValidateHandshake(const HttpRequest& request, HttpResponse& reject, std::string* key) {
  if (request.method != "GET") {
    reject = HttpResponse::Error(405, "METHOD_NOT_ALLOWED", "WebSocket upgrades use GET");
    reject.Header("Allow", "GET");
    return false;
  }
  auto upgrade = request.Header("upgrade");
  auto connection = request.Header("connection");
  if (!upgrade || !EqualsIgnoreCase(*upgrade, "websocket") || !connection ||
      !ContainsTokenIgnoreCase(*connection, "upgrade")) {
    reject = HttpResponse::Error(400, "BAD_UPGRADE", "expected Upgrade: websocket");
    return false;
  }
  auto version = request.Header("sec-websocket-version");
  if (!version || *version != "13") {
    reject = HttpResponse::Error(426, "UNSUPPORTED_VERSION", "Sec-WebSocket-Version must be 13");
    reject.Header("Sec-WebSocket-Version", "13");
    return false;
  }
  auto key_header = request.Header("sec-websocket-key");
  if (!key_header) {
    reject = HttpResponse::Error(400, "BAD_UPGRADE", "Sec-WebSocket-Key is missing");
    return false;
  }
  auto nonce = Base64Decode(*key_header);
  if (!nonce.ok() || nonce->size() != 16) {
    reject =
        HttpResponse::Error(400, "BAD_UPGRADE", "Sec-WebSocket-Key must be 16 bytes in base64");
    return false;
  }
  *key = std::string(*key_header);
  return true;
}

class WsHandle final : public StreamHandler {
 public:
  explicit WsHandle(std::shared_ptr<WsConnection> connection)
      : connection_(std::move(connection)) {}
  void OnData(ByteView data) override { connection_->HandleData(data); }
  void OnDrained() override { connection_->HandleDrained(); }
  void OnShutdown() override { connection_->HandleShutdown(); }
  void OnClosed() override { connection_->HandleClosed(); }

 private:
  std::shared_ptr<WsConnection> connection_;
};

class WsRouter final : public UpgradeHandler {
 public:
  WsRouter(std::shared_ptr<WsHub> hub, std::vector<WsRoute> routes) : hub_(std::move(hub)) {
    for (WsRoute& r : routes) {
      entries_.push_back(Entry{std::move(r.matches), r.make(hub_)});
    }
  }

  std::unique_ptr<StreamHandler> Upgrade(const HttpRequest& request, Transport& transport,
                                         HttpResponse& reject) override {
    std::string_view path = request.path;
    WsEndpoint* endpoint = nullptr;
    for (const Entry& e : entries_) {
      if (e.matches(path)) {
        endpoint = e.endpoint.get();
        break;
      }
    }
    if (endpoint == nullptr) {
      reject = HttpResponse::Error(404, "NOT_FOUND", "no WebSocket endpoint at this path");
      return nullptr;
    }
    if (!endpoint->CheckPath(path, reject)) return nullptr;
    std::string key;
    if (!ValidateHandshake(request, reject, &key)) return nullptr;

    WsUpgrade upgrade{request, path, Principal{}};
    if (!endpoint->authenticates_in_protocol()) {
      std::string why;
      std::optional<Principal> principal =
          hub_->access().Authenticate(TokenFromRequest(request), &why);
      if (!principal) {
        QUIRE_LOG(hub_->logger(), kInfo, "ws_unauthenticated").Str("path", path).Str("reason", why);
        reject = HttpResponse::Error(401, "UNAUTHENTICATED",
                                     why.empty() ? "a valid token is required" : why);
        return nullptr;
      }
      upgrade.principal = std::move(*principal);
    }

    std::shared_ptr<WsConnection> connection = endpoint->Accept(upgrade, transport, reject);
    if (!connection) return nullptr;
    transport.Send(
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " +
        internal::WebSocketAcceptKey(key) + "\r\n\r\n");
    connection->Start();
    return std::make_unique<WsHandle>(std::move(connection));
  }

 private:
  struct Entry {
    std::function<bool(std::string_view)> matches;
    std::unique_ptr<WsEndpoint> endpoint;
  };
  std::shared_ptr<WsHub> hub_;
  std::vector<Entry> entries_;
};

}  // namespace

// --- WsHub ---

WsHub::WsHub(uv_loop_s* loop, projection::DocumentService& docs, Metrics& metrics,
             const Config& config, const Logger& logger, const AccessControl* access)
    : connections(metrics.gauge("quire_websocket_connections", "Open WebSocket connections")),
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
      broadcast_latency(
          metrics.histogram("quire_broadcast_latency_seconds",
                            "Server-side broadcast latency: update frame received to relays queued",
                            Metrics::LatencyBounds())),
      presence_dropped(metrics.counter("quire_presence_dropped_total",
                                       "Presence messages dropped for peers behind")),
      slow_consumer_closes(metrics.counter("quire_slow_consumer_closes_total",
                                           "WebSocket peers closed with 1013 for falling behind")),
      storage_errors(
          metrics.counter("quire_storage_errors_total", "Appends that failed in storage")),
      read_pauses(metrics.counter("quire_websocket_read_pauses_total",
                                  "Times a sender was not read while its appends committed")),
      // An eighth of the head cache's bound (32 MiB by default).
      folded_heads(
          static_cast<size_t>(std::max<int64_t>(config.head_cache_bytes / 8, 0)),
          &metrics.counter(
              "quire_join_state_cache_hits_total",
              "Lookups of a Yjs document's folded head state (join state, sync step 1 or 2) "
              "that found it at the current head"),
          &metrics.counter("quire_join_state_cache_misses_total",
                           "Lookups of a Yjs document's folded head state that had to fold it")),
      loop_(loop),
      docs_(docs),
      metrics_(metrics),
      config_(config),
      logger_(logger),
      access_(access) {
  if (access_ == nullptr) {
    owned_access_ =
        MakeOpenAccessControl([&docs](const DocumentId& id) { return docs.Find(id) != nullptr; });
    access_ = owned_access_.get();
  }
  access_timer_ = std::make_unique<WsTimer>(loop_, &WsHub::OnAccessTimer, this);
}

WsHub::~WsHub() = default;

void WsHub::RegisterForAccessChecks(WsConnection* connection) {
  if (std::find(access_checked_.begin(), access_checked_.end(), connection) !=
      access_checked_.end()) {
    return;
  }
  access_checked_.push_back(connection);
  if (!access_timer_->active()) access_timer_->Start(kAccessCheckMs, kAccessCheckMs);
}

void WsHub::UnregisterForAccessChecks(WsConnection* connection) {
  std::erase(access_checked_, connection);
  if (access_checked_.empty()) access_timer_->Stop();
}

void WsHub::OnAccessTimer(void* arg) {
  auto* hub = static_cast<WsHub*>(arg);
  // Closing a connection unregisters it: iterate over owning copies.
  std::vector<std::shared_ptr<WsConnection>> connections;
  connections.reserve(hub->access_checked_.size());
  for (WsConnection* c : hub->access_checked_) connections.push_back(c->shared_from_this());
  for (const auto& c : connections) c->RecheckAccess();
}

std::shared_ptr<Room> WsHub::AcquireRoom(const DocumentId& id) {
  auto& slot = rooms_[id];
  if (!slot) {
    slot = std::make_shared<Room>(id);
    docs_.Pin(id);
    open_rooms.Set(static_cast<int64_t>(rooms_.size()));
  }
  return slot;
}

void WsHub::MaybeReleaseRoom(const std::shared_ptr<Room>& room) {
  if (!room || !room->idle()) return;
  auto it = rooms_.find(room->document_id());
  if (it == rooms_.end() || it->second != room) return;
  docs_.Unpin(room->document_id());
  rooms_.erase(it);
  open_rooms.Set(static_cast<int64_t>(rooms_.size()));
}

bool WsHub::AtCapacity(const DocumentId& id) const {
  return rooms_.count(id) == 0 && static_cast<int64_t>(rooms_.size()) >= config_.max_open_documents;
}

std::shared_ptr<Room> WsHub::FindRoom(const DocumentId& id) const {
  auto it = rooms_.find(id);
  return it == rooms_.end() ? nullptr : it->second;
}

bool IsStorageFailure(const Status& status) {
  StatusCode code = status.code();
  return code == StatusCode::kUnavailable || code == StatusCode::kIoError ||
         code == StatusCode::kCorruption;
}

// --- WsConnection ---

WsConnection::WsConnection(std::shared_ptr<WsHub> hub, Transport& transport,
                           WsConnectionOptions options)
    : hub_(std::move(hub)),
      transport_(transport),
      options_(options),
      session_(transport, *this, options.max_message_bytes),
      timers_(hub_->loop(), &WsConnection::OnTimers, this) {
  hub_->connections.Add(1);
  if (options_.protocol_connections != nullptr) options_.protocol_connections->Add(1);
}

WsConnection::~WsConnection() {
  if (access_checked_) hub_->UnregisterForAccessChecks(this);
  hub_->connections.Add(-1);
  if (options_.protocol_connections != nullptr) options_.protocol_connections->Add(-1);
}

void WsConnection::Start() {
  if (phase_ != Phase::kNew) return;
  phase_ = Phase::kOpen;
  last_rx_ms_ = uv_now(hub_->loop());
  timers_.Start(kPingTimer, PingMs());
  timers_.Start(kIdleTimer, IdleMs());
  TimestampMs expires_at = hub_->access().enabled() ? hub_->access().ExpiresAt(principal()) : 0;
  if (expires_at != 0) {
    int64_t left = expires_at - WallClockMs();
    timers_.Start(kExpiryTimer, static_cast<uint64_t>(std::max<int64_t>(left, 0)));
  }
  OnStart();
}

const Principal& WsConnection::principal() const {
  static const Principal kAnonymous;
  return principal_ != nullptr ? *principal_ : kAnonymous;
}

void WsConnection::set_principal(Principal p) {
  // Every field of Principal at its default (keep this in step with io/access.h).
  bool anonymous =
      p.user_id.empty() && p.name.empty() && p.expires_at == 0 && p.document_grants.empty();
  principal_ = anonymous ? nullptr : std::make_unique<const Principal>(std::move(p));
}

void WsConnection::TrackDocument(const DocumentId& id, Role role) {
  roles_[id] = role;
  if (!access_checked_ && phase_ != Phase::kClosing && phase_ != Phase::kClosed &&
      hub_->access().enabled()) {
    access_checked_ = true;
    hub_->RegisterForAccessChecks(this);
  }
}

void WsConnection::UntrackDocument(const DocumentId& id) {
  roles_.erase(id);
  if (roles_.empty()) StopAccessChecks();
}

Role WsConnection::RoleOn(const DocumentId& id) const {
  auto it = roles_.find(id);
  return it == roles_.end() ? Role::kNone : it->second;
}

void WsConnection::StopAccessChecks() {
  if (!access_checked_) return;
  access_checked_ = false;
  hub_->UnregisterForAccessChecks(this);
}

void WsConnection::RecheckAccess() {
  if (phase_ != Phase::kOpen) return;
  auto self = shared_from_this();
  if (TimestampMs expires_at = hub_->access().ExpiresAt(principal());
      expires_at != 0 && WallClockMs() >= expires_at) {
    OnExpiryTimer();
    return;
  }
  auto roles = roles_;  // OnRoleChanged may untrack
  for (const auto& [id, old_role] : roles) {
    if (phase_ != Phase::kOpen) return;
    Role role = hub_->access().RoleFor(principal(), id);
    if (role == old_role || roles_.count(id) == 0) continue;
    roles_[id] = role;
    QUIRE_LOG(hub_->logger(), kInfo, "ws_role_changed")
        .Str("docId", id)
        .Str("userId", principal().user_id)
        .Str("from", RoleName(old_role))
        .Str("to", RoleName(role));
    OnRoleChanged(id, old_role, role);
  }
}

void WsConnection::OnRoleChanged(const DocumentId& /*id*/, Role /*old_role*/, Role new_role) {
  if (new_role == Role::kNone) BeginClose(kWsCloseForbidden, "access revoked");
}

void WsConnection::OnExpiryTimer() {
  if (phase_ != Phase::kOpen) return;
  auto self = shared_from_this();
  QUIRE_LOG(hub_->logger(), kInfo, "ws_token_expired")
      .Str("docId", log_document_)
      .Str("userId", principal().user_id);
  BeginClose(kWsCloseUnauthenticated, "token expired");
}

void WsConnection::HandleData(ByteView data) {
  if (phase_ != Phase::kOpen) return;  // a close frame is out; nothing more is read
  auto self = shared_from_this();
  last_rx_ms_ = uv_now(hub_->loop());
  hub_->bytes_in.Inc(static_cast<int64_t>(data.size()));
  session_.Feed(data);
  SyncBytesOut();
  if (session_.close_sent() && phase_ == Phase::kOpen) {
    // wslay answered a close frame or refused the peer's bytes (1002 / 1007 / 1009).
    LogLine(&hub_->logger(), session_.close_received() ? LogLevel::kInfo : LogLevel::kWarn,
            "ws_close")
        .Str("docId", log_document_)
        .Str("userId", log_user_)
        .Int("code", session_.close_code_sent())
        .Bool("byPeer", session_.close_received());
    EnterClosing();
  }
}

void WsConnection::HandleDrained() {
  initial_allowance_ = 0;
  over_bound_ = false;
  timers_.Stop(kSlowTimer);
}

void WsConnection::HandleShutdown() { BeginClose(kWsCloseGoingAway, "server shutting down"); }

void WsConnection::HandleClosed() {
  if (phase_ == Phase::kClosed) return;
  auto self = shared_from_this();
  bool was_closing = phase_ == Phase::kClosing;
  phase_ = Phase::kClosed;
  timers_.StopAll();
  StopAccessChecks();
  if (!was_closing) OnClosing();
  QUIRE_LOG(hub_->logger(), kInfo, "ws_closed")
      .Str("docId", log_document_)
      .Str("userId", log_user_)
      .Int("bytesIn", static_cast<int64_t>(session_.bytes_in()))
      .Int("bytesOut", static_cast<int64_t>(session_.bytes_out()));
}

void WsConnection::OnTextMessage(std::string_view text) {
  if (phase_ != Phase::kOpen || !WithinRateLimit()) return;
  OnText(text);
}

void WsConnection::OnBinaryMessage(ByteView data) {
  if (phase_ != Phase::kOpen || !WithinRateLimit()) return;
  OnBinary(data);
}

bool WsConnection::SendText(std::string_view text, Delivery delivery) {
  if (phase_ != Phase::kOpen || !Admit(text.size(), delivery)) return false;
  session_.SendText(text);
  SyncBytesOut();
  return true;
}

bool WsConnection::SendBinary(ByteView data, Delivery delivery) {
  if (phase_ != Phase::kOpen || !Admit(data.size(), delivery)) return false;
  session_.SendBinary(data);
  SyncBytesOut();
  return true;
}

size_t WsConnection::Bound() const {
  return static_cast<size_t>(hub_->config().send_queue_bytes) + initial_allowance_;
}

uint64_t WsConnection::PingMs() const {
  return static_cast<uint64_t>(std::max<int64_t>(hub_->config().ping_interval_s, 1)) * 1000;
}

uint64_t WsConnection::IdleMs() const {
  return static_cast<uint64_t>(std::max<int64_t>(hub_->config().idle_timeout_s, 1)) * 1000;
}

size_t WsConnection::MaxInflightBytes() const {
  return std::max<size_t>(static_cast<size_t>(hub_->config().send_queue_bytes) / 4, 1);
}

// A droppable message is skipped above half the configured bound. A message that must not be
// dropped always fits an empty queue, so one large message cannot lock a reader out; above
// the bound the peer gets kSlowConsumerGraceMs to drain below it; at twice the bound, or when
// the grace ran out, it is closed with 1013 and false is returned.
bool WsConnection::Admit(size_t n, Delivery delivery) {
  if (delivery == Delivery::kInitialState) return true;
  size_t queued = session_.queued_bytes();
  if (delivery == Delivery::kDroppable) {
    if (queued > static_cast<size_t>(hub_->config().send_queue_bytes) / 2 ||
        (queued > 0 && queued + n > HardCap())) {
      hub_->presence_dropped.Inc();
      return false;
    }
    return true;
  }
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
    timers_.Start(kSlowTimer, kSlowConsumerGraceMs);
  }
  return true;
}

void WsConnection::SlowConsumer() {
  if (phase_ != Phase::kOpen) return;
  hub_->slow_consumer_closes.Inc();
  QUIRE_LOG(hub_->logger(), kWarn, "ws_slow_consumer")
      .Str("docId", log_document_)
      .Str("userId", log_user_)
      .Int("queuedBytes", static_cast<int64_t>(session_.queued_bytes()))
      .Int("bound", static_cast<int64_t>(Bound()));
  BeginClose(kWsCloseTryAgainLater, "slow consumer");
}

// Token bucket of config.max_messages_per_second (capacity twice that) on the loop's clock.
bool WsConnection::WithinRateLimit() {
  if (rate_limited_) return false;
  const double rate =
      static_cast<double>(std::max<int64_t>(hub_->config().max_messages_per_second, 1));
  uint64_t now = uv_now(hub_->loop());
  if (!rate_started_) {
    rate_started_ = true;
    rate_tokens_ = 2 * rate;
  } else {
    rate_tokens_ =
        std::min(2 * rate, rate_tokens_ + static_cast<double>(now - rate_last_ms_) * rate / 1000.0);
  }
  rate_last_ms_ = now;
  if (rate_tokens_ >= 1) {
    rate_tokens_ -= 1;
    return true;
  }
  QUIRE_LOG(hub_->logger(), kWarn, "ws_rate_limited")
      .Str("docId", log_document_)
      .Str("userId", log_user_)
      .Int("limit", hub_->config().max_messages_per_second);
  OnRateLimited();
  // Close from a fresh stack: inside Feed, wslay would send the close frame ahead of the
  // answers still queued as data messages.
  rate_limited_ = true;
  timers_.Start(kRateCloseTimer, 0);
  return false;
}

void WsConnection::AppendStarted(size_t bytes) {
  inflight_bytes_ += bytes;
  if ((++inflight_ >= kMaxInflightAppends || inflight_bytes_ >= MaxInflightBytes()) && !paused_ &&
      phase_ == Phase::kOpen) {
    paused_ = true;
    hub_->read_pauses.Inc();
    transport_.PauseReading();
  }
}

void WsConnection::AppendSettled(size_t bytes) {
  --inflight_;
  inflight_bytes_ -= bytes;
  if (paused_ && inflight_ <= kMaxInflightAppends / 2 &&
      inflight_bytes_ <= MaxInflightBytes() / 2 && phase_ == Phase::kOpen) {
    paused_ = false;
    transport_.ResumeReading();
  }
}

std::shared_ptr<Room> WsConnection::JoinRoom(const DocumentId& id, RoomMember* member) {
  return JoinRoom(id, member, principal());
}

std::shared_ptr<Room> WsConnection::JoinRoom(const DocumentId& id, RoomMember* member,
                                             const Principal& principal) {
  std::shared_ptr<Room> room = hub_->AcquireRoom(id);
  std::shared_ptr<const ws::AwarenessOwner> owner;
  if (hub_->access().enabled() && !principal.user_id.empty()) {
    owner = std::make_shared<const ws::AwarenessOwner>(
        ws::AwarenessOwner{principal.user_id, principal.name});
  }
  room->Join(member, std::move(owner));
  return room;
}

void WsConnection::LeaveRoom(const std::shared_ptr<Room>& room, RoomMember* member,
                             const SharedFrame& left_frame) {
  if (!room) return;
  auto keep = room;  // `room` may be the caller's member that Leave's fan-out resets
  keep->Leave(member, left_frame);
  hub_->MaybeReleaseRoom(keep);
}

void WsConnection::SetLogIdentity(std::string document_id, std::string user_id) {
  log_document_ = std::move(document_id);
  log_user_ = std::move(user_id);
}

void WsConnection::SyncBytesOut() {
  uint64_t out = session_.bytes_out();
  hub_->bytes_out.Inc(static_cast<int64_t>(out - reported_out_));
  reported_out_ = out;
}

void WsConnection::BeginClose(uint16_t code, std::string_view reason) {
  if (phase_ != Phase::kOpen) return;
  session_.StartClose(code, reason);
  SyncBytesOut();
  EnterClosing();
}

// A close frame is out: leave the rooms now, close the transport from a fresh stack (this may
// run inside a room's fan-out or inside wslay), abort it if the peer does not drain.
void WsConnection::EnterClosing() {
  if (phase_ != Phase::kOpen) return;
  phase_ = Phase::kClosing;
  timers_.Stop(kPingTimer);
  timers_.Stop(kIdleTimer);
  timers_.Stop(kSlowTimer);
  timers_.Stop(kExpiryTimer);
  StopAccessChecks();
  OnClosing();
  close_stage_ = 0;
  timers_.Start(kCloseTimer, 0);
}

// Runs every deadline that is due, in the order of Timer. A handler may close the transport,
// which may drop the last owner of this connection: keep it alive until all have run.
void WsConnection::OnTimers(void* arg) {
  auto* c = static_cast<WsConnection*>(arg);
  auto self = c->shared_from_this();
  uint32_t due = c->timers_.TakeDue();
  if (due & (1u << kPingTimer)) c->OnPingTimer();
  if (due & (1u << kIdleTimer)) c->OnIdleTimer();
  if (due & (1u << kSlowTimer)) c->OnSlowTimer();
  if (due & (1u << kRateCloseTimer)) c->OnRateCloseTimer();
  if (due & (1u << kCloseTimer)) c->OnCloseTimer();
  if (due & (1u << kExpiryTimer)) c->OnExpiryTimer();
}

void WsConnection::OnPingTimer() {
  if (phase_ != Phase::kOpen) return;
  timers_.Start(kPingTimer, PingMs());
  session_.SendPing();
  SyncBytesOut();
}

void WsConnection::OnIdleTimer() {
  if (phase_ != Phase::kOpen) return;
  uint64_t silent = uv_now(hub_->loop()) - last_rx_ms_;
  if (silent >= IdleMs()) {
    QUIRE_LOG(hub_->logger(), kInfo, "ws_idle_timeout")
        .Str("docId", log_document_)
        .Str("userId", log_user_);
    BeginClose(kWsCloseNormal, "idle timeout");
    return;
  }
  timers_.Start(kIdleTimer, IdleMs() - silent);
}

void WsConnection::OnSlowTimer() {
  if (phase_ != Phase::kOpen) return;
  if (session_.queued_bytes() > Bound()) {
    SlowConsumer();
  } else {
    over_bound_ = false;
  }
}

void WsConnection::OnRateCloseTimer() { BeginClose(kWsClosePolicyViolation, "message rate limit"); }

void WsConnection::OnCloseTimer() {
  if (phase_ == Phase::kClosed) return;
  if (close_stage_ == 0) {
    close_stage_ = 1;
    // The peer may take what is queued (at most twice the bound) and our close frame as long
    // as it would be allowed to stay silent; then the socket is aborted.
    timers_.Start(kCloseTimer, IdleMs());
    if (paused_) {
      paused_ = false;
      transport_.ResumeReading();  // read the peer's close reply rather than reset
    }
    transport_.Close();
  } else {
    transport_.Abort();
  }
}

std::unique_ptr<UpgradeHandler> MakeWsRouter(std::shared_ptr<WsHub> hub,
                                             std::vector<WsRoute> routes) {
  return std::make_unique<WsRouter>(std::move(hub), std::move(routes));
}

}  // namespace quire::io
