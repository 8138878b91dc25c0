// HTTP request and response values shared by the HTTP server, the REST handlers and the
// WebSocket upgrade. Plain data; no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace quire::io {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // raw request target: "/api/v1/documents?page=2"
  std::string path;    // target up to '?', percent-decoded once
  std::vector<std::pair<std::string, std::string>> query;    // decoded name/value pairs, in order
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased, in order
  std::string body;
  bool keep_alive = true;
  bool upgrade = false;  // llhttp saw `Connection: upgrade` + `Upgrade`

  // First header named `name` (lowercase), if any.
  std::optional<std::string_view> Header(std::string_view name) const;
  // First query parameter named `name`, if any.
  std::optional<std::string_view> Query(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool close = false;  // close the connection after this response

  HttpResponse& Header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
  // 200-style response with Content-Type: application/json.
  static HttpResponse Json(int status, std::string body);
  // {"error":{"code":code,"message":message}} with Content-Type: application/json.
  static HttpResponse Error(int status, std::string_view code, std::string_view message);
  // Serializes status line, headers (adds Content-Length and Date) and body.
  std::string Serialize(bool keep_alive) const;
};

std::string_view ReasonPhrase(int status);

}  // namespace quire::io
