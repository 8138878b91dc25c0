#include "io/rest_history.h"

#include <charconv>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/base64.h"
#include "core/codec.h"
#include "io/internal/http_status.h"
#include "io/internal/rest_util.h"
#include "projection/history.h"

namespace quire::io {

namespace {

using eventlog::Event;
using eventlog::EventKind;
using internal::FieldError;
using internal::IsoTime;
using internal::JsonResponse;
using nlohmann::json;
using projection::DocumentRecord;

constexpr int64_t kDefaultLimit = 50;
constexpr int64_t kMaxLimit = 500;
constexpr size_t kMaxNameChars = 256;

HttpResponse NotFound(const std::string& id) {
  return HttpResponse::Error(404, "NOT_FOUND", "no document '" + id + "'");
}

json RetentionJson(const projection::RetentionInfo& r) {
  return {{"pruned_through", r.pruned_through}, {"oldest_state_seq", r.oldest_state_seq}};
}

json EventJson(const Event& e) {
  json item = {
      {"seq", e.seq},
      {"kind", std::string(eventlog::EventKindName(e.kind))},
      {"opId", e.op_id.empty() ? json(nullptr) : json(e.op_id)},
      {"actorId", e.actor_id},
      {"created_at", IsoTime(e.created_at)},
      {"bytes", e.payload.size()},
  };
  switch (e.kind) {
    case EventKind::kCreated:
      item["title"] = e.title;
      item["crdt"] = std::string(CrdtKindName(e.crdt));
      break;
    case EventKind::kRenamed:
      item["title"] = e.title;
      break;
    case EventKind::kSnapshot:
      item["version"] = e.version;
      break;
    case EventKind::kVersion:
      item["name"] = e.title;
      break;
    case EventKind::kForkedTo:
      item["documentId"] = e.title;
      item["at"] = e.version;
      break;
    case EventKind::kForkedFrom:
      item["documentId"] = e.title;
      item["at"] = e.version;
      break;
    case EventKind::kPermission:
      item["userId"] = e.title;
      item["role"] =
          e.payload.empty() ? std::string("none") : std::string(e.payload.begin(), e.payload.end());
      break;
    default:
      break;
  }
  return item;
}

// An integer query parameter in [min, max]; absent leaves `out` unchanged.
std::optional<HttpResponse> IntParam(const HttpRequest& request, std::string_view name, int64_t min,
                                     int64_t max, int64_t& out) {
  auto v = request.Query(name);
  if (!v.has_value()) return std::nullopt;
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (v->empty() || ec != std::errc() || ptr != v->data() + v->size() || n < min || n > max) {
    return FieldError(
        name, "must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
  }
  out = n;
  return std::nullopt;
}

std::string_view Trim(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

// 1..max code points after trimming, valid UTF-8 (checked loosely: continuation bytes are not
// counted; nlohmann already rejected invalid UTF-8 in the body).
std::optional<HttpResponse> ValidateText(const json& value, std::string_view field,
                                         std::string& out) {
  if (!value.is_string()) return FieldError(field, "must be a string");
  std::string_view trimmed = Trim(value.get_ref<const std::string&>());
  size_t chars = 0;
  for (char c : trimmed) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  if (chars == 0) return FieldError(field, "must not be empty");
  if (chars > kMaxNameChars) return FieldError(field, "must be at most 256 characters");
  out = std::string(trimmed);
  return std::nullopt;
}

std::optional<HttpResponse> ParseJsonObject(const HttpRequest& request, json& out,
                                            std::initializer_list<std::string_view> known) {
  auto content_type = request.Header("content-type");
  std::string media(content_type.value_or("").substr(0, content_type.value_or("").find(';')));
  for (char& c : media) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (Trim(media) != "application/json") {
    return HttpResponse::Error(415, "UNSUPPORTED_MEDIA_TYPE",
                               "the request body must be application/json");
  }
  out = json::parse(request.body.empty() ? std::string("{}") : request.body, nullptr, false);
  if (out.is_discarded()) {
    return HttpResponse::Error(400, "INVALID_JSON", "the request body is not valid JSON");
  }
  if (!out.is_object()) {
    return HttpResponse::Error(400, "INVALID_JSON", "the request body must be a JSON object");
  }
  for (auto it = out.begin(); it != out.end(); ++it) {
    bool ok = false;
    for (std::string_view k : known) ok = ok || it.key() == k;
    if (!ok) return FieldError(it.key(), "unknown field");
  }
  return std::nullopt;
}

HttpResponse NotRetained(Seq at, const projection::RetentionInfo& retention) {
  json body = {{"error",
                {{"code", "NOT_RETAINED"},
                 {"message", "the state at seq " + std::to_string(at) +
                                 " is no longer retained; the oldest available seq is " +
                                 std::to_string(retention.oldest_state_seq)},
                 {"oldest_available_seq", retention.oldest_state_seq}}}};
  return JsonResponse(410, body);
}

bool WantsOctetStream(const HttpRequest& request) {
  auto accept = request.Header("accept");
  return accept.has_value() && accept->find("application/octet-stream") != std::string_view::npos;
}

}  // namespace

RestHistory::RestHistory(projection::DocumentService& docs, const Logger& logger)
    : docs_(docs), logger_(logger) {}

bool RestHistory::Owns(std::string_view sub) {
  return sub == "history" || sub == "state" || sub == "versions" || sub == "fork";
}

void RestHistory::Handle(const HttpRequest& request, const std::string& id, std::string_view sub,
                         const RestCaller& caller, Role role, HttpResponder respond) {
  const std::string& m = request.method;
  std::string_view allow = (sub == "versions") ? "GET, POST" : (sub == "fork") ? "POST" : "GET";
  if (m == "OPTIONS") {
    HttpResponse r;
    r.status = 204;
    r.Header("Allow", internal::WithHead(allow) + ", OPTIONS");
    return respond(std::move(r));
  }
  if (docs_.Find(id) == nullptr) return respond(NotFound(id));
  bool writes = (sub == "versions" && m == "POST") || (sub == "fork" && m == "POST");
  if (auto err = internal::RequireRole(role, writes ? Role::kEditor : Role::kViewer, id)) {
    return respond(std::move(*err));
  }
  if (sub == "history" && m == "GET") return History(request, id, std::move(respond));
  if (sub == "state" && m == "GET") return State(request, id, std::move(respond));
  if (sub == "versions" && m == "GET") return ListVersions(id, std::move(respond));
  if (sub == "versions" && m == "POST") {
    return CreateVersion(request, id, caller.actor, std::move(respond));
  }
  if (sub == "fork" && m == "POST") return Fork(request, id, caller.actor, std::move(respond));
  std::string methods = internal::WithHead(allow);
  HttpResponse r = HttpResponse::Error(405, "METHOD_NOT_ALLOWED",
                                       m + " is not allowed here; allowed: " + methods);
  r.Header("Allow", methods);
  respond(std::move(r));
}

void RestHistory::History(const HttpRequest& request, const std::string& id,
                          HttpResponder respond) {
  int64_t limit = kDefaultLimit;
  if (auto err = IntParam(request, "limit", 1, kMaxLimit, limit)) return respond(std::move(*err));
  bool descending = false;
  if (auto order = request.Query("order")) {
    if (*order == "desc") {
      descending = true;
    } else if (*order != "asc") {
      return respond(FieldError("order", "must be asc or desc"));
    }
  }
  projection::HistoryCursor cursor{descending, descending ? docs_.Find(id)->head_seq + 1 : 0};
  if (auto text = request.Query("cursor"); text.has_value() && !text->empty()) {
    auto decoded = projection::DecodeHistoryCursor(*text);
    if (!decoded.has_value()) return respond(FieldError("cursor", "is not a valid cursor"));
    if (decoded->descending != descending) {
      return respond(FieldError(
          "cursor", std::string("was made for order=") + (decoded->descending ? "desc" : "asc")));
    }
    cursor = *decoded;
  }
  docs_.RunOnStorage<Result<projection::HistoryPage>>(
      [id, cursor, limit](eventlog::Backend& b) {
        return projection::ReadHistoryPage(b, id, cursor, static_cast<size_t>(limit));
      },
      [cursor, respond = std::move(respond)](Result<projection::HistoryPage> page) {
        if (!page.ok()) return respond(internal::ErrorResponse(page.status()));
        json items = json::array();
        for (const Event& e : page->items) items.push_back(EventJson(e));
        // Ascending: always a cursor, so a reader at the end can poll for what comes next.
        // Descending: none once seq 1 is passed (nothing older can ever appear).
        json next = nullptr;
        if (!cursor.descending) {
          Seq pos = page->items.empty() ? cursor.position : page->items.back().seq;
          next = projection::EncodeHistoryCursor({false, pos});
        } else if (page->more) {
          next = projection::EncodeHistoryCursor({true, page->items.back().seq});
        }
        respond(JsonResponse(200, {{"items", std::move(items)},
                                   {"next_cursor", std::move(next)},
                                   {"has_more", page->more},
                                   {"retention", RetentionJson(page->retention)}}));
      });
}

void RestHistory::ReadState(const DocumentId& id, CrdtKind crdt, Seq at,
                            std::function<void(Result<projection::StateAtResult>)> done) {
  using projection::StateAtResult;
  docs_.RunOnStorage<Result<StateAtResult>>(
      [id, at](eventlog::Backend& b) { return projection::ReadStateEventsAt(b, id, at); },
      [this, crdt, done = std::move(done)](Result<StateAtResult> read) mutable {
        if (!read.ok() || !read->state.has_value() || !CodecFor(crdt).CanFold()) {
          return done(std::move(read));
        }
        auto state = std::make_shared<StateAtResult>(std::move(*read));
        docs_.RunCompute<Status>(
            [state, crdt] { return projection::FoldStateAt(*state->state, crdt); },
            [state, done = std::move(done)](Status folded) {
              if (!folded.ok()) return done(std::move(folded));
              done(std::move(*state));
            });
      });
}

void RestHistory::State(const HttpRequest& request, const std::string& id, HttpResponder respond) {
  const DocumentRecord& record = *docs_.Find(id);
  int64_t at = record.head_seq;
  if (auto text = request.Query("at")) {
    int64_t n = 0;
    auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
    if (text->empty() || ec != std::errc() || ptr != text->data() + text->size() || n < 1) {
      return respond(FieldError("at", "must be a positive integer"));
    }
    if (n > record.head_seq) {
      return respond(
          FieldError("at", "is beyond the head (seq " + std::to_string(record.head_seq) + ")"));
    }
    at = n;
  }
  CrdtKind crdt = record.crdt;
  bool raw = WantsOctetStream(request);
  ReadState(
      id, crdt, at,
      [at, raw, crdt, respond = std::move(respond)](Result<projection::StateAtResult> result) {
        if (!result.ok()) return respond(internal::ErrorResponse(result.status()));
        if (!result->state.has_value()) return respond(NotRetained(at, result->retention));
        const projection::StateAt& s = *result->state;
        if (raw) {
          if (!s.updates.empty()) {
            return respond(HttpResponse::Error(
                406, "NOT_ACCEPTABLE",
                "the opaque state at this seq is a snapshot plus updates; ask for JSON"));
          }
          HttpResponse r;
          r.Header("Content-Type", "application/octet-stream");
          r.Header("X-Quire-Version", std::to_string(s.at));
          r.body.assign(s.snapshot.begin(), s.snapshot.end());
          return respond(std::move(r));
        }
        json body = {{"version", s.at},
                     {"crdt", std::string(CrdtKindName(crdt))},
                     {"snapshotB64", Base64Encode(s.snapshot)},
                     {"retention", RetentionJson(result->retention)}};
        if (!CodecFor(crdt).CanFold()) {
          body["snapshotVersion"] = s.snapshot_version;
          json updates = json::array();
          for (const auto& u : s.updates) {
            updates.push_back({{"seq", u.seq},
                               {"opId", u.op_id},
                               {"actorId", u.actor_id},
                               {"updateB64", Base64Encode(u.bytes)}});
          }
          body["updates"] = std::move(updates);
        }
        respond(JsonResponse(200, body));
      });
}

void RestHistory::ListVersions(const std::string& id, HttpResponder respond) {
  docs_.RunOnStorage<Result<std::vector<Event>>>(
      [id](eventlog::Backend& b) { return projection::ReadVersions(b, id); },
      [respond = std::move(respond)](Result<std::vector<Event>> versions) {
        if (!versions.ok()) return respond(internal::ErrorResponse(versions.status()));
        json items = json::array();
        for (const Event& e : *versions) {
          items.push_back({{"seq", e.seq},
                           {"name", e.title},
                           {"actorId", e.actor_id},
                           {"created_at", IsoTime(e.created_at)}});
        }
        respond(JsonResponse(200, {{"items", std::move(items)}}));
      });
}

void RestHistory::CreateVersion(const HttpRequest& request, const std::string& id,
                                const ActorId& actor, HttpResponder respond) {
  json body;
  if (auto err = ParseJsonObject(request, body, {"name"})) return respond(std::move(*err));
  if (!body.contains("name")) return respond(FieldError("name", "is required"));
  std::string name;
  if (auto err = ValidateText(body["name"], "name", name)) return respond(std::move(*err));
  Event e;
  e.document_id = id;
  e.kind = EventKind::kVersion;
  e.title = name;
  e.actor_id = actor;
  docs_.AppendHistoryEvent(std::move(e), [this, id, name, actor, respond = std::move(respond)](
                                             Result<eventlog::AppendResult> r) {
    if (!r.ok()) return respond(internal::ErrorResponse(r.status()));
    QUIRE_LOG(logger_, kInfo, "version_named").Str("docId", id).Int("seq", r->seq);
    respond(JsonResponse(201, {{"seq", r->seq}, {"name", name}, {"actorId", actor}}));
  });
}

void RestHistory::Fork(const HttpRequest& request, const std::string& id, const ActorId& actor,
                       HttpResponder respond) {
  json body;
  if (auto err = ParseJsonObject(request, body, {"at", "title"})) return respond(std::move(*err));
  const DocumentRecord& source = *docs_.Find(id);
  Seq at = source.head_seq;
  if (body.contains("at")) {
    const json& v = body["at"];
    if (!v.is_number_integer() || v.get<int64_t>() < 1) {
      return respond(FieldError("at", "must be a positive integer"));
    }
    if (v.get<int64_t>() > source.head_seq) {
      return respond(
          FieldError("at", "is beyond the head (seq " + std::to_string(source.head_seq) + ")"));
    }
    at = v.get<int64_t>();
  }
  std::string title = source.title + " (fork)";
  if (body.contains("title")) {
    if (auto err = ValidateText(body["title"], "title", title)) return respond(std::move(*err));
  } else if (title.size() > kMaxNameChars) {
    title = source.title;
  }
  CrdtKind crdt = source.crdt;
  ReadState(
      id, crdt, at,
      [this, id, crdt, at, title, actor,
       respond = std::move(respond)](Result<projection::StateAtResult> state) mutable {
        if (!state.ok()) return respond(internal::ErrorResponse(state.status()));
        if (!state->state.has_value()) return respond(NotRetained(at, state->retention));
        projection::CreateCommand create;
        create.title = title;
        create.crdt = crdt;
        create.owner = actor;
        auto st = std::make_shared<projection::StateAt>(std::move(*state->state));
        docs_.Create(
            std::move(create), [this, id, crdt, at, actor, st, respond = std::move(respond)](
                                   Result<DocumentRecord> created) mutable {
              if (!created.ok()) return respond(internal::ErrorResponse(created.status()));
              DocumentId new_id = created->id;
              auto events = projection::ForkEvents(id, new_id, crdt, *st, actor);
              if (!events.ok()) return respond(internal::ErrorResponse(events.status()));
              // Submitted back to back: they commit in order, and the last callback runs last.
              auto failed = std::make_shared<Status>(Status::Ok());
              size_t n = events->size();
              for (size_t i = 0; i < n; ++i) {
                bool last = i + 1 == n;
                docs_.AppendHistoryEvent(
                    std::move((*events)[i]), [this, id, new_id, at, actor, failed, last,
                                              respond](Result<eventlog::AppendResult> r) mutable {
                      if (!r.ok() && failed->ok()) *failed = r.status();
                      if (!last) return;
                      if (!failed->ok()) return respond(internal::ErrorResponse(*failed));
                      Event to;
                      to.document_id = id;
                      to.kind = EventKind::kForkedTo;
                      to.title = new_id;
                      to.version = at;
                      to.actor_id = actor;
                      docs_.AppendHistoryEvent(
                          std::move(to), [this, id, new_id, at,
                                          respond](Result<eventlog::AppendResult> r2) mutable {
                            if (!r2.ok()) return respond(internal::ErrorResponse(r2.status()));
                            const DocumentRecord* rec = docs_.Find(new_id);
                            QUIRE_LOG(logger_, kInfo, "document_forked")
                                .Str("docId", id)
                                .Str("newDocId", new_id)
                                .Int("at", at);
                            HttpResponse resp = JsonResponse(
                                201, {{"id", new_id},
                                      {"title", rec ? rec->title : ""},
                                      {"crdt", rec ? std::string(CrdtKindName(rec->crdt)) : ""},
                                      {"seq", rec ? rec->head_seq : 0},
                                      {"forked_from", {{"id", id}, {"at", at}, {"seq", r2->seq}}}});
                            resp.Header("Location", "/api/v1/documents/" + new_id);
                            respond(std::move(resp));
                          });
                    });
              }
            });
      });
}

}  // namespace quire::io
