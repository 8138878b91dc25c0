// Helpers shared by the REST handlers (io/rest_api.cc, io/rest_history.cc): JSON answers in the
// API's error shape and timestamps.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/types.h"
#include "io/access.h"
#include "io/http_message.h"

namespace quire::io::internal {

// A route's allowed methods ("GET, POST") with HEAD after GET ("GET, HEAD, POST"): every GET
// route answers HEAD too.
std::string WithHead(std::string_view allow);
// `body` serialized (invalid UTF-8 replaced) with Content-Type: application/json.
HttpResponse JsonResponse(int status, const nlohmann::json& body);
// 400 {"error":{"code":"VALIDATION_FAILED","message":"<field>: <message>","field":field}}.
HttpResponse FieldError(std::string_view field, std::string_view message);
// "2026-11-22T03:40:22.123Z" (UTC, milliseconds).
std::string IsoTime(TimestampMs ms);

// 401 UNAUTHENTICATED with `WWW-Authenticate: Bearer` (RFC 6750: error="invalid_token" when a
// token was sent). `why` never contains the token.
HttpResponse Unauthenticated(std::string_view why, bool token_sent);
// nullopt when `have` is at least `need`; 404 NOT_FOUND for kNone (the caller may not know the
// document exists); 403 FORBIDDEN naming the role needed otherwise.
std::optional<HttpResponse> RequireRole(Role have, Role need, const DocumentId& id);

}  // namespace quire::io::internal
