#include "cli/heap_release.h"

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#include <malloc.h>
#define QUIRE_HAVE_MALLINFO2 1
#endif

namespace quire::cli {

HeapRelease::HeapRelease(io::Metrics& metrics, int64_t min_release_bytes)
    : allocated_(metrics.gauge("quire_heap_allocated_bytes",
                               "Heap bytes in use (malloc arenas and mmapped blocks)")),
      free_(metrics.gauge("quire_heap_free_bytes",
                          "Free bytes in malloc's arenas, returned to the kernel or not")),
      releases_(metrics.counter("quire_heap_releases_total",
                                "Times freed heap memory was returned to the kernel")),
      min_release_bytes_(min_release_bytes) {}

void HeapRelease::Tick() {
#ifdef QUIRE_HAVE_MALLINFO2
  struct mallinfo2 info = mallinfo2();
  auto free_bytes = static_cast<int64_t>(info.fordblks);
  allocated_.Set(static_cast<int64_t>(info.uordblks + info.hblkhd));
  free_.Set(free_bytes);
  if (low_free_ < 0 || free_bytes < low_free_) low_free_ = free_bytes;
  if (free_bytes - low_free_ < min_release_bytes_) return;
  // Free bytes stay free (and counted) after the trim; only their pages go back. The next
  // release waits for as much again to become free.
  malloc_trim(0);
  releases_.Inc();
  low_free_ = static_cast<int64_t>(mallinfo2().fordblks);
#endif
}

}  // namespace quire::cli
