#include "server/http/chunked_decoder.h"

#include <algorithm>

#include "server/upload/header_params.h"

namespace spillway {
namespace {

bool IsBlank(unsigned char c) { return c == ' ' || c == '\t'; }

// Field values and chunk extensions: HTAB, SP, VCHAR and obs-text; no other control
// byte, no bare CR or LF.
bool IsTextByte(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7F); }

}  // namespace

ChunkedDecoder::Step ChunkedDecoder::Decode(std::string_view input) {
  Step step;
  while (step.consumed < input.size()) {
    if (state_ == State::kDone || state_ == State::kError) break;
    if (state_ == State::kData) {
      const size_t n = static_cast<size_t>(
          std::min<uint64_t>(remaining_, input.size() - step.consumed));
      step.data = input.substr(step.consumed, n);
      step.consumed += n;
      remaining_ -= n;
      if (remaining_ == 0) state_ = State::kDataCr;
      return step;
    }
    const auto c = static_cast<unsigned char>(input[step.consumed]);
    ++step.consumed;
    if (!Advance(c)) break;
  }
  return step;
}

bool ChunkedDecoder::Advance(unsigned char c) {
  switch (state_) {
    case State::kSize:
    case State::kSizeSpace:
    case State::kExtension:
      if (++line_bytes_ > kMaxLineBytes) return Fail("chunk-size line too long");
      break;
    case State::kTrailerName:
    case State::kTrailerValue:
    case State::kTrailerLf:
      if (++trailer_bytes_ > max_trailer_bytes_) return Fail("trailer fields too large");
      break;
    case State::kTrailerStart:  // the final CR is not a field's
      if (c != '\r' && ++trailer_bytes_ > max_trailer_bytes_) {
        return Fail("trailer fields too large");
      }
      break;
    default:
      break;
  }
  switch (state_) {
    case State::kSize:
      if (const int digit = HexDigitValue(c); digit >= 0) {
        if (size_ > (UINT64_MAX >> 4)) return Fail("chunk size too large");
        size_ = size_ << 4 | static_cast<uint64_t>(digit);
        ++digits_;
        return true;
      }
      if (digits_ == 0) return Fail("invalid chunk size");
      if (IsBlank(c)) {
        state_ = State::kSizeSpace;
      } else if (c == ';') {
        state_ = State::kExtension;
      } else if (c == '\r') {
        state_ = State::kSizeLf;
      } else {
        return Fail("invalid chunk size");
      }
      return true;
    case State::kSizeSpace:
      if (IsBlank(c)) return true;
      if (c == ';') {
        state_ = State::kExtension;
      } else if (c == '\r') {
        state_ = State::kSizeLf;
      } else {
        return Fail("invalid chunk size");
      }
      return true;
    case State::kExtension:
      if (c == '\r') {
        state_ = State::kSizeLf;
        return true;
      }
      if (!IsTextByte(c)) return Fail("control character in a chunk extension");
      return true;
    case State::kSizeLf:
      if (c != '\n') return Fail("chunk-size line not ended by CRLF");
      line_bytes_ = 0;
      digits_ = 0;
      if (size_ == 0) {
        state_ = State::kTrailerStart;
      } else {
        remaining_ = size_;
        size_ = 0;
        state_ = State::kData;
      }
      return true;
    case State::kDataCr:
      if (c != '\r') return Fail("chunk data not followed by CRLF");
      state_ = State::kDataLf;
      return true;
    case State::kDataLf:
      if (c != '\n') return Fail("chunk data not followed by CRLF");
      state_ = State::kSize;
      return true;
    case State::kTrailerStart:
      if (c == '\r') {
        state_ = State::kEndLf;
      } else if (IsTokenChar(c)) {
        state_ = State::kTrailerName;
      } else {
        // Includes SP and HTAB: obs-fold, which a trailer may not use.
        return Fail("malformed trailer field");
      }
      return true;
    case State::kTrailerName:
      if (c == ':') {
        state_ = State::kTrailerValue;
      } else if (!IsTokenChar(c)) {
        return Fail("malformed trailer field");
      }
      return true;
    case State::kTrailerValue:
      if (c == '\r') {
        state_ = State::kTrailerLf;
      } else if (!IsTextByte(c)) {
        return Fail("control character in a trailer field");
      }
      return true;
    case State::kTrailerLf:
      if (c != '\n') return Fail("trailer field not ended by CRLF");
      state_ = State::kTrailerStart;
      return true;
    case State::kEndLf:
      if (c != '\n') return Fail("chunked body not ended by CRLF");
      state_ = State::kDone;
      return true;
    case State::kData:
    case State::kDone:
    case State::kError:
      break;
  }
  return Fail("internal error");
}

bool ChunkedDecoder::Fail(const char* why) {
  state_ = State::kError;
  error_ = why;
  return false;
}

}  // namespace spillway
