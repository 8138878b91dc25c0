// The presence <-> awareness bridge (io/room.h, io/json_protocol.md "Presence and Yjs
// awareness") with real clients on one document: a JSON client's presence reaches y-websocket
// clients as an awareness state under a synthetic client id, a y-websocket client's awareness
// reaches JSON clients as `presence` (userId "yjs:<clientID>"), and both disappear when their
// connection closes (`left` / a null state).
#include <catch2/catch.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/yjs/protocol.h"
#include "io/json_protocol.h"
#include "tests/support/ws_harness.h"

namespace quire::test {
namespace {

struct AwarenessSeen {
  uint64_t client = 0;
  uint64_t clock = 0;
  std::string state;  // JSON text, "null" for a removal
};

std::unique_ptr<WsClient> ConnectYws(WsHarness& h, const std::string& doc) {
  auto c = WsClient::Connect(h.port(), "/yjs/" + doc);
  REQUIRE(c.ok());
  return std::move(c).value();
}

// Reads binary messages until an awareness entry satisfying `want` arrives (other messages and
// entries are skipped); fails the test after `max_messages` or a timeout.
AwarenessSeen NextAwareness(WsClient& c, const std::function<bool(const AwarenessSeen&)>& want,
                            int max_messages = 20) {
  for (int i = 0; i < max_messages; ++i) {
    auto m = c.Next(3000);
    REQUIRE(m.ok());
    if (m->kind != WsMessage::Kind::kBinary) continue;
    auto decoded = yjs::DecodeMessage(AsBytes(m->data));
    REQUIRE(decoded.ok());
    if (decoded->type != yjs::MessageType::kAwareness) continue;
    auto entries = yjs::DecodeAwarenessUpdate(decoded->payload);
    REQUIRE(entries.ok());
    for (const yjs::AwarenessEntry& e : *entries) {
      AwarenessSeen seen{e.client, e.clock, std::string(e.state_json)};
      if (want(seen)) return seen;
    }
  }
  FAIL("no matching awareness entry");
  return {};
}

Bytes AwarenessMessage(uint64_t client, uint64_t clock, const std::string& state) {
  std::vector<yjs::AwarenessEntry> entries = {{client, clock, state}};
  return yjs::EncodeAwarenessMessage(yjs::EncodeAwarenessUpdate(entries));
}

nlohmann::json NextPresenceOf(WsClient& c, const std::string& user_id) {
  for (int i = 0; i < 20; ++i) {
    auto p = c.NextOfType("presence", 3000);
    REQUIRE(p.ok());
    if ((*p)["userId"] == user_id) return *p;
  }
  FAIL("no presence of " << user_id);
  return {};
}

}  // namespace

TEST_CASE("JsonPresenceReachesYwsClientsAsAwarenessAndIsRemovedOnLeave") {
  WsHarness h;
  std::string doc = h.CreateDocument("yjs");
  auto alice = h.JoinWithState(doc, "alice");
  REQUIRE(
      alice
          ->SendJson(
              {{"type", "presence"}, {"cursor", {{"from", 3}, {"to", 5}}}, {"color", "#abcdef"}})
          .ok());
  REQUIRE(alice->SendJson({{"type", "ping"}}).ok());
  REQUIRE(alice->NextOfType("pong").ok());  // the presence was handled

  // A y-websocket newcomer gets alice's state with the rest of the awareness on connect.
  auto y = ConnectYws(h, doc);
  AwarenessSeen first = NextAwareness(*y, [](const AwarenessSeen& s) {
    return s.state.find(R"("id":"alice")") != std::string::npos;
  });
  auto state = nlohmann::json::parse(first.state);
  CHECK(state["user"]["name"] == "alice");
  CHECK(first.client <= 0xFFFFFFFFu);  // a 32-bit id, like a Y.Doc clientID

  // Later presence changes arrive as newer clocks of the same client id.
  REQUIRE(alice->SendJson({{"type", "presence"}, {"cursor", {{"from", 7}, {"to", 7}}}}).ok());
  AwarenessSeen moved = NextAwareness(*y, [&](const AwarenessSeen& s) {
    return s.client == first.client && s.clock > first.clock;
  });
  state = nlohmann::json::parse(moved.state);
  CHECK(state["cursor"]["from"] == 7);
  CHECK(state["user"]["color"] == "#abcdef");
  CHECK(state["status"] == "active");

  // alice leaves: her state is removed for the y-websocket client.
  REQUIRE(alice->Close().ok());
  AwarenessSeen gone = NextAwareness(
      *y, [&](const AwarenessSeen& s) { return s.client == first.client && s.state == "null"; });
  CHECK(gone.clock > moved.clock);
}

TEST_CASE("ABridgedStateNeverGoesBackInClockWhenBinaryClientsComeAndGo") {
  // The room builds JSON members' awareness states when the first binary client joins; a
  // provider that saw a state must never be offered an older clock for it later, even after
  // every binary client left and another came.
  WsHarness h;
  std::string doc = h.CreateDocument("yjs");
  auto alice = h.JoinWithState(doc, "alice");
  REQUIRE(alice->SendJson({{"type", "presence"}, {"cursor", {{"from", 1}, {"to", 1}}}}).ok());
  REQUIRE(alice->SendJson({{"type", "ping"}}).ok());
  REQUIRE(alice->NextOfType("pong").ok());

  auto y1 = ConnectYws(h, doc);
  AwarenessSeen first = NextAwareness(*y1, [](const AwarenessSeen& s) {
    return s.state.find(R"("id":"alice")") != std::string::npos;
  });
  REQUIRE(y1->Close().ok());

  REQUIRE(alice->SendJson({{"type", "presence"}, {"cursor", {{"from", 9}, {"to", 9}}}}).ok());
  REQUIRE(alice->SendJson({{"type", "ping"}}).ok());
  REQUIRE(alice->NextOfType("pong").ok());
  auto y2 = ConnectYws(h, doc);
  AwarenessSeen later = NextAwareness(*y2, [&](const AwarenessSeen& s) {
    return s.client == first.client && s.state.find(R"("from":9)") != std::string::npos;
  });
  CHECK(later.clock > first.clock);
}

TEST_CASE("YwsAwarenessReachesJsonClientsAsPresenceAndLeavesOnClose") {
  WsHarness h;
  std::string doc = h.CreateDocument("yjs");
  auto bob = h.JoinWithState(doc, "bob");
  auto y = ConnectYws(h, doc);
  REQUIRE(y->Next().ok());  // sync step 1
  REQUIRE(y->SendBinary(AwarenessMessage(4242, 1, R"({"user":{"name":"Yuki","color":"#123456"}})"))
              .ok());
  nlohmann::json p = NextPresenceOf(*bob, "yjs:4242");
  CHECK(p["displayName"] == "Yuki");
  CHECK(p["color"] == "#123456");
  CHECK(p["status"] == "joined");
  CHECK(p["cursor"].is_null());

  REQUIRE(y->SendBinary(AwarenessMessage(4242, 2, R"({"user":{"name":"Yuki K."}})")).ok());
  p = NextPresenceOf(*bob, "yjs:4242");
  CHECK(p["displayName"] == "Yuki K.");
  CHECK(p["status"] == "active");

  // A JSON newcomer sees the y-websocket client among the members already present.
  auto carol = h.JoinWithState(doc, "carol");
  p = NextPresenceOf(*carol, "yjs:4242");
  CHECK(p["displayName"] == "Yuki K.");

  // The y-websocket client goes away: the JSON clients get `left`.
  REQUIRE(y->Close().ok());
  p = NextPresenceOf(*bob, "yjs:4242");
  CHECK(p["status"] == "left");
  p = NextPresenceOf(*carol, "yjs:4242");
  CHECK(p["status"] == "left");
}

TEST_CASE("AStaleEchoOfARemovedStateDoesNotBringItBack") {
  WsHarness h;
  std::string doc = h.CreateDocument("yjs");
  auto bob = h.JoinWithState(doc, "bob");
  auto y1 = ConnectYws(h, doc);
  auto y2 = ConnectYws(h, doc);
  REQUIRE(y1->Next().ok());
  REQUIRE(y2->Next().ok());
  REQUIRE(y1->SendBinary(AwarenessMessage(4242, 3, R"({"user":{"name":"Yuki"}})")).ok());
  CHECK(NextPresenceOf(*bob, "yjs:4242")["status"] == "joined");
  // y1 leaves: its state is removed at clock 4.
  REQUIRE(y1->Close().ok());
  CHECK(NextPresenceOf(*bob, "yjs:4242")["status"] == "left");
  // y2 echoes the state it saw before the removal (y-websocket providers re-broadcast every
  // awareness change): stale, so it does not come back (under y2's name or any other).
  REQUIRE(y2->SendBinary(AwarenessMessage(4242, 3, R"({"user":{"name":"Yuki"}})")).ok());
  REQUIRE(y2->SendBinary(AwarenessMessage(99, 1, R"({"user":{"name":"Zoe"}})")).ok());
  auto p = bob->NextOfType("presence", 3000);
  REQUIRE(p.ok());
  CHECK((*p)["userId"] == "yjs:99");
  CHECK((*p)["status"] == "joined");
  // A newer state of that client id is a real return.
  REQUIRE(y2->SendBinary(AwarenessMessage(4242, 5, R"({"user":{"name":"Yuki"}})")).ok());
  CHECK(NextPresenceOf(*bob, "yjs:4242")["status"] == "joined");
}

TEST_CASE("ExplicitNullAwarenessStateIsALeaveForJsonClients") {
  WsHarness h;
  std::string doc = h.CreateDocument("yjs");
  auto bob = h.JoinWithState(doc, "bob");
  auto y = ConnectYws(h, doc);
  REQUIRE(y->Next().ok());
  REQUIRE(y->SendBinary(AwarenessMessage(7, 1, R"({"user":{"name":"Y"}})")).ok());
  CHECK(NextPresenceOf(*bob, "yjs:7")["status"] == "joined");
  REQUIRE(y->SendBinary(AwarenessMessage(7, 2, "null")).ok());
  CHECK(NextPresenceOf(*bob, "yjs:7")["status"] == "left");
}

TEST_CASE("YwsClientCannotOverwriteAJsonClientsBridgedState") {
  WsHarness h;
  std::string doc = h.CreateDocument("yjs");
  auto alice = h.JoinWithState(doc, "alice");
  auto y = ConnectYws(h, doc);
  AwarenessSeen bridged = NextAwareness(*y, [](const AwarenessSeen& s) {
    return s.state.find(R"("id":"alice")") != std::string::npos;
  });
  auto other = ConnectYws(h, doc);
  NextAwareness(*other, [&](const AwarenessSeen& s) { return s.client == bridged.client; });
  // A forged state (and removal) under alice's synthetic id are ignored by the server.
  REQUIRE(y->SendBinary(AwarenessMessage(bridged.client, bridged.clock + 10,
                                         R"({"user":{"name":"mallory"}})"))
              .ok());
  REQUIRE(y->SendBinary(AwarenessMessage(bridged.client, bridged.clock + 11, "null")).ok());
  REQUIRE(y->SendBinary(yjs::EncodeQueryAwareness()).ok());
  AwarenessSeen answer = NextAwareness(*y, [&](const AwarenessSeen& s) {
    return s.client == bridged.client && s.clock == bridged.clock;
  });
  CHECK(answer.state == bridged.state);
  CHECK(alice->QuietFor(100));  // and the JSON client hears nothing of it
  // Nor does the other y-websocket client: its next awareness is a real client's.
  REQUIRE(y->SendBinary(AwarenessMessage(99, 1, R"({"user":{"name":"real"}})")).ok());
  AwarenessSeen next = NextAwareness(*other, [](const AwarenessSeen&) { return true; });
  CHECK(next.client == 99);
}

TEST_CASE("AwarenessStatesMapToPresenceWithinTheProtocolLimits") {
  auto p = io::ws::PresenceFromAwarenessState(1, "not json", "active");
  CHECK(p.user_id == "yjs:1");
  CHECK(p.display_name == "yjs:1");
  CHECK(p.color == io::ws::DefaultColor("yjs:1"));
  CHECK_FALSE(p.cursor.has_value());

  std::string long_name(300, 'a');
  long_name.replace(255, 2, "\xC3\xA9");  // a two-byte character across the 256-byte cut
  nlohmann::json state = {{"user", {{"name", long_name}, {"color", 5}}},
                          {"cursor", {{"from", 2}, {"to", -1}}}};
  p = io::ws::PresenceFromAwarenessState(9, state.dump(), "joined");
  CHECK(p.display_name.size() == 255);
  CHECK(p.color == io::ws::DefaultColor("yjs:9"));
  CHECK_FALSE(p.cursor.has_value());

  io::ws::PresenceInfo info{"u", "User", "#000000", io::ws::Cursor{1, 2}, "active"};
  auto round =
      io::ws::PresenceFromAwarenessState(3, io::ws::AwarenessStateFromPresence(info), "active");
  CHECK(round.display_name == "User");
  CHECK(round.color == "#000000");
  REQUIRE(round.cursor.has_value());
  CHECK(*round.cursor == io::ws::Cursor{1, 2});
}

}  // namespace quire::test
