#include "io/openapi.h"

#include <nlohmann/json.hpp>

namespace quire::io {

namespace {

// Written as JSON so it reads like the document it is; parsed (and so checked) once.
constexpr const char* kOpenApi = R"json({
  "openapi": "3.0.3",
  "info": {
    "title": "Quire API",
    "version": "1.0.0",
    "description": "Documents of the Quire collaborative-editing server. Every change is an event in the document's log. Errors are {\"error\":{\"code\":...,\"message\":...}}; validation errors also name the field. Access control (off unless the server has --auth-secret or --auth-public-key): every /api/v1/documents route then needs `Authorization: Bearer <JWT>` (or ?token=), else 401 UNAUTHENTICATED; a document the caller has no role on is 404, too low a role 403 FORBIDDEN. Roles: viewer reads; editor also renames, names versions and forks; owner (the creator) also deletes/restores and manages permissions. Without access control anyone may do anything and X-User-Id names the actor."
  },
  "security": [{}, {"bearerAuth": []}],
  "paths": {
    "/api/v1/documents": {
      "get": {
        "summary": "List documents, newest updated_at first",
        "operationId": "listDocuments",
        "parameters": [
          {"name": "query", "in": "query", "description": "case-insensitive title substring", "schema": {"type": "string"}},
          {"name": "include_deleted", "in": "query", "schema": {"type": "boolean", "default": false}},
          {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
          {"name": "page_size", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}}
        ],
        "responses": {
          "200": {"description": "One page", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DocumentPage"}}}},
          "400": {"$ref": "#/components/responses/BadRequest"}
        }
      },
      "post": {
        "summary": "Create a document",
        "operationId": "createDocument",
        "parameters": [{"$ref": "#/components/parameters/UserId"}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CreateDocument"}}}},
        "responses": {
          "201": {"description": "Created", "headers": {"Location": {"schema": {"type": "string"}}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Document"}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "409": {"description": "The id is taken", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "413": {"$ref": "#/components/responses/TooLarge"},
          "415": {"$ref": "#/components/responses/NotJson"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/api/v1/documents/{id}": {
      "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,128}$"}}],
      "get": {
        "summary": "A document's metadata (also when soft-deleted)",
        "operationId": "getDocument",
        "responses": {
          "200": {"description": "The document", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Document"}}}},
          "404": {"$ref": "#/components/responses/NotFound"}
        }
      },
      "patch": {
        "summary": "Rename, soft-delete or restore a document",
        "operationId": "updateDocument",
        "parameters": [{"$ref": "#/components/parameters/UserId"}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/UpdateDocument"}}}},
        "responses": {
          "200": {"description": "The updated document", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Document"}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "415": {"$ref": "#/components/responses/NotJson"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      },
      "delete": {
        "summary": "Soft-delete a document (repeating it is harmless)",
        "operationId": "deleteDocument",
        "responses": {
          "204": {"description": "Deleted"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/api/v1/documents/{id}/history": {
      "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
      "get": {
        "summary": "The document's events, oldest first (order=desc: newest first); pruned updates are absent",
        "operationId": "documentHistory",
        "parameters": [
          {"name": "cursor", "in": "query", "description": "opaque next_cursor of a previous page (same order); stable under concurrent appends", "schema": {"type": "string"}},
          {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}},
          {"name": "order", "in": "query", "schema": {"type": "string", "enum": ["asc", "desc"], "default": "asc"}}
        ],
        "responses": {
          "200": {"description": "One page. Ascending pages always carry next_cursor (poll it for later events); descending pages carry none after seq 1", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HistoryPage"}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "404": {"$ref": "#/components/responses/NotFound"}
        }
      }
    },
    "/api/v1/documents/{id}/state": {
      "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
      "get": {
        "summary": "The document as of a seq: yjs one merged update, automerge the concatenation, opaque the nearest snapshot plus the updates after it",
        "operationId": "documentStateAt",
        "parameters": [{"name": "at", "in": "query", "description": "1..head (default: head)", "schema": {"type": "integer", "minimum": 1}}],
        "responses": {
          "200": {"description": "JSON, or the raw bytes with Accept: application/octet-stream (header X-Quire-Version)", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/StateAt"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "406": {"description": "NOT_ACCEPTABLE: an opaque state with updates has no single byte form"},
          "410": {"description": "NOT_RETAINED: pruned by --retain-updates; error.oldest_available_seq says where the retained history starts", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
      }
    },
    "/api/v1/documents/{id}/versions": {
      "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
      "get": {
        "summary": "Named versions, in seq order",
        "operationId": "listVersions",
        "responses": {
          "200": {"description": "The versions", "content": {"application/json": {"schema": {"type": "object", "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Version"}}}}}}},
          "404": {"$ref": "#/components/responses/NotFound"}
        }
      },
      "post": {
        "summary": "Name the current head: appends a version event (its seq names the state)",
        "operationId": "createVersion",
        "parameters": [{"$ref": "#/components/parameters/UserId"}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 256}}}}}},
        "responses": {
          "201": {"description": "Recorded", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Version"}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "415": {"$ref": "#/components/responses/NotJson"}
        }
      }
    },
    "/api/v1/documents/{id}/fork": {
      "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
      "post": {
        "summary": "Restore by fork: a new document whose first snapshot is the state at `at`; recorded as forked_from / forked_to events in both documents",
        "operationId": "forkDocument",
        "parameters": [{"$ref": "#/components/parameters/UserId"}],
        "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object", "properties": {
          "at": {"type": "integer", "minimum": 1, "description": "default: head"},
          "title": {"type": "string", "minLength": 1, "maxLength": 256, "description": "default: the source title + ' (fork)'"}}}}}},
        "responses": {
          "201": {"description": "The new document", "headers": {"Location": {"schema": {"type": "string"}}}, "content": {"application/json": {"schema": {"type": "object", "properties": {
            "id": {"type": "string"}, "title": {"type": "string"}, "crdt": {"type": "string"}, "seq": {"type": "integer"},
            "forked_from": {"type": "object", "properties": {"id": {"type": "string"}, "at": {"type": "integer"}, "seq": {"type": "integer", "description": "seq of forked_to in the source"}}}}}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "410": {"description": "NOT_RETAINED (see state)"},
          "415": {"$ref": "#/components/responses/NotJson"}
        }
      }
    },
    "/api/v1/documents/{id}/permissions": {
      "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
      "get": {
        "summary": "The owner and the grants in force (owner only)",
        "operationId": "listPermissions",
        "responses": {
          "200": {"description": "Owner and grants", "content": {"application/json": {"schema": {"type": "object", "required": ["documentId", "owner", "items"], "properties": {
            "documentId": {"type": "string"}, "owner": {"type": "string"},
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Grant"}}}}}}},
          "401": {"$ref": "#/components/responses/Unauthenticated"},
          "403": {"$ref": "#/components/responses/Forbidden"},
          "404": {"$ref": "#/components/responses/NotFound"}
        }
      }
    },
    "/api/v1/documents/{id}/permissions/{userId}": {
      "parameters": [
        {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
        {"name": "userId", "in": "path", "required": true, "description": "the grantee: a token's sub", "schema": {"type": "string", "minLength": 1, "maxLength": 128}}
      ],
      "get": {
        "summary": "One user's role (owner only): the grant, or owner for the document's owner",
        "operationId": "getPermission",
        "responses": {
          "200": {"description": "The user's role", "content": {"application/json": {"schema": {"type": "object", "required": ["userId", "role"], "properties": {
            "userId": {"type": "string"}, "role": {"type": "string", "enum": ["viewer", "editor", "owner"]}}}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "401": {"$ref": "#/components/responses/Unauthenticated"},
          "403": {"$ref": "#/components/responses/Forbidden"},
          "404": {"description": "NOT_FOUND: no such document (or the caller may not know of it), or the user holds no grant", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
      },
      "put": {
        "summary": "Grant or change a role (owner only); appends a permission event unless the grant is already so",
        "operationId": "putPermission",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["role"], "properties": {"role": {"type": "string", "enum": ["viewer", "editor"]}}}}}},
        "responses": {
          "200": {"description": "The grant", "content": {"application/json": {"schema": {"type": "object", "properties": {
            "userId": {"type": "string"}, "role": {"type": "string"}, "seq": {"type": "integer", "description": "the permission event's seq (the head when nothing changed)"}}}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "401": {"$ref": "#/components/responses/Unauthenticated"},
          "403": {"$ref": "#/components/responses/Forbidden"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "415": {"$ref": "#/components/responses/NotJson"}
        }
      },
      "delete": {
        "summary": "Revoke a grant (owner only); appends a permission event when there was one. Open connections lose access within 1 s",
        "operationId": "deletePermission",
        "responses": {
          "204": {"description": "No grant remains"},
          "401": {"$ref": "#/components/responses/Unauthenticated"},
          "403": {"$ref": "#/components/responses/Forbidden"},
          "404": {"$ref": "#/components/responses/NotFound"}
        }
      }
    },
    "/api/v1/openapi.json": {
      "get": {"summary": "This description", "operationId": "openapi", "responses": {"200": {"description": "OpenAPI 3 document", "content": {"application/json": {"schema": {"type": "object"}}}}}}
    },
    "/healthz": {
      "get": {"summary": "Liveness", "operationId": "healthz", "responses": {"200": {"description": "The process is alive", "content": {"application/json": {"schema": {"type": "object", "properties": {"status": {"type": "string", "enum": ["ok"]}}}}}}}}
    },
    "/readyz": {
      "get": {"summary": "Readiness: storage writable and not shutting down", "operationId": "readyz", "responses": {
        "200": {"description": "Ready", "content": {"application/json": {"schema": {"type": "object", "properties": {"status": {"type": "string", "enum": ["ready"]}}}}}},
        "503": {"$ref": "#/components/responses/Unavailable"}}}
    },
    "/metrics": {
      "get": {"summary": "Prometheus metrics", "operationId": "metrics", "responses": {"200": {"description": "Prometheus text format 0.0.4", "content": {"text/plain": {"schema": {"type": "string"}}}}}}
    },
    "/ws/documents/{id}": {
      "parameters": [
        {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
        {"name": "userId", "in": "query", "schema": {"type": "string"}},
        {"name": "displayName", "in": "query", "schema": {"type": "string"}},
        {"name": "sinceSeq", "in": "query", "schema": {"type": "integer", "minimum": 0}}
      ],
      "get": {"summary": "WebSocket upgrade to the collaboration protocol (JSON text frames)", "operationId": "websocket", "responses": {
        "101": {"description": "Switching Protocols"},
        "404": {"$ref": "#/components/responses/NotFound"},
        "410": {"description": "The document is deleted", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}
    }
  },
  "components": {
    "securitySchemes": {
      "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "HS256 (--auth-secret) or RS256/ES256 (--auth-public-key), fixed by the server's configuration. Claims: sub (user id, required), exp, nbf, aud, iss, name, docs {\"<document id>\": \"viewer\"|\"editor\"}"}
    },
    "parameters": {
      "UserId": {"name": "X-User-Id", "in": "header", "required": false, "description": "who makes the change (owner of a created document); ignored when access control is on (the token's sub is the actor)", "schema": {"type": "string", "maxLength": 128}}
    },
    "schemas": {
      "HistoryItem": {
        "type": "object",
        "properties": {
          "seq": {"type": "integer"},
          "kind": {"type": "string", "enum": ["created", "renamed", "deleted", "restored", "update", "snapshot", "version", "forked_to", "forked_from", "permission"]},
          "opId": {"type": "string", "nullable": true},
          "actorId": {"type": "string"},
          "created_at": {"type": "string", "format": "date-time"},
          "bytes": {"type": "integer", "description": "payload size"},
          "title": {"type": "string"}, "crdt": {"type": "string"}, "version": {"type": "integer"},
          "name": {"type": "string"}, "documentId": {"type": "string"}, "at": {"type": "integer"},
          "userId": {"type": "string", "description": "permission: the grantee"},
          "role": {"type": "string", "enum": ["viewer", "editor", "none"], "description": "permission: the new role (none = revoked)"}
        }
      },
      "Grant": {
        "type": "object", "required": ["userId", "role"],
        "properties": {"userId": {"type": "string"}, "role": {"type": "string", "enum": ["viewer", "editor"]}}
      },
      "Retention": {
        "type": "object",
        "properties": {
          "pruned_through": {"type": "integer", "description": "highest pruned update seq (0: none)"},
          "oldest_state_seq": {"type": "integer", "description": "the smallest seq state?at= can answer"}
        }
      },
      "HistoryPage": {
        "type": "object",
        "properties": {
          "items": {"type": "array", "items": {"$ref": "#/components/schemas/HistoryItem"}},
          "next_cursor": {"type": "string", "nullable": true},
          "has_more": {"type": "boolean"},
          "retention": {"$ref": "#/components/schemas/Retention"}
        }
      },
      "StateAt": {
        "type": "object",
        "properties": {
          "version": {"type": "integer", "description": "the seq the state is at"},
          "crdt": {"type": "string"},
          "snapshotB64": {"type": "string", "format": "byte"},
          "snapshotVersion": {"type": "integer", "description": "opaque only: what the snapshot covers"},
          "updates": {"type": "array", "description": "opaque only", "items": {"type": "object", "properties": {
            "seq": {"type": "integer"}, "opId": {"type": "string"}, "actorId": {"type": "string"}, "updateB64": {"type": "string", "format": "byte"}}}},
          "retention": {"$ref": "#/components/schemas/Retention"}
        }
      },
      "Version": {
        "type": "object",
        "properties": {"seq": {"type": "integer"}, "name": {"type": "string"}, "actorId": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"}}
      },
      "CrdtKind": {"type": "string", "enum": ["yjs", "automerge", "opaque"]},
      "CreateDocument": {
        "type": "object", "required": ["title"], "additionalProperties": false,
        "properties": {
          "title": {"type": "string", "description": "1-256 characters (Unicode code points) after trimming"},
          "crdt": {"$ref": "#/components/schemas/CrdtKind"},
          "id": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,128}$", "description": "server-made UUID when absent"}
        }
      },
      "UpdateDocument": {
        "type": "object", "additionalProperties": false,
        "properties": {
          "title": {"type": "string", "description": "1-256 characters after trimming"},
          "deleted": {"type": "boolean", "description": "true soft-deletes, false restores"}
        }
      },
      "Document": {
        "type": "object",
        "required": ["id", "title", "crdt", "created_at", "updated_at", "deleted_at"],
        "properties": {
          "id": {"type": "string"},
          "title": {"type": "string"},
          "crdt": {"$ref": "#/components/schemas/CrdtKind"},
          "owner_id": {"type": "string"},
          "created_at": {"type": "string", "format": "date-time"},
          "updated_at": {"type": "string", "format": "date-time"},
          "deleted_at": {"type": "string", "format": "date-time", "nullable": true},
          "deleted": {"type": "boolean"},
          "seq": {"type": "integer", "description": "head seq: the document's last event"},
          "update_count": {"type": "integer"},
          "update_bytes": {"type": "integer"},
          "snapshot_version": {"type": "integer"},
          "snapshot_bytes": {"type": "integer"}
        }
      },
      "DocumentPage": {
        "type": "object", "required": ["items", "page", "page_size", "total"],
        "properties": {
          "items": {"type": "array", "items": {"$ref": "#/components/schemas/Document"}},
          "page": {"type": "integer"}, "page_size": {"type": "integer"}, "total": {"type": "integer"}
        }
      },
      "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
          "code": {"type": "string", "example": "VALIDATION_FAILED"},
          "message": {"type": "string"},
          "field": {"type": "string", "description": "the offending field (validation errors)"}}}}
      }
    },
    "responses": {
      "BadRequest": {"description": "INVALID_JSON or VALIDATION_FAILED (names the field)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Unauthenticated": {"description": "UNAUTHENTICATED: no valid bearer token (access control on); WWW-Authenticate: Bearer", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Forbidden": {"description": "FORBIDDEN: the caller's role on the document is too low", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "NotFound": {"description": "NOT_FOUND", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "NotJson": {"description": "UNSUPPORTED_MEDIA_TYPE: the body is not application/json", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "TooLarge": {"description": "PAYLOAD_TOO_LARGE", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Unavailable": {"description": "STORAGE_UNAVAILABLE or SHUTTING_DOWN", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    }
  }
})json";

}  // namespace

const std::string& OpenApiJson() {
  static const std::string text = nlohmann::json::parse(kOpenApi).dump();
  return text;
}

}  // namespace quire::io
