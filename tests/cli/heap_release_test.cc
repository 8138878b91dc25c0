// HeapRelease on this process's own heap: freed blocks below live data stay resident until the
// release returns them, and a burst that reuses already-released free memory and frees it again
// between two ticks is released too (the free-byte count does not move in that case; the
// resident set does). Under AddressSanitizer malloc is ASan's own and malloc_trim does nothing,
// so the test is skipped there.
#include "cli/heap_release.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "io/metrics.h"
#include "tests/support/sanitizers.h"

namespace quire::cli {
namespace {

constexpr size_t kBlock = 24 << 10;  // below malloc's mmap threshold: taken from the heap
constexpr int kBlocks = 384;         // 9 MiB

// Called through volatile pointers so the compiler cannot pair and drop the allocations (it may
// remove a malloc whose memory is only written and then freed).
void* (*volatile g_malloc)(size_t) = std::malloc;
void (*volatile g_free)(void*) = std::free;

// Allocates `count` blocks and writes every page; returns them.
std::vector<void*> Allocate(int count) {
  std::vector<void*> blocks(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    blocks[static_cast<size_t>(i)] = g_malloc(kBlock);
    REQUIRE(blocks[static_cast<size_t>(i)] != nullptr);
    std::memset(blocks[static_cast<size_t>(i)], (i & 0x7f) + 1, kBlock);
  }
  return blocks;
}

// Ticks `release` and returns how many anonymous resident bytes that gave back.
int64_t TickAndMeasure(HeapRelease& release) {
  int64_t before = AnonResidentBytes();
  release.Tick();
  int64_t after = AnonResidentBytes();
  UNSCOPED_INFO("anonymous resident " << before << " B before the tick, " << after << " after");
  return before - after;
}

// 2 * kBlocks blocks, of which every other one is freed: kBlocks holes between live blocks,
// which glibc never gives back by itself (only the top of a heap shrinks). Returns the live ones.
std::vector<void*> HolesBetweenLiveBlocks() {
  std::vector<void*> blocks = Allocate(2 * kBlocks);
  std::vector<void*> live;
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (i % 2 == 0) {
      g_free(blocks[i]);
    } else {
      live.push_back(blocks[i]);
    }
  }
  return live;
}

// Whether this build and machine let the tests see a release: not under AddressSanitizer
// (malloc is ASan's own, and malloc_trim does nothing), and only with /proc/self/statm.
bool HeapReleaseIsObservable() {
#ifdef QUIRE_TEST_ASAN
  WARN("AddressSanitizer build: malloc_trim is not ASan's; not checked");
  return false;
#else
  if (AnonResidentBytes() < 0) {
    WARN("no /proc/self/statm here; not checked");
    return false;
  }
  return true;
#endif
}

TEST_CASE("FreedHeapBelowLiveDataIsReturnedAndSoIsAReusedBurst", "[heap]") {
  if (!HeapReleaseIsObservable()) return;
  io::Metrics metrics;
  HeapRelease release(metrics);
  auto releases = [&] { return metrics.counter("quire_heap_releases_total", "").value(); };
  release.Tick();  // the first tick releases what is free now: the floor
  CHECK(releases() == 1);

  // 9 MiB freed below live data: resident, not in use, released at the next tick.
  std::vector<void*> live = HolesBetweenLiveBlocks();
  CHECK(TickAndMeasure(release) >= 6 << 20);  // of 9 MiB: pages wholly inside each hole
  CHECK(releases() == 2);

  // The same burst again: it reuses the released free chunks (malloc's free bytes end where they
  // started) and faults their pages back in. The next tick sees them resident and releases them.
  for (void* b : Allocate(kBlocks)) g_free(b);
  CHECK(TickAndMeasure(release) >= 6 << 20);
  CHECK(releases() == 3);

  // Nothing more became resident: no release.
  release.Tick();
  CHECK(releases() == 3);
  for (void* b : live) g_free(b);
}

TEST_CASE("MemoryAlreadyFreeAtTheFirstTickIsReturnedAndDoesNotRaiseTheFloor", "[heap]") {
  if (!HeapReleaseIsObservable()) return;
  // Freed below live data before the first sample (as at a server's startup, or in arenas
  // that threads made under contention). Taken as the floor, it would hide a later burst of
  // up to that much: the slow-reader test saw 10.8 MB resident but unused, and no release.
  std::vector<void*> live = HolesBetweenLiveBlocks();
  io::Metrics metrics;
  HeapRelease release(metrics);
  auto releases = [&] { return metrics.counter("quire_heap_releases_total", "").value(); };
  CHECK(TickAndMeasure(release) >= 6 << 20);  // of 9 MiB: pages wholly inside each hole
  CHECK(releases() == 1);

  // A later burst of the same size is returned too.
  for (void* b : Allocate(kBlocks)) g_free(b);
  release.Tick();
  CHECK(releases() == 2);
  for (void* b : live) g_free(b);
}

}  // namespace
}  // namespace quire::cli
