// loadgen_bench: the open-loop load generator of issue 6 (libuv + wslay, one process, one loop).
//
// D documents x E editors; every editor is one WebSocket and one Yjs client typing into the
// shared Y.Text "t" of its document on its own schedule (fixed rate or Poisson). Latency is
// measured from the *intended* send time of each update, never from when the generator got
// around to sending it, so a stalled server (or generator) cannot hide its stalls (coordinated
// omission). For every update the generator records, per receiving editor, send -> receive
// latency (the per-recipient distribution) and, once every other editor of the document got it,
// the maximum over recipients (the per-update headline). Updates whose intended time is inside
// the warm-up are delivered and checked but not recorded. After the sending window, the
// generator waits --drain seconds; whatever has not arrived by then is reported as lost.
//
// Protocols: quire (the JSON protocol, /ws/documents/{doc}), yws (y-websocket binary sync
// protocol, path template --path, e.g. /{doc} or /yjs/{doc}) and hocuspocus (document name in
// every message, Auth first; path --path, e.g. /). Documents are named <prefix><index>; for
// quire they must exist (benchmarks/run creates them over REST).
//
// Several processes may split the documents (--doc-offset, --client-base): every process owns
// whole documents, so its per-update maxima are complete; benchmarks/run merges the exported
// histogram buckets. Output: one JSON object on stdout (see Report()).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <uv.h>
#include <wslay/wslay.h>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <queue>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "benchmarks/support/log_linear_histogram.h"
#include "benchmarks/support/yjs_text_update.h"

namespace quire::bench {
namespace {

using nlohmann::json;

enum class Protocol { kQuire, kYws, kHocuspocus };

struct Options {
  Protocol protocol = Protocol::kQuire;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string path;  // template with {doc}
  std::string prefix = "bench";
  int docs = 1;
  int doc_offset = 0;
  int editors = 2;
  double rate = 5;  // updates per second per editor; 0: idle connections
  bool poisson = false;
  double duration_s = 60;
  double warmup_s = 5;
  double drain_s = 3;
  double late_ms = 1000;
  uint64_t client_base = 1;
  int server_pid = 0;
  int connect_parallel = 256;
  double hold_s = 0;  // idle mode: how long to hold the connections after they are open
  int text_bytes = 1;
  double connect_timeout_s = 60;
  double joins_per_s = 0;  // join mode (S4): connections to <join-prefix><i % join-docs>
  int join_docs = 1;
  std::string join_prefix = "join";
  std::string emit_updates;  // "N": print N generator updates (hex) for a Node check, then exit
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "loadgen: %s\n", what.c_str());
  std::exit(2);
}

uint64_t NowNs() { return uv_hrtime(); }

struct Pending {
  uint64_t intended_ns = 0;
  int remaining = 0;
  int64_t max_latency_ns = 0;
  bool recorded = false;  // intended after the warm-up
};

struct ProcSample {
  double cpu_s = 0;
  int64_t rss_bytes = 0;
};

bool SampleProc(int pid, ProcSample& s) {
  if (pid <= 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  auto close_paren = line.rfind(')');
  if (close_paren == std::string::npos) return false;
  std::istringstream rest(line.substr(close_paren + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  // Fields after the command: state(3) ... utime(14) stime(15).
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  s.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0)
      s.rss_bytes = std::strtoll(line.c_str() + 6, nullptr, 10) * 1024;
  }
  return true;
}

// Kernel TCP memory in bytes (/proc/net/sockstat "TCP: ... mem <pages>").
int64_t KernelTcpMemBytes() {
  std::ifstream f("/proc/net/sockstat");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("TCP:", 0) != 0) continue;
    auto p = line.find(" mem ");
    if (p != std::string::npos)
      return std::strtoll(line.c_str() + p + 5, nullptr, 10) * sysconf(_SC_PAGESIZE);
  }
  return 0;
}

class LoadGen;

// One editor: one TCP connection, one WebSocket (client side, masked), one Yjs client.
struct Editor {
  LoadGen* gen = nullptr;
  int doc = 0;  // global document index
  int index = 0;
  uint64_t client = 0;
  uint64_t clock = 0;  // characters inserted so far
  uv_tcp_t tcp{};
  uv_connect_t connect_req{};
  wslay_event_context_ptr ws = nullptr;
  std::string in;  // bytes read, not yet consumed by wslay
  size_t in_pos = 0;
  std::string out;  // bytes produced by wslay, not yet handed to uv_write
  bool handshake_done = false;
  bool ready = false;  // protocol-level: may send updates
  bool closed = false;
  std::string key;
  uint64_t next_send_ns = 0;
  // Join mode: when the connection was meant to open.
  bool joiner = false;
  uint64_t join_intended_ns = 0;
  // Join mode reads frames with JoinerScan (not wslay): the header being read, the payload
  // bytes of the current frame still to come, and the current message's opcode and first
  // bytes (all a join looks at).
  std::string frame_header;
  uint64_t frame_left = 0;
  bool frame_fin = false;
  bool frame_control = false;
  uint8_t msg_opcode = 0;
  std::string msg_head;
};

struct WriteReq {
  uv_write_t req{};
  std::string data;
};

class LoadGen {
 public:
  explicit LoadGen(Options o) : o_(std::move(o)), rng_(o_.client_base * 7919 + 17) {}

  int Run() {
    loop_ = uv_default_loop();
    for (int d = 0; d < o_.docs; ++d) {
      for (int e = 0; e < o_.editors; ++e) {
        auto ed = std::make_unique<Editor>();
        ed->gen = this;
        ed->doc = o_.doc_offset + d;
        ed->index = static_cast<int>(editors_.size());
        ed->client = o_.client_base + editors_.size();
        editors_.push_back(std::move(ed));
      }
    }
    connect_start_ns_ = NowNs();
    for (int i = 0; i < o_.connect_parallel && next_connect_ < editors_.size(); ++i) ConnectNext();
    tfd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tfd_ < 0) Die("timerfd_create");
    uv_poll_init(loop_, &poll_, tfd_);
    poll_.data = this;
    uv_timer_init(loop_, &tick_);
    tick_.data = this;
    uv_timer_start(
        &tick_, [](uv_timer_t* t) noexcept { static_cast<LoadGen*>(t->data)->Tick(); }, 100, 100);
    uv_run(loop_, UV_RUN_DEFAULT);
    return exit_code_;
  }

  // ---- connections -------------------------------------------------------------------------

  std::string DocName(int doc) const { return o_.prefix + std::to_string(doc); }
  std::string NameOf(const Editor* ed) const {
    return ed->joiner ? o_.join_prefix + std::to_string(ed->doc) : DocName(ed->doc);
  }

  void ConnectNext() {
    if (next_connect_ >= editors_.size()) return;
    Connect(editors_[next_connect_++].get());
  }

  void Connect(Editor* ed) {
    uv_tcp_init(loop_, &ed->tcp);
    ed->tcp.data = ed;
    ed->connect_req.data = ed;
    sockaddr_in addr{};
    uv_ip4_addr(o_.host.c_str(), o_.port, &addr);
    int rc = uv_tcp_connect(&ed->connect_req, &ed->tcp, reinterpret_cast<const sockaddr*>(&addr),
                            [](uv_connect_t* req, int status) noexcept {
                              auto* e = static_cast<Editor*>(req->data);
                              e->gen->OnConnected(e, status);
                            });
    if (rc != 0) Fail(ed, std::string("connect: ") + uv_strerror(rc));
  }

  void OnConnected(Editor* ed, int status) {
    if (status != 0) return Fail(ed, std::string("connect: ") + uv_strerror(status));
    uv_tcp_nodelay(&ed->tcp, 1);
    std::string path = o_.path;
    auto p = path.find("{doc}");
    if (p != std::string::npos) path.replace(p, 5, NameOf(ed));
    if (o_.protocol == Protocol::kQuire)
      path += (path.find('?') == std::string::npos ? "?" : "&") + std::string("userId=e") +
              std::to_string(ed->client);
    unsigned char nonce[16];
    for (auto& b : nonce) b = static_cast<unsigned char>(rng_());
    static const char* kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string key;
    for (int i = 0; i < 16; i += 3) {
      uint32_t v =
          nonce[i] << 16 | (i + 1 < 16 ? nonce[i + 1] << 8 : 0) | (i + 2 < 16 ? nonce[i + 2] : 0);
      key += kB64[(v >> 18) & 63];
      key += kB64[(v >> 12) & 63];
      key += i + 1 < 16 ? kB64[(v >> 6) & 63] : '=';
      key += i + 2 < 16 ? kB64[v & 63] : '=';
    }
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + o_.host + ":" +
                      std::to_string(o_.port) +
                      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
                      "\r\nSec-WebSocket-Version: 13\r\n\r\n";
    Write(ed, std::move(req));
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&ed->tcp),
        [](uv_handle_t* h, size_t, uv_buf_t* buf) noexcept {
          auto* e = static_cast<Editor*>(h->data);
          auto& scratch = e->gen->read_buf_;
          buf->base = scratch.data();
          buf->len = scratch.size();
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept {
          auto* e = static_cast<Editor*>(s->data);
          e->gen->OnRead(e, n, buf);
        });
    if (!ed->joiner) ConnectNext();
  }

  void Write(Editor* ed, std::string data) {
    if (ed->closed || data.empty()) return;
    auto* w = new WriteReq;
    w->data = std::move(data);
    w->req.data = w;
    uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&ed->tcp), &b, 1,
                      [](uv_write_t* r, int) noexcept { delete static_cast<WriteReq*>(r->data); });
    if (rc != 0) {
      delete w;
      Fail(ed, std::string("write: ") + uv_strerror(rc));
    }
  }

  void OnRead(Editor* ed, ssize_t n, const uv_buf_t* buf) {
    if (n < 0) return Fail(ed, std::string("read: ") + uv_strerror(static_cast<int>(n)));
    if (n == 0) return;
    ed->in.append(buf->base, static_cast<size_t>(n));
    if (!ed->handshake_done) {
      auto end = ed->in.find("\r\n\r\n");
      if (end == std::string::npos) return;
      if (ed->in.compare(0, 12, "HTTP/1.1 101") != 0)
        return Fail(ed, "handshake refused: " + ed->in.substr(0, ed->in.find("\r\n")));
      ed->in.erase(0, end + 4);
      ed->handshake_done = true;
      StartWebSocket(ed);
      if (ed->joiner) {
        std::string rest;
        rest.swap(ed->in);
        JoinerScan(ed, rest);
        return;
      }
    }
    if (ed->joiner) return JoinerScan(ed, std::string_view(buf->base, static_cast<size_t>(n)));
    if (wslay_event_recv(ed->ws) != 0) return Fail(ed, "websocket receive failed");
    Flush(ed);
  }

  // Join mode: a joiner receives a whole document (200 KB in S4) and only needs to know when
  // the message that ends the join arrives. It walks the frames' headers and keeps the first
  // bytes of each message, without copying, reassembling or UTF-8-checking payloads as wslay
  // would: that took ~1 ms of the generator per 200 KB join (perf: wslay_event_recv and
  // memmove), time the server under test did not spend. Server frames are unmasked.
  void JoinerScan(Editor* ed, std::string_view data) {
    constexpr size_t kKeep = 256;  // enough for every join-ending message's prefix
    while (!data.empty() && !ed->closed) {
      if (ed->frame_left == 0 && ed->frame_header.size() < 2) {
        ed->frame_header += data.front();
        data.remove_prefix(1);
        continue;
      }
      const auto* h = reinterpret_cast<const uint8_t*>(ed->frame_header.data());
      if (ed->frame_left == 0 && !ed->frame_header.empty()) {
        const uint8_t len7 = h[1] & 0x7F;
        const size_t need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
        if (ed->frame_header.size() < need) {
          ed->frame_header += data.front();
          data.remove_prefix(1);
          continue;
        }
        uint64_t len = len7;
        if (len7 >= 126) {
          len = 0;
          for (size_t i = 2; i < need; ++i) len = len << 8 | h[i];
        }
        const uint8_t opcode = h[0] & 0x0F;
        ed->frame_fin = (h[0] & 0x80) != 0;
        ed->frame_control = (opcode & 0x8) != 0;
        if (opcode == WSLAY_CONNECTION_CLOSE) return Fail(ed, "closed by the server");
        if (!ed->frame_control && opcode != 0) {  // a message's first frame
          ed->msg_opcode = opcode;
          ed->msg_head.clear();
        }
        ed->frame_header.clear();
        ed->frame_left = len;
        if (len == 0) JoinerFrameDone(ed);
        continue;
      }
      const auto take = static_cast<size_t>(std::min<uint64_t>(ed->frame_left, data.size()));
      if (!ed->frame_control && ed->msg_head.size() < kKeep) {
        ed->msg_head.append(data.substr(0, std::min(take, kKeep - ed->msg_head.size())));
      }
      data.remove_prefix(take);
      ed->frame_left -= take;
      if (ed->frame_left == 0) JoinerFrameDone(ed);
    }
  }

  void JoinerFrameDone(Editor* ed) {
    if (ed->frame_control || !ed->frame_fin) return;  // pings and pongs of the WebSocket
    OnJoinMessage(ed, ed->msg_opcode, ed->msg_head, NowNs());
  }

  void StartWebSocket(Editor* ed) {
    static const wslay_event_callbacks kCallbacks = {
        [](wslay_event_context_ptr ctx, uint8_t* buf, size_t len, int,
           void* user) noexcept -> ssize_t {
          auto* e = static_cast<Editor*>(user);
          size_t avail = e->in.size() - e->in_pos;
          if (avail == 0) {
            e->in.clear();
            e->in_pos = 0;
            wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
            return -1;
          }
          size_t n = std::min(avail, len);
          std::memcpy(buf, e->in.data() + e->in_pos, n);
          e->in_pos += n;
          return static_cast<ssize_t>(n);
        },
        [](wslay_event_context_ptr, const uint8_t* data, size_t len, int,
           void* user) noexcept -> ssize_t {
          static_cast<Editor*>(user)->out.append(reinterpret_cast<const char*>(data), len);
          return static_cast<ssize_t>(len);
        },
        [](wslay_event_context_ptr, uint8_t* buf, size_t len, void*) noexcept -> int {
          for (size_t i = 0; i < len; ++i) buf[i] = static_cast<uint8_t>(std::rand());
          return 0;
        },
        nullptr,
        nullptr,
        nullptr,
        [](wslay_event_context_ptr, const wslay_event_on_msg_recv_arg* arg, void* user) noexcept {
          auto* e = static_cast<Editor*>(user);
          e->gen->OnMessage(
              e, arg->opcode,
              std::string_view(reinterpret_cast<const char*>(arg->msg), arg->msg_length));
        },
    };
    wslay_event_context_client_init(&ed->ws, &kCallbacks, ed);
    wslay_event_config_set_max_recv_msg_length(ed->ws, 64 << 20);
    if (o_.protocol == Protocol::kYws) {
      SendBinary(ed, YwsSyncStep1Empty());
      MarkReady(ed);
    } else if (o_.protocol == Protocol::kHocuspocus) {
      SendBinary(ed, HocuspocusAuth(NameOf(ed), "bench"));
      SendBinary(ed, HocuspocusSyncStep1Empty(NameOf(ed)));
    } else if (ed->joiner) {
      SendText(ed, R"({"type":"ping","ts":0})");
    }
    Flush(ed);
  }

  void SendBinary(Editor* ed, const std::string& data) {
    wslay_event_msg m{WSLAY_BINARY_FRAME, reinterpret_cast<const uint8_t*>(data.data()),
                      data.size()};
    wslay_event_queue_msg(ed->ws, &m);
  }
  void SendText(Editor* ed, const std::string& data) {
    wslay_event_msg m{WSLAY_TEXT_FRAME, reinterpret_cast<const uint8_t*>(data.data()), data.size()};
    wslay_event_queue_msg(ed->ws, &m);
  }
  void Flush(Editor* ed) {
    if (ed->closed || ed->ws == nullptr) return;
    wslay_event_send(ed->ws);
    if (!ed->out.empty()) {
      std::string data;
      data.swap(ed->out);
      Write(ed, std::move(data));
    }
  }

  void MarkReady(Editor* ed) {
    if (ed->ready || ed->joiner) return;
    ed->ready = true;
    if (++ready_count_ == editors_.size()) AllReady();
  }

  void Fail(Editor* ed, const std::string& why) {
    errors_ += 1;
    if (error_samples_.size() < 5) error_samples_.push_back(why);
    if (ed->closed) return;
    ed->closed = true;
    if (ed->joiner) {
      joins_failed_ += 1;
    } else if (!ed->ready) {
      // Never counted as ready: the run goes on without it, its messages are lost.
      ed->ready = true;
      failed_before_ready_ += 1;
      if (++ready_count_ == editors_.size()) AllReady();
      ConnectNext();
    }
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&ed->tcp)))
      uv_close(reinterpret_cast<uv_handle_t*>(&ed->tcp), nullptr);
  }

  // ---- protocol messages ------------------------------------------------------------------

  void OnMessage(Editor* ed, uint8_t opcode, std::string_view msg) {
    uint64_t now = NowNs();
    if (opcode == WSLAY_CONNECTION_CLOSE) return Fail(ed, "closed by the server");
    if (ed->joiner) return OnJoinMessage(ed, opcode, msg, now);
    if (o_.protocol == Protocol::kQuire) {
      if (opcode != WSLAY_TEXT_FRAME) return;
      if (msg.rfind(R"({"type":"remote_update")", 0) == 0) {
        auto p = msg.find(R"("opId":"u)");
        if (p == std::string_view::npos) return;
        p += 9;
        uint64_t client = std::strtoull(msg.data() + p, nullptr, 10);
        auto dash = msg.find('-', p);
        uint64_t clock = std::strtoull(msg.data() + dash + 1, nullptr, 10);
        Received(ed, client, clock, now);
      } else if (msg.rfind(R"({"type":"ack")", 0) == 0) {
        auto p = msg.find(R"("opId":"u)");
        if (p == std::string_view::npos) return;
        p += 9;
        uint64_t client = std::strtoull(msg.data() + p, nullptr, 10);
        uint64_t clock = std::strtoull(msg.data() + msg.find('-', p) + 1, nullptr, 10);
        auto it = ack_intended_.find(Key(client, clock));
        if (it != ack_intended_.end()) {
          if (it->second.second) ack_.Record(static_cast<int64_t>(now - it->second.first));
          ack_intended_.erase(it);
          acks_ += 1;
          if (sending_done_ && pending_.empty() && ack_intended_.empty() && !JoinsOutstanding())
            Finish();
        }
      } else if (msg.rfind(R"({"type":"state")", 0) == 0) {
        MarkReady(ed);
      } else if (msg.rfind(R"({"type":"error")", 0) == 0) {
        errors_ += 1;
        if (error_samples_.size() < 5) error_samples_.emplace_back(msg.substr(0, 200));
      }
      return;
    }
    if (opcode != WSLAY_BINARY_FRAME) return;
    size_t pos = 0;
    if (o_.protocol == Protocol::kHocuspocus) {
      uint64_t len = 0;
      if (!GetVarUint(msg, pos, len) || pos + len > msg.size()) return;
      pos += len;
      uint64_t type = 0;
      if (!GetVarUint(msg, pos, type)) return;
      if (type == 2) {  // Auth: Authenticated (2) or PermissionDenied (0)
        uint64_t sub = 0;
        if (GetVarUint(msg, pos, sub) && sub == 2)
          MarkReady(ed);
        else
          Fail(ed, "hocuspocus: permission denied");
        return;
      }
      if (type != 0) return;
    } else {
      uint64_t type = 0;
      if (!GetVarUint(msg, pos, type) || type != 0) return;
    }
    uint64_t sync_type = 0;
    if (!GetVarUint(msg, pos, sync_type) || sync_type != 2) return;
    uint64_t len = 0;
    if (!GetVarUint(msg, pos, len) || pos + len > msg.size()) return;
    uint64_t client = 0, clock = 0;
    if (FirstStructId(msg.substr(pos, len), client, clock)) Received(ed, client, clock, now);
  }

  // Join mode: the state is complete when Quire answered the ping sent on connect, or when
  // y-websocket / Hocuspocus answered the sync step 1 with their step 2 (the whole document).
  void OnJoinMessage(Editor* ed, uint8_t opcode, std::string_view msg, uint64_t now) {
    bool done = false;
    if (o_.protocol == Protocol::kQuire) {
      // The server answers what a client sent after the state and every update it had
      // (io/json_protocol.md, "On connect"): the pong to the ping sent on connect ends it.
      done = opcode == WSLAY_TEXT_FRAME && msg.rfind(R"({"type":"pong")", 0) == 0;
    } else if (opcode == WSLAY_BINARY_FRAME) {
      size_t pos = 0;
      uint64_t v = 0;
      if (o_.protocol == Protocol::kHocuspocus) {
        if (!GetVarUint(msg, pos, v) || pos + v > msg.size()) return;
        pos += v;
      }
      uint64_t type = 0, sync_type = 0;
      done = GetVarUint(msg, pos, type) && type == 0 && GetVarUint(msg, pos, sync_type) &&
             sync_type == 1;
    }
    if (!done) return;
    auto latency = static_cast<int64_t>(now - ed->join_intended_ns);
    if (ed->join_intended_ns >= warmup_end_ns_) join_.Record(latency);
    joins_done_ += 1;
    ed->closed = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&ed->tcp), nullptr);
    if (sending_done_ && pending_.empty() && ack_intended_.empty() && !JoinsOutstanding()) Finish();
  }

  void ScheduleJoins() {
    uint64_t now = NowNs();
    while (next_join_ns_ <= now && next_join_ns_ < end_ns_) {
      auto ed = std::make_unique<Editor>();
      ed->gen = this;
      ed->joiner = true;
      ed->doc = static_cast<int>(joins_started_ % o_.join_docs);
      ed->client = o_.client_base + 500'000 + static_cast<uint64_t>(joins_started_);
      ed->join_intended_ns = next_join_ns_;
      joins_started_ += 1;
      Editor* raw = ed.get();
      joiners_.push_back(std::move(ed));
      Connect(raw);
      next_join_ns_ +=
          static_cast<uint64_t>(std::exponential_distribution<double>(o_.joins_per_s)(rng_) * 1e9);
    }
    if (next_join_ns_ < end_ns_) {
      ArmAt(join_tfd_, next_join_ns_);
    } else {
      uv_poll_stop(&join_poll_);
      join_sending_done_ = true;
    }
  }

  static uint64_t Key(uint64_t client, uint64_t clock) { return client << 32 | clock; }

  // An update of `client` arrived at `ed`. Servers that echo an update to its sender
  // (y-websocket, Hocuspocus) are not credited for the echo.
  void Received(Editor* ed, uint64_t client, uint64_t clock, uint64_t now) {
    if (client == ed->client) {
      echoes_ += 1;
      return;
    }
    auto it = pending_.find(Key(client, clock));
    if (it == pending_.end()) {
      unexpected_ += 1;  // a duplicate, or one already declared lost
      return;
    }
    Pending& p = it->second;
    auto latency = static_cast<int64_t>(now - p.intended_ns);
    received_ += 1;
    if (static_cast<double>(latency) > o_.late_ms * 1e6) late_ += 1;
    if (p.recorded) per_recipient_.Record(latency);
    p.max_latency_ns = std::max(p.max_latency_ns, latency);
    if (--p.remaining == 0) {
      if (p.recorded) per_update_.Record(p.max_latency_ns);
      complete_updates_ += 1;
      pending_.erase(it);
      if (sending_done_ && pending_.empty() && ack_intended_.empty() && !JoinsOutstanding())
        Finish();
    }
  }

  // ---- schedule ---------------------------------------------------------------------------

  void AllReady() {
    ready_ns_ = NowNs();
    if (o_.rate <= 0) {  // idle connections
      ProcSample s;
      SampleProc(o_.server_pid, s);
      idle_rss_ = s.rss_bytes;
      idle_kernel_ = KernelTcpMemBytes();
      std::fprintf(stderr, "ready: %zu connections\n", editors_.size());
      uint64_t hold_ms = static_cast<uint64_t>(o_.hold_s * 1000);
      uv_timer_init(loop_, &end_timer_);
      end_timer_.data = this;
      uv_timer_start(
          &end_timer_, [](uv_timer_t* t) noexcept { static_cast<LoadGen*>(t->data)->Finish(); },
          hold_ms, 0);
      return;
    }
    start_ns_ = ready_ns_ + 100'000'000;
    warmup_end_ns_ = start_ns_ + static_cast<uint64_t>(o_.warmup_s * 1e9);
    end_ns_ = warmup_end_ns_ + static_cast<uint64_t>(o_.duration_s * 1e9);
    std::uniform_real_distribution<double> phase(0, 1e9 / o_.rate);
    for (auto& ed : editors_) {
      if (ed->closed) continue;
      ed->next_send_ns = start_ns_ + static_cast<uint64_t>(phase(rng_));
      queue_.push({ed->next_send_ns, ed->index});
    }
    SampleProc(o_.server_pid, proc_start_);
    if (o_.joins_per_s > 0) {
      // Joins have their own timerfd: connects start at their intended nanosecond, so the
      // latency measured from it holds no timer granularity of the generator's.
      next_join_ns_ = start_ns_;
      join_tfd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
      if (join_tfd_ < 0) Die("timerfd_create");
      uv_poll_init(loop_, &join_poll_, join_tfd_);
      join_poll_.data = this;
      uv_poll_start(&join_poll_, UV_READABLE, [](uv_poll_t* p, int, int) noexcept {
        auto* g = static_cast<LoadGen*>(p->data);
        uint64_t expirations = 0;
        ssize_t n = read(g->join_tfd_, &expirations, sizeof expirations);
        (void)n;
        g->ScheduleJoins();
      });
      ArmAt(join_tfd_, next_join_ns_);
    }
    ArmTimer();
    uv_poll_start(&poll_, UV_READABLE, [](uv_poll_t* p, int, int) noexcept {
      auto* g = static_cast<LoadGen*>(p->data);
      uint64_t expirations = 0;
      ssize_t n = read(g->tfd_, &expirations, sizeof expirations);
      (void)n;
      g->SendDue();
    });
  }

  void ArmTimer() {
    if (queue_.empty()) return;
    ArmAt(tfd_, queue_.top().first);
  }

  // Arms timerfd `fd` for the absolute CLOCK_MONOTONIC time `t` (ns).
  static void ArmAt(int fd, uint64_t t) {
    itimerspec spec{};
    spec.it_value.tv_sec = static_cast<time_t>(t / 1'000'000'000);
    spec.it_value.tv_nsec = static_cast<long>(t % 1'000'000'000);
    if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
    timerfd_settime(fd, TFD_TIMER_ABSTIME, &spec, nullptr);
  }

  void SendDue() {
    uint64_t now = NowNs();
    std::vector<Editor*> touched;
    while (!queue_.empty() && queue_.top().first <= now) {
      auto [intended, index] = queue_.top();
      queue_.pop();
      Editor* ed = editors_[static_cast<size_t>(index)].get();
      if (intended >= end_ns_) continue;
      if (ed->closed) {
        skipped_closed_ += 1;
      } else {
        SendUpdate(ed, intended, now);
        touched.push_back(ed);
      }
      double gap =
          o_.poisson ? std::exponential_distribution<double>(o_.rate)(rng_) * 1e9 : 1e9 / o_.rate;
      ed->next_send_ns = intended + static_cast<uint64_t>(gap);
      if (ed->next_send_ns < end_ns_) queue_.push({ed->next_send_ns, index});
    }
    for (Editor* ed : touched) Flush(ed);
    if (queue_.empty()) {
      if (!sending_done_) StopSending();
    } else {
      ArmTimer();
    }
  }

  void SendUpdate(Editor* ed, uint64_t intended, uint64_t now) {
    std::string text(static_cast<size_t>(o_.text_bytes), static_cast<char>('a' + ed->clock % 26));
    std::string update = YjsTextInsert(ed->client, ed->clock, text);
    uint64_t key = Key(ed->client, ed->clock);
    bool recorded = intended >= warmup_end_ns_;
    int recipients = 0;
    for (int e = 0; e < o_.editors; ++e) {
      const Editor* other =
          editors_[static_cast<size_t>((ed->doc - o_.doc_offset) * o_.editors + e)].get();
      if (other != ed && !other->closed) recipients += 1;
    }
    if (recipients > 0) pending_[key] = Pending{intended, recipients, 0, recorded};
    expected_ += recipients;
    sent_ += 1;
    if (recorded) {
      sent_measured_ += 1;
      send_lag_.Record(static_cast<int64_t>(now - intended));
    }
    if (o_.protocol == Protocol::kQuire) {
      ack_intended_[key] = {intended, recorded};
      std::string b64 = Base64(update);
      SendText(ed, R"({"type":"update","opId":"u)" + std::to_string(ed->client) + "-" +
                       std::to_string(ed->clock) + R"(","deltaB64":")" + b64 + R"("})");
    } else if (o_.protocol == Protocol::kYws) {
      SendBinary(ed, YwsUpdateMessage(update));
    } else {
      SendBinary(ed, HocuspocusUpdate(DocName(ed->doc), update));
    }
    ed->clock += static_cast<uint64_t>(o_.text_bytes);
  }

  static std::string Base64(std::string_view in) {
    static const char* kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
      uint32_t v = static_cast<uint8_t>(in[i]) << 16 | static_cast<uint8_t>(in[i + 1]) << 8 |
                   static_cast<uint8_t>(in[i + 2]);
      out += kB64[v >> 18];
      out += kB64[(v >> 12) & 63];
      out += kB64[(v >> 6) & 63];
      out += kB64[v & 63];
    }
    if (i < in.size()) {
      uint32_t v = static_cast<uint8_t>(in[i]) << 16;
      if (i + 1 < in.size()) v |= static_cast<uint8_t>(in[i + 1]) << 8;
      out += kB64[v >> 18];
      out += kB64[(v >> 12) & 63];
      out += i + 1 < in.size() ? kB64[(v >> 6) & 63] : '=';
      out += '=';
    }
    return out;
  }

  void StopSending() {
    sending_done_ = true;
    SampleProc(o_.server_pid, proc_end_);
    uv_poll_stop(&poll_);
    if (pending_.empty() && ack_intended_.empty() && !JoinsOutstanding()) return Finish();
    uv_timer_init(loop_, &end_timer_);
    end_timer_.data = this;
    uv_timer_start(
        &end_timer_, [](uv_timer_t* t) noexcept { static_cast<LoadGen*>(t->data)->Finish(); },
        static_cast<uint64_t>(o_.drain_s * 1000), 0);
  }

  bool JoinsOutstanding() const {
    return o_.joins_per_s > 0 &&
           (!join_sending_done_ || joins_done_ + joins_failed_ < joins_started_);
  }

  // Every 100 ms: peak RSS, the connect timeout.
  void Tick() {
    ProcSample s;
    if (SampleProc(o_.server_pid, s)) peak_rss_ = std::max(peak_rss_, s.rss_bytes);
    if (ready_ns_ == 0 &&
        static_cast<double>(NowNs() - connect_start_ns_) > o_.connect_timeout_s * 1e9) {
      errors_ += 1;
      error_samples_.push_back("connect timeout: " + std::to_string(ready_count_) + " of " +
                               std::to_string(editors_.size()) + " ready");
      Finish();
    }
  }

  void Finish() {
    if (finished_) return;
    finished_ = true;
    if (!sending_done_) SampleProc(o_.server_pid, proc_end_);
    int64_t lost = 0;
    for (auto& [key, p] : pending_) lost += p.remaining;
    missing_acks_ = static_cast<int64_t>(ack_intended_.size());
    Report(lost, static_cast<int64_t>(pending_.size()));
    std::fflush(stdout);
    std::_Exit(exit_code_);  // the server's side of every socket sees a reset; nothing to free
  }

  static json Summary(const LogLinearHistogram& h) {
    auto ms = [](int64_t ns) { return static_cast<double>(ns) / 1e6; };
    json buckets = json::array();
    for (auto [i, c] : h.NonEmpty()) buckets.push_back({i, c});
    return {{"n", h.count()},
            {"p50_ms", ms(h.Quantile(0.5))},
            {"p90_ms", ms(h.Quantile(0.9))},
            {"p99_ms", ms(h.Quantile(0.99))},
            {"p999_ms", ms(h.Quantile(0.999))},
            {"max_ms", ms(h.max())},
            {"mean_ms", h.mean() / 1e6},
            {"buckets", buckets}};
  }

  void Report(int64_t lost, int64_t incomplete_updates) {
    double measured_s = o_.duration_s;
    json out = {
        {"protocol", o_.protocol == Protocol::kQuire ? "quire"
                     : o_.protocol == Protocol::kYws ? "yws"
                                                     : "hocuspocus"},
        {"docs", o_.docs},
        {"editors_per_doc", o_.editors},
        {"connections", editors_.size()},
        {"rate_per_editor", o_.rate},
        {"schedule", o_.poisson ? "poisson" : "fixed"},
        {"duration_s", o_.duration_s},
        {"warmup_s", o_.warmup_s},
        {"connect_s", ready_ns_ ? static_cast<double>(ready_ns_ - connect_start_ns_) / 1e9 : -1},
        {"offered_updates_per_s", o_.rate * static_cast<double>(editors_.size())},
        {"achieved_updates_per_s", static_cast<double>(sent_measured_) / measured_s},
        {"sent", sent_},
        {"expected_deliveries", expected_},
        {"received", received_},
        {"lost", lost},
        {"incomplete_updates", incomplete_updates},
        {"complete_updates", complete_updates_},
        {"late", late_},
        {"late_ms", o_.late_ms},
        {"unexpected", unexpected_},
        {"echoes", echoes_},
        {"acks", acks_},
        {"missing_acks", missing_acks_},
        {"errors", errors_},
        {"failed_connections", failed_before_ready_},
        {"skipped_closed", skipped_closed_},
        {"error_samples", error_samples_},
        {"per_update_max", Summary(per_update_)},
        {"per_recipient", Summary(per_recipient_)},
        {"ack", Summary(ack_)},
        {"send_lag", Summary(send_lag_)},
        {"joins",
         {{"per_s", o_.joins_per_s},
          {"started", joins_started_},
          {"done", joins_done_},
          {"failed", joins_failed_},
          {"connect_to_state", Summary(join_)}}},
    };
    if (o_.server_pid > 0) {
      double cpu = proc_end_.cpu_s - proc_start_.cpu_s;
      out["server"] = {{"pid", o_.server_pid},
                       {"cpu_s", cpu},
                       {"cpu_util", measured_s > 0 ? cpu / (measured_s + o_.warmup_s) : 0},
                       {"rss_end_bytes", proc_end_.rss_bytes},
                       {"rss_peak_bytes", peak_rss_}};
    }
    if (o_.rate <= 0) {
      out["idle"] = {{"server_rss_bytes", idle_rss_}, {"kernel_tcp_mem_bytes", idle_kernel_}};
    }
    std::printf("%s\n", out.dump().c_str());
  }

  Options o_;
  std::mt19937_64 rng_;
  uv_loop_t* loop_ = nullptr;
  std::vector<std::unique_ptr<Editor>> editors_;
  size_t next_connect_ = 0;
  size_t ready_count_ = 0;
  std::vector<char> read_buf_ = std::vector<char>(256 * 1024);
  int tfd_ = -1;
  uv_poll_t poll_{};
  uv_timer_t tick_{};
  uv_timer_t end_timer_{};
  using QueueItem = std::pair<uint64_t, int>;
  std::priority_queue<QueueItem, std::vector<QueueItem>, std::greater<>> queue_;
  std::unordered_map<uint64_t, Pending> pending_;
  std::unordered_map<uint64_t, std::pair<uint64_t, bool>> ack_intended_;
  uint64_t connect_start_ns_ = 0, ready_ns_ = 0, start_ns_ = 0, warmup_end_ns_ = 0, end_ns_ = 0;
  bool sending_done_ = false;
  bool finished_ = false;
  int exit_code_ = 0;
  int64_t sent_ = 0, sent_measured_ = 0, expected_ = 0, received_ = 0, complete_updates_ = 0;
  int64_t late_ = 0, unexpected_ = 0, acks_ = 0, errors_ = 0, failed_before_ready_ = 0;
  int64_t skipped_closed_ = 0, missing_acks_ = 0, echoes_ = 0;
  std::vector<std::string> error_samples_;
  LogLinearHistogram per_update_, per_recipient_, ack_, send_lag_, join_;
  std::vector<std::unique_ptr<Editor>> joiners_;
  int join_tfd_ = -1;
  uv_poll_t join_poll_{};
  uint64_t next_join_ns_ = 0;
  bool join_sending_done_ = false;
  int64_t joins_started_ = 0, joins_done_ = 0, joins_failed_ = 0;
  ProcSample proc_start_, proc_end_;
  int64_t peak_rss_ = 0, idle_rss_ = 0, idle_kernel_ = 0;
};

Options Parse(int argc, char** argv) {
  Options o;
  bool path_set = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto eq = a.find('=');
    std::string k = a.substr(0, eq), v = eq == std::string::npos ? "" : a.substr(eq + 1);
    if (k == "--protocol") {
      if (v == "quire")
        o.protocol = Protocol::kQuire;
      else if (v == "yws")
        o.protocol = Protocol::kYws;
      else if (v == "hocuspocus")
        o.protocol = Protocol::kHocuspocus;
      else
        Die("unknown protocol " + v);
    } else if (k == "--host")
      o.host = v;
    else if (k == "--port")
      o.port = std::stoi(v);
    else if (k == "--path") {
      o.path = v;
      path_set = true;
    } else if (k == "--prefix")
      o.prefix = v;
    else if (k == "--docs")
      o.docs = std::stoi(v);
    else if (k == "--doc-offset")
      o.doc_offset = std::stoi(v);
    else if (k == "--editors")
      o.editors = std::stoi(v);
    else if (k == "--rate")
      o.rate = std::stod(v);
    else if (k == "--schedule")
      o.poisson = v == "poisson";
    else if (k == "--duration")
      o.duration_s = std::stod(v);
    else if (k == "--warmup")
      o.warmup_s = std::stod(v);
    else if (k == "--drain")
      o.drain_s = std::stod(v);
    else if (k == "--late-ms")
      o.late_ms = std::stod(v);
    else if (k == "--client-base")
      o.client_base = std::stoull(v);
    else if (k == "--server-pid")
      o.server_pid = std::stoi(v);
    else if (k == "--connect-parallel")
      o.connect_parallel = std::stoi(v);
    else if (k == "--hold")
      o.hold_s = std::stod(v);
    else if (k == "--text-bytes")
      o.text_bytes = std::stoi(v);
    else if (k == "--connect-timeout")
      o.connect_timeout_s = std::stod(v);
    else if (k == "--emit-updates")
      o.emit_updates = v;
    else if (k == "--joins-per-s")
      o.joins_per_s = std::stod(v);
    else if (k == "--join-docs")
      o.join_docs = std::stoi(v);
    else if (k == "--join-prefix")
      o.join_prefix = v;
    else
      Die("unknown flag " + k + " (see the comment at the top of loadgen_bench.cc)");
  }
  if (!path_set) {
    o.path = o.protocol == Protocol::kQuire ? "/ws/documents/{doc}"
             : o.protocol == Protocol::kYws ? "/{doc}"
                                            : "/";
  }
  if (o.docs < 1 || o.editors < 1) Die("--docs and --editors must be >= 1");
  return o;
}

}  // namespace
}  // namespace quire::bench

int main(int argc, char** argv) {
  auto o = quire::bench::Parse(argc, argv);
  if (!o.emit_updates.empty()) {
    // Hex updates, one per line: 3 clients typing n characters each, for the Node check.
    int n = std::stoi(o.emit_updates);
    for (uint64_t client = 1; client <= 3; ++client) {
      for (int i = 0; i < n; ++i) {
        std::string u = quire::bench::YjsTextInsert(
            client * 1000, static_cast<uint64_t>(i) * 2,
            std::string(2, static_cast<char>('a' + (client + static_cast<uint64_t>(i)) % 26)));
        for (unsigned char c : u) std::printf("%02x", c);
        std::printf("\n");
      }
    }
    return 0;
  }
  return quire::bench::LoadGen(std::move(o)).Run();
}
