// Joins into a Yjs document share the folded head state while the head stays where it is, on
// every endpoint; a JSON join a few updates later takes that state and then the updates, and
// one many updates later folds again (quire_join_state_cache_{hits,misses}_total count them). What
// each joiner receives is the document's whole current state whether it came from the cache or not.
#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "core/base64.h"
#include "core/yjs/protocol.h"
#include "core/yjs/update.h"
#include "tests/support/ws_harness.h"
#include "tests/support/yjs_test_updates.h"

namespace quire::test {
namespace {

// The state vector of the Yjs state a JSON `state` message carries.
Bytes StateVectorOf(const nlohmann::json& state) {
  auto bytes = Base64Decode(state["snapshotB64"].get<std::string>());
  REQUIRE(bytes.ok());
  auto sv = yjs::StateVectorFromUpdate(*bytes);
  REQUIRE(sv.ok());
  return *sv;
}

// A state vector of one client: {1 entry, client, clock}.
Bytes OneClient(uint8_t client, uint8_t clock) { return Bytes{1, client, clock}; }

TEST_CASE("JoinsAtTheSameHeadShareOneFoldAndAnUpdateMovesIt", "[io][join]") {
  WsHarness h;
  std::string doc = h.CreateDocument("yjs");
  // The editor catches up from seq 0 instead of taking a state: nothing is folded yet.
  auto editor_or = h.Join(doc, "editor", 0);
  REQUIRE(editor_or.ok());
  auto& editor = *editor_or;
  // Client 1 types "abc".
  Bytes abc = YjsRootInsert(1, 0, "abc");
  REQUIRE(
      editor->SendJson({{"type", "update"}, {"opId", "u1"}, {"deltaB64", Base64Encode(abc)}}).ok());
  REQUIRE(editor->NextOfType("ack").ok());
  int64_t misses = h.Metric("quire_join_state_cache_misses_total");
  int64_t hits = h.Metric("quire_join_state_cache_hits_total");

  nlohmann::json first, second;
  auto a = h.JoinWithState(doc, "a", &first);
  auto b = h.JoinWithState(doc, "b", &second);
  CHECK(first == second);
  CHECK(StateVectorOf(first) == OneClient(1, 3));
  CHECK(h.Metric("quire_join_state_cache_misses_total") == misses + 1);
  CHECK(h.Metric("quire_join_state_cache_hits_total") == hits + 1);

  // A y-websocket joiner at the same head: its step 1 comes from the same fold.
  auto y = WsClient::Connect(h.port(), "/yjs/" + doc);
  REQUIRE(y.ok());
  auto step1 = (*y)->Next();
  REQUIRE(step1.ok());
  CHECK(Bytes(step1->data.begin(), step1->data.end()) == yjs::EncodeSyncStep1(OneClient(1, 3)));
  CHECK(h.Metric("quire_join_state_cache_misses_total") == misses + 1);
  CHECK(h.Metric("quire_join_state_cache_hits_total") == hits + 2);

  // Client 2 appends "d" after "c": the head moved. A JSON join takes the cached state and
  // then that update, as a relay would bring it.
  Bytes d = YjsInsertAfter(2, 0, 1, 2, "d");
  REQUIRE(a->SendJson({{"type", "update"}, {"opId", "u2"}, {"deltaB64", Base64Encode(d)}}).ok());
  auto d_ack = a->NextOfType("ack");
  REQUIRE(d_ack.ok());
  nlohmann::json third;
  auto c = h.JoinWithState(doc, "c", &third);
  CHECK(third == first);
  auto after = c->NextOfType("remote_update");
  REQUIRE(after.ok());
  CHECK((*after)["opId"] == "u2");
  CHECK((*after)["seq"] == (*d_ack)["seq"]);
  CHECK((*after)["deltaB64"] == Base64Encode(d));
  CHECK(h.Metric("quire_join_state_cache_misses_total") == misses + 1);
  CHECK(h.Metric("quire_join_state_cache_hits_total") == hits + 3);

  // 64 more updates: too many to follow a cached state, so the next join folds the head.
  for (uint64_t i = 1; i <= 64; ++i) {
    Bytes x = YjsInsertAfter(2, i, 2, i - 1, "x");
    REQUIRE(
        a->SendJson(
             {{"type", "update"}, {"opId", "x" + std::to_string(i)}, {"deltaB64", Base64Encode(x)}})
            .ok());
    REQUIRE(a->NextOfType("ack").ok());
  }
  nlohmann::json fourth;
  auto e = h.JoinWithState(doc, "e", &fourth);
  CHECK(fourth["headSeq"].get<int64_t>() == third["headSeq"].get<int64_t>() + 65);
  CHECK(StateVectorOf(fourth) == Bytes{2, 2, 65, 1, 3});
  CHECK(h.Metric("quire_join_state_cache_misses_total") == misses + 2);
  // The next update follows the state, not the updates folded into it.
  Bytes last = YjsInsertAfter(2, 65, 2, 64, "y");
  REQUIRE(a->SendJson({{"type", "update"}, {"opId", "y"}, {"deltaB64", Base64Encode(last)}}).ok());
  auto relay = e->NextOfType("remote_update");
  REQUIRE(relay.ok());
  CHECK((*relay)["opId"] == "y");
}

}  // namespace
}  // namespace quire::test
