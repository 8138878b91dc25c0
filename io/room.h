// Room: the members connected to one document, their presence, and the fan-out of committed
// updates and presence to them. A room does no I/O of its own; members decide how (and
// whether, under backpressure) to deliver what they are given. Loop thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/types.h"

namespace quire::io {

// A serialized server message shared by every recipient (serialize once, fan out).
using SharedFrame = std::shared_ptr<const std::string>;
// A committed CRDT update's bytes, shared by every binary-protocol recipient.
using SharedBytes = std::shared_ptr<const Bytes>;

class RoomMember {
 public:
  virtual ~RoomMember() = default;
  // A committed update, in seq order. Must not be dropped: a member that cannot take it must
  // leave (slow consumer). Must not call back into the room synchronously.
  virtual void DeliverUpdate(Seq seq, const SharedFrame& frame) = 0;
  // Another member's presence; may be dropped under backpressure.
  virtual void DeliverPresence(const SharedFrame& frame) = 0;
  // Members speaking a binary protocol (y-websocket, Hocuspocus) take committed updates as
  // their CRDT bytes through DeliverUpdateBytes instead of the JSON frame; same contract as
  // DeliverUpdate. JSON presence is not for them (DeliverPresence is still called; ignore it).
  virtual bool wants_update_bytes() const { return false; }
  virtual void DeliverUpdateBytes(Seq /*seq*/, const SharedBytes& /*update*/) {}
};

class Room {
 public:
  explicit Room(DocumentId document_id) : document_id_(std::move(document_id)) {}
  Room(const Room&) = delete;
  Room& operator=(const Room&) = delete;

  const DocumentId& document_id() const { return document_id_; }

  // Adds `member` (not owned; it must Leave() before it is destroyed).
  void Join(RoomMember* member);
  // Removes `member`; when it had announced presence, `left_frame` (may be null) goes to the
  // others.
  void Leave(RoomMember* member, const SharedFrame& left_frame);
  bool IsMember(const RoomMember* member) const;

  // Delivers a committed update to every member except `from` (null: to everyone): `frame`
  // (the JSON remote_update) to JSON members, the update bytes to binary members. The bytes
  // are `update` when given, else decoded once from `update_b64` when a binary member needs
  // them (a binary member gets nothing when both are empty).
  void RelayUpdate(const RoomMember* from, Seq seq, const SharedFrame& frame,
                   const SharedBytes& update = nullptr, std::string_view update_b64 = {});
  // Records `frame` as `from`'s current presence and delivers it to every other member.
  void BroadcastPresence(const RoomMember* from, const SharedFrame& frame);
  // The current presence of every member except `except`, in join order.
  std::vector<SharedFrame> PresenceOf(const RoomMember* except) const;

  size_t member_count() const { return members_.size(); }
  // Appends submitted on behalf of this room and not yet completed; a room is kept open while
  // any are pending so their relays still reach the remaining members.
  int64_t pending_appends = 0;
  bool idle() const { return members_.empty() && pending_appends == 0; }

 private:
  struct Entry {
    RoomMember* member;
    SharedFrame presence;  // null until the member announced itself
  };
  DocumentId document_id_;
  std::vector<Entry> members_;  // join order; rooms are small enough for linear scans
};

}  // namespace quire::io
