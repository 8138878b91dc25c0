// `quire yjs`: the native Yjs update engine on files, for operators and for the differential
// tests against the npm `yjs` package (tests/js/).
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "cli/commands.h"
#include "core/base64.h"
#include "core/yjs/update.h"

namespace quire::cli {
namespace {

constexpr const char* kYjsUsage =
    "usage: quire yjs COMMAND [--base64] [--json] FILE...\n"
    "\n"
    "Works on Yjs v1 updates without a Y.Doc. FILE is a path or - for stdin. Inputs and output\n"
    "are raw binary; with --base64 both are base64 text (one value per file, output ends with a\n"
    "newline).\n"
    "\n"
    "commands:\n"
    "  merge U1 U2 ...      Y.mergeUpdates of the updates\n"
    "  diff U SV            Y.diffUpdate: the part of U that a peer with state vector SV lacks\n"
    "  state-vector U       Y.encodeStateVectorFromUpdate\n"
    "  inspect U [--json]   describe every struct and the delete set (text or JSON)\n"
    "  validate U...        exit 0 when every update is valid, else print why and exit 1\n"
    "  batch                read commands from stdin, one per line, values in base64:\n"
    "                         merge B64 B64 ... | diff B64 SV_B64 | state-vector B64 |\n"
    "                         validate B64 | inspect B64\n"
    "                       and answer each with one line: `ok [B64 or JSON]` or `error MESSAGE`\n"
    "\n"
    "exit status: 0 done, 1 an input is not a valid update or state vector, 2 usage or I/O error\n";

struct Options {
  bool base64 = false;
  bool json = false;
  std::vector<std::string> files;
};

bool ReadAll(const std::string& path, std::string* out) {
  std::FILE* f = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out->append(buf, n);
  const bool ok = std::ferror(f) == 0;
  if (f != stdin) std::fclose(f);
  return ok;
}

std::string_view Trim(std::string_view s) {
  const char* ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// Reads one input: 2 on I/O error or bad base64 (after printing why), else 0.
int Load(const Options& opt, const std::string& path, Bytes* out) {
  std::string raw;
  if (!ReadAll(path, &raw)) {
    std::fprintf(stderr, "quire yjs: cannot read %s\n", path.c_str());
    return 2;
  }
  if (!opt.base64) {
    out->assign(raw.begin(), raw.end());
    return 0;
  }
  auto decoded = Base64Decode(Trim(raw));
  if (!decoded.ok()) {
    std::fprintf(stderr, "quire yjs: %s is not base64: %s\n", path.c_str(),
                 decoded.status().message().c_str());
    return 2;
  }
  *out = std::move(*decoded);
  return 0;
}

int Write(const Options& opt, ByteView bytes) {
  if (opt.base64) {
    std::string text = Base64Encode(bytes);
    text.push_back('\n');
    std::fwrite(text.data(), 1, text.size(), stdout);
  } else {
    std::fwrite(bytes.data(), 1, bytes.size(), stdout);
  }
  return std::fflush(stdout) == 0 ? 0 : 2;
}

int Fail(const Status& st) {
  std::fprintf(stderr, "quire yjs: %s\n", st.ToString().c_str());
  return 1;
}

// One command on already-loaded inputs. On success fills *text (inspect) or *bytes.
Status Run(std::string_view command, const std::vector<Bytes>& inputs, bool json, Bytes* bytes,
           std::string* text, bool* is_text) {
  *is_text = false;
  if (command == "merge") {
    std::vector<ByteView> views(inputs.begin(), inputs.end());
    auto merged = yjs::MergeUpdates(views);
    if (!merged.ok()) return merged.status();
    *bytes = std::move(*merged);
    return Status::Ok();
  }
  if (command == "diff") {
    if (inputs.size() != 2)
      return Status::InvalidArgument("diff takes an update and a state vector");
    auto diff = yjs::DiffUpdate(inputs[0], inputs[1]);
    if (!diff.ok()) return diff.status();
    *bytes = std::move(*diff);
    return Status::Ok();
  }
  if (command == "state-vector") {
    if (inputs.size() != 1) return Status::InvalidArgument("state-vector takes one update");
    auto sv = yjs::StateVectorFromUpdate(inputs[0]);
    if (!sv.ok()) return sv.status();
    *bytes = std::move(*sv);
    return Status::Ok();
  }
  if (command == "inspect") {
    if (inputs.size() != 1) return Status::InvalidArgument("inspect takes one update");
    auto out =
        yjs::InspectUpdate(inputs[0], json ? yjs::InspectFormat::kJson : yjs::InspectFormat::kText);
    if (!out.ok()) return out.status();
    *text = std::move(*out);
    *is_text = true;
    return Status::Ok();
  }
  if (command == "validate") {
    if (inputs.empty()) return Status::InvalidArgument("validate takes at least one update");
    for (size_t i = 0; i < inputs.size(); ++i) {
      Status st = yjs::ValidateUpdate(inputs[i]);
      if (!st.ok())
        return Status::InvalidArgument("input " + std::to_string(i + 1) + ": " + st.message());
    }
    *text = "valid";
    *is_text = true;
    return Status::Ok();
  }
  return Status::InvalidArgument("unknown yjs command '" + std::string(command) + "'");
}

// `batch`: line-oriented, so a test can drive many operations through one process.
int Batch() {
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream words(line);
    std::string command, word;
    words >> command;
    if (command.empty()) continue;
    std::vector<Bytes> inputs;
    std::string reply;
    bool bad_base64 = false;
    while (words >> word) {
      auto decoded = Base64Decode(word);
      if (!decoded.ok()) {
        bad_base64 = true;
        break;
      }
      inputs.push_back(std::move(*decoded));
    }
    if (bad_base64) {
      reply = "error bad base64";
    } else {
      Bytes bytes;
      std::string text;
      bool is_text = false;
      Status st = Run(command, inputs, /*json=*/true, &bytes, &text, &is_text);
      if (!st.ok()) {
        reply = "error " + st.message();
      } else {
        reply = "ok " + (is_text ? text : Base64Encode(bytes));
      }
    }
    reply.push_back('\n');
    std::fwrite(reply.data(), 1, reply.size(), stdout);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int Yjs(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(kYjsUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  const std::string& command = args[0];
  if (command == "batch") return Batch();
  Options opt;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--base64") {
      opt.base64 = true;
    } else if (args[i] == "--json") {
      opt.json = true;
    } else if (args[i].size() > 1 && args[i][0] == '-' && args[i] != "-") {
      std::fprintf(stderr, "quire yjs: unknown option %s\n\n%s", args[i].c_str(), kYjsUsage);
      return 2;
    } else {
      opt.files.push_back(args[i]);
    }
  }
  size_t stdin_inputs = 0;
  for (const auto& f : opt.files) stdin_inputs += f == "-";
  if (stdin_inputs > 1) {
    std::fputs("quire yjs: stdin (-) can be given only once\n", stderr);
    return 2;
  }
  std::vector<Bytes> inputs(opt.files.size());
  for (size_t i = 0; i < opt.files.size(); ++i) {
    if (int rc = Load(opt, opt.files[i], &inputs[i]); rc != 0) return rc;
  }
  Bytes bytes;
  std::string text;
  bool is_text = false;
  Status st = Run(command, inputs, opt.json, &bytes, &text, &is_text);
  if (!st.ok()) {
    if (st.message().rfind("unknown yjs command", 0) == 0 ||
        st.message().find(" takes ") != std::string::npos) {
      std::fprintf(stderr, "quire yjs: %s\n\n%s", st.message().c_str(), kYjsUsage);
      return 2;
    }
    return Fail(st);
  }
  if (is_text) {
    if (command == "validate") return 0;
    if (text.empty() || text.back() != '\n') text.push_back('\n');
    std::fwrite(text.data(), 1, text.size(), stdout);
    return std::fflush(stdout) == 0 ? 0 : 2;
  }
  return Write(opt, bytes);
}

}  // namespace quire::cli
