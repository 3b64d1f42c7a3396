// Test helpers for MultipartParser: a Handler that records what the parser reported,
// and ParseAllWays(), which parses one body fed whole, one byte at a time, cut in two at
// every offset (small bodies) and cut at random points, and expects the same outcome
// every way. Every multipart test goes through it, so slicing bugs cannot hide behind
// a test that happened to feed one convenient slice.
#ifndef SPILLWAY_TESTS_UNIT_MULTIPART_TEST_UTIL_H_
#define SPILLWAY_TESTS_UNIT_MULTIPART_TEST_UTIL_H_

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/common/string_view_compat.h"
#include "server/upload/multipart_parser.h"

namespace spillway {

// For gtest's failure messages.
inline void PrintTo(const PartHeaders& h, std::ostream* os) {
  *os << "{name=\"" << absl::CHexEscape(AbslView(h.name)) << "\" filename=";
  if (h.filename) {
    *os << "\"" << absl::CHexEscape(AbslView(*h.filename)) << "\"";
  } else {
    *os << "(none)";
  }
  *os << " content_type=\"" << absl::CHexEscape(AbslView(h.content_type)) << "\"}";
}

namespace testing {

// One callback, with consecutive data slices merged: slicing changes how data is cut,
// never what these events say.
struct ParseEvent {
  enum class Kind { kPartBegin, kPartData, kPartEnd, kBodyEnd };
  Kind kind;
  PartHeaders headers;  // kPartBegin
  std::string data;     // kPartData

  friend bool operator==(const ParseEvent&, const ParseEvent&) = default;
};

inline std::ostream& operator<<(std::ostream& os, const ParseEvent& e) {
  switch (e.kind) {
    case ParseEvent::Kind::kPartBegin:
      os << "Begin";
      PrintTo(e.headers, &os);
      return os;
    case ParseEvent::Kind::kPartData:
      return os << "Data(" << e.data.size() << " bytes: \""
                << absl::CHexEscape(AbslView(std::string_view(e.data).substr(0, 64)))
                << (e.data.size() > 64 ? "...\")" : "\")");
    case ParseEvent::Kind::kPartEnd:
      return os << "End";
    case ParseEvent::Kind::kBodyEnd:
      return os << "BodyEnd";
  }
  return os;
}

struct ParseOutcome {
  std::vector<ParseEvent> events;
  absl::Status status;  // the first error from Feed() or Finish(), else OK
  std::string protocol_violation;  // the handler saw an impossible call sequence

  friend bool operator==(const ParseOutcome&, const ParseOutcome&) = default;
};

inline std::ostream& operator<<(std::ostream& os, const ParseOutcome& o) {
  os << "status=" << o.status << " events=[";
  for (const ParseEvent& e : o.events) os << e << " ";
  if (!o.protocol_violation.empty()) os << "] violation=" << o.protocol_violation;
  return os << "]";
}

// A part as the tests usually want to see it.
struct ParsedPart {
  PartHeaders headers;
  std::string data;
};

inline std::vector<ParsedPart> Parts(const ParseOutcome& outcome) {
  std::vector<ParsedPart> parts;
  for (const ParseEvent& e : outcome.events) {
    if (e.kind == ParseEvent::Kind::kPartBegin) parts.push_back({e.headers, ""});
    if (e.kind == ParseEvent::Kind::kPartData) parts.back().data = e.data;
  }
  return parts;
}

// Records events and checks the Handler contract: data only inside a part and never
// empty, begin/end paired, nothing after the body's end.
class RecordingHandler : public MultipartParser::Handler {
 public:
  absl::Status OnPartBegin(const PartHeaders& headers) override {
    if (in_part_ || body_ended_) Violation("OnPartBegin inside a part or after the body");
    in_part_ = true;
    events_.push_back({ParseEvent::Kind::kPartBegin, headers, ""});
    return Next();
  }
  absl::Status OnPartData(std::string_view data) override {
    if (!in_part_) Violation("OnPartData outside a part");
    if (data.empty()) Violation("empty OnPartData");
    if (events_.empty() || events_.back().kind != ParseEvent::Kind::kPartData) {
      events_.push_back({ParseEvent::Kind::kPartData, {}, ""});
    }
    events_.back().data.append(data);
    slices_.push_back({reinterpret_cast<uintptr_t>(data.data()), std::string(data)});
    return Next();
  }
  absl::Status OnPartEnd() override {
    if (!in_part_) Violation("OnPartEnd outside a part");
    in_part_ = false;
    events_.push_back({ParseEvent::Kind::kPartEnd, {}, ""});
    return Next();
  }
  absl::Status OnBodyEnd() override {
    if (in_part_ || body_ended_) Violation("OnBodyEnd inside a part or twice");
    body_ended_ = true;
    events_.push_back({ParseEvent::Kind::kBodyEnd, {}, ""});
    return Next();
  }

  // Makes the n-th callback (0-based) fail with `status`.
  void FailAt(size_t n, absl::Status status) {
    fail_at_ = n;
    fail_status_ = std::move(status);
  }

  std::vector<ParseEvent>& events() { return events_; }
  // Each data slice: where it pointed during the call, and a copy of it.
  struct Slice {
    uintptr_t address;
    std::string bytes;
  };
  const std::vector<Slice>& slices() const { return slices_; }
  const std::string& violation() const { return violation_; }

 private:
  void Violation(std::string_view what) {
    if (violation_.empty()) violation_ = std::string(what);
  }
  absl::Status Next() {
    return calls_++ == fail_at_ ? fail_status_ : absl::OkStatus();
  }

  std::vector<ParseEvent> events_;
  std::vector<Slice> slices_;
  std::string violation_;
  bool in_part_ = false;
  bool body_ended_ = false;
  size_t calls_ = 0;
  size_t fail_at_ = static_cast<size_t>(-1);
  absl::Status fail_status_;
};

// Parses `body` fed in pieces ending at each of `cuts` (ascending offsets) and then the
// rest, then Finish(). Also checks that an error sticks.
inline ParseOutcome ParseWithCuts(std::string_view boundary, std::string_view body,
                                  const std::vector<size_t>& cuts, MultipartLimits limits,
                                  RecordingHandler* handler = nullptr) {
  RecordingHandler local;
  if (handler == nullptr) handler = &local;
  MultipartParser parser(boundary, limits, handler);
  ParseOutcome outcome;
  size_t begin = 0;
  for (size_t i = 0; i <= cuts.size() && outcome.status.ok(); ++i) {
    const size_t end = i < cuts.size() ? cuts[i] : body.size();
    outcome.status = parser.Feed(body.substr(begin, end - begin));
    begin = end;
  }
  if (outcome.status.ok()) outcome.status = parser.Finish();
  if (!outcome.status.ok()) {
    const absl::Status again = parser.Feed("more");
    if (again != outcome.status) {
      outcome.protocol_violation = absl::StrCat("error did not stick: ", again.ToString());
    }
  }
  outcome.events = std::move(handler->events());
  if (outcome.protocol_violation.empty()) outcome.protocol_violation = handler->violation();
  return outcome;
}

// The base seed of the random slicings: SPILLWAY_TEST_SEED, or random and printed on
// failure through SCOPED_TRACE.
inline uint64_t NextSliceSeed() {
  static uint64_t next = [] {
    const char* env = std::getenv("SPILLWAY_TEST_SEED");
    return env != nullptr ? std::strtoull(env, nullptr, 10) : std::random_device{}();
  }();
  return next++;
}

inline std::vector<size_t> RandomCuts(size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<size_t> cuts;
  if (size == 0) return cuts;
  // Mostly short pieces, so cuts land inside delimiters and header terminators.
  const size_t mean = std::uniform_int_distribution<size_t>(1, 64)(rng);
  std::geometric_distribution<size_t> gap(1.0 / static_cast<double>(mean));
  size_t at = 0;
  while (true) {
    at += 1 + gap(rng);
    if (at >= size) break;
    cuts.push_back(at);
  }
  return cuts;
}

// Parses `body` whole, byte by byte, in two pieces at every offset (bodies up to 4 KiB),
// and at random cuts; expects every outcome to equal the whole-body one, which it returns.
inline ParseOutcome ParseAllWays(std::string_view boundary, std::string_view body,
                                 MultipartLimits limits = {}) {
  const ParseOutcome whole = ParseWithCuts(boundary, body, {}, limits);
  EXPECT_EQ(whole.protocol_violation, "");

  std::vector<size_t> every;
  for (size_t i = 1; i < body.size(); ++i) every.push_back(i);
  EXPECT_EQ(ParseWithCuts(boundary, body, every, limits), whole) << "fed one byte at a time";

  if (body.size() <= 4096) {
    for (size_t i = 1; i < body.size(); ++i) {
      const ParseOutcome two = ParseWithCuts(boundary, body, {i}, limits);
      if (two != whole) {
        ADD_FAILURE() << "cut in two at offset " << i << ": " << two << "\nwhole: " << whole;
        break;
      }
    }
  }

  for (int round = 0; round < 4; ++round) {
    const uint64_t seed = NextSliceSeed();
    SCOPED_TRACE(absl::StrCat("random cuts, seed ", seed, " (SPILLWAY_TEST_SEED)"));
    EXPECT_EQ(ParseWithCuts(boundary, body, RandomCuts(body.size(), seed), limits), whole);
  }
  return whole;
}

}  // namespace testing
}  // namespace spillway

#endif  // SPILLWAY_TESTS_UNIT_MULTIPART_TEST_UTIL_H_
