// The OpenAPI 3 description of the HTTP API (REST v1 and the operations endpoints), served at
// GET /api/v1/openapi.json. Kept beside the handlers in io/rest_api.cc; a test checks that
// every route the server answers is described.
#pragma once

#include <string>

namespace quire::io {

// The document as compact JSON text (built once).
const std::string& OpenApiJson();

}  // namespace quire::io
