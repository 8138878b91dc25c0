// libFuzzer entry for the Yjs engine; see tests/core/yjs_fuzz.sh. Not built by CMake (the test
// glob takes *_test.cc only): the corpus is replayed by yjs_fuzz_test.cc instead.
#include <cstdio>

#include "tests/core/yjs_fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (const char* failure = quire::yjs::fuzz::RunOne(data, size)) {
    std::fprintf(stderr, "yjs fuzz check failed: %s\n", failure);
    __builtin_trap();
  }
  return 0;
}
