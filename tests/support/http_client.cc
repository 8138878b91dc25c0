#include "tests/support/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

namespace quire::test {

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace

std::optional<std::string> HttpResult::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return std::nullopt;
}

nlohmann::json HttpResult::Json() const {
  return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
}

std::string HttpResult::ErrorCode() const {
  nlohmann::json j = Json();
  if (j.is_object() && j.contains("error") && j["error"].is_object() &&
      j["error"].contains("code") && j["error"]["code"].is_string()) {
    return j["error"]["code"].get<std::string>();
  }
  return "";
}

HttpClient::HttpClient(int port, const std::string& host, int receive_buffer) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  if (receive_buffer > 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fd_ = fd;
}

HttpClient::~HttpClient() { Close(); }

int HttpClient::UnreadBytes() const {
  int n = 0;
  if (fd_ < 0 || ::ioctl(fd_, FIONREAD, &n) != 0) return -1;
  return n;
}

void HttpClient::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool HttpClient::SendRaw(std::string_view bytes) {
  if (fd_ < 0) return false;
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool HttpClient::Fill(int timeout_ms) {
  if (fd_ < 0 || eof_) return false;
  pollfd p{fd_, POLLIN, 0};
  int rc;
  do {
    rc = ::poll(&p, 1, timeout_ms);
  } while (rc < 0 && errno == EINTR);
  if (rc <= 0) return false;
  char tmp[16384];
  ssize_t n;
  do {
    n = ::recv(fd_, tmp, sizeof tmp, 0);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) {
    eof_ = true;
    return false;
  }
  buf_.append(tmp, static_cast<size_t>(n));
  return true;
}

std::optional<HttpResult> HttpClient::ReadResponse(int timeout_ms, bool head_request) {
  const int64_t deadline = NowMs() + timeout_ms;
  auto remaining = [&] { return static_cast<int>(std::max<int64_t>(0, deadline - NowMs())); };
  for (;;) {
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill(remaining())) return std::nullopt;
    }
    std::string_view head(buf_.data(), end);
    HttpResult r;
    size_t line_end = head.find("\r\n");
    std::string_view status_line = head.substr(0, line_end);
    if (!status_line.starts_with("HTTP/1.") || status_line.size() < 12) return std::nullopt;
    r.status = std::atoi(std::string(status_line.substr(9, 3)).c_str());
    std::string_view rest =
        line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
    while (!rest.empty()) {
      size_t e = rest.find("\r\n");
      std::string_view line = rest.substr(0, e);
      size_t colon = line.find(':');
      if (colon != std::string_view::npos) {
        r.headers.emplace_back(Lower(line.substr(0, colon)),
                               std::string(Trim(line.substr(colon + 1))));
      }
      if (e == std::string_view::npos) break;
      rest.remove_prefix(e + 2);
    }
    buf_.erase(0, end + 4);
    if (r.status >= 100 && r.status < 200 && r.status != 101) continue;  // interim
    bool bodiless = head_request || r.status < 200 || r.status == 204 || r.status == 304;
    if (bodiless) return r;
    auto te = r.Header("transfer-encoding");
    if (te.has_value() && Lower(*te).find("chunked") != std::string::npos) {
      for (;;) {
        size_t le;
        while ((le = buf_.find("\r\n")) == std::string::npos) {
          if (!Fill(remaining())) return std::nullopt;
        }
        size_t size = std::strtoul(buf_.substr(0, le).c_str(), nullptr, 16);
        buf_.erase(0, le + 2);
        if (size == 0) {
          // Trailers end with an empty line.
          while ((le = buf_.find("\r\n")) == std::string::npos) {
            if (!Fill(remaining())) return std::nullopt;
          }
          buf_.erase(0, le + 2);
          return r;
        }
        while (buf_.size() < size + 2) {
          if (!Fill(remaining())) return std::nullopt;
        }
        r.body.append(buf_, 0, size);
        buf_.erase(0, size + 2);
      }
    }
    if (auto cl = r.Header("content-length"); cl.has_value()) {
      size_t size = std::strtoul(cl->c_str(), nullptr, 10);
      while (buf_.size() < size) {
        if (!Fill(remaining())) return std::nullopt;
      }
      r.body = buf_.substr(0, size);
      buf_.erase(0, size);
      return r;
    }
    // No length: the body runs to the end of the connection.
    while (Fill(remaining())) {
    }
    if (!eof_) return std::nullopt;
    r.body = std::move(buf_);
    buf_.clear();
    return r;
  }
}

std::string HttpClient::Build(std::string_view method, std::string_view target,
                              std::string_view body,
                              const std::vector<std::pair<std::string, std::string>>& headers,
                              std::string_view content_type) {
  std::string req;
  req += method;
  req += ' ';
  req += target;
  req += " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  bool has_length = false;
  for (const auto& [k, v] : headers) {
    req += k + ": " + v + "\r\n";
    std::string lk = Lower(k);
    if (lk == "content-length" || lk == "transfer-encoding") has_length = true;
  }
  if (!body.empty() && !content_type.empty()) {
    req += "Content-Type: ";
    req += content_type;
    req += "\r\n";
  }
  if (!body.empty() && !has_length)
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n";
  req += body;
  return req;
}

std::optional<HttpResult> HttpClient::Request(
    std::string_view method, std::string_view target, std::string_view body,
    const std::vector<std::pair<std::string, std::string>>& headers, std::string_view content_type,
    int timeout_ms) {
  if (!SendRaw(Build(method, target, body, headers, content_type))) return std::nullopt;
  return ReadResponse(timeout_ms, method == "HEAD");
}

std::optional<std::string> HttpClient::ReadBytes(size_t n, int timeout_ms) {
  const int64_t deadline = NowMs() + timeout_ms;
  while (buf_.size() < n) {
    if (!Fill(static_cast<int>(std::max<int64_t>(0, deadline - NowMs())))) return std::nullopt;
  }
  std::string out = buf_.substr(0, n);
  buf_.erase(0, n);
  return out;
}

bool HttpClient::WaitForClose(int timeout_ms) {
  const int64_t deadline = NowMs() + timeout_ms;
  buf_.clear();
  while (!eof_) {
    int left = static_cast<int>(deadline - NowMs());
    if (left <= 0) return false;
    if (!Fill(left) && !eof_) return false;
    buf_.clear();
  }
  return true;
}

std::optional<HttpResult> HttpRequestOnce(
    int port, std::string_view method, std::string_view target, std::string_view body,
    const std::vector<std::pair<std::string, std::string>>& headers,
    std::string_view content_type) {
  HttpClient client(port);
  if (!client.connected()) return std::nullopt;
  return client.Request(method, target, body, headers, content_type);
}

}  // namespace quire::test
