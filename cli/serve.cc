// Placeholder until the server is wired (issue 2/3 integration).
#include <cstdio>

#include "cli/commands.h"

namespace quire::cli {
int Serve(const std::vector<std::string>&) {
  std::fputs("quire serve: not wired yet\n", stderr);
  return 2;
}
}  // namespace quire::cli
