// append_bench: durable appends per second and commit latency of the event log, driven
// through AsyncLog on a real libuv loop with a bounded window of appends in flight (each
// acknowledgement submits the next append). Not a test.
//
//   build/benchmarks/append_bench [--quick] [--seconds=S] [--window=N] [--dir=PATH]
//                                 [--json=PATH] [--schema-compare] [--only=sqlite-full/100/64]
//
// For every backend (memory, SQLite synchronous=FULL, SQLite synchronous=NORMAL), every number
// of interleaved documents (1, 10, 100, 1000) and payload size (64 B, 1 KiB) it reports:
//  - appends/s: acknowledged appends per second (acknowledged = committed, callback ran);
//  - commit p50/p99/max: duration of one CommitBatch transaction (the storage thread's view);
//  - ack p50/p99: submit-to-callback latency of one append (the caller's view);
//  - mean batch: appends per transaction.
// --schema-compare also measures the raw SQLite insert rate of the rowid-ordered `events`
// table against a WITHOUT ROWID table keyed by (document_id, seq), which is how SCHEMA.md's
// choice was made.
#include <sqlite3.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "benchmarks/support/latency_histogram.h"
#include "eventlog/async_log.h"
#include "eventlog/backend.h"

namespace quire::bench {
namespace {

using eventlog::AppendRequest;
using eventlog::AppendResult;
using eventlog::AsyncLog;
using eventlog::Backend;
using eventlog::BackendOptions;
using eventlog::Event;
using eventlog::EventKind;

// CPU time of the whole process (every thread), user + system.
int64_t CpuNs() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto ns = [](timeval t) { return t.tv_sec * 1'000'000'000ll + t.tv_usec * 1000ll; };
  return ns(u.ru_utime) + ns(u.ru_stime);
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Options {
  double seconds = 2.0;
  int window = 1000;
  std::string dir;
  std::string json_path;
  bool quick = false;
  bool schema_compare = false;
  std::string only;  // run only cells whose "backend/docs/payload" name contains this
};

struct Cell {
  std::string backend;  // "memory", "sqlite-full", "sqlite-normal"
  int documents = 0;
  int payload = 0;
};

struct Outcome {
  Cell cell;
  int64_t appends = 0;
  double seconds = 0;
  int64_t batches = 0;
  LatencyHistogram commit;
  LatencyHistogram ack;
  std::string error;
  int64_t cpu_ns = 0;  // process CPU time over the whole run, warm-up included
  int64_t all_appends = 0;
  double cpu_us_per_append() const { return all_appends ? cpu_ns / 1e3 / all_appends : 0; }
  double rate() const { return seconds > 0 ? appends / seconds : 0; }
  double mean_batch() const { return batches ? static_cast<double>(appends) / batches : 0; }
};

std::string DocName(int d) { return "document-" + std::to_string(d); }

// One measured run: fresh store, documents created up front, then `seconds` of appends with
// `window` in flight. The first 10% of the run (warm-up) is not recorded.
Outcome RunCell(const Cell& cell, const Options& options, int index) {
  Outcome out;
  out.cell = cell;
  std::string url = "memory://";
  BackendOptions backend_options;
  if (cell.backend != "memory") {
    url = "sqlite:///" + options.dir + "/append-" + std::to_string(index) + ".db";
    backend_options.sync_mode = cell.backend == "sqlite-full" ? SyncMode::kFull : SyncMode::kNormal;
  }
  auto opened = eventlog::OpenBackend(url, backend_options);
  if (!opened.ok()) {
    out.error = opened.status().ToString();
    return out;
  }
  std::unique_ptr<Backend> backend = std::move(opened).value();
  {
    std::vector<AppendRequest> batch;
    for (int d = 0; d < cell.documents; ++d) {
      Event e;
      e.document_id = DocName(d);
      e.kind = EventKind::kCreated;
      e.title = "bench";
      e.actor_id = "bench";
      batch.push_back(std::move(e));
    }
    std::vector<AppendResult> results(batch.size());
    std::vector<Status> statuses(batch.size());
    Status s = backend->CommitBatch(batch, results, statuses);
    if (!s.ok()) {
      out.error = s.ToString();
      return out;
    }
  }

  uv_loop_t loop;
  uv_loop_init(&loop);
  AsyncLog log(&loop, std::move(backend));
  const int64_t start_cpu = CpuNs();
  const int64_t start_ns = NowNs();
  const int64_t record_from_ns = start_ns + static_cast<int64_t>(options.seconds * 0.1e9);
  const int64_t end_ns = start_ns + static_cast<int64_t>(options.seconds * 1e9);
  log.set_batch_observer([&](int64_t size, int64_t commit_ns, int64_t) {
    if (NowNs() < record_from_ns) return;
    out.commit.Record(commit_ns);
    out.batches += 1;
    (void)size;
  });

  const Bytes payload(static_cast<size_t>(cell.payload), 0x5a);
  int64_t next = 0;
  int64_t recorded_acks = 0;
  int64_t first_recorded_ns = 0;
  int64_t last_ack_ns = 0;
  bool failed = false;
  std::function<void()> submit = [&] {
    int64_t n = next++;
    Event e;
    e.document_id = DocName(static_cast<int>(n % cell.documents));
    e.kind = EventKind::kUpdate;
    e.op_id = "op-" + std::to_string(n);
    e.actor_id = "bench-actor";
    e.payload = payload;
    e.created_at = 1'700'000'000'000 + n;
    const int64_t submitted_ns = NowNs();
    log.Append(std::move(e), [&, submitted_ns](Result<AppendResult> r, const Event&) {
      const int64_t now = NowNs();
      if (!r.ok()) {
        if (!failed) out.error = r.status().ToString();
        failed = true;
        return;
      }
      if (submitted_ns >= record_from_ns) {
        if (recorded_acks == 0) first_recorded_ns = submitted_ns;
        out.ack.Record(now - submitted_ns);
        recorded_acks += 1;
        last_ack_ns = now;
      }
      if (now < end_ns && !failed) submit();
    });
  };
  for (int i = 0; i < options.window; ++i) submit();
  uv_run(&loop, UV_RUN_DEFAULT);
  bool closed = false;
  log.Close([&] { closed = true; });
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  out.cpu_ns = CpuNs() - start_cpu;
  out.all_appends = next;
  out.appends = recorded_acks;
  out.seconds = (last_ack_ns - first_recorded_ns) / 1e9;
  if (!closed && out.error.empty()) out.error = "close did not complete";
  return out;
}

// ---- --schema-compare: raw SQLite, no Quire code ----

struct SchemaOutcome {
  std::string schema;
  int per_commit = 0;
  double rows_per_s = 0;
  double cpu_us_per_row = 0;
};

// Inserts `total_rows` 64-byte rows for 100 interleaved documents, `per_commit` rows per
// transaction, with synchronous=NORMAL (so that the disk's fsync latency does not hide the
// CPU cost), and returns rows/s and CPU us/row.
//  - text-keys:     rowid table, UNIQUE (document_id TEXT, seq) and (document_id, op_id)
//  - integer-keys:  the same with an INTEGER document key (schema v2, what the log uses)
//  - without-rowid: PRIMARY KEY (document_id, seq) WITHOUT ROWID, UNIQUE (document_id, op_id)
SchemaOutcome CompareSchema(const std::string& schema, const std::string& dir, int total_rows,
                            int per_commit) {
  const std::string path = dir + "/schema-" + schema + "-" + std::to_string(per_commit) + ".db";
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536",
               nullptr, nullptr, nullptr);
  const bool int_keys = schema == "integer-keys";
  if (schema == "without-rowid") {
    sqlite3_exec(db,
                 "CREATE TABLE t (d TEXT, seq INTEGER, op TEXT, p BLOB, PRIMARY KEY (d, seq)) "
                 "WITHOUT ROWID; CREATE UNIQUE INDEX t_op ON t (d, op)",
                 nullptr, nullptr, nullptr);
  } else {
    std::string type = int_keys ? "INTEGER" : "TEXT";
    sqlite3_exec(db,
                 ("CREATE TABLE t (id INTEGER PRIMARY KEY, d " + type +
                  ", seq INTEGER, op TEXT, p BLOB); CREATE UNIQUE INDEX t_seq ON t (d, seq); "
                  "CREATE UNIQUE INDEX t_op ON t (d, op)")
                     .c_str(),
                 nullptr, nullptr, nullptr);
  }
  sqlite3_stmt* ins = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO t (d, seq, op, p) VALUES (?, ?, ?, ?)", -1, &ins, nullptr);
  const std::vector<uint8_t> payload(64, 0x5a);
  std::vector<int64_t> seqs(100, 0);
  const int64_t start = NowNs();
  const int64_t start_cpu = CpuNs();
  for (int row = 0; row < total_rows;) {
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    for (int i = 0; i < per_commit && row < total_rows; ++i, ++row) {
      int d = row % 100;
      std::string doc = DocName(d);
      std::string op = "op-" + std::to_string(row);
      if (int_keys) {
        sqlite3_bind_int64(ins, 1, d);
      } else {
        sqlite3_bind_text(ins, 1, doc.c_str(), -1, SQLITE_TRANSIENT);
      }
      sqlite3_bind_int64(ins, 2, ++seqs[d]);
      sqlite3_bind_text(ins, 3, op.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_blob(ins, 4, payload.data(), static_cast<int>(payload.size()), SQLITE_STATIC);
      sqlite3_step(ins);
      sqlite3_reset(ins);
    }
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  }
  const double seconds = (NowNs() - start) / 1e9;
  const double cpu_us = (CpuNs() - start_cpu) / 1e3;
  sqlite3_finalize(ins);
  sqlite3_close(db);
  return {schema, per_commit, total_rows / seconds, cpu_us / total_rows};
}

// The disk's fdatasync latency for a 4 KiB overwrite: the floor under every FULL commit.
LatencyHistogram ProbeFsync(const std::string& dir, int count) {
  LatencyHistogram h;
  const std::string path = dir + "/fsync-probe.bin";
  int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (fd < 0) return h;
  char block[4096] = {1};
  for (int i = 0; i < count; ++i) {
    int64_t start = NowNs();
    if (pwrite(fd, block, sizeof block, (i % 16) * 4096) != sizeof block) break;
    if (fdatasync(fd) != 0) break;
    h.Record(NowNs() - start);
  }
  close(fd);
  unlink(path.c_str());
  return h;
}

double LoadAverage() {
  double load[1] = {0};
  return getloadavg(load, 1) == 1 ? load[0] : -1;
}

bool ParseArgs(int argc, char** argv, Options& options) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* prefix) { return a.substr(std::string(prefix).size()); };
    if (a == "--quick") {
      options.quick = true;
    } else if (a == "--schema-compare") {
      options.schema_compare = true;
    } else if (a.rfind("--seconds=", 0) == 0) {
      options.seconds = std::stod(value("--seconds="));
    } else if (a.rfind("--window=", 0) == 0) {
      options.window = std::stoi(value("--window="));
    } else if (a.rfind("--only=", 0) == 0) {
      options.only = value("--only=");
    } else if (a.rfind("--dir=", 0) == 0) {
      options.dir = value("--dir=");
    } else if (a.rfind("--json=", 0) == 0) {
      options.json_path = value("--json=");
    } else {
      std::fprintf(stderr,
                   "usage: append_bench [--quick] [--seconds=S] [--window=N] [--dir=PATH] "
                   "[--json=PATH] [--schema-compare] [--only=BACKEND/DOCS/PAYLOAD]\n");
      return false;
    }
  }
  return true;
}

int Main(int argc, char** argv) {
  Options options;
  if (!ParseArgs(argc, argv, options)) return 2;
  if (options.quick) options.seconds = std::min(options.seconds, 0.25);
  std::string made_dir;
  if (options.dir.empty()) {
    char tmpl[] = "/tmp/quire-append-bench-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return 2;
    options.dir = made_dir = tmpl;
  }
  if (options.json_path.empty()) {
    options.json_path = std::string(QUIRE_SOURCE_DIR) + "/benchmarks/results/append_bench.json";
  }

  std::vector<Cell> cells;
  for (std::string backend : {"memory", "sqlite-full", "sqlite-normal"}) {
    for (int docs : {1, 10, 100, 1000}) {
      for (int payload : {64, 1024}) cells.push_back({backend, docs, payload});
    }
  }
  std::printf("append_bench: %.2f s per cell, window %d appends in flight, files in %s\n",
              options.seconds, options.window, options.dir.c_str());
  const LatencyHistogram fsync = ProbeFsync(options.dir, options.quick ? 20 : 100);
  const double load_before = LoadAverage();
  std::printf("disk: 4 KiB write + fdatasync p50 %.3f ms, p99 %.3f ms; load average %.2f on %u "
              "cores\n",
              fsync.Quantile(0.5) / 1e6, fsync.Quantile(0.99) / 1e6, load_before,
              std::thread::hardware_concurrency());
  std::printf("%-14s %5s %7s %12s %10s %10s %10s %10s %10s %8s %8s\n", "backend", "docs", "payload",
              "appends/s", "commit50", "commit99", "commitMax", "ack50", "ack99", "batch", "cpu/app");
  nlohmann::json results = nlohmann::json::array();
  int index = 0;
  for (const Cell& cell : cells) {
    const std::string name = cell.backend + "/" + std::to_string(cell.documents) + "/" +
                             std::to_string(cell.payload);
    if (!options.only.empty() && name.find(options.only) == std::string::npos) continue;
    Outcome o = RunCell(cell, options, index++);
    auto ms = [](int64_t ns) { return ns / 1e6; };
    if (!o.error.empty()) {
      std::printf("%-14s %5d %7d  error: %s\n", cell.backend.c_str(), cell.documents,
                  cell.payload, o.error.c_str());
    } else {
      std::printf("%-14s %5d %7d %12.0f %8.3fms %8.3fms %8.3fms %8.3fms %8.3fms %8.1f %6.2fus\n",
                  cell.backend.c_str(), cell.documents, cell.payload, o.rate(),
                  ms(o.commit.Quantile(0.5)), ms(o.commit.Quantile(0.99)), ms(o.commit.max()),
                  ms(o.ack.Quantile(0.5)), ms(o.ack.Quantile(0.99)), o.mean_batch(),
                  o.cpu_us_per_append());
    }
    std::fflush(stdout);
    results.push_back({{"backend", cell.backend},
                       {"documents", cell.documents},
                       {"payload_bytes", cell.payload},
                       {"appends", o.appends},
                       {"seconds", o.seconds},
                       {"appends_per_s", o.rate()},
                       {"batches", o.batches},
                       {"mean_batch", o.mean_batch()},
                       {"commit_p50_ms", ms(o.commit.Quantile(0.5))},
                       {"commit_p99_ms", ms(o.commit.Quantile(0.99))},
                       {"commit_max_ms", ms(o.commit.max())},
                       {"ack_p50_ms", ms(o.ack.Quantile(0.5))},
                       {"ack_p99_ms", ms(o.ack.Quantile(0.99))},
                       {"cpu_us_per_append", o.cpu_us_per_append()},
                       {"error", o.error}});
  }
  nlohmann::json doc = {{"benchmark", "append_bench"},
                        {"seconds_per_cell", options.seconds},
                        {"window", options.window},
                        {"quick", options.quick},
                        {"fdatasync_p50_ms", fsync.Quantile(0.5) / 1e6},
                        {"fdatasync_p99_ms", fsync.Quantile(0.99) / 1e6},
                        {"load_average_before", load_before},
                        {"load_average_after", LoadAverage()},
                        {"cores", std::thread::hardware_concurrency()},
                        {"cells", results}};
  if (options.schema_compare) {
    int rows = options.quick ? 20'000 : 200'000;
    std::printf("\nschema compare: raw SQLite, 100 interleaved documents, synchronous=NORMAL, "
                "%d rows of 64 B\n", rows);
    nlohmann::json schemas = nlohmann::json::array();
    for (int per_commit : {100, 1000}) {
      for (std::string schema : {"text-keys", "integer-keys", "without-rowid"}) {
        SchemaOutcome s = CompareSchema(schema, options.dir, rows, per_commit);
        std::printf("%-14s %5d rows/commit %12.0f rows/s %8.2f us CPU/row\n", s.schema.c_str(),
                    per_commit, s.rows_per_s, s.cpu_us_per_row);
        schemas.push_back({{"schema", s.schema},
                           {"rows_per_commit", per_commit},
                           {"rows_per_s", s.rows_per_s},
                           {"cpu_us_per_row", s.cpu_us_per_row}});
      }
    }
    doc["schema_compare"] = schemas;
  }
  std::filesystem::create_directories(std::filesystem::path(options.json_path).parent_path());
  std::ofstream(options.json_path) << doc.dump(2) << "\n";
  std::printf("wrote %s\n", options.json_path.c_str());
  if (!made_dir.empty()) std::filesystem::remove_all(made_dir);
  return 0;
}

}  // namespace
}  // namespace quire::bench

int main(int argc, char** argv) { return quire::bench::Main(argc, argv); }
