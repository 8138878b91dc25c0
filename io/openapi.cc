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
    "description": "Documents of the Quire collaborative-editing server. Every change is an event in the document's log. Errors are {\"error\":{\"code\":...,\"message\":...}}; validation errors also name the field."
  },
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
    "parameters": {
      "UserId": {"name": "X-User-Id", "in": "header", "required": false, "description": "who makes the change (owner of a created document)", "schema": {"type": "string", "maxLength": 128}}
    },
    "schemas": {
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
