// Replays the fuzz corpus (tests/data/yjs/fuzz_corpus/, seeded from the yjs vectors; see
// tests/core/yjs_fuzz.sh) through the fuzz target's checks, plus byte-level mutations of it.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>

#include "tests/core/yjs_fuzz_target.h"

namespace quire::yjs {
namespace {

std::vector<std::pair<std::string, Bytes>> Corpus() {
  std::vector<std::pair<std::string, Bytes>> out;
  const std::filesystem::path dir = std::string(QUIRE_SOURCE_DIR) + "/tests/data/yjs/fuzz_corpus";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    out.emplace_back(entry.path().filename().string(),
                     Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()));
  }
  return out;
}

TEST_CASE("FuzzCorpusReplaysCleanly", "[yjs][fuzz]") {
  auto corpus = Corpus();
  REQUIRE(corpus.size() >= 150);
  size_t merged_inputs = 0;
  for (const auto& [name, data] : corpus) {
    INFO(name);
    const char* failure = fuzz::RunOne(data.data(), data.size());
    CHECK(failure == nullptr);
    if (data.size() > 4 && name.find("protocol_") != 0) ++merged_inputs;
  }
  CHECK(merged_inputs > 100);
}

TEST_CASE("MutatedCorpusKeepsTheFuzzChecks", "[yjs][fuzz]") {
  auto corpus = Corpus();
  std::mt19937 rng(11);  // fixed seed: the same mutations every run
  for (int round = 0; round < 3000; ++round) {
    Bytes data = corpus[rng() % corpus.size()].second;
    if (data.size() <= 4) continue;
    switch (rng() % 4) {
      case 0:
        data[4 + rng() % (data.size() - 4)] = static_cast<uint8_t>(rng());
        break;
      case 1:
        data.erase(data.begin() + 4 + static_cast<long>(rng() % (data.size() - 4)));
        break;
      case 2:
        data.insert(data.begin() + 4 + static_cast<long>(rng() % (data.size() - 4)),
                    static_cast<uint8_t>(rng()));
        break;
      default: {
        // Splice another corpus entry's tail in.
        const Bytes& other = corpus[rng() % corpus.size()].second;
        data.resize(4 + rng() % (data.size() - 4));
        if (other.size() > 4) data.insert(data.end(), other.begin() + 4, other.end());
      }
    }
    const char* failure = fuzz::RunOne(data.data(), data.size());
    INFO("round " << round);
    CHECK(failure == nullptr);
  }
}

}  // namespace
}  // namespace quire::yjs
