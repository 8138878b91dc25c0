// replay_bench: how long `quire replay` takes to rebuild every projection from a log of
// 1M updates (1000 documents x 1000 updates of 64 bytes, interleaved as a busy server writes
// them). Three scenarios: `opaque` documents without snapshots (every update is in a head-state
// tail), `automerge` documents folded every 200 updates (the server's default cadence;
// every snapshot is re-folded and compared byte for byte), and `yjs`, shaped like the S6 log of
// benchmarks/run: the same number of updates in 100 documents, each edited by 10 Yjs clients
// appending one character per update (loadgen_bench's updates), folded every 200 updates by
// the Yjs codec, so a fold re-reads a snapshot that grows with its document. Target: <= 1 s
// per 1M updates.
//
//   replay_bench [--quick] [--docs N] [--updates N] [--payload BYTES] [--yjs-docs N]
//                [--fold-threads N] [--dir DIR] [--keep]
//
// --fold-threads is projection::ReplayOptions::fold_threads (default -1: one when the machine
// has more than one core; 0 folds on the reading thread).
//
// "rebuild" is the pass over every event that rebuilds the catalog and head states and checks
// seq, opId and snapshot folds; "head check" loads every document's head state back through
// the backend's per-document read path (ReadLatestSnapshot + ReadEvents) and compares. CPU
// seconds are reported next to wall time because the machine may be shared.
//
// Prints a table and writes benchmarks/results/replay_bench.json (--quick: ..._quick.json).
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "benchmarks/support/yjs_text_update.h"
#include "core/codec.h"
#include "eventlog/backend.h"
#include "projection/replay.h"

namespace {

using namespace quire;
using eventlog::AppendRequest;
using eventlog::AppendResult;
using eventlog::Backend;
using eventlog::EventKind;

struct Scenario {
  std::string name;
  CrdtKind crdt;
  int64_t snapshot_every;  // 0: no snapshots
  int64_t docs;
  int64_t updates;  // per document
};

constexpr int64_t kYjsEditors = 10;  // Yjs clients per document, as in S6

struct Flags {
  int64_t docs = 1000;
  int64_t updates = 1000;  // per document
  int64_t payload = 64;
  int64_t yjs_docs = 100;
  int fold_threads = -1;
  std::string dir;
  bool keep = false;  // keep the SQLite files (for profiling `quire replay` on them)
};

// User + system CPU time of this process: the machine is shared, wall time is not all ours.
double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return tv(usage.ru_utime) + tv(usage.ru_stime);
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

void Check(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "replay_bench: %s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

// Writes the log straight through the backend in large batches (the write path is measured
// by append_bench; here only the replay is timed).
double WriteLog(const std::string& url, const Scenario& scenario, const Flags& flags,
                int64_t* file_events) {
  eventlog::BackendOptions options;
  options.sync_mode = SyncMode::kNormal;
  auto opened = eventlog::OpenBackend(url, options);
  Check(opened.status(), "open for writing");
  Backend& backend = **opened;
  auto start = std::chrono::steady_clock::now();
  std::vector<AppendRequest> batch;
  constexpr size_t kBatch = 20'000;
  auto flush = [&] {
    if (batch.empty()) return;
    std::vector<AppendResult> results(batch.size());
    std::vector<Status> statuses(batch.size());
    Check(backend.CommitBatch(batch, results, statuses), "commit");
    for (const Status& s : statuses) Check(s, "append");
    *file_events += static_cast<int64_t>(batch.size());
    batch.clear();
  };
  const TimestampMs t0 = 1'700'000'000'000;
  const int64_t docs = scenario.docs;
  for (int64_t d = 0; d < docs; ++d) {
    AppendRequest e;
    e.document_id = "doc-" + std::to_string(d);
    e.kind = EventKind::kCreated;
    e.title = "Document " + std::to_string(d);
    e.crdt = scenario.crdt;
    e.actor_id = "owner";
    e.created_at = t0;
    batch.push_back(std::move(e));
  }
  flush();
  // Per document: the current snapshot and the unfolded updates, to fold like the compactor.
  std::vector<Bytes> snapshot(static_cast<size_t>(docs));
  std::vector<std::vector<Bytes>> unfolded(static_cast<size_t>(docs));
  std::vector<Seq> seq(static_cast<size_t>(docs), 1);
  // yjs: the clock of each document's editors (one character per update).
  std::vector<uint64_t> clocks(static_cast<size_t>(docs * kYjsEditors), 0);
  const Codec& codec = CodecFor(scenario.crdt);
  for (int64_t u = 0; u < scenario.updates; ++u) {
    for (int64_t d = 0; d < docs; ++d) {
      AppendRequest e;
      e.document_id = "doc-" + std::to_string(d);
      e.kind = EventKind::kUpdate;
      e.op_id = "op-" + std::to_string(u);
      e.actor_id = "actor-" + std::to_string(d % 16);
      if (scenario.crdt == CrdtKind::kYjs) {
        const int64_t editor = d * kYjsEditors + u % kYjsEditors;
        uint64_t& clock = clocks[static_cast<size_t>(editor)];
        std::string text(1, static_cast<char>('a' + clock % 26));
        std::string update = bench::YjsTextInsert(static_cast<uint64_t>(1 + editor), clock, text);
        clock += 1;
        e.payload.assign(update.begin(), update.end());
      } else {
        e.payload.resize(static_cast<size_t>(flags.payload));
        for (size_t i = 0; i < e.payload.size(); ++i) {
          e.payload[i] = static_cast<uint8_t>((u * 131 + d * 7 + static_cast<int64_t>(i)) & 0xFF);
        }
      }
      e.created_at = t0 + u;
      seq[d] += 1;
      if (scenario.snapshot_every > 0) unfolded[d].push_back(e.payload);
      batch.push_back(std::move(e));
      if (scenario.snapshot_every > 0 &&
          static_cast<int64_t>(unfolded[d].size()) >= scenario.snapshot_every) {
        std::vector<ByteView> views(unfolded[d].begin(), unfolded[d].end());
        auto folded = codec.Fold(snapshot[d], views);
        Check(folded.status(), "fold");
        snapshot[d] = std::move(folded).value();
        unfolded[d].clear();
        AppendRequest s;
        s.document_id = "doc-" + std::to_string(d);
        s.kind = EventKind::kSnapshot;
        s.version = seq[d];
        s.payload = snapshot[d];
        s.actor_id = "quire-compactor";
        s.created_at = t0 + u;
        seq[d] += 1;
        batch.push_back(std::move(s));
      }
      if (batch.size() >= kBatch) flush();
    }
  }
  flush();
  return Seconds(std::chrono::steady_clock::now() - start);
}

nlohmann::json RunScenario(const Scenario& scenario, const Flags& flags) {
  std::string path = flags.dir + "/replay-" + scenario.name + ".db";
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  std::string url = "sqlite:///" + path;
  int64_t events_written = 0;
  double write_s = WriteLog(url, scenario, flags, &events_written);

  eventlog::BackendOptions options;
  options.read_only = true;
  nlohmann::json runs = nlohmann::json::array();
  projection::ReplayReport last;
  double best = 0, best_scan = 0, best_head = 0, best_cpu = 0;
  for (int run = 0; run < 3; ++run) {
    double cpu_before = CpuSeconds();
    auto opened = eventlog::OpenBackend(url, options);
    Check(opened.status(), "open read-only");
    projection::ReplayOptions replay_options;
    replay_options.fold_threads = flags.fold_threads;
    auto report = projection::Replay(**opened, replay_options);
    Check(report.status(), "replay");
    double cpu = CpuSeconds() - cpu_before;
    if (!report->clean()) {
      std::fprintf(stderr, "replay_bench: the log is not clean (%lld violations): %s\n",
                   static_cast<long long>(report->violation_count),
                   report->violations.empty() ? "" : report->violations[0].message.c_str());
      std::exit(1);
    }
    double total = static_cast<double>(report->elapsed_ns) / 1e9;
    double scan = static_cast<double>(report->scan_ns) / 1e9;
    double head = static_cast<double>(report->head_check_ns) / 1e9;
    runs.push_back({{"seconds", total},
                    {"scan_seconds", scan},
                    {"head_check_seconds", head},
                    {"cpu_seconds", cpu}});
    if (run == 0 || total < best) {
      best = total;
      best_scan = scan;
      best_head = head;
      best_cpu = cpu;
    }
    last = std::move(report).value();
  }
  int64_t file_bytes = static_cast<int64_t>(std::filesystem::file_size(path));
  double millions = static_cast<double>(last.updates) / 1e6;
  std::printf("%-10s %6lld %9lld %9lld %9.1f %8.1f  %7.3f %7.3f %7.3f %7.3f  %8.3f %8.3f\n",
              scenario.name.c_str(), static_cast<long long>(last.documents),
              static_cast<long long>(last.updates), static_cast<long long>(last.snapshots),
              static_cast<double>(last.bytes) / 1e6, static_cast<double>(file_bytes) / 1e6, best,
              best_scan, best_head, best_cpu, best / millions, best_scan / millions);
  std::fflush(stdout);
  if (!flags.keep) {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  }
  return {{"scenario", scenario.name},
          {"crdt", std::string(CrdtKindName(scenario.crdt))},
          {"snapshot_every", scenario.snapshot_every},
          {"documents", last.documents},
          {"events", last.events},
          {"updates", last.updates},
          {"snapshots", last.snapshots},
          {"folds_checked", last.folds_checked},
          {"payload_bytes", last.bytes},
          {"file_bytes", file_bytes},
          {"write_seconds", write_s},
          {"runs", runs},
          {"best_replay_seconds", best},
          {"best_rebuild_seconds", best_scan},
          {"best_head_check_seconds", best_head},
          {"best_cpu_seconds", best_cpu},
          {"replay_seconds_per_million_updates", best / millions},
          {"rebuild_seconds_per_million_updates", best_scan / millions},
          {"target_seconds_per_million_updates", 1.0},
          {"replay_meets_target", best / millions <= 1.0},
          {"rebuild_meets_target", best_scan / millions <= 1.0}};
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "replay_bench: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--quick") {
      quick = true;
      flags.docs = 100;
      flags.updates = 400;
      flags.yjs_docs = 10;
    } else if (arg == "--docs") {
      flags.docs = std::stoll(next());
    } else if (arg == "--updates") {
      flags.updates = std::stoll(next());
    } else if (arg == "--payload") {
      flags.payload = std::stoll(next());
    } else if (arg == "--yjs-docs") {
      flags.yjs_docs = std::stoll(next());
    } else if (arg == "--fold-threads") {
      flags.fold_threads = std::stoi(next());
    } else if (arg == "--dir") {
      flags.dir = next();
    } else if (arg == "--keep") {
      flags.keep = true;
    } else {
      std::fprintf(stderr,
                   "usage: replay_bench [--quick] [--docs N] [--updates N] [--payload BYTES] "
                   "[--yjs-docs N] [--fold-threads N] [--dir DIR] [--keep]\n");
      return arg == "--help" ? 0 : 2;
    }
  }
  std::string made_dir;
  if (flags.dir.empty()) {
    char tmpl[] = "/tmp/quire-replay-bench-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return 1;
    made_dir = flags.dir = tmpl;
  }
  std::printf("replay_bench: %lld documents x %lld updates of %lld bytes (SQLite file in %s)\n",
              static_cast<long long>(flags.docs), static_cast<long long>(flags.updates),
              static_cast<long long>(flags.payload), flags.dir.c_str());
  std::printf("%-10s %6s %9s %9s %9s %8s  %7s %7s %7s %7s  %8s %8s\n", "scenario", "docs",
              "updates", "snapshots", "payloadMB", "fileMB", "replay", "rebuild", "headchk",
              "cpu s", "s/1M", "rb s/1M");
  const int64_t total = flags.docs * flags.updates;
  std::vector<Scenario> scenarios{
      {"opaque", CrdtKind::kOpaque, 0, flags.docs, flags.updates},
      {"automerge", CrdtKind::kAutomerge, 200, flags.docs, flags.updates},
      {"yjs", CrdtKind::kYjs, 200, flags.yjs_docs, total / std::max<int64_t>(1, flags.yjs_docs)}};
  nlohmann::json results = nlohmann::json::array();
  for (const Scenario& s : scenarios) results.push_back(RunScenario(s, flags));
  if (!made_dir.empty() && !flags.keep) std::filesystem::remove_all(made_dir);

  double load[3] = {0, 0, 0};
  getloadavg(load, 3);  // the machine is shared: say how busy it was
  nlohmann::json out = {{"benchmark", "replay_bench"},
                        {"load_average_1m_at_end", load[0]},
                        {"quick", quick},
                        {"documents", flags.docs},
                        {"updates_per_document", flags.updates},
                        {"payload_bytes", flags.payload},
                        {"yjs_documents", flags.yjs_docs},
                        {"fold_threads", flags.fold_threads},
                        {"hardware_threads", std::thread::hardware_concurrency()},
                        {"scenarios", results}};
  std::string dir = std::string(QUIRE_SOURCE_DIR) + "/benchmarks/results";
  std::filesystem::create_directories(dir);
  std::string file = dir + (quick ? "/replay_bench_quick.json" : "/replay_bench.json");
  std::ofstream(file) << out.dump(2) << "\n";
  std::printf("wrote %s\n", file.c_str());
  return 0;
}
