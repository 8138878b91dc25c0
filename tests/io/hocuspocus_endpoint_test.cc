// The Hocuspocus endpoint (/hocuspocus) over real sockets against the real server: the auth
// handshake, the sync answer, acknowledged and relayed updates across protocols, several
// documents over one socket, awareness (echo, removal on Close and on socket close, query),
// session-aware addresses, stateless messages, --no-auto-create, malformed frames, the step 2
// as a diff against the provider's state vector, the server-made opIds in the history, pings
// and the idle timeout.
#include <catch2/catch.hpp>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/base64.h"
#include "core/ids.h"
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

Bytes B(std::initializer_list<int> v) {
  Bytes out;
  for (int x : v) out.push_back(static_cast<uint8_t>(x));
  return out;
}

// One server frame, decoded, with owned copies of its fields.
struct Got {
  Bytes frame;
  hp::Type type = hp::Type::kUnknown;
  std::string address;
  yjs::SyncType sync_type = yjs::SyncType::kStep1;
  Bytes payload;
  hp::AuthType auth_type = hp::AuthType::kToken;
  std::string text;
  bool applied = false;
};

std::unique_ptr<WsClient> ConnectHp(WsHarness& h, const std::string& target = "/hocuspocus") {
  auto c = WsClient::Connect(h.port(), target);
  REQUIRE(c.ok());
  return std::move(*c);
}

Got Next(WsClient& c) {
  auto m = c.Next();
  REQUIRE(m.ok());
  REQUIRE(m->kind == WsMessage::Kind::kBinary);
  Got g;
  g.frame = Bytes(m->data.begin(), m->data.end());
  auto d = hp::Decode(g.frame, hp::Direction::kToClient);
  INFO(d.status().ToString());
  REQUIRE(d.ok());
  g.type = d->type;
  g.address = std::string(d->address);
  g.sync_type = d->sync_type;
  g.payload = Bytes(d->payload.begin(), d->payload.end());
  g.auth_type = d->auth_type;
  g.text = std::string(d->text);
  g.applied = d->applied;
  return g;
}

// The next frame that is not awareness (a JSON member's presence reaches binary members as
// awareness).
Got NextNotAwareness(WsClient& c) {
  for (;;) {
    Got g = Next(c);
    if (g.type != hp::Type::kAwareness) return g;
  }
}

// The same for a y-websocket client: the next sync message.
Bytes NextYwsSync(WsClient& c) {
  for (;;) {
    auto m = c.Next();
    REQUIRE(m.ok());
    REQUIRE(m->kind == WsMessage::Kind::kBinary);
    Bytes b(m->data.begin(), m->data.end());
    auto d = yjs::DecodeMessage(b);
    REQUIRE(d.ok());
    if (d->type == yjs::MessageType::kSync) return b;
  }
}

void Send(WsClient& c, const Bytes& frame) { REQUIRE(c.SendBinary(frame).ok()); }

// Authenticates `doc` and expects the given scope.
void Auth(WsClient& c, const std::string& doc, std::string_view scope = hp::kScopeReadWrite) {
  Send(c, hp::EncodeAuthToken(doc, "any-token", "4.8.0"));
  Got g = Next(c);
  REQUIRE(g.type == hp::Type::kAuth);
  REQUIRE(g.address == doc);
  REQUIRE(g.auth_type == hp::AuthType::kAuthenticated);
  CHECK(g.text == scope);
}

// The one-character insertion "x" by client 1 at clock 0 into the root text "t".
const Bytes kInsertX = B({1, 1, 1, 0, 4, 1, 1, 't', 1, 'x', 0});
// The insertion of "y" after "x" by client 2.
const Bytes kInsertY = B({1, 1, 2, 0, 0x84, 1, 0, 1, 'y', 0});

Bytes AwarenessUpdate(uint64_t client, uint64_t clock, std::string_view json) {
  yjs::AwarenessEntry e{client, clock, json};
  return yjs::EncodeAwarenessUpdate({&e, 1});
}

}  // namespace

TEST_CASE("AuthThenStep1IsAnsweredWithTheServersStep1AndStep2") {
  WsHarness h;
  auto c = ConnectHp(h);
  Auth(*c, "fresh-doc");
  Send(*c, hp::EncodeSyncStep1("fresh-doc", B({0})));
  Got step1 = Next(*c);
  CHECK(step1.type == hp::Type::kSync);
  CHECK(step1.sync_type == yjs::SyncType::kStep1);
  CHECK(step1.payload == B({0}));
  Got step2 = Next(*c);
  CHECK(step2.sync_type == yjs::SyncType::kStep2);
  CHECK(step2.payload == B({0, 0}));
  // The empty step 2 a provider sends back is acknowledged like any update.
  Send(*c, hp::EncodeSyncStep2("fresh-doc", B({0, 0})));
  Got ack = Next(*c);
  CHECK(ack.type == hp::Type::kSyncStatus);
  CHECK(ack.applied);
  CHECK(h.Metric("quire_hocuspocus_connections") == 1);
  CHECK(h.Metric("quire_hocuspocus_documents") == 1);
}

TEST_CASE("PipelinedSyncMessagesAreAnsweredInArrivalOrderRoundAfterRound") {
  WsHarness h;
  auto c = ConnectHp(h);
  Auth(*c, "pipelined");
  // Updates are answered after their commit, a step 1 from the head, so answers are settled
  // out of order; they must still go out in the order the messages came. Each round sends an
  // update, a step 1 and an update without waiting, then one more update as soon as the first
  // answer is back, while the others may still be pending.
  uint64_t clock = 0;
  auto update = [&] {
    Send(*c, hp::EncodeSyncUpdate("pipelined", YjsRootInsert(7, clock, "ab")));
    clock += 2;
  };
  auto expect_ack = [&](int round, int n) {
    Got ack = NextNotAwareness(*c);
    INFO("round " << round << ", update " << n);
    CHECK(ack.type == hp::Type::kSyncStatus);
    CHECK(ack.applied);
  };
  for (int round = 0; round < 20; ++round) {
    update();
    Send(*c, hp::EncodeSyncStep1("pipelined", B({0})));
    update();
    expect_ack(round, 1);
    update();
    Got step1 = NextNotAwareness(*c);
    INFO("round " << round);
    CHECK(step1.type == hp::Type::kSync);
    CHECK(step1.sync_type == yjs::SyncType::kStep1);
    Got step2 = NextNotAwareness(*c);
    CHECK(step2.sync_type == yjs::SyncType::kStep2);
    expect_ack(round, 2);
    expect_ack(round, 3);
  }
}

TEST_CASE("MessagesSentBeforeTheTokenAreHeldUntilAuthenticated") {
  WsHarness h;
  auto c = ConnectHp(h);
  Send(*c, hp::EncodeSyncStep1("held", B({0})));
  Send(*c, hp::EncodeSyncUpdate("held", kInsertX));
  CHECK(c->QuietFor(200));
  Auth(*c, "held");
  Got step1 = Next(*c);
  Got step2 = Next(*c);
  CHECK(step2.sync_type == yjs::SyncType::kStep2);
  Got ack = Next(*c);
  CHECK(ack.type == hp::Type::kSyncStatus);
  CHECK(ack.applied);
  // The held update was appended: a newcomer's step 2 has it.
  auto late = ConnectHp(h);
  Auth(*late, "held");
  Send(*late, hp::EncodeSyncStep1("held", B({0})));
  Next(*late);
  Got s2 = Next(*late);
  auto sv = yjs::StateVectorFromUpdate(s2.payload);
  REQUIRE(sv.ok());
  CHECK(*sv == B({1, 1, 1}));
}

TEST_CASE("UpdatesAreAcknowledgedAfterCommitAndRelayedToEveryProtocol") {
  WsHarness h;
  auto a = ConnectHp(h);
  auto b = ConnectHp(h);
  Auth(*a, "mixed");
  Auth(*b, "mixed");
  auto yws = WsClient::Connect(h.port(), "/yjs/mixed");
  REQUIRE(yws.ok());
  auto yws_first = (*yws)->Next();  // y-websocket's step 1
  REQUIRE(yws_first.ok());
  auto json = h.JoinWithState("mixed", "json-user");

  Send(*a, hp::EncodeSyncUpdate("mixed", kInsertX));
  Got ack = NextNotAwareness(*a);
  CHECK(ack.type == hp::Type::kSyncStatus);
  CHECK(ack.applied);
  Got relay = NextNotAwareness(*b);
  CHECK(relay.frame == hp::EncodeSyncUpdate("mixed", kInsertX));
  auto remote = json->NextOfType("remote_update");
  REQUIRE(remote.ok());
  CHECK((*remote)["deltaB64"] == Base64Encode(kInsertX));
  CHECK(NextYwsSync(**yws) == yjs::EncodeSyncUpdate(kInsertX));

  // A JSON client's update reaches both Hocuspocus clients.
  REQUIRE(json->SendJson({{"type", "update"}, {"opId", "j1"}, {"deltaB64", Base64Encode(kInsertY)}})
              .ok());
  // (For the sender, the Y update is the next after its ack: its own X never came back.)
  CHECK(NextNotAwareness(*a).frame == hp::EncodeSyncUpdate("mixed", kInsertY));
  CHECK(NextNotAwareness(*b).frame == hp::EncodeSyncUpdate("mixed", kInsertY));
}

TEST_CASE("SeveralDocumentsOverOneSocketAreKeptApart") {
  WsHarness h;
  auto multi = ConnectHp(h);
  Auth(*multi, "doc-one");
  Auth(*multi, "doc-two");
  auto two = ConnectHp(h);
  Auth(*two, "doc-two");
  Send(*multi, hp::EncodeSyncUpdate("doc-one", kInsertX));
  Got ack1 = Next(*multi);
  CHECK(ack1.address == "doc-one");
  CHECK(ack1.type == hp::Type::kSyncStatus);
  CHECK(two->QuietFor(150));  // doc-one's update is not doc-two's
  Send(*multi, hp::EncodeSyncUpdate("doc-two", kInsertY));
  Got ack2 = Next(*multi);
  CHECK(ack2.address == "doc-two");
  CHECK(Next(*two).frame == hp::EncodeSyncUpdate("doc-two", kInsertY));
  // An update from the other socket comes back to `multi` addressed to doc-two.
  Send(*two, hp::EncodeSyncUpdate("doc-two", B({1, 1, 3, 0, 4, 1, 1, 'u', 1, 'z', 0})));
  Got relay = Next(*multi);
  CHECK(relay.address == "doc-two");
  CHECK(relay.sync_type == yjs::SyncType::kUpdate);
  // Closing one document leaves the other open on the same socket.
  Send(*multi, hp::EncodeCloseRequest("doc-one"));
  Got closed = Next(*multi);
  CHECK(closed.type == hp::Type::kClose);
  CHECK(closed.address == "doc-one");
  CHECK(closed.text == "provider_initiated");
  Send(*multi, hp::EncodeSyncStep1("doc-two", B({0})));
  CHECK(Next(*multi).address == "doc-two");
  CHECK(h.Metric("quire_hocuspocus_documents") == 2);
}

TEST_CASE("AwarenessIsEchoedToAllAndRemovedWhenADocumentIsClosed") {
  WsHarness h;
  auto a = ConnectHp(h);
  auto b = ConnectHp(h);
  Auth(*a, "aw");
  Auth(*b, "aw");
  Bytes state = AwarenessUpdate(77, 3, R"({"user":"alice"})");
  Send(*a, hp::EncodeAwareness("aw", state));
  CHECK(Next(*b).frame == hp::EncodeAwareness("aw", state));
  // Echoed to the sender too, as @hocuspocus/server does (it keeps the provider's liveness
  // check fed).
  CHECK(Next(*a).frame == hp::EncodeAwareness("aw", state));
  // A newcomer gets the current states on joining; QueryAwareness answers them too.
  auto c = ConnectHp(h);
  Auth(*c, "aw");
  CHECK(Next(*c).frame == hp::EncodeAwareness("aw", state));
  Send(*c, hp::EncodeQueryAwareness("aw"));
  CHECK(Next(*c).frame == hp::EncodeAwareness("aw", state));
  // The provider leaves the document: its client id is removed for the others.
  Send(*a, hp::EncodeCloseRequest("aw"));
  Bytes gone = AwarenessUpdate(77, 4, "null");
  CHECK(Next(*b).frame == hp::EncodeAwareness("aw", gone));
  CHECK(Next(*c).frame == hp::EncodeAwareness("aw", gone));
}

TEST_CASE("AwarenessIsOnePictureWithYWebsocketClients") {
  WsHarness h;
  auto hp_client = ConnectHp(h);
  Auth(*hp_client, "aw-mixed");
  auto yws = WsClient::Connect(h.port(), "/yjs/aw-mixed");
  REQUIRE(yws.ok());
  REQUIRE((*yws)->Next().ok());  // its step 1
  // y-websocket -> Hocuspocus (with the document's address in front).
  Bytes from_yws = AwarenessUpdate(11, 1, R"({"user":"y"})");
  REQUIRE((*yws)->SendBinary(yjs::EncodeAwarenessMessage(from_yws)).ok());
  CHECK(Next(*hp_client).frame == hp::EncodeAwareness("aw-mixed", from_yws));
  // Hocuspocus -> y-websocket.
  Bytes from_hp = AwarenessUpdate(22, 1, R"({"user":"h"})");
  Send(*hp_client, hp::EncodeAwareness("aw-mixed", from_hp));
  for (;;) {
    auto m = (*yws)->Next();
    REQUIRE(m.ok());
    if (Bytes(m->data.begin(), m->data.end()) == yjs::EncodeAwarenessMessage(from_hp)) break;
  }
  // The Hocuspocus session ends: y-websocket learns its client id is gone.
  Send(*hp_client, hp::EncodeCloseRequest("aw-mixed"));
  Bytes gone = yjs::EncodeAwarenessMessage(AwarenessUpdate(22, 2, "null"));
  for (;;) {
    auto m = (*yws)->Next();
    REQUIRE(m.ok());
    if (Bytes(m->data.begin(), m->data.end()) == gone) break;
  }
}

TEST_CASE("AwarenessOfAClosedSocketIsRemovedForTheOthers") {
  WsHarness h;
  auto a = ConnectHp(h);
  auto b = ConnectHp(h);
  Auth(*a, "aw2");
  Auth(*b, "aw2");
  Send(*a, hp::EncodeAwareness("aw2", AwarenessUpdate(5, 1, R"({"c":1})")));
  Next(*b);
  Next(*a);
  REQUIRE(a->Close().ok());
  CHECK(Next(*b).frame == hp::EncodeAwareness("aw2", AwarenessUpdate(5, 2, "null")));
}

TEST_CASE("SessionAwareAddressesAreAnsweredWithTheSameAddress") {
  WsHarness h;
  const std::string s1("sess\0one", 8);
  const std::string s2("sess\0two", 8);
  auto c = ConnectHp(h);
  Send(*c, hp::EncodeAuthToken(s1, "t"));
  CHECK(Next(*c).address == s1);
  Send(*c, hp::EncodeAuthToken(s2, "t"));
  CHECK(Next(*c).address == s2);
  // Two sessions of one document on one socket are two members: each gets the other's update.
  Send(*c, hp::EncodeSyncUpdate(s1, kInsertX));
  std::vector<Got> got = {Next(*c), Next(*c)};
  bool acked = false, relayed = false;
  for (const Got& g : got) {
    if (g.type == hp::Type::kSyncStatus && g.address == s1) acked = true;
    if (g.type == hp::Type::kSync && g.address == s2) relayed = g.payload == kInsertX;
  }
  CHECK(acked);
  CHECK(relayed);
}

TEST_CASE("StatelessIsAcceptedAndNotForwardedBroadcastStatelessClosesTheDocument") {
  WsHarness h;
  auto a = ConnectHp(h);
  auto b = ConnectHp(h);
  Auth(*a, "st");
  Auth(*b, "st");
  Send(*a, hp::EncodeStateless("st", R"({"kind":"note"})"));
  CHECK(b->QuietFor(150));
  CHECK(a->QuietFor(10));
  Send(*a, hp::EncodeBroadcastStateless("st", "everyone"));
  Got closed = Next(*a);
  CHECK(closed.type == hp::Type::kClose);
  CHECK(closed.address == "st");
  CHECK(b->QuietFor(100));
  // The socket stays open: the document can be authenticated again.
  Auth(*a, "st");
}

TEST_CASE("PingIsAnsweredWithPongAndUnknownTypesAreIgnored") {
  WsHarness h;
  auto c = ConnectHp(h);
  Send(*c, hp::EncodePing());
  auto pong = c->Next();
  REQUIRE(pong.ok());
  CHECK(Bytes(pong->data.begin(), pong->data.end()) == hp::EncodePong());
  Auth(*c, "unk");
  Send(*c, B({3, 'u', 'n', 'k', 42, 1, 2, 3}));
  Send(*c, hp::EncodeSyncStep1("unk", B({0})));
  CHECK(Next(*c).type == hp::Type::kSync);  // still served
}

TEST_CASE("NoAutoCreateDeniesUnknownDocumentsAndKeepsTheSocket") {
  WsHarness h(StorageMode::kMemory, [](Config& c) { c.auto_create_documents = false; });
  std::string existing = h.CreateDocument("yjs");
  REQUIRE(!existing.empty());
  auto c = ConnectHp(h);
  Send(*c, hp::EncodeAuthToken("missing", "t"));
  Got denied = Next(*c);
  CHECK(denied.frame == hp::EncodePermissionDenied("missing", "document not found"));
  // What a denied provider still sends is dropped; its other documents are served.
  Send(*c, hp::EncodeSyncUpdate("missing", kInsertX));
  Auth(*c, existing);
  Send(*c, hp::EncodeSyncStep1(existing, B({0})));
  CHECK(Next(*c).address == existing);
  CHECK(h.Metric("quire_hocuspocus_denied_total") == 1);
}

TEST_CASE("InvalidDocumentNamesAndOpaqueDocumentsAreDenied") {
  WsHarness h;
  std::string opaque = h.CreateDocument("opaque");
  auto c = ConnectHp(h);
  Send(*c, hp::EncodeAuthToken("no/slashes", "t"));
  Got bad = Next(*c);
  CHECK(bad.auth_type == hp::AuthType::kPermissionDenied);
  Send(*c, hp::EncodeAuthToken(opaque, "t"));
  Got not_yjs = Next(*c);
  CHECK(not_yjs.frame == hp::EncodePermissionDenied(opaque, "not a Yjs document"));
}

TEST_CASE("HocuspocusPathsAreServedAndOthersNot") {
  WsHarness h;
  auto sub = ConnectHp(h, "/hocuspocus/app-1");
  Auth(*sub, "p");
  WsHandshake hs;
  auto other = WsClient::Connect(h.port(), "/hocuspocusx", {}, &hs);
  CHECK_FALSE(other.ok());
  CHECK(hs.status == 404);
}

TEST_CASE("MalformedHocuspocusFramesCloseWith1007AndTheServerKeepsServing") {
  WsHarness h;
  struct Case {
    const char* name;
    Bytes frame;
    bool authenticate;
  };
  const std::vector<Case> cases = {
      {"empty", B({}), false},
      {"truncated address", B({5, 'a'}), false},
      {"address not UTF-8", B({1, 0xff, 0}), false},
      {"unknown sync type", B({1, 'm', 0, 7, 1, 0}), true},
      {"trailing byte", B({1, 'm', 0, 0, 1, 0, 7}), true},
      {"sync status out of range", B({1, 'm', 8, 5}), true},
      {"update that is not Yjs", B({1, 'm', 0, 2, 3, 1, 2, 3}), true},
      {"bad state vector", B({1, 'm', 0, 0, 2, 5, 0x80}), true},
      {"awareness state not JSON", B({1, 'm', 1, 5, 1, 5, 0, 1, '{'}), true},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    auto client = ConnectHp(h);
    if (c.authenticate) Auth(*client, "m");
    Send(*client, c.frame);
    auto closed = client->WaitClosed();
    REQUIRE(closed.ok());
    CHECK(*closed == 1007);
  }
  auto text = ConnectHp(h);
  REQUIRE(text->SendText("hello").ok());
  auto closed = text->WaitClosed();
  REQUIRE(closed.ok());
  CHECK(*closed == 1007);
  auto good = ConnectHp(h);
  Auth(*good, "m");
}

TEST_CASE("WhatWaitsForAuthenticationIsBounded") {
  WsHarness h(StorageMode::kMemory, [](Config& c) { c.max_messages_per_second = 100000; });
  auto WaitClose = [](WsClient& c) {
    for (;;) {
      auto m = c.Next();
      REQUIRE(m.ok());
      if (m->kind == WsMessage::Kind::kClose) return *m;
    }
  };
  // 1,000 held messages for one document are allowed, the 1,001st closes.
  auto many = ConnectHp(h);
  for (int i = 0; i < 1000; ++i) Send(*many, hp::EncodeQueryAwareness("q"));
  CHECK(many->QuietFor(100));
  Send(*many, hp::EncodeQueryAwareness("q"));
  WsMessage closed = WaitClose(*many);
  CHECK(closed.close_code == 1008);
  CHECK(closed.data == "too many messages before authentication");
  // 100 documents awaiting their token are allowed, the 101st closes.
  auto wide = ConnectHp(h);
  for (int i = 0; i < 100; ++i) Send(*wide, hp::EncodeQueryAwareness("d" + std::to_string(i)));
  CHECK(wide->QuietFor(100));
  Send(*wide, hp::EncodeQueryAwareness("d100"));
  closed = WaitClose(*wide);
  CHECK(closed.close_code == 1008);
  CHECK(closed.data == "too many documents awaiting authentication");
  // Others are served.
  auto good = ConnectHp(h);
  Auth(*good, "q");
}

TEST_CASE("EditsSurviveARestartOnSqlite") {
  WsHarness h(StorageMode::kSqlite);
  {
    auto c = ConnectHp(h);
    Auth(*c, "durable");
    Send(*c, hp::EncodeSyncUpdate("durable", kInsertX));
    CHECK(Next(*c).applied);
  }
  REQUIRE(h.server().Restart().ok());
  auto c = ConnectHp(h);
  Auth(*c, "durable");
  Send(*c, hp::EncodeSyncStep1("durable", B({0})));
  Got step1 = Next(*c);
  CHECK(step1.payload == B({1, 1, 1}));
  Got step2 = Next(*c);
  auto same = yjs::SameDocument(step2.payload, kInsertX);
  REQUIRE(same.ok());
  CHECK(*same);
}

TEST_CASE("Step1WithAPartialStateVectorIsAnsweredWithOnlyWhatTheProviderLacks") {
  WsHarness h;
  // Client 1 types 200 characters, then 100 more after them; client 2 types one at the end.
  const Bytes first = YjsRootInsert(1, 0, std::string(200, 'a'));
  const Bytes second = YjsInsertAfter(1, 200, 1, 199, std::string(100, 'c'));
  const Bytes third = YjsInsertAfter(2, 0, 1, 299, "e");
  auto writer = ConnectHp(h);
  Auth(*writer, "partial");
  for (const Bytes& u : {first, second, third}) {
    Send(*writer, hp::EncodeSyncUpdate("partial", u));
    Got ack = Next(*writer);
    REQUIRE(ack.type == hp::Type::kSyncStatus);
    REQUIRE(ack.applied);  // committed
  }
  ByteView all_parts[] = {first, second, third};
  auto head = yjs::MergeUpdates(all_parts);
  REQUIRE(head.ok());

  // A provider that holds only the first update (client 1 up to clock 200).
  auto late = ConnectHp(h);
  Auth(*late, "partial");
  Send(*late, hp::EncodeSyncStep1("partial", yjs::EncodeStateVector({{1, 200}})));
  Got step1 = Next(*late);
  REQUIRE(step1.type == hp::Type::kSync);
  REQUIRE(step1.sync_type == yjs::SyncType::kStep1);
  auto head_sv = yjs::DecodeStateVector(step1.payload);
  REQUIRE(head_sv.ok());
  CHECK(*head_sv == yjs::StateVector{{1, 300}, {2, 1}});
  Got step2 = Next(*late);
  REQUIRE(step2.type == hp::Type::kSync);
  REQUIRE(step2.sync_type == yjs::SyncType::kStep2);
  CHECK(step2.address == "partial");
  const Bytes& diff = step2.payload;
  // Exactly the missing structs (client 1 from clock 200 on, and client 2), and the provider's
  // state plus the diff is the head state.
  CheckDiffCompletesTheClient(diff, first, *head, {1, 2}, 1, 200);
  // And it is smaller than the whole state, which an empty state vector gets.
  Send(*late, hp::EncodeSyncStep1("partial", B({0})));
  Next(*late);
  Got full = Next(*late);
  REQUIRE(full.sync_type == yjs::SyncType::kStep2);
  CHECK(diff.size() + 150 < full.payload.size());
  auto full_same = yjs::SameDocument(full.payload, *head);
  REQUIRE(full_same.ok());
  CHECK(*full_same);
}

TEST_CASE("HocuspocusUpdatesAreLoggedWithUniqueServerMadeOpIds") {
  WsHarness h;
  auto c = ConnectHp(h);
  Auth(*c, "logged");
  auto j = h.JoinWithState("logged", "json-user");
  const std::vector<Bytes> updates = {YjsRootInsert(1, 0, "a"), YjsInsertAfter(1, 1, 1, 0, "b"),
                                      YjsInsertAfter(1, 2, 1, 1, "c"), YjsRootInsert(1, 0, "a")};
  std::vector<std::string> relayed;
  for (const Bytes& u : updates) {
    Send(*c, hp::EncodeSyncUpdate("logged", u));
    auto relay = j->NextOfType("remote_update");
    REQUIRE(relay.ok());
    relayed.push_back((*relay)["opId"].get<std::string>());
  }
  auto r = HttpRequestOnce(h.port(), "GET", "/api/v1/documents/logged/history?limit=500");
  REQUIRE(r.has_value());
  REQUIRE(r->status == 200);
  const nlohmann::json body = r->Json();
  std::vector<std::string> logged;
  for (const auto& item : body["items"]) {
    if (item["kind"] != "update") continue;
    INFO(item.dump());
    REQUIRE(item["opId"].is_string());
    logged.push_back(item["opId"].get<std::string>());
  }
  // Every update (the repeated one too) is an event of its own, named as it was relayed.
  CHECK(logged == relayed);
  std::set<std::string> unique(logged.begin(), logged.end());
  CHECK(unique.size() == updates.size());
  for (size_t i = 0; i < logged.size(); ++i) {
    const std::string& op = logged[i];
    CHECK(op.rfind("hp-", 0) == 0);
    CHECK(TimeOrderedUuidMillis(op.substr(3)) > 0);
    if (i > 0) CHECK(logged[i - 1] < op);  // time-ordered, as in the yws test
  }
}

TEST_CASE("ServerPingsASilentHocuspocusClientAndClosesItWhenIdle") {
  WsHarness h(StorageMode::kMemory, [](Config& c) {
    c.ping_interval_s = 1;  // the smallest interval (WsConnection clamps to 1 s)
    c.idle_timeout_s = 3;
  });
  // A raw client: it sees the ping frames (WsClient answers them silently) and never answers.
  // It authenticates one document first, then falls silent.
  HttpClient raw(h.port());
  REQUIRE(raw.connected());
  const Bytes auth = hp::EncodeAuthToken("pinged", "t");
  REQUIRE(raw.SendRaw(RawUpgradeRequest("/hocuspocus") +
                      RawClientFrame(0x2, std::string(auth.begin(), auth.end()))));
  auto r = raw.ReadResponse();
  REQUIRE(r.has_value());
  REQUIRE(r->status == 101);
  auto start = std::chrono::steady_clock::now();
  int pings = 0;
  bool authenticated = false;
  std::optional<RawServerFrame> close;
  while (!close) {
    auto f = ReadRawServerFrame(raw, 15000);
    REQUIRE(f.has_value());
    if (f->opcode == 0x9) ++pings;
    if (f->opcode == 0x8) close = f;
    if (f->opcode == 0x2) {
      authenticated = Bytes(f->payload.begin(), f->payload.end()) ==
                      hp::EncodeAuthenticated("pinged", hp::kScopeReadWrite);
    }
  }
  auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(authenticated);
  CHECK(pings >= 1);
  CHECK(close->close_code() == 1000);
  CHECK(close->close_reason() == "idle timeout");
  CHECK(elapsed >= std::chrono::seconds(2));
}

TEST_CASE("SilentHocuspocusClientIsClosedAfterTheIdleTimeout") {
  WsHarness h(StorageMode::kMemory, [](Config& c) {
    c.idle_timeout_s = 1;
    c.ping_interval_s = 30;
  });
  auto c = ConnectHp(h);
  Auth(*c, "idle");
  auto code = c->WaitClosed(6000);
  REQUIRE(code.ok());
  CHECK(*code == 1000);
  // The document session ended with the socket.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (h.Metric("quire_hocuspocus_documents") != 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(h.Metric("quire_hocuspocus_documents") == 0);
}

}  // namespace quire::test
