// Crash safety of the SQLite log with synchronous=FULL: a child process appends through an
// AsyncLog and reports every acknowledgement on a pipe; the parent SIGKILLs it at random
// moments, reopens the file and checks that everything acknowledged is there with its seq,
// that seqs are strictly increasing with op_ids unique, and that the catalog equals the fold
// of the events (what `quire replay` checks).
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <random>
#include <sstream>

#include "eventlog/async_log.h"
#include "eventlog/backend.h"
#include "tests/eventlog/eventlog_test_util.h"

namespace quire::eventlog {
namespace {

using testing::Created;
using testing::TempDir;
using testing::Update;

constexpr int kRuns = 24;
constexpr int kDocuments = 7;
constexpr int kWindow = 32;  // appends in flight in the child

DocumentId DocFor(int n) { return "doc" + std::to_string(n % kDocuments); }
OpId OpFor(int run, int n) { return "r" + std::to_string(run) + "-" + std::to_string(n); }

// The child: appends forever (bounded to a few seconds in case the parent is gone), writes
// "document op_id seq duplicate\n" for each acknowledged append. Never returns.
[[noreturn]] void ChildAppends(const std::string& url, int run, int fd) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto backend = OpenBackend(url, BackendOptions{});
  if (!backend.ok()) _exit(3);
  AsyncLog log(&loop, std::move(backend).value());
  int next = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::function<void()> submit = [&] {
    if (std::chrono::steady_clock::now() > deadline) return;
    int n = next++;
    Event request;
    if (run > 0 && n % 10 == 9) {
      // Retry an op of the previous (killed) run: acknowledged or not, it must end up stored
      // once, with one seq.
      request = Update(DocFor(n / 10), OpFor(run - 1, n / 10));
    } else if (n % 13 == 5) {
      request = testing::Simple(DocFor(n), EventKind::kRenamed, 5000 + n);
      request.title = "title " + OpFor(run, n);
      request.op_id = OpFor(run, n);
    } else {
      request = Update(DocFor(n), OpFor(run, n), std::string(n % 50, 'x'), 5000 + n);
    }
    log.Append(std::move(request), [&, fd](Result<AppendResult> r, const Event& e) {
      if (!r.ok()) _exit(4);
      std::string line = e.document_id + " " + e.op_id + " " + std::to_string(r->seq) + " " +
                         (r->duplicate ? "1" : "0") + "\n";
      if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(5);
      submit();
    });
  };
  for (int i = 0; i < kWindow; ++i) submit();
  uv_run(&loop, UV_RUN_DEFAULT);
  _exit(0);
}

struct Ack {
  Seq seq;
  bool duplicate;
};

TEST_CASE("AcknowledgedAppendsSurviveSigkillAtRandomMoments", "[sqlite][crash]") {
  TempDir dir;
  const std::string url = dir.SqliteUrl();
  {
    auto backend = OpenBackend(url, {});
    REQUIRE(backend.ok());
    std::vector<Event> batch;
    for (int d = 0; d < kDocuments; ++d) batch.push_back(Created(DocFor(d)));
    std::vector<AppendResult> results(batch.size());
    std::vector<Status> statuses(batch.size());
    REQUIRE((*backend)->CommitBatch(batch, results, statuses).ok());
  }
  const auto seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> delay_ms(0, 40);
  std::map<std::pair<DocumentId, OpId>, Ack> acked;
  int64_t total_acks = 0;
  int runs_with_acks = 0;
  const auto started = std::chrono::steady_clock::now();

  for (int run = 0; run < kRuns; ++run) {
    INFO("run " << run);
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      close(fds[0]);
      ChildAppends(url, run, fds[1]);
    }
    close(fds[1]);

    std::string buffer;
    auto read_some = [&](int timeout_ms) {
      pollfd p{fds[0], POLLIN, 0};
      if (poll(&p, 1, timeout_ms) <= 0) return false;
      char chunk[8192];
      ssize_t n = read(fds[0], chunk, sizeof chunk);
      if (n <= 0) return false;
      buffer.append(chunk, static_cast<size_t>(n));
      return true;
    };
    // Most kills land while appends flow: after the first acknowledgement (bounded wait),
    // plus a random delay. Every fourth run is killed at a random moment from the fork, which
    // may fall in the open, the migration or the first commit.
    if (run % 4 != 3) {
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (buffer.find('\n') == std::string::npos &&
             std::chrono::steady_clock::now() < give_up) {
        read_some(50);
      }
    }
    const auto kill_at =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms(rng));
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      kill_at - std::chrono::steady_clock::now())
                      .count();
      if (left <= 0) break;
      read_some(static_cast<int>(left));
    }
    REQUIRE(kill(pid, SIGKILL) == 0);
    int wstatus = 0;
    REQUIRE(waitpid(pid, &wstatus, 0) == pid);
    // A child that exited on its own hit an error (or its deadline): that is a failure too.
    CHECK((WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL));
    while (read_some(0)) {
    }
    close(fds[0]);

    int acks_this_run = 0;
    std::istringstream lines(buffer);
    std::string doc, op;
    Seq seq;
    int dup;
    while (lines >> doc >> op >> seq >> dup) {
      ++acks_this_run;
      auto [it, inserted] = acked.emplace(std::make_pair(doc, op), Ack{seq, dup != 0});
      if (!inserted) CHECK(it->second.seq == seq);  // a retried op keeps its seq
    }
    total_acks += acks_this_run;
    if (acks_this_run > 0) ++runs_with_acks;

    auto backend = OpenBackend(url, {});
    REQUIRE(backend.ok());
    std::map<std::pair<DocumentId, OpId>, Seq> stored;
    for (int d = 0; d < kDocuments; ++d) {
      auto events = (*backend)->ReadEvents(DocFor(d), 0, SIZE_MAX);
      REQUIRE(events.ok());
      Seq prev = 0;
      int gaps = 0;
      for (const Event& e : *events) {
        if (e.seq != prev + 1) ++gaps;  // nothing was pruned: seqs are 1, 2, 3, ...
        prev = e.seq;
        if (!e.op_id.empty()) stored.emplace(std::make_pair(e.document_id, e.op_id), e.seq);
      }
      CHECK(gaps == 0);
    }
    int missing = 0;
    for (const auto& [key, ack] : acked) {
      auto it = stored.find(key);
      if (it == stored.end() || it->second != ack.seq) ++missing;
    }
    CHECK(missing == 0);
    std::vector<std::string> problems;
    auto folded = testing::FoldCatalog(**backend, problems);
    CHECK(problems.empty());
    CHECK(testing::CatalogById(**backend) == folded);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  WARN("crash test: " << kRuns << " kills, " << total_acks << " acknowledged appends checked, "
                      << runs_with_acks << " runs with acks, " << seconds << " s");
  CHECK(runs_with_acks >= kRuns / 2);  // the kills did land while appends were flowing
  CHECK(seconds < 30);
}

}  // namespace
}  // namespace quire::eventlog
