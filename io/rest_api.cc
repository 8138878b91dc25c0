#include "io/rest_api.h"

#include <charconv>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/ids.h"
#include "io/internal/http_status.h"
#include "io/internal/rest_util.h"
#include "io/openapi.h"

namespace quire::io {

namespace {

using internal::FieldError;
using internal::IsoTime;
using internal::JsonResponse;
using nlohmann::json;
using projection::DocumentRecord;

constexpr std::string_view kDocumentsPath = "/api/v1/documents";
constexpr size_t kMaxTitleChars = 256;

HttpResponse MethodNotAllowed(std::string_view method, std::string_view allow) {
  std::string methods = internal::WithHead(allow);
  HttpResponse r = HttpResponse::Error(
      405, "METHOD_NOT_ALLOWED", std::string(method) + " is not allowed here; allowed: " + methods);
  r.Header("Allow", methods);
  return r;
}

HttpResponse NotFound(std::string_view what) { return HttpResponse::Error(404, "NOT_FOUND", what); }

json DocumentJson(const DocumentRecord& r) {
  return {
      {"id", r.id},
      {"title", r.title},
      {"crdt", std::string(CrdtKindName(r.crdt))},
      {"owner_id", r.owner_id},
      {"created_at", IsoTime(r.created_at)},
      {"updated_at", IsoTime(r.updated_at)},
      {"deleted_at", r.deleted_at ? json(IsoTime(*r.deleted_at)) : json(nullptr)},
      {"deleted", r.deleted()},
      {"seq", r.head_seq},
      {"update_count", r.update_count},
      {"update_bytes", r.update_bytes},
      {"snapshot_version", r.snapshot_version},
      {"snapshot_bytes", r.snapshot_bytes},
  };
}

// Counts the code points of `s`, or nullopt when `s` is not valid UTF-8 (overlong forms,
// surrogates and values above U+10FFFF are invalid).
std::optional<size_t> CountUtf8CodePoints(std::string_view s) {
  size_t count = 0;
  for (size_t i = 0; i < s.size();) {
    auto b = static_cast<unsigned char>(s[i]);
    size_t len;
    uint32_t cp;
    if (b < 0x80) {
      len = 1;
      cp = b;
    } else if ((b & 0xE0) == 0xC0) {
      len = 2;
      cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      len = 3;
      cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      len = 4;
      cp = b & 0x07;
    } else {
      return std::nullopt;
    }
    if (i + len > s.size()) return std::nullopt;
    for (size_t k = 1; k < len; ++k) {
      auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return std::nullopt;
      cp = (cp << 6) | (c & 0x3F);
    }
    static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
    i += len;
    ++count;
  }
  return count;
}

std::string_view TrimSpace(std::string_view s) {
  auto space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

// Validates a title field: a string of 1..256 code points after trimming, valid UTF-8.
// Returns the trimmed title or the 400 answer.
std::optional<HttpResponse> ValidateTitle(const json& value, std::string& out) {
  if (!value.is_string()) return FieldError("title", "must be a string");
  std::string_view trimmed = TrimSpace(value.get_ref<const std::string&>());
  std::optional<size_t> chars = CountUtf8CodePoints(trimmed);
  if (!chars.has_value()) return FieldError("title", "must be valid UTF-8");
  if (*chars == 0) return FieldError("title", "must not be empty");
  if (*chars > kMaxTitleChars) return FieldError("title", "must be at most 256 characters");
  out = std::string(trimmed);
  return std::nullopt;
}

bool IsJsonMediaType(std::string_view content_type) {
  std::string_view media = content_type.substr(0, content_type.find(';'));
  media = TrimSpace(media);
  if (media.size() != 16) return false;
  std::string lower(media);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return lower == "application/json";
}

// Parses a JSON object body: 415 unless application/json, 400 INVALID_JSON when malformed.
std::optional<HttpResponse> ParseJsonObject(const HttpRequest& request, json& out) {
  auto content_type = request.Header("content-type");
  if (!content_type.has_value() || !IsJsonMediaType(*content_type)) {
    return HttpResponse::Error(415, "UNSUPPORTED_MEDIA_TYPE",
                               "the request body must be application/json");
  }
  out = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (out.is_discarded()) {
    return HttpResponse::Error(400, "INVALID_JSON", "the request body is not valid JSON");
  }
  if (!out.is_object()) {
    return HttpResponse::Error(400, "INVALID_JSON", "the request body must be a JSON object");
  }
  return std::nullopt;
}

std::optional<HttpResponse> RejectUnknownFields(const json& body,
                                                std::initializer_list<std::string_view> known) {
  for (auto it = body.begin(); it != body.end(); ++it) {
    bool ok = false;
    for (std::string_view k : known) ok = ok || it.key() == k;
    if (!ok) return FieldError(it.key(), "unknown field");
  }
  return std::nullopt;
}

// A positive integer query parameter in [min, max].
std::optional<HttpResponse> ParseIntParam(const HttpRequest& request, std::string_view name,
                                          int64_t min, int64_t max, int64_t& out) {
  auto v = request.Query(name);
  if (!v.has_value()) return std::nullopt;
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (v->empty() || ec != std::errc() || ptr != v->data() + v->size() || n < min || n > max) {
    std::string range =
        max == INT64_MAX ? "an integer >= " + std::to_string(min)
                         : "an integer from " + std::to_string(min) + " to " + std::to_string(max);
    return FieldError(name, "must be " + range);
  }
  out = n;
  return std::nullopt;
}

}  // namespace

RestApi::RestApi(projection::DocumentService& docs, Metrics& metrics, const Config& config,
                 const Logger& logger, const AccessControl& access, RestApiHooks hooks)
    : docs_(docs),
      metrics_(metrics),
      logger_(logger),
      access_(access),
      cors_(config.allowed_origins),
      hooks_(std::move(hooks)),
      history_(docs, logger) {}

RestApi::RestApi(projection::DocumentService& docs, Metrics& metrics, const Config& config,
                 const Logger& logger, RestApiHooks hooks)
    : open_access_(MakeOpenAccessControl(
          [&docs](const DocumentId& id) { return docs.Find(id) != nullptr; })),
      docs_(docs),
      metrics_(metrics),
      logger_(logger),
      access_(*open_access_),
      cors_(config.allowed_origins),
      hooks_(std::move(hooks)),
      history_(docs, logger) {}

Role RestApi::RoleOf(const RestCaller& caller, const DocumentId& id) const {
  Role role = access_.RoleFor(caller.principal, id);
  if (!access_.enabled() && role != Role::kNone) return Role::kOwner;
  return role;
}

HttpHandler RestApi::AsHandler() {
  return [this](const HttpRequest& request, HttpResponder respond) {
    Handle(request, std::move(respond));
  };
}

void RestApi::Handle(const HttpRequest& request, HttpResponder respond) {
  if (logger_.Enabled(LogLevel::kDebug)) {
    QUIRE_LOG(logger_, kDebug, "http_request")
        .Str("method", request.method)
        .Str("path", request.path);
  }
  if (CorsPolicy::IsPreflight(request)) {
    respond(cors_.Preflight(request));
    return;
  }
  if (request.method == "HEAD") {
    // GET's answer without its body (RFC 9110, 9.3.2): the HTTP layer writes the headers
    // only, Content-Length included.
    HttpRequest get = request;
    get.method = "GET";
    Handle(get, std::move(respond));
    return;
  }
  const std::string& m = request.method;
  const std::string& path = request.path;

  // Each route: the methods it allows and what each does.
  auto route = [&](std::string_view allow, auto&& dispatch) {
    if (m == "OPTIONS") {
      HttpResponse r;
      r.status = 204;
      r.Header("Allow", internal::WithHead(allow) + ", OPTIONS");
      respond(std::move(r));
      return;
    }
    if (!dispatch()) respond(MethodNotAllowed(m, allow));
  };

  if (path == "/healthz") {
    route("GET", [&] {
      if (m != "GET") return false;
      respond(JsonResponse(200, {{"status", "ok"}}));
      return true;
    });
    return;
  }
  if (path == "/readyz") {
    route("GET", [&] {
      if (m != "GET") return false;
      Ready(respond);
      return true;
    });
    return;
  }
  if (path == "/metrics") {
    route("GET", [&] {
      if (m != "GET") return false;
      if (hooks_.collect_metrics) hooks_.collect_metrics();
      HttpResponse r;
      r.Header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
      r.body = metrics_.RenderPrometheus();
      respond(std::move(r));
      return true;
    });
    return;
  }
  if (path == "/api/v1/openapi.json") {
    route("GET", [&] {
      if (m != "GET") return false;
      respond(HttpResponse::Json(200, OpenApiJson()));
      return true;
    });
    return;
  }
  if (path == kDocumentsPath ||
      (path.starts_with(kDocumentsPath) && path[kDocumentsPath.size()] == '/')) {
    HandleDocuments(request, std::move(respond));
    return;
  }
  respond(NotFound("no route for " + path));
}

void RestApi::HandleDocuments(const HttpRequest& request, HttpResponder respond) {
  const std::string& m = request.method;
  const std::string& path = request.path;
  auto route = [&](std::string_view allow, auto&& dispatch) {
    if (m == "OPTIONS") {
      HttpResponse r;
      r.status = 204;
      r.Header("Allow", internal::WithHead(allow) + ", OPTIONS");
      respond(std::move(r));
      return;
    }
    if (!dispatch()) respond(MethodNotAllowed(m, allow));
  };

  RestCaller caller;
  if (access_.enabled()) {
    std::string token = TokenFromRequest(request);
    std::string why;
    auto principal = access_.Authenticate(token, &why);
    if (!principal.has_value()) return respond(internal::Unauthenticated(why, !token.empty()));
    caller.principal = std::move(*principal);
    caller.actor = caller.principal.user_id;
  } else if (auto user = request.Header("x-user-id"); user.has_value() && user->size() <= 128) {
    caller.actor = ActorId(*user);
  }

  if (path == kDocumentsPath) {
    route("GET, POST", [&] {
      if (m == "GET")
        ListDocuments(request, caller, respond);
      else if (m == "POST")
        CreateDocument(request, caller, respond);
      else
        return false;
      return true;
    });
    return;
  }
  std::string id = path.substr(kDocumentsPath.size() + 1);
  std::string sub;
  if (size_t slash = id.find('/'); slash != std::string::npos) {
    sub = id.substr(slash + 1);
    id.resize(slash);
  }
  if (!IsValidDocumentId(id)) return respond(NotFound("no document '" + id + "'"));
  if (!sub.empty() && RestHistory::Owns(sub)) {
    return history_.Handle(request, id, sub, caller, RoleOf(caller, id), std::move(respond));
  }
  if (sub == "permissions" || sub.starts_with("permissions/")) {
    std::string_view user = std::string_view(sub).substr(std::string_view("permissions").size());
    if (!user.empty()) user.remove_prefix(1);
    if (sub != "permissions" && user.empty()) return respond(NotFound("no route for " + path));
    route(user.empty() ? "GET" : "GET, PUT, DELETE", [&] {
      if (user.empty() ? m != "GET" : (m != "GET" && m != "PUT" && m != "DELETE")) return false;
      Permissions(request, id, user, caller, respond);
      return true;
    });
    return;
  }
  if (!sub.empty()) return respond(NotFound("no route for " + path));
  route("GET, PATCH, DELETE", [&] {
    if (m != "GET" && m != "PATCH" && m != "DELETE") return false;
    Role role = RoleOf(caller, id);
    if (m == "GET") {
      if (auto err = internal::RequireRole(role, Role::kViewer, id)) return respond(*err), true;
      GetDocument(id, respond);
    } else if (m == "PATCH") {
      if (auto err = internal::RequireRole(role, Role::kViewer, id)) return respond(*err), true;
      PatchDocument(id, request, caller, role, respond);
    } else {
      if (auto err = internal::RequireRole(role, Role::kOwner, id)) return respond(*err), true;
      DeleteDocument(id, caller, respond);
    }
    return true;
  });
}

void RestApi::Ready(HttpResponder respond) {
  if (hooks_.shutting_down && hooks_.shutting_down()) {
    respond(HttpResponse::Error(503, "SHUTTING_DOWN", "the server is shutting down"));
    return;
  }
  Status writable = docs_.writable();
  if (!writable.ok()) {
    respond(HttpResponse::Error(503, "STORAGE_UNAVAILABLE",
                                "storage does not accept writes: " + writable.message()));
    return;
  }
  respond(JsonResponse(200, {{"status", "ready"}}));
}

void RestApi::CreateDocument(const HttpRequest& request, const RestCaller& caller,
                             HttpResponder respond) {
  json body;
  if (auto err = ParseJsonObject(request, body)) return respond(std::move(*err));
  if (auto err = RejectUnknownFields(body, {"title", "crdt", "id"}))
    return respond(std::move(*err));
  projection::CreateCommand cmd;
  if (!body.contains("title")) return respond(FieldError("title", "is required"));
  if (auto err = ValidateTitle(body["title"], cmd.title)) return respond(std::move(*err));
  if (body.contains("crdt")) {
    const json& crdt = body["crdt"];
    std::optional<CrdtKind> kind;
    if (crdt.is_string()) kind = ParseCrdtKind(crdt.get_ref<const std::string&>());
    if (!kind.has_value())
      return respond(FieldError("crdt", "must be one of yjs, automerge, opaque"));
    cmd.crdt = *kind;
  }
  if (body.contains("id")) {
    const json& id = body["id"];
    if (!id.is_string() || !IsValidDocumentId(id.get_ref<const std::string&>())) {
      return respond(FieldError("id", "must match [A-Za-z0-9._-]{1,128}"));
    }
    cmd.id = id.get<std::string>();
    if (docs_.Find(*cmd.id) != nullptr) {
      return respond(
          HttpResponse::Error(409, "ALREADY_EXISTS", "document '" + *cmd.id + "' already exists"));
    }
  }
  cmd.owner = caller.actor;  // with access control on, the token's sub: the caller owns it
  docs_.Create(std::move(cmd), [this, respond](Result<DocumentRecord> result) {
    if (!result.ok()) {
      if (result.status().code() != StatusCode::kAlreadyExists) {
        QUIRE_LOG(logger_, kWarn, "document_create_failed")
            .Str("error", result.status().ToString());
      }
      return respond(internal::ErrorResponse(result.status()));
    }
    QUIRE_LOG(logger_, kInfo, "document_created")
        .Str("docId", result->id)
        .Int("seq", result->head_seq);
    HttpResponse r = JsonResponse(201, DocumentJson(*result));
    r.Header("Location", std::string(kDocumentsPath) + "/" + result->id);
    respond(std::move(r));
  });
}

void RestApi::ListDocuments(const HttpRequest& request, const RestCaller& caller,
                            HttpResponder respond) {
  projection::ListQuery q;
  if (auto err = ParseIntParam(request, "page", 1, INT64_MAX / 128, q.page))
    return respond(std::move(*err));
  if (auto err = ParseIntParam(request, "page_size", 1, 100, q.page_size)) {
    return respond(std::move(*err));
  }
  if (auto v = request.Query("include_deleted")) {
    if (*v == "true" || *v == "1")
      q.include_deleted = true;
    else if (*v == "false" || *v == "0" || v->empty())
      q.include_deleted = false;
    else
      return respond(FieldError("include_deleted", "must be true or false"));
  }
  if (auto v = request.Query("query")) {
    if (!CountUtf8CodePoints(*v).has_value())
      return respond(FieldError("query", "must be valid UTF-8"));
    q.query = std::string(*v);
  }
  projection::ListPage page =
      access_.enabled()
          ? docs_.List(q,
                       [this, &caller](const DocumentRecord& r) {
                         return access_.RoleFor(caller.principal, r.id) >= Role::kViewer;
                       })
          : docs_.List(q);
  json items = json::array();
  for (const DocumentRecord& r : page.items) items.push_back(DocumentJson(r));
  respond(JsonResponse(200, {{"items", std::move(items)},
                             {"page", page.page},
                             {"page_size", page.page_size},
                             {"total", page.total}}));
}

void RestApi::GetDocument(const std::string& id, HttpResponder respond) {
  const DocumentRecord* r = docs_.Find(id);
  if (r == nullptr) return respond(NotFound("no document '" + id + "'"));
  respond(JsonResponse(200, DocumentJson(*r)));
}

void RestApi::PatchDocument(const std::string& id, const HttpRequest& request,
                            const RestCaller& caller, Role role, HttpResponder respond) {
  json body;
  if (auto err = ParseJsonObject(request, body)) return respond(std::move(*err));
  if (auto err = RejectUnknownFields(body, {"title", "deleted"})) return respond(std::move(*err));
  std::optional<std::string> title;
  std::optional<bool> deleted;
  if (body.contains("title")) {
    title.emplace();
    if (auto err = ValidateTitle(body["title"], *title)) return respond(std::move(*err));
  }
  if (body.contains("deleted")) {
    if (!body["deleted"].is_boolean()) return respond(FieldError("deleted", "must be a boolean"));
    deleted = body["deleted"].get<bool>();
  }
  const DocumentRecord* current = docs_.Find(id);
  if (current == nullptr) return respond(NotFound("no document '" + id + "'"));
  // Renaming needs editor, deleting or restoring owner; a PATCH that changes nothing needs only
  // to see the document.
  if (title.has_value() && *title != current->title) {
    if (auto err = internal::RequireRole(role, Role::kEditor, id)) return respond(std::move(*err));
  }
  if (deleted.has_value() && *deleted != current->deleted()) {
    if (auto err = internal::RequireRole(role, Role::kOwner, id)) return respond(std::move(*err));
  }
  ActorId actor = caller.actor;

  // Rename first (allowed on a deleted document), then delete or restore: at most two events.
  auto set_deleted = [this, id, deleted, actor, respond](const DocumentRecord& record) {
    if (!deleted.has_value() || *deleted == record.deleted()) {
      return respond(JsonResponse(200, DocumentJson(record)));
    }
    docs_.SetDeleted(id, *deleted, actor, [this, respond](Result<DocumentRecord> result) {
      if (!result.ok()) return respond(internal::ErrorResponse(result.status()));
      QUIRE_LOG(logger_, kInfo, result->deleted() ? "document_deleted" : "document_restored")
          .Str("docId", result->id)
          .Int("seq", result->head_seq);
      respond(JsonResponse(200, DocumentJson(*result)));
    });
  };
  if (!title.has_value() || *title == current->title) {
    set_deleted(*current);
    return;
  }
  docs_.Rename(id, *title, actor, [this, respond, set_deleted](Result<DocumentRecord> result) {
    if (!result.ok()) return respond(internal::ErrorResponse(result.status()));
    QUIRE_LOG(logger_, kInfo, "document_renamed")
        .Str("docId", result->id)
        .Int("seq", result->head_seq);
    set_deleted(*result);
  });
}

void RestApi::DeleteDocument(const std::string& id, const RestCaller& caller,
                             HttpResponder respond) {
  const DocumentRecord* current = docs_.Find(id);
  if (current == nullptr) return respond(NotFound("no document '" + id + "'"));
  HttpResponse no_content;
  no_content.status = 204;
  if (current->deleted()) return respond(std::move(no_content));
  docs_.SetDeleted(id, true, caller.actor,
                   [this, respond, no_content](Result<DocumentRecord> result) {
                     if (!result.ok()) return respond(internal::ErrorResponse(result.status()));
                     QUIRE_LOG(logger_, kInfo, "document_deleted")
                         .Str("docId", result->id)
                         .Int("seq", result->head_seq);
                     respond(no_content);
                   });
}

// GET .../permissions: {"owner": id, "items": [{"userId", "role"}]} (grants by user id).
// GET .../permissions/{userId}: 200 {"userId", "role"} ("owner" for the owner), 404 when the
// user holds no grant.
// PUT .../permissions/{userId} {"role": "viewer" | "editor"}: 200 {"userId", "role", "seq"}
// (seq = the permission event's, or the head when the grant was already so: no event).
// DELETE .../permissions/{userId}: 204; a permission event only when a grant was removed.
void RestApi::Permissions(const HttpRequest& request, const std::string& id, std::string_view user,
                          const RestCaller& caller, HttpResponder respond) {
  if (auto err = internal::RequireRole(RoleOf(caller, id), Role::kOwner, id)) {
    return respond(std::move(*err));
  }
  const DocumentRecord& record = *docs_.Find(id);
  if (user.empty()) {
    json items = json::array();
    for (const auto& [grantee, role] : record.grants) {
      items.push_back({{"userId", grantee}, {"role", role}});
    }
    return respond(JsonResponse(
        200, {{"documentId", id}, {"owner", record.owner_id}, {"items", std::move(items)}}));
  }
  if (user.size() > 128 || !CountUtf8CodePoints(user).has_value()) {
    return respond(FieldError("userId", "must be 1 to 128 bytes of UTF-8"));
  }
  if (request.method == "GET") {
    std::string grantee(user);
    if (grantee == record.owner_id) {
      return respond(JsonResponse(200, {{"userId", grantee}, {"role", RoleName(Role::kOwner)}}));
    }
    auto grant = record.grants.find(grantee);
    if (grant == record.grants.end()) {
      return respond(NotFound("'" + grantee + "' holds no grant on '" + id + "'"));
    }
    return respond(JsonResponse(200, {{"userId", grantee}, {"role", grant->second}}));
  }
  if (user == record.owner_id) {
    return respond(FieldError("userId", "is the owner, whose role cannot change"));
  }
  std::string grantee(user);
  auto current = record.grants.find(grantee);
  std::string role;
  if (request.method == "PUT") {
    json body;
    if (auto err = ParseJsonObject(request, body)) return respond(std::move(*err));
    if (auto err = RejectUnknownFields(body, {"role"})) return respond(std::move(*err));
    if (!body.contains("role")) return respond(FieldError("role", "is required"));
    const json& value = body["role"];
    if (!value.is_string() || (value.get_ref<const std::string&>() != eventlog::kGrantViewer &&
                               value.get_ref<const std::string&>() != eventlog::kGrantEditor)) {
      return respond(FieldError("role", "must be viewer or editor"));
    }
    role = value.get<std::string>();
    if (current != record.grants.end() && current->second == role) {
      return respond(
          JsonResponse(200, {{"userId", grantee}, {"role", role}, {"seq", record.head_seq}}));
    }
  } else {
    HttpResponse no_content;
    no_content.status = 204;
    if (current == record.grants.end()) return respond(std::move(no_content));
  }
  eventlog::Event e;
  e.document_id = id;
  e.kind = eventlog::EventKind::kPermission;
  e.title = grantee;
  e.payload.assign(role.begin(), role.end());
  e.actor_id = caller.actor;
  docs_.AppendHistoryEvent(
      std::move(e), [this, id, grantee, role, respond](Result<eventlog::AppendResult> r) {
        if (!r.ok()) return respond(internal::ErrorResponse(r.status()));
        QUIRE_LOG(logger_, kInfo, role.empty() ? "permission_revoked" : "permission_granted")
            .Str("docId", id)
            .Str("userId", grantee)
            .Str("role", role)
            .Int("seq", r->seq);
        if (role.empty()) {
          HttpResponse no_content;
          no_content.status = 204;
          return respond(std::move(no_content));
        }
        respond(JsonResponse(200, {{"userId", grantee}, {"role", role}, {"seq", r->seq}}));
      });
}

}  // namespace quire::io
