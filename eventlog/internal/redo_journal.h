// RedoJournal: the append-only file that makes a batch of events durable before SQLite commits
// it. The SQLite backend writes each batch's stored events here and fsyncs (one or two pages,
// ~0.13 ms on the benchmark disk, against ~0.8 ms for a synchronous=FULL commit), acknowledges,
// and commits its own transaction later at synchronous=NORMAL. After a crash the events that
// SQLite lost are in the journal and are stored again on open (SCHEMA.md, "Redo journal").
//
// Layout: a 4 KiB header block {magic "QUIREJ01", nonce u64, crc32c u32}, then records from
// offset 4096, each {length u32, crc32c u32, nonce u64, payload[length]} with the crc over
// nonce, length and payload. A record counts only if its nonce is the header's and its crc
// matches; reading stops at the first one that does not (a torn tail, the end of the file, or a
// record of an earlier generation left behind after Reset()). Reset() starts a new generation:
// a new random nonce in the header, records again from offset 4096, overwriting the earlier
// generation's blocks in place (an fdatasync that changes no file size is the cheaper one). It is
// only called once everything in the journal is durable elsewhere, so the earlier generation's
// records are never needed again.
//
// The file grows in steps of kGrowBytes of written zeros (which never read as a record: no
// nonce is 0), so that most appends overwrite blocks the file already has: an fdatasync that
// changes the file's size also writes its inode, one more device round trip (~40 us of
// ~160 us per append on the benchmark disk). Only the first generation grows the file.
//
// Not thread-safe: used by the storage thread that owns the SQLite writer.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "eventlog/event.h"

namespace quire::eventlog::internal {

// CRC-32C (Castagnoli), bitwise-reflected, as in iSCSI and ext4.
uint32_t Crc32c(uint32_t crc, std::span<const uint8_t> data);

// The payload of one record: the stored events of a batch, one after another. EncodeEvent
// appends `event` with `seq` as its seq (an append request does not carry its seq).
void EncodeEvent(const Event& event, Seq seq, Bytes& out);
Status DecodeEvents(std::span<const uint8_t> payload, std::vector<Event>& out);

class RedoJournal {
 public:
  static constexpr int64_t kHeaderBytes = 4096;
  // The file's size is a multiple of this once it holds a record (unless the disk was full).
  static constexpr int64_t kGrowBytes = 256 << 10;

  ~RedoJournal();
  RedoJournal(const RedoJournal&) = delete;
  RedoJournal& operator=(const RedoJournal&) = delete;

  // Opens (creating when missing, with the directory entry fsynced) the journal at `path` and
  // locks it (flock): FailedPrecondition while another open holds it. The write position is
  // the end of the current generation's records.
  static Result<std::unique_ptr<RedoJournal>> Open(const std::string& path);
  // Reads the records of the journal at `path` without opening it for writing. A missing file
  // has none.
  static Status ReadRecords(const std::string& path,
                            const std::function<Status(std::span<const uint8_t>)>& visit);

  // Visits the records this journal holds durably (up to the last fsynced Append), in order.
  Status ForEachRecord(const std::function<Status(std::span<const uint8_t>)>& visit);

  // Writes one record at the write position and fdatasyncs. On failure the record may or may
  // not be on disk; the durable end stays where it was, and ForEachRecord() ignores what lies
  // beyond it.
  Status Append(std::span<const uint8_t> payload);

  // Starts a new generation (see above) and fsyncs the header.
  Status Reset();

  // How long the last Append() spent in fdatasync (etcd's wal_fsync_duration): the disk's
  // flush, and the wait for a CPU once it is done. 0 before the first Append().
  int64_t last_sync_ns() const { return last_sync_ns_; }

  // Bytes of records in the current generation (excluding the header).
  int64_t used_bytes() const { return end_ - kHeaderBytes; }

 private:
  RedoJournal(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  // After a record that ends past the file's old size: zeros up to the next kGrowBytes step.
  void Grow(int64_t record_end);

  std::string path_;
  int fd_ = -1;
  uint64_t nonce_ = 0;
  int64_t end_ = kHeaderBytes;  // write position: end of the last durable record
  int64_t size_ = 0;            // the file's size
  int64_t last_sync_ns_ = 0;
  Bytes buffer_;
};

}  // namespace quire::eventlog::internal
