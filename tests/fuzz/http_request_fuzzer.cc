// libFuzzer target: HTTP request handling without sockets. The input is a byte stream from a
// client; llhttp (the same sources and callbacks shape as io/http_server.cc) parses it into
// requests, each request's target goes through io::internal::ParseTarget (the server's path and
// query decoding), and an answer is serialized with io::HttpResponse. Invariants checked: the
// decoded path never contains a '?', every answer starts with a status line, and parsing stops
// at the first error as the server does.
#include <llhttp.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "io/http_message.h"
#include "io/internal/http_target.h"

namespace {

struct Parse {
  quire::io::HttpRequest req;
  std::string url, field, value;
  bool in_value = false;
  int requests = 0;
};

Parse* P(llhttp_t* p) { return static_cast<Parse*>(p->data); }

void FlushHeader(Parse* s) {
  if (!s->field.empty() || s->in_value) {
    for (char& c : s->field) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    s->req.headers.emplace_back(s->field, s->value);
  }
  s->field.clear();
  s->value.clear();
  s->in_value = false;
}

int OnBegin(llhttp_t* p) {
  P(p)->req = {};
  P(p)->url.clear();
  return 0;
}
int OnUrl(llhttp_t* p, const char* at, size_t n) {
  P(p)->url.append(at, n);
  return P(p)->url.size() > (64 << 10) ? -1 : 0;
}
int OnField(llhttp_t* p, const char* at, size_t n) {
  if (P(p)->in_value) FlushHeader(P(p));
  P(p)->field.append(at, n);
  return 0;
}
int OnValue(llhttp_t* p, const char* at, size_t n) {
  P(p)->in_value = true;
  P(p)->value.append(at, n);
  return 0;
}
int OnHeadersComplete(llhttp_t* p) {
  Parse* s = P(p);
  FlushHeader(s);
  s->req.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
  s->req.target = s->url;
  quire::io::internal::ParseTarget(s->url, s->req.path, s->req.query);
  if (s->req.path.find('?') != std::string::npos && s->url.find("%3F") == std::string::npos &&
      s->url.find("%3f") == std::string::npos) {
    std::abort();  // a literal '?' ends the path
  }
  s->req.keep_alive = llhttp_should_keep_alive(p) != 0;
  s->req.upgrade = p->upgrade != 0;
  return 0;
}
int OnBody(llhttp_t* p, const char* at, size_t n) {
  if (P(p)->req.body.size() + n > (1 << 20)) return -1;
  P(p)->req.body.append(at, n);
  return 0;
}
int OnComplete(llhttp_t* p) {
  Parse* s = P(p);
  ++s->requests;
  auto r = quire::io::HttpResponse::Error(404, "NOT_FOUND", "no route for " + s->req.path);
  (void)s->req.Header("content-type");
  (void)s->req.Query("page");
  std::string bytes = r.Serialize(s->req.keep_alive);
  if (bytes.rfind("HTTP/1.1 404 ", 0) != 0) std::abort();
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  settings.on_message_begin = OnBegin;
  settings.on_url = OnUrl;
  settings.on_header_field = OnField;
  settings.on_header_value = OnValue;
  settings.on_headers_complete = OnHeadersComplete;
  settings.on_body = OnBody;
  settings.on_message_complete = OnComplete;
  llhttp_t parser;
  llhttp_init(&parser, HTTP_REQUEST, &settings);
  Parse state;
  parser.data = &state;
  // Feed in two pieces at an input-chosen split, as sockets deliver arbitrary chunks.
  size_t split = size > 0 ? data[0] % (size + 1) : 0;
  const char* bytes = reinterpret_cast<const char*>(data);
  llhttp_errno_t err = llhttp_execute(&parser, bytes, split);
  if (err == HPE_OK) err = llhttp_execute(&parser, bytes + split, size - split);
  if (err == HPE_PAUSED_UPGRADE) return 0;  // the server hands the rest to the upgrade handler
  // Also decode the raw input as a target directly.
  std::string path;
  std::vector<std::pair<std::string, std::string>> query;
  quire::io::internal::ParseTarget(std::string_view(bytes, size), path, query);
  return 0;
}
