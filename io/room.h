// Room: the members connected to one document, their presence and Yjs awareness, and the
// fan-out of committed updates, presence and awareness to them. A room does no I/O of its own;
// members decide how (and whether, under backpressure) to deliver what they are given. Loop
// thread only.
//
// Presence and awareness are one picture of who is there, bridged both ways (the mapping is
// specified in io/json_protocol.md, "Presence and Yjs awareness"):
// - JSON members publish presence frames (BroadcastPresence) and the awareness state that
//   stands for them (PublishBridgedAwareness, under a synthetic awareness client id per
//   member); binary members get the latter as awareness. A room holds these bridged states
//   only once a binary member joined (until then nobody could see them): the first binary
//   member makes the room build one for every JSON member that published, with the clock it
//   would have reached, and from then on every publication updates it.
// - Binary members (wants_update_bytes()) apply awareness updates (ApplyAwareness); every
//   binary member gets the update, JSON members get a `presence` for each state that changed.
//   With access control on, a member joins with its token's identity (ws::AwarenessOwner) and
//   that presence shows it, whatever the state says.
// - When a member leaves, the awareness states it owned are removed: binary members get a
//   null-state update, JSON members a `left` presence.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/types.h"
#include "io/json_protocol.h"

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
  // Binary members: a y-protocols awareness update (the payload of an awareness message,
  // without the message type) for the document; may be dropped. Must not call back into the
  // room synchronously.
  virtual void DeliverAwareness(const SharedBytes& /*update*/) {}
  // JSON members: the awareness state standing for their current presence
  // (ws::AwarenessStateFromPresence) and its client id; see Room::PublishBridgedAwareness.
  virtual uint64_t bridged_awareness_client() const { return 0; }
  virtual std::string BridgedAwarenessState() const { return {}; }
  // JSON members: the userId their presence speaks for (empty: none). Presence is keyed by
  // userId on the wire, so when one of a user's connections leaves while another stays, the
  // others get the one that stays instead of `left`.
  virtual std::string_view presence_user_id() const { return {}; }
};

class Room {
 public:
  explicit Room(DocumentId document_id) : document_id_(std::move(document_id)) {}
  Room(const Room&) = delete;
  Room& operator=(const Room&) = delete;

  const DocumentId& document_id() const { return document_id_; }

  // Adds `member` (not owned; it must Leave() before it is destroyed). `owner` (access control
  // on: the member's token's sub and name claim) is who the awareness states it applies belong
  // to in the presence JSON members see; null: the states speak for themselves.
  void Join(RoomMember* member, std::shared_ptr<const ws::AwarenessOwner> owner = nullptr);
  // Removes `member`; when it had announced presence, `left_frame` (may be null) goes to the
  // others, unless another announced member has the same presence_user_id(): then that
  // member's current presence goes to everyone but it (the user is still there).
  void Leave(RoomMember* member, const SharedFrame& left_frame);
  bool IsMember(const RoomMember* member) const;
  // `member` now speaks for another userId (a JSON `join` with a new one): the others learn
  // that `old_user` is gone (`old_left`), as on Leave, if `member` had announced presence;
  // `member` counts as not announced until it broadcasts its new presence.
  void PresenceUserChanged(const RoomMember* member, std::string_view old_user,
                           const SharedFrame& old_left);

  // Delivers a committed update to every member except `from` (null: to everyone): `frame`
  // (the JSON remote_update) to JSON members, the update bytes to binary members. The bytes
  // are `update` when given, else decoded once from `update_b64` when a binary member needs
  // them (a binary member gets nothing when both are empty).
  void RelayUpdate(const RoomMember* from, Seq seq, const SharedFrame& frame,
                   const SharedBytes& update = nullptr, std::string_view update_b64 = {});
  // Records `frame` as `from`'s current presence and delivers it to every other member.
  void BroadcastPresence(const RoomMember* from, const SharedFrame& frame);
  // The current presence of every member except `except`, in join order, then the presence
  // standing for the awareness states of binary members (by awareness client id).
  std::vector<SharedFrame> PresenceOf(const RoomMember* except) const;

  // Applies awareness entries sent by binary member `from`: a state with a higher clock than
  // the one held (or a new client id) replaces it and makes `from` its owner; a null state
  // removes the client id; entries aimed at a JSON member's bridged state are ignored. The
  // rest of `update` (as received when nothing was ignored) goes to every binary member, `from`
  // included (y-websocket and Hocuspocus echo it); JSON members get a presence per state
  // applied. Returns false (and changes nothing) when `update` is malformed.
  bool ApplyAwareness(RoomMember* from, ByteView update);
  // JSON member `from` published its presence: advances the clock of the awareness state
  // standing for it (client id from->bridged_awareness_client()) and, once the room holds
  // bridged states (a binary member joined), sets it to from->BridgedAwarenessState() and
  // delivers it to the binary members.
  void PublishBridgedAwareness(RoomMember* from);
  // Every awareness state held, as one awareness update (with no entries when there is none).
  Bytes AwarenessUpdate() const;
  size_t awareness_count() const { return awareness_.size(); }

  size_t member_count() const { return members_.size(); }
  // Appends submitted on behalf of this room and not yet completed; a room is kept open while
  // any are pending so their relays still reach the remaining members.
  int64_t pending_appends = 0;
  bool idle() const { return members_.empty() && pending_appends == 0; }

 private:
  struct Entry {
    RoomMember* member;
    SharedFrame presence;                                // null until the member announced itself
    std::shared_ptr<const ws::AwarenessOwner> identity;  // as given to Join
    // JSON members: publications of the bridged awareness state so far, the clock it has (or
    // will have once built); 0 before the first.
    uint64_t bridged_clock = 0;
  };
  struct AwarenessState {
    uint64_t clock = 0;
    std::string json;
    RoomMember* owner = nullptr;
    bool bridged = false;  // stands for a JSON member's presence
    // The owner's identity when it applied the state (null: none, or bridged).
    std::shared_ptr<const ws::AwarenessOwner> identity;
  };
  // `gone` no longer speaks for `user`: every member but `gone` gets `left`, or the current
  // presence of another announced member with that presence_user_id() (everyone but that
  // member gets it: the user is still there).
  void AnnounceGone(const RoomMember* gone, std::string_view user, const SharedFrame& left);
  void DeliverAwarenessToBinary(const SharedBytes& update);
  // Stores `e`'s bridged awareness state at its clock; false when its client id is another
  // member's (a 1 in 2^32 clash), which is left alone.
  bool StoreBridged(const Entry& e);
  void DeliverPresenceToJson(const SharedFrame& frame);
  // Removes the awareness states `owner` held and tells the others.
  void DropAwarenessOf(RoomMember* owner);

  DocumentId document_id_;
  std::vector<Entry> members_;  // join order; rooms are small enough for linear scans
  std::map<uint64_t, AwarenessState> awareness_;  // by awareness client id
  // A binary member joined: JSON members' bridged states are kept in awareness_. Never reset
  // (a state's clock must not go back for a provider that saw it).
  bool bridging_ = false;
  // The clock at which each removed client id was removed (y-protocols keeps the same in its
  // meta): a state a provider echoes with a clock no higher than that is stale and does not
  // bring the client back (under another member's identity). Cleared beyond kMaxRemoved.
  std::map<uint64_t, uint64_t> removed_;
  void RememberRemoved(uint64_t client, uint64_t clock);
};

}  // namespace quire::io
