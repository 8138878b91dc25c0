// Server-made identifiers.
#pragma once

#include <string>

namespace quire {

// A random (version 4) UUID in its canonical lowercase text form. Thread-safe.
std::string NewUuid();

}  // namespace quire
