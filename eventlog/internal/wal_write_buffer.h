// A SQLite VFS that gathers a connection's WAL frame writes into few large writes.
//
// SQLite writes each WAL frame with two write calls (its 24-byte header, then the page), so a
// commit of the ~3,500 pages that 2 s of S3 dirty made ~7,000 pwrite system calls, which on
// this VM cost most of the commit's 25-30 ms while every append waited (README, S3). Through
// this VFS, a WAL file's writes that follow each other in the file collect in a buffer of
// that file handle's own (up to 1 MiB), written out in writes of 64 KiB (the default VFS takes
// less than 128 KiB per call):
//  - when the write that completes a commit frame arrives (a frame header whose "database
//    size after commit" field is not zero, then its page). SQLite publishes a commit in the
//    wal-index only after writing its commit frame, so every frame of it is in the file
//    before another connection can see it, and a failure to write it out (a full disk) fails
//    that xWrite, as SQLite expects: the transaction rolls back;
//  - when the buffer holds 1 MiB, when a write does not continue the buffer, and before any
//    other call on the file (xRead, xSync, xTruncate, xFileSize, locks, xFileControl,
//    xClose).
// Only writes of a page (a power of two from 512 to 65,536 bytes), of the WAL header (32 bytes
// at offset 0) and of a frame header that follows the page before it are gathered; anything
// else goes straight through (wal_write_buffer.cc says why), so a SQLite that wrote frames
// differently would lose the gathering, not the ordering.
// A process that dies with frames in the buffer loses only frames of a commit not yet
// published, as if it had died before writing them.
//
// Files other than WAL files are the default VFS's own, untouched.
#pragma once

#include <cstdint>

namespace quire::eventlog::internal {

// Registers the VFS (once; thread-safe) and returns its name for sqlite3_open_v2, or nullptr
// when it could not be registered (then the default VFS is used).
const char* WalWriteBufferVfs();

// Process-wide counters, for tests: WAL writes SQLite made, writes made to the files, and
// reads of WAL files opened through this VFS (the writer's own: a checkpoint it runs reads
// every frame it copies; the background checkpointer's connection uses the default VFS).
struct WalWriteBufferStats {
  int64_t requested = 0;
  int64_t written = 0;
  int64_t read = 0;
};
WalWriteBufferStats GetWalWriteBufferStats();

}  // namespace quire::eventlog::internal
