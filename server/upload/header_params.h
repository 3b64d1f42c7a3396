// HeaderParamReader: walks the `; attribute=value` parameters of a header value such as
// `form-data; name="a"; filename="b"` or `multipart/form-data; boundary=x`.
//
// Accepts what curl and browsers send: token or quoted-string values, optional
// whitespace around ';' and '=', empty segments and a trailing ';'. In a quoted string a
// backslash escapes only '"' and '\' (what `curl --form-escape` emits); before any other
// byte it is kept as is, because browsers send filenames such as `C:\dir\a.txt` with raw
// backslashes. Unquoted values are taken leniently up to ';' or whitespace.
//
// Not thread-safe; cheap to create. The input must outlive the reader; attribute views
// point into it.
#ifndef SPILLWAY_SERVER_UPLOAD_HEADER_PARAMS_H_
#define SPILLWAY_SERVER_UPLOAD_HEADER_PARAMS_H_

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace spillway {

// Splits `value` at its first ';' into the leading element (trimmed of whitespace), e.g.
// the disposition type or media type, and the parameter text that follows (possibly
// empty), to hand to HeaderParamReader.
std::string_view SplitHeaderValue(std::string_view value, std::string_view* params);

// Trims spaces and horizontal tabs from both ends.
std::string_view TrimOws(std::string_view s);

namespace header_params_internal {
constexpr std::array<bool, 256> MakeTokenTable() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
inline constexpr std::array<bool, 256> kTokenChars = MakeTokenTable();
}  // namespace header_params_internal

// RFC 7230 tchar: what header names and parameter attributes consist of.
inline bool IsTokenChar(unsigned char c) { return header_params_internal::kTokenChars[c]; }

// The value of a hex digit (either case), or -1.
inline int HexDigitValue(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// ASCII case-insensitive equality. Inline and length-first: it runs several times per
// part, almost always on strings of different lengths.
inline bool EqualsIgnoreCaseAscii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    unsigned char x = static_cast<unsigned char>(a[i]);
    unsigned char y = static_cast<unsigned char>(b[i]);
    if (static_cast<unsigned>(x - 'A') < 26u) x |= 0x20;
    if (static_cast<unsigned>(y - 'A') < 26u) y |= 0x20;
    if (x != y) return false;
  }
  return true;
}

class HeaderParamReader {
 public:
  explicit HeaderParamReader(std::string_view params) : rest_(params) {}

  // Reads the next parameter: `*attribute` views the input, `*value` receives the
  // unquoted value (its capacity is reused). Returns false at the end of the input or
  // at a syntax error; malformed() tells the two apart.
  bool Next(std::string_view* attribute, std::string* value);

  bool malformed() const { return malformed_; }

 private:
  std::string_view rest_;
  bool malformed_ = false;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_UPLOAD_HEADER_PARAMS_H_
