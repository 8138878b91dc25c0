// The CRDT codec interface: how the server validates and folds a document's updates without
// understanding more of the CRDT than it must.
#pragma once

#include <span>

#include "core/status.h"
#include "core/types.h"

namespace quire {

class Codec {
 public:
  virtual ~Codec() = default;
  virtual CrdtKind kind() const = 0;

  // OK when `update` is acceptable as one update of this CRDT. The bytes are borrowed.
  virtual Status ValidateUpdate(ByteView update) const = 0;

  // Whether Fold() can make snapshots on the server. `opaque` cannot: its snapshots come only
  // from clients.
  virtual bool CanFold() const = 0;

  // fold(snapshot, updates) -> snapshot. `snapshot` is empty when the document has none yet.
  // The result must be equivalent to applying `snapshot` and then every update in order.
  virtual Result<Bytes> Fold(ByteView snapshot, std::span<const ByteView> updates) const = 0;
};

// The codec for `kind`. The returned codecs are stateless and live for the whole process.
const Codec& CodecFor(CrdtKind kind);

}  // namespace quire
