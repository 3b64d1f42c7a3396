// libFuzzer target for MultipartParser: a differential oracle over slicing.
//
// Input layout (so seeds are easy to write by hand):
//   byte 0          boundary length - 1 (mod 16)
//   next L bytes    the boundary, each byte mapped into RFC 2046 bchars
//   next byte       seed of the random slicing
//   next byte       limits: bit 0 set = small limits taken from bits 1-7, else defaults
//   the rest        the body
// The body is parsed fed whole, one byte at a time, and cut at seeded random points. The
// three must report the same events (consecutive data merged) and the same status, and
// each must respect the Handler contract. A body that parses is also written back out
// canonically (quoted names, no preamble or padding) and must parse to the same events.
// Both delimiter searches must agree on the body. Anything else traps.
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "server/upload/boundary_finder.h"
#include "server/upload/multipart_parser.h"

namespace spillway {
namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

struct Event {
  int kind;  // 0 begin, 1 data, 2 end, 3 body end
  PartHeaders headers;
  std::string data;
  bool operator==(const Event&) const = default;
};

class Recorder : public MultipartParser::Handler {
 public:
  absl::Status OnPartBegin(const PartHeaders& headers) override {
    Check(!in_part_ && !ended_);
    Check(!headers.name.empty());
    in_part_ = true;
    events.push_back({0, headers, ""});
    return absl::OkStatus();
  }
  absl::Status OnPartData(std::string_view data) override {
    Check(in_part_ && !data.empty());
    if (events.empty() || events.back().kind != 1) events.push_back({1, {}, ""});
    events.back().data.append(data);
    return absl::OkStatus();
  }
  absl::Status OnPartEnd() override {
    Check(in_part_);
    in_part_ = false;
    events.push_back({2, {}, ""});
    return absl::OkStatus();
  }
  absl::Status OnBodyEnd() override {
    Check(!in_part_ && !ended_);
    ended_ = true;
    events.push_back({3, {}, ""});
    return absl::OkStatus();
  }

  std::vector<Event> events;

 private:
  bool in_part_ = false;
  bool ended_ = false;
};

struct Outcome {
  std::vector<Event> events;
  absl::Status status;
  bool operator==(const Outcome&) const = default;
};

Outcome Run(std::string_view boundary, const MultipartLimits& limits, std::string_view body,
            const std::vector<size_t>& cuts) {
  Recorder recorder;
  MultipartParser parser(boundary, limits, &recorder);
  Outcome out;
  size_t begin = 0;
  for (size_t i = 0; i <= cuts.size() && out.status.ok(); ++i) {
    const size_t end = i < cuts.size() ? cuts[i] : body.size();
    out.status = parser.Feed(body.substr(begin, end - begin));
    begin = end;
  }
  if (out.status.ok()) out.status = parser.Finish();
  if (!out.status.ok()) Check(parser.Feed("x") == out.status);  // errors stick
  out.events = std::move(recorder.events);
  return out;
}

void AppendQuoted(std::string_view s, std::string* out) {
  out->push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') out->push_back('\\');
    out->push_back(c);
  }
  out->push_back('"');
}

// The events of a successful parse, as a body that should give them back.
std::string Serialize(std::string_view boundary, const std::vector<Event>& events) {
  std::string body;
  for (const Event& e : events) {
    switch (e.kind) {
      case 0:
        body.append("--").append(boundary).append("\r\nContent-Disposition: form-data; name=");
        AppendQuoted(e.headers.name, &body);
        if (e.headers.filename) {
          body.append("; filename=");
          AppendQuoted(*e.headers.filename, &body);
        }
        body.append("\r\n");
        if (!e.headers.content_type.empty()) {
          body.append("Content-Type: ").append(e.headers.content_type).append("\r\n");
        }
        body.append("\r\n");
        break;
      case 1:
        body.append(e.data);
        break;
      case 2:
        body.append("\r\n");
        break;
      case 3:
        body.append("--").append(boundary).append("--");
        break;
    }
  }
  return body;
}

constexpr std::string_view kBchars =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?";

}  // namespace
}  // namespace spillway

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace spillway;
  if (size < 4) return 0;
  const size_t len = 1 + data[0] % 16;
  if (size < 3 + len) return 0;
  std::string boundary;
  for (size_t i = 0; i < len; ++i) {
    const char c = static_cast<char>(data[1 + i]);
    boundary.push_back(kBchars.find(c) != std::string_view::npos ? c
                                                                 : kBchars[data[1 + i] % kBchars.size()]);
  }
  const uint8_t seed = data[1 + len];
  const uint8_t limit_bits = data[2 + len];
  MultipartLimits limits;
  if (limit_bits & 1) {
    limits.max_parts = (limit_bits >> 1) & 3;
    limits.max_part_header_bytes = 40 + 8 * ((limit_bits >> 3) & 7);
    limits.max_field_size = 4 * (limit_bits >> 6);
  }
  const std::string_view body(reinterpret_cast<const char*>(data) + 3 + len, size - 3 - len);

  const Outcome whole = Run(boundary, limits, body, {});

  std::vector<size_t> every;
  for (size_t i = 1; i < body.size(); ++i) every.push_back(i);
  Check(Run(boundary, limits, body, every) == whole);

  std::mt19937 rng(seed);
  std::vector<size_t> cuts;
  for (size_t at = 0; body.size() > 1;) {
    at += 1 + rng() % 24;
    if (at >= body.size()) break;
    cuts.push_back(at);
  }
  Check(Run(boundary, limits, body, cuts) == whole);

  if (whole.status.ok() && !(limit_bits & 1)) {
    Check(Run(boundary, limits, Serialize(boundary, whole.events), {}) == whole);
  }

  const BoundaryFinder finder("\r\n--" + boundary);
  const char* b = body.data();
  const char* e = body.data() + body.size();
  const char* want = finder.FindWithHorspool(b, e);
  Check(finder.Find(b, e) == want);
#if defined(__SSE2__)
  Check(finder.FindWithSse2(b, e) == want);
#endif
  return 0;
}
