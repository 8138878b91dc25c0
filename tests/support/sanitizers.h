// QUIRE_TEST_ASAN is defined when the test is built with AddressSanitizer (GCC or Clang), whose
// allocator and quarantine make resident-memory checks meaningless.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define QUIRE_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QUIRE_TEST_ASAN 1
#endif
#endif
