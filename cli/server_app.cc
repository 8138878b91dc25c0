#include "cli/server_app.h"

#include <uv.h>

#include <csignal>
#include <deque>
#include <mutex>
#include <optional>

#include "cli/heap_release.h"
#include "eventlog/async_log.h"
#include "io/hocuspocus_endpoint.h"
#include "io/http_server.h"
#include "io/rest_api.h"
#include "io/static_files.h"
#include "io/websocket_endpoint.h"

namespace quire::cli {

namespace {
// The grace timer fires this long before config.shutdown_grace_s runs out, leaving time to
// commit and close after connections were aborted.
constexpr int64_t kGraceMarginMs = 500;

std::vector<double> BatchSizeBounds() {
  std::vector<double> b;
  for (double v = 1; v <= 4096; v *= 2) b.push_back(v);
  return b;
}
}  // namespace

class ServerApp::Impl {
 public:
  Impl(Config config, const Logger& logger, ServerAppOptions options)
      : config_(std::move(config)),
        logger_(logger),
        options_(std::move(options)),
        clock_(options_.clock != nullptr ? options_.clock : &SystemClock::Instance()) {}

  Status Start();
  Status Run();
  void RequestShutdown();
  bool Post(std::function<void()> fn);

  void BeginShutdown();
  void OnServerClosed();
  void OnLogClosed();
  void CloseHandles();
  void CollectMetrics();
  // While the log refuses writes (sticky error after a failed commit), tries Recover() once per
  // compactor tick; one attempt at a time. Writes resume as soon as one succeeds.
  void MaybeRecoverLog();
  void DrainPosted();
  Status CloseLoop();

  Config config_;
  const Logger& logger_;
  ServerAppOptions options_;
  const Clock* clock_;
  std::string storage_description_;

  uv_loop_t loop_{};
  bool loop_open_ = false;
  uv_async_t wakeup_{};  // RequestShutdown() and Post() from other threads
  uv_timer_t compactor_{};
  uv_timer_t grace_{};
  uv_signal_t sigint_{}, sigterm_{};
  bool handles_open_ = false;
  bool signals_open_ = false;

  std::mutex mu_;
  std::deque<std::function<void()>> posted_;  // guarded by mu_
  bool shutdown_requested_ = false;           // guarded by mu_
  bool async_ready_ = false;                  // guarded by mu_; wakeup_ may be signalled
  bool stopped_ = false;                      // guarded by mu_; Post() drops after this
  int port_ = 0;

  io::Metrics metrics_;
  HeapRelease heap_release_{metrics_};
  std::unique_ptr<eventlog::AsyncLog> log_;
  std::unique_ptr<projection::DocumentService> docs_;
  std::unique_ptr<io::AccessControl> access_;  // open unless an auth secret or key is set
  std::unique_ptr<io::RestApi> rest_;
  std::unique_ptr<io::HttpServer> server_;
  bool shutting_down_ = false;
  bool server_closed_ = false;
  bool log_closed_ = false;

  // Metrics mirrored from stats() on every /metrics and compactor tick.
  int64_t reported_snapshots_ = 0;
  int64_t reported_storage_errors_ = 0;
  bool recovering_ = false;
};

Status ServerApp::Impl::Start() {
  // libuv writes sockets with write(2): a peer that reset its connection while an answer was
  // queued would raise SIGPIPE and kill the process. EPIPE is handled per connection instead.
  std::signal(SIGPIPE, SIG_IGN);
  int rc = uv_loop_init(&loop_);
  if (rc != 0) return Status::IoError(std::string("uv_loop_init: ") + uv_strerror(rc));
  loop_open_ = true;
  loop_.data = this;

  eventlog::BackendOptions backend_options;
  backend_options.sync_mode = config_.sync_mode;
  Result<std::unique_ptr<eventlog::Backend>> backend =
      eventlog::OpenBackend(config_.database_url, backend_options);
  if (!backend.ok()) {
    CloseLoop().IgnoreError();  // nothing was made on the loop; the open error is the news
    return backend.status();
  }
  std::unique_ptr<eventlog::Backend> b = std::move(backend).value();
  if (options_.wrap_backend) b = options_.wrap_backend(std::move(b));
  storage_description_ = b->Describe();
  QUIRE_LOG(logger_, kInfo, "storage_opened")
      .Str("storage", storage_description_)
      .Str("database_url", config_.database_url);

  log_ = std::make_unique<eventlog::AsyncLog>(&loop_, std::move(b));
  auto& batch_sizes = metrics_.histogram("quire_commit_batch_size", "Appends per committed batch",
                                         BatchSizeBounds());
  auto& commit_latency = metrics_.histogram(
      "quire_commit_latency_seconds",
      "Time to make one batch durable (with --sync=full: its redo journal append and fsync)",
      io::Metrics::LatencyBounds());
  auto& fsync_latency = metrics_.histogram(
      "quire_journal_fsync_seconds",
      "Time of the redo journal's fdatasync in one batch's commit (--sync=full): the disk's "
      "flush, and the storage thread's wait for a CPU after it",
      io::Metrics::LatencyBounds());
  log_->set_batch_observer([&batch_sizes, &commit_latency, &fsync_latency](
                               int64_t size, int64_t commit_ns, int64_t sync_ns) {
    batch_sizes.Observe(static_cast<double>(size));
    commit_latency.Observe(static_cast<double>(commit_ns) / 1e9);
    if (sync_ns > 0) fsync_latency.Observe(static_cast<double>(sync_ns) / 1e9);
  });
  auto& staged_commit_latency = metrics_.histogram(
      "quire_storage_commit_seconds",
      "Time the storage thread spent in SQLite's own commit of journaled batches (every 2 s "
      "with --sync=full, checkpoint included); appends wait behind it",
      io::Metrics::LatencyBounds());
  log_->set_staged_commit_observer([&staged_commit_latency](int64_t commit_ns) {
    staged_commit_latency.Observe(static_cast<double>(commit_ns) / 1e9);
  });
  docs_ = std::make_unique<projection::DocumentService>(
      *log_, *clock_, projection::ProjectionOptions::FromConfig(config_), logger_);

  std::optional<Status> started;
  docs_->Start([&started](Status s) { started = std::move(s); });
  while (!started.has_value() && uv_run(&loop_, UV_RUN_ONCE) != 0) {
  }
  Status failure = started.value_or(Status::Internal("DocumentService::Start did not complete"));
  if (failure.ok()) {
    Result<std::unique_ptr<io::AccessControl>> access =
        io::MakeAccessControl(config_, *docs_, *clock_);
    if (access.ok()) {
      access_ = std::move(access).value();
    } else {
      failure = access.status();
    }
  }
  if (failure.ok()) {
    rest_ = std::make_unique<io::RestApi>(
        *docs_, metrics_, config_, logger_, *access_,
        io::RestApiHooks{[this] { return shutting_down_; }, [this] { CollectMetrics(); }});
    Result<io::HttpHandler> handler = io::WithWebRoot(config_.web_root, rest_->AsHandler());
    if (!handler.ok()) {
      failure = handler.status();
    } else {
      server_ = std::make_unique<io::HttpServer>(&loop_, io::HttpServerOptions::FromConfig(config_),
                                                 std::move(handler).value(), &metrics_, logger_);
      io::WebSocketEndpointOptions ws_options;
      ws_options.access_control = access_.get();
      ws_options.routes.push_back(io::HocuspocusRoute());
      server_->SetUpgradeHandler(io::MakeWebSocketEndpoint(&loop_, *docs_, metrics_, config_,
                                                           logger_, std::move(ws_options)));
      failure = server_->Listen(config_.host, config_.port);
    }
  }
  if (!failure.ok()) {
    // Release in order: connections (none yet), then the log, then the loop.
    if (server_ != nullptr) {
      bool closed = false;
      server_->Shutdown([&closed] { closed = true; });
      while (!closed && uv_run(&loop_, UV_RUN_ONCE) != 0) {
      }
    }
    bool log_closed = false;
    log_->Close([&log_closed] { log_closed = true; });
    while (!log_closed && uv_run(&loop_, UV_RUN_ONCE) != 0) {
    }
    server_.reset();
    rest_.reset();
    access_.reset();
    docs_.reset();
    log_.reset();
    // What those owned on the loop (the WebSocket hub's timers) closes now: run the close
    // callbacks, or their handles leak and uv_loop_close finds the loop busy.
    uv_run(&loop_, UV_RUN_NOWAIT);
    CloseLoop().IgnoreError();  // the start failure is what the caller must see
    return failure;
  }

  uv_async_init(&loop_, &wakeup_,
                [](uv_async_t* a) noexcept { static_cast<Impl*>(a->data)->DrainPosted(); });
  wakeup_.data = this;
  {
    std::lock_guard<std::mutex> lock(mu_);
    async_ready_ = true;
  }
  port_ = server_->port();
  uv_timer_init(&loop_, &compactor_);
  compactor_.data = this;
  uv_timer_init(&loop_, &grace_);
  grace_.data = this;
  uint64_t every = static_cast<uint64_t>(std::max<int64_t>(options_.compactor_interval_ms, 1));
  uv_timer_start(
      &compactor_,
      [](uv_timer_t* t) noexcept {
        auto* self = static_cast<Impl*>(t->data);
        self->MaybeRecoverLog();
        self->docs_->RunCompactor();
        self->CollectMetrics();
        self->heap_release_.Tick();
      },
      every, every);
  handles_open_ = true;
  if (options_.handle_signals) {
    uv_signal_init(&loop_, &sigint_);
    uv_signal_init(&loop_, &sigterm_);
    sigint_.data = sigterm_.data = this;
    auto on_signal = [](uv_signal_t* s, int signum) noexcept {
      auto* self = static_cast<Impl*>(s->data);
      QUIRE_LOG(self->logger_, kInfo, "signal_received").Int("signal", signum);
      self->BeginShutdown();
    };
    uv_signal_start(&sigint_, on_signal, SIGINT);
    uv_signal_start(&sigterm_, on_signal, SIGTERM);
    signals_open_ = true;
  }
  QUIRE_LOG(logger_, kInfo, "listening")
      .Str("host", config_.host)
      .Int("port", server_->port())
      .Str("storage", storage_description_)
      .Int("documents", static_cast<int64_t>(docs_->document_count()));
  return Status::Ok();
}

void ServerApp::Impl::CollectMetrics() {
  projection::DocumentService::Stats s = docs_->stats();
  metrics_.gauge("quire_open_documents", "Documents whose head state is in memory")
      .Set(s.cached_documents);
  metrics_.gauge("quire_head_cache_bytes", "Bytes of head state in memory").Set(s.cached_bytes);
  metrics_.gauge("quire_documents", "Documents in the catalog (deleted included)")
      .Set(static_cast<int64_t>(docs_->document_count()));
  auto& snapshots =
      metrics_.counter("quire_snapshots_taken_total", "Snapshots folded by the compactor");
  snapshots.Inc(s.snapshots_taken - reported_snapshots_);
  reported_snapshots_ = s.snapshots_taken;
  metrics_
      .gauge("quire_compactor_folds_running",
             "Folds started and whose snapshot is not appended yet (at most two)")
      .Set(s.folds_running);
  metrics_
      .gauge("quire_compactor_folds_queued",
             "Documents due for a fold, waiting for a running fold to end")
      .Set(s.folds_queued);
  eventlog::AsyncLog::Stats ls = log_->stats();
  // Batches, not appends: the WebSocket endpoint counts failed appends in
  // quire_storage_errors_total.
  auto& errors = metrics_.counter("quire_storage_failed_commits_total",
                                  "Commit batches that failed in storage");
  errors.Inc(ls.failed_batches - reported_storage_errors_);
  reported_storage_errors_ = ls.failed_batches;
  metrics_.gauge("quire_send_queue_bytes",
                 "Bytes queued for clients and not yet written to their sockets")
      .Set(server_ != nullptr ? static_cast<int64_t>(server_->queued_bytes()) : 0);
  metrics_.gauge("quire_storage_writable", "1 when the log accepts writes")
      .Set(docs_->writable().ok() ? 1 : 0);
}

void ServerApp::Impl::MaybeRecoverLog() {
  if (recovering_ || shutting_down_ || log_->sticky_error().ok()) return;
  recovering_ = true;
  log_->Recover([this](Status s) {
    recovering_ = false;
    if (s.ok()) {
      QUIRE_LOG(logger_, kWarn, "storage_recovered");
    } else {
      QUIRE_LOG(logger_, kWarn, "storage_recovery_failed").Str("error", s.ToString());
    }
  });
}

void ServerApp::Impl::DrainPosted() {
  std::deque<std::function<void()>> work;
  bool shutdown;
  {
    std::lock_guard<std::mutex> lock(mu_);
    work.swap(posted_);
    shutdown = shutdown_requested_;
  }
  for (auto& fn : work) fn();
  if (shutdown) BeginShutdown();
}

void ServerApp::Impl::RequestShutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  shutdown_requested_ = true;
  if (async_ready_ && !stopped_) uv_async_send(&wakeup_);
}

bool ServerApp::Impl::Post(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!async_ready_ || stopped_) return false;
  posted_.push_back(std::move(fn));
  uv_async_send(&wakeup_);
  return true;
}

void ServerApp::Impl::BeginShutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  QUIRE_LOG(logger_, kInfo, "shutdown_started")
      .Int("connections", static_cast<int64_t>(server_->connection_count()));
  uv_timer_stop(&compactor_);
  int64_t grace = std::max<int64_t>(config_.shutdown_grace_s * 1000 - kGraceMarginMs, 100);
  uv_timer_start(
      &grace_,
      [](uv_timer_t* t) noexcept {
        auto* self = static_cast<Impl*>(t->data);
        QUIRE_LOG(self->logger_, kWarn, "shutdown_grace_expired")
            .Int("connections", static_cast<int64_t>(self->server_->connection_count()));
        self->server_->AbortAll();
      },
      static_cast<uint64_t>(grace), 0);
  server_->Shutdown([this] { OnServerClosed(); });
}

void ServerApp::Impl::OnServerClosed() {
  server_closed_ = true;
  // Everything owed to clients was answered or aborted; commit what is still pending.
  log_->Close([this] { OnLogClosed(); });
}

void ServerApp::Impl::OnLogClosed() {
  log_closed_ = true;
  // Called from the log's completion, not from inside the server: safe to destroy it (and the
  // WebSocket endpoint it owns) now.
  server_.reset();
  CloseHandles();
  QUIRE_LOG(logger_, kInfo, "shutdown_complete");
}

void ServerApp::Impl::CloseHandles() {
  std::deque<std::function<void()>> late;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    late.swap(posted_);
  }
  // Posted before the stop but not yet run: run them now, since wakeup_ is about to close.
  for (auto& fn : late) fn();
  if (handles_open_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&wakeup_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&compactor_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&grace_), nullptr);
    handles_open_ = false;
  }
  if (signals_open_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&sigint_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&sigterm_), nullptr);
    signals_open_ = false;
  }
}

Status ServerApp::Impl::CloseLoop() {
  if (!loop_open_) return Status::Ok();
  int rc = uv_loop_close(&loop_);
  if (rc != 0) {
    std::string open;
    uv_walk(
        &loop_,
        [](uv_handle_t* h, void* arg) noexcept {
          auto* names = static_cast<std::string*>(arg);
          *names += std::string(names->empty() ? "" : ", ") + uv_handle_type_name(h->type);
        },
        &open);
    return Status::Internal("uv_loop_close: " + std::string(uv_strerror(rc)) + " (open: " + open +
                            ")");
  }
  loop_open_ = false;
  return Status::Ok();
}

Status ServerApp::Impl::Run() {
  if (!handles_open_) return Status::FailedPrecondition("ServerApp::Run before a successful Start");
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutdown_requested_) uv_async_send(&wakeup_);
  }
  uv_run(&loop_, UV_RUN_DEFAULT);
  // uv_run returns once nothing is active; finish any close callbacks still pending.
  uv_run(&loop_, UV_RUN_NOWAIT);
  return CloseLoop();
}

ServerApp::ServerApp(Config config, const Logger& logger, ServerAppOptions options)
    : impl_(std::make_unique<Impl>(std::move(config), logger, std::move(options))) {}

ServerApp::~ServerApp() {
  if (impl_ == nullptr) return;
  impl_->server_.reset();
  impl_->rest_.reset();
  impl_->docs_.reset();
  impl_->log_.reset();
}

Status ServerApp::Start() { return impl_->Start(); }
int ServerApp::port() const { return impl_->port_; }
const std::string& ServerApp::storage_description() const { return impl_->storage_description_; }
Status ServerApp::Run() { return impl_->Run(); }
void ServerApp::RequestShutdown() { impl_->RequestShutdown(); }
bool ServerApp::Post(std::function<void()> fn) { return impl_->Post(std::move(fn)); }
uv_loop_s* ServerApp::loop() { return &impl_->loop_; }
projection::DocumentService& ServerApp::documents() { return *impl_->docs_; }
io::Metrics& ServerApp::metrics() { return impl_->metrics_; }
const Config& ServerApp::config() const { return impl_->config_; }

}  // namespace quire::cli
