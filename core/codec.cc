#include "core/codec.h"

#include "core/yjs/yjs_codec.h"

namespace quire {
namespace {

// Automerge's saved documents and incremental change chunks concatenate: loading the
// concatenation is the same as loading the parts in order.
class AutomergeCodec final : public Codec {
 public:
  CrdtKind kind() const override { return CrdtKind::kAutomerge; }
  Status ValidateUpdate(ByteView update) const override {
    if (update.empty()) return Status::InvalidArgument("empty update");
    return Status::Ok();
  }
  bool CanFold() const override { return true; }
  Result<Bytes> Fold(ByteView snapshot, std::span<const ByteView> updates) const override {
    size_t total = snapshot.size();
    for (ByteView u : updates) total += u.size();
    Bytes out;
    out.reserve(total);
    out.insert(out.end(), snapshot.begin(), snapshot.end());
    for (ByteView u : updates) out.insert(out.end(), u.begin(), u.end());
    return out;
  }
};

// Bytes the server does not interpret. Snapshots come from clients (`snapshot` message).
class OpaqueCodec final : public Codec {
 public:
  CrdtKind kind() const override { return CrdtKind::kOpaque; }
  Status ValidateUpdate(ByteView update) const override {
    if (update.empty()) return Status::InvalidArgument("empty update");
    return Status::Ok();
  }
  bool CanFold() const override { return false; }
  Result<Bytes> Fold(ByteView, std::span<const ByteView>) const override {
    return Status::FailedPrecondition("opaque documents are folded by clients only");
  }
};

}  // namespace

const Codec& CodecFor(CrdtKind kind) {
  static const AutomergeCodec automerge;
  static const OpaqueCodec opaque;
  switch (kind) {
    case CrdtKind::kYjs: return yjs::YjsCodec();
    case CrdtKind::kAutomerge: return automerge;
    case CrdtKind::kOpaque: return opaque;
  }
  return opaque;
}

}  // namespace quire
