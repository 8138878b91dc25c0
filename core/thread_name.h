// Names for the server's own threads, so that `top -H`, `perf --sort comm`, gdb and
// /proc/<pid>/task/*/comm tell the loop, the storage thread and the background workers apart.
#pragma once

namespace quire {

// Names the calling thread. Linux keeps at most 15 characters; longer names are cut.
void NameThisThread(const char* name);

}  // namespace quire
