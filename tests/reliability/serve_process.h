// ServeProcess: `quire serve` (the built binary, QUIRE_BINARY_DIR/quire) as a child process for
// reliability tests that observe the server from outside: its port (from the `listening` log
// line), its memory (/proc/<pid>/status) and its metrics (GET /metrics). The log goes to a file,
// so a chatty server can never block on a full pipe. The process is killed (SIGKILL) on
// destruction unless Stop() ended it.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/http_client.h"

namespace quire::test {

class ServeProcess {
 public:
  // Starts `quire serve ARGS...` with stdout and stderr appended to `log_path`.
  ServeProcess(const std::vector<std::string>& args, std::string log_path)
      : log_path_(std::move(log_path)) {
    std::string binary = std::string(QUIRE_BINARY_DIR) + "/quire";
    int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
      std::vector<char*> argv;
      argv.push_back(binary.data());
      argv.push_back(const_cast<char*>("serve"));
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(binary.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(log_fd);
  }
  ~ServeProcess() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      int status;
      ::waitpid(pid_, &status, 0);
    }
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  pid_t pid() const { return pid_; }

  // Waits for the `listening` log line; returns the port (0 on a timeout or an early exit).
  int WaitListening(int timeout_ms = 15000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline && pid_ > 0) {
      std::ifstream in(log_path_);
      std::string line;
      while (std::getline(in, line)) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_object() && j.value("event", "") == "listening" && j.contains("port")) {
          return j["port"].get<int>();
        }
      }
      int status;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return 0;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a file has no readiness
    }
    return 0;
  }

  // A field of /proc/<pid>/status in kB ("VmRSS", "VmHWM"); -1 when unreadable.
  int64_t StatusKb(const std::string& field) const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
    }
    return -1;
  }

  // SIGTERM and wait; the exit code, or -1 on a signal or after `timeout_ms`.
  int Stop(int timeout_ms = 15000) {
    if (pid_ <= 0 || exited_) return -1;
    ::kill(pid_, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

  std::string Log() const {
    std::ifstream in(log_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  std::string log_path_;
  pid_t pid_ = -1;
  bool exited_ = false;
};

// The value of an unlabelled metric in a Prometheus text page; nullopt when absent.
inline std::optional<int64_t> PrometheusValue(const std::string& page, const std::string& name) {
  std::istringstream in(page);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > name.size() && line.compare(0, name.size(), name) == 0 &&
        line[name.size()] == ' ') {
      return static_cast<int64_t>(std::stod(line.substr(name.size() + 1)));
    }
  }
  return std::nullopt;
}

}  // namespace quire::test
