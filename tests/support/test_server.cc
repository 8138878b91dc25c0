#include "tests/support/test_server.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace quire::test {

TempDir::TempDir() {
  char tmpl[] = "/tmp/quire-test-XXXXXX";
  const char* p = ::mkdtemp(tmpl);
  path_ = p != nullptr ? p : "";
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::File(const std::string& name) const { return path_ + "/" + name; }

Config TestServer::MemoryConfig() {
  Config c;
  c.host = "127.0.0.1";
  c.port = 0;
  c.database_url = "memory://";
  c.log_level = LogLevel::kWarn;
  return c;
}

Config TestServer::SqliteConfig(const std::string& path) {
  Config c = MemoryConfig();
  // SQLAlchemy's convention: sqlite:///relative or sqlite:////absolute.
  c.database_url = "sqlite:///" + path;
  c.sync_mode = SyncMode::kNormal;
  return c;
}

TestServer::TestServer(Config config, TestServerOptions options)
    : config_(std::move(config)), options_(options), logger_(config_.log_level) {}

TestServer::~TestServer() {
  if (app_ != nullptr) Stop().IgnoreError();  // a test that cares calls Stop() itself
}

Status TestServer::Start() {
  if (app_ != nullptr) return Status::FailedPrecondition("TestServer already running");
  cli::ServerAppOptions o;
  o.clock = options_.clock;
  o.compactor_interval_ms = options_.compactor_interval_ms;
  faults_ = nullptr;
  if (options_.fault_injection) {
    o.wrap_backend =
        [this](std::unique_ptr<eventlog::Backend> b) -> std::unique_ptr<eventlog::Backend> {
      auto f = std::make_unique<eventlog::FaultInjectingBackend>(std::move(b));
      faults_ = f.get();
      return f;
    };
  }
  app_ = std::make_unique<cli::ServerApp>(config_, logger_, std::move(o));
  std::promise<Status> started;
  std::future<Status> started_future = started.get_future();
  stopped_ = std::promise<Status>();
  stopped_future_ = stopped_.get_future();
  thread_ = std::thread([this, &started] {
    Status s = app_->Start();
    bool ok = s.ok();
    started.set_value(std::move(s));
    if (!ok) {
      stopped_.set_value(Status::Ok());
      return;
    }
    stopped_.set_value(app_->Run());
  });
  Status s = started_future.get();
  if (!s.ok()) {
    thread_.join();
    app_.reset();
    return s;
  }
  port_ = app_->port();
  return Status::Ok();
}

Status TestServer::Stop() {
  if (app_ == nullptr) return Status::FailedPrecondition("TestServer not running");
  app_->RequestShutdown();
  Status s = stopped_future_.get();
  thread_.join();
  app_.reset();
  faults_ = nullptr;
  return s;
}

Status TestServer::Restart() {
  QUIRE_RETURN_IF_ERROR(Stop());
  return Start();
}

void TestServer::RunOnLoop(const std::function<void(cli::ServerApp&)>& fn) {
  if (app_ == nullptr) return;
  std::promise<void> done;
  std::future<void> done_future = done.get_future();
  cli::ServerApp* app = app_.get();
  bool posted = app_->Post([&] {
    fn(*app);
    done.set_value();
  });
  if (posted) done_future.get();
}

}  // namespace quire::test
