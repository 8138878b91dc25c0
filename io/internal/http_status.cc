#include "io/internal/http_status.h"

namespace quire::io::internal {

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
      return 409;
    case StatusCode::kFailedPrecondition:
      return 409;
    case StatusCode::kResourceExhausted:
      return 413;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kCorruption:
    case StatusCode::kIoError:
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

std::string_view ErrorCodeFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kInvalidArgument:
      return "VALIDATION_FAILED";
    case StatusCode::kNotFound:
      return "NOT_FOUND";
    case StatusCode::kAlreadyExists:
      return "ALREADY_EXISTS";
    case StatusCode::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case StatusCode::kResourceExhausted:
      return "PAYLOAD_TOO_LARGE";
    case StatusCode::kUnavailable:
      return "STORAGE_UNAVAILABLE";
    case StatusCode::kCorruption:
    case StatusCode::kIoError:
      return "STORAGE_ERROR";
    case StatusCode::kInternal:
      return "INTERNAL";
  }
  return "INTERNAL";
}

HttpResponse ErrorResponse(const Status& status) {
  return HttpResponse::Error(HttpStatusFor(status.code()), ErrorCodeFor(status.code()),
                             status.message());
}

}  // namespace quire::io::internal
