#include "io/http_server.h"

#include <llhttp.h>
#include <uv.h>

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "io/cors.h"
#include "io/internal/batch_send.h"
#include "io/internal/http_target.h"
#include "io/internal/ws_timer.h"

namespace quire::io {

namespace {

// Bytes a connection buffers ahead of the request being answered (pipelining) before it stops
// reading from the socket.
constexpr size_t kMaxPipelineBuffer = 256 << 10;
// Answers queued (not yet taken by the kernel) above which a connection stops parsing further
// pipelined requests until the client reads: a client that never reads cannot grow memory.
constexpr size_t kMaxQueuedAnswers = 1 << 20;
constexpr size_t kReadChunk = 64 << 10;
// Linger while the server shuts down: short, the process is about to exit.
constexpr int64_t kShutdownLingerMs = 200;
// Writes per io_uring submission; a loop iteration with more connections to write submits
// several times.
constexpr unsigned kBatchDepth = 256;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

Status UvStatus(const char* what, int rc) {
  return Status::IoError(std::string(what) + ": " + uv_strerror(rc));
}

}  // namespace

HttpServerOptions HttpServerOptions::FromConfig(const Config& config) {
  HttpServerOptions o;
  o.max_header_bytes = config.max_header_bytes;
  o.max_body_bytes = config.max_body_bytes;
  o.header_timeout_ms = config.header_timeout_s * 1000;
  o.allowed_origins = config.allowed_origins;
  o.max_connections = config.max_connections;
  o.max_connections_per_ip = config.max_connections_per_ip;
  o.io_uring = config.io_uring;
  return o;
}

class Connection;

class HttpServer::Impl {
 public:
  Impl(uv_loop_s* loop, HttpServerOptions options, HttpHandler handler, Metrics* metrics,
       const Logger& logger);

  Status Listen(const std::string& host, int port);
  void Shutdown(std::function<void()> done);
  void AbortAll();
  void OnNewConnection(int status);
  void Remove(Connection* c);
  void MaybeFinishShutdown();
  // Closes the listening socket if it is open; MaybeFinishShutdown() runs once it is closed.
  void CloseListener();
  void CountResponse(int status);
  // Connections with output queued this loop iteration; written by FlushOutput().
  void MarkForFlush(Connection* c);
  void Unmark(Connection* c);
  void FlushOutput();
  // Writes the connections of `batch` that can be written directly in one io_uring
  // submission; the others through Connection::FlushOutput.
  void FlushBatched(const std::vector<Connection*>& batch);
  std::vector<uv_buf_t> write_bufs_;  // Connection::FlushOutput's scratch (loop thread)
  // Counts `c` against the connection limits; false (and nothing counted) when it is over one.
  bool Admit(Connection* c, const std::string& ip);
  void Release(const std::string& ip);

  uv_loop_s* loop_;
  HttpServerOptions options_;
  HttpHandler handler_;
  Metrics* metrics_;
  const Logger& logger_;
  CorsPolicy cors_;
  std::unique_ptr<UpgradeHandler> upgrade_handler_;
  llhttp_settings_t settings_{};
  // Shared by all connections (see Connection::AllocBuffer).
  std::unique_ptr<char[]> read_buffer_ = std::make_unique<char[]>(kReadChunk);

  enum class ListenerState { kNone, kOpen, kClosing, kClosed };
  uv_tcp_t listener_{};
  ListenerState listener_state_ = ListenerState::kNone;
  // Runs once per loop iteration, after I/O callbacks, and writes what every connection
  // queued during the iteration in one system call per connection (see Connection::Send).
  // Opened with the listener, closed once the listener and every connection are closed.
  uv_check_t flush_check_{};
  // Active while to_flush_ is not empty: output queued by a timer callback (or anything else
  // that runs after the poll phase would block) is flushed in this iteration's idle phase
  // instead of waiting in the check phase for the next I/O event or timer.
  uv_idle_t flush_idle_{};
  ListenerState flush_check_state_ = ListenerState::kNone;
  std::vector<Connection*> to_flush_;
  // Set when options_.io_uring and the kernel allows it (see internal/batch_send.h); null
  // otherwise, or after the ring failed.
  std::unique_ptr<internal::BatchSender> batch_sender_;
  // FlushBatched's scratch.
  std::vector<uv_buf_t> batch_bufs_;
  std::vector<size_t> batch_first_;
  std::vector<Connection*> batch_conns_;
  std::vector<internal::BatchSender::Send> batch_sends_;
  std::vector<int> batch_results_;
  std::vector<size_t> batch_done_;
  int port_ = 0;
  bool shutting_down_ = false;
  std::function<void()> shutdown_done_;
  bool shutdown_reported_ = false;
  std::unordered_map<Connection*, std::shared_ptr<Connection>> connections_;
  // Admitted connections (those refused for a limit are in connections_ until closed, not here).
  int64_t admitted_ = 0;
  std::unordered_map<std::string, int64_t> per_ip_;

  Gauge* open_connections_ = nullptr;
  Counter* refused_ = nullptr;
  Counter* accepted_ = nullptr;
  Counter* requests_ = nullptr;
  Counter* by_class_[5] = {};
  Gauge* io_uring_on_ = nullptr;
  Counter* batched_writes_ = nullptr;
};

// One TCP connection. Phases: HTTP (parsing requests, answering in order), upgraded (bytes go
// to the StreamHandler), and closing (close requested: flush, half-close, drain, close; or
// closed: uv_close called, freed in the socket's close callback).
class Connection final : public Transport, public std::enable_shared_from_this<Connection> {
 public:
  explicit Connection(HttpServer::Impl* server)
      : server_(server),
        timer_(server->loop_, &Connection::OnTimerCb, this),
        http_(std::make_unique<HttpState>()) {
    tcp_.data = this;
    llhttp_init(&http_->parser, HTTP_REQUEST, &server_->settings_);
    http_->parser.data = this;
  }

  // Called once the socket is accepted: starts reading and the header timer.
  void Start() {
    sockaddr_storage addr{};
    int len = sizeof addr;
    if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      char ip[64] = "?";
      int port = 0;
      if (addr.ss_family == AF_INET) {
        auto* a = reinterpret_cast<sockaddr_in*>(&addr);
        uv_ip4_name(a, ip, sizeof ip);
        port = ntohs(a->sin_port);
        peer_ = std::string(ip) + ":" + std::to_string(port);
      } else if (addr.ss_family == AF_INET6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
        uv_ip6_name(a, ip, sizeof ip);
        port = ntohs(a->sin6_port);
        peer_ = "[" + std::string(ip) + "]:" + std::to_string(port);
      }
    }
    uv_tcp_nodelay(&tcp_, 1);
    ip_ = peer_.substr(0, peer_.rfind(':'));
    if (!server_->Admit(this, ip_)) {
      // Over a connection limit: a clear answer, then the usual flush-and-linger close.
      QUIRE_LOG(server_->logger_, kWarn, "http_connection_refused").Str("peer", peer_);
      server_->CountResponse(503);
      Send(HttpResponse::Error(503, "TOO_MANY_CONNECTIONS",
                               "the server is at its connection limit; retry later")
               .Serialize(false));
      Close();
      return;
    }
    admitted_ = true;
    StartReading();
    ArmTimer(server_->options_.header_timeout_ms);
  }
  bool admitted() const { return admitted_; }
  const std::string& ip() const { return ip_; }

  uv_tcp_t tcp_{};

  // --- Transport ---
  // Output is gathered for the rest of the loop iteration and written by the server's check
  // handle in one writev per connection: a client that gets its ack and several relays from
  // one group commit costs one system call (and usually one TCP segment), not one per message.
  void Send(std::string bytes) override {
    if (closed_ || close_requested_ || bytes.empty()) return;
    queued_bytes_ += bytes.size();
    pending_bytes_ += bytes.size();
    pending_.push_back(std::move(bytes));
    if (!marked_for_flush_) {
      marked_for_flush_ = true;
      server_->MarkForFlush(this);
    }
  }

  // Writes what Send() gathered (server's check handle). Tries a direct writev first: most
  // writes complete at once, and a completed uv_write still makes libuv re-arm the socket's
  // epoll registration (it stops watching for writability after every drained write), one
  // extra system call per write. Only what the socket did not take goes through uv_write.
  void FlushOutput() {
    marked_for_flush_ = false;
    if (closed_ || pending_.empty()) return;
    std::vector<uv_buf_t>& bufs = server_->write_bufs_;
    bufs.clear();
    AppendPending(bufs);
    int n = uv_try_write(uv_stream(), bufs.data(), static_cast<unsigned>(bufs.size()));
    if (size_t done = FinishFlush(n, bufs.data()); done > 0) OnWrite(done, 0);
  }

  // The batched flush (HttpServer::Impl::FlushBatched): a connection whose output may be
  // written directly, as uv_try_write would (nothing of it still queued in libuv)...
  bool ReadyForBatch() const { return !closed_ && !pending_.empty() && tcp_.write_queue_size == 0; }
  // ...appends its buffers to `bufs`; after the batch's write, FinishFlush() with what the
  // socket took and its buffers' place in `bufs`, and once every connection of the batch is
  // finished, OnWrite() with what FinishFlush returned.
  void AppendPending(std::vector<uv_buf_t>& bufs) {
    for (std::string& b : pending_) {
      bufs.push_back(uv_buf_init(b.data(), static_cast<unsigned>(b.size())));
    }
  }
  uv_stream_t* uv_stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }
  int fd() const {
    uv_os_fd_t fd = -1;
    uv_fileno(reinterpret_cast<const uv_handle_t*>(&tcp_), &fd);
    return fd;
  }

  // `n` bytes of the gathered output are written (or n is a libuv error): the rest goes
  // through uv_write. `bufs` holds the gathered output's buffers (AppendPending); it is
  // adjusted in place. Calls nothing above the connection: when everything was written, it
  // returns the size for the caller to pass to OnWrite() (which may answer pipelined requests
  // or tell the stream handler, and so send), else 0.
  size_t FinishFlush(int n, uv_buf_t* bufs) {
    marked_for_flush_ = false;
    if (closed_) return 0;
    if (n < 0 && n != UV_EAGAIN) {
      CloseNow();  // a failed socket; CloseNow drops what was gathered
      return 0;
    }
    const size_t size = pending_bytes_;
    const size_t count = pending_.size();
    size_t written = n > 0 ? static_cast<size_t>(n) : 0;
    if (written == size) {
      std::vector<std::string>().swap(pending_);  // an idle connection keeps no capacity
      pending_bytes_ = 0;
      return size;
    }
    auto* w = new WriteReq;
    w->data.swap(pending_);
    w->size = size;
    pending_bytes_ = 0;
    w->req.data = this;
    size_t skip = written;
    size_t first = 0;
    while (skip >= bufs[first].len) skip -= bufs[first++].len;
    bufs[first].base += skip;
    bufs[first].len -= static_cast<unsigned>(skip);
    int rc = uv_write(&w->req, uv_stream(), bufs + first, static_cast<unsigned>(count - first),
                      &OnWriteCb);  // copies bufs
    if (rc != 0) {
      // The callback will not run: release here.
      queued_bytes_ -= w->size;
      delete w;
      CloseNow();
    }
    return 0;
  }
  size_t queued_bytes() const override { return queued_bytes_; }
  void Close() override {
    if (closed_ || close_requested_) return;
    close_requested_ = true;
    if (queued_bytes_ == 0) StartLinger();
  }
  void Abort() override { CloseNow(); }
  void PauseReading() override {
    user_paused_ = true;
    UpdateReading();
  }
  void ResumeReading() override {
    user_paused_ = false;
    UpdateReading();
  }
  std::string peer() const override { return peer_; }

  // --- Server ---
  void OnServerShutdown() {
    if (closed_) return;
    if (stream_ != nullptr) {
      StreamHandler* s = stream_.get();
      s->OnShutdown();
      return;
    }
    if (lingering_) {
      CloseNow();  // the final answer is flushed; stop draining
      return;
    }
    if (close_requested_) return;  // flushes, then lingers briefly (shutting_down_)
    if (awaiting_response_) {
      close_after_response_ = true;  // answered with Connection: close
    } else if (queued_bytes_ > 0) {
      Close();  // answers still being written: flush them first
    } else {
      CloseNow();  // idle keep-alive or a partial request: nothing owed
    }
  }

  void CloseNow() {
    if (closed_) return;
    closed_ = true;
    queued_bytes_ -= pending_bytes_;  // gathered, never handed to libuv: dropped
    pending_bytes_ = 0;
    pending_.clear();
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    timer_.Release();
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &OnHandleClosedCb);
  }

  // --- llhttp callbacks (via trampolines) ---
  // They run only inside Proceed(), that is in the HTTP phase (http_ is set).
  int OnMessageBegin() {
    http_->req = HttpRequest{};
    http_->url.clear();
    http_->field.clear();
    http_->value.clear();
    http_->header_bytes = 0;
    return 0;
  }
  int CountHeaderBytes(size_t n) {
    http_->header_bytes += n;
    if (static_cast<int64_t>(http_->header_bytes) > server_->options_.max_header_bytes) {
      SetPendingError(431, "HEADERS_TOO_LARGE",
                      "the request header block exceeds " +
                          std::to_string(server_->options_.max_header_bytes) + " bytes");
      return HPE_USER;
    }
    return 0;
  }
  int OnUrl(const char* at, size_t n) {
    http_->url.append(at, n);
    return CountHeaderBytes(n);
  }
  int OnHeaderField(const char* at, size_t n) {
    http_->field.append(at, n);
    return CountHeaderBytes(n);
  }
  int OnHeaderValue(const char* at, size_t n) {
    http_->value.append(at, n);
    return CountHeaderBytes(n);
  }
  int OnHeaderValueComplete() {
    std::string name = std::move(http_->field);
    for (char& ch : name) {
      if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    }
    http_->req.headers.emplace_back(std::move(name), std::string(Trim(http_->value)));
    http_->field.clear();
    http_->value.clear();
    return CountHeaderBytes(4);  // ": " and CRLF
  }
  int OnHeadersComplete() {
    // The body gets a deadline of its own, as long as the headers had: a client that sends
    // headers and then trickles (or withholds) the body cannot hold the connection forever.
    // OnMessageComplete stops it (at once for a request without a body).
    ArmTimer(server_->options_.header_timeout_ms);
    body_pending_ = true;
    HttpRequest& req = http_->req;
    const llhttp_t& parser = http_->parser;
    req.method = llhttp_method_name(static_cast<llhttp_method_t>(parser.method));
    req.target = http_->url;
    internal::ParseTarget(http_->url, req.path, req.query);
    req.keep_alive = llhttp_should_keep_alive(&parser) != 0;
    req.upgrade = parser.upgrade != 0;
    if (req.Header("transfer-encoding").has_value() && req.Header("content-length").has_value()) {
      SetPendingError(400, "BAD_REQUEST",
                      "Transfer-Encoding and Content-Length must not both be present");
      return -1;
    }
    if ((parser.flags & F_CONTENT_LENGTH) != 0 &&
        parser.content_length > static_cast<uint64_t>(server_->options_.max_body_bytes)) {
      SetPendingError(413, "PAYLOAD_TOO_LARGE", BodyLimitMessage());
      return -1;
    }
    if (auto expect = req.Header("expect"); expect && EqualsIgnoreCase(*expect, "100-continue")) {
      Send("HTTP/1.1 100 Continue\r\n\r\n");
    }
    return 0;
  }
  int OnBody(const char* at, size_t n) {
    if (static_cast<int64_t>(http_->req.body.size() + n) > server_->options_.max_body_bytes) {
      SetPendingError(413, "PAYLOAD_TOO_LARGE", BodyLimitMessage());
      return HPE_USER;
    }
    http_->req.body.append(at, n);
    return 0;
  }
  int OnMessageComplete() {
    timer_.Stop();
    body_pending_ = false;
    http_->message_complete = true;
    return HPE_PAUSED;  // one request at a time: Proceed() dispatches it
  }

  // Reads arrived.
  void OnRead(ssize_t nread, const uv_buf_t* buf) {
    if (closed_) return;
    if (nread < 0) {
      if (nread == UV_EOF && stream_ == nullptr && !lingering_ &&
          (awaiting_response_ || queued_bytes_ > 0)) {
        // Half-closed by the client with an answer owed or still queued: finish it, then close.
        peer_eof_ = true;
        if (awaiting_response_)
          close_after_response_ = true;
        else
          Close();
        UpdateReading();
        return;
      }
      CloseNow();
      return;
    }
    if (nread == 0) return;
    std::string_view data(buf->base, static_cast<size_t>(nread));
    if (lingering_ || close_requested_) return;  // draining after a final answer
    if (stream_ != nullptr) {
      std::shared_ptr<Connection> keep = shared_from_this();
      stream_->OnData(AsBytes(data));
      return;
    }
    http_->in.append(data);
    Proceed();
    UpdateReading();
  }

  // Every connection reads into the server's one buffer: libuv calls alloc and read back to
  // back on the loop thread, and OnRead consumes the bytes before returning (in_ copies them,
  // a StreamHandler borrows them for the call), so an idle connection holds no read buffer.
  void AllocBuffer(uv_buf_t* buf) {
    *buf = uv_buf_init(server_->read_buffer_.get(), static_cast<unsigned>(kReadChunk));
  }

  void OnWrite(size_t size, int status) {
    queued_bytes_ -= size;
    if (status < 0) {
      CloseNow();
      return;
    }
    if (closed_) return;
    if (stream_ == nullptr && !close_requested_ && queued_bytes_ < kMaxQueuedAnswers &&
        queued_bytes_ + size >= kMaxQueuedAnswers) {
      // Fell below the mark: parse what the client pipelined meanwhile.
      std::shared_ptr<Connection> keep = shared_from_this();
      Proceed();
      UpdateReading();
    }
    if (queued_bytes_ != 0 || closed_) return;
    if (close_requested_) {
      StartLinger();
    } else if (stream_ != nullptr) {
      std::shared_ptr<Connection> keep = shared_from_this();
      stream_->OnDrained();
    }
  }

  // The one timer serves two phases: the header timeout while a request's headers are awaited
  // (it is stopped while a request is being answered and after an upgrade), then the linger.
  void OnTimer() {
    if (closed_) return;
    if (!lingering_) {
      if (awaiting_response_ || stream_ != nullptr) return;
      QUIRE_LOG(server_->logger_, kDebug,
                body_pending_ ? "http_body_timeout" : "http_header_timeout")
          .Str("peer", peer_);
    }
    CloseNow();
  }

  void OnHandleClosed() {
    if (marked_for_flush_) {
      marked_for_flush_ = false;
      server_->Unmark(this);
    }
    if (stream_ != nullptr) {
      std::unique_ptr<StreamHandler> s = std::move(stream_);
      s->OnClosed();
    }
    server_->Remove(this);  // may destroy *this
  }

  // Answer to the request being processed (request_id), from an HttpResponder.
  void Respond(uint64_t request_id, HttpResponse response) {
    if (closed_ || close_requested_ || !awaiting_response_ || request_id != request_id_) return;
    awaiting_response_ = false;
    const HttpRequest& req = http_->req;  // answers come before an upgrade
    server_->cors_.Decorate(req, response);
    bool keep_alive = req.keep_alive && !response.close && !close_after_response_ &&
                      !server_->shutting_down_ && !req.upgrade;
    server_->CountResponse(response.status);
    std::string bytes = response.Serialize(keep_alive);
    if (req.method == "HEAD" && response.body.size() <= bytes.size()) {
      bytes.resize(bytes.size() - response.body.size());
    }
    Send(std::move(bytes));
    if (!keep_alive) {
      Close();
      return;
    }
    ArmTimer(server_->options_.header_timeout_ms);
    if (!in_proceed_) {
      std::shared_ptr<Connection> keep = shared_from_this();
      Proceed();
      UpdateReading();
    }
  }

 private:
  struct WriteReq {
    uv_write_t req;
    std::vector<std::string> data;
    size_t size = 0;
  };

  static void OnWriteCb(uv_write_t* req, int status) noexcept {
    auto* w = reinterpret_cast<WriteReq*>(req);
    auto* c = static_cast<Connection*>(req->data);
    size_t size = w->size;
    delete w;
    c->OnWrite(size, status);
  }
  static void OnHandleClosedCb(uv_handle_t* h) noexcept {
    static_cast<Connection*>(h->data)->OnHandleClosed();
  }
  static void OnAllocCb(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept {
    static_cast<Connection*>(h->data)->AllocBuffer(buf);
  }
  static void OnReadCb(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept {
    static_cast<Connection*>(s->data)->OnRead(nread, buf);
  }
  static void OnTimerCb(void* arg) { static_cast<Connection*>(arg)->OnTimer(); }
  static void OnShutdownCb(uv_shutdown_t* req, int) noexcept {
    delete req;  // the linger timer or the peer's EOF ends the connection
  }

  std::string BodyLimitMessage() const {
    return "the request body exceeds " + std::to_string(server_->options_.max_body_bytes) +
           " bytes";
  }

  void SetPendingError(int status, std::string code, std::string message) {
    if (http_->pending_status != 0) return;
    http_->pending_status = status;
    http_->pending_code = std::move(code);
    http_->pending_message = std::move(message);
  }

  void ArmTimer(int64_t ms) {
    if (closed_) return;
    timer_.Start(static_cast<uint64_t>(std::max<int64_t>(ms, 1)));
  }

  void StartReading() {
    if (reading_ || closed_) return;
    if (uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), &OnAllocCb, &OnReadCb) == 0) {
      reading_ = true;
    }
  }
  void StopReading() {
    if (!reading_) return;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    reading_ = false;
  }
  // Reading is on unless: the peer sent EOF, the stream handler paused it, or too many
  // pipelined bytes wait behind the request being answered. A lingering connection always
  // reads (and discards) so that the peer's pending bytes do not turn the close into a reset.
  void UpdateReading() {
    if (closed_) return;
    bool want;
    if (lingering_) {
      want = true;
    } else if (peer_eof_ || close_requested_) {
      want = false;
    } else if (stream_ != nullptr) {
      want = !user_paused_;
    } else {
      want = !user_paused_ && http_->in.size() - http_->in_off < kMaxPipelineBuffer &&
             queued_bytes_ < kMaxQueuedAnswers;
    }
    if (want)
      StartReading();
    else
      StopReading();
  }

  void StartLinger() {
    if (closed_ || lingering_) return;
    lingering_ = true;
    if (http_ != nullptr) {
      http_->in.clear();
      http_->in_off = 0;
    }
    if (peer_eof_) {
      CloseNow();
      return;
    }
    // Freed in its callback, which libuv always calls (UV_ECANCELED when the socket closes
    // first).
    auto* shutdown = new uv_shutdown_t;
    int rc = uv_shutdown(shutdown, reinterpret_cast<uv_stream_t*>(&tcp_), &OnShutdownCb);
    if (rc != 0) {
      delete shutdown;
      CloseNow();
      return;
    }
    ArmTimer(server_->shutting_down_ ? std::min(kShutdownLingerMs, server_->options_.linger_ms)
                                     : server_->options_.linger_ms);
    UpdateReading();
  }

  // Runs the parser over buffered bytes until it needs more input or waits for an answer.
  // HTTP phase only (http_ is set); an upgrade inside it ends the loop.
  void Proceed() {
    in_proceed_ = true;
    while (!closed_ && !close_requested_ && stream_ == nullptr && !awaiting_response_ &&
           http_->in_off < http_->in.size() && queued_bytes_ < kMaxQueuedAnswers) {
      HttpState& h = *http_;
      const char* p = h.in.data() + h.in_off;
      size_t avail = h.in.size() - h.in_off;
      llhttp_errno_t err = llhttp_execute(&h.parser, p, avail);
      if (err == HPE_OK) {
        h.in_off = h.in.size();
        break;
      }
      if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
        const char* pos = llhttp_get_error_pos(&h.parser);
        h.in_off += pos != nullptr ? static_cast<size_t>(pos - p) : avail;
        if (err == HPE_PAUSED) llhttp_resume(&h.parser);
        if (h.message_complete) {
          h.message_complete = false;
          Dispatch();  // may upgrade, which frees http_
        }
        continue;
      }
      // A parse error or a limit: answer and close.
      if (h.pending_status == 0) {
        SetPendingError(400, "BAD_REQUEST",
                        std::string("malformed HTTP request: ") + llhttp_errno_name(err));
      }
      HttpResponse r = HttpResponse::Error(h.pending_status, h.pending_code, h.pending_message);
      server_->cors_.Decorate(h.req, r);
      server_->CountResponse(r.status);
      Send(r.Serialize(false));
      Close();
      break;
    }
    if (http_ != nullptr) {
      HttpState& h = *http_;
      if (h.in_off >= h.in.size()) {
        h.in.clear();
        h.in_off = 0;
      } else if (h.in_off > kReadChunk) {
        h.in.erase(0, h.in_off);
        h.in_off = 0;
      }
    }
    in_proceed_ = false;
  }

  void Dispatch() {
    std::shared_ptr<Connection> keep = shared_from_this();
    awaiting_response_ = true;
    ++request_id_;
    if (server_->requests_ != nullptr) server_->requests_->Inc();
    const HttpRequest& req = http_->req;
    auto upgrade = req.Header("upgrade");
    if (req.upgrade && upgrade.has_value() && EqualsIgnoreCase(*upgrade, "websocket")) {
      HandleUpgrade();
      return;
    }
    std::weak_ptr<Connection> weak = keep;
    uint64_t id = request_id_;
    server_->handler_(req, [weak, id](HttpResponse response) {
      if (auto c = weak.lock()) c->Respond(id, std::move(response));
    });
  }

  void HandleUpgrade() {
    uint64_t id = request_id_;
    if (server_->upgrade_handler_ == nullptr) {
      Respond(id,
              HttpResponse::Error(404, "NOT_FOUND", "no WebSocket endpoint at " + http_->req.path));
      return;
    }
    HttpResponse reject = HttpResponse::Error(400, "BAD_REQUEST", "upgrade refused");
    std::unique_ptr<StreamHandler> handler =
        server_->upgrade_handler_->Upgrade(http_->req, *this, reject);
    if (closed_) return;  // the handler aborted the connection
    if (handler == nullptr) {
      reject.close = true;
      Respond(id, std::move(reject));
      return;
    }
    awaiting_response_ = false;
    stream_ = std::move(handler);
    std::string leftover = http_->in.substr(http_->in_off);
    // The HTTP phase is over: an upgraded connection keeps neither its parser, request and
    // buffers (http_) nor a timer handle (a linger makes a new one).
    http_.reset();
    timer_.Release();
    if (!leftover.empty()) stream_->OnData(AsBytes(leftover));
    if (!closed_ && stream_ != nullptr && server_->shutting_down_) {
      stream_->OnShutdown();
    }
  }

  // What only the HTTP phase needs: the parser, the request being parsed or answered, the
  // bytes read and not parsed yet. Freed at the upgrade (~900 bytes with the request that an
  // idle WebSocket would otherwise keep).
  struct HttpState {
    llhttp_t parser{};
    HttpRequest req;
    std::string url, field, value;
    size_t header_bytes = 0;
    bool message_complete = false;
    // The error answer a callback decided on (a limit), sent when llhttp stops.
    int pending_status = 0;
    std::string pending_code, pending_message;
    std::string in;  // bytes read and not yet parsed start at in_off
    size_t in_off = 0;
  };

  HttpServer::Impl* server_;
  // The header timeout, then the linger (see OnTimer). Its libuv handle exists only while
  // needed: not during an upgraded connection's life.
  internal::WsTimer timer_;
  std::unique_ptr<HttpState> http_;  // null once upgraded
  std::string peer_ = "?";
  std::string ip_;         // peer_ without the port
  bool admitted_ = false;  // counted against the connection limits

  // Read side.
  bool reading_ = false;
  bool user_paused_ = false;
  bool peer_eof_ = false;

  // The request being answered.
  bool awaiting_response_ = false;
  bool in_proceed_ = false;
  uint64_t request_id_ = 0;

  // Write side and closing.
  size_t queued_bytes_ = 0;           // gathered (pending_) plus handed to libuv, not yet written
  std::vector<std::string> pending_;  // gathered this loop iteration (see Send)
  size_t pending_bytes_ = 0;
  bool marked_for_flush_ = false;  // in the server's to_flush_
  bool close_after_response_ = false;
  bool close_requested_ = false;  // flush, then linger, then close
  bool lingering_ = false;
  bool body_pending_ = false;  // headers complete, body not yet: OnTimer closes for the body
  bool closed_ = false;        // uv_close called

  std::unique_ptr<StreamHandler> stream_;  // set once upgraded
};

// --- llhttp trampolines ---
namespace {
Connection* Conn(llhttp_t* p) { return static_cast<Connection*>(p->data); }
int OnMessageBeginCb(llhttp_t* p) noexcept { return Conn(p)->OnMessageBegin(); }
int OnUrlCb(llhttp_t* p, const char* at, size_t n) noexcept { return Conn(p)->OnUrl(at, n); }
int OnHeaderFieldCb(llhttp_t* p, const char* at, size_t n) noexcept {
  return Conn(p)->OnHeaderField(at, n);
}
int OnHeaderValueCb(llhttp_t* p, const char* at, size_t n) noexcept {
  return Conn(p)->OnHeaderValue(at, n);
}
int OnHeaderValueCompleteCb(llhttp_t* p) noexcept { return Conn(p)->OnHeaderValueComplete(); }
int OnHeadersCompleteCb(llhttp_t* p) noexcept { return Conn(p)->OnHeadersComplete(); }
int OnBodyCb(llhttp_t* p, const char* at, size_t n) noexcept { return Conn(p)->OnBody(at, n); }
int OnMessageCompleteCb(llhttp_t* p) noexcept { return Conn(p)->OnMessageComplete(); }
int CountMethodCb(llhttp_t* p, const char*, size_t n) noexcept {
  return Conn(p)->CountHeaderBytes(n);
}
}  // namespace

HttpServer::Impl::Impl(uv_loop_s* loop, HttpServerOptions options, HttpHandler handler,
                       Metrics* metrics, const Logger& logger)
    : loop_(loop),
      options_(std::move(options)),
      handler_(std::move(handler)),
      metrics_(metrics),
      logger_(logger),
      cors_(options_.allowed_origins) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = &OnMessageBeginCb;
  settings_.on_url = &OnUrlCb;
  settings_.on_method = &CountMethodCb;
  settings_.on_version = &CountMethodCb;
  settings_.on_header_field = &OnHeaderFieldCb;
  settings_.on_header_value = &OnHeaderValueCb;
  settings_.on_header_value_complete = &OnHeaderValueCompleteCb;
  settings_.on_headers_complete = &OnHeadersCompleteCb;
  settings_.on_body = &OnBodyCb;
  settings_.on_message_complete = &OnMessageCompleteCb;
  listener_.data = this;
  if (metrics_ != nullptr) {
    open_connections_ =
        &metrics_->gauge("quire_http_connections", "Open TCP connections (HTTP and WebSocket)");
    accepted_ = &metrics_->counter("quire_http_connections_total", "TCP connections accepted");
    refused_ = &metrics_->counter("quire_http_connections_refused_total",
                                  "TCP connections answered 503 for a connection limit");
    requests_ = &metrics_->counter("quire_http_requests_total", "HTTP requests received");
    io_uring_on_ = &metrics_->gauge("quire_http_io_uring",
                                    "1 while socket writes are batched through io_uring, else 0");
    batched_writes_ = &metrics_->counter("quire_http_batched_writes_total",
                                         "Socket writes made in io_uring batches");
    static const char* kNames[5] = {
        "quire_http_responses_1xx_total", "quire_http_responses_2xx_total",
        "quire_http_responses_3xx_total", "quire_http_responses_4xx_total",
        "quire_http_responses_5xx_total"};
    for (int i = 0; i < 5; ++i) {
      by_class_[i] = &metrics_->counter(kNames[i], "HTTP responses by status class");
    }
  }
}

void HttpServer::Impl::MarkForFlush(Connection* c) {
  if (to_flush_.empty() && flush_check_state_ == ListenerState::kOpen) {
    uv_idle_start(&flush_idle_,
                  [](uv_idle_t* h) noexcept { static_cast<Impl*>(h->data)->FlushOutput(); });
  }
  to_flush_.push_back(c);
}

void HttpServer::Impl::Unmark(Connection* c) {
  auto it = std::find(to_flush_.begin(), to_flush_.end(), c);
  if (it != to_flush_.end()) to_flush_.erase(it);
}

void HttpServer::Impl::FlushOutput() {
  // A flush may close a connection (a failed write); closing never frees it synchronously,
  // and sends made meanwhile go to the next round.
  std::vector<Connection*> batch;
  batch.swap(to_flush_);
  if (batch_sender_ != nullptr && batch.size() > 1) {
    FlushBatched(batch);
  } else {
    for (Connection* c : batch) c->FlushOutput();
  }
  if (to_flush_.empty() && flush_check_state_ == ListenerState::kOpen) uv_idle_stop(&flush_idle_);
  if (to_flush_.empty() && batch.capacity() > to_flush_.capacity()) {
    batch.clear();
    to_flush_.swap(batch);  // keep the grown buffer for the next iteration
  }
}

void HttpServer::Impl::FlushBatched(const std::vector<Connection*>& batch) {
  // First the connections that cannot join the batch (closed, or behind a write libuv still
  // holds): their flush may call back into the layers above, which may send to connections of
  // the batch; those are still marked for this flush, so what they get now is gathered below.
  batch_conns_.clear();
  for (Connection* c : batch) {
    if (c->ReadyForBatch()) {
      batch_conns_.push_back(c);
    } else {
      c->FlushOutput();
    }
  }
  // From here to the last FinishFlush nothing calls back: every connection's output stays as
  // gathered.
  batch_bufs_.clear();
  batch_first_.clear();
  size_t n = 0;
  for (Connection* c : batch_conns_) {
    if (!c->ReadyForBatch()) {  // closed by one of the flushes above: nothing is written
      c->FlushOutput();
      continue;
    }
    batch_conns_[n++] = c;
    batch_first_.push_back(batch_bufs_.size());
    c->AppendPending(batch_bufs_);
  }
  batch_conns_.resize(n);
  batch_sends_.resize(n);
  batch_results_.resize(n);
  batch_done_.resize(n);
  for (size_t k = 0; k < n; ++k) {
    const size_t end = k + 1 < n ? batch_first_[k + 1] : batch_bufs_.size();
    // uv_buf_t is laid out as struct iovec on Unix (libuv documents it so).
    batch_sends_[k] = {batch_conns_[k]->fd(),
                       reinterpret_cast<const iovec*>(batch_bufs_.data() + batch_first_[k]),
                       end - batch_first_[k]};
  }
  batch_sender_->SendAll(batch_sends_, batch_results_);
  int64_t sent = 0;
  for (size_t k = 0; k < n; ++k) {
    uv_buf_t* bufs = batch_bufs_.data() + batch_first_[k];
    int r = batch_results_[k];
    if (r == internal::BatchSender::kNotSent) {
      r = uv_try_write(batch_conns_[k]->uv_stream(), bufs,
                       static_cast<unsigned>(batch_sends_[k].iovcnt));
    } else {
      sent += 1;  // and r, when an errno, is libuv's code for it
    }
    batch_done_[k] = batch_conns_[k]->FinishFlush(r, bufs);
  }
  if (batched_writes_ != nullptr) batched_writes_->Inc(sent);
  if (batch_sender_->broken()) {
    QUIRE_LOG(logger_, kError, "io_uring_failed").Str("fallback", "one write per connection");
    batch_sender_.reset();
    if (io_uring_on_ != nullptr) io_uring_on_->Set(0);
  }
  // Now the layers above may hear of the writes (and send: to the next round).
  for (size_t k = 0; k < n; ++k) {
    if (batch_done_[k] > 0) batch_conns_[k]->OnWrite(batch_done_[k], 0);
  }
}

void HttpServer::Impl::CountResponse(int status) {
  int cls = status / 100 - 1;
  if (cls >= 0 && cls < 5 && by_class_[cls] != nullptr) by_class_[cls]->Inc();
}

Status HttpServer::Impl::Listen(const std::string& host, int port) {
  if (listener_state_ != ListenerState::kNone)
    return Status::FailedPrecondition("already listening");
  sockaddr_storage addr{};
  int rc;
  if (host.find(':') != std::string::npos) {
    rc = uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr));
  } else {
    rc = uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr));
  }
  if (rc != 0) return Status::InvalidArgument("invalid listen address '" + host + "'");
  rc = uv_tcp_init(loop_, &listener_);
  if (rc != 0) return UvStatus("uv_tcp_init", rc);
  listener_state_ = ListenerState::kOpen;
  uv_check_init(loop_, &flush_check_);
  flush_check_.data = this;
  uv_check_start(&flush_check_,
                 [](uv_check_t* h) noexcept { static_cast<Impl*>(h->data)->FlushOutput(); });
  uv_unref(reinterpret_cast<uv_handle_t*>(&flush_check_));  // connections keep the loop alive
  uv_idle_init(loop_, &flush_idle_);
  flush_idle_.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&flush_idle_));
  flush_check_state_ = ListenerState::kOpen;
  if (options_.io_uring && batch_sender_ == nullptr) {
    auto sender = internal::BatchSender::Open(kBatchDepth);
    if (sender.ok()) {
      batch_sender_ = std::move(*sender);
    } else {
      QUIRE_LOG(logger_, kWarn, "io_uring_unavailable")
          .Str("error", sender.status().ToString())
          .Str("fallback", "one write per connection");
    }
  }
  if (io_uring_on_ != nullptr) io_uring_on_->Set(batch_sender_ != nullptr ? 1 : 0);
  auto fail = [this](const char* what, int code) {
    CloseListener();
    return UvStatus(what, code);
  };
  rc = uv_tcp_bind(&listener_, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc != 0) return fail("bind", rc);
  rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 511,
                 [](uv_stream_t* s, int status) noexcept {
                   static_cast<Impl*>(s->data)->OnNewConnection(status);
                 });
  if (rc != 0) return fail("listen", rc);
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return Status::Ok();
}

void HttpServer::Impl::OnNewConnection(int status) {
  if (status < 0 || shutting_down_) return;
  auto c = std::make_shared<Connection>(this);
  uv_tcp_init(loop_, &c->tcp_);
  connections_.emplace(c.get(), c);
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&listener_),
                reinterpret_cast<uv_stream_t*>(&c->tcp_)) != 0) {
    c->CloseNow();
    return;
  }
  if (accepted_ != nullptr) accepted_->Inc();
  if (open_connections_ != nullptr)
    open_connections_->Set(static_cast<int64_t>(connections_.size()));
  c->Start();
}

bool HttpServer::Impl::Admit(Connection*, const std::string& ip) {
  int64_t& mine = per_ip_[ip];
  if (admitted_ >= options_.max_connections || mine >= options_.max_connections_per_ip) {
    if (mine == 0) per_ip_.erase(ip);
    if (refused_ != nullptr) refused_->Inc();
    return false;
  }
  ++mine;
  ++admitted_;
  return true;
}

void HttpServer::Impl::Release(const std::string& ip) {
  --admitted_;
  auto it = per_ip_.find(ip);
  if (it != per_ip_.end() && --it->second <= 0) per_ip_.erase(it);
}

void HttpServer::Impl::Remove(Connection* c) {
  auto it = connections_.find(c);
  if (it == connections_.end()) return;
  if (c->admitted()) Release(c->ip());
  std::shared_ptr<Connection> keep = std::move(it->second);
  connections_.erase(it);
  if (open_connections_ != nullptr)
    open_connections_->Set(static_cast<int64_t>(connections_.size()));
  keep.reset();
  MaybeFinishShutdown();
}

void HttpServer::Impl::Shutdown(std::function<void()> done) {
  if (shutting_down_) return;
  shutting_down_ = true;
  shutdown_done_ = std::move(done);
  CloseListener();
  std::vector<std::shared_ptr<Connection>> all;
  all.reserve(connections_.size());
  for (auto& [ptr, c] : connections_) all.push_back(c);
  for (auto& c : all) c->OnServerShutdown();
  if (listener_state_ != ListenerState::kClosing && connections_.empty()) {
    // Nothing to wait for: still report asynchronously, through a zero timer.
    auto* t = new uv_timer_t;
    uv_timer_init(loop_, t);
    t->data = this;
    uv_timer_start(
        t,
        [](uv_timer_t* timer) noexcept {
          uv_close(reinterpret_cast<uv_handle_t*>(timer), [](uv_handle_t* h) noexcept {
            auto* self = static_cast<Impl*>(h->data);
            delete reinterpret_cast<uv_timer_t*>(h);
            self->MaybeFinishShutdown();
          });
        },
        0, 0);
  }
}

void HttpServer::Impl::CloseListener() {
  if (listener_state_ != ListenerState::kOpen) return;
  listener_state_ = ListenerState::kClosing;
  uv_close(reinterpret_cast<uv_handle_t*>(&listener_), [](uv_handle_t* h) noexcept {
    auto* self = static_cast<Impl*>(h->data);
    self->listener_state_ = ListenerState::kClosed;
    self->MaybeFinishShutdown();
  });
}

void HttpServer::Impl::MaybeFinishShutdown() {
  if (!shutting_down_ || shutdown_reported_ || listener_state_ == ListenerState::kOpen ||
      listener_state_ == ListenerState::kClosing || !connections_.empty()) {
    return;
  }
  if (flush_check_state_ == ListenerState::kOpen) {
    flush_check_state_ = ListenerState::kClosing;
    uv_close(reinterpret_cast<uv_handle_t*>(&flush_idle_), [](uv_handle_t* h) noexcept {
      auto* self = static_cast<Impl*>(h->data);
      uv_close(reinterpret_cast<uv_handle_t*>(&self->flush_check_), [](uv_handle_t* c) noexcept {
        auto* impl = static_cast<Impl*>(c->data);
        impl->flush_check_state_ = ListenerState::kClosed;
        impl->MaybeFinishShutdown();
      });
    });
    return;
  }
  if (flush_check_state_ == ListenerState::kClosing) return;
  shutdown_reported_ = true;
  if (shutdown_done_) {
    auto done = std::move(shutdown_done_);
    done();
  }
}

void HttpServer::Impl::AbortAll() {
  std::vector<std::shared_ptr<Connection>> all;
  for (auto& [ptr, c] : connections_) all.push_back(c);
  for (auto& c : all) c->CloseNow();
}

HttpServer::HttpServer(uv_loop_s* loop, HttpServerOptions options, HttpHandler handler,
                       Metrics* metrics, const Logger& logger)
    : impl_(std::make_unique<Impl>(loop, std::move(options), std::move(handler), metrics, logger)) {
}

HttpServer::~HttpServer() = default;

void HttpServer::SetUpgradeHandler(std::unique_ptr<UpgradeHandler> handler) {
  impl_->upgrade_handler_ = std::move(handler);
}
Status HttpServer::Listen(const std::string& host, int port) { return impl_->Listen(host, port); }
int HttpServer::port() const { return impl_->port_; }
void HttpServer::Shutdown(std::function<void()> done) { impl_->Shutdown(std::move(done)); }
void HttpServer::AbortAll() { impl_->AbortAll(); }
bool HttpServer::shutting_down() const { return impl_->shutting_down_; }
size_t HttpServer::connection_count() const { return impl_->connections_.size(); }
size_t HttpServer::queued_bytes() const {
  size_t n = 0;
  for (const auto& [ptr, c] : impl_->connections_) n += c->queued_bytes();
  return n;
}

}  // namespace quire::io
