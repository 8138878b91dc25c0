// StaticFiles: serves the files under one directory (the web page built into web/dist) for
// GET and HEAD requests.
//
// Contract:
// - Only regular files whose resolved path (symlinks followed) lies inside the resolved root
//   are served. A path with a "." or ".." segment, an empty segment, a segment starting with
//   '.', a backslash or a NUL byte is refused (404) before the file system is touched; the
//   request path arrives percent-decoded once, so "%2e%2e" and "%2f" are checked as "..", "/".
// - "/" and any path ending in '/' serve that directory's index.html.
// - Content-Type from the extension (application/octet-stream when unknown), ETag from size
//   and modification time (If-None-Match answers 304), X-Content-Type-Options: nosniff.
//   Cache-Control: HTML "no-cache" (always revalidated, so a new build is seen at once);
//   files under /assets/ (content-hashed names) "public, max-age=31536000, immutable";
//   anything else "public, max-age=300".
// - Files are read synchronously on the calling thread: meant for a page of a few small
//   files, each at most kMaxFileBytes (larger ones answer 404).
//
// Threading: stateless after construction; Serve() may run on any thread.
#pragma once

#include <optional>
#include <string>

#include "core/status.h"
#include "io/http_message.h"
#include "io/http_server.h"

namespace quire::io {

class StaticFiles {
 public:
  static constexpr int64_t kMaxFileBytes = 64 << 20;

  // Resolves `root` (must be an existing directory).
  [[nodiscard]] static Result<StaticFiles> Open(const std::string& root);

  // The answer to `request` (GET or HEAD; other methods get 405 with Allow: GET, HEAD):
  // the file, 304, or a JSON 404 NOT_FOUND.
  HttpResponse Serve(const HttpRequest& request) const;

  const std::string& root() const { return root_; }

 private:
  explicit StaticFiles(std::string root) : root_(std::move(root)) {}
  std::string root_;  // realpath of the root, without a trailing '/'
};

// The server's handler with the web page in front of `api`: GET and HEAD requests for paths
// outside the API (/api/..., /ws/..., /healthz, /readyz, /metrics) are answered from
// `web_root`; everything else goes to `api`. An empty `web_root` or "none" returns `api`
// unchanged; a web root that is not a directory is an error.
[[nodiscard]] Result<HttpHandler> WithWebRoot(const std::string& web_root, HttpHandler api);

// The Content-Type for a file name, from its extension.
std::string_view ContentTypeForPath(std::string_view path);

}  // namespace quire::io
