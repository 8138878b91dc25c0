// The WebSocket connection layer shared by every protocol endpoint (the JSON protocol on
// /ws/documents/{id}, y-websocket on /yjs/{id}, Hocuspocus on /hocuspocus). A protocol keeps
// only its message logic; this layer owns everything about the socket.
//
// ---------------------------------------------------------------------------------------------
// Contract for endpoint writers
// ---------------------------------------------------------------------------------------------
// 1. Routing. MakeWebSocketEndpoint (io/websocket_endpoint.h) is the server's one
//    UpgradeHandler. It picks the first WsRoute whose `matches(path)` is true (routes given in
//    WebSocketEndpointOptions::routes are tried before the built-in /yjs/ and /ws/documents/),
//    else answers 404. The chosen route's endpoint (made once by WsRoute::make with the shared
//    WsHub) then sees the request in this order:
//      a. WsEndpoint::CheckPath: path-level refusal (e.g. a malformed document id -> 404);
//      b. the layer: GET (405), Upgrade/Connection headers (400), Sec-WebSocket-Version 13
//         (426), Sec-WebSocket-Key of 16 bytes (400);
//      c. the layer: access control. The token is TokenFromRequest(request) (Bearer header,
//         else `token` query parameter). Authenticate failing -> 401 UNAUTHENTICATED, no
//         upgrade. Endpoints whose clients authenticate inside the protocol (Hocuspocus) set
//         WsEndpoint::authenticates_in_protocol() and call AccessControl::Authenticate on
//         the token their protocol carries (Hocuspocus keeps one principal per document);
//      d. WsEndpoint::Accept: protocol checks (document exists, RoleFor == kNone -> 404 as an
//         unknown document, capacity, query parameters). It fills `reject` and returns null,
//         or returns a connection NOT yet started (with set_principal(upgrade.principal) and,
//         for each document it opens, TrackDocument(id, role)). The layer then writes the 101
//         and calls WsConnection::Start().
// 2. Connections. Subclass WsConnection and implement OnStart / OnText / OnBinary /
//    OnClosing. Everything runs on the loop thread. Connections are owned by a shared_ptr held
//    by the layer's StreamHandler until the transport closed; asynchronous completions
//    (DocumentService callbacks) must capture weak_from_this() and re-check open() after
//    locking, because the connection may be closing or closed by then.
// 3. Sending. SendText/SendBinary with Delivery::kMustDeliver (state, updates, acks, errors)
//    or Delivery::kDroppable (presence, awareness: skipped while the queue is above half the
//    bound, counted in quire_presence_dropped_total). A must-deliver message always fits an
//    empty queue; above Config::send_queue_bytes the peer gets 2 s to drain below it, and at
//    twice the bound (or when the grace ran out) the connection is closed with 1013 (slow
//    consumer). Both return false when the message was not queued. Nothing is sent once the
//    connection is closing.
// 4. Incoming messages are rate-limited per connection (token bucket of
//    Config::max_messages_per_second, capacity twice that): over it, OnRateLimited() runs
//    (the JSON protocol sends its RATE_LIMITED error there) and the connection closes with
//    1008. OnText / OnBinary are only called within the limit and while open.
// 5. Appends. Call AppendStarted(bytes) when submitting an append for the client and
//    AppendSettled(bytes) in its completion (even when the connection is closing): with
//    64 appends or a quarter of the send bound in bytes in flight the socket is not read until
//    half of them completed (the backpressure on a fast sender).
// 6. Rooms. A connection may be in any number of rooms (one per document it has open; a
//    multiplexing protocol keeps one RoomMember object per document). JoinRoom(id, member)
//    acquires the document's Room (pinning the document) and joins; LeaveRoom(room, member,
//    left) leaves and releases it when idle. Leave every room in OnClosing() (and in the
//    subclass destructor, in case OnClosing never ran). Room::pending_appends must be
//    incremented for each append submitted on a room's behalf and decremented (then
//    WsHub::MaybeReleaseRoom) in its completion. Awareness (binary protocols) goes through the
//    Room too: Room::ApplyAwareness for what a client sends, RoomMember::DeliverAwareness for
//    what the others sent (JSON clients' presence included, bridged), Room::AwarenessUpdate
//    for a newcomer or a query; Room::Leave removes the leaving member's states for everyone.
// 7. Closing. BeginClose(code, reason) queues a close frame after what is queued, then
//    OnClosing() runs (once; leave rooms, stop protocol timers), the transport is closed from a
//    fresh stack and aborted if the peer does not drain within the idle timeout. Closes the
//    peer or wslay started (1002/1007/1009) also run OnClosing(). OnClosed() hooks nothing:
//    after OnClosing the connection must not expect more calls except completions.
// 8. Liveness. A ping every Config::ping_interval_s; silence for Config::idle_timeout_s closes
//    with 1000 "idle timeout". Server shutdown closes with 1001.
// 8a. Access (only while AccessControl::enabled()). A principal with an expiry
//    (AccessControl::ExpiresAt: the token's exp plus the configured clock skew) has its socket
//    closed with 4401 "token expired" at that time. Every tracked document's
//    role is re-read (RoleFor) at least once a second by one timer per hub; a change calls
//    OnRoleChanged(id, old, new), whose default closes the socket with 4403 "access revoked"
//    when the new role is kNone. Protocols read RoleOn(id) before every write (editor ->
//    viewer takes effect at once). A multiplexing protocol tracks each document it opens
//    (TrackDocument / UntrackDocument) and overrides OnRoleChanged to close only that
//    document; or it keeps its own per-document principals and timer, as Hocuspocus does.
// 9. Logs and metrics. The layer logs ws_close / ws_slow_consumer / ws_rate_limited /
//    ws_idle_timeout with the connection's log identity (SetLogIdentity(doc, user)) and keeps
//    quire_websocket_connections, quire_websocket_{received,sent}_bytes_total,
//    quire_slow_consumer_closes_total, quire_presence_dropped_total,
//    quire_websocket_read_pauses_total. The shared CRDT counters (quire_updates_*_total,
//    quire_storage_errors_total) are on WsHub for the protocols to count.
//
// Lifetime: the hub (shared by the endpoint and every connection) holds references to the
// loop, DocumentService, Config, Logger and Metrics given to MakeWebSocketEndpoint; they must
// outlive every connection.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/config.h"
#include "core/log.h"
#include "core/status.h"
#include "core/types.h"
#include "io/access.h"
#include "io/http_message.h"
#include "io/internal/folded_head_cache.h"
#include "io/internal/ws_timer.h"
#include "io/metrics.h"
#include "io/room.h"
#include "io/transport.h"
#include "io/websocket_session.h"
#include "projection/document_service.h"

struct uv_loop_s;

namespace quire::io {

class WsConnection;

// Close codes (RFC 6455 section 7.4.1, the IANA registry, and the 4xxx application range).
inline constexpr uint16_t kWsCloseNormal = 1000;
inline constexpr uint16_t kWsCloseGoingAway = 1001;
inline constexpr uint16_t kWsCloseInvalidData = 1007;
inline constexpr uint16_t kWsClosePolicyViolation = 1008;
inline constexpr uint16_t kWsCloseTooBig = 1009;
inline constexpr uint16_t kWsCloseInternalError = 1011;
inline constexpr uint16_t kWsCloseTryAgainLater = 1013;
// The token expired during the session.
inline constexpr uint16_t kWsCloseUnauthenticated = 4401;
// The role on the document was revoked during the session.
inline constexpr uint16_t kWsCloseForbidden = 4403;

// What every WebSocket endpoint of one server shares: the services, the room registry (one Room
// per open document, whatever protocols its members speak), the access control and the shared
// metrics. Held by a shared_ptr by the endpoint and every connection. Loop thread only.
class WsHub {
 public:
  WsHub(uv_loop_s* loop, projection::DocumentService& docs, Metrics& metrics, const Config& config,
        const Logger& logger, const AccessControl* access);
  ~WsHub();
  WsHub(const WsHub&) = delete;
  WsHub& operator=(const WsHub&) = delete;

  uv_loop_s* loop() const { return loop_; }
  projection::DocumentService& docs() const { return docs_; }
  const Config& config() const { return config_; }
  const Logger& logger() const { return logger_; }
  Metrics& metrics() const { return metrics_; }
  // Never null (an open access control when none was given).
  const AccessControl& access() const { return *access_; }

  // The room of `id`, created (and the document pinned) on first use.
  std::shared_ptr<Room> AcquireRoom(const DocumentId& id);
  // Drops `room` from the registry (unpinning the document) when it is idle.
  void MaybeReleaseRoom(const std::shared_ptr<Room>& room);
  // Whether opening `id` would exceed Config::max_open_documents.
  bool AtCapacity(const DocumentId& id) const;
  // The open room of `id`, or null.
  std::shared_ptr<Room> FindRoom(const DocumentId& id) const;

  // Connections whose tracked documents' roles the hub re-checks every second (contract 8a).
  void RegisterForAccessChecks(WsConnection* connection);
  void UnregisterForAccessChecks(WsConnection* connection);

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
  // Joins into Yjs documents whose head has not moved share one fold and its encodings.
  internal::FoldedHeadCache folded_heads;

 private:
  uv_loop_s* loop_;
  projection::DocumentService& docs_;
  Metrics& metrics_;
  const Config& config_;
  const Logger& logger_;
  std::unique_ptr<AccessControl> owned_access_;  // when none was given
  const AccessControl* access_;
  std::unordered_map<DocumentId, std::shared_ptr<Room>> rooms_;
  std::vector<WsConnection*> access_checked_;
  std::unique_ptr<internal::WsTimer> access_timer_;  // runs while access_checked_ is not empty
  static void OnAccessTimer(void* arg);
};

// Whether a failed append's status is a storage failure (as opposed to a refused update).
bool IsStorageFailure(const Status& status);

enum class Delivery {
  kMustDeliver,  // state, updates, acks, errors: never dropped; a peer that cannot take it goes
  kDroppable,    // presence, awareness: skipped while the peer is behind
  // Part of the initial state sent on join: queued without admission (a state larger than the
  // bound must still go out); call AllowInitialBacklog() after the last such message.
  kInitialState,
};

struct WsConnectionOptions {
  // Bound of one received message (wslay closes with 1009 above it).
  uint64_t max_message_bytes = 1 << 20;
  // An extra gauge of this protocol's open connections (e.g. quire_yws_connections), or null.
  Gauge* protocol_connections = nullptr;
};

// One WebSocket connection of some protocol (see the contract above).
class WsConnection : public std::enable_shared_from_this<WsConnection>,
                     public WebSocketSession::Delegate {
 public:
  WsConnection(std::shared_ptr<WsHub> hub, Transport& transport, WsConnectionOptions options);
  ~WsConnection() override;
  WsConnection(const WsConnection&) = delete;
  WsConnection& operator=(const WsConnection&) = delete;

  // Called by the layer once, right after the 101 was written.
  void Start();

  // The StreamHandler side (called by the layer's handle).
  void HandleData(ByteView data);
  void HandleDrained();
  void HandleShutdown();
  void HandleClosed();

  // Open: neither closing nor closed; sends are possible.
  bool open() const { return phase_ == Phase::kOpen; }
  bool closed() const { return phase_ == Phase::kClosed; }

  // Queues a close frame (after what is queued) and closes. Idempotent.
  void BeginClose(uint16_t code, std::string_view reason);

  const WsHub& hub() const { return *hub_; }

  // The principal of the upgrade request (the anonymous principal when access control is off,
  // or before an in-protocol authentication).
  const Principal& principal() const;
  void set_principal(Principal p);

  // Access to the documents this connection has open (contract 8a). RoleOn is kNone for a
  // document not tracked.
  void TrackDocument(const DocumentId& id, Role role);
  void UntrackDocument(const DocumentId& id);
  Role RoleOn(const DocumentId& id) const;
  // Re-reads every tracked document's role and the token expiry (the hub's timer calls it).
  void RecheckAccess();

 protected:
  // The protocol's start (join rooms, load state). The layer has started its timers.
  virtual void OnStart() = 0;
  // A complete text / binary message within the rate limit while open (borrowed).
  virtual void OnText(std::string_view text) = 0;
  virtual void OnBinary(ByteView data) = 0;
  // The connection started closing (once): leave every room, stop protocol timers.
  virtual void OnClosing() = 0;
  // Over the message rate; the close 1008 follows from a fresh stack.
  virtual void OnRateLimited() {}
  // The role on tracked document `id` changed (access control on). Default: close with 4403
  // when it dropped to kNone; other changes take effect through RoleOn().
  virtual void OnRoleChanged(const DocumentId& id, Role old_role, Role new_role);

  // Sends; see the contract (3). False when not queued.
  bool SendText(std::string_view text, Delivery delivery = Delivery::kMustDeliver);
  bool SendBinary(ByteView data, Delivery delivery = Delivery::kMustDeliver);
  // Closes with 1013 "slow consumer" (a protocol buffering for the peer exceeded HardCap()).
  void SlowConsumer();
  // The send-queue bound (Config::send_queue_bytes plus an initial allowance) and twice it.
  size_t Bound() const;
  size_t HardCap() const { return 2 * Bound(); }
  size_t queued_bytes() const { return session_.queued_bytes(); }
  // Lets a large initial state (already queued) exceed the bound until the queue drains.
  void AllowInitialBacklog() { initial_allowance_ = session_.queued_bytes(); }
  // This connection as its subclass `T` (for completions: std::weak_ptr<T>(SharedAs<T>())).
  template <class T>
  std::shared_ptr<T> SharedAs() {
    return std::static_pointer_cast<T>(shared_from_this());
  }

  // Read pausing around appends (contract 5).
  void AppendStarted(size_t bytes);
  void AppendSettled(size_t bytes);

  // Rooms (contract 6). With access control on, the member joins with `principal`'s identity
  // (its sub and name claim show in the presence standing for the awareness states it
  // applies); the first form uses the upgrade's principal().
  std::shared_ptr<Room> JoinRoom(const DocumentId& id, RoomMember* member);
  std::shared_ptr<Room> JoinRoom(const DocumentId& id, RoomMember* member,
                                 const Principal& principal);
  void LeaveRoom(const std::shared_ptr<Room>& room, RoomMember* member,
                 const SharedFrame& left_frame);

  // Identity shown in the layer's log lines.
  void SetLogIdentity(std::string document_id, std::string user_id);
  const std::string& log_document() const { return log_document_; }
  const std::string& log_user() const { return log_user_; }

  std::shared_ptr<WsHub> hub_;
  Transport& transport_;  // valid until HandleClosed()

 private:
  enum class Phase { kNew, kOpen, kClosing, kClosed };

  // WebSocketSession::Delegate
  void OnTextMessage(std::string_view text) final;
  void OnBinaryMessage(ByteView data) final;

  bool WithinRateLimit();
  bool Admit(size_t n, Delivery delivery);
  void SyncBytesOut();
  void EnterClosing();
  uint64_t PingMs() const;
  uint64_t IdleMs() const;
  size_t MaxInflightBytes() const;

  // The deadlines on timers_ (one libuv handle for all of them).
  enum Timer {
    kPingTimer,
    kIdleTimer,
    kSlowTimer,
    kRateCloseTimer,
    kCloseTimer,
    kExpiryTimer,
    kTimerCount
  };
  static void OnTimers(void* arg);
  void OnPingTimer();
  void OnIdleTimer();
  void OnSlowTimer();
  void OnRateCloseTimer();
  void OnCloseTimer();
  void OnExpiryTimer();
  void StopAccessChecks();

  WsConnectionOptions options_;
  WebSocketSession session_;
  internal::WsTimerSet<kTimerCount> timers_;

  Phase phase_ = Phase::kNew;
  // Null for the anonymous principal (access control off), which most connections have: a
  // Principal is ~120 bytes.
  std::unique_ptr<const Principal> principal_;
  std::map<DocumentId, Role> roles_;  // tracked documents
  bool access_checked_ = false;       // registered with the hub's timer
  std::string log_document_;
  std::string log_user_;
  uint64_t last_rx_ms_ = 0;
  bool rate_limited_ = false;  // over the limit: messages are dropped until the close
  bool rate_started_ = false;  // the bucket starts full at the first message
  uint64_t rate_last_ms_ = 0;
  double rate_tokens_ = 0;
  int close_stage_ = 0;
  size_t initial_allowance_ = 0;
  bool over_bound_ = false;  // above the bound; slow_timer_ runs
  int inflight_ = 0;
  size_t inflight_bytes_ = 0;
  bool paused_ = false;
  uint64_t reported_out_ = 0;
};

// What the layer hands an endpoint once the handshake is valid and the caller authenticated.
struct WsUpgrade {
  const HttpRequest& request;
  std::string_view path;
  // Authenticated (contract 1c); the anonymous principal for in-protocol authentication.
  Principal principal;
};

// One protocol endpoint (see contract 1).
class WsEndpoint {
 public:
  virtual ~WsEndpoint() = default;
  // Path-level refusal before the handshake is checked; true to go on.
  virtual bool CheckPath(std::string_view /*path*/, HttpResponse& /*reject*/) { return true; }
  // Whether the clients authenticate inside the protocol instead of at the upgrade.
  virtual bool authenticates_in_protocol() const { return false; }
  // Either fills `reject` and returns null, or returns the connection (not started). The layer
  // writes the 101 and starts it.
  virtual std::shared_ptr<WsConnection> Accept(const WsUpgrade& upgrade, Transport& transport,
                                               HttpResponse& reject) = 0;
};

struct WsRoute {
  std::function<bool(std::string_view path)> matches;
  std::function<std::unique_ptr<WsEndpoint>(std::shared_ptr<WsHub> hub)> make;
};

// The UpgradeHandler running `routes` in order over the shared layer. Exposed for
// MakeWebSocketEndpoint; endpoints do not call it.
std::unique_ptr<UpgradeHandler> MakeWsRouter(std::shared_ptr<WsHub> hub,
                                             std::vector<WsRoute> routes);

}  // namespace quire::io
