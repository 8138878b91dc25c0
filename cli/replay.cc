// Placeholder until replay lands (projection helper).
#include <cstdio>

#include "cli/commands.h"

namespace quire::cli {
int Replay(const std::vector<std::string>&) {
  std::fputs("quire replay: not implemented yet\n", stderr);
  return 2;
}
}  // namespace quire::cli
