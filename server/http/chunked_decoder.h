// ChunkedDecoder: the chunked transfer coding of an HTTP/1.1 request body (RFC 9112
// §7.1), decoded strictly.
//
// libhttp-parser as Debian builds it (not strict) takes any two bytes for the CRLF
// after chunk data, ends a chunk-size line at a CR followed by anything, and lets
// control bytes and bare LFs into chunk extensions. A proxy in front that frames the
// same bytes by the letter sees different chunks: a request-smuggling gap. So
// Http1Session lets the parser read the head only and decodes chunked bodies here,
// where every line ends in CRLF exactly and anything else is an error:
//   chunk      = 1*HEXDIG [ BWS ";" ext ] CRLF data CRLF   (ext: no control bytes)
//   last-chunk = 1*"0" [ BWS ";" ext ] CRLF, then trailer fields ("name: value" CRLF,
//                no obs-fold), then CRLF.
// A chunk-size line is at most kMaxLineBytes long; trailer fields at most
// `max_trailer_bytes` in all. Chunk data is handed out uncopied, as views into the
// input. Trailer fields are checked and dropped.
//
// Not thread-safe; one per request body.
#ifndef SPILLWAY_SERVER_HTTP_CHUNKED_DECODER_H_
#define SPILLWAY_SERVER_HTTP_CHUNKED_DECODER_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace spillway {

class ChunkedDecoder {
 public:
  static constexpr size_t kMaxLineBytes = 4096;

  explicit ChunkedDecoder(size_t max_trailer_bytes)
      : max_trailer_bytes_(max_trailer_bytes) {}

  struct Step {
    size_t consumed = 0;    // input bytes used, `data` included
    std::string_view data;  // chunk data found, a view into the input (may be empty)
  };

  // Decodes from the start of `input` until it has chunk data to hand out, needs
  // more input, reaches the body's end (done()) or finds an error (error()). Call
  // again with the input after `consumed` for more. No input is used after done()
  // or an error.
  Step Decode(std::string_view input);

  bool done() const { return state_ == State::kDone; }
  // Why the body is malformed (a literal), or nullptr.
  const char* error() const { return error_; }

 private:
  enum class State {
    kSize,          // chunk-size digits
    kSizeSpace,     // BWS after the size
    kExtension,     // after ';', to the CR
    kSizeLf,        // CR seen at the end of the chunk-size line
    kData,          // `remaining_` bytes of chunk data to go
    kDataCr,        // the CRLF after chunk data
    kDataLf,
    kTrailerStart,  // start of a trailer line, or the final CRLF
    kTrailerName,
    kTrailerValue,
    kTrailerLf,
    kEndLf,         // the final CRLF's LF
    kDone,
    kError,
  };

  // Consumes one byte of a line (not chunk data); false on an error.
  bool Advance(unsigned char c);
  bool Fail(const char* why);

  const size_t max_trailer_bytes_;
  State state_ = State::kSize;
  uint64_t size_ = 0;
  uint64_t remaining_ = 0;
  size_t digits_ = 0;
  size_t line_bytes_ = 0;
  size_t trailer_bytes_ = 0;
  const char* error_ = nullptr;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_HTTP_CHUNKED_DECODER_H_
