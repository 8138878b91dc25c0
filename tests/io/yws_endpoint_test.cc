// The y-websocket endpoint (/yjs/{id}) over real sockets against the real server: the sync
// handshake (step 2 as a diff against the client's state vector), relays between y-websocket
// and JSON clients of one document, awareness (a newcomer's initial states, removal on close),
// pings and the idle timeout, --no-auto-create, refused ids, metrics, the server-made opIds in
// the history, and malformed frames (closed with 1007, the server keeps serving).
#include <catch2/catch.hpp>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/base64.h"
#include "core/ids.h"
#include "core/yjs/protocol.h"
#include "core/yjs/update.h"
#include "tests/support/http_client.h"
#include "tests/support/raw_ws.h"
#include "tests/support/ws_harness.h"
#include "tests/support/yjs_test_updates.h"

namespace quire::test {
namespace {

Bytes B(std::initializer_list<int> v) {
  Bytes out;
  for (int x : v) out.push_back(static_cast<uint8_t>(x));
  return out;
}

std::unique_ptr<WsClient> ConnectYws(WsHarness& h, const std::string& doc) {
  auto c = WsClient::Connect(h.port(), "/yjs/" + doc);
  REQUIRE(c.ok());
  return std::move(*c);
}

Bytes NextBinary(WsClient& c) {
  auto m = c.Next();
  REQUIRE(m.ok());
  REQUIRE(m->kind == WsMessage::Kind::kBinary);
  return Bytes(m->data.begin(), m->data.end());
}

// The next sync message, skipping awareness (a JSON member's presence arrives as awareness).
Bytes NextSync(WsClient& c) {
  for (;;) {
    Bytes b = NextBinary(c);
    auto m = yjs::DecodeMessage(b);
    REQUIRE(m.ok());
    if (m->type != yjs::MessageType::kAwareness) return b;
  }
}

// The one-character insertion "x" by client 1 at clock 0 into the root text "t".
const Bytes kInsertX = B({1, 1, 1, 0, 4, 1, 1, 't', 1, 'x', 0});

// A value of the server's /metrics (Prometheus text), read over HTTP; -1 when absent.
int64_t ScrapeMetric(int port, const std::string& name) {
  auto r = HttpRequestOnce(port, "GET", "/metrics");
  REQUIRE(r.has_value());
  REQUIRE(r->status == 200);
  auto pos = r->body.find("\n" + name + " ");
  if (pos == std::string::npos) return -1;
  return std::stoll(r->body.substr(pos + name.size() + 2));
}

// Polls ScrapeMetric until it equals `want` (closes are asynchronous) or 10 s passed.
int64_t WaitForMetric(int port, const std::string& name, int64_t want) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int64_t v = ScrapeMetric(port, name);
  while (v != want && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    v = ScrapeMetric(port, name);
  }
  return v;
}

// The items of kind "update" in the document's history (oldest first).
std::vector<nlohmann::json> UpdateEvents(int port, const std::string& doc) {
  auto r = HttpRequestOnce(port, "GET", "/api/v1/documents/" + doc + "/history?limit=500");
  REQUIRE(r.has_value());
  REQUIRE(r->status == 200);
  const nlohmann::json body = r->Json();
  std::vector<nlohmann::json> out;
  for (const auto& item : body["items"]) {
    if (item["kind"] == "update") out.push_back(item);
  }
  return out;
}

}  // namespace

TEST_CASE("FirstConnectCreatesTheDocumentAndSendsSyncStep1") {
  WsHarness h;
  auto c = ConnectYws(h, "fresh-doc");
  CHECK(NextBinary(*c) == yjs::EncodeSyncStep1(B({0})));
  // A client's step 1 is answered with step 2 (the empty document: an empty update).
  REQUIRE(c->SendBinary(yjs::EncodeSyncStep1(B({0}))).ok());
  CHECK(NextBinary(*c) == yjs::EncodeSyncStep2(B({0, 0})));
}

TEST_CASE("YwsUpdatesReachJsonClientsAndJsonUpdatesReachYwsClients") {
  WsHarness h;
  auto y = ConnectYws(h, "mixed");
  NextBinary(*y);  // step 1
  auto j = h.JoinWithState("mixed", "json-user");
  REQUIRE(y->SendBinary(yjs::EncodeSyncUpdate(kInsertX)).ok());
  auto relay = j->NextOfType("remote_update");
  REQUIRE(relay.ok());
  CHECK((*relay)["deltaB64"] == Base64Encode(kInsertX));
  // The insertion of "y" after "x" by client 2.
  const Bytes insert_y = B({1, 1, 2, 0, 0x84, 1, 0, 1, 'y', 0});
  REQUIRE(
      j->SendJson({{"type", "update"}, {"opId", "j1"}, {"deltaB64", Base64Encode(insert_y)}}).ok());
  CHECK(NextSync(*y) == yjs::EncodeSyncUpdate(insert_y));
  // A newcomer's step 2 holds both.
  auto late = ConnectYws(h, "mixed");
  NextSync(*late);
  REQUIRE(late->SendBinary(yjs::EncodeSyncStep1(B({0}))).ok());
  Bytes step2 = NextSync(*late);
  auto m = yjs::DecodeMessage(step2);
  REQUIRE(m.ok());
  CHECK(m->sync_type == yjs::SyncType::kStep2);
  auto sv = yjs::StateVectorFromUpdate(m->payload);
  REQUIRE(sv.ok());
  CHECK(*sv == B({2, 2, 1, 1, 1}));  // client 2 clock 1, client 1 clock 1
}

TEST_CASE("AwarenessOfAClosedConnectionIsRemovedForTheOthers") {
  WsHarness h;
  auto a = ConnectYws(h, "aw");
  auto b = ConnectYws(h, "aw");
  NextBinary(*a);
  NextBinary(*b);
  yjs::AwarenessEntry e{77, 3, R"({"user":"alice"})"};
  Bytes msg = yjs::EncodeAwarenessMessage(yjs::EncodeAwarenessUpdate({&e, 1}));
  REQUIRE(a->SendBinary(msg).ok());
  CHECK(NextBinary(*b) == msg);
  CHECK(NextBinary(*a) == msg);  // echoed to the sender too, as y-websocket's server does
  REQUIRE(a->Close().ok());
  yjs::AwarenessEntry gone{77, 4, "null"};
  CHECK(NextBinary(*b) == yjs::EncodeAwarenessMessage(yjs::EncodeAwarenessUpdate({&gone, 1})));
}

TEST_CASE("NoAutoCreateDeniesUnknownDocumentsAndCloses") {
  WsHarness h(StorageMode::kMemory, [](Config& c) { c.auto_create_documents = false; });
  auto c = ConnectYws(h, "missing");
  CHECK(NextBinary(*c) == yjs::EncodeAuthPermissionDenied("no such document"));
  auto closed = c->WaitClosed();
  REQUIRE(closed.ok());
  CHECK(*closed == 1008);
}

TEST_CASE("MalformedYwsFramesCloseWith1007AndTheServerKeepsServing") {
  WsHarness h;
  struct Case {
    const char* name;
    Bytes frame;
  };
  const std::vector<Case> cases = {
      {"empty", B({})},
      {"unknown message type", B({9})},
      {"sync without a payload", B({0, 0})},
      {"length past the end", B({0, 0, 5, 0})},
      {"trailing byte", B({0, 0, 1, 0, 7})},
      {"unknown sync type", B({0, 7, 1, 0})},
      {"truncated varint", B({0, 0x80})},
      {"update that is not Yjs", B({0, 2, 3, 1, 2, 3})},
      {"bad state vector", B({0, 0, 2, 5, 0x80})},
      {"awareness state not JSON", B({1, 5, 1, 5, 0, 1, '{'})},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    auto client = ConnectYws(h, "bad");
    NextBinary(*client);
    REQUIRE(client->SendBinary(c.frame).ok());
    auto closed = client->WaitClosed();
    REQUIRE(closed.ok());
    CHECK(*closed == 1007);
  }
  auto text = ConnectYws(h, "bad");
  NextBinary(*text);
  REQUIRE(text->SendText("hello").ok());
  auto closed = text->WaitClosed();
  REQUIRE(closed.ok());
  CHECK(*closed == 1007);
  auto good = ConnectYws(h, "bad");
  CHECK(NextBinary(*good) == yjs::EncodeSyncStep1(B({0})));
}

TEST_CASE("Step1WithAPartialStateVectorIsAnsweredWithOnlyWhatTheClientLacks") {
  WsHarness h;
  // Client 1 types 200 characters, then 100 more after them; client 2 types one at the end.
  const Bytes first = YjsRootInsert(1, 0, std::string(200, 'a'));
  const Bytes second = YjsInsertAfter(1, 200, 1, 199, std::string(100, 'c'));
  const Bytes third = YjsInsertAfter(2, 0, 1, 299, "e");
  auto writer = ConnectYws(h, "partial");
  auto observer = ConnectYws(h, "partial");
  NextSync(*writer);
  NextSync(*observer);
  for (const Bytes& u : {first, second, third}) {
    REQUIRE(writer->SendBinary(yjs::EncodeSyncUpdate(u)).ok());
    CHECK(NextSync(*observer) == yjs::EncodeSyncUpdate(u));  // committed and relayed
  }
  ByteView all_parts[] = {first, second, third};
  auto head = yjs::MergeUpdates(all_parts);
  REQUIRE(head.ok());

  // A client that holds only the first update (client 1 up to clock 200).
  auto late = ConnectYws(h, "partial");
  const Bytes head_sv_frame = NextSync(*late);
  auto head_sv = yjs::DecodeMessage(head_sv_frame);
  REQUIRE(head_sv.ok());
  REQUIRE(head_sv->sync_type == yjs::SyncType::kStep1);
  auto head_sv_decoded = yjs::DecodeStateVector(head_sv->payload);
  REQUIRE(head_sv_decoded.ok());
  CHECK(*head_sv_decoded == yjs::StateVector{{1, 300}, {2, 1}});
  REQUIRE(late->SendBinary(yjs::EncodeSyncStep1(yjs::EncodeStateVector({{1, 200}}))).ok());
  Bytes answer = NextSync(*late);
  auto m = yjs::DecodeMessage(answer);
  REQUIRE(m.ok());
  REQUIRE(m->type == yjs::MessageType::kSync);
  REQUIRE(m->sync_type == yjs::SyncType::kStep2);
  const Bytes diff(m->payload.begin(), m->payload.end());
  // Exactly the missing structs (client 1 from clock 200 on, and client 2), and the client's
  // state plus the diff is the head state.
  CheckDiffCompletesTheClient(diff, first, *head, {1, 2}, 1, 200);
  // And it is smaller than the whole state, which an empty state vector gets.
  REQUIRE(late->SendBinary(yjs::EncodeSyncStep1(B({0}))).ok());
  const Bytes full_frame = NextSync(*late);
  auto full = yjs::DecodeMessage(full_frame);
  REQUIRE(full.ok());
  CHECK(diff.size() + 150 < full->payload.size());
  auto full_same = yjs::SameDocument(full->payload, *head);
  REQUIRE(full_same.ok());
  CHECK(*full_same);
  // A client that holds everything gets an update with nothing in it.
  REQUIRE(late->SendBinary(yjs::EncodeSyncStep1(yjs::EncodeStateVector({{1, 300}, {2, 1}}))).ok());
  const Bytes none_frame = NextSync(*late);
  auto none = yjs::DecodeMessage(none_frame);
  REQUIRE(none.ok());
  auto none_decoded = yjs::DecodeUpdate(none->payload);
  REQUIRE(none_decoded.ok());
  CHECK(none_decoded->structs.empty());
}

TEST_CASE("NewcomerReceivesTheOtherYwsClientsAwarenessOnConnect") {
  WsHarness h;
  auto a = ConnectYws(h, "aw-new");
  NextBinary(*a);
  yjs::AwarenessEntry e{4242, 7, R"({"user":{"name":"alice"}})"};
  Bytes msg = yjs::EncodeAwarenessMessage(yjs::EncodeAwarenessUpdate({&e, 1}));
  REQUIRE(a->SendBinary(msg).ok());
  CHECK(NextBinary(*a) == msg);  // the echo: the room holds it now
  auto b = ConnectYws(h, "aw-new");
  const Bytes first = NextBinary(*b);
  auto step1 = yjs::DecodeMessage(first);
  REQUIRE(step1.ok());
  CHECK(step1->type == yjs::MessageType::kSync);
  Bytes second = NextBinary(*b);
  auto aw = yjs::DecodeMessage(second);
  REQUIRE(aw.ok());
  REQUIRE(aw->type == yjs::MessageType::kAwareness);
  auto entries = yjs::DecodeAwarenessUpdate(aw->payload);
  REQUIRE(entries.ok());
  REQUIRE(entries->size() == 1);
  CHECK((*entries)[0].client == 4242);
  CHECK((*entries)[0].clock == 7);
  CHECK((*entries)[0].state_json == e.state_json);
  // A newcomer to a document without awareness gets only its step 1.
  auto c = ConnectYws(h, "aw-none");
  NextBinary(*c);
  CHECK(c->QuietFor(200));
}

TEST_CASE("InvalidDocumentIdsAreRefusedWith404AtTheUpgrade") {
  WsHarness h;
  for (const std::string& target :
       {std::string("/yjs/"), std::string("/yjs/a$b"), std::string("/yjs/a~b"),
        std::string("/yjs/a/b"), std::string("/yjs/") + std::string(129, 'a')}) {
    INFO(target);
    WsHandshake hs;
    auto client = WsClient::Connect(h.port(), target, {}, &hs);
    CHECK_FALSE(client.ok());
    CHECK(hs.status == 404);
    auto body = nlohmann::json::parse(hs.body, nullptr, false);
    REQUIRE(body.is_object());
    CHECK(body["error"]["code"] == "NOT_FOUND");
  }
  // The longest valid id is served.
  auto longest = ConnectYws(h, std::string(128, 'a'));
  CHECK(NextBinary(*longest) == yjs::EncodeSyncStep1(B({0})));
  CHECK(h.Metric("quire_yws_documents_created_total") == 1);
}

TEST_CASE("YwsConnectionAndDocumentCreationMetricsFollowTheConnections") {
  WsHarness h;
  CHECK(ScrapeMetric(h.port(), "quire_yws_connections") == 0);
  CHECK(ScrapeMetric(h.port(), "quire_yws_documents_created_total") == 0);
  auto a = ConnectYws(h, "metered");
  NextBinary(*a);
  CHECK(ScrapeMetric(h.port(), "quire_yws_connections") == 1);
  CHECK(ScrapeMetric(h.port(), "quire_yws_documents_created_total") == 1);
  // A second connection to the same document creates nothing.
  auto b = ConnectYws(h, "metered");
  NextBinary(*b);
  // Nor does one to a document made through REST; a JSON client is not a y-websocket one.
  std::string rest_doc = h.CreateDocument("yjs");
  auto c = ConnectYws(h, rest_doc);
  NextBinary(*c);
  auto json = h.JoinWithState(rest_doc, "json-user");
  CHECK(ScrapeMetric(h.port(), "quire_yws_connections") == 3);
  CHECK(ScrapeMetric(h.port(), "quire_yws_documents_created_total") == 1);
  // A refused upgrade counts nothing.
  WsHandshake hs;
  CHECK_FALSE(WsClient::Connect(h.port(), "/yjs/bad$id", {}, &hs).ok());
  CHECK(ScrapeMetric(h.port(), "quire_yws_connections") == 3);
  REQUIRE(a->Close().ok());
  CHECK(WaitForMetric(h.port(), "quire_yws_connections", 2) == 2);
  REQUIRE(b->Close().ok());
  REQUIRE(c->Close().ok());
  CHECK(WaitForMetric(h.port(), "quire_yws_connections", 0) == 0);
  // A new document counts again.
  auto d = ConnectYws(h, "metered-2");
  NextBinary(*d);
  CHECK(ScrapeMetric(h.port(), "quire_yws_documents_created_total") == 2);
}

TEST_CASE("YwsUpdatesAreLoggedWithUniqueServerMadeOpIds") {
  WsHarness h;
  auto y = ConnectYws(h, "logged");
  NextBinary(*y);
  auto j = h.JoinWithState("logged", "json-user");
  const std::vector<Bytes> updates = {YjsRootInsert(1, 0, "a"), YjsInsertAfter(1, 1, 1, 0, "b"),
                                      YjsInsertAfter(1, 2, 1, 1, "c")};
  std::vector<std::string> relayed;
  for (const Bytes& u : updates) {
    REQUIRE(y->SendBinary(yjs::EncodeSyncUpdate(u)).ok());
    auto relay = j->NextOfType("remote_update");
    REQUIRE(relay.ok());
    relayed.push_back((*relay)["opId"].get<std::string>());
  }
  // The same update sent again is a new event with a new opId (a y-websocket update has no id
  // of its own to deduplicate on).
  REQUIRE(y->SendBinary(yjs::EncodeSyncUpdate(updates[0])).ok());
  auto again = j->NextOfType("remote_update");
  REQUIRE(again.ok());
  relayed.push_back((*again)["opId"].get<std::string>());

  auto events = UpdateEvents(h.port(), "logged");
  REQUIRE(events.size() == relayed.size());
  std::set<std::string> unique;
  for (size_t i = 0; i < events.size(); ++i) {
    INFO(events[i].dump());
    REQUIRE(events[i]["opId"].is_string());
    std::string op = events[i]["opId"].get<std::string>();
    CHECK(op.rfind("yws-", 0) == 0);
    CHECK(TimeOrderedUuidMillis(op.substr(4)) > 0);
    // Later events have greater ids: a document's ids are neighbours in the op_id index.
    if (i > 0) CHECK(events[i - 1]["opId"].get<std::string>() < op);
    CHECK(op == relayed[i]);  // the relay names the logged event
    unique.insert(op);
  }
  CHECK(unique.size() == events.size());
}

TEST_CASE("ServerPingsASilentYwsClientAndClosesItWhenIdle") {
  WsHarness h(StorageMode::kMemory, [](Config& c) {
    c.ping_interval_s = 1;  // the smallest interval (WsConnection clamps to 1 s)
    c.idle_timeout_s = 3;
  });
  // A raw client: it sees the ping frames (WsClient answers them silently) and never answers.
  HttpClient raw(h.port());
  REQUIRE(raw.connected());
  REQUIRE(raw.SendRaw(RawUpgradeRequest("/yjs/pinged")));
  auto r = raw.ReadResponse();
  REQUIRE(r.has_value());
  REQUIRE(r->status == 101);
  auto start = std::chrono::steady_clock::now();
  int pings = 0;
  std::optional<RawServerFrame> close;
  while (!close) {
    auto f = ReadRawServerFrame(raw, 15000);
    REQUIRE(f.has_value());
    if (f->opcode == 0x9) ++pings;
    if (f->opcode == 0x8) close = f;
  }
  auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(pings >= 1);
  CHECK(close->close_code() == 1000);
  CHECK(close->close_reason() == "idle timeout");
  CHECK(elapsed >= std::chrono::seconds(2));
}

TEST_CASE("PongsKeepAYwsClientPastTheIdleTimeout") {
  WsHarness h(StorageMode::kMemory, [](Config& c) {
    c.ping_interval_s = 1;
    c.idle_timeout_s = 4;
  });
  auto c = ConnectYws(h, "kept");
  NextBinary(*c);
  // QuietFor reads (and so answers every ping) but sends nothing else.
  CHECK(c->QuietFor(6000));
  REQUIRE(c->SendBinary(yjs::EncodeSyncStep1(B({0}))).ok());
  CHECK(NextBinary(*c) == yjs::EncodeSyncStep2(B({0, 0})));
}

TEST_CASE("SilentYwsClientIsClosedAfterTheIdleTimeout") {
  WsHarness h(StorageMode::kMemory, [](Config& c) {
    c.idle_timeout_s = 1;
    c.ping_interval_s = 30;
  });
  auto c = ConnectYws(h, "idle");
  NextBinary(*c);
  auto code = c->WaitClosed(6000);
  REQUIRE(code.ok());
  CHECK(*code == 1000);
}

}  // namespace quire::test
