#include "io/cors.h"

#include <algorithm>

namespace quire::io {

namespace {
constexpr const char* kAllowMethods = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
constexpr const char* kAllowHeaders = "Authorization, Content-Type, X-User-Id";
constexpr const char* kMaxAge = "600";
}  // namespace

CorsPolicy::CorsPolicy(std::vector<std::string> allowed_origins)
    : origins_(std::move(allowed_origins)) {
  any_ = std::find(origins_.begin(), origins_.end(), "*") != origins_.end();
}

bool CorsPolicy::Allows(std::string_view origin) const {
  if (origin.empty()) return false;
  return any_ || std::find(origins_.begin(), origins_.end(), origin) != origins_.end();
}

bool CorsPolicy::IsPreflight(const HttpRequest& request) {
  return request.method == "OPTIONS" && request.Header("origin").has_value() &&
         request.Header("access-control-request-method").has_value();
}

HttpResponse CorsPolicy::Preflight(const HttpRequest& request) const {
  std::string_view origin = request.Header("origin").value_or("");
  if (!Allows(origin)) {
    return HttpResponse::Error(403, "CORS_ORIGIN_NOT_ALLOWED",
                               "origin '" + std::string(origin) + "' is not allowed");
  }
  HttpResponse r;
  r.status = 204;
  r.Header("Access-Control-Allow-Origin", std::string(origin))
      .Header("Vary", "Origin")
      .Header("Access-Control-Allow-Methods", kAllowMethods)
      .Header("Access-Control-Max-Age", kMaxAge);
  // The headers the browser asks for are echoed (an allowed origin may send any header; the
  // server ignores those it does not read); without the request header, the ones the API reads.
  auto requested = request.Header("access-control-request-headers");
  r.Header("Access-Control-Allow-Headers",
           requested.has_value() && !requested->empty() ? std::string(*requested) : kAllowHeaders);
  return r;
}

void CorsPolicy::Decorate(const HttpRequest& request, HttpResponse& response) const {
  auto origin = request.Header("origin");
  if (!origin.has_value() || !Allows(*origin)) return;
  response.Header("Access-Control-Allow-Origin", std::string(*origin)).Header("Vary", "Origin");
}

}  // namespace quire::io
