// Server-made identifiers.
#pragma once

#include <cstdint>
#include <string>

namespace quire {

// A random (version 4) UUID in its canonical lowercase text form. Thread-safe.
std::string NewUuid();

// A time-ordered (version 7, RFC 9562) UUID in its canonical lowercase text form: 48 bits of
// Unix time in milliseconds, a 12-bit counter within the millisecond, 62 random bits. Each
// call returns an id greater than the one before it in this process, also as text (the
// clock going back, or more than 4,096 ids in one millisecond, borrow the next millisecond).
// For ids that are keys of an index: consecutive ones land next to each other, where random
// ones would each touch a page of their own. Thread-safe.
std::string NewTimeOrderedUuid();

// The Unix time in milliseconds of a version 7 UUID made by NewTimeOrderedUuid; -1 when `id`
// is not one in canonical form.
int64_t TimeOrderedUuidMillis(const std::string& id);

}  // namespace quire
