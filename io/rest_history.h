// RestHistory: the history and time-travel routes under /api/v1/documents/{id}/:
//   GET  history?cursor=&limit=&order=   events, oldest first (order=desc: newest first)
//   GET  state?at=SEQ                    the document as of a seq (JSON or octet-stream)
//   GET  versions, POST versions {name}  named versions (kVersion events)
//   POST fork {at?, title?}              a new document whose first snapshot is the state at `at`
// Described in io/openapi.cc; the stored events in eventlog/SCHEMA.md. Every read runs on the
// storage thread (DocumentService::RunOnStorage), the folds of `state` and `fork` on the
// compute thread (DocumentService::RunCompute); every change is an event.
//
// Threading: loop thread only. `docs` and `logger` outlive this object and every request it
// answers (the server closes the log first, which drops pending reads).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "core/log.h"
#include "io/access.h"
#include "io/http_server.h"
#include "projection/document_service.h"
#include "projection/history.h"

namespace quire::io {

// Who is calling a REST route: the token's principal (anonymous when access control is off)
// and the actor recorded in the events the request appends.
struct RestCaller {
  Principal principal;
  ActorId actor;
};

class RestHistory {
 public:
  RestHistory(projection::DocumentService& docs, const Logger& logger);

  // Whether `sub` (the path segment after the document id) is one of these routes.
  static bool Owns(std::string_view sub);
  // Answers a request for `sub` of document `id` (already a valid id) from `caller`, whose role
  // on the document is `role` (kNone answers 404; reads need viewer, versions POST and fork
  // need editor, else 403).
  void Handle(const HttpRequest& request, const std::string& id, std::string_view sub,
              const RestCaller& caller, Role role, HttpResponder respond);

 private:
  void History(const HttpRequest& request, const std::string& id, HttpResponder respond);
  void State(const HttpRequest& request, const std::string& id, HttpResponder respond);
  void ListVersions(const std::string& id, HttpResponder respond);
  void CreateVersion(const HttpRequest& request, const std::string& id, const ActorId& actor,
                     HttpResponder respond);
  void Fork(const HttpRequest& request, const std::string& id, const ActorId& actor,
            HttpResponder respond);
  // The state of `id` at `at` (projection::ReadStateAt): read on the storage thread, folded on
  // the compute thread (a fold of a large document must not hold the appends behind it).
  void ReadState(const DocumentId& id, CrdtKind crdt, Seq at,
                 std::function<void(Result<projection::StateAtResult>)> done);

  projection::DocumentService& docs_;
  const Logger& logger_;
};

}  // namespace quire::io
