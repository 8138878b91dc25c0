#include "eventlog/internal/wal_write_buffer.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <new>
#include <vector>

namespace quire::eventlog::internal {

namespace {

constexpr size_t kBufferBytes = size_t{1} << 20;
// The default VFS writes at most 128 KiB - 1 bytes per call (it keeps 17 bits of the size).
constexpr size_t kWriteBytes = size_t{64} << 10;
constexpr int kFrameHeaderBytes = 24;
constexpr int kWalHeaderBytes = 32;

std::atomic<int64_t> g_requested{0};
std::atomic<int64_t> g_written{0};
std::atomic<int64_t> g_read{0};

sqlite3_vfs* g_real = nullptr;  // the default VFS, set once at registration
sqlite3_vfs g_vfs;

// A WAL file: our methods in front of the default VFS's file, which follows it in the memory
// SQLite allocated (szOsFile covers both).
struct WalFile {
  sqlite3_file base;
  sqlite3_file* real;
  std::vector<unsigned char>* buffer;  // owned; empty between gathers
  sqlite3_int64 buffer_offset;
  bool commit_header;  // the last write was the header of a commit frame
};

size_t RealOffset() {
  return (sizeof(WalFile) + alignof(std::max_align_t) - 1) / alignof(std::max_align_t) *
         alignof(std::max_align_t);
}

WalFile* AsWal(sqlite3_file* f) { return reinterpret_cast<WalFile*>(f); }

int Flush(WalFile* f) {
  std::vector<unsigned char>& b = *f->buffer;
  int rc = SQLITE_OK;
  for (size_t done = 0; done < b.size() && rc == SQLITE_OK; done += kWriteBytes) {
    const size_t n = std::min(kWriteBytes, b.size() - done);
    rc = f->real->pMethods->xWrite(f->real, b.data() + done, static_cast<int>(n),
                                   f->buffer_offset + static_cast<sqlite3_int64>(done));
    g_written.fetch_add(1, std::memory_order_relaxed);
  }
  // Written or not, the frames leave the buffer: after a failure SQLite rolls the transaction
  // back and writes its frames again.
  b.clear();
  return rc;
}

// A page (a power of two from 512 to 65,536 bytes), a frame header, or the WAL header.
bool Gatherable(int amount, sqlite3_int64 offset) {
  if (amount == kFrameHeaderBytes) return true;
  if (amount == kWalHeaderBytes && offset == 0) return true;
  return amount >= 512 && amount <= 65536 && (amount & (amount - 1)) == 0;
}

// Bytes 4-7 of a frame header: the database size in pages after a commit, 0 otherwise.
bool IsCommitHeader(const unsigned char* p, int amount) {
  return amount == kFrameHeaderBytes && (p[4] | p[5] | p[6] | p[7]) != 0;
}

int WalClose(sqlite3_file* file) {
  WalFile* f = AsWal(file);
  int rc = Flush(f);
  int close_rc = f->real->pMethods->xClose(f->real);
  delete f->buffer;
  f->buffer = nullptr;
  return rc != SQLITE_OK ? rc : close_rc;
}

// Appending frames, SQLite writes the WAL header (a new WAL), then header and page of each
// frame, the commit frame last; it may also overwrite the page of an earlier frame, or every
// header from one frame on (walRewriteChecksums, after reading them back). So:
//  - the write after a commit frame's header (its page) leaves nothing buffered;
//  - a frame header is gathered only when it continues the buffer, i.e. follows the page
//    before it: then its own page follows. A header anywhere else (a rewrite) goes straight
//    through, so that a rewritten commit header is never left behind in the buffer.
int WalWrite(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  WalFile* f = AsWal(file);
  g_requested.fetch_add(1, std::memory_order_relaxed);
  std::vector<unsigned char>& b = *f->buffer;
  const auto* p = static_cast<const unsigned char*>(data);
  const bool after_commit_header = f->commit_header;
  f->commit_header = false;
  const bool joins =
      !b.empty() && offset == f->buffer_offset + static_cast<sqlite3_int64>(b.size()) &&
      Gatherable(amount, offset) && b.size() + static_cast<size_t>(amount) <= kBufferBytes;
  if (joins) {
    b.insert(b.end(), p, p + amount);
    if (after_commit_header) return Flush(f);
    f->commit_header = IsCommitHeader(p, amount);
    return SQLITE_OK;
  }
  int rc = Flush(f);
  if (rc != SQLITE_OK) return rc;
  if (!after_commit_header && amount != kFrameHeaderBytes && Gatherable(amount, offset)) {
    f->buffer_offset = offset;
    b.assign(p, p + amount);
    return SQLITE_OK;
  }
  g_written.fetch_add(1, std::memory_order_relaxed);
  rc = f->real->pMethods->xWrite(f->real, data, amount, offset);
  if (rc == SQLITE_OK) f->commit_header = IsCommitHeader(p, amount);
  return rc;
}

// Every other call on a WAL goes to the default VFS's file; those that read, sync, size,
// lock or control it write out what is gathered first. (SQLite keeps the wal-index with the
// database file, so the xShm methods are never called on a WAL: they are here only so that
// the table is complete.)
template <auto Method, typename... Args>
int FlushThen(sqlite3_file* file, Args... args) {
  WalFile* f = AsWal(file);
  int rc = Flush(f);
  return rc != SQLITE_OK ? rc : (f->real->pMethods->*Method)(f->real, args...);
}
template <auto Method, typename... Args>
auto Forward(sqlite3_file* file, Args... args) {
  WalFile* f = AsWal(file);
  return (f->real->pMethods->*Method)(f->real, args...);
}

using M = sqlite3_io_methods;

int WalRead(sqlite3_file* file, void* out, int amount, sqlite3_int64 offset) {
  g_read.fetch_add(1, std::memory_order_relaxed);
  return FlushThen<&M::xRead>(file, out, amount, offset);
}

const sqlite3_io_methods kWalMethods = {
    3,
    WalClose,
    WalRead,
    WalWrite,
    FlushThen<&M::xTruncate, sqlite3_int64>,
    FlushThen<&M::xSync, int>,
    FlushThen<&M::xFileSize, sqlite3_int64*>,
    FlushThen<&M::xLock, int>,
    FlushThen<&M::xUnlock, int>,
    FlushThen<&M::xCheckReservedLock, int*>,
    FlushThen<&M::xFileControl, int, void*>,
    Forward<&M::xSectorSize>,
    Forward<&M::xDeviceCharacteristics>,
    FlushThen<&M::xShmMap, int, int, int, void volatile**>,
    FlushThen<&M::xShmLock, int, int, int>,
    Forward<&M::xShmBarrier>,
    FlushThen<&M::xShmUnmap, int>,
    FlushThen<&M::xFetch, sqlite3_int64, int, void**>,
    Forward<&M::xUnfetch, sqlite3_int64, void*>,
};

int Open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  if ((flags & SQLITE_OPEN_WAL) == 0) {
    // Not a WAL: the default VFS's file in place, with its own methods.
    return g_real->xOpen(g_real, name, file, flags, out_flags);
  }
  WalFile* f = AsWal(file);
  f->base.pMethods = nullptr;
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + RealOffset());
  int rc = g_real->xOpen(g_real, name, f->real, flags, out_flags);
  if (rc != SQLITE_OK) {
    if (f->real->pMethods != nullptr) f->real->pMethods->xClose(f->real);
    return rc;
  }
  // A version 3 file is what SQLite opens with the default VFS; anything older would lack
  // methods the table above forwards to.
  if (f->real->pMethods->iVersion < 3) {
    f->real->pMethods->xClose(f->real);
    return SQLITE_CANTOPEN;
  }
  f->buffer = new (std::nothrow) std::vector<unsigned char>();
  if (f->buffer == nullptr) {
    f->real->pMethods->xClose(f->real);
    return SQLITE_NOMEM;
  }
  f->buffer_offset = 0;
  f->commit_header = false;
  f->base.pMethods = &kWalMethods;
  return SQLITE_OK;
}

int Delete(sqlite3_vfs*, const char* name, int sync_dir) {
  return g_real->xDelete(g_real, name, sync_dir);
}
int Access(sqlite3_vfs*, const char* name, int flags, int* out) {
  return g_real->xAccess(g_real, name, flags, out);
}
int FullPathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return g_real->xFullPathname(g_real, name, n, out);
}
void* DlOpen(sqlite3_vfs*, const char* name) { return g_real->xDlOpen(g_real, name); }
void DlError(sqlite3_vfs*, int n, char* out) { g_real->xDlError(g_real, n, out); }
void (*DlSym(sqlite3_vfs*, void* handle, const char* symbol))(void) {
  return g_real->xDlSym(g_real, handle, symbol);
}
void DlClose(sqlite3_vfs*, void* handle) { g_real->xDlClose(g_real, handle); }
int Randomness(sqlite3_vfs*, int n, char* out) { return g_real->xRandomness(g_real, n, out); }
int Sleep(sqlite3_vfs*, int us) { return g_real->xSleep(g_real, us); }
int CurrentTime(sqlite3_vfs*, double* out) { return g_real->xCurrentTime(g_real, out); }
int GetLastError(sqlite3_vfs*, int n, char* out) { return g_real->xGetLastError(g_real, n, out); }
int CurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* out) {
  return g_real->xCurrentTimeInt64(g_real, out);
}

const char* Register() {
  sqlite3_vfs* real = sqlite3_vfs_find(nullptr);
  if (real == nullptr || real->iVersion < 2) return nullptr;
  g_real = real;
  std::memset(&g_vfs, 0, sizeof g_vfs);
  g_vfs.iVersion = 2;
  g_vfs.szOsFile = static_cast<int>(RealOffset()) + real->szOsFile;
  g_vfs.mxPathname = real->mxPathname;
  g_vfs.zName = "quire-wal-gather";
  g_vfs.xOpen = Open;
  g_vfs.xDelete = Delete;
  g_vfs.xAccess = Access;
  g_vfs.xFullPathname = FullPathname;
  g_vfs.xDlOpen = DlOpen;
  g_vfs.xDlError = DlError;
  g_vfs.xDlSym = DlSym;
  g_vfs.xDlClose = DlClose;
  g_vfs.xRandomness = Randomness;
  g_vfs.xSleep = Sleep;
  g_vfs.xCurrentTime = CurrentTime;
  g_vfs.xGetLastError = GetLastError;
  g_vfs.xCurrentTimeInt64 = CurrentTimeInt64;
  if (sqlite3_vfs_register(&g_vfs, 0) != SQLITE_OK) return nullptr;
  return g_vfs.zName;
}

}  // namespace

const char* WalWriteBufferVfs() {
  static const char* name = Register();
  return name;
}

WalWriteBufferStats GetWalWriteBufferStats() {
  return {g_requested.load(std::memory_order_relaxed), g_written.load(std::memory_order_relaxed),
          g_read.load(std::memory_order_relaxed)};
}

}  // namespace quire::eventlog::internal
