#include "cli/heap_release.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#include <malloc.h>
#define QUIRE_HAVE_MALLINFO2 1
#endif

namespace quire::cli {

int64_t AnonResidentBytes() {
  int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[128];
  ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  long long size = 0, resident = 0, shared = 0;
  if (std::sscanf(buf, "%lld %lld %lld", &size, &resident, &shared) != 3) return -1;
  long page = ::sysconf(_SC_PAGESIZE);
  if (page <= 0 || resident < shared) return -1;
  return static_cast<int64_t>(resident - shared) * page;
}

HeapRelease::HeapRelease(io::Metrics& metrics, int64_t min_release_bytes)
    : allocated_(metrics.gauge("quire_heap_allocated_bytes",
                               "Heap bytes in use (malloc arenas and mmapped blocks)")),
      free_(metrics.gauge("quire_heap_free_bytes",
                          "Free bytes in malloc's arenas, returned to the kernel or not")),
      resident_unused_(metrics.gauge("quire_heap_resident_unused_bytes",
                                     "Anonymous resident bytes not in use by the heap")),
      releases_(metrics.counter("quire_heap_releases_total",
                                "Times freed heap memory was returned to the kernel")),
      min_release_bytes_(min_release_bytes) {}

void HeapRelease::Tick() {
#ifdef QUIRE_HAVE_MALLINFO2
  struct mallinfo2 info = mallinfo2();
  auto allocated = static_cast<int64_t>(info.uordblks + info.hblkhd);
  allocated_.Set(allocated);
  free_.Set(static_cast<int64_t>(info.fordblks));
  int64_t resident = AnonResidentBytes();
  if (resident < 0) return;
  int64_t unused = resident - allocated;
  resident_unused_.Set(unused);
  // The first tick releases whatever it finds, so that the floor is what a release leaves: a
  // floor taken from a first sample with freed memory still resident (startup's, or that of
  // threads' arenas made under contention) hid later bursts up to that much above it.
  if (floor_ >= 0 && unused < floor_) floor_ = unused;
  if (floor_ >= 0 && unused - floor_ < min_release_bytes_) return;
  malloc_trim(0);
  releases_.Inc();
  // What stays resident after the trim (stacks, metadata, partly used pages) is the new floor.
  info = mallinfo2();
  resident = AnonResidentBytes();
  if (resident >= 0) floor_ = resident - static_cast<int64_t>(info.uordblks + info.hblkhd);
#endif
}

}  // namespace quire::cli
