// The redo journal on a real file: records read back after reopening, a torn or corrupted tail
// is ignored, Reset() retires the earlier generation, one writer at a time.
#include "eventlog/internal/redo_journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "tests/eventlog/eventlog_test_util.h"

namespace quire::eventlog::internal {
namespace {

using testing::TempDir;

Bytes Rec(const std::string& s) { return Bytes(s.begin(), s.end()); }

std::vector<std::string> Records(RedoJournal& journal) {
  std::vector<std::string> out;
  Status s = journal.ForEachRecord([&](std::span<const uint8_t> payload) {
    out.emplace_back(AsString(payload));
    return Status::Ok();
  });
  REQUIRE(s.ok());
  return out;
}

std::unique_ptr<RedoJournal> MustOpen(const std::string& path) {
  auto journal = RedoJournal::Open(path);
  INFO(journal.status().ToString());
  REQUIRE(journal.ok());
  return std::move(journal).value();
}

void Overwrite(const std::string& path, int64_t offset, const std::string& bytes) {
  int fd = ::open(path.c_str(), O_WRONLY);
  REQUIRE(fd >= 0);
  REQUIRE(::pwrite(fd, bytes.data(), bytes.size(), offset) == static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

// Flips the lowest bit of the byte at `offset`: a change whatever the byte was.
void FlipBit(const std::string& path, int64_t offset) {
  int fd = ::open(path.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  char byte = 0;
  REQUIRE(::pread(fd, &byte, 1, offset) == 1);
  byte = static_cast<char>(byte ^ 1);
  REQUIRE(::pwrite(fd, &byte, 1, offset) == 1);
  ::close(fd);
}

TEST_CASE("Crc32cMatchesTheCastagnoliCheckValue", "[journal]") {
  CHECK(Crc32c(0, AsBytes("123456789")) == 0xE3069283u);
  // Incremental use gives the same value as one pass.
  CHECK(Crc32c(Crc32c(0, AsBytes("1234")), AsBytes("56789")) == 0xE3069283u);
}

TEST_CASE("EventsRoundTripThroughARecord", "[journal]") {
  Event a = testing::Created("doc", "A title", "ann", 17);
  a.crdt = CrdtKind::kOpaque;
  Event b = testing::Update("doc", "op-1", std::string("\0\1\2", 3), 18, "bob");
  Event c = testing::Snapshot("doc", 2, "snap");
  c.version = 2;
  Bytes record;
  EncodeEvent(a, 1, record);
  EncodeEvent(b, 2, record);
  EncodeEvent(c, 3, record);
  std::vector<Event> out;
  REQUIRE(DecodeEvents(record, out).ok());
  REQUIRE(out.size() == 3);
  a.seq = 1;
  b.seq = 2;
  c.seq = 3;
  for (int i = 0; i < 3; ++i) {
    const Event& want = i == 0 ? a : i == 1 ? b : c;
    INFO("event " << i);
    CHECK(out[i].document_id == want.document_id);
    CHECK(out[i].seq == want.seq);
    CHECK(out[i].kind == want.kind);
    CHECK(out[i].op_id == want.op_id);
    CHECK(out[i].actor_id == want.actor_id);
    CHECK(out[i].payload == want.payload);
    CHECK(out[i].version == want.version);
    CHECK(out[i].title == want.title);
    CHECK(out[i].crdt == want.crdt);
    CHECK(out[i].created_at == want.created_at);
  }
  // A truncated record is refused, not read short.
  record.pop_back();
  out.clear();
  CHECK(DecodeEvents(record, out).code() == StatusCode::kCorruption);
}

TEST_CASE("RecordsReadBackInOrderAfterReopening", "[journal]") {
  TempDir dir;
  const std::string path = dir.path() + "/j";
  {
    auto journal = MustOpen(path);
    CHECK(journal->used_bytes() == 0);
    REQUIRE(journal->Append(Rec("first")).ok());
    REQUIRE(journal->Append(Rec("second")).ok());
    REQUIRE(journal->Append(Rec(std::string(100000, 'x'))).ok());
    CHECK(Records(*journal).size() == 3);
  }
  auto journal = MustOpen(path);
  auto records = Records(*journal);
  REQUIRE(records.size() == 3);
  CHECK(records[0] == "first");
  CHECK(records[1] == "second");
  CHECK(records[2] == std::string(100000, 'x'));
  // Appends continue after the last record.
  REQUIRE(journal->Append(Rec("fourth")).ok());
  journal.reset();
  CHECK(Records(*MustOpen(path)).back() == "fourth");
}

TEST_CASE("ATornOrCorruptedTailIsNotRead", "[journal]") {
  TempDir dir;
  const std::string path = dir.path() + "/j";
  int64_t second_at = 0;
  {
    auto journal = MustOpen(path);
    REQUIRE(journal->Append(Rec("one")).ok());
    second_at = RedoJournal::kHeaderBytes + journal->used_bytes();
    REQUIRE(journal->Append(Rec("two")).ok());
    REQUIRE(journal->Append(Rec("three")).ok());
  }
  SECTION("a flipped payload byte ends the journal before that record") {
    Overwrite(path, second_at + 16, "T");
    auto journal = MustOpen(path);
    CHECK(Records(*journal) == std::vector<std::string>{"one"});
    // The next append overwrites the damaged record; nothing after it is read again.
    REQUIRE(journal->Append(Rec("again")).ok());
    journal.reset();
    CHECK(Records(*MustOpen(path)) == std::vector<std::string>{"one", "again"});
  }
  SECTION("a length running past the end of the file") {
    Overwrite(path, second_at, std::string("\xff\xff\xff\x0f", 4));
    CHECK(Records(*MustOpen(path)) == std::vector<std::string>{"one"});
  }
  SECTION("a damaged header: no record counts") {
    // A bit of the nonce (bytes 8-15). Writing a fixed byte there was no damage at all
    // whenever the random nonce already held it (one run in 256).
    FlipBit(path, 9);
    CHECK(Records(*MustOpen(path)).empty());
  }
}

TEST_CASE("ResetRetiresTheEarlierGeneration", "[journal]") {
  TempDir dir;
  const std::string path = dir.path() + "/j";
  {
    auto journal = MustOpen(path);
    for (int i = 0; i < 5; ++i)
      REQUIRE(journal->Append(Rec("old record " + std::to_string(i))).ok());
    REQUIRE(journal->Reset().ok());
    CHECK(journal->used_bytes() == 0);
    // Shorter than the first old record: the old records after it are intact on disk.
    REQUIRE(journal->Append(Rec("new")).ok());
  }
  CHECK(Records(*MustOpen(path)) == std::vector<std::string>{"new"});
  std::vector<std::string> read_only;
  REQUIRE(RedoJournal::ReadRecords(path, [&](std::span<const uint8_t> p) {
            read_only.emplace_back(AsString(p));
            return Status::Ok();
          }).ok());
  CHECK(read_only == std::vector<std::string>{"new"});
}

TEST_CASE("TheFileGrowsInStepsSoThatMostAppendsKeepItsSize", "[journal]") {
  TempDir dir;
  const std::string path = dir.path() + "/j";
  const auto size = [&] { return static_cast<int64_t>(std::filesystem::file_size(path)); };
  const int64_t step = RedoJournal::kGrowBytes;
  std::vector<std::string> written;
  {
    auto journal = MustOpen(path);
    CHECK(size() == RedoJournal::kHeaderBytes);
    written.push_back("first");
    REQUIRE(journal->Append(Rec(written.back())).ok());
    CHECK(size() == step);
    // Appends inside the step overwrite its zeros.
    for (int i = 0; i < 100; ++i) {
      written.push_back(std::string(1000, static_cast<char>('a' + i % 26)));
      REQUIRE(journal->Append(Rec(written.back())).ok());
    }
    CHECK(journal->used_bytes() > step / 3);
    CHECK(size() == step);
    // One that runs past the step grows the file to the step after the record's end.
    written.push_back(std::string(step, 'b'));
    REQUIRE(journal->Append(Rec(written.back())).ok());
    CHECK(RedoJournal::kHeaderBytes + journal->used_bytes() > step);
    CHECK(size() == 2 * step);
    CHECK(Records(*journal) == written);
  }
  // Reopened: the zeros end the records, and appends go on after the last one.
  auto journal = MustOpen(path);
  CHECK(Records(*journal) == written);
  written.push_back("after");
  REQUIRE(journal->Append(Rec(written.back())).ok());
  CHECK(size() == 2 * step);
  journal.reset();
  CHECK(Records(*MustOpen(path)) == written);
}

TEST_CASE("OneWriterAtATime", "[journal]") {
  TempDir dir;
  const std::string path = dir.path() + "/j";
  auto first = MustOpen(path);
  auto second = RedoJournal::Open(path);
  CHECK(second.status().code() == StatusCode::kFailedPrecondition);
  first.reset();
  CHECK(RedoJournal::Open(path).ok());
  // A missing file reads as no records.
  int visited = 0;
  CHECK(RedoJournal::ReadRecords(dir.path() + "/missing", [&](std::span<const uint8_t>) {
          ++visited;
          return Status::Ok();
        }).ok());
  CHECK(visited == 0);
  CHECK_FALSE(std::filesystem::exists(dir.path() + "/missing"));
}

}  // namespace
}  // namespace quire::eventlog::internal
