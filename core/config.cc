#include "core/config.h"

#include <algorithm>
#include <charconv>
#include <string_view>

namespace quire {
namespace {

struct Option {
  const char* flag;     // without the leading "--"
  const char* env;      // nullptr when there is none
  const char* help;
  std::function<Status(Config&, std::string_view)> apply;
};

Status ParseInt(std::string_view name, std::string_view text, int64_t min, int64_t max,
                int64_t& out) {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || v < min || v > max) {
    return Status::InvalidArgument(std::string(name) + ": expected an integer in [" +
                                   std::to_string(min) + ", " + std::to_string(max) + "], got '" +
                                   std::string(text) + "'");
  }
  out = v;
  return Status::Ok();
}

auto IntField(int64_t Config::*field, const char* name, int64_t min, int64_t max) {
  return [=](Config& c, std::string_view v) { return ParseInt(name, v, min, max, c.*field); };
}

const std::vector<Option>& Options() {
  static const std::vector<Option> options = {
      {"database-url", "DATABASE_URL", "sqlite:///path/to/file.db or memory:// (default sqlite:///./dev.db)",
       [](Config& c, std::string_view v) {
         if (!v.starts_with("sqlite://") && v != "memory://") {
           return Status::InvalidArgument("database-url: expected sqlite:///path or memory://");
         }
         c.database_url = std::string(v);
         return Status::Ok();
       }},
      {"host", "QUIRE_HOST", "address to listen on (default 127.0.0.1)",
       [](Config& c, std::string_view v) {
         if (v.empty()) return Status::InvalidArgument("host: must not be empty");
         c.host = std::string(v);
         return Status::Ok();
       }},
      {"port", "QUIRE_PORT", "TCP port (default 8080; 0 picks a free port)",
       [](Config& c, std::string_view v) {
         int64_t p = 0;
         QUIRE_RETURN_IF_ERROR(ParseInt("port", v, 0, 65535, p));
         c.port = static_cast<int>(p);
         return Status::Ok();
       }},
      {"sync", "QUIRE_SYNC", "full (default; survives power loss) or normal (survives a crash only)",
       [](Config& c, std::string_view v) {
         if (v == "full") c.sync_mode = SyncMode::kFull;
         else if (v == "normal") c.sync_mode = SyncMode::kNormal;
         else return Status::InvalidArgument("sync: expected full or normal");
         return Status::Ok();
       }},
      {"snapshot-every", "QUIRE_SNAPSHOT_EVERY", "fold after this many updates (default 200)",
       IntField(&Config::snapshot_every_updates, "snapshot-every", 1, 1'000'000)},
      {"snapshot-interval", "QUIRE_SNAPSHOT_INTERVAL",
       "fold this many seconds after the first unfolded update (default 60)",
       IntField(&Config::snapshot_interval_s, "snapshot-interval", 1, 86'400 * 365)},
      {"cache-bytes", "QUIRE_CACHE_BYTES", "memory bound for open documents' head state (default 256 MiB)",
       IntField(&Config::head_cache_bytes, "cache-bytes", 1 << 16, int64_t{1} << 40)},
      {"retain-updates", "QUIRE_RETAIN_UPDATES",
       "prune updates a snapshot covers after this many days (default: keep forever)",
       IntField(&Config::retain_updates_days, "retain-updates", 0, 365 * 100)},
      {"max-body", "QUIRE_MAX_BODY", "largest HTTP request body in bytes (default 1 MiB)",
       IntField(&Config::max_body_bytes, "max-body", 1024, int64_t{1} << 30)},
      {"max-payload", "QUIRE_MAX_PAYLOAD", "largest update or snapshot in bytes (default 1 MiB)",
       IntField(&Config::max_payload_bytes, "max-payload", 1024, int64_t{1} << 30)},
      {"send-queue", "QUIRE_SEND_QUEUE", "per-connection send queue bound in bytes (default 4 MiB)",
       IntField(&Config::send_queue_bytes, "send-queue", 4096, int64_t{1} << 32)},
      {"idle-timeout", "QUIRE_IDLE_TIMEOUT", "close WebSockets silent this many seconds (default 120)",
       IntField(&Config::idle_timeout_s, "idle-timeout", 1, 86'400)},
      {"max-connections", "QUIRE_MAX_CONNECTIONS", "open TCP connections at most (default 10000)",
       IntField(&Config::max_connections, "max-connections", 1, 1'000'000)},
      {"max-connections-per-ip", "QUIRE_MAX_CONNECTIONS_PER_IP",
       "open TCP connections per client address at most (default 10000)",
       IntField(&Config::max_connections_per_ip, "max-connections-per-ip", 1, 1'000'000)},
      {"max-open-documents", "QUIRE_MAX_OPEN_DOCUMENTS",
       "documents with WebSocket members at most (default 100000)",
       IntField(&Config::max_open_documents, "max-open-documents", 1, 100'000'000)},
      {"max-msg-rate", "QUIRE_MAX_MSG_RATE",
       "WebSocket messages per second per connection (default 1000; bursts to twice that)",
       IntField(&Config::max_messages_per_second, "max-msg-rate", 1, 10'000'000)},
      {"io-uring", "QUIRE_IO_URING",
       "on (default: batch socket writes through io_uring when the kernel allows) or off",
       [](Config& c, std::string_view v) {
         if (v == "on") c.io_uring = true;
         else if (v == "off") c.io_uring = false;
         else return Status::InvalidArgument("io-uring: expected on or off");
         return Status::Ok();
       }},
      {"allowed-origins", "ALLOWED_ORIGINS", "comma-separated CORS origins (default: none)",
       [](Config& c, std::string_view v) {
         c.allowed_origins.clear();
         while (!v.empty()) {
           size_t comma = v.find(',');
           std::string_view item = v.substr(0, comma);
           while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
           while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
           if (!item.empty()) c.allowed_origins.emplace_back(item);
           if (comma == std::string_view::npos) break;
           v.remove_prefix(comma + 1);
         }
         return Status::Ok();
       }},
      {"web-root", "QUIRE_WEB_ROOT",
       "directory of the web page served at / (default: the built web/dist when present; "
       "'none' serves no page)",
       [](Config& c, std::string_view v) {
         c.web_root = std::string(v);
         return Status::Ok();
       }},
      {"auth-secret", "QUIRE_AUTH_SECRET",
       "turn access control on: HS256 shared secret of the signed tokens (JWT)",
       [](Config& c, std::string_view v) {
         c.auth_secret = std::string(v);
         return Status::Ok();
       }},
      {"auth-public-key", "QUIRE_AUTH_PUBLIC_KEY",
       "turn access control on: PEM public key file of the tokens (RSA: RS256, EC P-256: ES256)",
       [](Config& c, std::string_view v) {
         c.auth_public_key_file = std::string(v);
         return Status::Ok();
       }},
      {"auth-audience", "QUIRE_AUTH_AUDIENCE", "tokens must name this audience (aud) when set",
       [](Config& c, std::string_view v) {
         c.auth_audience = std::string(v);
         return Status::Ok();
       }},
      {"auth-issuer", "QUIRE_AUTH_ISSUER", "tokens must come from this issuer (iss) when set",
       [](Config& c, std::string_view v) {
         c.auth_issuer = std::string(v);
         return Status::Ok();
       }},
      {"auth-clock-skew", "QUIRE_AUTH_CLOCK_SKEW",
       "seconds of tolerance on the tokens' exp and nbf (default 30)",
       IntField(&Config::auth_clock_skew_s, "auth-clock-skew", 0, 86'400)},
      {"log-level", "QUIRE_LOG_LEVEL", "debug, info (default), warn or error",
       [](Config& c, std::string_view v) {
         if (v == "debug") c.log_level = LogLevel::kDebug;
         else if (v == "info") c.log_level = LogLevel::kInfo;
         else if (v == "warn") c.log_level = LogLevel::kWarn;
         else if (v == "error") c.log_level = LogLevel::kError;
         else return Status::InvalidArgument("log-level: expected debug, info, warn or error");
         return Status::Ok();
       }},
  };
  return options;
}

}  // namespace

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "info";
}

Status ApplyEnvironment(Config& config,
                        const std::function<const char*(const char*)>& getenv_fn) {
  // The environment twin of the bare --no-auto-create flag.
  if (const char* v = getenv_fn("QUIRE_AUTO_CREATE"); v != nullptr) {
    std::string_view text = v;
    if (text == "0" || text == "false" || text == "no" || text == "off") {
      config.auto_create_documents = false;
    } else if (text == "1" || text == "true" || text == "yes" || text == "on") {
      config.auto_create_documents = true;
    } else {
      return Status::InvalidArgument("QUIRE_AUTO_CREATE: expected 0/false/no or 1/true/yes, got '" +
                                     std::string(text) + "'");
    }
  }
  for (const Option& o : Options()) {
    if (o.env == nullptr) continue;
    const char* v = getenv_fn(o.env);
    if (v == nullptr) continue;
    Status s = o.apply(config, v);
    if (!s.ok()) return Status::InvalidArgument(std::string(o.env) + ": " + s.message());
  }
  return Status::Ok();
}

Status ApplyServeFlags(Config& config, const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (!arg.starts_with("--")) return Status::InvalidArgument("unexpected argument '" + args[i] + "'");
    arg.remove_prefix(2);
    std::string_view name = arg, value;
    bool has_value = false;
    if (size_t eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    if (name == "no-auto-create" && !has_value) {
      config.auto_create_documents = false;
      continue;
    }
    const Option* found = nullptr;
    for (const Option& o : Options()) {
      if (name == o.flag) found = &o;
    }
    if (found == nullptr) return Status::InvalidArgument("unknown flag --" + std::string(name));
    if (!has_value) {
      if (i + 1 >= args.size()) return Status::InvalidArgument("--" + std::string(name) + " needs a value");
      value = args[++i];
    }
    QUIRE_RETURN_IF_ERROR(found->apply(config, value));
  }
  return Status::Ok();
}

std::string ServeFlagsHelp() {
  std::string out;
  for (const Option& o : Options()) {
    std::string line = "  --" + std::string(o.flag) + "=VALUE";
    // Align the descriptions, with at least two spaces after a long flag.
    line.resize(std::max<size_t>(line.size() + 2, 34), ' ');
    out += line + o.help;
    if (o.env) out += std::string(" [env ") + o.env + "]";
    out += "\n";
  }
  out += "  --no-auto-create                y-websocket/Hocuspocus clients may not create documents [env QUIRE_AUTO_CREATE=0]\n";
  return out;
}

}  // namespace quire
