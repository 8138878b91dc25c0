// HeapRelease: gives freed heap memory back to the kernel after a burst.
//
// glibc's malloc returns memory to the kernel only from the top of a heap. Memory freed below a
// live allocation stays resident for the life of the process, so without help the resident set
// of a long-running server ratchets up to the largest burst it ever served: a slow consumer's
// send queue (up to twice --send-queue, freed when it is closed with 1013), a large document
// evicted from the head cache, a burst of big request bodies. Tick() runs once a second on the
// loop (the compactor timer); when at least `min_release_bytes` became free since the last
// release and were not reused, it calls malloc_trim(0), which returns every free page of every
// arena (MADV_DONTNEED). This is the role periodic purging plays in jemalloc (dirty page decay)
// and tcmalloc (ReleaseMemoryToSystem, which Envoy's overload manager calls on a timer).
// The cost is bounded: one mallinfo2() per second, and a trim only after such a release.
//
// Metrics: quire_heap_allocated_bytes (in use by the process), quire_heap_free_bytes (free in
// malloc's arenas, released or not) and quire_heap_releases_total.
//
// Loop thread only. Without glibc (2.33 or later) Tick() does nothing.
#pragma once

#include <cstdint>

#include "io/metrics.h"

namespace quire::cli {

class HeapRelease {
 public:
  // `metrics` must outlive this object.
  explicit HeapRelease(io::Metrics& metrics, int64_t min_release_bytes = 4 << 20);
  void Tick();

 private:
  io::Gauge& allocated_;
  io::Gauge& free_;
  io::Counter& releases_;
  int64_t min_release_bytes_;
  int64_t low_free_ = -1;  // the least free bytes seen since the last release
};

}  // namespace quire::cli
