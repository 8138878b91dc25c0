#include "io/static_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace quire::io {

namespace {

HttpResponse NotFoundAnswer(std::string_view path) {
  return HttpResponse::Error(404, "NOT_FOUND", "no file " + std::string(path));
}

// True when every '/'-separated segment of `path` (after the leading '/') is a plain name:
// not empty (except a final one, for "dir/"), not starting with '.', no '\\' and no NUL.
bool IsPlainPath(std::string_view path) {
  if (path.empty() || path.front() != '/') return false;
  std::string_view rest = path.substr(1);
  while (true) {
    size_t slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    if (slash == std::string_view::npos) {
      // The last segment may be empty ("/" or "/dir/").
      if (!seg.empty() && seg.front() == '.') return false;
      break;
    }
    if (seg.empty() || seg.front() == '.') return false;
    rest.remove_prefix(slash + 1);
  }
  for (char c : path) {
    if (c == '\\' || c == '\0') return false;
  }
  return true;
}

std::string_view CacheControlFor(std::string_view path, std::string_view content_type) {
  if (content_type.starts_with("text/html")) return "no-cache";
  if (path.starts_with("/assets/")) return "public, max-age=31536000, immutable";
  return "public, max-age=300";
}

}  // namespace

std::string_view ContentTypeForPath(std::string_view path) {
  size_t slash = path.rfind('/');
  std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  size_t dot = name.rfind('.');
  if (dot == std::string_view::npos) return "application/octet-stream";
  std::string ext(name.substr(dot + 1));
  for (char& c : ext) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
      {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"json", "application/json"},
      {"map", "application/json"},
      {"txt", "text/plain; charset=utf-8"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"ico", "image/x-icon"},
      {"woff", "font/woff"},
      {"woff2", "font/woff2"},
      {"wasm", "application/wasm"},
  };
  for (const auto& [e, type] : kTypes) {
    if (ext == e) return type;
  }
  return "application/octet-stream";
}

Result<StaticFiles> StaticFiles::Open(const std::string& root) {
  char resolved[PATH_MAX];
  if (realpath(root.c_str(), resolved) == nullptr) {
    return Status::NotFound("web root " + root + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (stat(resolved, &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument("web root " + root + " is not a directory");
  }
  std::string r(resolved);
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  return StaticFiles(std::move(r));
}

HttpResponse StaticFiles::Serve(const HttpRequest& request) const {
  if (request.method != "GET" && request.method != "HEAD") {
    HttpResponse r = HttpResponse::Error(
        405, "METHOD_NOT_ALLOWED", request.method + " is not allowed here; allowed: GET, HEAD");
    r.Header("Allow", "GET, HEAD");
    return r;
  }
  const std::string& path = request.path;
  if (!IsPlainPath(path)) return NotFoundAnswer(path);
  std::string relative = path;
  if (relative.back() == '/') relative += "index.html";

  // Resolve symlinks, then require the result to stay inside the root.
  std::string candidate = root_ + relative;
  char resolved[PATH_MAX];
  if (realpath(candidate.c_str(), resolved) == nullptr) return NotFoundAnswer(path);
  std::string_view real(resolved);
  std::string prefix = root_ == "/" ? "/" : root_ + "/";
  if (!real.starts_with(prefix)) return NotFoundAnswer(path);

  int fd = open(resolved, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return NotFoundAnswer(path);
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > kMaxFileBytes) {
    close(fd);
    return NotFoundAnswer(path);
  }
  std::string etag = "\"" + std::to_string(static_cast<long long>(st.st_size)) + "-" +
                     std::to_string(static_cast<long long>(st.st_mtim.tv_sec)) + "." +
                     std::to_string(static_cast<long long>(st.st_mtim.tv_nsec)) + "\"";
  std::string_view type = ContentTypeForPath(relative);

  HttpResponse r;
  r.Header("Content-Type", std::string(type));
  r.Header("Cache-Control", std::string(CacheControlFor(relative, type)));
  r.Header("ETag", etag);
  r.Header("X-Content-Type-Options", "nosniff");
  if (auto inm = request.Header("if-none-match"); inm.has_value() && *inm == etag) {
    close(fd);
    r.status = 304;
    return r;
  }
  std::string body(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < body.size()) {
    ssize_t n = read(fd, body.data() + got, body.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fd);
  body.resize(got);  // a file truncated meanwhile is served as it is now
  r.body = std::move(body);
  return r;
}

namespace {
bool IsApiPath(std::string_view path) {
  return path.starts_with("/api/") || path == "/api" || path.starts_with("/ws/") ||
         path == "/healthz" || path == "/readyz" || path == "/metrics";
}
}  // namespace

Result<HttpHandler> WithWebRoot(const std::string& web_root, HttpHandler api) {
  if (web_root.empty() || web_root == "none") return api;
  Result<StaticFiles> opened = StaticFiles::Open(web_root);
  if (!opened.ok()) return opened.status();
  auto files = std::make_shared<const StaticFiles>(std::move(opened).value());
  return HttpHandler(
      [files, api = std::move(api)](const HttpRequest& request, HttpResponder respond) {
        if ((request.method == "GET" || request.method == "HEAD") && !IsApiPath(request.path)) {
          respond(files->Serve(request));
          return;
        }
        api(request, std::move(respond));
      });
}

}  // namespace quire::io
