// WsTimerSet (io/internal/ws_timer.h): N one-shot deadlines on one libuv timer handle, on a real
// loop. Deadlines due together are reported together, in one callback; the others stay armed;
// a handler may re-arm its own deadline; Stop/StopAll disarm; the owner may destroy the set
// from inside its own callback; every test ends with uv_loop_close returning 0.
#include "io/internal/ws_timer.h"

#include <uv.h>

#include <catch2/catch.hpp>
#include <memory>
#include <vector>

namespace quire::test {
namespace {

using io::internal::WsTimerSet;

struct Fired {
  uint64_t at_ms;
  uint32_t mask;
};

struct Owner {
  uv_loop_t* loop = nullptr;
  std::unique_ptr<WsTimerSet<3>> timers;
  std::vector<Fired> fired;
  int rearm_slot0 = 0;  // re-arm slot 0 from its own handler this many times
  bool destroy_in_callback = false;

  static void OnTimers(void* arg) {
    auto* o = static_cast<Owner*>(arg);
    uint32_t due = o->timers->TakeDue();
    o->fired.push_back({uv_now(o->loop), due});
    if ((due & 1u) != 0 && o->rearm_slot0 > 0) {
      --o->rearm_slot0;
      o->timers->Start(0, 5);
    }
    if (o->destroy_in_callback) o->timers.reset();
  }
};

void CloseLoop(uv_loop_t* loop) {
  uv_run(loop, UV_RUN_DEFAULT);  // runs the close callbacks of handles already closing
  CHECK(uv_loop_close(loop) == 0);
}

}  // namespace

TEST_CASE("DeadlinesDueTogetherAreReportedTogetherAndTheOthersStayArmed") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  Owner o;
  o.loop = &loop;
  o.timers = std::make_unique<WsTimerSet<3>>(&loop, &Owner::OnTimers, &o);
  uint64_t start = uv_now(&loop);
  o.timers->Start(0, 40);
  o.timers->Start(1, 10);
  o.timers->Start(2, 10);
  CHECK(o.timers->active(0));
  CHECK(o.timers->active(1));
  uv_run(&loop, UV_RUN_DEFAULT);  // returns once nothing is armed
  REQUIRE(o.fired.size() == 2);
  CHECK(o.fired[0].mask == 0b110u);
  CHECK(o.fired[0].at_ms - start >= 10);
  CHECK(o.fired[1].mask == 0b001u);
  CHECK(o.fired[1].at_ms - start >= 40);
  CHECK_FALSE(o.timers->active(0));
  o.timers.reset();
  CloseLoop(&loop);
}

TEST_CASE("AHandlerMayRearmItsOwnDeadlineAndStopDisarmsOne") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  Owner o;
  o.loop = &loop;
  o.rearm_slot0 = 3;
  o.timers = std::make_unique<WsTimerSet<3>>(&loop, &Owner::OnTimers, &o);
  o.timers->Start(0, 5);
  o.timers->Start(1, 15);
  o.timers->Stop(1);  // never fires
  CHECK_FALSE(o.timers->active(1));
  uv_run(&loop, UV_RUN_DEFAULT);
  REQUIRE(o.fired.size() == 4);  // the first deadline and its three re-arms
  for (const Fired& f : o.fired) CHECK(f.mask == 0b001u);
  o.timers.reset();
  CloseLoop(&loop);
}

TEST_CASE("StopAllDisarmsEveryDeadline") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  Owner o;
  o.loop = &loop;
  o.timers = std::make_unique<WsTimerSet<3>>(&loop, &Owner::OnTimers, &o);
  o.timers->Start(0, 5);
  o.timers->Start(2, 0);
  o.timers->StopAll();
  CHECK_FALSE(o.timers->active(0));
  CHECK_FALSE(o.timers->active(2));
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(o.fired.empty());
  o.timers.reset();
  CloseLoop(&loop);
}

TEST_CASE("TheOwnerMayDestroyTheSetFromItsOwnCallback") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  Owner o;
  o.loop = &loop;
  o.destroy_in_callback = true;
  o.timers = std::make_unique<WsTimerSet<3>>(&loop, &Owner::OnTimers, &o);
  o.timers->Start(0, 1);
  o.timers->Start(1, 50);  // still armed when the set goes
  uv_run(&loop, UV_RUN_DEFAULT);
  REQUIRE(o.fired.size() == 1);
  CHECK(o.fired[0].mask == 0b001u);
  CHECK(o.timers == nullptr);
  CloseLoop(&loop);
}

}  // namespace quire::test
