// The one place where a quire::Status becomes an HTTP answer (status code and the stable
// error code of the JSON error body).
#pragma once

#include <string_view>

#include "core/status.h"
#include "io/http_message.h"

namespace quire::io::internal {

int HttpStatusFor(StatusCode code);
// "NOT_FOUND", "ALREADY_EXISTS", "STORAGE_UNAVAILABLE", ...
std::string_view ErrorCodeFor(StatusCode code);
// {"error":{"code":ErrorCodeFor(code),"message":status.message()}} with HttpStatusFor(code).
HttpResponse ErrorResponse(const Status& status);

}  // namespace quire::io::internal
