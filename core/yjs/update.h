// The Yjs update format v1, worked on directly as bytes: decode and validate, merge, diff,
// state vectors and delete sets. No CRDT integration: merge and diff never interpret content.
// The format and the algorithms are specified in core/yjs/SPEC.md; outputs are byte-identical
// to yjs 13.6 for input that yjs produced (except where yjs itself is not deterministic, see
// SPEC.md section 6 on ties between a GC struct and an Item).
//
// All functions are pure and thread-safe. Inputs are borrowed for the call; outputs are owned.
// Every malformed input gives InvalidArgument; work and memory are bounded by the input size.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/types.h"

namespace quire::yjs {

struct Id {
  uint64_t client = 0;
  uint64_t clock = 0;
  friend bool operator==(const Id&, const Id&) = default;
};

enum class StructKind : uint8_t { kGc = 0, kItem = 1, kSkip = 10 };

// The content ref of an Item (the low 5 bits of its info byte).
enum class ContentKind : uint8_t {
  kNone = 0,  // GC and Skip
  kDeleted = 1,
  kJson = 2,
  kBinary = 3,
  kString = 4,
  kEmbed = 5,
  kFormat = 6,
  kType = 7,
  kAny = 8,
  kDoc = 9,
};
std::string_view ContentKindName(ContentKind kind);

// Where an Item's parent comes from. kImplied: not transmitted, because the Item has an origin
// or a rightOrigin (the receiver takes it from them).
enum class ParentKind : uint8_t { kImplied = 0, kRoot = 1, kItem = 2 };

// One struct of an update. Views borrow the bytes of the update it was read from.
struct Struct {
  Id id;
  uint64_t length = 0;  // in clock units (UTF-16 code units for strings)
  StructKind kind = StructKind::kGc;
  ContentKind content_kind = ContentKind::kNone;
  ParentKind parent_kind = ParentKind::kImplied;
  bool has_origin = false;
  bool has_right_origin = false;
  bool has_parent_sub = false;
  Id origin;
  Id right_origin;
  Id parent_item;                // parent_kind == kItem
  std::string_view parent_root;  // parent_kind == kRoot
  std::string_view parent_sub;   // has_parent_sub
  ByteView content;              // the content's v1 body, exactly as on the wire
  // The whole struct as read (info byte to the end of its content) when writing the fields
  // above gives exactly these bytes, so a writer may copy them; empty otherwise. Whatever
  // changes a field of a read struct must clear it (SliceStruct and merge do).
  ByteView raw;

  uint64_t end() const { return id.clock + length; }
};

struct DeleteRange {
  uint64_t clock = 0;
  uint64_t len = 0;
  friend bool operator==(const DeleteRange&, const DeleteRange&) = default;
};
struct DeleteSetClient {
  uint64_t client = 0;
  std::vector<DeleteRange> ranges;
  friend bool operator==(const DeleteSetClient&, const DeleteSetClient&) = default;
};
// Clients in the order of their first appearance; repeated entries for a client are
// concatenated and clients without ranges dropped (as yjs reads a delete set).
using DeleteSet = std::vector<DeleteSetClient>;

struct Update {
  std::vector<Struct> structs;  // in wire order, Skips included
  DeleteSet delete_set;
};

// client -> next expected clock.
using StateVector = std::map<uint64_t, uint64_t>;

// Decodes and validates a whole v1 update: every struct and content kind, strict UTF-8, valid
// JSON in JSON/Embed/Format content (JSON.parse would throw in every client), subdocument
// options that are an object, minimal varints up to 2^53-1, clocks that stay below 2^53, no
// zero-length structs, no bytes after the delete set. yjs never writes what this rejects.
// The result borrows `update`.
Result<Update> DecodeUpdate(ByteView update);
Status ValidateUpdate(ByteView update);

// Y.mergeUpdates: one update holding everything the inputs hold. One input is returned
// unchanged (after validation); no inputs give the empty update 00 00. Runs in
// O(total structs * log(inputs)) time. More than kMaxMergeFanIn inputs are merged in
// consecutive groups of that many, then the groups' results: memory is then about the output
// twice (the groups' results and the output) plus one cursor per input of a group, instead
// of one cursor per input. The result is the same document (SameDocument); its bytes equal
// the one-pass merge (and yjs's) unless inputs overlap with different struct boundaries or
// a GC/Item tie (SPEC.md section 6), where which input is drained first decides.
// An input whose client blocks are not in yjs's order (client descending) is re-sorted first;
// yjs's own merge would drop structs of such input.
inline constexpr size_t kMaxMergeFanIn = 1024;
Result<Bytes> MergeUpdates(std::span<const ByteView> updates);

// Y.diffUpdate: the part of `update` that a peer with `state_vector` is missing (plus the whole
// delete set).
Result<Bytes> DiffUpdate(ByteView update, ByteView state_vector);
Result<Bytes> DiffUpdate(ByteView update, const StateVector& state_vector);

// Y.encodeStateVectorFromUpdate.
Result<Bytes> StateVectorFromUpdate(ByteView update);

// State vectors: Y.encodeStateVector order (descending client) and Y.decodeStateVector (the
// last entry of a repeated client wins).
Bytes EncodeStateVector(const StateVector& sv);
Result<StateVector> DecodeStateVector(ByteView bytes);

// mergeDeleteSets: per client, ranges sorted by clock with overlapping and touching ranges
// joined; clients in descending order.
DeleteSet MergeDeleteSets(std::span<const DeleteSet> sets);
// Writes a delete set as given (clients and ranges in the given order).
void EncodeDeleteSet(const DeleteSet& ds, Bytes* out);

// Whether two updates describe the same document: the same state vector, the same delete set
// (after MergeDeleteSets) and the same structs once each client's runs are joined where one
// struct is exactly what slicing the other would leave (String, Deleted, JSON and Any items
// whose origin is the previous struct's last id and whose right origin and kinds agree;
// adjacent GCs; adjacent Skips). Items wholly inside the delete set compare as GC (their
// range only): yjs's merge keeps either the GC or the deleted Item there, by input order. So a
// snapshot written as "abc" equals three typed keystrokes "a", "b", "c", whatever the merge
// order or block boundaries. Unequal: *difference (when
// given) names the first difference. Malformed input: InvalidArgument.
// (A String split inside a surrogate pair is not re-joined: slicing replaced the half pair.)
Result<bool> SameDocument(ByteView a, ByteView b, std::string* difference = nullptr);

enum class InspectFormat { kText, kJson };
// A struct-level description of an update for debugging. kJson gives
// {"structs":[...],"ds":[[client,[[clock,len],...]],...]} with the fields of SPEC.md's test
// vectors (`*_decoded`); kText gives one line per struct.
Result<std::string> InspectUpdate(ByteView update, InspectFormat format);

}  // namespace quire::yjs
