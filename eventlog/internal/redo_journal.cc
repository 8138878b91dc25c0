#include "eventlog/internal/redo_journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>

namespace quire::eventlog::internal {

namespace {

constexpr char kMagic[8] = {'Q', 'U', 'I', 'R', 'E', 'J', '0', '1'};
constexpr int64_t kRecordHeaderBytes = 16;  // length u32, crc u32, nonce u64
// A record longer than this is not ours (a torn length field), whatever its crc says.
constexpr uint32_t kMaxRecordBytes = 1u << 30;

Status Errno(const std::string& what) {
  return Status::IoError(what + ": " + std::strerror(errno));
}

std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}

void PutU32(Bytes& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void PutU64(Bytes& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
uint32_t GetU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{p[i]} << (8 * i);
  return v;
}
uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}
void PutString(Bytes& out, std::span<const uint8_t> s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out.insert(out.end(), s.begin(), s.end());
}

// Bounds-checked reader over one record's payload.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> data) : data_(data) {}
  bool ok() const { return ok_; }
  bool done() const { return pos_ == data_.size(); }
  std::span<const uint8_t> Take(size_t n) {
    if (!ok_ || data_.size() - pos_ < n) {
      ok_ = false;
      return {};
    }
    auto out = data_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  uint8_t U8() {
    auto b = Take(1);
    return ok_ ? b[0] : 0;
  }
  uint32_t U32() {
    auto b = Take(4);
    return ok_ ? GetU32(b.data()) : 0;
  }
  int64_t I64() {
    auto b = Take(8);
    return ok_ ? static_cast<int64_t>(GetU64(b.data())) : 0;
  }
  std::span<const uint8_t> Sized() { return Take(U32()); }

 private:
  std::span<const uint8_t> data_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// Appends the `length` bytes at `offset` to `out` (fewer at the end of the file).
Status ReadAt(int fd, const std::string& path, int64_t offset, size_t length, Bytes& out) {
  const size_t start = out.size();
  out.resize(start + length);
  size_t used = 0;
  while (used < length) {
    ssize_t n = ::pread(fd, out.data() + start + used, length - used,
                        static_cast<off_t>(offset + static_cast<int64_t>(used)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("read " + path);
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  out.resize(start + used);
  return Status::Ok();
}

// The header's nonce, or 0 when the header is missing or torn (then no record counts).
uint64_t HeaderNonce(std::span<const uint8_t> file) {
  if (file.size() < 20 || std::memcmp(file.data(), kMagic, sizeof(kMagic)) != 0) return 0;
  if (Crc32c(0, file.first(16)) != GetU32(file.data() + 16)) return 0;
  return GetU64(file.data() + 8);
}

// The journal file's bytes as far as they can hold records of the current generation, and
// the file's size. A journal that was started over holds none (its first record slot carries
// another nonce, or zeros), so after a clean shutdown only the header and one record header
// are read instead of the whole file (it keeps its size, up to ~16 MiB of earlier
// generations: reading it all was 8% of a `quire replay` of 1M updates in perf).
Status ReadJournalFile(int fd, const std::string& path, Bytes& out, int64_t& file_size) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Errno("stat " + path);
  file_size = st.st_size;
  out.clear();
  constexpr auto kFirst = static_cast<size_t>(RedoJournal::kHeaderBytes + kRecordHeaderBytes);
  QUIRE_RETURN_IF_ERROR(ReadAt(fd, path, 0, kFirst, out));
  const uint64_t nonce = HeaderNonce(out);
  if (nonce == 0 || out.size() < kFirst ||
      GetU64(out.data() + RedoJournal::kHeaderBytes + 8) != nonce) {
    return Status::Ok();
  }
  // A record appended after the fstat (a server writing while `quire replay` reads) is not
  // read: the scan ends at the last whole record, as at a torn tail.
  const int64_t rest = std::max<int64_t>(file_size - static_cast<int64_t>(kFirst), 0);
  return ReadAt(fd, path, static_cast<int64_t>(kFirst), static_cast<size_t>(rest), out);
}

// Visits the records of generation `nonce` in `file`; returns the offset after the last one.
Result<int64_t> ScanRecords(std::span<const uint8_t> file, uint64_t nonce,
                            const std::function<Status(std::span<const uint8_t>)>& visit) {
  int64_t pos = RedoJournal::kHeaderBytes;
  if (nonce == 0) return pos;
  const auto size = static_cast<int64_t>(file.size());
  while (size - pos >= kRecordHeaderBytes) {
    const uint8_t* h = file.data() + pos;
    const uint32_t length = GetU32(h);
    const uint32_t crc = GetU32(h + 4);
    if (GetU64(h + 8) != nonce || length > kMaxRecordBytes ||
        size - pos - kRecordHeaderBytes < length) {
      break;
    }
    auto payload = file.subspan(static_cast<size_t>(pos + kRecordHeaderBytes), length);
    uint32_t expected =
        Crc32c(Crc32c(0, std::span<const uint8_t>(h + 8, 8)), std::span<const uint8_t>(h, 4));
    if (Crc32c(expected, payload) != crc) break;
    if (visit) QUIRE_RETURN_IF_ERROR(visit(payload));
    pos += kRecordHeaderBytes + length;
  }
  return pos;
}

uint64_t NewNonce(uint64_t not_this) {
  std::random_device device;
  for (;;) {
    uint64_t n = (uint64_t{device()} << 32) ^ device();
    if (n != 0 && n != not_this) return n;
  }
}

Status WriteAt(int fd, const std::string& path, std::span<const uint8_t> data, int64_t offset) {
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd, data.data(), data.size(), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("write " + path);
    data = data.subspan(static_cast<size_t>(n));
    offset += n;
  }
  return Status::Ok();
}

// Writes zeros over [from, to). Fails as the write does (a full disk), leaving some of them.
Status WriteZeros(int fd, const std::string& path, int64_t from, int64_t to) {
  static const Bytes zeros(size_t{64} << 10, 0);
  for (int64_t at = from; at < to;) {
    const auto n = static_cast<size_t>(std::min<int64_t>(to - at, std::ssize(zeros)));
    QUIRE_RETURN_IF_ERROR(WriteAt(fd, path, std::span(zeros).first(n), at));
    at += static_cast<int64_t>(n);
  }
  return Status::Ok();
}

}  // namespace

uint32_t Crc32c(uint32_t crc, std::span<const uint8_t> data) {
  static const std::array<uint32_t, 256> table = MakeCrcTable();
  crc = ~crc;
  for (uint8_t b : data) crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

void EncodeEvent(const Event& e, Seq seq, Bytes& out) {
  PutString(out, AsBytes(e.document_id));
  PutU64(out, static_cast<uint64_t>(seq));
  out.push_back(static_cast<uint8_t>(e.kind));
  PutString(out, AsBytes(e.op_id));
  PutString(out, AsBytes(e.actor_id));
  PutString(out, e.payload);
  PutU64(out, static_cast<uint64_t>(e.version));
  PutString(out, AsBytes(e.title));
  out.push_back(static_cast<uint8_t>(e.crdt));
  PutU64(out, static_cast<uint64_t>(e.created_at));
}

Status DecodeEvents(std::span<const uint8_t> payload, std::vector<Event>& out) {
  Reader r(payload);
  while (r.ok() && !r.done()) {
    Event e;
    auto text = [&r](std::string& s) { s.assign(AsString(r.Sized())); };
    text(e.document_id);
    e.seq = r.I64();
    e.kind = static_cast<EventKind>(r.U8());
    text(e.op_id);
    text(e.actor_id);
    auto bytes = r.Sized();
    e.payload.assign(bytes.begin(), bytes.end());
    e.version = r.I64();
    text(e.title);
    e.crdt = static_cast<CrdtKind>(r.U8());
    e.created_at = r.I64();
    if (r.ok()) out.push_back(std::move(e));
  }
  if (!r.ok()) return Status::Corruption("redo journal record does not decode");
  return Status::Ok();
}

RedoJournal::~RedoJournal() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<RedoJournal>> RedoJournal::Open(const std::string& path) {
  const bool existed = std::filesystem::exists(path);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("open " + path);
  std::unique_ptr<RedoJournal> journal(new RedoJournal(path, fd));
  // One writer per journal: a second process (or a second open in this one) would reset it
  // under the first.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Status::FailedPrecondition(path +
                                        " is in use: another server (or tool) has this "
                                        "database open for writing");
    }
    return Errno("lock " + path);
  }
  Bytes file;
  QUIRE_RETURN_IF_ERROR(ReadJournalFile(fd, path, file, journal->size_));
  journal->nonce_ = HeaderNonce(file);
  if (journal->nonce_ == 0) {
    QUIRE_RETURN_IF_ERROR(journal->Reset());
  } else {
    auto end = ScanRecords(file, journal->nonce_, nullptr);
    if (!end.ok()) return end.status();
    journal->end_ = *end;
  }
  if (!existed) {
    // The new file's directory entry must be durable before anything relies on the file.
    std::string dir = std::filesystem::path(path).parent_path().string();
    int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return Errno("open directory of " + path);
    int rc = ::fsync(dfd);
    ::close(dfd);
    if (rc != 0) return Errno("fsync directory of " + path);
  }
  return journal;
}

Status RedoJournal::ReadRecords(const std::string& path,
                                const std::function<Status(std::span<const uint8_t>)>& visit) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) return Status::Ok();
  if (fd < 0) return Errno("open " + path);
  Bytes file;
  int64_t size = 0;
  Status read = ReadJournalFile(fd, path, file, size);
  ::close(fd);
  QUIRE_RETURN_IF_ERROR(read);
  return ScanRecords(file, HeaderNonce(file), visit).status();
}

Status RedoJournal::ForEachRecord(const std::function<Status(std::span<const uint8_t>)>& visit) {
  Bytes file(static_cast<size_t>(end_));
  int64_t got = 0;
  while (got < end_) {
    ssize_t n = ::pread(fd_, file.data() + got, static_cast<size_t>(end_ - got), got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("read " + path_);
    if (n == 0) return Status::Corruption(path_ + " is shorter than its durable records");
    got += n;
  }
  auto end = ScanRecords(file, nonce_, visit);
  if (!end.ok()) return end.status();
  if (*end != end_) return Status::Corruption(path_ + ": a durable record no longer reads back");
  return Status::Ok();
}

Status RedoJournal::Append(std::span<const uint8_t> payload) {
  buffer_.clear();
  PutU32(buffer_, static_cast<uint32_t>(payload.size()));
  PutU32(buffer_, 0);  // the crc, over nonce, length and payload
  PutU64(buffer_, nonce_);
  const std::span<const uint8_t> head(buffer_);
  const uint32_t crc = Crc32c(Crc32c(Crc32c(0, head.subspan(8, 8)), head.first(4)), payload);
  for (int i = 0; i < 4; ++i) buffer_[4 + i] = static_cast<uint8_t>(crc >> (8 * i));
  buffer_.insert(buffer_.end(), payload.begin(), payload.end());
  const int64_t record_end = end_ + static_cast<int64_t>(buffer_.size());
  QUIRE_RETURN_IF_ERROR(WriteAt(fd_, path_, buffer_, end_));
  if (record_end > size_) Grow(record_end);
  const auto sync_start = std::chrono::steady_clock::now();
  if (::fdatasync(fd_) != 0) return Errno("fdatasync " + path_);
  last_sync_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now() - sync_start)
                      .count();
  end_ = record_end;
  return Status::Ok();
}

void RedoJournal::Grow(int64_t record_end) {
  // The record just written ends the file; zeros after it go to disk in the same fdatasync.
  size_ = record_end;
  const int64_t grown = (record_end / kGrowBytes + 1) * kGrowBytes;
  if (WriteZeros(fd_, path_, record_end, grown).ok()) {
    size_ = grown;
    return;
  }
  // A full disk: the space goes back, and later appends grow the file as they go.
  if (::ftruncate(fd_, static_cast<off_t>(record_end)) != 0) {
    // Zeros left behind read as the end of the records all the same.
  }
}

Status RedoJournal::Reset() {
  nonce_ = NewNonce(nonce_);
  Bytes header(kMagic, kMagic + sizeof(kMagic));
  PutU64(header, nonce_);
  PutU32(header, Crc32c(0, header));
  header.resize(static_cast<size_t>(kHeaderBytes), 0);  // the whole block, so records follow it
  QUIRE_RETURN_IF_ERROR(WriteAt(fd_, path_, header, 0));
  if (::fdatasync(fd_) != 0) return Errno("fdatasync " + path_);
  end_ = kHeaderBytes;
  return Status::Ok();
}

}  // namespace quire::eventlog::internal
