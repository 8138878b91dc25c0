// A small blocking HTTP/1.1 client over a real TCP socket, for tests. It sends raw bytes (so
// tests can split, pipeline or malform requests) and reads whole responses (Content-Length,
// chunked, or until close). Not thread-safe; one connection per object.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace quire::test {

struct HttpResult {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased, in order
  std::string body;

  // First header named `name` (lowercase), if any.
  std::optional<std::string> Header(std::string_view name) const;
  // The body parsed as JSON; a discarded value when it is not JSON.
  nlohmann::json Json() const;
  // error.code of a JSON error body, "" otherwise.
  std::string ErrorCode() const;
};

class HttpClient {
 public:
  // Connects (blocking) to host:port. Check connected(). A `receive_buffer` > 0 fixes the
  // socket's SO_RCVBUF (no autotuning): a client that stops reading then holds little.
  explicit HttpClient(int port, const std::string& host = "127.0.0.1", int receive_buffer = 0);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  bool connected() const { return fd_ >= 0; }
  // Bytes received by the kernel and not read yet (FIONREAD); -1 when not connected.
  int UnreadBytes() const;

  // Writes all of `bytes`. False when the socket failed.
  bool SendRaw(std::string_view bytes);
  // Reads one response. Interim 1xx responses are skipped. `head_request` says the response
  // has no body whatever its headers say. nullopt on timeout, close before a full response,
  // or an unparsable response.
  std::optional<HttpResult> ReadResponse(int timeout_ms = 5000, bool head_request = false);

  // Sends one request and reads its response. Adds Host, and for a non-empty body
  // Content-Length and (unless `content_type` is empty) Content-Type.
  std::optional<HttpResult> Request(
      std::string_view method, std::string_view target, std::string_view body = {},
      const std::vector<std::pair<std::string, std::string>>& headers = {},
      std::string_view content_type = "application/json", int timeout_ms = 5000);

  // The request bytes Request() would send.
  static std::string Build(std::string_view method, std::string_view target,
                           std::string_view body = {},
                           const std::vector<std::pair<std::string, std::string>>& headers = {},
                           std::string_view content_type = "application/json");

  // Exactly `n` raw bytes (after anything already buffered), e.g. a stream after an upgrade
  // or an interim response. nullopt on timeout or close first.
  std::optional<std::string> ReadBytes(size_t n, int timeout_ms = 5000);

  // True when the server closes the connection (EOF or reset) within `timeout_ms`; bytes
  // that arrive meanwhile are discarded.
  bool WaitForClose(int timeout_ms = 5000);
  void Close();

 private:
  // Reads more bytes into buf_. False on EOF, error or timeout.
  bool Fill(int timeout_ms);
  int fd_ = -1;
  std::string buf_;
  bool eof_ = false;
};

// One request on a fresh connection.
std::optional<HttpResult> HttpRequestOnce(
    int port, std::string_view method, std::string_view target, std::string_view body = {},
    const std::vector<std::pair<std::string, std::string>>& headers = {},
    std::string_view content_type = "application/json");

}  // namespace quire::test
