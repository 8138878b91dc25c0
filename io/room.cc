#include "io/room.h"

#include <algorithm>

#include "core/base64.h"

namespace quire::io {

void Room::Join(RoomMember* member) {
  if (!IsMember(member)) members_.push_back(Entry{member, nullptr});
}

void Room::Leave(RoomMember* member, const SharedFrame& left_frame) {
  auto it = std::find_if(members_.begin(), members_.end(),
                         [&](const Entry& e) { return e.member == member; });
  if (it == members_.end()) return;
  bool announced = it->presence != nullptr;
  members_.erase(it);
  if (announced && left_frame) {
    // Iterate over a copy: delivery must not reenter, but a copy keeps this loop safe anyway.
    auto members = members_;
    for (const Entry& e : members) e.member->DeliverPresence(left_frame);
  }
}

bool Room::IsMember(const RoomMember* member) const {
  return std::any_of(members_.begin(), members_.end(),
                     [&](const Entry& e) { return e.member == member; });
}

void Room::RelayUpdate(const RoomMember* from, Seq seq, const SharedFrame& frame,
                       const SharedBytes& update, std::string_view update_b64) {
  auto members = members_;
  SharedBytes bytes = update;
  for (const Entry& e : members) {
    if (e.member == from) continue;
    if (!e.member->wants_update_bytes()) {
      if (frame) e.member->DeliverUpdate(seq, frame);
      continue;
    }
    if (!bytes && !update_b64.empty()) {
      auto decoded = Base64Decode(update_b64);
      if (decoded.ok()) bytes = std::make_shared<const Bytes>(std::move(*decoded));
    }
    if (bytes) e.member->DeliverUpdateBytes(seq, bytes);
  }
}

void Room::BroadcastPresence(const RoomMember* from, const SharedFrame& frame) {
  for (Entry& e : members_) {
    if (e.member == from) e.presence = frame;
  }
  auto members = members_;
  for (const Entry& e : members) {
    if (e.member != from) e.member->DeliverPresence(frame);
  }
}

std::vector<SharedFrame> Room::PresenceOf(const RoomMember* except) const {
  std::vector<SharedFrame> out;
  for (const Entry& e : members_) {
    if (e.member != except && e.presence) out.push_back(e.presence);
  }
  return out;
}

}  // namespace quire::io
