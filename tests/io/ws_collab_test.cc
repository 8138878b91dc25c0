// End-to-end collaboration over /ws/documents/{id}: real server (TestServer), real sockets,
// real WebSocket clients, both storage modes.
#include <catch2/catch.hpp>
#include <set>
#include <thread>

#include "cli/server_app.h"
#include "core/base64.h"
#include "core/codec.h"
#include "tests/support/ws_harness.h"

namespace quire::test {
namespace {

using nlohmann::json;

std::string Decode(const json& b64) {
  auto bytes = Base64Decode(b64.get<std::string>());
  REQUIRE(bytes.ok());
  return std::string(AsString(*bytes));
}

TEST_CASE("TwoClientsExchangeUpdatesAndConverge") {
  auto mode = GENERATE(StorageMode::kMemory, StorageMode::kSqlite);
  INFO(StorageModeName(mode));
  WsHarness h(mode);
  std::string doc = h.CreateDocument();
  json state_a, state_b;
  auto a = h.JoinWithState(doc, "alice", &state_a);
  auto b = h.JoinWithState(doc, "bob", &state_b);
  CHECK(state_a["version"] == 0);
  CHECK(state_a["snapshotB64"] == "");
  CHECK(state_a["headSeq"].get<int64_t>() >= 1);  // the created event

  REQUIRE(a->SendJson(UpdateMessage("a-1", "hello", "alice-actor")).ok());
  auto ack = a->NextOfType("ack");
  REQUIRE(ack.ok());
  CHECK((*ack)["opId"] == "a-1");
  auto relay = b->NextOfType("remote_update");
  REQUIRE(relay.ok());
  CHECK((*relay)["seq"] == (*ack)["seq"]);
  CHECK((*relay)["opId"] == "a-1");
  CHECK((*relay)["actorId"] == "alice-actor");
  CHECK(Decode((*relay)["deltaB64"]) == "hello");

  REQUIRE(b->SendJson(UpdateMessage("b-1", "world", "bob-actor")).ok());
  auto ack_b = b->NextOfType("ack");
  REQUIRE(ack_b.ok());
  auto relay_a = a->NextOfType("remote_update");
  REQUIRE(relay_a.ok());
  CHECK((*relay_a)["seq"] == (*ack_b)["seq"]);
  CHECK((*ack_b)["seq"].get<int64_t>() > (*ack)["seq"].get<int64_t>());
  // The sender never gets its own update back.
  CHECK(a->QuietFor(100));
  CHECK(b->QuietFor(0));

  // A newcomer sees the same document: state, then both updates in seq order.
  json state_c;
  auto c = h.JoinWithState(doc, "carol", &state_c);
  CHECK(state_c["headSeq"] == (*ack_b)["seq"]);
  auto u1 = c->NextOfType("remote_update");
  auto u2 = c->NextOfType("remote_update");
  REQUIRE(u1.ok());
  REQUIRE(u2.ok());
  CHECK((*u1)["seq"] == (*ack)["seq"]);
  CHECK(Decode((*u1)["deltaB64"]) == "hello");
  CHECK((*u2)["seq"] == (*ack_b)["seq"]);
  CHECK(Decode((*u2)["deltaB64"]) == "world");
  CHECK(h.Metric("quire_updates_accepted_total") == 2);
  CHECK(h.HistogramCount("quire_broadcast_latency_seconds") == 2);
  CHECK(h.Metric("quire_websocket_connections") == 3);
  CHECK(h.Metric("quire_websocket_open_documents") == 1);
}

TEST_CASE("DuplicateOpIdIsAckedWithOriginalSeqAndNotRelayed") {
  WsHarness h;
  std::string doc = h.CreateDocument();
  auto a = h.JoinWithState(doc, "alice");
  auto b = h.JoinWithState(doc, "bob");
  REQUIRE(a->SendJson(UpdateMessage("op-1", "x")).ok());
  auto first = a->NextOfType("ack");
  REQUIRE(first.ok());
  REQUIRE(b->NextOfType("remote_update").ok());

  REQUIRE(a->SendJson(UpdateMessage("op-1", "x")).ok());
  auto again = a->NextOfType("ack");
  REQUIRE(again.ok());
  CHECK((*again)["seq"] == (*first)["seq"]);
  // The same opId from another connection is a duplicate too.
  REQUIRE(b->SendJson(UpdateMessage("op-1", "x")).ok());
  auto from_b = b->NextOfType("ack");
  REQUIRE(from_b.ok());
  CHECK((*from_b)["seq"] == (*first)["seq"]);
  CHECK(a->QuietFor(150));
  CHECK(b->QuietFor(0));
  CHECK(h.Metric("quire_updates_duplicate_total") == 2);
  CHECK(h.Metric("quire_updates_accepted_total") == 1);
}

TEST_CASE("ReconnectAfterRestartGetsCommittedStateOnSqlite") {
  WsHarness h(StorageMode::kSqlite);
  std::string doc = h.CreateDocument();
  Seq last = 0;
  {
    auto a = h.JoinWithState(doc, "alice");
    for (int i = 0; i < 5; ++i) {
      REQUIRE(a->SendJson(UpdateMessage("op-" + std::to_string(i), "u" + std::to_string(i))).ok());
      auto ack = a->NextOfType("ack");
      REQUIRE(ack.ok());
      last = (*ack)["seq"].get<Seq>();
    }
    REQUIRE(a->Close().ok());
  }
  REQUIRE(h.server().Restart().ok());
  json state;
  auto b = h.JoinWithState(doc, "bob", &state);
  CHECK(state["headSeq"] == last);
  std::string content = Decode(state["snapshotB64"]);
  Seq version = state["version"].get<Seq>();
  std::vector<std::string> tail;
  while (version < last) {
    auto u = b->NextOfType("remote_update");
    REQUIRE(u.ok());
    tail.push_back(Decode((*u)["deltaB64"]));
    version = (*u)["seq"].get<Seq>();
  }
  // Opaque documents are never folded by the server: all five updates come as the tail.
  CHECK(tail == std::vector<std::string>{"u0", "u1", "u2", "u3", "u4"});
}

TEST_CASE("RestartOnMemoryStorageStartsAFreshStore") {
  WsHarness h(StorageMode::kMemory);
  std::string doc = h.CreateDocument();
  {
    auto a = h.JoinWithState(doc, "alice");
    REQUIRE(a->SendJson(UpdateMessage("op-1", "x")).ok());
    REQUIRE(a->NextOfType("ack").ok());
  }
  REQUIRE(h.server().Restart().ok());
  WsHandshake hs;
  auto c = WsClient::Connect(h.port(), "/ws/documents/" + doc + "?userId=a", {}, &hs);
  CHECK(!c.ok());
  CHECK(hs.status == 404);
}

TEST_CASE("SinceSeqSkipsTheStateAndSendsOnlyLaterUpdates") {
  auto mode = GENERATE(StorageMode::kMemory, StorageMode::kSqlite);
  INFO(StorageModeName(mode));
  WsHarness h(mode);
  std::string doc = h.CreateDocument();
  auto a = h.JoinWithState(doc, "alice");
  std::vector<Seq> seqs;
  for (int i = 0; i < 4; ++i) {
    REQUIRE(a->SendJson(UpdateMessage("op-" + std::to_string(i), "u" + std::to_string(i))).ok());
    auto ack = a->NextOfType("ack");
    REQUIRE(ack.ok());
    seqs.push_back((*ack)["seq"].get<Seq>());
  }
  auto b = h.Join(doc, "bob", seqs[1]);
  REQUIRE(b.ok());
  auto m1 = (*b)->NextJson();
  auto m2 = (*b)->NextJson();
  REQUIRE(m1.ok());
  REQUIRE(m2.ok());
  CHECK((*m1)["type"] == "remote_update");
  CHECK((*m1)["seq"] == seqs[2]);
  CHECK(Decode((*m1)["deltaB64"]) == "u2");
  CHECK((*m2)["seq"] == seqs[3]);
  // Then alice's presence, and nothing else.
  auto p = (*b)->NextJson();
  REQUIRE(p.ok());
  CHECK((*p)["type"] == "presence");
  CHECK((*b)->QuietFor(100));

  // Up to date: no state, no updates.
  auto c = h.Join(doc, "carol", seqs[3]);
  REQUIRE(c.ok());
  auto only = (*c)->NextJson();
  REQUIRE(only.ok());
  CHECK((*only)["type"] == "presence");

  // Ahead of the document (a client of a reset store): the full state.
  auto d = h.Join(doc, "dave", seqs[3] + 100);
  REQUIRE(d.ok());
  auto st = (*d)->NextJson();
  REQUIRE(st.ok());
  CHECK((*st)["type"] == "state");
}

TEST_CASE("PresenceIsSeenByPeersAndLeftIsSentOnDisconnect") {
  WsHarness h;
  std::string doc = h.CreateDocument();
  auto a = h.JoinWithState(doc, "alice");
  auto b = h.JoinWithState(doc, "bob");
  // bob gets alice's presence as a newcomer; alice gets bob's "joined".
  auto a_seen = b->NextOfType("presence");
  REQUIRE(a_seen.ok());
  CHECK((*a_seen)["userId"] == "alice");
  CHECK((*a_seen)["status"] == "joined");
  auto b_joined = a->NextOfType("presence");
  REQUIRE(b_joined.ok());
  CHECK((*b_joined)["userId"] == "bob");
  CHECK((*b_joined)["displayName"] == "bob");

  REQUIRE(a->SendJson(
               {{"type", "presence"}, {"cursor", {{"from", 3}, {"to", 7}}}, {"color", "#abcdef"}})
              .ok());
  auto moved = b->NextOfType("presence");
  REQUIRE(moved.ok());
  CHECK((*moved)["userId"] == "alice");
  CHECK((*moved)["status"] == "active");
  CHECK((*moved)["color"] == "#abcdef");
  CHECK((*moved)["cursor"] == json{{"from", 3}, {"to", 7}});
  CHECK(a->QuietFor(100));  // never echoed to the sender

  // A newcomer gets everyone's current presence, including the cursor.
  auto c = h.JoinWithState(doc, "carol");
  std::map<std::string, json> seen;
  for (int i = 0; i < 2; ++i) {
    auto p = c->NextOfType("presence");
    REQUIRE(p.ok());
    seen[(*p)["userId"].get<std::string>()] = *p;
  }
  CHECK(seen["alice"]["cursor"] == json{{"from", 3}, {"to", 7}});
  CHECK(seen.count("bob") == 1);

  REQUIRE(a->Close().ok());
  a.reset();
  for (WsClient* peer : {b.get(), c.get()}) {
    for (;;) {
      auto p = peer->NextOfType("presence");
      REQUIRE(p.ok());
      if ((*p)["userId"] == "alice" && (*p)["status"] == "left") break;
    }
  }
}

TEST_CASE("AUserWithTwoConnectionsStaysPresentUntilTheLastOneLeaves") {
  WsHarness h;
  std::string doc = h.CreateDocument();
  auto tab1 = h.JoinWithState(doc, "alice");
  auto tab2 = h.JoinWithState(doc, "alice");
  auto bob = h.JoinWithState(doc, "bob");
  for (int i = 0; i < 2; ++i) {  // bob is told of both of alice's connections
    auto p = bob->NextOfType("presence");
    REQUIRE(p.ok());
    CHECK((*p)["userId"] == "alice");
  }
  REQUIRE(tab2->NextOfType("presence").ok());  // alice (tab 1) joined
  REQUIRE(tab2->NextOfType("presence").ok());  // bob joined

  // Presence is keyed by userId: tab 1 leaving must not tell bob that alice left, since tab 2
  // is still there. Bob gets tab 2's presence instead; tab 2 gets nothing about itself.
  REQUIRE(tab1->Close().ok());
  tab1.reset();
  auto still = bob->NextOfType("presence");
  REQUIRE(still.ok());
  CHECK((*still)["userId"] == "alice");
  CHECK((*still)["status"] == "joined");
  CHECK(tab2->QuietFor(100));

  REQUIRE(tab2->Close().ok());
  tab2.reset();
  auto left = bob->NextOfType("presence");
  REQUIRE(left.ok());
  CHECK((*left)["userId"] == "alice");
  CHECK((*left)["status"] == "left");
}

TEST_CASE("AJoinUnderAnotherUserIdTellsThePeersTheOldOneLeft") {
  WsHarness h;
  std::string doc = h.CreateDocument();
  auto a = h.JoinWithState(doc, "alice");
  auto b = h.JoinWithState(doc, "bob");
  REQUIRE(b->NextOfType("presence").ok());  // alice, as bob joined
  REQUIRE(a->NextOfType("presence").ok());  // bob joined

  REQUIRE(a->SendJson({{"type", "join"}, {"userId", "alicia"}, {"displayName", "Alicia"}}).ok());
  auto gone = b->NextOfType("presence");
  REQUIRE(gone.ok());
  CHECK((*gone)["userId"] == "alice");
  CHECK((*gone)["status"] == "left");
  auto joined = b->NextOfType("presence");
  REQUIRE(joined.ok());
  CHECK((*joined)["userId"] == "alicia");
  CHECK((*joined)["displayName"] == "Alicia");
  CHECK((*joined)["status"] == "joined");
  CHECK(a->QuietFor(100));  // never echoed
}

TEST_CASE("PresenceIsCoalescedToTwentyPerSecondKeepingTheLatest") {
  WsHarness h;
  std::string doc = h.CreateDocument();
  auto a = h.JoinWithState(doc, "alice");
  auto b = h.JoinWithState(doc, "bob");
  REQUIRE(a->NextOfType("presence").ok());  // bob joined
  REQUIRE(b->NextOfType("presence").ok());  // alice, as a newcomer sees her
  auto start = std::chrono::steady_clock::now();
  for (int i = 1; i <= 60; ++i) {
    REQUIRE(a->SendJson({{"type", "presence"}, {"cursor", {{"from", i}, {"to", i}}}}).ok());
  }
  int received = 0;
  int64_t last = 0;
  while (last != 60) {
    auto p = b->NextOfType("presence", 3000);
    REQUIRE(p.ok());
    ++received;
    last = (*p)["cursor"]["from"].get<int64_t>();
  }
  double elapsed_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO("received " << received << " in " << elapsed_s << " s");
  CHECK(received <= 2 + static_cast<int>(elapsed_s * 20));
  CHECK(received < 60);
}

TEST_CASE("PingIsAnsweredWithPong") {
  WsHarness h;
  std::string doc = h.CreateDocument();
  auto a = h.JoinWithState(doc, "alice");
  REQUIRE(a->SendJson({{"type", "ping"}, {"ts", 1234567}}).ok());
  auto pong = a->NextOfType("pong");
  REQUIRE(pong.ok());
  CHECK((*pong)["ts"] == 1234567);
}

TEST_CASE("JoiningDuringACommitStreamMissesAndRepeatsNothing") {
  auto mode = GENERATE(StorageMode::kMemory, StorageMode::kSqlite);
  INFO(StorageModeName(mode));
  WsHarness h(mode);
  std::string doc = h.CreateDocument();
  auto a = h.JoinWithState(doc, "alice");
  constexpr int kUpdates = 60;
  // Pipeline every update without waiting, then join while they commit.
  for (int i = 0; i < kUpdates; ++i) {
    REQUIRE(a->SendJson(UpdateMessage("op-" + std::to_string(i), "u" + std::to_string(i))).ok());
    // Reading acks mid-stream is incidental; failures show up in the checks below.
    if (i == kUpdates / 3) a->Pump().IgnoreError();
  }
  json state;
  auto b = h.JoinWithState(doc, "bob", &state);
  std::set<Seq> acked;
  while (acked.size() < kUpdates) {
    auto ack = a->NextOfType("ack");
    REQUIRE(ack.ok());
    acked.insert((*ack)["seq"].get<Seq>());
  }
  // bob must see exactly the acked seqs above the state's version, each once, in order.
  Seq version = state["version"].get<Seq>();
  std::vector<Seq> expected;
  for (Seq s : acked) {
    if (s > version) expected.push_back(s);
  }
  std::vector<Seq> got;
  while (got.size() < expected.size()) {
    auto u = b->NextOfType("remote_update");
    REQUIRE(u.ok());
    got.push_back((*u)["seq"].get<Seq>());
  }
  CHECK(got == expected);
  // Nothing repeated afterwards (alice's presence may still come).
  for (;;) {
    auto m = b->NextJson(150);
    if (!m.ok()) break;
    CHECK((*m)["type"] != "remote_update");
  }
}

}  // namespace
}  // namespace quire::test

namespace quire::test {
namespace {

// Yjs updates of "Hello" typed one character per transaction (tests/data/yjs/vectors.json,
// case single_client_typing).
const std::vector<std::string> kHelloUpdates = {
    "AQEBAAQBAXQBSAA=", "AQEBAYQBAAFlAA==", "AQEBAoQBAQFsAA==", "AQEBA4QBAgFsAA==",
    "AQEBBIQBAwFvAA=="};

Bytes FoldAll(ByteView snapshot, const std::vector<Bytes>& updates) {
  std::vector<ByteView> views(updates.begin(), updates.end());
  auto folded = CodecFor(CrdtKind::kYjs).Fold(snapshot, views);
  REQUIRE(folded.ok());
  return std::move(folded).value();
}

TEST_CASE("YjsDocumentCompactedMeanwhileGivesANewcomerAnEquivalentState") {
  auto mode = GENERATE(StorageMode::kMemory, StorageMode::kSqlite);
  INFO(StorageModeName(mode));
  WsHarness h(mode, [](Config& c) { c.snapshot_every_updates = 3; });
  std::string doc = h.CreateDocument("yjs");
  auto a = h.JoinWithState(doc, "alice");
  std::vector<Bytes> sent;
  for (size_t i = 0; i < kHelloUpdates.size(); ++i) {
    REQUIRE(a->SendJson({{"type", "update"},
                         {"opId", "h" + std::to_string(i)},
                         {"deltaB64", kHelloUpdates[i]}})
                .ok());
    REQUIRE(a->NextOfType("ack").ok());
    sent.push_back(std::move(Base64Decode(kHelloUpdates[i])).value());
  }
  h.server().RunOnLoop([](cli::ServerApp& app) { app.documents().RunCompactor(); });
  // The fold runs off the loop and commits a snapshot event; wait for it to land.
  Seq folded = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (folded == 0 && std::chrono::steady_clock::now() < deadline) {
    h.server().RunOnLoop([&](cli::ServerApp& app) {
      if (const auto* r = app.documents().Find(doc)) folded = r->snapshot_version;
    });
    if (folded == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  REQUIRE(folded > 0);

  json state;
  auto b = h.JoinWithState(doc, "bob", &state);
  Bytes snapshot = std::move(Base64Decode(state["snapshotB64"].get<std::string>())).value();
  CHECK(state["version"].get<Seq>() > 0);  // the compactor folded
  // The tail ends where alice's presence begins (headSeq may be a snapshot event's seq).
  std::vector<Bytes> tail;
  for (;;) {
    auto m = b->NextJson();
    REQUIRE(m.ok());
    if ((*m)["type"] == "presence") break;
    REQUIRE((*m)["type"] == "remote_update");
    CHECK((*m)["seq"].get<Seq>() > state["version"].get<Seq>());
    tail.push_back(std::move(Base64Decode((*m)["deltaB64"].get<std::string>())).value());
  }
  CHECK(FoldAll(snapshot, tail) == FoldAll({}, sent));
}

}  // namespace
}  // namespace quire::test
