// `quire replay`: rebuilds every projection from the event log and checks its invariants
// (projection/replay.h). This file only parses flags and prints.
#include "projection/replay.h"

#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "cli/commands.h"
#include "core/base64.h"
#include "eventlog/backend.h"
#include "eventlog/document_record.h"
#include "projection/history.h"

namespace quire::cli {
namespace {

constexpr const char* kReplayUsage =
    "usage: quire replay --database-url URL [--document ID] [--fold-threads N] [--json]\n"
    "\n"
    "Opens the event log read-only, rebuilds every projection from the events alone and\n"
    "checks the log's invariants: seq strictly increasing and opId unique per document,\n"
    "snapshots covering at most the head and equal to the fold of their prefix (where the\n"
    "server folds that CRDT), stored catalog rows equal to the rebuilt ones, head state equal\n"
    "to the latest snapshot plus the updates after it.\n"
    "\n"
    "options:\n"
    "  --database-url URL  sqlite:///path/to/file.db or memory:// (default: $DATABASE_URL)\n"
    "  --document ID       check only this document\n"
    "  --until SEQ         with --document: print the document's state summary as of SEQ\n"
    "                      (title, flags, counts and the state bytes; no checks)\n"
    "  --fold-threads N    threads (0-64) that check snapshots against the folds of their\n"
    "                      prefixes while the log is read; 0: all on the reading thread\n"
    "                      (default: 1 when the machine has more than one core)\n"
    "  --json              print one JSON object instead of text\n"
    "  --help              show this text\n"
    "\n"
    "exit status: 0 clean, 1 violations found, 2 unreadable input or bad usage\n";

struct ReplayFlags {
  std::string database_url;
  std::optional<std::string> document;
  std::optional<Seq> until;
  int fold_threads = -1;  // projection::ReplayOptions::fold_threads
  bool json = false;
  bool help = false;
};

// Accepts `--name value` and `--name=value`.
Status ParseReplayFlags(const std::vector<std::string>& args, ReplayFlags& flags) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    std::string_view name = arg;
    std::optional<std::string> value;
    if (auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = std::string(arg.substr(eq + 1));
    }
    auto take = [&]() -> Result<std::string> {
      if (value) return *value;
      if (i + 1 >= args.size())
        return Status::InvalidArgument(std::string(name) + " needs a value");
      return args[++i];
    };
    if (name == "--help" || name == "-h") {
      flags.help = true;
    } else if (name == "--json" && !value) {
      flags.json = true;
    } else if (name == "--database-url") {
      auto v = take();
      if (!v.ok()) return v.status();
      flags.database_url = *v;
    } else if (name == "--document") {
      auto v = take();
      if (!v.ok()) return v.status();
      flags.document = *v;
    } else if (name == "--until") {
      auto v = take();
      if (!v.ok()) return v.status();
      Seq n = 0;
      auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
      if (v->empty() || ec != std::errc() || end != v->data() + v->size() || n < 1) {
        return Status::InvalidArgument("--until needs a positive seq");
      }
      flags.until = n;
    } else if (name == "--fold-threads") {
      auto v = take();
      if (!v.ok()) return v.status();
      int n = 0;
      auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
      if (v->empty() || ec != std::errc() || end != v->data() + v->size() || n < 0 || n > 64) {
        return Status::InvalidArgument("--fold-threads needs a number from 0 to 64");
      }
      flags.fold_threads = n;
    } else {
      return Status::InvalidArgument("unknown option '" + std::string(arg) + "'");
    }
  }
  return Status::Ok();
}

void PrintText(const std::string& url, const projection::ReplayReport& r) {
  std::printf("quire replay %s\n", url.c_str());
  std::printf(
      "documents %lld  events %lld  updates %lld  snapshots %lld  bytes %lld  elapsed %.3f s "
      "(scan %.3f s, head check %.3f s)\n",
      static_cast<long long>(r.documents), static_cast<long long>(r.events),
      static_cast<long long>(r.updates), static_cast<long long>(r.snapshots),
      static_cast<long long>(r.bytes), static_cast<double>(r.elapsed_ns) / 1e9,
      static_cast<double>(r.scan_ns) / 1e9, static_cast<double>(r.head_check_ns) / 1e9);
  std::printf("folds checked %lld  unverifiable (pruned prefix) %lld\n",
              static_cast<long long>(r.folds_checked),
              static_cast<long long>(r.folds_unverifiable));
  for (const projection::ReplayViolation& v : r.violations) {
    std::printf("VIOLATION %s document=%s seq=%lld: %s\n", v.check.c_str(), v.document_id.c_str(),
                static_cast<long long>(v.seq), v.message.c_str());
  }
  if (r.violation_count > static_cast<int64_t>(r.violations.size())) {
    std::printf(
        "... and %lld more\n",
        static_cast<long long>(r.violation_count - static_cast<int64_t>(r.violations.size())));
  }
  if (r.clean()) {
    std::printf("clean\n");
  } else {
    std::printf("%lld violation(s)\n", static_cast<long long>(r.violation_count));
  }
}

void PrintJson(const std::string& url, const projection::ReplayReport& r) {
  nlohmann::json violations = nlohmann::json::array();
  for (const projection::ReplayViolation& v : r.violations) {
    violations.push_back(
        {{"check", v.check}, {"document", v.document_id}, {"seq", v.seq}, {"message", v.message}});
  }
  nlohmann::json out = {{"database_url", url},
                        {"clean", r.clean()},
                        {"documents", r.documents},
                        {"events", r.events},
                        {"updates", r.updates},
                        {"snapshots", r.snapshots},
                        {"bytes", r.bytes},
                        {"folds_checked", r.folds_checked},
                        {"folds_unverifiable", r.folds_unverifiable},
                        {"elapsed_ms", static_cast<double>(r.elapsed_ns) / 1e6},
                        {"scan_ms", static_cast<double>(r.scan_ns) / 1e6},
                        {"head_check_ms", static_cast<double>(r.head_check_ns) / 1e6},
                        {"violation_count", r.violation_count},
                        {"violations", violations}};
  std::printf("%s\n", out.dump(2).c_str());
}

int Unreadable(const ReplayFlags& flags, const std::string& message) {
  if (flags.json) {
    nlohmann::json out = {{"database_url", flags.database_url}, {"error", message}};
    std::printf("%s\n", out.dump(2).c_str());
  }
  std::fprintf(stderr, "quire replay: %s\n", message.c_str());
  return 2;
}

}  // namespace

// `--until SEQ`: the document as of SEQ, rebuilt from its events (the catalog fields by
// eventlog::Apply, the content by projection::ReadStateAt).
int PrintStateUntil(const ReplayFlags& flags, eventlog::Backend& backend) {
  const DocumentId& id = *flags.document;
  const Seq until = *flags.until;
  eventlog::DocumentRecord record;
  Seq after = 0;
  bool found = false;
  while (true) {
    auto events = backend.ReadEvents(id, after, 1000);
    if (!events.ok()) return Unreadable(flags, events.status().ToString());
    for (const eventlog::Event& e : *events) {
      if (e.seq > until) break;
      eventlog::Apply(record, e);
      found = true;
    }
    if (events->size() < 1000 || events->back().seq >= until) break;
    after = events->back().seq;
  }
  if (!found) return Unreadable(flags, "no document " + id + " in the log");
  auto head = backend.ReadEvents(id, until, 1);
  if (!head.ok()) return Unreadable(flags, head.status().ToString());
  auto state = projection::ReadStateAt(backend, id, record.crdt, until);
  if (!state.ok()) return Unreadable(flags, state.status().ToString());
  nlohmann::json out = {
      {"document", id},
      {"until", until},
      {"seq", record.head_seq},
      {"title", record.title},
      {"crdt", std::string(CrdtKindName(record.crdt))},
      {"deleted", record.deleted()},
      {"update_count", record.update_count},
      {"update_bytes", record.update_bytes},
      {"snapshot_version", record.snapshot_version},
      {"later_events", !head->empty()},
      {"pruned_through", state->retention.pruned_through},
      {"oldest_state_seq", state->retention.oldest_state_seq},
      {"retained", state->state.has_value()},
  };
  if (state->state) {
    out["state_bytes"] = state->state->snapshot.size();
    out["state_snapshot_version"] = state->state->snapshot_version;
    out["state_updates"] = state->state->updates.size();
  }
  if (flags.json) {
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("quire replay %s --document %s --until %lld\n", flags.database_url.c_str(),
                id.c_str(), static_cast<long long>(until));
    std::printf("seq %lld  title \"%s\"  crdt %s  deleted %s\n",
                static_cast<long long>(record.head_seq), record.title.c_str(),
                std::string(CrdtKindName(record.crdt)).c_str(), record.deleted() ? "yes" : "no");
    std::printf("updates %lld (%lld bytes counted in the catalog fold)  snapshot version %lld\n",
                static_cast<long long>(record.update_count),
                static_cast<long long>(record.update_bytes),
                static_cast<long long>(record.snapshot_version));
    if (state->state) {
      std::printf("state %zu bytes (snapshot version %lld + %zu updates)\n",
                  state->state->snapshot.size(),
                  static_cast<long long>(state->state->snapshot_version),
                  state->state->updates.size());
    } else {
      std::printf("state not retained (oldest available seq %lld)\n",
                  static_cast<long long>(state->retention.oldest_state_seq));
    }
  }
  return state->state ? 0 : 1;
}

int Replay(const std::vector<std::string>& args) {
  ReplayFlags flags;
  if (Status s = ParseReplayFlags(args, flags); !s.ok()) {
    std::fprintf(stderr, "quire replay: %s\n\n%s", s.message().c_str(), kReplayUsage);
    return 2;
  }
  if (flags.help) {
    std::fputs(kReplayUsage, stdout);
    return 0;
  }
  if (flags.database_url.empty()) {
    const char* env = std::getenv("DATABASE_URL");
    if (env == nullptr || *env == '\0') {
      std::fprintf(stderr, "quire replay: --database-url is required\n\n%s", kReplayUsage);
      return 2;
    }
    flags.database_url = env;
  }
  // Read-only must not create a missing file; say so plainly rather than through SQLite.
  constexpr std::string_view kSqlite = "sqlite:///";
  if (std::string_view(flags.database_url).starts_with(kSqlite)) {
    std::string path = flags.database_url.substr(kSqlite.size());
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      return Unreadable(flags, "no database file at " + path);
    }
  }
  eventlog::BackendOptions options;
  options.read_only = true;
  auto backend = eventlog::OpenBackend(flags.database_url, options);
  if (!backend.ok()) return Unreadable(flags, backend.status().ToString());

  if (flags.until) {
    if (!flags.document) {
      std::fprintf(stderr, "quire replay: --until needs --document\n\n%s", kReplayUsage);
      return 2;
    }
    return PrintStateUntil(flags, **backend);
  }
  projection::ReplayOptions replay_options;
  replay_options.document = flags.document;
  replay_options.fold_threads = flags.fold_threads;
  const bool progress = isatty(STDERR_FILENO) == 1;
  if (progress) {
    replay_options.progress = [](int64_t events) {
      std::fprintf(stderr, "\rreplay: %lld events", static_cast<long long>(events));
      std::fflush(stderr);
    };
  }
  auto report = projection::Replay(**backend, replay_options);
  if (progress && report.ok() && report->events >= replay_options.progress_every) {
    std::fputs("\n", stderr);
  }
  if (!report.ok()) return Unreadable(flags, report.status().ToString());
  if (flags.document && report->documents == 0) {
    return Unreadable(flags, "no document " + *flags.document + " in the log");
  }
  if (flags.json) {
    PrintJson(flags.database_url, *report);
  } else {
    PrintText(flags.database_url, *report);
  }
  return report->clean() ? 0 : 1;
}

}  // namespace quire::cli
