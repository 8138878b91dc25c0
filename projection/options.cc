#include "projection/document_service.h"

namespace quire::projection {

ProjectionOptions ProjectionOptions::FromConfig(const Config& config) {
  ProjectionOptions o;
  o.snapshot_every_updates = config.snapshot_every_updates;
  o.snapshot_interval_ms = config.snapshot_interval_s * 1000;
  o.head_cache_bytes = config.head_cache_bytes;
  o.retain_updates_ms =
      config.retain_updates_days < 0 ? -1 : config.retain_updates_days * 86'400'000;
  return o;
}

}  // namespace quire::projection
