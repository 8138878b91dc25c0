// Backpressure and storage failure on /ws/documents/{id}, end to end.
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <thread>
#include <vector>

#include "core/base64.h"
#include "core/types.h"
#include "io/internal/batch_send.h"
#include "tests/support/ws_harness.h"

namespace quire::test {
namespace {

using nlohmann::json;

// Sends updates "op-0" ... "op-<count - 1>" (payload(i) each) with at most `window` of them
// unacknowledged, as an editor does, and waits for every ack.
void SendAcknowledged(WsClient& writer, int count, int window,
                      const std::function<const std::string&(int)>& payload) {
  int acks = 0;
  for (int i = 0; i < count; ++i) {
    REQUIRE(writer.SendJson(UpdateMessage("op-" + std::to_string(i), payload(i))).ok());
    while (i + 1 - acks > window) {
      REQUIRE(writer.NextOfType("ack", 10000).ok());
      ++acks;
    }
  }
  while (acks < count) {
    REQUIRE(writer.NextOfType("ack", 10000).ok());
    ++acks;
  }
}

TEST_CASE("SlowReaderIsClosedWith1013AndOthersKeepUpWithoutUnboundedQueues") {
  constexpr int64_t kQueueBound = 1 << 20;
  // Both ways of writing: the loop iteration's writes batched through io_uring (the default,
  // where the kernel allows it), and one write per connection.
  const bool io_uring = GENERATE(true, false);
  INFO("io_uring " << io_uring);
  WsHarness h(StorageMode::kMemory, [&](Config& c) {
    c.send_queue_bytes = kQueueBound;
    c.io_uring = io_uring;
  });
  const bool batched = io_uring && io::internal::BatchSender::Open(1).ok();
  CHECK(h.Metric("quire_http_io_uring") == (batched ? 1 : 0));
  std::string doc = h.CreateDocument();
  auto writer = h.JoinWithState(doc, "writer");
  auto reader = h.JoinWithState(doc, "reader");
  // A tiny SO_RCVBUF would make Linux stall the transfer on persist-timer backoff once the
  // reader does read; the default buffer is fine because this reader does not read at all.
  auto slow_or = h.Join(doc, "slow");
  REQUIRE(slow_or.ok());
  auto slow = std::move(slow_or).value();

  constexpr int kUpdates = 256;
  const std::string payload(64 << 10, 'p');
  // The healthy reader reads on its own thread as fast as it can.
  uint64_t relayed_bytes = 0;
  int seen = 0;
  // It does not parse the relays (on a loaded machine JSON parsing could make it slow too),
  // only checks that they come whole and in order.
  int out_of_order = 0;
  std::thread reading([&] {
    while (seen < kUpdates) {
      auto m = reader->Next(10000);
      if (!m.ok() || m->kind != WsMessage::Kind::kText) return;
      if (m->data.rfind(R"({"type":"remote_update")", 0) != 0) continue;
      if (m->data.find(R"("opId":"op-)" + std::to_string(seen) + '"') == std::string::npos) {
        ++out_of_order;
      }
      relayed_bytes += m->data.size();
      ++seen;
    }
  });
  // The writer keeps a window of a few updates in flight, as an editor does.
  SendAcknowledged(*writer, kUpdates, 4, [&](int) -> const std::string& { return payload; });
  reading.join();
  CHECK(seen == kUpdates);
  CHECK(out_of_order == 0);
  CHECK(h.Metric("quire_slow_consumer_closes_total") == 1);
  // Each relay went to two members at once (the reader and the slow one, until it was closed).
  if (batched) {
    CHECK(h.Metric("quire_http_batched_writes_total") > 0);
  } else {
    CHECK(h.Metric("quire_http_batched_writes_total") == 0);
  }

  // The slow reader finally reads: what was queued for it, then the close frame 1013. It got
  // far less than everything: the server stopped queueing at the bound.
  auto code = slow->WaitClosed(10000);
  INFO(code.status().ToString() << " after " << slow->bytes_received() << " bytes");
  REQUIRE(code.ok());
  CHECK(*code == 1013);
  INFO("slow reader received " << slow->bytes_received() << " of " << relayed_bytes);
  CHECK(slow->bytes_received() < relayed_bytes / 2);
  // It can reconnect and catch up with sinceSeq (here: from the start).
  auto again = h.Join(doc, "slow", 0);
  REQUIRE(again.ok());
  int caught_up = 0;
  while (caught_up < kUpdates) {
    auto m = (*again)->NextOfType("remote_update", 10000);
    REQUIRE(m.ok());
    ++caught_up;
  }
}

TEST_CASE("AReaderThatFallsBehindAndCatchesUpGetsEveryRelayWholeAndInOrder") {
  // One member reads nothing until the writer is done: its socket fills (6.6 MB of relays
  // against at most 4 MB of send buffer on Linux), so writes to it come back partial, then
  // EAGAIN, and libuv queues the rest. It must then read every relay whole and in order,
  // whether the writes went out batched through io_uring or one per connection.
  const bool io_uring = GENERATE(true, false);
  INFO("io_uring " << io_uring);
  WsHarness h(StorageMode::kMemory, [&](Config& c) {
    c.send_queue_bytes = 64 << 20;  // not closed for slowness here
    c.io_uring = io_uring;
  });
  std::string doc = h.CreateDocument();
  auto writer = h.JoinWithState(doc, "writer");
  // `other` reads at once, so relays go out in batches of several connections; `late` joins
  // last, so its write is not the first of a batch (a partial write's remainder must be taken
  // from its own buffers).
  auto other = h.JoinWithState(doc, "other");
  auto late = h.JoinWithState(doc, "late");

  constexpr int kUpdates = 300;
  std::vector<std::string> payloads;
  for (int i = 0; i < kUpdates; ++i) {
    payloads.push_back(std::string(16 << 10, static_cast<char>('a' + i % 26)) + std::to_string(i));
  }
  std::thread draining([&] {
    for (int i = 0; i < kUpdates; ++i) {
      if (!other->NextOfType("remote_update", 20000).ok()) return;
    }
  });
  SendAcknowledged(*writer, kUpdates, 16, [&](int i) -> const std::string& { return payloads[i]; });
  draining.join();
  int read = 0, bad = 0;
  std::string first_bad;
  while (read < kUpdates) {
    auto m = late->NextOfType("remote_update", 20000);
    if (!m.ok()) break;
    auto delta = Base64Decode((*m)["deltaB64"].get<std::string>());
    const bool whole = (*m)["opId"] == "op-" + std::to_string(read) && delta.ok() &&
                       *delta == Bytes(payloads[read].begin(), payloads[read].end());
    if (!whole && bad++ == 0) first_bad = m->dump().substr(0, 200);
    ++read;
  }
  INFO(first_bad);
  CHECK(read == kUpdates);
  CHECK(bad == 0);
  CHECK(h.Metric("quire_slow_consumer_closes_total") == 0);
}

TEST_CASE("StorageFailureAnswersStorageUnavailableAndRelaysNothing") {
  TestServerOptions options;
  options.fault_injection = true;
  WsHarness h(StorageMode::kMemory, {}, options);
  std::string doc = h.CreateDocument();
  auto a = h.JoinWithState(doc, "alice");
  auto b = h.JoinWithState(doc, "bob");
  REQUIRE(a->SendJson(UpdateMessage("ok-1", "fine")).ok());
  auto ack = a->NextOfType("ack");
  REQUIRE(ack.ok());
  REQUIRE(b->NextOfType("remote_update").ok());

  REQUIRE(h.server().faults() != nullptr);
  h.server().faults()->FailAllCommits(true);
  REQUIRE(a->SendJson(UpdateMessage("doomed", "lost")).ok());
  auto err = a->NextOfType("error");
  REQUIRE(err.ok());
  CHECK((*err)["code"] == "STORAGE_UNAVAILABLE");
  CHECK((*err)["opId"] == "doomed");
  for (;;) {
    auto m = b->NextJson(200);
    if (!m.ok()) break;
    CHECK((*m)["type"] != "remote_update");
  }
  CHECK(h.Metric("quire_storage_errors_total") >= 1);

  // Reads keep working: a newcomer gets the committed state and nothing of the failed update.
  json state;
  auto c = h.JoinWithState(doc, "carol", &state);
  CHECK(state["headSeq"] == (*ack)["seq"]);
  auto tail = c->NextOfType("remote_update");
  REQUIRE(tail.ok());
  CHECK((*tail)["opId"] == "ok-1");
  for (;;) {
    auto m = c->NextJson(150);
    if (!m.ok()) break;
    CHECK((*m)["type"] != "remote_update");
  }
  h.server().faults()->FailAllCommits(false);
}

TEST_CASE("PipelinedSenderIsThrottledAndLosesNothing") {
  // SQLite, so commits take real time and appends pile up; the server stops reading the
  // sender while 64 are in flight and resumes as they commit.
  WsHarness h(StorageMode::kSqlite, [](Config& c) { c.sync_mode = SyncMode::kFull; });
  std::string doc = h.CreateDocument();
  auto a = h.JoinWithState(doc, "alice");
  auto b = h.JoinWithState(doc, "bob");
  constexpr int kUpdates = 400;
  const std::string payload(1024, 'q');
  for (int i = 0; i < kUpdates; ++i) {
    REQUIRE(a->SendJson(UpdateMessage("p" + std::to_string(i), payload)).ok());
  }
  Seq last = 0;
  for (int i = 0; i < kUpdates; ++i) {
    auto ack = a->NextOfType("ack", 10000);
    REQUIRE(ack.ok());
    CHECK((*ack)["opId"] == "p" + std::to_string(i));
    CHECK((*ack)["seq"].get<Seq>() > last);
    last = (*ack)["seq"].get<Seq>();
  }
  Seq relayed = 0;
  for (int i = 0; i < kUpdates; ++i) {
    auto u = b->NextOfType("remote_update", 10000);
    REQUIRE(u.ok());
    CHECK((*u)["seq"].get<Seq>() > relayed);
    relayed = (*u)["seq"].get<Seq>();
  }
  CHECK(relayed == last);
  CHECK(h.Metric("quire_updates_accepted_total") == kUpdates);
  CHECK(h.Metric("quire_websocket_read_pauses_total") >= 1);
  // With --sync=full every batch stored something and waited for the journal's fdatasync.
  CHECK(h.HistogramCount("quire_journal_fsync_seconds") > 0);
  CHECK(h.HistogramCount("quire_journal_fsync_seconds") ==
        h.HistogramCount("quire_commit_latency_seconds"));
}

TEST_CASE("JsonNewcomerJoiningWhileAppendsAreInFlightIsNotASlowConsumer") {
  // A bound of 8 KiB: 16 KiB may be held for a joining client. The writer's 40 KB update
  // (53 KB as a relay) is queued while the storage thread is held and two newcomers join.
  // One joins plainly: its state comes from the cached head at once, without the held update,
  // which follows as a relay. The other catches up from seq 0, before the document's
  // snapshot: that read goes to the storage thread behind the update, so the update's relay
  // reaches it during the join and the catch-up then covers it (dropped once, not counted).
  WsHarness h(StorageMode::kMemory, [](Config& c) { c.send_queue_bytes = 8 << 10; });
  std::string doc = h.CreateDocument();
  auto writer = h.JoinWithState(doc, "writer");
  int64_t head = 0;
  for (std::string op : {"s1", "s2"}) {
    REQUIRE(writer->SendJson(UpdateMessage(op, op)).ok());
    auto ack = writer->NextOfType("ack", 10000);
    REQUIRE(ack.ok());
    head = (*ack)["seq"];
  }
  REQUIRE(writer
              ->SendJson({{"type", "snapshot"},
                          {"version", head},
                          {"snapshotB64", Base64Encode(AsBytes(std::string("s1s2")))},
                          {"opId", "snap"}})
              .ok());
  REQUIRE(writer->NextOfType("ack", 10000).ok());

  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  bool storage_held = true;
  auto unhold = [&] {
    if (storage_held) release.set_value();
    storage_held = false;
  };
  // Lets the storage thread go if a REQUIRE fails first (before the harness shuts down).
  struct Finally {
    std::function<void()> fn;
    ~Finally() { fn(); }
  } finally{unhold};
  h.server().RunOnLoop([&](cli::ServerApp& app) {
    app.documents().RunOnStorage<int>(
        [released](eventlog::Backend&) {
          released.wait();
          return 0;
        },
        [](int) {});
  });

  // The update is above the 2 KiB in-flight bound, so the writer's reads pause once the
  // server has submitted it: the pause says it is queued.
  const int64_t pauses_before = h.Metric("quire_websocket_read_pauses_total");
  REQUIRE(writer->SendJson(UpdateMessage("big", std::string(40000, 'n'))).ok());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (h.Metric("quire_websocket_read_pauses_total") == pauses_before) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  auto newcomer = h.Join(doc, "newcomer");
  REQUIRE(newcomer.ok());
  auto catcher = h.Join(doc, "catcher", 0);
  REQUIRE(catcher.ok());
  // The plain join is answered while the update is still held.
  auto state = (*newcomer)->NextJson(10000);
  INFO(state.status().ToString());
  REQUIRE(state.ok());
  REQUIRE((*state)["type"] == "state");
  unhold();

  auto ack = writer->NextOfType("ack", 10000);
  REQUIRE(ack.ok());
  CHECK((*state)["headSeq"].get<int64_t>() < (*ack)["seq"].get<int64_t>());

  // A later update marks the end: each newcomer has had the big one exactly once before it.
  REQUIRE(writer->SendJson(UpdateMessage("after", "x")).ok());
  REQUIRE(writer->NextOfType("ack", 10000).ok());
  const std::vector<std::vector<std::string>> expected = {{"big"}, {"s1", "s2", "big"}};
  for (size_t i = 0; i < 2; ++i) {
    WsClient* c = i == 0 ? newcomer->get() : catcher->get();
    std::vector<std::string> got;
    for (;;) {
      auto u = c->NextOfType("remote_update", 10000);
      INFO(u.status().ToString());
      REQUIRE(u.ok());
      std::string op = (*u)["opId"];
      if (op == "after") break;
      got.push_back(op);
    }
    CHECK(got == expected[i]);
  }
  CHECK(h.Metric("quire_slow_consumer_closes_total") == 0);
}

}  // namespace
}  // namespace quire::test
