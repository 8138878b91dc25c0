// `quire serve` as a real subprocess (build/quire): configuration from flags and environment,
// the start-up log lines (storage mode, listening port), /healthz, and a clean exit 0 on SIGTERM
// and SIGINT after committing what was acknowledged.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/http_client.h"
#include "tests/support/test_server.h"

namespace quire::cli {
namespace {

using nlohmann::json;
using quire::test::HttpRequestOnce;
using quire::test::TempDir;

const std::string kQuire = std::string(QUIRE_BINARY_DIR) + "/quire";

// A running `quire serve` with its stderr (the JSON log) on a pipe.
class ServeProcess {
 public:
  ServeProcess(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      // Ignored signals stay ignored across exec: give the server the default SIGPIPE so the
      // tests see what a shell-started `quire serve` does.
      ::signal(SIGPIPE, SIG_DFL);
      ::dup2(fds[1], 2);
      ::dup2(fds[1], 1);
      for (const std::string& e : env) ::putenv(const_cast<char*>(e.c_str()));
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(kQuire.c_str()));
      argv.push_back(const_cast<char*>("serve"));
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(kQuire.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    fd_ = fds[0];
  }
  ~ServeProcess() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      int status;
      ::waitpid(pid_, &status, 0);
    }
    if (fd_ >= 0) ::close(fd_);
  }

  // Reads log lines until one has `event`; returns it parsed.
  std::optional<json> WaitForEvent(const std::string& event, int timeout_ms = 10000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      size_t nl;
      while ((nl = buf_.find('\n')) != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        log_ += line + "\n";
        json j = json::parse(line, nullptr, false);
        if (j.is_object() && j.value("event", "") == event) return j;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      if (left <= 0 || !Fill(static_cast<int>(left))) return std::nullopt;
    }
  }

  // Sends `sig` and waits for the exit; returns the exit code (-1 on a timeout or a signal).
  int SignalAndWait(int sig, int timeout_ms = 10000) {
    ::kill(pid_, sig);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        while (Fill(0)) {
        }
        log_ += buf_;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      Fill(20);  // keep the pipe drained while waiting
    }
    return -1;
  }

  int WaitExit() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    exited_ = true;
    while (Fill(1000)) {
    }
    log_ += buf_;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  const std::string& log() const { return log_; }

 private:
  bool Fill(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    char tmp[4096];
    ssize_t n = ::read(fd_, tmp, sizeof tmp);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  pid_t pid_ = -1;
  int fd_ = -1;
  bool exited_ = false;
  std::string buf_;
  std::string log_;
};

TEST_CASE("ServeStartsAnswersHealthzAndExitsZeroOnSigterm", "[cli][serve]") {
  ServeProcess p({"--port", "0", "--database-url", "memory://", "--host=127.0.0.1"});
  auto storage = p.WaitForEvent("storage_opened");
  REQUIRE(storage.has_value());
  CHECK((*storage)["storage"] == "memory://");
  auto listening = p.WaitForEvent("listening");
  REQUIRE(listening.has_value());
  int port = (*listening)["port"];
  CHECK(port > 0);
  auto r = HttpRequestOnce(port, "GET", "/healthz");
  REQUIRE(r.has_value());
  CHECK(r->status == 200);
  CHECK(p.SignalAndWait(SIGTERM) == 0);
  INFO(p.log());
  CHECK(p.log().find("\"shutdown_complete\"") != std::string::npos);
}

TEST_CASE("ServeReadsEnvironmentAndKeepsCommittedWorkAcrossSigint", "[cli][serve]") {
  TempDir dir;
  std::string url = "sqlite:///" + dir.File("serve.db");
  std::string id;
  {
    ServeProcess p({}, {"DATABASE_URL=" + url, "QUIRE_PORT=0", "QUIRE_LOG_LEVEL=info"});
    auto storage = p.WaitForEvent("storage_opened");
    REQUIRE(storage.has_value());
    CHECK((*storage)["storage"].get<std::string>().find("sqlite") != std::string::npos);
    auto listening = p.WaitForEvent("listening");
    REQUIRE(listening.has_value());
    int port = (*listening)["port"];
    auto created = HttpRequestOnce(port, "POST", "/api/v1/documents", R"({"title":"survives"})");
    REQUIRE(created.has_value());
    REQUIRE(created->status == 201);
    id = created->Json()["id"];
    CHECK(p.SignalAndWait(SIGINT) == 0);
  }
  ServeProcess reopened({"--port=0", "--database-url=" + url});
  auto l3 = reopened.WaitForEvent("listening");
  REQUIRE(l3.has_value());
  CHECK((*l3)["documents"] == 1);
  auto got = HttpRequestOnce((*l3)["port"].get<int>(), "GET", "/api/v1/documents/" + id);
  REQUIRE(got.has_value());
  CHECK(got->status == 200);
  CHECK(got->Json()["title"] == "survives");
  CHECK(reopened.SignalAndWait(SIGTERM) == 0);
}

TEST_CASE("ServeHelpListsFlagsAndBadFlagsExitTwo", "[cli][serve]") {
  ServeProcess help({"--help"});
  CHECK(help.WaitExit() == 0);
  CHECK(help.log().find("--database-url") != std::string::npos);
  CHECK(help.log().find("--port") != std::string::npos);
  ServeProcess bad({"--no-such-flag=1"});
  CHECK(bad.WaitExit() == 2);
  CHECK(bad.log().find("no-such-flag") != std::string::npos);
  ServeProcess bad_env({}, {"QUIRE_PORT=notaport"});
  CHECK(bad_env.WaitExit() == 2);
}

TEST_CASE("ServeSurvivesClientsThatResetWhileTheAnswerIsBeingWritten", "[cli][serve]") {
  // Regression: libuv writes with write(2), so a peer that reset the connection while its
  // answer was queued raised SIGPIPE and killed the whole server.
  ServeProcess p({"--port=0", "--database-url=memory://"});
  auto listening = p.WaitForEvent("listening");
  REQUIRE(listening.has_value());
  int port = (*listening)["port"];
  const std::string request =
      "GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n";
  for (int i = 0; i < 200; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    int small = 1024;  // a tiny receive window keeps the answers queued on the server side
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    for (int k = 0; k < 20; ++k) {
      if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) < 0) break;
    }
    linger reset{1, 0};  // close with RST, not FIN
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    ::close(fd);
  }
  auto r = HttpRequestOnce(port, "GET", "/healthz");
  REQUIRE(r.has_value());
  CHECK(r->status == 200);
  CHECK(p.SignalAndWait(SIGTERM) == 0);
}

}  // namespace
}  // namespace quire::cli
