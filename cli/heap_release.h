// HeapRelease: gives freed heap memory back to the kernel after a burst.
//
// glibc's malloc returns memory to the kernel only from the top of a heap. Memory freed below a
// live allocation stays resident for the life of the process, so without help the resident set
// of a long-running server ratchets up to the largest burst it ever served: a slow consumer's
// send queue (up to twice --send-queue, freed when it is closed with 1013), a large document
// evicted from the head cache, a burst of big request bodies. Tick() runs once a second on the
// loop (the compactor timer). It measures what is resident but not in use: the anonymous
// resident set (/proc/self/statm: resident minus file-backed pages) minus the heap in use
// (mallinfo2). Once that has grown by `min_release_bytes` over the least value seen since the
// last release (thread stacks and malloc's own metadata are resident and never in use, so the
// floor is not zero), it calls malloc_trim(0), which returns every free page of every arena
// (MADV_DONTNEED). The first tick releases unconditionally, so the floor starts as what a
// release leaves. This is the role periodic purging plays in jemalloc (dirty page decay) and
// tcmalloc (ReleaseMemoryToSystem, which Envoy's overload manager calls on a timer).
//
// The trigger looks at the state, not at a change between two samples: an earlier version
// compared malloc's free bytes with their least sampled value, and a burst whose queues first
// reused free chunks and then freed them between two ticks never showed the dip, so nothing
// was released (a flaky CI failure of tests/io/slow_reader_memory_test.cc).
// The cost is bounded: one mallinfo2() and one read of /proc/self/statm per second, and a trim
// only when there is something to return.
//
// Metrics: quire_heap_allocated_bytes (in use by the process), quire_heap_free_bytes (free in
// malloc's arenas, released or not), quire_heap_resident_unused_bytes (anonymous resident
// memory not in use by the heap) and quire_heap_releases_total.
//
// Loop thread only. Without glibc (2.33 or later) or /proc, Tick() does nothing.
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
  io::Gauge& resident_unused_;
  io::Counter& releases_;
  int64_t min_release_bytes_;
  int64_t floor_ = -1;  // the least resident-but-unused bytes seen since the last release
                        // (-1 until the first tick's release)
};

// Anonymous resident bytes of this process (/proc/self/statm: resident - shared pages), or -1.
int64_t AnonResidentBytes();

}  // namespace quire::cli
