// RestApi: the HTTP routes of the server — REST API v1 (/api/v1/documents, openapi.json), the
// operations endpoints (/healthz, /readyz, /metrics) and CORS preflight. Every change goes
// through DocumentService (one event per change); every read comes from its catalog.
//
// Errors are JSON everywhere: {"error":{"code":"...","message":"..."}} (validation errors also
// carry "field"). Unknown path 404, wrong method 405 with Allow, a body that is not
// application/json 415, malformed JSON 400 INVALID_JSON, a failed field check 400
// VALIDATION_FAILED naming the field. The endpoints are described in io/openapi.cc.
//
// Access control (io/access.h). When it is on, every /api/v1/documents route needs a valid
// bearer token (else 401 UNAUTHENTICATED with `WWW-Authenticate: Bearer`), the actor of every
// change is the token's `sub` (X-User-Id is ignored), the list holds only documents the caller
// has a role on, a document the caller has no role on is 404 and too low a role is 403
// FORBIDDEN. Roles needed: viewer to read (document, history, state, versions), editor to
// rename, name a version or fork, owner to delete / restore and to manage permissions
// (GET/PUT/DELETE .../permissions[/{userId}]; every change is a `permission` event). When it is
// off, anyone may do anything to a document that exists (the actor is X-User-Id).
// /healthz, /readyz, /metrics and /api/v1/openapi.json stay open.
//
// Threading: loop thread only. `docs`, `metrics` and `logger` must outlive the RestApi, and
// the RestApi must outlive every command it issued (the server closes the log first).
#pragma once

#include <functional>

#include "core/config.h"
#include "core/log.h"
#include "io/access.h"
#include "io/cors.h"
#include "io/http_server.h"
#include "io/metrics.h"
#include "io/rest_history.h"
#include "projection/document_service.h"

namespace quire::io {

struct RestApiHooks {
  // True once a graceful shutdown started (/readyz answers 503).
  std::function<bool()> shutting_down;
  // Runs before /metrics renders: refreshes gauges and counters kept elsewhere.
  std::function<void()> collect_metrics;
};

class RestApi {
 public:
  // `access` must outlive the RestApi.
  RestApi(projection::DocumentService& docs, Metrics& metrics, const Config& config,
          const Logger& logger, const AccessControl& access, RestApiHooks hooks = {});
  // With access control off (MakeOpenAccessControl over `docs`).
  RestApi(projection::DocumentService& docs, Metrics& metrics, const Config& config,
          const Logger& logger, RestApiHooks hooks = {});

  void Handle(const HttpRequest& request, HttpResponder respond);
  // Handle() as an HttpHandler bound to this object.
  HttpHandler AsHandler();

 private:
  void HandleDocuments(const HttpRequest& request, HttpResponder respond);
  void CreateDocument(const HttpRequest& request, const RestCaller& caller, HttpResponder respond);
  void ListDocuments(const HttpRequest& request, const RestCaller& caller, HttpResponder respond);
  void GetDocument(const std::string& id, HttpResponder respond);
  void PatchDocument(const std::string& id, const HttpRequest& request, const RestCaller& caller,
                     Role role, HttpResponder respond);
  void DeleteDocument(const std::string& id, const RestCaller& caller, HttpResponder respond);
  void Permissions(const HttpRequest& request, const std::string& id, std::string_view user,
                   const RestCaller& caller, HttpResponder respond);
  void Ready(HttpResponder respond);
  // The caller's role on `id` for the REST API: RoleFor, except that with access control off
  // anyone is owner of a document that exists.
  Role RoleOf(const RestCaller& caller, const DocumentId& id) const;

  std::unique_ptr<AccessControl> open_access_;  // set by the constructor without `access`

  projection::DocumentService& docs_;
  Metrics& metrics_;
  const Logger& logger_;
  const AccessControl& access_;
  CorsPolicy cors_;
  RestApiHooks hooks_;
  RestHistory history_;  // /api/v1/documents/{id}/{history,state,versions,fork}
};

}  // namespace quire::io
