// yjs_merge_bench: Quire's Yjs merge against Y.mergeUpdates (npm yjs in Node) on a real editing
// trace, on the same machine in one run.
//
// The trace benchmarks/data/automerge-paper.json.gz (259,778 edits) is converted into one Yjs
// update per edit by benchmarks/js/yjs_trace.js (checked against the trace's endContent; cached
// next to this binary). Then:
//  - whole: Quire merges all updates (best of 3);
//  - prefix: both merge the first --prefix updates (Y.mergeUpdates is quadratic on this input:
//    ~5 s for 20,000 updates, so the whole trace is out of reach); the ratio is Node / Quire,
//    and the outputs are compared byte for byte;
//  - folds: --folds folds of 200 consecutive updates at the same positions in both, median and
//    p99;
//  - memory: the whole-trace merge in a forked child, peak RSS above the RSS before it (the
//    inputs are loaded before), against the output size.
// The whole-trace merge is also applied by yjs and checked against endContent.
// Needs node and `npm install` in benchmarks/js. Writes benchmarks/results/yjs_merge_bench.json,
// except with --quick (a smaller run to check the benchmark works, which would overwrite the
// recorded figures with its own).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/yjs/update.h"

namespace {

using quire::Bytes;
using quire::ByteView;
using Clock = std::chrono::steady_clock;

constexpr size_t kFoldSize = 200;

int64_t Ns(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count();
}

std::string Run(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  if (pclose(p) != 0) {
    std::fprintf(stderr, "yjs_merge_bench: failed: %s\n", command.c_str());
    std::exit(1);
  }
  return out;
}

// VmRSS / VmHWM of this process in bytes.
int64_t StatusBytes(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::stoll(line.substr(std::strlen(field))) * 1024;
  }
  return -1;
}

struct Trace {
  Bytes storage;
  std::vector<ByteView> updates;
};

Trace Load(const std::string& path) {
  Trace t;
  std::ifstream in(path, std::ios::binary);
  t.storage.assign(std::istreambuf_iterator<char>(in), {});
  for (size_t at = 0; at + 4 <= t.storage.size();) {
    uint32_t n = t.storage[at] | (t.storage[at + 1] << 8) | (t.storage[at + 2] << 16) |
                 (uint32_t{t.storage[at + 3]} << 24);
    t.updates.emplace_back(t.storage.data() + at + 4, n);
    at += 4 + n;
  }
  return t;
}

Bytes Merge(std::span<const ByteView> updates) {
  auto merged = quire::yjs::MergeUpdates(updates);
  if (!merged.ok()) {
    std::fprintf(stderr, "merge failed: %s\n", merged.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(*merged);
}

// Peak RSS added by merging everything, measured in a child so that nothing else counts.
nlohmann::json MeasureMemory(const Trace& t) {
  int fds[2];
  if (pipe(fds) != 0) return nullptr;
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    { std::ofstream("/proc/self/clear_refs") << "5"; }  // reset VmHWM to the current RSS
    int64_t base = StatusBytes("VmRSS:");
    Bytes merged = Merge(t.updates);
    int64_t peak = StatusBytes("VmHWM:");
    int64_t out[3] = {base, peak, static_cast<int64_t>(merged.size())};
    ssize_t w = write(fds[1], out, sizeof out);
    _exit(w == sizeof out ? 0 : 1);
  }
  close(fds[1]);
  int64_t in[3] = {0, 0, 0};
  ssize_t r = read(fds[0], in, sizeof in);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (r != sizeof in) return nullptr;
  const double extra = static_cast<double>(in[1] - in[0]);
  return {{"rss_before_bytes", in[0]},
          {"peak_rss_bytes", in[1]},
          {"peak_extra_rss_bytes", in[1] - in[0]},
          {"output_bytes", in[2]},
          {"peak_extra_over_output", extra / static_cast<double>(in[2])}};
}

}  // namespace

int main(int argc, char** argv) {
  size_t prefix = 20000;
  size_t folds = 200;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--prefix" && i + 1 < argc)
      prefix = std::stoul(argv[++i]);
    else if (a == "--folds" && i + 1 < argc)
      folds = std::stoul(argv[++i]);
    else if (a == "--quick")
      prefix = 5000, folds = 50, quick = true;
    else {
      std::fprintf(stderr, "usage: yjs_merge_bench [--prefix N] [--folds N] [--quick]\n");
      return 2;
    }
  }
  const std::string src = QUIRE_SOURCE_DIR;
  const std::string js = src + "/benchmarks/js/yjs_trace.js";
  const std::filesystem::path cache =
      std::filesystem::canonical("/proc/self/exe").parent_path() / "yjs_trace_updates.bin";
  if (!std::filesystem::exists(cache)) {
    std::printf("converting the trace with npm yjs...\n");
    std::fflush(stdout);
    Run("node " + js + " convert " + src + "/benchmarks/data/automerge-paper.json.gz " +
        cache.string() + ".tmp");
    std::filesystem::rename(cache.string() + ".tmp", cache);
  }
  const Trace t = Load(cache);
  prefix = std::min(prefix, t.updates.size());
  std::printf("%zu updates (%zu bytes)\n", t.updates.size(), t.storage.size());

  // First, while the heap holds nothing freed that the merge could reuse unseen.
  nlohmann::json memory = MeasureMemory(t);

  // Whole trace.
  int64_t whole_ns = INT64_MAX;
  bool whole_matches = false;
  size_t whole_bytes = 0;
  for (int i = 0; i < 3; ++i) {
    auto t0 = Clock::now();
    Bytes merged = Merge(t.updates);
    whole_ns = std::min(whole_ns, Ns(t0, Clock::now()));
    whole_bytes = merged.size();
  }

  {
    // The whole-trace merge, applied by yjs, must give the trace's final text.
    const std::string whole_file = cache.string() + ".quire_whole";
    Bytes merged = Merge(t.updates);
    std::ofstream(whole_file, std::ios::binary)
        .write(reinterpret_cast<const char*>(merged.data()),
               static_cast<std::streamsize>(merged.size()));
    auto checked = nlohmann::json::parse(Run(
        "node " + js + " check " + src + "/benchmarks/data/automerge-paper.json.gz " + whole_file));
    whole_matches = checked["end_content_matches"].get<bool>();
    std::filesystem::remove(whole_file);
  }

  // Prefix (the part Y.mergeUpdates can do in reasonable time).
  std::span<const ByteView> part(t.updates.data(), prefix);
  int64_t prefix_ns = INT64_MAX;
  Bytes prefix_merged;
  for (int i = 0; i < 3; ++i) {
    auto t0 = Clock::now();
    prefix_merged = Merge(part);
    prefix_ns = std::min(prefix_ns, Ns(t0, Clock::now()));
  }
  const std::string prefix_file = cache.string() + ".quire_prefix";
  std::ofstream(prefix_file, std::ios::binary)
      .write(reinterpret_cast<const char*>(prefix_merged.data()),
             static_cast<std::streamsize>(prefix_merged.size()));

  // Folds of 200 at the positions yjs_trace.js uses.
  std::vector<int64_t> fold_ns;
  const size_t span = t.updates.size() - kFoldSize;
  const size_t stride = std::max(kFoldSize, span / folds);
  for (size_t i = 0; i < folds; ++i) {
    size_t start = (i * stride) % span;
    std::span<const ByteView> group(t.updates.data() + start, kFoldSize);
    auto t0 = Clock::now();
    Bytes merged = Merge(group);
    fold_ns.push_back(Ns(t0, Clock::now()));
  }
  std::sort(fold_ns.begin(), fold_ns.end());

  // The compactor's fold late in a large document: the snapshot of every update but the last
  // 200, then those 200 (the server's Fold(snapshot, updates) re-reads the whole snapshot).
  const size_t late_at = t.updates.size() - kFoldSize;
  const Bytes late_snapshot = Merge(std::span<const ByteView>(t.updates.data(), late_at));
  std::vector<ByteView> late_input{ByteView(late_snapshot)};
  late_input.insert(late_input.end(), t.updates.begin() + static_cast<std::ptrdiff_t>(late_at),
                    t.updates.end());
  std::vector<int64_t> late_ns;
  for (int i = 0; i < 9; ++i) {
    auto t0 = Clock::now();
    Bytes merged = Merge(late_input);
    late_ns.push_back(Ns(t0, Clock::now()));
  }
  std::sort(late_ns.begin(), late_ns.end());
  const double late_median_ms = static_cast<double>(late_ns[late_ns.size() / 2]) / 1e6;

  // Node on the same machine, same inputs.
  nlohmann::json node = nlohmann::json::parse(
      Run("node " + js + " bench " + cache.string() + " " + std::to_string(prefix) + " " +
          std::to_string(kFoldSize) + " " + std::to_string(folds) + " " + prefix_file));

  const double fold_median_us = static_cast<double>(fold_ns[fold_ns.size() / 2]) / 1e3;
  const double fold_p99_us = static_cast<double>(fold_ns[fold_ns.size() * 99 / 100]) / 1e3;
  const double prefix_ratio = node["whole_ns"].get<double>() / static_cast<double>(prefix_ns);
  const double fold_ratio =
      node["fold_median_ns"].get<double>() / static_cast<double>(fold_ns[fold_ns.size() / 2]);
  double load1 = 0;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &load1) != 1) load1 = 0;
    std::fclose(f);
  }

  std::printf("whole trace: Quire %.1f ms for %zu updates -> %zu bytes (endContent %s)\n",
              static_cast<double>(whole_ns) / 1e6, t.updates.size(), whole_bytes,
              whole_matches ? "matches" : "DIFFERS");
  std::printf("prefix of %zu: Quire %.2f ms, Y.mergeUpdates %.1f ms: %.0fx faster (bytes %s)\n",
              prefix, static_cast<double>(prefix_ns) / 1e6, node["whole_ns"].get<double>() / 1e6,
              prefix_ratio, node["identical_to_quire"].get<bool>() ? "identical" : "DIFFER");
  std::printf(
      "fold of %zu: Quire median %.1f us (p99 %.1f), Y.mergeUpdates median %.1f us: %.1fx\n",
      kFoldSize, fold_median_us, fold_p99_us, node["fold_median_ns"].get<double>() / 1e3,
      fold_ratio);
  std::printf("compactor fold of %zu onto a %zu-byte snapshot: Quire median %.2f ms\n", kFoldSize,
              late_snapshot.size(), late_median_ms);
  if (!memory.is_null()) {
    std::printf("memory: whole-trace merge peak +%.1f MB RSS for a %.1f MB output (%.2fx)\n",
                memory["peak_extra_rss_bytes"].get<double>() / 1e6,
                memory["output_bytes"].get<double>() / 1e6,
                memory["peak_extra_over_output"].get<double>());
  }

  nlohmann::json out = {
      {"trace", "automerge-paper"},
      {"updates", t.updates.size()},
      {"input_bytes", t.storage.size() - 4 * t.updates.size()},
      {"whole",
       {{"quire_ns", whole_ns},
        {"output_bytes", whole_bytes},
        {"applied_by_yjs_gives_end_content", whole_matches}}},
      {"prefix",
       {{"updates", prefix},
        {"quire_ns", prefix_ns},
        {"yjs_ns", node["whole_ns"]},
        {"speedup", prefix_ratio},
        {"output_bytes", prefix_merged.size()},
        {"identical_bytes", node["identical_to_quire"]}}},
      {"fold200",
       {{"folds", folds},
        {"quire_median_us", fold_median_us},
        {"quire_p99_us", fold_p99_us},
        {"yjs_median_us", node["fold_median_ns"].get<double>() / 1e3},
        {"yjs_p99_us", node["fold_p99_ns"].get<double>() / 1e3},
        {"speedup", fold_ratio}}},
      {"late_fold",
       {{"snapshot_bytes", late_snapshot.size()},
        {"updates", kFoldSize},
        {"quire_median_ms", late_median_ms}}},
      {"memory", memory},
      {"node", node["node"]},
      {"load1", load1},
      {"targets",
       {{"whole_speedup_ge_5", prefix_ratio >= 5},
        {"fold200_median_le_200us", fold_median_us <= 200},
        {"peak_memory_le_3x_output",
         !memory.is_null() && memory["peak_extra_over_output"].get<double>() <= 3}}},
  };
  const std::string result = src + "/benchmarks/results/yjs_merge_bench.json";
  if (quick) {
    std::printf("--quick: %s left as it was\n", result.c_str());
    return 0;
  }
  std::ofstream(result) << out.dump(2) << "\n";
  std::printf("wrote %s\n", result.c_str());
  return 0;
}
