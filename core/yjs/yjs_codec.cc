#include "core/yjs/yjs_codec.h"

#include <vector>

#include "core/yjs/update.h"

namespace quire::yjs {
namespace {

class YjsCodecImpl final : public Codec {
 public:
  CrdtKind kind() const override { return CrdtKind::kYjs; }

  // A full decode of the v1 update (see core/yjs/update.h for what is checked).
  Status ValidateUpdate(ByteView update) const override { return yjs::ValidateUpdate(update); }

  bool CanFold() const override { return true; }

  // mergeUpdates([snapshot (when there is one), updates...]): one update equivalent to all.
  Result<Bytes> Fold(ByteView snapshot, std::span<const ByteView> updates) const override {
    std::vector<ByteView> parts;
    parts.reserve(updates.size() + 1);
    if (!snapshot.empty()) parts.push_back(snapshot);
    parts.insert(parts.end(), updates.begin(), updates.end());
    return MergeUpdates(parts);
  }
};

}  // namespace

const Codec& YjsCodec() {
  static const YjsCodecImpl codec;
  return codec;
}

}  // namespace quire::yjs
