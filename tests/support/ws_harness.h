// Helpers for WebSocket end-to-end tests: a TestServer (memory or SQLite), documents made
// through the REST API, clients joined to them, and the server's metrics.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "tests/support/test_server.h"
#include "tests/support/ws_client.h"

namespace quire::test {

enum class StorageMode { kMemory, kSqlite };
const char* StorageModeName(StorageMode mode);

class WsHarness {
 public:
  // `tweak` adjusts the configuration before the server starts.
  explicit WsHarness(StorageMode mode = StorageMode::kMemory,
                     const std::function<void(Config&)>& tweak = {},
                     TestServerOptions options = {});
  ~WsHarness();

  TestServer& server() { return *server_; }
  int port() const { return server_->port(); }

  // POST /api/v1/documents; returns the id ("" on failure, with a failed CHECK).
  std::string CreateDocument(const std::string& crdt = "opaque", const std::string& title = "doc");
  // DELETE /api/v1/documents/{id}; true on 204.
  bool DeleteDocument(const std::string& id);

  // Connects to /ws/documents/{doc}?userId=..&displayName=..[&sinceSeq=..] (+ `extra_query`).
  Result<std::unique_ptr<WsClient>> Join(const std::string& doc, const std::string& user,
                                         std::optional<int64_t> since_seq = std::nullopt,
                                         const WsConnectOptions& options = {});
  // Join() and read the `state` message (fails the test if it does not come first).
  std::unique_ptr<WsClient> JoinWithState(const std::string& doc, const std::string& user,
                                          nlohmann::json* state = nullptr);

  // A counter or gauge of the server's registry, read on the loop thread.
  int64_t Metric(const std::string& name);
  int64_t HistogramCount(const std::string& name);

 private:
  StorageMode mode_;
  TempDir dir_;
  std::unique_ptr<TestServer> server_;
};

// {"type":"update", opId, actorId, baseVersion: 0, deltaB64: base64(bytes)}
nlohmann::json UpdateMessage(const std::string& op_id, const std::string& bytes,
                             const std::string& actor = "actor");

}  // namespace quire::test
