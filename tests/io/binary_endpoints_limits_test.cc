// Limits on the binary endpoints (/yjs/{id} and /hocuspocus), end to end over real sockets: an
// update above max_payload_bytes and a frame above the message bound close with 1009, the
// message rate limit closes with 1008, max_open_documents refuses (y-websocket: 503 at the
// upgrade; Hocuspocus: PermissionDenied for that document), and a y-websocket client that
// stops reading on a busy document (or pipelines too much before its state is loaded) is
// closed with 1013 while the others keep up, but a newcomer that joins while appends are in
// flight is not taken for one.
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "core/yjs/hocuspocus.h"
#include "core/yjs/protocol.h"
#include "core/yjs/update.h"
#include "tests/support/http_client.h"
#include "tests/support/raw_ws.h"
#include "tests/support/ws_harness.h"
#include "tests/support/yjs_test_updates.h"

namespace quire::test {
namespace {

namespace hp = yjs::hocuspocus;

std::unique_ptr<WsClient> Connect(WsHarness& h, const std::string& target,
                                  const WsConnectOptions& options = {}) {
  auto c = WsClient::Connect(h.port(), target, options);
  REQUIRE(c.ok());
  return std::move(*c);
}

Bytes NextBinary(WsClient& c, int timeout_ms = 5000) {
  auto m = c.Next(timeout_ms);
  REQUIRE(m.ok());
  REQUIRE(m->kind == WsMessage::Kind::kBinary);
  return Bytes(m->data.begin(), m->data.end());
}

// The next y-websocket sync message (awareness skipped).
Bytes NextYwsSync(WsClient& c, int timeout_ms = 5000) {
  for (;;) {
    Bytes b = NextBinary(c, timeout_ms);
    auto m = yjs::DecodeMessage(b);
    REQUIRE(m.ok());
    if (m->type == yjs::MessageType::kSync) return b;
  }
}

// Reads until the server's close; returns it (the messages before it are counted).
WsMessage ReadUntilClose(WsClient& c, int* messages_before = nullptr, int timeout_ms = 10000) {
  for (;;) {
    auto m = c.Next(timeout_ms);
    REQUIRE(m.ok());
    if (m->kind == WsMessage::Kind::kClose) return *m;
    if (messages_before != nullptr) ++*messages_before;
  }
}

hp::Message DecodeHp(const Bytes& frame) {
  auto d = hp::Decode(frame, hp::Direction::kToClient);
  REQUIRE(d.ok());
  return *d;
}

// Authenticates `doc` on a Hocuspocus socket; returns the server's answer frame.
Bytes HpAuth(WsClient& c, const std::string& doc) {
  REQUIRE(c.SendBinary(hp::EncodeAuthToken(doc, "any-token")).ok());
  return NextBinary(c);
}

void RequireHpAuthenticated(WsClient& c, const std::string& doc) {
  Bytes answer = HpAuth(c, doc);
  hp::Message m = DecodeHp(answer);
  REQUIRE(m.type == hp::Type::kAuth);
  REQUIRE(m.auth_type == hp::AuthType::kAuthenticated);
}

}  // namespace

TEST_CASE("OversizedYwsUpdateClosesWith1009AndIsNotRelayed") {
  WsHarness h(StorageMode::kMemory, [](Config& c) { c.max_payload_bytes = 1024; });
  auto observer = Connect(h, "/yjs/big");
  NextBinary(*observer);
  // An update at the limit is served.
  auto writer = Connect(h, "/yjs/big");
  NextBinary(*writer);
  const Bytes fits = YjsRootInsert(1, 0, std::string(1000, 'f'));
  REQUIRE(fits.size() <= 1024);
  REQUIRE(writer->SendBinary(yjs::EncodeSyncUpdate(fits)).ok());
  CHECK(NextYwsSync(*observer) == yjs::EncodeSyncUpdate(fits));
  // One above it fits in a frame (max_payload_bytes + 1 KiB) but is refused as an update.
  const Bytes over = YjsRootInsert(2, 0, std::string(1100, 'o'));
  REQUIRE(over.size() > 1024);
  REQUIRE(writer->SendBinary(yjs::EncodeSyncUpdate(over)).ok());
  WsMessage closed = ReadUntilClose(*writer);
  CHECK(closed.close_code == 1009);
  CHECK(closed.data == "update too large");
  CHECK(h.Metric("quire_updates_rejected_total") == 1);
  // A frame beyond the message bound is refused by the WebSocket layer, also with 1009.
  auto huge = Connect(h, "/yjs/big");
  NextBinary(*huge);
  REQUIRE(
      huge->SendBinary(yjs::EncodeSyncUpdate(YjsRootInsert(3, 0, std::string(4096, 'h')))).ok());
  CHECK(ReadUntilClose(*huge).close_code == 1009);
  // Neither reached the others; the document holds only the update that fit.
  CHECK(observer->QuietFor(200));
  REQUIRE(observer->SendBinary(yjs::EncodeSyncStep1(Bytes{0})).ok());
  const Bytes step2_frame = NextYwsSync(*observer);
  auto step2 = yjs::DecodeMessage(step2_frame);
  REQUIRE(step2.ok());
  auto sv = yjs::StateVectorFromUpdate(step2->payload);
  REQUIRE(sv.ok());
  CHECK(*sv == yjs::EncodeStateVector({{1, 1000}}));
}

TEST_CASE("OversizedHocuspocusUpdateClosesWith1009AndIsNotRelayed") {
  WsHarness h(StorageMode::kMemory, [](Config& c) { c.max_payload_bytes = 1024; });
  auto observer = Connect(h, "/hocuspocus");
  RequireHpAuthenticated(*observer, "big");
  auto writer = Connect(h, "/hocuspocus");
  RequireHpAuthenticated(*writer, "big");
  const Bytes fits = YjsRootInsert(1, 0, std::string(1000, 'f'));
  REQUIRE(writer->SendBinary(hp::EncodeSyncUpdate("big", fits)).ok());
  CHECK(DecodeHp(NextBinary(*writer)).applied);
  CHECK(NextBinary(*observer) == hp::EncodeSyncUpdate("big", fits));
  const Bytes over = YjsRootInsert(2, 0, std::string(1100, 'o'));
  REQUIRE(writer->SendBinary(hp::EncodeSyncUpdate("big", over)).ok());
  WsMessage closed = ReadUntilClose(*writer);
  CHECK(closed.close_code == 1009);
  CHECK(closed.data == "update too large");
  CHECK(h.Metric("quire_updates_rejected_total") == 1);
  auto huge = Connect(h, "/hocuspocus");
  RequireHpAuthenticated(*huge, "big");
  REQUIRE(huge->SendBinary(hp::EncodeSyncUpdate("big", YjsRootInsert(3, 0, std::string(4096, 'h'))))
              .ok());
  CHECK(ReadUntilClose(*huge).close_code == 1009);
  CHECK(observer->QuietFor(200));
}

TEST_CASE("MessageRateLimitClosesBinaryEndpointsWith1008") {
  // 5 messages a second, bursts of 10.
  WsHarness h(StorageMode::kMemory, [](Config& c) { c.max_messages_per_second = 5; });
  SECTION("y-websocket") {
    auto calm = Connect(h, "/yjs/rate");
    NextBinary(*calm);
    for (int i = 0; i < 8; ++i) REQUIRE(calm->SendBinary(yjs::EncodeQueryAwareness()).ok());
    for (int i = 0; i < 8; ++i) NextBinary(*calm);  // every query answered
    auto flood = Connect(h, "/yjs/rate");
    NextBinary(*flood);
    for (int i = 0; i < 40; ++i) REQUIRE(flood->SendBinary(yjs::EncodeQueryAwareness()).ok());
    int answered = 0;
    WsMessage closed = ReadUntilClose(*flood, &answered);
    CHECK(closed.close_code == 1008);
    CHECK(closed.data == "message rate limit");
    CHECK(answered < 40);
    // The client within the limit is still served.
    REQUIRE(calm->SendBinary(yjs::EncodeSyncStep1(Bytes{0})).ok());
    CHECK(NextYwsSync(*calm) == yjs::EncodeSyncStep2(Bytes{0, 0}));
  }
  SECTION("Hocuspocus") {
    auto flood = Connect(h, "/hocuspocus");
    for (int i = 0; i < 40; ++i) REQUIRE(flood->SendBinary(hp::EncodePing()).ok());
    int answered = 0;
    WsMessage closed = ReadUntilClose(*flood, &answered);
    CHECK(closed.close_code == 1008);
    CHECK(closed.data == "message rate limit");
    CHECK(answered < 40);
    auto calm = Connect(h, "/hocuspocus");
    RequireHpAuthenticated(*calm, "rate");
  }
}

TEST_CASE("MaxOpenDocumentsRefusesYwsWith503AndDeniesHocuspocus") {
  WsHarness h(StorageMode::kMemory, [](Config& c) { c.max_open_documents = 1; });
  auto one = Connect(h, "/yjs/one");
  NextBinary(*one);
  // Another document: refused at the upgrade, nothing created.
  WsHandshake hs;
  CHECK_FALSE(WsClient::Connect(h.port(), "/yjs/two", {}, &hs).ok());
  CHECK(hs.status == 503);
  auto body = nlohmann::json::parse(hs.body, nullptr, false);
  REQUIRE(body.is_object());
  CHECK(body["error"]["code"] == "TOO_MANY_DOCUMENTS");
  CHECK(h.Metric("quire_yws_documents_created_total") == 1);
  // The open document takes more members.
  auto again = Connect(h, "/yjs/one");
  NextBinary(*again);
  // Hocuspocus: PermissionDenied for the other document, the open one is served on the same
  // socket.
  auto multi = Connect(h, "/hocuspocus");
  CHECK(HpAuth(*multi, "two") ==
        hp::EncodePermissionDenied("two", "too many documents open, retry later"));
  RequireHpAuthenticated(*multi, "one");
  CHECK(h.Metric("quire_websocket_open_documents") == 1);
  // Once every member left, the slot is free again.
  REQUIRE(one->Close().ok());
  REQUIRE(again->Close().ok());
  REQUIRE(multi->SendBinary(hp::EncodeCloseRequest("one")).ok());
  CHECK(DecodeHp(NextBinary(*multi)).type == hp::Type::kClose);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::unique_ptr<WsClient> two;
  while (!two && std::chrono::steady_clock::now() < deadline) {
    auto c = WsClient::Connect(h.port(), "/yjs/two");
    if (c.ok()) {
      two = std::move(*c);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  REQUIRE(two);
  CHECK(NextBinary(*two) == yjs::EncodeSyncStep1(Bytes{0}));
}

TEST_CASE("YwsConnectsRacingForTheLastDocumentSlotOpenOnlyOneDocument") {
  WsHarness h(StorageMode::kMemory, [](Config& c) { c.max_open_documents = 1; });
  // Both upgrades for two new documents are read in one loop iteration (the loop is held
  // while they arrive), so both pass the check at the upgrade before either document exists.
  HttpClient first(h.port());
  HttpClient second(h.port());
  REQUIRE(first.connected());
  REQUIRE(second.connected());
  std::promise<void> held;
  std::thread holder([&] {
    h.server().RunOnLoop([&](cli::ServerApp&) {
      held.set_value();
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    });
  });
  held.get_future().wait();
  REQUIRE(first.SendRaw(RawUpgradeRequest("/yjs/race-1")));
  REQUIRE(second.SendRaw(RawUpgradeRequest("/yjs/race-2")));
  holder.join();
  int served = 0;
  for (HttpClient* c : {&first, &second}) {
    auto r = c->ReadResponse(10000);
    REQUIRE(r.has_value());
    if (r->status == 503) continue;
    REQUIRE(r->status == 101);
    auto f = ReadRawServerFrame(*c, 10000);
    REQUIRE(f.has_value());
    if (f->opcode == 0x2 &&
        Bytes(f->payload.begin(), f->payload.end()) == yjs::EncodeSyncStep1(Bytes{0})) {
      ++served;
      continue;
    }
    // Refused after the upgrade: closed with 1013 (try again later).
    while (f && f->opcode != 0x8) f = ReadRawServerFrame(*c, 10000);
    REQUIRE(f.has_value());
    CHECK(f->close_code() == 1013);
  }
  CHECK(served == 1);
  CHECK(h.Metric("quire_websocket_open_documents") == 1);
}

TEST_CASE("SlowYwsReaderOnABusyDocumentIsClosedWith1013AndOthersKeepUp") {
  constexpr int64_t kQueueBound = 256 << 10;
  WsHarness h(StorageMode::kMemory, [](Config& c) { c.send_queue_bytes = kQueueBound; });
  auto writer = Connect(h, "/yjs/busy");
  auto reader = Connect(h, "/yjs/busy");
  // A fixed 64 KiB receive buffer: the kernel cannot take the whole stream for the slow
  // reader (with autotuning it could hold tens of MiB).
  WsConnectOptions small;
  small.receive_buffer_bytes = 64 << 10;
  auto slow = Connect(h, "/yjs/busy", small);
  NextBinary(*writer);
  NextBinary(*reader);
  NextBinary(*slow);  // then it stops reading

  // 10 MiB of updates: more than the server's socket send buffer (at most 4 MiB here), the
  // slow reader's 64 KiB and twice the queue bound together.
  constexpr int kUpdates = 160;
  const std::string text(64 << 10, 'u');
  int seen = 0;
  std::thread reading([&] {
    while (seen < kUpdates) {
      auto m = reader->Next(30000);
      if (!m.ok() || m->kind != WsMessage::Kind::kBinary) return;
      ++seen;
    }
  });
  for (int i = 0; i < kUpdates; ++i) {
    REQUIRE(writer
                ->SendBinary(
                    yjs::EncodeSyncUpdate(YjsRootInsert(1000 + static_cast<uint64_t>(i), 0, text)),
                    30000)
                .ok());
  }
  reading.join();
  CHECK(seen == kUpdates);
  CHECK(h.Metric("quire_slow_consumer_closes_total") == 1);
  // The slow reader reads at last: what was queued for it, then 1013.
  auto code = slow->WaitClosed(60000);
  INFO(code.status().ToString() << " after " << slow->bytes_received() << " bytes");
  REQUIRE(code.ok());
  CHECK(*code == 1013);
  CHECK(slow->bytes_received() < static_cast<uint64_t>(kUpdates) * text.size() / 2);
}

TEST_CASE("YwsMessagesPipelinedBeforeTheStateLoadsAreReplayedAndBounded") {
  // A bound of 16 KiB: at most 32 KiB may wait for the document's state.
  WsHarness h(StorageMode::kMemory, [](Config& c) { c.send_queue_bytes = 16 << 10; });
  auto Frame = [](const Bytes& message) {
    return RawClientFrame(0x2, std::string(message.begin(), message.end()));
  };
  SECTION("below the bound: replayed once the state was sent") {
    HttpClient c(h.port());
    REQUIRE(c.connected());
    // The frames travel with the upgrade request: the server reads them while it is still
    // creating the document.
    REQUIRE(c.SendRaw(RawUpgradeRequest("/yjs/held-ok") +
                      Frame(yjs::EncodeSyncUpdate(YjsRootInsert(1, 0, std::string(4000, 'a')))) +
                      Frame(yjs::EncodeSyncUpdate(YjsRootInsert(2, 0, std::string(4000, 'b')))) +
                      Frame(yjs::EncodeSyncStep1(Bytes{0}))));
    auto r = c.ReadResponse();
    REQUIRE(r.has_value());
    REQUIRE(r->status == 101);
    auto step1 = ReadRawServerFrame(c);
    REQUIRE(step1.has_value());
    CHECK(Bytes(step1->payload.begin(), step1->payload.end()) == yjs::EncodeSyncStep1(Bytes{0}));
    auto step2 = ReadRawServerFrame(c);
    REQUIRE(step2.has_value());
    auto m = yjs::DecodeMessage(AsBytes(step2->payload));
    REQUIRE(m.ok());
    CHECK(m->sync_type == yjs::SyncType::kStep2);
    // Both held updates were appended: a later client's state vector has them.
    const Bytes want = yjs::EncodeSyncStep1(yjs::EncodeStateVector({{1, 4000}, {2, 4000}}));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    Bytes got;
    while (got != want && std::chrono::steady_clock::now() < deadline) {
      auto late = Connect(h, "/yjs/held-ok");
      got = NextBinary(*late);
      if (got != want) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(got == want);
  }
  SECTION("above the bound: closed with 1013 before anything was sent") {
    HttpClient c(h.port());
    REQUIRE(c.connected());
    std::string bytes = RawUpgradeRequest("/yjs/held-over");
    for (int i = 0; i < 10; ++i) {  // 40 KiB
      bytes += Frame(yjs::EncodeSyncUpdate(
          YjsRootInsert(static_cast<uint64_t>(i) + 1, 0, std::string(4000, 'x'))));
    }
    REQUIRE(c.SendRaw(bytes));
    auto r = c.ReadResponse();
    REQUIRE(r.has_value());
    REQUIRE(r->status == 101);
    auto f = ReadRawServerFrame(c, 10000);
    REQUIRE(f.has_value());
    CHECK(f->opcode == 0x8);
    CHECK(f->close_code() == 1013);
    CHECK(f->close_reason() == "slow consumer");
    CHECK(h.Metric("quire_slow_consumer_closes_total") == 1);
  }
}

TEST_CASE("YwsNewcomerJoiningWhileAppendsAreInFlightIsNotASlowConsumer") {
  // A bound of 8 KiB: 16 KiB may be held for a client. The writer's 40 KiB update is in
  // flight when the newcomer joins (the loop is held while both arrive, the update first), so
  // its relay reaches the newcomer before its state is sent; the state already holds it.
  WsHarness h(StorageMode::kMemory, [](Config& c) { c.send_queue_bytes = 8 << 10; });
  auto writer = Connect(h, "/yjs/join");
  NextBinary(*writer);
  HttpClient newcomer(h.port());
  REQUIRE(newcomer.connected());
  std::promise<void> held;
  std::thread holder([&] {
    h.server().RunOnLoop([&](cli::ServerApp&) {
      held.set_value();
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    });
  });
  held.get_future().wait();
  const Bytes update = YjsRootInsert(1, 0, std::string(40000, 'w'));
  REQUIRE(writer->SendBinary(yjs::EncodeSyncUpdate(update)).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // its bytes are ready first
  REQUIRE(newcomer.SendRaw(RawUpgradeRequest("/yjs/join")));
  holder.join();
  auto r = newcomer.ReadResponse();
  REQUIRE(r.has_value());
  REQUIRE(r->status == 101);
  auto f = ReadRawServerFrame(newcomer, 10000);
  REQUIRE(f.has_value());
  INFO("opcode " << static_cast<int>(f->opcode) << ", close code " << f->close_code());
  REQUIRE(f->opcode == 0x2);
  // Whichever order the server took, the newcomer gets the update exactly once: in the state
  // (step 1 names it) or as a relay after an empty state, and it is not closed.
  Bytes first(f->payload.begin(), f->payload.end());
  if (first == yjs::EncodeSyncStep1(Bytes{0})) {
    auto relay = ReadRawServerFrame(newcomer, 10000);
    REQUIRE(relay.has_value());
    CHECK(Bytes(relay->payload.begin(), relay->payload.end()) == yjs::EncodeSyncUpdate(update));
  } else {
    CHECK(first == yjs::EncodeSyncStep1(yjs::EncodeStateVector({{1, 40000}})));
  }
  CHECK(h.Metric("quire_slow_consumer_closes_total") == 0);
  REQUIRE(newcomer.SendRaw(RawClientFrame(0x2, std::string(1, '\x03'))));  // query awareness
  auto answer = ReadRawServerFrame(newcomer, 10000);
  REQUIRE(answer.has_value());
  CHECK(answer->opcode == 0x2);
}

}  // namespace quire::test
