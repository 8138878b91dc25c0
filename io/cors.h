// CORS policy from Config::allowed_origins (ALLOWED_ORIGINS): which browser origins may call
// the API, and the answer to a preflight (OPTIONS with Access-Control-Request-Method).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "io/http_message.h"

namespace quire::io {

class CorsPolicy {
 public:
  // `allowed_origins` as configured: exact origins ("https://app.example.com") or "*".
  // Empty allows no cross-origin caller.
  explicit CorsPolicy(std::vector<std::string> allowed_origins = {});

  bool Allows(std::string_view origin) const;
  // A CORS preflight: OPTIONS carrying Origin and Access-Control-Request-Method.
  static bool IsPreflight(const HttpRequest& request);
  // The answer to a preflight: 204 with the Access-Control-Allow-* headers when the origin is
  // allowed, 403 JSON error otherwise.
  HttpResponse Preflight(const HttpRequest& request) const;
  // Adds Access-Control-Allow-Origin (and Vary: Origin) when `request` comes from an allowed
  // origin; leaves `response` alone otherwise.
  void Decorate(const HttpRequest& request, HttpResponse& response) const;

 private:
  std::vector<std::string> origins_;
  bool any_ = false;
};

}  // namespace quire::io
