// RestApi: the HTTP routes of the server — REST API v1 (/api/v1/documents, openapi.json), the
// operations endpoints (/healthz, /readyz, /metrics) and CORS preflight. Every change goes
// through DocumentService (one event per change); every read comes from its catalog.
//
// Errors are JSON everywhere: {"error":{"code":"...","message":"..."}} (validation errors also
// carry "field"). Unknown path 404, wrong method 405 with Allow, a body that is not
// application/json 415, malformed JSON 400 INVALID_JSON, a failed field check 400
// VALIDATION_FAILED naming the field. The endpoints are described in io/openapi.cc.
//
// Threading: loop thread only. `docs`, `metrics` and `logger` must outlive the RestApi, and
// the RestApi must outlive every command it issued (the server closes the log first).
#pragma once

#include <functional>

#include "core/config.h"
#include "core/log.h"
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
  RestApi(projection::DocumentService& docs, Metrics& metrics, const Config& config,
          const Logger& logger, RestApiHooks hooks = {});

  void Handle(const HttpRequest& request, HttpResponder respond);
  // Handle() as an HttpHandler bound to this object.
  HttpHandler AsHandler();

 private:
  void CreateDocument(const HttpRequest& request, HttpResponder respond);
  void ListDocuments(const HttpRequest& request, HttpResponder respond);
  void GetDocument(const std::string& id, HttpResponder respond);
  void PatchDocument(const std::string& id, const HttpRequest& request, HttpResponder respond);
  void DeleteDocument(const std::string& id, const HttpRequest& request, HttpResponder respond);
  void Ready(HttpResponder respond);

  projection::DocumentService& docs_;
  Metrics& metrics_;
  const Logger& logger_;
  CorsPolicy cors_;
  RestApiHooks hooks_;
  RestHistory history_;  // /api/v1/documents/{id}/{history,state,versions,fork}
};

}  // namespace quire::io
