// Streaming pieces of the update engine shared by decode, merge, diff and the inspector.
#pragma once

#include <deque>
#include <memory>

#include "core/yjs/lib0_internal.h"
#include "core/yjs/update.h"

namespace quire::yjs::internal {

// Reads the structs of a v1 update one at a time in wire order, validating each, then the
// delete set. Structs borrow the update's bytes.
class UpdateReader {
 public:
  explicit UpdateReader(ByteView update) : r_(update) {}

  // Reads the next struct (Skips included). False at the end of the struct section or on
  // error; status() tells which.
  bool Next(Struct* s);
  // After Next() returned false with an OK status: reads the delete set and checks that no
  // bytes follow it.
  Status ReadDeleteSet(DeleteSet* ds);
  const Status& status() const { return status_; }

  // False when a client block did not follow the previous one in (client descending, start
  // clock ascending) order, which merge needs.
  bool blocks_in_merge_order() const { return blocks_in_merge_order_; }

 private:
  bool Error(std::string_view what) {
    status_ = r_.ErrorStatus(what);
    return false;
  }
  bool ReadId(Id* id);
  bool ReadContent(uint8_t ref, Struct* s);

  Reader r_;
  Status status_;
  bool started_ = false;
  bool at_end_ = false;
  uint64_t blocks_left_ = 0;
  uint64_t structs_left_ = 0;
  uint64_t client_ = 0;
  uint64_t clock_ = 0;
  bool have_block_ = false;
  uint64_t block_client_ = 0;
  uint64_t block_start_ = 0;
  bool blocks_in_merge_order_ = true;
};

// Owns the bytes of content made by slicing.
class Arena {
 public:
  ByteView Keep(Bytes bytes) {
    chunks_.push_back(std::make_unique<Bytes>(std::move(bytes)));
    return *chunks_.back();
  }

 private:
  std::deque<std::unique_ptr<Bytes>> chunks_;
};

// slice(s, offset) of SPEC.md section 5: the part of `s` from clock s.id.clock + offset.
// 0 < offset < s.length. New content bytes live in `arena`.
Result<Struct> SliceStruct(const Struct& s, uint64_t offset, Arena* arena);

// Collects structs into client blocks ("emit" of SPEC.md section 5) and writes the update.
// The update is built in one buffer: each block's struct count, known only when the block
// ends, gets a maximal slot that is closed up then, so the output is never copied whole.
class UpdateWriter {
 public:
  UpdateWriter();
  // Capacity for `bytes` of output (pages not written are never touched).
  void Reserve(size_t bytes) { out_.reserve(bytes); }
  void Emit(const Struct& s);
  // Blocks, then `ds` as given.
  Bytes Finish(const DeleteSet& ds);

 private:
  void CloseBlock();
  Bytes out_;
  uint64_t blocks_ = 0;
  bool open_ = false;
  size_t block_begin_ = 0;  // offset of the open block's count slot
  uint64_t block_count_ = 0;
  uint64_t block_client_ = 0;
  uint64_t next_clock_ = 0;
};

// The info byte WriteStruct writes for `s`: 0x20 exactly when parentSub is known, and nothing
// but the kind for GC and Skip.
uint8_t InfoByte(const Struct& s);

// Appends one struct (info byte recomputed; a struct's raw bytes when it has them).
void WriteStruct(const Struct& s, Bytes* out);

}  // namespace quire::yjs::internal
