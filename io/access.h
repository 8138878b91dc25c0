// Access control: who the caller of a request or WebSocket is, and what they may do to a document.
//
// Off by default (local development is open): then every caller is an anonymous principal with
// the editor role on every document, as before access control existed. It is on when
// Config::auth_secret (HS256) or Config::auth_public_key_file (RS256/ES256) is set; then every
// request and every WebSocket must carry a valid signed token (JWT) and the role comes from the
// document's grants (projection) and the token's own document-scoped grants.
//
// Where the token comes from (TokenFromRequest): `Authorization: Bearer <token>`, else the
// `token` query parameter (browser WebSockets, y-websocket's params); Hocuspocus clients send it
// in their auth message instead.
//
// Loop thread only.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/config.h"
#include "core/status.h"
#include "core/types.h"

namespace quire::projection {
class DocumentService;
}

namespace quire::io {

struct HttpRequest;

enum class Role : uint8_t {
  kNone = 0,    // may not know the document exists (404)
  kViewer = 1,  // reads state, updates and presence; may not write
  kEditor = 2,  // reads and writes
  kOwner = 3,   // the creator: also manages grants
};

std::string_view RoleName(Role role);  // "none", "viewer", "editor", "owner"
std::optional<Role> ParseRole(std::string_view name);

struct Principal {
  // The token's `sub`; empty for the anonymous principal (access control off).
  std::string user_id;
  // The token's `name` claim when present (presence shows it), else empty.
  std::string name;
  // The token's `exp` in ms since the epoch; 0 when it has none (or access control is off).
  // Open connections close at AccessControl::ExpiresAt, which adds the clock skew.
  TimestampMs expires_at = 0;
  // Document-scoped grants carried by the token (`docs: {"<id>": "viewer"}`), for share links.
  std::map<DocumentId, Role> document_grants;
};

class AccessControl {
 public:
  virtual ~AccessControl() = default;

  virtual bool enabled() const = 0;

  // The principal of `token` (from TokenFromRequest or a Hocuspocus auth message). When access
  // control is off, the anonymous principal whatever the token. When on: nullopt for a missing,
  // malformed, wrongly signed, expired or not-yet-valid token, with the reason in `*why`
  // (for the 401 body / the close reason; never echoes the token).
  virtual std::optional<Principal> Authenticate(std::string_view token, std::string* why) const = 0;

  // `principal`'s role on document `id` now (grants can change at any time: callers holding a
  // connection re-ask at least once a second). kEditor for everyone when access control is off;
  // kNone for documents that do not exist.
  virtual Role RoleFor(const Principal& principal, const DocumentId& id) const = 0;

  // The instant (ms since the epoch, wall clock) from which `principal`'s token is no longer
  // accepted: a socket authenticated by it is closed with 4401 then. 0: never. The default is
  // Principal::expires_at; the token access control adds the configured clock skew, the same
  // tolerance Authenticate allows, so that a token accepted at the upgrade (exp passed by less
  // than the skew) is not closed at once.
  virtual TimestampMs ExpiresAt(const Principal& principal) const { return principal.expires_at; }
};

// The access control of a server with access control off: the anonymous principal, kEditor on
// every document that exists (kNone for others), as before access control existed.
std::unique_ptr<AccessControl> MakeOpenAccessControl(
    std::function<bool(const DocumentId&)> document_exists);

// The access control `config` asks for: MakeOpenAccessControl (documents known to `docs`) when
// no auth secret or key is set; otherwise tokens are verified by io/jwt.h (the algorithm fixed
// by the configured secret or key, times read from `clock`) and RoleFor is the highest of: owner
// when the principal created the document, the document's grant to the principal (permission
// events, DocumentRecord::grants), the token's own grant for the document; kNone for unknown
// documents. InvalidArgument naming the setting when the key file is missing or not a usable
// RSA / EC P-256 public key, or when both a secret and a key are set (startup error).
// `docs` and `clock` must outlive the result.
Result<std::unique_ptr<AccessControl>> MakeAccessControl(const Config& config,
                                                         const projection::DocumentService& docs,
                                                         const Clock& clock);

// The bearer token of `request`: the `Authorization: Bearer` header (the scheme matched without
// regard to case, RFC 7235 section 2.1; spaces after it skipped), else the `token` query
// parameter (percent-decoded), else empty.
std::string TokenFromRequest(const HttpRequest& request);

}  // namespace quire::io
