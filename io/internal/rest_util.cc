#include "io/internal/rest_util.h"

#include <cstdio>
#include <ctime>

namespace quire::io::internal {

std::string WithHead(std::string_view allow) {
  std::string out;
  size_t start = 0;
  while (start <= allow.size()) {
    size_t comma = allow.find(',', start);
    std::string_view method =
        allow.substr(start, comma == std::string_view::npos ? allow.npos : comma - start);
    while (!method.empty() && method.front() == ' ') method.remove_prefix(1);
    if (!method.empty()) {
      if (!out.empty()) out += ", ";
      out += method;
      if (method == "GET") out += ", HEAD";
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

using nlohmann::json;

HttpResponse JsonResponse(int status, const json& body) {
  return HttpResponse::Json(status, body.dump(-1, ' ', false, json::error_handler_t::replace));
}

HttpResponse FieldError(std::string_view field, std::string_view message) {
  json body = {{"error",
                {{"code", "VALIDATION_FAILED"},
                 {"message", std::string(field) + ": " + std::string(message)},
                 {"field", field}}}};
  return JsonResponse(400, body);
}

std::string IsoTime(TimestampMs ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  int millis = static_cast<int>(ms % 1000);
  if (millis < 0) {
    millis += 1000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf;
}

HttpResponse Unauthenticated(std::string_view why, bool token_sent) {
  HttpResponse r = HttpResponse::Error(401, "UNAUTHENTICATED",
                                       token_sent ? "invalid token: " + std::string(why)
                                                  : std::string("a bearer token is required"));
  r.Header("WWW-Authenticate", token_sent ? "Bearer realm=\"quire\", error=\"invalid_token\""
                                          : "Bearer realm=\"quire\"");
  return r;
}

std::optional<HttpResponse> RequireRole(Role have, Role need, const DocumentId& id) {
  if (have >= need) return std::nullopt;
  if (have == Role::kNone) return HttpResponse::Error(404, "NOT_FOUND", "no document '" + id + "'");
  return HttpResponse::Error(403, "FORBIDDEN",
                             "this needs the " + std::string(RoleName(need)) + " role on '" + id +
                                 "'; you have " + std::string(RoleName(have)));
}

}  // namespace quire::io::internal
