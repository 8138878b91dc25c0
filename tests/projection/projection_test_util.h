// Helpers shared by the projection test files (header-only and inline: they are linked together
// into projection_tests): a real libuv loop, a real AsyncLog over a real backend, a ManualClock.
#pragma once

#include <stdlib.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/log.h"
#include "eventlog/async_log.h"
#include "eventlog/backend.h"
#include "eventlog/fault_injection.h"
#include "projection/document_service.h"

namespace quire::projection::testing {

// A fresh directory under /tmp, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/quire-projection-XXXXXX";
    char* made = mkdtemp(tmpl);
    REQUIRE(made != nullptr);
    path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name = "log.db") const { return path_ + "/" + name; }
  // sqlite:////tmp/quire-projection-XXXX/<name> (absolute path).
  std::string SqliteUrl(const std::string& name = "log.db") const {
    return "sqlite:///" + File(name);
  }

 private:
  std::string path_;
};

inline Bytes B(std::string_view s) { return Bytes(s.begin(), s.end()); }

// A DocumentService over `memory://` or a SQLite file, driven on a private loop.
class Harness {
 public:
  using Wrap =
      std::function<std::unique_ptr<eventlog::Backend>(std::unique_ptr<eventlog::Backend>)>;
  // `wrap` (optional) decorates the backend each time the log is opened.
  explicit Harness(std::string backend_kind, ProjectionOptions options = {}, Wrap wrap = {})
      : kind_(std::move(backend_kind)), options_(options), wrap_(std::move(wrap)) {
    REQUIRE(uv_loop_init(&loop_) == 0);
    Open();
  }
  ~Harness() {
    Close();
    uv_run(&loop_, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&loop_);
    CHECK(rc == 0);
  }
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  std::string url() const { return kind_ == "memory" ? "memory://" : dir_.SqliteUrl(); }
  const std::string& kind() const { return kind_; }

  void Open() {
    auto backend = eventlog::OpenBackend(url(), eventlog::BackendOptions{});
    REQUIRE(backend.ok());
    std::unique_ptr<eventlog::Backend> inner = std::move(backend).value();
    if (wrap_) inner = wrap_(std::move(inner));
    auto faulty = std::make_unique<eventlog::FaultInjectingBackend>(std::move(inner));
    faults_ = faulty.get();
    log_ = std::make_unique<eventlog::AsyncLog>(&loop_, std::move(faulty));
    service_ = std::make_unique<DocumentService>(*log_, clock_, options_, logger_);
    std::optional<Status> started;
    service_->Start([&](Status s) { started = s; });
    Drain();
    REQUIRE(started.has_value());
    REQUIRE(started->ok());
  }

  void Close() {
    if (!log_) return;
    bool closed = false;
    log_->Close([&] { closed = true; });
    Drain();
    REQUIRE(closed);
    service_.reset();
    log_.reset();
    faults_ = nullptr;
  }

  // A restart: everything in memory is dropped, the log is reopened.
  void Reopen() {
    Close();
    Open();
  }

  // Runs the loop until no work is outstanding.
  void Drain() { uv_run(&loop_, UV_RUN_DEFAULT); }
  // One loop iteration that does not block.
  void RunOnce() { uv_run(&loop_, UV_RUN_NOWAIT); }
  // One loop iteration that waits for an event if there is none yet.
  void RunOnceBlocking() { uv_run(&loop_, UV_RUN_ONCE); }

  DocumentService& service() { return *service_; }
  eventlog::AsyncLog& log() { return *log_; }
  // Makes commits fail on demand (every backend is wrapped).
  eventlog::FaultInjectingBackend& faults() { return *faults_; }
  ManualClock& clock() { return clock_; }
  ProjectionOptions& options() { return options_; }

  DocumentRecord Create(const std::string& title, CrdtKind crdt = CrdtKind::kAutomerge,
                        std::optional<DocumentId> id = std::nullopt) {
    std::optional<Result<DocumentRecord>> out;
    service_->Create(CreateCommand{std::move(id), title, crdt, "owner"},
                     [&](Result<DocumentRecord> r) { out = std::move(r); });
    Drain();
    REQUIRE(out.has_value());
    INFO(out->status().ToString());
    REQUIRE(out->ok());
    return out->value();
  }

  Result<eventlog::AppendResult> Update(const DocumentId& id, const std::string& op_id,
                                        Bytes bytes) {
    std::optional<Result<eventlog::AppendResult>> out;
    service_->AppendUpdate(id, op_id, "actor", std::move(bytes),
                           [&](Result<eventlog::AppendResult> r) { out = std::move(r); });
    Drain();
    REQUIRE(out.has_value());
    return std::move(*out);
  }

  Result<eventlog::AppendResult> Snapshot(const DocumentId& id, Seq version, Bytes bytes) {
    std::optional<Result<eventlog::AppendResult>> out;
    service_->AppendSnapshot(id, version, std::move(bytes), "client",
                             [&](Result<eventlog::AppendResult> r) { out = std::move(r); });
    Drain();
    REQUIRE(out.has_value());
    return std::move(*out);
  }

  Result<HeadState> Load(const DocumentId& id) {
    std::optional<Result<HeadState>> out;
    service_->LoadHead(id, [&](Result<HeadState> r) { out = std::move(r); });
    Drain();
    REQUIRE(out.has_value());
    return std::move(*out);
  }

  Result<std::vector<TailUpdate>> Since(const DocumentId& id, Seq since) {
    std::optional<Result<std::vector<TailUpdate>>> out;
    service_->ReadUpdatesSince(id, since,
                               [&](Result<std::vector<TailUpdate>> r) { out = std::move(r); });
    Drain();
    REQUIRE(out.has_value());
    return std::move(*out);
  }

  void Compact() {
    service_->RunCompactor();
    Drain();
  }

 private:
  std::string kind_;
  ProjectionOptions options_;
  Wrap wrap_;
  TempDir dir_;
  uv_loop_t loop_;
  ManualClock clock_;
  Logger logger_{LogLevel::kError};
  eventlog::FaultInjectingBackend* faults_ = nullptr;  // owned by log_
  std::unique_ptr<eventlog::AsyncLog> log_;
  std::unique_ptr<DocumentService> service_;
};

// The concatenation of `parts` (what an automerge fold makes).
inline Bytes Concat(std::initializer_list<std::string_view> parts) {
  Bytes out;
  for (std::string_view p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace quire::projection::testing
