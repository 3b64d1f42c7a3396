// JSON string escaping for the receipts and error bodies Spillway writes itself (no
// JSON library is among the dependencies). Free functions, no state: safe from any
// thread.
#ifndef SPILLWAY_SERVER_DISPATCH_JSON_ESCAPE_H_
#define SPILLWAY_SERVER_DISPATCH_JSON_ESCAPE_H_

#include <string>
#include <string_view>

namespace spillway {

// Appends `text` to *out as a JSON string literal, quotes included (RFC 8259).
// Valid UTF-8 is copied as is, except U+2028 and U+2029, which are escaped so the
// output is also safe inside JavaScript. '"', '\\' and the control characters
// U+0000..U+001F and U+007F are escaped (\n, \t, ... or \u00XX). Each byte that is
// not part of a valid UTF-8 sequence (stray continuation bytes, overlong forms,
// surrogates, code points past U+10FFFF, truncated sequences) becomes U+FFFD, so
// the output is always valid UTF-8 whatever the uploader sent.
void AppendJsonString(std::string_view text, std::string* out);

// The same, returned.
std::string JsonString(std::string_view text);

}  // namespace spillway

#endif  // SPILLWAY_SERVER_DISPATCH_JSON_ESCAPE_H_
