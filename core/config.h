// Server configuration: defaults, then environment variables, then command-line flags.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"

namespace quire {

enum class SyncMode { kFull, kNormal };
enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

std::string_view LogLevelName(LogLevel level);

struct Config {
  std::string database_url = "sqlite:///./dev.db";
  std::string host = "127.0.0.1";
  int port = 8080;
  // FULL survives power loss; NORMAL (WAL) survives a process crash but not power loss.
  SyncMode sync_mode = SyncMode::kFull;
  // Compaction cadence: fold after this many updates since the last snapshot...
  int64_t snapshot_every_updates = 200;
  // ...or this many seconds after the first unfolded update.
  int64_t snapshot_interval_s = 60;
  // Bound on the bytes of head state (snapshots + tails) kept in memory for open documents.
  int64_t head_cache_bytes = 256ll << 20;
  // Retention of updates a snapshot covers, in days; negative keeps everything.
  int64_t retain_updates_days = -1;

  // HTTP and WebSocket limits.
  int64_t max_body_bytes = 1 << 20;
  int64_t max_header_bytes = 16 << 10;
  int64_t max_payload_bytes = 1 << 20;    // deltaB64 / snapshotB64, decoded
  int64_t send_queue_bytes = 4 << 20;     // per connection
  int64_t header_timeout_s = 10;
  int64_t idle_timeout_s = 120;
  int64_t ping_interval_s = 30;
  int64_t shutdown_grace_s = 5;
  std::vector<std::string> allowed_origins;  // CORS; empty allows none
  // Directory of the web page served for GET paths outside the API (io/static_files.h);
  // empty serves none. `quire serve` defaults it to the built web/dist when present.
  std::string web_root;

  // Resource limits. A TCP connection beyond either connection limit is answered with HTTP 503
  // `TOO_MANY_CONNECTIONS` and closed; a WebSocket upgrade that would open a document beyond
  // max_open_documents gets 503 `TOO_MANY_DOCUMENTS`; a WebSocket client sending more than
  // max_messages_per_second (averaged over one second, bursts up to twice that) gets an
  // `error` RATE_LIMITED and is closed with 1008.
  int64_t max_connections = 10'000;
  int64_t max_connections_per_ip = 10'000;
  int64_t max_open_documents = 100'000;
  int64_t max_messages_per_second = 1'000;

  // Socket writes of a loop iteration in one io_uring submission (io/internal/batch_send.h)
  // when the kernel allows it; off: one write system call per connection.
  bool io_uring = true;

  // y-websocket (/yjs/{id}) and Hocuspocus clients create a missing document on first connect;
  // `--no-auto-create` turns that off (they get permission-denied and are closed).
  bool auto_create_documents = true;

  // Access control (io/access.h) is on iff auth_secret or auth_public_key_file is set. The
  // token algorithm is fixed here, never read from the token: HS256 with auth_secret, or RS256 /
  // ES256 (P-256) by the type of the PEM public key in auth_public_key_file. Setting both is an
  // error at startup. auth_audience / auth_issuer, when set, must match the token's `aud`
  // (string or array) / `iss`; `exp` and `nbf` are checked with auth_clock_skew_s of tolerance.
  std::string auth_secret;
  std::string auth_public_key_file;
  std::string auth_audience;
  std::string auth_issuer;
  int64_t auth_clock_skew_s = 30;
  bool auth_enabled() const { return !auth_secret.empty() || !auth_public_key_file.empty(); }

  LogLevel log_level = LogLevel::kInfo;
};

// Environment variables read: DATABASE_URL, QUIRE_HOST, QUIRE_PORT, QUIRE_SYNC,
// QUIRE_SNAPSHOT_EVERY, QUIRE_SNAPSHOT_INTERVAL, QUIRE_CACHE_BYTES, QUIRE_RETAIN_UPDATES,
// QUIRE_MAX_BODY, QUIRE_MAX_PAYLOAD, QUIRE_SEND_QUEUE, QUIRE_IDLE_TIMEOUT, ALLOWED_ORIGINS,
// QUIRE_MAX_CONNECTIONS, QUIRE_MAX_CONNECTIONS_PER_IP, QUIRE_MAX_OPEN_DOCUMENTS,
// QUIRE_MAX_MSG_RATE, QUIRE_LOG_LEVEL, QUIRE_AUTO_CREATE (0/false/no turns auto-create off,
// 1/true/yes on), QUIRE_AUTH_SECRET, QUIRE_AUTH_PUBLIC_KEY, QUIRE_AUTH_AUDIENCE,
// QUIRE_AUTH_ISSUER, QUIRE_AUTH_CLOCK_SKEW. `getenv` is injected so tests need not touch the
// process environment.
Status ApplyEnvironment(Config& config,
                        const std::function<const char*(const char*)>& getenv_fn);

// Applies `--name=value` / `--name value` flags of `quire serve`. Unknown flags are errors.
Status ApplyServeFlags(Config& config, const std::vector<std::string>& args);

// Help text for the flags above, one per line.
std::string ServeFlagsHelp();

}  // namespace quire
