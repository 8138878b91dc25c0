#include "io/room.h"

#include <algorithm>

#include "core/base64.h"
#include "core/yjs/protocol.h"
#include "io/json_protocol.h"

namespace quire::io {
namespace {

SharedFrame BridgedPresence(uint64_t client, std::string_view state_json, std::string_view status,
                            const ws::AwarenessOwner* identity) {
  return std::make_shared<const std::string>(
      ws::PresenceMessage(ws::PresenceFromAwarenessState(client, state_json, status, identity)));
}

}  // namespace

void Room::Join(RoomMember* member, std::shared_ptr<const ws::AwarenessOwner> owner) {
  if (IsMember(member)) return;
  members_.push_back(Entry{member, nullptr, std::move(owner)});
  if (bridging_ || !member->wants_update_bytes()) return;
  // The first binary member: from now on JSON members' presence is kept as awareness too.
  // Nobody saw these states yet; the newcomer asks for AwarenessUpdate() once it has joined.
  bridging_ = true;
  for (const Entry& e : members_) {
    if (e.bridged_clock > 0) StoreBridged(e);
  }
}

void Room::Leave(RoomMember* member, const SharedFrame& left_frame) {
  auto it = std::find_if(members_.begin(), members_.end(),
                         [&](const Entry& e) { return e.member == member; });
  if (it == members_.end()) return;
  bool announced = it->presence != nullptr;
  std::string user(member->presence_user_id());
  members_.erase(it);
  if (announced && left_frame) AnnounceGone(member, user, left_frame);
  DropAwarenessOf(member);
}

void Room::PresenceUserChanged(const RoomMember* member, std::string_view old_user,
                               const SharedFrame& old_left) {
  auto it = std::find_if(members_.begin(), members_.end(),
                         [&](const Entry& e) { return e.member == member; });
  if (it == members_.end() || it->presence == nullptr || !old_left) return;
  // Until the new identity is published, newcomers see none for this member.
  it->presence = nullptr;
  AnnounceGone(member, old_user, old_left);
}

void Room::AnnounceGone(const RoomMember* gone, std::string_view user, const SharedFrame& left) {
  SharedFrame frame = left;
  const RoomMember* stays = nullptr;
  if (!user.empty()) {
    for (const Entry& e : members_) {
      if (e.member != gone && e.presence != nullptr && e.member->presence_user_id() == user) {
        frame = e.presence;
        stays = e.member;
        break;
      }
    }
  }
  // Iterate over a copy: delivery must not reenter, but a copy keeps this loop safe anyway.
  auto members = members_;
  for (const Entry& e : members) {
    if (e.member != stays && e.member != gone) e.member->DeliverPresence(frame);
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
  for (const auto& [client, s] : awareness_) {
    if (!s.bridged) out.push_back(BridgedPresence(client, s.json, "active", s.identity.get()));
  }
  return out;
}

bool Room::ApplyAwareness(RoomMember* from, ByteView update) {
  auto entries = yjs::DecodeAwarenessUpdate(update);
  if (!entries.ok()) return false;
  std::shared_ptr<const ws::AwarenessOwner> identity;
  for (const Entry& m : members_) {
    if (m.member == from) identity = m.identity;
  }
  std::vector<SharedFrame> presence;
  std::vector<yjs::AwarenessEntry> relayed;  // all but those aimed at bridged states
  for (const yjs::AwarenessEntry& e : *entries) {
    auto it = awareness_.find(e.client);
    // A JSON member's bridged state is the server's to change, whatever a client sends; such
    // entries are neither applied nor relayed.
    if (it != awareness_.end() && it->second.bridged) continue;
    relayed.push_back(e);
    if (e.state_json == "null") {
      if (it == awareness_.end()) continue;
      presence.push_back(
          BridgedPresence(e.client, it->second.json, "left", it->second.identity.get()));
      awareness_.erase(it);
      RememberRemoved(e.client, e.clock);
      continue;
    }
    if (it == awareness_.end()) {
      auto removed = removed_.find(e.client);
      if (removed != removed_.end() && removed->second >= e.clock) continue;  // a stale echo
    }
    // y-websocket providers echo every awareness change they see, others' included, with the
    // clock they saw: only a higher clock makes the sender the owner of a client id (the one
    // whose leaving removes it).
    if (it != awareness_.end() && it->second.clock >= e.clock) continue;
    bool is_new = it == awareness_.end();
    awareness_[e.client] =
        AwarenessState{e.clock, std::string(e.state_json), from, false, identity};
    presence.push_back(
        BridgedPresence(e.client, e.state_json, is_new ? "joined" : "active", identity.get()));
  }
  if (relayed.size() == entries->size()) {
    DeliverAwarenessToBinary(std::make_shared<const Bytes>(update.begin(), update.end()));
  } else if (!relayed.empty()) {
    DeliverAwarenessToBinary(std::make_shared<const Bytes>(yjs::EncodeAwarenessUpdate(relayed)));
  }
  for (const SharedFrame& f : presence) DeliverPresenceToJson(f);
  return true;
}

void Room::PublishBridgedAwareness(RoomMember* from) {
  auto e = std::find_if(members_.begin(), members_.end(),
                        [&](const Entry& m) { return m.member == from; });
  if (e == members_.end()) return;
  if (!bridging_) {
    ++e->bridged_clock;  // no binary member: nobody to see the state yet
    return;
  }
  uint64_t client = from->bridged_awareness_client();
  auto it = awareness_.find(client);
  // Another member's state under the same id (a 1 in 2^32 clash): leave it alone.
  if (it != awareness_.end() && it->second.owner != from) return;
  ++e->bridged_clock;
  if (!StoreBridged(*e)) return;
  const AwarenessState& s = awareness_.at(client);
  std::vector<yjs::AwarenessEntry> entries = {{client, s.clock, s.json}};
  DeliverAwarenessToBinary(std::make_shared<const Bytes>(yjs::EncodeAwarenessUpdate(entries)));
}

bool Room::StoreBridged(const Entry& e) {
  uint64_t client = e.member->bridged_awareness_client();
  auto it = awareness_.find(client);
  if (it != awareness_.end() && it->second.owner != e.member) return false;
  awareness_[client] =
      AwarenessState{e.bridged_clock, e.member->BridgedAwarenessState(), e.member, true, nullptr};
  return true;
}

Bytes Room::AwarenessUpdate() const {
  std::vector<yjs::AwarenessEntry> entries;
  entries.reserve(awareness_.size());
  for (const auto& [client, s] : awareness_) entries.push_back({client, s.clock, s.json});
  return yjs::EncodeAwarenessUpdate(entries);
}

void Room::DropAwarenessOf(RoomMember* owner) {
  std::vector<yjs::AwarenessEntry> removed;
  std::vector<SharedFrame> left;
  for (auto it = awareness_.begin(); it != awareness_.end();) {
    if (it->second.owner != owner) {
      ++it;
      continue;
    }
    removed.push_back({it->first, it->second.clock + 1, "null"});
    RememberRemoved(it->first, it->second.clock + 1);
    if (!it->second.bridged) {
      left.push_back(
          BridgedPresence(it->first, it->second.json, "left", it->second.identity.get()));
    }
    it = awareness_.erase(it);
  }
  if (!removed.empty()) {
    DeliverAwarenessToBinary(std::make_shared<const Bytes>(yjs::EncodeAwarenessUpdate(removed)));
  }
  for (const SharedFrame& f : left) DeliverPresenceToJson(f);
}

void Room::RememberRemoved(uint64_t client, uint64_t clock) {
  // Echoes arrive within a round trip of the removal; a bound keeps a long-lived room with
  // many short visits from growing. Forgetting early only lets a late stale echo through.
  constexpr size_t kMaxRemoved = 4096;
  if (removed_.size() >= kMaxRemoved) removed_.clear();
  removed_[client] = clock;
}

void Room::DeliverAwarenessToBinary(const SharedBytes& update) {
  auto members = members_;
  for (const Entry& e : members) {
    if (e.member->wants_update_bytes()) e.member->DeliverAwareness(update);
  }
}

void Room::DeliverPresenceToJson(const SharedFrame& frame) {
  auto members = members_;
  for (const Entry& e : members) {
    if (!e.member->wants_update_bytes()) e.member->DeliverPresence(frame);
  }
}

}  // namespace quire::io
