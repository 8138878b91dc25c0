// Storage faults end to end: a real server whose commits fail (injected, and a real full disk).
// What failed is neither acknowledged nor relayed, the sender gets STORAGE_UNAVAILABLE, reads
// keep working, /readyz is 503; once the fault is gone the server recovers the log by itself
// (ServerApp retries AsyncLog::Recover on every compactor tick while the error is sticky) and
// writes resume with nothing lost and no gap in seq.
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "tests/support/http_client.h"
#include "tests/support/ws_harness.h"

namespace quire::test {
namespace {

using nlohmann::json;

int ReadyzStatus(int port) {
  auto r = HttpRequestOnce(port, "GET", "/readyz");
  return r ? r->status : 0;
}

bool WaitReady(int port, int timeout_ms) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    if (ReadyzStatus(port) == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return false;
}

// The next ack or error for `op` (other messages skipped).
json AnswerFor(WsClient& c, const std::string& op) {
  for (;;) {
    auto m = c.NextJson(5000);
    REQUIRE(m.ok());
    if (((*m)["type"] == "ack" || (*m)["type"] == "error") && m->value("opId", "") == op) return *m;
  }
}

// Every remote_update a fresh client catching up from seq 0 receives: opId -> seq. Checks that
// the seqs are strictly increasing.
std::map<std::string, int64_t> CatchUp(int port, const std::string& doc) {
  auto c = WsClient::Connect(port, "/ws/documents/" + doc + "?userId=late&sinceSeq=0");
  REQUIRE(c.ok());
  std::map<std::string, int64_t> seen;
  int64_t last = 0;
  for (;;) {
    auto m = (*c)->NextJson(400);
    if (!m.ok()) break;
    if ((*m)["type"] != "remote_update") continue;
    int64_t seq = (*m)["seq"];
    CHECK(seq > last);
    last = seq;
    seen[(*m)["opId"]] = seq;
  }
  return seen;
}

// The remote_updates `c` has received so far (reads until quiet).
std::vector<std::string> Relays(WsClient& c, int quiet_ms = 200) {
  std::vector<std::string> ops;
  for (;;) {
    auto m = c.NextJson(quiet_ms);
    if (!m.ok()) break;
    if ((*m)["type"] == "remote_update") ops.push_back((*m)["opId"]);
  }
  return ops;
}

TEST_CASE("InjectedCommitFailureIsNeitherAckedNorRelayedAndWritesResumeAfterRecovery", "[faults]") {
  auto mode = GENERATE(StorageMode::kMemory, StorageMode::kSqlite);
  INFO("storage: " << StorageModeName(mode));
  TestServerOptions o;
  o.fault_injection = true;
  o.compactor_interval_ms = 100;  // the recovery retry cadence
  WsHarness h(mode, {}, o);
  auto* faults = h.server().faults();
  REQUIRE(faults != nullptr);
  std::string doc = h.CreateDocument();
  auto alice = h.JoinWithState(doc, "alice");
  auto bob = h.JoinWithState(doc, "bob");

  REQUIRE(alice->SendJson(UpdateMessage("u1", "one")).ok());
  json a1 = AnswerFor(*alice, "u1");
  REQUIRE(a1["type"] == "ack");
  int64_t s1 = a1["seq"];
  CHECK(Relays(*bob) == std::vector<std::string>{"u1"});

  faults->FailRecover(true);
  faults->FailAllCommits(true);
  for (const char* op : {"u2", "u3"}) {
    REQUIRE(alice->SendJson(UpdateMessage(op, op)).ok());
    json e = AnswerFor(*alice, op);
    CHECK(e["type"] == "error");
    CHECK(e["code"] == "STORAGE_UNAVAILABLE");
  }
  CHECK(Relays(*bob).empty());
  CHECK(ReadyzStatus(h.port()) == 503);
  // Reads keep working: REST, and a newcomer gets the committed state.
  auto get = HttpRequestOnce(h.port(), "GET", "/api/v1/documents/" + doc);
  REQUIRE(get.has_value());
  CHECK(get->status == 200);
  CHECK(CatchUp(h.port(), doc) == std::map<std::string, int64_t>{{"u1", s1}});
  // Recovery is being retried and keeps failing while the fault lasts.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(ReadyzStatus(h.port()) == 503);

  faults->FailAllCommits(false);
  faults->FailRecover(false);
  REQUIRE(WaitReady(h.port(), 3000));
  REQUIRE(alice->SendJson(UpdateMessage("u2", "u2")).ok());  // the client retries what failed
  json a2 = AnswerFor(*alice, "u2");
  REQUIRE(a2["type"] == "ack");
  CHECK(a2["seq"] == s1 + 1);
  REQUIRE(alice->SendJson(UpdateMessage("u4", "u4")).ok());
  json a4 = AnswerFor(*alice, "u4");
  REQUIRE(a4["type"] == "ack");
  CHECK(a4["seq"] == s1 + 2);
  CHECK(Relays(*bob) == std::vector<std::string>{"u2", "u4"});
  CHECK(CatchUp(h.port(), doc) ==
        std::map<std::string, int64_t>{{"u1", s1}, {"u2", s1 + 1}, {"u4", s1 + 2}});
  if (mode == StorageMode::kSqlite) {
    REQUIRE(h.server().Restart().ok());
    CHECK(CatchUp(h.server().port(), doc) ==
          std::map<std::string, int64_t>{{"u1", s1}, {"u2", s1 + 1}, {"u4", s1 + 2}});
  }
}

TEST_CASE("RestWritesFailWhileStorageFailsAndSucceedAfterRecovery", "[faults]") {
  TestServerOptions o;
  o.fault_injection = true;
  o.compactor_interval_ms = 100;
  WsHarness h(StorageMode::kSqlite, {}, o);
  h.server().faults()->FailNextCommits(1);
  auto r = HttpRequestOnce(h.port(), "POST", "/api/v1/documents", R"({"title":"x"})");
  REQUIRE(r.has_value());
  CHECK(r->status == 503);
  CHECK(r->ErrorCode() == "STORAGE_UNAVAILABLE");
  // One failed commit is enough to make the log sticky; the retry loop recovers it.
  REQUIRE(WaitReady(h.port(), 3000));
  auto ok = HttpRequestOnce(h.port(), "POST", "/api/v1/documents", R"({"title":"y"})");
  REQUIRE(ok.has_value());
  CHECK(ok->status == 201);
  auto list = HttpRequestOnce(h.port(), "GET", "/api/v1/documents");
  REQUIRE(list.has_value());
  CHECK(list->Json()["total"] == 1);
}

// A small file system that fills up for real. Mounts a 2 MiB tmpfs when allowed (root in CI);
// otherwise falls back to RLIMIT_FSIZE on this process (the server runs in it), which makes
// writes past the limit fail with EFBIG the same way. `mode()` says which.
class SmallDisk {
 public:
  SmallDisk() {
    std::error_code ec;
    std::filesystem::create_directories(dir_.File("fs"), ec);
    // QUIRE_TEST_NO_MOUNT forces the fallback (to test it where mounting works).
    if (std::getenv("QUIRE_TEST_NO_MOUNT") == nullptr &&
        ::mount("tmpfs", dir_.File("fs").c_str(), "tmpfs", 0, "size=2m") == 0) {
      mounted_ = true;
    }
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(dir_.File("fs").c_str(), MNT_DETACH);
    if (limited_) ::setrlimit(RLIMIT_FSIZE, &saved_);
  }
  std::string path() const { return dir_.File("fs"); }
  const char* mode() const { return mounted_ ? "tmpfs 2 MiB" : "RLIMIT_FSIZE"; }

  // Leaves about `free_bytes` writable: a filler file on the tmpfs, or a file size limit.
  void Fill(size_t free_bytes) {
    if (mounted_) {
      std::ofstream f(path() + "/filler", std::ios::binary);
      std::string block(4096, 'f');
      // Write until the file system refuses, then give back `free_bytes`.
      while (f.write(block.data(), static_cast<std::streamsize>(block.size()))) f.flush();
      f.close();
      auto size = std::filesystem::file_size(path() + "/filler");
      std::filesystem::resize_file(path() + "/filler", size > free_bytes ? size - free_bytes : 0);
    } else {
      ::signal(SIGXFSZ, SIG_IGN);
      ::getrlimit(RLIMIT_FSIZE, &saved_);
      size_t biggest = 0;
      for (auto& e : std::filesystem::directory_iterator(path())) {
        biggest = std::max<size_t>(biggest, std::filesystem::file_size(e.path()));
      }
      rlimit l = saved_;
      l.rlim_cur = biggest + free_bytes;
      REQUIRE(::setrlimit(RLIMIT_FSIZE, &l) == 0);
      limited_ = true;
    }
  }
  void Free() {
    if (mounted_) {
      std::filesystem::remove(path() + "/filler");
    } else if (limited_) {
      ::setrlimit(RLIMIT_FSIZE, &saved_);
      limited_ = false;
    }
  }

 private:
  TempDir dir_;
  bool mounted_ = false;
  bool limited_ = false;
  rlimit saved_{};
};

TEST_CASE("FullDiskIsNeitherAckedNorRelayedAndWritesResumeOnceSpaceIsFreed", "[faults][disk]") {
  SmallDisk disk;
  WARN("full disk via " << disk.mode());
  Config config = TestServer::MemoryConfig();
  config.database_url = "sqlite:///" + disk.path() + "/quire.db";
  config.sync_mode = SyncMode::kFull;
  TestServerOptions o;
  o.compactor_interval_ms = 100;
  TestServer server(config, o);
  REQUIRE(server.Start().ok());
  int port = server.port();
  auto created =
      HttpRequestOnce(port, "POST", "/api/v1/documents", R"({"title":"disk","crdt":"opaque"})");
  REQUIRE(created.has_value());
  REQUIRE(created->status == 201);
  std::string doc = created->Json()["id"];
  auto alice = WsClient::Connect(port, "/ws/documents/" + doc + "?userId=alice");
  auto bob = WsClient::Connect(port, "/ws/documents/" + doc + "?userId=bob");
  REQUIRE(alice.ok());
  REQUIRE(bob.ok());

  disk.Fill(256 << 10);
  // 32 KiB updates until one fails (bounded: the free space is ~256 KiB).
  std::map<std::string, int64_t> acked;
  std::string failed_op;
  const std::string payload(32 << 10, 'p');
  for (int i = 0; i < 64 && failed_op.empty(); ++i) {
    std::string op = "w" + std::to_string(i);
    REQUIRE((*alice)->SendJson(UpdateMessage(op, payload + op)).ok());
    json a = AnswerFor(**alice, op);
    if (a["type"] == "ack") {
      acked[op] = a["seq"];
    } else {
      CHECK(a["code"] == "STORAGE_UNAVAILABLE");
      failed_op = op;
    }
  }
  REQUIRE_FALSE(failed_op.empty());
  CHECK(ReadyzStatus(port) == 503);
  // bob saw exactly what was acknowledged, in order, and nothing of the failed update.
  std::vector<std::string> relays = Relays(**bob);
  std::vector<std::string> expected;
  for (int i = 0; i < static_cast<int>(acked.size()); ++i)
    expected.push_back("w" + std::to_string(i));
  CHECK(relays == expected);
  // Reads keep working.
  auto get = HttpRequestOnce(port, "GET", "/api/v1/documents/" + doc);
  REQUIRE(get.has_value());
  CHECK(get->status == 200);

  disk.Free();
  REQUIRE(WaitReady(port, 5000));
  REQUIRE((*alice)->SendJson(UpdateMessage(failed_op, payload + failed_op)).ok());
  json retry = AnswerFor(**alice, failed_op);
  REQUIRE(retry["type"] == "ack");
  int64_t last_seq = 0;
  for (auto& [op, seq] : acked) last_seq = std::max(last_seq, seq);
  CHECK(retry["seq"] == last_seq + 1);
  acked[failed_op] = retry["seq"];
  CHECK(CatchUp(port, doc) == acked);
  alice->reset();
  bob->reset();
  REQUIRE(server.Restart().ok());
  CHECK(CatchUp(server.port(), doc) == acked);
  REQUIRE(server.Stop().ok());
}

}  // namespace
}  // namespace quire::test
